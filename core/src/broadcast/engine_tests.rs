//! Tests of the broadcast engine: the cases of issue 7 one by one, then a
//! seeded random walk checking the invariants after every step.

use std::collections::{HashMap, HashSet};

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

/// (1) Submitted ahead of time: queued, no start until `start_at − lead`,
/// then T0 = `start_at` exactly; a late tick gives now + lead.
#[test]
fn ahead_of_time_fires_at_start_at_exactly() {
    let mut e = engine();
    let a = e
        .submit(req("r", Priority::Routine, &["A", "B"], 10_000), 0)
        .unwrap();
    assert_eq!(
        states(&a, "r", "A"),
        vec![HornState::Queued { from_segment: 0 }]
    );
    assert!(starts(&a).is_empty());
    assert_eq!(e.next_deadline(), Some(10_000 - LEAD));
    assert_eq!(e.horn("A").unwrap().later, v(&["r"]));
    assert!(e.tick(9_849).is_empty());
    let a = e.tick(9_850);
    assert_eq!(starts(&a), vec![("r".into(), v(&["A", "B"]), 10_000, 0)]);
    assert_eq!(
        states(&a, "r", "B"),
        vec![HornState::Started {
            t0: 10_000,
            from_segment: 0
        }]
    );

    // Late tick: as soon as possible, still one T0 for all horns.
    e.submit(req("s", Priority::Routine, &["C", "D"], 20_000), 0)
        .unwrap();
    let a = e.tick(20_100);
    assert_eq!(
        starts(&a),
        vec![("s".into(), v(&["C", "D"]), 20_100 + LEAD, 0)]
    );

    // Due now but start_at a little ahead: T0 = max(start_at, now + lead).
    let a = e
        .submit(req("t", Priority::Routine, &["E"], 20_200), 20_100)
        .unwrap();
    assert_eq!(starts(&a)[0].2, 20_250);
    let a = e
        .submit(req("u", Priority::Routine, &["F"], 20_000), 20_100)
        .unwrap();
    assert_eq!(starts(&a)[0].2, 20_250);
}

/// Any call runs due timers, not only `tick`.
#[test]
fn other_calls_run_due_timers() {
    let mut e = engine();
    e.submit(req("r", Priority::Routine, &["A"], 1_000), 0)
        .unwrap();
    let a = e.cancel("nobody", 850);
    assert_eq!(starts(&a), vec![("r".into(), v(&["A"]), 1_000, 0)]);
}

/// (2) Emergency on A,B while routine plays A,B,C: Stop on A,B only; each
/// horn starts the emergency only once its own stop is confirmed; horns
/// confirmed in one call share one Start.
#[test]
fn preemption_waits_for_each_stop() {
    let mut e = engine();
    e.submit(req("r", Priority::Routine, &["A", "B", "C", "D"], 0), 0)
        .unwrap();
    let a = e
        .submit(req("e", Priority::Emergency, &["A", "B", "D"], 0), 100)
        .unwrap();
    assert_eq!(
        stops(&a),
        vec![("r".into(), v(&["A", "B", "D"]), preempted("e"))]
    );
    assert!(starts(&a).is_empty());
    let hv = e.horn("A").unwrap();
    assert_eq!(hv.playing.unwrap().stopping, Some(preempted("e")));
    assert_eq!(hv.waiting[0].broadcast, "e");

    let a = e.finished("r", "A", stopped(1), 200);
    assert_eq!(starts(&a), vec![("e".into(), v(&["A"]), 200 + LEAD, 0)]);
    assert_eq!(
        states(&a, "r", "A"),
        vec![HornState::Queued { from_segment: 1 }]
    );
    let a = e.finished("r", "B", stopped(2), 260);
    assert_eq!(starts(&a), vec![("e".into(), v(&["B"]), 260 + LEAD, 0)]);
    // C keeps playing routine.
    assert_eq!(e.horn("C").unwrap().playing.unwrap().broadcast, "r");
    // D never confirms: after the timeout it is Failed and e starts there.
    assert!(starts(&e.tick(100 + STOP_TIMEOUT - 1)).is_empty());
    let a = e.tick(100 + STOP_TIMEOUT);
    assert_eq!(
        states(&a, "r", "D"),
        vec![HornState::Failed {
            why: DID_NOT_STOP.into()
        }]
    );
    assert_eq!(starts(&a), vec![("e".into(), v(&["D"]), 2_100 + LEAD, 0)]);
    // The late confirmation is ignored.
    assert!(e.finished("r", "D", stopped(2), 2_200).is_empty());
}

