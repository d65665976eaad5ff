//! The pure rules of broadcasts: the shared vocabulary, the per-horn
//! engine and signed emergency commands. The runtime that drives the
//! speaker drivers is the daemon's `broadcast` module.
//!
//! | module | owns |
//! |---|---|
//! | this file | [`Priority`], [`Target`], [`OnPreempt`], [`Ms`]: words every part shares; [`WordError`] |
//! | [`engine`] | one timeline per horn: priorities, preemption, queueing, per-horn reports; horn and broadcast status names (pure) |
//! | [`signed`] | Ed25519-signed MQTT emergency commands: key set, expiry, nonces, scope (pure) |

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ErrorKind;

pub mod engine;
pub mod signed;

/// Whether `id` is a well-formed audio asset id: the 64 lowercase hex
/// digits of the SHA-256 of the asset's bytes (content addressing).
pub fn valid_asset_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Wall-clock milliseconds since the Unix epoch (UTC). The pure parts take
/// time as this so tests can drive them; the runtime converts.
pub type Ms = i64;

/// How urgent a broadcast is. Higher preempts lower; equal lets the playing
/// one finish. Ordered: `Background < Routine < Township < Superior < Emergency`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Priority {
    /// Music, filler.
    Background,
    /// Calendar programmes (policy, notices).
    Routine,
    /// The township's own announcements.
    Township,
    /// From the county or above (上级).
    Superior,
    /// Emergency: ignores quiet hours, forces its volume, interrupts everything.
    Emergency,
}

impl Priority {
    /// Every priority, lowest first.
    pub const ALL: [Priority; 5] = [
        Priority::Background,
        Priority::Routine,
        Priority::Township,
        Priority::Superior,
        Priority::Emergency,
    ];

    /// The name used in files, the API and MQTT.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Background => "background",
            Priority::Routine => "routine",
            Priority::Township => "township",
            Priority::Superior => "superior",
            Priority::Emergency => "emergency",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = WordError;
    fn from_str(s: &str) -> Result<Self, WordError> {
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str() == s.trim())
            .ok_or_else(|| WordError::Priority(s.to_string()))
    }
}

/// Which horns a broadcast reaches. Written as `all`, `village:CODE`,
/// `grid:CODE`, `zone:NAME`, `group:NAME` (a custom group of the
/// timetable) or `speaker:ID`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// Every horn of the township.
    All,
    /// Every horn of a village (administrative code).
    Village(String),
    /// Every horn of a grid.
    Grid(String),
    /// Every horn of a broadcast zone.
    Zone(String),
    /// A named custom group.
    Group(String),
    /// One horn.
    Speaker(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::All => f.write_str("all"),
            Target::Village(v) => write!(f, "village:{v}"),
            Target::Grid(v) => write!(f, "grid:{v}"),
            Target::Zone(v) => write!(f, "zone:{v}"),
            Target::Group(v) => write!(f, "group:{v}"),
            Target::Speaker(v) => write!(f, "speaker:{v}"),
        }
    }
}

impl FromStr for Target {
    type Err = WordError;
    fn from_str(s: &str) -> Result<Self, WordError> {
        let s = s.trim();
        if s == "all" {
            return Ok(Target::All);
        }
        let (kind, name) = s
            .split_once(':')
            .ok_or_else(|| WordError::Target(s.to_string()))?;
        let name = name.trim();
        if name.is_empty()
            || name.len() > 64
            || name.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(WordError::TargetName {
                target: s.to_string(),
                kind: kind.to_string(),
            });
        }
        let name = name.to_string();
        match kind {
            "village" => Ok(Target::Village(name)),
            "grid" => Ok(Target::Grid(name)),
            "zone" => Ok(Target::Zone(name)),
            "group" => Ok(Target::Group(name)),
            "speaker" => Ok(Target::Speaker(name)),
            _ => Err(WordError::TargetKind {
                target: s.to_string(),
                kind: kind.to_string(),
            }),
        }
    }
}

impl Serialize for Target {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a [`Priority`] or [`Target`] could not be read from its text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WordError {
    /// Not one of the five priorities.
    #[error("`{0}` is not a priority: use background, routine, township, superior or emergency")]
    Priority(String),
    /// Neither `all` nor `KIND:NAME`.
    #[error(
        "`{0}` is not a target: use all, village:CODE, grid:CODE, zone:NAME, group:NAME or speaker:ID"
    )]
    Target(String),
    /// The name after `KIND:` is empty, too long or has spaces.
    #[error("target `{target}`: the name after `{kind}:` must be 1-64 characters without spaces")]
    TargetName {
        /// The whole target as written (trimmed).
        target: String,
        /// The kind before the colon.
        kind: String,
    },
    /// The kind before the colon is not one of ours.
    #[error(
        "target `{target}`: `{kind}` is not a target kind: use village, grid, zone, group or speaker"
    )]
    TargetKind {
        /// The whole target as written (trimmed).
        target: String,
        /// The kind before the colon.
        kind: String,
    },
}

impl WordError {
    /// Always [`ErrorKind::Invalid`]: the text is wrong.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
}

/// What happens to a broadcast when a higher priority takes its horns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnPreempt {
    /// Play again on those horns once they are free, from the start of the
    /// segment (item or repeat) that was interrupted.
    #[default]
    Resume,
    /// Give those horns up; their report says `interrupted`.
    Drop,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_order_and_parse() {
        assert!(Priority::Emergency > Priority::Superior);
        assert!(Priority::Superior > Priority::Township);
        assert!(Priority::Township > Priority::Routine);
        assert!(Priority::Routine > Priority::Background);
        for p in Priority::ALL {
            assert_eq!(p.as_str().parse::<Priority>().unwrap(), p);
        }
        let e = "urgent".parse::<Priority>().unwrap_err();
        assert!(e.to_string().contains("urgent"));
        assert_eq!(e.kind(), ErrorKind::Invalid);
    }

    #[test]
    fn targets_round_trip_and_reject_nonsense() {
        for t in [
            "all",
            "village:320115101",
            "grid:g-1",
            "zone:east",
            "group:schools",
            "speaker:horn-1",
        ] {
            assert_eq!(t.parse::<Target>().unwrap().to_string(), t);
        }
        assert!(
            "village"
                .parse::<Target>()
                .unwrap_err()
                .to_string()
                .contains("not a target")
        );
        assert!(
            "town:x"
                .parse::<Target>()
                .unwrap_err()
                .to_string()
                .contains("`town`")
        );
        assert!("zone:".parse::<Target>().is_err());
        assert!("zone:a b".parse::<Target>().is_err());
        let j: Vec<Target> = serde_json::from_str(r#"["all","zone:east"]"#).unwrap();
        assert_eq!(j, vec![Target::All, Target::Zone("east".into())]);
    }
}
