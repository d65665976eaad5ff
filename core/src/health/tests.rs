//! Unit tests of the health ladder and verdicts.
use super::*;

fn t(secs: i64) -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(1_700_000_000 + secs)
}
fn up(offset: i64) -> Observation {
    Observation::Check(CheckResult::OnvifUp {
        clock_offset_ms: offset,
    })
}
fn down() -> Observation {
    Observation::Check(CheckResult::Unreachable {
        kind: "connect".into(),
        detail: "refused".into(),
    })
}
fn good_sample() -> Observation {
    Observation::Sample {
        sample: Some(StreamSample {
            frames: 45,
            fps: 15.0,
            bitrate_kbps: 500.0,
            loss_pct: 0.0,
            time_to_first_frame_ms: Some(120),
            codec: Some("H264".into()),
        }),
        expected: Expected {
            fps: Some(15.0),
            bitrate_kbps: Some(512.0),
            codec: Some("H264".into()),
        },
    }
}

fn healthy(th: &Thresholds) -> Health {
    let mut h = Health::new(t(0));
    h.observe(up(100), t(0), th);
    h.observe(Observation::Auth { ok: true }, t(1), th);
    h.observe(Observation::Stream(Ok(())), t(2), th);
    h.observe(good_sample(), t(3), th);
    h.observe(Observation::Snapshot { ok: true }, t(3), th);
    h
}

#[test]
fn climbs_the_ladder_to_streaming_and_ok() {
    let th = Thresholds::default();
    let mut h = Health::new(t(0));
    assert_eq!((h.rung, &h.verdict), (Rung::Unreachable, &Verdict::Offline));
    let tr = h.observe(up(100), t(0), &th).expect("transition");
    assert_eq!((tr.rung_to, tr.to), (Rung::OnvifUp, Verdict::Ok));
    h.observe(Observation::Auth { ok: true }, t(1), &th);
    assert_eq!(h.rung, Rung::Authenticated);
    h.observe(good_sample(), t(2), &th);
    assert_eq!(h.rung, Rung::Streaming);
    assert_eq!(h.verdict, Verdict::Ok);
}

#[test]
fn offline_only_after_three_missed_checks_and_back_on_one_answer() {
    let th = Thresholds::default();
    let mut h = healthy(&th);
    assert!(
        h.observe(down(), t(30), &th)
            .is_some_and(|tr| tr.to != Verdict::Offline)
    );
    assert_ne!(h.verdict, Verdict::Offline);
    h.observe(down(), t(60), &th);
    assert_ne!(
        h.verdict,
        Verdict::Offline,
        "two misses are not offline yet"
    );
    let tr = h.observe(down(), t(90), &th).expect("transition");
    assert_eq!(tr.to, Verdict::Offline);
    assert_eq!(h.rung, Rung::Unreachable);
    assert_eq!(h.verdict_since, t(90));
    let tr = h.observe(up(0), t(120), &th).expect("recovers");
    assert_eq!((tr.from, tr.to), (Verdict::Offline, Verdict::Ok));
    // Facts above the ladder were forgotten while offline.
    assert_eq!(h.rung, Rung::OnvifUp);
}

#[test]
fn tamper_and_video_loss_degrade_while_they_last() {
    let th = Thresholds::default();
    let mut h = healthy(&th);
    let ev = |reason, active| Observation::Event { reason, active };
    let tr = h.observe(ev(Reason::Tamper, true), t(10), &th).expect("t");
    assert_eq!(tr.to, Verdict::Degraded([Reason::Tamper].into()));
    h.observe(ev(Reason::VideoLoss, true), t(11), &th);
    assert_eq!(
        h.verdict,
        Verdict::Degraded([Reason::Tamper, Reason::VideoLoss].into())
    );
    // A quality sample does not clear what the camera raised.
    h.observe(good_sample(), t(12), &th);
    assert_eq!(
        h.verdict,
        Verdict::Degraded([Reason::Tamper, Reason::VideoLoss].into())
    );
    h.observe(ev(Reason::Tamper, false), t(13), &th);
    h.observe(ev(Reason::VideoLoss, false), t(14), &th);
    assert_eq!(h.verdict, Verdict::Ok);
    // Reasons that are not camera-raised conditions are ignored.
    assert!(h.observe(ev(Reason::LowFps, true), t(15), &th).is_none());
    // The conditions survive a restart (serde round trip).
    h.observe(ev(Reason::Tamper, true), t(16), &th);
    let back: Health = serde_json::from_str(&serde_json::to_string(&h).unwrap()).unwrap();
    assert_eq!(back.verdict, Verdict::Degraded([Reason::Tamper].into()));
}

