//! `[gateway]` (identity and storage) and `[log]`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Ident;

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
