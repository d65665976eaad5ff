//! ONVIF events: one PullPoint subscription per adopted camera that offers
//! the event service (`docs/events.md`).
//!
//! Each camera has its own task; short calls (clock, create, renew) take a
//! slot of a semaphore (`concurrency`). Pulls go **in turns**: at most
//! `pulls` PullMessages are in flight (each holds an HTTP connection while
//! the camera waits), each waits `pull_timeout` (1 s) on the camera and is
//! cut `task::PULL_GRACE` after that, and a camera's next pull follows at
//! once when one brought messages, else `pull_every` (5 s) after the last
//! began. One slow camera holds one slot for at most 6 s, never another
//! camera's. Worst-case latency of an event that happens between two pulls
//! is the round: `max(pull_every, ceil(cameras / pulls) × pull_timeout)`,
//! about 10.4 s for 667 subscribed cameras with the defaults; one that
//! happens during a pull comes at once (BENCHMARKS.md "Footprint").
//! A subscription is renewed at half the time the camera granted, measured
//! on the camera's own clock; it is rebuilt after the camera forgets it or
//! after repeated failures, and a new subscription's `Initialized` messages
//! carry the state, so nothing is lost across a rebuild. A camera without
//! the event service is marked `no-service` and not asked again until its
//! inventory changes. Events go to an [`EventSink`] (MQTT, the live hub);
//! tamper and video loss also to the camera's health ([`health`]).
//!
//! | module | owns |
//! |---|---|
//! | `mod.rs` | the [`EventIo`] trait, [`CameraEvent`], [`EventSink`], the supervisor |
//! | [`io`] | [`io::RealEventIo`]: the trait over `device_drivers::onvif_client` |
//! | `task` | one camera's loop: subscribe, pull, renew, rebuild, backoff |
//! | [`health`] | tamper / video loss as health reasons while they last |
//! | `live` | the live hub (SSE) as an [`EventSink`] |
//! | `metrics` | `tgw_camera_events_total{kind}`, `tgw_camera_event_subscriptions{state}` |

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use device_drivers::cred_scope::CredentialScope;
use device_drivers::onvif_client::{Credentials, OnvifError};
use device_drivers::onvif_events::{EventKind, Pulled, Renewed, Subscription};
use futures::future::BoxFuture;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::base::clock::Clock;
use crate::cameras::poller::{CHANGE_SETTLE, SAFETY_RESCAN};
use crate::config::CameraAccess;
use crate::store::Store;

#[cfg(test)]
pub(crate) mod fake;
pub mod health;
pub mod io;
mod live;
pub mod metrics;
mod task;
#[cfg(test)]
mod tests;

pub use metrics::EventMetrics;

/// How a camera's event service is reached.
pub trait EventIo: Send + Sync {
    /// A session with the camera at device service `xaddr`; `scope` says
    /// which hosts its login may go to (a subscription address elsewhere is
    /// refused).
    fn session(
        &self,
        xaddr: &str,
        creds: Option<Credentials>,
        scope: CredentialScope,
    ) -> Result<Box<dyn EventSession>, OnvifError>;
}

/// The calls of one camera's event session.
pub trait EventSession: Send + Sync {
    /// Camera clock − ours, in ms (unauthenticated GetSystemDateAndTime).
    fn clock_offset_ms(&self) -> BoxFuture<'_, Result<i64, OnvifError>>;
    /// The event service's address (GetServices), `None` when the camera
    /// has none.
    fn events_url(&self) -> BoxFuture<'_, Result<Option<String>, OnvifError>>;
    /// CreatePullPointSubscription for `termination`.
    fn create<'a>(
        &'a self,
        url: &'a str,
        termination: Duration,
    ) -> BoxFuture<'a, Result<Subscription, OnvifError>>;
    /// PullMessages, waiting on the camera up to `timeout`. Calls on a
    /// subscription go to its address with its reference parameters
    /// echoed (WS-Addressing, `docs/events.md`).
    fn pull<'a>(
        &'a self,
        sub: &'a Subscription,
        timeout: Duration,
        limit: u32,
    ) -> BoxFuture<'a, Result<Pulled, OnvifError>>;
    /// Renew for `termination`.
    fn renew<'a>(
        &'a self,
        sub: &'a Subscription,
        termination: Duration,
    ) -> BoxFuture<'a, Result<Renewed, OnvifError>>;
    /// Unsubscribe.
    fn unsubscribe<'a>(&'a self, sub: &'a Subscription) -> BoxFuture<'a, Result<(), OnvifError>>;
}

