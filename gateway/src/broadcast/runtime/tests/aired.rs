//! What aired is kept: an emergency to the simulated horns is recorded as
//! it was rendered for them; a recorder that cannot write does not stop it.

use super::*;
use crate::broadcast::aired::Aired;

fn start_recording(
    w: &World,
    aired: Aired,
    shutdown: CancellationToken,
) -> (Broadcasts, tokio::task::JoinHandle<()>) {
    let settings = Settings {
        inline_render: true,
        aired: Some(aired),
        ..Settings::default()
    };
    start(
        Parts {
            records: Records::open(&w.store).unwrap(),
            publisher: Arc::new(crate::broadcast::runtime::NoReports),
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
            warnings: None,
            keys: crate::broadcast::signed::KeySet::from_config(&[]).unwrap(),
        },
        shutdown,
    )
}

fn emergency() -> Spec {
    Spec {
        id: Some("em-1".into()),
        origin: "operator:test".into(),
        title: "flood".into(),
        priority: Priority::Emergency,
        targets: vec![Target::Village("v1".into())],
        recipe: Recipe {
            pre: None,
            items: vec![crate::broadcast::render::Part::Chime],
            post: None,
            repeat: 2,
            interval: Duration::from_secs(2),
            volume: None,
        },
        start_at: None,
        latest_start: None,
        on_preempt: OnPreempt::Drop,
    }
}

/// The recording row once it left `recording` (recorded inside the
/// runtime task: `inline_render`).
fn ended(aired: &Aired, id: &str) -> crate::store::recordings::Recording {
    let r = aired
        .store()
        .recording(id)
        .unwrap()
        .expect("a recording row");
    assert_ne!(r.state, "recording", "{r:?}");
    r
}

/// A folder the recorder cannot write to: the emergency still plays to
/// the end on every horn, the recording is marked failed.
#[tokio::test(start_paused = true)]
async fn a_recorder_that_cannot_write_does_not_stop_the_emergency() {
    let w = world();
    let aired = Aired::open(w.store.clone(), w._dir.path(), w.clock.clone()).unwrap();
    let folder = w._dir.path().join(crate::broadcast::aired::DIR);
    std::fs::remove_dir(&folder).unwrap();
    std::fs::write(&folder, b"in the way").unwrap();
    let shutdown = CancellationToken::new();
    let (b, task) = start_recording(&w, aired.clone(), shutdown.clone());
    b.submit(emergency()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let r = Records::open(&w.store).unwrap();
    assert_eq!(final_state(&r, "em-1", "h1"), "done");
    assert_eq!(final_state(&r, "em-1", "h2"), "done");
    let rec = ended(&aired, "em-1");
    assert_eq!(rec.state, "failed");
    assert!(rec.error.is_some());
    shutdown.cancel();
    task.await.unwrap();
}

/// The emergency's recording lasts what the horns played: both repeats
/// and the silence between them.
#[tokio::test(start_paused = true)]
async fn an_emergency_is_recorded_as_long_as_it_aired() {
    let w = world();
    let aired = Aired::open(w.store.clone(), w._dir.path(), w.clock.clone()).unwrap();
    let shutdown = CancellationToken::new();
    let (b, task) = start_recording(&w, aired.clone(), shutdown.clone());
    b.submit(emergency()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let r = Records::open(&w.store).unwrap();
    assert_eq!(final_state(&r, "em-1", "h1"), "done");
    let rec = ended(&aired, "em-1");
    assert_eq!(rec.state, "done", "{rec:?}");
    let played: Vec<Played> = w
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p.horn == "h1")
        .cloned()
        .collect();
    assert_eq!(played.len(), 2);
    let samples: usize = played.iter().map(|p| p.samples).sum();
    assert_eq!(rec.duration_ms, (samples / 8) as i64 + 2000);
    let file = aired.path_of(&rec);
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        58 + (samples + 16_000) as u64
    );
    shutdown.cancel();
    task.await.unwrap();
}
