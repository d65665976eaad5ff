//! The timetable as written: the TOML document, or what the HTTP API
//! assembles. [`super::Timetable::from_parts`] validates it.

use std::time::Duration;

use jiff::civil::{Date, Time};
use serde::{Deserialize, Serialize};

use super::values::{Chime, Days, Item, LocalTime, ValueError, de_opt_date, duration_text};
use crate::broadcast::{OnPreempt, Priority, Target};
use crate::schedule::Missed;
use crate::schedule::rrule::RRule;

/// `[[scheme]]`: a named set of schedules (冬季作息 / 夏季作息); only the
/// active scheme's schedules (and those without a scheme) fire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scheme {
    /// Unique id (letters, digits, `-`, `_`; 1-64). Required.
    pub id: String,
    /// Display name. Default: empty.
    #[serde(default)]
    pub name: String,
}

/// `[[group]]`: a custom target group, used as `group:NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Unique name (letters, digits, `-`, `_`; 1-64). Required.
    pub name: String,
    /// Members: any targets, other groups included (no cycles). Required, not empty.
    pub targets: Vec<Target>,
}

/// `[[quiet_hours]]`: no routine broadcast on these horns between `from`
/// and `to` (local time; the window may cross midnight). Emergency
/// broadcasts ignore quiet hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    /// The horns it covers. Required, not empty.
    pub targets: Vec<Target>,
    /// Start, inclusive (`HH:MM`). Required.
    pub from: LocalTime,
    /// End, exclusive (`HH:MM`); earlier than `from` means the next day. Required.
    pub to: LocalTime,
}

impl QuietHours {
    /// Whether `t` falls in the window.
    pub fn contains(&self, t: Time) -> bool {
        let (a, b) = (self.from.0, self.to.0);
        if a <= b {
            a <= t && t < b
        } else {
            t >= a || t < b
        }
    }
}

fn one() -> u32 {
    1
}
fn routine() -> Priority {
    Priority::Routine
}
fn yes() -> bool {
    true
}
fn is_true(b: &bool) -> bool {
    *b
}

/// `[[programme]]`: what is played.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Programme {
    /// Unique id (letters, digits, `-`, `_`; 1-64). Required.
    pub id: String,
    /// Display name, e.g. `早间政策广播`. Default: empty.
    #[serde(default)]
    pub name: String,
    /// What one repeat plays, in order. Required, 1-100 items.
    pub items: Vec<Item>,
    /// Played once before the first repeat. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_chime: Option<Chime>,
    /// Played once after the last repeat. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_chime: Option<Chime>,
    /// Times the items are played, 1-20. Default: `1`.
    #[serde(default = "one")]
    pub repeat: u32,
    /// Silence between repeats (`30s`, `2m`; at most 1h). Default: `0s`.
    #[serde(default, with = "duration_text")]
    pub interval: Duration,
    /// Volume 0-100. Default: none (each horn's own volume).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<u8>,
    /// Priority. Default: `routine`.
    #[serde(default = "routine")]
    pub priority: Priority,
    /// What happens when a higher priority takes its horns. Default: `resume`.
    #[serde(default)]
    pub on_preempt: OnPreempt,
}

/// `[[schedule]]`: when a programme plays, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Unique id (letters, digits, `-`, `_`; 1-64). Required.
    pub id: String,
    /// The programme's id. Required.
    pub programme: String,
    /// Where it plays. Required, not empty.
    pub targets: Vec<Target>,
    /// Only in this scheme. Default: in every scheme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// Local times of day, with `days`. Either `at` or `rrule` is required.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub at: Vec<LocalTime>,
    /// Dates for `at`. Default: `daily`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<Days>,
    /// An RFC 5545 rule instead of `at`/`days`; it must give `BYHOUR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rrule: Option<RRule>,
    /// First date (inclusive); also the rule's DTSTART. Default: no start.
    #[serde(
        default,
        deserialize_with = "de_opt_date",
        skip_serializing_if = "Option::is_none"
    )]
    pub from: Option<Date>,
    /// Last date (inclusive). Default: no end.
    #[serde(
        default,
        deserialize_with = "de_opt_date",
        skip_serializing_if = "Option::is_none"
    )]
    pub until: Option<Date>,
    /// What to do with an occurrence missed while the gateway was down.
    /// Default: `skip`.
    #[serde(default)]
    pub missed: Missed,
    /// Whether it fires at all. Default: `true`.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
}

/// The whole timetable as written: the TOML document, or what the HTTP API
/// assembles. [`Timetable::from_parts`](super::Timetable::from_parts) validates it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parts {
    /// IANA time zone. Default: the gateway's (`[gateway] timezone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Workday calendar file, relative to the timetable file. Default: none
    /// (Monday-Friday work).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar: Option<String>,
    /// The scheme in force. Required when there are schemes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_scheme: Option<String>,
    /// `[[scheme]]`. Default: none.
    #[serde(default, rename = "scheme", skip_serializing_if = "Vec::is_empty")]
    pub schemes: Vec<Scheme>,
    /// `[[group]]`. Default: none.
    #[serde(default, rename = "group", skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Group>,
    /// `[[quiet_hours]]`. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quiet_hours: Vec<QuietHours>,
    /// `[[programme]]`. Default: none.
    #[serde(default, rename = "programme", skip_serializing_if = "Vec::is_empty")]
    pub programmes: Vec<Programme>,
    /// `[[schedule]]`. Default: none.
    #[serde(default, rename = "schedule", skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<Schedule>,
}

impl Parts {
    /// The document as TOML (what `Timetable::parse` reads back).
    pub fn to_toml(&self) -> Result<String, ValueError> {
        toml::to_string(self).map_err(|e| ValueError::Toml(e.to_string()))
    }
}

impl Serialize for RRule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RRule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RRule::parse(&s).map_err(serde::de::Error::custom)
    }
}
