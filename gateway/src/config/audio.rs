//! `[audio]`: text-to-speech, upload limits and loudness of announcements.

use serde::Deserialize;

use super::values::de_bounded;

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
