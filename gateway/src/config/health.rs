//! `[health]`: how cameras are checked and judged, with per-village intervals.

use std::time::Duration;

use serde::Deserialize;

use super::Ident;
use super::values::{de_bounded, de_concurrency, de_wait_ms, yes};

/// `[health]`: how cameras are checked and judged.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSection {
    /// Poll camera health at all. Default: `true`.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Subscribe to the ONVIF events (PullPoint: tamper, video loss,
    /// motion) of every adopted camera that offers them (docs/events.md).
    /// Default: `true`.
    #[serde(default = "yes")]
    pub events: bool,
    /// Seconds between cheap checks (unauthenticated GetSystemDateAndTime)
    /// of each camera (1-3600). Default: `30`.
    #[serde(default = "default_check", deserialize_with = "de_secs_1")]
    pub check_interval_secs: Duration,
    /// Seconds between authenticated checks and RTSP DESCRIBEs (5-86400). Default: `300`.
    #[serde(default = "default_describe", deserialize_with = "de_secs_5")]
    pub describe_interval_secs: Duration,
    /// Seconds between timed stream samples of each camera, taken in
    /// rotation (5-86400). Default: `600`.
    #[serde(default = "default_sample_every", deserialize_with = "de_secs_5")]
    pub sample_interval_secs: Duration,
    /// Length of a stream sample in milliseconds (500-30000). Default: `3000`.
    #[serde(default = "default_sample_ms", deserialize_with = "de_sample_ms")]
    pub sample_ms: Duration,
    /// Sample the sub-stream (lowest resolution profile). Default: `true`.
    #[serde(default = "yes")]
    pub sample_sub_stream: bool,
    /// Cheap checks running at once (1-1024). Default: `128`.
    #[serde(default = "default_check_conc", deserialize_with = "de_concurrency")]
    pub concurrency: usize,
    /// Stream samples running at once (1-1024). Default: `8`.
    #[serde(default = "default_sample_conc", deserialize_with = "de_concurrency")]
    pub sample_concurrency: usize,
    /// Per-call timeout in milliseconds (100-60000). Default: `3000`.
    #[serde(default = "default_health_timeout", deserialize_with = "de_wait_ms")]
    pub call_timeout_ms: Duration,
    /// Missed checks in a row before a camera is offline (1-100). Default: `3`.
    #[serde(
        default = "default_offline_after",
        deserialize_with = "de_offline_after"
    )]
    pub offline_after: u32,
    /// Seconds without frames before a stream is stalled (1-3600). Default: `20`.
    #[serde(default = "default_stall", deserialize_with = "de_secs_1")]
    pub stall_secs: Duration,
    /// Allowed camera clock drift in seconds (1-86400). Default: `5`.
    #[serde(default = "default_drift", deserialize_with = "de_secs_1")]
    pub max_clock_drift_secs: Duration,
    /// RTP loss above this percentage degrades a camera (0-100). Default: `2.0`.
    #[serde(default = "default_loss")]
    pub max_rtp_loss_pct: f64,
    /// Days of health history kept (1-3650). Default: `14`.
    #[serde(default = "default_history_days")]
    pub history_days: u32,
    /// After rejected credentials, seconds before the next authenticated
    /// attempt; doubles per further rejection up to an hour, so polling never
    /// locks a camera account (1-3600). Default: `30`.
    #[serde(default = "default_auth_backoff", deserialize_with = "de_secs_1")]
    pub auth_backoff_secs: Duration,
    /// ONVIF event pulls (PullMessages) in flight at once across cameras;
    /// pulls go in turns, each holding a connection while it waits
    /// (1-1024). Default: `32` (about 32 pulls a second; 1,000 cameras and
    /// 200 horns within 5 % of a core, BENCHMARKS.md "Footprint").
    #[serde(default = "default_event_pulls", deserialize_with = "de_concurrency")]
    pub event_pulls: usize,
    /// Seconds a camera holds one event pull when it has nothing to say
    /// (PullMessages `Timeout`, 1-60). Default: `1`.
    #[serde(default = "default_event_pull_wait", deserialize_with = "de_secs_60")]
    pub event_pull_wait_secs: Duration,
    /// Seconds from the start of a camera's empty event pull to its next
    /// (at once after a pull that brought messages; 1-60). Default: `5`.
    #[serde(default = "default_event_pull_every", deserialize_with = "de_secs_60")]
    pub event_pull_every_secs: Duration,
    /// Set a camera's clock automatically when the poller measures it more
    /// than `clock_sync_after_secs` off: `"off"`, `"set"`
    /// (SetSystemDateAndTime with the reference time, the township's zone
    /// as a POSIX TZ: the gateway's clock, or a GB/T 28181 platform's with
    /// `[gb28181] time_source = true`) or `"ntp"` (SetNTP to
    /// `clock_sync_ntp_server`, then DateTimeType NTP). At most one attempt
    /// per camera per `clock_sync_min_interval_secs`, 4 at once, each
    /// audited as `camera.sync_time.auto` (docs/health.md). Default: `"off"`.
    #[serde(default)]
    pub clock_sync: ClockSync,
    /// Drift in seconds beyond which `clock_sync` acts (1-86400; at least
    /// `max_clock_drift_secs`: a camera within the allowed drift is left
    /// alone). Default: `60`, or `max_clock_drift_secs` when that is larger.
    #[serde(default, deserialize_with = "de_opt_secs_1")]
    pub clock_sync_after_secs: Option<Duration>,
    /// The NTP server (IPv4 address or DNS name) cameras are pointed at
    /// with `clock_sync = "ntp"`; required then, unused otherwise.
    /// Default: none.
    #[serde(default)]
    pub clock_sync_ntp_server: Option<String>,
    /// Seconds from one automatic attempt on a camera to the next, whether
    /// the last one worked or was refused: a camera that refuses is not
    /// asked every check (600-604800). Default: `21600` (6 h).
    #[serde(
        default = "default_clock_sync_every",
        deserialize_with = "de_clock_sync_every"
    )]
    pub clock_sync_min_interval_secs: Duration,
    /// Per-village overrides of the intervals. Default: none.
    #[serde(default)]
    pub villages: Vec<HealthVillage>,
    /// Per-camera exceptions to where its login may be sent for snapshots
    /// and streams (by default only to the camera's own host, and never as
    /// Basic over plain HTTP). Default: none.
    #[serde(default)]
    pub camera_access: Vec<CameraAccess>,
}

