//! Tests of the timetable as a whole: parsing and validation with lines,
//! expansion, calendars, schemes, groups, quiet hours and `check`.
//! Calendar and RRULE details are tested in their own modules.
//!
//! | module | owns |
//! |---|---|
//! | this file | shared fixtures (`tt`, `sh`, `horns`…), the missed policy, horn matching |
//! | `timetables` | parsing, validation with lines, expansion, calendars, schemes, groups, quiet hours |
//! | `checks` | `tgw schedule check`: the occurrence table and its warnings |

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::{date, datetime};

use super::*;
use crate::broadcast::{Priority, Target};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

#[test]
fn missed_policy() {
    let at = ts("2026-03-02T07:30:00+08");
    let skip = Missed::Skip;
    let ten = "play-within:10m".parse::<Missed>().unwrap();
    assert_eq!(ten, Missed::PlayWithin(Duration::from_secs(600)));
    assert_eq!(ten.to_string(), "play-within:10m");
    // Early or on time: always.
    assert!(skip.should_play(at, ts("2026-03-02T07:29:00+08")));
    assert!(skip.should_play(at, ts("2026-03-02T07:31:00+08")));
    assert!(!skip.should_play(at, ts("2026-03-02T07:31:01+08")));
    assert!(ten.should_play(at, ts("2026-03-02T07:40:00+08")));
    assert!(!ten.should_play(at, ts("2026-03-02T07:40:01+08")));
    for bad in [
        "later",
        "play-within:",
        "play-within:0s",
        "play-within:25h",
        "play-within:5x",
    ] {
        assert!(bad.parse::<Missed>().is_err(), "{bad}");
    }
    let j = serde_json::to_string(&ten).unwrap();
    assert_eq!(j, "\"play-within:10m\"");
    assert_eq!(serde_json::from_str::<Missed>(&j).unwrap(), ten);
}

#[test]
fn horn_matches_targets() {
    let h = HornInfo {
        id: "horn-1".into(),
        village: Some("320115101".into()),
        grid: None,
        zone: Some("east".into()),
    };
    assert!(h.matches(&Target::All));
    assert!(h.matches(&Target::Village("320115101".into())));
    assert!(!h.matches(&Target::Village("320115102".into())));
    assert!(!h.matches(&Target::Grid("g".into())));
    assert!(h.matches(&Target::Zone("east".into())));
    assert!(h.matches(&Target::Speaker("horn-1".into())));
    assert!(!h.matches(&Target::Group("east".into())));
}

// Timetables.

const SH: &str = "Asia/Shanghai";

const PROGRAMME: &str = r#"
[[programme]]
id = "news"
name = "早间新闻"
items = [{ tts = "各位村民早上好" }]
"#;

const BASE: &str = r#"
[[programme]]
id = "news"
name = "早间新闻"
items = [{ tts = "各位村民早上好" }]

[[schedule]]
id = "morning"
programme = "news"
targets = ["all"]
at = ["07:30"]
days = "workdays"
"#;

pub(super) fn tt(text: &str) -> Timetable {
    match Timetable::parse(text, SH) {
        Ok(t) => t,
        Err(e) => panic!("{e}\n{text}"),
    }
}

/// The instant of a Shanghai local time.
fn sh(y: i16, m: i8, d: i8, h: i8, mi: i8) -> Timestamp {
    datetime(y, m, d, h, mi, 0, 0)
        .to_zoned(jiff::tz::TimeZone::get(SH).unwrap())
        .unwrap()
        .timestamp()
}

fn dates(occ: &[Occurrence]) -> Vec<String> {
    occ.iter()
        .map(|o| format!("{} {}", o.local.strftime("%m-%d %H:%M"), o.schedule))
        .collect()
}

/// Four horns: two in village v1 (grids g1, g2), two in v2; zone east
/// holds h1 and h3.
fn horns() -> Vec<HornInfo> {
    let h = |id: &str, village: Option<&str>, grid: Option<&str>, zone: Option<&str>| HornInfo {
        id: id.into(),
        village: village.map(Into::into),
        grid: grid.map(Into::into),
        zone: zone.map(Into::into),
    };
    vec![
        h("h1", Some("v1"), Some("g1"), Some("east")),
        h("h2", Some("v1"), Some("g2"), None),
        h("h3", Some("v2"), None, Some("east")),
        h("h4", Some("v2"), None, None),
    ]
}

mod checks;
mod timetables;
