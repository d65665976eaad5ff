//! `[gateway]` (identity and storage) and `[log]`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Ident;
use super::values::de_bounded;

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
    /// Free space (MiB) on the data volume below which the disk watchdog
    /// raises the `disk_low` alarm, fails `/readyz` and stops optional
    /// writes. 0 turns the levels off (space is still measured). Default: 64.
    #[serde(default = "default_disk_low_mb")]
    pub disk_low_mb: u64,
    /// Free space (MiB) below which the level is critical; less than
    /// `disk_low_mb` (0 when that is 0). Default: 16.
    #[serde(default = "default_disk_critical_mb")]
    pub disk_critical_mb: u64,
    /// Seconds between free-space readings, 1-3600. Default: 10.
    #[serde(
        default = "default_disk_check_secs",
        deserialize_with = "de_disk_check_secs"
    )]
    pub disk_check_secs: u64,
}

impl GatewaySection {
    /// Checks the disk marks; the error names the key.
    pub(super) fn validate_disk(&self) -> Result<(), (&'static str, String)> {
        let (low, critical) = (self.disk_low_mb, self.disk_critical_mb);
        if low > 1 << 30 {
            return Err((
                "gateway.disk_low_mb",
                format!("{low} MiB is more than any disk"),
            ));
        }
        if low == 0 && critical != 0 {
            return Err((
                "gateway.disk_critical_mb",
                "must be 0 when gateway.disk_low_mb is 0 (the watchdog's levels are off)".into(),
            ));
        }
        if low != 0 && critical >= low {
            return Err((
                "gateway.disk_critical_mb",
                format!("must be less than gateway.disk_low_mb ({low}), got {critical}"),
            ));
        }
        Ok(())
    }
}

fn default_disk_low_mb() -> u64 {
    64
}
fn default_disk_critical_mb() -> u64 {
    16
}
fn default_disk_check_secs() -> u64 {
    10
}
fn de_disk_check_secs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    de_bounded(d, 1, 3600, "disk_check_secs")
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

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const BASE: &str = "[gateway]\nsite = \"s\"\ndata_dir = \"/tmp/x\"\n";
    const TOWNSHIP: &str = "[township]\ncode = \"s\"\nname = \"S\"\n";

    fn parse(extra: &str) -> Result<Config, String> {
        Config::parse(&format!("{BASE}{extra}{TOWNSHIP}"), "t.toml").map_err(|e| e.to_string())
    }

    #[test]
    fn disk_marks_default_and_are_checked_by_key() {
        let g = parse("").unwrap().gateway;
        assert_eq!(
            (g.disk_low_mb, g.disk_critical_mb, g.disk_check_secs),
            (64, 16, 10)
        );
        let g = parse("disk_low_mb = 0\ndisk_critical_mb = 0\n")
            .unwrap()
            .gateway;
        assert_eq!(g.disk_low_mb, 0);
        let e = parse("disk_low_mb = 8\ndisk_critical_mb = 8\n").unwrap_err();
        assert!(
            e.contains("gateway.disk_critical_mb") && e.contains("line 5"),
            "{e}"
        );
        let e = parse("disk_low_mb = 0\n").unwrap_err();
        assert!(e.contains("gateway.disk_critical_mb"), "{e}");
        let e = parse("disk_check_secs = 0\n").unwrap_err();
        assert!(e.contains("disk_check_secs"), "{e}");
        let e = parse("disk_low_mb = 99999999999\n").unwrap_err();
        assert!(e.contains("gateway.disk_low_mb"), "{e}");
    }
}
