//! `/api/v1/recordings`: what aired (emergency broadcasts, live pages), as
//! recorded for the horns by `broadcast::aired`. A recording's id is its
//! broadcast's, so a broadcast's record and audit entry link to
//! `/api/v1/recordings/{broadcast id}`. Downloads are audited.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;

use super::etag::json_list;
use super::{ApiError, ApiResult, AppState, Ctx, Paging, Q, Validate};
use crate::base::error::Error;

/// Largest file served (the recorder's cap is 4 h ≈ 115 MB).
const MAX_DOWNLOAD: u64 = 128 << 20;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RecordingsQuery {
    page: Option<u32>,
    per_page: Option<u32>,
}
impl Validate for RecordingsQuery {
    fn validate(&self) -> Result<(), Error> {
        Paging {
            page: self.page,
            per_page: self.per_page,
        }
        .check()
    }
}

fn aired(st: &AppState) -> Result<&crate::broadcast::aired::Aired, ApiError> {
    st.aired.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "recordings are not kept by this gateway",
        )
    })
}

/// Recordings, newest first (`page`, `per_page`: default 1 and 50).
pub(super) async fn list(
    State(st): State<AppState>,
    headers: HeaderMap,
    Q(q): Q<RecordingsQuery>,
) -> ApiResult {
    let a = aired(&st)?;
    let per = q.per_page.unwrap_or(50);
    let offset = q.page.unwrap_or(1).saturating_sub(1).saturating_mul(per);
    let (rows, total) = a.store().recordings(per, offset)?;
    Ok(json_list(&headers, &rows, total))
}

/// The WAV file of a finished recording (audited: `recording.download`).
pub(super) async fn download(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult {
    let a = aired(&st)?.clone();
    let r = a
        .store()
        .recording(&id)?
        .ok_or_else(|| ApiError::not_found("recording", &id))?;
    if r.state != "done" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("recording {id} is {}", r.state),
        ));
    }
    let path = a.path_of(&r);
    let bytes = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, Error> {
        let len = std::fs::metadata(&path)
            .map_err(|e| Error::unavailable(format!("recording file: {e}")))?
            .len();
        if len > MAX_DOWNLOAD {
            return Err(Error::unavailable("recording file over the download cap"));
        }
        std::fs::read(&path).map_err(|e| Error::unavailable(format!("recording file: {e}")))
    })
    .await
    .map_err(|e| Error::internal(e.to_string()))??;
    st.audit(
        &ctx,
        "recording.download",
        Some(&id),
        None,
        Some(serde_json::json!({ "kind": r.kind, "bytes": bytes.len() })),
        "ok",
    );
    let disposition = format!("attachment; filename=\"{id}.wav\"");
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}
