//! Rules against hand-checked calendars: weekly, monthly, yearly, COUNT,
//! INTERVAL, UNTIL, BYSETPOS, impossible and pathological rules, DST.

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
    let r = RRule::parse("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=31;BYHOUR=0,1,2,3;BYMINUTE=0,15,30,45")
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
