//! The embedded dashboard: the single page (zh-CN, `?lang=en`) and its
//! assets, compiled into the binary.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

use super::{ApiError, cookie};

const INDEX_HTML: &str = include_str!("../../web/index.html");
const APP_JS: &str = include_str!("../../web/app.js");
const APP_CSS: &str = include_str!("../../web/app.css");

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
        HeaderValue::from_static("default-src 'self'; img-src 'self' blob: data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    r
}

pub(super) async fn asset(Path(file): Path<String>) -> Response {
    let (body, ct) = match file.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        _ => return ApiError::not_found("asset", &file).into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, ct),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}
