//! The supervisor reacts to the store's writes on paused time: a camera
//! adopted while the poller runs is polled (and has a saved health) at
//! once, not at the slow safety rescan; a removed one stops being checked;
//! a login set without any wake reaches the camera's next authenticated
//! call.

use std::sync::Arc;

use super::SAFETY_RESCAN;
use super::tests::{Rig, SEC, cfg};
use crate::base::metrics::Metrics;
use crate::cameras::fake::{self, Script};
use crate::store::secrets::Password;

fn has_health(rig: &Rig, id: &str) -> bool {
    rig.store
        .all_health()
        .unwrap_or_default()
        .iter()
        .any(|(i, _)| i == id)
}

#[tokio::test(start_paused = true)]
async fn adoption_and_removal_are_seen_at_once_not_at_the_rescan() {
    // Camera 2 is scripted but not in the store yet.
    let rig = Rig::start_seeded(
        cfg(30, 300, 600),
        vec![Script::default(); 2],
        Arc::new(Metrics::new()),
        |store, n| {
            if n == 1 {
                fake::adopted(store, n);
            }
        },
    );
    let first = rig.store.adopted_camera_ids().expect("ids")[0].0.clone();
    rig.until("camera 1 polled", SEC, |r| has_health(r, &first))
        .await;
    tokio::time::sleep(2 * SEC).await;
    let second = fake::adopted(&rig.store, 2);
    // The change signal, not the rescan (60 s) nor a check (30 s).
    assert!(SAFETY_RESCAN > 10 * SEC);
    rig.until("camera 2 polled", SEC, |r| has_health(r, &second))
        .await;
    rig.until("camera 2 checked", 31 * SEC, |r| {
        !r.cams.calls(2, "clock").is_empty()
    })
    .await;
    // Removed: not checked again.
    rig.store.ignore(&first).expect("ignore");
    tokio::time::sleep(SEC).await;
    let checks = rig.cams.calls(1, "clock").len();
    tokio::time::sleep(5 * SAFETY_RESCAN).await;
    assert_eq!(rig.cams.calls(1, "clock").len(), checks, "still checked");
    assert!(rig.cams.calls(2, "clock").len() >= 10, "the other goes on");
    rig.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_login_set_without_a_wake_is_used_by_the_next_authenticated_call() {
    let rig = Rig::start_seeded(
        cfg(30, 300, 600),
        vec![Script::default()],
        Arc::new(Metrics::new()),
        |store, n| {
            fake::adopted_bare(store, n, false);
        },
    );
    let id = rig.store.adopted_camera_ids().expect("ids")[0].0.clone();
    rig.until("checked", 31 * SEC, |r| {
        !r.cams.calls(1, "clock").is_empty()
    })
    .await;
    tokio::time::sleep(400 * SEC).await;
    assert!(
        rig.cams.calls(1, "auth").is_empty(),
        "no login, no auth call"
    );
    // Written straight to the store: no probe, no wake.
    rig.store
        .set_device_login(&id, "admin", &Password::new("secret"))
        .expect("login");
    rig.until("authenticated call", 331 * SEC, |r| {
        !r.cams.calls(1, "auth").is_empty()
    })
    .await;
    rig.stop().await;
}
