//! The access guard: bearer token or session cookie, the matched route's
//! role, and the CSRF token on mutating session requests.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{
    Access, ApiError, AppState, CSRF_HEADER, M, ROUTES, SESSION_COOKIE, cookie, find_route,
};
use crate::auth::{Principal, Via};

fn ct_eq(a: &str, b: &str) -> bool {
    use subtle_eq::eq;
    eq(a.as_bytes(), b.as_bytes())
}

mod subtle_eq {
    /// Constant-time equality for equal-length inputs.
    pub fn eq(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// Authenticates a request: bearer token first, then the session cookie.
fn authenticate(st: &AppState, headers: &HeaderMap) -> Result<Option<Principal>, ApiError> {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let v = v.to_str().unwrap_or("");
        let Some(tok) = v.strip_prefix("Bearer ").map(str::trim) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authorization must be `Bearer TOKEN`",
            ));
        };
        return Ok(st.users.token(tok)?);
    }
    match cookie(headers, SESSION_COOKIE) {
        Some(id) if !id.is_empty() => Ok(st.users.session(id)?),
        _ => Ok(None),
    }
}

/// Enforces the matched route's access level (and CSRF for sessions).
pub(super) async fn guard(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    // HEAD is served like GET (axum drops the body), to those allowed to GET.
    let method = if req.method() == Method::HEAD {
        Method::GET
    } else {
        req.method().clone()
    };
    let Some(route) = find_route(&method, &path) else {
        // The path exists (it matched) but not with this method: 405,
        // whatever the caller's role.
        return method_not_allowed(req.method(), &path);
    };
    let Access::Role(need) = route.access else {
        return next.run(req).await;
    };
    let who = match authenticate(&st, req.headers()) {
        Ok(Some(p)) => p,
        Ok(None) => {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "log in or send a bearer token",
            )
            .into_response();
        }
        Err(e) => return e.into_response(),
    };
    if who.role < need {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "needs role {} (you are {})",
                need.as_str(),
                who.role.as_str()
            ),
        )
        .into_response();
    }
    if route.method != M::Get
        && let Via::Session { csrf, .. } = &who.via
    {
        let sent = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct_eq(sent, csrf) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "missing or wrong X-CSRF-Token",
            )
            .into_response();
        }
    }
    req.extensions_mut().insert(who);
    next.run(req).await
}

/// 405 with `Allow` listing the path's methods (HEAD wherever GET is).
fn method_not_allowed(method: &Method, path: &str) -> Response {
    let mut allow: Vec<String> = Vec::new();
    for r in ROUTES.iter().filter(|r| r.path == path) {
        allow.push(r.method.method().to_string());
        if r.method == M::Get {
            allow.push("HEAD".into());
        }
    }
    let allow = allow.join(", ");
    let mut resp = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {path}; allowed: {allow}"),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&allow) {
        resp.headers_mut().insert(header::ALLOW, v);
    }
    resp
}

/// Headers on every response: no MIME sniffing, no framing, no referrer;
/// and a 413 from a body limit outside the JSON extractor (raw uploads)
/// turned into the JSON error envelope.
/// `Strict-Transport-Security` (one year) on every response when the
/// gateway is served over TLS.
pub(super) async fn hsts(mut resp: Response, on: bool) -> Response {
    if on {
        resp.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    resp
}

pub(super) async fn harden(resp: Response) -> Response {
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let mut resp = if resp.status() == StatusCode::PAYLOAD_TOO_LARGE && !json {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "request body over the limit of this route",
        )
        .into_response()
    } else {
        resp
    };
    let h = resp.headers_mut();
    for (k, v) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        h.entry(k).or_insert(HeaderValue::from_static(v));
    }
    resp
}
