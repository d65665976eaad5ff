//! The `[warnings]` section: feeds, statuses, areas and the severity map,
//! with the checks serde cannot do.

use std::collections::BTreeSet;

use device_drivers::cap::{Severity, Status};
use serde::{Deserialize, Serialize};

use crate::broadcast::{Priority, Target};
use crate::error::ErrorKind;

/// The `[warnings]` section: early warnings (CAP) to the horns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarningsConfig {
    /// Whether the desk runs at all. Default: `false`.
    #[serde(default)]
    pub enabled: bool,
    /// HTTP feeds to poll (a CAP alert or an Atom feed of them). Default: none.
    #[serde(default)]
    pub feeds: Vec<Feed>,
    /// MQTT topic on which CAP documents arrive, if any. Default: none.
    #[serde(default)]
    pub mqtt_topic: Option<String>,
    /// Whom a CAP document on `mqtt_topic` is trusted from: `signed` (each
    /// document in the Ed25519 envelope of `cmd/emergency`, signed by a
    /// `[[broadcast.keys]]` key whose scope is `["all"]`; anything else is
    /// refused) or `broker` (the broker authenticates publishers: allowed
    /// only with an `mqtts://` broker and a client certificate, and
    /// `mqtt_senders` must list the accepted CAP senders). Default: `signed`.
    #[serde(default)]
    pub mqtt_trust: MqttTrust,
    /// CAP `sender` values accepted from `mqtt_topic`. Required (not empty)
    /// with `mqtt_trust = "broker"`; with `signed`, checked when not empty.
    /// Default: none.
    #[serde(default)]
    pub mqtt_senders: Vec<String>,
    /// How long after its `sent` time an alert may still start, in seconds
    /// (60-604800), for every source (MQTT and feeds); older ones are
    /// ignored as `stale`. Default: `3600` (1 h).
    #[serde(default = "default_max_age")]
    pub max_age_secs: u64,
    /// How far ahead of the gateway's clock an alert's `sent` may be, in
    /// seconds (0-3600); further ones are ignored as `from-the-future`.
    /// Default: `300` (5 min).
    #[serde(default = "default_max_future")]
    pub max_future_secs: u64,
    /// Statuses played to the public (`actual`, `exercise`, `test`).
    /// Default: `["actual"]`: drills and tests never reach the public.
    #[serde(default = "default_public_statuses")]
    pub public_statuses: Vec<Status>,
    /// Where `exercise`/`test` alerts that are not public may play instead.
    /// Default: none (they are ignored).
    #[serde(default)]
    pub test_targets: Vec<Target>,
    /// The villages and what alert areas mean them. Default: none (nothing matches).
    #[serde(default)]
    pub areas: Vec<AreaMap>,
    /// CAP severity → broadcast priority. Default: extreme and severe →
    /// `emergency`, moderate → `superior`, minor and unknown → `township`.
    #[serde(default)]
    pub severity_map: SeverityMap,
    /// Times each warning is played (1-10). Default: `3`.
    #[serde(default = "default_repeat")]
    pub repeat: u32,
    /// Seconds between repeats (1-3600). Default: `60`.
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    /// Play the alert chime before the text. Default: `true`.
    #[serde(default = "default_true")]
    pub chime: bool,
    /// Most characters of text sent to TTS (20-10000). Default: `600`.
    #[serde(default = "default_max_text")]
    pub max_text: usize,
    /// Preferred `info` languages, prefix-matched in order (`zh` matches
    /// `zh-CN`). Default: `["zh"]`.
    #[serde(default = "default_languages")]
    pub languages: Vec<String>,
}

/// Whom CAP documents on the MQTT topic are trusted from (`[warnings] mqtt_trust`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MqttTrust {
    /// Only documents in a valid Ed25519 envelope (the default).
    #[default]
    Signed,
    /// The broker authenticates publishers (mqtts with client certificates);
    /// documents are plain CAP from the senders in `mqtt_senders`.
    Broker,
}

