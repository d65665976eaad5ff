//! Township inventory: the township, villages, grids and devices (list,
//! one, assign to a village/grid).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde::Deserialize;

use super::etag::json_list;
use super::{
    ApiError, ApiResult, AppState, Body, Ctx, Paging, Q, Validate, check_len, device_brief,
};
use crate::base::error::Error;
use crate::store::DeviceState;
use crate::store::lists::DeviceFilter;

impl Validate for () {}

pub(super) async fn townships(State(st): State<AppState>) -> ApiResult {
    let (code, name): (String, String) = st
        .store
        .township_row()
        .unwrap_or_else(|_| (String::new(), st.township.clone()));
    let villages = st.store.villages()?;
    Ok(Json(
        serde_json::json!([{ "code": code, "name": name, "villages": villages.len(),
        "grids": villages.iter().map(|v| v.grids.len()).sum::<usize>() }]),
    )
    .into_response())
}

pub(super) async fn villages(State(st): State<AppState>) -> ApiResult {
    Ok(Json(st.store.villages()?).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct GridQuery {
    village: Option<String>,
}
impl Validate for GridQuery {}

pub(super) async fn grids(State(st): State<AppState>, Q(q): Q<GridQuery>) -> ApiResult {
    let v: Vec<serde_json::Value> = st
        .store
        .villages()?
        .into_iter()
        .filter(|v| q.village.as_ref().is_none_or(|c| *c == v.code))
        .flat_map(|v| {
            let code = v.code.clone();
            v.grids
                .into_iter()
                .map(move |(g, n)| serde_json::json!({"code": g, "name": n, "village": code}))
        })
        .collect();
    Ok(Json(v).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct DeviceQuery {
    state: Option<DeviceState>,
    kind: Option<String>,
    village: Option<String>,
    grid: Option<String>,
    page: Option<u32>,
    per_page: Option<u32>,
}
impl Validate for DeviceQuery {
    fn validate(&self) -> Result<(), Error> {
        Paging {
            page: self.page,
            per_page: self.per_page,
        }
        .check()
    }
}

pub(super) async fn list_devices(
    State(st): State<AppState>,
    headers: HeaderMap,
    Q(q): Q<DeviceQuery>,
) -> ApiResult {
    let filter = DeviceFilter {
        state: q.state,
        kind: q.kind,
        village: q.village,
        grid: q.grid,
    };
    let (v, total) = st
        .store
        .device_page(&filter, super::cameras::sql_page(q.page, q.per_page))?;
    Ok(json_list(&headers, &v, total))
}

pub(super) async fn get_device(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult {
    match st.store.device(&id)? {
        Some(d) => Ok(Json(d).into_response()),
        None => Err(ApiError::not_found("device", &id)),
    }
}

/// `POST /api/v1/devices/{id}/assign`
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    /// Village code (or null for unassigned).
    pub village: Option<String>,
    /// Grid code within the village.
    pub grid: Option<String>,
}
impl Validate for AssignBody {
    fn validate(&self) -> Result<(), Error> {
        if let Some(v) = &self.village {
            check_len("village", v, 1, 64)?;
        }
        if let Some(g) = &self.grid {
            check_len("grid", g, 1, 64)?;
        }
        Ok(())
    }
}

pub(super) async fn assign(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Body(b): Body<AssignBody>,
) -> ApiResult {
    let before = st
        .store
        .device(&id)?
        .ok_or_else(|| ApiError::not_found("device", &id))?;
    let r = st.store.adopt(&id, b.village.as_deref(), b.grid.as_deref());
    let after = st.store.device(&id)?;
    st.audit(
        &ctx,
        "device.assign",
        Some(&id),
        Some(device_brief(&before)),
        after.as_ref().map(device_brief),
        if r.is_ok() { "ok" } else { "error" },
    );
    r?;
    Ok(Json(after).into_response())
}
