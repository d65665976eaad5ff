//! The kinds of failure, once (STYLE.md §17): each kind maps to one HTTP
//! status, one default reply code on the API and over MQTT, and one metric
//! label. Errors of every domain carry a kind; callers decide retry and
//! presentation from it, never from message text.

use std::fmt;

use serde::Serialize;

/// What went wrong, as far as a caller needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request or the data is malformed or out of range (a user's or a
    /// device's fault); retrying the same thing will not help.
    Invalid,
    /// The thing named does not exist.
    NotFound,
    /// It exists already, or the change races another one.
    Conflict,
    /// No or bad credentials.
    Unauthenticated,
    /// Credentials fine, privilege missing.
    Forbidden,
    /// Over a size cap.
    TooLarge,
    /// A format or codec we do not take.
    Unsupported,
    /// Too much at once; try again later.
    Busy,
    /// A device, the broker, the disk or a peer cannot be reached now.
    Unavailable,
    /// A peer took too long.
    Timeout,
    /// A device or peer answered, but wrongly (a SOAP fault, a bad reply).
    Device,
    /// Our own fault (a bug, a broken store).
    Internal,
}

impl ErrorKind {
    /// Every kind, for tables and tests.
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::Invalid,
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::Unauthenticated,
        ErrorKind::Forbidden,
        ErrorKind::TooLarge,
        ErrorKind::Unsupported,
        ErrorKind::Busy,
        ErrorKind::Unavailable,
        ErrorKind::Timeout,
        ErrorKind::Device,
        ErrorKind::Internal,
    ];

    /// The HTTP status an API answer with this kind carries.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::Invalid => 400,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::TooLarge => 413,
            ErrorKind::Unsupported => 422,
            ErrorKind::Busy => 503,
            ErrorKind::Unavailable => 503,
            ErrorKind::Timeout => 504,
            ErrorKind::Device => 502,
            ErrorKind::Internal => 500,
        }
    }

    /// The machine-readable code in API error bodies and MQTT replies
    /// (`{"error": {"code": …, "message": …}}`).
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Invalid => "invalid",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Busy => "busy",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Device => "device",
            ErrorKind::Internal => "internal",
        }
    }

    /// The value of a metric's `kind` label (bounded: these twelve).
    pub fn label(self) -> &'static str {
        self.code()
    }

    /// Whether trying the same thing again later may succeed.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Busy | ErrorKind::Unavailable | ErrorKind::Timeout
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_distinct_code_and_an_error_status() {
        let mut codes = std::collections::BTreeSet::new();
        for k in ErrorKind::ALL {
            assert!(codes.insert(k.code()), "{k:?} code repeated");
            assert!((400..600).contains(&k.http_status()), "{k:?}");
            assert_eq!(k.label(), k.code());
        }
        assert!(ErrorKind::Timeout.retryable() && !ErrorKind::Invalid.retryable());
        assert_eq!(ErrorKind::NotFound.http_status(), 404);
    }
}
