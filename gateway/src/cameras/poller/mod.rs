//! The health poller: one task per adopted camera, from adoption and
//! whatever its inventory state, each on its own jittered schedule, so one slow or hanging camera never delays the
//! others. Bounded concurrency through two semaphores (cheap checks,
//! stream samples); every call has a timeout; shutdown is checked at every
//! await that can block (STYLE.md §5).
//!
//! Each cycle: a cheap unauthenticated GetSystemDateAndTime (liveness and
//! clock drift); every `describe_interval` an authenticated call, and once
//! the camera has an inventory an RTSP DESCRIBE and a snapshot fetch; every
//! `sample_interval` (in rotation) a timed PLAY sample of the sub-stream.
//! A camera without an inventory (wrong login, unreachable at adoption) has
//! its inventory asked for on the probe channel with backoff, and at once
//! when it comes back from offline; the verdict says why it is missing. An
//! ask that failed on the gateway's side (EMFILE, …; noted in
//! [`Poller::local_probes`]) is no try: asked again after 10 s, backoff
//! unchanged.
//! A task keeps its camera's [`Target`] in memory and re-reads it only on a
//! change: a wake (after an inventory or a login change, a Bye, "probe
//! now") or a new village seen by the supervisor. Results feed the pure
//! [`tgw_core::health::Health`] state machine; transitions and states go to the
//! store, the metrics and a [`HealthSink`] (MQTT, live dashboard).
//! Cameras are reached through [`CameraIo`], so the rules here are tested
//! against scripted cameras on paused time.
//!
//! | module | owns |
//! |---|---|
//! | `mod.rs` | the [`Poller`], its supervisor (one task per adopted camera, from an ids-only scan on a store change, [`SAFETY_RESCAN`] otherwise), [`HealthSink`] |
//! | [`target`] | what is polled: a camera's address, login, streams, from the store on a change |
//! | `task` | one camera's loop: the schedule (jitter, deferral, frozen re-sample) and recording results |
//! | `checks` | one cycle's steps: cheap check, authenticated call with backoff, DESCRIBE, snapshot, sample |
//! | [`saves`] | the current health of each check, buffered (latest per camera wins) and written in one transaction every [`saves::FLUSH_EVERY`] and on stop |
//! | [`auto_sync`] | `[health] clock_sync`: a camera's clock set in a task of its own when a check finds it beyond the threshold (rate-limited, 4 at once, audited) |
//! | `tests_local` | a check that fails on the gateway's side (EMFILE, …) is no observation: verdict kept, retried next cycle, counted; an inventory that does is asked again after 10 s without backoff |
//! | `tests` | the poller's rules against scripted cameras ([`crate::cameras::device::CameraIo`]) on paused time |

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use device_drivers::onvif_client::ClientOptions;
use rand::Rng;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::base::clock::Clock;
use crate::base::metrics::{Metrics, UNCHECKED};
use crate::cameras::device::{CameraIo, RealCameraIo};
use crate::cameras::inventory::LocalProbes;
use crate::config::HealthSection;
use crate::store::{Device, Store};
use tgw_core::health::{Health, Thresholds, Transition};

pub mod auto_sync;
mod checks;
pub mod saves;
pub mod target;
mod task;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_answered;
#[cfg(test)]
mod tests_blind;
#[cfg(test)]
mod tests_changes;
#[cfg(test)]
mod tests_local;
#[cfg(test)]
mod tests_saves;
#[cfg(test)]
mod tests_sync;
#[cfg(test)]
mod tests_time;

pub use target::{Target, target};

/// Where health results go besides the store and metrics.
pub trait HealthSink: Send + Sync {
    /// The camera's current health, after each cycle.
    fn state(&self, device: &Device, health: &Health);
    /// A verdict or rung change.
    fn transition(&self, device: &Device, transition: &Transition, health: &Health);
}

/// How long the poller's HTTP client keeps a camera's idle connection: a
/// cycle's calls (clock check, authenticated call, snapshot) come within a
/// burst, so 2 s keeps it for the burst; checks 10 s apart or closer reuse
/// it from check to check (idle = interval + 2 s). Checks 30 s apart (the
/// default) keep none between checks: 1,000 idle sockets held for nothing
/// cost more (fds, read buffers) than a connect on the LAN every 30 s.
pub fn pool_idle(check_every: Duration) -> Duration {
    let burst = Duration::from_secs(2);
    if check_every <= Duration::from_secs(10) {
        check_every + burst
    } else {
        burst
    }
}

