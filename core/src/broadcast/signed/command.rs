//! What a verified command says, and why one is refused.

use crate::broadcast::{Ms, Priority, Target};
use crate::error::ErrorKind;

/// What a command asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Start the broadcast.
    Start,
    /// Stop the broadcast with this `id`.
    Stop,
}

/// What a `start` command plays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Text to speak (TTS).
    Text(String),
    /// A stored asset, `sha256:<64 hex>`.
    Asset(String),
}

/// A command that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmergencyCommand {
    /// The key that signed it.
    pub key_id: String,
    /// The broadcast id (1-128 of `[A-Za-z0-9._:-]`); `stop` names it.
    pub id: String,
    /// Start or stop.
    pub action: Action,
    /// Not valid at or after this instant.
    pub not_after: Ms,
    /// The nonce, now remembered until `not_after`.
    pub nonce: String,
    /// Where, each inside the key's scope; not empty, no duplicates.
    pub targets: Vec<Target>,
    /// `Emergency` unless the payload said `superior`.
    pub priority: Priority,
    /// For `start`: what to play. `None` for `stop`.
    pub content: Option<Content>,
    /// Volume 0-100, when given.
    pub volume: Option<u8>,
    /// Times to play (1-10), when given.
    pub repeat: Option<u8>,
}

/// Why a command was refused. `Display` is the reason for logs and replies;
/// [`Refusal::code`] is a bounded label for metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Over [`MAX_COMMAND_BYTES`](super::MAX_COMMAND_BYTES) (a command) or
    /// [`MAX_SIGNED_CAP_BYTES`](super::cap::MAX_SIGNED_CAP_BYTES) (a signed CAP document).
    #[error("message of {len} bytes is over the {max}-byte limit")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The envelope or payload is not what the format says; `field` names where.
    #[error("malformed command: `{field}`: {reason}")]
    Malformed {
        /// `envelope`, `key_id`, `payload`, `sig`, or a payload field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// No signature (`sig` missing, null or empty).
    #[error("unsigned command for key `{key_id}`: `sig` is missing")]
    Unsigned {
        /// The key id it claimed.
        key_id: String,
    },
    /// The key id is not in the key set.
    #[error("unknown key `{key_id}`")]
    UnknownKey {
        /// The key id it claimed.
        key_id: String,
    },
    /// The signature does not verify over the payload bytes with that key.
    #[error("bad signature for key `{key_id}`")]
    BadSignature {
        /// The key id it claimed.
        key_id: String,
    },
    /// `not_after` is at or before now.
    #[error("command `{id}` (key `{key_id}`) expired: not_after {not_after} is not after now")]
    Expired {
        /// Signing key.
        key_id: String,
        /// Command id.
        id: String,
        /// `not_after` as sent.
        not_after: String,
    },
    /// `not_after` is more than [`MAX_AHEAD_MS`](super::MAX_AHEAD_MS) ahead.
    #[error("command `{id}` (key `{key_id}`): not_after {not_after} is more than 24 h ahead")]
    TooFarAhead {
        /// Signing key.
        key_id: String,
        /// Command id.
        id: String,
        /// `not_after` as sent.
        not_after: String,
    },
    /// The nonce was already used by a command that has not expired.
    #[error("command `{id}` (key `{key_id}`) replays a nonce already used")]
    Replayed {
        /// Signing key.
        key_id: String,
        /// Command id.
        id: String,
    },
    /// The nonce memory holds `max` unexpired nonces: refused rather than
    /// forgetting one early (which would let it be replayed).
    #[error("nonce memory is full ({max} unexpired nonces): command refused")]
    NonceMemoryFull {
        /// The capacity.
        max: usize,
    },
    /// A target is not inside the key's scope.
    #[error("key `{key_id}` may not address `{target}`")]
    OutOfScope {
        /// Signing key.
        key_id: String,
        /// The first target outside its scope.
        target: String,
    },
}

impl Refusal {
    /// The kind of failure: a bad signature or key is `unauthenticated`, a
    /// target outside the key's scope `forbidden`, a replay `conflict`, a
    /// full nonce memory `busy`, anything else about the bytes `invalid`
    /// (`too_large` over the size cap).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Refusal::TooLarge { .. } => ErrorKind::TooLarge,
            Refusal::Malformed { .. } | Refusal::Expired { .. } | Refusal::TooFarAhead { .. } => {
                ErrorKind::Invalid
            }
            Refusal::Unsigned { .. }
            | Refusal::UnknownKey { .. }
            | Refusal::BadSignature { .. } => ErrorKind::Unauthenticated,
            Refusal::Replayed { .. } => ErrorKind::Conflict,
            Refusal::NonceMemoryFull { .. } => ErrorKind::Busy,
            Refusal::OutOfScope { .. } => ErrorKind::Forbidden,
        }
    }

    /// A bounded label for metrics and replies.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::TooLarge { .. } => "too_large",
            Refusal::Malformed { .. } => "malformed",
            Refusal::Unsigned { .. } => "unsigned",
            Refusal::UnknownKey { .. } => "unknown_key",
            Refusal::BadSignature { .. } => "bad_signature",
            Refusal::Expired { .. } => "expired",
            Refusal::TooFarAhead { .. } => "too_far_ahead",
            Refusal::Replayed { .. } => "replayed",
            Refusal::NonceMemoryFull { .. } => "nonce_memory_full",
            Refusal::OutOfScope { .. } => "out_of_scope",
        }
    }
}

pub(super) fn malformed(field: &'static str, reason: impl Into<String>) -> Refusal {
    Refusal::Malformed {
        field,
        reason: reason.into(),
    }
}
