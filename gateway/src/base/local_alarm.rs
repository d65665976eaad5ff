//! The `local_limit` alarm: raised on the first call that failed on the
//! gateway's side ([`super::local_errors`]: out of file descriptors,
//! socket buffers, memory, local ports), naming the errno and how many
//! failed; cleared once [`QUIET`] has passed without one.
//!
//! [`AlarmRule`] is the pure raise/clear rule (time passed in);
//! [`LocalErrors`](super::local_errors::LocalErrors) holds one and feeds it
//! every local error. The alarm's state for `/metrics` (`tgw_local_limit`)
//! and the API (`GET /api/v1/overview`, `gateway_alarms`) is read from the
//! rule at that moment ([`AlarmRule::active`]); [`run`] is the daemon's
//! task that hands each raise and clear to a callback (the MQTT `alarm`
//! topic: `base` does not know the uplink), the clear exactly when the
//! quiet minute is over.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use device_drivers::local_error::LocalResource;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;

/// The alarm is cleared after this long without a local error.
pub const QUIET: Duration = Duration::from_secs(60);

/// Changes kept for [`run`] to publish; older ones are dropped when no
/// task takes them (commands without the daemon's tasks, tests).
const MAX_PENDING: usize = 16;

/// One run of local errors, from the first to a quiet minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Episode {
    /// What the latest error ran out of.
    pub what: LocalResource,
    /// Which loop met the latest (`poller`, `events`, `inventory`,
    /// `login-test`, `horn`).
    pub task: &'static str,
    /// Errors in this run.
    pub count: u64,
    /// The first error.
    pub since: Instant,
    /// The latest error.
    pub last: Instant,
}

impl Episode {
    /// When this run is over, unless another error comes first.
    pub fn clear_at(&self) -> Instant {
        self.last + QUIET
    }
}

/// A raise or a clear of the alarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlarmChange {
    /// The first local error after a quiet minute (or ever).
    Raised(Episode),
    /// A minute without one; the run as it ended.
    Cleared(Episode),
}

impl AlarmChange {
    /// The `alarm` message body (`docs/mqtt.md`): `local_limit`, raised
    /// with severity `major`, errno and count, or cleared with the run's
    /// count and length.
    pub fn alarm_body(&self) -> Value {
        match self {
            AlarmChange::Raised(e) => json!({
                "alarm": "local_limit",
                "state": "raised",
                "severity": "major",
                "errno": e.what.errno(),
                "what": e.what.what(),
                "task": e.task,
                "count": e.count,
            }),
            AlarmChange::Cleared(e) => json!({
                "alarm": "local_limit",
                "state": "cleared",
                "errno": e.what.errno(),
                "what": e.what.what(),
                "task": e.task,
                "count": e.count,
                "duration_secs": e.last.duration_since(e.since).as_secs(),
            }),
        }
    }
}

/// The raise/clear rule. Pure: every call is given the time.
#[derive(Debug, Default)]
pub struct AlarmRule {
    episode: Option<Episode>,
    pending: VecDeque<AlarmChange>,
}

impl AlarmRule {
    /// A local error of `task` for want of `what` at `now`. Whether it
    /// raised the alarm (the first after a quiet minute); a run whose
    /// minute had passed unnoticed is cleared first.
    pub fn error(&mut self, what: LocalResource, task: &'static str, now: Instant) -> bool {
        self.poll(now);
        if let Some(e) = &mut self.episode {
            e.what = what;
            e.task = task;
            e.count += 1;
            e.last = now;
            return false;
        }
        let e = Episode {
            what,
            task,
            count: 1,
            since: now,
            last: now,
        };
        self.episode = Some(e.clone());
        self.push(AlarmChange::Raised(e));
        true
    }

    /// Clears the alarm when its quiet minute is over at `now`; whether it
    /// did.
    pub fn poll(&mut self, now: Instant) -> bool {
        match self.episode.take() {
            Some(e) if now >= e.clear_at() => {
                self.push(AlarmChange::Cleared(e));
                true
            }
            e => {
                self.episode = e;
                false
            }
        }
    }

    /// The run in progress at `now`, if any (read-only: a run past its
    /// quiet minute is not shown even before [`AlarmRule::poll`]).
    pub fn active(&self, now: Instant) -> Option<&Episode> {
        self.episode.as_ref().filter(|e| now < e.clear_at())
    }

    /// When the alarm is to be cleared, while it is raised.
    pub fn clear_at(&self) -> Option<Instant> {
        self.episode.as_ref().map(Episode::clear_at)
    }

    /// The raises and clears not yet taken, oldest first.
    pub fn take_changes(&mut self) -> Vec<AlarmChange> {
        self.pending.drain(..).collect()
    }

    fn push(&mut self, c: AlarmChange) {
        if self.pending.len() == MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back(c);
    }
}

