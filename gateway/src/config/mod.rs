//! The gateway's one TOML configuration file.
//!
//! Parsing is strict (`deny_unknown_fields` everywhere) and every error names
//! the file, the key path and the line, e.g.
//! `gateway.toml: discovery.cidrs[1] (line 14, column 3): invalid IPv4 network`.
//! The annotated reference is `config/gateway.example.toml`; each field below
//! documents its default.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The file this configuration was read from (for `reload`); not a key.
    #[serde(skip)]
    pub source: Option<PathBuf>,
    /// Identity and storage of this gateway. Required.
    pub gateway: GatewaySection,
    /// Logging. Default: `info`, plain text.
    #[serde(default)]
    pub log: LogSection,
    /// The township this gateway serves: its villages and grids. Required.
    pub township: TownshipSection,
    /// ONVIF WS-Discovery. Default: multicast on every up IPv4 interface every 5 min.
    #[serde(default)]
    pub discovery: DiscoverySection,
    /// Fetching each camera's ONVIF inventory. Defaults as documented per field.
    #[serde(default)]
    pub inventory: InventorySection,
    /// Camera health polling. Defaults as documented per field.
    #[serde(default)]
    pub health: HealthSection,
    /// Credential groups: one username/password for many cameras, matched by
    /// subnet or MAC prefix. Default: none.
    #[serde(default)]
    pub credential_groups: Vec<CredentialGroupConfig>,
    /// The local HTTP endpoint (health, read-only inventory). Default: off.
    #[serde(default)]
    pub http: Option<HttpSection>,
    /// The MQTT uplink to the governance centre (`docs/mqtt.md`). Default: off.
    #[serde(default)]
    pub mqtt: Option<MqttSection>,
    /// The audio pipeline of announcements: TTS, upload limits, loudness.
    /// Defaults as documented per field.
    #[serde(default)]
    pub audio: AudioSection,
    /// Broadcasts: timetable, synchronised start, emergency keys
    /// (`docs/schedules.md`, `docs/warnings.md`). Defaults as documented per field.
    #[serde(default)]
    pub broadcast: BroadcastSection,
    /// Early warnings (CAP 1.2) from MQTT and polled feeds (`docs/warnings.md`).
    /// Default: off.
    #[serde(default)]
    pub warnings: tgw_core::warning::WarningsConfig,
}

/// `[broadcast]`: how broadcasts are scheduled and started.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroadcastSection {
    /// A timetable file (`docs/schedules.md`). When set, it is the timetable:
    /// read at start and on `reload`, and the API cannot edit it. Default:
    /// none (the timetable is kept in the database and edited through the API).
    #[serde(default)]
    pub timetable: Option<PathBuf>,
    /// The workday calendar file (调休) for a timetable kept in the database
    /// (`docs/schedules.md`). Default: none (Monday-Friday are working days).
    #[serde(default)]
    pub calendar: Option<PathBuf>,
    /// Time zone of timetables and quiet hours. Default: `Asia/Shanghai`.
    #[serde(default = "default_tz", deserialize_with = "de_tz")]
    pub timezone: String,
    /// Milliseconds between deciding to start and T0, while horns get ready
    /// (20-5000). Default: `150`.
    #[serde(default = "default_lead_ms", deserialize_with = "de_lead_ms")]
    pub playout_delay_ms: u64,
    /// Seconds before its time a scheduled broadcast is prepared (1-60), so
    /// SIP calls are up at T0. Default: `5`.
    #[serde(default = "default_preroll", deserialize_with = "de_preroll")]
    pub preroll_secs: u64,
    /// Seconds a scheduled broadcast may wait behind another on a horn before
    /// it is dropped there (0-86400). Default: `600`.
    #[serde(default = "default_queue_window", deserialize_with = "de_queue_window")]
    pub queue_window_secs: u64,
    /// Volume of emergency broadcasts, forced on every horn (0-100). Default: `100`.
    #[serde(default = "default_emergency_volume", deserialize_with = "de_volume")]
    pub emergency_volume: u64,
    /// Volume when a programme sets none (0-100). Default: `80`.
    #[serde(default = "default_volume", deserialize_with = "de_volume")]
    pub default_volume: u64,
    /// Address the cloud horns fetch audio from (`HOST:PORT` the horns can
    /// reach). Default: none (cloud horns are not driven).
    #[serde(default)]
    pub cloud_serve: Option<std::net::SocketAddr>,
    /// Ed25519 keys allowed to sign MQTT emergency commands, each with its
    /// scope. Default: none (signed commands are refused).
    #[serde(default)]
    pub keys: Vec<tgw_core::broadcast::signed::KeyConfig>,
}

impl Default for BroadcastSection {
    fn default() -> Self {
        Self {
            timetable: None,
            calendar: None,
            timezone: default_tz(),
            playout_delay_ms: default_lead_ms(),
            preroll_secs: default_preroll(),
            queue_window_secs: default_queue_window(),
            emergency_volume: default_emergency_volume(),
            default_volume: default_volume(),
            cloud_serve: None,
            keys: Vec::new(),
        }
    }
}

fn default_tz() -> String {
    "Asia/Shanghai".into()
}
fn de_tz<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    jiff::tz::TimeZone::get(&s).map(|_| s.clone()).map_err(|_| {
        serde::de::Error::custom(format!(
            "`{s}` is not a known time zone (e.g. Asia/Shanghai)"
        ))
    })
}
fn default_lead_ms() -> u64 {
    150
}
fn de_lead_ms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    de_bounded(d, 20, 5000, "playout_delay_ms")
}
fn default_preroll() -> u64 {
    5
}
fn de_preroll<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    de_bounded(d, 1, 60, "preroll_secs")
}
fn default_queue_window() -> u64 {
    600
}
fn de_queue_window<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    de_bounded(d, 0, 86_400, "queue_window_secs")
}
fn default_emergency_volume() -> u64 {
    100
}
fn default_volume() -> u64 {
    80
}
fn de_volume<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    de_bounded(d, 0, 100, "volume")
}

