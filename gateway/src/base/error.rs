//! The daemon's error type: a [`ErrorKind`] (which decides the HTTP status,
//! the MQTT reply code and the metric label, once, in `tgw_core::error`)
//! and a message that names what was wrong. Public functions return
//! [`Result`] instead of `Result<_, String>`.

use std::fmt;

pub use tgw_core::error::ErrorKind;

/// A failure with its kind and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

/// A result with the daemon's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// Bad input (400 / `invalid`).
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Invalid, message)
    }

    /// `what` `id` does not exist (404 / `not_found`).
    pub fn not_found(what: &str, id: &str) -> Error {
        Error::new(ErrorKind::NotFound, format!("no {what} `{id}`"))
    }

    /// A conflict (409 / `conflict`).
    pub fn conflict(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Conflict, message)
    }

    /// Our own fault (500 / `internal`).
    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Internal, message)
    }

    /// A peer or resource cannot be reached now (503 / `unavailable`).
    pub fn unavailable(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Unavailable, message)
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error with `context: ` in front of its message.
    pub fn context(self, context: impl fmt::Display) -> Error {
        Error {
            kind: self.kind,
            message: format!("{context}: {}", self.message),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keeps_the_kind_and_prefixes_the_message() {
        let e = Error::not_found("camera", "cam-1").context("probe");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.to_string(), "probe: no camera `cam-1`");
        assert_eq!(e.kind().http_status(), 404);
    }
}