/// (2) Horns whose stops time out in the same tick start together.
#[test]
fn horns_freed_by_one_call_start_together() {
    let mut e = engine();
    e.submit(req("r", Priority::Routine, &["A", "B"], 0), 0)
        .unwrap();
    e.submit(req("e", Priority::Emergency, &["A", "B"], 0), 10)
        .unwrap();
    let a = e.tick(10 + STOP_TIMEOUT);
    assert_eq!(
        starts(&a),
        vec![("e".into(), v(&["A", "B"]), 10 + STOP_TIMEOUT + LEAD, 0)]
    );
    assert_eq!(done(&a), v(&["r"]));
}

/// (3) After the emergency, a `Resume` routine continues from
/// `segments_done` (Queued, then Started); a `Drop` one ends Interrupted.
#[test]
fn resume_and_drop_after_preemption() {
    let mut e = engine();
    e.submit(req("r", Priority::Routine, &["A", "B"], 0), 0)
        .unwrap();
    let mut d = req("d", Priority::Routine, &["C"], 0);
    d.on_preempt = OnPreempt::Drop;
    e.submit(d, 0).unwrap();
    e.submit(req("e", Priority::Emergency, &["A", "B", "C"], 0), 100)
        .unwrap();
    let mut a = e.finished("r", "A", stopped(2), 150);
    a.extend(e.finished("r", "B", stopped(3), 150));
    a.extend(e.finished("d", "C", stopped(1), 150));
    assert_eq!(
        states(&a, "r", "A"),
        vec![HornState::Queued { from_segment: 2 }]
    );
    assert_eq!(
        states(&a, "d", "C"),
        vec![HornState::Interrupted { by: "e".into() }]
    );
    assert_eq!(done(&a), v(&["d"]));
    let mut a = e.finished("e", "A", Outcome::Done, 5_000);
    a.extend(e.finished("e", "B", Outcome::Done, 5_000));
    a.extend(e.finished("e", "C", Outcome::Done, 5_000));
    assert_eq!(
        starts(&a),
        vec![
            ("r".into(), v(&["A"]), 5_000 + LEAD, 2),
            ("r".into(), v(&["B"]), 5_000 + LEAD, 3)
        ]
    );
    assert_eq!(
        states(&a, "r", "A"),
        vec![HornState::Started {
            t0: 5_150,
            from_segment: 2
        }]
    );
    assert_eq!(done(&a), v(&["e"]));
    e.finished("r", "A", Outcome::Done, 9_000);
    let a = e.finished("r", "B", Outcome::Done, 9_000);
    assert_eq!(done(&a), v(&["r"]));
    assert_forgotten(&e);
}

/// A stop that reports every segment done counts as Done, not a resume.
#[test]
fn stop_racing_the_end_is_done() {
    let mut e = engine();
    e.submit(req("r", Priority::Routine, &["A"], 0), 0).unwrap();
    e.submit(req("e", Priority::Emergency, &["A"], 0), 0)
        .unwrap();
    let a = e.finished("r", "A", stopped(4), 10);
    assert_eq!(states(&a, "r", "A"), vec![HornState::Done]);
    assert_eq!(starts(&a)[0].0, "e");
}

/// (4) Equal priority waits; when the first finishes the second starts.
/// (5) Waiting order: priority descending, then submit order.
#[test]
fn equal_waits_and_queue_order() {
    let mut e = engine();
    e.submit(req("x", Priority::Township, &["A"], 0), 0)
        .unwrap();
    let a = e
        .submit(req("t1", Priority::Township, &["A"], 0), 1)
        .unwrap();
    assert!(stops(&a).is_empty() && starts(&a).is_empty());
    for (id, p) in [
        ("r1", Priority::Routine),
        ("s1", Priority::Superior),
        ("r2", Priority::Routine),
        ("t2", Priority::Township),
    ] {
        let a = e.submit(req(id, p, &["A"], 0), 2).unwrap();
        if id == "s1" {
            assert_eq!(stops(&a), vec![("x".into(), v(&["A"]), preempted("s1"))]);
        } else {
            assert!(stops(&a).is_empty());
        }
    }
    let order: Vec<String> = e
        .horn("A")
        .unwrap()
        .waiting
        .into_iter()
        .map(|w| w.broadcast)
        .collect();
    assert_eq!(order, v(&["s1", "t1", "t2", "r1", "r2"]));
    // x resumes ahead of t1 (same priority, submitted earlier).
    let a = e.finished("x", "A", stopped(1), 10);
    assert_eq!(starts(&a)[0].0, "s1");
    let mut seen = vec![];
    let mut now = 100;
    while let Some(p) = e.horn("A").and_then(|h| h.playing) {
        seen.push(p.broadcast.clone());
        now += 100;
        e.finished(&p.broadcast, "A", Outcome::Done, now);
    }
    assert_eq!(seen, v(&["s1", "x", "t1", "t2", "r1", "r2"]));
    assert_forgotten(&e);
}