/// `[audio]`: how announcements are made from uploads and text.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioSection {
    /// The text-to-speech command, run without a shell; the argument
    /// `{text}` is replaced by the text and the command must write a WAV to
    /// stdout. Default: `["espeak-ng", "-v", "cmn", "-s", "150", "--stdout", "{text}"]`.
    #[serde(default = "default_tts_command")]
    pub tts_command: Vec<String>,
    /// Most characters of one text announcement (1-10000). Default: `500`.
    #[serde(
        default = "default_tts_max_chars",
        deserialize_with = "de_tts_max_chars"
    )]
    pub tts_max_chars: usize,
    /// Seconds the TTS command may run (1-600). Default: `30`.
    #[serde(default = "default_tts_timeout", deserialize_with = "de_tts_timeout")]
    pub tts_timeout_secs: u64,
    /// Largest audio upload, bytes (1024-1073741824). Default: `52428800` (50 MiB).
    #[serde(
        default = "default_max_asset_bytes",
        deserialize_with = "de_max_asset_bytes"
    )]
    pub max_asset_bytes: u64,
    /// Longest announcement, seconds (1-7200). Default: `900` (15 min).
    #[serde(
        default = "default_max_asset_secs",
        deserialize_with = "de_max_asset_secs"
    )]
    pub max_asset_secs: u64,
    /// Integrated loudness (EBU R128) every announcement is brought to, LUFS
    /// (-40 to -5). Default: `-16.0`.
    #[serde(default = "default_loudness", deserialize_with = "de_loudness")]
    pub loudness_lufs: f64,
    /// Limiter ceiling, dBFS (-12 to 0): no sample sent to a horn is louder.
    /// Default: `-1.0`.
    #[serde(default = "default_peak_ceiling", deserialize_with = "de_peak_ceiling")]
    pub peak_ceiling_dbfs: f64,
}

impl Default for AudioSection {
    fn default() -> Self {
        Self {
            tts_command: default_tts_command(),
            tts_max_chars: default_tts_max_chars(),
            tts_timeout_secs: default_tts_timeout(),
            max_asset_bytes: default_max_asset_bytes(),
            max_asset_secs: default_max_asset_secs(),
            loudness_lufs: default_loudness(),
            peak_ceiling_dbfs: default_peak_ceiling(),
        }
    }
}

fn default_tts_command() -> Vec<String> {
    ["espeak-ng", "-v", "cmn", "-s", "150", "--stdout", "{text}"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}
fn default_tts_max_chars() -> usize {
    500
}
fn default_tts_timeout() -> u64 {
    30
}
fn default_max_asset_bytes() -> u64 {
    50 * 1024 * 1024
}
fn default_max_asset_secs() -> u64 {
    900
}
fn default_loudness() -> f64 {
    -16.0
}
fn default_peak_ceiling() -> f64 {
    -1.0
}
fn de_tts_max_chars<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    de_bounded(d, 1, 10_000, "tts_max_chars").map(|v| v as usize)
}
fn de_tts_timeout<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    de_bounded(d, 1, 600, "tts_timeout_secs")
}
fn de_max_asset_bytes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    de_bounded(d, 1024, 1 << 30, "max_asset_bytes")
}
fn de_max_asset_secs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    de_bounded(d, 1, 7200, "max_asset_secs")
}
fn de_f64_range<'de, D: serde::Deserializer<'de>>(
    d: D,
    min: f64,
    max: f64,
    what: &str,
) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if !(min..=max).contains(&v) {
        return Err(serde::de::Error::custom(format!(
            "{what} must be between {min} and {max}, got {v}"
        )));
    }
    Ok(v)
}
fn de_loudness<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    de_f64_range(d, -40.0, -5.0, "loudness_lufs")
}
fn de_peak_ceiling<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    de_f64_range(d, -12.0, 0.0, "peak_ceiling_dbfs")
}

/// `[gateway]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    /// Site id of the township, used in MQTT topics (`[a-z0-9-_]`, 1-64). Required.
    pub site: Ident,
    /// This gateway's id within the site. Default: `gw-01`.
    #[serde(default = "default_gateway_id")]
    pub id: Ident,
    /// Directory for the SQLite database and the credential key file.
    /// Created if missing. Required.
    pub data_dir: PathBuf,
    /// IANA time zone for schedules and displayed times. Default: `Asia/Shanghai`.
    #[serde(default = "default_timezone")]
    pub timezone: String,
}

fn default_gateway_id() -> Ident {
    Ident("gw-01".into())
}
fn default_timezone() -> String {
    "Asia/Shanghai".into()
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// A tracing filter such as `info` or `tgw=debug,info`. Default: `info`.
    /// The environment variable `TGW_LOG` overrides it.
    #[serde(default = "default_log_level")]
    pub level: String,
    /// `plain` or `json`. Default: `plain`.
    #[serde(default)]
    pub format: LogFormat,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            level: default_log_level(),
            format: LogFormat::Plain,
        }
    }
}

fn default_log_level() -> String {
    "info".into()
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Plain,
    /// One JSON object per line.
    Json,
}

/// `[township]`: township → village/community → grid.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TownshipSection {
    /// Short code, e.g. `qingshan`. Required.
    pub code: Ident,
    /// Display name, e.g. `青山镇`. Required.
    pub name: String,
    /// Villages and communities. Default: none.
    #[serde(default)]
    pub villages: Vec<VillageConfig>,
}

/// `[[township.villages]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VillageConfig {
    /// Unique code, e.g. `dongcun`. Required.
    pub code: Ident,
    /// Display name, e.g. `东村`. Required.
    pub name: String,
    /// `village` or `community`. Default: `village`.
    #[serde(default)]
    pub kind: VillageKind,
    /// Grids (网格) of this village. Default: none.
    #[serde(default)]
    pub grids: Vec<GridConfig>,
}

