//! What the desk answers for one alert: play a [`Plan`], cancel, or ignore;
//! and the stable broadcast id of an alert.

use std::fmt;

use device_drivers::cap::{Severity, Status};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::broadcast::{Ms, Priority, Target};

/// What to play for an alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The CAP identifier.
    pub alert_id: String,
    /// Stable broadcast id derived from the identifier ([`broadcast_id`]).
    pub broadcast_id: String,
    /// From the severity map.
    pub priority: Priority,
    /// Where: the matched villages' targets, or `test_targets` for a
    /// non-public exercise/test.
    pub targets: Vec<Target>,
    /// Headline, description, instruction; at most `max_text` characters.
    pub text: String,
    /// Times to play.
    pub repeat: u32,
    /// Between repeats, in ms.
    pub interval_ms: Ms,
    /// Chime first.
    pub chime: bool,
    /// Stop (and never start) at or after this instant, when the alert says.
    pub expires: Option<Ms>,
    /// Broadcast id to stop first (with its repeats): the one this update replaces.
    pub replaces: Option<String>,
    /// The event (`暴雨`), for displays.
    pub event: String,
    /// The chosen info's severity.
    pub severity: Severity,
    /// The alert's status (an `Exercise` may play on test targets).
    pub status: Status,
}

/// The desk's answer to one alert.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Play this (stopping `replaces` first).
    Play(Plan),
    /// Stop a running broadcast.
    Cancel {
        /// The identifier of the alert that cancels.
        alert_id: String,
        /// The broadcast to stop (with its repeats).
        broadcast_id: String,
        /// Why, for logs and the dashboard.
        reason: String,
    },
    /// Nothing to do.
    Ignore {
        /// Why, for logs and the dashboard.
        reason: String,
    },
}

pub(super) fn ignore(reason: impl Into<String>) -> Decision {
    Decision::Ignore {
        reason: reason.into(),
    }
}

/// The broadcast id of an alert: `cap-` and the first 16 hex digits of the
/// SHA-256 of its identifier. Stable across restarts and gateways.
pub fn broadcast_id(identifier: &str) -> String {
    let h = Sha256::digest(identifier.as_bytes());
    format!("cap-{}", hex::encode(&h[..8]))
}

/// SHA-256 of a document's bytes, as [`Desk::handle`](super::Desk::handle) wants it.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Milliseconds since the epoch of a CAP time.
pub fn to_ms(t: OffsetDateTime) -> Ms {
    (t.unix_timestamp_nanos() / 1_000_000) as Ms
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Play(p) => write!(
                f,
                "play {} ({}) at {} on {} target(s){}",
                p.broadcast_id,
                p.alert_id,
                p.priority,
                p.targets.len(),
                p.replaces
                    .as_deref()
                    .map(|r| format!(", replacing {r}"))
                    .unwrap_or_default()
            ),
            Decision::Cancel {
                broadcast_id,
                reason,
                ..
            } => write!(f, "cancel {broadcast_id}: {reason}"),
            Decision::Ignore { reason } => write!(f, "ignore: {reason}"),
        }
    }
}
