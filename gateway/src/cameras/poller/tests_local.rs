//! The gateway's own exhaustion is not the camera's: a check that fails
//! for want of a file descriptor (`EMFILE`, …) is no observation. The
//! camera keeps its verdict, rung, history and transitions; the call is
//! tried again next cycle; the gateway counts its trouble in
//! `tgw_local_errors_total`. Refused connections still mean offline. An
//! inventory that fails so is asked again after 10 s, its backoff not
//! grown. Scripted cameras on paused time.

use std::sync::Arc;
use std::time::Duration;

use device_drivers::local_error::LocalResource;

use super::tests::{Rig, SEC, cfg};
use crate::base::local_errors::LOCAL_RETRY;
use crate::base::metrics::Metrics;
use crate::cameras::fake::{self, Script};
use tgw_core::health::Verdict;

const MS: Duration = Duration::from_millis(5);

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
    rig.offline_after_three_misses(states).await;
}

#[tokio::test(start_paused = true)]
async fn a_describe_failing_for_want_of_descriptors_is_no_stream_failure_and_is_retried() {
    let rig = rig(10, 300);
    rig.until("two checks", 60 * SEC, |r| r.sink.of(1).len() >= 2)
        .await;
    let described = rig.cams.calls(1, "describe").len();
    assert_eq!(described, 1, "the first cycle describes");
    // The first sample is jittered over the 3600 s interval, so it may come
    // within this test: it fails on the gateway's side too, and is counted.
    let sampled = rig.cams.calls(1, "sample").len();
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
    // Each failed DESCRIBE or sample counted once (a cycle stops at the
    // first local failure, so never both in one cycle).
    let failed_samples = rig.cams.calls(1, "sample").len() - sampled;
    assert_eq!(
        rig.metrics
            .local_errors
            .count(LocalResource::Enobufs, "poller"),
        (d.len() - described + failed_samples) as u64
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

/// A camera adopted with a login but no inventory yet, checked every 30 s.
fn bare_rig(script: Script) -> Rig {
    Rig::start_seeded(
        cfg(30, 300, 3600),
        vec![script],
        Arc::new(Metrics::new()),
        |s, n| {
            fake::adopted_bare(s, n, true);
        },
    )
}

fn gaps(times: &[Duration]) -> Vec<Duration> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

/// An inventory that fails on the gateway's side (EMFILE) is no try of the
/// camera: asked again after LOCAL_RETRY (10 s) every time, with no forced
/// check in between, and the backoff does not grow — after five of them,
/// the first real failure waits the first step (30 s), not the sixth.
#[tokio::test(start_paused = true)]
async fn an_inventory_failing_on_the_gateways_side_is_asked_again_within_10_s_without_backoff() {
    let rig = bare_rig(Script {
        local_inventory: Some(LocalResource::Emfile),
        ..Script::default()
    });
    rig.until("five local inventories", 120 * SEC, |r| {
        r.cams.calls(1, "inventory").len() >= 5
    })
    .await;
    let asked = rig.cams.calls(1, "inventory");
    for g in gaps(&asked) {
        assert!(g <= LOCAL_RETRY + MS, "{:?}", gaps(&asked));
    }
    let span = asked[asked.len() - 1] - asked[0];
    let checks = rig
        .cams
        .calls(1, "clock")
        .iter()
        .filter(|at| (asked[0]..=asked[asked.len() - 1]).contains(*at))
        .count();
    // The 30 s checks (2), and one more at most when a check and a retry
    // fall due at the same instant; a forced check per local failure
    // would be 5 more.
    assert!(
        checks <= 3,
        "{checks} checks in {span:?}: a local inventory forced a check"
    );
    assert_eq!(
        rig.metrics
            .local_errors
            .count(LocalResource::Emfile, "inventory"),
        asked.len() as u64
    );

    // The gateway has descriptors again, but the camera refuses the login:
    // the next ask within LOCAL_RETRY fails for real, and the one after
    // comes one first step (30 s, at the next check) later.
    let n = asked.len();
    rig.cams.edit(1, |s| {
        s.local_inventory = None;
        s.auth_ok = false;
    });
    rig.until("two more inventories", 200 * SEC, |r| {
        r.cams.calls(1, "inventory").len() >= n + 2
    })
    .await;
    let (cams, _) = rig.stop().await;
    let asked = cams.calls(1, "inventory");
    let real = asked[n + 1] - asked[n];
    assert!(asked[n] - asked[n - 1] <= LOCAL_RETRY + MS, "{asked:?}");
    assert!(
        real >= 30 * SEC && real <= 30 * SEC + 30 * SEC,
        "after five local failures, a real one waited {real:?}"
    );
}

/// Real failures back off as before: 30 s, 60 s, 120 s, 240 s between asks
/// (each rounded up to the next 30 s check).
#[tokio::test(start_paused = true)]
async fn real_inventory_failures_back_off_as_before() {
    let rig = bare_rig(Script {
        auth_ok: false,
        ..Script::default()
    });
    rig.until("five refused inventories", 900 * SEC, |r| {
        r.cams.calls(1, "inventory").len() >= 5
    })
    .await;
    let (cams, _) = rig.stop().await;
    let asked = cams.calls(1, "inventory");
    for (i, g) in gaps(&asked).into_iter().enumerate() {
        let step = 30 * SEC * 2u32.pow(i as u32);
        assert!(
            g >= step && g <= step + 30 * SEC,
            "gap {i}: {g:?} ({asked:?})"
        );
    }
}
