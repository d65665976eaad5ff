//! Setting a camera's clock (`tgw camera sync-time`, `POST
//! /api/v1/cameras/{id}/sync-time`): SetSystemDateAndTime with the time of
//! the time source and the township's zone as a POSIX TZ (`CST-8`), or
//! SetNTP plus DateTimeType NTP; the offset is measured before and after
//! (unauthenticated GetSystemDateAndTime) and reported. The time source is
//! the one the poller's clock checks measure cameras against: our clock,
//! or with `[gb28181] time_source` the GB/T 28181 platform's ([`TimeReference`],
//! 校时), so a camera synced by hand reads 0 where the poller looks. A
//! refusal names the camera's fault text; the login never appears in it.

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

/// How old a stored reading of the time reference `tgw camera sync-time`
/// still uses (the daemon reads it again at every REGISTER refresh, 80 %
/// of the expiry a platform grants).
pub const STORED_REFERENCE_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

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

/// Whose time a sync sent and measured the camera against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeSource {
    /// The gateway's own clock.
    Gateway,
    /// A GB/T 28181 platform's (校时, `[gb28181] time_source = true`).
    Gb28181,
}

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncReport {
    /// Device id.
    pub camera: String,
    /// `manual` or `ntp`.
    pub mode: &'static str,
    /// The clock the time sent came from and the offsets are measured
    /// against (the poller's reference).
    pub time_source: TimeSource,
    /// With `gb28181`: the platform whose 校时 that was.
    pub reference: Option<String>,
    /// With `gb28181`: the platform's clock minus ours, ms.
    pub reference_offset_ms: Option<i64>,
    /// Camera − time source before, ms (`None` when it could not be read).
    pub offset_before_ms: Option<i64>,
    /// Camera − time source after, ms.
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
        device_drivers::onvif_client::OnvifErrorKind::Local(_) => ErrorKind::Unavailable,
        _ => ErrorKind::Device,
    };
    Error::new(kind, e.to_string())
}

/// Sets camera `id`'s clock as `mode` says and re-measures its offset;
/// `reference` is the time reference's reading (reference − our clock, ms,
/// and who), `None` for our own clock.
pub async fn sync_time(
    store: &Store,
    id: &str,
    mode: &SyncMode,
    access: &[CameraAccess],
    clock: Arc<dyn Clock>,
    call_timeout: Duration,
    reference: Option<(i64, String)>,
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
    set_and_measure(&client, id, mode, clock.as_ref(), reference)
        .await
        .map_err(device_err)
}

/// The calls of a sync within one session: measure (the login's timestamp
/// needs the camera's time), set to the time source's time, measure again;
/// offsets are from the time source.
pub async fn set_and_measure(
    session: &dyn OnvifSession,
    id: &str,
    mode: &SyncMode,
    clock: &dyn Clock,
    reference: Option<(i64, String)>,
) -> Result<SyncReport, OnvifError> {
    let ref_ms = reference.as_ref().map_or(0, |r| r.0);
    let before = session
        .measure_clock()
        .await
        .ok()
        .map(|r| r.offset_ms - ref_ms);
    let now = clock.now_utc() + time::Duration::milliseconds(ref_ms);
    session.set_clock(&mode.setting(now)).await?;
    let after = session.measure_clock().await?;
    Ok(SyncReport {
        camera: id.to_string(),
        mode: match mode {
            SyncMode::Manual { .. } => "manual",
            SyncMode::Ntp { .. } => "ntp",
        },
        time_source: if reference.is_some() {
            TimeSource::Gb28181
        } else {
            TimeSource::Gateway
        },
        reference_offset_ms: reference.as_ref().map(|r| r.0),
        reference: reference.map(|r| r.1),
        offset_before_ms: before,
        offset_after_ms: after.offset_ms - ref_ms,
    })
}

/// A time reference other than our own clock: the offset of a trusted
/// clock from ours, e.g. the 校时 `Date` of a GB/T 28181 platform's 200 OK
/// (`[gb28181] time_source = true`). The poller's clock checks then measure
/// each camera against it: a camera agreeing with the platform is not
/// drifting even when our own clock is off. Until the first reading, cameras
/// are measured against our clock as before. A reference made
/// [`TimeReference::persisted`] also keeps each reading in the store, for
/// `tgw camera sync-time` ([`TimeReference::stored`]).
#[derive(Default)]
pub struct TimeReference {
    reading: std::sync::Mutex<Option<(i64, String)>>,
    store: Option<Store>,
}

impl std::fmt::Debug for TimeReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeReference")
            .field("reading", &self.get())
            .field("persisted", &self.store.is_some())
            .finish()
    }
}

impl TimeReference {
    /// A reference whose readings are also kept in `store`.
    pub fn persisted(store: Store) -> TimeReference {
        TimeReference {
            reading: std::sync::Mutex::default(),
            store: Some(store),
        }
    }