/// One polled feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feed {
    /// `http://` or `https://` URL. Required.
    pub url: String,
    /// Seconds between polls (10-86400). Default: `60`.
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
}

/// One village and the alert areas that mean it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AreaMap {
    /// The village's administrative code. Required.
    pub village: String,
    /// Where its warnings play. Default: `["village:<village>"]`.
    #[serde(default)]
    pub targets: Vec<Target>,
    /// Geocodes that mean this village, e.g. `320115` (the county: every
    /// county-wide alert), `320115106` (its township), `320115106201` (itself).
    /// Default: none.
    #[serde(default)]
    pub geocodes: Vec<String>,
    /// The village outline as `[[lat, lon], …]` (closed implicitly), for
    /// polygon and circle alerts. Default: none.
    #[serde(default)]
    pub outline: Option<Vec<(f64, f64)>>,
}

impl AreaMap {
    /// The configured targets, or `village:<village>` when none are.
    pub fn effective_targets(&self) -> Vec<Target> {
        if self.targets.is_empty() {
            vec![Target::Village(self.village.clone())]
        } else {
            self.targets.clone()
        }
    }
}

/// CAP severity → broadcast priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityMap {
    /// Default: `emergency`.
    #[serde(default = "p_emergency")]
    pub extreme: Priority,
    /// Default: `emergency`.
    #[serde(default = "p_emergency")]
    pub severe: Priority,
    /// Default: `superior`.
    #[serde(default = "p_superior")]
    pub moderate: Priority,
    /// Default: `township`.
    #[serde(default = "p_township")]
    pub minor: Priority,
    /// Default: `township`.
    #[serde(default = "p_township")]
    pub unknown: Priority,
}

impl SeverityMap {
    /// The priority for a severity.
    pub fn priority(&self, s: Severity) -> Priority {
        match s {
            Severity::Extreme => self.extreme,
            Severity::Severe => self.severe,
            Severity::Moderate => self.moderate,
            Severity::Minor => self.minor,
            Severity::Unknown => self.unknown,
        }
    }
}

impl Default for SeverityMap {
    fn default() -> Self {
        SeverityMap {
            extreme: Priority::Emergency,
            severe: Priority::Emergency,
            moderate: Priority::Superior,
            minor: Priority::Township,
            unknown: Priority::Township,
        }
    }
}

fn p_emergency() -> Priority {
    Priority::Emergency
}
fn p_superior() -> Priority {
    Priority::Superior
}
fn p_township() -> Priority {
    Priority::Township
}
fn default_public_statuses() -> Vec<Status> {
    vec![Status::Actual]
}
fn default_repeat() -> u32 {
    3
}
fn default_interval() -> u64 {
    60
}
fn default_max_age() -> u64 {
    3600
}
fn default_max_future() -> u64 {
    300
}
fn default_true() -> bool {
    true
}
fn default_max_text() -> usize {
    600
}
fn default_languages() -> Vec<String> {
    vec!["zh".to_string()]
}

impl Default for WarningsConfig {
    fn default() -> Self {
        WarningsConfig {
            enabled: false,
            feeds: Vec::new(),
            mqtt_topic: None,
            mqtt_trust: MqttTrust::Signed,
            mqtt_senders: Vec::new(),
            max_age_secs: default_max_age(),
            max_future_secs: default_max_future(),
            public_statuses: default_public_statuses(),
            test_targets: Vec::new(),
            areas: Vec::new(),
            severity_map: SeverityMap::default(),
            repeat: default_repeat(),
            interval_secs: default_interval(),
            chime: true,
            max_text: default_max_text(),
            languages: default_languages(),
        }
    }
}

impl WarningsConfig {
    /// Whether a CAP `sender` may come over the MQTT topic: any when
    /// `mqtt_senders` is empty (only possible with `signed`), else listed.
    pub fn mqtt_sender_allowed(&self, sender: &str) -> bool {
        self.mqtt_senders.is_empty() || self.mqtt_senders.iter().any(|s| s == sender)
    }