#[test]
fn a_failed_inventory_is_a_reason_unless_the_login_was_refused() {
    let th = Thresholds::default();
    let mut h = Health::new(t(0));
    h.observe(up(0), t(0), &th);
    h.observe(Observation::Inventory(Err("timeout".into())), t(1), &th);
    assert_eq!(
        h.verdict,
        Verdict::Degraded([Reason::InventoryFailed].into())
    );
    assert_eq!(h.inventory_error_kind.as_deref(), Some("timeout"));
    h.observe(Observation::Auth { ok: false }, t(2), &th);
    assert_eq!(
        h.verdict,
        Verdict::Degraded([Reason::CredentialsRejected].into())
    );
    h.observe(Observation::Auth { ok: true }, t(3), &th);
    h.observe(Observation::Inventory(Ok(())), t(4), &th);
    assert_eq!(h.verdict, Verdict::Ok);
    assert_eq!(h.inventory_error_kind, None);
}

#[test]
fn clock_drift_over_five_seconds_degrades() {
    let th = Thresholds::default();
    let mut h = healthy(&th);
    let tr = h.observe(up(600_000), t(30), &th).expect("transition");
    assert_eq!(tr.to, Verdict::Degraded([Reason::ClockDrift].into()));
    assert_eq!(h.verdict.to_string(), "degraded(clock-drift)");
    h.observe(up(4_999), t(60), &th);
    assert_eq!(h.verdict, Verdict::Ok);
}

#[test]
fn rejected_credentials_degrade_and_drop_the_rung() {
    let th = Thresholds::default();
    let mut h = healthy(&th);
    h.observe(Observation::Auth { ok: false }, t(30), &th);
    assert_eq!(h.rung, Rung::OnvifUp);
    assert_eq!(
        h.verdict,
        Verdict::Degraded([Reason::CredentialsRejected].into())
    );
    h.observe(Observation::Auth { ok: true }, t(60), &th);
    assert_eq!(h.verdict, Verdict::Ok);
}

#[test]
fn frozen_stream_is_stalled_only_after_twenty_seconds_without_frames() {
    let th = Thresholds::default();
    let mut h = healthy(&th); // last frame at t(3)
    let none = || Observation::Sample {
        sample: None,
        expected: Expected::default(),
    };
    h.observe(none(), t(13), &th);
    assert_eq!(
        h.verdict,
        Verdict::Ok,
        "10 s without frames is not yet stalled"
    );
    h.observe(none(), t(23), &th);
    assert_eq!(h.verdict, Verdict::Degraded([Reason::Stalled].into()));
    assert_eq!(h.rung, Rung::Authenticated);
    h.observe(good_sample(), t(40), &th);
    assert_eq!((h.rung, &h.verdict), (Rung::Streaming, &Verdict::Ok));
}

#[test]
fn quality_reasons_follow_the_profile() {
    let th = Thresholds::default();
    let mut h = healthy(&th);
    let obs = Observation::Sample {
        sample: Some(StreamSample {
            frames: 9,
            fps: 3.0,
            bitrate_kbps: 50.0,
            loss_pct: 7.5,
            time_to_first_frame_ms: Some(300),
            codec: Some("H265".into()),
        }),
        expected: Expected {
            fps: Some(15.0),
            bitrate_kbps: Some(512.0),
            codec: Some("H264".into()),
        },
    };
    h.observe(obs, t(30), &th);
    assert_eq!(
        h.verdict,
        Verdict::Degraded(
            [
                Reason::LowFps,
                Reason::LowBitrate,
                Reason::RtpLoss,
                Reason::CodecMismatch
            ]
            .into()
        )
    );
    h.observe(good_sample(), t(60), &th);
    assert_eq!(h.verdict, Verdict::Ok);
}

#[test]
fn stream_refused_and_snapshot_missing_are_reasons() {
    let th = Thresholds::default();
    let mut h = healthy(&th);
    h.observe(
        Observation::Stream(Err(StreamFailure::Unavailable)),
        t(30),
        &th,
    );
    h.observe(Observation::Snapshot { ok: false }, t(30), &th);
    assert_eq!(
        h.verdict,
        Verdict::Degraded([Reason::StreamUnavailable, Reason::SnapshotUnavailable].into())
    );
    assert_eq!(h.rung, Rung::Authenticated);
    h.observe(
        Observation::Stream(Err(StreamFailure::AuthRejected)),
        t(31),
        &th,
    );
    assert!(matches!(&h.verdict, Verdict::Degraded(r) if r.contains(&Reason::CredentialsRejected)));
}

#[test]
fn tcp_only_answers_sit_on_the_tcp_rung() {
    let th = Thresholds::default();
    let mut h = Health::new(t(0));
    h.observe(up(0), t(0), &th);
    h.observe(
        Observation::Check(CheckResult::TcpOnly {
            kind: "parse".into(),
            detail: "garbage".into(),
        }),
        t(30),
        &th,
    );
    assert_eq!(h.rung, Rung::TcpReachable);
    assert_eq!(h.verdict, Verdict::Ok, "one miss is not offline");
}

#[test]
fn serialises_with_stable_labels() {
    let th = Thresholds::default();
    let mut h = healthy(&th);
    h.observe(up(600_000), t(30), &th);
    let v = serde_json::to_value(&h).unwrap();
    assert_eq!(v["rung"], "streaming");
    assert_eq!(v["verdict"], "degraded");
    assert_eq!(v["reasons"], serde_json::json!(["clock-drift"]));
}
