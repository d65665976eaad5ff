//! The desk against the CAP fixtures of `tests/fixtures/cap`: config,
//! decisions, chains, areas, text and feeds.

use device_drivers::cap::{self, Alert, MsgType, Severity, Status};
use device_drivers::xml::{self, XmlError};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::area::point_in_polygon;
use super::*;
use crate::broadcast::{Ms, Priority, Target};

const ORANGE: &[u8] =
    include_bytes!("../../../tests/fixtures/cap/jiangning_rainstorm_orange_alert.xml");
const RED: &[u8] = include_bytes!("../../../tests/fixtures/cap/jiangning_rainstorm_red_update.xml");
const CANCEL: &[u8] = include_bytes!("../../../tests/fixtures/cap/jiangning_rainstorm_cancel.xml");
const DRILL: &[u8] =
    include_bytes!("../../../tests/fixtures/cap/jiangning_flood_drill_exercise.xml");
const HEAT: &[u8] = include_bytes!("../../../tests/fixtures/cap/jiangning_heat_yellow_expired.xml");
const BOMB: &[u8] = include_bytes!("../../../tests/fixtures/cap/hostile_billion_laughs.xml");

/// Milliseconds of a `+08:00` wall time on 2026-07-DD.
fn at(day: u8, hour: u8, min: u8) -> Ms {
    let t = OffsetDateTime::parse(
        &format!("2026-07-{day:02}T{hour:02}:{min:02}:00+08:00"),
        &Rfc3339,
    )
    .unwrap();
    to_ms(t)
}

/// 石塘村 (inside the rainstorm polygon and the drill circle), 西岗社区
/// (county code only), and a village of another county far north.
fn cfg() -> WarningsConfig {
    toml::from_str(
        r#"
        enabled = true
        [[areas]]
        village = "320115106201"
        geocodes = ["320115", "320115106201"]
        outline = [[31.730, 118.790], [31.740, 118.790], [31.740, 118.800], [31.730, 118.800]]
        [[areas]]
        village = "320115106202"
        targets = ["zone:xigang", "speaker:xg-1"]
        geocodes = ["320115106202"]
        [[areas]]
        village = "320116101201"
        geocodes = ["320116101201"]
        outline = [[32.30, 118.80], [32.31, 118.80], [32.31, 118.81], [32.30, 118.81]]
        "#,
    )
    .unwrap()
}

fn alert(b: &[u8]) -> Alert {
    cap::parse(b).unwrap()
}

fn handle(d: &mut Desk, b: &[u8], now: Ms) -> Decision {
    d.handle(&alert(b), sha256(b), now)
}

fn plan(d: Decision) -> Plan {
    match d {
        Decision::Play(p) => p,
        other => panic!("expected Play, got {other:?}"),
    }
}

fn reason(d: Decision) -> String {
    match d {
        Decision::Ignore { reason } => reason,
        other => panic!("expected Ignore, got {other:?}"),
    }
}

/// Edits a fixture's text (replace first occurrence).
fn edit(b: &[u8], from: &str, to: &str) -> Vec<u8> {
    let s = std::str::from_utf8(b).unwrap();
    assert!(s.contains(from), "fixture lacks {from}");
    s.replacen(from, to, 1).into_bytes()
}

