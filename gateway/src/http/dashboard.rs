//! The embedded dashboard: the single page (zh-CN, `?lang=en`) and its
//! assets (native ES modules, one per view, the i18n table, the styles and
//! the favicon), compiled into the binary. Assets carry a strong ETag (a
//! hash of their bytes) and `Cache-Control: no-cache`, so a browser
//! revalidates and gets `304 Not Modified` until the binary changes.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::{ApiError, cookie};

const INDEX_HTML: &str = include_str!("../../web/index.html");

const JS: &str = "text/javascript; charset=utf-8";

/// Every asset: file name, bytes, content type.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.js", include_str!("../../web/app.js"), JS),
    ("core.js", include_str!("../../web/core.js"), JS),
    ("i18n.js", include_str!("../../web/i18n.js"), JS),
    ("overview.js", include_str!("../../web/overview.js"), JS),
    ("alarms.js", include_str!("../../web/alarms.js"), JS),
    ("cameras.js", include_str!("../../web/cameras.js"), JS),
    ("inbox.js", include_str!("../../web/inbox.js"), JS),
    ("places.js", include_str!("../../web/places.js"), JS),
    ("trends.js", include_str!("../../web/trends.js"), JS),
    ("speakers.js", include_str!("../../web/speakers.js"), JS),
    ("broadcasts.js", include_str!("../../web/broadcasts.js"), JS),
    ("timetable.js", include_str!("../../web/timetable.js"), JS),
    ("alerts.js", include_str!("../../web/alerts.js"), JS),
    ("audit.js", include_str!("../../web/audit.js"), JS),
    ("users.js", include_str!("../../web/users.js"), JS),
    ("paging.js", include_str!("../../web/paging.js"), JS),
    ("gb28181.js", include_str!("../../web/gb28181.js"), JS),
    // The live paging AudioWorklet (a module: `script-src` 'self' via default-src).
    (
        "paging-worklet.js",
        include_str!("../../web/paging-worklet.js"),
        JS,
    ),
    (
        "app.css",
        include_str!("../../web/app.css"),
        "text/css; charset=utf-8",
    ),
    (
        "favicon.svg",
        include_str!("../../web/favicon.svg"),
        "image/svg+xml",
    ),
];

/// The ETag of each asset, in [`ASSETS`] order: the first 16 bytes of the
/// SHA-256 of its content, quoted.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|(_, body, _)| {
            format!(
                "\"{}\"",
                hex::encode(&Sha256::digest(body.as_bytes())[..16])
            )
        })
        .collect()
});

pub(super) async fn index(headers: HeaderMap, uri: axum::http::Uri) -> Response {
    let q_en = uri
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "lang=en"));
    let q_zh = uri
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "lang=zh-CN"));
    let lang = if q_en || (!q_zh && cookie(&headers, "tgw_lang") == Some("en")) {
        "en"
    } else {
        "zh-CN"
    };
    let mut r = Html(INDEX_HTML.replace("{{LANG}}", lang)).into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    r
}

pub(super) async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|(name, _, _)| *name == file) else {
        return ApiError::not_found("asset", &file).into_response();
    };
    let (_, body, ct) = ASSETS[i];
    let etag = ETAGS[i].as_str();
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let head = [
        (header::CONTENT_TYPE, ct),
        (header::CACHE_CONTROL, "no-cache"),
        (header::ETAG, etag),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    if fresh {
        (StatusCode::NOT_MODIFIED, head).into_response()
    } else {
        (head, body).into_response()
    }
}

/// The asset names (the JS check and the tests list them).
#[cfg(test)]
pub(super) fn asset_names() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|(n, _, _)| *n)
}
