//! The cases of issue 7 one by one: lead time, preemption, resume and drop,
//! queue order, cancel, stop all, failures, expiry; and the JSON of states.

use super::*;
use device_drivers::local_error::LocalResource;

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
            from_segment: 0,
            resumed: false
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
        vec![HornState::Interrupted {
            by: "e".into(),
            resuming: true
        }]
    );
    let a = e.finished("r", "B", stopped(2), 260);
    assert_eq!(starts(&a), vec![("e".into(), v(&["B"]), 260 + LEAD, 0)]);
    // C keeps playing routine.
    assert_eq!(e.horn("C").unwrap().playing.unwrap().broadcast, "r");
    // D never confirms: after the timeout it is Failed and e starts there.
    assert!(starts(&e.tick(100 + STOP_TIMEOUT - 1)).is_empty());
    let a = e.tick(100 + STOP_TIMEOUT);
    assert_eq!(states(&a, "r", "D"), vec![HornState::failed(DID_NOT_STOP)]);
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

/// (3) After the emergency, a `Resume` routine is reported interrupted
/// (resuming) and continues from `segments_done` with a `Started` marked
/// `resumed`; a `Drop` one ends Interrupted.
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
        vec![HornState::Interrupted {
            by: "e".into(),
            resuming: true
        }]
    );
    assert!(!states(&a, "r", "A")[0].is_final());
    assert_eq!(
        e.broadcast("r").unwrap().horns[0].state,
        HornState::Interrupted {
            by: "e".into(),
            resuming: true
        }
    );
    assert_eq!(e.horn("A").unwrap().waiting[0].from_segment, 2);
    assert_eq!(
        states(&a, "d", "C"),
        vec![HornState::Interrupted {
            by: "e".into(),
            resuming: false
        }]
    );
    assert!(states(&a, "d", "C")[0].is_final());
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
            from_segment: 2,
            resumed: true
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
    assert_eq!(states(&a, "r", "A"), vec![HornState::failed("no answer")]);
    assert!(done(&a).is_empty());
    assert!(e.horn("A").is_none());
    assert!(e.finished("r", "A", Outcome::Done, 110).is_empty());
    let a = e.finished("r", "B", Outcome::Done, 200);
    assert_eq!(done(&a), v(&["r"]));
    assert!(e.finished("r", "B", Outcome::Done, 210).is_empty());
    assert_forgotten(&e);
}

/// A horn whose socket the gateway could not make (EMFILE) ends Failed
/// with error kind `local`, its errno and a `why` naming the gateway's
/// limit; the horn is free for what comes next, the others carry on.
#[test]
fn gateway_limit_is_failed_locally() {
    let mut e = engine();
    e.submit(req("r", Priority::Routine, &["A", "B"], 0), 0)
        .unwrap();
    let a = e.finished("r", "A", Outcome::GatewayLimit(LocalResource::Emfile), 100);
    let s = states(&a, "r", "A");
    assert_eq!(
        serde_json::to_value(&s[0]).unwrap(),
        serde_json::json!({
            "state": "failed",
            "why": "the gateway's own limit (EMFILE: too many open files): nothing aired; not the horn's fault",
            "error_kind": "local",
            "errno": "EMFILE",
        })
    );
    assert!(e.horn("A").is_none());
    // A plain failure carries neither field.
    let a = e.finished("r", "B", Outcome::Failed("no answer".into()), 200);
    let plain = serde_json::to_value(&states(&a, "r", "B")[0]).unwrap();
    assert_eq!(
        plain,
        serde_json::json!({"state": "failed", "why": "no answer"})
    );
    assert_eq!(done(&a), v(&["r"]));
}

/// A horn stopped without being asked (and not at the end) is Failed.
#[test]
fn unasked_stop_is_failed() {
    let mut e = engine();
    e.submit(req("r", Priority::Routine, &["A"], 0), 0).unwrap();
    let a = e.finished("r", "A", stopped(1), 10);
    assert!(
        matches!(&states(&a, "r", "A")[0], HornState::Failed { why, error_kind: None, .. } if why.contains("1 of 4"))
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
            why: DropReason::Expired
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
                why: DropReason::Expired
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
        vec![HornState::Interrupted {
            by: "e2".into(),
            resuming: false
        }]
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
            from_segment: 1,
            resumed: true
        }),
        r#"{"state":"started","t0":5,"from_segment":1,"resumed":true}"#
    );
    assert_eq!(j(&HornState::Done), r#"{"state":"done"}"#);
    assert_eq!(
        j(&HornState::Interrupted {
            by: "e".into(),
            resuming: false
        }),
        r#"{"state":"interrupted","by":"e","resuming":false}"#
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
            resumed: false,
        },
        HornState::Done,
        HornState::Interrupted {
            by: "e".into(),
            resuming: false,
        },
        HornState::failed("w"),
        HornState::failed_locally(LocalResource::Emfile),
        HornState::Cancelled,
        HornState::Dropped {
            why: DropReason::QuietHours,
        },
    ] {
        assert_eq!(
            serde_json::to_value(&s).unwrap()["state"],
            s.name(),
            "{s:?}"
        );
    }
}

/// Horn and broadcast status names match the serialised forms.
#[test]
fn status_names() {
    for s in HornStatus::ALL {
        assert_eq!(HornStatus::parse(s.as_str()), Some(s));
        assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
    }
    for s in BroadcastStatus::ALL {
        assert_eq!(BroadcastStatus::parse(s.as_str()), Some(s));
        assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
    }
    assert_eq!(HornStatus::parse("playing"), None);
    assert_eq!(
        serde_json::to_string(&HornState::Dropped {
            why: DropReason::Expired
        })
        .unwrap(),
        r#"{"state":"dropped","why":"expired"}"#
    );
    assert_eq!(
        serde_json::to_value(DropReason::QuietHours).unwrap(),
        DropReason::QuietHours.as_str()
    );
    use HornStatus as H;
    let of = BroadcastStatus::of_finals;
    assert_eq!(of(&[H::Failed, H::Done]), BroadcastStatus::Done);
    assert_eq!(
        of(&[H::Cancelled, H::Cancelled]),
        BroadcastStatus::Cancelled
    );
    assert_eq!(
        of(&[H::Cancelled, H::Interrupted]),
        BroadcastStatus::Interrupted
    );
    assert_eq!(of(&[H::Cancelled, H::Dropped]), BroadcastStatus::Failed);
    assert_eq!(
        Rejected::Duplicate("x".into()).kind(),
        crate::error::ErrorKind::Conflict
    );
}
