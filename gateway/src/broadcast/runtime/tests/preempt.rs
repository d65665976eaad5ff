//! Preemption as operators see it (issue 14.5): a routine broadcast cut by
//! an emergency reports `interrupted {by}` on each horn it lost, then a
//! `started` marked `resumed` when it gets the horn back, both in its
//! record's history and to the uplink (one message per change, none
//! coalesced). A broadcast that drops on preemption ends interrupted.

use std::sync::Mutex;

use serde_json::Value;

use super::*;

/// Every report the runtime hands to the uplink, in order.
#[derive(Default)]
struct Sink {
    horn: Mutex<Vec<(String, String, Value)>>,
    speaker: Mutex<Vec<(String, Value)>>,
}

impl ReportSink for Sink {
    fn speaker_state(&self, id: &str, body: Value) {
        self.speaker.lock().unwrap().push((id.into(), body));
    }
    fn broadcast_state(&self, _: &str, _: Value) {}
    fn broadcast_horn(&self, id: &str, speaker: &str, body: Value) {
        self.horn
            .lock()
            .unwrap()
            .push((id.into(), speaker.into(), body));
    }
}

fn chime(id: &str, priority: Priority, village: &str, on_preempt: OnPreempt) -> Spec {
    Spec {
        id: Some(id.into()),
        origin: "operator:test".into(),
        title: id.into(),
        priority,
        targets: vec![Target::Village(village.into())],
        recipe: Recipe {
            pre: None,
            items: vec![crate::broadcast::render::Part::Chime],
            post: None,
            repeat: 1,
            interval: Duration::ZERO,
            volume: None,
        },
        start_at: None,
        latest_start: None,
        on_preempt,
    }
}

/// The demo's case: an emergency over a one-part routine notice, cut in
/// its first part (so it resumes from segment 0, which the old runtime
/// took for the first `queued` and hid).
#[tokio::test(start_paused = true)]
async fn a_preempted_broadcast_reports_interrupted_then_resumed() {
    let w = world();
    let sink = Arc::new(Sink::default());
    let shutdown = CancellationToken::new();
    let (b, task) = start_runtime_reporting(
        &w,
        warnings(),
        crate::broadcast::signed::KeySet::from_config(&[]).unwrap(),
        sink.clone(),
        shutdown.clone(),
    );
    let chime_ms = (crate::broadcast::render::chime().len() / 8) as u64;
    assert!(
        chime_ms > 600,
        "the chime is long enough to cut: {chime_ms}"
    );
    until(&w, "09:30:00").await; // out of the night's quiet hours
    b.submit(chime("notice", Priority::Routine, "v1", OnPreempt::Resume))
        .await
        .unwrap();
    b.submit(chime("keep-off", Priority::Routine, "v2", OnPreempt::Drop))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = Spec {
        targets: vec![Target::All],
        ..chime("em", Priority::Emergency, "v1", OnPreempt::Drop)
    };
    b.submit(all).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // "Now playing": the emergency plays, the notice waits to resume; the
    // one that dropped is finished.
    let r = Records::open(&w.store).unwrap();
    let ids = |v: Vec<crate::broadcast::record::BroadcastRow>| {
        let mut v: Vec<String> = v.into_iter().map(|b| b.id).collect();
        v.sort();
        v
    };
    let mine = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .filter(|x| ["em", "notice", "keep-off"].contains(&x.as_str()))
            .collect()
    };
    assert_eq!(
        mine(ids(r.list_in(10, &["queued", "playing"]).unwrap())),
        ["em", "notice"]
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(mine(ids(r.list_in(10, &["queued", "playing"]).unwrap())).is_empty());
    assert_eq!(
        mine(ids(r.list_in(10, &["done"]).unwrap())),
        ["em", "notice"]
    );
    assert_eq!(mine(ids(r.list(10).unwrap())), ["em", "keep-off", "notice"]);
    for h in ["h1", "h2"] {
        assert_eq!(
            history(&r, "notice", h),
            ["queued", "started", "interrupted", "started", "done"],
            "{h}"
        );
        let ev: Vec<_> = r
            .events("notice")
            .unwrap()
            .into_iter()
            .filter(|(x, ..)| x.as_deref() == Some(h))
            .collect();
        let cut = ev[2].3.clone().unwrap();
        assert_eq!(cut["by"], "em", "{h}: {cut}");
        assert_eq!(cut["resuming"], true, "{h}: {cut}");
        let again = ev[3].3.clone().unwrap();
        assert_eq!(again["resumed"], true, "{h}: {again}");
        assert_eq!(again["from_segment"], 0, "{h}: {again}");
        assert_eq!(final_state(&r, "notice", h), "done");
        // The horn played: notice (cut), emergency, notice again in full.
        let p = plays(&w, h, "09:30:00", "09:31:00");
        assert_eq!(p.len(), 3, "{h}: {p:?}");
        assert!(p[0].cancelled && !p[1].cancelled && !p[2].cancelled);
        assert!(p[2].start >= p[1].end);
    }
    for h in ["h3", "h4"] {
        assert_eq!(
            history(&r, "keep-off", h),
            ["queued", "started", "interrupted"],
            "{h}"
        );
        assert_eq!(final_state(&r, "keep-off", h), "interrupted");
        let (_, horns) = r.get("keep-off").unwrap().unwrap();
        let d = horns.iter().find(|x| x.speaker == h).unwrap();
        let d = d.detail.clone().unwrap();
        assert_eq!(
            (d["by"].as_str(), d["resuming"].as_bool()),
            (Some("em"), Some(false))
        );
    }
    let (row, _) = r.get("keep-off").unwrap().unwrap();
    assert_eq!(row.state, "interrupted");
    let (row, _) = r.get("notice").unwrap().unwrap();
    assert_eq!(row.state, "done");

    // The uplink got every change of every pair, in order, on the per-horn
    // report (the measured start adds one `started` with `measured`).
    let sent = sink.horn.lock().unwrap().clone();
    for h in ["h1", "h2"] {
        let states: Vec<String> = sent
            .iter()
            .filter(|(bid, s, v)| bid == "notice" && s == h && v["detail"]["measured"] != true)
            .map(|(_, _, v)| v["state"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            states,
            ["queued", "started", "interrupted", "started", "done"],
            "{h}"
        );
    }
    for h in ["h1", "h2", "h3", "h4"] {
        assert!(
            sent.iter()
                .any(|(bid, s, v)| bid == "em" && s == h && v["state"] == "done"),
            "{h}: the emergency's done reached the uplink"
        );
        let last = sink
            .speaker
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(s, _)| s == h)
            .cloned()
            .unwrap();
        assert_eq!(last.1["state"], "done", "{h}: {}", last.1);
    }
    shutdown.cancel();
    task.await.unwrap();
}