/// Hands every raise and clear of the `local_limit` alarm to `on_change`
/// (the daemon publishes it) until `shutdown`: a raise as soon as it
/// happens, a clear when the quiet minute is over.
pub async fn run(
    metrics: Arc<Metrics>,
    on_change: impl Fn(&AlarmChange) + Send,
    shutdown: CancellationToken,
) {
    let errors = &metrics.local_errors;
    loop {
        let clear_at = {
            let changes = errors.with_rule(|r| {
                r.poll(Instant::now());
                r.take_changes()
            });
            for c in &changes {
                match c {
                    AlarmChange::Raised(e) => tracing::warn!(
                        errno = e.what.errno(),
                        task = e.task,
                        "local_limit alarm raised: {}: the gateway's own limit",
                        e.what
                    ),
                    AlarmChange::Cleared(e) => tracing::info!(
                        errno = e.what.errno(),
                        count = e.count,
                        "local_limit alarm cleared: a minute without local errors"
                    ),
                }
                on_change(c);
            }
            errors.with_rule(|r| r.clear_at())
        };
        let wait = async {
            match clear_at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = errors.raised() => {}
            _ = wait => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    const SEC: Duration = Duration::from_secs(1);

    /// Raised on the first error, held while errors keep coming less than
    /// a minute apart (however long the run), cleared a quiet minute after
    /// the last; the next error raises it again.
    #[tokio::test(start_paused = true)]
    async fn raised_on_the_first_held_while_they_come_cleared_after_a_quiet_minute() {
        let mut r = AlarmRule::default();
        let t0 = Instant::now();
        assert!(r.active(t0).is_none());
        assert!(r.error(LocalResource::Emfile, "poller", t0), "raised");
        for s in 1..=10u64 {
            // One every 50 s: ten minutes of trouble, one alarm.
            let now = t0 + 50 * SEC * s as u32;
            assert!(!r.error(LocalResource::Emfile, "poller", now));
            assert!(!r.poll(now));
        }
        let last = t0 + 500 * SEC;
        r.error(LocalResource::Enobufs, "events", last + 10 * SEC);
        let e = r.active(last + 69 * SEC).expect("still raised");
        assert_eq!(
            (e.count, e.what, e.task),
            (12, LocalResource::Enobufs, "events")
        );
        assert_eq!(e.since, t0);
        assert!(!r.poll(last + 69 * SEC), "cleared within the minute");
        assert!(
            r.active(last + 70 * SEC).is_none(),
            "shown after the minute"
        );
        assert!(r.poll(last + 70 * SEC), "not cleared after a quiet minute");
        assert!(r.clear_at().is_none());
        let changes = r.take_changes();
        assert_eq!(changes.len(), 2, "{changes:?}");
        let raise = changes[0].alarm_body();
        assert_eq!(raise["alarm"], "local_limit");
        assert_eq!(raise["state"], "raised");
        assert_eq!(raise["errno"], "EMFILE");
        assert_eq!(raise["count"], 1);
        assert_eq!(raise["severity"], "major");
        let clear = changes[1].alarm_body();
        assert_eq!(clear["state"], "cleared");
        assert_eq!(clear["count"], 12);
        assert_eq!(clear["errno"], "ENOBUFS");
        assert_eq!(clear["duration_secs"], 510);
        assert!(clear.get("severity").is_none());

        // Again: a new run, counted from one.
        assert!(r.error(LocalResource::Emfile, "inventory", last + 100 * SEC));
        assert_eq!(r.active(last + 100 * SEC).expect("raised").count, 1);
    }

    /// Nobody polled at the end of the quiet minute: the next error still
    /// clears the old run before it raises a new one.
    #[tokio::test(start_paused = true)]
    async fn a_run_over_unnoticed_is_cleared_before_the_next_raise() {
        let mut r = AlarmRule::default();
        let t0 = Instant::now();
        r.error(LocalResource::Emfile, "poller", t0);
        assert!(r.error(LocalResource::Emfile, "poller", t0 + 61 * SEC));
        let kinds: Vec<_> = r
            .take_changes()
            .iter()
            .map(|c| c.alarm_body()["state"].clone())
            .collect();
        assert_eq!(kinds, ["raised", "cleared", "raised"]);
    }

    /// The daemon's task: the raise goes out at once, nothing while errors
    /// keep coming, the clear exactly a quiet minute after the last.
    #[tokio::test(start_paused = true)]
    async fn the_task_publishes_the_raise_at_once_and_the_clear_a_quiet_minute_later() {
        let metrics = Arc::new(Metrics::new());
        let seen = Arc::new(Mutex::new(Vec::<(Duration, Value)>::new()));
        let s2 = seen.clone();
        let t0 = Instant::now();
        let sd = CancellationToken::new();
        let task = tokio::spawn(run(
            metrics.clone(),
            move |c: &AlarmChange| {
                s2.lock()
                    .unwrap()
                    .push((Instant::now() - t0, c.alarm_body()))
            },
            sd.clone(),
        ));
        tokio::time::sleep(5 * SEC).await;
        assert!(seen.lock().unwrap().is_empty(), "raised without an error");
        let raised = |m: &Metrics| m.encode().lines().any(|l| l == "tgw_local_limit 1");
        assert!(!raised(&metrics));

        metrics.local_errors.report(LocalResource::Emfile, "poller");
        tokio::time::sleep(SEC / 10).await;
        assert_eq!(
            seen.lock().unwrap().len(),
            1,
            "the raise is not out at once"
        );
        assert!(raised(&metrics));
        // Errors every 25 s for two and a half minutes: still the one alarm.
        for _ in 0..6 {
            tokio::time::sleep(25 * SEC).await;
            metrics.local_errors.report(LocalResource::Emfile, "poller");
        }
        let last = Instant::now() - t0;
        tokio::time::sleep(59 * SEC).await;
        assert_eq!(seen.lock().unwrap().len(), 1, "cleared too soon");
        assert!(raised(&metrics));
        tokio::time::sleep(2 * SEC).await;
        assert!(!raised(&metrics), "the gauge still says raised");
        sd.cancel();
        task.await.unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[0].0, 5 * SEC, "raise at once");
        assert_eq!(seen[0].1["state"], "raised");
        assert_eq!(seen[0].1["errno"], "EMFILE");
        assert_eq!(
            seen[1].0,
            last + QUIET,
            "clear a quiet minute after the last"
        );
        assert_eq!(seen[1].1["state"], "cleared");
        assert_eq!(seen[1].1["count"], 7);
    }
}
