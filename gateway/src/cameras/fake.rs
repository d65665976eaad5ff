//! Scripted cameras for tests: a [`CameraIo`] whose cameras (keyed by host,
//! `10.0.0.N`) answer as their [`Script`] says, on tokio's (paused) clock,
//! logging every call with when it started, and a store seeded with such
//! cameras adopted and inventoried.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use device_drivers::cred_scope::CredentialScope;
use device_drivers::local_error::LocalResource;
use device_drivers::onvif::{DeviceInformation, Profile, Services, SystemDateTime, VideoEncoder};
use device_drivers::onvif_client::{
    AuthMode, CameraInventory, ClockReading, Credentials, OnvifError, OnvifErrorKind,
    ProfileInventory,
};
use device_drivers::rtsp::StreamMetadata;
use device_drivers::rtsp_probe::{RtspError, RtspErrorKind, RtspOptions, SampleReport, Transport};
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::time::Instant;

use crate::base::clock::Clock;
use crate::cameras::device::{CameraIo, ClockSetting, OnvifSession};
use crate::store::secrets::Password;
use crate::store::{Sighting, Store};

/// How one scripted camera answers (changeable while a test runs).
#[derive(Debug, Clone)]
pub struct Script {
    /// GetSystemDateAndTime answers (else: connection refused).
    pub up: bool,
    /// GetSystemDateAndTime hangs until the call timeout, then times out.
    pub hang: bool,
    /// Our credentials are accepted (ONVIF and RTSP).
    pub auth_ok: bool,
    /// Our credentials are accepted by the RTSP server (with `auth_ok`).
    pub rtsp_auth_ok: bool,
    /// Frames a sample sees (0: no frames, a frozen stream).
    pub frames: u64,
    /// How long a sample takes.
    pub sample_takes: Duration,
    /// The camera's clock minus ours, as GetSystemDateAndTime measures it;
    /// SetSystemDateAndTime moves it (to the time sent, in whole seconds,
    /// measured against the wall clock given with
    /// [`FakeCameras::set_wall_clock`]), NTP sets it to 0.
    pub clock_offset_ms: i64,
    /// SetSystemDateAndTime / SetNTP answer a SOAP fault (the camera
    /// refuses to have its clock set).
    pub set_clock_refused: bool,
    /// How long setting the clock takes.
    pub set_clock_takes: Duration,
    /// Every call fails on the gateway's side, for want of this resource
    /// (the gateway out of file descriptors, …): ONVIF calls (the
    /// inventory too), DESCRIBE, sample and snapshot.
    pub local: Option<LocalResource>,
    /// Only DESCRIBE and samples fail on the gateway's side.
    pub local_rtsp: Option<LocalResource>,
    /// Only the inventory fails on the gateway's side.
    pub local_inventory: Option<LocalResource>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            up: true,
            hang: false,
            auth_ok: true,
            rtsp_auth_ok: true,
            frames: 75,
            sample_takes: Duration::ZERO,
            clock_offset_ms: 0,
            set_clock_refused: false,
            set_clock_takes: Duration::ZERO,
            local: None,
            local_rtsp: None,
            local_inventory: None,
        }
    }
}

/// One call made to a camera.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// When it started, since the fake was made.
    pub at: Duration,
    /// The camera's host.
    pub host: String,
    /// `clock`, `auth`, `inventory`, `describe`, `snapshot`, `sample`,
    /// `sample-end`, `set-clock`, `set-clock-end`.
    pub op: &'static str,
}

/// The shared state of the scripted cameras.
pub struct Inner {
    t0: Instant,
    call_timeout: Duration,
    scripts: Mutex<HashMap<String, Script>>,
    calls: Mutex<Vec<Call>>,
    /// "Our" wall clock, which a set camera clock is measured against.
    wall: Mutex<Option<Arc<dyn Clock>>>,
}

