//! The timetable as a whole: parsing and validation with lines, expansion,
//! calendars, schemes, groups, quiet hours, parts and DST zones.

use super::*;

/// A swapped working day (Saturday marked `work`) makes a `workdays`
/// schedule fire that Saturday, and a holiday Monday silences it.
#[test]
fn swapped_working_day_fires_and_holiday_does_not() {
    let cal =
        Calendar::parse("2026-02-14 work 春节调休\n2026-02-15..2026-02-23 rest 春节\n").unwrap();
    let t = tt(BASE).with_calendar(cal).unwrap();
    let occ = t.occurrences(sh(2026, 2, 9, 0, 0), sh(2026, 3, 2, 0, 0), None);
    let days: Vec<i8> = occ.iter().map(|o| o.local.day()).collect();
    assert_eq!(days, [9, 10, 11, 12, 13, 14, 24, 25, 26, 27]);
    assert_eq!(occ[5].local, datetime(2026, 2, 14, 7, 30, 0, 0)); // Saturday
    assert_eq!(
        occ[0].at,
        "2026-02-08T23:30:00Z".parse::<Timestamp>().unwrap()
    );
    // Without the calendar it is the plain week.
    let plain = tt(BASE).occurrences(sh(2026, 2, 9, 0, 0), sh(2026, 3, 2, 0, 0), None);
    assert_eq!(plain.len(), 15);
    assert!(!plain.iter().any(|o| o.local.day() == 14));
    // rest-days is the complement.
    let rest = tt(&BASE.replace("\"workdays\"", "\"rest-days\""))
        .with_calendar(Calendar::parse("2026-02-14 work\n2026-02-16 rest\n").unwrap())
        .unwrap();
    let occ = rest.occurrences(sh(2026, 2, 14, 0, 0), sh(2026, 2, 17, 0, 0), None);
    assert_eq!(dates(&occ), ["02-15 07:30 morning", "02-16 07:30 morning"]);
}

/// The example timetable and calendar in `config/` load together.
#[test]
fn example_timetable_loads() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/timetable.example.toml"
    );
    let t = Timetable::load(std::path::Path::new(path), "UTC").unwrap();
    assert_eq!(t.time_zone_name(), "Asia/Shanghai");
    assert_eq!(t.active_scheme(), Some("winter"));
    assert!(t.calendar().covers(2026));
    let p = t.programme("morning-news").unwrap();
    assert_eq!(p.name, "早间政策广播");
    assert_eq!(p.repeat, 2);
    assert_eq!(p.interval, Duration::from_secs(30));
    assert_eq!(p.pre_chime, Some(Chime::Builtin));
    // The 春节 swap: Saturday 14 February works, Monday 16 rests.
    let occ = t.occurrences(sh(2026, 2, 14, 0, 0), sh(2026, 2, 17, 0, 0), None);
    assert_eq!(
        dates(&occ),
        [
            "02-14 07:30 workday-morning",
            "02-15 09:00 rest-day-fire-safety",
            "02-15 16:00 rest-day-fire-safety",
            "02-16 09:00 rest-day-fire-safety",
            "02-16 16:00 rest-day-fire-safety",
            "02-16 19:30 evening-mon-thu",
        ]
    );
    assert_eq!(occ[0].missed, Missed::PlayWithin(Duration::from_secs(600)));
    assert_eq!(occ[1].priority, Priority::Township);
    // It survives a round trip through TOML written by the model.
    let dir = tempfile::tempdir().unwrap();
    let cal = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/workdays-cn-2026.example.txt"
    );
    std::fs::copy(cal, dir.path().join("workdays-cn-2026.example.txt")).unwrap();
    let copy = dir.path().join("tt.toml");
    std::fs::write(&copy, t.parts().to_toml().unwrap()).unwrap();
    let again = Timetable::load(&copy, "UTC").unwrap();
    assert_eq!(again.parts(), t.parts());
    assert_eq!(again.calendar(), t.calendar());
    let back = Timetable::from_parts(t.parts().clone(), t.calendar().clone(), SH).unwrap();
    assert_eq!(back.parts(), t.parts());
}

