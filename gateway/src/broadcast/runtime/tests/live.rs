//! A live page's end as the centre sees it: a page that aired nothing (a
//! GB/T 28181 platform that never answered, a dashboard client that sent
//! nothing usable) ends `failed` on every horn with why, and the broadcast
//! `failed`, in the record and to the uplink; a page whose audio aired is
//! `done`. Failure paths first.

use std::sync::Mutex;

use serde_json::Value;

use super::*;
use crate::broadcast::runtime::live::NO_AUDIO;

/// The broadcast and horn reports the runtime hands to the uplink.
#[derive(Default)]
struct Sink {
    broadcast: Mutex<Vec<(String, Value)>>,
    horn: Mutex<Vec<(String, String, Value)>>,
}

impl ReportSink for Sink {
    fn speaker_state(&self, _: &str, _: Value) {}
    fn broadcast_state(&self, id: &str, body: Value) {
        self.broadcast.lock().unwrap().push((id.into(), body));
    }
    fn broadcast_horn(&self, id: &str, speaker: &str, body: Value) {
        self.horn
            .lock()
            .unwrap()
            .push((id.into(), speaker.into(), body));
    }
}

impl Sink {
    /// The last `broadcast/{id}` body.
    fn last_broadcast(&self, id: &str) -> Value {
        self.broadcast
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(b, _)| b == id)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no broadcast/{id} published"))
    }

    /// The last `broadcast/{id}/horn/{horn}` body.
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

/// A GB/T 28181 voice broadcast's page on the horns of village v1.
fn page() -> Spec {
    Spec {
        id: None,
        origin: "gb28181:county".into(),
        title: "GB/T 28181 broadcast by county".into(),
        priority: Priority::Superior,
        targets: vec![Target::Village("v1".into())],
        recipe: Recipe {
            pre: None,
            items: Vec::new(),
            post: None,
            repeat: 1,
            interval: Duration::ZERO,
            volume: None,
        },
        start_at: None,
        latest_start: None,
        on_preempt: OnPreempt::Drop,
    }
}

