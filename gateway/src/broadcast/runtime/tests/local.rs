//! A horn that failed because the gateway ran out of its own resources
//! (EMFILE making the horn's socket): `failed` (nothing aired), with a
//! reason naming the gateway's limit and error kind `local`, in the record
//! and to the uplink; counted once in `tgw_local_errors_total{task="horn"}`,
//! which raises the `local_limit` alarm. A horn's own failure stays the
//! driver's error, uncounted there. Failure paths first.

use std::sync::Mutex;

use device_drivers::local_error::LocalResource;
use device_drivers::speaker::Answered;
use serde_json::Value;

use super::*;
use crate::base::metrics::Metrics;
use crate::broadcast::metered::Metered;

/// h1 cannot get a socket (EMFILE), h2's port refuses (its own fault); the
/// others play through the [`Recorder`].
struct Exhausted(Recorder);

fn failed_report(
    uri: &SpeakerUri,
    kind: &str,
    local: Option<LocalResource>,
    error: &str,
) -> PlayReport {
    PlayReport {
        device: uri.to_string(),
        kind: uri.kind().into(),
        answered: if local.is_some() {
            Answered::Unknown
        } else {
            Answered::No
        },
        answer_ms: None,
        codec: None,
        start_offset_ms: None,
        packets: 0,
        octets: 0,
        skipped_frames: 0,
        completed: false,
        error_kind: Some(kind.into()),
        local,
        errors: vec![format!("{uri}: prepare: {error}")],
        first_sent: None,
    }
}

impl Player for Exhausted {
    fn play(
        &self,
        uri: SpeakerUri,
        pcm: Arc<Vec<i16>>,
        t0: Instant,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, PlayReport> {
        match horn_of(&uri).as_str() {
            // As the RTP driver reports it (device-drivers/tests/horn_local_exhaustion.rs).
            "h1" => Box::pin(async move {
                failed_report(
                    &uri,
                    "local",
                    Some(LocalResource::Emfile),
                    "the gateway's own limit, too many open files (EMFILE): not the horn's fault; nothing aired (RTP to 127.0.0.1:40001: creating a socket: Too many open files (os error 24))",
                )
            }),
            "h2" => Box::pin(async move {
                failed_report(
                    &uri,
                    "unreachable",
                    None,
                    "RTP to 127.0.0.1:40002: unreachable: the horn's port refused packet 0 (ICMP port unreachable)",
                )
            }),
            _ => self.0.play(uri, pcm, t0, cancel),
        }
    }
}

/// The horn reports the runtime hands to the uplink (behind [`Metered`]).
#[derive(Default)]
struct Sink {
    horn: Mutex<Vec<(String, String, Value)>>,
}

impl ReportSink for Sink {
    fn speaker_state(&self, _: &str, _: Value) {}
    fn broadcast_state(&self, _: &str, _: Value) {}
    fn broadcast_horn(&self, id: &str, speaker: &str, body: Value) {
        self.horn
            .lock()
            .unwrap()
            .push((id.into(), speaker.into(), body));
    }
}

impl Sink {
    fn last_horn(&self, id: &str, horn: &str) -> Value {
        self.horn
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(b, h, _)| b == id && h == horn)
            .map(|(.., v)| v.clone())
            .unwrap_or_else(|| panic!("no broadcast/{id}/horn/{horn} published"))
    }
}

fn start_exhausted(
    w: &World,
    publisher: Arc<dyn ReportSink>,
    shutdown: CancellationToken,
) -> (Broadcasts, tokio::task::JoinHandle<()>) {
    start(
        Parts {
            records: Records::open(&w.store).unwrap(),
            publisher,
            live: LiveHub::default(),
            speakers: Speakers::open(&w.store).unwrap(),
            assets: w.assets.clone(),
            timetable: w.timetable.clone(),
            settings: Settings {
                inline_render: true,
                ..Settings::default()
            },
            clock: w.clock.clone(),
            player: Arc::new(Exhausted(Recorder {
                clock: w.clock.clone(),
                log: w.log.clone(),
            })),
            warnings: None,
            keys: crate::broadcast::signed::KeySet::from_config(&[]).unwrap(),
        },
        shutdown,
    )
}

