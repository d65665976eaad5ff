//! How the daemon reaches a camera: ONVIF calls, an RTSP DESCRIBE, a timed
//! stream sample and a snapshot fetch, behind one trait ([`CameraIo`]) that
//! the poller and the inventory take, so their rules (schedules, backoff,
//! hysteresis) are tested against scripted cameras on paused time. In the
//! style of moonfire-nvr's `Opener`: a trait for test injection, with one
//! real implementation ([`RealCameraIo`]) that wraps `device_drivers`.

use std::sync::Arc;
use std::time::Duration;

use device_drivers::cred_scope::CredentialScope;
use device_drivers::onvif::DeviceInformation;
use device_drivers::onvif_client::{
    CameraInventory, ClientOptions, ClockReading, Credentials, OnvifClient, OnvifError,
};
use device_drivers::rtsp::StreamMetadata;
use device_drivers::rtsp_probe::{self, RtspError, RtspOptions, SampleReport};
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::base::clock::{Clock, OnvifClock};

/// The calls the poller and the inventory make to a camera.
pub trait CameraIo: Send + Sync {
    /// An ONVIF session with the device service at `xaddr`: one client whose
    /// state (measured clock offset, auth mode, Digest challenge) carries
    /// from call to call, as the authenticated call of a cycle needs the
    /// offset its clock check measured.
    fn onvif(
        &self,
        xaddr: &str,
        creds: Option<Credentials>,
    ) -> Result<Box<dyn OnvifSession>, OnvifError>;

    /// RTSP DESCRIBE of `uri`. `creds` go only to a host in `scope`; a
    /// stream on another host is opened without them.
    fn describe<'a>(
        &'a self,
        uri: &'a str,
        creds: Option<&'a Credentials>,
        scope: &'a CredentialScope,
        opts: &'a RtspOptions,
    ) -> BoxFuture<'a, Result<StreamMetadata, RtspError>>;

    /// A timed PLAY sample of `uri` (`opts.window` long); `creds` as for
    /// [`CameraIo::describe`].
    fn sample<'a>(
        &'a self,
        uri: &'a str,
        creds: Option<&'a Credentials>,
        scope: &'a CredentialScope,
        opts: &'a RtspOptions,
    ) -> BoxFuture<'a, Result<SampleReport, RtspError>>;

    /// Fetches the snapshot at `uri` and checks that an image came back.
    /// `creds` answer a challenge only as `scope` allows (the camera's own
    /// hosts; no Basic over plain HTTP unless opted in).
    fn snapshot<'a>(
        &'a self,
        uri: &'a str,
        creds: Option<&'a Credentials>,
        scope: &'a CredentialScope,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Vec<u8>, OnvifError>>;
}

/// How a camera's clock is set (`cameras::clock_sync`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClockSetting {
    /// SetSystemDateAndTime, DateTimeType Manual: `utc` (sent in whole
    /// seconds) with the POSIX zone `tz`.
    Manual {
        /// The time to set.
        utc: time::OffsetDateTime,
        /// POSIX TZ, e.g. `CST-8`.
        tz: String,
    },
    /// SetNTP to `server`, then SetSystemDateAndTime with DateTimeType NTP.
    Ntp {
        /// IPv4 address or DNS name.
        server: String,
        /// POSIX TZ.
        tz: String,
    },
}

/// The ONVIF calls made within one session with a camera.
pub trait OnvifSession: Send + Sync {
    /// GetSystemDateAndTime, unauthenticated (retried authenticated when the
    /// camera demands it), measuring the clock offset.
    fn measure_clock(&self) -> BoxFuture<'_, Result<ClockReading, OnvifError>>;

    /// GetDeviceInformation, authenticated.
    fn device_information(&self) -> BoxFuture<'_, Result<DeviceInformation, OnvifError>>;

    /// The full inventory (device information, MAC, clock, profiles, URIs).
    fn inventory(&self) -> BoxFuture<'_, Result<CameraInventory, OnvifError>>;

    /// Sets the camera's clock (authenticated; measure the clock first, so
    /// the WS-UsernameToken carries the camera's own time).
    fn set_clock<'a>(&'a self, how: &'a ClockSetting) -> BoxFuture<'a, Result<(), OnvifError>>;
}