/// `[health] clock_sync`: whether and how cameras' clocks are set
/// automatically.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockSync {
    /// Never (the technician's `sync-time` only).
    #[default]
    Off,
    /// SetSystemDateAndTime with the reference time.
    Set,
    /// SetNTP to `clock_sync_ntp_server`, then DateTimeType NTP.
    Ntp,
}

impl ClockSync {
    /// `off`, `set`, `ntp` (the config value and the metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            ClockSync::Off => "off",
            ClockSync::Set => "set",
            ClockSync::Ntp => "ntp",
        }
    }
}

/// `[[health.camera_access]]`: what a technician allowed for one camera's
/// login beyond the default (its ONVIF XAddr's host and the address it was
/// adopted at; Digest, or Basic over HTTPS only).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraAccess {
    /// Device id, as in the inventory (`tgw` API `/api/v1/cameras`). Required.
    #[serde(deserialize_with = "de_device")]
    pub device: String,
    /// Further hosts (IP address or name; no port) that may receive the
    /// login, e.g. an NVR serving the camera's snapshots. Default: none.
    #[serde(default, deserialize_with = "de_hosts")]
    pub extra_hosts: Vec<String>,
    /// Answer a `Basic` challenge over plain `http://` (the password crosses
    /// the network readable) on the allowed hosts. Default: `false`.
    #[serde(default)]
    pub plain_basic: bool,
}

fn de_device<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = String::deserialize(d)?;
    if v.trim().is_empty() {
        return Err(serde::de::Error::custom("device: a device id is required"));
    }
    Ok(v)
}

fn de_hosts<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    for h in &v {
        if h.contains("://") || device_drivers::cred_scope::parse_host(h).is_none() {
            return Err(serde::de::Error::custom(format!(
                "extra_hosts: `{h}` is not a host (an IP address or a name, without scheme or port)"
            )));
        }
        if h.parse::<std::net::IpAddr>().is_err() && h.contains(':') {
            return Err(serde::de::Error::custom(format!(
                "extra_hosts: `{h}` has a port; give the host only"
            )));
        }
    }
    Ok(v)
}

/// `[[health.villages]]`: intervals for one village (for example one on a
/// thin radio link).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthVillage {
    /// Village code. Required.
    pub code: Ident,
    /// Overrides `health.check_interval_secs`.
    #[serde(default, deserialize_with = "de_opt_secs_1")]
    pub check_interval_secs: Option<Duration>,
    /// Overrides `health.describe_interval_secs`.
    #[serde(default, deserialize_with = "de_opt_secs_1")]
    pub describe_interval_secs: Option<Duration>,
    /// Overrides `health.sample_interval_secs`.
    #[serde(default, deserialize_with = "de_opt_secs_1")]
    pub sample_interval_secs: Option<Duration>,
}

impl Default for HealthSection {
    fn default() -> Self {
        Self {
            enabled: true,
            events: true,
            check_interval_secs: default_check(),
            describe_interval_secs: default_describe(),
            sample_interval_secs: default_sample_every(),
            sample_ms: default_sample_ms(),
            sample_sub_stream: true,
            concurrency: default_check_conc(),
            sample_concurrency: default_sample_conc(),
            call_timeout_ms: default_health_timeout(),
            offline_after: default_offline_after(),
            stall_secs: default_stall(),
            max_clock_drift_secs: default_drift(),
            max_rtp_loss_pct: default_loss(),
            history_days: default_history_days(),
            auth_backoff_secs: default_auth_backoff(),
            event_pulls: default_event_pulls(),
            event_pull_wait_secs: default_event_pull_wait(),
            event_pull_every_secs: default_event_pull_every(),
            clock_sync: ClockSync::Off,
            clock_sync_after_secs: None,
            clock_sync_ntp_server: None,
            clock_sync_min_interval_secs: default_clock_sync_every(),
            villages: Vec::new(),
            camera_access: Vec::new(),
        }
    }
}

