//! ONVIF SOAP client: the thin IO around [`crate::soap`] and [`crate::onvif`].
//!
//! One [`OnvifClient`] per camera, sharing one `reqwest::Client` (connection
//! pool) across all cameras. Every call has a timeout and a capped body read
//! (streamed, stopped at [`ClientOptions::max_body`]). Authentication is
//! WS-UsernameToken PasswordDigest stamped with the camera's clock (our clock
//! plus the offset measured by an unauthenticated GetSystemDateAndTime), or
//! HTTP Digest when the camera answers `401` with a Digest challenge; the
//! client remembers which worked. Passwords live in [`Secret`], whose `Debug`
//! and `Display` print `***`, and never reach an error or a log line.
//! Event-service calls ([`OnvifClient::call_addressed`]) also carry
//! WS-Addressing headers ([`crate::wsa`]): the action, `To` (the URL posted
//! to), a fresh MessageID per message, an anonymous ReplyTo and the
//! subscription's reference parameters; other calls carry none (some
//! cameras refuse WS-Addressing on the device and media services).

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::cred_scope::{CredentialScope, Scheme, Withheld};
use crate::local_error::{self, LocalResource};
use crate::onvif::{
    self, DeviceInformation, MediaVersion, NetworkInterface, Profile, Services, SystemDateTime,
};
use crate::soap::{self, SoapError, SoapFault, UsernameToken};
use crate::wsa;
use crate::xml::XmlError;

/// A password: `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a password.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The password itself, for computing digests. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret::new(s)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// User name and password of a camera.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password (prints as `***`).
    pub password: Secret,
}

impl Credentials {
    /// Convenience constructor.
    pub fn new(username: impl Into<String>, password: impl Into<Secret>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }
}

/// Per-client limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientOptions {
    /// Whole-call timeout (connect, send, read the body). Default 5 s.
    pub timeout: Duration,
    /// TCP connect timeout, used by [`http_client`]. Default 3 s.
    pub connect_timeout: Duration,
    /// Largest response body accepted. Default 1 MiB.
    pub max_body: usize,
    /// How long [`http_client`] keeps an idle connection (at most one per
    /// host). Default 10 s; the health poller sets it from its cadence.
    /// Zero keeps none: every call has its own connection, closed when
    /// its answer is read.
    pub pool_idle: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
            max_body: 1 << 20,
            pool_idle: Duration::from_secs(10),
        }
    }
}

/// Our wall clock, injected so tests can fix it (STYLE.md §4).
pub trait WallClock: Send + Sync + 'static {
    /// Now, in UTC.
    fn now_utc(&self) -> OffsetDateTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl WallClock for SystemClock {
    fn now_utc(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// How the client authenticates to a camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// No credentials configured.
    None,
    /// WS-Security UsernameToken with PasswordDigest.
    WsUsernameToken,
    /// HTTP Digest (RFC 7616).
    HttpDigest,
}

/// What went wrong, in a form that drives retries and metric labels.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OnvifErrorKind {
    /// The call did not finish within [`ClientOptions::timeout`].
    #[error("timed out")]
    Timeout,
    /// TCP connect failed.
    #[error("connect failed: {0}")]
    Connect(String),
    /// The call failed on our side: the gateway is out of a local resource
    /// (open files, socket buffers, memory, local ports). Says nothing
    /// about the camera ([`crate::local_error`]).
    #[error("the gateway's own limit: {0}")]
    Local(LocalResource),
    /// Non-success HTTP status without a SOAP fault.
    #[error("HTTP status {status}")]
    Http {
        /// The status code.
        status: u16,
    },
    /// The camera answered with a (non-authentication) SOAP fault.
    #[error("{0}")]
    Fault(SoapFault),
    /// The camera refused our credentials (HTTP 401 or an auth fault).
    #[error("credentials refused")]
    AuthRejected,
    /// The response was not acceptable XML.
    #[error("bad XML: {0}")]
    Xml(XmlError),
    /// The body went over [`ClientOptions::max_body`].
    #[error("response body over the size limit")]
    TooLarge,
    /// Anything else that does not follow the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The camera's login was not sent: the URL that asked for it is not one
    /// of the camera's hosts (`foreign-host`), or it asked for Basic over
    /// plain HTTP without the device's opt-in (`plain-basic`).
    #[error("credentials withheld ({0})")]
    CredentialsWithheld(Withheld),
}

/// A failed ONVIF call: which camera (host:port), which operation, what came back.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{operation} to {peer}: {kind}")]
pub struct OnvifError {
    /// `host:port` of the camera.
    pub peer: String,
    /// The ONVIF operation, e.g. `GetDeviceInformation`.
    pub operation: &'static str,
    /// What happened.
    pub kind: OnvifErrorKind,
}

impl OnvifError {
    /// A short, bounded label for metrics: `timeout`, `connect`, `local`,
    /// `http`, `fault`, `auth`, `parse`, `too_large`, `foreign_host`,
    /// `plain_basic` (`protocol` for the rest).
    pub fn kind_label(&self) -> &'static str {
        match self.kind {
            OnvifErrorKind::Timeout => "timeout",
            OnvifErrorKind::Connect(_) => "connect",
            OnvifErrorKind::Local(_) => "local",
            OnvifErrorKind::Http { .. } => "http",
            OnvifErrorKind::Fault(_) => "fault",
            OnvifErrorKind::AuthRejected => "auth",
            OnvifErrorKind::Xml(_) => "parse",
            OnvifErrorKind::TooLarge => "too_large",
            OnvifErrorKind::Protocol(_) => "protocol",
            OnvifErrorKind::CredentialsWithheld(Withheld::ForeignHost) => "foreign_host",
            OnvifErrorKind::CredentialsWithheld(Withheld::PlainBasic) => "plain_basic",
        }
    }

    /// Whether the credentials (or their timestamp) were refused.
    pub fn is_auth(&self) -> bool {
        match &self.kind {
            OnvifErrorKind::AuthRejected => true,
            OnvifErrorKind::Fault(f) => f.is_auth(),
            _ => false,
        }
    }
}

/// The TLS client configuration of HTTPS device endpoints, set once at
/// start by the daemon (system roots plus `http.outbound_ca_file`).
static DEVICE_TLS: std::sync::OnceLock<rustls::ClientConfig> = std::sync::OnceLock::new();

/// Sets the rustls configuration [`http_client`] uses for `https://`
/// device URLs (ONVIF over HTTPS, snapshots, event pulls). Only the first
/// call counts; it returns whether this one did. Without it, an https
/// device URL is refused as untrusted (no roots).
pub fn set_tls(config: rustls::ClientConfig) -> bool {
    DEVICE_TLS.set(config).is_ok()
}

/// Builds the `reqwest::Client` to share between cameras: HTTP/1.1, no proxy
/// (cameras are on the LAN), the connect timeout of `opts`; `https://` with
/// the configuration given to [`set_tls`].
pub fn http_client(opts: &ClientOptions) -> Result<reqwest::Client, reqwest::Error> {
    http_client_with_tls(opts, DEVICE_TLS.get().cloned())
}