/// (6) Cancel: queued-only, partially playing, unknown.
#[test]
fn cancel_cases() {
    let mut e = engine();
    e.submit(req("s", Priority::Superior, &["B"], 0), 0)
        .unwrap();
    // Queued only (behind s on B, and later on C).
    e.submit(req("q", Priority::Routine, &["B"], 0), 0).unwrap();
    e.submit(req("l", Priority::Routine, &["C"], 50_000), 0)
        .unwrap();
    let a = e.cancel("q", 10);
    assert_eq!(states(&a, "q", "B"), vec![HornState::Cancelled]);
    assert_eq!(done(&a), v(&["q"]));
    let a = e.cancel("l", 10);
    assert_eq!(done(&a), v(&["l"]));
    assert!(e.horn("C").is_none());
    assert_eq!(e.next_deadline(), None);

    // Partially playing: plays on A, waits on B.
    e.submit(req("p", Priority::Routine, &["A", "B"], 0), 20)
        .unwrap();
    let a = e.cancel("p", 30);
    assert_eq!(states(&a, "p", "B"), vec![HornState::Cancelled]);
    assert_eq!(
        stops(&a),
        vec![("p".into(), v(&["A"]), StopReason::Cancelled)]
    );
    assert!(done(&a).is_empty());
    assert_eq!(
        e.broadcast("p").unwrap().horns[0].stopping,
        Some(StopReason::Cancelled)
    );
    let a = e.finished("p", "A", stopped(1), 40);
    assert_eq!(states(&a, "p", "A"), vec![HornState::Cancelled]);
    assert_eq!(done(&a), v(&["p"]));

    // Unknown, and already done.
    assert!(e.cancel("nope", 50).is_empty());
    assert!(e.cancel("p", 50).is_empty());
}

/// Cancelling a broadcast being stopped for preemption: ends Cancelled,
/// not resumed.
#[test]
fn cancel_while_preempted_stop_pending() {
    let mut e = engine();
    e.submit(req("r", Priority::Routine, &["A"], 0), 0).unwrap();
    e.submit(req("e", Priority::Emergency, &["A"], 0), 0)
        .unwrap();
    assert!(stops(&e.cancel("r", 5)).is_empty());
    let a = e.finished("r", "A", stopped(1), 10);
    assert_eq!(states(&a, "r", "A"), vec![HornState::Cancelled]);
}

/// (7) stop_all cancels everything: playing, queued, scheduled, stopping
/// for preemption, and waiting to resume; it repeats Stop for horns already
/// stopping.
#[test]
fn stop_all_cancels_everything() {
    let mut e = engine();
    e.submit(req("r", Priority::Routine, &["A", "B"], 0), 0)
        .unwrap();
    e.submit(req("e", Priority::Emergency, &["A", "B"], 0), 0)
        .unwrap();
    e.finished("r", "A", stopped(1), 10); // A: r waits to resume, e plays.
    // B: r is being stopped for e.
    e.submit(req("later", Priority::Township, &["C"], 90_000), 10)
        .unwrap();
    e.submit(req("b", Priority::Background, &["A"], 0), 10)
        .unwrap();
    let a = e.stop_all(20);
    assert_eq!(
        stops(&a),
        vec![
            ("r".into(), v(&["B"]), StopReason::StopAll),
            ("e".into(), v(&["A"]), StopReason::StopAll)
        ]
    );
    assert_eq!(states(&a, "r", "A"), vec![HornState::Cancelled]);
    assert_eq!(states(&a, "b", "A"), vec![HornState::Cancelled]);
    assert_eq!(states(&a, "later", "C"), vec![HornState::Cancelled]);
    assert_eq!(done(&a), v(&["later", "b"]));
    let a = e.finished("r", "B", stopped(1), 30);
    assert_eq!(states(&a, "r", "B"), vec![HornState::Cancelled]);
    // e was waiting for B; cancelled too, so B stays quiet.
    assert!(starts(&a).is_empty());
    let a = e.finished("e", "A", stopped(0), 30);
    assert_eq!(states(&a, "e", "A"), vec![HornState::Cancelled]);
    assert_eq!(done(&a), v(&["e"]));
    assert_forgotten(&e);
}

