//! One camera's event loop: find the event service, subscribe, pull (in
//! turns with the other cameras: a short wait, then a pause), renew at half
//! the granted time on the camera's clock,
//! rebuild when the camera forgets the subscription or after repeated
//! failures, back off exponentially, log errors once per camera per hour.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use device_drivers::onvif_client::{CameraInventory, OnvifError, OnvifErrorKind};
use device_drivers::onvif_events::{EventKind, PropertyOperation, Pulled, Subscription, classify};
use time::OffsetDateTime;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::health::same_server;
use super::{CameraEvent, EventSession, Events};
use crate::base::local_errors::LOCAL_RETRY;
use crate::cameras::poller::target;
use crate::store::Device;
use tgw_core::health::Reason;

/// Errors are logged at most once per camera per this long.
const LOG_EVERY: Duration = Duration::from_secs(3600);

/// How long past its wait a pull may take (the answer's transfer) before
/// it is given up and its slot freed.
pub(super) const PULL_GRACE: Duration = Duration::from_secs(5);

/// Logs a camera's errors once per [`LOG_EVERY`]; the rest at debug.
struct LogGate(Option<Instant>);

impl LogGate {
    fn error(&mut self, what: &str, e: &OnvifError) {
        let now = Instant::now();
        if self.0.is_none_or(|t| now.duration_since(t) >= LOG_EVERY) {
            self.0 = Some(now);
            tracing::warn!(error = %e, "{what} (further event errors of this camera logged at debug for an hour)");
        } else {
            tracing::debug!(error = %e, "{what}");
        }
    }
}

/// When to renew: half the time granted, measured on the camera's clock
/// (`current` and `termination` are both its times; without `current`,
/// our time plus the measured offset stands in).
pub(super) fn renew_in(
    current: Option<OffsetDateTime>,
    termination: Option<OffsetDateTime>,
    our_now: OffsetDateTime,
    offset_ms: i64,
    asked: Duration,
) -> Duration {
    let camera_now = current.unwrap_or(our_now + time::Duration::milliseconds(offset_ms));
    let granted = match termination {
        Some(t) => Duration::try_from(t - camera_now).unwrap_or(Duration::ZERO),
        None => asked,
    };
    (granted / 2).max(Duration::from_secs(1))
}

/// What a loop keeps of its camera's row while subscribed: what events,
/// health sinks and errors read (id, kind, state, name, address, village,
/// grid), not its scopes, service addresses, identity strings or
/// inventory.
fn slim(d: Device) -> Device {
    Device {
        endpoint_ref: None,
        mac: None,
        manufacturer: None,
        model: None,
        firmware: None,
        serial: None,
        xaddrs: Vec::new(),
        scopes: Vec::new(),
        via: None,
        inventory: None,
        probe_error: None,
        first_seen: String::new(),
        last_seen: String::new(),
        last_bye: None,
        driver: None,
        driver_address: None,
        ..d
    }
}

/// Whether the camera no longer knows the subscription (a fault or an HTTP
/// error to a pull or renew): rebuild at once.
fn gone(e: &OnvifError) -> bool {
    matches!(
        e.kind,
        OnvifErrorKind::Fault(_) | OnvifErrorKind::Http { .. } | OnvifErrorKind::AuthRejected
    )
}

impl Events {
    /// The event service's address from the stored inventory, else asked
    /// of the camera; `Ok(None)` when it has none.
    async fn events_url(
        &self,
        device: &Device,
        session: &dyn EventSession,
    ) -> Result<Option<String>, OnvifError> {
        let inv: Option<CameraInventory> = device
            .inventory
            .clone()
            .and_then(|v| serde_json::from_value(v).ok());
        if let Some(inv) = inv
            && !inv.services.xaddrs.is_empty()
        {
            return Ok(inv.services.events().map(str::to_string));
        }
        session.events_url().await
    }

    fn backoff(&self, failures: u32) -> Duration {
        let base = Duration::from_secs(2).saturating_mul(1 << failures.min(10));
        base.min(self.cfg.max_backoff)
    }

