//! The workday calendar: which dates are working days.
//!
//! China's working calendar moves days around public holidays (调休): a
//! Saturday can be a working day and a Wednesday a rest day. Operators keep
//! the calendar as a small text file, one entry a line:
//!
//! ```text
//! # comment
//! 2026-01-01 rest 元旦
//! 2026-01-04 work 元旦调休上班
//! 2026-02-15..2026-02-23 rest 春节
//! ```
//!
//! A line is a date or an inclusive range `START..END`, the word `rest`
//! (also `休`) or `work` (also `班`), and an optional note. Dates without an
//! entry follow the week: Monday to Friday work, Saturday and Sunday rest.
//! Parsing is pure; [`Calendar::load`] only reads the file it is given.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use jiff::ToSpan;
use jiff::civil::{Date, Weekday};

use crate::error::ErrorKind;

/// The largest calendar file accepted, bytes.
pub const MAX_FILE_BYTES: usize = 2 * 1024 * 1024;

/// The longest range one line may give, days.
pub const MAX_RANGE_DAYS: i32 = 366;

/// What an entry says about a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DayKind {
    /// A working day (工作日 / 调休上班).
    Work,
    /// A rest day (休息日 / 节假日).
    Rest,
}

impl DayKind {
    /// `work` or `rest`.
    pub fn as_str(self) -> &'static str {
        match self {
            DayKind::Work => "work",
            DayKind::Rest => "rest",
        }
    }
}

/// One date's entry: what it is, the note after the word, and its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Work or rest.
    pub kind: DayKind,
    /// The note after the word (may be empty), e.g. `春节`.
    pub note: String,
    /// The line of the file that gave it (1-based).
    pub line: usize,
}

/// A parsed workday calendar. `Calendar::default()` has no entries: Monday
/// to Friday work, weekends rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar {
    entries: BTreeMap<Date, Entry>,
    years: BTreeSet<i16>,
}

/// A calendar that could not be parsed. `line` is 1-based; 0 means the
/// whole file (too large, unreadable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct CalendarError {
    /// The file, when the calendar was read from one.
    pub file: Option<String>,
    /// The line at fault (1-based), 0 for the whole file.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl CalendarError {
    /// Always [`ErrorKind::Invalid`]: the calendar file is wrong or unreadable.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
}

impl fmt::Display for CalendarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}: ")?;
        }
        if self.line > 0 {
            write!(f, "line {}: ", self.line)?;
        }
        f.write_str(&self.message)
    }
}

fn err(line: usize, message: impl Into<String>) -> CalendarError {
    CalendarError {
        file: None,
        line,
        message: message.into(),
    }
}

/// Whether the plain week makes `weekday` a working day.
pub fn weekday_is_workday(weekday: Weekday) -> bool {
    !matches!(weekday, Weekday::Saturday | Weekday::Sunday)
}

fn parse_date(s: &str, line: usize) -> Result<Date, CalendarError> {
    let bad = || {
        err(
            line,
            format!("`{s}` is not a date: write YYYY-MM-DD, e.g. 2026-01-01"),
        )
    };
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Option<i32> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return Err(bad());
    };
    Date::new(y as i16, m as i8, d as i8).map_err(|_| {
        err(
            line,
            format!("`{s}` is not a date: there is no day {d} in month {m} of {y}"),
        )
    })
}

