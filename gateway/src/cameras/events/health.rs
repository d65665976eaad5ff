//! Tamper and video loss as health reasons while they last.
//!
//! The event loop calls [`EventHealth::observe`] when a condition starts or
//! ends: the camera's saved health (the poller's buffered save, else the
//! store's row) gets an `Observation::Event` and is saved back through the
//! same buffer ([`HealthSaves`]), and a verdict change is stored at once,
//! counted and published through the same sinks as the poller's
//! ([`HealthSink`]). The conditions also stay in [`Conditions`], which the
//! poller applies to its own copy of the health before each cycle
//! ([`Conditions::apply`]), so its next save keeps them. The pulls each
//! camera answered are kept there too ([`Answered`]): the poller takes one
//! in place of a cheap check.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use time::OffsetDateTime;
use tokio::time::Instant;

use crate::base::clock::Clock;
use crate::base::metrics::{Metrics, ToLabel};
use crate::cameras::poller::HealthSink;
use crate::cameras::poller::saves::HealthSaves;
use crate::store::{Device, Store};
use tgw_core::health::{Health, Observation, Reason, Thresholds, Transition};

/// The camera-raised conditions that hold now, per camera, and the
/// cameras' answered event pulls (shared with the poller).
#[derive(Default)]
pub struct Conditions {
    held: Mutex<HashMap<String, BTreeSet<Reason>>>,
    /// Event pulls a camera answered on its device service's address.
    pub answered: Answered,
}

/// When each camera last answered an event pull, since its last failed one.
///
/// The poller takes an answer newer than its previous cycle in place of
/// that cycle's cheap check (GetSystemDateAndTime): the camera's ONVIF
/// service just answered on the same host and port, so a second connection
/// to ask it the time again would say nothing new. The clock offset stays
/// the one last measured by GetSystemDateAndTime (every DESCRIBE cycle):
/// a pull's `CurrentTime` is not trusted for it (cameras that send it as
/// local time without a zone exist). A failed pull forgets the answer, so
/// the next cycle checks for itself.
#[derive(Default)]
pub struct Answered(Mutex<HashMap<String, Instant>>);

impl Answered {
    /// Camera `id` answered a pull now.
    pub fn ok(&self, id: &str) {
        let now = Instant::now();
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match m.get_mut(id) {
            Some(at) => *at = now,
            None => {
                m.insert(id.to_string(), now);
            }
        }
    }

    /// Camera `id`'s pull failed, or its subscription ended: what it
    /// answered before proves nothing any more.
    pub fn forget(&self, id: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// Whether camera `id` answered a pull at or after `since`.
    pub fn since(&self, id: &str, since: Instant) -> bool {
        let m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.get(id).is_some_and(|at| *at >= since)
    }
}

/// Whether two service addresses reach the same server: same scheme, host
/// and port (the default port when none is written). Only then does a
/// camera's answer on one stand for the other.
pub fn same_server(a: &str, b: &str) -> bool {
    match (url::Url::parse(a), url::Url::parse(b)) {
        (Ok(a), Ok(b)) => {
            a.scheme() == b.scheme()
                && a.host() == b.host()
                && a.port_or_known_default() == b.port_or_known_default()
        }
        _ => false,
    }
}

impl Conditions {
    /// Records that `reason` holds (or no longer holds) on camera `id`;
    /// whether that changed anything.
    pub fn set(&self, id: &str, reason: Reason, active: bool) -> bool {
        let mut m = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let set = m.entry(id.to_string()).or_default();
        if active {
            set.insert(reason)
        } else {
            set.remove(&reason)
        }
    }

    /// What holds on camera `id`.
    pub fn of(&self, id: &str) -> BTreeSet<Reason> {
        let m = self.held.lock().unwrap_or_else(|p| p.into_inner());
        m.get(id).cloned().unwrap_or_default()
    }

    /// Applies camera `id`'s conditions to `health` (the poller's hook,
    /// called before each cycle); the transition, if that changed the
    /// verdict.
    pub fn apply(
        &self,
        id: &str,
        health: &mut Health,
        now: OffsetDateTime,
        th: &Thresholds,
    ) -> Option<Transition> {
        let holding = self.of(id);
        let mut last = None;
        for reason in [Reason::Tamper, Reason::VideoLoss] {
            let active = holding.contains(&reason);
            if let Some(t) = health.observe(Observation::Event { reason, active }, now, th) {
                last = Some(t);
            }
        }
        last
    }
}

/// Feeds camera-raised conditions into health.
pub struct EventHealth {
    store: Store,
    saves: Arc<HealthSaves>,
    metrics: Arc<Metrics>,
    sink: Arc<dyn HealthSink>,
    clock: Arc<dyn Clock>,
    th: Thresholds,
    /// What holds now, per camera (shared with the poller).
    pub conditions: Arc<Conditions>,
}

impl EventHealth {
    /// Feeds the store (current health through `saves`, the poller's
    /// buffer), `metrics` and `sink` (the poller's sinks).
    pub fn new(
        store: Store,
        saves: Arc<HealthSaves>,
        metrics: Arc<Metrics>,
        sink: Arc<dyn HealthSink>,
        clock: Arc<dyn Clock>,
        th: Thresholds,
    ) -> Self {
        Self {
            store,
            saves,
            metrics,
            sink,
            clock,
            th,
            conditions: Arc::default(),
        }
    }

    /// A call of the event loops failed on the gateway's side (out of
    /// file descriptors, …): nothing about the camera, so nothing in its
    /// health; counted and logged with the poller's
    /// ([`crate::base::local_errors`]).
    pub fn local_error(&self, what: device_drivers::local_error::LocalResource) {
        self.metrics.local_errors.report(what, "events");
    }

    /// `reason` started (`active`) or ended on `device`: its saved health
    /// observes it; a verdict change is stored and published.
    pub fn observe(&self, device: &Device, reason: Reason, active: bool) {
        if !self.conditions.set(&device.id, reason, active) {
            return;
        }
        let now = self.clock.now_utc();
        let mut health = self
            .saves
            .latest(&device.id)
            .ok()
            .flatten()
            .unwrap_or_else(|| Health::new(now));
        let tr = health.observe(Observation::Event { reason, active }, now, &self.th);
        if tr.is_some() {
            self.saves.save_changed(&device.id, &health);
        } else {
            self.saves.save(&device.id, &health);
        }
        let village = device
            .village
            .clone()
            .unwrap_or_else(|| "unassigned".into());
        self.metrics.set_verdict(
            &device.id,
            &village,
            health.verdict.label(),
            health.rung.as_str(),
        );
        if let Some(t) = tr {
            tracing::info!(from = %t.from, to = %t.to, reason = reason.as_str(), "camera verdict changed by its event");
            self.metrics
                .transitions
                .get_or_create(&ToLabel {
                    to: t.to.label().into(),
                })
                .inc();
            if let Err(e) = self.store.record_transition(&device.id, &t) {
                tracing::warn!(error = %e, "recording transition failed");
            }
            self.sink.transition(device, &t, &health);
        }
        self.sink.state(device, &health);
    }
}
