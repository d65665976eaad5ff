//! The health poller: one task per adopted, inventoried camera, each on its
//! own jittered schedule, so one slow or hanging camera never delays the
//! others. Bounded concurrency through two semaphores (cheap checks,
//! stream samples); every call has a timeout; shutdown is checked at every
//! await that can block (STYLE.md §5).
//!
//! Each cycle: a cheap unauthenticated GetSystemDateAndTime (liveness and
//! clock drift); every `describe_interval` an authenticated call, an RTSP
//! DESCRIBE and a snapshot fetch; every `sample_interval` (in rotation) a
//! timed PLAY sample of the sub-stream. Results feed the pure
//! [`tgw_core::health::Health`] state machine; transitions and states go to the
//! store, the metrics and a [`HealthSink`] (MQTT, live dashboard).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use device_drivers::backoff::AuthBackoff;
use device_drivers::onvif_client::{
    CameraInventory, ClientOptions, Credentials, OnvifClient, OnvifErrorKind,
};
use device_drivers::rtsp_probe::{self, RtspErrorKind, RtspOptions};
use device_drivers::wsd;
use rand::Rng;
use time::OffsetDateTime;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::base::metrics::Metrics;
use crate::config::HealthSection;
use crate::store::{Device, DeviceState, Store};
use tgw_core::health::{
    CheckResult, Expected, Health, Observation, StreamFailure, StreamSample, Thresholds, Transition,
};

/// Where health results go besides the store and metrics.
pub trait HealthSink: Send + Sync {
    /// The camera's current health, after each cycle.
    fn state(&self, device: &Device, health: &Health);
    /// A verdict or rung change.
    fn transition(&self, device: &Device, transition: &Transition, health: &Health);
}

/// A sink that drops everything.
pub struct NoSink;

impl HealthSink for NoSink {
    fn state(&self, _: &Device, _: &Health) {}
    fn transition(&self, _: &Device, _: &Transition, _: &Health) {}
}

/// What the poller needs to know about a camera, re-read every cycle so
/// credential and inventory changes apply without a restart.
#[derive(Debug, Clone)]
pub struct Target {
    /// The device row.
    pub device: Device,
    /// ONVIF device service.
    pub xaddr: String,
    /// Login, if any.
    pub creds: Option<Credentials>,
    /// Stream to DESCRIBE (main profile).
    pub describe_uri: Option<String>,
    /// Stream to sample (sub profile by default).
    pub sample_uri: Option<String>,
    /// What the sampled profile promises.
    pub expected: Expected,
    /// Snapshot URI.
    pub snapshot_uri: Option<String>,
}

/// Builds a target from the store, or `None` when the camera is not
/// (or no longer) polled.
pub fn target(store: &Store, id: &str, sub_stream: bool) -> Option<Target> {
    let device = store.device(id).ok()??;
    if device.state != DeviceState::Adopted {
        return None;
    }
    let from = device.address.as_deref().and_then(|a| a.parse().ok());
    let xaddr = wsd::preferred_xaddr(&device.xaddrs, from)?;
    let creds = store
        .login_for(id)
        .ok()
        .flatten()
        .map(|l| Credentials::new(l.username, l.password.expose()));
    let inv: Option<CameraInventory> = device
        .inventory
        .clone()
        .and_then(|v| serde_json::from_value(v).ok());
    let (mut describe_uri, mut sample_uri, mut snapshot_uri, mut expected) =
        (None, None, None, Expected::default());
    if let Some(inv) = &inv {
        let with_stream: Vec<_> = inv
            .profiles
            .iter()
            .filter(|p| p.stream_uri.is_some())
            .collect();
        let area = |p: &&device_drivers::onvif_client::ProfileInventory| {
            p.profile
                .video
                .as_ref()
                .map_or(u64::MAX, |v| u64::from(v.width) * u64::from(v.height))
        };
        let main = with_stream
            .iter()
            .max_by_key(|p| area(p).min(u64::MAX - 1))
            .copied();
        let sub = with_stream.iter().min_by_key(|p| area(p)).copied();
        let sampled = if sub_stream { sub } else { main };
        describe_uri = main.and_then(|p| p.stream_uri.clone());
        sample_uri = sampled.and_then(|p| p.stream_uri.clone());
        snapshot_uri = inv.profiles.iter().find_map(|p| p.snapshot_uri.clone());
        if let Some(v) = sampled.and_then(|p| p.profile.video.as_ref()) {
            expected = Expected {
                fps: v.fps.map(f64::from),
                bitrate_kbps: v.bitrate_kbps.map(f64::from),
                codec: Some(v.encoding.clone()),
            };
        }
    }
    Some(Target {
        device,
        xaddr,
        creds,
        describe_uri,
        sample_uri,
        expected,
        snapshot_uri,
    })
}

