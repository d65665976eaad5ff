//! A whole day of broadcasts on paused time (issue 7, "done when"): a
//! routine programme on a swapped working day (调休), a rest-day schedule
//! that must not fire, quiet hours, an emergency preempting a routine
//! programme that then resumes, a CAP alert and its later Cancel, and a
//! restart in the middle with one missed occurrence skipped and one played
//! late. Horns are a recording [`Player`] that plays in (paused) real time;
//! everything else (runtime, engine, timetable, desk, store) is the real
//! code. Every horn's timeline and every report is checked.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use device_drivers::speaker::{PlayReport, SpeakerUri};
use futures::future::BoxFuture;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::broadcast::record::Records;
use crate::speakers::{Codec, DriverKind, NewSpeaker};
use tgw_core::schedule::{Calendar, Timetable};

/// One thing a horn played.
#[derive(Debug, Clone)]
struct Played {
    horn: String,
    start: Ms,
    end: Ms,
    samples: usize,
    peak: i32,
    cancelled: bool,
}

struct Recorder {
    clock: Arc<TokioClock>,
    log: Arc<Mutex<Vec<Played>>>,
}

fn horn_of(uri: &SpeakerUri) -> String {
    match uri {
        SpeakerUri::Rtp { dest, .. } => format!("h{}", dest.port() - 40_000),
        other => other.to_string(),
    }
}