    /// Checks values serde cannot; errors name the key under `warnings.`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (i, f) in self.feeds.iter().enumerate() {
            let ok = url::Url::parse(&f.url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !ok {
                return Err(err(
                    format!("warnings.feeds[{i}].url"),
                    format!("`{}` is not an http(s) URL", f.url),
                ));
            }
            if !(10..=86_400).contains(&f.interval_secs) {
                return Err(err(
                    format!("warnings.feeds[{i}].interval_secs"),
                    "must be 10-86400",
                ));
            }
        }
        if self
            .mqtt_topic
            .as_ref()
            .is_some_and(|t| t.trim().is_empty() || t.len() > 256)
        {
            return Err(err("warnings.mqtt_topic", "must be 1-256 characters"));
        }
        if self.mqtt_trust == MqttTrust::Broker && self.mqtt_senders.is_empty() {
            return Err(err(
                "warnings.mqtt_senders",
                "mqtt_trust = \"broker\" needs the CAP senders accepted from the topic",
            ));
        }
        if self.mqtt_senders.iter().any(|s| s.trim().is_empty()) {
            return Err(err("warnings.mqtt_senders", "a sender must not be empty"));
        }
        if !(60..=604_800).contains(&self.max_age_secs) {
            return Err(err("warnings.max_age_secs", "must be 60-604800"));
        }
        if self.max_future_secs > 3600 {
            return Err(err("warnings.max_future_secs", "must be 0-3600"));
        }
        if let Some(s) = self
            .public_statuses
            .iter()
            .find(|s| matches!(s, Status::System | Status::Draft))
        {
            return Err(err(
                "warnings.public_statuses",
                format!(
                    "`{}` alerts are never played; use actual, exercise or test",
                    s.as_str().to_lowercase()
                ),
            ));
        }
        if !(1..=10).contains(&self.repeat) {
            return Err(err("warnings.repeat", "must be 1-10"));
        }
        if !(1..=3600).contains(&self.interval_secs) {
            return Err(err("warnings.interval_secs", "must be 1-3600"));
        }
        if !(20..=10_000).contains(&self.max_text) {
            return Err(err("warnings.max_text", "must be 20-10000"));
        }
        let mut villages = BTreeSet::new();
        for (i, a) in self.areas.iter().enumerate() {
            let k = format!("warnings.areas[{i}]");
            if a.village.trim().is_empty() {
                return Err(err(format!("{k}.village"), "must not be empty"));
            }
            if !villages.insert(a.village.as_str()) {
                return Err(err(
                    format!("{k}.village"),
                    format!("`{}` is listed twice", a.village),
                ));
            }
            if let Some(g) = a
                .geocodes
                .iter()
                .find(|g| g.trim().len() < 2 || g.chars().any(char::is_whitespace))
            {
                return Err(err(
                    format!("{k}.geocodes"),
                    format!("`{g}` must be at least 2 characters without spaces"),
                ));
            }
            if let Some(o) = &a.outline {
                if o.len() < 3 || o.len() > 10_000 {
                    return Err(err(
                        format!("{k}.outline"),
                        "needs 3-10000 [lat, lon] points",
                    ));
                }
                if let Some(p) = o.iter().find(|(lat, lon)| {
                    !(-90.0..=90.0).contains(lat) || !(-180.0..=180.0).contains(lon)
                }) {
                    return Err(err(
                        format!("{k}.outline"),
                        format!("[{}, {}] is not a [lat, lon] point", p.0, p.1),
                    ));
                }
            }
            if a.geocodes.is_empty() && a.outline.is_none() {
                return Err(err(
                    k,
                    format!(
                        "give geocodes or an outline, or no alert can ever match village `{}`",
                        a.village
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A `[warnings]` value serde accepted but the rules do not: `key` is the
/// full key (`warnings.feeds[0].url`), `message` what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    /// The key under `warnings.`, e.g. `warnings.areas[1].outline`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// Always [`ErrorKind::Invalid`]: the configuration is wrong.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
}

fn err(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        message: message.into(),
    }
}
