//! The gateway's one TOML configuration file.
//!
//! Parsing is strict (`deny_unknown_fields` everywhere) and every error names
//! the file, the key path and the line, e.g.
//! `gateway.toml: discovery.cidrs[1] (line 14, column 3): invalid IPv4 network`.
//! The annotated reference is `config/gateway.example.toml`; each field below
//! documents its default.
//!
//! | module | owns |
//! |---|---|
//! | `mod.rs` | [`Config`], loading, parsing, cross-section checks, [`ConfigError`] (file, key, line) |
//! | [`values`] | [`Ident`], range-checked numbers, networks, MAC prefixes, `password_env` overrides |
//! | [`gateway`] | `[gateway]` and `[log]` |
//! | [`township`] | `[township]`: villages and grids |
//! | [`discovery`] | `[discovery]` and `[inventory]` |
//! | [`health`] | `[health]` |
//! | [`credentials`] | `[[credential_groups]]` |
//! | [`http`] | `[http]` |
//! | [`audit`] | `[audit]`: the audit log's retention |
//! | [`mqtt`] | `[mqtt]` and broker URLs |
//! | [`audio`] | `[audio]` |
//! | [`broadcast`] | `[broadcast]` |
//! | [`backup`] | `[backup]`: scheduled backups |
//! | [`gb28181`] | `[gb28181]`: the GB/T 28181 uplink and its platforms |

pub mod audio;
pub mod audit;
pub mod backup;
pub mod broadcast;
pub mod credentials;
pub mod discovery;
pub mod gateway;
pub mod gb28181;
pub mod gb28181_media;
pub mod health;
pub mod http;
pub mod mqtt;
#[cfg(test)]
mod tests;
pub mod township;
pub mod values;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::base::error::ErrorKind;

pub use audio::AudioSection;
pub use audit::AuditSection;
pub use backup::BackupSection;
pub use broadcast::BroadcastSection;
pub use credentials::CredentialGroupConfig;
pub use discovery::{AutoAdoptRule, DiscoverySection, InventorySection};
pub use gateway::{GatewaySection, LogFormat, LogSection};
pub use health::{CameraAccess, ClockSync, HealthSection, HealthVillage};
pub use http::HttpSection;
pub use mqtt::{BrokerUrl, MqttSection, parse_broker_url, redact_url};
pub use township::{GridConfig, TownshipSection, VillageConfig, VillageKind};
pub use values::{Ident, normalise_mac_prefix, parse_cidr, set_env_override};

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
    /// The audit log's retention. Defaults as documented per field.
    #[serde(default)]
    pub audit: AuditSection,
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
    /// Scheduled backups of the store, key and this file
    /// (`docs/deploy.md`). Default: off.
    #[serde(default)]
    pub backup: Option<BackupSection>,
    /// The GB/T 28181 uplink to video platforms (`docs/gb28181.md`). Default: off.
    #[serde(default)]
    pub gb28181: Option<gb28181::Gb28181Section>,
}

/// A configuration error, already formatted with file, key and line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl ConfigError {
    /// The kind: a configuration error is always the input's fault.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
}

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

    /// `[warnings] mqtt_trust = "broker"` needs a broker that authenticates
    /// publishers: mqtts with a client certificate. True for `signed`.
    fn cap_publishers_authenticated(&self) -> bool {
        self.warnings.mqtt_trust != tgw_core::warning::MqttTrust::Broker
            || self.mqtt.as_ref().is_some_and(|m| {
                m.brokers().is_ok_and(|b| b.iter().all(|u| u.tls)) && m.client_cert_file.is_some()
            })
    }

    fn validate(&self, origin: &str, text: &str) -> Result<(), ConfigError> {
        let at = |key: &str, needle: &str, msg: String| {
            let line = find_line(text, needle);
            ConfigError(match line {
                Some(l) => format!("{origin}: {key} (line {l}): {msg}"),
                None => format!("{origin}: {key}: {msg}"),
            })
        };
        if let Err((key, msg)) = self.gateway.validate_disk() {
            let needle = key.trim_start_matches("gateway.");
            return Err(at(key, needle, msg));
        }
        if let Some(Err(msg)) = self.http.as_ref().map(HttpSection::validate_tls) {
            return Err(at("http.tls", "tls", msg));
        }
        if let Err(e) = self.warnings.validate() {
            return Err(at("warnings", "[warnings]", e.to_string()));
        }
        if !self.cap_publishers_authenticated() {
            return Err(at(
                "warnings.mqtt_trust",
                "mqtt_trust",
                "\"broker\" trusts the broker to authenticate CAP publishers: it needs an mqtts:// [mqtt] url with client_cert_file and client_key_file; otherwise use \"signed\"".into(),
            ));
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
                for (k, m) in g.micro_grids.iter().enumerate() {
                    if !grids.insert(m.code.clone()) {
                        return Err(at(
                            &format!("township.villages[{i}].grids[{j}].micro_grids[{k}].code"),
                            &format!("\"{}\"", m.code),
                            format!("grid or micro-grid code `{}` is used twice", m.code),
                        ));
                    }
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
        self.validate_credential_groups(&at)?;
        if let Some(g) = &self.gb28181 {
            g.validate(&at)?;
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
        if let Err((key, msg)) = h.validate_clock_sync() {
            let needle = key.trim_start_matches("health.");
            return Err(at(key, needle, msg));
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
        if let Some(b) = &self.backup
            && !b.dir.is_absolute()
        {
            return Err(at(
                "backup.dir",
                "[backup]",
                format!("must be an absolute path, got {}", b.dir.display()),
            ));
        }
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

    /// `[[credential_groups]]`: unique names, one password source, something
    /// to match cameras by.
    fn validate_credential_groups(
        &self,
        at: &dyn Fn(&str, &str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
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
        Ok(())
    }

    /// The database file inside the data directory.
    pub fn db_path(&self) -> PathBuf {
        self.gateway.data_dir.join("tgw.db")
    }
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
