//! One polling cycle's steps: the cheap unauthenticated check, then (when
//! due) the authenticated call under its backoff, the RTSP DESCRIBE and the
//! snapshot, then (when due and a slot is free) a timed stream sample. Each
//! result is one [`Observation`] for the pure health state machine.

use std::time::Duration;

use device_drivers::backoff::AuthBackoff;
use device_drivers::local_error::LocalResource;
use device_drivers::onvif_client::{OnvifError, OnvifErrorKind};
use device_drivers::rtsp_probe::{RtspError, RtspErrorKind, RtspOptions, SampleReport};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Poller;
use super::auto_sync::Ask;
use super::target::Target;
use crate::base::metrics::Metrics;
use crate::cameras::device::OnvifSession;
use tgw_core::health::{
    CheckResult, Health, Observation, Reason, Rung, StreamFailure, StreamSample, Transition,
    Verdict,
};

/// Maps an ONVIF error of the cheap check onto the ladder.
fn check_result(kind: &OnvifErrorKind, detail: String) -> CheckResult {
    let label = match kind {
        OnvifErrorKind::Timeout => "timeout",
        OnvifErrorKind::Connect(_) => "connect",
        // Never observed: the cycle stops before (see `Poller::local`).
        OnvifErrorKind::Local(_) => "local",
        OnvifErrorKind::Http { .. } => "http",
        OnvifErrorKind::Fault(_) => "fault",
        OnvifErrorKind::AuthRejected => "auth",
        OnvifErrorKind::Xml(_) => "parse",
        OnvifErrorKind::TooLarge => "too_large",
        OnvifErrorKind::Protocol(_) => "protocol",
        OnvifErrorKind::CredentialsWithheld(_) => "withheld",
    }
    .to_string();
    match kind {
        OnvifErrorKind::Timeout | OnvifErrorKind::Connect(_) => CheckResult::Unreachable {
            kind: label,
            detail,
        },
        _ => CheckResult::TcpOnly {
            kind: label,
            detail,
        },
    }
}

/// What a cycle is due to do, and what it could not.
pub(super) struct Due {
    /// Authenticated check, DESCRIBE and snapshot.
    pub(super) describe: bool,
    /// A timed stream sample.
    pub(super) sample: bool,
    /// Set when every sample slot was busy: the sample moves to the next cycle.
    pub(super) sample_deferred: bool,
    /// Set when a step failed on the gateway's side (out of file
    /// descriptors, …): the cycle stopped there without observing it, and
    /// what was due is tried again next cycle.
    pub(super) local: Option<LocalResource>,
    /// An event pull the camera answered since the previous cycle, on its
    /// device service's address: it stands for this cycle's cheap check
    /// (set only on a cycle with nothing else due, for a camera whose last
    /// cycle succeeded and whose clock offset is known).
    pub(super) answered: bool,
}

/// A sample's figures for the health state machine.
fn stream_sample(s: &SampleReport) -> StreamSample {
    let expected_pkts = s.frames.max(1) as f64;
    StreamSample {
        frames: s.frames,
        fps: f64::from(s.measured_fps.unwrap_or(0.0)),
        bitrate_kbps: f64::from(s.bitrate_kbps),
        loss_pct: 100.0 * s.rtp_loss_packets as f64 / (expected_pkts + s.rtp_loss_packets as f64),
        time_to_first_frame_ms: Some(s.time_to_first_frame_ms),
        codec: Some(s.codec.clone()),
    }
}