/// Scripted cameras.
#[derive(Clone)]
pub struct FakeCameras(pub Arc<Inner>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The host of `n`th camera.
pub fn host(n: u8) -> String {
    format!("10.0.0.{n}")
}

fn host_of(uri: &str) -> String {
    url::Url::parse(uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default()
}

/// The inventory camera `n` reports: one H.264 profile with stream and
/// snapshot URIs.
pub fn inventory(n: u8) -> CameraInventory {
    let h = host(n);
    CameraInventory {
        xaddr: format!("http://{h}/onvif/device_service"),
        device: DeviceInformation {
            manufacturer: "Acme".into(),
            model: "Cam".into(),
            ..DeviceInformation::default()
        },
        clock_offset_ms: 0,
        mac: None,
        interfaces: Vec::new(),
        scopes: Vec::new(),
        services: Services::default(),
        media_version: 1,
        profiles: vec![ProfileInventory {
            profile: Profile {
                token: "sub".into(),
                name: "sub".into(),
                video_source: None,
                video: Some(VideoEncoder {
                    encoding: "H264".into(),
                    width: 640,
                    height: 360,
                    fps: Some(25.0),
                    bitrate_kbps: Some(512),
                    gov_length: None,
                    profile: None,
                }),
                audio: None,
            },
            stream_uri: Some(format!("rtsp://{h}/sub")),
            snapshot_uri: Some(format!("http://{h}/snap.jpg")),
        }],
        auth: AuthMode::WsUsernameToken,
        warnings: Vec::new(),
    }
}

impl FakeCameras {
    /// Cameras whose hanging calls give up after `call_timeout`.
    pub fn new(call_timeout: Duration) -> Self {
        FakeCameras(Arc::new(Inner {
            t0: Instant::now(),
            call_timeout,
            scripts: Mutex::new(HashMap::new()),
            calls: Mutex::new(Vec::new()),
            wall: Mutex::new(None),
        }))
    }

    /// The wall clock the cameras' offsets are relative to (the poller's),
    /// needed for SetSystemDateAndTime.
    pub fn set_wall_clock(&self, clock: Arc<dyn Clock>) {
        *lock(&self.0.wall) = Some(clock);
    }

    /// Camera `n`'s script now (with what setting its clock changed).
    pub fn script(&self, n: u8) -> Option<Script> {
        lock(&self.0.scripts).get(&host(n)).cloned()
    }

    /// Adds (or rescripts) camera `n`.
    pub fn set(&self, n: u8, script: Script) {
        lock(&self.0.scripts).insert(host(n), script);
    }

    /// Changes camera `n`'s script.
    pub fn edit(&self, n: u8, f: impl FnOnce(&mut Script)) {
        if let Some(s) = lock(&self.0.scripts).get_mut(&host(n)) {
            f(s);
        }
    }

    /// When camera `n` got calls `op`, since the fake was made.
    pub fn calls(&self, n: u8, op: &str) -> Vec<Duration> {
        let h = host(n);
        lock(&self.0.calls)
            .iter()
            .filter(|c| c.host == h && c.op == op)
            .map(|c| c.at)
            .collect()
    }

    /// Since the fake was made.
    pub fn elapsed(&self) -> Duration {
        self.0.t0.elapsed()
    }
}

impl Inner {
    fn log(&self, host: &str, op: &'static str) -> Script {
        lock(&self.calls).push(Call {
            at: self.t0.elapsed(),
            host: host.to_string(),
            op,
        });
        lock(&self.scripts).get(host).cloned().unwrap_or(Script {
            up: false,
            ..Script::default()
        })
    }
}

fn onvif_err(host: &str, operation: &'static str, kind: OnvifErrorKind) -> OnvifError {
    OnvifError {
        peer: host.to_string(),
        operation,
        kind,
    }
}

fn rtsp_err(host: &str, operation: &'static str, kind: RtspErrorKind) -> RtspError {
    RtspError {
        peer: host.to_string(),
        operation,
        kind,
    }
}

struct Session {
    inner: Arc<Inner>,
    host: String,
}

impl OnvifSession for Session {
    fn measure_clock(&self) -> BoxFuture<'_, Result<ClockReading, OnvifError>> {
        async move {
            let s = self.inner.log(&self.host, "clock");
            if let Some(r) = s.local {
                let kind = OnvifErrorKind::Local(r);
                return Err(onvif_err(&self.host, "GetSystemDateAndTime", kind));
            }
            if s.hang {
                tokio::time::sleep(self.inner.call_timeout).await;
                return Err(onvif_err(
                    &self.host,
                    "GetSystemDateAndTime",
                    OnvifErrorKind::Timeout,
                ));
            }
            if !s.up {
                return Err(onvif_err(
                    &self.host,
                    "GetSystemDateAndTime",
                    OnvifErrorKind::Connect("connection refused".into()),
                ));
            }
            Ok(ClockReading {
                time: SystemDateTime {
                    utc: time::OffsetDateTime::UNIX_EPOCH,
                    from_local: false,
                    date_time_type: None,
                    daylight_savings: None,
                    tz: None,
                },
                offset_ms: s.clock_offset_ms,
                needed_auth: false,
            })
        }
        .boxed()
    }

    fn device_information(&self) -> BoxFuture<'_, Result<DeviceInformation, OnvifError>> {
        async move {
            let s = self.inner.log(&self.host, "auth");
            if let Some(r) = s.local {
                let kind = OnvifErrorKind::Local(r);
                return Err(onvif_err(&self.host, "GetDeviceInformation", kind));
            }
            if !s.auth_ok {
                return Err(onvif_err(
                    &self.host,
                    "GetDeviceInformation",
                    OnvifErrorKind::AuthRejected,
                ));
            }
            Ok(DeviceInformation::default())
        }
        .boxed()
    }

    fn inventory(&self) -> BoxFuture<'_, Result<CameraInventory, OnvifError>> {
        async move {
            let s = self.inner.log(&self.host, "inventory");
            if let Some(r) = s.local.or(s.local_inventory) {
                let kind = OnvifErrorKind::Local(r);
                return Err(onvif_err(&self.host, "GetSystemDateAndTime", kind));
            }
            if !s.up {
                return Err(onvif_err(
                    &self.host,
                    "GetSystemDateAndTime",
                    OnvifErrorKind::Connect("connection refused".into()),
                ));
            }
            if !s.auth_ok {
                return Err(onvif_err(
                    &self.host,
                    "GetDeviceInformation",
                    OnvifErrorKind::AuthRejected,
                ));
            }
            let n = self
                .host
                .rsplit('.')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            Ok(inventory(n))
        }
        .boxed()
    }

    fn set_clock<'a>(&'a self, how: &'a ClockSetting) -> BoxFuture<'a, Result<(), OnvifError>> {
        self.set(how).boxed()
    }
}