/// The runtime with `sink`, out of the night's quiet hours, and a live
/// page submitted on h1 and h2 and playing.
async fn live_page(
    w: &World,
    sink: Arc<Sink>,
    shutdown: &CancellationToken,
) -> (Broadcasts, tokio::task::JoinHandle<()>, LiveFeed, String) {
    let (b, task) = start_runtime_reporting(
        w,
        warnings(),
        crate::broadcast::signed::KeySet::from_config(&[]).unwrap(),
        sink,
        shutdown.clone(),
    );
    until(w, "09:30:00").await;
    let feed = LiveFeed::new();
    let s = b.submit_live(page(), feed.clone(), "county").await.unwrap();
    assert_eq!((s.horns, s.quiet), (2, 0), "{s:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = Records::open(&w.store).unwrap();
    let (row, _) = r.get(&s.id).unwrap().unwrap();
    assert_eq!(row.state, "playing");
    (b, task, feed, s.id)
}

/// The page's record once final (within 5 s of paused time).
async fn final_row(w: &World, id: &str) -> crate::broadcast::record::BroadcastRow {
    let r = Records::open(&w.store).unwrap();
    for _ in 0..500 {
        let (row, _) = r.get(id).unwrap().unwrap();
        if !["queued", "playing"].contains(&row.state.as_str()) {
            return row;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{id} never ended");
}

/// What a failed horn says, in its record.
fn why(w: &World, id: &str, horn: &str) -> Value {
    let r = Records::open(&w.store).unwrap();
    let (_, horns) = r.get(id).unwrap().unwrap();
    let h = horns.into_iter().find(|h| h.speaker == horn).unwrap();
    h.detail.map(|d| d["why"].clone()).unwrap_or(Value::Null)
}

/// The platform never answered our INVITE: the call fails the feed with
/// why and cancels the page, as `gb28181/voice.rs` does. Every horn ends
/// `failed` with that reason (not `done`), and the broadcast `failed`, in
/// the record and on `broadcast/{id}` and `broadcast/{id}/horn/{speaker}`.
#[tokio::test(start_paused = true)]
async fn a_page_that_aired_nothing_fails_every_horn_with_the_reason() {
    let w = world();
    let sink = Arc::new(Sink::default());
    let shutdown = CancellationToken::new();
    let (b, task, feed, id) = live_page(&w, sink.clone(), &shutdown).await;
    let reason = "the platform did not answer the INVITE (no-answer): nothing aired";
    feed.fail(reason);
    b.cancel(&id).await;
    let row = final_row(&w, &id).await;
    assert_eq!(row.state, "failed", "{row:?}");
    assert_eq!(row.counts.get("failed"), Some(&2), "{row:?}");
    let r = Records::open(&w.store).unwrap();
    for h in ["h1", "h2"] {
        assert_eq!(final_state(&r, &id, h), "failed", "{h}");
        assert_eq!(why(&w, &id, h), reason, "{h}");
        let m = sink.last_horn(&id, h);
        assert_eq!(m["state"], "failed", "{h}: {m}");
        assert_eq!(m["detail"]["why"], reason, "{h}: {m}");
        // The horn was given nothing, so it played nothing.
        let p = plays(&w, h, "09:30:00", "09:31:00");
        assert_eq!(p.iter().map(|p| p.samples).sum::<usize>(), 0, "{h}: {p:?}");
    }
    assert_eq!(sink.last_broadcast(&id)["state"], "failed");
    shutdown.cancel();
    task.await.unwrap();
}

/// A page ended (not failed) without a single frame: every horn fails
/// with the generic reason; the broadcast is `failed`.
#[tokio::test(start_paused = true)]
async fn a_page_ended_without_frames_fails_as_carrying_no_audio() {
    let w = world();
    let sink = Arc::new(Sink::default());
    let shutdown = CancellationToken::new();
    let (b, task, feed, id) = live_page(&w, sink.clone(), &shutdown).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    feed.end();
    b.cancel(&id).await;
    let row = final_row(&w, &id).await;
    assert_eq!(row.state, "failed", "{row:?}");
    for h in ["h1", "h2"] {
        assert_eq!(why(&w, &id, h), NO_AUDIO, "{h}");
        assert_eq!(sink.last_horn(&id, h)["detail"]["why"], NO_AUDIO, "{h}");
    }
    assert_eq!(sink.last_broadcast(&id)["state"], "failed");
    shutdown.cancel();
    task.await.unwrap();
}

/// Audio that aired keeps `done`: 1 s of frames at the playout pace, then
/// the page ends (and is cancelled, as its producers do): every horn
/// played them and is `done`, the broadcast `done`, whichever of the feed's
/// end or the cancel reaches the horn first.
#[tokio::test(start_paused = true)]
async fn a_page_whose_audio_aired_is_done() {
    let w = world();
    let sink = Arc::new(Sink::default());
    let shutdown = CancellationToken::new();
    let (b, task, feed, id) = live_page(&w, sink.clone(), &shutdown).await;
    let frame: Arc<[i16]> = Arc::from(vec![8000i16; 160]);
    for _ in 0..50 {
        feed.send(frame.clone());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(feed.frames(), 50);
    feed.end();
    b.cancel(&id).await;
    let row = final_row(&w, &id).await;
    assert_eq!(row.state, "done", "{row:?}");
    let r = Records::open(&w.store).unwrap();
    for h in ["h1", "h2"] {
        assert_eq!(final_state(&r, &id, h), "done", "{h}");
        assert_eq!(sink.last_horn(&id, h)["state"], "done", "{h}");
        let p = plays(&w, h, "09:30:00", "09:31:00");
        assert_eq!(p.iter().map(|p| p.samples).sum::<usize>(), 50 * 160, "{h}");
    }
    assert_eq!(sink.last_broadcast(&id)["state"], "done");
    shutdown.cancel();
    task.await.unwrap();
}
