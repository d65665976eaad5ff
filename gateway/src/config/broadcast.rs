//! `[broadcast]`: timetable, synchronised start, queueing, volumes and the
//! keys allowed to sign emergency commands.

use std::path::PathBuf;

use serde::Deserialize;

use super::values::de_bounded;

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
    /// Days a recording of what aired (emergencies, live pages) is kept
    /// (1-3650); pruned hourly. Default: `180`.
    #[serde(default = "default_keep_days", deserialize_with = "de_keep_days")]
    pub recordings_keep_days: u64,
    /// Most megabytes of recordings kept (1-1000000); beyond it the oldest
    /// go first. Default: `2048`.
    #[serde(default = "default_rec_mb", deserialize_with = "de_rec_mb")]
    pub recordings_max_mb: u64,
}

fn default_keep_days() -> u64 {
    180
}
fn de_keep_days<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    de_bounded(d, 1, 3650, "recordings_keep_days")
}
fn default_rec_mb() -> u64 {
    2048
}
fn de_rec_mb<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    de_bounded(d, 1, 1_000_000, "recordings_max_mb")
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
            recordings_keep_days: default_keep_days(),
            recordings_max_mb: default_rec_mb(),
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