impl Calendar {
    /// Parses calendar text. Errors name the line and what is wrong.
    pub fn parse(text: &str) -> Result<Calendar, CalendarError> {
        if text.len() > MAX_FILE_BYTES {
            return Err(err(
                0,
                format!(
                    "the calendar is {} bytes; at most {MAX_FILE_BYTES} are accepted",
                    text.len()
                ),
            ));
        }
        let mut cal = Calendar::default();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let content = raw.trim_start_matches('\u{feff}').trim();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let mut words = content.splitn(3, char::is_whitespace);
            let when = words.next().unwrap_or_default();
            let Some(word) = words.next().map(str::trim).filter(|w| !w.is_empty()) else {
                return Err(err(
                    line,
                    format!("`{content}`: a date must be followed by `work` or `rest`"),
                ));
            };
            let note = words.next().unwrap_or_default().trim().to_string();
            let kind = match word {
                "work" | "班" => DayKind::Work,
                "rest" | "休" => DayKind::Rest,
                other => {
                    return Err(err(line, format!("`{other}` is not `work` or `rest`")));
                }
            };
            let (start, end) = match when.split_once("..") {
                Some((a, b)) => (parse_date(a, line)?, parse_date(b, line)?),
                None => {
                    let d = parse_date(when, line)?;
                    (d, d)
                }
            };
            if end < start {
                return Err(err(
                    line,
                    format!("the range {start}..{end} ends before it starts"),
                ));
            }
            let days = start
                .until(end)
                .map(|s| s.get_days() + 1)
                .unwrap_or(i32::MAX);
            if days > MAX_RANGE_DAYS {
                return Err(err(
                    line,
                    format!(
                        "the range {start}..{end} is {days} days long; at most {MAX_RANGE_DAYS} are allowed"
                    ),
                ));
            }
            for n in 0..days {
                let Ok(d) = start.checked_add(n.days()) else {
                    return Err(err(line, format!("{start} + {n} days is out of range")));
                };
                if let Some(prev) = cal.entries.get(&d) {
                    let what = if prev.kind == kind {
                        "is already given"
                    } else {
                        "conflicts with the entry"
                    };
                    let prev_desc = if prev.note.is_empty() {
                        prev.kind.as_str().to_string()
                    } else {
                        format!("{} {}", prev.kind.as_str(), prev.note)
                    };
                    return Err(err(
                        line,
                        format!("{d} {what} on line {} ({prev_desc})", prev.line),
                    ));
                }
                cal.years.insert(d.year());
                cal.entries.insert(
                    d,
                    Entry {
                        kind,
                        note: note.clone(),
                        line,
                    },
                );
            }
        }
        Ok(cal)
    }

    /// Reads and parses a calendar file; errors name the file.
    pub fn load(path: &Path) -> Result<Calendar, CalendarError> {
        let name = path.display().to_string();
        let with_file = |mut e: CalendarError| {
            e.file = Some(name.clone());
            e
        };
        let meta =
            std::fs::metadata(path).map_err(|e| with_file(err(0, format!("cannot read: {e}"))))?;
        if meta.len() > MAX_FILE_BYTES as u64 {
            return Err(with_file(err(
                0,
                format!(
                    "the calendar is {} bytes; at most {MAX_FILE_BYTES} are accepted",
                    meta.len()
                ),
            )));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| with_file(err(0, format!("cannot read: {e}"))))?;
        Calendar::parse(&text).map_err(with_file)
    }

    /// Whether `date` is a working day: its entry if there is one, else
    /// Monday to Friday.
    pub fn is_workday(&self, date: Date) -> bool {
        match self.entries.get(&date) {
            Some(e) => e.kind == DayKind::Work,
            None => weekday_is_workday(date.weekday()),
        }
    }

    /// The entry for `date`, if the file gives one.
    pub fn entry(&self, date: Date) -> Option<&Entry> {
        self.entries.get(&date)
    }

    /// Whether any entry falls in `year`. A year without entries follows the
    /// plain week, which is wrong around China's public holidays.
    pub fn covers(&self, year: i16) -> bool {
        self.years.contains(&year)
    }

    /// The years that have entries, ascending.
    pub fn years(&self) -> impl Iterator<Item = i16> + '_ {
        self.years.iter().copied()
    }

    /// Whether there are no entries at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of dates with an entry.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    const SAMPLE: &str = "\
# 2026
2026-01-01 rest 元旦
2026-01-04 work 元旦调休上班