/// Village or community (社区).
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum VillageKind {
    /// 村
    #[default]
    Village,
    /// 社区
    Community,
}

impl VillageKind {
    /// Stable string form stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            VillageKind::Village => "village",
            VillageKind::Community => "community",
        }
    }
}

/// `grids = [{ code = "...", name = "..." }]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GridConfig {
    /// Unique code across the township, e.g. `dongcun-1`. Required.
    pub code: Ident,
    /// Display name, e.g. `东村第一网格`. Required.
    pub name: String,
}

/// `[discovery]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoverySection {
    /// Run discovery at all. Default: `true`.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Seconds between discovery rounds (min 10). Default: `300`.
    #[serde(
        default = "default_discovery_interval",
        deserialize_with = "de_secs_min10"
    )]
    pub interval_secs: Duration,
    /// Send multicast Probes. Default: `true`.
    #[serde(default = "yes")]
    pub multicast: bool,
    /// Interfaces to probe from, by name (`eth0`) or IPv4 address. Default: every
    /// up, non-loopback IPv4 interface.
    #[serde(default)]
    pub interfaces: Vec<String>,
    /// Multicast group and port. Default: `239.255.255.250:3702`.
    #[serde(default = "default_group")]
    pub multicast_group: std::net::SocketAddrV4,
    /// How many times each multicast Probe is sent (1-5). Default: `3`.
    #[serde(default = "default_repeats", deserialize_with = "de_repeats")]
    pub probe_repeats: u8,
    /// Routed village networks to sweep with unicast Probes (where multicast
    /// never arrives), e.g. `["10.21.3.0/24"]`. At most a /16 each. Default: none.
    #[serde(default, deserialize_with = "de_cidrs")]
    pub cidrs: Vec<Ipv4Net>,
    /// UDP port of unicast Probes. Default: `3702`.
    #[serde(default = "default_wsd_port")]
    pub unicast_port: u16,
    /// Unicast Probes per second during a sweep (100-200000). Default: `20000`.
    #[serde(default = "default_sweep_rate", deserialize_with = "de_sweep_rate")]
    pub sweep_rate: u32,
    /// Milliseconds to wait for answers after the last Probe (100-60000). Default: `3000`.
    #[serde(default = "default_wait_ms", deserialize_with = "de_wait_ms")]
    pub wait_ms: Duration,
    /// Listen for Hello/Bye announcements between rounds. Default: `true`.
    #[serde(default = "yes")]
    pub listen: bool,
    /// Adopt newly discovered cameras without a technician when a rule
    /// matches. Default: none (everything waits in the inbox).
    #[serde(default)]
    pub auto_adopt: Vec<AutoAdoptRule>,
    /// Also send an SSDP M-SEARCH (UPnP MediaRenderer) each round, on the
    /// same interfaces, so network loudspeakers land in the inbox as
    /// speakers. Default: `true`.
    #[serde(default = "yes")]
    pub ssdp: bool,
    /// SSDP multicast group and port. Default: `239.255.255.250:1900`.
    #[serde(default = "default_ssdp_group")]
    pub ssdp_group: std::net::SocketAddrV4,
    /// Also send an mDNS / DNS-SD query each round, on the same interfaces,
    /// for SIP horns (`_sip._udp.local`) and plain RTP horns
    /// (`_rtp-horn._udp.local`); they land in the inbox as speakers with
    /// their driver kind and address. Multicast: `multicast = false` turns
    /// it off too. Default: `true`.
    #[serde(default = "yes")]
    pub mdns: bool,
    /// mDNS multicast group and port. Default: `224.0.0.251:5353`.
    #[serde(default = "default_mdns_group")]
    pub mdns_group: std::net::SocketAddrV4,
    /// Also send a second WS-Discovery Probe each round for ONVIF audio
    /// output devices (`tds:Device` with the scope
    /// `onvif://www.onvif.org/type/audio_output`), multicast only, to the
    /// same group; audio-only answers land in the inbox as speakers. The
    /// camera Probe is unchanged. Default: `true`.
    #[serde(default = "yes")]
    pub onvif_audio: bool,
}

impl Default for DiscoverySection {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_secs: default_discovery_interval(),
            multicast: true,
            interfaces: Vec::new(),
            multicast_group: default_group(),
            probe_repeats: default_repeats(),
            cidrs: Vec::new(),
            unicast_port: default_wsd_port(),
            sweep_rate: default_sweep_rate(),
            wait_ms: default_wait_ms(),
            listen: true,
            auto_adopt: Vec::new(),
            ssdp: true,
            ssdp_group: default_ssdp_group(),
            mdns: true,
            mdns_group: default_mdns_group(),
            onvif_audio: true,
        }
    }
}

/// `[[discovery.auto_adopt]]`: adopt cameras that match, into a village/grid.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoAdoptRule {
    /// Match cameras whose address is in this network. Default: any address.
    #[serde(default)]
    pub cidr: Option<Ipv4Net>,
    /// Put them in this village. Default: the village named by the camera's
    /// ONVIF scope `onvif://www.onvif.org/location/village/CODE`, if configured.
    #[serde(default)]
    pub village: Option<Ident>,
    /// Put them in this grid. Default: the grid named by the scope
    /// `onvif://www.onvif.org/location/grid/CODE`, if configured.
    #[serde(default)]
    pub grid: Option<Ident>,
}