impl Player for Recorder {
    fn play(
        &self,
        uri: SpeakerUri,
        pcm: Arc<Vec<i16>>,
        t0: Instant,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, PlayReport> {
        let clock = self.clock.clone();
        let log = self.log.clone();
        Box::pin(async move {
            let horn = horn_of(&uri);
            let len = Duration::from_secs_f64(pcm.len() as f64 / 8000.0);
            let cancelled = tokio::select! {
                _ = tokio::time::sleep_until(t0) => false,
                _ = cancel.cancelled() => true,
            };
            let start = clock.now_ms();
            let cancelled = cancelled
                || tokio::select! {
                    _ = tokio::time::sleep(len) => false,
                    _ = cancel.cancelled() => true,
                };
            let end = clock.now_ms();
            log.lock().unwrap().push(Played {
                horn,
                start,
                end,
                samples: pcm.len(),
                peak: pcm.iter().map(|x| i32::from(*x).abs()).max().unwrap_or(0),
                cancelled,
            });
            PlayReport {
                device: uri.to_string(),
                kind: uri.kind().into(),
                answered: true,
                answer_ms: None,
                codec: Some("PCMU".into()),
                start_offset_ms: Some(0.0),
                packets: ((end - start) / 20) as u64,
                octets: 0,
                skipped_frames: 0,
                completed: !cancelled,
                error_kind: None,
                errors: Vec::new(),
                first_sent: Some(t0),
            }
        })
    }
}

const TIMETABLE: &str = r#"
timezone = "Asia/Shanghai"

[[quiet_hours]]
targets = ["village:v2"]
from = "12:00"
to = "14:00"

[[quiet_hours]]
targets = ["all"]
from = "22:00"
to = "06:30"

[[programme]]
id = "morning"
name = "早间广播"
items = [ { asset = "sha256:TONE" } ]
pre_chime = "chime"
repeat = 2
interval = "10s"

[[programme]]
id = "long"
name = "政策宣讲"
items = [ { asset = "sha256:TONE" } ]
repeat = 6
interval = "10s"
on_preempt = "resume"

[[schedule]]
id = "workday-0730"
programme = "morning"
targets = ["all"]
at = ["07:30"]
days = "workdays"

[[schedule]]
id = "restday-0900"
programme = "morning"
targets = ["all"]
at = ["09:00"]
days = "rest-days"

[[schedule]]
id = "noon-1230"
programme = "morning"
targets = ["all"]
at = ["12:30"]

[[schedule]]
id = "long-1500"
programme = "long"
targets = ["all"]
at = ["15:00"]

[[schedule]]
id = "evening-1800"
programme = "long"
targets = ["all"]
at = ["18:00"]

[[schedule]]
id = "evening-1805"
programme = "morning"
targets = ["all"]
at = ["18:05"]
missed = "skip"

[[schedule]]
id = "evening-1806"
programme = "morning"
targets = ["village:v1"]
at = ["18:06"]
missed = "play-within:10m"

[[schedule]]
id = "night-2230"
programme = "morning"
targets = ["all"]
at = ["22:30"]
"#;

/// 2026-10-10 is a Saturday worked in exchange for the National Day week.
const CALENDAR: &str = "2026-10-01..2026-10-07 rest 国庆节\n2026-10-10 work 国庆调休上班\n";

const DAY: &str = "2026-10-10";

fn at(hms: &str) -> Ms {
    let dt: jiff::civil::DateTime = format!("{DAY}T{hms}").parse().unwrap();
    dt.to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai").unwrap())
        .unwrap()
        .timestamp()
        .as_millisecond()
}

fn cap(fixture: &str, from: &[(&str, &str)]) -> bytes::Bytes {
    let path = format!(
        "{}/../tests/fixtures/cap/{fixture}",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut s = std::fs::read_to_string(path).unwrap();
    for (a, b) in from {
        s = s.replace(a, b);
    }
    s.into()
}

struct World {
    _dir: tempfile::TempDir,
    store: crate::store::Store,
    assets: AssetStore,
    timetable: Timetable,
    clock: Arc<TokioClock>,
    log: Arc<Mutex<Vec<Played>>>,
    tone_len_ms: Ms,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::Store::open(dir.path()).unwrap();
    let township: crate::config::TownshipSection = toml::from_str(
        r#"
        code = "qingshan"
        name = "青山镇"
        [[villages]]
        code = "v1"
        name = "东村"
        [[villages]]
        code = "v2"
        name = "西村"
        "#,
    )
    .unwrap();
    store.sync_township(&township).unwrap();
    let speakers = Speakers::open(&store).unwrap();
    let list: Vec<NewSpeaker> = (1..=4)
        .map(|i| NewSpeaker {
            id: crate::config::Ident::parse(&format!("h{i}")).unwrap(),
            name: None,
            kind: DriverKind::Rtp,
            address: format!("127.0.0.1:{}", 40_000 + i),
            village: Some(if i <= 2 { "v1" } else { "v2" }.into()),
            grid: None,
            zone: None,
            codec: Codec::Pcmu,
            volume: None,
            ttl: None,
            username: None,
            password: None,
        })
        .collect();
    speakers.upsert(&list).unwrap();
    let assets = AssetStore::open(
        dir.path(),
        crate::broadcast::audio::AudioSettings::default(),
    )
    .unwrap();
    let tone = device_drivers::g711::tone(440.0, 3.0, 12_000);
    let a = assets
        .import(&crate::broadcast::audio::wav_bytes(&tone, 8000), "tone.wav")
        .unwrap();
    let tone_len_ms = (assets.pcm(&a.sha256).unwrap().len() / 8) as Ms;
    let timetable = Timetable::parse(&TIMETABLE.replace("TONE", &a.sha256), "Asia/Shanghai")
        .unwrap()
        .with_calendar(Calendar::parse(CALENDAR).unwrap())
        .unwrap();
    World {
        _dir: dir,
        store,
        assets,
        timetable,
        clock: Arc::new(TokioClock::starting_at(at("00:00:00"))),
        log: Arc::new(Mutex::new(Vec::new())),
        tone_len_ms,
    }
}

fn warnings() -> tgw_core::warning::WarningsConfig {
    let mut w: tgw_core::warning::WarningsConfig = toml::from_str(
        r#"
        enabled = true
        repeat = 3
        interval_secs = 60
        [[areas]]
        village = "v2"
        geocodes = ["320115"]
        "#,
    )
    .unwrap();
    w.enabled = true;
    w
}

fn start_runtime(
    w: &World,
    shutdown: CancellationToken,
) -> (Broadcasts, tokio::task::JoinHandle<()>) {
    let settings = Settings {
        inline_render: true,
        ..Settings::default()
    };
    start(
        Parts {
            records: Records::open(&w.store).unwrap(),
            publisher: Publisher::disabled(),
            live: LiveHub::default(),
            speakers: Speakers::open(&w.store).unwrap(),
            assets: w.assets.clone(),
            timetable: w.timetable.clone(),
            settings,
            clock: w.clock.clone(),
            player: Arc::new(Recorder {
                clock: w.clock.clone(),
                log: w.log.clone(),
            }),
            warnings: Some(warnings()),
            keys: super::super::signed::KeySet::from_config(&[]).unwrap(),
        },
        shutdown,
    )
}

async fn until(w: &World, hms: &str) {
    let target = at(hms);
    let now = w.clock.now_ms();
    assert!(target >= now, "time goes forward in this test");
    tokio::time::sleep(Duration::from_millis((target - now) as u64)).await;
}

fn plays(w: &World, horn: &str, from: &str, to: &str) -> Vec<Played> {
    let (a, b) = (at(from), at(to));
    let mut v: Vec<Played> = w
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p.horn == horn && p.start >= a && p.start < b)
        .cloned()
        .collect();
    v.sort_by_key(|p| p.start);
    v
}

/// States a horn went through in a broadcast, in order.
fn history(r: &Records, broadcast: &str, horn: &str) -> Vec<String> {
    r.events(broadcast)
        .unwrap()
        .into_iter()
        .filter(|(h, ..)| h.as_deref() == Some(horn))
        .map(|(_, s, ..)| s)
        .collect()
}

fn final_state(r: &Records, broadcast: &str, horn: &str) -> String {
    let (_, horns) = r
        .get(broadcast)
        .unwrap()
        .unwrap_or_else(|| panic!("no broadcast {broadcast}"));
    horns
        .into_iter()
        .find(|h| h.speaker == horn)
        .unwrap_or_else(|| panic!("{horn} not in {broadcast}"))
        .state
}

#[tokio::test(start_paused = true)]
async fn a_day_of_broadcasts_on_paused_time() {
    let w = world();
    let r = Records::open(&w.store).unwrap();
    let shutdown = CancellationToken::new();
    let (b, task) = start_runtime(&w, shutdown.clone());
    let tone = w.tone_len_ms;
    let chime_ms = (super::super::render::chime().len() / 8) as Ms;

    // 07:30 on a swapped working day: the workday schedule plays on every
    // horn, first sample exactly at T0; two repeats 10 s apart.
    until(&w, "08:00:00").await;
    let bid = "s-workday-0730-20261010T073000";
    for h in ["h1", "h2", "h3", "h4"] {
        let p = plays(&w, h, "07:00:00", "08:00:00");
        assert_eq!(p.len(), 2, "{h}: {p:?}");
        assert_eq!(p[0].start, at("07:30:00"), "{h} starts at T0");
        let seg0 = chime_ms + 400 + tone;
        assert!((p[0].end - p[0].start - seg0).abs() <= 2, "{h}: {p:?}");
        assert!(
            (p[1].start - (p[0].start + seg0 + 10_000)).abs() <= 2,
            "{h}: repeat after the interval"
        );
        assert_eq!(final_state(&r, bid, h), "done");
        assert_eq!(history(&r, bid, h), ["queued", "started", "done"]);
        let (_, horns) = r.get(bid).unwrap().unwrap();
        let d = horns
            .iter()
            .find(|x| x.speaker == h)
            .unwrap()
            .detail
            .clone()
            .unwrap();
        assert_eq!(
            d["skew_ms"], 0.0,
            "{h}: the measured skew stays after done: {d}"
        );
        assert_eq!(d["state"], "done", "{d}");
    }

    // 09:00: the rest-day schedule does not fire on a worked Saturday.
    until(&w, "12:00:00").await;
    for h in ["h1", "h2", "h3", "h4"] {
        assert!(
            plays(&w, h, "08:00:00", "12:00:00").is_empty(),
            "{h} played on a working day's rest-day slot"
        );
    }
    assert!(
        r.list(1000)
            .unwrap()
            .iter()
            .all(|x| x.origin != "schedule:restday-0900")
    );

    // 12:30: village v2 is in its noon quiet hours; v1 plays.
    until(&w, "13:00:00").await;
    let bid = "s-noon-1230-20261010T123000";
    for h in ["h1", "h2"] {
        assert_eq!(plays(&w, h, "12:00:00", "13:00:00").len(), 2, "{h}");
        assert_eq!(final_state(&r, bid, h), "done");
    }
    for h in ["h3", "h4"] {
        assert!(
            plays(&w, h, "12:00:00", "13:00:00").is_empty(),
            "{h} played in quiet hours"
        );
        assert_eq!(final_state(&r, bid, h), "dropped");
    }

    // 15:00: a six-part routine programme; at 15:00:14 an emergency for
    // village v1 takes h1 and h2; afterwards the programme resumes there
    // from the part it lost. h3 and h4 are never touched.
    until(&w, "15:00:14").await;
    let em = b
        .submit(Spec {
            id: Some("em-1".into()),
            origin: "operator:test".into(),
            title: "紧急通知".into(),
            priority: Priority::Emergency,
            targets: vec![Target::Village("v1".into())],
            recipe: Recipe {
                pre: None,
                items: vec![super::super::render::Part::Chime],
                post: None,
                repeat: 1,
                interval: Duration::ZERO,
                volume: Some(50),
            },
            start_at: None,
            latest_start: None,
            on_preempt: OnPreempt::Drop,
        })
        .await
        .unwrap();
    assert_eq!(em.horns, 2);
    until(&w, "15:10:00").await;
    let long = "s-long-1500-20261010T150000";
    let seg = tone;
    for h in ["h1", "h2"] {
        let p = plays(&w, h, "15:00:00", "15:10:00");
        // part 0 done (0..3 s), part 1 starts at 13 s and is cut at 14 s.
        assert_eq!(p[0].start, at("15:00:00"));
        assert!(!p[0].cancelled);
        assert!(p[1].cancelled, "{h}: part 1 cut by the emergency: {p:?}");
        assert!(p[1].end - at("15:00:14") < 50, "{h}: stopped at once");
        let e = &p[2];
        assert_eq!(
            e.samples,
            super::super::render::chime().len(),
            "{h}: the emergency plays next"
        );
        assert!(e.start >= p[1].end, "{h}: never two broadcasts at once");
        assert!(
            e.start - at("15:00:14") <= 200,
            "{h}: emergency within the lead: {p:?}"
        );
        // Resumed from part 1: five more parts.
        let resumed: Vec<_> = p[3..].iter().collect();
        assert_eq!(resumed.len(), 5, "{h}: {p:?}");
        assert!(resumed[0].start >= e.end);
        assert!(resumed.iter().all(|x| !x.cancelled));
        assert_eq!(final_state(&r, long, h), "done");
        assert_eq!(final_state(&r, "em-1", h), "done");
        let hist = history(&r, long, h);
        assert_eq!(
            hist.iter().filter(|s| *s == "queued").count(),
            2,
            "{h}: {hist:?}"
        );
        assert_eq!(hist.last().map(String::as_str), Some("done"));
    }
    for h in ["h3", "h4"] {
        let p = plays(&w, h, "15:00:00", "15:10:00");
        assert_eq!(p.len(), 6, "{h}: {p:?}");
        for (k, x) in p.iter().enumerate() {
            assert_eq!(
                x.start,
                at("15:00:00") + k as Ms * (seg + 10_000),
                "{h} part {k}"
            );
            assert!(!x.cancelled);
        }
        assert_eq!(final_state(&r, long, h), "done");
    }

    // 16:00: a severe rainstorm warning for the county (village v2); its
    // Cancel at 16:01:30 stops it during the repeats.
    until(&w, "16:00:00").await;
    let alert = cap(
        "jiangning_rainstorm_orange_alert.xml",
        &[
            ("2026-07-15T08:30:00", "2026-10-10T16:00:00"),
            ("2026-07-15T20:30:00", "2026-10-10T20:30:00"),
        ],
    );
    let out = b.cap(alert.clone(), "mqtt").await;
    assert_eq!(out.decision, "play", "{out:?}");
    let cap_bid = out.broadcast.clone().unwrap();
    assert_eq!(
        b.cap(alert, "mqtt").await.decision,
        "ignore",
        "idempotent by identifier"
    );
    until(&w, "16:01:30").await;
    let cancel = cap(
        "jiangning_rainstorm_cancel.xml",
        &[
            ("2026-07-15T08:30:00", "2026-10-10T16:00:00"),
            ("2026-07-15T18:00:00", "2026-10-10T16:01:30"),
            ("20260715180000", "20261010160130"),
        ],
    );
    let out = b.cap(cancel, "mqtt").await;
    assert_eq!(out.decision, "cancel", "{out:?}");
    until(&w, "16:30:00").await;
    for h in ["h3", "h4"] {
        let p = plays(&w, h, "16:00:00", "16:30:00");
        assert!(
            !p.is_empty() && p.last().unwrap().cancelled,
            "{h}: the warning was cut by its Cancel: {p:?}"
        );
        assert!(
            p[0].start - at("16:00:00") <= 200,
            "{h}: the warning started at once: {p:?}"
        );
        assert!(
            p.iter().all(|x| x.end <= at("16:01:31")),
            "{h}: nothing after the cancel"
        );
        assert_eq!(final_state(&r, &cap_bid, h), "cancelled");
    }
    for h in ["h1", "h2"] {
        assert!(plays(&w, h, "16:00:00", "16:30:00").is_empty());
    }
    let caps = r.caps(10).unwrap();
    assert!(caps.iter().any(|c| c.decision == "play"));
    assert!(caps.iter().any(|c| c.decision == "cancel"));
    let audit = crate::auth::Users::new(w.store.clone())
        .unwrap()
        .audit_log(100, None)
        .unwrap();
    for a in ["broadcast.cap_play", "broadcast.cap_cancel"] {
        assert!(
            audit
                .iter()
                .any(|e| e.action == a && e.target.as_deref() == Some(cap_bid.as_str())),
            "{a} audited"
        );
    }

    // 18:00 the evening programme starts; at 18:00:20 the gateway stops and
    // is down until 18:10. 18:05 (skip) is not played; 18:06 (play within
    // 10 min) plays on restart.
    until(&w, "18:00:20").await;
    shutdown.cancel();
    task.await.unwrap();
    until(&w, "18:10:00").await;
    let shutdown2 = CancellationToken::new();
    let (_b2, task2) = start_runtime(&w, shutdown2.clone());
    until(&w, "18:30:00").await;
    let eve = "s-evening-1800-20261010T180000";
    for h in ["h1", "h2", "h3", "h4"] {
        let p = plays(&w, h, "18:00:00", "18:10:00");
        assert!(
            p.iter().all(|x| x.end <= at("18:00:21")),
            "{h}: stopped at shutdown: {p:?}"
        );
        assert_eq!(final_state(&r, eve, h), "interrupted");
        assert!(plays(&w, h, "18:05:00", "18:06:00").is_empty());
    }
    assert!(
        r.list(1000)
            .unwrap()
            .iter()
            .all(|x| x.origin != "schedule:evening-1805")
    );
    for h in ["h1", "h2"] {
        let p = plays(&w, h, "18:10:00", "18:30:00");
        assert_eq!(p.len(), 2, "{h}: late play of 18:06: {p:?}");
        assert!(
            p[0].start - at("18:10:00") <= 1_000,
            "{h}: played at restart"
        );
    }

    // 22:30: everyone is in quiet hours.
    until(&w, "23:59:00").await;
    let night = "s-night-2230-20261010T223000";
    for h in ["h1", "h2", "h3", "h4"] {
        assert!(plays(&w, h, "22:00:00", "23:59:00").is_empty());
        assert_eq!(final_state(&r, night, h), "dropped");
    }

    // Whole day: no horn ever played two things at once.
    for h in ["h1", "h2", "h3", "h4"] {
        let p = plays(&w, h, "00:00:00", "23:59:00");
        for pair in p.windows(2) {
            assert!(pair[1].start >= pair[0].end, "{h} overlaps: {pair:?}");
        }
    }
    shutdown2.cancel();
    task2.await.unwrap();
}

/// A polled HTTP feed (Atom, linking to a CAP document on the same
/// server): the alert reaches the desk once, however often the feed is
/// polled, and starts a warning broadcast.
#[tokio::test]
async fn polled_atom_feed_starts_a_warning_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let w = world();
    let r = Records::open(&w.store).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let now = jiff::Zoned::now().with_time_zone(jiff::tz::TimeZone::get("Asia/Shanghai").unwrap());
    let fmt = |z: &jiff::Zoned| z.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    let alert = String::from_utf8(
        cap(
            "jiangning_rainstorm_orange_alert.xml",
            &[
                ("2026-07-15T08:30:00", &fmt(&now)),
                (
                    "2026-07-15T20:30:00",
                    &fmt(&(now.clone() + jiff::SignedDuration::from_hours(2))),
                ),
            ],
        )
        .to_vec(),
    )
    .unwrap();
    let feed = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>预警</title><id>urn:feed</id><updated>2026-10-10T00:00:00+08:00</updated>
<entry><id>urn:e1</id><title>暴雨橙色预警</title><updated>2026-10-10T00:00:00+08:00</updated><link href="http://{addr}/cap/1.xml"/></entry></feed>"#
    );
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h2 = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).await.unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let body = if req.starts_with("GET /cap/1.xml") {
                h2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                alert.clone()
            } else {
                feed.clone()
            };
            let _ = s
                .write_all(format!("HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes())
                .await;
        }
    });
    let shutdown = CancellationToken::new();
    let (b, task) = start_runtime(&w, shutdown.clone());
    let f = tgw_core::warning::Feed {
        url: format!("http://{addr}/feed.xml"),
        interval_secs: 1,
    };
    let poller = tokio::spawn(super::super::feeds::poll(f, b.clone(), shutdown.clone()));
    for _ in 0..100 {
        if r.caps(10).unwrap().iter().any(|c| c.decision == "play") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await; // more polls
    let caps = r.caps(10).unwrap();
    assert_eq!(caps.len(), 1, "{caps:?}");
    assert_eq!(caps[0].decision, "play");
    assert!(caps[0].via.ends_with("/cap/1.xml"));
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the linked document is fetched once"
    );
    let bid = caps[0].broadcast_id.clone().unwrap();
    let (row, horns) = r.get(&bid).unwrap().unwrap();
    assert_eq!(row.priority, "emergency");
    assert_eq!(horns.len(), 2, "village v2's horns: {horns:?}");
    shutdown.cancel();
    let _ = poller.await;
    let _ = task.await;
}