2026-02-15..2026-02-23 rest 春节
2026-02-28 班
";

    #[test]
    fn entries_override_the_week() {
        let c = Calendar::parse(SAMPLE).unwrap();
        // Thursday holiday, Sunday working day.
        assert!(!c.is_workday(date(2026, 1, 1)));
        assert!(c.is_workday(date(2026, 1, 4)));
        // Plain week elsewhere.
        assert!(c.is_workday(date(2026, 1, 5)));
        assert!(!c.is_workday(date(2026, 1, 10)));
        // Every day of the range, both ends included.
        for d in 15..=23 {
            assert!(!c.is_workday(date(2026, 2, d)), "2026-02-{d}");
        }
        assert!(c.is_workday(date(2026, 2, 24)));
        assert!(c.is_workday(date(2026, 2, 28)));
        assert_eq!(c.entry(date(2026, 2, 17)).unwrap().note, "春节");
        assert_eq!(c.entry(date(2026, 2, 17)).unwrap().line, 5);
        assert_eq!(c.len(), 12);
        assert!(c.covers(2026));
        assert!(!c.covers(2027));
    }

    #[test]
    fn empty_calendar_is_the_plain_week() {
        let c = Calendar::parse("# nothing\n\n").unwrap();
        assert!(c.is_empty());
        assert!(!c.covers(2026));
        assert!(c.is_workday(date(2026, 1, 1)));
        assert!(!c.is_workday(date(2026, 1, 3)));
    }

    /// Each kind of mistake is reported on its own line number.
    #[test]
    fn errors_name_the_line() {
        let cases: &[(&str, usize, &str)] = &[
            ("2026-01-01 rest\n2026-13-01 rest\n", 2, "2026-13-01"),
            ("# c\n\n2026-02-30 rest\n", 3, "no day 30"),
            ("2026/01/01 rest\n", 1, "not a date"),
            ("2026-01-01 holiday 元旦\n", 1, "`holiday` is not"),
            ("2026-01-01\n", 1, "followed by `work` or `rest`"),
            ("2026-01-05..2026-01-01 rest\n", 1, "ends before it starts"),
            (
                "2026-01-01 rest\n2026-01-01 rest\n",
                2,
                "already given on line 1",
            ),
            (
                "2026-02-15..2026-02-23 rest\n#\n2026-02-20 work\n",
                3,
                "conflicts with the entry on line 1",
            ),
            ("2026-01-01..2027-01-02 rest\n", 1, "367 days"),
            ("2026-01-01..x rest\n", 1, "`x` is not a date"),
        ];
        for (text, line, want) in cases {
            let e = Calendar::parse(text).unwrap_err();
            assert_eq!(e.line, *line, "{text:?}: {e}");
            assert!(e.message.contains(want), "{text:?}: {e}");
            assert!(e.to_string().starts_with(&format!("line {line}: ")), "{e}");
        }
        // A full year is one range; one day more is not.
        assert!(Calendar::parse("2028-01-01..2028-12-31 rest\n").is_ok());
    }

    #[test]
    fn oversized_file_is_refused() {
        let big = "# x\n".repeat(MAX_FILE_BYTES / 4 + 1);
        let e = Calendar::parse(&big).unwrap_err();
        assert_eq!(e.line, 0);
        assert!(e.message.contains("at most"), "{e}");
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cal.txt");
        std::fs::write(&p, "2026-01-01 rest\nbad rest\n").unwrap();
        let e = Calendar::load(&p).unwrap_err();
        assert!(e.to_string().contains("cal.txt: line 2: "), "{e}");
        let e = Calendar::load(&dir.path().join("missing.txt")).unwrap_err();
        assert!(e.to_string().contains("cannot read"), "{e}");
    }

    /// The example shipped in `config/` parses and has 2026's swaps.
    #[test]
    fn example_calendar_parses() {
        let text = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../config/workdays-cn-2026.example.txt"
        ));
        let c = Calendar::parse(text).unwrap();
        assert!(c.covers(2026));
        assert!(!c.is_workday(date(2026, 1, 1)));
        assert!(c.is_workday(date(2026, 1, 4))); // Sunday, 元旦调休
        assert!(!c.is_workday(date(2026, 2, 16))); // Monday, 春节
        assert!(c.is_workday(date(2026, 2, 14))); // Saturday, 春节调休
        assert!(!c.is_workday(date(2026, 10, 7))); // Wednesday, 国庆
        assert!(c.is_workday(date(2026, 10, 10))); // Saturday
    }
}