/// One event a camera raised, as published.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CameraEvent {
    /// Device id.
    pub camera: String,
    /// Village code.
    pub village: Option<String>,
    /// `tamper`, `video-loss`, `motion`, `digital-input`.
    pub kind: &'static str,
    /// `active` or `inactive`.
    pub state: &'static str,
    /// Whether the dashboards alarm on it (tamper, video loss, digital input).
    pub alarm: bool,
    /// The camera's topic, prefixes dropped.
    pub topic: String,
    /// The camera's own UTC time of the event (RFC 3339), if it sent one.
    pub camera_time: Option<String>,
    /// Our UTC time when it arrived (RFC 3339).
    pub at: String,
}

impl CameraEvent {
    /// Builds an event; `camera_time` as the camera stamped it.
    pub fn new(
        device: &crate::store::Device,
        kind: EventKind,
        active: bool,
        topic: &str,
        camera_time: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Self {
        CameraEvent {
            camera: device.id.clone(),
            village: device.village.clone(),
            kind: kind.as_str(),
            state: if active { "active" } else { "inactive" },
            alarm: kind != EventKind::Motion,
            topic: topic.to_string(),
            camera_time: camera_time.map(crate::store::fmt_time),
            at: crate::store::fmt_time(now),
        }
    }
}

/// Where events go (MQTT `camera/{id}/event`, the live hub).
pub trait EventSink: Send + Sync {
    /// One event.
    fn event(&self, event: &CameraEvent);
}

/// Several sinks as one.
pub struct EventFanout(pub Vec<Arc<dyn EventSink>>);

impl EventSink for EventFanout {
    fn event(&self, event: &CameraEvent) {
        for s in &self.0 {
            s.event(event);
        }
    }
}

/// Settings of the event loops.
#[derive(Debug, Clone)]
pub struct EventsConfig {
    /// Short calls (clock, create, renew) in flight at once.
    pub concurrency: usize,
    /// Subscription length asked for (and renewed to).
    pub subscription: Duration,
    /// How long one PullMessages waits on the camera (its `Timeout`).
    pub pull_timeout: Duration,
    /// PullMessages in flight at once, across cameras: pulls go in turns,
    /// each holding one HTTP connection (memory, fds) while it waits.
    pub pulls: usize,
    /// A camera's next pull after one that brought nothing starts this
    /// long after that one started (at once after one that brought
    /// messages). With `pull_timeout` ≥ this, pulls are back-to-back
    /// long polls.
    pub pull_every: Duration,
    /// Messages asked for per pull (the parser caps at
    /// `onvif_events::MAX_MESSAGES` whatever the camera sends).
    pub message_limit: u32,
    /// Consecutive failures after which the subscription is rebuilt.
    pub rebuild_after: u32,
    /// Longest wait between attempts after failures.
    pub max_backoff: Duration,
    /// How often the adopted cameras are listed again without a store
    /// change signal (writes by another process).
    pub rescan: Duration,
    /// `[[health.camera_access]]`: where logins may go.
    pub camera_access: Vec<CameraAccess>,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            concurrency: 16,
            subscription: Duration::from_secs(120),
            pull_timeout: Duration::from_secs(1),
            pulls: 64,
            pull_every: Duration::from_secs(5),
            message_limit: 64,
            rebuild_after: 3,
            max_backoff: Duration::from_secs(300),
            rescan: SAFETY_RESCAN,
            camera_access: Vec::new(),
        }
    }
}

/// The event loops of every adopted camera.
pub struct Events {
    pub(crate) store: Store,
    pub(crate) cfg: EventsConfig,
    pub(crate) io: Arc<dyn EventIo>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) sink: Arc<dyn EventSink>,
    pub(crate) health: Arc<health::EventHealth>,
    pub(crate) metrics: Arc<EventMetrics>,
    pub(crate) slots: Semaphore,
    /// PullMessages in flight (`cfg.pulls`).
    pub(crate) pulls: Semaphore,
}

struct Running {
    inventory_at: Option<String>,
    handle: tokio::task::JoinHandle<()>,
}

