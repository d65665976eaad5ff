//! Automatic camera clock sync (`[health] clock_sync = "set" | "ntp"`): the
//! poller's clock check hands every fresh offset to [`AutoSync::consider`];
//! a camera more than `clock_sync_after_secs` off the reference (our clock,
//! or a GB/T 28181 platform's with `[gb28181] time_source`) gets its clock
//! set in a task of its own, so the camera's checks never wait for it.
//!
//! Rules: at most [`SLOTS`] syncs at once; at most one attempt per camera
//! per `clock_sync_min_interval_secs`, whether it worked or was refused (a
//! camera that refuses SetSystemDateAndTime is not asked every check); a
//! camera whose login is being refused is not tried (that would add to the
//! refusals that lock accounts). Each attempt is counted
//! (`tgw_camera_clock_syncs_total{mode,result}`) and audited
//! (`camera.sync_time.auto`, actor `system`, source `health.clock_sync`, the
//! offsets before and after or the camera's refusal; never the login); a
//! failure is logged as a warning once per camera per hour. "set" sends
//! the reference time: the time the offsets were measured against, so a
//! synced camera reads 0 where the poller looks. Each attempt's start is
//! kept in the store (component `clock_sync`) and the windows are seeded
//! from it at start-up, so a restart does not bring a refused camera an
//! attempt before its window ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use device_drivers::onvif_client::{Credentials, OnvifError, OnvifErrorKind};
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::base::clock::Clock;
use crate::base::metrics::{ClockSyncLabels, Metrics};
use crate::cameras::clock_sync::{SyncMode, TimeReference};
use crate::cameras::device::CameraIo;
use crate::config::audit::AuditRetention;
use crate::config::{ClockSync, HealthSection};
use crate::store::{NewAudit, Store};

/// Clock syncs running at once across cameras.
pub const SLOTS: usize = 4;

/// How often one camera's failed syncs are logged as warnings.
pub const LOG_EVERY: Duration = Duration::from_secs(3600);

/// The audit action of an automatic sync.
pub const ACTION: &str = "camera.sync_time.auto";

/// One camera's attempts.
struct Attempts {
    /// When its window allows the next attempt (the last one's start +
    /// `clock_sync_min_interval_secs`).
    next: Instant,
    /// An attempt is running (queued for a slot or under way).
    running: bool,
    /// When a failure was last logged as a warning.
    warned: Option<Instant>,
}

/// What one attempt came to.
struct Outcome {
    /// `ok`, `still_drifting`, `refused`, `auth`, `unreachable`, `error`.
    result: &'static str,
    /// Camera − reference, ms, measured just before setting.
    before_ms: Option<i64>,
    /// Camera − reference, ms, measured after.
    after_ms: Option<i64>,
    /// Who the reference is (`None`: our clock).
    reference: Option<String>,
    /// The camera's refusal or the error (no login in it).
    error: Option<String>,
}

/// The automatic clock sync of the poller's cameras.
pub struct AutoSync {
    mode: SyncMode,
    label: &'static str,
    after_ms: i64,
    every: Duration,
    keep: AuditRetention,
    io: Arc<dyn CameraIo>,
    store: Store,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    slots: Arc<Semaphore>,
    cams: Mutex<HashMap<String, Attempts>>,
}

/// What the poller knows about a camera when it asks for a sync.
pub(super) struct Ask<'a> {
    /// Device id.
    pub(super) id: &'a str,
    /// ONVIF device service.
    pub(super) xaddr: &'a str,
    /// Its login.
    pub(super) creds: Option<&'a Credentials>,
    /// Camera − reference, ms, as just measured.
    pub(super) offset_ms: i64,
    /// Its login is being refused (verdict `credentials-rejected`).
    pub(super) login_refused: bool,
}

