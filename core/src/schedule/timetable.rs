//! The timetable: schemes, target groups, quiet hours, programmes and
//! schedules, read from a TOML file or built from parts (the HTTP API), then
//! validated once. A valid [`Timetable`] expands into [`Occurrence`]s,
//! resolves targets to horns and answers which horns are in quiet hours.
//!
//! Every error names the key path (`schedule[2].programme`) and, when the
//! timetable came from text, the line. The file format is in
//! `docs/schedules.md`; `config/timetable.example.toml` is annotated.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::time::Duration;

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

use super::calendar::Calendar;
use super::rrule::{self, RRule};
use super::{HornInfo, Missed, Occurrence};
use crate::broadcast::{OnPreempt, Priority, Target};

/// Most characters of one `tts` item.
pub const MAX_TTS_CHARS: usize = 1000;
/// Most items in one programme.
pub const MAX_ITEMS: usize = 100;
/// Most times one schedule's `at` may list.
pub const MAX_AT: usize = rrule::MAX_TIMES_PER_DAY;
/// Longest silence between repeats.
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);
/// Largest timetable file, bytes.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

// ---------------------------------------------------------------------------
// Small value types and their text forms.

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
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a time of day: write HH:MM, e.g. 07:30");
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

fn parse_date(s: &str) -> Result<Date, String> {
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
        return Err(format!(
            "`{s}` is not a date: write YYYY-MM-DD, e.g. 2026-03-01"
        ));
    }
    s.parse::<Date>()
        .map_err(|_| format!("`{s}` is not a date of the calendar"))
}

fn de_opt_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
    let s = d.deserialize_any(StrOrTomlDatetime("a date such as \"2026-03-01\""))?;
    parse_date(&s).map(Some).map_err(serde::de::Error::custom)
}

/// Parses a duration such as `30s`, `2m`, `1m30s`, `1h` or `0`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let bad = || format!("`{s}` is not a duration: write e.g. 30s, 2m, 1m30s or 1h");
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

mod duration_text {
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

fn check_asset(s: &str) -> Result<(), String> {
    match s.strip_prefix("sha256:") {
        Some(hex) if crate::broadcast::valid_asset_id(hex) => Ok(()),
        _ => Err(format!(
            "`{s}` is not an asset: write sha256: and the 64 lower-case hex digits of an uploaded asset"
        )),
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

// ---------------------------------------------------------------------------
// The model.

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
/// assembles. [`Timetable::from_parts`] validates it.
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
    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string(self).map_err(|e| e.to_string())
    }
}

/// A timetable that failed to parse or validate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TimetableError {
    /// The file, when read from one.
    pub file: Option<String>,
    /// Key path, e.g. `schedule[2].programme`; empty for the whole document.
    pub path: String,
    /// Line in the file (1-based), when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for TimetableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut head = Vec::new();
        if let Some(file) = &self.file {
            head.push(file.clone());
        }
        if !self.path.is_empty() {
            head.push(self.path.clone());
        }
        let mut s = head.join(": ");
        if let Some(l) = self.line {
            if s.is_empty() {
                s = format!("line {l}");
            } else {
                s.push_str(&format!(" (line {l})"));
            }
        }
        if s.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{s}: {}", self.message)
        }
    }
}

/// A validation fault before it is given a line.
struct Fault {
    path: String,
    message: String,
}

fn fault(path: impl Into<String>, message: impl Into<String>) -> Fault {
    Fault {
        path: path.into(),
        message: message.into(),
    }
}

impl Fault {
    fn into_error(self, file: Option<&str>, loc: Option<&Locator<'_>>) -> TimetableError {
        TimetableError {
            file: file.map(str::to_string),
            line: loc.and_then(|l| l.line(&self.path)),
            path: self.path,
            message: self.message,
        }
    }
}

/// Finds the line of a key path in the TOML text.
struct Locator<'a> {
    text: &'a str,
    root: toml::de::DeTable<'a>,
}

enum Seg<'p> {
    Key(&'p str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Seg::Key(key));
        }
        while let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else { break };
            if let Ok(i) = r[..end].parse() {
                out.push(Seg::Index(i));
            }
            rest = &r[end + 1..];
        }
    }
    out
}

