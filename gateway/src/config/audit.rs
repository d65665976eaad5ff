//! `[audit]`: how much audit log the gateway keeps.

use serde::Deserialize;

use super::values::de_bounded;

/// How much audit log is kept: what the store applies
/// ([`AuditSection::retention`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditRetention {
    /// At most this many rows.
    pub max_rows: u32,
    /// Rows older than this many days are removed.
    pub max_days: u32,
}

impl AuditRetention {
    /// Default `max_rows`: about 3-8 MB of database.
    pub const DEFAULT_MAX_ROWS: u32 = 20_000;
    /// Default `max_days`.
    pub const DEFAULT_MAX_DAYS: u32 = 365;
}

impl Default for AuditRetention {
    fn default() -> Self {
        Self {
            max_rows: Self::DEFAULT_MAX_ROWS,
            max_days: Self::DEFAULT_MAX_DAYS,
        }
    }
}

/// `[audit]`: the audit log's retention. Refused logins are counted in one
/// row per (user, address, outcome, minute); these keys bound the rest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// Most rows kept; when an entry takes the log over it, the oldest
    /// rows go (refused logins first) down to 95 % of it. 100-10000000.
    /// Default: 20000 (about 3-8 MB of database).
    #[serde(default = "default_max_rows", deserialize_with = "de_max_rows")]
    pub max_rows: u32,
    /// Rows older than this many days are removed (hourly). 1-3650.
    /// Default: 365.
    #[serde(default = "default_max_days", deserialize_with = "de_max_days")]
    pub max_days: u32,
}

impl Default for AuditSection {
    fn default() -> Self {
        Self {
            max_rows: default_max_rows(),
            max_days: default_max_days(),
        }
    }
}

impl AuditSection {
    /// The retention the store applies.
    pub fn retention(&self) -> AuditRetention {
        AuditRetention {
            max_rows: self.max_rows,
            max_days: self.max_days,
        }
    }
}

fn default_max_rows() -> u32 {
    AuditRetention::DEFAULT_MAX_ROWS
}
fn default_max_days() -> u32 {
    AuditRetention::DEFAULT_MAX_DAYS
}
fn de_max_rows<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    de_bounded(d, 100, 10_000_000, "max_rows").map(|v| v as u32)
}
fn de_max_days<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    de_bounded(d, 1, 3650, "max_days").map(|v| v as u32)
}
