//! The GB/T 28181 uplink over the API: `GET /api/v1/gb28181` (per platform:
//! registration state, last keepalive, catalog size, live relays, relays
//! started and failed since start), `GET /api/v1/gb28181/cameras` (each
//! camera's 20-digit id, for the dashboard's editor) and
//! `PUT /api/v1/gb28181/cameras/{id}` (a technician sets a camera's
//! 20-digit id; audited).

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use super::audited::Change;
use super::{ApiError, ApiResult, AppState, Body, Ctx, Validate};
use crate::base::error::{Error, ErrorKind};
use crate::store::gb_ids::check_camera_id;

pub(super) async fn status(State(st): State<AppState>) -> ApiResult {
    match &st.gb {
        Some(gb) => {
            let mut v = serde_json::to_value(gb.status())
                .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?;
            let c = crate::gb28181::metrics::counters();
            let failed: u64 = crate::gb28181::metrics::FAIL_REASONS
                .iter()
                .map(|r| {
                    c.relays_failed
                        .get_or_create(&crate::gb28181::metrics::ReasonLabel {
                            reason: (*r).into(),
                        })
                        .get()
                })
                .sum();
            v["relays_started"] = c.relays_started.get().into();
            v["relays_failed"] = failed.into();
            Ok(Json(v).into_response())
        }
        None => Err(Error::new(
            ErrorKind::Unavailable,
            "GB/T 28181 is not configured ([gb28181] in the configuration file)",
        )
        .into()),
    }
}

/// A camera as the id editor lists it.
#[derive(Serialize)]
struct GbCamera {
    id: String,
    name: Option<String>,
    village: Option<String>,
    grid: Option<String>,
    /// `null` until the catalog is next built (within 30 s of adoption).
    gb_id: Option<String>,
}

/// `GET /api/v1/gb28181/cameras`: every adopted camera and its GB id
/// (works without `[gb28181]` too, so ids can be set before the uplink).
pub(super) async fn cameras(State(st): State<AppState>) -> ApiResult {
    let rows = st.store.camera_rows()?;
    let mut out = Vec::with_capacity(rows.len());
    for c in rows {
        let gb_id = st.store.camera_gb_id(&c.id)?;
        out.push(GbCamera {
            id: c.id,
            name: c.name,
            village: c.village,
            grid: c.grid,
            gb_id,
        });
    }
    Ok(Json(out).into_response())
}

/// `PUT /api/v1/gb28181/cameras/{id}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GbIdBody {
    /// 20 digits: civil code (8), industry (2), type 131 or 132, serial (7).
    pub gb_id: String,
}

impl Validate for GbIdBody {
    fn validate(&self) -> Result<(), Error> {
        check_camera_id(&self.gb_id).map_err(Error::invalid)
    }
}

pub(super) async fn put_camera(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Body(b): Body<GbIdBody>,
) -> ApiResult {
    if st.store.device(&id)?.is_none_or(|d| d.kind != "camera") {
        return Err(ApiError::not_found("camera", &id));
    }
    let before = st.store.camera_gb_id(&id)?;
    let change = Change {
        ctx: &ctx,
        action: "camera.gb_id",
        target: Some(&id),
        before: before.map(|g| serde_json::json!({ "gb_id": g })),
    };
    st.audited(
        change,
        || st.store.set_camera_gb_id(&id, &b.gb_id, &ctx.who.user),
        |_| Some(serde_json::json!({ "gb_id": b.gb_id })),
    )?;
    Ok(Json(serde_json::json!({ "id": id, "gb_id": b.gb_id })).into_response())
}