/// How often the supervisor re-reads the adopted ids without a change
/// signal (writes by another process, such as a CLI on the same data
/// directory).
pub const SAFETY_RESCAN: Duration = Duration::from_secs(60);

/// How long the supervisor lets a burst of store writes settle before it
/// re-reads the adopted ids.
pub const CHANGE_SETTLE: Duration = Duration::from_millis(250);

/// A sink that drops everything.
pub struct NoSink;

impl HealthSink for NoSink {
    fn state(&self, _: &Device, _: &Health) {}
    fn transition(&self, _: &Device, _: &Transition, _: &Health) {}
}

/// The poller.
pub struct Poller {
    store: Store,
    cfg: HealthSection,
    th: Thresholds,
    io: Arc<dyn CameraIo>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    sink: Arc<dyn HealthSink>,
    checks: Semaphore,
    samples: Semaphore,
    /// Where a camera's inventory is asked for (the daemon's immediate
    /// probes, which wake the camera's task when done).
    probe: Option<mpsc::Sender<String>>,
    /// Camera-raised conditions (tamper, video loss) from the event loops,
    /// applied before each cycle (`cameras::events::health`).
    conditions: std::sync::OnceLock<Arc<crate::cameras::events::health::Conditions>>,
    /// A clock other than ours that camera clocks are checked against
    /// (校时 from a GB/T 28181 platform), when configured.
    time_ref: std::sync::OnceLock<Arc<crate::cameras::clock_sync::TimeReference>>,
    /// The automatic clock sync (`[health] clock_sync`), when enabled.
    auto_sync: std::sync::OnceLock<Arc<auto_sync::AutoSync>>,
    /// Each check's current health until the supervisor writes it
    /// (shared with the event loops).
    saves: Arc<saves::HealthSaves>,
    /// Inventory asks that failed on the gateway's side, noted by the
    /// probe worker ([`Poller::local_probes`]).
    local_probes: LocalProbes,
}

/// How the supervisor (and wakes) reach a camera's task.
#[derive(Default)]
pub(super) struct Signal {
    /// Check fully now (implies `reload`).
    pub(super) wake: Notify,
    /// Re-read the target from the store before the next check.
    pub(super) reload: AtomicBool,
}

/// A running camera task.
struct Entry {
    signal: Arc<Signal>,
    village: Option<String>,
    handle: tokio::task::JoinHandle<()>,
}

type Tasks = HashMap<String, Entry>;

impl Poller {
    /// A poller over the store, reaching cameras over the network and
    /// reading the system clock.
    /// `probe` is where inventories are asked for.
    pub fn new(
        store: Store,
        cfg: HealthSection,
        metrics: Arc<Metrics>,
        sink: Arc<dyn HealthSink>,
        probe: Option<mpsc::Sender<String>>,
    ) -> anyhow::Result<Arc<Self>> {
        let opts = ClientOptions {
            timeout: cfg.call_timeout_ms,
            connect_timeout: cfg.call_timeout_ms.min(Duration::from_secs(3)),
            pool_idle: pool_idle(cfg.check_interval_secs),
            ..ClientOptions::default()
        };
        let clock = crate::base::clock::system();
        let io = Arc::new(RealCameraIo::new(opts, clock.clone())?);
        Ok(Self::with_io(store, cfg, metrics, sink, io, clock, probe))
    }

    /// A poller reaching cameras through `io`, on the wall clock `clock`.
    pub fn with_io(
        store: Store,
        cfg: HealthSection,
        metrics: Arc<Metrics>,
        sink: Arc<dyn HealthSink>,
        io: Arc<dyn CameraIo>,
        clock: Arc<dyn Clock>,
        probe: Option<mpsc::Sender<String>>,
    ) -> Arc<Self> {
        let th = Thresholds {
            offline_after: cfg.offline_after,
            stall_after: cfg.stall_secs,
            max_clock_drift: cfg.max_clock_drift_secs,
            max_loss_pct: cfg.max_rtp_loss_pct,
            ..Thresholds::default()
        };
        Arc::new(Self {
            checks: Semaphore::new(cfg.concurrency),
            samples: Semaphore::new(cfg.sample_concurrency),
            conditions: std::sync::OnceLock::new(),
            time_ref: std::sync::OnceLock::new(),
            auto_sync: std::sync::OnceLock::new(),
            saves: Arc::new(saves::HealthSaves::new(store.clone())),
            local_probes: LocalProbes::default(),
            store,
            cfg,
            th,
            io,
            clock,
            metrics,
            sink,
            probe,
        })
    }

