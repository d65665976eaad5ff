//! The reply codes the gateway itself puts in `reply/{request_id}` bodies
//! (`{"error": {"code": …}}`), once: the parser's refusals, the session's
//! `busy`/`timeout` and the handlers' own codes. The wire strings are the
//! serde names; where a code is also an [`ErrorKind`] code it is spelled the
//! same (`too_large`, `busy`, `timeout`, `unavailable`).
//!
//! Codes decided elsewhere (the signed-command verifier's refusals such as
//! `bad_signature`) pass through as text.

use std::fmt;

use serde::Serialize;

use crate::error::ErrorKind;

/// A machine-readable reply code of a refused or rejected command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyCode {
    /// The payload is over `mqtt.command_max_bytes`.
    TooLarge,
    /// Not JSON, not an object, or an unknown top-level field.
    Malformed,
    /// `request_id` missing or not a topic level.
    BadRequestId,
    /// The topic's method is not one of [`super::METHODS`].
    UnknownMethod,
    /// `params` not an object, an unknown parameter, or a required one missing.
    BadParams,
    /// Too many commands at once, or a queue full.
    Busy,
    /// The handler took longer than the session allows.
    Timeout,
    /// What the command needs is not running yet (or any more).
    Unavailable,
    /// `probe` named a camera the store does not know.
    UnknownCamera,
    /// The store failed while answering.
    Store,
}

impl ReplyCode {
    /// Every code, for tables and tests.
    pub const ALL: [ReplyCode; 10] = [
        ReplyCode::TooLarge,
        ReplyCode::Malformed,
        ReplyCode::BadRequestId,
        ReplyCode::UnknownMethod,
        ReplyCode::BadParams,
        ReplyCode::Busy,
        ReplyCode::Timeout,
        ReplyCode::Unavailable,
        ReplyCode::UnknownCamera,
        ReplyCode::Store,
    ];

    /// The code on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyCode::TooLarge => ErrorKind::TooLarge.code(),
            ReplyCode::Malformed => "malformed",
            ReplyCode::BadRequestId => "bad_request_id",
            ReplyCode::UnknownMethod => "unknown_method",
            ReplyCode::BadParams => "bad_params",
            ReplyCode::Busy => ErrorKind::Busy.code(),
            ReplyCode::Timeout => ErrorKind::Timeout.code(),
            ReplyCode::Unavailable => ErrorKind::Unavailable.code(),
            ReplyCode::UnknownCamera => "unknown_camera",
            ReplyCode::Store => "store",
        }
    }

    /// The kind of failure (for metrics and retry decisions).
    pub fn kind(self) -> ErrorKind {
        match self {
            ReplyCode::TooLarge => ErrorKind::TooLarge,
            ReplyCode::Malformed | ReplyCode::BadRequestId | ReplyCode::BadParams => {
                ErrorKind::Invalid
            }
            ReplyCode::UnknownMethod => ErrorKind::Unsupported,
            ReplyCode::Busy => ErrorKind::Busy,
            ReplyCode::Timeout => ErrorKind::Timeout,
            ReplyCode::Unavailable => ErrorKind::Unavailable,
            ReplyCode::UnknownCamera => ErrorKind::NotFound,
            ReplyCode::Store => ErrorKind::Internal,
        }
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<ReplyCode> for String {
    fn from(c: ReplyCode) -> String {
        c.as_str().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_strings_are_the_serde_names_and_kind_codes_agree() {
        let mut seen = std::collections::BTreeSet::new();
        for c in ReplyCode::ALL {
            assert!(seen.insert(c.as_str()), "{c:?} repeated");
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::Value::from(c.as_str())
            );
            assert_eq!(c.to_string(), c.as_str());
        }
        for c in [
            ReplyCode::TooLarge,
            ReplyCode::Busy,
            ReplyCode::Timeout,
            ReplyCode::Unavailable,
        ] {
            assert_eq!(c.as_str(), c.kind().code());
        }
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            [
                "bad_params",
                "bad_request_id",
                "busy",
                "malformed",
                "store",
                "timeout",
                "too_large",
                "unavailable",
                "unknown_camera",
                "unknown_method"
            ]
        );
    }
}