/// A chime twice on every horn of both villages.
fn everywhere() -> Spec {
    Spec {
        id: Some("b-local".into()),
        origin: "operator:test".into(),
        title: "notice".into(),
        priority: Priority::Township,
        targets: vec![Target::All],
        recipe: Recipe {
            pre: None,
            items: vec![crate::broadcast::render::Part::Chime],
            post: None,
            repeat: 2,
            interval: Duration::from_secs(1),
            volume: None,
        },
        start_at: None,
        latest_start: None,
        on_preempt: OnPreempt::Drop,
    }
}

/// h1 out of descriptors on the gateway: `failed`, why naming EMFILE and
/// the gateway, error kind `local`, in the record and on MQTT; counted
/// once with task `horn`, the alarm raised. h2 refusing: `failed` with
/// the driver's error, no error kind, not counted. h3, h4: `done`.
#[tokio::test(start_paused = true)]
async fn a_horn_failed_by_the_gateways_limit_says_so_and_is_counted() {
    let w = world();
    let metrics = Arc::new(Metrics::new());
    let sink = Arc::new(Sink::default());
    let metered = Arc::new(Metered {
        inner: sink.clone(),
        metrics: metrics.clone(),
    });
    let shutdown = CancellationToken::new();
    let (b, task) = start_exhausted(&w, metered, shutdown.clone());
    until(&w, "09:30:00").await; // out of the night's quiet hours
    // The timetable's 07:30 programme met h1 out of descriptors too.
    let before = metrics.local_errors.count(LocalResource::Emfile, "horn");
    let s = b.submit(everywhere()).await.unwrap();
    assert_eq!(s.horns, 4, "{s:?}");
    tokio::time::sleep(Duration::from_secs(20)).await;
    let r = Records::open(&w.store).unwrap();
    let (row, horns) = r.get("b-local").unwrap().unwrap();
    assert!(
        !["queued", "playing"].contains(&row.state.as_str()),
        "{row:?}"
    );
    let detail = |h: &str| {
        horns
            .iter()
            .find(|x| x.speaker == h)
            .and_then(|x| x.detail.clone())
            .unwrap_or(Value::Null)
    };

    assert_eq!(final_state(&r, "b-local", "h1"), "failed");
    let d = detail("h1");
    assert_eq!(
        d["why"],
        "the gateway's own limit (EMFILE: too many open files): nothing aired; not the horn's fault",
        "{d}"
    );
    assert_eq!(d["error_kind"], "local", "{d}");
    assert_eq!(d["errno"], "EMFILE", "{d}");
    let m = sink.last_horn("b-local", "h1");
    assert_eq!(m["state"], "failed", "{m}");
    assert_eq!(m["detail"]["error_kind"], "local", "{m}");
    assert_eq!(m["detail"]["errno"], "EMFILE", "{m}");

    assert_eq!(final_state(&r, "b-local", "h2"), "failed");
    let d = detail("h2");
    assert!(
        d["why"].as_str().unwrap().contains("ICMP port unreachable"),
        "{d}"
    );
    assert!(d.get("error_kind").is_none(), "the horn's own failure: {d}");

    for h in ["h3", "h4"] {
        assert_eq!(final_state(&r, "b-local", h), "done", "{h}");
    }

    // Once for h1 (one failure, not per segment or packet); h2 not at all.
    assert_eq!(
        metrics.local_errors.count(LocalResource::Emfile, "horn"),
        before + 1
    );
    let text = metrics.encode();
    let want = format!(
        r#"tgw_local_errors_total{{kind="emfile",task="horn"}} {}"#,
        before + 1
    );
    assert!(text.contains(&want), "{want} in\n{text}");
    let alarm = metrics.local_errors.active().expect("local_limit raised");
    assert_eq!(
        (alarm.what, alarm.task),
        (LocalResource::Emfile, "horn"),
        "{alarm:?}"
    );
    shutdown.cancel();
    task.await.unwrap();
}