impl OnvifSession for OnvifClient {
    fn measure_clock(&self) -> BoxFuture<'_, Result<ClockReading, OnvifError>> {
        OnvifClient::measure_clock(self).boxed()
    }

    fn device_information(&self) -> BoxFuture<'_, Result<DeviceInformation, OnvifError>> {
        OnvifClient::device_information(self).boxed()
    }

    fn inventory(&self) -> BoxFuture<'_, Result<CameraInventory, OnvifError>> {
        OnvifClient::inventory(self).boxed()
    }

    fn set_clock<'a>(&'a self, how: &'a ClockSetting) -> BoxFuture<'a, Result<(), OnvifError>> {
        use device_drivers::onvif_events as ev;
        async move {
            let url = self.device_url().to_string();
            let body = match how {
                ClockSetting::Manual { utc, tz } => ev::set_system_date_and_time(*utc, tz),
                ClockSetting::Ntp { server, tz } => {
                    self.call_op("SetNTP", &url, &ev::set_ntp(server), ev::parse_set_ntp)
                        .await?;
                    ev::set_date_time_ntp(tz)
                }
            };
            self.call_op(
                "SetSystemDateAndTime",
                &url,
                &body,
                ev::parse_set_system_date_and_time,
            )
            .await
        }
        .boxed()
    }
}

/// Cameras reached over the network through `device_drivers`, sharing one
/// HTTP connection pool; ONVIF clock offsets are measured against `clock`.
#[derive(Clone)]
pub struct RealCameraIo {
    http: reqwest::Client,
    opts: ClientOptions,
    clock: Arc<dyn Clock>,
}

impl RealCameraIo {
    /// Real IO whose ONVIF calls use `opts` (timeouts, body cap).
    pub fn new(opts: ClientOptions, clock: Arc<dyn Clock>) -> Result<Self, reqwest::Error> {
        let http = device_drivers::onvif_client::http_client(&opts)?;
        Ok(Self { http, opts, clock })
    }
}

impl CameraIo for RealCameraIo {
    fn onvif(
        &self,
        xaddr: &str,
        creds: Option<Credentials>,
    ) -> Result<Box<dyn OnvifSession>, OnvifError> {
        let client = OnvifClient::with_http(self.http.clone(), xaddr, creds, self.opts)?
            .with_clock(Arc::new(OnvifClock(self.clock.clone())));
        Ok(Box::new(client))
    }

    fn describe<'a>(
        &'a self,
        uri: &'a str,
        creds: Option<&'a Credentials>,
        scope: &'a CredentialScope,
        opts: &'a RtspOptions,
    ) -> BoxFuture<'a, Result<StreamMetadata, RtspError>> {
        rtsp_probe::describe(uri, stream_creds(uri, creds, scope), opts).boxed()
    }

    fn sample<'a>(
        &'a self,
        uri: &'a str,
        creds: Option<&'a Credentials>,
        scope: &'a CredentialScope,
        opts: &'a RtspOptions,
    ) -> BoxFuture<'a, Result<SampleReport, RtspError>> {
        rtsp_probe::sample(uri, stream_creds(uri, creds, scope), opts).boxed()
    }

    fn snapshot<'a>(
        &'a self,
        uri: &'a str,
        creds: Option<&'a Credentials>,
        scope: &'a CredentialScope,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Vec<u8>, OnvifError>> {
        device_drivers::onvif_client::fetch_snapshot(&self.http, uri, creds, scope, timeout).boxed()
    }
}

/// The credentials an RTSP session to `uri` may carry: none when its host
/// is not one of the camera's (the stream is then opened without them).
/// The RTSP library answers the challenge itself, so only the host rule
/// applies here; Basic over plain RTSP to the camera's own host is answered.
fn stream_creds<'a>(
    uri: &str,
    creds: Option<&'a Credentials>,
    scope: &CredentialScope,
) -> Option<&'a Credentials> {
    let creds = creds?;
    let url = url::Url::parse(uri.trim()).ok()?;
    match scope.check_host(&url) {
        Ok(()) => Some(creds),
        Err(why) => {
            tracing::warn!(
                host = url.host_str().unwrap_or_default(),
                reason = why.as_str(),
                "stream URI is not on the camera's host: opened without its login"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_login_goes_only_to_the_cameras_host() {
        let c = Credentials::new("admin", "pw");
        let scope = CredentialScope::new().allow_host("http://192.168.1.64/onvif/device_service");
        assert!(stream_creds("rtsp://192.168.1.64:554/main", Some(&c), &scope).is_some());
        assert!(stream_creds("rtsp://192.168.1.99:554/main", Some(&c), &scope).is_none());
        assert!(stream_creds("not a url", Some(&c), &scope).is_none());
        assert!(stream_creds("rtsp://192.168.1.64/main", None, &scope).is_none());
    }
}