/// (8) A failing horn ends Failed; the others carry on. (9) BroadcastDone
/// comes once, after the last final state.
#[test]
fn failure_on_one_horn() {
    let mut e = engine();
    e.submit(req("r", Priority::Routine, &["A", "B"], 0), 0)
        .unwrap();
    let a = e.finished("r", "A", Outcome::Failed("no answer".into()), 100);
    assert_eq!(
        states(&a, "r", "A"),
        vec![HornState::Failed {
            why: "no answer".into()
        }]
    );
    assert!(done(&a).is_empty());
    assert!(e.horn("A").is_none());
    assert!(e.finished("r", "A", Outcome::Done, 110).is_empty());
    let a = e.finished("r", "B", Outcome::Done, 200);
    assert_eq!(done(&a), v(&["r"]));
    assert!(e.finished("r", "B", Outcome::Done, 210).is_empty());
    assert_forgotten(&e);
}

/// A horn stopped without being asked (and not at the end) is Failed.
#[test]
fn unasked_stop_is_failed() {
    let mut e = engine();
    e.submit(req("r", Priority::Routine, &["A"], 0), 0).unwrap();
    let a = e.finished("r", "A", stopped(1), 10);
    assert!(
        matches!(&states(&a, "r", "A")[0], HornState::Failed { why } if why.contains("1 of 4"))
    );
}

/// Queued waiting is bounded by latest_start; an emergency without one
/// waits forever; a resume past latest_start ends Interrupted.
#[test]
fn expiry() {
    let mut e = engine();
    e.submit(req("x", Priority::Emergency, &["A", "B"], 0), 0)
        .unwrap();
    let mut r = req("r", Priority::Routine, &["A"], 0);
    r.latest_start = Some(1_000);
    e.submit(r, 0).unwrap();
    e.submit(req("e", Priority::Emergency, &["A"], 0), 0)
        .unwrap();
    assert_eq!(e.next_deadline(), Some(1_001));
    assert!(e.tick(1_000).is_empty());
    let a = e.tick(1_001);
    assert_eq!(
        states(&a, "r", "A"),
        vec![HornState::Dropped {
            why: EXPIRED.into()
        }]
    );
    assert_eq!(done(&a), v(&["r"]));
    assert_eq!(e.next_deadline(), None);
    let a = e.finished("x", "A", Outcome::Done, 1_000_000);
    assert_eq!(starts(&a)[0].0, "e");

    // Already past at submit.
    let mut late = req("late", Priority::Routine, &["C"], 0);
    late.latest_start = Some(5);
    let a = e.submit(late, 10).unwrap();
    assert_eq!(
        states(&a, "late", "C"),
        vec![
            HornState::Queued { from_segment: 0 },
            HornState::Dropped {
                why: EXPIRED.into()
            }
        ]
    );
    assert_eq!(done(&a), v(&["late"]));

    // Resume past latest_start: Interrupted.
    let mut r = req("r2", Priority::Routine, &["D"], 0);
    r.latest_start = Some(1_000_050);
    e.submit(r, 1_000_000).unwrap();
    e.submit(req("e2", Priority::Emergency, &["D"], 0), 1_000_100)
        .unwrap();
    let a = e.finished("r2", "D", stopped(1), 1_000_200);
    assert_eq!(
        states(&a, "r2", "D"),
        vec![HornState::Interrupted { by: "e2".into() }]
    );
}

/// A higher priority scheduled ahead does not hold the horn early; when
/// its time comes it preempts what plays.
#[test]
fn scheduled_higher_priority_preempts_at_its_time() {
    let mut e = engine();
    e.submit(req("e", Priority::Emergency, &["A"], 10_000), 0)
        .unwrap();
    let a = e.submit(req("r", Priority::Routine, &["A"], 0), 0).unwrap();
    assert_eq!(starts(&a)[0].0, "r");
    let a = e.tick(9_850);
    assert_eq!(stops(&a), vec![("r".into(), v(&["A"]), preempted("e"))]);
}

