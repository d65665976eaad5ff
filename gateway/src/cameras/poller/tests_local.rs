//! The gateway's own exhaustion is not the camera's: a check that fails
//! for want of a file descriptor (`EMFILE`, …) is no observation. The
//! camera keeps its verdict, rung, history and transitions; the call is
//! tried again next cycle; the gateway counts its trouble in
//! `tgw_local_errors_total`. Refused connections still mean offline.
//! Scripted cameras on paused time.

use std::sync::Arc;

use device_drivers::local_error::LocalResource;

use super::tests::{Rig, SEC, cfg};
use crate::base::metrics::Metrics;
use crate::cameras::fake::{self, Script};
use tgw_core::health::{Rung, Verdict};

fn rig(check: u64, describe: u64) -> Rig {
    Rig::start_seeded(
        cfg(check, describe, 3600),
        vec![Script::default()],
        Arc::new(Metrics::new()),
        |s, n| {
            fake::adopted(s, n);
        },
    )
}

#[tokio::test(start_paused = true)]
async fn a_check_failing_for_want_of_descriptors_leaves_an_ok_camera_ok() {
    let rig = rig(10, 300);
    let id = rig.store.devices(None).unwrap()[0].id.clone();
    rig.until("two checks", 60 * SEC, |r| r.sink.of(1).len() >= 2)
        .await;
    let ok = rig.sink.of(1).pop().expect("a state");
    assert_eq!(ok.verdict, Verdict::Ok);
    let states = rig.sink.of(1).len();
    let events = rig.store.health_events(Some(&id), 100).unwrap().len();
    let points = rig.store.history_points(&id).unwrap();
    let clocks = rig.cams.calls(1, "clock").len();

    // Ten check intervals (offline after three) out of file descriptors.
    rig.cams.edit(1, |s| s.local = Some(LocalResource::Emfile));
    tokio::time::sleep(100 * SEC).await;
    let tried = rig.cams.calls(1, "clock").len() - clocks;
    assert!(tried >= 9, "checked again every cycle: {tried}");
    assert_eq!(rig.sink.of(1).len(), states, "nothing published");
    let saved = rig.store.health(&id).unwrap().expect("health");
    assert_eq!(saved.verdict, Verdict::Ok, "held against the camera");
    assert_eq!(saved.rung, ok.rung);
    assert_eq!(saved.consecutive_failures, 0);
    assert_eq!(
        rig.store.health_events(Some(&id), 100).unwrap().len(),
        events,
        "a transition was recorded"
    );
    assert_eq!(rig.store.history_points(&id).unwrap(), points);
    let counted = rig
        .metrics
        .local_errors
        .count(LocalResource::Emfile, "poller");
    assert_eq!(counted, tried as u64);
    assert!(
        rig.metrics
            .encode()
            .contains(r#"tgw_local_errors_total{kind="emfile",task="poller"}"#)
    );

    // The same camera refusing connections goes offline as before.
    rig.cams.edit(1, |s| {
        s.local = None;
        s.up = false;
    });
    rig.until("offline", 60 * SEC, |r| {
        r.sink
            .of(1)
            .last()
            .is_some_and(|h| h.verdict == Verdict::Offline)
    })
    .await;
    let (_, sink) = rig.stop().await;
    let missed: Vec<u32> = sink.of(1)[states..]
        .iter()
        .map(|h| h.consecutive_failures)
        .collect();
    assert_eq!(missed, [1, 2, 3]);
    assert_eq!(sink.of(1).last().expect("a state").rung, Rung::Unreachable);
}

#[tokio::test(start_paused = true)]
async fn a_describe_failing_for_want_of_descriptors_is_no_stream_failure_and_is_retried() {
    let rig = rig(10, 300);
    rig.until("two checks", 60 * SEC, |r| r.sink.of(1).len() >= 2)
        .await;
    let described = rig.cams.calls(1, "describe").len();
    assert_eq!(described, 1, "the first cycle describes");
    rig.cams
        .edit(1, |s| s.local_rtsp = Some(LocalResource::Enobufs));
    rig.until("the next describe", 400 * SEC, |r| {
        r.cams.calls(1, "describe").len() > described
    })
    .await;
    // Tried again at each check (10 s), not after the 300 s interval.
    tokio::time::sleep(35 * SEC).await;
    let d = rig.cams.calls(1, "describe");
    assert!(d.len() >= described + 4, "{d:?}");
    let last = rig.sink.of(1).pop().expect("a state");
    assert_eq!(last.verdict, Verdict::Ok, "{}", last.verdict);
    assert_eq!(
        rig.metrics
            .local_errors
            .count(LocalResource::Enobufs, "poller"),
        (d.len() - described) as u64
    );

    // Once it works, back to the 300 s interval.
    rig.cams.edit(1, |s| s.local_rtsp = None);
    tokio::time::sleep(11 * SEC).await;
    let n = rig.cams.calls(1, "describe").len();
    tokio::time::sleep(100 * SEC).await;
    let (cams, sink) = rig.stop().await;
    assert_eq!(
        cams.calls(1, "describe").len(),
        n,
        "described again too soon"
    );
    assert_eq!(sink.of(1).pop().expect("a state").verdict, Verdict::Ok);
}
