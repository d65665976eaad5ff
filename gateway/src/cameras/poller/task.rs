//! One camera's polling loop: when each step is due (first check jittered
//! over the interval, a frozen stream re-sampled after `stall_secs`, a
//! deferred sample moved to the next cycle), when a missing inventory is
//! asked for again (backoff; at once when the camera comes back; after
//! [`LOCAL_RETRY`] and no backoff step when the last ask failed on the
//! gateway's side), and where each cycle's results go (metrics, store,
//! sink). The camera's target is kept in memory and re-read only when
//! signalled.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use device_drivers::backoff::{AuthBackoff, BackoffPolicy};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::checks::Due;
use super::target::{Target, target};
use super::{Poller, Signal};
use crate::base::local_errors::LOCAL_RETRY;
use crate::store::{Device, DeviceState};
use tgw_core::health::{CheckResult, Health, Observation, Transition, Verdict};

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

/// When a missing (or failed) inventory is next asked for.
struct InventoryRetry {
    policy: BackoffPolicy,
    /// Asks that failed in a row (those failed on the gateway's side
    /// taken off again).
    asked: u32,
    next: Instant,
    /// The last ask failed on the gateway's side: the next one is made at
    /// `next` by itself, without waiting for a check cycle.
    after_local: bool,
}

impl InventoryRetry {
    fn due(&self, now: Instant) -> bool {
        now >= self.next
    }

    fn asked(&mut self, now: Instant) {
        self.asked = self.asked.saturating_add(1);
        self.next = now + self.policy.delay(self.asked);
        self.after_local = false;
    }

    /// The last ask failed on the gateway's side (EMFILE, …): it was no
    /// try of the camera, so it is taken off the count (the backoff does
    /// not grow) and the next ask comes after [`LOCAL_RETRY`]. (An ask
    /// from elsewhere, such as the API, that failed so takes one off too:
    /// at worst one step less of backoff.)
    fn local(&mut self, now: Instant) {
        self.asked = self.asked.saturating_sub(1);
        self.next = now + LOCAL_RETRY;
        self.after_local = true;
    }

    fn reset(&mut self, now: Instant) {
        self.asked = 0;
        self.next = now;
        self.after_local = false;
    }
}

