//! Small value types and their text forms: `HH:MM` times, `YYYY-MM-DD`
//! dates, durations (`1m30s`), days (`workdays`, `[mon, wed]`), chimes and
//! programme items.

use std::fmt;
use std::time::Duration;

use jiff::civil::{Date, Time, Weekday};
use serde::{Deserialize, Serialize};

use crate::error::ErrorKind;
use crate::schedule::calendar::Calendar;

/// A wall-clock time of day, written `HH:MM` (or `HH:MM:SS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalTime(pub Time);

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        if t.second() == 0 {
            write!(f, "{:02}:{:02}", t.hour(), t.minute())
        } else {
            write!(f, "{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
        }
    }
}

impl std::str::FromStr for LocalTime {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let bad = || ValueError::Time(s.to_string());
        let parts: Vec<&str> = s.trim().split(':').collect();
        if !(2..=3).contains(&parts.len())
            || parts
                .iter()
                .any(|p| p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(bad());
        }
        let n = |i: usize| parts.get(i).and_then(|p| p.parse::<i8>().ok()).unwrap_or(0);
        Time::new(n(0), n(1), n(2), 0)
            .map(LocalTime)
            .map_err(|_| bad())
    }
}

impl Serialize for LocalTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LocalTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = d.deserialize_any(StrOrTomlDatetime("a time of day such as \"07:30\""))?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Accepts a string, or a TOML date/time literal (`07:30`, `2026-03-01`
/// without quotes), as its text.
struct StrOrTomlDatetime(&'static str);

impl<'de> serde::de::Visitor<'de> for StrOrTomlDatetime {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<String, A::Error> {
        // toml hands a date/time literal over as a one-entry map.
        let Some(_) = map.next_key::<String>()? else {
            return Err(serde::de::Error::custom(format!("expected {}", self.0)));
        };
        map.next_value::<String>()
    }
}

pub(crate) fn parse_date(s: &str) -> Result<Date, ValueError> {
    let s = s.trim();
    let ok = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !ok {
        return Err(ValueError::DateFormat(s.to_string()));
    }
    s.parse::<Date>()
        .map_err(|_| ValueError::NotADate(s.to_string()))
}

pub(super) fn de_opt_date<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Date>, D::Error> {
    let s = d.deserialize_any(StrOrTomlDatetime("a date such as \"2026-03-01\""))?;
    parse_date(&s).map(Some).map_err(serde::de::Error::custom)
}

/// Parses a duration such as `30s`, `2m`, `1m30s`, `1h` or `0`.
pub fn parse_duration(s: &str) -> Result<Duration, ValueError> {
    let t = s.trim();
    let bad = || ValueError::Duration(s.to_string());
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    if t.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    let mut last_unit = u64::MAX;
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        if num.is_empty() || unit >= last_unit || num.len() > 6 {
            return Err(bad());
        }
        let n: u64 = num.parse().map_err(|_| bad())?;
        total += n * unit;
        num.clear();
        last_unit = unit;
    }
    if !num.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// Writes a duration the way [`parse_duration`] reads it (`1m30s`, `0s`).
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        return "0s".into();
    }
    let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if sec > 0 {
        out.push_str(&format!("{sec}s"));
    }
    out
}

pub(super) mod duration_text {
    use super::*;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

/// On which dates an `at` schedule fires. Written `"workdays"`,
/// `"rest-days"`, `"daily"` or a list of weekdays `["mon", "wed"]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Days {
    /// Working days of the calendar (调休 included).
    Workdays,
    /// Rest days and holidays of the calendar.
    RestDays,
    /// Every day (the default).
    #[default]
    Daily,
    /// These weekdays, whatever the calendar says.
    Weekdays(Vec<Weekday>),
}

const WEEKDAY_NAMES: [(&str, Weekday); 7] = [
    ("mon", Weekday::Monday),
    ("tue", Weekday::Tuesday),
    ("wed", Weekday::Wednesday),
    ("thu", Weekday::Thursday),
    ("fri", Weekday::Friday),
    ("sat", Weekday::Saturday),
    ("sun", Weekday::Sunday),
];

fn weekday_name(w: Weekday) -> &'static str {
    WEEKDAY_NAMES
        .iter()
        .find(|(_, d)| *d == w)
        .map_or("?", |(n, _)| n)
}

impl Days {
    /// Whether the schedule fires on `date`.
    pub fn matches(&self, date: Date, calendar: &Calendar) -> bool {
        match self {
            Days::Workdays => calendar.is_workday(date),
            Days::RestDays => !calendar.is_workday(date),
            Days::Daily => true,
            Days::Weekdays(w) => w.contains(&date.weekday()),
        }
    }

