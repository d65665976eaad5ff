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
//! Cameras are reached through [`CameraIo`], so the rules here are tested
//! against scripted cameras on paused time.
//!
//! | module | owns |
//! |---|---|
//! | `mod.rs` | the [`Poller`], its supervisor (one task per polled camera), [`HealthSink`] |
//! | [`target`] | what is polled: a camera's address, login, streams, from the store |
//! | `task` | one camera's loop: the schedule (jitter, deferral, frozen re-sample) and recording results |
//! | `checks` | one cycle's steps: cheap check, authenticated call with backoff, DESCRIBE, snapshot, sample |
//! | `tests` | the poller's rules against scripted cameras ([`crate::cameras::device::CameraIo`]) on paused time |

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use device_drivers::onvif_client::ClientOptions;
use rand::Rng;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::base::clock::Clock;
use crate::base::metrics::Metrics;
use crate::cameras::device::{CameraIo, RealCameraIo};
use crate::config::HealthSection;
use crate::store::{Device, DeviceState, Store};
use tgw_core::health::{Health, Thresholds, Transition};

mod checks;
pub mod target;
mod task;
#[cfg(test)]
mod tests;

pub use target::{Target, target};

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
    /// Camera-raised conditions (tamper, video loss) from the event loops,
    /// applied before each cycle (`cameras::events::health`).
    conditions: std::sync::OnceLock<Arc<crate::cameras::events::health::Conditions>>,
}

type Tasks = HashMap<String, (Arc<Notify>, tokio::task::JoinHandle<()>)>;

impl Poller {
    /// A poller over the store, reaching cameras over the network and
    /// reading the system clock.
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
        let clock = crate::base::clock::system();
        let io = Arc::new(RealCameraIo::new(opts, clock.clone())?);
        Ok(Self::with_io(store, cfg, metrics, sink, io, clock))
    }

    /// A poller reaching cameras through `io`, on the wall clock `clock`.
    pub fn with_io(
        store: Store,
        cfg: HealthSection,
        metrics: Arc<Metrics>,
        sink: Arc<dyn HealthSink>,
        io: Arc<dyn CameraIo>,
        clock: Arc<dyn Clock>,
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
            store,
            cfg,
            th,
            io,
            clock,
            metrics,
            sink,
        })
    }

    /// Runs until `shutdown`: keeps one task per polled camera, started and
    /// stopped as cameras are adopted or removed. Ids on `wake` are
    /// re-checked fully at once (WS-Discovery Hello/Bye, "probe now").
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
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        let prune_every = Duration::from_secs(3600);
        let mut last_prune: Option<Instant> = None;
        let mut wake_open = true;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
                id = wake.recv(), if wake_open => {
                    match id {
                        Some(id) => {
                            if let Some((n, _)) = tasks.get(&id) {
                                n.notify_one();
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
            if last_prune.is_none_or(|t| t.elapsed() >= prune_every) {
                last_prune = Some(Instant::now());
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

    /// Starts a task for each adopted, inventoried camera without one and
    /// stops those of cameras no longer polled. A camera's saved health (from
    /// before a restart) is resumed. False when the cameras could not be
    /// listed.
    fn sync_tasks(
        self: &Arc<Self>,
        tasks: &mut Tasks,
        saved: &mut HashMap<String, Health>,
        shutdown: &CancellationToken,
    ) -> bool {
        let devices = match self.store.devices(Some(DeviceState::Adopted)) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "listing cameras for health failed");
                return false;
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
                .unwrap_or_else(|| Health::new(self.clock.now_utc()));
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
        true
    }

    /// Makes every cycle apply the event loops' conditions first, so the
    /// poller's saves keep a tamper or video loss while it lasts.
    pub fn set_conditions(&self, c: Arc<crate::cameras::events::health::Conditions>) {
        let _ = self.conditions.set(c);
    }

    fn jitter(d: Duration) -> Duration {
        let ms = d.as_millis().max(1) as u64;
        Duration::from_millis(rand::thread_rng().gen_range(0..ms))
    }
}