impl AutoSync {
    /// The sync `cfg` asks for (`None` when `clock_sync = "off"`), with the
    /// township's zone `tz` (POSIX) and the audit log's retention.
    pub fn new(
        cfg: &HealthSection,
        tz: String,
        keep: AuditRetention,
        io: Arc<dyn CameraIo>,
        store: Store,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
    ) -> Option<AutoSync> {
        let mode = match (cfg.clock_sync, &cfg.clock_sync_ntp_server) {
            (ClockSync::Off, _) => return None,
            (ClockSync::Set, _) => SyncMode::Manual { tz },
            (ClockSync::Ntp, Some(server)) => SyncMode::Ntp {
                server: server.clone(),
                tz,
            },
            // Refused by the configuration's validation.
            (ClockSync::Ntp, None) => return None,
        };
        let every = cfg.clock_sync_min_interval_secs;
        let cams = Mutex::new(windows(&store, clock.now_ms(), every));
        Some(AutoSync {
            mode,
            label: cfg.clock_sync.as_str(),
            after_ms: i64::try_from(cfg.clock_sync_after().as_millis()).unwrap_or(i64::MAX),
            every,
            keep,
            io,
            store,
            metrics,
            clock,
            slots: Arc::new(Semaphore::new(SLOTS)),
            cams,
        })
    }

    /// A fresh clock check of a camera: starts a sync in a task of its own
    /// when the camera is beyond the threshold and its window allows one.
    /// Never waits.
    pub(super) fn consider(
        self: &Arc<Self>,
        ask: Ask<'_>,
        reference: Option<Arc<TimeReference>>,
        shutdown: &CancellationToken,
    ) {
        if ask.offset_ms.unsigned_abs() <= self.after_ms.unsigned_abs() {
            return;
        }
        if ask.login_refused {
            tracing::debug!("clock beyond the sync threshold, but the login is refused: not set");
            return;
        }
        let now = Instant::now();
        {
            let mut cams = self.cams.lock().unwrap_or_else(|p| p.into_inner());
            match cams.get_mut(ask.id) {
                Some(a) if a.running || now < a.next => return,
                Some(a) => {
                    a.next = now + self.every;
                    a.running = true;
                }
                None => {
                    cams.insert(
                        ask.id.to_string(),
                        Attempts {
                            next: now + self.every,
                            running: true,
                            warned: None,
                        },
                    );
                }
            }
        }
        let me = self.clone();
        let id = ask.id.to_string();
        let xaddr = ask.xaddr.to_string();
        let creds = ask.creds.cloned();
        let measured = ask.offset_ms;
        let sd = shutdown.clone();
        let span = tracing::info_span!("clock_sync", device = %id);
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                // Kept before the attempt, so a crash mid-attempt counts.
                if let Err(e) = me.store.record_clock_sync_attempt(&id, me.clock.now_ms()) {
                    tracing::warn!(error = %e, "clock sync attempt not recorded: a restart may try again early");
                }
                let o = tokio::select! {
                    _ = sd.cancelled() => return,
                    o = me.attempt(&xaddr, creds, reference.as_deref()) => o,
                };
                me.finish(&id, measured, &o);
            },
            span,
        ));
    }

    /// One attempt under a slot: measure (the login's timestamp needs the
    /// camera's time), set, measure again.
    async fn attempt(
        &self,
        xaddr: &str,
        creds: Option<Credentials>,
        reference: Option<&TimeReference>,
    ) -> Outcome {
        let Ok(_slot) = self.slots.acquire().await else {
            return Outcome {
                result: "error",
                before_ms: None,
                after_ms: None,
                reference: None,
                error: Some("clock sync slots closed".into()),
            };
        };
        let reading = reference.and_then(TimeReference::get);
        let ref_ms = reading.as_ref().map_or(0, |r| r.0);
        let mut o = Outcome {
            result: "ok",
            before_ms: None,
            after_ms: None,
            reference: reading.map(|r| r.1),
            error: None,
        };
        let session = match self.io.onvif(xaddr, creds) {
            Ok(s) => s,
            Err(e) => return with_error(o, &e),
        };
        match session.measure_clock().await {
            Ok(r) => o.before_ms = Some(r.offset_ms - ref_ms),
            Err(e) => return with_error(o, &e),
        }
        let now = self.clock.now_utc() + time::Duration::milliseconds(ref_ms);
        if let Err(e) = session.set_clock(&self.mode.setting(now)).await {
            return with_error(o, &e);
        }
        match session.measure_clock().await {
            Ok(r) => {
                let after = r.offset_ms - ref_ms;
                o.after_ms = Some(after);
                if after.unsigned_abs() > self.after_ms.unsigned_abs() {
                    o.result = "still_drifting";
                }
                o
            }
            Err(e) => with_error(o, &e),
        }
    }

    /// Counts, audits and logs an attempt; the camera's window runs from
    /// its start.
    fn finish(&self, id: &str, measured_ms: i64, o: &Outcome) {
        let warn = {
            let mut cams = self.cams.lock().unwrap_or_else(|p| p.into_inner());
            cams.get_mut(id).is_some_and(|a| {
                a.running = false;
                let due = o.result != "ok" && a.warned.is_none_or(|w| w.elapsed() >= LOG_EVERY);
                if due {
                    a.warned = Some(Instant::now());
                }
                due
            })
        };
        self.metrics
            .clock_syncs
            .get_or_create(&ClockSyncLabels {
                mode: self.label,
                result: o.result,
            })
            .inc();
        let after = json!({
            "mode": self.label,
            "measured_offset_ms": measured_ms,
            "offset_before_ms": o.before_ms,
            "offset_after_ms": o.after_ms,
            "threshold_ms": self.after_ms,
            "reference": o.reference,
            "error": o.error,
        });
        let entry = NewAudit {
            actor: "system",
            source: "health.clock_sync",
            action: ACTION,
            target: Some(id),
            before: Some(json!({ "offset_ms": measured_ms })),
            after: Some(after),
            outcome: o.result,
        };
        if let Err(e) = self.store.audit(entry, self.keep) {
            tracing::warn!(error = %e, "audit entry of a clock sync not written");
        }
        let retry_in_s = self.every.as_secs();
        match (o.result, &o.error) {
            ("ok", _) => tracing::info!(
                mode = self.label,
                before_ms = o.before_ms,
                after_ms = o.after_ms,
                "camera clock set automatically"
            ),
            (result, error) if warn => tracing::warn!(
                mode = self.label,
                result,
                error = error.as_deref().unwrap_or_default(),
                after_ms = o.after_ms,
                retry_in_s,
                "automatic camera clock sync failed"
            ),
            (result, error) => tracing::debug!(
                mode = self.label,
                result,
                error = error.as_deref().unwrap_or_default(),
                retry_in_s,
                "automatic camera clock sync failed again"
            ),
        }
    }
}

