//! [`ApiError`], the JSON error body `{"error":{"code","message"}}` with a
//! stable code, and the conversions from the store's, auth's and the
//! daemon's errors.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::{self};
use crate::store::StoreError;

/// A JSON error with a stable code.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    pub(super) code: &'static str,
    pub(super) message: String,
}

impl ApiError {
    /// An error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    pub(crate) fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", message)
    }
    pub(crate) fn not_found(what: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no {what} `{id}`"),
        )
    }
}

impl IntoResponse for ApiError {
    /// The envelope; a 429 carries `Retry-After: 1` unless the handler
    /// sets a longer one.
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(serde_json::json!({ "error": { "code": self.code, "message": self.message } })),
        )
            .into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what, id } => ApiError::not_found(what, &id),
            StoreError::Invalid(m) => ApiError::bad(m),
            e => {
                tracing::warn!(error = %e, "store error in API");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string())
            }
        }
    }
}

impl From<auth::AuthError> for ApiError {
    fn from(e: auth::AuthError) -> Self {
        match e {
            auth::AuthError::Store(s) => s.into(),
            auth::AuthError::Invalid(m) => ApiError::bad(m),
            auth::AuthError::NoUser(u) => ApiError::not_found("user", &u),
            e @ auth::AuthError::Busy => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "busy", e.to_string())
            }
            e => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
        }
    }
}

impl From<crate::base::error::Error> for ApiError {
    /// The kind decides the status and the code (`invalid` → 400, …).
    fn from(e: crate::base::error::Error) -> Self {
        let kind = e.kind();
        if kind == crate::base::error::ErrorKind::Internal {
            tracing::warn!(error = %e, "internal error in API");
        }
        ApiError::new(
            StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            kind.code(),
            e.message(),
        )
    }
}

/// What a handler answers.
pub(crate) type ApiResult = Result<Response, ApiError>;
