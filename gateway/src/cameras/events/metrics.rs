//! The event loops' metrics: `tgw_camera_events_total{kind}` (events
//! received, including `unknown` topics and `dropped` messages over the
//! caps) and `tgw_camera_event_subscriptions{state}` (cameras by
//! subscription state: `active`, `rebuilding`, `no-service`, `failing`).
//! Registered into the daemon's registry through
//! [`crate::base::metrics::Metrics::register_extra`].

use std::collections::HashMap;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::base::metrics::Metrics;

/// `kind` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// `tamper`, `video-loss`, `motion`, `digital-input`, `unknown`, `dropped`.
    pub kind: String,
}

/// `state` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// `active`, `rebuilding`, `no-service`, `failing`.
    pub state: String,
}

/// Subscription states, as labels.
pub const STATES: [&str; 4] = ["active", "rebuilding", "no-service", "failing"];

/// The families and each camera's current state.
#[derive(Default)]
pub struct EventMetrics {
    /// Events by kind.
    pub events: Family<KindLabel, Counter>,
    /// Cameras by subscription state.
    pub subscriptions: Family<StateLabel, Gauge>,
    states: Mutex<HashMap<String, &'static str>>,
}

impl EventMetrics {
    /// New families, registered in `m` (when given).
    pub fn new(m: Option<&Metrics>) -> Self {
        let me = Self::default();
        for s in STATES {
            let _ = me
                .subscriptions
                .get_or_create(&StateLabel { state: s.into() });
        }
        if let Some(m) = m {
            m.register_extra(
                "camera_events",
                "Camera events received by kind (unknown topics and messages dropped over the caps included)",
                me.events.clone(),
            );
            m.register_extra(
                "camera_event_subscriptions",
                "Cameras by event subscription state",
                me.subscriptions.clone(),
            );
        }
        me
    }

    /// Counts `n` events of `kind`.
    pub fn count(&self, kind: &str, n: u64) {
        if n > 0 {
            self.events
                .get_or_create(&KindLabel { kind: kind.into() })
                .inc_by(n);
        }
    }

    /// Sets camera `id`'s subscription state.
    pub fn set_state(&self, id: &str, state: &'static str) {
        let mut m = self.states.lock().unwrap_or_else(|p| p.into_inner());
        let old = m.insert(id.to_string(), state);
        if old == Some(state) {
            return;
        }
        if let Some(o) = old {
            self.subscriptions
                .get_or_create(&StateLabel { state: o.into() })
                .dec();
        }
        self.subscriptions
            .get_or_create(&StateLabel {
                state: state.into(),
            })
            .inc();
    }

    /// Camera `id`'s state, if it has one.
    pub fn state(&self, id: &str) -> Option<&'static str> {
        let m = self.states.lock().unwrap_or_else(|p| p.into_inner());
        m.get(id).copied()
    }

    /// Drops camera `id` (no longer adopted).
    pub fn forget(&self, id: &str) {
        let mut m = self.states.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(o) = m.remove(id) {
            self.subscriptions
                .get_or_create(&StateLabel { state: o.into() })
                .dec();
        }
    }
}
