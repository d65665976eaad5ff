//! `POST /api/v1/cameras/{id}/sync-time` (technician, audited as
//! `camera.sync_time`): set the camera's clock to the time the poller
//! measures it against (ours, or a GB/T 28181 platform's with `[gb28181]
//! time_source`) with the township's zone as a POSIX TZ, or point it at an
//! NTP server, and return the offset measured before and after and the time
//! source (`cameras::clock_sync`).

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde::Deserialize;

use super::{ApiResult, AppState, Body, Ctx, Validate};
use crate::base::error::Error;
use crate::cameras::clock_sync::{self, SyncMode};

/// The body: both fields optional (`{}` sets the time).
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncTimeBody {
    /// NTP server (address or name) to point the camera at instead.
    #[serde(default)]
    pub ntp: Option<String>,
    /// POSIX time zone (default: the township's, e.g. `CST-8`).
    #[serde(default)]
    pub tz: Option<String>,
}

impl Validate for SyncTimeBody {
    fn validate(&self) -> Result<(), Error> {
        for (k, v) in [("ntp", &self.ntp), ("tz", &self.tz)] {
            if let Some(v) = v
                && (v.is_empty()
                    || v.len() > 253
                    || !v
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".-:+<>_".contains(c)))
            {
                return Err(Error::invalid(format!(
                    "{k}: 1-253 characters of letters, digits and . - : + < > _"
                )));
            }
        }
        Ok(())
    }
}

pub(super) async fn sync_time(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Body(b): Body<SyncTimeBody>,
) -> ApiResult {
    let tz = b.tz.unwrap_or_else(|| clock_sync::posix_tz(&st.timezone));
    let mode = match b.ntp {
        Some(server) => SyncMode::Ntp { server, tz },
        None => SyncMode::Manual { tz },
    };
    // The time the poller measures cameras against: a GB/T 28181
    // platform's with `[gb28181] time_source`, else ours.
    let reference = st
        .gb
        .as_ref()
        .and_then(|g| g.time_reference())
        .and_then(|r| r.get());
    let r = clock_sync::sync_time(
        &st.store,
        &id,
        &mode,
        &st.camera_access,
        st.clock.clone(),
        Duration::from_secs(5),
        reference,
    )
    .await;
    match r {
        Ok(rep) => {
            let v = serde_json::to_value(&rep).unwrap_or_default();
            st.audit(
                &ctx,
                "camera.sync_time",
                Some(&id),
                None,
                Some(v.clone()),
                "ok",
            );
            Ok(Json(v).into_response())
        }
        Err(e) => {
            st.audit(
                &ctx,
                "camera.sync_time",
                Some(&id),
                None,
                None,
                e.kind().label(),
            );
            Err(e.into())
        }
    }
}
