//! No blind spots: every adopted camera is checked from adoption, whatever
//! its inventory state, and its verdict says why it is not fully checked
//! (a refused login, offline, an inventory that failed); a fixed login or
//! a camera coming back gets its inventory and streaming checks without a
//! restart. Scripted cameras on paused time, with the daemon's inventory
//! path (probe channel → inventory → wake).

use std::sync::Arc;

use super::tests::{Rig, SEC, cfg};
use crate::base::metrics::Metrics;
use crate::cameras::fake::{self, Script};
use crate::store::secrets::Password;
use tgw_core::health::{Reason, Verdict};

fn rejected(v: &Verdict) -> bool {
    matches!(v, Verdict::Degraded(r) if r.contains(&Reason::CredentialsRejected))
}

#[tokio::test(start_paused = true)]
async fn a_wrong_password_is_named_within_one_interval_and_a_fixed_login_turns_it_ok() {
    let wrong = Script {
        auth_ok: false,
        ..Script::default()
    };
    let rig = Rig::start_seeded(
        cfg(30, 300, 600),
        vec![wrong],
        Arc::new(Metrics::new()),
        |s, n| {
            fake::adopted_bare(s, n, true);
        },
    );
    let id = rig.store.adopted_camera_ids().expect("ids")[0].0.clone();
    // From adoption: a health object (not yet checked), counted unchecked.
    rig.until("a saved health", SEC, |r| {
        !r.store.all_health().unwrap().is_empty()
    })
    .await;
    // Counted unchecked until its first check. That check is jittered over
    // the 30 s interval, so about one run in a hundred it is already done
    // by now; only before it does the gauge have to say 1.
    if rig.sink.of(1).is_empty() {
        assert!(rig.metrics.encode().contains("tgw_cameras_unchecked 1"));
    }

    rig.until("a verdict", 30 * SEC, |r| !r.sink.of(1).is_empty())
        .await;
    let first = rig.sink.of(1).remove(0);
    assert!(rejected(&first.verdict), "{}", first.verdict);
    let text = rig.metrics.encode();
    assert!(text.contains("tgw_cameras_unchecked 0"), "{text}");
    assert!(
        text.contains(r#"tgw_cameras{village="unassigned",verdict="degraded"} 1"#),
        "{text}"
    );
    // The inventory was asked for (and refused), counted by kind; no
    // stream or snapshot was tried without one.
    rig.until("a refused inventory", 30 * SEC, |r| {
        r.metrics
            .encode()
            .contains(r#"tgw_camera_inventory_failures_total{kind="auth"} 1"#)
    })
    .await;
    assert!(rig.cams.calls(1, "describe").is_empty());
    assert!(rig.cams.calls(1, "snapshot").is_empty());
    let last = rig.sink.of(1).pop().expect("a state");
    assert!(rejected(&last.verdict), "{}", last.verdict);
    assert_eq!(last.inventory_error_kind.as_deref(), Some("auth"));

    // Retried with backoff, not every check: over 10 minutes of 30 s
    // checks, a handful of inventories.
    tokio::time::sleep(600 * SEC).await;
    let asked = rig.cams.calls(1, "inventory").len();
    assert!((2..=6).contains(&asked), "{asked} inventories in 10 min");

    // The technician sets the right login (as the API does): inventory,
    // then a full check, ok without a restart.
    rig.cams.edit(1, |s| s.auth_ok = true);
    rig.store
        .set_device_login(&id, "admin", &Password::new("right"))
        .expect("login");
    rig.probe.send(id.clone()).await.expect("probe");
    rig.until("ok", 5 * SEC, |r| {
        r.sink
            .of(1)
            .last()
            .is_some_and(|h| h.verdict == Verdict::Ok)
    })
    .await;
    let (cams, sink) = rig.stop().await;
    assert!(
        !cams.calls(1, "describe").is_empty(),
        "streaming checks start"
    );
    assert!(
        !cams.calls(1, "sample").is_empty(),
        "streaming checks start"
    );
    assert_eq!(
        sink.of(1).pop().expect("a state").inventory_error_kind,
        None
    );
}

#[tokio::test(start_paused = true)]
async fn a_camera_offline_before_its_first_inventory_is_offline_then_inventoried_when_back() {
    let down = Script {
        up: false,
        ..Script::default()
    };
    let rig = Rig::start_seeded(
        cfg(10, 300, 600),
        vec![down],
        Arc::new(Metrics::new()),
        |s, n| {
            fake::adopted_bare(s, n, true);
        },
    );
    rig.until("three missed checks", 40 * SEC, |r| r.sink.of(1).len() >= 3)
        .await;
    let h = rig.sink.of(1).pop().expect("a state");
    assert_eq!(h.verdict, Verdict::Offline);
    assert_eq!(h.consecutive_failures, 3);
    assert_eq!(h.last_error_kind.as_deref(), Some("connect"));
    // Not asked for while unreachable.
    assert!(rig.cams.calls(1, "inventory").is_empty());

    rig.cams.edit(1, |s| s.up = true);
    rig.until("ok and streaming", 30 * SEC, |r| {
        r.sink
            .of(1)
            .last()
            .is_some_and(|h| h.verdict == Verdict::Ok && h.last_sample.is_some())
    })
    .await;
    let (cams, _) = rig.stop().await;
    assert_eq!(cams.calls(1, "inventory").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn rtsp_and_snapshot_logins_back_off_with_the_onvif_one() {
    // ONVIF accepts the login but the stream refuses it (a separate RTSP
    // account): DESCRIBE and sample back off as the ONVIF call does.
    let mut c = cfg(10, 10, 10);
    c.auth_backoff_secs = 60 * SEC;
    let rig = Rig::start_seeded(
        c,
        vec![Script::default()],
        Arc::new(Metrics::new()),
        |s, n| {
            fake::adopted(s, n);
        },
    );
    rig.until("a first describe", 20 * SEC, |r| {
        !r.cams.calls(1, "describe").is_empty()
    })
    .await;
    rig.cams.edit(1, |s| s.rtsp_auth_ok = false);
    tokio::time::sleep(600 * SEC).await;
    let (cams, sink) = rig.stop().await;
    // Without backoff: 60 DESCRIBEs in 600 s; with it: 60, 120, 240 s apart.
    let d = cams.calls(1, "describe").len();
    assert!(
        d <= 6,
        "{d} DESCRIBEs in 600 s after a refused stream login"
    );
    assert!(cams.calls(1, "clock").len() >= 60, "cheap checks go on");
    let last = sink.of(1).pop().expect("a state");
    assert!(rejected(&last.verdict), "{}", last.verdict);
}

#[test]
fn idle_connections_are_kept_only_when_checks_come_often_enough_to_reuse_them() {
    use super::pool_idle;
    use std::time::Duration;
    let s = Duration::from_secs;
    // Default cadence (30 s): the burst of one cycle only.
    assert_eq!(pool_idle(s(30)), s(2));
    assert_eq!(pool_idle(s(300)), s(2));
    // Frequent checks reuse the connection from check to check.
    assert_eq!(pool_idle(s(5)), s(7));
    assert!(pool_idle(s(10)) > s(10));
}
