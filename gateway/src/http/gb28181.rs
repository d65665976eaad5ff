//! The GB/T 28181 uplink over the API: `GET /api/v1/gb28181` (per platform:
//! registration state, last keepalive, catalog size, live relays) and
//! `PUT /api/v1/gb28181/cameras/{id}` (a technician sets a camera's
//! 20-digit id; audited).

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde::Deserialize;

use super::audited::Change;
use super::{ApiError, ApiResult, AppState, Body, Ctx, Validate};
use crate::base::error::{Error, ErrorKind};
use crate::store::gb_ids::check_camera_id;

pub(super) async fn status(State(st): State<AppState>) -> ApiResult {
    match &st.gb {
        Some(gb) => Ok(Json(gb.status()).into_response()),
        None => Err(Error::new(
            ErrorKind::Unavailable,
            "GB/T 28181 is not configured ([gb28181] in the configuration file)",
        )
        .into()),
    }
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
