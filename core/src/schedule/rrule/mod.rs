//! A subset of RFC 5545 recurrence rules (`RRULE`), evaluated in local civil
//! time of a time zone.
//!
//! Supported parts: `FREQ=DAILY|WEEKLY|MONTHLY|YEARLY`, `INTERVAL`, `BYDAY`
//! (with ordinals such as `1MO` or `-1FR` for `MONTHLY`/`YEARLY`),
//! `BYMONTHDAY` (negative counts from the month's end), `BYMONTH`, `BYHOUR`,
//! `BYMINUTE`, `BYSETPOS`, `COUNT`, `UNTIL` and `WKST`. Any other part is an
//! error naming it.
//!
//! Semantics follow RFC 5545 §3.3.10:
//! - The series starts at DTSTART; only instances matching the rule are
//!   produced (DTSTART itself is not added when it does not match).
//! - Parts missing from the rule are taken from DTSTART: the weekday for
//!   `WEEKLY`, the day of month for `MONTHLY`, month and day for `YEARLY`,
//!   hour and minute always.
//! - Invalid dates (30 February) and nonexistent local times (a daylight
//!   saving gap) are skipped and not counted; an ambiguous local time (the
//!   hour repeated when clocks go back) means its first instant.
//! - `UNTIL` is inclusive. A date-only `UNTIL` includes that whole day; a
//!   local date-time compares in local time; one ending in `Z` is UTC.
//!
//! Evaluation is bounded: `INTERVAL` may not exceed ten years, a rule yields
//! at most [`MAX_TIMES_PER_DAY`] times of day, and [`RRule::first`] gives up
//! with "never fires" after [`NEVER_FIRES_YEARS`] years without an instance.
//!
//! | module | owns |
//! |---|---|
//! | this file | [`RRule`], [`Freq`], [`ByDay`], [`Until`], [`RRuleError`], [`resolve_local`] |
//! | [`parse`] | the text of a rule → [`RRule`], with the checks that keep evaluation bounded |
//! | [`expand`] | instances of a rule: [`RRule::between`], [`RRule::first`] |

use std::fmt;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};

use crate::error::ErrorKind;

pub mod expand;
pub mod parse;

/// Most times of day one rule may produce (`BYHOUR` × `BYMINUTE`).
pub const MAX_TIMES_PER_DAY: usize = 96;

/// Largest `COUNT`.
pub const MAX_COUNT: u32 = 100_000;

/// How far [`RRule::first`] looks for the first instance, years.
pub const NEVER_FIRES_YEARS: i16 = 50;

/// How often the rule repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Freq {
    /// Every `INTERVAL` days.
    Daily,
    /// Every `INTERVAL` weeks (weeks start on `WKST`).
    Weekly,
    /// Every `INTERVAL` months.
    Monthly,
    /// Every `INTERVAL` years.
    Yearly,
}

impl Freq {
    fn as_str(self) -> &'static str {
        match self {
            Freq::Daily => "DAILY",
            Freq::Weekly => "WEEKLY",
            Freq::Monthly => "MONTHLY",
            Freq::Yearly => "YEARLY",
        }
    }

    /// The largest interval that still repeats within ten years.
    fn max_interval(self) -> u32 {
        match self {
            Freq::Daily => 3653,
            Freq::Weekly => 521,
            Freq::Monthly => 120,
            Freq::Yearly => 10,
        }
    }
}

/// One `BYDAY` entry: a weekday, optionally the `nth` of the month or year
/// (negative counts from the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByDay {
    /// `Some(1)` for `1MO`, `Some(-1)` for `-1FR`, `None` for plain `MO`.
    pub nth: Option<i8>,
    /// The weekday.
    pub weekday: Weekday,
}

/// The end of a series (`UNTIL`), inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Until {
    /// `UNTIL=20261114`: up to the end of that local day.
    Date(Date),
    /// `UNTIL=20261114T180000`: up to that local time.
    Local(DateTime),
    /// `UNTIL=20261114T100000Z`: up to that instant.
    Utc(Timestamp),
}

/// A parsed recurrence rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RRule {
    /// `FREQ`.
    pub freq: Freq,
    /// `INTERVAL` (default 1).
    pub interval: u32,
    /// `BYDAY`.
    pub by_day: Vec<ByDay>,
    /// `BYMONTHDAY` (1..=31 or -31..=-1).
    pub by_month_day: Vec<i8>,
    /// `BYMONTH` (1..=12).
    pub by_month: Vec<i8>,
    /// `BYHOUR` (0..=23).
    pub by_hour: Vec<i8>,
    /// `BYMINUTE` (0..=59).
    pub by_minute: Vec<i8>,
    /// `BYSETPOS` (±1..=366).
    pub by_set_pos: Vec<i16>,
    /// `COUNT`.
    pub count: Option<u32>,
    /// `UNTIL`.
    pub until: Option<Until>,
    /// `WKST` (default Monday).
    pub wkst: Weekday,
    text: String,
}

/// A rule that cannot be parsed or never fires.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RRuleError {
    /// The part at fault (`BYDAY`, `UNTIL`...), when one is.
    pub part: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RRuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.part {
            Some(p) => write!(f, "{p}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl RRuleError {
    /// Always [`ErrorKind::Invalid`]: the rule is wrong.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
}

fn perr(part: &str, message: impl Into<String>) -> RRuleError {
    RRuleError {
        part: Some(part.to_string()),
        message: message.into(),
    }
}

fn never(message: impl Into<String>) -> RRuleError {
    RRuleError {
        part: None,
        message: format!("never fires: {}", message.into()),
    }
}

fn weekday_code(w: Weekday) -> &'static str {
    match w {
        Weekday::Monday => "MO",
        Weekday::Tuesday => "TU",
        Weekday::Wednesday => "WE",
        Weekday::Thursday => "TH",
        Weekday::Friday => "FR",
        Weekday::Saturday => "SA",
        Weekday::Sunday => "SU",
    }
}

fn parse_weekday(s: &str) -> Option<Weekday> {
    Some(match s {
        "MO" => Weekday::Monday,
        "TU" => Weekday::Tuesday,
        "WE" => Weekday::Wednesday,
        "TH" => Weekday::Thursday,
        "FR" => Weekday::Friday,
        "SA" => Weekday::Saturday,
        "SU" => Weekday::Sunday,
        _ => return None,
    })
}

impl std::str::FromStr for RRule {
    type Err = RRuleError;
    fn from_str(s: &str) -> Result<Self, RRuleError> {
        RRule::parse(s)
    }
}

impl fmt::Display for RRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The instant of a local time in `tz`: `None` in a gap (the time does not
/// exist), the earlier instant in a fold (RFC 5545 §3.3.5).
pub fn resolve_local(tz: &TimeZone, dt: DateTime) -> Option<Timestamp> {
    let offset = match tz.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } => offset,
        AmbiguousOffset::Gap { .. } => return None,
        AmbiguousOffset::Fold { before, .. } => before,
    };
    offset.to_timestamp(dt).ok()
}

#[cfg(test)]
mod tests;