impl Session {
    /// Sets the scripted camera's clock as `how` says.
    async fn set(&self, how: &ClockSetting) -> Result<(), OnvifError> {
        let op = "SetSystemDateAndTime";
        let s = self.inner.log(&self.host, "set-clock");
        tokio::time::sleep(s.set_clock_takes).await;
        self.inner.log(&self.host, "set-clock-end");
        if s.hang {
            tokio::time::sleep(self.inner.call_timeout).await;
            return Err(onvif_err(&self.host, op, OnvifErrorKind::Timeout));
        }
        if !s.up {
            let refused = OnvifErrorKind::Connect("connection refused".into());
            return Err(onvif_err(&self.host, op, refused));
        }
        if !s.auth_ok {
            return Err(onvif_err(&self.host, op, OnvifErrorKind::AuthRejected));
        }
        if s.set_clock_refused {
            let fault = device_drivers::soap::SoapFault {
                code: "env:Receiver".into(),
                subcodes: vec!["ter:ActionNotSupported".into()],
                reason: "Setting the time is not allowed".into(),
            };
            return Err(onvif_err(&self.host, op, OnvifErrorKind::Fault(fault)));
        }
        let offset_ms = match how {
            ClockSetting::Manual { utc, .. } => {
                let Some(wall) = lock(&self.inner.wall).clone() else {
                    let why = "fake: no wall clock set".into();
                    return Err(onvif_err(&self.host, op, OnvifErrorKind::Protocol(why)));
                };
                // Whole seconds, as on the wire.
                let sent = utc.unix_timestamp() * 1000;
                sent - wall.now_ms()
            }
            ClockSetting::Ntp { .. } => 0,
        };
        if let Some(sc) = lock(&self.inner.scripts).get_mut(&self.host) {
            sc.clock_offset_ms = offset_ms;
        }
        Ok(())
    }
}

