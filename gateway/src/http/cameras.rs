//! Cameras: the health list and overview, one camera, its transitions,
//! snapshots and probe-now.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use super::etag::json_list;
use super::{
    ApiError, ApiResult, AppState, Ctx, Paging, Q, Validate, limit, speaker_inventory,
    speaker_store_err,
};
use crate::base::error::Error;
use crate::store::lists::{CameraFilter, Page};
use crate::store::township::CameraRow;
use crate::store::{DeviceState, Store, StoreError};
use tgw_core::health::Health;

/// A camera with its health, as listed by `/api/v1/cameras` and `tgw status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CameraStatus {
    /// Device id.
    pub id: String,
    /// Name.
    pub name: Option<String>,
    /// Address.
    pub address: Option<String>,
    /// Village code.
    pub village: Option<String>,
    /// Grid code.
    pub grid: Option<String>,
    /// Maker.
    pub manufacturer: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Health, once polled.
    pub health: Option<Health>,
}

impl From<CameraRow> for CameraStatus {
    fn from(c: CameraRow) -> Self {
        CameraStatus {
            id: c.id,
            name: c.name,
            address: c.address,
            village: c.village,
            grid: c.grid,
            manufacturer: c.manufacturer,
            model: c.model,
            health: c.health,
        }
    }
}

/// Cameras with their health.
pub fn camera_statuses(store: &Store) -> Result<Vec<CameraStatus>, StoreError> {
    Ok(store
        .camera_rows()?
        .into_iter()
        .map(CameraStatus::from)
        .collect())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct CameraQuery {
    village: Option<String>,
    grid: Option<String>,
    verdict: Option<String>,
    vendor: Option<String>,
    q: Option<String>,
    page: Option<u32>,
    per_page: Option<u32>,
}
impl Validate for CameraQuery {
    fn validate(&self) -> Result<(), Error> {
        if let Some(v) = &self.verdict
            && !matches!(v.as_str(), "ok" | "degraded" | "offline" | "unknown")
        {
            return Err(Error::invalid(format!(
                "verdict must be ok, degraded, offline or unknown, got `{v}`"
            )));
        }
        Paging {
            page: self.page,
            per_page: self.per_page,
        }
        .check()
    }
}

fn verdict_of(c: &CameraStatus) -> &'static str {
    c.health.as_ref().map_or("unknown", |h| h.verdict.label())
}

pub(super) async fn cameras(
    State(st): State<AppState>,
    headers: HeaderMap,
    Q(q): Q<CameraQuery>,
) -> ApiResult {
    let filter = CameraFilter {
        village: q.village,
        grid: q.grid,
        verdict: q.verdict,
        vendor: q.vendor,
        q: q.q,
    };
    let page = sql_page(q.page, q.per_page);
    let (rows, total) = st.store.camera_page(&filter, page)?;
    let v: Vec<CameraStatus> = rows.into_iter().map(CameraStatus::from).collect();
    Ok(json_list(&headers, &v, total))
}

/// `page`/`per_page` (checked by [`Paging::check`]) as a SQL page.
pub(super) fn sql_page(page: Option<u32>, per_page: Option<u32>) -> Page {
    match per_page {
        None => Page::default(),
        Some(n) => Page {
            offset: u64::from(page.unwrap_or(1).saturating_sub(1)) * u64::from(n),
            limit: Some(u64::from(n)),
        },
    }
}

