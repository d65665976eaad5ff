//! `/api/v1/audit`: the audit log, newest first.

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use serde::Deserialize;

use super::{ApiResult, AppState, Q, Validate, limit};
use crate::base::error::Error;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    limit: Option<u32>,
    before: Option<i64>,
}
impl Validate for AuditQuery {
    fn validate(&self) -> Result<(), Error> {
        limit(self.limit, 1, "limit").map(|_| ())
    }
}

pub(super) async fn audit_log(State(st): State<AppState>, Q(q): Q<AuditQuery>) -> ApiResult {
    let n = limit(q.limit, 100, "limit")?;
    Ok(Json(st.users.audit_log(n, q.before)?).into_response())
}
