//! A whole day of broadcasts on paused time (issue 7, "done when"): a
//! routine programme on a swapped working day (调休), a rest-day schedule
//! that must not fire, quiet hours, an emergency preempting a routine
//! programme that then resumes, a CAP alert and its later Cancel, and a
//! restart in the middle with one missed occurrence skipped and one played
//! late. Every horn's timeline and every report is checked.

use super::*;

#[tokio::test(start_paused = true)]
async fn a_day_of_broadcasts_on_paused_time() {
    let w = world();
    let r = Records::open(&w.store).unwrap();
    let shutdown = CancellationToken::new();
    let (b, task) = start_runtime(&w, shutdown.clone());
    morning_and_noon(&w, &r).await;
    an_emergency_preempts_a_routine_programme(&w, &r, &b).await;
    a_cap_warning_and_its_cancel(&w, &r, &b).await;
    let (shutdown2, task2) = a_restart_in_the_evening(&w, &r, shutdown, task).await;
    the_night_and_no_overlaps(&w, &r).await;
    shutdown2.cancel();
    task2.await.unwrap();
}

/// 07:30 on a swapped working day, 09:00 on a rest-day slot, 12:30 in one
/// village's quiet hours.
async fn morning_and_noon(w: &World, r: &Records) {
    let tone = w.tone_len_ms;
    let chime_ms = (crate::broadcast::render::chime().len() / 8) as Ms;
    // 07:30 on a swapped working day: the workday schedule plays on every
    // horn, first sample exactly at T0; two repeats 10 s apart.
    until(w, "08:00:00").await;
    let bid = "s-workday-0730-20261010T073000";
    for h in ["h1", "h2", "h3", "h4"] {
        let p = plays(w, h, "07:00:00", "08:00:00");
        assert_eq!(p.len(), 2, "{h}: {p:?}");
        assert_eq!(p[0].start, at("07:30:00"), "{h} starts at T0");
        let seg0 = chime_ms + 400 + tone;
        assert!((p[0].end - p[0].start - seg0).abs() <= 2, "{h}: {p:?}");
        assert!(
            (p[1].start - (p[0].start + seg0 + 10_000)).abs() <= 2,
            "{h}: repeat after the interval"
        );
        assert_eq!(final_state(r, bid, h), "done");
        assert_eq!(history(r, bid, h), ["queued", "started", "done"]);
        let (_, horns) = r.get(bid).unwrap().unwrap();
        let d = horns
            .iter()
            .find(|x| x.speaker == h)
            .unwrap()
            .detail
            .clone()
            .unwrap();
        assert_eq!(
            d["skew_ms"], 0.0,
            "{h}: the measured skew stays after done: {d}"
        );
        assert_eq!(d["state"], "done", "{d}");
    }

    // Once every horn is done, the broadcast is no longer "now playing".
    let active = r.list_in(100, &["queued", "playing"]).unwrap();
    assert!(
        active.iter().all(|x| x.id != bid),
        "{bid} still listed as active after every horn is done: {:?}",
        active.iter().map(|x| (&x.id, &x.state)).collect::<Vec<_>>()
    );

    // 09:00: the rest-day schedule does not fire on a worked Saturday.
    until(w, "12:00:00").await;
    for h in ["h1", "h2", "h3", "h4"] {
        assert!(
            plays(w, h, "08:00:00", "12:00:00").is_empty(),
            "{h} played on a working day's rest-day slot"
        );
    }
    assert!(
        r.list(1000)
            .unwrap()
            .iter()
            .all(|x| x.origin != "schedule:restday-0900")
    );

    // 12:30: village v2 is in its noon quiet hours; v1 plays.
    until(w, "13:00:00").await;
    let bid = "s-noon-1230-20261010T123000";
    for h in ["h1", "h2"] {
        assert_eq!(plays(w, h, "12:00:00", "13:00:00").len(), 2, "{h}");
        assert_eq!(final_state(r, bid, h), "done");
    }
    for h in ["h3", "h4"] {
        assert!(
            plays(w, h, "12:00:00", "13:00:00").is_empty(),
            "{h} played in quiet hours"
        );
        assert_eq!(final_state(r, bid, h), "dropped");
    }
}