    /// Camera `id`'s loop, until `shutdown` or it turns out to offer no
    /// event service.
    pub(super) async fn camera(self: Arc<Self>, id: String, shutdown: CancellationToken) {
        let mut known: HashMap<EventKind, bool> = HashMap::new();
        let mut failures: u32 = 0;
        let mut log = LogGate(None);
        let mut local_pause = false;
        self.metrics.set_state(&id, "rebuilding");
        loop {
            if std::mem::take(&mut local_pause) {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(LOCAL_RETRY) => {}
                }
            }
            if failures > 0 {
                self.metrics.set_state(&id, "failing");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(self.backoff(failures - 1)) => {}
                }
            }
            let Some(t) = target::target(&self.store, &id, true, &self.cfg.camera_access) else {
                failures = failures.saturating_add(1);
                continue;
            };
            let session = match self.io.session(&t.xaddr, t.creds, t.scope) {
                Ok(s) => s,
                Err(OnvifError {
                    kind: OnvifErrorKind::Local(r),
                    ..
                }) => {
                    self.health.local_error(r);
                    local_pause = true;
                    continue;
                }
                Err(e) => {
                    log.error("event session not possible", &e);
                    failures = failures.saturating_add(1);
                    continue;
                }
            };
            // Held for the subscription's life (one per subscribed camera):
            // the rest of the target is dropped here.
            let device = slim(t.device);
            let built = {
                let Ok(_slot) = self.slots.acquire().await else {
                    return;
                };
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = self.subscribe(&device, &*session) => r,
                }
            };
            let (sub, mut renew_at) = match built {
                Ok(Some(s)) => s,
                Ok(None) => {
                    tracing::info!(
                        "camera offers no ONVIF event service; not asking again until its inventory changes"
                    );
                    self.metrics.set_state(&id, "no-service");
                    return;
                }
                Err(OnvifError {
                    kind: OnvifErrorKind::Local(r),
                    ..
                }) => {
                    self.health.local_error(r);
                    local_pause = true;
                    continue;
                }
                Err(e) => {
                    log.error("event subscription failed", &e);
                    failures = failures.saturating_add(1);
                    continue;
                }
            };
            self.metrics.set_state(&id, "active");
            // Pulls answered on the device service's own server stand for
            // the poller's cheap check (`health::Answered`).
            let vouches = same_server(&sub.address, &t.xaddr);
            let pulled_any = self
                .subscribed(
                    &device,
                    &*session,
                    &sub,
                    vouches,
                    &mut renew_at,
                    &mut known,
                    &mut log,
                    &shutdown,
                )
                .await;
            self.health.conditions.answered.forget(&id);
            if shutdown.is_cancelled() {
                // Best effort: tell the camera, briefly.
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), session.unsubscribe(&sub)).await;
                return;
            }
            self.metrics.set_state(&id, "rebuilding");
            // A subscription that never delivered counts as a failure, so a
            // camera that drops every new one is not hammered.
            failures = if pulled_any {
                0
            } else {
                failures.saturating_add(1)
            };
        }
    }

    /// Finds the service, measures the clock, creates the subscription:
    /// the subscription (its address and reference parameters) and when to
    /// renew it.
    async fn subscribe(
        &self,
        device: &Device,
        session: &dyn EventSession,
    ) -> Result<Option<(Subscription, Instant)>, OnvifError> {
        let Some(url) = self.events_url(device, session).await? else {
            return Ok(None);
        };
        // An unknown offset only makes the renewal less exact.
        let offset = session.clock_offset_ms().await.unwrap_or(0);
        let s = session.create(&url, self.cfg.subscription).await?;
        let d = renew_in(
            s.current_time,
            s.termination_time,
            self.clock.now_utc(),
            offset,
            self.cfg.subscription,
        );
        Ok(Some((s, Instant::now() + d)))
    }

    /// Pulls and renews until the subscription must be rebuilt or shutdown;
    /// whether any pull succeeded.
    #[allow(clippy::too_many_arguments)]
    async fn subscribed(
        &self,
        device: &Device,
        session: &dyn EventSession,
        sub: &Subscription,
        vouches: bool,
        renew_at: &mut Instant,
        known: &mut HashMap<EventKind, bool>,
        log: &mut LogGate,
        shutdown: &CancellationToken,
    ) -> bool {
        let mut errors: u32 = 0;
        let mut pulled_any = false;
        loop {
            if Instant::now() >= *renew_at {
                let r = {
                    let Ok(_slot) = self.slots.acquire().await else {
                        return pulled_any;
                    };
                    tokio::select! {
                        _ = shutdown.cancelled() => return pulled_any,
                        r = session.renew(sub, self.cfg.subscription) => r,
                    }
                };
                match r {
                    Ok(r) => {
                        let d = renew_in(
                            r.current_time,
                            r.termination_time,
                            self.clock.now_utc(),
                            0,
                            self.cfg.subscription,
                        );
                        *renew_at = Instant::now() + d;
                    }
                    Err(OnvifError {
                        kind: OnvifErrorKind::Local(r),
                        ..
                    }) => {
                        self.health.local_error(r);
                        *renew_at = Instant::now() + LOCAL_RETRY;
                    }
                    Err(e) => {
                        log.error("renewing the event subscription failed", &e);
                        self.health.conditions.answered.forget(&device.id);
                        errors += 1;
                        if gone(&e) || errors >= self.cfg.rebuild_after {
                            return pulled_any;
                        }
                        *renew_at = Instant::now() + Duration::from_secs(1);
                    }
                }
            }
            let until_renew = renew_at.saturating_duration_since(Instant::now());
            let wait = self
                .cfg
                .pull_timeout
                .min(until_renew)
                .max(Duration::from_secs(1));
            let started = Instant::now();
            let r = {
                // Pulls go in turns: at most `pulls` in flight (each holds
                // an HTTP connection while the camera waits), fairly queued.
                let slot = tokio::select! {
                    _ = shutdown.cancelled() => return pulled_any,
                    s = self.pulls.acquire() => s,
                };
                let Ok(_slot) = slot else {
                    return pulled_any;
                };
                // A camera that holds a pull past its wait gives the slot
                // back at once instead of after the client's timeout.
                let cap = wait + PULL_GRACE;
                tokio::select! {
                    _ = shutdown.cancelled() => return pulled_any,
                    r = tokio::time::timeout(cap, session.pull(sub, wait, self.cfg.message_limit)) => {
                        r.unwrap_or_else(|_| Err(OnvifError {
                            peer: device.address.clone().unwrap_or_else(|| device.id.clone()),
                            operation: "PullMessages",
                            kind: OnvifErrorKind::Timeout,
                        }))
                    }
                }
            };
            match r {
                Ok(p) => {
                    errors = 0;
                    pulled_any = true;
                    if vouches {
                        self.health.conditions.answered.ok(&device.id);
                    }
                    let busy = !p.messages.is_empty() || p.dropped > 0;
                    self.deliver(device, &p, known);
                    // A pull that brought messages is followed at once (more
                    // may be queued); an empty one waits out `pull_every`
                    // from its start (never past the renewal).
                    if !busy {
                        let next = (started + self.cfg.pull_every).min(*renew_at);
                        tokio::select! {
                            _ = shutdown.cancelled() => return pulled_any,
                            _ = tokio::time::sleep_until(next) => {}
                        }
                    }
                }
                Err(OnvifError {
                    kind: OnvifErrorKind::Local(r),
                    ..
                }) => {
                    // Not the camera's: no error counted towards a rebuild.
                    self.health.local_error(r);
                    tokio::select! {
                        _ = shutdown.cancelled() => return pulled_any,
                        _ = tokio::time::sleep(LOCAL_RETRY) => {}
                    }
                }
                Err(e) => {
                    log.error("pulling camera events failed", &e);
                    self.health.conditions.answered.forget(&device.id);
                    errors += 1;
                    if gone(&e) || errors >= self.cfg.rebuild_after {
                        return pulled_any;
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => return pulled_any,
                        _ = tokio::time::sleep(self.backoff(errors - 1)) => {}
                    }
                }
            }
        }
    }

    /// Classifies, de-duplicates and publishes one pull's messages.
    pub(super) fn deliver(
        &self,
        device: &Device,
        p: &Pulled,
        known: &mut HashMap<EventKind, bool>,
    ) {
        self.metrics.count("dropped", p.dropped as u64);
        for m in &p.messages {
            let Some((kind, Some(active))) = classify(m) else {
                self.metrics.count("unknown", 1);
                continue;
            };
            let prev = known.insert(kind, active);
            let initialized = m.operation == Some(PropertyOperation::Initialized);
            // A subscription's opening state is news only when it differs
            // from what we knew (nothing lost across a rebuild, no repeat).
            if initialized && prev.unwrap_or(false) == active {
                continue;
            }
            if prev == Some(active) && matches!(kind, EventKind::Tamper | EventKind::VideoLoss) {
                continue;
            }
            self.metrics.count(kind.as_str(), 1);
            let now = self.clock.now_utc();
            let ev = CameraEvent::new(device, kind, active, &m.topic, m.utc_time, now);
            tracing::info!(kind = ev.kind, state = ev.state, "camera event");
            self.sink.event(&ev);
            let reason = match kind {
                EventKind::Tamper => Reason::Tamper,
                EventKind::VideoLoss => Reason::VideoLoss,
                _ => continue,
            };
            self.health.observe(device, reason, active);
        }
    }
}