#[test]
fn config_defaults_and_strictness() {
    let c: WarningsConfig = toml::from_str("").unwrap();
    assert_eq!(c, WarningsConfig::default());
    assert!(!c.enabled);
    assert_eq!(c.public_statuses, vec![Status::Actual]);
    assert!(c.test_targets.is_empty());
    assert_eq!(
        (c.repeat, c.interval_secs, c.chime, c.max_text),
        (3, 60, true, 600)
    );
    assert_eq!(
        c.severity_map.priority(Severity::Extreme),
        Priority::Emergency
    );
    assert_eq!(
        c.severity_map.priority(Severity::Severe),
        Priority::Emergency
    );
    assert_eq!(
        c.severity_map.priority(Severity::Moderate),
        Priority::Superior
    );
    assert_eq!(c.severity_map.priority(Severity::Minor), Priority::Township);
    assert_eq!(
        c.severity_map.priority(Severity::Unknown),
        Priority::Township
    );
    assert_eq!(c.mqtt_trust, MqttTrust::Signed);
    assert!(c.mqtt_senders.is_empty() && c.mqtt_sender_allowed("anyone"));
    assert_eq!((c.max_age_secs, c.max_future_secs), (3600, 300));
    assert!(c.validate().is_ok());
    let e = toml::from_str::<WarningsConfig>("enabeld = true").unwrap_err();
    assert!(e.to_string().contains("enabeld"), "{e}");
    let c: WarningsConfig = toml::from_str(
        r#"
        public_statuses = ["actual", "exercise"]
        test_targets = ["speaker:test-horn"]
        mqtt_topic = "county/320115/cap"
        [severity_map]
        moderate = "township"
        [[feeds]]
        url = "http://warn.example.cn/cap/atom.xml"
        "#,
    )
    .unwrap();
    assert_eq!(c.feeds[0].interval_secs, 60);
    assert_eq!(c.severity_map.moderate, Priority::Township);
    assert_eq!(c.severity_map.severe, Priority::Emergency);
    assert!(c.validate().is_ok());
    // https feeds are fetched over rustls (gateway base/https.rs).
    let mut tls = c.clone();
    tls.feeds[0].url = "https://warn.example.cn/cap/atom.xml".into();
    assert!(tls.validate().is_ok());
    tls.feeds[0].url = "ftp://warn.example.cn/cap/atom.xml".into();
    assert!(
        tls.validate()
            .unwrap_err()
            .to_string()
            .contains("http(s) URL")
    );
    assert!(cfg().validate().is_ok());
}

#[test]
fn config_validation_names_the_key() {
    let bad = |src: &str| {
        toml::from_str::<WarningsConfig>(src)
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string()
    };
    assert!(bad("public_statuses = [\"draft\"]").starts_with("warnings.public_statuses"));
    assert!(bad("repeat = 0").starts_with("warnings.repeat"));
    assert!(bad("mqtt_trust = \"broker\"").starts_with("warnings.mqtt_senders"));
    assert!(bad("max_age_secs = 10").starts_with("warnings.max_age_secs"));
    assert!(bad("max_future_secs = 7200").starts_with("warnings.max_future_secs"));
    let broker: WarningsConfig =
        toml::from_str("mqtt_trust = \"broker\"\nmqtt_senders = [\"county@example.cn\"]").unwrap();
    assert!(broker.validate().is_ok());
    assert!(broker.mqtt_sender_allowed("county@example.cn"));
    assert!(!broker.mqtt_sender_allowed("mallory@example.cn"));
    assert!(bad("max_text = 5").starts_with("warnings.max_text"));
    assert!(bad("[[feeds]]\nurl = \"ftp://x\"").starts_with("warnings.feeds[0].url"));
    assert!(bad("[[areas]]\nvillage = \"1\"").contains("geocodes or an outline"));
    assert!(
        bad("[[areas]]\nvillage = \"1\"\noutline = [[91.0, 1.0], [1.0, 1.0], [2.0, 2.0]]")
            .starts_with("warnings.areas[0].outline")
    );
    assert!(
        bad("[[areas]]\nvillage = \"1\"\ngeocodes = [\"3\"]")
            .starts_with("warnings.areas[0].geocodes")
    );
}

/// The orange warning plays at emergency priority on the villages of
/// the county it names, not on the other county's.
#[test]
fn orange_alert_plays_on_matching_villages() {
    let mut d = Desk::new(cfg());
    let p = plan(handle(&mut d, ORANGE, at(15, 9, 0)));
    assert_eq!(p.alert_id, "32011541600000_20260715083000");
    assert_eq!(
        p.broadcast_id,
        broadcast_id("32011541600000_20260715083000")
    );
    assert!(p.broadcast_id.starts_with("cap-") && p.broadcast_id.len() == 20);
    assert_eq!(p.priority, Priority::Emergency);
    assert_eq!(
        p.targets,
        vec![
            Target::Village("320115106201".into()),
            Target::Zone("xigang".into()),
            Target::Speaker("xg-1".into()),
        ]
    );
    assert!(
        p.text
            .starts_with("江宁区气象台发布暴雨橙色预警。\n江宁区气象台2026年")
    );
    assert!(p.text.chars().count() <= 600);
    assert!(p.text.contains("泥石流等灾害。"), "{}", p.text);
    assert_eq!((p.repeat, p.interval_ms, p.chime), (3, 60_000, true));
    assert_eq!(p.expires, Some(at(15, 20, 30)));
    assert_eq!(p.replaces, None);
    assert_eq!(
        (p.event.as_str(), p.severity, p.status),
        ("暴雨", Severity::Severe, Status::Actual)
    );
    assert_eq!(d.running(at(15, 9, 0)).len(), 1);
}

