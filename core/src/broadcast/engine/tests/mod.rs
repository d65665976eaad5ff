//! Tests of the broadcast engine: the cases of issue 7 one by one, then a
//! seeded random walk checking the invariants after every step.
//!
//! | module | owns |
//! |---|---|
//! | this file | the helpers: an engine, requests, filters over the actions |
//! | `cases` | the cases of issue 7 one by one, and the JSON operators receive |
//! | `random_walk` | a seeded random walk checking the invariants after every step |

use super::*;

const LEAD: i64 = 150;
const STOP_TIMEOUT: i64 = 2000;

fn engine() -> Engine {
    Engine::new(EngineConfig {
        lead_ms: LEAD,
        stop_timeout_ms: STOP_TIMEOUT,
    })
}

fn req(id: &str, priority: Priority, horns: &[&str], start_at: Ms) -> Request {
    Request {
        id: id.to_string(),
        priority,
        horns: horns.iter().map(|h| h.to_string()).collect(),
        start_at,
        latest_start: None,
        on_preempt: OnPreempt::Resume,
        segments: 4,
    }
}

fn starts(actions: &[Action]) -> Vec<(String, Vec<String>, Ms, u32)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Start {
                broadcast,
                horns,
                t0,
                from_segment,
            } => Some((broadcast.clone(), horns.clone(), *t0, *from_segment)),
            _ => None,
        })
        .collect()
}

fn stops(actions: &[Action]) -> Vec<(String, Vec<String>, StopReason)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Stop {
                broadcast,
                horns,
                reason,
            } => Some((broadcast.clone(), horns.clone(), reason.clone())),
            _ => None,
        })
        .collect()
}

/// The states reported for `broadcast` on `horn`, in order.
fn states(actions: &[Action], broadcast: &str, horn: &str) -> Vec<HornState> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Report {
                broadcast: b,
                horn: h,
                state,
                ..
            } if b == broadcast && h == horn => Some(state.clone()),
            _ => None,
        })
        .collect()
}

fn done(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::BroadcastDone { broadcast, .. } => Some(broadcast.clone()),
            _ => None,
        })
        .collect()
}

fn v(horns: &[&str]) -> Vec<String> {
    horns.iter().map(|h| h.to_string()).collect()
}

fn stopped(n: u32) -> Outcome {
    Outcome::Stopped { segments_done: n }
}

fn preempted(by: &str) -> StopReason {
    StopReason::Preempted { by: by.into() }
}

fn assert_forgotten(e: &Engine) {
    assert!(e.bcasts.is_empty(), "broadcasts left: {:?}", e.active());
    assert!(e.lines.horns.is_empty(), "horns left: {:?}", e.lines.horns);
    assert!(
        e.lines.timers.is_empty(),
        "timers left: {:?}",
        e.lines.timers
    );
    assert_eq!(e.next_deadline(), None);
}

mod cases;
mod random_walk;
