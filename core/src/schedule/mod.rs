//! Broadcast timetables (issue 7): which programme plays when, on which
//! horns. This is the pure core: no clock reads and no IO except reading the
//! files it is given by path. The daemon asks it for occurrences and hands
//! them to the broadcast engine. File formats and semantics:
//! `docs/schedules.md`.
//!
//! | module | owns |
//! |---|---|
//! | this file | [`HornInfo`], [`Occurrence`], [`Missed`]: what the rest of the gateway sees |
//! | [`calendar`] | the workday calendar file (调休: swapped working days, holidays) |
//! | [`rrule`] | the RFC 5545 `RRULE` subset, evaluated in local civil time |
//! | [`timetable`] | the timetable TOML file and API model: validation, expansion, targets → horns, quiet hours |
//! | [`check`](mod@check) | `tgw schedule check`: the occurrence table and warnings for review |

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::DateTime;
use serde::{Deserialize, Serialize};

use crate::broadcast::{Priority, Target};

pub mod calendar;
pub mod check;
pub mod rrule;
pub mod timetable;

pub use calendar::{Calendar, CalendarError};
pub use check::{CheckReport, Warning, WarningKind, check};
pub use rrule::{RRule, RRuleError};
pub use timetable::{
    Chime, Days, Group, Item, LocalTime, Parts, Programme, QuietHours, Schedule, Scheme, Timetable,
    TimetableError, UnknownTarget, ValueError,
};

/// What the timetable needs to know about a horn to resolve targets.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HornInfo {
    /// The speaker id (`speaker:ID`).
    pub id: String,
    /// Its village code (`village:CODE`), if assigned.
    #[serde(default)]
    pub village: Option<String>,
    /// Its grid code (`grid:CODE`), if assigned.
    #[serde(default)]
    pub grid: Option<String>,
    /// Its broadcast zone (`zone:NAME`), if any.
    #[serde(default)]
    pub zone: Option<String>,
}

impl HornInfo {
    /// Whether `target` (not a group: groups are expanded first) names this horn.
    pub fn matches(&self, target: &Target) -> bool {
        match target {
            Target::All => true,
            Target::Village(v) => self.village.as_deref() == Some(v),
            Target::Grid(g) => self.grid.as_deref() == Some(g),
            Target::Zone(z) => self.zone.as_deref() == Some(z),
            Target::Speaker(s) => self.id == *s,
            Target::Group(_) => false,
        }
    }
}

/// One time a schedule fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Occurrence {
    /// The schedule's id.
    pub schedule: String,
    /// The programme it plays.
    pub programme: String,
    /// When, as an instant.
    pub at: Timestamp,
    /// When, in the timetable's local time.
    pub local: DateTime,
    /// Where, as written (groups not yet expanded; see [`Timetable::resolve`]).
    pub targets: Vec<Target>,
    /// The programme's priority.
    pub priority: Priority,
    /// What to do if the gateway was down at `at`.
    pub missed: Missed,
}

/// What to do with an occurrence whose time passed while the gateway was
/// down. Written `skip` or `play-within:DURATION` (e.g. `play-within:10m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Missed {
    /// Do not play it late (the default).
    #[default]
    Skip,
    /// Play it if no more than this late.
    PlayWithin(Duration),
}

impl Missed {
    /// Lateness every occurrence tolerates, whatever its policy: a scheduler
    /// that wakes a little late, or a restart within the minute, still plays.
    pub const ON_TIME: Duration = Duration::from_secs(60);

    /// The longest `play-within` accepted.
    pub const MAX_WITHIN: Duration = Duration::from_secs(24 * 3600);

    /// Whether an occurrence due at `at` should still play at `now`: always
    /// when `now` is not more than [`Missed::ON_TIME`] past `at`; after that
    /// only within `play-within`.
    pub fn should_play(&self, at: Timestamp, now: Timestamp) -> bool {
        let late = now.duration_since(at);
        if late <= jiff::SignedDuration::try_from(Self::ON_TIME).unwrap_or_default() {
            return true;
        }
        match self {
            Missed::Skip => false,
            Missed::PlayWithin(d) => jiff::SignedDuration::try_from(*d).is_ok_and(|d| late <= d),
        }
    }
}

impl fmt::Display for Missed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missed::Skip => f.write_str("skip"),
            Missed::PlayWithin(d) => write!(f, "play-within:{}", timetable::format_duration(*d)),
        }
    }
}

impl std::str::FromStr for Missed {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let s = s.trim();
        if s == "skip" {
            return Ok(Missed::Skip);
        }
        let Some(d) = s.strip_prefix("play-within:") else {
            return Err(ValueError::Missed(s.to_string()));
        };
        let d = timetable::parse_duration(d)?;
        if d.is_zero() || d > Self::MAX_WITHIN {
            return Err(ValueError::PlayWithin(s.to_string()));
        }
        Ok(Missed::PlayWithin(d))
    }
}

impl Serialize for Missed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Missed {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
