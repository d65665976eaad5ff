//! Trend charts' data, downsampled in SQL (store/trends.rs): one camera's
//! fps, bitrate, loss, clock offset and availability over 24 h or 7 days;
//! villages' availability per day; broadcast outcomes per week.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde::Deserialize;

use super::{ApiError, ApiResult, AppState, Q, Validate};
use crate::base::error::Error;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RangeQuery {
    range: Option<String>,
}
impl Validate for RangeQuery {
    fn validate(&self) -> Result<(), Error> {
        span(self.range.as_deref()).map(|_| ())
    }
}

/// (span, bucket) in seconds: 24 h in 96 quarter hours, 7 d in 84 two-hour buckets.
fn span(range: Option<&str>) -> Result<(i64, i64), Error> {
    match range.unwrap_or("24h") {
        "24h" => Ok((86_400, 900)),
        "7d" => Ok((7 * 86_400, 7_200)),
        r => Err(Error::invalid(format!(
            "range must be 24h or 7d, got `{r}`"
        ))),
    }
}

pub(super) async fn camera(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<RangeQuery>,
) -> ApiResult {
    if st.store.device(&id)?.is_none() {
        return Err(ApiError::not_found("camera", &id));
    }
    let (s, b) = span(q.range.as_deref())?;
    let points = st.store.camera_trend(&id, s, b)?;
    Ok(
        Json(serde_json::json!({"id": id, "span_secs": s, "bucket_secs": b, "points": points}))
            .into_response(),
    )
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct CountQuery {
    days: Option<u32>,
    weeks: Option<u32>,
}
impl Validate for CountQuery {
    fn validate(&self) -> Result<(), Error> {
        if self.days.is_some_and(|d| !(1..=90).contains(&d)) {
            return Err(Error::invalid("days must be 1-90"));
        }
        if self.weeks.is_some_and(|w| !(1..=52).contains(&w)) {
            return Err(Error::invalid("weeks must be 1-52"));
        }
        Ok(())
    }
}

pub(super) async fn villages(State(st): State<AppState>, Q(q): Q<CountQuery>) -> ApiResult {
    let days = i64::from(q.days.unwrap_or(30));
    Ok(Json(st.store.village_availability(days)?).into_response())
}

pub(super) async fn broadcasts(State(st): State<AppState>, Q(q): Q<CountQuery>) -> ApiResult {
    let weeks = i64::from(q.weeks.unwrap_or(12));
    Ok(Json(st.store.broadcast_weeks(weeks)?).into_response())
}
