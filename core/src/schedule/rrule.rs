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

use std::fmt;

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Timestamp, ToSpan};

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

fn parse_int_list<T: std::str::FromStr + PartialOrd + Copy + fmt::Display>(
    part: &str,
    value: &str,
    ok: impl Fn(T) -> bool,
    range: &str,
) -> Result<Vec<T>, RRuleError> {
    let mut out = Vec::new();
    for v in value.split(',') {
        let n: T = v
            .trim()
            .strip_prefix('+')
            .unwrap_or(v.trim())
            .parse()
            .map_err(|_| perr(part, format!("`{v}` is not a number")))?;
        if !ok(n) {
            return Err(perr(part, format!("{n} is out of range ({range})")));
        }
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

fn parse_until(v: &str) -> Result<Until, RRuleError> {
    let bad = || {
        perr(
            "UNTIL",
            format!("`{v}` is not a date (20261114) or date-time (20261114T180000, or …Z for UTC)"),
        )
    };
    let digits = |s: &str| -> Option<i32> {
        if s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    let compact: String = v.chars().filter(|c| *c != '-' && *c != ':').collect();
    let (date_part, rest) = compact.split_at(compact.len().min(8));
    if date_part.len() != 8 {
        return Err(bad());
    }
    let (Some(y), Some(m), Some(d)) = (
        digits(&date_part[0..4]),
        digits(&date_part[4..6]),
        digits(&date_part[6..8]),
    ) else {
        return Err(bad());
    };
    let date = Date::new(y as i16, m as i8, d as i8).map_err(|_| bad())?;
    if rest.is_empty() {
        return Ok(Until::Date(date));
    }
    let Some(time) = rest.strip_prefix('T') else {
        return Err(bad());
    };
    let (time, utc) = match time.strip_suffix('Z') {
        Some(t) => (t, true),
        None => (time, false),
    };
    if time.len() != 6 {
        return Err(bad());
    }
    let (Some(h), Some(mi), Some(s)) = (
        digits(&time[0..2]),
        digits(&time[2..4]),
        digits(&time[4..6]),
    ) else {
        return Err(bad());
    };
    let t = Time::new(h as i8, mi as i8, s as i8, 0).map_err(|_| bad())?;
    let dt = date.to_datetime(t);
    if utc {
        let ts = dt.to_zoned(TimeZone::UTC).map_err(|_| bad())?.timestamp();
        Ok(Until::Utc(ts))
    } else {
        Ok(Until::Local(dt))
    }
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

/// Scope of a `BYDAY` ordinal.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    Month,
    Year,
}

impl RRule {
    /// Parses `FREQ=...;...` (an optional `RRULE:` prefix is allowed). Part
    /// names are case-insensitive; each may appear once.
    pub fn parse(s: &str) -> Result<RRule, RRuleError> {
        let text = s.trim();
        let body = text
            .strip_prefix("RRULE:")
            .or_else(|| text.strip_prefix("rrule:"))
            .unwrap_or(text);
        if body.is_empty() {
            return Err(perr("FREQ", "the rule is empty; start with FREQ=..."));
        }
        let mut seen: Vec<String> = Vec::new();
        let mut freq = None;
        let mut rule = RRule {
            freq: Freq::Daily,
            interval: 1,
            by_day: Vec::new(),
            by_month_day: Vec::new(),
            by_month: Vec::new(),
            by_hour: Vec::new(),
            by_minute: Vec::new(),
            by_set_pos: Vec::new(),
            count: None,
            until: None,
            wkst: Weekday::Monday,
            text: body.to_string(),
        };
        for piece in body.split(';') {
            let piece = piece.trim();
            if piece.is_empty() {
                continue;
            }
            let Some((name, value)) = piece.split_once('=') else {
                return Err(perr(piece, "expected NAME=VALUE"));
            };
            let name = name.trim().to_ascii_uppercase();
            let value = value.trim().to_ascii_uppercase();
            if seen.contains(&name) {
                return Err(perr(&name, "given twice"));
            }
            seen.push(name.clone());
            if value.is_empty() {
                return Err(perr(&name, "has no value"));
            }
            match name.as_str() {
                "FREQ" => {
                    freq = Some(match value.as_str() {
                        "DAILY" => Freq::Daily,
                        "WEEKLY" => Freq::Weekly,
                        "MONTHLY" => Freq::Monthly,
                        "YEARLY" => Freq::Yearly,
                        "SECONDLY" | "MINUTELY" | "HOURLY" => {
                            return Err(perr(
                                "FREQ",
                                format!("{value} is not supported: use DAILY with BYHOUR/BYMINUTE"),
                            ));
                        }
                        other => {
                            return Err(perr(
                                "FREQ",
                                format!("`{other}` is not DAILY, WEEKLY, MONTHLY or YEARLY"),
                            ));
                        }
                    })
                }
                "INTERVAL" => {
                    rule.interval = value.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        perr("INTERVAL", format!("`{value}` is not a number ≥ 1"))
                    })?;
                }
                "COUNT" => {
                    rule.count = Some(
                        value
                            .parse()
                            .ok()
                            .filter(|n| (1..=MAX_COUNT).contains(n))
                            .ok_or_else(|| {
                                perr(
                                    "COUNT",
                                    format!("`{value}` is not a number 1..={MAX_COUNT}"),
                                )
                            })?,
                    );
                }
                "UNTIL" => rule.until = Some(parse_until(&value)?),
                "WKST" => {
                    rule.wkst = parse_weekday(&value).ok_or_else(|| {
                        perr(
                            "WKST",
                            format!("`{value}` is not MO, TU, WE, TH, FR, SA or SU"),
                        )
                    })?;
                }
                "BYDAY" => {
                    for v in value.split(',') {
                        let v = v.trim();
                        let split = v.len().saturating_sub(2);
                        let (n, wd) = v.split_at(split);
                        let weekday = parse_weekday(wd).ok_or_else(|| {
                            perr(
                                "BYDAY",
                                format!("`{v}` is not a weekday (MO..SU, optionally with an ordinal such as 1MO or -1FR)"),
                            )
                        })?;
                        let nth = if n.is_empty() {
                            None
                        } else {
                            let k: i8 = n.strip_prefix('+').unwrap_or(n).parse().map_err(|_| {
                                perr("BYDAY", format!("`{v}`: `{n}` is not an ordinal"))
                            })?;
                            if k == 0 || !(-53..=53).contains(&k) {
                                return Err(perr(
                                    "BYDAY",
                                    format!("`{v}`: the ordinal must be ±1..=53"),
                                ));
                            }
                            Some(k)
                        };
                        let bd = ByDay { nth, weekday };
                        if !rule.by_day.contains(&bd) {
                            rule.by_day.push(bd);
                        }
                    }
                }
                "BYMONTHDAY" => {
                    rule.by_month_day = parse_int_list(
                        "BYMONTHDAY",
                        &value,
                        |n: i8| n != 0 && (-31..=31).contains(&n),
                        "1..=31 or -31..=-1",
                    )?
                }
                "BYMONTH" => {
                    rule.by_month =
                        parse_int_list("BYMONTH", &value, |n: i8| (1..=12).contains(&n), "1..=12")?
                }
                "BYHOUR" => {
                    rule.by_hour =
                        parse_int_list("BYHOUR", &value, |n: i8| (0..=23).contains(&n), "0..=23")?
                }
                "BYMINUTE" => {
                    rule.by_minute =
                        parse_int_list("BYMINUTE", &value, |n: i8| (0..=59).contains(&n), "0..=59")?
                }
                "BYSETPOS" => {
                    rule.by_set_pos = parse_int_list(
                        "BYSETPOS",
                        &value,
                        |n: i16| n != 0 && (-366..=366).contains(&n),
                        "1..=366 or -366..=-1",
                    )?
                }
                "BYSECOND" | "BYYEARDAY" | "BYWEEKNO" | "RSCALE" | "SKIP" => {
                    return Err(perr(&name, "is not supported by the gateway"));
                }
                other => {
                    return Err(perr(other, "is not a recurrence rule part"));
                }
            }
        }
        rule.freq =
            freq.ok_or_else(|| perr("FREQ", "is required (DAILY, WEEKLY, MONTHLY or YEARLY)"))?;
        rule.check()?;
        Ok(rule)
    }

    fn check(&self) -> Result<(), RRuleError> {
        let f = self.freq.as_str();
        if self.interval > self.freq.max_interval() {
            return Err(perr(
                "INTERVAL",
                format!(
                    "{} is too large for FREQ={f}: a rule must repeat within ten years (at most {})",
                    self.interval,
                    self.freq.max_interval()
                ),
            ));
        }
        if self.count.is_some() && self.until.is_some() {
            return Err(perr("COUNT", "COUNT and UNTIL may not both be given"));
        }
        if matches!(self.freq, Freq::Daily | Freq::Weekly)
            && let Some(bd) = self.by_day.iter().find(|b| b.nth.is_some())
        {
            return Err(perr(
                "BYDAY",
                format!(
                    "`{}{}`: ordinals are only allowed with FREQ=MONTHLY or YEARLY",
                    bd.nth.unwrap_or_default(),
                    weekday_code(bd.weekday)
                ),
            ));
        }
        let month_scope =
            self.freq == Freq::Monthly || (self.freq == Freq::Yearly && !self.by_month.is_empty());
        if month_scope
            && let Some(bd) = self
                .by_day
                .iter()
                .find(|b| b.nth.is_some_and(|n| !(-5..=5).contains(&n)))
        {
            return Err(perr(
                "BYDAY",
                format!(
                    "`{}{}`: a month has at most 5 of each weekday",
                    bd.nth.unwrap_or_default(),
                    weekday_code(bd.weekday)
                ),
            ));
        }
        if self.freq == Freq::Weekly && !self.by_month_day.is_empty() {
            return Err(perr("BYMONTHDAY", "cannot be used with FREQ=WEEKLY"));
        }
        if !self.by_set_pos.is_empty()
            && self.by_day.is_empty()
            && self.by_month_day.is_empty()
            && self.by_month.is_empty()
            && self.by_hour.is_empty()
            && self.by_minute.is_empty()
        {
            return Err(perr("BYSETPOS", "needs another BY… part to choose from"));
        }
        let times = self.by_hour.len().max(1) * self.by_minute.len().max(1);
        if times > MAX_TIMES_PER_DAY {
            return Err(perr(
                "BYMINUTE",
                format!("BYHOUR × BYMINUTE gives {times} times a day; at most {MAX_TIMES_PER_DAY}"),
            ));
        }
        Ok(())
    }

    /// Whether the series depends on the DTSTART date: `COUNT`, `INTERVAL`
    /// above 1, or a part left to DTSTART (the weekday of a `WEEKLY` rule
    /// without `BYDAY`, the day of a `MONTHLY` or `YEARLY` rule without
    /// `BYMONTHDAY`/`BYDAY`). Such a rule needs an explicit start.
    pub fn depends_on_start(&self) -> bool {
        self.count.is_some()
            || self.interval > 1
            || match self.freq {
                Freq::Daily => false,
                Freq::Weekly => self.by_day.is_empty(),
                Freq::Monthly | Freq::Yearly => {
                    self.by_day.is_empty() && self.by_month_day.is_empty()
                }
            }
    }

    /// The instances with `from <= instant < to`, as (local time, instant),
    /// ascending, of the series starting at `dtstart` (local time in `tz`).
    pub fn between(
        &self,
        dtstart: DateTime,
        tz: &TimeZone,
        from: Timestamp,
        to: Timestamp,
    ) -> Vec<(DateTime, Timestamp)> {
        let mut out = Vec::new();
        if from >= to {
            return out;
        }
        let last_day = tz.to_datetime(to).date().tomorrow().unwrap_or(Date::MAX);
        let first_day = tz.to_datetime(from).date().yesterday().unwrap_or(Date::MIN);
        let skip_to = if self.count.is_some() {
            None
        } else {
            Some(first_day)
        };
        self.walk(
            dtstart,
            tz,
            skip_to,
            |dt, ts| {
                if dt.date() > last_day {
                    return Walk::Stop;
                }
                if ts >= to {
                    return Walk::Stop;
                }
                if ts >= from {
                    out.push((dt, ts));
                }
                Walk::Continue
            },
            |base| base > last_day,
        );
        out
    }

    /// The first instance at or after `dtstart`, or an error saying the rule
    /// never fires (nothing within [`NEVER_FIRES_YEARS`] years, or `UNTIL`
    /// before the start).
    pub fn first(
        &self,
        dtstart: DateTime,
        tz: &TimeZone,
    ) -> Result<(DateTime, Timestamp), RRuleError> {
        match self.until {
            Some(Until::Date(d)) if d < dtstart.date() => {
                return Err(never(format!("UNTIL {d} is before the start {dtstart}")));
            }
            Some(Until::Local(u)) if u < dtstart => {
                return Err(never(format!("UNTIL {u} is before the start {dtstart}")));
            }
            Some(Until::Utc(u)) => {
                if let Ok(start) = dtstart.to_zoned(tz.clone())
                    && u < start.timestamp()
                {
                    return Err(never(format!("UNTIL {u} is before the start {dtstart}")));
                }
            }
            _ => {}
        }
        let limit = dtstart
            .date()
            .checked_add(i64::from(NEVER_FIRES_YEARS).years())
            .unwrap_or(Date::MAX);
        let mut found = None;
        self.walk(
            dtstart,
            tz,
            None,
            |dt, ts| {
                found = Some((dt, ts));
                Walk::Stop
            },
            |base| base > limit,
        );
        found.ok_or_else(|| {
            if self.until.is_some() || self.count.is_some() {
                never(format!(
                    "no date from {} matches the rule before its UNTIL/COUNT ends it",
                    dtstart.date()
                ))
            } else {
                never(format!(
                    "no date in the {NEVER_FIRES_YEARS} years from {} matches the rule",
                    dtstart.date()
                ))
            }
        })
    }

    /// The period start for index `k` (0 = the period holding `dtstart`),
    /// or `None` past the end of time.
    fn period_base(&self, start: Date, k: i64) -> Option<Date> {
        let step = k.checked_mul(i64::from(self.interval))?;
        match self.freq {
            Freq::Daily => start.checked_add(step.days()).ok(),
            Freq::Weekly => {
                let back = i64::from(start.weekday().since(self.wkst));
                start.checked_add((step * 7 - back).days()).ok()
            }
            Freq::Monthly => {
                let months = i64::from(start.year()) * 12 + i64::from(start.month() - 1) + step;
                let y = i16::try_from(months.div_euclid(12)).ok()?;
                Date::new(y, (months.rem_euclid(12) + 1) as i8, 1).ok()
            }
            Freq::Yearly => {
                let y = i16::try_from(i64::from(start.year()) + step).ok()?;
                Date::new(y, 1, 1).ok()
            }
        }
    }

    /// The first period index whose period may contain `day`.
    fn period_index_near(&self, start: Date, day: Date) -> i64 {
        let interval = i64::from(self.interval);
        let units = match self.freq {
            Freq::Daily => start
                .until(day)
                .map(|s| i64::from(s.get_days()))
                .unwrap_or(0),
            Freq::Weekly => {
                let ws = self.period_base(start, 0).unwrap_or(start);
                start
                    .until(day)
                    .map(|_| {
                        ws.until(day)
                            .map(|s| i64::from(s.get_days()) / 7)
                            .unwrap_or(0)
                    })
                    .unwrap_or(0)
            }
            Freq::Monthly => {
                (i64::from(day.year()) - i64::from(start.year())) * 12
                    + i64::from(day.month() - start.month())
            }
            Freq::Yearly => i64::from(day.year()) - i64::from(start.year()),
        };
        (units / interval - 1).max(0)
    }

    fn period_len(&self, base: Date) -> i16 {
        match self.freq {
            Freq::Daily => 1,
            Freq::Weekly => 7,
            Freq::Monthly => i16::from(base.days_in_month()),
            Freq::Yearly => base.days_in_year(),
        }
    }

    fn month_day_matches(&self, d: Date) -> bool {
        let dim = d.days_in_month();
        self.by_month_day.iter().any(|&md| {
            if md > 0 {
                d.day() == md
            } else {
                d.day() == dim + md + 1
            }
        })
    }

    fn by_day_matches(&self, d: Date, scope: Scope) -> bool {
        let wd = d.weekday();
        self.by_day.iter().any(|b| {
            if b.weekday != wd {
                return false;
            }
            let Some(n) = b.nth else { return true };
            let (pos, len) = match scope {
                Scope::Month => (i16::from(d.day()), i16::from(d.days_in_month())),
                Scope::Year => (d.day_of_year(), d.days_in_year()),
            };
            if n > 0 {
                (pos - 1) / 7 + 1 == i16::from(n)
            } else {
                (len - pos) / 7 + 1 == -i16::from(n)
            }
        })
    }

    fn day_matches(&self, d: Date, start: Date) -> bool {
        if !self.by_month.is_empty() && !self.by_month.contains(&d.month()) {
            return false;
        }
        if !self.by_month_day.is_empty() && !self.month_day_matches(d) {
            return false;
        }
        if !self.by_day.is_empty() {
            let scope = if self.freq == Freq::Yearly && self.by_month.is_empty() {
                Scope::Year
            } else {
                Scope::Month
            };
            if !self.by_day_matches(d, scope) {
                return false;
            }
        }
        match self.freq {
            Freq::Daily => true,
            Freq::Weekly => !self.by_day.is_empty() || d.weekday() == start.weekday(),
            Freq::Monthly => {
                !self.by_day.is_empty() || !self.by_month_day.is_empty() || d.day() == start.day()
            }
            Freq::Yearly => {
                !self.by_day.is_empty()
                    || !self.by_month_day.is_empty()
                    || (d.day() == start.day()
                        && (!self.by_month.is_empty() || d.month() == start.month()))
            }
        }
    }

    fn times(&self, dtstart: DateTime) -> Vec<Time> {
        let hours = if self.by_hour.is_empty() {
            vec![dtstart.hour()]
        } else {
            self.by_hour.clone()
        };
        let minutes = if self.by_minute.is_empty() {
            vec![dtstart.minute()]
        } else {
            self.by_minute.clone()
        };
        let mut out: Vec<Time> = hours
            .iter()
            .flat_map(|&h| {
                minutes
                    .iter()
                    .filter_map(move |&m| Time::new(h, m, dtstart.second(), 0).ok())
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Walks the series in order: `emit` sees every instance at or after
    /// `dtstart` within UNTIL/COUNT; `past` says when a period start is
    /// beyond what the caller wants. `skip_to` jumps over whole periods
    /// ending before that day (only valid without COUNT).
    fn walk(
        &self,
        dtstart: DateTime,
        tz: &TimeZone,
        skip_to: Option<Date>,
        mut emit: impl FnMut(DateTime, Timestamp) -> Walk,
        past: impl Fn(Date) -> bool,
    ) {
        let start = dtstart.date();
        let times = self.times(dtstart);
        let mut emitted: u32 = 0;
        let mut k = match skip_to {
            Some(day) if day > start => self.period_index_near(start, day),
            _ => 0,
        };
        let mut set: Vec<DateTime> = Vec::new();
        loop {
            let Some(base) = self.period_base(start, k) else {
                return;
            };
            if past(base) {
                return;
            }
            k += 1;
            set.clear();
            let mut d = base;
            for _ in 0..self.period_len(base) {
                if self.day_matches(d, start) {
                    set.extend(times.iter().map(|t| d.to_datetime(*t)));
                }
                match d.tomorrow() {
                    Ok(n) => d = n,
                    Err(_) => break,
                }
            }
            if set.is_empty() {
                continue;
            }
            if !self.by_set_pos.is_empty() {
                let n = set.len() as i64;
                let mut picked: Vec<DateTime> = self
                    .by_set_pos
                    .iter()
                    .filter_map(|&p| {
                        let i = if p > 0 {
                            i64::from(p) - 1
                        } else {
                            n + i64::from(p)
                        };
                        usize::try_from(i).ok().and_then(|i| set.get(i).copied())
                    })
                    .collect();
                picked.sort();
                picked.dedup();
                set = picked;
            }
            for &dt in &set {
                if dt < dtstart {
                    continue;
                }
                match self.until {
                    Some(Until::Date(u)) if dt.date() > u => return,
                    Some(Until::Local(u)) if dt > u => return,
                    _ => {}
                }
                let Some(ts) = resolve_local(tz, dt) else {
                    continue;
                };
                if let Some(Until::Utc(u)) = self.until
                    && ts > u
                {
                    return;
                }
                if emit(dt, ts) == Walk::Stop {
                    return;
                }
                emitted += 1;
                if self.count.is_some_and(|c| emitted >= c) {
                    return;
                }
            }
        }
    }
}

#[derive(PartialEq, Eq)]
enum Walk {
    Continue,
    Stop,
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
mod tests {
    use super::*;
    use jiff::civil::{date, datetime};

    fn sh() -> TimeZone {
        TimeZone::get("Asia/Shanghai").unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// Local times of the instances within [from, to) (Shanghai).
    fn run(rule: &str, start: DateTime, from: &str, to: &str) -> Vec<String> {
        let r = RRule::parse(rule).unwrap();
        r.between(start, &sh(), ts(from), ts(to))
            .into_iter()
            .map(|(dt, _)| dt.strftime("%Y-%m-%d %a %H:%M").to_string())
            .collect()
    }

    #[test]
    fn weekly_byday_at_hour_and_minute() {
        let got = run(
            "FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=18;BYMINUTE=0",
            datetime(2026, 3, 1, 0, 0, 0, 0),
            "2026-03-01T00:00:00+08",
            "2026-03-15T00:00:00+08",
        );
        assert_eq!(
            got,
            [
                "2026-03-02 Mon 18:00",
                "2026-03-04 Wed 18:00",
                "2026-03-09 Mon 18:00",
                "2026-03-11 Wed 18:00"
            ]
        );
        // The instant is in Shanghai time (UTC+8).
        let r = RRule::parse("FREQ=WEEKLY;BYDAY=MO;BYHOUR=18").unwrap();
        let (_, t) = r.first(datetime(2026, 3, 1, 0, 0, 0, 0), &sh()).unwrap();
        assert_eq!(t, ts("2026-03-02T10:00:00Z"));
    }

    #[test]
    fn monthly_last_friday() {
        let got = run(
            "FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=9",
            datetime(2026, 1, 1, 0, 0, 0, 0),
            "2026-01-01T00:00:00+08",
            "2026-05-01T00:00:00+08",
        );
        assert_eq!(
            got,
            [
                "2026-01-30 Fri 09:00",
                "2026-02-27 Fri 09:00",
                "2026-03-27 Fri 09:00",
                "2026-04-24 Fri 09:00"
            ]
        );
        // First Monday, and the last day of the month.
        let got = run(
            "FREQ=MONTHLY;BYDAY=1MO;BYHOUR=8",
            datetime(2026, 1, 1, 0, 0, 0, 0),
            "2026-01-01T00:00:00+08",
            "2026-03-01T00:00:00+08",
        );
        assert_eq!(got, ["2026-01-05 Mon 08:00", "2026-02-02 Mon 08:00"]);
        let got = run(
            "FREQ=MONTHLY;BYMONTHDAY=-1;BYHOUR=20",
            datetime(2026, 1, 1, 0, 0, 0, 0),
            "2026-01-01T00:00:00+08",
            "2026-04-01T00:00:00+08",
        );
        assert_eq!(
            got,
            [
                "2026-01-31 Sat 20:00",
                "2026-02-28 Sat 20:00",
                "2026-03-31 Tue 20:00"
            ]
        );
    }

    #[test]
    fn yearly_rules() {
        // Fire prevention day each 9 November.
        let got = run(
            "FREQ=YEARLY;BYMONTH=11;BYMONTHDAY=9;BYHOUR=10;BYMINUTE=30",
            datetime(2026, 1, 1, 0, 0, 0, 0),
            "2026-01-01T00:00:00+08",
            "2029-01-01T00:00:00+08",
        );
        assert_eq!(
            got,
            [
                "2026-11-09 Mon 10:30",
                "2027-11-09 Tue 10:30",
                "2028-11-09 Thu 10:30"
            ]
        );
        // Without BYMONTHDAY the day comes from DTSTART.
        let got = run(
            "FREQ=YEARLY;BYHOUR=8",
            datetime(2026, 3, 15, 0, 0, 0, 0),
            "2026-01-01T00:00:00+08",
            "2028-01-01T00:00:00+08",
        );
        assert_eq!(got, ["2026-03-15 Sun 08:00", "2027-03-15 Mon 08:00"]);
        // The last Sunday of the year (ordinal relative to the year).
        let got = run(
            "FREQ=YEARLY;BYDAY=-1SU;BYHOUR=8",
            datetime(2026, 1, 1, 0, 0, 0, 0),
            "2026-01-01T00:00:00+08",
            "2027-01-01T00:00:00+08",
        );
        assert_eq!(got, ["2026-12-27 Sun 08:00"]);
        // 29 February only fires in leap years.
        let got = run(
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYHOUR=8",
            datetime(2026, 1, 1, 0, 0, 0, 0),
            "2026-01-01T00:00:00+08",
            "2033-01-01T00:00:00+08",
        );
        assert_eq!(got, ["2028-02-29 Tue 08:00", "2032-02-29 Sun 08:00"]);
    }

    #[test]
    fn count_interval_until() {
        let start = datetime(2026, 3, 2, 0, 0, 0, 0);
        let far = "2030-01-01T00:00:00+08";
        let got = run(
            "FREQ=DAILY;COUNT=3;BYHOUR=7;BYMINUTE=0,30",
            start,
            "2026-01-01T00:00:00+08",
            far,
        );
        assert_eq!(
            got,
            [
                "2026-03-02 Mon 07:00",
                "2026-03-02 Mon 07:30",
                "2026-03-03 Tue 07:00"
            ]
        );
        // COUNT counts from the start even when the window begins later.
        let got = run(
            "FREQ=DAILY;COUNT=3;BYHOUR=7",
            start,
            "2026-03-03T12:00:00+08",
            far,
        );
        assert_eq!(got, ["2026-03-04 Wed 07:00"]);
        // Every other week, phase from DTSTART's week.
        let got = run(
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;BYHOUR=9",
            start,
            "2026-03-01T00:00:00+08",
            "2026-04-01T00:00:00+08",
        );
        assert_eq!(
            got,
            [
                "2026-03-03 Tue 09:00",
                "2026-03-17 Tue 09:00",
                "2026-03-31 Tue 09:00"
            ]
        );
        // Skipping ahead to a late window keeps the phase.
        let got = run(
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;BYHOUR=9",
            start,
            "2027-03-01T00:00:00+08",
            "2027-03-20T00:00:00+08",
        );
        assert_eq!(got, ["2027-03-02 Tue 09:00", "2027-03-16 Tue 09:00"]);
        let got = run(
            "FREQ=DAILY;INTERVAL=3;BYHOUR=9",
            start,
            "2026-03-01T00:00:00+08",
            "2026-03-10T00:00:00+08",
        );
        assert_eq!(
            got,
            [
                "2026-03-02 Mon 09:00",
                "2026-03-05 Thu 09:00",
                "2026-03-08 Sun 09:00"
            ]
        );
        // UNTIL as a date includes that day; as a UTC time it is exact.
        let got = run(
            "FREQ=DAILY;UNTIL=20260304;BYHOUR=21",
            start,
            "2026-01-01T00:00:00+08",
            far,
        );
        assert_eq!(got.len(), 3);
        let got = run(
            "FREQ=DAILY;UNTIL=20260304T130000Z;BYHOUR=21",
            start,
            "2026-01-01T00:00:00+08",
            far,
        );
        assert_eq!(got.len(), 3);
        let got = run(
            "FREQ=DAILY;UNTIL=20260304T125959Z;BYHOUR=21",
            start,
            "2026-01-01T00:00:00+08",
            far,
        );
        assert_eq!(got.len(), 2);
        let got = run(
            "FREQ=DAILY;UNTIL=20260303T210000;BYHOUR=21",
            start,
            "2026-01-01T00:00:00+08",
            far,
        );
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn bysetpos_picks_from_the_period() {
        // The last working weekday (Mon-Fri) of each month.
        let got = run(
            "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;BYHOUR=17",
            datetime(2026, 1, 1, 0, 0, 0, 0),
            "2026-01-01T00:00:00+08",
            "2026-06-01T00:00:00+08",
        );
        assert_eq!(
            got,
            [
                "2026-01-30 Fri 17:00",
                "2026-02-27 Fri 17:00",
                "2026-03-31 Tue 17:00",
                "2026-04-30 Thu 17:00",
                "2026-05-29 Fri 17:00"
            ]
        );
    }

    #[test]
    fn impossible_rules_never_fire() {
        let start = datetime(2026, 1, 1, 0, 0, 0, 0);
        for rule in [
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30;BYHOUR=8",
            "FREQ=MONTHLY;BYMONTH=4;BYMONTHDAY=31;BYHOUR=8",
            "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30;BYHOUR=8",
            "FREQ=MONTHLY;BYDAY=5MO;BYMONTHDAY=1;BYHOUR=8",
        ] {
            let e = RRule::parse(rule).unwrap().first(start, &sh()).unwrap_err();
            assert!(e.to_string().starts_with("never fires"), "{rule}: {e}");
        }
        let e = RRule::parse("FREQ=DAILY;UNTIL=20251231;BYHOUR=8")
            .unwrap()
            .first(start, &sh())
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("never fires: UNTIL 2025-12-31 is before"),
            "{e}"
        );
        // Rare but possible: Friday 13 February (2026, then 2032).
        let r = RRule::parse("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=13;BYDAY=FR;BYHOUR=8").unwrap();
        let (dt, _) = r.first(datetime(2026, 3, 1, 0, 0, 0, 0), &sh()).unwrap();
        assert_eq!(dt.date(), date(2032, 2, 13));
        let (dt, _) = r.first(datetime(2032, 3, 1, 0, 0, 0, 0), &sh()).unwrap();
        assert_eq!(dt.date(), date(2037, 2, 13));
    }

    /// A daily rule that never matches scans 50 years of days and stops.
    #[test]
    fn pathological_rule_terminates() {
        let r =
            RRule::parse("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=31;BYHOUR=0,1,2,3;BYMINUTE=0,15,30,45")
                .unwrap();
        assert!(r.first(datetime(2026, 1, 1, 0, 0, 0, 0), &sh()).is_err());
        // A huge window over a never-matching rule is bounded by the window.
        let got = r.between(
            datetime(2026, 1, 1, 0, 0, 0, 0),
            &sh(),
            ts("2026-01-01T00:00:00Z"),
            ts("2226-01-01T00:00:00Z"),
        );
        assert!(got.is_empty());
        // INTERVAL beyond ten years and too many times a day are refused.
        assert!(RRule::parse("FREQ=YEARLY;INTERVAL=11").is_err());
        assert!(RRule::parse("FREQ=DAILY;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23;BYMINUTE=0,10,20,30,40").is_err());
    }

    #[test]
    fn parse_errors_name_the_part() {
        for (rule, part) in [
            ("FREQ=DAILY;BYSECOND=0", "BYSECOND"),
            ("FREQ=DAILY;BYWEEKNO=3", "BYWEEKNO"),
            ("FREQ=DAILY;FOO=1", "FOO"),
            ("FREQ=HOURLY", "FREQ"),
            ("FREQ=FORTNIGHTLY", "FREQ"),
            ("BYHOUR=8", "FREQ"),
            ("FREQ=DAILY;BYHOUR=24", "BYHOUR"),
            ("FREQ=DAILY;BYMINUTE=x", "BYMINUTE"),
            ("FREQ=MONTHLY;BYMONTHDAY=0", "BYMONTHDAY"),
            ("FREQ=YEARLY;BYMONTH=13", "BYMONTH"),
            ("FREQ=WEEKLY;BYDAY=1MO", "BYDAY"),
            ("FREQ=MONTHLY;BYDAY=6MO", "BYDAY"),
            ("FREQ=MONTHLY;BYDAY=XX", "BYDAY"),
            ("FREQ=WEEKLY;BYMONTHDAY=1", "BYMONTHDAY"),
            ("FREQ=DAILY;INTERVAL=0", "INTERVAL"),
            ("FREQ=DAILY;COUNT=2;UNTIL=20260101", "COUNT"),
            ("FREQ=DAILY;UNTIL=2026", "UNTIL"),
            ("FREQ=DAILY;FREQ=WEEKLY", "FREQ"),
            ("FREQ=DAILY;BYSETPOS=1", "BYSETPOS"),
            ("FREQ=DAILY;WKST=XX", "WKST"),
            ("FREQ=DAILY;BYHOUR", "BYHOUR"),
        ] {
            let e = RRule::parse(rule).unwrap_err();
            assert_eq!(e.part.as_deref(), Some(part), "{rule}: {e}");
            assert!(e.to_string().starts_with(part), "{rule}: {e}");
        }
        // Accepted forms: prefix, lower case, WKST, dashed UNTIL.
        let r = RRule::parse("RRULE:freq=weekly;byday=mo;wkst=SU;until=2026-12-31").unwrap();
        assert_eq!(r.wkst, Weekday::Sunday);
        assert_eq!(r.until, Some(Until::Date(date(2026, 12, 31))));
    }

    #[test]
    fn depends_on_start() {
        let dep = |s: &str| RRule::parse(s).unwrap().depends_on_start();
        assert!(!dep("FREQ=DAILY;BYHOUR=8"));
        assert!(!dep("FREQ=WEEKLY;BYDAY=MO;BYHOUR=8"));
        assert!(!dep("FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=8"));
        assert!(!dep("FREQ=YEARLY;BYMONTH=11;BYMONTHDAY=9;BYHOUR=8"));
        assert!(dep("FREQ=WEEKLY;BYHOUR=8"));
        assert!(dep("FREQ=YEARLY;BYMONTH=3;BYHOUR=8"));
        assert!(dep("FREQ=DAILY;INTERVAL=2;BYHOUR=8"));
        assert!(dep("FREQ=DAILY;COUNT=5;BYHOUR=8"));
    }

    /// Nonexistent local times are skipped and not counted; ambiguous ones
    /// take the first instant (New York, DST 2026-03-08 and 2026-11-01).
    #[test]
    fn dst_gap_and_fold() {
        let ny = TimeZone::get("America/New_York").unwrap();
        let r = RRule::parse("FREQ=DAILY;BYHOUR=2;BYMINUTE=30;COUNT=3").unwrap();
        let got: Vec<_> = r
            .between(
                datetime(2026, 3, 7, 0, 0, 0, 0),
                &ny,
                ts("2026-03-01T00:00:00Z"),
                ts("2026-04-01T00:00:00Z"),
            )
            .into_iter()
            .map(|(dt, _)| dt.date())
            .collect();
        assert_eq!(got, [date(2026, 3, 7), date(2026, 3, 9), date(2026, 3, 10)]);
        let r = RRule::parse("FREQ=DAILY;BYHOUR=1;BYMINUTE=30").unwrap();
        let got = r.between(
            datetime(2026, 10, 31, 0, 0, 0, 0),
            &ny,
            ts("2026-11-01T00:00:00Z"),
            ts("2026-11-02T00:00:00Z"),
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, ts("2026-11-01T05:30:00Z")); // EDT, the first 01:30
    }
}