/// [`http_client`] with an explicit TLS configuration (`None`: no trusted
/// roots, every https endpoint is refused as `UnknownIssuer`).
pub fn http_client_with_tls(
    opts: &ClientOptions,
    tls: Option<rustls::ClientConfig>,
) -> Result<reqwest::Client, reqwest::Error> {
    let tls = tls.unwrap_or_else(|| {
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth()
    });
    reqwest::Client::builder()
        .no_proxy()
        .use_preconfigured_tls(tls)
        .connect_timeout(opts.connect_timeout)
        // Calls to one camera come in bursts (an inventory, a describe cycle)
        // separated by tens of seconds: keep one connection briefly, not one
        // idle socket per camera for 30 s (1,000 cameras).
        .pool_idle_timeout(opts.pool_idle)
        .pool_max_idle_per_host(usize::from(!opts.pool_idle.is_zero()))
        .tcp_nodelay(true)
        .build()
}

/// One media profile with its URIs (credentials stripped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileInventory {
    /// The profile.
    pub profile: Profile,
    /// RTSP stream URI, if GetStreamUri worked.
    pub stream_uri: Option<String>,
    /// Snapshot URI, if GetSnapshotUri worked.
    pub snapshot_uri: Option<String>,
}

/// Everything [`OnvifClient::inventory`] learnt about a camera.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CameraInventory {
    /// The device service URL (credential-free).
    pub xaddr: String,
    /// GetDeviceInformation.
    pub device: DeviceInformation,
    /// Camera UTC − our UTC, in milliseconds.
    pub clock_offset_ms: i64,
    /// MAC of the first enabled interface with one (`aa:bb:cc:dd:ee:ff`).
    pub mac: Option<String>,
    /// GetNetworkInterfaces.
    pub interfaces: Vec<NetworkInterface>,
    /// GetScopes.
    pub scopes: Vec<String>,
    /// Service XAddrs (GetServices, else GetCapabilities).
    pub services: Services,
    /// 2 when profiles came from Media2, else 1.
    pub media_version: u8,
    /// Profiles with their URIs.
    pub profiles: Vec<ProfileInventory>,
    /// How we authenticated.
    pub auth: AuthMode,
    /// Things that went wrong without failing the inventory.
    pub warnings: Vec<String>,
}

/// A clock measurement from GetSystemDateAndTime.
#[derive(Debug, Clone, PartialEq)]
pub struct ClockReading {
    /// What the camera said.
    pub time: SystemDateTime,
    /// Camera UTC − our UTC at the round-trip midpoint, in milliseconds.
    pub offset_ms: i64,
    /// True when the camera demanded authentication for it.
    pub needed_auth: bool,
}

struct State {
    offset_ms: i64,
    mode: AuthMode,
    digest: Option<digest_auth::WwwAuthenticateHeader>,
    services: Option<Services>,
}

/// An ONVIF client for one camera.
pub struct OnvifClient {
    http: reqwest::Client,
    device_url: String,
    peer: String,
    creds: Option<Credentials>,
    opts: ClientOptions,
    clock: Arc<dyn WallClock>,
    state: Mutex<State>,
}

impl fmt::Debug for OnvifClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnvifClient")
            .field("device_url", &self.device_url)
            .field("creds", &self.creds)
            .finish_non_exhaustive()
    }
}

type Parser<T> = fn(&[u8], usize) -> Result<T, SoapError>;

/// The WS-Addressing part of an event call: its action and the reference
/// parameters to echo (`wsa:To` is the URL the call is posted to).
#[derive(Debug, Clone, Copy)]
pub struct Addressed<'a> {
    /// `wsa:Action` (an `onvif_events::ACTION_*`).
    pub action: &'a str,
    /// Echoed as header blocks (`Subscription::reference_parameters`).
    pub reference_parameters: &'a [wsa::Element],
}

/// One request: its body and, for event calls, its addressing.
#[derive(Debug, Clone, Copy)]
struct Msg<'a> {
    body: &'a str,
    wsa: Option<Addressed<'a>>,
}

impl<'a> Msg<'a> {
    fn plain(body: &'a str) -> Self {
        Msg { body, wsa: None }
    }

    /// The envelope, with a fresh MessageID when addressed.
    fn envelope(&self, url: &str, security: Option<&UsernameToken>) -> String {
        match self.wsa {
            Some(a) => {
                let id = wsa::message_id(rand::random::<[u8; 16]>());
                let addressing = wsa::Addressing {
                    action: a.action,
                    to: url,
                    message_id: &id,
                    reference_parameters: a.reference_parameters,
                };
                soap::envelope_with(self.body, security, Some(&addressing))
            }
            None => soap::envelope(self.body, security),
        }
    }
}

impl OnvifClient {
    /// A client for the device service at `device_xaddr` (userinfo in the URL
    /// is dropped), with its own HTTP client. Prefer [`with_http`](Self::with_http)
    /// to share one connection pool across many cameras.
    pub fn new(
        device_xaddr: &str,
        creds: Option<Credentials>,
        opts: ClientOptions,
    ) -> Result<Self, OnvifError> {
        let http = http_client(&opts).map_err(|e| OnvifError {
            peer: String::new(),
            operation: "new",
            kind: OnvifErrorKind::Protocol(e.without_url().to_string()),
        })?;
        Self::with_http(http, device_xaddr, creds, opts)
    }