pub(super) async fn camera(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let d = st
        .store
        .device(&id)?
        .ok_or_else(|| ApiError::not_found("camera", &id))?;
    // This camera's row only (not every camera's health, parsed).
    let health = st.store.health(&id)?;
    Ok(Json(serde_json::json!({ "device": d, "health": health })).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct LimitQuery {
    limit: Option<u32>,
}
impl Validate for LimitQuery {
    fn validate(&self) -> Result<(), Error> {
        limit(self.limit, 1, "limit").map(|_| ())
    }
}

pub(super) async fn camera_events(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<LimitQuery>,
) -> ApiResult {
    let n = limit(q.limit, 200, "limit")?;
    Ok(Json(st.store.health_events(Some(&id), n)?).into_response())
}

pub(super) async fn transitions(State(st): State<AppState>, Q(q): Q<LimitQuery>) -> ApiResult {
    let n = limit(q.limit, 50, "limit")?;
    Ok(Json(st.store.health_events(None, n)?).into_response())
}

pub(super) async fn overview(State(st): State<AppState>) -> ApiResult {
    let cams = camera_statuses(&st.store)?;
    let villages = st.store.villages()?;
    let mut by: BTreeMap<String, [usize; 4]> = BTreeMap::new();
    for v in &villages {
        by.insert(v.code.clone(), [0; 4]);
    }
    let mut alarms = Vec::new();
    for c in &cams {
        let k = c.village.clone().unwrap_or_default();
        let i = match verdict_of(c) {
            "ok" => 0,
            "degraded" => 1,
            "offline" => 2,
            _ => 3,
        };
        by.entry(k).or_insert([0; 4])[i] += 1;
        if let Some(h) = &c.health
            && i != 0
        {
            alarms.push(serde_json::json!({
                "id": c.id, "name": c.name, "village": c.village, "grid": c.grid, "address": c.address,
                "verdict": h.verdict.label(), "reasons": crate::base::live::reasons_of(h), "since": crate::store::fmt_time(h.verdict_since),
                "last_error": h.last_error_kind,
            }));
        }
    }
    let name_of = |code: &str| {
        villages
            .iter()
            .find(|v| v.code == code)
            .map(|v| v.name.clone())
    };
    let rows: Vec<serde_json::Value> = by
        .iter()
        .map(|(code, n)| serde_json::json!({"code": code, "name": name_of(code), "ok": n[0], "degraded": n[1], "offline": n[2], "unknown": n[3]}))
        .collect();
    let total = |i: usize| by.values().map(|n| n[i]).sum::<usize>();
    let inbox = st.store.devices(Some(DeviceState::Discovered))?.len();
    Ok(Json(serde_json::json!({
        "township": st.township,
        "cameras": cams.len(),
        "totals": {"ok": total(0), "degraded": total(1), "offline": total(2), "unknown": total(3)},
        "villages": rows,
        "alarms": alarms,
        "gateway_alarms": super::system::gateway_alarms(&st),
        "transitions": st.store.health_events(None, 20)?,
        "inbox": inbox,
        "speakers": speaker_inventory(&st)?.list().map_err(speaker_store_err)?.len(),
    }))
    .into_response())
}
pub(super) async fn snapshot(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult {
    if st.store.device(&id)?.is_none() {
        return Err(ApiError::not_found("camera", &id));
    }
    let t = crate::cameras::poller::target(&st.store, &id, false, &st.camera_access).ok_or_else(
        || {
            ApiError::new(
                StatusCode::CONFLICT,
                "not_adopted",
                format!("camera `{id}` is not adopted or has no ONVIF address"),
            )
        },
    )?;
    let Some(uri) = t.snapshot_uri else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_snapshot",
            format!("camera `{id}` has no snapshot URI (inventory pending or unsupported)"),
        ));
    };
    // The poller's guarded fetch: the login only to the camera's own hosts,
    // never as Basic over plain HTTP unless the camera is opted in.
    let r = device_drivers::onvif_client::fetch_snapshot(
        &st.http,
        &uri,
        t.creds.as_ref(),
        &t.scope,
        Duration::from_secs(5),
    )
    .await;
    st.audit(
        &ctx,
        "camera.snapshot",
        Some(&id),
        None,
        None,
        if r.is_ok() { "ok" } else { "device_error" },
    );
    let bytes = r.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "device",
            format!("camera `{id}`: {e}"),
        )
    })?;
    let ct = if bytes.starts_with(&[0xff, 0xd8]) {
        "image/jpeg"
    } else if bytes.starts_with(b"\x89PNG") {
        "image/png"
    } else {
        "application/octet-stream"
    };
    Ok((
        [
            (header::CONTENT_TYPE, ct),
            (header::CACHE_CONTROL, "no-store"),
        ],
        bytes,
    )
        .into_response())
}

pub(super) async fn probe_now(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult {
    if st.store.device(&id)?.is_none() {
        return Err(ApiError::not_found("device", &id));
    }
    let Some(tx) = &st.probe_tx else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "probing is not running in this process",
        ));
    };
    let r = tx.try_send(id.clone());
    st.audit(
        &ctx,
        "camera.probe",
        Some(&id),
        None,
        None,
        if r.is_ok() { "ok" } else { "busy" },
    );
    r.map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "probe queue full; retry shortly",
        )
    })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"id": id, "queued": true})),
    )
        .into_response())
}