impl CameraIo for FakeCameras {
    fn onvif(
        &self,
        xaddr: &str,
        _creds: Option<Credentials>,
    ) -> Result<Box<dyn OnvifSession>, OnvifError> {
        Ok(Box::new(Session {
            inner: self.0.clone(),
            host: host_of(xaddr),
        }))
    }

    fn describe<'a>(
        &'a self,
        uri: &'a str,
        _creds: Option<&'a Credentials>,
        _scope: &'a CredentialScope,
        _opts: &'a RtspOptions,
    ) -> BoxFuture<'a, Result<StreamMetadata, RtspError>> {
        async move {
            let h = host_of(uri);
            let s = self.0.log(&h, "describe");
            if let Some(r) = s.local.or(s.local_rtsp) {
                return Err(rtsp_err(&h, "DESCRIBE", RtspErrorKind::Local(r)));
            }
            if !s.auth_ok || !s.rtsp_auth_ok {
                return Err(rtsp_err(&h, "DESCRIBE", RtspErrorKind::AuthRejected));
            }
            Ok(StreamMetadata::default())
        }
        .boxed()
    }

    fn sample<'a>(
        &'a self,
        uri: &'a str,
        _creds: Option<&'a Credentials>,
        _scope: &'a CredentialScope,
        _opts: &'a RtspOptions,
    ) -> BoxFuture<'a, Result<SampleReport, RtspError>> {
        async move {
            let h = host_of(uri);
            let s = self.0.log(&h, "sample");
            if let Some(r) = s.local.or(s.local_rtsp) {
                return Err(rtsp_err(&h, "DESCRIBE", RtspErrorKind::Local(r)));
            }
            tokio::time::sleep(s.sample_takes).await;
            self.0.log(&h, "sample-end");
            if !s.auth_ok || !s.rtsp_auth_ok {
                return Err(rtsp_err(&h, "DESCRIBE", RtspErrorKind::AuthRejected));
            }
            if s.frames == 0 {
                return Err(rtsp_err(&h, "sample", RtspErrorKind::NoFrames));
            }
            Ok(SampleReport {
                transport: Transport::Tcp,
                time_to_first_frame_ms: 40,
                frames: s.frames,
                measured_fps: Some(25.0),
                bitrate_kbps: 500.0,
                keyframe_interval_frames: None,
                keyframe_interval_ms: None,
                rtp_loss_packets: 0,
                last_frame_age_ms: 0,
                codec: "H264".into(),
                width: Some(640),
                height: Some(360),
            })
        }
        .boxed()
    }

    fn snapshot<'a>(
        &'a self,
        uri: &'a str,
        _creds: Option<&'a Credentials>,
        _scope: &'a CredentialScope,
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<Vec<u8>, OnvifError>> {
        async move {
            let h = host_of(uri);
            let s = self.0.log(&h, "snapshot");
            if let Some(r) = s.local {
                return Err(onvif_err(&h, "snapshot", OnvifErrorKind::Local(r)));
            }
            Ok(vec![0xff, 0xd8, 0xff, 0xd9])
        }
        .boxed()
    }
}