fn yes() -> bool {
    true
}
fn default_discovery_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_group() -> std::net::SocketAddrV4 {
    std::net::SocketAddrV4::new(Ipv4Addr::new(239, 255, 255, 250), 3702)
}
fn default_ssdp_group() -> std::net::SocketAddrV4 {
    std::net::SocketAddrV4::new(Ipv4Addr::new(239, 255, 255, 250), 1900)
}
fn default_mdns_group() -> std::net::SocketAddrV4 {
    std::net::SocketAddrV4::new(Ipv4Addr::new(224, 0, 0, 251), 5353)
}
fn default_repeats() -> u8 {
    3
}
fn default_wsd_port() -> u16 {
    3702
}
fn default_sweep_rate() -> u32 {
    20_000
}
fn default_wait_ms() -> Duration {
    Duration::from_millis(3000)
}

/// `[inventory]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventorySection {
    /// Cameras probed at once (1-1024). Default: `64`.
    #[serde(default = "default_concurrency", deserialize_with = "de_concurrency")]
    pub concurrency: usize,
    /// Per-call ONVIF timeout in milliseconds (100-60000). Default: `5000`.
    #[serde(default = "default_call_timeout", deserialize_with = "de_wait_ms")]
    pub call_timeout_ms: Duration,
    /// Seconds between inventory refreshes of an adopted camera (min 10). Default: `3600`.
    #[serde(default = "default_refresh", deserialize_with = "de_secs_min10")]
    pub refresh_secs: Duration,
    /// Also probe cameras still waiting in the discovery inbox when a
    /// credential group matches them. Default: `true`.
    #[serde(default = "yes")]
    pub probe_unadopted: bool,
}

impl Default for InventorySection {
    fn default() -> Self {
        Self {
            concurrency: default_concurrency(),
            call_timeout_ms: default_call_timeout(),
            refresh_secs: default_refresh(),
            probe_unadopted: true,
        }
    }
}

fn default_concurrency() -> usize {
    64
}
fn default_call_timeout() -> Duration {
    Duration::from_millis(5000)
}
fn default_refresh() -> Duration {
    Duration::from_secs(3600)
}

/// `[health]`: how cameras are checked and judged.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSection {
    /// Poll camera health at all. Default: `true`.
    #[serde(default = "yes")]
    pub enabled: bool,
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
    /// Per-village overrides of the intervals. Default: none.
    #[serde(default)]
    pub villages: Vec<HealthVillage>,
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
            villages: Vec::new(),
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
fn de_secs_5<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    de_bounded(d, 5, 86_400, "seconds").map(Duration::from_secs)
}
fn de_sample_ms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    de_bounded(d, 500, 30_000, "milliseconds").map(Duration::from_millis)
}
fn de_offline_after<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    de_bounded(d, 1, 100, "offline_after").map(|v| v as u32)
}

/// `[[credential_groups]]`: one login for many cameras. The password is
/// copied into the database encrypted; prefer `password_env` over `password`
/// so it is not kept in this file.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialGroupConfig {
    /// Unique name, e.g. `dongcun-2023-batch`. Required.
    pub name: Ident,
    /// Username. Required.
    pub username: String,
    /// Password in clear. One of `password` / `password_env` is required.
    #[serde(default)]
    pub password: Option<String>,
    /// Name of an environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Cameras whose address is in one of these networks. Default: none.
    #[serde(default, deserialize_with = "de_cidrs")]
    pub subnets: Vec<Ipv4Net>,
    /// Cameras whose MAC starts with one of these prefixes (`44:19:b6`). Default: none.
    #[serde(default, deserialize_with = "de_mac_prefixes")]
    pub mac_prefixes: Vec<String>,
    /// Higher wins when several groups match. Default: `0`.
    #[serde(default)]
    pub priority: i32,
}

impl fmt::Debug for CredentialGroupConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialGroupConfig")
            .field("name", &self.name)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("password_env", &self.password_env)
            .field("subnets", &self.subnets)
            .field("mac_prefixes", &self.mac_prefixes)
            .field("priority", &self.priority)
            .finish()
    }
}

/// `[http]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// Address to listen on. Default: `127.0.0.1:8080`.
    #[serde(default = "default_http")]
    pub listen: SocketAddr,
}

fn default_http() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

/// `[mqtt]`: the uplink to the governance centre's broker. See `docs/mqtt.md`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSection {
    /// Broker URL: `mqtt://HOST:PORT` (plain TCP, default port 1883) or
    /// `mqtts://HOST:PORT` (TLS, default port 8883). Required.
    pub url: String,
    /// MQTT client id. Default: `tgw-{site}-{gateway id}`.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Username. Default: none (anonymous).
    #[serde(default)]
    pub username: Option<String>,
    /// Name of an environment variable holding the password (only with
    /// `username`). Default: none.
    #[serde(default)]
    pub password_env: Option<String>,
    /// PEM file of the CA certificates that sign the broker's certificate
    /// (`mqtts://` only). Default: none, which is an error with `mqtts://`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain for mutual TLS. Default: none.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate. Default: none.
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    /// MQTT keep-alive in seconds (5-3600): a dead 4G link is noticed after
    /// about 1.5 times this. Default: `30`.
    #[serde(default = "default_keep_alive", deserialize_with = "de_keep_alive")]
    pub keep_alive_secs: Duration,
    /// Seconds to wait for the TCP/TLS/MQTT connect to finish (1-300). Default: `10`.
    #[serde(
        default = "default_connect_timeout",
        deserialize_with = "de_connect_timeout"
    )]
    pub connect_timeout_secs: Duration,
    /// Largest MQTT packet sent or accepted, bytes (16384-268435455). Default: `1048576`.
    #[serde(default = "default_max_packet", deserialize_with = "de_max_packet")]
    pub max_packet_bytes: usize,
    /// Largest command payload accepted, bytes (256-1048576). Default: `65536`.
    #[serde(default = "default_command_max", deserialize_with = "de_command_max")]
    pub command_max_bytes: usize,
    /// QoS 1 messages sent and not yet acknowledged (1-1000). Default: `100`.
    #[serde(default = "default_inflight", deserialize_with = "de_inflight")]
    pub inflight: usize,
    /// Disk budget of the outbox in bytes (min 65536); when full, the lowest
    /// class is evicted first. Default: `268435456` (256 MiB).
    #[serde(default = "default_outbox_max", deserialize_with = "de_outbox_max")]
    pub outbox_max_bytes: u64,
    /// Messages per second sent from the backlog after an outage (0 =
    /// unlimited). Live messages are not limited. Default: `1000`.
    #[serde(default = "default_drain_rate")]
    pub drain_rate: u32,
    /// First reconnect delay in milliseconds (10-60000); doubled per failed
    /// attempt, with full jitter. Default: `500`.
    #[serde(
        default = "default_reconnect_min",
        deserialize_with = "de_reconnect_min"
    )]
    pub reconnect_min_ms: Duration,
    /// Longest reconnect delay in seconds (1-3600). Default: `60`.
    #[serde(
        default = "default_reconnect_max",
        deserialize_with = "de_reconnect_max"
    )]
    pub reconnect_max_secs: Duration,
    /// fsync every outbox commit (SQLite `synchronous=FULL`), so accepted
    /// messages survive a power cut and not only a crash. Default: `true`.
    #[serde(default = "yes")]
    pub outbox_fsync: bool,
}