    /// Like [`new`](Self::new), with a shared `reqwest::Client`.
    pub fn with_http(
        http: reqwest::Client,
        device_xaddr: &str,
        creds: Option<Credentials>,
        opts: ClientOptions,
    ) -> Result<Self, OnvifError> {
        let clean = onvif::strip_credentials(device_xaddr);
        let bad = |why: &str| OnvifError {
            peer: clean.clone(),
            operation: "new",
            kind: OnvifErrorKind::Protocol(format!("invalid device XAddr: {why}")),
        };
        let url = url::Url::parse(&clean).map_err(|e| bad(&e.to_string()))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(bad("scheme is not http"));
        }
        let peer = peer_of(&url).ok_or_else(|| bad("no host"))?;
        let mode = if creds.is_some() {
            AuthMode::WsUsernameToken
        } else {
            AuthMode::None
        };
        Ok(OnvifClient {
            http,
            device_url: url.to_string(),
            peer,
            creds,
            opts,
            clock: Arc::new(SystemClock),
            state: Mutex::new(State {
                offset_ms: 0,
                mode,
                digest: None,
                services: None,
            }),
        })
    }

    /// Replaces the wall clock (tests, simulations).
    pub fn with_clock(mut self, clock: Arc<dyn WallClock>) -> Self {
        self.clock = clock;
        self
    }

    /// `host:port` of the camera.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// The device service URL, credential-free.
    pub fn device_url(&self) -> &str {
        &self.device_url
    }

    /// The last measured clock offset (camera − us), in milliseconds.
    pub fn clock_offset_ms(&self) -> i64 {
        self.state().offset_ms
    }

    /// Sets the clock offset (e.g. remembered from a previous poll).
    pub fn set_clock_offset_ms(&self, offset_ms: i64) {
        self.state().offset_ms = offset_ms;
    }

    /// The authentication mode in use.
    pub fn auth_mode(&self) -> AuthMode {
        self.state().mode
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn err(&self, operation: &'static str, kind: OnvifErrorKind) -> OnvifError {
        OnvifError {
            peer: self.peer.clone(),
            operation,
            kind,
        }
    }

    // ------------------------------------------------------------ transport

    /// One HTTP exchange (with the Digest challenge round if needed), under
    /// the call timeout. Returns the body of a 2xx answer.
    async fn post(
        &self,
        op: &'static str,
        url: &str,
        msg: Msg<'_>,
        authenticated: bool,
    ) -> Result<Vec<u8>, OnvifError> {
        match tokio::time::timeout(self.opts.timeout, self.post_inner(url, msg, authenticated))
            .await
        {
            Ok(r) => r.map_err(|k| self.err(op, k)),
            Err(_) => Err(self.err(op, OnvifErrorKind::Timeout)),
        }
    }

    async fn post_inner(
        &self,
        url: &str,
        msg: Msg<'_>,
        authenticated: bool,
    ) -> Result<Vec<u8>, OnvifErrorKind> {
        let creds = if authenticated {
            self.creds.as_ref()
        } else {
            None
        };
        let path = url::Url::parse(url)
            .map(|u| match u.query() {
                Some(q) => format!("{}?{}", u.path(), q),
                None => u.path().to_string(),
            })
            .map_err(|e| OnvifErrorKind::Protocol(format!("invalid service URL: {e}")))?;
        for attempt in 0..2 {
            let (envelope, authorization) = {
                let mut st = self.state();
                match (creds, st.mode) {
                    (Some(c), AuthMode::HttpDigest) => {
                        let env = msg.envelope(url, None);
                        let auth = match st.digest.as_mut() {
                            Some(ch) => Some(digest_header(ch, c, &path, env.as_bytes())?),
                            None => None,
                        };
                        (env, auth)
                    }
                    (Some(c), _) => {
                        let created =
                            self.clock.now_utc() + time::Duration::milliseconds(st.offset_ms);
                        let token = UsernameToken::new(
                            &c.username,
                            c.password.expose(),
                            rand::random::<[u8; 16]>(),
                            created,
                        );
                        (msg.envelope(url, Some(&token)), None)
                    }
                    (None, _) => (msg.envelope(url, None), None),
                }
            };
            let mut req = self
                .http
                .post(url)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/soap+xml; charset=utf-8",
                )
                .body(envelope);
            if let Some(a) = authorization {
                req = req.header(reqwest::header::AUTHORIZATION, a);
            }
            let resp = req.send().await.map_err(map_reqwest)?;
            let status = resp.status().as_u16();
            if status == 401 {
                let challenge = resp
                    .headers()
                    .get_all(reqwest::header::WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .find(|v| v.trim_start().to_ascii_lowercase().starts_with("digest"))
                    .and_then(|v| digest_auth::parse(v).ok());
                if let (Some(_), Some(ch), 0) = (creds, challenge, attempt) {
                    let mut st = self.state();
                    st.digest = Some(ch);
                    st.mode = AuthMode::HttpDigest;
                    continue;
                }
                return Err(OnvifErrorKind::AuthRejected);
            }
            let bytes = read_capped(resp, self.opts.max_body).await?;
            if !(200..300).contains(&status) {
                return Err(match soap::parse_fault(&bytes, self.opts.max_body) {
                    Some(f) => OnvifErrorKind::Fault(f),
                    None => OnvifErrorKind::Http { status },
                });
            }
            return Ok(bytes);
        }
        Err(OnvifErrorKind::AuthRejected)
    }

    async fn call_once<T>(
        &self,
        op: &'static str,
        url: &str,
        msg: Msg<'_>,
        authenticated: bool,
        parse: Parser<T>,
    ) -> Result<T, OnvifError> {
        let bytes = self.post(op, url, msg, authenticated).await?;
        parse(&bytes, self.opts.max_body).map_err(|e| {
            self.err(
                op,
                match e {
                    SoapError::Xml(x) => OnvifErrorKind::Xml(x),
                    SoapError::Fault(f) => OnvifErrorKind::Fault(f),
                    SoapError::Protocol(p) => OnvifErrorKind::Protocol(p),
                },
            )
        })
    }

    /// An authenticated call. On an auth failure with WS-UsernameToken the
    /// clock offset is re-measured once and, if it moved, the call retried.
    async fn call<T>(
        &self,
        op: &'static str,
        url: &str,
        body: &str,
        parse: Parser<T>,
    ) -> Result<T, OnvifError> {
        self.call_msg(op, url, Msg::plain(body), parse).await
    }

    async fn call_msg<T>(
        &self,
        op: &'static str,
        url: &str,
        msg: Msg<'_>,
        parse: Parser<T>,
    ) -> Result<T, OnvifError> {
        let first = self.call_once(op, url, msg, true, parse).await;
        let r = match first {
            Err(e)
                if e.is_auth()
                    && self.creds.is_some()
                    && self.auth_mode() == AuthMode::WsUsernameToken =>
            {
                let before = self.clock_offset_ms();
                match self.measure(false).await {
                    Ok(reading) if (reading.offset_ms - before).abs() > 1000 => {
                        self.call_once(op, url, msg, true, parse).await
                    }
                    _ => Err(e),
                }
            }
            other => other,
        };
        r.map_err(|mut e| {
            if e.is_auth() {
                e.kind = OnvifErrorKind::AuthRejected;
            }
            e
        })
    }

    /// Any authenticated operation at `url` (the event service, the clock
    /// setters: see `onvif_events`), with the same authentication, clock
    /// retry, body cap and timeout as the calls above.
    pub async fn call_op<T>(
        &self,
        op: &'static str,
        url: &str,
        body: &str,
        parse: fn(&[u8], usize) -> Result<T, SoapError>,
    ) -> Result<T, OnvifError> {
        self.call(op, url, body, parse).await
    }

    /// [`call_op`](Self::call_op) with WS-Addressing headers: the event
    /// service's calls (`addressed.action`, `wsa:To` = `url`, a fresh
    /// `wsa:MessageID` per message, `wsa:ReplyTo` anonymous and the
    /// subscription's reference parameters echoed).
    pub async fn call_addressed<T>(
        &self,
        op: &'static str,
        url: &str,
        addressed: Addressed<'_>,
        body: &str,
        parse: fn(&[u8], usize) -> Result<T, SoapError>,
    ) -> Result<T, OnvifError> {
        let msg = Msg {
            body,
            wsa: Some(addressed),
        };
        self.call_msg(op, url, msg, parse).await
    }

    async fn measure(&self, authenticated: bool) -> Result<ClockReading, OnvifError> {
        let wall0 = self.clock.now_utc();
        let t0 = Instant::now();
        let time = self
            .call_once(
                "GetSystemDateAndTime",
                &self.device_url,
                Msg::plain(&onvif::get_system_date_and_time()),
                authenticated,
                onvif::parse_system_date_and_time,
            )
            .await?;
        let rtt = t0.elapsed();
        let mid = wall0 + rtt / 2;
        let offset = (time.utc - mid).whole_milliseconds();
        let offset_ms =
            i64::try_from(offset).unwrap_or(if offset < 0 { i64::MIN } else { i64::MAX });
        self.set_clock_offset_ms(offset_ms);
        Ok(ClockReading {
            time,
            offset_ms,
            needed_auth: authenticated,
        })
    }

    // ----------------------------------------------------------- operations

    /// GetSystemDateAndTime, unauthenticated, measuring and storing the clock
    /// offset. If the camera demands authentication for it, it is retried
    /// authenticated with offset 0 (`needed_auth` set).
    pub async fn measure_clock(&self) -> Result<ClockReading, OnvifError> {
        match self.measure(false).await {
            Err(e) if e.is_auth() && self.creds.is_some() => {
                self.set_clock_offset_ms(0);
                self.measure(true).await.map_err(|mut e| {
                    if e.is_auth() {
                        e.kind = OnvifErrorKind::AuthRejected;
                    }
                    e
                })
            }
            other => other,
        }
    }

    /// GetSystemDateAndTime (see [`measure_clock`](Self::measure_clock)).
    pub async fn system_date_and_time(&self) -> Result<SystemDateTime, OnvifError> {
        Ok(self.measure_clock().await?.time)
    }

    /// GetServices, falling back to GetCapabilities when GetServices gives a
    /// fault, an HTTP error or an unusable answer. The result is remembered.
    pub async fn services(&self) -> Result<Services, OnvifError> {
        let s = match self
            .call(
                "GetServices",
                &self.device_url,
                &onvif::get_services(false),
                onvif::parse_services,
            )
            .await
        {
            Ok(s) => s,
            Err(e) if fallback_worthy(&e) => {
                self.call(
                    "GetCapabilities",
                    &self.device_url,
                    &onvif::get_capabilities(),
                    onvif::parse_capabilities,
                )
                .await?
            }
            Err(e) => return Err(e),
        };
        self.state().services = Some(s.clone());
        Ok(s)
    }

    /// GetDeviceInformation (authenticated: proves the credentials).
    pub async fn device_information(&self) -> Result<DeviceInformation, OnvifError> {
        self.call(
            "GetDeviceInformation",
            &self.device_url,
            &onvif::get_device_information(),
            onvif::parse_device_information,
        )
        .await
    }

    /// GetNetworkInterfaces.
    pub async fn network_interfaces(&self) -> Result<Vec<NetworkInterface>, OnvifError> {
        self.call(
            "GetNetworkInterfaces",
            &self.device_url,
            &onvif::get_network_interfaces(),
            onvif::parse_network_interfaces,
        )
        .await
    }

    /// GetScopes.
    pub async fn scopes(&self) -> Result<Vec<String>, OnvifError> {
        self.call(
            "GetScopes",
            &self.device_url,
            &onvif::get_scopes(),
            onvif::parse_scopes,
        )
        .await
    }

    fn media_target(&self) -> (MediaVersion, String) {
        let st = self.state();
        let services = st.services.as_ref();
        if let Some(x) = services.and_then(Services::media2) {
            return (MediaVersion::Media2, x.to_string());
        }
        let x = services
            .and_then(Services::media)
            .unwrap_or(&self.device_url)
            .to_string();
        (MediaVersion::Media1, x)
    }

    fn media1_url(&self) -> String {
        self.state()
            .services
            .as_ref()
            .and_then(Services::media)
            .unwrap_or(&self.device_url)
            .to_string()
    }

    /// GetProfiles from Media2 when the camera has it (per [`services`](Self::services)),
    /// else Media1; a failing Media2 falls back to Media1. Returns the media
    /// version used, which later URI calls also use.
    pub async fn profiles(&self) -> Result<(MediaVersion, Vec<Profile>), OnvifError> {
        let (v, url) = self.media_target();
        let r = self
            .call(
                "GetProfiles",
                &url,
                &onvif::get_profiles(v),
                onvif::parse_profiles,
            )
            .await;
        match r {
            Ok(p) => Ok((v, p)),
            Err(e) if v == MediaVersion::Media2 && fallback_worthy(&e) => {
                if let Some(s) = self.state().services.as_mut() {
                    s.xaddrs.remove(onvif::NS_MEDIA2);
                }
                let url = self.media1_url();
                let p = self
                    .call(
                        "GetProfiles",
                        &url,
                        &onvif::get_profiles(MediaVersion::Media1),
                        onvif::parse_profiles,
                    )
                    .await?;
                Ok((MediaVersion::Media1, p))
            }
            Err(e) => Err(e),
        }
    }

    /// GetStreamUri (RTSP) for a profile, credentials stripped.
    pub async fn stream_uri(&self, profile_token: &str) -> Result<String, OnvifError> {
        let (v, url) = self.media_target();
        self.call(
            "GetStreamUri",
            &url,
            &onvif::get_stream_uri(v, profile_token),
            onvif::parse_media_uri,
        )
        .await
        .map(|u| onvif::strip_credentials(&u))
    }

    /// GetSnapshotUri for a profile, credentials stripped.
    pub async fn snapshot_uri(&self, profile_token: &str) -> Result<String, OnvifError> {
        let (v, url) = self.media_target();
        self.call(
            "GetSnapshotUri",
            &url,
            &onvif::get_snapshot_uri(v, profile_token),
            onvif::parse_media_uri,
        )
        .await
        .map(|u| onvif::strip_credentials(&u))
    }

    /// The whole sequence: clock (unauthenticated), services, device
    /// information, interfaces, scopes, profiles and their URIs.
    ///
    /// Fails on transport errors, refused credentials and a failing
    /// GetDeviceInformation or GetProfiles; the other calls degrade to warnings.
    pub async fn inventory(&self) -> Result<CameraInventory, OnvifError> {
        let mut warnings = Vec::new();
        match self.measure_clock().await {
            Ok(r) if r.needed_auth => warnings.push(
                "camera demands authentication for GetSystemDateAndTime; clock offset measured after authenticating"
                    .to_string(),
            ),
            Ok(_) => {}
            Err(e) if matches!(
                e.kind,
                OnvifErrorKind::Xml(_) | OnvifErrorKind::Protocol(_) | OnvifErrorKind::Fault(_) | OnvifErrorKind::Http { .. }
            ) => {
                warnings.push(format!("clock offset unknown, assuming 0: {e}"));
                self.set_clock_offset_ms(0);
            }
            Err(e) => return Err(e),
        }
        let services = match self.services().await {
            Ok(s) => s,
            Err(e) if !e.is_auth() && !is_transport(&e) => {
                warnings.push(format!(
                    "no service list, using the device XAddr for everything: {e}"
                ));
                Services::default()
            }
            Err(e) => return Err(e),
        };
        let device = self.device_information().await?;
        let interfaces = self.network_interfaces().await.unwrap_or_else(|e| {
            warnings.push(e.to_string());
            Vec::new()
        });
        let scopes = self.scopes().await.unwrap_or_else(|e| {
            warnings.push(e.to_string());
            Vec::new()
        });
        let (version, profiles) = self.profiles().await?;
        let mut out = Vec::with_capacity(profiles.len());
        for profile in profiles {
            let stream_uri = match self.stream_uri(&profile.token).await {
                Ok(u) => Some(u),
                Err(e) => {
                    warnings.push(format!("profile {:?}: {e}", profile.token));
                    None
                }
            };
            let snapshot_uri = match self.snapshot_uri(&profile.token).await {
                Ok(u) => Some(u),
                Err(e) => {
                    warnings.push(format!("profile {:?}: {e}", profile.token));
                    None
                }
            };
            out.push(ProfileInventory {
                profile,
                stream_uri,
                snapshot_uri,
            });
        }
        let mac = interfaces
            .iter()
            .filter(|i| i.enabled)
            .chain(interfaces.iter())
            .find_map(|i| i.hw_address.clone());
        let services = self.state().services.clone().unwrap_or(services);
        Ok(CameraInventory {
            xaddr: self.device_url.clone(),
            device,
            clock_offset_ms: self.clock_offset_ms(),
            mac,
            interfaces,
            scopes,
            services,
            media_version: version.number(),
            profiles: out,
            auth: self.auth_mode(),
            warnings,
        })
    }
}