impl Poller {
    /// One polling cycle; returns the transition it caused, if any: the
    /// observations of one cycle are coalesced into a single change from the
    /// state `before` (the cycle, and a target re-read just before it) to
    /// the state after it.
    pub(super) async fn cycle(
        &self,
        t: &Target,
        before: (Verdict, Rung),
        health: &mut Health,
        due: &mut Due,
        auth_backoff: &mut AuthBackoff,
        shutdown: &CancellationToken,
    ) -> Vec<Transition> {
        let (verdict, rung) = before;
        let measured = self
            .observe_cycle(t, health, due, auth_backoff, shutdown)
            .await;
        if let (Some(offset_ms), Some(a)) = (measured, self.auto_sync.get()) {
            // After the cycle's authenticated call: a login refused now
            // is not sent to set the clock.
            let login_refused = matches!(&health.verdict,
                Verdict::Degraded(r) if r.contains(&Reason::CredentialsRejected));
            let ask = Ask {
                id: &t.device.id,
                xaddr: &t.xaddr,
                creds: t.creds.as_ref(),
                offset_ms,
                login_refused,
            };
            a.consider(ask, self.time_ref.get().cloned(), shutdown);
        }
        if health.verdict == verdict && health.rung == rung {
            return Vec::new();
        }
        vec![Transition {
            from: verdict,
            to: health.verdict.clone(),
            rung_from: rung,
            rung_to: health.rung,
            at: self.clock.now_utc(),
        }]
    }

    /// Applies one observation now (transitions are computed once per
    /// cycle by [`cycle`](Self::cycle)).
    pub(super) fn observe(&self, health: &mut Health, o: Observation) {
        let _ = health.observe(o, self.clock.now_utc(), &self.th);
    }

    /// A step failed on our side: not an observation about the camera.
    /// The cycle stops (`due.local`), the gateway's trouble is counted and
    /// logged (once a minute, `base::local_errors`).
    fn local(&self, due: &mut Due, what: LocalResource) {
        due.local = Some(what);
        self.metrics.local_errors.report(what, "poller");
    }

    /// The steps of one cycle; returns early on shutdown or when the camera
    /// does not answer its cheap check. The clock offset the cheap check
    /// measured (from the reference), when the cycle ran to its end.
    async fn observe_cycle(
        &self,
        t: &Target,
        health: &mut Health,
        due: &mut Due,
        auth_backoff: &mut AuthBackoff,
        shutdown: &CancellationToken,
    ) -> Option<i64> {
        if due.answered {
            self.answered_check(health);
            return None;
        }
        let session = match self.io.onvif(&t.xaddr, t.creds.clone()) {
            Ok(c) => c,
            Err(OnvifError {
                kind: OnvifErrorKind::Local(r),
                ..
            }) => {
                self.local(due, r);
                return None;
            }
            Err(e) => {
                self.observe(
                    health,
                    Observation::Check(CheckResult::TcpOnly {
                        kind: e.kind_label().into(),
                        detail: e.to_string(),
                    }),
                );
                return None;
            }
        };
        let (reachable, measured) = self.cheap_check(&*session, health, due, shutdown).await?;
        if !reachable {
            return None;
        }
        if due.describe {
            self.describe_steps(t, &*session, health, due, auth_backoff, shutdown)
                .await?;
        }
        if due.local.is_some() {
            return None;
        }
        if due.sample {
            self.sample_step(t, health, due, auth_backoff, shutdown)
                .await;
        }
        if shutdown.is_cancelled() {
            return None;
        }
        measured
    }

    /// The cheap check answered by an event pull (`Due::answered`): the
    /// camera is up, its clock offset the one last measured; no connection
    /// of our own, and nothing for the automatic clock setting to act on.
    fn answered_check(&self, health: &mut Health) {
        Metrics::count(&self.metrics.checks, "event_pull");
        let offset_ms = health.clock_offset_ms.unwrap_or(0);
        self.observe(
            health,
            Observation::Check(CheckResult::OnvifUp {
                clock_offset_ms: offset_ms,
            }),
        );
    }

