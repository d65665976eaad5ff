//! `check`: the occurrence table, its warnings, and two printouts for
//! eyeballing (ignored).

use super::*;

const CHECKED: &str = r#"
[[programme]]
id = "news"
items = [{ tts = "新闻" }]

[[programme]]
id = "notice"
items = [{ tts = "通知" }]
priority = "township"

[[programme]]
id = "music"
items = [{ tts = "音乐" }]
priority = "background"
on_preempt = "drop"

[[quiet_hours]]
targets = ["village:v1"]
from = "22:00"
to = "06:30"

[[schedule]]
id = "news-am"
programme = "news"
targets = ["all"]
at = ["07:30"]
days = "workdays"

[[schedule]]
id = "notice-am"
programme = "notice"
targets = ["zone:east"]
at = ["07:30"]
days = ["mon"]

[[schedule]]
id = "music-am"
programme = "music"
targets = ["village:v2"]
at = ["07:30"]
days = ["mon"]

[[schedule]]
id = "also-news"
programme = "news"
targets = ["speaker:h4"]
at = ["07:30"]
days = ["tue"]

[[schedule]]
id = "late"
programme = "news"
targets = ["village:v1"]
at = ["23:00"]

[[schedule]]
id = "lost"
programme = "news"
targets = ["speaker:ghost"]
at = ["10:00"]
days = ["wed"]

[[schedule]]
id = "autumn"
programme = "news"
targets = ["all"]
at = ["09:00"]
from = "2026-10-01"
"#;

#[test]
fn check_reports_occurrences_and_warnings() {
    let t = tt(CHECKED)
        .with_calendar(Calendar::parse("2026-03-03 rest\n").unwrap())
        .unwrap();
    let hs = horns();
    // Monday 2 to Wednesday 4 March 2026.
    let r = check(&t, sh(2026, 3, 2, 0, 0), sh(2026, 3, 5, 0, 0), &hs);
    let row = |s: &str, day: i8| {
        r.occurrences
            .iter()
            .find(|o| o.schedule == s && o.local.day() == day)
            .unwrap()
    };
    assert_eq!((row("news-am", 2).horns, row("news-am", 2).quiet), (4, 0));
    assert_eq!((row("late", 2).horns, row("late", 2).quiet), (2, 2));
    assert_eq!(row("lost", 4).horns, 0);
    // Tuesday is a holiday: news-am does not fire, so also-news has no overlap.
    assert!(
        !r.occurrences
            .iter()
            .any(|o| o.schedule == "news-am" && o.local.day() == 3)
    );

    let find = |kind: WarningKind, s: &str| -> Vec<&Warning> {
        r.warnings
            .iter()
            .filter(|w| w.kind == kind && w.schedules.iter().any(|x| x == s))
            .collect()
    };
    let pair = |a: &str, b: &str| -> &Warning {
        let v: Vec<&Warning> = find(WarningKind::Overlap, a)
            .into_iter()
            .filter(|w| w.schedules.iter().any(|x| x == b))
            .collect();
        assert_eq!(v.len(), 1, "{a} + {b}: {:#?}", r.warnings);
        v[0]
    };
    let m = &pair("notice-am", "news-am").message;
    assert!(m.contains("`notice-am` (township) preempts `news-am` (routine) on 2 shared horns; `news-am` resumes afterwards"), "{m}");
    // notice-am (zone:east = h1, h3) and music-am (village:v2 = h3, h4) share h3.
    let m = &pair("notice-am", "music-am").message;
    assert!(
        m.contains(
            "preempts `music-am` (background) on 1 shared horn; `music-am` is dropped there"
        ),
        "{m}"
    );
    let m = &pair("news-am", "music-am").message;
    assert!(m.contains("`news-am` (routine) preempts `music-am`"), "{m}");
    assert_eq!(
        r.warnings
            .iter()
            .filter(|w| w.kind == WarningKind::Overlap)
            .count(),
        3,
        "{:#?}",
        r.warnings
    );
    let quiet = find(WarningKind::QuietHours, "late");
    assert_eq!(quiet.len(), 1);
    assert_eq!(quiet[0].count, 3);
    assert_eq!(quiet[0].first, Some(datetime(2026, 3, 2, 23, 0, 0, 0)));
    assert_eq!(find(WarningKind::NoHorns, "lost").len(), 1);
    assert_eq!(find(WarningKind::NeverFires, "autumn").len(), 1);
    assert!(find(WarningKind::NeverFires, "news-am").is_empty());
    assert!(
        r.warnings
            .iter()
            .any(|w| w.kind == WarningKind::UnknownTarget && w.message.contains("speaker:ghost"))
    );
    assert!(
        !r.warnings
            .iter()
            .any(|w| w.kind == WarningKind::CalendarGap),
        "2026 is covered"
    );

    let text = r.to_string();
    assert!(text.contains("time (Asia/Shanghai)"), "{text}");
    assert!(text.contains("2026-03-02 Mon 07:30"), "{text}");
    assert!(text.contains("warnings:"), "{text}");
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["occurrences"][0]["schedule"], "music-am");
    assert_eq!(json["warnings"][0]["kind"], "overlap");
}