impl fmt::Debug for MqttSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttSection")
            .field("url", &redact_url(&self.url))
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password_env", &self.password_env)
            .field("ca_file", &self.ca_file)
            .field("client_cert_file", &self.client_cert_file)
            .field("client_key_file", &self.client_key_file)
            .field("keep_alive_secs", &self.keep_alive_secs)
            .field("max_packet_bytes", &self.max_packet_bytes)
            .field("inflight", &self.inflight)
            .field("outbox_max_bytes", &self.outbox_max_bytes)
            .field("drain_rate", &self.drain_rate)
            .finish_non_exhaustive()
    }
}

/// A URL with any `user:password@` removed, for logs.
pub fn redact_url(u: &str) -> String {
    match (u.find("://"), u.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***@{}", &u[..s + 3], &u[at + 1..]),
        _ => u.to_string(),
    }
}

/// Where and how to reach the broker, parsed from `mqtt.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// `mqtts://`.
    pub tls: bool,
}

impl MqttSection {
    /// Parses `url`.
    pub fn broker(&self) -> Result<BrokerUrl, String> {
        parse_broker_url(&self.url)
    }

    /// Resolves the password from `password_env`, if any.
    pub fn resolve_password(&self) -> Result<Option<String>, ConfigError> {
        let Some(var) = &self.password_env else {
            return Ok(None);
        };
        if let Some(v) = env_override(var) {
            return Ok(Some(v));
        }
        std::env::var(var).map(Some).map_err(|_| {
            ConfigError(format!(
                "mqtt: environment variable `{var}` (password_env) is not set"
            ))
        })
    }
}

/// Parses `mqtt://HOST[:PORT]` or `mqtts://HOST[:PORT]`.
pub fn parse_broker_url(s: &str) -> Result<BrokerUrl, String> {
    let (tls, rest) = if let Some(r) = s.strip_prefix("mqtt://") {
        (false, r)
    } else if let Some(r) = s.strip_prefix("mqtts://") {
        (true, r)
    } else {
        return Err(format!(
            "`{}` is not an MQTT URL such as mqtt://127.0.0.1:1883 or mqtts://broker:8883",
            redact_url(s)
        ));
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains('@') || rest.contains('/') || rest.is_empty() {
        return Err(format!(
            "`{}`: give only HOST:PORT (credentials go in username/password_env)",
            redact_url(s)
        ));
    }
    let default_port = if tls { 8883 } else { 1883 };
    let (host, port) = if let Some(h) = rest.strip_prefix('[') {
        let (h, p) = h
            .split_once(']')
            .ok_or_else(|| format!("`{s}`: unclosed IPv6 bracket"))?;
        let port = match p.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| format!("`{s}`: bad port `{p}`"))?,
            None => default_port,
        };
        (h.to_string(), port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse().map_err(|_| format!("`{s}`: bad port `{p}`"))?,
            ),
            None => (rest.to_string(), default_port),
        }
    };
    if host.is_empty() || port == 0 {
        return Err(format!("`{s}`: missing host or port"));
    }
    Ok(BrokerUrl { host, port, tls })
}

fn default_keep_alive() -> Duration {
    Duration::from_secs(30)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_max_packet() -> usize {
    1 << 20
}
fn default_command_max() -> usize {
    64 * 1024
}
fn default_inflight() -> usize {
    100
}
fn default_outbox_max() -> u64 {
    256 << 20
}
fn default_drain_rate() -> u32 {
    1000
}
fn default_reconnect_min() -> Duration {
    Duration::from_millis(500)
}
fn default_reconnect_max() -> Duration {
    Duration::from_secs(60)
}
fn de_keep_alive<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    de_bounded(d, 5, 3600, "keep_alive_secs").map(Duration::from_secs)
}
fn de_connect_timeout<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    de_bounded(d, 1, 300, "connect_timeout_secs").map(Duration::from_secs)
}
fn de_max_packet<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    de_bounded(d, 16384, 268_435_455, "max_packet_bytes").map(|v| v as usize)
}
fn de_command_max<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    de_bounded(d, 256, 1 << 20, "command_max_bytes").map(|v| v as usize)
}
fn de_inflight<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    de_bounded(d, 1, 1000, "inflight").map(|v| v as usize)
}
fn de_outbox_max<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    de_bounded(d, 65536, u64::MAX, "outbox_max_bytes")
}
fn de_reconnect_min<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    de_bounded(d, 10, 60_000, "reconnect_min_ms").map(Duration::from_millis)
}
fn de_reconnect_max<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    de_bounded(d, 1, 3600, "reconnect_max_secs").map(Duration::from_secs)
}