    /// Whether this depends on the workday calendar.
    pub fn uses_calendar(&self) -> bool {
        matches!(self, Days::Workdays | Days::RestDays)
    }
}

impl fmt::Display for Days {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Days::Workdays => f.write_str("workdays"),
            Days::RestDays => f.write_str("rest-days"),
            Days::Daily => f.write_str("daily"),
            Days::Weekdays(w) => {
                let names: Vec<_> = w.iter().map(|d| weekday_name(*d)).collect();
                f.write_str(&names.join(","))
            }
        }
    }
}

impl Serialize for Days {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Days::Weekdays(w) => s.collect_seq(w.iter().map(|d| weekday_name(*d))),
            other => s.collect_str(other),
        }
    }
}

impl<'de> Deserialize<'de> for Days {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Days;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"workdays\", \"rest-days\", \"daily\" or a list of weekdays such as [\"mon\", \"wed\"]")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Days, E> {
                match v.trim() {
                    "workdays" => Ok(Days::Workdays),
                    "rest-days" => Ok(Days::RestDays),
                    "daily" => Ok(Days::Daily),
                    other => Err(E::custom(format!(
                        "`{other}` is not \"workdays\", \"rest-days\", \"daily\" or a list of weekdays such as [\"mon\", \"wed\"]"
                    ))),
                }
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Days, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    let s = s.trim().to_ascii_lowercase();
                    let Some((_, w)) = WEEKDAY_NAMES.iter().find(|(n, _)| *n == s) else {
                        return Err(serde::de::Error::custom(format!(
                            "`{s}` is not a weekday: use mon, tue, wed, thu, fri, sat, sun"
                        )));
                    };
                    if !out.contains(w) {
                        out.push(*w);
                    }
                }
                if out.is_empty() {
                    return Err(serde::de::Error::custom("the list of weekdays is empty"));
                }
                Ok(Days::Weekdays(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A chime before or after a programme: `"chime"` (built in) or an asset
/// `"sha256:<64 hex>"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Chime {
    /// The built-in two-tone chime.
    Builtin,
    /// An uploaded asset, `sha256:<64 hex>`.
    Asset(String),
}

impl fmt::Display for Chime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Chime::Builtin => f.write_str("chime"),
            Chime::Asset(a) => f.write_str(a),
        }
    }
}

impl Serialize for Chime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Chime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == "chime" {
            return Ok(Chime::Builtin);
        }
        check_asset(&s).map_err(serde::de::Error::custom)?;
        Ok(Chime::Asset(s))
    }
}

pub(super) fn check_asset(s: &str) -> Result<(), ValueError> {
    match s.strip_prefix("sha256:") {
        Some(hex) if crate::broadcast::valid_asset_id(hex) => Ok(()),
        _ => Err(ValueError::Asset(s.to_string())),
    }
}

/// One part of a programme: `{ tts = "text" }` or `{ asset = "sha256:…" }`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Item {
    /// Text read out by the TTS command (at most 1000 characters).
    Tts(String),
    /// An uploaded audio asset, `sha256:<64 hex>`.
    Asset(String),
}

/// Why a value of the timetable could not be read from its text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not `HH:MM` or `HH:MM:SS`.
    #[error("`{0}` is not a time of day: write HH:MM, e.g. 07:30")]
    Time(String),
    /// Not `YYYY-MM-DD`.
    #[error("`{0}` is not a date: write YYYY-MM-DD, e.g. 2026-03-01")]
    DateFormat(String),
    /// `YYYY-MM-DD`, but no such day.
    #[error("`{0}` is not a date of the calendar")]
    NotADate(String),
    /// Not a duration such as `1m30s`.
    #[error("`{0}` is not a duration: write e.g. 30s, 2m, 1m30s or 1h")]
    Duration(String),
    /// Not `sha256:<64 hex>`.
    #[error(
        "`{0}` is not an asset: write sha256: and the 64 lower-case hex digits of an uploaded asset"
    )]
    Asset(String),
    /// Not `skip` or `play-within:DURATION`.
    #[error("`{0}` is not `skip` or `play-within:DURATION` (e.g. play-within:10m)")]
    Missed(String),
    /// `play-within` of 0 or over 24 h.
    #[error("`{0}`: play-within must be more than 0 and at most 24h")]
    PlayWithin(String),
    /// The document could not be written as TOML.
    #[error("{0}")]
    Toml(String),
}

impl ValueError {
    /// [`ErrorKind::Invalid`], but [`ErrorKind::Internal`] for a document
    /// that cannot be written out.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ValueError::Toml(_) => ErrorKind::Internal,
            _ => ErrorKind::Invalid,
        }
    }
}
