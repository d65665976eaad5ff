//! Live updates for dashboards: [`LiveHub`] fans camera health states and
//! transitions (fed by `crate::cameras::live`), broadcasts, alerts and horn
//! states out to every connected SSE client through a tokio broadcast
//! channel (`GET /api/v1/events`).
//!
//! A slow client that falls behind the channel's capacity misses events
//! (it is told `lagged` and reloads); the poller never blocks on it.

use serde::Serialize;
use tokio::sync::broadcast;

use tgw_core::health::Health;

/// One event sent to dashboards.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    /// A camera's current verdict after a poll cycle.
    State {
        /// Device id.
        id: String,
        /// Village code.
        village: Option<String>,
        /// `ok`, `degraded`, `offline`.
        verdict: String,
        /// Degradation reasons.
        reasons: Vec<String>,
        /// Ladder rung.
        rung: String,
    },
    /// A verdict or rung change.
    Transition {
        /// Device id.
        id: String,
        /// Village code.
        village: Option<String>,
        /// Verdict before.
        from: String,
        /// Verdict after.
        to: String,
        /// Reasons after.
        reasons: Vec<String>,
        /// Rung after.
        rung: String,
        /// When (RFC 3339, UTC).
        at: String,
    },
    /// A broadcast's row (state, horn counts) after a change.
    Broadcast {
        /// The broadcast as `GET /api/v1/broadcasts/{id}` lists it.
        broadcast: serde_json::Value,
    },
    /// A CAP alert received and what it caused.
    Alert {
        /// As `GET /api/v1/alerts` lists it.
        alert: serde_json::Value,
    },
    /// One horn's state in a broadcast.
    Horn {
        /// Broadcast id.
        broadcast: String,
        /// Speaker id.
        speaker: String,
        /// `queued`, `started`, `done`, `interrupted`, `failed`, `cancelled`, `dropped`.
        state: String,
        /// Skew, reason, by whom.
        detail: Option<serde_json::Value>,
        /// When (RFC 3339, UTC).
        at: String,
    },
    /// An event a camera raised (tamper, video loss, motion, digital input).
    CameraEvent {
        /// As `camera/{id}/event` carries it (`type: "camera-event"` there).
        event: serde_json::Value,
    },
}

/// Fans health out to SSE subscribers.
#[derive(Clone)]
pub struct LiveHub {
    tx: broadcast::Sender<LiveEvent>,
}

impl Default for LiveHub {
    fn default() -> Self {
        Self::new(4096)
    }
}

impl LiveHub {
    /// A hub buffering up to `capacity` events per slow subscriber.
    pub fn new(capacity: usize) -> Self {
        Self {
            tx: broadcast::channel(capacity.max(1)).0,
        }
    }

    /// A new subscriber.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.tx.subscribe()
    }

    /// Number of connected subscribers.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Sends an event to every subscriber (dropped when there are none).
    pub fn publish(&self, e: LiveEvent) {
        let _ = self.tx.send(e);
    }
}

/// Degradation reasons of a health value as labels.
pub fn reasons_of(h: &Health) -> Vec<String> {
    match &h.verdict {
        tgw_core::health::Verdict::Degraded(r) => {
            r.iter().map(|r| r.as_str().to_string()).collect()
        }
        _ => Vec::new(),
    }
}
