//! The timetable: schemes, target groups, quiet hours, programmes and
//! schedules, read from a TOML file or built from parts (the HTTP API), then
//! validated once. A valid [`Timetable`] expands into [`Occurrence`](super::Occurrence)s,
//! resolves targets to horns and answers which horns are in quiet hours.
//!
//! Every error names the key path (`schedule[2].programme`) and, when the
//! timetable came from text, the line. The file format is in
//! `docs/schedules.md`; `config/timetable.example.toml` is annotated.
//!
//! | module | owns |
//! |---|---|
//! | this file | [`Timetable`]: reading, building and the accessors; the limits |
//! | [`values`] | small value types and their text forms: times, dates, durations, days, chimes, items |
//! | [`model`] | the document as written: [`Parts`], [`Programme`], [`Schedule`], groups, quiet hours |
//! | [`error`] | [`TimetableError`]: key path and line of what is wrong |
//! | [`validate`] | the checks of [`Timetable::from_parts`]: ids, references, group cycles, never-firing schedules |
//! | [`expand`] | occurrences in a range, the next one, targets → horns, quiet horns |

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use jiff::tz::TimeZone;
use serde::Serialize;

use super::calendar::Calendar;
use super::rrule;
use crate::broadcast::Target;

pub mod error;
pub mod expand;
pub mod model;
pub mod validate;
pub mod values;

pub use error::TimetableError;
pub use model::{Group, Parts, Programme, QuietHours, Schedule, Scheme};
pub use values::{Chime, Days, Item, LocalTime, ValueError, format_duration, parse_duration};

use error::{Locator, fault};

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
}