fn is_transport(e: &OnvifError) -> bool {
    matches!(
        e.kind,
        OnvifErrorKind::Timeout
            | OnvifErrorKind::Connect(_)
            | OnvifErrorKind::Local(_)
            | OnvifErrorKind::TooLarge
    )
}

/// Errors after which a fallback request (GetCapabilities, Media1) makes sense.
fn fallback_worthy(e: &OnvifError) -> bool {
    match &e.kind {
        OnvifErrorKind::Fault(_) | OnvifErrorKind::Http { .. } | OnvifErrorKind::Protocol(_) => {
            !e.is_auth()
        }
        OnvifErrorKind::Xml(x) => !matches!(x, XmlError::Dtd | XmlError::TooLarge { .. }),
        _ => false,
    }
}

fn peer_of(url: &url::Url) -> Option<String> {
    let host = url.host_str()?;
    let port = url.port_or_known_default()?;
    Some(format!("{host}:{port}"))
}

fn digest_header(
    challenge: &mut digest_auth::WwwAuthenticateHeader,
    creds: &Credentials,
    path: &str,
    body: &[u8],
) -> Result<String, OnvifErrorKind> {
    let ctx = digest_auth::AuthContext::new_with_method(
        creds.username.as_str(),
        creds.password.expose(),
        path,
        Some(body),
        digest_auth::HttpMethod::POST,
    );
    challenge
        .respond(&ctx)
        .map(|h| h.to_header_string())
        .map_err(|e| OnvifErrorKind::Protocol(format!("unusable Digest challenge: {e}")))
}

