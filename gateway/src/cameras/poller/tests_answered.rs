//! An event pull the camera answered since the last cycle stands for the
//! cheap check (`events::health::Answered`): no GetSystemDateAndTime of our
//! own, the camera stays up with the clock offset last measured. Never for a camera
//! whose last cycle failed, never on a cycle with a DESCRIBE or sample due,
//! never an answer older than the last cycle or forgotten after a failed
//! pull: a camera that stops answering goes offline after three missed
//! intervals as before. Scripted cameras on paused time.

use std::sync::Arc;

use super::tests::{Rig, SEC, cfg};
use crate::base::metrics::Metrics;
use crate::cameras::events::health::Conditions;
use crate::cameras::fake::{self, Script};
use tgw_core::health::Verdict;

/// One camera checked every 10 s, described every `describe` s, with the
/// event loops' shared state in place; its id. Its first sample is
/// jittered over 10⁷ s, so it never falls within a test (a cycle with a
/// sample due checks for itself).
/// The camera's clock is 2.5 s fast.
fn rig(describe: u64) -> (Rig, Arc<Conditions>, String) {
    let rig = Rig::start_seeded(
        cfg(10, describe, 10_000_000),
        vec![Script {
            clock_offset_ms: 2_500,
            ..Script::default()
        }],
        Arc::new(Metrics::new()),
        |s, n| {
            fake::adopted(s, n);
        },
    );
    let c = Arc::new(Conditions::default());
    rig.poller.set_conditions(c.clone());
    let id = rig.store.devices(None).expect("devices")[0].id.clone();
    (rig, c, id)
}

fn event_pull_checks(rig: &Rig) -> u64 {
    let text = rig.metrics.encode();
    text.lines()
        .find_map(|l| l.strip_prefix(r#"tgw_camera_checks_total{result="event_pull"} "#))
        .map_or(0, |v| v.parse().expect("a count"))
}

#[tokio::test(start_paused = true)]
async fn pulls_answered_stand_for_cheap_checks_until_one_fails() {
    let (rig, c, id) = rig(60);
    rig.until("two checks", 60 * SEC, |r| r.sink.of(1).len() >= 2)
        .await;
    let clocks = rig.cams.calls(1, "clock").len();
    let describes = rig.cams.calls(1, "describe").len();
    let states = rig.sink.of(1).len();

    // The camera answers a pull every 3 s for 120 s.
    for _ in 0..40 {
        c.answered.ok(&id);
        tokio::time::sleep(3 * SEC).await;
    }
    // Only the cycles that also described (every 60 s) asked the clock.
    let asked = rig.cams.calls(1, "clock").len() - clocks;
    let described = rig.cams.calls(1, "describe").len() - describes;
    assert_eq!(described, 2, "two DESCRIBE cycles in 120 s");
    assert_eq!(asked, described, "a real check only with a DESCRIBE");
    let published = rig.sink.of(1);
    assert!(published.len() >= states + 11, "a state each cycle");
    let last = published.last().expect("a state");
    assert_eq!(last.verdict, Verdict::Ok, "{}", last.verdict);
    assert_eq!(last.consecutive_failures, 0);
    assert_eq!(event_pull_checks(&rig), 10, "12 cycles, 2 of them real");
    // Every cycle kept the offset the real checks measured.
    assert!(
        published[states..]
            .iter()
            .all(|h| h.clock_offset_ms == Some(2_500) && h.last_seen.is_some())
    );
    // Each answered cycle moved last_seen on.
    let seen: Vec<_> = published[states..].iter().map(|h| h.last_seen).collect();
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");

    // The camera goes down: its next pull fails (forgotten) and every
    // cycle checks for itself again: offline after three.
    rig.cams.edit(1, |s| s.up = false);
    c.answered.forget(&id);
    let before = rig.sink.of(1).len();
    rig.offline_after_three_misses(before).await;
}

#[tokio::test(start_paused = true)]
async fn an_answer_is_taken_once_and_never_for_a_failing_camera() {
    // Described at the first check only: every later cycle is a cheap one.
    let (rig, c, id) = rig(3600);
    rig.until("two checks", 60 * SEC, |r| r.sink.of(1).len() >= 2)
        .await;
    // Just past a cycle: one answer, then none. The next cycle takes it,
    // the one after checks for itself (it is older than that cycle).
    let n = rig.sink.of(1).len();
    rig.until("a cycle", 20 * SEC, |r| r.sink.of(1).len() > n)
        .await;
    let clocks = rig.cams.calls(1, "clock").len();
    c.answered.ok(&id);
    let n = rig.sink.of(1).len();
    rig.until("two cycles", 30 * SEC, |r| r.sink.of(1).len() >= n + 2)
        .await;
    assert_eq!(event_pull_checks(&rig), 1, "taken once");
    assert_eq!(rig.cams.calls(1, "clock").len() - clocks, 1, "then a check");

    // A camera whose check failed is not kept up by answers that come
    // after (they would have to come from the server that just refused):
    // every cycle checks for itself until one succeeds.
    rig.cams.edit(1, |s| s.up = false);
    rig.until("a failed check", 30 * SEC, |r| {
        r.sink
            .of(1)
            .last()
            .is_some_and(|h| h.consecutive_failures == 1)
    })
    .await;
    let before = rig.sink.of(1).len();
    let counted = event_pull_checks(&rig);
    for _ in 0..30 {
        c.answered.ok(&id);
        tokio::time::sleep(2 * SEC).await;
        if rig
            .sink
            .of(1)
            .last()
            .is_some_and(|h| h.verdict == Verdict::Offline)
        {
            break;
        }
    }
    assert_eq!(event_pull_checks(&rig), counted, "no answer taken");
    let (_, sink) = rig.stop().await;
    let after: Vec<u32> = sink.of(1)[before..]
        .iter()
        .map(|h| h.consecutive_failures)
        .collect();
    assert_eq!(after, [2, 3]);
    assert_eq!(
        sink.of(1).last().expect("a state").verdict,
        Verdict::Offline
    );
}