/// The same document again, or the same identifier with other content:
/// ignored, nothing replayed.
#[test]
fn duplicates_are_idempotent() {
    let mut d = Desk::new(cfg());
    plan(handle(&mut d, ORANGE, at(15, 9, 0)));
    assert!(reason(handle(&mut d, ORANGE, at(15, 9, 1))).starts_with("duplicate"));
    let changed = edit(ORANGE, "橙色预警</headline>", "橙色预警!</headline>");
    assert!(reason(handle(&mut d, &changed, at(15, 9, 2))).contains("different content"));
}

/// Update → replaces the orange broadcast; Cancel → stops the red one.
#[test]
fn update_replaces_and_cancel_stops() {
    let mut d = Desk::new(cfg());
    let orange = plan(handle(&mut d, ORANGE, at(15, 9, 0)));
    let red = plan(handle(&mut d, RED, at(15, 11, 1)));
    assert_eq!(red.replaces.as_deref(), Some(orange.broadcast_id.as_str()));
    assert_eq!(red.priority, Priority::Emergency);
    assert!(
        red.text
            .starts_with("江宁区气象台将暴雨橙色预警升级为暴雨红色预警")
    );
    assert_eq!(d.running(at(15, 11, 1)).len(), 1);
    match handle(&mut d, CANCEL, at(15, 18, 0)) {
        Decision::Cancel {
            alert_id,
            broadcast_id,
            reason,
        } => {
            assert_eq!(alert_id, "32011541600000_20260715180000");
            assert_eq!(broadcast_id, red.broadcast_id);
            assert!(reason.contains("cancelled by"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(d.running(at(15, 18, 0)).is_empty());
    assert!(reason(handle(&mut d, CANCEL, at(15, 18, 1))).starts_with("duplicate"));
}

/// A restart between the alert and its update: the snapshot carries
/// what is playing and what was seen.
#[test]
fn state_survives_restart() {
    let mut d = Desk::new(cfg());
    let orange = plan(handle(&mut d, ORANGE, at(15, 9, 0)));
    let json = serde_json::to_string(&d.snapshot()).unwrap();
    let mut d = Desk::restore(cfg(), serde_json::from_str(&json).unwrap()).unwrap();
    assert!(reason(handle(&mut d, ORANGE, at(15, 9, 5))).starts_with("duplicate"));
    let red = plan(handle(&mut d, RED, at(15, 11, 1)));
    assert_eq!(red.replaces, Some(orange.broadcast_id));
    let mut bad = d.snapshot();
    bad.version = 2;
    assert!(Desk::restore(cfg(), bad).is_err());
}

#[test]
fn update_and_cancel_of_unknown_alerts_are_ignored() {
    let mut d = Desk::new(cfg());
    let r = reason(handle(&mut d, RED, at(15, 11, 1)));
    assert!(
        r.contains("references unknown alert 南京市江宁区气象台,32011541600000_20260715083000"),
        "{r}"
    );
    let mut d = Desk::new(cfg());
    assert!(reason(handle(&mut d, CANCEL, at(15, 18, 0))).contains("references unknown alert"));
    // The right identifier from another sender is not a reference to it.
    let mut d = Desk::new(cfg());
    plan(handle(&mut d, ORANGE, at(15, 9, 0)));
    let spoof = edit(
        RED,
        "<references>南京市江宁区气象台,",
        "<references>某某台,",
    );
    assert!(reason(handle(&mut d, &spoof, at(15, 11, 1))).contains("unknown alert 某某台"));
}

/// A Cancel for an alert that was seen but never played stops nothing.
#[test]
fn cancel_of_an_alert_not_playing() {
    let mut c = cfg();
    c.areas.remove(0);
    c.areas.remove(0);
    let mut d = Desk::new(c);
    assert!(reason(handle(&mut d, ORANGE, at(15, 9, 0))).starts_with("no matching area"));
    assert!(reason(handle(&mut d, CANCEL, at(15, 18, 0))).contains("nothing is playing"));
}

/// An update whose urgency is Past (the all-clear some bureaus send)
/// stops the running broadcast instead of playing.
#[test]
fn update_that_no_longer_concerns_us_cancels() {
    let mut d = Desk::new(cfg());
    let orange = plan(handle(&mut d, ORANGE, at(15, 9, 0)));
    let past = edit(RED, "<urgency>Immediate", "<urgency>Past");
    match handle(&mut d, &past, at(15, 11, 1)) {
        Decision::Cancel {
            broadcast_id,
            reason,
            ..
        } => {
            assert_eq!(broadcast_id, orange.broadcast_id);
            assert!(reason.contains("urgency Past"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

/// Exercises never reach the public by default; with test targets they
/// play there only.
#[test]
fn exercise_plays_only_on_test_targets() {
    let now = at(16, 9, 1);
    let mut d = Desk::new(cfg());
    let r = reason(handle(&mut d, DRILL, now));
    assert!(r.contains("status Exercise is not public"), "{r}");
    let mut c = cfg();
    c.test_targets = vec!["speaker:test-horn".parse().unwrap()];
    let mut d = Desk::new(c.clone());
    let p = plan(handle(&mut d, DRILL, now));
    assert_eq!(p.targets, vec![Target::Speaker("test-horn".into())]);
    assert_eq!(
        (p.priority, p.status),
        (Priority::Superior, Status::Exercise)
    );
    // Made public on purpose: the matched villages.
    c.public_statuses.push(Status::Exercise);
    let mut d = Desk::new(c);
    let p = plan(handle(&mut d, DRILL, now));
    // The township code 320115106 covers both of its configured villages.
    assert_eq!(p.targets.len(), 3);
    assert_eq!(p.targets[0], Target::Village("320115106201".into()));
}

/// An Exercise cancel cannot stop an Actual broadcast.
#[test]
fn cancel_must_match_status() {
    let mut d = Desk::new(cfg());
    plan(handle(&mut d, ORANGE, at(15, 9, 0)));
    let drill_cancel = edit(CANCEL, "<status>Actual", "<status>Exercise");
    assert!(reason(handle(&mut d, &drill_cancel, at(15, 18, 0))).contains("status Exercise"));
    assert_eq!(d.running(at(15, 18, 0)).len(), 1);
}

#[test]
fn expired_never_starts_and_running_ones_lapse() {
    // The heat warning was sent at 11:00 on the 8th: a week of max_age lets
    // the expiry rule, not the staleness rule, answer.
    let week = || {
        let mut c = cfg();
        c.max_age_secs = 604_800;
        c
    };
    let mut d = Desk::new(week());
    let r = reason(handle(&mut d, HEAT, at(15, 9, 0)));
    assert!(r.starts_with("expired at 2026-07-08T19:00:00+08:00"), "{r}");
    // expires == now: never starts.
    let mut d = Desk::new(week());
    assert!(reason(handle(&mut d, HEAT, at(8, 19, 0))).starts_with("expired"));
    let mut d = Desk::new(week());
    plan(handle(&mut d, HEAT, at(8, 18, 59)));
    assert!(d.running(at(8, 19, 0)).is_empty());
}

/// `sent` 5 months before now (the attack of issue 12): ignored `stale`,
/// remembered, never played; sent beyond the future skew: ignored
/// `from-the-future` and not remembered, so it plays once it is in range.
#[test]
fn sent_outside_the_skew_limits_is_ignored() {
    let mut d = Desk::new(cfg());
    let old = edit(
        ORANGE,
        "<sent>2026-07-15T08:30:00",
        "<sent>2026-02-15T08:30:00",
    );
    let r = reason(handle(&mut d, &old, at(15, 9, 0)));
    assert!(
        r.starts_with("stale: sent 2026-02-15T08:30:00+08:00"),
        "{r}"
    );
    assert!(d.running(at(15, 9, 0)).is_empty());
    assert!(reason(handle(&mut d, &old, at(15, 9, 1))).starts_with("duplicate"));
    // One hour is the default limit: 61 minutes is too old, 59 is not.
    let mut d = Desk::new(cfg());
    let r = reason(handle(&mut d, ORANGE, at(15, 9, 31)));
    assert!(r.starts_with("stale:"), "{r}");
    let mut d = Desk::new(cfg());
    plan(handle(&mut d, ORANGE, at(15, 9, 29)));
    // Sent 10 minutes ahead of our clock: from the future (5 min allowed).
    let mut d = Desk::new(cfg());
    let r = reason(handle(&mut d, ORANGE, at(15, 8, 20)));
    assert!(
        r.starts_with("from-the-future: sent 2026-07-15T08:30:00+08:00"),
        "{r}"
    );
    assert!(!d.has_seen("32011541600000_20260715083000"));
    plan(handle(&mut d, ORANGE, at(15, 8, 26)));
    // The limits are configurable.
    let mut c = cfg();
    c.max_age_secs = 12 * 3600;
    plan(handle(&mut Desk::new(c), ORANGE, at(15, 20, 0)));
}

#[test]
fn status_msgtype_and_urgency_rules() {
    let mut d = Desk::new(cfg());
    let t = edit(ORANGE, "<status>Actual", "<status>Test");
    assert!(reason(handle(&mut d, &t, at(15, 9, 0))).contains("status Test"));
    let mut c = cfg();
    c.test_targets = vec![Target::All];
    let mut d = Desk::new(c);
    let s = edit(ORANGE, "<status>Actual", "<status>System");
    assert!(reason(handle(&mut d, &s, at(15, 9, 0))).contains("never played"));
    let a = edit(ORANGE, "<msgType>Alert", "<msgType>Ack");
    let a = edit(&a, "_20260715083000", "_20260715083001");
    assert!(reason(handle(&mut d, &a, at(15, 9, 0))).contains("msgType Ack"));
    let p = edit(ORANGE, "<urgency>Immediate", "<urgency>Past");
    let p = edit(&p, "_20260715083000", "_20260715083002");
    assert!(reason(handle(&mut d, &p, at(15, 9, 0))).contains("urgency Past"));
}

#[test]
fn geocode_matching_longest_prefix() {
    let c: WarningsConfig = toml::from_str(
        r#"
        [[areas]]
        village = "A"
        geocodes = ["320115"]
        [[areas]]
        village = "B"
        geocodes = ["320115106201"]
        [[areas]]
        village = "C"
        geocodes = ["320115106"]
        "#,
    )
    .unwrap();
    let d = Desk::new(c);
    let m = |g: &str| d.codes.matching(g);
    // A county-wide alert covers every configured code below it.
    assert_eq!(m("320115"), vec![0, 1, 2]);
    assert_eq!(m("320115000000"), vec![0, 1, 2]);
    // A township alert covers B and C; A's county code is not below it.
    assert_eq!(m("320115106000"), vec![1, 2]);
    // An exact village.
    assert_eq!(m("320115106201"), vec![1]);
    // A village nobody lists: the longest configured code above it.
    assert_eq!(m("320115106203"), vec![2]);
    assert_eq!(m("320115101203"), vec![0]);
    assert!(m("320116").is_empty());
    assert!(m("3").is_empty());
    assert_eq!(normalize_code(" 320100 "), "3201");
    assert_eq!(normalize_code("110000000000"), "11");
    assert_eq!(normalize_code("CN-JS"), "CN-JS");
}

/// A polygon-only alert (no geocode) reaches villages by outline.
#[test]
fn polygon_only_alert_matches_by_outline() {
    let no_geo = edit(
        ORANGE,
        "<geocode>\n        <valueName>行政区划代码</valueName>\n        <value>320115</value>\n      </geocode>",
        "",
    );
    let mut d = Desk::new(cfg());
    let p = plan(handle(&mut d, &no_geo, at(15, 9, 0)));
    assert_eq!(p.targets, vec![Target::Village("320115106201".into())]);
    // Moved far away: nothing.
    let far = edit(
        &no_geo,
        "31.80,118.70 31.80,118.95 31.62,118.95 31.62,118.70 31.80,118.70",
        "30.0,110.0 30.1,110.0 30.1,110.1 30.0,110.0",
    );
    let far = edit(&far, "_20260715083000", "_20260715083009");
    assert!(reason(handle(&mut d, &far, at(15, 9, 0))).starts_with("no matching area"));
}

#[test]
fn geometry() {
    let square = [(0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 0.0)];
    assert!(point_in_polygon((0.5, 0.5), &square));
    assert!(!point_in_polygon((1.5, 0.5), &square));
    // A plus sign: bars cross with no vertex inside the other.
    let h = [
        (0.4, -1.0),
        (0.4, 2.0),
        (0.6, 2.0),
        (0.6, -1.0),
        (0.4, -1.0),
    ];
    let v = [(-1.0, 0.4), (2.0, 0.4), (2.0, 0.6), (-1.0, 0.6)];
    assert!(polygons_intersect(&h, &v));
    let far = [(5.0, 5.0), (5.0, 6.0), (6.0, 6.0)];
    assert!(!polygons_intersect(&square, &far));
    // Nanjing – Shanghai is about 270 km.
    let km = haversine_km((32.06, 118.80), (31.23, 121.47));
    assert!((260.0..280.0).contains(&km), "{km}");
    // A circle whose centre is 2.2 km south of a long edge, with every
    // vertex more than 10 km away.
    let band = [
        (31.70, 118.60),
        (31.70, 119.00),
        (31.80, 119.00),
        (31.80, 118.60),
    ];
    assert!(circle_reaches((31.68, 118.80), 3.0, &band));
    assert!(!circle_reaches((31.68, 118.80), 2.0, &band));
    assert!(circle_reaches((31.75, 118.80), 0.1, &band));
}

/// The drill's 3.5 km circle reaches 石塘村's outline (given the
/// township code is unknown to a desk configured by outline only).
#[test]
fn circle_alert_matches_by_outline() {
    let mut c = cfg();
    c.public_statuses.push(Status::Exercise);
    c.areas[0].geocodes.clear();
    let mut d = Desk::new(c);
    let no_geo = edit(DRILL, "<value>320115106</value>", "<value>999999</value>");
    let p = plan(handle(&mut d, &no_geo, at(16, 9, 1)));
    assert_eq!(p.targets, vec![Target::Village("320115106201".into())]);
}

#[test]
fn language_preference_then_severity() {
    let s = std::str::from_utf8(ORANGE).unwrap();
    let (a, b) = (s.find("<info>").unwrap(), s.find("</info>").unwrap() + 7);
    let zh = &s[a..b];
    let en = zh
        .replace("zh-CN", "en-US")
        .replace("<severity>Severe", "<severity>Extreme")
        .replace(
            "江宁区气象台发布暴雨橙色预警</headline>",
            "Rainstorm orange warning</headline>",
        );
    let doc = format!("{}{en}{zh}{}", &s[..a], &s[b..]);
    let mut d = Desk::new(cfg());
    let p = plan(d.handle(
        &cap::parse(doc.as_bytes()).unwrap(),
        sha256(doc.as_bytes()),
        at(15, 9, 0),
    ));
    assert!(
        p.text.starts_with("江宁区气象台发布暴雨橙色预警"),
        "{}",
        p.text
    );
    assert_eq!(p.priority, Priority::Emergency);
    assert_eq!(p.severity, Severity::Severe);
}

#[test]
fn text_is_trimmed_on_sentence_boundaries() {
    let info = alert(ORANGE).infos.remove(0);
    let t = compose_text(&info, 120);
    assert!(t.chars().count() <= 120);
    assert!(t.ends_with('。') || t.ends_with('；'), "{t}");
    assert!(t.starts_with("江宁区气象台发布暴雨橙色预警。\n"));
    assert_eq!(trim_to_sentence("abc. def. ghi", 11), "abc. def.");
    // No sentence end in the second half: the last comma, then hard.
    assert_eq!(
        trim_to_sentence("一二三四五，六七八九十甲乙", 8),
        "一二三四五，"
    );
    assert_eq!(trim_to_sentence("一二三四五六七八九十", 4), "一二三四");
    // "3.5" is not a sentence end.
    assert_eq!(trim_to_sentence("rain 3.5 mm expected", 8), "rain 3.5");
    let mut empty = info.clone();
    empty.headline = None;
    empty.description = None;
    empty.instruction = None;
    assert_eq!(compose_text(&empty, 600), "暴雨");
}

#[test]
fn remembered_identifiers_are_capped() {
    let mut d = Desk::new(cfg());
    d.max_remembered = 3;
    let base = std::str::from_utf8(HEAT).unwrap();
    for i in 0..5 {
        let doc = base.replace("_20260708110000", &format!("_2026070811000{i}"));
        let _ = d.handle(&alert(doc.as_bytes()), sha256(doc.as_bytes()), at(15, 9, 0));
    }
    assert_eq!(d.snapshot().seen.len(), 3);
    assert!(!d.has_seen("32011541600000_20260708110000"));
    assert!(d.has_seen("32011541600000_20260708110004"));
}

#[test]
fn feed_single_alert() {
    let entries = parse_feed(ORANGE).unwrap();
    match &entries[..] {
        [FeedEntry::Alert { alert, sha256: h }] => {
            assert_eq!(alert.identifier, "32011541600000_20260715083000");
            assert_eq!(*h, sha256(ORANGE));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(parse_feed(BOMB), Err(FeedError::Xml(XmlError::Dtd)));
    assert!(matches!(parse_feed(b"<rss/>"), Err(FeedError::NotAFeed(n)) if n == "rss"));
    let bad = edit(ORANGE, "<status>Actual", "<status>Real");
    assert!(matches!(parse_feed(&bad), Err(FeedError::Cap(_))));
}

#[test]
fn atom_feed_with_embedded_escaped_and_linked_alerts() {
    let s = std::str::from_utf8(RED).unwrap();
    let alert_xml = &s[s.find("<alert").unwrap()..];
    let escaped = xml::escape(
        std::str::from_utf8(ORANGE)
            .unwrap()
            .split_once("?>")
            .unwrap()
            .1,
    )
    .to_string();
    let escaped = escaped.trim_start();
    let feed = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>江宁区预警信息</title>
  <entry><id>urn:e1</id><title>红色</title>
<content type="application/cap+xml">{alert_xml}</content></entry>
  <entry><id>urn:e2</id><content type="text">{escaped}</content></entry>
  <entry><id>urn:e3</id>
<link rel="self" href="https://warn.example.cn/atom.xml"/>
<link rel="alternate" type="application/cap+xml" href="https://warn.example.cn/cap/32011541600000_20260715180000.xml"/></entry>
  <entry><id>urn:e7</id><content><alert><identifier>y</identifier></alert></content></entry>
  <entry><id>urn:e4</id><link href="/relative.xml"/></entry>
  <entry><id>urn:e5</id><title>nothing</title></entry>
  <entry><id>urn:e6</id><content><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>x</identifier></alert></content></entry>
</feed>"#
    );
    let e = parse_feed(feed.as_bytes()).unwrap();
    assert_eq!(e.len(), 7);
    match &e[0] {
        FeedEntry::Alert { alert, sha256: h } => {
            assert_eq!(alert.msg_type, MsgType::Update);
            assert_eq!(*h, sha256(alert_xml.trim_end().as_bytes()));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&e[1], FeedEntry::Alert { alert, .. } if alert.identifier.ends_with("083000"))
    );
    assert_eq!(
        e[2],
        FeedEntry::Link {
            entry_id: Some("urn:e3".into()),
            url: "https://warn.example.cn/cap/32011541600000_20260715180000.xml".into()
        }
    );
    // An <alert> without its own xmlns inherits Atom's and is refused.
    assert!(matches!(&e[3], FeedEntry::Invalid { reason, .. } if reason.contains("namespace")));
    assert!(matches!(&e[4], FeedEntry::Invalid { reason, .. } if reason.contains("absolute")));
    assert!(matches!(&e[5], FeedEntry::Invalid { reason, .. } if reason.contains("neither")));
    assert!(
        matches!(&e[6], FeedEntry::Invalid { entry_id: Some(i), reason } if i == "urn:e6" && reason.contains("alert/sender"))
    );
}

#[test]
fn decisions_display() {
    let mut d = Desk::new(cfg());
    let s = handle(&mut d, ORANGE, at(15, 9, 0)).to_string();
    assert!(
        s.starts_with("play cap-") && s.contains("emergency on 3 target(s)"),
        "{s}"
    );
}