fn map_reqwest(e: reqwest::Error) -> OnvifErrorKind {
    let e = e.without_url();
    // Ours before anything else: a connect that failed for want of a file
    // descriptor or a local port is not the camera's doing.
    if let Some(r) = local_error::of_chain(&e) {
        return OnvifErrorKind::Local(r);
    }
    if e.is_timeout() {
        return OnvifErrorKind::Timeout;
    }
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    if e.is_connect() || dropped_without_answer(&e) {
        OnvifErrorKind::Connect(msg)
    } else {
        OnvifErrorKind::Protocol(msg)
    }
}

/// The peer took the connection and closed or reset it before sending a
/// response. Nothing there speaks HTTP to us: that is unreachable (an offline
/// camera behind a NAT or a device still booting does exactly this), not a
/// protocol error.
pub fn dropped_without_answer(e: &reqwest::Error) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(h) = s.downcast_ref::<hyper::Error>()
            && h.is_incomplete_message()
        {
            return true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            )
        {
            return true;
        }
        src = s.source();
    }
    false
}

async fn read_capped(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, OnvifErrorKind> {
    if resp.content_length().is_some_and(|l| l > max as u64) {
        return Err(OnvifErrorKind::TooLarge);
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(map_reqwest)? {
        if buf.len() + chunk.len() > max {
            return Err(OnvifErrorKind::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Largest snapshot accepted by [`fetch_snapshot`].
pub const MAX_SNAPSHOT_BYTES: usize = 4 << 20;

/// Fetches a snapshot (the URI from GetSnapshotUri) with HTTP Digest or
/// Basic when the camera asks for it, and checks that a JPEG came back.
/// Credentials inside the URI are ignored; `creds` are used instead, and
/// only where `scope` allows (see [`crate::cred_scope`]): the challenge's
/// URL — where any redirect landed — must be one of the camera's hosts, and
/// Basic over plain `http://` needs the device's opt-in. Otherwise the
/// credentials are withheld and the fetch fails with
/// [`OnvifErrorKind::CredentialsWithheld`]; a URI that needs no login is
/// fetched from any host (without credentials). The authenticated request
/// goes to the URL that challenged; should it redirect to another host,
/// the client drops the `Authorization` header.
pub async fn fetch_snapshot(
    http: &reqwest::Client,
    uri: &str,
    creds: Option<&Credentials>,
    scope: &CredentialScope,
    timeout: Duration,
) -> Result<Vec<u8>, OnvifError> {
    const OP: &str = "GetSnapshot";
    let clean = onvif::strip_credentials(uri);
    let url = url::Url::parse(&clean).map_err(|e| OnvifError {
        peer: String::new(),
        operation: OP,
        kind: OnvifErrorKind::Protocol(format!("bad snapshot URI: {e}")),
    })?;
    let peer = peer_of(&url).unwrap_or_default();
    let err = |kind| OnvifError {
        peer: peer.clone(),
        operation: OP,
        kind,
    };
    let work = async {
        let resp = http.get(url.clone()).send().await.map_err(map_reqwest)?;
        let resp = if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
            let Some(c) = creds else {
                return Err(OnvifErrorKind::AuthRejected);
            };
            let challenge = resp
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            // Judge (and answer) the URL that challenged, not the one asked.
            let at = resp.url().clone();
            let digest = Scheme::of_challenge(&challenge) == Scheme::Digest;
            let scheme = if digest {
                Scheme::Digest
            } else {
                Scheme::Basic
            };
            scope
                .check(&at, scheme)
                .map_err(OnvifErrorKind::CredentialsWithheld)?;
            let path = match at.query() {
                Some(q) => format!("{}?{q}", at.path()),
                None => at.path().to_string(),
            };
            let auth = if digest {
                let mut ch = crate::sip::parse_digest_challenge(&challenge).map_err(|e| {
                    OnvifErrorKind::Protocol(format!("unusable Digest challenge: {e}"))
                })?;
                let ctx = digest_auth::AuthContext::new_with_method(
                    c.username.as_str(),
                    c.password.expose(),
                    &path,
                    None::<&[u8]>,
                    digest_auth::HttpMethod::GET,
                );
                ch.respond(&ctx)
                    .map(|h| h.to_header_string())
                    .map_err(|e| {
                        OnvifErrorKind::Protocol(format!("unusable Digest challenge: {e}"))
                    })?
            } else {
                use base64::Engine as _;
                let raw = format!("{}:{}", c.username, c.password.expose());
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                )
            };
            let r = http
                .get(at)
                .header(reqwest::header::AUTHORIZATION, auth)
                .send()
                .await
                .map_err(map_reqwest)?;
            if r.status() == reqwest::StatusCode::UNAUTHORIZED {
                return Err(OnvifErrorKind::AuthRejected);
            }
            r
        } else {
            resp
        };
        if !resp.status().is_success() {
            return Err(OnvifErrorKind::Http {
                status: resp.status().as_u16(),
            });
        }
        let body = read_capped(resp, MAX_SNAPSHOT_BYTES).await?;
        if !body.starts_with(&[0xff, 0xd8]) {
            return Err(OnvifErrorKind::Protocol(format!(
                "snapshot is not a JPEG ({} bytes)",
                body.len()
            )));
        }
        Ok(body)
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r.map_err(err),
        Err(_) => Err(err(OnvifErrorKind::Timeout)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};
    use time::macros::datetime;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    const BASE: OffsetDateTime = datetime!(2026-11-23 08:00:00 UTC);
    const USER: &str = "admin";
    const PASS: &str = "Sup3r-secret";

    struct FixedClock;
    impl WallClock for FixedClock {
        fn now_utc(&self) -> OffsetDateTime {
            BASE
        }
    }

    struct Req {
        headers: Vec<(String, String)>,
        body: String,
    }

    impl Req {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
        fn op(&self) -> String {
            let Ok(doc) = crate::xml::parse(&self.body) else {
                return String::new();
            };
            crate::xml::find(doc.root_element(), "Body")
                .and_then(|b| b.children().find(|c| c.is_element()))
                .map(|n| n.tag_name().name().to_string())
                .unwrap_or_default()
        }
    }

    struct Resp {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    fn ok(body: String) -> Resp {
        Resp {
            status: 200,
            headers: vec![],
            body: body.into_bytes(),
        }
    }

    type Handler = Arc<dyn Fn(Req) -> Resp + Send + Sync>;

    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }

    async fn conn(mut s: TcpStream, h: Handler) {
        let mut buf = Vec::new();
        let mut tmp = [0u8; 8192];
        loop {
            let hdr_end = loop {
                if let Some(i) = find(&buf, b"\r\n\r\n") {
                    break i + 4;
                }
                match s.read(&mut tmp).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&tmp[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buf[..hdr_end]).to_string();
            let headers: Vec<(String, String)> = head
                .lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect();
            let len: usize = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            while buf.len() < hdr_end + len {
                match s.read(&mut tmp).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&tmp[..n]),
                }
            }
            let body = String::from_utf8_lossy(&buf[hdr_end..hdr_end + len]).to_string();
            buf.drain(..hdr_end + len);
            let r = h(Req { headers, body });
            let mut out = format!(
                "HTTP/1.1 {} X\r\nContent-Type: application/soap+xml\r\nContent-Length: {}\r\n",
                r.status,
                r.body.len()
            );
            for (k, v) in &r.headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            let mut bytes = out.into_bytes();
            bytes.extend_from_slice(&r.body);
            if s.write_all(&bytes).await.is_err() {
                return;
            }
        }
    }

    async fn serve(listener: TcpListener, h: Handler) {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(conn(s, h.clone()));
        }
    }

    fn fault(status: u16, sub: &str, reason: &str) -> Resp {
        Resp {
            status,
            headers: vec![],
            body: format!(
                r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:ter="http://www.onvif.org/ver10/error"><env:Body><env:Fault><env:Code><env:Value>env:Sender</env:Value><env:Subcode><env:Value>{sub}</env:Value></env:Subcode></env:Code><env:Reason><env:Text xml:lang="en">{reason}</env:Text></env:Reason></env:Fault></env:Body></env:Envelope>"#
            )
            .into_bytes(),
        }
    }

    fn sdt(now: OffsetDateTime) -> String {
        format!(
            r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema"><env:Body><tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>Manual</tt:DateTimeType><tt:UTCDateTime><tt:Time><tt:Hour>{}</tt:Hour><tt:Minute>{}</tt:Minute><tt:Second>{}</tt:Second></tt:Time><tt:Date><tt:Year>{}</tt:Year><tt:Month>{}</tt:Month><tt:Day>{}</tt:Day></tt:Date></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse></env:Body></env:Envelope>"#,
            now.hour(),
            now.minute(),
            now.second(),
            now.year(),
            u8::from(now.month()),
            now.day()
        )
    }

    /// A fake camera serving the agsh-mockup captures.
    #[derive(Default)]
    struct Cam {
        skew_s: AtomicI64,
        auth_for_all: bool,
        digest: bool,
        fault_on: Option<&'static str>,
        port: u16,
        calls: Mutex<Vec<String>>,
        bodies: Mutex<Vec<String>>,
    }

    impl Cam {
        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }

        fn handle(&self, req: Req) -> Resp {
            let op = req.op();
            self.calls.lock().unwrap().push(op.clone());
            self.bodies.lock().unwrap().push(req.body.clone());
            let now = BASE + time::Duration::seconds(self.skew_s.load(Ordering::SeqCst));
            if op != "GetSystemDateAndTime" || self.auth_for_all {
                if self.digest {
                    let challenge = Resp {
                        status: 401,
                        headers: vec![(
                            "WWW-Authenticate".into(),
                            r#"Digest realm="tgw-test", qop="auth", nonce="fixednonce", algorithm=MD5"#.into(),
                        )],
                        body: vec![],
                    };
                    let Some(h) = req.header("authorization") else {
                        return challenge;
                    };
                    // digest_auth panics on non-ASCII text (see
                    // `sip::parse_digest_challenge`).
                    if !h.is_ascii() {
                        return challenge;
                    }
                    let Ok(mut a) = digest_auth::AuthorizationHeader::parse(h) else {
                        return challenge;
                    };
                    let claimed = a.response.clone();
                    let uri = a.uri.clone();
                    let ctx = digest_auth::AuthContext::new_with_method(
                        USER,
                        PASS,
                        uri.as_str(),
                        Some(req.body.as_bytes()),
                        digest_auth::HttpMethod::POST,
                    );
                    a.digest(&ctx);
                    if a.response != claimed || a.nonce != "fixednonce" || a.username != USER {
                        return challenge;
                    }
                } else if let Err(e) = soap::verify_username_token(
                    &req.body,
                    USER,
                    PASS,
                    now,
                    time::Duration::seconds(5),
                ) {
                    return fault(
                        400,
                        "ter:NotAuthorized",
                        &format!("Sender not Authorized ({e})"),
                    );
                }
            }
            if self.fault_on == Some(op.as_str()) {
                return fault(
                    500,
                    "ter:ActionNotSupported",
                    "Optional Action Not Implemented",
                );
            }
            let local = format!("http://127.0.0.1:{}/onvif/services", self.port);
            let fix = |s: &str| s.replace("http://192.168.68.111/onvif/services", &local);
            match op.as_str() {
                "GetSystemDateAndTime" => ok(sdt(now)),
                "GetServices" => ok(fix(include_str!(
                    "../testdata/onvif/agsh-mockup/GetServices.xml"
                ))),
                "GetCapabilities" => ok(fix(include_str!(
                    "../testdata/onvif/agsh-mockup/GetCapabilities.xml"
                ))),
                "GetDeviceInformation" => ok(include_str!(
                    "../testdata/onvif/agsh-mockup/GetDeviceInformation.xml"
                )
                .into()),
                "GetNetworkInterfaces" => ok(include_str!(
                    "../testdata/onvif/agsh-mockup/device.GetNetworkInterfaces.xml"
                )
                .into()),
                "GetScopes" => {
                    ok(include_str!("../testdata/onvif/agsh-mockup/GetScopes.xml").into())
                }
                "GetProfiles" => {
                    ok(include_str!("../testdata/onvif/agsh-mockup/GetProfiles.xml").into())
                }
                "GetStreamUri" => {
                    ok(include_str!("../testdata/onvif/agsh-mockup/GetStreamUri.xml").into())
                }
                "GetSnapshotUri" => {
                    ok(include_str!("../testdata/onvif/agsh-mockup/GetSnapshotUri.xml").into())
                }
                "PullMessages" => ok(include_str!(
                    "../testdata/onvif/synthetic/axis.PullMessages.tampering.xml"
                )
                .into()),
                _ => fault(400, "ter:ActionNotSupported", "unknown action"),
            }
        }
    }

    async fn start(mut cam: Cam) -> (Arc<Cam>, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        cam.port = listener.local_addr().unwrap().port();
        let cam = Arc::new(cam);
        let c = cam.clone();
        tokio::spawn(serve(listener, Arc::new(move |r| c.handle(r))));
        let url = format!("http://127.0.0.1:{}/onvif/device_service", cam.port);
        (cam, url)
    }

    fn client(url: &str, pass: &str) -> OnvifClient {
        OnvifClient::new(
            url,
            Some(Credentials::new(USER, pass)),
            ClientOptions::default(),
        )
        .unwrap()
        .with_clock(Arc::new(FixedClock))
    }

    /// Full inventory of a camera whose clock is 10 minutes ahead: the offset
    /// is measured unauthenticated and used in every UsernameToken (the fake
    /// camera checks Created within ±5 s of its own clock).
    #[tokio::test]
    async fn inventory_with_skewed_clock() {
        let (cam, url) = start(Cam {
            skew_s: AtomicI64::new(600),
            ..Cam::default()
        })
        .await;
        let c = client(&url, PASS);
        let inv = c.inventory().await.unwrap();
        assert!(
            (inv.clock_offset_ms - 600_000).abs() < 1000,
            "{}",
            inv.clock_offset_ms
        );
        assert_eq!(inv.device.manufacturer, "Mockup Manufacturer");
        assert_eq!(inv.mac.as_deref(), Some("28:57:be:65:7d:d5"));
        assert_eq!(inv.scopes.len(), 7);
        assert_eq!(inv.media_version, 1);
        assert_eq!(inv.auth, AuthMode::WsUsernameToken);
        assert_eq!(inv.profiles.len(), 1);
        assert_eq!(
            inv.profiles[0].stream_uri.as_deref(),
            Some("rtsp://192.168.68.111/h264main")
        );
        assert!(
            inv.profiles[0]
                .snapshot_uri
                .as_deref()
                .unwrap()
                .contains("image.cgi")
        );
        assert!(
            inv.services
                .media()
                .unwrap()
                .starts_with("http://127.0.0.1:")
        );
        assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
        assert_eq!(cam.calls()[0], "GetSystemDateAndTime");
        let json = serde_json::to_string(&inv).unwrap();
        assert!(!json.contains(PASS));
        let back: CameraInventory = serde_json::from_str(&json).unwrap();
        assert_eq!(back, inv);
    }

    /// The camera's clock jumps after we measured it: the first authenticated
    /// call fails, the offset is re-measured once and the call retried.
    #[tokio::test]
    async fn remeasures_offset_after_auth_failure() {
        let (cam, url) = start(Cam::default()).await;
        let c = client(&url, PASS);
        assert!(c.measure_clock().await.unwrap().offset_ms.abs() < 1000);
        cam.skew_s.store(-300, Ordering::SeqCst);
        let d = c.device_information().await.unwrap();
        assert_eq!(d.model, "Mockup Model");
        assert!((c.clock_offset_ms() + 300_000).abs() < 1000);
        assert_eq!(
            cam.calls(),
            [
                "GetSystemDateAndTime",
                "GetDeviceInformation",
                "GetSystemDateAndTime",
                "GetDeviceInformation"
            ]
        );
    }

    /// Event calls carry WS-Addressing (action, `To` = the URL posted to, a
    /// fresh MessageID per message, anonymous ReplyTo, the subscription's
    /// reference parameters) next to the login, with WS-UsernameToken and
    /// with HTTP Digest (whose body hash covers them); other calls carry
    /// none.
    #[tokio::test]
    async fn event_calls_are_addressed_and_others_are_not() {
        use crate::onvif_events as ev;
        for digest in [false, true] {
            let (cam, url) = start(Cam {
                digest,
                ..Cam::default()
            })
            .await;
            let c = client(&url, PASS);
            let sub = ev::parse_create_pull_point_subscription(
                include_bytes!("../testdata/onvif/synthetic/axis.CreatePullPointSubscription.xml"),
                1 << 20,
            )
            .unwrap();
            let events = format!("http://127.0.0.1:{}/onvif/services", cam.port);
            let addressed = Addressed {
                action: ev::ACTION_PULL_MESSAGES,
                reference_parameters: &sub.reference_parameters,
            };
            for _ in 0..2 {
                let p = c
                    .call_addressed(
                        "PullMessages",
                        &events,
                        addressed,
                        &ev::pull_messages(Duration::from_secs(1), 8),
                        ev::parse_pull_messages,
                    )
                    .await
                    .unwrap();
                assert_eq!(p.messages.len(), 3, "digest {digest}");
            }
            c.device_information().await.unwrap();
            let bodies = cam.bodies.lock().unwrap().clone();
            let headers = |b: &str| {
                let d = crate::xml::parse(b).unwrap();
                wsa::request_headers(d.root_element()).unwrap()
            };
            let pulls: Vec<wsa::RequestHeaders> = bodies
                .iter()
                .filter(|b| b.contains("<PullMessages"))
                .map(|b| headers(b))
                .collect();
            assert!(pulls.len() >= 2, "digest {digest}");
            for h in &pulls {
                assert_eq!(h.action.as_deref(), Some(ev::ACTION_PULL_MESSAGES));
                assert_eq!(h.to.as_deref(), Some(events.as_str()));
                assert_eq!(h.reply_to.as_deref(), Some(wsa::ANONYMOUS));
                assert_eq!(h.reference_parameters, sub.reference_parameters);
            }
            let last = pulls.len() - 1;
            assert_ne!(pulls[0].message_id, pulls[last].message_id);
            assert!(pulls[0].message_id.is_some());
            let info = bodies
                .iter()
                .rfind(|b| b.contains("<GetDeviceInformation"))
                .unwrap();
            assert_eq!(headers(info), wsa::RequestHeaders::default());
            assert!(!info.contains(wsa::NS_WSA));
        }
    }

    /// A wrong password is reported as AuthRejected without a blind retry
    /// (the offset did not move) and without the password in the error.
    #[tokio::test]
    async fn wrong_password_is_auth_rejected() {
        let (cam, url) = start(Cam::default()).await;
        let c = client(&url, "wrong-pass");
        let e = c.inventory().await.unwrap_err();
        assert_eq!(e.kind, OnvifErrorKind::AuthRejected);
        assert_eq!(e.kind_label(), "auth");
        assert_eq!(e.operation, "GetServices");
        assert!(e.peer.starts_with("127.0.0.1:"));
        let shown = format!("{e} {e:?} {c:?}");
        assert!(!shown.contains("wrong-pass"), "{shown}");
        let n = cam.calls().iter().filter(|c| *c == "GetServices").count();
        assert_eq!(n, 1);
    }

    /// Cameras that demand authentication even for GetSystemDateAndTime: it is
    /// retried authenticated with offset 0, and the inventory proceeds with a warning.
    #[tokio::test]
    async fn auth_demanded_for_everything() {
        let (_cam, url) = start(Cam {
            auth_for_all: true,
            ..Cam::default()
        })
        .await;
        let inv = client(&url, PASS).inventory().await.unwrap();
        assert_eq!(inv.device.model, "Mockup Model");
        assert_eq!(inv.warnings.len(), 1, "{:?}", inv.warnings);
        assert!(inv.warnings[0].contains("demands authentication"));
    }

    /// HTTP Digest cameras: a 401 Digest challenge switches the client to
    /// Digest, which it then keeps using.
    #[tokio::test]
    async fn http_digest() {
        let (_cam, url) = start(Cam {
            digest: true,
            ..Cam::default()
        })
        .await;
        let c = client(&url, PASS);
        let inv = c.inventory().await.unwrap();
        assert_eq!(inv.auth, AuthMode::HttpDigest);
        assert_eq!(inv.profiles.len(), 1);
        let bad = client(&url, "nope");
        let e = bad.device_information().await.unwrap_err();
        assert_eq!(e.kind, OnvifErrorKind::AuthRejected);
    }

    /// A Digest camera that challenges even GetSystemDateAndTime: the
    /// unauthenticated 401 leads to an authenticated retry, which answers the
    /// challenge.
    #[tokio::test]
    async fn http_digest_for_everything() {
        let (cam, url) = start(Cam {
            digest: true,
            auth_for_all: true,
            skew_s: AtomicI64::new(42),
            ..Cam::default()
        })
        .await;
        let c = client(&url, PASS);
        let inv = c.inventory().await.unwrap();
        assert_eq!(inv.auth, AuthMode::HttpDigest);
        assert!((inv.clock_offset_ms - 42_000).abs() < 1000);
        assert_eq!(inv.warnings.len(), 1, "{:?}", inv.warnings);
        assert_eq!(cam.calls()[..3], ["GetSystemDateAndTime"; 3]);
    }

    /// A SOAP fault is surfaced with its subcode; GetServices faults fall back
    /// to GetCapabilities.
    #[tokio::test]
    async fn fault_subcode_surfaced_and_capabilities_fallback() {
        let (cam, url) = start(Cam {
            fault_on: Some("GetServices"),
            ..Cam::default()
        })
        .await;
        let c = client(&url, PASS);
        let s = c.services().await.unwrap();
        assert!(s.ptz().is_some());
        assert_eq!(cam.calls(), ["GetServices", "GetCapabilities"]);

        let (_cam, url) = start(Cam {
            fault_on: Some("GetDeviceInformation"),
            ..Cam::default()
        })
        .await;
        let e = client(&url, PASS).device_information().await.unwrap_err();
        assert_eq!(e.kind_label(), "fault");
        let OnvifErrorKind::Fault(f) = &e.kind else {
            panic!("{e:?}")
        };
        assert_eq!(f.subcodes, ["ter:ActionNotSupported"]);
        assert!(e.to_string().contains("ter:ActionNotSupported"), "{e}");
    }

    async fn raw_server(response: Arc<dyn Fn() -> Vec<Vec<u8>> + Send + Sync>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let parts = response();
                tokio::spawn(async move {
                    let mut tmp = [0u8; 4096];
                    let _ = s.read(&mut tmp).await;
                    for p in parts {
                        if s.write_all(&p).await.is_err() {
                            return;
                        }
                    }
                    // Hold the connection open (the "never answers" case).
                    let _ = s.read(&mut tmp).await;
                });
            }
        });
        format!("http://127.0.0.1:{port}/onvif/device_service")
    }

    /// A 10 MB answer is refused at the cap, with or without Content-Length.
    #[tokio::test]
    async fn ten_megabytes_is_too_large() {
        let chunk = vec![b'a'; 1 << 20];
        let with_len = raw_server(Arc::new(|| {
            vec![b"HTTP/1.1 200 OK\r\nContent-Length: 10485760\r\n\r\n".to_vec()]
        }))
        .await;
        let c = client(&with_len, PASS);
        let e = c.device_information().await.unwrap_err();
        assert_eq!(
            (e.kind.clone(), e.kind_label()),
            (OnvifErrorKind::TooLarge, "too_large")
        );

        let streamed = raw_server(Arc::new(move || {
            let mut v = vec![b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec()];
            v.extend(std::iter::repeat_n(chunk.clone(), 10));
            v
        }))
        .await;
        let e = client(&streamed, PASS)
            .device_information()
            .await
            .unwrap_err();
        assert_eq!(e.kind, OnvifErrorKind::TooLarge);
    }

    /// A camera that accepts the connection and never answers times out.
    #[tokio::test(start_paused = true)]
    async fn silent_camera_times_out() {
        let url = raw_server(Arc::new(Vec::new)).await;
        let opts = ClientOptions {
            timeout: Duration::from_secs(2),
            ..ClientOptions::default()
        };
        let c = OnvifClient::new(&url, None, opts).unwrap();
        let t0 = Instant::now();
        let e = c.system_date_and_time().await.unwrap_err();
        assert_eq!(e.kind, OnvifErrorKind::Timeout);
        assert_eq!(e.kind_label(), "timeout");
        assert_eq!(e.operation, "GetSystemDateAndTime");
        assert!(t0.elapsed() >= Duration::from_secs(2));
    }

    /// A DTD in a response is refused (entity expansion never reaches the parser).
    #[tokio::test]
    async fn dtd_in_response_is_refused() {
        let url = raw_server(Arc::new(|| {
            let body = include_bytes!("../testdata/onvif/synthetic/hostile.dtd.xml");
            let mut v =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
            v.extend_from_slice(body);
            vec![v]
        }))
        .await;
        let e = client(&url, PASS).device_information().await.unwrap_err();
        assert_eq!(e.kind, OnvifErrorKind::Xml(XmlError::Dtd));
        assert_eq!(e.kind_label(), "parse");
    }

    /// Connection refused is a Connect error naming the peer.
    #[tokio::test]
    async fn connect_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let url = format!("http://127.0.0.1:{port}/onvif/device_service");
        let e = client(&url, PASS).system_date_and_time().await.unwrap_err();
        assert_eq!(e.kind_label(), "connect", "{e:?}");
        assert_eq!(e.peer, format!("127.0.0.1:{port}"));
    }

    /// Secrets never print; userinfo in an XAddr is dropped.
    #[test]
    fn secrets_are_masked() {
        let creds = Credentials::new("admin", "hunter2");
        assert!(!format!("{creds:?}").contains("hunter2"));
        assert_eq!(creds.password.to_string(), "***");
        let c = OnvifClient::new(
            "http://admin:hunter2@10.0.0.5/onvif/device_service",
            Some(creds),
            ClientOptions::default(),
        )
        .unwrap();
        assert_eq!(c.device_url(), "http://10.0.0.5/onvif/device_service");
        assert_eq!(c.peer(), "10.0.0.5:80");
        assert!(!format!("{c:?}").contains("hunter2"));
        let e = OnvifClient::new("ftp://x", None, ClientOptions::default()).unwrap_err();
        assert_eq!(e.kind_label(), "protocol");
    }
}
