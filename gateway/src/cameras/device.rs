//! How the daemon reaches a camera: ONVIF calls, an RTSP DESCRIBE, a timed
//! stream sample and a snapshot fetch, behind one trait ([`CameraIo`]) that
//! the poller and the inventory take, so their rules (schedules, backoff,
//! hysteresis) are tested against scripted cameras on paused time. In the
//! style of moonfire-nvr's `Opener`: a trait for test injection, with one
//! real implementation ([`RealCameraIo`]) that wraps `device_drivers`.

use std::sync::Arc;
use std::time::Duration;

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

    /// RTSP DESCRIBE of `uri`.
    fn describe<'a>(
        &'a self,
        uri: &'a str,
        creds: Option<&'a Credentials>,
        opts: &'a RtspOptions,
    ) -> BoxFuture<'a, Result<StreamMetadata, RtspError>>;

    /// A timed PLAY sample of `uri` (`opts.window` long).
    fn sample<'a>(
        &'a self,
        uri: &'a str,
        creds: Option<&'a Credentials>,
        opts: &'a RtspOptions,
    ) -> BoxFuture<'a, Result<SampleReport, RtspError>>;

    /// Fetches the snapshot at `uri` and checks that an image came back.
    fn snapshot<'a>(
        &'a self,
        uri: &'a str,
        creds: Option<&'a Credentials>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Vec<u8>, OnvifError>>;
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
        opts: &'a RtspOptions,
    ) -> BoxFuture<'a, Result<StreamMetadata, RtspError>> {
        rtsp_probe::describe(uri, creds, opts).boxed()
    }

    fn sample<'a>(
        &'a self,
        uri: &'a str,
        creds: Option<&'a Credentials>,
        opts: &'a RtspOptions,
    ) -> BoxFuture<'a, Result<SampleReport, RtspError>> {
        rtsp_probe::sample(uri, creds, opts).boxed()
    }

    fn snapshot<'a>(
        &'a self,
        uri: &'a str,
        creds: Option<&'a Credentials>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Vec<u8>, OnvifError>> {
        device_drivers::onvif_client::fetch_snapshot(&self.http, uri, creds, timeout).boxed()
    }
}