/// 15:00 a routine programme, 15:00:14 an emergency on half the horns.
async fn an_emergency_preempts_a_routine_programme(w: &World, r: &Records, b: &Broadcasts) {
    let tone = w.tone_len_ms;
    // 15:00: a six-part routine programme; at 15:00:14 an emergency for
    // village v1 takes h1 and h2; afterwards the programme resumes there
    // from the part it lost. h3 and h4 are never touched.
    until(w, "15:00:14").await;
    let em = b
        .submit(Spec {
            id: Some("em-1".into()),
            origin: "operator:test".into(),
            title: "紧急通知".into(),
            priority: Priority::Emergency,
            targets: vec![Target::Village("v1".into())],
            recipe: Recipe {
                pre: None,
                items: vec![crate::broadcast::render::Part::Chime],
                post: None,
                repeat: 1,
                interval: Duration::ZERO,
                volume: Some(50),
            },
            start_at: None,
            latest_start: None,
            on_preempt: OnPreempt::Drop,
        })
        .await
        .unwrap();
    assert_eq!(em.horns, 2);
    until(w, "15:10:00").await;
    let long = "s-long-1500-20261010T150000";
    let seg = tone;
    for h in ["h1", "h2"] {
        let p = plays(w, h, "15:00:00", "15:10:00");
        // part 0 done (0..3 s), part 1 starts at 13 s and is cut at 14 s.
        assert_eq!(p[0].start, at("15:00:00"));
        assert!(!p[0].cancelled);
        assert!(p[1].cancelled, "{h}: part 1 cut by the emergency: {p:?}");
        assert!(p[1].end - at("15:00:14") < 50, "{h}: stopped at once");
        let e = &p[2];
        assert_eq!(
            e.samples,
            crate::broadcast::render::chime().len(),
            "{h}: the emergency plays next"
        );
        assert!(e.start >= p[1].end, "{h}: never two broadcasts at once");
        assert!(
            e.start - at("15:00:14") <= 200,
            "{h}: emergency within the lead: {p:?}"
        );
        // Resumed from part 1: five more parts.
        let resumed: Vec<_> = p[3..].iter().collect();
        assert_eq!(resumed.len(), 5, "{h}: {p:?}");
        assert!(resumed[0].start >= e.end);
        assert!(resumed.iter().all(|x| !x.cancelled));
        assert_eq!(final_state(r, long, h), "done");
        assert_eq!(final_state(r, "em-1", h), "done");
        let hist = history(r, long, h);
        assert_eq!(
            hist,
            ["queued", "started", "interrupted", "started", "done"],
            "{h}: the preemption is in the history"
        );
        let ev: Vec<_> = r
            .events(long)
            .unwrap()
            .into_iter()
            .filter(|(x, ..)| x.as_deref() == Some(h))
            .collect();
        let by = ev[2].3.as_ref().unwrap();
        assert_eq!(
            (by["by"].as_str(), by["resuming"].as_bool()),
            (Some("em-1"), Some(true))
        );
        let again = ev[3].3.as_ref().unwrap();
        assert_eq!(
            (again["resumed"].as_bool(), again["from_segment"].as_u64()),
            (Some(true), Some(1))
        );
    }
    for h in ["h3", "h4"] {
        let p = plays(w, h, "15:00:00", "15:10:00");
        assert_eq!(p.len(), 6, "{h}: {p:?}");
        for (k, x) in p.iter().enumerate() {
            assert_eq!(
                x.start,
                at("15:00:00") + k as Ms * (seg + 10_000),
                "{h} part {k}"
            );
            assert!(!x.cancelled);
        }
        assert_eq!(final_state(r, long, h), "done");
    }
}