/// An identifier: 1-64 of `[a-z0-9_-]`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Ident(pub String);

impl Ident {
    /// Validates an identifier.
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            && s.as_bytes()[0].is_ascii_alphanumeric();
        if ok {
            Ok(Ident(s.to_string()))
        } else {
            Err(format!(
                "`{s}` is not a valid identifier: use 1-64 characters of a-z, 0-9, '-' and '_'"
            ))
        }
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Ident {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ident::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn de_bounded<'de, D: serde::Deserializer<'de>>(
    d: D,
    min: u64,
    max: u64,
    what: &str,
) -> Result<u64, D::Error> {
    let v = u64::deserialize(d)?;
    if v < min || v > max {
        return Err(serde::de::Error::custom(format!(
            "{what} must be between {min} and {max}, got {v}"
        )));
    }
    Ok(v)
}

fn de_secs_min10<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    de_bounded(d, 10, 30 * 86_400, "seconds").map(Duration::from_secs)
}
fn de_wait_ms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    de_bounded(d, 100, 60_000, "milliseconds").map(Duration::from_millis)
}
fn de_repeats<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    de_bounded(d, 1, 5, "probe_repeats").map(|v| v as u8)
}
fn de_sweep_rate<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    de_bounded(d, 100, 200_000, "sweep_rate").map(|v| v as u32)
}
fn de_concurrency<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    de_bounded(d, 1, 1024, "concurrency").map(|v| v as usize)
}

fn de_cidrs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Ipv4Net>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    v.iter()
        .map(|s| parse_cidr(s).map_err(serde::de::Error::custom))
        .collect()
}

/// Parses an IPv4 network of at most a /16 (a sweep of more would take minutes).
pub fn parse_cidr(s: &str) -> Result<Ipv4Net, String> {
    let net: Ipv4Net = s
        .parse()
        .map_err(|_| format!("`{s}` is not an IPv4 network such as 10.20.0.0/24"))?;
    if net.prefix_len() < 16 {
        return Err(format!(
            "`{s}` is larger than a /16; split it into /16s or smaller"
        ));
    }
    Ok(net.trunc())
}

fn de_mac_prefixes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    v.iter()
        .map(|s| normalise_mac_prefix(s).map_err(serde::de::Error::custom))
        .collect()
}

/// Normalises a MAC prefix (`44-19-B6`, `4419b6`) to `44:19:b6`.
pub fn normalise_mac_prefix(s: &str) -> Result<String, String> {
    let hex: String = s
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .collect();
    if hex.is_empty()
        || hex.len() > 12
        || !hex.len().is_multiple_of(2)
        || !hex.chars().all(|c| c.is_ascii_hexdigit())
    {
        return Err(format!("`{s}` is not a MAC prefix such as 44:19:b6"));
    }
    let lower = hex.to_ascii_lowercase();
    Ok(lower
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(":"))
}

