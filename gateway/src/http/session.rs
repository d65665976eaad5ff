//! Log in, log out and who-am-i: the session cookie and its CSRF token,
//! with the login limiter (the attempt is reserved before the password is
//! verified) and the bounded password pool (429 `busy` when full).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::audited::Change;
use super::{
    ApiError, ApiResult, AppState, Body, ClientIp, Ctx, SESSION_COOKIE, Validate, check_len,
};
use crate::auth::{self, NewAudit, Refusal, Via};
use crate::base::error::Error;

/// `POST /api/v1/login`
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
}

impl Validate for LoginBody {
    fn validate(&self) -> Result<(), Error> {
        check_len("user", &self.user, 1, 64)?;
        if self.password.is_empty() || self.password.len() > 1024 {
            return Err(Error::invalid("password must be 1-1024 bytes"));
        }
        Ok(())
    }
}

fn session_cookie(st: &AppState, headers: &HeaderMap, value: &str, max_age: i64) -> HeaderValue {
    let tls = st.secure_cookies
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            == Some("https");
    let s = format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if tls { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&s)
        .unwrap_or_else(|_| HeaderValue::from_static("tgw_session=; Max-Age=0"))
}

/// 429 in the JSON error envelope with `Retry-After: secs`.
fn too_many(code: &'static str, message: String, secs: u64) -> Response {
    let mut resp = ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message).into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

pub(super) async fn login(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Body(b): Body<LoginBody>,
) -> ApiResult {
    let source = ip.to_string();
    let audit = |action: &str, outcome: &str| {
        // A refused login's row is an optional write: on a low disk it is
        // skipped (and counted in tgw_disk_skipped_writes_total).
        if outcome != "ok" && !st.metrics.optional_write("audit_refused_login") {
            return;
        }
        let _ = st.users.audit(NewAudit {
            actor: &b.user,
            source: &source,
            action,
            target: Some(&b.user),
            outcome,
            ..Default::default()
        });
    };
    // Reserved before the password is verified: concurrent attempts beyond
    // a limit are refused here, without verifying.
    let attempt = match st.limiter.reserve(ip, &b.user) {
        Ok(a) => a,
        Err(r) => {
            audit("login", r.outcome());
            tracing::warn!(user = %b.user, source = %source, outcome = r.outcome(), "login refused");
            let secs = r.retry_after().as_secs() + 1;
            let what = match r {
                Refusal::Slowed(_) => "too many failed logins for this user",
                Refusal::InFlight(_) => "login attempts in progress",
                _ => "too many failed logins",
            };
            return Ok(too_many(
                r.code(),
                format!("{what}; retry in {secs} s"),
                secs,
            ));
        }
    };
    let role = match st.users.verify(&b.user, &b.password).await {
        Ok(role) => role,
        Err(auth::AuthError::Busy) => {
            // The password was not checked: the attempt does not count.
            attempt.release();
            audit("login", "busy");
            tracing::warn!(user = %b.user, source = %source, "login refused: password pool full");
            return Ok(too_many(
                "busy",
                "too many logins in progress; retry in 1 s".into(),
                1,
            ));
        }
        Err(e) => {
            attempt.release();
            return Err(e.into());
        }
    };
    let Some(role) = role else {
        let locked = attempt.failed();
        audit("login", if locked { "failed_locked" } else { "failed" });
        tracing::warn!(user = %b.user, source = %source, locked, "login failed");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "wrong user name or password",
        ));
    };
    attempt.succeeded();
    let (sid, csrf) = st.users.create_session(&b.user, &source)?;
    audit("login", "ok");
    tracing::info!(user = %b.user, source = %source, "login");
    let mut r =
        Json(serde_json::json!({ "user": b.user, "role": role, "csrf": csrf })).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&st, &headers, &sid, auth::SESSION_TTL.whole_seconds()),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

pub(super) async fn logout(State(st): State<AppState>, headers: HeaderMap, ctx: Ctx) -> ApiResult {
    let change = Change {
        ctx: &ctx,
        action: "logout",
        target: Some(&ctx.who.user),
        before: None,
    };
    st.audited(
        change,
        || match &ctx.who.via {
            Via::Session { id_hash, .. } => st.users.end_session(id_hash),
            Via::Token => Ok(()),
        },
        |_| None,
    )?;
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&st, &headers, "", 0));
    Ok(r)
}

pub(super) async fn session(State(st): State<AppState>, ctx: Ctx) -> ApiResult {
    let csrf = match &ctx.who.via {
        Via::Session { csrf, .. } => Some(csrf.clone()),
        Via::Token => None,
    };
    let mut r = Json(serde_json::json!({
        "user": ctx.who.user, "role": ctx.who.role, "csrf": csrf,
        "township": st.township, "timezone": st.timezone,
    }))
    .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}