/// 16:00 a CAP warning for village v2, cancelled at 16:01:30.
async fn a_cap_warning_and_its_cancel(w: &World, r: &Records, b: &Broadcasts) {
    // 16:00: a severe rainstorm warning for the county (village v2); its
    // Cancel at 16:01:30 stops it during the repeats.
    until(w, "16:00:00").await;
    let alert = cap(
        "jiangning_rainstorm_orange_alert.xml",
        &[
            ("2026-07-15T08:30:00", "2026-10-10T16:00:00"),
            ("2026-07-15T20:30:00", "2026-10-10T20:30:00"),
        ],
    );
    let out = b.cap(alert.clone(), "mqtt").await;
    assert_eq!(out.decision, "play", "{out:?}");
    let cap_bid = out.broadcast.clone().unwrap();
    assert_eq!(
        b.cap(alert, "mqtt").await.decision,
        "ignore",
        "idempotent by identifier"
    );
    until(w, "16:01:30").await;
    let cancel = cap(
        "jiangning_rainstorm_cancel.xml",
        &[
            ("2026-07-15T08:30:00", "2026-10-10T16:00:00"),
            ("2026-07-15T18:00:00", "2026-10-10T16:01:30"),
            ("20260715180000", "20261010160130"),
        ],
    );
    let out = b.cap(cancel, "mqtt").await;
    assert_eq!(out.decision, "cancel", "{out:?}");
    until(w, "16:30:00").await;
    for h in ["h3", "h4"] {
        let p = plays(w, h, "16:00:00", "16:30:00");
        assert!(
            !p.is_empty() && p.last().unwrap().cancelled,
            "{h}: the warning was cut by its Cancel: {p:?}"
        );
        assert!(
            p[0].start - at("16:00:00") <= 200,
            "{h}: the warning started at once: {p:?}"
        );
        assert!(
            p.iter().all(|x| x.end <= at("16:01:31")),
            "{h}: nothing after the cancel"
        );
        assert_eq!(final_state(r, &cap_bid, h), "cancelled");
    }
    for h in ["h1", "h2"] {
        assert!(plays(w, h, "16:00:00", "16:30:00").is_empty());
    }
    let caps = r.caps(10).unwrap();
    assert!(caps.iter().any(|c| c.decision == "play"));
    assert!(caps.iter().any(|c| c.decision == "cancel"));
    let audit = crate::auth::Users::new(w.store.clone())
        .unwrap()
        .audit_log(100, None)
        .unwrap();
    for a in ["broadcast.cap_play", "broadcast.cap_cancel"] {
        assert!(
            audit
                .iter()
                .any(|e| e.action == a && e.target.as_deref() == Some(cap_bid.as_str())),
            "{a} audited"
        );
    }
}

/// 18:00 the evening programme, cut by a shutdown; the gateway is down
/// until 18:10. Answers the restarted runtime.
async fn a_restart_in_the_evening(
    w: &World,
    r: &Records,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    // 18:00 the evening programme starts; at 18:00:20 the gateway stops and
    // is down until 18:10. 18:05 (skip) is not played; 18:06 (play within
    // 10 min) plays on restart.
    until(w, "18:00:20").await;
    shutdown.cancel();
    task.await.unwrap();
    until(w, "18:10:00").await;
    let shutdown2 = CancellationToken::new();
    let (_b2, task2) = start_runtime(w, shutdown2.clone());
    until(w, "18:30:00").await;
    let eve = "s-evening-1800-20261010T180000";
    for h in ["h1", "h2", "h3", "h4"] {
        let p = plays(w, h, "18:00:00", "18:10:00");
        assert!(
            p.iter().all(|x| x.end <= at("18:00:21")),
            "{h}: stopped at shutdown: {p:?}"
        );
        assert_eq!(final_state(r, eve, h), "interrupted");
        assert!(plays(w, h, "18:05:00", "18:06:00").is_empty());
    }
    assert!(
        r.list(1000)
            .unwrap()
            .iter()
            .all(|x| x.origin != "schedule:evening-1805")
    );
    for h in ["h1", "h2"] {
        let p = plays(w, h, "18:10:00", "18:30:00");
        assert_eq!(p.len(), 2, "{h}: late play of 18:06: {p:?}");
        assert!(
            p[0].start - at("18:10:00") <= 1_000,
            "{h}: played at restart"
        );
    }

    (shutdown2, task2)
}

/// 22:30 quiet hours for everyone; over the whole day no horn ever
/// played two things at once.
async fn the_night_and_no_overlaps(w: &World, r: &Records) {
    // 22:30: everyone is in quiet hours.
    until(w, "23:59:00").await;
    let night = "s-night-2230-20261010T223000";
    for h in ["h1", "h2", "h3", "h4"] {
        assert!(plays(w, h, "22:00:00", "23:59:00").is_empty());
        assert_eq!(final_state(r, night, h), "dropped");
    }

    // Whole day: no horn ever played two things at once.
    for h in ["h1", "h2", "h3", "h4"] {
        let p = plays(w, h, "00:00:00", "23:59:00");
        for pair in p.windows(2) {
            assert!(pair[1].start >= pair[0].end, "{h} overlaps: {pair:?}");
        }
    }
}