impl HealthSection {
    /// (check, describe, sample) intervals for a camera in `village`.
    pub fn intervals(&self, village: Option<&str>) -> (Duration, Duration, Duration) {
        let o = village.and_then(|v| self.villages.iter().find(|x| x.code.as_str() == v));
        (
            o.and_then(|o| o.check_interval_secs)
                .unwrap_or(self.check_interval_secs),
            o.and_then(|o| o.describe_interval_secs)
                .unwrap_or(self.describe_interval_secs),
            o.and_then(|o| o.sample_interval_secs)
                .unwrap_or(self.sample_interval_secs),
        )
    }
}

impl HealthSection {
    /// The drift beyond which `clock_sync` acts: `clock_sync_after_secs`,
    /// else 60 s or `max_clock_drift_secs` when that is larger.
    pub fn clock_sync_after(&self) -> Duration {
        self.clock_sync_after_secs
            .unwrap_or_else(|| Duration::from_secs(60).max(self.max_clock_drift_secs))
    }

    /// The `clock_sync*` keys agree: a threshold no lower than the allowed
    /// drift, an NTP server (a host: IPv4 address or DNS name) for `"ntp"`.
    pub(super) fn validate_clock_sync(&self) -> Result<(), (&'static str, String)> {
        if let Some(after) = self.clock_sync_after_secs
            && after < self.max_clock_drift_secs
        {
            return Err((
                "health.clock_sync_after_secs",
                format!(
                    "must be at least health.max_clock_drift_secs ({} s), got {} s: a camera within the allowed drift is not set",
                    self.max_clock_drift_secs.as_secs(),
                    after.as_secs()
                ),
            ));
        }
        match (&self.clock_sync_ntp_server, self.clock_sync) {
            (None, ClockSync::Ntp) => Err((
                "health.clock_sync_ntp_server",
                "required with clock_sync = \"ntp\" (the server cameras are pointed at)".into(),
            )),
            (Some(s), _) if !ntp_host(s) => Err((
                "health.clock_sync_ntp_server",
                format!(
                    "`{s}` is not an IPv4 address or a DNS name (1-253 letters, digits, `.`, `-`)"
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// An IPv4 address or a DNS name: what SetNTP's `NTPManual` takes.
fn ntp_host(s: &str) -> bool {
    (1..=253).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && !s.starts_with(['.', '-'])
        && !s.ends_with(['.', '-'])
}

fn default_clock_sync_every() -> Duration {
    Duration::from_secs(6 * 3600)
}
fn de_clock_sync_every<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    de_bounded(d, 600, 604_800, "seconds").map(Duration::from_secs)
}
fn default_check() -> Duration {
    Duration::from_secs(30)
}
fn default_describe() -> Duration {
    Duration::from_secs(300)
}
fn default_sample_every() -> Duration {
    Duration::from_secs(600)
}
fn default_sample_ms() -> Duration {
    Duration::from_millis(3000)
}
fn default_check_conc() -> usize {
    128
}
fn default_sample_conc() -> usize {
    8
}
fn default_health_timeout() -> Duration {
    Duration::from_millis(3000)
}
fn default_offline_after() -> u32 {
    3
}
fn default_stall() -> Duration {
    Duration::from_secs(20)
}
fn default_drift() -> Duration {
    Duration::from_secs(5)
}
fn default_loss() -> f64 {
    2.0
}
fn default_auth_backoff() -> Duration {
    Duration::from_secs(30)
}
fn default_history_days() -> u32 {
    14
}
fn de_secs_1<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    de_bounded(d, 1, 86_400, "seconds").map(Duration::from_secs)
}
fn de_opt_secs_1<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_secs_1(d).map(Some)
}
fn de_secs_60<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    de_bounded(d, 1, 60, "seconds").map(Duration::from_secs)
}
fn default_event_pulls() -> usize {
    32
}
fn default_event_pull_wait() -> Duration {
    Duration::from_secs(1)
}
fn default_event_pull_every() -> Duration {
    Duration::from_secs(5)
}
fn de_secs_5<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    de_bounded(d, 5, 86_400, "seconds").map(Duration::from_secs)
}
fn de_sample_ms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    de_bounded(d, 500, 30_000, "milliseconds").map(Duration::from_millis)
}
fn de_offline_after<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    de_bounded(d, 1, 100, "offline_after").map(|v| v as u32)
}
