//! 校时: with a time reference set (a GB/T 28181 platform's clock,
//! `[gb28181] time_source = true`), clock checks measure each camera
//! against it instead of our own clock. Scripted cameras on paused time.

use std::sync::Arc;

use super::tests::{Rig, SEC, cfg};
use crate::base::metrics::Metrics;
use crate::cameras::clock_sync::TimeReference;
use crate::cameras::fake::{self, Script};
use tgw_core::health::{Reason, Verdict};

fn drifting(v: &Verdict) -> bool {
    matches!(v, Verdict::Degraded(r) if r.contains(&Reason::ClockDrift))
}

/// A camera 30 s ahead of our clock is drifting; once the platform says
/// its clock is 30 s ahead of ours too, the camera agrees with the
/// reference (offset 0, no drift), and when the reference moves back to
/// ours the drift is named again.
#[tokio::test(start_paused = true)]
async fn camera_clock_is_checked_against_the_platform_clock() {
    let ahead = Script {
        clock_offset_ms: 30_000,
        ..Script::default()
    };
    let rig = Rig::start_seeded(
        cfg(10, 300, 600),
        vec![ahead],
        Arc::new(Metrics::new()),
        |s, n| {
            fake::adopted(s, n);
        },
    );
    rig.until("drift against our clock", 60 * SEC, |r| {
        r.sink
            .of(1)
            .last()
            .is_some_and(|h| drifting(&h.verdict) && h.clock_offset_ms == Some(30_000))
    })
    .await;

    let reference = Arc::new(TimeReference::default());
    assert_eq!(reference.relative(30_000), 30_000, "no reading: our clock");
    rig.poller.set_time_reference(reference.clone());
    reference.set(30_000, "county");
    let before = rig.sink.of(1).len();
    rig.until("a check against the platform", 60 * SEC, |r| {
        r.sink.of(1).len() > before
    })
    .await;
    let h = rig.sink.of(1)[before].clone();
    assert_eq!(h.clock_offset_ms, Some(0), "{h:?}");
    assert!(!drifting(&h.verdict), "{:?}", h.verdict);

    reference.set(0, "county");
    let before = rig.sink.of(1).len();
    rig.until("drift again", 60 * SEC, |r| r.sink.of(1).len() > before)
        .await;
    let (_, sink) = rig.stop().await;
    let h = sink.of(1)[before].clone();
    assert_eq!(h.clock_offset_ms, Some(30_000));
    assert!(drifting(&h.verdict), "{:?}", h.verdict);
    assert_eq!(reference.get().map(|r| r.1), Some("county".to_string()));
}