/// Maps an ONVIF error of the cheap check onto the ladder.
fn check_result(kind: &OnvifErrorKind, detail: String) -> CheckResult {
    let label = match kind {
        OnvifErrorKind::Timeout => "timeout",
        OnvifErrorKind::Connect(_) => "connect",
        OnvifErrorKind::Http { .. } => "http",
        OnvifErrorKind::Fault(_) => "fault",
        OnvifErrorKind::AuthRejected => "auth",
        OnvifErrorKind::Xml(_) => "parse",
        OnvifErrorKind::TooLarge => "too_large",
        OnvifErrorKind::Protocol(_) => "protocol",
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
struct Due {
    /// Authenticated check, DESCRIBE and snapshot.
    describe: bool,
    /// A timed stream sample.
    sample: bool,
    /// Set when every sample slot was busy: the sample moves to the next cycle.
    sample_deferred: bool,
}

/// The poller.
pub struct Poller {
    store: Store,
    cfg: HealthSection,
    th: Thresholds,
    http: reqwest::Client,
    opts: ClientOptions,
    metrics: Arc<Metrics>,
    sink: Arc<dyn HealthSink>,
    checks: Semaphore,
    samples: Semaphore,
}

impl Poller {
    /// A poller over the store.
    pub fn new(
        store: Store,
        cfg: HealthSection,
        metrics: Arc<Metrics>,
        sink: Arc<dyn HealthSink>,
    ) -> anyhow::Result<Arc<Self>> {
        let opts = ClientOptions {
            timeout: cfg.call_timeout_ms,
            connect_timeout: cfg.call_timeout_ms.min(Duration::from_secs(3)),
            ..ClientOptions::default()
        };
        let http = device_drivers::onvif_client::http_client(&opts)?;
        let th = Thresholds {
            offline_after: cfg.offline_after,
            stall_after: cfg.stall_secs,
            max_clock_drift: cfg.max_clock_drift_secs,
            max_loss_pct: cfg.max_rtp_loss_pct,
            ..Thresholds::default()
        };
        Ok(Arc::new(Self {
            checks: Semaphore::new(cfg.concurrency),
            samples: Semaphore::new(cfg.sample_concurrency),
            store,
            cfg,
            th,
            http,
            opts,
            metrics,
            sink,
        }))
    }

    /// Runs until `shutdown`: keeps one task per polled camera, started and
    /// stopped as cameras are adopted or removed. Ids on `wake` are
    /// re-checked fully at once (WS-Discovery Hello/Bye, "probe now").
    pub async fn run(
        self: Arc<Self>,
        shutdown: CancellationToken,
        mut wake: mpsc::Receiver<String>,
    ) {
        let mut tasks: HashMap<String, (Arc<Notify>, tokio::task::JoinHandle<()>)> = HashMap::new();
        let saved: HashMap<String, Health> = self
            .store
            .all_health()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let mut saved = saved;
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        let prune_every = Duration::from_secs(3600);
        let mut last_prune = Instant::now() - prune_every;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
                id = wake.recv() => {
                    if let Some(id) = id && let Some((n, _)) = tasks.get(&id) {
                        n.notify_one();
                    }
                    continue;
                }
            }
            let devices = match self.store.devices(Some(DeviceState::Adopted)) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "listing cameras for health failed");
                    continue;
                }
            };
            let wanted: Vec<String> = devices
                .iter()
                .filter(|d| d.inventory.is_some())
                .map(|d| d.id.clone())
                .collect();
            tasks.retain(|id, (_, h)| {
                let keep = wanted.contains(id) && !h.is_finished();
                if !keep {
                    h.abort();
                    self.metrics.forget(id);
                }
                keep
            });
            for id in wanted {
                if tasks.contains_key(&id) {
                    continue;
                }
                let notify = Arc::new(Notify::new());
                let health = saved
                    .remove(&id)
                    .unwrap_or_else(|| Health::new(OffsetDateTime::now_utc()));
                let me = self.clone();
                let sd = shutdown.clone();
                let n2 = notify.clone();
                let id2 = id.clone();
                let span = tracing::info_span!("camera", device = %id);
                let h = tokio::spawn(tracing::Instrument::instrument(
                    async move { me.camera(id2, health, n2, sd).await },
                    span,
                ));
                tasks.insert(id, (notify, h));
            }
            if last_prune.elapsed() >= prune_every {
                last_prune = Instant::now();
                match self.store.prune_health(self.cfg.history_days) {
                    Ok(n) if n > 0 => tracing::info!(rows = n, "pruned health history"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "pruning health history failed"),
                }
            }
        }
        for (_, (_, h)) in tasks {
            h.abort();
        }
    }

    fn jitter(d: Duration) -> Duration {
        let ms = d.as_millis().max(1) as u64;
        Duration::from_millis(rand::thread_rng().gen_range(0..ms))
    }

    async fn camera(
        self: Arc<Self>,
        id: String,
        mut health: Health,
        wake: Arc<Notify>,
        shutdown: CancellationToken,
    ) {
        let village = self
            .store
            .device(&id)
            .ok()
            .flatten()
            .and_then(|d| d.village);
        let (check_every, describe_every, sample_every) = self.cfg.intervals(village.as_deref());
        let start = Instant::now();
        let mut next_check = start + Self::jitter(check_every);
        let mut next_describe = next_check;
        // Samples are spread over the whole interval: a thousand cameras must
        // not all want a PLAY slot in the first minutes.
        let mut next_sample = start + Self::jitter(sample_every);
        let mut auth_backoff = AuthBackoff::new(device_drivers::backoff::BackoffPolicy {
            initial: self.cfg.auth_backoff_secs,
            ..Default::default()
        });
        loop {
            let forced = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep_until(next_check) => false,
                _ = wake.notified() => true,
            };
            let Some(t) = target(&self.store, &id, self.cfg.sample_sub_stream) else {
                // No longer polled; the supervisor will stop this task.
                next_check = Instant::now() + check_every;
                continue;
            };
            let now = Instant::now();
            let describe_due = forced || now >= next_describe;
            let sample_due = forced || now >= next_sample;
            let mut due = Due {
                describe: describe_due,
                sample: sample_due,
                sample_deferred: false,
            };
            let tr = self
                .cycle(&t, &mut health, &mut due, &mut auth_backoff, &shutdown)
                .await;
            let sample_due = sample_due && !due.sample_deferred;
            if shutdown.is_cancelled() {
                return;
            }
            if describe_due {
                next_describe = Instant::now() + describe_every;
            }
            if sample_due {
                // After a sample without frames, look again once the stall
                // period has passed, so a frozen stream is named within
                // about `stall_secs`, not a whole sample interval later.
                let frozen = t.sample_uri.is_some() && health.last_sample.is_none();
                let again = if frozen {
                    sample_every.min(self.cfg.stall_secs)
                } else {
                    sample_every
                };
                next_sample = Instant::now() + again;
            }
            next_check = Instant::now() + check_every;
            let village = t
                .device
                .village
                .clone()
                .unwrap_or_else(|| "unassigned".into());
            self.metrics
                .set_verdict(&id, &village, health.verdict.label(), health.rung.as_str());
            if let Err(e) = self.store.save_health(&id, &health) {
                tracing::warn!(error = %e, "saving health failed");
            }
            for t2 in &tr {
                if t2.from == t2.to {
                    tracing::debug!(
                        from = t2.rung_from.as_str(),
                        to = t2.rung_to.as_str(),
                        "camera rung changed"
                    );
                } else {
                    tracing::info!(from = %t2.from, to = %t2.to, rung = t2.rung_to.as_str(), "camera verdict changed");
                }
                self.metrics
                    .transitions
                    .get_or_create(&crate::base::metrics::ToLabel {
                        to: t2.to.label().into(),
                    })
                    .inc();
                if let Err(e) = self.store.record_transition(&id, t2) {
                    tracing::warn!(error = %e, "recording transition failed");
                }
                self.sink.transition(&t.device, t2, &health);
            }
            if (describe_due || sample_due || !tr.is_empty())
                && let Err(e) = self.store.record_history(&id, &health)
            {
                tracing::warn!(error = %e, "recording history failed");
            }
            self.sink.state(&t.device, &health);
        }
    }

    /// One polling cycle; returns the transition it caused, if any: the
    /// observations of one cycle are coalesced into a single change from the
    /// state before the cycle to the state after it.
    async fn cycle(
        &self,
        t: &Target,
        health: &mut Health,
        due: &mut Due,
        auth_backoff: &mut AuthBackoff,
        shutdown: &CancellationToken,
    ) -> Vec<Transition> {
        let (verdict, rung) = (health.verdict.clone(), health.rung);
        self.observe_cycle(t, health, due, auth_backoff, shutdown)
            .await;
        if health.verdict == verdict && health.rung == rung {
            return Vec::new();
        }
        vec![Transition {
            from: verdict,
            to: health.verdict.clone(),
            rung_from: rung,
            rung_to: health.rung,
            at: OffsetDateTime::now_utc(),
        }]
    }

    async fn observe_cycle(
        &self,
        t: &Target,
        health: &mut Health,
        due: &mut Due,
        auth_backoff: &mut AuthBackoff,
        shutdown: &CancellationToken,
    ) {
        let (describe_due, sample_due) = (due.describe, due.sample);
        // Transitions are computed once per cycle by `cycle`.
        let observe = |h: &mut Health, o: Observation| {
            let _ = h.observe(o, OffsetDateTime::now_utc(), &self.th);
        };
        let client =
            match OnvifClient::with_http(self.http.clone(), &t.xaddr, t.creds.clone(), self.opts) {
                Ok(c) => c,
                Err(e) => {
                    observe(
                        health,
                        Observation::Check(CheckResult::TcpOnly {
                            kind: e.kind_label().into(),
                            detail: e.to_string(),
                        }),
                    );
                    return;
                }
            };
        // Cheap check.
        let check = {
            let Ok(_permit) = self.checks.acquire().await else {
                return;
            };
            let started = Instant::now();
            let r = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = client.measure_clock() => r,
            };
            self.metrics
                .check_seconds
                .observe(started.elapsed().as_secs_f64());
            r
        };
        let reachable = match check {
            Ok(reading) => {
                Metrics::count(&self.metrics.checks, "ok");
                observe(
                    health,
                    Observation::Check(CheckResult::OnvifUp {
                        clock_offset_ms: reading.offset_ms,
                    }),
                );
                true
            }
            Err(e) => {
                Metrics::count(&self.metrics.checks, e.kind_label());
                let auth_only = matches!(e.kind, OnvifErrorKind::AuthRejected);
                // A camera that wants auth even for its clock is still up.
                if auth_only {
                    observe(
                        health,
                        Observation::Check(CheckResult::OnvifUp {
                            clock_offset_ms: health.clock_offset_ms.unwrap_or(0),
                        }),
                    );
                } else {
                    observe(
                        health,
                        Observation::Check(check_result(&e.kind, e.to_string())),
                    );
                }
                auth_only
            }
        };
        if !reachable {
            return;
        }
        if describe_due {
            // Authenticated call, unless backing off after rejected logins.
            if t.creds.is_some() && auth_backoff.allowed(Instant::now()).is_ok() {
                let r = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = client.device_information() => r,
                };
                match r {
                    Ok(_) => {
                        auth_backoff.on_success();
                        observe(health, Observation::Auth { ok: true });
                    }
                    Err(e) if e.is_auth() => {
                        let wait = auth_backoff.on_auth_failure(Instant::now());
                        tracing::warn!(error = %e, retry_in_s = wait.as_secs(), "credentials rejected; backing off");
                        observe(health, Observation::Auth { ok: false });
                    }
                    Err(e) => tracing::debug!(error = %e, "authenticated check failed"),
                }
            }
            if let Some(uri) = &t.describe_uri {
                let opts = RtspOptions {
                    timeout: self.cfg.call_timeout_ms,
                    ..RtspOptions::default()
                };
                let r = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = rtsp_probe::describe(uri, t.creds.as_ref(), &opts) => r,
                };
                match r {
                    Ok(_) => {
                        Metrics::count(&self.metrics.describes, "ok");
                        observe(health, Observation::Stream(Ok(())));
                    }
                    Err(e) => {
                        Metrics::count(&self.metrics.describes, e.kind_label());
                        tracing::debug!(error = %e, "DESCRIBE failed");
                        let f = if matches!(e.kind, RtspErrorKind::AuthRejected) {
                            StreamFailure::AuthRejected
                        } else {
                            StreamFailure::Unavailable
                        };
                        observe(health, Observation::Stream(Err(f)));
                    }
                }
            }
            let snap_ok = match &t.snapshot_uri {
                Some(uri) => {
                    let r = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        r = device_drivers::onvif_client::fetch_snapshot(&self.http, uri, t.creds.as_ref(), self.cfg.call_timeout_ms) => r,
                    };
                    if let Err(e) = &r {
                        tracing::debug!(error = %e, "snapshot failed");
                    }
                    r.is_ok()
                }
                None => false,
            };
            observe(health, Observation::Snapshot { ok: snap_ok });
        }
        if sample_due && let Some(uri) = &t.sample_uri {
            // Never wait for a sample slot: that would hold back this
            // camera's cheap checks too. Without a slot the sample moves to
            // the next cycle.
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
                r = rtsp_probe::sample(uri, t.creds.as_ref(), &opts) => r,
            };
            match r {
                Ok(s) => {
                    Metrics::count(&self.metrics.samples, "ok");
                    let expected_pkts = s.frames.max(1) as f64;
                    let sample = StreamSample {
                        frames: s.frames,
                        fps: f64::from(s.measured_fps.unwrap_or(0.0)),
                        bitrate_kbps: f64::from(s.bitrate_kbps),
                        loss_pct: 100.0 * s.rtp_loss_packets as f64
                            / (expected_pkts + s.rtp_loss_packets as f64),
                        time_to_first_frame_ms: Some(s.time_to_first_frame_ms),
                        codec: Some(s.codec.clone()),
                    };
                    observe(
                        health,
                        Observation::Sample {
                            sample: Some(sample),
                            expected: t.expected.clone(),
                        },
                    );
                }
                Err(e) => {
                    Metrics::count(&self.metrics.samples, e.kind_label());
                    tracing::debug!(error = %e, "stream sample failed");
                    match e.kind {
                        RtspErrorKind::NoFrames => observe(
                            health,
                            Observation::Sample {
                                sample: None,
                                expected: t.expected.clone(),
                            },
                        ),
                        RtspErrorKind::AuthRejected => observe(
                            health,
                            Observation::Stream(Err(StreamFailure::AuthRejected)),
                        ),
                        _ => observe(health, Observation::Stream(Err(StreamFailure::Unavailable))),
                    }
                }
            }
        }
    }
}