    /// GetSystemDateAndTime under a check slot: whether the camera answers,
    /// and the clock offset it measured (`None` on shutdown).
    async fn cheap_check(
        &self,
        session: &dyn OnvifSession,
        health: &mut Health,
        due: &mut Due,
        shutdown: &CancellationToken,
    ) -> Option<(bool, Option<i64>)> {
        let check = {
            let _permit = self.checks.acquire().await.ok()?;
            let started = Instant::now();
            let r = tokio::select! {
                _ = shutdown.cancelled() => return None,
                r = session.measure_clock() => r,
            };
            self.metrics
                .check_seconds
                .observe(started.elapsed().as_secs_f64());
            r
        };
        Some(match check {
            Ok(reading) => {
                Metrics::count(&self.metrics.checks, "ok");
                let offset_ms = self
                    .time_ref
                    .get()
                    .map_or(reading.offset_ms, |r| r.relative(reading.offset_ms));
                self.observe(
                    health,
                    Observation::Check(CheckResult::OnvifUp {
                        clock_offset_ms: offset_ms,
                    }),
                );
                (true, Some(offset_ms))
            }
            Err(OnvifError {
                kind: OnvifErrorKind::Local(r),
                ..
            }) => {
                Metrics::count(&self.metrics.checks, "local");
                self.local(due, r);
                (false, None)
            }
            Err(e) => {
                Metrics::count(&self.metrics.checks, e.kind_label());
                let auth_only = matches!(e.kind, OnvifErrorKind::AuthRejected);
                // A camera that wants auth even for its clock is still up.
                let check = if auth_only {
                    CheckResult::OnvifUp {
                        clock_offset_ms: health.clock_offset_ms.unwrap_or(0),
                    }
                } else {
                    check_result(&e.kind, e.to_string())
                };
                self.observe(health, Observation::Check(check));
                (auth_only, None)
            }
        })
    }

