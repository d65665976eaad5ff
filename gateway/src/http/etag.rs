//! JSON list answers with `X-Total-Count` and a strong `ETag` of the body:
//! a request whose `If-None-Match` names it gets 304 without a body (the
//! dashboard polls lists every few seconds; most polls change nothing).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// `items` as JSON with `X-Total-Count: total` and its `ETag`, or 304 when
/// `If-None-Match` (in `req`) already names that ETag.
pub(super) fn json_list<T: Serialize>(req: &HeaderMap, items: &T, total: u64) -> Response {
    let body = match serde_json::to_vec(items) {
        Ok(b) => b,
        Err(e) => {
            return super::ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("cannot encode the list: {e}"),
            )
            .into_response();
        }
    };
    let digest = Sha256::digest(&body);
    let tag = format!("\"{}\"", hex::encode(&digest[..16]));
    let matches = req
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == tag || t == "*");
    let mut resp = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response()
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    // Cached copies must be revalidated: lists change with every verdict.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&total.to_string()) {
        h.insert("x-total-count", v);
    }
    resp
}