    /// Runs until `shutdown`: keeps one task per adopted camera, started and
    /// stopped as cameras are adopted or removed. The supervisor reacts to
    /// the store's writes ([`crate::store::changes`]): a device write
    /// (adoption, removal, village) re-reads the adopted ids after
    /// [`CHANGE_SETTLE`], a login write (device login, credential group)
    /// makes every task re-read its target before its next check; a slow
    /// [`SAFETY_RESCAN`] catches writes from another process. Ids on `wake`
    /// are re-read and re-checked fully at once (after an inventory or a
    /// login change, WS-Discovery Bye, "probe now"); an id without a task
    /// (just adopted) makes the supervisor re-scan at once. The cameras'
    /// current health is written every [`saves::FLUSH_EVERY`], and once
    /// more after the camera tasks have stopped.
    pub async fn run(
        self: Arc<Self>,
        shutdown: CancellationToken,
        mut wake: mpsc::Receiver<String>,
    ) {
        let mut tasks: Tasks = HashMap::new();
        let mut saved: HashMap<String, Health> = self
            .store
            .all_health()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let mut changes = self.store.changes();
        let mut seen = *changes.borrow_and_update();
        let mut changes_open = true;
        // When a burst of store writes has settled (a discovery sweep
        // writes a thousand rows); wakes are served meanwhile.
        let mut settle: Option<Instant> = None;
        let mut tick = tokio::time::interval(SAFETY_RESCAN);
        let mut last_prune: Option<Instant> = None;
        let mut wake_open = true;
        let mut flush = tokio::time::interval(saves::FLUSH_EVERY);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = flush.tick() => {
                    self.saves.flush_logged();
                    continue;
                }
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
                        for e in tasks.values() {
                            e.signal.reload.store(true, Ordering::Relaxed);
                        }
                    }
                    let devices = now.devices != seen.devices;
                    seen = now;
                    if !devices {
                        continue;
                    }
                }
                id = wake.recv(), if wake_open => {
                    match id {
                        Some(id) => {
                            if let Some(e) = tasks.get(&id) {
                                e.signal.reload.store(true, Ordering::Relaxed);
                                e.signal.wake.notify_one();
                                continue;
                            }
                            // Not polled yet: adopted since the last scan.
                            self.sync_tasks(&mut tasks, &mut saved, &shutdown);
                            if let Some(e) = tasks.get(&id) {
                                e.signal.wake.notify_one();
                            }
                        }
                        // Every sender gone: stop listening, keep polling.
                        None => wake_open = false,
                    }
                    continue;
                }
            }
            if !self.sync_tasks(&mut tasks, &mut saved, &shutdown) {
                continue;
            }
            self.prune(&mut last_prune);
        }
        for e in tasks.values() {
            e.handle.abort();
        }
        // No task saves any more: what they saved last is written.
        for (_, e) in tasks {
            let _ = e.handle.await;
        }
        self.saves.flush_logged();
    }

    /// The buffer the cameras' current health goes through (the event
    /// loops save into it too, and read it before the store).
    pub fn health_saves(&self) -> Arc<saves::HealthSaves> {
        self.saves.clone()
    }

    /// Where the worker that runs the inventories asked for on the probe
    /// channel notes those that failed on the gateway's side, before it
    /// wakes the camera: the camera's task then asks again after
    /// [`LOCAL_RETRY`](crate::base::local_errors::LOCAL_RETRY) without
    /// growing its backoff.
    pub fn local_probes(&self) -> LocalProbes {
        self.local_probes.clone()
    }

    /// Prunes the health history at most once an hour.
    fn prune(&self, last: &mut Option<Instant>) {
        let every = Duration::from_secs(3600);
        if last.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        *last = Some(Instant::now());
        match self.store.prune_health(self.cfg.history_days) {
            Ok(n) if n > 0 => tracing::info!(rows = n, "pruned health history"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pruning health history failed"),
        }
    }

    /// Starts a task for each adopted camera without one and stops those
    /// of cameras no longer adopted; a task whose camera moved to another
    /// village re-reads its target. A camera's saved health (from before a
    /// restart) is resumed; a new one starts from [`Health::new`], saved at
    /// once (not buffered) so the API never shows a camera without health.
    /// A stopped camera's buffered health is dropped. Reads ids and
    /// villages only. False when the cameras could not be listed.
    fn sync_tasks(
        self: &Arc<Self>,
        tasks: &mut Tasks,
        saved: &mut HashMap<String, Health>,
        shutdown: &CancellationToken,
    ) -> bool {
        let wanted: HashMap<String, Option<String>> = match self.store.adopted_camera_ids() {
            Ok(d) => d.into_iter().collect(),
            Err(e) => {
                tracing::warn!(error = %e, "listing cameras for health failed");
                return false;
            }
        };
        tasks.retain(|id, e| match wanted.get(id) {
            Some(village) if !e.handle.is_finished() => {
                if *village != e.village {
                    e.village.clone_from(village);
                    e.signal.reload.store(true, Ordering::Relaxed);
                }
                true
            }
            _ => {
                e.handle.abort();
                self.metrics.forget(id);
                self.saves.forget(id);
                false
            }
        });
        for (id, village) in wanted {
            if tasks.contains_key(&id) {
                continue;
            }
            let health = match saved.remove(&id) {
                Some(h) => {
                    let v = village.as_deref().unwrap_or("unassigned");
                    self.metrics
                        .set_verdict(&id, v, h.verdict.label(), h.rung.as_str());
                    h
                }
                None => {
                    let h = Health::new(self.clock.now_utc());
                    if let Err(e) = self.store.save_health(&id, &h) {
                        tracing::warn!(device = %id, error = %e, "saving health failed");
                    }
                    let v = village.as_deref().unwrap_or("unassigned");
                    self.metrics.set_verdict(&id, v, UNCHECKED, h.rung.as_str());
                    h
                }
            };
            let signal = Arc::new(Signal::default());
            let me = self.clone();
            let sd = shutdown.clone();
            let s2 = signal.clone();
            let id2 = id.clone();
            let span = tracing::info_span!("camera", device = %id);
            let handle = tokio::spawn(tracing::Instrument::instrument(
                async move { me.camera(id2, health, s2, sd).await },
                span,
            ));
            tasks.insert(
                id,
                Entry {
                    signal,
                    village,
                    handle,
                },
            );
        }
        true
    }

    /// Makes every cycle apply the event loops' conditions first, so the
    /// poller's saves keep a tamper or video loss while it lasts.
    pub fn set_conditions(&self, c: Arc<crate::cameras::events::health::Conditions>) {
        let _ = self.conditions.set(c);
    }

    /// Makes clock checks measure cameras against `r` (once it has a
    /// reading) instead of our own clock.
    pub fn set_time_reference(&self, r: Arc<crate::cameras::clock_sync::TimeReference>) {
        let _ = self.time_ref.set(r);
    }

    /// Sets cameras' clocks automatically as `[health] clock_sync` says
    /// ([`auto_sync`]), with the township's zone `tz` (POSIX); audit rows
    /// kept as `keep` says. False (nothing done) when it is `"off"`.
    pub fn set_clock_sync(&self, tz: String, keep: crate::config::audit::AuditRetention) -> bool {
        let Some(a) = auto_sync::AutoSync::new(
            &self.cfg,
            tz,
            keep,
            self.io.clone(),
            self.store.clone(),
            self.metrics.clone(),
            self.clock.clone(),
        ) else {
            return false;
        };
        tracing::info!(
            mode = self.cfg.clock_sync.as_str(),
            after_s = self.cfg.clock_sync_after().as_secs(),
            every_s = self.cfg.clock_sync_min_interval_secs.as_secs(),
            "camera clocks are set automatically when they drift"
        );
        self.auto_sync.set(Arc::new(a)).is_ok()
    }

    fn jitter(d: Duration) -> Duration {
        let ms = d.as_millis().max(1) as u64;
        Duration::from_millis(rand::thread_rng().gen_range(0..ms))
    }
}