/// A configuration error, already formatted with file, key and line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: cannot read: {e}", path.display())))?;
        let mut cfg = Self::parse(&text, &path.display().to_string())?;
        cfg.source = Some(path.to_path_buf());
        Ok(cfg)
    }

    /// Parses and validates configuration text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| toml_error(origin, text, "", &e))?;
        let cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            toml_error(origin, text, &path, e.inner())
        })?;
        cfg.validate(origin, text)?;
        Ok(cfg)
    }

    fn validate(&self, origin: &str, text: &str) -> Result<(), ConfigError> {
        let at = |key: &str, needle: &str, msg: String| {
            let line = find_line(text, needle);
            ConfigError(match line {
                Some(l) => format!("{origin}: {key} (line {l}): {msg}"),
                None => format!("{origin}: {key}: {msg}"),
            })
        };
        if let Err(e) = self.warnings.validate() {
            return Err(at("warnings", "[warnings]", e.to_string()));
        }
        if let Err(e) = tgw_core::broadcast::signed::KeySet::from_config(&self.broadcast.keys) {
            return Err(at("broadcast.keys", "[[broadcast.keys]]", e.to_string()));
        }
        let mut villages = BTreeSet::new();
        let mut grids = BTreeSet::new();
        for (i, v) in self.township.villages.iter().enumerate() {
            if !villages.insert(v.code.clone()) {
                return Err(at(
                    &format!("township.villages[{i}].code"),
                    &format!("\"{}\"", v.code),
                    format!("village code `{}` is used twice", v.code),
                ));
            }
            for (j, g) in v.grids.iter().enumerate() {
                if !grids.insert(g.code.clone()) {
                    return Err(at(
                        &format!("township.villages[{i}].grids[{j}].code"),
                        &format!("\"{}\"", g.code),
                        format!("grid code `{}` is used twice", g.code),
                    ));
                }
            }
        }
        for (i, r) in self.discovery.auto_adopt.iter().enumerate() {
            if let Some(v) = &r.village
                && !villages.contains(v)
            {
                return Err(at(
                    &format!("discovery.auto_adopt[{i}].village"),
                    &format!("\"{v}\""),
                    format!("no village `{v}` in [township]"),
                ));
            }
            if let Some(g) = &r.grid
                && !grids.contains(g)
            {
                return Err(at(
                    &format!("discovery.auto_adopt[{i}].grid"),
                    &format!("\"{g}\""),
                    format!("no grid `{g}` in [township]"),
                ));
            }
        }
        let mut names = BTreeSet::new();
        for (i, g) in self.credential_groups.iter().enumerate() {
            let key = format!("credential_groups[{i}]");
            if !names.insert(g.name.clone()) {
                return Err(at(
                    &format!("{key}.name"),
                    &format!("\"{}\"", g.name),
                    format!("credential group `{}` is defined twice", g.name),
                ));
            }
            match (&g.password, &g.password_env) {
                (Some(_), Some(_)) => {
                    return Err(at(
                        &key,
                        &format!("\"{}\"", g.name),
                        "give either `password` or `password_env`, not both".into(),
                    ));
                }
                (None, None) => {
                    return Err(at(
                        &key,
                        &format!("\"{}\"", g.name),
                        "a `password` or `password_env` is required".into(),
                    ));
                }
                _ => {}
            }
            if g.subnets.is_empty() && g.mac_prefixes.is_empty() {
                return Err(at(
                    &key,
                    &format!("\"{}\"", g.name),
                    "a credential group needs `subnets` or `mac_prefixes` to match cameras".into(),
                ));
            }
        }
        let h = &self.health;
        if !(0.0..=100.0).contains(&h.max_rtp_loss_pct) {
            return Err(at(
                "health.max_rtp_loss_pct",
                "max_rtp_loss_pct",
                "must be between 0 and 100".into(),
            ));
        }
        if !(1..=3650).contains(&h.history_days) {
            return Err(at(
                "health.history_days",
                "history_days",
                "must be between 1 and 3650".into(),
            ));
        }
        for (i, v) in h.villages.iter().enumerate() {
            if !villages.contains(&v.code) {
                return Err(at(
                    &format!("health.villages[{i}].code"),
                    &format!("\"{}\"", v.code),
                    format!("no village `{}` in [township]", v.code),
                ));
            }
        }
        self.validate_mqtt(origin, text)?;
        let tts = &self.audio.tts_command;
        if tts.first().is_none_or(|p| p.is_empty()) {
            return Err(at(
                "audio.tts_command",
                "tts_command",
                "give the program and its arguments".into(),
            ));
        }
        if !tts.iter().skip(1).any(|a| a.contains("{text}")) {
            return Err(at(
                "audio.tts_command",
                "tts_command",
                "one argument must contain `{text}` (the text to speak)".into(),
            ));
        }
        for (i, iface) in self.discovery.interfaces.iter().enumerate() {
            if iface.is_empty() {
                return Err(at(
                    &format!("discovery.interfaces[{i}]"),
                    "interfaces",
                    "empty interface name".into(),
                ));
            }
        }
        Ok(())
    }

    fn validate_mqtt(&self, origin: &str, text: &str) -> Result<(), ConfigError> {
        let Some(m) = &self.mqtt else { return Ok(()) };
        let at = |key: &str, msg: String| {
            let line = text
                .lines()
                .position(|l| l.trim_start().starts_with(key))
                .map(|i| i + 1);
            ConfigError(match line {
                Some(l) => format!("{origin}: mqtt.{key} (line {l}): {msg}"),
                None => format!("{origin}: mqtt.{key}: {msg}"),
            })
        };
        let url = m.broker().map_err(|e| at("url", e))?;
        if url.tls && m.ca_file.is_none() {
            return Err(at("url", "mqtts:// needs `ca_file`".into()));
        }
        if !url.tls && (m.ca_file.is_some() || m.client_cert_file.is_some()) {
            return Err(at(
                "ca_file",
                "TLS files are given but the url is not mqtts://".into(),
            ));
        }
        if m.client_cert_file.is_some() != m.client_key_file.is_some() {
            return Err(at(
                "client_cert_file",
                "give both `client_cert_file` and `client_key_file`, or neither".into(),
            ));
        }
        if m.password_env.is_some() && m.username.is_none() {
            return Err(at("password_env", "a password needs `username`".into()));
        }
        if m.reconnect_max_secs < m.reconnect_min_ms {
            return Err(at(
                "reconnect_max_secs",
                "must not be shorter than reconnect_min_ms".into(),
            ));
        }
        if let Some(c) = &m.client_id
            && (c.is_empty() || c.len() > 64 || c.contains(['+', '#', '/']))
        {
            return Err(at(
                "client_id",
                "1-64 characters, without '+', '#' or '/'".into(),
            ));
        }
        Ok(())
    }

    /// The database file inside the data directory.
    pub fn db_path(&self) -> PathBuf {
        self.gateway.data_dir.join("tgw.db")
    }
}

impl CredentialGroupConfig {
    /// Resolves the password from the file or the environment.
    pub fn resolve_password(&self) -> Result<String, ConfigError> {
        if let Some(p) = &self.password {
            return Ok(p.clone());
        }
        let var = self.password_env.as_deref().unwrap_or_default();
        if let Some(v) = env_override(var) {
            return Ok(v);
        }
        std::env::var(var).map_err(|_| {
            ConfigError(format!(
                "credential_groups `{}`: environment variable `{var}` (password_env) is not set",
                self.name
            ))
        })
    }
}

static ENV_OVERRIDES: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// Supplies a value for a `password_env` variable inside this process
/// (used by `tgw demo`, which may not modify its own environment: the
/// workspace forbids `unsafe`, and `std::env::set_var` is unsafe).
pub fn set_env_override(key: &str, value: &str) {
    let mut v = ENV_OVERRIDES.lock().unwrap_or_else(|p| p.into_inner());
    v.retain(|(k, _)| k != key);
    v.push((key.to_string(), value.to_string()));
}

