//! A seeded random walk over 8 horns and 30 broadcasts per seed, checking
//! the engine's invariants after every step.

use std::collections::{HashMap, HashSet};

use super::*;

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
                        HornState::Interrupted { resuming: true, .. } => "resumed".to_string(),
                        HornState::Failed { why, .. } => format!("failed: {why}"),
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
                    let r = random_request(&mut rng, &horns, &id, now);
                    let mut hs = r.horns.clone();
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
        drain(&mut e, &mut w, now, step, seed, &horns);
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

/// A request on a random subset of `horns` (now and then a horn twice),
/// starting now or later, with or without a latest start.
fn random_request(rng: &mut Rng, horns: &[String], id: &str, now: Ms) -> Request {
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
    Request {
        id: id.to_string(),
        priority,
        horns: hs,
        start_at,
        latest_start,
        on_preempt,
        segments: 1 + rng.below(5) as u32,
    }
}

/// The runtime answers everything until the engine is empty.
fn drain(e: &mut Engine, w: &mut World, mut now: Ms, step: usize, seed: u64, horns: &[String]) {
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
        w.check(e, horns, step);
    }
}
