//! Operations: `/readyz`, `/metrics` and the run-time log level
//! (`/healthz` is a closure in the route table).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{ApiError, ApiResult, AppState, Body, Ctx, Validate, check_len};
use crate::base::disk::DiskLevel;
use crate::base::error::Error;

/// Ready when the store answers and the data volume is not low on space
/// (the disk watchdog, `crate::base::disk`); otherwise 503 with the reason.
pub(super) async fn readyz(State(st): State<AppState>) -> Response {
    if let Err(e) = st.store.schema_version() {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            e.to_string(),
        )
        .into_response();
    }
    let disk = st.metrics.disk();
    if let Some(reason) = disk.reason() {
        let code = match disk.level() {
            DiskLevel::Critical => "disk_critical",
            _ => "disk_low",
        };
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, reason).into_response();
    }
    "ready\n".into_response()
}

/// The gateway's own alarms in force, for the overview (`gateway_alarms`):
/// `disk_low` while the data volume is low or critical, `local_limit`
/// while camera calls fail on the gateway's side (the errno, how many
/// since when; cleared after a quiet minute).
pub(super) fn gateway_alarms(st: &AppState) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let disk = st.metrics.disk();
    if let Some(reason) = disk.reason() {
        out.push(serde_json::json!({
            "alarm": "disk_low", "level": disk.level().as_str(), "message": reason,
        }));
    }
    if let Some(e) = st.metrics.local_errors.active() {
        let now = tokio::time::Instant::now();
        let wall = |at: tokio::time::Instant| {
            crate::store::fmt_time(st.clock.now_utc() - now.duration_since(at))
        };
        out.push(serde_json::json!({
            "alarm": "local_limit", "errno": e.what.errno(), "what": e.what.what(), "task": e.task,
            "count": e.count, "since": wall(e.since), "last": wall(e.last),
        }));
    }
    out
}

pub(super) async fn metrics(State(st): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics.encode(),
    )
        .into_response()
}

/// `PUT /api/v1/log-level`
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogLevelBody {
    /// An EnvFilter directive, e.g. `info` or `info,tgw::poller=debug`.
    pub filter: String,
}
impl Validate for LogLevelBody {
    fn validate(&self) -> Result<(), Error> {
        check_len("filter", &self.filter, 1, 200)?;
        if !self
            .filter
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ",=_:.-".contains(c))
        {
            return Err(Error::invalid(
                "filter may contain only A-Z a-z 0-9 , = _ : . -",
            ));
        }
        Ok(())
    }
}
pub(super) async fn get_log_level(State(st): State<AppState>) -> ApiResult {
    let cur = st
        .current_level
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    Ok(
        Json(serde_json::json!({"filter": cur, "changeable": st.log_level.is_some()}))
            .into_response(),
    )
}

pub(super) async fn set_log_level(
    State(st): State<AppState>,
    ctx: Ctx,
    Body(b): Body<LogLevelBody>,
) -> ApiResult {
    let Some(f) = &st.log_level else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "log level cannot be changed in this process",
        ));
    };
    let before = st
        .current_level
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if let Err(e) = f(&b.filter) {
        st.audit(
            &ctx,
            "log_level.set",
            None,
            Some(serde_json::json!({"filter": before})),
            Some(serde_json::json!({"filter": b.filter})),
            "invalid",
        );
        return Err(ApiError::bad(format!("filter: {e}")));
    }
    *st.current_level.lock().unwrap_or_else(|p| p.into_inner()) = b.filter.clone();
    st.audit(
        &ctx,
        "log_level.set",
        None,
        Some(serde_json::json!({"filter": before})),
        Some(serde_json::json!({"filter": b.filter})),
        "ok",
    );
    Ok(Json(serde_json::json!({"filter": b.filter})).into_response())
}
