//! Setting a camera's clock (`tgw camera sync-time`, `POST
//! /api/v1/cameras/{id}/sync-time`): SetSystemDateAndTime with our UTC time
//! and the township's zone as a POSIX TZ (`CST-8`), or SetNTP plus
//! DateTimeType NTP; the offset is measured before and after
//! (unauthenticated GetSystemDateAndTime) and reported. A refusal names the
//! camera's fault text; the login never appears in it.

use std::sync::Arc;
use std::time::Duration;

use device_drivers::onvif_client::{ClientOptions, Credentials, OnvifClient, OnvifError};
use serde::Serialize;
use tgw_core::error::ErrorKind;

use crate::base::clock::{Clock, OnvifClock};
use crate::base::error::Error;
use crate::cameras::device::{ClockSetting, OnvifSession};
use crate::cameras::poller::target;
use crate::config::CameraAccess;
use crate::store::Store;

/// How to set the clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncMode {
    /// Our UTC time, with the local zone `tz` (POSIX, e.g. `CST-8`).
    Manual {
        /// POSIX TZ.
        tz: String,
    },
    /// Point the camera at an NTP server and switch it to NTP.
    Ntp {
        /// Server address or name.
        server: String,
        /// POSIX TZ.
        tz: String,
    },
}

impl SyncMode {
    fn tz(&self) -> &str {
        match self {
            SyncMode::Manual { tz } | SyncMode::Ntp { tz, .. } => tz,
        }
    }

    /// What to send: for a manual setting, the time `now` (ours, or the
    /// reference's).
    pub fn setting(&self, now: time::OffsetDateTime) -> ClockSetting {
        match self {
            SyncMode::Manual { tz } => ClockSetting::Manual {
                utc: now,
                tz: tz.clone(),
            },
            SyncMode::Ntp { server, tz } => ClockSetting::Ntp {
                server: server.clone(),
                tz: tz.clone(),
            },
        }
    }
}

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncReport {
    /// Device id.
    pub camera: String,
    /// `manual` or `ntp`.
    pub mode: &'static str,
    /// Camera − us before, ms (`None` when it could not be read).
    pub offset_before_ms: Option<i64>,
    /// Camera − us after, ms.
    pub offset_after_ms: i64,
}

/// The POSIX TZ for an IANA zone name the township is configured with
/// (`Asia/Shanghai` → `CST-8`); a string that already is POSIX is kept.
pub fn posix_tz(zone: &str) -> String {
    if device_drivers::onvif::posix_tz_offset(zone).is_some() {
        return zone.to_string();
    }
    match zone {
        "Asia/Urumqi" => "XJT-6".into(),
        "UTC" | "Etc/UTC" => "UTC0".into(),
        // Every other zone of China, and the default.
        _ => "CST-8".into(),
    }
}

fn device_err(e: OnvifError) -> Error {
    let kind = match e.kind {
        device_drivers::onvif_client::OnvifErrorKind::Timeout => ErrorKind::Timeout,
        device_drivers::onvif_client::OnvifErrorKind::Connect(_) => ErrorKind::Unavailable,
        _ => ErrorKind::Device,
    };
    Error::new(kind, e.to_string())
}

/// Sets camera `id`'s clock as `mode` says and re-measures its offset.
pub async fn sync_time(
    store: &Store,
    id: &str,
    mode: &SyncMode,
    access: &[CameraAccess],
    clock: Arc<dyn Clock>,
    call_timeout: Duration,
) -> Result<SyncReport, Error> {
    if device_drivers::onvif::posix_tz_offset(mode.tz()).is_none() {
        return Err(Error::invalid(format!(
            "time zone {:?} is not a POSIX TZ (e.g. CST-8)",
            mode.tz()
        )));
    }
    if store
        .device(id)
        .map_err(|e| Error::new(e.kind(), e.to_string()))?
        .is_none()
    {
        return Err(Error::not_found("camera", id));
    }
    let t = target::target(store, id, false, access).ok_or_else(|| {
        Error::conflict(format!(
            "camera {id} is not adopted or has no ONVIF address"
        ))
    })?;
    let opts = ClientOptions {
        timeout: call_timeout,
        connect_timeout: call_timeout.min(Duration::from_secs(3)),
        ..ClientOptions::default()
    };
    let creds: Option<Credentials> = t.creds.clone();
    let client = OnvifClient::new(&t.xaddr, creds, opts)
        .map_err(device_err)?
        .with_clock(Arc::new(OnvifClock(clock.clone())));
    let before = client.measure_clock().await.ok().map(|r| r.offset_ms);
    OnvifSession::set_clock(&client, &mode.setting(clock.now_utc()))
        .await
        .map_err(device_err)?;
    let after = client.measure_clock().await.map_err(device_err)?;
    Ok(SyncReport {
        camera: id.to_string(),
        mode: match mode {
            SyncMode::Manual { .. } => "manual",
            SyncMode::Ntp { .. } => "ntp",
        },
        offset_before_ms: before,
        offset_after_ms: after.offset_ms,
    })
}

/// A time reference other than our own clock: the offset of a trusted
/// clock from ours, e.g. the 校时 `Date` of a GB/T 28181 platform's 200 OK
/// (`[gb28181] time_source = true`). The poller's clock checks then measure
/// each camera against it: a camera agreeing with the platform is not
/// drifting even when our own clock is off. Until the first reading, cameras
/// are measured against our clock as before.
#[derive(Debug, Default)]
pub struct TimeReference {
    reading: std::sync::Mutex<Option<(i64, String)>>,
}

impl TimeReference {
    /// The reference is `offset_ms` ahead of our clock, says `source`.
    pub fn set(&self, offset_ms: i64, source: &str) {
        *self.reading.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((offset_ms, source.to_string()));
    }

    /// The reference minus our clock, ms, and who said so.
    pub fn get(&self) -> Option<(i64, String)> {
        self.reading
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A camera's offset from our clock turned into its offset from the
    /// reference (unchanged while there is no reading).
    pub fn relative(&self, camera_offset_ms: i64) -> i64 {
        camera_offset_ms - self.get().map_or(0, |r| r.0)
    }
}