/// Each mistake names its key path and the line marked `# <-`.
#[test]
fn validation_errors_name_path_and_line() {
    let cases = validation_cases();
    let mut failures = Vec::new();
    for (text, path, msg) in &cases {
        let want_line = text.lines().position(|l| l.contains("# <-")).map(|i| i + 1);
        let e = match Timetable::parse(text, SH) {
            Ok(_) => {
                failures.push(format!("accepted:\n{text}"));
                continue;
            }
            Err(e) => e,
        };
        let shown = e.to_string();
        let line_shown = want_line.is_none_or(|l| {
            shown.contains(&format!("(line {l})")) || shown.starts_with(&format!("line {l}:"))
        });
        if e.path != *path || !e.message.contains(msg) || e.line != want_line || !line_shown {
            failures.push(format!(
                "want {path} / line {want_line:?} / {msg}\n got {} / line {:?} / {shown}",
                e.path, e.line
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // active_scheme missing: no line to point at, but the key is named.
    let e = Timetable::parse("[[scheme]]\nid = \"winter\"\n", SH).unwrap_err();
    assert_eq!(e.path, "active_scheme");
    assert!(e.message.contains("required"), "{e}");
}

/// The mistakes of [`validation_errors_name_path_and_line`]: the text (the
/// faulty line marked `# <-`), the key path and part of the message.
fn validation_cases() -> Vec<(String, &'static str, &'static str)> {
    let sched = |body: &str| {
        format!(
            "{PROGRAMME}\n[[schedule]]\nid = \"s\"\nprogramme = \"news\"\ntargets = [\"all\"]\n{body}\n"
        )
    };
    vec![
        (sched("at = [\"07:30\"]\ncolour = \"red\" # <-"), "schedule[0].colour", "unknown field `colour`"),
        (
            format!("{PROGRAMME}\n[[schedule]]\nid = \"s\"\nprogramme = \"nope\" # <-\ntargets = [\"all\"]\nat = [\"07:30\"]\n"),
            "schedule[0].programme",
            "no [[programme]] with id `nope`",
        ),
        (
            format!("{PROGRAMME}\n[[programme]]\nid = \"news\" # <-\nitems = [{{ tts = \"x\" }}]\n"),
            "programme[1].id",
            "defined twice",
        ),
        ("[[programme]]\nid = \"p\"\nitems = [] # <-\n".into(), "programme[0].items", "is empty"),
        (
            format!("[[programme]]\nid = \"p\"\nitems = [{{ tts = \"{}\" }}] # <-\n", "广".repeat(1001)),
            "programme[0].items[0]",
            "1001 characters",
        ),
        (
            "[[programme]]\nid = \"p\"\nitems = [{ asset = \"sha256:abc\" }] # <-\n".into(),
            "programme[0].items[0]",
            "not an asset",
        ),
        (
            "[[programme]]\nid = \"p\"\nitems = [{ text = \"x\" }] # <-\n".into(),
            "programme[0].items[0]",
            "unknown variant `text`",
        ),
        (
            "[[programme]]\nid = \"p\"\nitems = [{ tts = \"x\" }]\nrepeat = 21 # <-\n".into(),
            "programme[0].repeat",
            "1 to 20",
        ),
        (
            "[[programme]]\nid = \"p\"\nitems = [{ tts = \"x\" }]\ninterval = \"30 s\" # <-\n".into(),
            "programme[0].interval",
            "not a duration",
        ),
        (
            "[[programme]]\nid = \"p\"\nitems = [{ tts = \"x\" }]\npriority = \"urgent\" # <-\n".into(),
            "programme[0].priority",
            "urgent",
        ),
        (sched("at = [\"7:75\"] # <-"), "schedule[0].at[0]", "not a time of day"),
        (sched("at = [\"07:30\", \"07:30\"] # <-"), "schedule[0].at[1]", "listed twice"),
        (
            sched("at = [\"07:30\"]\nrrule = \"FREQ=DAILY;BYHOUR=8\" # <-"),
            "schedule[0].rrule",
            "not both",
        ),
        (
            format!("{PROGRAMME}\n[[schedule]] # <-\nid = \"s\"\nprogramme = \"news\"\ntargets = [\"all\"]\n"),
            "schedule[0]",
            "says no time",
        ),
        (
            format!("{PROGRAMME}\n[[schedule]]\nid = \"s\"\nprogramme = \"news\"\ntargets = [\"town:x\"] # <-\nat = [\"07:30\"]\n"),
            "schedule[0].targets[0]",
            "`town` is not a target kind",
        ),
        (
            format!("{PROGRAMME}\n[[schedule]]\nid = \"s\"\nprogramme = \"news\"\ntargets = [] # <-\nat = [\"07:30\"]\n"),
            "schedule[0].targets",
            "is empty",
        ),
        (
            format!("{PROGRAMME}\n[[schedule]]\nid = \"s\"\nprogramme = \"news\"\ntargets = [\"all\", \"group:nope\"] # <-\nat = [\"07:30\"]\n"),
            "schedule[0].targets[1]",
            "no [[group]] named `nope`",
        ),
        (sched("at = [\"07:30\"]\nscheme = \"summer\" # <-"), "schedule[0].scheme", "no [[scheme]]"),
        (sched("at = [\"07:30\"]\ndays = \"weekdays\" # <-"), "schedule[0].days", "`weekdays` is not"),
        (sched("at = [\"07:30\"]\ndays = [\"mon\", \"funday\"] # <-"), "schedule[0].days", "`funday` is not a weekday"),
        (
            sched("at = [\"07:30\"]\nfrom = \"2026-03-01\"\nuntil = \"2026-02-01\" # <-"),
            "schedule[0].until",
            "before `from`",
        ),
        (sched("at = [\"07:30\"]\nfrom = \"2026-02-30\" # <-"), "schedule[0].from", "not a date"),
        (sched("at = [\"07:30\"]\nmissed = \"later\" # <-"), "schedule[0].missed", "play-within"),
        (sched("rrule = \"FREQ=DAILY;BYSECOND=1\" # <-"), "schedule[0].rrule", "BYSECOND"),
        (
            sched("rrule = \"FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30;BYHOUR=8\" # <-"),
            "schedule[0].rrule",
            "never fires",
        ),
        (sched("rrule = \"FREQ=WEEKLY;BYDAY=MO\" # <-"), "schedule[0].rrule", "BYHOUR"),
        (
            sched("from = \"2026-03-01\"\nuntil = \"2026-03-01\"\nrrule = \"FREQ=WEEKLY;BYDAY=MO;BYHOUR=8\" # <-"),
            "schedule[0].rrule",
            "after `until`",
        ),
        (
            sched("at = [\"08:00\"] # <-\ndays = [\"sat\", \"sun\"]\nfrom = \"2026-03-02\"\nuntil = \"2026-03-06\""),
            "schedule[0].at",
            "never fires",
        ),
        (
            sched("days = \"daily\" # <-\nrrule = \"FREQ=DAILY;BYHOUR=8\""),
            "schedule[0].days",
            "goes with `at`",
        ),
        ("timezone = \"Mars/Olympus\" # <-\n".into(), "timezone", "not an IANA time zone"),
        (
            "[[scheme]]\nid = \"winter\"\n[[scheme]]\nid = \"winter\" # <-\n".into(),
            "scheme[1].id",
            "defined twice",
        ),
        ("active_scheme = \"summer\" # <-\n".into(), "active_scheme", "no [[scheme]] entries"),
        (
            "[[quiet_hours]]\ntargets = [\"all\"]\nfrom = \"22:00\"\nto = \"22:00\" # <-\n".into(),
            "quiet_hours[0].to",
            "window is empty",
        ),
        (
            "[[group]]\nname = \"a\"\ntargets = [\"group:b\"] # <-\n[[group]]\nname = \"b\"\ntargets = [\"group:a\"]\n".into(),
            "group[0].targets",
            "a → b → a",
        ),
        (
            "[[group]]\nname = \"bad name\" # <-\ntargets = [\"all\"]\n".into(),
            "group[0].name",
            "letters, digits",
        ),
        ("x = [1,\ny = 2 # <-\n".into(), "", ""),
    ]
}

#[test]
fn load_names_the_file_and_resolves_the_calendar() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cal.txt"), "2026-03-07 work\n").unwrap();
    let text = format!("calendar = \"cal.txt\"\n{BASE}");
    let p = dir.path().join("tt.toml");
    std::fs::write(&p, &text).unwrap();
    let t = Timetable::load(&p, SH).unwrap();
    let occ = t.occurrences(sh(2026, 3, 7, 0, 0), sh(2026, 3, 8, 0, 0), None);
    assert_eq!(occ.len(), 1, "Saturday 7 March is a working day");

    std::fs::write(dir.path().join("cal.txt"), "2026-03-07 work\nnonsense\n").unwrap();
    let e = Timetable::load(&p, SH).unwrap_err();
    assert_eq!(e.path, "calendar");
    assert_eq!(e.line, Some(1));
    assert!(e.message.contains("cal.txt: line 2"), "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("{}: calendar (line 1)", p.display())),
        "{e}"
    );

    std::fs::write(&p, "id = 1\n").unwrap();
    let e = Timetable::load(&p, SH).unwrap_err();
    assert!(e.to_string().contains("tt.toml"), "{e}");
    assert!(e.message.contains("unknown field `id`"), "{e}");
}

#[test]
fn expansion_over_a_range() {
    let text = format!(
        "{PROGRAMME}
[[programme]]
id = \"alarm\"
items = [{{ tts = \"演练\" }}]
priority = \"emergency\"

[[schedule]]
id = \"b-daily\"
programme = \"news\"
targets = [\"all\"]
at = [\"18:00\", \"06:00\"]
from = \"2026-03-02\"
until = \"2026-03-04\"

[[schedule]]
id = \"a-mon-thu\"
programme = \"news\"
targets = [\"zone:east\"]
at = [\"18:00\"]
days = [\"mon\", \"thu\"]

[[schedule]]
id = \"drill\"
programme = \"alarm\"
targets = [\"all\"]
rrule = \"FREQ=YEARLY;BYMONTH=9;BYMONTHDAY=18;BYHOUR=10\"

[[schedule]]
id = \"off\"
programme = \"news\"
targets = [\"all\"]
at = [\"12:00\"]
enabled = false
"
    );
    let t = tt(&text);
    let occ = t.occurrences(sh(2026, 3, 1, 0, 0), sh(2026, 3, 6, 0, 0), None);
    assert_eq!(
        dates(&occ),
        [
            "03-02 06:00 b-daily",
            "03-02 18:00 a-mon-thu",
            "03-02 18:00 b-daily",
            "03-03 06:00 b-daily",
            "03-03 18:00 b-daily",
            "03-04 06:00 b-daily",
            "03-04 18:00 b-daily",
            "03-05 18:00 a-mon-thu",
        ]
    );
    assert_eq!(occ[1].targets, vec![Target::Zone("east".into())]);
    // The window is half open: an occurrence at `to` is left out.
    let occ = t.occurrences(sh(2026, 3, 2, 6, 0), sh(2026, 3, 2, 18, 0), None);
    assert_eq!(dates(&occ), ["03-02 06:00 b-daily"]);
    // The yearly drill, with its priority.
    let occ = t.occurrences(sh(2026, 9, 18, 0, 0), sh(2026, 9, 19, 0, 0), None);
    assert_eq!(dates(&occ), ["09-18 10:00 drill"]);
    assert_eq!(occ[0].priority, Priority::Emergency);
    // next_after is strictly after.
    let n = t.next_after(sh(2026, 3, 5, 18, 0)).unwrap();
    assert_eq!(
        (n.schedule.as_str(), n.local),
        ("a-mon-thu", datetime(2026, 3, 9, 18, 0, 0, 0))
    );
    let n = t.next_after(sh(2026, 9, 17, 19, 0)).unwrap();
    assert_eq!(
        (n.schedule.as_str(), n.local),
        ("drill", datetime(2026, 9, 18, 10, 0, 0, 0))
    );
    // A timetable of only a past, bounded schedule has no next.
    let past = tt(&format!(
        "{PROGRAMME}\n[[schedule]]\nid = \"s\"\nprogramme = \"news\"\ntargets = [\"all\"]\nat = [\"07:00\"]\nuntil = \"2026-01-01\"\n"
    ));
    assert!(past.next_after(sh(2026, 1, 2, 0, 0)).is_none());
    assert!(past.next_after(sh(2025, 12, 31, 8, 0)).is_some());
}

/// A whole year of ten daily schedules (each twice a day) expands fully
/// and in order.
#[test]
fn a_year_of_ten_schedules() {
    let mut text = PROGRAMME.to_string();
    for i in 0..10 {
        if i % 2 == 0 {
            text.push_str(&format!(
                "[[schedule]]\nid = \"s{i}\"\nprogramme = \"news\"\ntargets = [\"all\"]\nat = [\"07:{i:02}\", \"18:{i:02}\"]\n"
            ));
        } else {
            text.push_str(&format!(
                "[[schedule]]\nid = \"s{i}\"\nprogramme = \"news\"\ntargets = [\"all\"]\nrrule = \"FREQ=DAILY;BYHOUR=7,18;BYMINUTE={i}\"\n"
            ));
        }
    }
    let t = tt(&text);
    let occ = t.occurrences(sh(2026, 1, 1, 0, 0), sh(2027, 1, 1, 0, 0), None);
    assert_eq!(occ.len(), 365 * 2 * 10);
    assert!(occ.windows(2).all(|w| w[0].at < w[1].at));
    assert_eq!(occ[0].local, datetime(2026, 1, 1, 7, 0, 0, 0));
    assert_eq!(
        occ.last().unwrap().local,
        datetime(2026, 12, 31, 18, 9, 0, 0)
    );
}

/// Quiet hours that cross midnight, per horn.
#[test]
fn quiet_hours_across_midnight() {
    let text = format!(
        "{BASE}
[[quiet_hours]]
targets = [\"village:v1\"]
from = \"22:00\"
to = \"06:30\"

[[quiet_hours]]
targets = [\"speaker:h3\"]
from = \"12:00\"
to = \"13:30\"
"
    );
    let t = tt(&text);
    let horns = horns();
    let q = |h: i8, m: i8| -> Vec<String> {
        t.quiet_horns(datetime(2026, 3, 2, h, m, 0, 0), &horns)
            .into_iter()
            .collect()
    };
    assert_eq!(q(21, 59), Vec::<String>::new());
    assert_eq!(q(22, 0), ["h1", "h2"]);
    assert_eq!(q(23, 59), ["h1", "h2"]);
    assert_eq!(q(0, 0), ["h1", "h2"]);
    assert_eq!(q(6, 29), ["h1", "h2"]);
    assert_eq!(q(6, 30), Vec::<String>::new());
    assert_eq!(q(12, 0), ["h3"]);
    assert_eq!(q(13, 30), Vec::<String>::new());
}

#[test]
fn scheme_switching() {
    let text = format!(
        "active_scheme = \"winter\"
[[scheme]]
id = \"winter\"
name = \"冬季作息\"
[[scheme]]
id = \"summer\"
name = \"夏季作息\"
{PROGRAMME}
[[schedule]]
id = \"w\"
programme = \"news\"
targets = [\"all\"]
scheme = \"winter\"
at = [\"07:30\"]
[[schedule]]
id = \"s\"
programme = \"news\"
targets = [\"all\"]
scheme = \"summer\"
at = [\"07:00\"]
[[schedule]]
id = \"any\"
programme = \"news\"
targets = [\"all\"]
at = [\"12:00\"]
"
    );
    let t = tt(&text);
    let day = (sh(2026, 3, 2, 0, 0), sh(2026, 3, 3, 0, 0));
    let ids = |scheme: Option<&str>| -> Vec<String> {
        t.occurrences(day.0, day.1, scheme)
            .into_iter()
            .map(|o| o.schedule)
            .collect()
    };
    assert_eq!(ids(None), ["w", "any"]);
    assert_eq!(ids(Some("winter")), ["w", "any"]);
    assert_eq!(ids(Some("summer")), ["s", "any"]);
    // Switching the active scheme in the parts.
    let mut parts = t.parts().clone();
    parts.active_scheme = Some("summer".into());
    let t2 = Timetable::from_parts(parts, Calendar::default(), SH).unwrap();
    assert_eq!(
        t2.occurrences(day.0, day.1, None)
            .into_iter()
            .map(|o| o.schedule)
            .collect::<Vec<_>>(),
        ["s", "any"]
    );
}

#[test]
fn groups_resolve_recursively() {
    let text = format!(
        "{BASE}
[[group]]
name = \"schools\"
targets = [\"speaker:h3\", \"speaker:ghost\"]
[[group]]
name = \"river\"
targets = [\"grid:g2\", \"group:schools\"]
[[group]]
name = \"everything-river\"
targets = [\"group:river\", \"group:schools\"]
"
    );
    let t = tt(&text);
    let hs = horns();
    let r = |targets: &[&str]| -> Vec<String> {
        let ts: Vec<Target> = targets.iter().map(|s| s.parse().unwrap()).collect();
        t.resolve(&ts, &hs).into_iter().collect()
    };
    assert_eq!(r(&["group:schools"]), ["h3"]);
    assert_eq!(r(&["group:river"]), ["h2", "h3"]);
    assert_eq!(r(&["group:everything-river"]), ["h2", "h3"]);
    assert_eq!(r(&["zone:east"]), ["h1", "h3"]);
    assert_eq!(r(&["village:v2", "speaker:h1"]), ["h1", "h3", "h4"]);
    assert_eq!(r(&["all"]), ["h1", "h2", "h3", "h4"]);
    assert_eq!(r(&["speaker:ghost", "group:unknown"]), Vec::<String>::new());
    let unknown = t.unknown_targets(&hs);
    assert_eq!(unknown.len(), 1);
    assert_eq!(unknown[0].path, "group[0].targets[1]");
    assert_eq!(unknown[0].target, Target::Speaker("ghost".into()));
    // A group containing itself is refused.
    let e = Timetable::parse(
        "[[group]]\nname = \"a\"\ntargets = [\"all\", \"group:a\"]\n",
        SH,
    )
    .unwrap_err();
    assert!(e.message.contains("a → a"), "{e}");
}

/// The model goes through JSON one piece at a time, and back into a
/// timetable through `from_parts`, which validates it.
#[test]
fn parts_through_json() {
    let t = tt(BASE);
    let p: Programme = serde_json::from_str(
        r#"{"id":"fire","name":"防火","items":[{"tts":"小心火烛"},{"asset":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}],
            "post_chime":"chime","repeat":2,"interval":"1m30s","priority":"township","on_preempt":"drop"}"#,
    )
    .unwrap();
    assert_eq!(p.interval, Duration::from_secs(90));
    assert_eq!(p.on_preempt, crate::broadcast::OnPreempt::Drop);
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["interval"], "1m30s");
    assert_eq!(json["items"][0]["tts"], "小心火烛");
    let s: Schedule = serde_json::from_str(
        r#"{"id":"fire-weekly","programme":"fire","targets":["all"],"rrule":"FREQ=WEEKLY;BYDAY=SA;BYHOUR=9","missed":"play-within:15m","from":"2026-03-01"}"#,
    )
    .unwrap();
    assert_eq!(
        serde_json::to_value(&s).unwrap()["rrule"],
        "FREQ=WEEKLY;BYDAY=SA;BYHOUR=9"
    );
    assert!(
        serde_json::from_str::<Schedule>(
            r#"{"id":"x","programme":"p","targets":["all"],"colour":1}"#
        )
        .is_err()
    );

    let mut parts = t.parts().clone();
    parts.programmes.push(p);
    parts.schedules.push(s.clone());
    let t2 = Timetable::from_parts(parts.clone(), Calendar::default(), SH).unwrap();
    assert!(t2.validate().is_ok());
    let occ = t2.occurrences(sh(2026, 3, 7, 0, 0), sh(2026, 3, 8, 0, 0), None);
    assert_eq!(dates(&occ), ["03-07 09:00 fire-weekly"]);
    // TOML out and back in gives the same document.
    let back = tt(&parts.to_toml().unwrap());
    assert_eq!(back.parts(), &parts);

    // from_parts validates, naming the path without a line.
    let mut bad = parts;
    bad.schedules[1].programme = "gone".into();
    let e = Timetable::from_parts(bad, Calendar::default(), SH).unwrap_err();
    assert_eq!((e.path.as_str(), e.line), ("schedule[1].programme", None));
    assert_eq!(
        e.to_string(),
        "schedule[1].programme: there is no [[programme]] with id `gone`"
    );
}

/// Local times that do not exist (spring forward) are skipped; the repeated
/// hour (fall back) plays once, at its first instant.
#[test]
fn dst_zones() {
    let text = format!(
        "timezone = \"America/New_York\"\n{PROGRAMME}\n[[schedule]]\nid = \"s\"\nprogramme = \"news\"\ntargets = [\"all\"]\nat = [\"02:30\", \"01:30\"]\n"
    );
    let t = tt(&text);
    let from: Timestamp = "2026-03-07T00:00:00Z".parse().unwrap();
    let occ = t.occurrences(from, "2026-03-10T00:00:00Z".parse().unwrap(), None);
    let days: Vec<String> = occ
        .iter()
        .map(|o| o.local.strftime("%d %H:%M").to_string())
        .collect();
    assert_eq!(
        days,
        ["07 01:30", "07 02:30", "08 01:30", "09 01:30", "09 02:30"]
    );
    let occ = t.occurrences(
        "2026-11-01T04:00:00Z".parse().unwrap(),
        "2026-11-01T07:00:00Z".parse().unwrap(),
        None,
    );
    assert_eq!(occ.len(), 1);
    assert_eq!(
        occ[0].at,
        "2026-11-01T05:30:00Z".parse::<Timestamp>().unwrap()
    );
}