/// The windows still open at start-up: each camera whose last attempt (kept
/// in the store) started less than `every` before `now_ms` may be tried
/// again only when `every` has passed since. An attempt stamped in the
/// future (our clock was set back) waits a whole window.
fn windows(store: &Store, now_ms: i64, every: Duration) -> HashMap<String, Attempts> {
    let rows = match store.clock_sync_attempts() {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "past clock sync attempts not read: drifting cameras are tried at once");
            return HashMap::new();
        }
    };
    let now = Instant::now();
    rows.into_iter()
        .filter_map(|(id, at_ms)| {
            let since = Duration::from_millis(u64::try_from(now_ms - at_ms).unwrap_or(0));
            let left = every.checked_sub(since).filter(|d| !d.is_zero())?;
            Some((
                id,
                Attempts {
                    next: now + left,
                    running: false,
                    warned: None,
                },
            ))
        })
        .collect()
}

/// The bounded result label of a failed call.
fn result_of(e: &OnvifError) -> &'static str {
    if e.is_auth() {
        return "auth";
    }
    match e.kind {
        OnvifErrorKind::Fault(_) => "refused",
        OnvifErrorKind::Timeout | OnvifErrorKind::Connect(_) => "unreachable",
        _ => "error",
    }
}

fn with_error(mut o: Outcome, e: &OnvifError) -> Outcome {
    o.result = result_of(e);
    o.error = Some(e.to_string());
    o
}
