//! Acknowledging an alarm: an operator writes what was done about a
//! camera's current alarm (audited). The alarm is the camera's verdict
//! since `since`; a later alarm of the same camera is a new one.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde::Deserialize;

use super::audited::Change;
use super::{ApiError, ApiResult, AppState, Body, Ctx, Q, Validate, check_len, limit};
use crate::base::error::Error;

/// `POST /api/v1/alarms/{id}/ack`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckBody {
    /// The alarm's start as the overview lists it (`since`).
    pub since: String,
    /// What was done (1-500 characters).
    pub note: String,
}
impl Validate for AckBody {
    fn validate(&self) -> Result<(), Error> {
        check_len("since", &self.since, 10, 40)?;
        if time::OffsetDateTime::parse(&self.since, &time::format_description::well_known::Rfc3339)
            .is_err()
        {
            return Err(Error::invalid("since must be an RFC 3339 time"));
        }
        check_len("note", self.note.trim(), 1, 500)
    }
}

pub(super) async fn ack(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Body(b): Body<AckBody>,
) -> ApiResult {
    if st.store.device(&id)?.is_none() {
        return Err(ApiError::not_found("camera", &id));
    }
    let change = Change {
        ctx: &ctx,
        action: "alarm.ack",
        target: Some(&id),
        before: None,
    };
    let note = b.note.trim().to_string();
    let a = st.audited(
        change,
        || st.store.ack_alarm(&id, &b.since, &note, &ctx.who.user),
        |a| Some(serde_json::json!({"since": a.since, "note": a.note, "by": a.by})),
    )?;
    Ok(Json(a).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct AckQuery {
    limit: Option<u32>,
}
impl Validate for AckQuery {
    fn validate(&self) -> Result<(), Error> {
        limit(self.limit, 1, "limit").map(|_| ())
    }
}

pub(super) async fn acks(State(st): State<AppState>, Q(q): Q<AckQuery>) -> ApiResult {
    let n = limit(q.limit, 500, "limit")?;
    Ok(Json(st.store.alarm_acks(n)?).into_response())
}
