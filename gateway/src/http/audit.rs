//! `/api/v1/audit`: the audit log, newest first. An entry about a
//! broadcast or a live page whose audio was recorded (`broadcast::aired`:
//! every emergency and every live page) carries `recording`: the
//! recording's id, state and length and where to download it
//! (`GET /api/v1/recordings/{id}`), so what aired is one click from who
//! started it.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use super::{ApiResult, AppState, Q, Validate, limit};
use crate::base::error::Error;
use crate::store::audit::AuditEntry;
use crate::store::recordings::Recording;

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

/// The recording an audit entry links to.
#[derive(Debug, Serialize)]
struct RecordingLink {
    /// The recording's id (the broadcast's).
    id: String,
    /// `emergency` or `live-page`.
    kind: String,
    /// `recording`, `done` (downloadable) or `failed`.
    state: String,
    /// Length so far.
    duration_ms: i64,
    /// The download (`GET`, audited).
    href: String,
}

impl From<Recording> for RecordingLink {
    fn from(r: Recording) -> Self {
        RecordingLink {
            href: format!("/api/v1/recordings/{}", r.id),
            id: r.id,
            kind: r.kind,
            state: r.state,
            duration_ms: r.duration_ms,
        }
    }
}

/// One entry as the API returns it.
#[derive(Debug, Serialize)]
struct AuditRow {
    #[serde(flatten)]
    entry: AuditEntry,
    #[serde(skip_serializing_if = "Option::is_none")]
    recording: Option<RecordingLink>,
}

/// Whether an entry's target is a broadcast (or live page) id that may
/// have a recording.
fn about_a_broadcast(e: &AuditEntry) -> bool {
    e.action.starts_with("broadcast.") || e.action.starts_with("paging.")
}

pub(super) async fn audit_log(State(st): State<AppState>, Q(q): Q<AuditQuery>) -> ApiResult {
    let n = limit(q.limit, 100, "limit")?;
    let entries = st.users.audit_log(n, q.before)?;
    let mut found: HashMap<String, Option<Recording>> = HashMap::new();
    let mut rows = Vec::with_capacity(entries.len());
    for entry in entries {
        let recording = match (&st.aired, &entry.target) {
            (Some(a), Some(target)) if about_a_broadcast(&entry) => {
                if !found.contains_key(target) {
                    // A store error hides the link, never the log.
                    let r = a.store().recording(target).ok().flatten();
                    found.insert(target.clone(), r);
                }
                found
                    .get(target)
                    .cloned()
                    .flatten()
                    .map(RecordingLink::from)
            }
            _ => None,
        };
        rows.push(AuditRow { entry, recording });
    }
    Ok(Json(rows).into_response())
}
