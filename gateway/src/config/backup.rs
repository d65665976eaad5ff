//! `[backup]`: periodic online backups of the store, its key and this file
//! into a directory (`cmd::backup_schedule`, `docs/deploy.md`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::values::de_bounded;

/// `[backup]`: a backup every `every_hours` into `dir`, the newest `keep`
/// kept. The archive is the one `tgw backup` writes (`store::backup`).
/// Default: off (no section).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupSection {
    /// Directory the archives go to (`tgw-YYYYMMDDTHHMMSSZ.tgwbak`, mode
    /// 0600); an absolute path, ideally on another volume than
    /// `gateway.data_dir`. Created (0700) if missing. Required.
    pub dir: PathBuf,
    /// Hours between backups. 1-720. Default: 24. The first one is taken
    /// at start when the newest archive in `dir` is older than this.
    #[serde(default = "default_every_hours", deserialize_with = "de_every_hours")]
    pub every_hours: u32,
    /// Archives kept; older ones are deleted after a successful backup.
    /// 1-1000. Default: 7.
    #[serde(default = "default_keep", deserialize_with = "de_keep")]
    pub keep: u32,
    /// Name of an environment variable holding a passphrase: when set, each
    /// archive is encrypted to it (as `tgw backup --passphrase-stdin`). A
    /// named variable that is unset stops the gateway at start. Default:
    /// none (archives are not encrypted: keep `dir` private).
    #[serde(default)]
    pub passphrase_env: Option<String>,
    /// Put this configuration file into each archive. Default: true.
    #[serde(default = "default_true")]
    pub include_config: bool,
}

impl BackupSection {
    /// Time between backups.
    pub fn every(&self) -> Duration {
        Duration::from_secs(u64::from(self.every_hours) * 3600)
    }

    /// The passphrase from `passphrase_env` (None when not configured).
    pub fn resolve_passphrase(&self) -> Result<Option<String>, super::ConfigError> {
        let Some(var) = &self.passphrase_env else {
            return Ok(None);
        };
        if let Some(v) = super::values::env_override(var) {
            return Ok(Some(v));
        }
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(Some(v)),
            _ => Err(super::ConfigError(format!(
                "backup.passphrase_env: environment variable `{var}` is not set (or empty)"
            ))),
        }
    }
}

fn default_every_hours() -> u32 {
    24
}
fn default_keep() -> u32 {
    7
}
fn default_true() -> bool {
    true
}
fn de_every_hours<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    de_bounded(d, 1, 720, "every_hours").map(|v| v as u32)
}
fn de_keep<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    de_bounded(d, 1, 1000, "keep").map(|v| v as u32)
}