impl Events {
    /// Event loops over `io`.
    pub fn new(
        store: Store,
        cfg: EventsConfig,
        io: Arc<dyn EventIo>,
        clock: Arc<dyn Clock>,
        sink: Arc<dyn EventSink>,
        health: Arc<health::EventHealth>,
        metrics: Arc<EventMetrics>,
    ) -> Arc<Self> {
        Arc::new(Self {
            slots: Semaphore::new(cfg.concurrency.max(1)),
            pulls: Semaphore::new(cfg.pulls.max(1)),
            store,
            cfg,
            io,
            clock,
            sink,
            health,
            metrics,
        })
    }

    /// Runs until `shutdown`: one task per adopted camera with an inventory.
    /// A task that ended (no event service) is started again only when the
    /// camera's inventory changes. Like the poller's supervisor, it waits on
    /// the store's writes ([`crate::store::changes`]): a device write
    /// (adoption, removal, inventory) re-reads the adopted ids and inventory
    /// times after [`CHANGE_SETTLE`]; a login write restarts the loops that
    /// are failing (a corrected password is tried at once, not after their
    /// backoff); `cfg.rescan` ([`SAFETY_RESCAN`]) catches writes from
    /// another process.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tasks: HashMap<String, Running> = HashMap::new();
        let mut changes = self.store.changes();
        let mut seen = *changes.borrow_and_update();
        let mut changes_open = true;
        let mut settle: Option<Instant> = None;
        let mut tick = tokio::time::interval(self.cfg.rescan);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
                r = changes.changed(), if changes_open && settle.is_none() => {
                    match r {
                        Ok(()) => settle = Some(Instant::now() + CHANGE_SETTLE),
                        Err(_) => changes_open = false,
                    }
                    continue;
                }
                _ = tokio::time::sleep_until(settle.unwrap_or_else(Instant::now)), if settle.is_some() => {
                    settle = None;
                    let now = *changes.borrow_and_update();
                    if now.logins != seen.logins {
                        self.restart_failing(&mut tasks, &shutdown);
                    }
                    let devices = now.devices != seen.devices;
                    seen = now;
                    if !devices {
                        continue;
                    }
                }
            }
            self.sync_tasks(&mut tasks, &shutdown);
        }
        // Give the loops a moment to unsubscribe, then stop them.
        let drain = async {
            for (_, r) in tasks.iter_mut() {
                let _ = (&mut r.handle).await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(3), drain)
            .await
            .is_err()
        {
            for (_, r) in tasks {
                r.handle.abort();
            }
        }
    }

    /// Starts a loop for each adopted camera without one (or whose
    /// inventory changed) and stops those of cameras no longer adopted.
    /// Reads ids and inventory times only: parsing every inventory on each
    /// scan was most of the events' allocations (BENCHMARKS.md).
    fn sync_tasks(
        self: &Arc<Self>,
        tasks: &mut HashMap<String, Running>,
        shutdown: &CancellationToken,
    ) {
        let wanted: HashMap<String, Option<String>> =
            match self.store.adopted_camera_inventory_times() {
                Ok(d) => d.into_iter().collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "listing cameras for events failed");
                    return;
                }
            };
        tasks.retain(|id, r| {
            let keep = wanted.get(id).is_some_and(|at| *at == r.inventory_at);
            if !keep {
                r.handle.abort();
                self.metrics.forget(id);
                self.health.conditions.answered.forget(id);
            }
            keep
        });
        for (id, inventory_at) in wanted {
            if tasks.contains_key(&id) {
                continue;
            }
            let handle = self.spawn_camera(id.clone(), shutdown);
            tasks.insert(
                id,
                Running {
                    inventory_at,
                    handle,
                },
            );
        }
    }

    /// Restarts the loops that are failing (after a login change: the new
    /// login is tried now, not after their backoff).
    fn restart_failing(
        self: &Arc<Self>,
        tasks: &mut HashMap<String, Running>,
        shutdown: &CancellationToken,
    ) {
        for (id, r) in tasks.iter_mut() {
            if self.metrics.state(id) == Some("failing") {
                r.handle.abort();
                self.health.conditions.answered.forget(id);
                r.handle = self.spawn_camera(id.clone(), shutdown);
            }
        }
    }

    fn spawn_camera(
        self: &Arc<Self>,
        id: String,
        shutdown: &CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let sd = shutdown.child_token();
        let span = tracing::info_span!("events", device = %id);
        tokio::spawn(tracing::Instrument::instrument(
            async move { me.camera(id, sd).await },
            span,
        ))
    }
}