    /// The reading kept in `store` when it is at most `max_age` old by the
    /// store's clock (`None`: none kept, or too old; then our clock).
    pub fn stored(store: &Store, max_age: Duration) -> Option<(i64, String)> {
        let r = match store.time_reference() {
            Ok(r) => r?,
            Err(e) => {
                tracing::warn!(error = %e, "stored time reference not read: our clock is used");
                return None;
            }
        };
        let age = store.clock().now_ms() - r.read_at_ms;
        let max = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
        if !(0..=max).contains(&age) {
            tracing::info!(
                source = %r.source,
                age_s = age / 1000,
                "stored time reference too old: our clock is used"
            );
            return None;
        }
        Some((r.offset_ms, r.source))
    }

    /// The reference is `offset_ms` ahead of our clock, says `source`.
    pub fn set(&self, offset_ms: i64, source: &str) {
        *self.reading.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((offset_ms, source.to_string()));
        if let Some(s) = &self.store
            && let Err(e) = s.save_time_reference(offset_ms, source)
        {
            tracing::warn!(error = %e, "time reference not stored: `tgw camera sync-time` will use our clock");
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::clock::TokioClock;
    use crate::cameras::device::CameraIo;
    use crate::cameras::fake::{self, FakeCameras, Script};

    /// 2026-07-15T01:00:00Z.
    const T0: i64 = 1_784_077_200_000;

    fn camera(offset_ms: i64) -> (FakeCameras, Arc<TokioClock>, Box<dyn OnvifSession>) {
        let cams = FakeCameras::new(Duration::from_secs(5));
        cams.set(
            1,
            Script {
                clock_offset_ms: offset_ms,
                ..Script::default()
            },
        );
        let clock = Arc::new(TokioClock::starting_at(T0));
        cams.set_wall_clock(clock.clone());
        let xaddr = format!("http://{}/onvif/device_service", fake::host(1));
        let session = cams.onvif(&xaddr, None).expect("session");
        (cams, clock, session)
    }

    fn manual() -> SyncMode {
        SyncMode::Manual { tz: "CST-8".into() }
    }

    /// A camera refusing SetSystemDateAndTime is an error, not a report.
    #[tokio::test(start_paused = true)]
    async fn a_refusal_is_an_error() {
        let (cams, clock, session) = camera(600_000);
        cams.edit(1, |s| s.set_clock_refused = true);
        let r = set_and_measure(session.as_ref(), "cam-1", &manual(), clock.as_ref(), None).await;
        let e = r.expect_err("refused");
        assert!(e.to_string().contains("not allowed"), "{e}");
        assert_eq!(cams.script(1).map(|s| s.clock_offset_ms), Some(600_000));
    }

    /// With a GB/T 28181 platform 90 s ahead of us as the reference, a
    /// manual sync sets the camera to our time + 90 s (0 from the
    /// platform, where the poller measures it) and says whose time it
    /// sent; without one, to our time.
    #[tokio::test(start_paused = true)]
    async fn a_manual_sync_sends_the_reference_time() {
        let reference = TimeReference::default();
        reference.set(90_000, "county");
        let (cams, clock, session) = camera(600_000);
        let rep = set_and_measure(
            session.as_ref(),
            "cam-1",
            &manual(),
            clock.as_ref(),
            reference.get(),
        )
        .await
        .expect("sync");
        let raw = cams.script(1).expect("camera").clock_offset_ms;
        assert_eq!(raw, 90_000, "camera − our clock");
        assert_eq!(rep.time_source, TimeSource::Gb28181);
        assert_eq!(rep.reference.as_deref(), Some("county"));
        assert_eq!(rep.reference_offset_ms, Some(90_000));
        assert_eq!(rep.offset_before_ms, Some(510_000));
        assert_eq!(rep.offset_after_ms, 0);
        let v = serde_json::to_value(&rep).expect("json");
        assert_eq!(v["time_source"], "gb28181", "{v}");

        let (cams, clock, session) = camera(600_000);
        let rep = set_and_measure(session.as_ref(), "cam-1", &manual(), clock.as_ref(), None)
            .await
            .expect("sync");
        assert_eq!(cams.script(1).map(|s| s.clock_offset_ms), Some(0));
        assert_eq!(rep.time_source, TimeSource::Gateway);
        assert_eq!((rep.reference, rep.reference_offset_ms), (None, None));
        assert_eq!(rep.offset_before_ms, Some(600_000));
    }

    /// A persisted reference keeps its readings in the store, where
    /// `tgw camera sync-time` finds them while they are fresh enough.
    #[test]
    fn a_stored_reading_is_used_while_fresh() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = Arc::new(crate::base::clock::ManualClock::at(T0));
        let store = Store::open_with_clock(dir.path(), clock.clone()).expect("store");
        let max = Duration::from_secs(3600);
        assert_eq!(TimeReference::stored(&store, max), None);
        TimeReference::persisted(store.clone()).set(90_000, "county");
        assert_eq!(
            TimeReference::stored(&store, max),
            Some((90_000, "county".to_string()))
        );
        clock.advance(3_601_000);
        assert_eq!(TimeReference::stored(&store, max), None, "too old");
    }
}