#[test]
fn check_equal_priority_waits_and_calendar_gap() {
    let text = format!(
        "{BASE}
[[schedule]]
id = \"zz-second\"
programme = \"news\"
targets = [\"village:v1\"]
at = [\"07:30\"]
"
    );
    let t = tt(&text)
        .with_calendar(Calendar::parse("2026-01-01 rest\n").unwrap())
        .unwrap();
    // 31 Dec 2026 to 2 Jan 2027: two years, 2027 not covered.
    let r = check(&t, sh(2026, 12, 31, 0, 0), sh(2027, 1, 2, 0, 0), &horns());
    let o: Vec<_> = r
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::Overlap)
        .collect();
    assert_eq!(o.len(), 1, "{:#?}", r.warnings);
    assert!(
        o[0].message
            .contains("both routine: `zz-second` waits until `morning` has finished"),
        "{}",
        o[0].message
    );
    assert_eq!(
        o[0].count, 2,
        "31 Dec and 1 Jan (not a covered holiday in 2027)"
    );
    let gaps: Vec<_> = r
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::CalendarGap)
        .collect();
    assert_eq!(gaps.len(), 1);
    assert!(
        gaps[0]
            .message
            .contains("does not cover 2027; weekends assumed"),
        "{}",
        gaps[0].message
    );

    // Without an inventory, overlaps are judged on targets.
    let r = check(&t, sh(2026, 12, 31, 0, 0), sh(2027, 1, 1, 0, 0), &[]);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.kind == WarningKind::Overlap && w.message.contains("overlapping targets"))
    );
    assert!(r.to_string().contains("no horn inventory"));
    // Disjoint targets do not overlap.
    let t = tt(&text.replace("targets = [\"all\"]", "targets = [\"village:v2\"]"));
    let r = check(&t, sh(2026, 12, 31, 0, 0), sh(2027, 1, 1, 0, 0), &horns());
    assert!(
        !r.warnings.iter().any(|w| w.kind == WarningKind::Overlap),
        "{:#?}",
        r.warnings
    );
}

/// Rough speed figure: `cargo test -p tgw --release --lib year_expansion_speed -- --ignored --nocapture`.
#[test]
#[ignore = "prints a timing; not an assertion"]
#[allow(clippy::disallowed_methods)] // a wall-clock timing printout, never asserted
fn year_expansion_speed() {
    let mut text = PROGRAMME.to_string();
    for i in 0..10 {
        text.push_str(&format!(
            "[[schedule]]\nid = \"s{i}\"\nprogramme = \"news\"\ntargets = [\"all\"]\nat = [\"07:{i:02}\"]\ndays = \"workdays\"\n"
        ));
    }
    let t = tt(&text);
    let start = std::time::Instant::now();
    let n = t
        .occurrences(sh(2026, 1, 1, 0, 0), sh(2027, 1, 1, 0, 0), None)
        .len();
    println!("{n} occurrences in {:?}", start.elapsed());
    let _ = BTreeSet::<u8>::new();
    let _ = date(2026, 1, 1);
}

#[test]
#[ignore = "prints the check table of the example for eyeballing"]
fn print_example_check() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/timetable.example.toml"
    );
    let t = Timetable::load(std::path::Path::new(path), SH).unwrap();
    println!(
        "{}",
        check(&t, sh(2026, 2, 13, 0, 0), sh(2026, 2, 17, 0, 0), &horns())
    );
    println!(
        "{}",
        check(&t, sh(2026, 12, 30, 0, 0), sh(2027, 1, 2, 0, 0), &[])
    );
}