impl<'a> Locator<'a> {
    fn new(text: &'a str) -> Option<Self> {
        let root = toml::de::DeTable::parse(text).ok()?.into_inner();
        Some(Self { text, root })
    }

    /// The line of the deepest part of `path` present in the document.
    fn line(&self, path: &str) -> Option<usize> {
        use toml::de::DeValue;
        let mut span: Option<std::ops::Range<usize>> = None;
        let mut table = Some(&self.root);
        let mut array: Option<&[toml::Spanned<DeValue<'a>>]> = None;
        for seg in segments(path) {
            let next = match seg {
                Seg::Key(k) => table.and_then(|t| {
                    t.iter()
                        .find(|(key, _)| key.get_ref().as_ref() == k)
                        .map(|(key, v)| (key.span(), v))
                }),
                Seg::Index(i) => array.and_then(|a| a.get(i)).map(|v| (v.span(), v)),
            };
            let Some((key_span, v)) = next else { break };
            // A table's own span can cover its whole body: point at the key
            // (or array element) that led there instead.
            span = Some(match v.get_ref() {
                DeValue::Table(_) => key_span,
                _ => v.span(),
            });
            table = v.get_ref().as_table();
            array = v.get_ref().as_array().map(|a| &a[..]);
        }
        let span = span?;
        let before = self.text.get(..span.start.min(self.text.len()))?;
        Some(before.matches('\n').count() + 1)
    }
}

// ---------------------------------------------------------------------------
// The validated timetable.

/// A validated timetable. Build it with [`Timetable::parse`],
/// [`Timetable::load`] or [`Timetable::from_parts`].
#[derive(Debug, Clone)]
pub struct Timetable {
    parts: Parts,
    tz_name: String,
    tz: TimeZone,
    calendar: Calendar,
    /// Each group's members with nested groups expanded (no `Group`).
    groups: BTreeMap<String, Vec<Target>>,
}

/// A target in the timetable that names no known horn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnknownTarget {
    /// Where it is written, e.g. `schedule[1].targets[0]`.
    pub path: String,
    /// The target.
    pub target: Target,
}

