//! Fixing a camera's login from the dashboard: test a login at once
//! (`POST /api/v1/devices/{id}/credentials/test`), apply one login to many
//! cameras (`POST /api/v1/devices/credentials`), and re-probing the cameras
//! a login change touches (`probe_tx`: the poller re-reads the login and
//! re-inventories at once).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use device_drivers::onvif_client::Credentials;
use serde::Deserialize;

use super::{ApiError, ApiResult, AppState, Body, Ctx, Validate, check_ids, check_len};
use crate::base::clock::OnvifClock;
use crate::base::error::Error;
use crate::cameras::login_test::{self, LoginTest};
use crate::store::secrets::Password;

/// Deadline of one login test (clock and login call together).
pub const LOGIN_TEST_DEADLINE: Duration = Duration::from_secs(5);

/// Cameras whose login test is running (one at a time per camera).
#[derive(Clone, Default)]
pub(super) struct LoginTests {
    busy: Arc<Mutex<HashSet<String>>>,
}

/// Holds a camera's test slot; frees it when dropped (also when the client
/// goes away mid-test and the handler is dropped).
pub(super) struct TestSlot {
    busy: Arc<Mutex<HashSet<String>>>,
    id: String,
}

impl LoginTests {
    fn take(&self, id: &str) -> Option<TestSlot> {
        let mut b = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        b.insert(id.to_string()).then(|| TestSlot {
            busy: self.busy.clone(),
            id: id.to_string(),
        })
    }
}

impl Drop for TestSlot {
    fn drop(&mut self) {
        self.busy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// `POST /api/v1/devices/{id}/credentials/test`: optional; without it (or
/// with `{}`) the stored login (own or credential group) is tested.
#[derive(Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct LoginTestBody {
    /// Login name to test (with `password`).
    pub username: Option<String>,
    /// Password to test (never returned, logged or audited).
    pub password: Option<String>,
}
impl Validate for LoginTestBody {
    fn validate(&self) -> Result<(), Error> {
        match (&self.username, &self.password) {
            (None, None) => Ok(()),
            (Some(u), Some(p)) => {
                check_len("username", u, 1, 64)?;
                check_len("password", p, 1, 128)
            }
            _ => Err(Error::invalid("username and password go together")),
        }
    }
}

/// Sends `ids` to the poller so it re-reads their login and re-inventories
/// them at once; ids that do not fit in the queue are picked up by the
/// poller's own retries.
pub(super) fn probe_ids<'a>(st: &AppState, ids: impl IntoIterator<Item = &'a String>) {
    if let Some(tx) = &st.probe_tx {
        for id in ids {
            if tx.try_send(id.clone()).is_err() {
                tracing::debug!(camera = %id, "probe queue full; the poller retries on its own");
            }
        }
    }
}

pub(super) async fn test_credentials(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult {
    let body = optional_body(req).await?;
    let d = st
        .store
        .device(&id)?
        .ok_or_else(|| ApiError::not_found("device", &id))?;
    if d.kind != "camera" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_camera",
            format!("`{id}` is a {}: only cameras' logins can be tested", d.kind),
        ));
    }
    let (creds, source) = match (body.username, body.password) {
        (Some(u), Some(p)) => (Credentials::new(u, p), "body".to_string()),
        _ => match st.store.login_for(&id)? {
            Some(l) => (Credentials::new(l.username, l.password.expose()), l.source),
            None => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "no_login",
                    format!(
                        "camera `{id}` has no login (own or credential group); send username and password to test one"
                    ),
                ));
            }
        },
    };
    let Some(_slot) = st.login_tests.take(&id) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "busy",
            format!("a login test of camera `{id}` is already running"),
        ));
    };
    let from = d.address.as_deref().and_then(|a| a.parse().ok());
    let r = match device_drivers::wsd::preferred_xaddr(&d.xaddrs, from) {
        Some(xaddr) => {
            login_test::test_login(
                &st.http,
                &xaddr,
                &creds,
                LOGIN_TEST_DEADLINE,
                Arc::new(OnvifClock(st.clock.clone())),
            )
            .await
        }
        None => LoginTest {
            result: login_test::Outcome::NotOnvif,
            message: format!("camera `{id}` has no ONVIF device address"),
            clock_offset_ms: None,
            local: None,
        },
    };
    if let Some(what) = r.local {
        st.metrics.local_errors.report(what, "login-test");
    }
    let label = r.result.label();
    tracing::info!(camera = %id, result = label, source = %source, user = %ctx.who.user, "login test");
    st.audit(
        &ctx,
        "device.credentials.test",
        Some(&id),
        None,
        Some(serde_json::json!({
            "result": label, "message": r.message, "username": creds.username, "source": source,
        })),
        label,
    );
    Ok(Json(r).into_response())
}