impl Poller {
    pub(super) async fn camera(
        self: Arc<Self>,
        id: String,
        mut health: Health,
        signal: Arc<Signal>,
        shutdown: CancellationToken,
    ) {
        let mut t = self.load(&id, &mut health);
        let intervals = |t: &Option<Target>| {
            let village = t.as_ref().and_then(|t| t.device.village.as_deref());
            self.cfg.intervals(village)
        };
        let (check_every, describe_every, sample_every) = intervals(&t);
        let mut s = Schedule::new(check_every, describe_every, sample_every);
        let auth_policy = BackoffPolicy {
            initial: self.cfg.auth_backoff_secs,
            ..Default::default()
        };
        let mut auth_backoff = AuthBackoff::new(auth_policy);
        let mut inv = InventoryRetry {
            policy: BackoffPolicy {
                initial: self.cfg.auth_backoff_secs.max(check_every),
                ..Default::default()
            },
            asked: 0,
            next: Instant::now(),
            after_local: false,
        };
        // When the previous cycle began.
        let mut last_cycle: Option<Instant> = None;
        loop {
            let forced = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep_until(s.next_check) => false,
                _ = signal.wake.notified() => true,
                _ = tokio::time::sleep_until(inv.next), if inv.after_local => {
                    self.ask_after_local(&id, t.as_ref(), &health, &mut inv);
                    continue;
                }
            };
            if forced && self.local_probes.take(&id) {
                // Woken after an inventory that failed on the gateway's
                // side: nothing about the camera changed, so no check
                // now; the inventory is asked for again after LOCAL_RETRY.
                // (A wake for something else at the same moment waits for
                // the next check: `reload` stays set.)
                inv.local(Instant::now());
                continue;
            }
            let before = (health.verdict.clone(), health.rung);
            if signal.reload.swap(false, Ordering::Relaxed) || forced {
                let old = t.take();
                t = self.load(&id, &mut health);
                (s.check_every, s.describe_every, s.sample_every) = intervals(&t);
                // A new login, or an inventory the login just fetched,
                // deserves a try now, not after the old login's backoff.
                let creds = |t: &Option<Target>| t.as_ref().and_then(|t| t.creds.clone());
                let inventoried = |t: &Option<Target>| {
                    t.as_ref()
                        .is_some_and(|t| t.has_inventory && t.inventory_error.is_none())
                };
                if creds(&old) != creds(&t) || (inventoried(&t) && !inventoried(&old)) {
                    auth_backoff = AuthBackoff::new(auth_policy);
                }
            }
            let Some(tg) = &t else {
                self.no_target(&id, &mut health);
                s.next_check = Instant::now() + s.check_every;
                continue;
            };
            if tg.has_inventory && tg.inventory_error.is_none() {
                inv.reset(Instant::now());
            } else if self.local_probes.take(&id) {
                inv.local(Instant::now());
            }
            let seen_before = health.last_seen.is_some();
            let was_offline = health.verdict == Verdict::Offline;
            let now = Instant::now();
            let describe_due = forced || now >= s.next_describe;
            let sample_due = tg.has_inventory && (forced || now >= s.next_sample);
            let answered =
                !(describe_due || sample_due) && self.answered_since(&id, &health, last_cycle);
            last_cycle = Some(now);
            let mut due = Due {
                describe: describe_due,
                sample: sample_due,
                sample_deferred: false,
                local: None,
                answered,
            };
            let at_start = health.clone();
            if let Some(c) = self.conditions.get() {
                let _ = c.apply(&id, &mut health, self.clock.now_utc(), &self.th);
            }
            let tr = self
                .cycle(
                    tg,
                    before,
                    &mut health,
                    &mut due,
                    &mut auth_backoff,
                    &shutdown,
                )
                .await;
            let sample_due = sample_due && !due.sample_deferred;
            if shutdown.is_cancelled() {
                return;
            }
            if due.local.is_some() {
                // The gateway's own trouble, not the camera's: what was due
                // is tried again next cycle; only what the cycle observed
                // before it (if anything) is recorded, without a history point.
                s.next_check = Instant::now() + s.check_every;
                if !tr.is_empty() || health != at_start {
                    self.record(&id, &tg.device, &health, &tr, false);
                }
                continue;
            }
            let reachable = health.consecutive_failures == 0 && health.last_seen.is_some();
            let came_back = reachable && was_offline && seen_before;
            let missing = !tg.has_inventory || tg.inventory_error.is_some();
            if reachable && (came_back || (missing && inv.due(Instant::now()))) {
                self.ask_inventory(&id, came_back);
                inv.asked(Instant::now());
            }
            if describe_due {
                s.next_describe = Instant::now() + s.describe_every;
            }
            if sample_due {
                // After a sample without frames, look again once the stall
                // period has passed, so a frozen stream is named within
                // about `stall_secs`, not a whole sample interval later.
                let frozen = tg.sample_uri.is_some() && health.last_sample.is_none();
                let again = if frozen {
                    s.sample_every.min(self.cfg.stall_secs)
                } else {
                    s.sample_every
                };
                s.next_sample = Instant::now() + again;
            }
            s.next_check = Instant::now() + s.check_every;
            self.record(&id, &tg.device, &health, &tr, describe_due || sample_due);
        }
    }

    /// Whether an event pull camera `id` answered since its previous cycle
    /// began (`last_cycle`) stands for this cycle's cheap check: only if
    /// that cycle succeeded and the clock offset is known (the caller
    /// checks that nothing else is due).
    fn answered_since(&self, id: &str, health: &Health, last_cycle: Option<Instant>) -> bool {
        health.consecutive_failures == 0
            && health.last_seen.is_some()
            && health.clock_offset_ms.is_some()
            && last_cycle
                .zip(self.conditions.get())
                .is_some_and(|(prev, c)| c.answered.since(id, prev))
    }

    /// Reads camera `id`'s target from the store (on start and on a
    /// change) and applies its inventory state to `health`.
    fn load(&self, id: &str, health: &mut Health) -> Option<Target> {
        let t = target(
            &self.store,
            id,
            self.cfg.sample_sub_stream,
            &self.cfg.camera_access,
        )?;
        let inventory = match (&t.inventory_error, t.has_inventory) {
            (Some(kind), _) => Err(kind.clone()),
            (None, true) => Ok(()),
            // Not asked for yet: nothing to say.
            (None, false) => return Some(t),
        };
        self.observe(health, Observation::Inventory(inventory));
        Some(t)
    }

    /// The retry of an inventory ask that failed on the gateway's side, at
    /// [`LOCAL_RETRY`]: the inventory alone, no check; skipped when the
    /// inventory came meanwhile or the camera stopped answering (the
    /// cycle's own rules take over).
    fn ask_after_local(
        &self,
        id: &str,
        t: Option<&Target>,
        health: &Health,
        inv: &mut InventoryRetry,
    ) {
        inv.after_local = false;
        let missing = t.is_some_and(|t| !t.has_inventory || t.inventory_error.is_some());
        let reachable = health.consecutive_failures == 0 && health.last_seen.is_some();
        if missing && reachable {
            self.ask_inventory(id, false);
            inv.asked(Instant::now());
        }
    }

    /// Asks for camera `id`'s inventory on the probe channel.
    fn ask_inventory(&self, id: &str, came_back: bool) {
        let Some(tx) = &self.probe else {
            return;
        };
        tracing::debug!(came_back, "asking for the inventory");
        if tx.try_send(id.to_string()).is_err() {
            tracing::debug!("probe queue full; the inventory is asked for again later");
        }
    }

    /// A camera that is adopted but has no usable ONVIF address: checked as
    /// unreachable, saying why. Nothing when it is no longer adopted (the
    /// supervisor stops this task).
    fn no_target(&self, id: &str, health: &mut Health) {
        let Ok(Some(d)) = self.store.device(id) else {
            return;
        };
        if d.state != DeviceState::Adopted {
            return;
        }
        let (verdict, rung) = (health.verdict.clone(), health.rung);
        self.observe(
            health,
            Observation::Check(CheckResult::Unreachable {
                kind: "no-xaddr".into(),
                detail: "the camera advertised no usable ONVIF address".into(),
            }),
        );
        let tr: Vec<Transition> = (health.verdict != verdict || health.rung != rung)
            .then(|| Transition {
                from: verdict,
                to: health.verdict.clone(),
                rung_from: rung,
                rung_to: health.rung,
                at: self.clock.now_utc(),
            })
            .into_iter()
            .collect();
        self.record(id, &d, health, &tr, false);
    }

    /// Puts one cycle's results in the metrics, the store and the sink (the
    /// current health through [`super::saves`], transitions at once); a
    /// history point when the cycle described or sampled (`full`) or
    /// changed something, unless the data volume is low on space.
    fn record(&self, id: &str, device: &Device, health: &Health, tr: &[Transition], full: bool) {
        let village = device.village.as_deref().unwrap_or("unassigned");
        self.metrics
            .set_verdict(id, village, health.verdict.label(), health.rung.as_str());
        // Buffered: written with the others' within a second.
        // A change is written before the sinks hear of it (the GB/T 28181
        // catalog rebuilds from the store); steady checks are batched.
        if tr.is_empty() {
            self.saves.save(id, health);
        } else {
            self.saves.save_changed(id, health);
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
            self.sink.transition(device, t2, health);
        }
        // History points are an optional write: skipped while the data
        // volume is low on space (the disk watchdog).
        if (full || !tr.is_empty())
            && self.metrics.optional_write("health_history")
            && let Err(e) = self.store.record_history(id, health)
        {
            tracing::warn!(error = %e, "recording history failed");
        }
        self.sink.state(device, health);
    }
}