/// A wall clock that follows tokio's paused clock plus an offset the test
/// can change: the system clock being set forward or back.
struct JumpClock {
    base: TokioClock,
    offset: std::sync::atomic::AtomicI64,
}

impl Clock for JumpClock {
    fn now_ms(&self) -> Ms {
        self.base.now_ms() + self.offset.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The clock jumps forward over a schedule (skip: not played; play-within:
/// played at once), then back over it: nothing plays twice.
#[tokio::test(start_paused = true)]
async fn clock_jumps_forward_and_back() {
    let w = world();
    let r = Records::open(&w.store).unwrap();
    let tone = w.timetable.programme("morning").unwrap().items[0].clone();
    let asset = match tone {
        tgw_core::schedule::Item::Asset(a) => a,
        tgw_core::schedule::Item::Tts(_) => unreachable!(),
    };
    let tt = Timetable::parse(
        &format!(
            r#"
[[programme]]
id = "p"
items = [ {{ asset = "{asset}" }} ]

[[schedule]]
id = "skip-1000"
programme = "p"
targets = ["all"]
at = ["10:00"]

[[schedule]]
id = "late-1001"
programme = "p"
targets = ["all"]
at = ["10:01"]
missed = "play-within:1h"
"#
        ),
        "Asia/Shanghai",
    )
    .unwrap();
    let clock = Arc::new(JumpClock {
        base: TokioClock::starting_at(at("09:59:00")),
        offset: std::sync::atomic::AtomicI64::new(0),
    });
    let shutdown = CancellationToken::new();
    let (_b, task) = start(
        Parts {
            records: Records::open(&w.store).unwrap(),
            publisher: Publisher::disabled(),
            live: LiveHub::default(),
            speakers: Speakers::open(&w.store).unwrap(),
            assets: w.assets.clone(),
            timetable: tt,
            settings: Settings {
                inline_render: true,
                ..Settings::default()
            },
            clock: clock.clone(),
            player: Arc::new(Recorder {
                clock: w.clock.clone(),
                log: w.log.clone(),
            }),
            warnings: None,
            keys: super::super::signed::KeySet::from_config(&[]).unwrap(),
        },
        shutdown.clone(),
    );
    tokio::time::sleep(Duration::from_secs(40)).await; // 09:59:40
    clock
        .offset
        .store(30 * 60_000, std::sync::atomic::Ordering::SeqCst); // → 10:29:40
    tokio::time::sleep(Duration::from_secs(60)).await;
    let list = r.list(100).unwrap();
    assert!(
        list.iter().all(|b| b.origin != "schedule:skip-1000"),
        "skipped after the jump: {list:?}"
    );
    let late: Vec<_> = list
        .iter()
        .filter(|b| b.origin == "schedule:late-1001")
        .collect();
    assert_eq!(late.len(), 1, "played late once: {list:?}");
    // Back to 09:59:50: 10:00 and 10:01 come round again; nothing replays.
    clock
        .offset
        .store(-50_000, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(5 * 60)).await;
    let list = r.list(100).unwrap();
    assert!(
        list.iter().all(|b| b.origin != "schedule:skip-1000"),
        "{list:?}"
    );
    assert_eq!(
        list.iter()
            .filter(|b| b.origin == "schedule:late-1001")
            .count(),
        1,
        "{list:?}"
    );
    assert!(
        r.fired(
            "skip-1000",
            &jiff::Timestamp::from_millisecond(at("10:00:00"))
                .unwrap()
                .to_string()
        )
        .unwrap()
    );
    shutdown.cancel();
    task.await.unwrap();
}

/// Each horn plays at its own volume unless the broadcast sets one; an
/// emergency forces its volume on every horn.
#[tokio::test(start_paused = true)]
async fn horn_volumes_and_the_forced_emergency_volume() {
    let w = world();
    let sp = Speakers::open(&w.store).unwrap();
    let mut h1 = sp.get("h1").unwrap().unwrap();
    h1.volume = Some(40);
    sp.upsert(&[NewSpeaker {
        id: crate::config::Ident::parse("h1").unwrap(),
        name: None,
        kind: DriverKind::Rtp,
        address: h1.address.clone(),
        village: h1.village.clone(),
        grid: None,
        zone: None,
        codec: Codec::Pcmu,
        volume: Some(40),
        ttl: None,
        username: None,
        password: None,
    }])
    .unwrap();
    let shutdown = CancellationToken::new();
    let (b, task) = start_runtime(&w, shutdown.clone());
    let chime = |priority, volume| Spec {
        id: None,
        origin: "operator:test".into(),
        title: "t".into(),
        priority,
        targets: vec![Target::Village("v1".into())],
        recipe: Recipe {
            pre: None,
            items: vec![super::super::render::Part::Chime],
            post: None,
            repeat: 1,
            interval: Duration::ZERO,
            volume,
        },
        start_at: None,
        latest_start: None,
        on_preempt: OnPreempt::Drop,
    };
    let full = super::super::render::chime()
        .iter()
        .map(|x| i32::from(*x).abs())
        .max()
        .unwrap();
    let peaks = |w: &World| {
        let log = w.log.lock().unwrap();
        let p = |h: &str| {
            log.iter()
                .rev()
                .find(|x| x.horn == h)
                .map(|x| x.peak)
                .unwrap()
        };
        (p("h1"), p("h2"))
    };
    until(&w, "09:30:00").await; // out of the night's quiet hours
    b.submit(chime(Priority::Township, None)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (p1, p2) = peaks(&w);
    assert_eq!(
        p2, full,
        "h2 has no volume of its own: the default (100 here)"
    );
    let g40 = super::super::render::volume_gain(40);
    assert!(
        (f64::from(p1) - f64::from(full) * g40).abs() <= 1.0,
        "h1 at its own 40: {p1} vs {full}"
    );
    b.submit(chime(Priority::Township, Some(70))).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (p1, p2) = peaks(&w);
    assert_eq!(p1, p2, "the broadcast's volume on both");
    b.submit(chime(Priority::Emergency, None)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (p1, p2) = peaks(&w);
    assert_eq!(
        (p1, p2),
        (full, full),
        "emergency_volume (100) forced on both"
    );
    shutdown.cancel();
    task.await.unwrap();
}