/// Duplicate ids are refused while active and accepted once done; zero
/// segments are refused; no horns means done at once.
#[test]
fn submit_edge_cases() {
    let mut e = engine();
    e.submit(req("r", Priority::Routine, &["A", "A"], 0), 0)
        .unwrap();
    assert_eq!(e.broadcast("r").unwrap().horns.len(), 1);
    assert_eq!(
        e.submit(req("r", Priority::Routine, &["B"], 0), 1),
        Err(Rejected::Duplicate("r".into()))
    );
    let mut z = req("z", Priority::Routine, &["B"], 0);
    z.segments = 0;
    assert_eq!(e.submit(z, 1), Err(Rejected::NoSegments("z".into())));
    let a = e.submit(req("none", Priority::Routine, &[], 0), 1).unwrap();
    assert_eq!(
        a,
        vec![Action::BroadcastDone {
            broadcast: "none".into(),
            at: 1
        }]
    );
    e.finished("r", "A", Outcome::Done, 2);
    assert!(e.submit(req("r", Priority::Routine, &["B"], 0), 3).is_ok());
    assert_eq!(e.active(), v(&["r"]));
}

/// What operators receive.
#[test]
fn horn_state_json() {
    let j = |s: &HornState| serde_json::to_string(s).unwrap();
    assert_eq!(
        j(&HornState::Started {
            t0: 5,
            from_segment: 1
        }),
        r#"{"state":"started","t0":5,"from_segment":1}"#
    );
    assert_eq!(j(&HornState::Done), r#"{"state":"done"}"#);
    assert_eq!(
        j(&HornState::Interrupted { by: "e".into() }),
        r#"{"state":"interrupted","by":"e"}"#
    );
    assert_eq!(
        serde_json::to_string(&StopReason::StopAll).unwrap(),
        r#"{"reason":"stop-all"}"#
    );
    // `name()` is the serialised tag, for every state.
    for s in [
        HornState::Queued { from_segment: 0 },
        HornState::Started {
            t0: 0,
            from_segment: 0,
        },
        HornState::Done,
        HornState::Interrupted { by: "e".into() },
        HornState::Failed { why: "w".into() },
        HornState::Cancelled,
        HornState::Dropped { why: "w".into() },
    ] {
        assert_eq!(
            serde_json::to_value(&s).unwrap()["state"],
            s.name(),
            "{s:?}"
        );
    }
}

/// xorshift64*: deterministic, no dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The runtime as the random walk plays it, and the invariants it checks.
#[derive(Default)]
struct World {
    horns_of: HashMap<String, Vec<String>>,
    /// horn → broadcast the runtime is driving on it.
    driving: HashMap<String, String>,
    /// (broadcast, horn) the runtime was told to stop and has not answered.
    stopping: HashSet<(String, String)>,
    finals: HashMap<(String, String), HornState>,
    /// How often each kind of report occurred (to show the walk covers them).
    seen: HashMap<String, usize>,
    reported: HashSet<(String, String)>,
    done: HashSet<String>,
}

impl World {
    fn apply(&mut self, actions: &[Action], step: usize) {
        for a in actions {
            match a {
                Action::Start {
                    broadcast, horns, ..
                } => {
                    assert!(!horns.is_empty());
                    for h in horns {
                        if let Some(old) = self.driving.get(h) {
                            panic!("step {step}: {broadcast} started on {h} while {old} drives it");
                        }
                        self.driving.insert(h.clone(), broadcast.clone());
                    }
                }
                Action::Stop {
                    broadcast, horns, ..
                } => {
                    for h in horns {
                        assert_eq!(
                            self.driving.get(h),
                            Some(broadcast),
                            "step {step}: stop of a horn not driven"
                        );
                        self.stopping.insert((broadcast.clone(), h.clone()));
                    }
                }
                Action::Report {
                    broadcast,
                    horn,
                    state,
                    ..
                } => {
                    let pair = (broadcast.clone(), horn.clone());
                    assert!(
                        !self.finals.contains_key(&pair),
                        "step {step}: {pair:?} reported {state:?} after final {:?}",
                        self.finals.get(&pair)
                    );
                    assert!(
                        !self.done.contains(broadcast),
                        "step {step}: report after done"
                    );
                    self.reported.insert(pair.clone());
                    let kind = match state {
                        HornState::Queued { from_segment } if *from_segment > 0 => {
                            "resumed".to_string()
                        }
                        HornState::Failed { why } => format!("failed: {why}"),
                        s => format!("{s:?}")
                            .split([' ', '{'])
                            .next()
                            .unwrap_or_default()
                            .to_string(),
                    };
                    *self.seen.entry(kind).or_default() += 1;
                    if state.is_final() {
                        self.finals.insert(pair.clone(), state.clone());
                        // The engine gave up on the horn (stop timeout) or
                        // the runtime's answer made it final.
                        if self.driving.get(horn) == Some(broadcast) {
                            self.driving.remove(horn);
                        }
                        self.stopping.remove(&pair);
                    }
                }
                Action::BroadcastDone { broadcast, .. } => {
                    assert!(
                        self.done.insert(broadcast.clone()),
                        "step {step}: done twice"
                    );
                    for h in &self.horns_of[broadcast] {
                        assert!(
                            self.finals.contains_key(&(broadcast.clone(), h.clone())),
                            "step {step}: {broadcast} done but {h} not final"
                        );
                    }
                }
            }
        }
    }

    /// The runtime answers for a pair it drives: the horn is free again
    /// whatever the engine makes of it.
    fn answered(&mut self, b: &str, h: &str) {
        if self.driving.get(h).map(String::as_str) == Some(b) {
            self.driving.remove(h);
        }
        self.stopping.remove(&(b.to_string(), h.to_string()));
    }

    fn check(&self, e: &Engine, horns: &[String], step: usize) {
        for h in horns {
            let Some(view) = e.horn(h) else {
                assert!(
                    !self.driving.contains_key(h),
                    "step {step}: {h} driven but engine idle"
                );
                continue;
            };
            match &view.playing {
                Some(p) => {
                    assert_eq!(self.driving.get(h), Some(&p.broadcast), "step {step}: {h}");
                    if p.stopping.is_none() {
                        for w in &view.waiting {
                            assert!(
                                w.priority <= p.priority,
                                "step {step}: {} ({}) waits behind {} ({}) on {h}",
                                w.broadcast,
                                w.priority,
                                p.broadcast,
                                p.priority
                            );
                        }
                    }
                }
                None => {
                    assert!(
                        view.waiting.is_empty(),
                        "step {step}: {h} free but {:?} waits",
                        view.waiting
                    );
                    assert!(!self.driving.contains_key(h), "step {step}: {h}");
                }
            }
        }
    }
}

/// (10) Random walk over 8 horns and 30 broadcasts per seed: after every
/// step no horn is driven twice, priorities hold outside stop windows, no
/// report follows a final one; at the end every pair has exactly one final
/// state, every broadcast one BroadcastDone, and the engine is empty.
#[test]
fn random_walk_keeps_invariants() {
    let horns: Vec<String> = (0..8).map(|i| format!("h{i}")).collect();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for seed in 1..=200u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut e = Engine::new(EngineConfig {
            lead_ms: 150,
            stop_timeout_ms: 1_000,
        });
        let mut w = World::default();
        let mut now: Ms = 1_000_000;
        let mut submitted = 0;
        let mut step = 0;
        while submitted < 30 || step < 300 {
            step += 1;
            now += rng.below(400) as Ms;
            let driven: Vec<(String, String)> = {
                let mut d: Vec<_> = w
                    .driving
                    .iter()
                    .map(|(h, b)| (b.clone(), h.clone()))
                    .collect();
                d.sort();
                d
            };
            let a = match rng.below(20) {
                0..=4 if submitted < 30 => {
                    let id = format!("b{submitted}");
                    submitted += 1;
                    let priority = Priority::ALL[rng.below(5) as usize];
                    let mut hs: Vec<String> = horns
                        .iter()
                        .filter(|_| rng.below(3) == 0)
                        .cloned()
                        .collect();
                    if rng.below(10) == 0 && !hs.is_empty() {
                        hs.push(hs[0].clone());
                    }
                    let start_at = now + [0, 0, 100, 2_000, 10_000][rng.below(5) as usize];
                    let latest_start = match rng.below(3) {
                        0 => None,
                        _ => Some(start_at + rng.below(8_000) as Ms),
                    };
                    let on_preempt = if rng.below(2) == 0 {
                        OnPreempt::Resume
                    } else {
                        OnPreempt::Drop
                    };
                    let r = Request {
                        id: id.clone(),
                        priority,
                        horns: hs.clone(),
                        start_at,
                        latest_start,
                        on_preempt,
                        segments: 1 + rng.below(5) as u32,
                    };
                    hs.sort();
                    hs.dedup();
                    w.horns_of.insert(id, hs);
                    e.submit(r, now).unwrap()
                }
                5 if submitted > 0 => {
                    let id = format!("b{}", rng.below(submitted));
                    e.cancel(&id, now)
                }
                6..=10 if !driven.is_empty() => {
                    let (b, h) = driven[rng.below(driven.len() as u64) as usize].clone();
                    let outcome = match rng.below(6) {
                        0 => Outcome::Failed("boom".into()),
                        1 => Outcome::Stopped {
                            segments_done: rng.below(6) as u32,
                        },
                        _ => Outcome::Done,
                    };
                    w.answered(&b, &h);
                    e.finished(&b, &h, outcome, now)
                }
                11..=13 if !w.stopping.is_empty() => {
                    let mut s: Vec<_> = w.stopping.iter().cloned().collect();
                    s.sort();
                    let (b, h) = s[rng.below(s.len() as u64) as usize].clone();
                    w.answered(&b, &h);
                    e.finished(
                        &b,
                        &h,
                        Outcome::Stopped {
                            segments_done: rng.below(6) as u32,
                        },
                        now,
                    )
                }
                14 if submitted > 0 => {
                    // Late or bogus answers are ignored.
                    let b = format!("b{}", rng.below(submitted));
                    let h = horns[rng.below(8) as usize].clone();
                    if w.driving.get(&h) == Some(&b) {
                        e.tick(now)
                    } else {
                        let a = e.finished(&b, &h, Outcome::Done, now);
                        let touched = a.iter().any(|x| {
                            matches!(x, Action::Report { broadcast, horn, .. } if *broadcast == b && *horn == h)
                        });
                        assert!(!touched, "step {step}: bogus answer changed {b}/{h}");
                        a
                    }
                }
                15 if rng.below(8) == 0 => e.stop_all(now),
                _ => {
                    if let Some(d) = e.next_deadline()
                        && rng.below(2) == 0
                    {
                        now = now.max(d);
                    }
                    e.tick(now)
                }
            };
            w.apply(&a, step);
            w.check(&e, &horns, step);
            // Memory: done broadcasts are forgotten.
            for id in &w.done {
                assert!(e.broadcast(id).is_none());
            }
        }
        // Drain: the runtime answers everything until the engine is empty.
        let mut rounds = 0;
        while !e.active().is_empty() {
            rounds += 1;
            assert!(
                rounds < 1_000,
                "seed {seed}: does not drain: {:?}",
                e.active()
            );
            let mut d: Vec<_> = w
                .driving
                .iter()
                .map(|(h, b)| (b.clone(), h.clone()))
                .collect();
            d.sort();
            for (b, h) in d {
                let outcome = if w.stopping.contains(&(b.clone(), h.clone())) {
                    Outcome::Stopped { segments_done: 0 }
                } else {
                    Outcome::Done
                };
                w.answered(&b, &h);
                let a = e.finished(&b, &h, outcome, now);
                w.apply(&a, step);
            }
            if let Some(dl) = e.next_deadline() {
                now = now.max(dl);
            }
            let a = e.tick(now);
            w.apply(&a, step);
            w.check(&e, &horns, step);
        }
        for (id, hs) in &w.horns_of {
            assert!(w.done.contains(id), "seed {seed}: {id} never done");
            for h in hs {
                assert!(
                    w.finals.contains_key(&(id.clone(), h.clone())),
                    "seed {seed}: {id}/{h} no final"
                );
                assert!(w.reported.contains(&(id.clone(), h.clone())));
            }
        }
        assert!(w.driving.is_empty());
        assert_forgotten(&e);
        for (k, n) in w.seen {
            *seen.entry(k).or_default() += n;
        }
    }
    for kind in [
        "Queued",
        "resumed",
        "Started",
        "Done",
        "Interrupted",
        "Cancelled",
        "Dropped",
        "failed: boom",
        "failed: did not stop",
    ] {
        assert!(
            seen.get(kind).is_some_and(|&n| n >= 10),
            "walk rarely reaches {kind}: {seen:?}"
        );
    }
}