fn env_override(key: &str) -> Option<String> {
    let v = ENV_OVERRIDES.lock().unwrap_or_else(|p| p.into_inner());
    v.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

fn find_line(text: &str, needle: &str) -> Option<usize> {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn toml_error(origin: &str, text: &str, path: &str, e: &toml::de::Error) -> ConfigError {
    let msg = e.message().trim();
    let key = if path.is_empty() || path == "." {
        String::new()
    } else {
        format!(" {path}")
    };
    match e.span() {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            let src = text.lines().nth(line - 1).unwrap_or("").trim();
            ConfigError(format!(
                "{origin}:{key} (line {line}, column {col}): {msg}\n    {line} | {src}"
            ))
        }
        None => ConfigError(format!("{origin}:{key}: {msg}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[gateway]
site = "qingshan"
data_dir = "/tmp/x"

[township]
code = "qingshan"
name = "青山镇"
[[township.villages]]
code = "dongcun"
name = "东村"
grids = [{ code = "dongcun-1", name = "东村第一网格" }]
"#;

    #[test]
    fn minimal_config_gets_documented_defaults() {
        let c = Config::parse(MINIMAL, "t.toml").unwrap();
        assert_eq!(c.gateway.id.as_str(), "gw-01");
        assert_eq!(c.gateway.timezone, "Asia/Shanghai");
        assert_eq!(c.discovery.probe_repeats, 3);
        assert_eq!(c.discovery.interval_secs, Duration::from_secs(300));
        assert_eq!(c.inventory.concurrency, 64);
        assert!(c.http.is_none());
    }

    #[test]
    fn the_example_config_is_valid() {
        let text = include_str!("../../../config/gateway.example.toml");
        // SAFETY of the test: the example names TGW_CRED_DONGCUN only as password_env.
        let c = Config::parse(text, "gateway.example.toml").unwrap();
        assert!(!c.township.villages.is_empty());
        assert!(!c.credential_groups.is_empty());
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let text = MINIMAL.replace("[township]", "[township]\ncolour = \"red\"");
        let e = Config::parse(&text, "t.toml").unwrap_err().to_string();
        assert!(e.contains("colour"), "{e}");
        assert!(e.contains("line 7"), "{e}");
    }

    #[test]
    fn bad_cidr_names_key_path_and_line() {
        let text = format!("{MINIMAL}\n[discovery]\ncidrs = [\"10.0.0.0/24\", \"10.0.0.0/33\"]\n");
        let e = Config::parse(&text, "t.toml").unwrap_err().to_string();
        assert!(e.contains("discovery.cidrs"), "{e}");
        assert!(e.contains("10.0.0.0/33"), "{e}");
        assert!(e.contains("line 15"), "{e}");
    }

    #[test]
    fn too_large_sweep_is_refused() {
        let text = format!("{MINIMAL}\n[discovery]\ncidrs = [\"10.0.0.0/8\"]\n");
        let e = Config::parse(&text, "t.toml").unwrap_err().to_string();
        assert!(e.contains("larger than a /16"), "{e}");
    }

    #[test]
    fn out_of_range_number_is_refused() {
        let text = format!("{MINIMAL}\n[discovery]\nprobe_repeats = 9\n");
        let e = Config::parse(&text, "t.toml").unwrap_err().to_string();
        assert!(e.contains("discovery.probe_repeats"), "{e}");
        assert!(e.contains("between 1 and 5"), "{e}");
    }

    #[test]
    fn audio_section_defaults_and_errors() {
        let c = Config::parse(MINIMAL, "t.toml").unwrap();
        assert_eq!(c.audio.tts_command[0], "espeak-ng");
        assert_eq!(c.audio.loudness_lufs, -16.0);
        assert_eq!(c.audio.max_asset_secs, 900);
        for (bad, want) in [
            ("loudness_lufs = -3.0", "audio.loudness_lufs"),
            ("peak_ceiling_dbfs = 1.0", "between -12 and 0"),
            ("tts_max_chars = 0", "audio.tts_max_chars"),
            ("max_asset_bytes = 10", "audio.max_asset_bytes"),
            ("tts_command = [\"espeak-ng\", \"hello\"]", "`{text}`"),
            ("tts_command = []", "audio.tts_command"),
            ("voice = \"cmn\"", "voice"),
        ] {
            let text = format!("{MINIMAL}\n[audio]\n{bad}\n");
            let e = Config::parse(&text, "t.toml").unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("line"), "{bad}: {e}");
        }
    }

    #[test]
    fn duplicate_village_and_unknown_adopt_village_are_named() {
        let dup =
            MINIMAL.to_string() + "[[township.villages]]\ncode = \"dongcun\"\nname = \"又一个\"\n";
        let e = Config::parse(&dup, "t.toml").unwrap_err().to_string();
        assert!(e.contains("used twice"), "{e}");
        let rule = format!("{MINIMAL}\n[[discovery.auto_adopt]]\nvillage = \"xicun\"\n");
        let e = Config::parse(&rule, "t.toml").unwrap_err().to_string();
        assert!(
            e.contains("discovery.auto_adopt[0].village") && e.contains("line 15"),
            "{e}"
        );
    }

    #[test]
    fn credential_group_needs_one_password_source_and_a_matcher() {
        let g = format!(
            "{MINIMAL}\n[[credential_groups]]\nname = \"a\"\nusername = \"admin\"\nsubnets = [\"10.1.0.0/24\"]\n"
        );
        let e = Config::parse(&g, "t.toml").unwrap_err().to_string();
        assert!(e.contains("password"), "{e}");
        let g = format!(
            "{MINIMAL}\n[[credential_groups]]\nname = \"a\"\nusername = \"admin\"\npassword = \"s3cret-pw\"\n"
        );
        let e = Config::parse(&g, "t.toml").unwrap_err().to_string();
        assert!(e.contains("subnets"), "{e}");
        assert!(
            !e.contains("s3cret-pw"),
            "a secret leaked into an error: {e}"
        );
    }

    #[test]
    fn debug_never_prints_the_password() {
        let g = format!(
            "{MINIMAL}\n[[credential_groups]]\nname = \"a\"\nusername = \"admin\"\npassword = \"s3cret-pw\"\nmac_prefixes = [\"44-19-B6\"]\n"
        );
        let c = Config::parse(&g, "t.toml").unwrap();
        assert_eq!(
            c.credential_groups[0].mac_prefixes,
            vec!["44:19:b6".to_string()]
        );
        assert!(!format!("{c:?}").contains("s3cret-pw"));
    }

    #[test]
    fn syntax_error_names_line() {
        let e = Config::parse("[gateway\nsite=1", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1"), "{e}");
    }
}