    /// The authenticated call (unless backing off after rejected logins),
    /// the DESCRIBE and the snapshot (`None` on shutdown).
    async fn describe_steps(
        &self,
        t: &Target,
        session: &dyn OnvifSession,
        health: &mut Health,
        due: &mut Due,
        auth_backoff: &mut AuthBackoff,
        shutdown: &CancellationToken,
    ) -> Option<()> {
        // The backoff is reset only when no login of the cycle was refused:
        // an ONVIF account that works does not excuse an RTSP one that does not.
        let mut onvif_ok = false;
        let mut stream_refused = false;
        if t.creds.is_some() && auth_backoff.allowed(Instant::now()).is_ok() {
            let r = tokio::select! {
                _ = shutdown.cancelled() => return None,
                r = session.device_information() => r,
            };
            match r {
                Ok(_) => {
                    onvif_ok = true;
                    self.observe(health, Observation::Auth { ok: true });
                }
                Err(OnvifError {
                    kind: OnvifErrorKind::Local(r),
                    ..
                }) => {
                    self.local(due, r);
                    return Some(());
                }
                Err(e) if e.is_auth() => {
                    let wait = auth_backoff.on_auth_failure(Instant::now());
                    tracing::warn!(error = %e, retry_in_s = wait.as_secs(), "credentials rejected; backing off");
                    self.observe(health, Observation::Auth { ok: false });
                }
                Err(e) => tracing::debug!(error = %e, "authenticated check failed"),
            }
        }
        // While backing off after a refused login, the login goes to no
        // DESCRIBE or snapshot either: three services, one account to lock.
        if t.creds.is_some() && auth_backoff.allowed(Instant::now()).is_err() {
            return Some(());
        }
        if let Some(uri) = &t.describe_uri {
            let opts = RtspOptions {
                timeout: self.cfg.call_timeout_ms,
                ..RtspOptions::default()
            };
            let r = tokio::select! {
                _ = shutdown.cancelled() => return None,
                r = self.io.describe(uri, t.creds.as_ref(), &t.scope, &opts) => r,
            };
            match r {
                Ok(_) => {
                    Metrics::count(&self.metrics.describes, "ok");
                    self.observe(health, Observation::Stream(Ok(())));
                }
                Err(RtspError {
                    kind: RtspErrorKind::Local(r),
                    ..
                }) => {
                    Metrics::count(&self.metrics.describes, "local");
                    self.local(due, r);
                    return Some(());
                }
                Err(e) => {
                    Metrics::count(&self.metrics.describes, e.kind_label());
                    tracing::debug!(error = %e, "DESCRIBE failed");
                    let f = if matches!(e.kind, RtspErrorKind::AuthRejected) {
                        stream_refused = true;
                        let wait = auth_backoff.on_auth_failure(Instant::now());
                        tracing::warn!(error = %e, retry_in_s = wait.as_secs(), "stream login rejected; backing off");
                        StreamFailure::AuthRejected
                    } else {
                        StreamFailure::Unavailable
                    };
                    self.observe(health, Observation::Stream(Err(f)));
                }
            }
        }
        if onvif_ok && !stream_refused {
            auth_backoff.on_success();
        }
        if !t.has_inventory {
            // No inventory, no snapshot URI to judge: nothing to say yet.
            return Some(());
        }
        let snap_ok = match &t.snapshot_uri {
            Some(uri) => {
                let r = tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    r = self.io.snapshot(
                        uri,
                        t.creds.as_ref(),
                        &t.scope,
                        self.cfg.call_timeout_ms,
                    ) => r,
                };
                match &r {
                    Err(OnvifError {
                        kind: OnvifErrorKind::Local(what),
                        ..
                    }) => {
                        self.local(due, *what);
                        return Some(());
                    }
                    Err(e) if matches!(e.kind, OnvifErrorKind::CredentialsWithheld(_)) => {
                        tracing::warn!(
                            device = %t.device.id,
                            error = %e,
                            "snapshot: camera login withheld (see health.camera_access)"
                        );
                    }
                    Err(e) if e.is_auth() => {
                        let wait = auth_backoff.on_auth_failure(Instant::now());
                        tracing::warn!(error = %e, retry_in_s = wait.as_secs(), "snapshot login rejected; backing off");
                    }
                    Err(e) => tracing::debug!(error = %e, "snapshot failed"),
                    Ok(_) => {}
                }
                r.is_ok()
            }
            None => false,
        };
        self.observe(health, Observation::Snapshot { ok: snap_ok });
        Some(())
    }

    /// A timed sample of the stream, if a sample slot is free; otherwise the
    /// sample is marked deferred.
    async fn sample_step(
        &self,
        t: &Target,
        health: &mut Health,
        due: &mut Due,
        auth_backoff: &mut AuthBackoff,
        shutdown: &CancellationToken,
    ) {
        let Some(uri) = &t.sample_uri else {
            return;
        };
        if t.creds.is_some() && auth_backoff.allowed(Instant::now()).is_err() {
            return;
        }
        // Never wait for a sample slot: that would hold back this camera's
        // cheap checks too. Without a slot the sample moves to the next cycle.
        let Ok(_permit) = self.samples.try_acquire() else {
            due.sample_deferred = true;
            return;
        };
        let opts = RtspOptions {
            timeout: self.cfg.call_timeout_ms.max(Duration::from_secs(1)),
            window: self.cfg.sample_ms,
            ..RtspOptions::default()
        };
        let r = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = self.io.sample(uri, t.creds.as_ref(), &t.scope, &opts) => r,
        };
        let obs = match r {
            Ok(s) => {
                Metrics::count(&self.metrics.samples, "ok");
                Observation::Sample {
                    sample: Some(stream_sample(&s)),
                    expected: t.expected.clone(),
                }
            }
            Err(RtspError {
                kind: RtspErrorKind::Local(r),
                ..
            }) => {
                Metrics::count(&self.metrics.samples, "local");
                self.local(due, r);
                return;
            }
            Err(e) => {
                Metrics::count(&self.metrics.samples, e.kind_label());
                tracing::debug!(error = %e, "stream sample failed");
                match e.kind {
                    RtspErrorKind::NoFrames => Observation::Sample {
                        sample: None,
                        expected: t.expected.clone(),
                    },
                    RtspErrorKind::AuthRejected => {
                        auth_backoff.on_auth_failure(Instant::now());
                        Observation::Stream(Err(StreamFailure::AuthRejected))
                    }
                    _ => Observation::Stream(Err(StreamFailure::Unavailable)),
                }
            }
        };
        self.observe(health, obs);
    }
}
