//! Where devices are: `GET /api/v1/places` (every placed device) and
//! placing one on the township map by drag and drop (a point on the
//! drawing, 0..1 each way) or by longitude/latitude (audited).

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde::Deserialize;

use super::audited::Change;
use super::{ApiError, ApiResult, AppState, Body, Ctx, Q, Validate};
use crate::base::error::Error;
use crate::store::places::Place;

pub(super) async fn list(State(st): State<AppState>) -> ApiResult {
    Ok(Json(st.store.places()?).into_response())
}

/// `PUT /api/v1/places/{id}`: a point on the map and/or lon/lat.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceBody {
    /// `camera` (default) or `speaker`.
    #[serde(default)]
    pub kind: Option<String>,
    /// 0..1 across the map drawing.
    pub x: Option<f64>,
    /// 0..1 down the map drawing.
    pub y: Option<f64>,
    /// Longitude, -180..180.
    pub lon: Option<f64>,
    /// Latitude, -90..90.
    pub lat: Option<f64>,
}

fn kind_ok(kind: Option<&str>) -> Result<&str, Error> {
    match kind.unwrap_or("camera") {
        k @ ("camera" | "speaker") => Ok(k),
        k => Err(Error::invalid(format!(
            "kind must be camera or speaker, got `{k}`"
        ))),
    }
}

fn within(name: &str, v: Option<f64>, lo: f64, hi: f64) -> Result<(), Error> {
    match v {
        Some(x) if !(lo..=hi).contains(&x) => Err(Error::invalid(format!(
            "{name} must be {lo}..{hi}, got {x}"
        ))),
        _ => Ok(()),
    }
}

impl Validate for PlaceBody {
    fn validate(&self) -> Result<(), Error> {
        kind_ok(self.kind.as_deref())?;
        within("x", self.x, 0.0, 1.0)?;
        within("y", self.y, 0.0, 1.0)?;
        within("lon", self.lon, -180.0, 180.0)?;
        within("lat", self.lat, -90.0, 90.0)?;
        if self.x.is_some() != self.y.is_some() || self.lon.is_some() != self.lat.is_some() {
            return Err(Error::invalid("give x with y, and lon with lat"));
        }
        if self.x.is_none() && self.lon.is_none() {
            return Err(Error::invalid("give x and y, or lon and lat"));
        }
        Ok(())
    }
}

fn exists(st: &AppState, kind: &str, id: &str) -> Result<(), ApiError> {
    let found = match kind {
        "camera" => st.store.device(id)?.is_some(),
        _ => !st.store.speaker_rows(Some(id))?.is_empty(),
    };
    if found {
        Ok(())
    } else {
        Err(ApiError::not_found(kind, id))
    }
}

pub(super) async fn put(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Body(b): Body<PlaceBody>,
) -> ApiResult {
    let kind = kind_ok(b.kind.as_deref())?.to_string();
    exists(&st, &kind, &id)?;
    let before = st.store.place(&kind, &id)?;
    let p = Place {
        kind: kind.clone(),
        id: id.clone(),
        x: b.x,
        y: b.y,
        lon: b.lon,
        lat: b.lat,
        updated_by: ctx.who.user.clone(),
        updated_at: String::new(),
    };
    let change = Change {
        ctx: &ctx,
        action: "device.place",
        target: Some(&id),
        before: before.map(|b| serde_json::json!({"x": b.x, "y": b.y, "lon": b.lon, "lat": b.lat})),
    };
    st.audited(
        change,
        || st.store.set_place(&p),
        |_| Some(serde_json::json!({"kind": kind, "x": p.x, "y": p.y, "lon": p.lon, "lat": p.lat})),
    )?;
    let saved = st.store.place(&kind, &id)?;
    Ok(Json(saved).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct KindQuery {
    kind: Option<String>,
}
impl Validate for KindQuery {
    fn validate(&self) -> Result<(), Error> {
        kind_ok(self.kind.as_deref()).map(|_| ())
    }
}

pub(super) async fn delete(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Q(q): Q<KindQuery>,
) -> ApiResult {
    let kind = kind_ok(q.kind.as_deref())?.to_string();
    let Some(before) = st.store.place(&kind, &id)? else {
        return Err(ApiError::not_found("placed device", &id));
    };
    let change = Change {
        ctx: &ctx,
        action: "device.place",
        target: Some(&id),
        before: Some(
            serde_json::json!({"x": before.x, "y": before.y, "lon": before.lon, "lat": before.lat}),
        ),
    };
    st.audited(change, || st.store.clear_place(&kind, &id), |_| None)?;
    Ok(Json(serde_json::json!({"id": id, "kind": kind, "placed": false})).into_response())
}