fn valid_ident(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check_ident(path: &str, what: &str, s: &str) -> Result<(), Fault> {
    if valid_ident(s) {
        Ok(())
    } else {
        Err(fault(
            path,
            format!("{what} `{s}` must be 1-64 letters, digits, `-` or `_`"),
        ))
    }
}

/// An anchor for rules that do not depend on their start.
const ANCHOR: Date = Date::constant(2000, 1, 3);

impl Timetable {
    /// Parses and validates timetable text. `default_tz` is the IANA zone
    /// used when the file gives none. A `calendar` path is read relative to
    /// the current directory (use [`Timetable::load`] for files).
    pub fn parse(text: &str, default_tz: &str) -> Result<Timetable, TimetableError> {
        Self::parse_in(text, default_tz, None, None)
    }

    /// Reads, parses and validates a timetable file; `calendar` is resolved
    /// relative to the file's directory. Errors name the file.
    pub fn load(path: &Path, default_tz: &str) -> Result<Timetable, TimetableError> {
        let name = path.display().to_string();
        let whole = |message: String| TimetableError {
            file: Some(name.clone()),
            path: String::new(),
            line: None,
            message,
        };
        let meta = std::fs::metadata(path).map_err(|e| whole(format!("cannot read: {e}")))?;
        if meta.len() > MAX_FILE_BYTES as u64 {
            return Err(whole(format!(
                "the file is {} bytes; at most {MAX_FILE_BYTES} are accepted",
                meta.len()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| whole(format!("cannot read: {e}")))?;
        Self::parse_in(&text, default_tz, path.parent(), Some(&name))
    }

    fn parse_in(
        text: &str,
        default_tz: &str,
        base: Option<&Path>,
        file: Option<&str>,
    ) -> Result<Timetable, TimetableError> {
        let err = |path: String, line: Option<usize>, message: String| TimetableError {
            file: file.map(str::to_string),
            path,
            line,
            message,
        };
        if text.len() > MAX_FILE_BYTES {
            return Err(err(
                String::new(),
                None,
                format!(
                    "the timetable is {} bytes; at most {MAX_FILE_BYTES} are accepted",
                    text.len()
                ),
            ));
        }
        let toml_err = |path: String, e: &toml::de::Error| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let path = if path == "." { String::new() } else { path };
            err(path, line, e.message().trim().to_string())
        };
        let de = toml::Deserializer::parse(text).map_err(|e| toml_err(String::new(), &e))?;
        let parts: Parts = serde_path_to_error::deserialize(de)
            .map_err(|e| toml_err(e.path().to_string(), e.inner()))?;
        let loc = Locator::new(text);
        let calendar = match &parts.calendar {
            None => Calendar::default(),
            Some(p) => {
                let full = match base {
                    Some(b) => b.join(p),
                    None => Path::new(p).to_path_buf(),
                };
                Calendar::load(&full)
                    .map_err(|e| fault("calendar", e.to_string()).into_error(file, loc.as_ref()))?
            }
        };
        Self::build(parts, calendar, default_tz).map_err(|f| f.into_error(file, loc.as_ref()))
    }

    /// Validates a timetable assembled from parts (the HTTP API). Errors
    /// name the key path (`programme[0].items`) but no line.
    pub fn from_parts(
        parts: Parts,
        calendar: Calendar,
        default_tz: &str,
    ) -> Result<Timetable, TimetableError> {
        Self::build(parts, calendar, default_tz).map_err(|f| f.into_error(None, None))
    }

    /// Checks the timetable again (e.g. after the calendar file changed).
    pub fn validate(&self) -> Result<(), TimetableError> {
        Self::build(self.parts.clone(), self.calendar.clone(), &self.tz_name)
            .map(|_| ())
            .map_err(|f| f.into_error(None, None))
    }

    /// The same timetable with another workday calendar, validated again.
    pub fn with_calendar(self, calendar: Calendar) -> Result<Timetable, TimetableError> {
        Self::build(self.parts, calendar, &self.tz_name).map_err(|f| f.into_error(None, None))
    }

    /// The document as written.
    pub fn parts(&self) -> &Parts {
        &self.parts
    }

    /// The document, for editing and [`Timetable::from_parts`].
    pub fn into_parts(self) -> Parts {
        self.parts
    }

    /// The workday calendar.
    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    /// The time zone schedules are written in.
    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// Its IANA name, e.g. `Asia/Shanghai`.
    pub fn time_zone_name(&self) -> &str {
        &self.tz_name
    }

    /// The scheme in force, if there are schemes.
    pub fn active_scheme(&self) -> Option<&str> {
        self.parts.active_scheme.as_deref()
    }

    /// A programme by id.
    pub fn programme(&self, id: &str) -> Option<&Programme> {
        self.parts.programmes.iter().find(|p| p.id == id)
    }

    /// A schedule by id.
    pub fn schedule(&self, id: &str) -> Option<&Schedule> {
        self.parts.schedules.iter().find(|s| s.id == id)
    }

    fn build(parts: Parts, calendar: Calendar, default_tz: &str) -> Result<Timetable, Fault> {
        let tz_name = parts
            .timezone
            .clone()
            .unwrap_or_else(|| default_tz.to_string());
        let tz = TimeZone::get(&tz_name).map_err(|_| {
            fault(
                "timezone",
                format!("`{tz_name}` is not an IANA time zone (e.g. Asia/Shanghai)"),
            )
        })?;

        // Schemes.
        let mut schemes = BTreeSet::new();
        for (i, s) in parts.schemes.iter().enumerate() {
            let p = format!("scheme[{i}].id");
            check_ident(&p, "scheme id", &s.id)?;
            if !schemes.insert(s.id.as_str()) {
                return Err(fault(p, format!("scheme `{}` is defined twice", s.id)));
            }
        }
        match &parts.active_scheme {
            Some(a) if !schemes.contains(a.as_str()) => {
                let known: Vec<_> = schemes.iter().copied().collect();
                return Err(fault(
                    "active_scheme",
                    if known.is_empty() {
                        format!("`{a}` is not a scheme: there are no [[scheme]] entries")
                    } else {
                        format!("`{a}` is not a scheme: use one of {}", known.join(", "))
                    },
                ));
            }
            None if !schemes.is_empty() => {
                return Err(fault(
                    "active_scheme",
                    "is required when there are schemes: say which one is in force",
                ));
            }
            _ => {}
        }

        // Groups: names, references, cycles.
        let mut names = BTreeMap::new();
        for (i, g) in parts.groups.iter().enumerate() {
            let p = format!("group[{i}].name");
            check_ident(&p, "group name", &g.name)?;
            if names.insert(g.name.as_str(), i).is_some() {
                return Err(fault(p, format!("group `{}` is defined twice", g.name)));
            }
        }
        let check_targets = |path: &str, targets: &[Target]| -> Result<(), Fault> {
            if targets.is_empty() {
                return Err(fault(
                    path,
                    "is empty: give at least one target, e.g. \"all\"",
                ));
            }
            for (j, t) in targets.iter().enumerate() {
                if let Target::Group(g) = t
                    && !names.contains_key(g.as_str())
                {
                    return Err(fault(
                        format!("{path}[{j}]"),
                        format!("`{t}`: there is no [[group]] named `{g}`"),
                    ));
                }
            }
            Ok(())
        };
        for (i, g) in parts.groups.iter().enumerate() {
            check_targets(&format!("group[{i}].targets"), &g.targets)?;
        }
        let mut groups = BTreeMap::new();
        for (i, g) in parts.groups.iter().enumerate() {
            let mut leaves = BTreeSet::new();
            let mut stack = vec![g.name.clone()];
            expand_group(&parts.groups, &names, i, &mut stack, &mut leaves).map_err(|cycle| {
                fault(
                    format!("group[{i}].targets"),
                    format!("groups contain each other: {}", cycle.join(" → ")),
                )
            })?;
            groups.insert(g.name.clone(), leaves.into_iter().collect());
        }

        for (i, q) in parts.quiet_hours.iter().enumerate() {
            check_targets(&format!("quiet_hours[{i}].targets"), &q.targets)?;
            if q.from == q.to {
                return Err(fault(
                    format!("quiet_hours[{i}].to"),
                    format!("`from` and `to` are both {}: the window is empty", q.from),
                ));
            }
        }

        // Programmes.
        let mut programmes = BTreeSet::new();
        for (i, p) in parts.programmes.iter().enumerate() {
            let at = |k: &str| format!("programme[{i}].{k}");
            check_ident(&at("id"), "programme id", &p.id)?;
            if !programmes.insert(p.id.as_str()) {
                return Err(fault(
                    at("id"),
                    format!("programme `{}` is defined twice", p.id),
                ));
            }
            if p.items.is_empty() {
                return Err(fault(
                    at("items"),
                    "is empty: give at least one { tts = \"…\" } or { asset = \"sha256:…\" }",
                ));
            }
            if p.items.len() > MAX_ITEMS {
                return Err(fault(
                    at("items"),
                    format!("has {} items; at most {MAX_ITEMS}", p.items.len()),
                ));
            }
            for (j, item) in p.items.iter().enumerate() {
                let ip = format!("programme[{i}].items[{j}]");
                match item {
                    Item::Tts(t) => {
                        let n = t.trim().chars().count();
                        if n == 0 {
                            return Err(fault(ip, "the text to speak is empty"));
                        }
                        if n > MAX_TTS_CHARS {
                            return Err(fault(
                                ip,
                                format!(
                                    "the text is {n} characters; at most {MAX_TTS_CHARS} (split it into several items)"
                                ),
                            ));
                        }
                    }
                    Item::Asset(a) => check_asset(a).map_err(|m| fault(ip, m))?,
                }
            }
            if !(1..=20).contains(&p.repeat) {
                return Err(fault(
                    at("repeat"),
                    format!("{} is out of range: play the items 1 to 20 times", p.repeat),
                ));
            }
            if p.interval > MAX_INTERVAL {
                return Err(fault(
                    at("interval"),
                    format!("{} is longer than 1h", format_duration(p.interval)),
                ));
            }
            if let Some(v) = p.volume
                && v > 100
            {
                return Err(fault(at("volume"), format!("{v} is out of range 0-100")));
            }
        }

        // Schedules.
        let mut ids = BTreeSet::new();
        for (i, s) in parts.schedules.iter().enumerate() {
            let at = |k: &str| format!("schedule[{i}].{k}");
            check_ident(&at("id"), "schedule id", &s.id)?;
            if !ids.insert(s.id.as_str()) {
                return Err(fault(
                    at("id"),
                    format!("schedule `{}` is defined twice", s.id),
                ));
            }
            if !programmes.contains(s.programme.as_str()) {
                return Err(fault(
                    at("programme"),
                    format!("there is no [[programme]] with id `{}`", s.programme),
                ));
            }
            if let Some(sc) = &s.scheme
                && !schemes.contains(sc.as_str())
            {
                return Err(fault(
                    at("scheme"),
                    format!("there is no [[scheme]] with id `{sc}`"),
                ));
            }
            check_targets(&at("targets"), &s.targets)?;
            if let (Some(f), Some(u)) = (s.from, s.until)
                && u < f
            {
                return Err(fault(at("until"), format!("{u} is before `from` ({f})")));
            }
            match (&s.rrule, s.at.is_empty()) {
                (Some(_), false) => {
                    return Err(fault(
                        at("rrule"),
                        "give either `at` (with `days`) or `rrule`, not both",
                    ));
                }
                (None, true) => {
                    return Err(fault(
                        format!("schedule[{i}]"),
                        "says no time: give `at = [\"07:30\"]` (with `days`) or `rrule = \"FREQ=…\"`",
                    ));
                }
                (Some(r), true) => {
                    if s.days.is_some() {
                        return Err(fault(
                            at("days"),
                            "`days` goes with `at`; with `rrule` say the days in the rule (BYDAY)",
                        ));
                    }
                    if r.by_hour.is_empty() {
                        return Err(fault(
                            at("rrule"),
                            "say the time of day with BYHOUR (and BYMINUTE), e.g. BYHOUR=18;BYMINUTE=0",
                        ));
                    }
                    if s.from.is_none() && r.depends_on_start() {
                        return Err(fault(
                            at("from"),
                            "is required: this rule counts from its start (COUNT, INTERVAL, or a day taken from the start date)",
                        ));
                    }
                }
                (None, false) => {
                    if s.at.len() > MAX_AT {
                        return Err(fault(
                            at("at"),
                            format!("lists {} times; at most {MAX_AT}", s.at.len()),
                        ));
                    }
                    let mut seen = BTreeSet::new();
                    for (j, t) in s.at.iter().enumerate() {
                        if !seen.insert(*t) {
                            return Err(fault(
                                format!("schedule[{i}].at[{j}]"),
                                format!("{t} is listed twice"),
                            ));
                        }
                    }
                }
            }
        }

        let tt = Timetable {
            parts,
            tz_name,
            tz,
            calendar,
            groups,
        };
        for (i, s) in tt.parts.schedules.iter().enumerate() {
            tt.check_fires(s).map_err(|m| {
                fault(
                    format!(
                        "schedule[{i}].{}",
                        if s.rrule.is_some() { "rrule" } else { "at" }
                    ),
                    m,
                )
            })?;
        }
        Ok(tt)
    }

    /// Errors when a schedule can never fire.
    fn check_fires(&self, s: &Schedule) -> Result<(), String> {
        if let Some(r) = &s.rrule {
            let start = s.from.unwrap_or(ANCHOR).to_datetime(Time::midnight());
            let (first, _) = r.first(start, &self.tz).map_err(|e| e.to_string())?;
            if let Some(u) = s.until
                && first.date() > u
            {
                return Err(format!(
                    "never fires: the first time the rule gives is {first}, after `until` ({u})"
                ));
            }
            return Ok(());
        }
        let (Some(f), Some(u)) = (s.from, s.until) else {
            return Ok(());
        };
        let days = s.days.clone().unwrap_or_default();
        let mut d = f;
        while d <= u {
            if days.matches(d, &self.calendar)
                && s.at
                    .iter()
                    .any(|t| rrule::resolve_local(&self.tz, d.to_datetime(t.0)).is_some())
            {
                return Ok(());
            }
            match d.tomorrow() {
                Ok(n) => d = n,
                Err(_) => break,
            }
        }
        Err(format!(
            "never fires: no date from {f} to {u} is one of its days ({days})"
        ))
    }

    fn in_scheme(&self, s: &Schedule, scheme: Option<&str>) -> bool {
        match &s.scheme {
            None => true,
            Some(x) => scheme.or(self.active_scheme()) == Some(x.as_str()),
        }
    }

    /// Every time `s` fires with `from <= instant < to`, as (local, instant),
    /// in no particular order.
    pub fn schedule_between(
        &self,
        s: &Schedule,
        from: Timestamp,
        to: Timestamp,
    ) -> Vec<(DateTime, Timestamp)> {
        let mut out = Vec::new();
        if from >= to {
            return out;
        }
        let mut lo = self
            .tz
            .to_datetime(from)
            .date()
            .yesterday()
            .unwrap_or(Date::MIN);
        let mut hi = self
            .tz
            .to_datetime(to)
            .date()
            .tomorrow()
            .unwrap_or(Date::MAX);
        if let Some(f) = s.from {
            lo = lo.max(f);
        }
        if let Some(u) = s.until {
            hi = hi.min(u);
        }
        if lo > hi {
            return out;
        }
        if let Some(r) = &s.rrule {
            let start = s
                .from
                .unwrap_or_else(|| lo.yesterday().unwrap_or(lo))
                .to_datetime(Time::midnight());
            out.extend(
                r.between(start, &self.tz, from, to)
                    .into_iter()
                    .filter(|(dt, _)| dt.date() <= hi),
            );
            return out;
        }
        let days = s.days.as_ref().unwrap_or(&Days::Daily);
        let mut d = lo;
        loop {
            if days.matches(d, &self.calendar) {
                for t in &s.at {
                    let dt = d.to_datetime(t.0);
                    if let Some(ts) = rrule::resolve_local(&self.tz, dt)
                        && from <= ts
                        && ts < to
                    {
                        out.push((dt, ts));
                    }
                }
            }
            if d >= hi {
                break;
            }
            match d.tomorrow() {
                Ok(n) => d = n,
                Err(_) => break,
            }
        }
        out
    }

    /// Every occurrence with `from <= at < to` of the enabled schedules in
    /// `scheme` (default: the active scheme; schedules without a scheme are
    /// in every scheme), sorted by time, then schedule id.
    pub fn occurrences(
        &self,
        from: Timestamp,
        to: Timestamp,
        scheme: Option<&str>,
    ) -> Vec<Occurrence> {
        let mut out = Vec::new();
        for s in &self.parts.schedules {
            if !s.enabled || !self.in_scheme(s, scheme) {
                continue;
            }
            let Some(p) = self.programme(&s.programme) else {
                continue;
            };
            for (local, at) in self.schedule_between(s, from, to) {
                out.push(Occurrence {
                    schedule: s.id.clone(),
                    programme: s.programme.clone(),
                    at,
                    local,
                    targets: s.targets.clone(),
                    priority: p.priority,
                    missed: s.missed,
                });
            }
        }
        out.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.schedule.cmp(&b.schedule)));
        out
    }

    /// The first occurrence strictly after `ts` in the active scheme, looking
    /// up to 50 years ahead.
    pub fn next_after(&self, ts: Timestamp) -> Option<Occurrence> {
        let mut lo = ts.checked_add(SignedDuration::from_nanos(1)).ok()?;
        let mut span = SignedDuration::from_hours(24);
        let limit = ts
            .checked_add(SignedDuration::from_hours(
                24 * 366 * i64::from(rrule::NEVER_FIRES_YEARS),
            ))
            .unwrap_or(Timestamp::MAX);
        while lo < limit {
            let hi = lo.checked_add(span).unwrap_or(Timestamp::MAX).min(limit);
            if let Some(o) = self.occurrences(lo, hi, None).into_iter().next() {
                return Some(o);
            }
            lo = hi;
            span = span.checked_mul(4).unwrap_or(span);
        }
        None
    }

    fn leaves<'t>(&'t self, targets: &'t [Target]) -> Vec<&'t Target> {
        let mut out = Vec::new();
        for t in targets {
            match t {
                Target::Group(g) => {
                    if let Some(members) = self.groups.get(g) {
                        out.extend(members.iter());
                    }
                }
                other => out.push(other),
            }
        }
        out
    }

    /// The ids of the horns `targets` reach. Groups are expanded; targets
    /// naming no horn (an unknown speaker id) simply add nothing — see
    /// [`Timetable::unknown_targets`].
    pub fn resolve(&self, targets: &[Target], horns: &[HornInfo]) -> BTreeSet<String> {
        let leaves = self.leaves(targets);
        horns
            .iter()
            .filter(|h| leaves.iter().any(|t| h.matches(t)))
            .map(|h| h.id.clone())
            .collect()
    }

    /// Targets written in the timetable (groups, quiet hours, schedules)
    /// that reach no horn of `horns`: a mistyped speaker id, a village
    /// without horns.
    pub fn unknown_targets(&self, horns: &[HornInfo]) -> Vec<UnknownTarget> {
        let mut out = Vec::new();
        let mut scan = |path: String, targets: &[Target]| {
            for (j, t) in targets.iter().enumerate() {
                if matches!(t, Target::Group(_) | Target::All) {
                    continue;
                }
                if !horns.iter().any(|h| h.matches(t)) {
                    out.push(UnknownTarget {
                        path: format!("{path}[{j}]"),
                        target: t.clone(),
                    });
                }
            }
        };
        for (i, g) in self.parts.groups.iter().enumerate() {
            scan(format!("group[{i}].targets"), &g.targets);
        }
        for (i, q) in self.parts.quiet_hours.iter().enumerate() {
            scan(format!("quiet_hours[{i}].targets"), &q.targets);
        }
        for (i, s) in self.parts.schedules.iter().enumerate() {
            scan(format!("schedule[{i}].targets"), &s.targets);
        }
        out
    }

    /// The horns in a quiet-hours window at local time `local`.
    pub fn quiet_horns(&self, local: DateTime, horns: &[HornInfo]) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for q in &self.parts.quiet_hours {
            if q.contains(local.time()) {
                out.extend(self.resolve(&q.targets, horns));
            }
        }
        out
    }

    /// Expanded targets of `targets` (groups replaced by their members),
    /// deduplicated and sorted.
    pub fn expand_targets(&self, targets: &[Target]) -> BTreeSet<Target> {
        self.leaves(targets).into_iter().cloned().collect()
    }

    /// The years, in local time, that `[from, to)` touches.
    pub fn years_between(&self, from: Timestamp, to: Timestamp) -> Vec<i16> {
        if from >= to {
            return Vec::new();
        }
        let a = self.tz.to_datetime(from).year();
        let b = self
            .tz
            .to_datetime(to.checked_sub(SignedDuration::from_nanos(1)).unwrap_or(to))
            .year();
        (a..=b).collect()
    }

    /// Whether an enabled schedule in `scheme` (default: active) uses the
    /// workday calendar.
    pub fn uses_calendar(&self, scheme: Option<&str>) -> bool {
        self.parts.schedules.iter().any(|s| {
            s.enabled
                && self.in_scheme(s, scheme)
                && s.rrule.is_none()
                && s.days.as_ref().is_some_and(Days::uses_calendar)
        })
    }

    /// Whether the schedule is enabled and in `scheme` (default: active).
    pub fn is_live(&self, s: &Schedule, scheme: Option<&str>) -> bool {
        s.enabled && self.in_scheme(s, scheme)
    }

    /// Shifts a timestamp by whole days in local time (for callers building
    /// ranges such as "the next 7 days").
    pub fn add_days(&self, ts: Timestamp, days: i32) -> Option<Timestamp> {
        ts.to_zoned(self.tz.clone())
            .checked_add(days.days())
            .ok()
            .map(|z| z.timestamp())
    }
}

/// Depth-first expansion of group `i` into `leaves`; `Err` holds the cycle.
fn expand_group(
    all: &[Group],
    names: &BTreeMap<&str, usize>,
    i: usize,
    stack: &mut Vec<String>,
    leaves: &mut BTreeSet<Target>,
) -> Result<(), Vec<String>> {
    let Some(g) = all.get(i) else { return Ok(()) };
    for t in &g.targets {
        match t {
            Target::Group(name) => {
                if let Some(pos) = stack.iter().position(|s| s == name) {
                    let mut cycle = stack[pos..].to_vec();
                    cycle.push(name.clone());
                    return Err(cycle);
                }
                let Some(&j) = names.get(name.as_str()) else {
                    continue;
                };
                stack.push(name.clone());
                expand_group(all, names, j, stack, leaves)?;
                stack.pop();
            }
            other => {
                leaves.insert(other.clone());
            }
        }
    }
    Ok(())
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