/// The body when there is one (`{}` and no body both mean "the stored
/// login"), checked as [`Body`] checks any other.
async fn optional_body(req: Request) -> Result<LoginTestBody, ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, super::BODY_LIMIT)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("request body over {} bytes", super::BODY_LIMIT),
            )
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(LoginTestBody::default());
    }
    let req = Request::from_parts(parts, axum::body::Body::from(bytes));
    Ok(Body::<LoginTestBody>::from_request(req, &()).await?.0)
}

/// `POST /api/v1/devices/credentials`: one login for many cameras, or
/// `clear: true` to remove their own logins.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkCredentialsBody {
    /// Cameras (1-1000).
    pub ids: Vec<String>,
    /// Login name (with `password`).
    pub username: Option<String>,
    /// Password (write-only).
    pub password: Option<String>,
    /// `true`: remove the cameras' own logins (their credential group applies).
    #[serde(default)]
    pub clear: bool,
}
impl Validate for BulkCredentialsBody {
    fn validate(&self) -> Result<(), Error> {
        check_ids(&self.ids)?;
        match (&self.username, &self.password, self.clear) {
            (None, None, true) => Ok(()),
            (Some(u), Some(p), false) => {
                check_len("username", u, 1, 64)?;
                check_len("password", p, 1, 128)
            }
            (_, _, true) => Err(Error::invalid("clear: true takes no username or password")),
            _ => Err(Error::invalid("give username and password, or clear: true")),
        }
    }
}

pub(super) async fn bulk_credentials(
    State(st): State<AppState>,
    ctx: Ctx,
    Body(b): Body<BulkCredentialsBody>,
) -> ApiResult {
    let mut out = Vec::with_capacity(b.ids.len());
    let mut changed = Vec::new();
    for id in &b.ids {
        let r = match st.store.device(id)? {
            None => Err(format!("no device `{id}`")),
            Some(d) if d.kind != "camera" => Err(format!("`{id}` is a {}, not a camera", d.kind)),
            Some(d) => {
                let before = serde_json::json!({"has_credentials": d.has_credentials});
                let (action, done, after) = match (&b.username, &b.password) {
                    (Some(u), Some(p)) if !b.clear => (
                        "device.credentials",
                        st.store.set_device_login(id, u, &Password::new(p.clone())),
                        serde_json::json!({"has_credentials": true, "username": u, "password": "***"}),
                    ),
                    _ => (
                        "device.credentials.clear",
                        st.store.clear_device_login(id),
                        serde_json::json!({"own_login": false}),
                    ),
                };
                let outcome = if done.is_ok() { "ok" } else { "error" };
                st.audit(
                    &ctx,
                    action,
                    Some(id),
                    Some(before),
                    done.is_ok().then_some(after),
                    outcome,
                );
                done.map_err(|e| ApiError::from(e).message)
            }
        };
        match r {
            Ok(()) => {
                changed.push(id.clone());
                out.push(serde_json::json!({"id": id, "ok": true}));
            }
            Err(e) => out.push(serde_json::json!({"id": id, "ok": false, "error": e})),
        }
    }
    probe_ids(&st, &changed);
    Ok(Json(out).into_response())
}
