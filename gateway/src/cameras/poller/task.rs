//! One camera's polling loop: when each step is due (first check jittered
//! over the interval, a frozen stream re-sampled after `stall_secs`, a
//! deferred sample moved to the next cycle), and where each cycle's results
//! go (metrics, store, sink).

use std::sync::Arc;
use std::time::Duration;

use device_drivers::backoff::{AuthBackoff, BackoffPolicy};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Poller;
use super::checks::Due;
use super::target::{Target, target};
use tgw_core::health::{Health, Transition};

/// When each step of a camera's cycle is next due.
struct Schedule {
    check_every: Duration,
    describe_every: Duration,
    sample_every: Duration,
    next_check: Instant,
    next_describe: Instant,
    next_sample: Instant,
}

impl Schedule {
    /// First check jittered over the check interval, first sample over the
    /// sample interval.
    fn new(check_every: Duration, describe_every: Duration, sample_every: Duration) -> Self {
        let start = Instant::now();
        let next_check = start + Poller::jitter(check_every);
        Schedule {
            check_every,
            describe_every,
            sample_every,
            next_check,
            next_describe: next_check,
            // Samples are spread over the whole interval: a thousand cameras
            // must not all want a PLAY slot in the first minutes.
            next_sample: start + Poller::jitter(sample_every),
        }
    }
}

impl Poller {
    pub(super) async fn camera(
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
        let mut s = Schedule::new(check_every, describe_every, sample_every);
        let mut auth_backoff = AuthBackoff::new(BackoffPolicy {
            initial: self.cfg.auth_backoff_secs,
            ..Default::default()
        });
        loop {
            let forced = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep_until(s.next_check) => false,
                _ = wake.notified() => true,
            };
            let Some(t) = target(
                &self.store,
                &id,
                self.cfg.sample_sub_stream,
                &self.cfg.camera_access,
            ) else {
                // No longer polled; the supervisor will stop this task.
                s.next_check = Instant::now() + s.check_every;
                continue;
            };
            let now = Instant::now();
            let describe_due = forced || now >= s.next_describe;
            let sample_due = forced || now >= s.next_sample;
            let mut due = Due {
                describe: describe_due,
                sample: sample_due,
                sample_deferred: false,
            };
            if let Some(c) = self.conditions.get() {
                let _ = c.apply(&id, &mut health, self.clock.now_utc(), &self.th);
            }
            let tr = self
                .cycle(&t, &mut health, &mut due, &mut auth_backoff, &shutdown)
                .await;
            let sample_due = sample_due && !due.sample_deferred;
            if shutdown.is_cancelled() {
                return;
            }
            if describe_due {
                s.next_describe = Instant::now() + s.describe_every;
            }
            if sample_due {
                // After a sample without frames, look again once the stall
                // period has passed, so a frozen stream is named within
                // about `stall_secs`, not a whole sample interval later.
                let frozen = t.sample_uri.is_some() && health.last_sample.is_none();
                let again = if frozen {
                    s.sample_every.min(self.cfg.stall_secs)
                } else {
                    s.sample_every
                };
                s.next_sample = Instant::now() + again;
            }
            s.next_check = Instant::now() + s.check_every;
            self.record(&id, &t, &health, &tr, describe_due || sample_due);
        }
    }

    /// Puts one cycle's results in the metrics, the store and the sink; a
    /// history point when the cycle described or sampled (`full`) or
    /// changed something, unless the data volume is low on space.
    fn record(&self, id: &str, t: &Target, health: &Health, tr: &[Transition], full: bool) {
        let village = t
            .device
            .village
            .clone()
            .unwrap_or_else(|| "unassigned".into());
        self.metrics
            .set_verdict(id, &village, health.verdict.label(), health.rung.as_str());
        if let Err(e) = self.store.save_health(id, health) {
            tracing::warn!(error = %e, "saving health failed");
        }
        for t2 in tr {
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
            if let Err(e) = self.store.record_transition(id, t2) {
                tracing::warn!(error = %e, "recording transition failed");
            }
            self.sink.transition(&t.device, t2, health);
        }
        // History points are an optional write: skipped while the data
        // volume is low on space (the disk watchdog).
        if (full || !tr.is_empty())
            && self.metrics.optional_write("health_history")
            && let Err(e) = self.store.record_history(id, health)
        {
            tracing::warn!(error = %e, "recording history failed");
        }
        self.sink.state(&t.device, health);
    }
}