/// Records camera `n` in `store` as discovered (not adopted, no inventory),
/// with a login when `login`; returns its id.
pub fn discovered(store: &Store, n: u8, login: bool) -> String {
    let s = Sighting {
        endpoint_ref: format!("urn:uuid:00000000-0000-0000-0000-{n:012}"),
        address: Some(Ipv4Addr::new(10, 0, 0, n)),
        xaddrs: vec![format!("http://{}/onvif/device_service", host(n))],
        scopes: Vec::new(),
        types: Vec::new(),
        via: "multicast".into(),
        name: None,
    };
    let id = store.record_sighting(&s).expect("sighting").id;
    if login {
        store
            .set_device_login(&id, "admin", &Password::new("secret"))
            .expect("login");
    }
    id
}

/// Records camera `n` in `store` adopted, with a login and its inventory;
/// returns its id.
pub fn adopted(store: &Store, n: u8) -> String {
    let id = discovered(store, n, true);
    let inv = inventory(n);
    let json = serde_json::to_value(&inv).expect("inventory json");
    store
        .record_inventory(&id, &crate::cameras::inventory::summary(&inv), &json)
        .expect("inventory");
    store.adopt(&id, None, None).expect("adopt");
    id
}

/// Records camera `n` in `store` adopted without an inventory (as a camera
/// adopted with a wrong login, or while unreachable), with a login when
/// `login`; returns its id.
pub fn adopted_bare(store: &Store, n: u8, login: bool) -> String {
    let id = discovered(store, n, login);
    store.adopt(&id, None, None).expect("adopt");
    id
}

/// A real HTTP server on `ip` (an ephemeral port) answering every request
/// with one canned response and keeping every request head: a camera, or
/// the other host a camera's URI points at.
pub struct HttpSpy {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpSpy {
    /// Listens on `ip`; `response` (a full HTTP/1.1 response, with
    /// `Connection: close`) is what every request gets.
    pub async fn start(ip: &str, response: String) -> HttpSpy {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind((ip, 0)).await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let seen = seen.clone();
                let response = response.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                    let len: usize = head
                        .lines()
                        .filter_map(|l| l.split_once(':'))
                        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                        .and_then(|(_, v)| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    seen.lock().unwrap_or_else(|p| p.into_inner()).push(head);
                    let _ = s.write_all(response.as_bytes()).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        HttpSpy { addr, heads, task }
    }

    /// The request heads received so far.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether any request carried an `Authorization` header.
    pub fn saw_authorization(&self) -> bool {
        self.heads().iter().any(|h| {
            h.lines()
                .any(|l| l.to_ascii_lowercase().starts_with("authorization:"))
        })
    }
}

impl Drop for HttpSpy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An HTTP/1.1 response with `status` (e.g. `401 Unauthorized`), extra
/// header lines and an empty body.
pub fn http_response(status: &str, headers: &[String]) -> String {
    let mut r = format!("HTTP/1.1 {status}\r\n");
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
    r
}

/// Records a camera adopted at `ip` with ONVIF at `xaddr`, a login, and an
/// inventory whose snapshot URI is `snapshot_uri` (no streams); returns its id.
pub fn adopted_at(store: &Store, ip: Ipv4Addr, xaddr: &str, snapshot_uri: &str) -> String {
    let s = Sighting {
        endpoint_ref: format!("urn:uuid:spy-{ip}"),
        address: Some(ip),
        xaddrs: vec![xaddr.to_string()],
        scopes: Vec::new(),
        types: Vec::new(),
        via: "multicast".into(),
        name: None,
    };
    let id = store.record_sighting(&s).expect("sighting").id;
    store
        .set_device_login(&id, "admin", &Password::new(SPY_PASSWORD))
        .expect("login");
    let mut inv = inventory(1);
    inv.xaddr = xaddr.to_string();
    for p in &mut inv.profiles {
        p.stream_uri = None;
        p.snapshot_uri = Some(snapshot_uri.to_string());
    }
    let json = serde_json::to_value(&inv).expect("inventory json");
    store
        .record_inventory(&id, &crate::cameras::inventory::summary(&inv), &json)
        .expect("inventory");
    store.adopt(&id, None, None).expect("adopt");
    id
}

/// The password of cameras recorded by [`adopted_at`].
pub const SPY_PASSWORD: &str = "Gr0up-Secret-pw";
