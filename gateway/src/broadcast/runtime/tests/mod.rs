//! The runtime's tests on paused time, with a recording [`Player`] for the
//! horns; everything else (runtime, engine, timetable, desk, store) is the
//! real code. This module holds the shared world (four horns in two
//! villages, a timetable on a swapped working day) and its helpers.
//!
//! | module | owns |
//! |---|---|
//! | `day` | a whole day of broadcasts (issue 7, "done when") |
//! | `cap_mqtt` | CAP from the MQTT topic: signed envelopes, broker trust, skew (issue 12) |
//! | `feeds` | a polled Atom feed starting a warning once |
//! | `clock` | the wall clock jumping forward and back over schedules |
//! | `volume` | per-horn volumes and the forced emergency volume |
//! | `preempt` | a preempted broadcast's horns report `interrupted`, then a `resumed` start, in the record and to the uplink |
//! | `local` | a horn failed by the gateway's own limit (EMFILE): `failed` with error kind `local`, counted with task `horn` |
//! | `live` | a live page's end: `done` where audio aired, `failed` with why where nothing did, in the record and to the uplink |

use std::sync::{Arc, Mutex};
use std::time::Duration;

use device_drivers::speaker::{PlayReport, SpeakerUri};
use futures::future::BoxFuture;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::broadcast::render::Recipe;
use crate::broadcast::{OnPreempt, Priority, Target};
use crate::speakers::{Codec, DriverKind, NewSpeaker};
use tgw_core::schedule::{Calendar, Timetable};

mod aired;
mod cap_mqtt;
mod clock;
mod day;
mod feeds;
mod live;
mod local;
mod preempt;
mod volume;

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
                answered: device_drivers::speaker::Answered::Yes,
                answer_ms: None,
                codec: Some("PCMU".into()),
                start_offset_ms: Some(0.0),
                packets: ((end - start) / 20) as u64,
                octets: 0,
                skipped_frames: 0,
                completed: !cancelled,
                error_kind: None,
                local: None,
                errors: Vec::new(),
                first_sent: Some(t0),
            }
        })
    }

    /// Plays a live page's frames as they come, until they end or `cancel`.
    fn play_live(
        &self,
        uri: SpeakerUri,
        mut frames: device_drivers::speaker::LiveFrames,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, PlayReport> {
        use futures::StreamExt;
        let clock = self.clock.clone();
        let log = self.log.clone();
        Box::pin(async move {
            let horn = horn_of(&uri);
            let start = clock.now_ms();
            let (mut samples, mut peak, mut packets) = (0usize, 0i32, 0u64);
            let cancelled = loop {
                let f = tokio::select! {
                    f = frames.next() => f,
                    _ = cancel.cancelled() => break true,
                };
                let Some(f) = f else { break false };
                samples += f.len();
                packets += 1;
                peak = peak.max(f.iter().map(|x| i32::from(*x).abs()).max().unwrap_or(0));
            };
            let end = clock.now_ms();
            log.lock().unwrap().push(Played {
                horn,
                start,
                end,
                samples,
                peak,
                cancelled,
            });
            PlayReport {
                device: uri.to_string(),
                kind: uri.kind().into(),
                answered: device_drivers::speaker::Answered::Yes,
                answer_ms: None,
                codec: Some("PCMU".into()),
                start_offset_ms: Some(0.0),
                packets,
                octets: 0,
                skipped_frames: 0,
                completed: !cancelled,
                error_kind: None,
                local: None,
                errors: Vec::new(),
                first_sent: None,
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
    start_runtime_with(
        w,
        warnings(),
        crate::broadcast::signed::KeySet::from_config(&[]).unwrap(),
        shutdown,
    )
}

fn start_runtime_with(
    w: &World,
    warnings: tgw_core::warning::WarningsConfig,
    keys: crate::broadcast::signed::KeySet,
    shutdown: CancellationToken,
) -> (Broadcasts, tokio::task::JoinHandle<()>) {
    let sink = Arc::new(crate::broadcast::runtime::NoReports);
    start_runtime_reporting(w, warnings, keys, sink, shutdown)
}

fn start_runtime_reporting(
    w: &World,
    warnings: tgw_core::warning::WarningsConfig,
    keys: crate::broadcast::signed::KeySet,
    publisher: Arc<dyn ReportSink>,
    shutdown: CancellationToken,
) -> (Broadcasts, tokio::task::JoinHandle<()>) {
    let settings = Settings {
        inline_render: true,
        ..Settings::default()
    };
    start(
        Parts {
            records: Records::open(&w.store).unwrap(),
            publisher,
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
            warnings: Some(warnings),
            keys,
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
