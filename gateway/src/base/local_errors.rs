//! The gateway's own exhaustion, reported as such: a camera call (or a
//! horn's socket in a broadcast) that failed because the gateway ran out of
//! a local resource (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`,
//! `EADDRNOTAVAIL`; [`device_drivers::local_error`]) says nothing about the
//! device. The poller and the event loops skip it (no observation, no
//! verdict change), a broadcast reports the horn `failed` with error kind
//! `local`, and each reports it here as well: counted in `tgw_local_errors_total{kind,
//! task}` and logged as a warning at most once per [`LOG_EVERY`], with how
//! many were not logged since (`docs/health.md`, "The gateway's own
//! limits"); and each feeds the `local_limit` alarm's rule
//! ([`super::local_alarm`]), whose state `tgw_local_limit` shows.

use std::sync::Mutex;
use std::time::Duration;

use device_drivers::local_error::LocalResource;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::local_alarm::{AlarmRule, Episode};

/// After a camera call failed on the gateway's side, the same step is
/// tried again after this pause (the event loops' calls, a missing
/// inventory): not a failure of the camera, so no backoff step.
pub const LOCAL_RETRY: Duration = Duration::from_secs(10);

/// The warning is logged at most once per this long.
pub const LOG_EVERY: Duration = Duration::from_secs(60);

/// Labels of `tgw_local_errors_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LocalLabels {
    /// The errno in lower case: `emfile`, `enfile`, `enobufs`, `enomem`,
    /// `eaddrnotavail`.
    pub kind: &'static str,
    /// Which loop met it: `poller`, `events`, `inventory`, `login-test`
    /// or `horn` (a horn of a broadcast).
    pub task: &'static str,
}

/// The counter, the warning's rate limit and the alarm's rule.
pub struct LocalErrors {
    counts: Family<LocalLabels, Counter>,
    /// When the warning was last logged, and how many errors since.
    gate: Mutex<(Option<Instant>, u64)>,
    /// The `local_limit` alarm.
    rule: Mutex<AlarmRule>,
    /// Woken when the alarm is raised (its task publishes it).
    raised: Notify,
    /// `tgw_local_limit`: 1 while the alarm is raised (set at scrape time).
    gauge: Gauge,
}

impl LocalErrors {
    /// Registers `tgw_local_errors_total`.
    pub(super) fn register(r: &mut Registry) -> Self {
        let counts = Family::<LocalLabels, Counter>::default();
        r.register(
            "local_errors",
            "Camera calls and horns that failed on the gateway's side (out of files, buffers, memory, ports): not counted against the device",
            counts.clone(),
        );
        let gauge = Gauge::default();
        r.register(
            "local_limit",
            "1 while the local_limit alarm is raised: a camera call failed on the gateway's side within the last minute",
            gauge.clone(),
        );
        Self {
            counts,
            gate: Mutex::new((None, 0)),
            rule: Mutex::new(AlarmRule::default()),
            raised: Notify::new(),
            gauge,
        }
    }

    /// One call of `in_loop` (`poller`, `events`) failed for want of
    /// `what`: counted, and logged unless a warning went out within
    /// [`LOG_EVERY`]. Whether it was logged.
    pub fn report(&self, what: LocalResource, in_loop: &'static str) -> bool {
        self.counts
            .get_or_create(&LocalLabels {
                kind: what.label(),
                task: in_loop,
            })
            .inc();
        let now = Instant::now();
        if self.with_rule(|r| r.error(what, in_loop, now)) {
            self.raised.notify_one();
        }
        let mut g = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        if g.0.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            g.1 += 1;
            return false;
        }
        let not_logged = std::mem::take(&mut g.1);
        g.0 = Some(now);
        drop(g);
        let so = match in_loop {
            "horn" => "a horn's broadcast failed on the gateway's side, not held against the horn",
            "speaker-test" => {
                "a speaker test failed on the gateway's side, not held against the horn"
            }
            _ => "camera checks skipped, not counted as offline",
        };
        tracing::warn!(
            errno = what.errno(),
            task = in_loop,
            not_logged_since_last = not_logged,
            "{what}: the gateway's own limit; {so}"
        );
        true
    }

    /// The alarm's rule, locked for `f`.
    pub fn with_rule<T>(&self, f: impl FnOnce(&mut AlarmRule) -> T) -> T {
        f(&mut self.rule.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Completes when the alarm was raised since the last time it did.
    pub async fn raised(&self) {
        self.raised.notified().await;
    }

    /// The run of local errors in progress (the raised alarm), if any.
    pub fn active(&self) -> Option<Episode> {
        self.with_rule(|r| r.active(Instant::now()).cloned())
    }

    /// Sets `tgw_local_limit` (at scrape time).
    pub(super) fn refresh(&self) {
        self.gauge.set(i64::from(self.active().is_some()));
    }

    /// How many `kind` errors `in_loop` met (tests).
    pub fn count(&self, kind: LocalResource, in_loop: &'static str) -> u64 {
        self.counts
            .get_or_create(&LocalLabels {
                kind: kind.label(),
                task: in_loop,
            })
            .get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every error is counted; the warning goes out once a minute.
    #[tokio::test(start_paused = true)]
    async fn counted_every_time_logged_once_a_minute() {
        let l = LocalErrors::register(&mut Registry::default());
        assert!(l.report(LocalResource::Emfile, "poller"), "first logged");
        assert!(!l.report(LocalResource::Emfile, "poller"));
        assert!(!l.report(LocalResource::Enobufs, "events"));
        tokio::time::sleep(Duration::from_secs(59)).await;
        assert!(
            !l.report(LocalResource::Emfile, "poller"),
            "within a minute"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(l.report(LocalResource::Emfile, "poller"), "a minute later");
        assert_eq!(l.count(LocalResource::Emfile, "poller"), 4);
        assert_eq!(l.count(LocalResource::Enobufs, "events"), 1);
        assert_eq!(l.count(LocalResource::Emfile, "events"), 0);
    }
}
