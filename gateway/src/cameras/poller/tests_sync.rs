//! `[health] clock_sync`: cameras whose clock check finds them beyond the
//! threshold get their clock set automatically, once per window, at most
//! four at once, audited; refusals are not retried every cycle; `off` and
//! small drifts leave cameras alone. Scripted cameras on paused time.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::auto_sync::{ACTION, Ask, AutoSync, SLOTS};
use super::tests::{Rig, SEC, cfg};
use crate::base::clock::{Clock, TokioClock};
use crate::base::metrics::Metrics;
use crate::cameras::clock_sync::TimeReference;
use crate::cameras::fake::{self, FakeCameras, Script};
use crate::config::audit::AuditRetention;
use crate::config::{ClockSync, HealthSection};
use crate::store::{AuditEntry, Store};
use tgw_core::health::{Reason, Verdict};

const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

fn drifting(v: &Verdict) -> bool {
    matches!(v, Verdict::Degraded(r) if r.contains(&Reason::ClockDrift))
}

/// Checks every 10 s, the clock set as `mode` says (threshold 60 s by
/// default), one attempt per camera per hour.
fn sync_cfg(mode: ClockSync) -> HealthSection {
    let mut c = cfg(10, 300, 600);
    c.clock_sync = mode;
    c.clock_sync_min_interval_secs = HOUR;
    c
}

fn fast(secs: i64) -> Script {
    Script {
        clock_offset_ms: secs * 1000,
        ..Script::default()
    }
}

fn start(c: HealthSection, scripts: Vec<Script>) -> Rig {
    let rig = Rig::start_seeded(c, scripts, Arc::new(Metrics::new()), |s, n| {
        fake::adopted(s, n);
    });
    rig.poller
        .set_clock_sync("CST-8".into(), AuditRetention::default());
    rig
}

fn auto_rows(rig: &Rig) -> Vec<AuditEntry> {
    let mut rows: Vec<AuditEntry> = rig
        .store
        .audit_log(1000, None)
        .expect("audit log")
        .into_iter()
        .filter(|e| e.action == ACTION)
        .collect();
    rows.reverse();
    rows
}

/// The id of the rig's one camera.
fn only_id(rig: &Rig) -> String {
    let ids = rig.store.adopted_camera_ids().expect("ids");
    assert_eq!(ids.len(), 1, "{ids:?}");
    ids[0].0.clone()
}

fn counted(rig: &Rig, mode: &str, result: &str) -> bool {
    let line = format!("tgw_camera_clock_syncs_total{{mode=\"{mode}\",result=\"{result}\"}} ");
    rig.metrics.encode().lines().any(|l| l.starts_with(&line))
}

fn count_of(rig: &Rig, mode: &str, result: &str) -> u64 {
    let line = format!("tgw_camera_clock_syncs_total{{mode=\"{mode}\",result=\"{result}\"}} ");
    rig.metrics
        .encode()
        .lines()
        .find_map(|l| l.strip_prefix(&line).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0)
}

/// A camera that refuses SetSystemDateAndTime (a SOAP fault) is tried at
/// the first check that finds it 10 minutes off, then once per window
/// (an hour here), not at each of the 900 checks of 2.5 h; every attempt
/// is audited as `refused` with the camera's fault text and counted; the
/// camera still shows `clock-drift`, and its checks go on every 10 s.
#[tokio::test(start_paused = true)]
async fn a_camera_that_refuses_is_tried_once_per_window_and_still_drifts() {
    let refuses = Script {
        set_clock_refused: true,
        ..fast(600)
    };
    let rig = start(sync_cfg(ClockSync::Set), vec![refuses]);
    tokio::time::sleep(150 * MIN).await;
    let tries = rig.cams.calls(1, "set-clock");
    assert_eq!(tries.len(), 3, "{tries:?}");
    assert!(
        tries[0] < 10 * SEC,
        "first try at the first check: {tries:?}"
    );
    for w in tries.windows(2) {
        let gap = w[1] - w[0];
        assert!(gap >= HOUR && gap <= HOUR + 10 * SEC, "{tries:?}");
    }
    let checks = rig.cams.calls(1, "clock").len();
    assert!(checks >= 890, "checks held back: {checks}");

    let id = only_id(&rig);
    let rows = auto_rows(&rig);
    assert_eq!(rows.len(), 3, "{rows:?}");
    for r in &rows {
        assert_eq!(r.outcome, "refused");
        assert_eq!(r.actor, "system");
        assert_eq!(r.target.as_deref(), Some(id.as_str()));
        let after = r.after.clone().unwrap_or_default();
        let error = after["error"].as_str().unwrap_or_default();
        assert!(error.contains("Setting the time is not allowed"), "{after}");
        assert_eq!(after["measured_offset_ms"], 600_000, "{after}");
        let text = serde_json::to_string(r).unwrap_or_default();
        assert!(!text.contains("secret"), "login in the audit row: {text}");
    }
    assert_eq!(count_of(&rig, "set", "refused"), 3);
    assert!(!counted(&rig, "set", "ok"));
    let (_, sink) = rig.stop().await;
    let last = sink.of(1).pop().expect("states");
    assert!(drifting(&last.verdict), "{:?}", last.verdict);
    assert_eq!(last.clock_offset_ms, Some(600_000));
}

/// The window outlives a restart: a camera that refuses is tried once,
/// the gateway restarts 10 minutes later (a new `AutoSync` over the same
/// store), and the camera, still 10 minutes off at every check, is not
/// tried again before the hour since the first attempt is over; then it is.
#[tokio::test(start_paused = true)]
async fn a_restart_does_not_shorten_the_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_in_memory(dir.path()).expect("store");
    let id = fake::adopted(&store, 1);
    let cams = FakeCameras::new(5 * SEC);
    cams.set(
        1,
        Script {
            set_clock_refused: true,
            ..fast(600)
        },
    );
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(1_784_077_200_000));
    cams.set_wall_clock(clock.clone());
    let start = || {
        let a = AutoSync::new(
            &sync_cfg(ClockSync::Set),
            "CST-8".into(),
            AuditRetention::default(),
            Arc::new(cams.clone()),
            store.clone(),
            Arc::new(Metrics::new()),
            clock.clone(),
        );
        Arc::new(a.expect("clock_sync = set"))
    };
    let xaddr = format!("http://{}/onvif/device_service", fake::host(1));
    let ask = || Ask {
        id: &id,
        xaddr: &xaddr,
        creds: None,
        offset_ms: 600_000,
        login_refused: false,
    };
    let shutdown = CancellationToken::new();

    let before = start();
    before.consider(ask(), None, &shutdown);
    tokio::time::sleep(SEC).await;
    assert_eq!(cams.calls(1, "set-clock").len(), 1);
    drop(before);

    tokio::time::sleep(10 * MIN).await;
    let after = start();
    // A check every 10 s until 10 s short of the hour.
    while cams.elapsed() < HOUR - 10 * SEC {
        after.consider(ask(), None, &shutdown);
        tokio::time::sleep(10 * SEC).await;
    }
    let tries = cams.calls(1, "set-clock");
    assert_eq!(tries.len(), 1, "tried again within the window: {tries:?}");
    tokio::time::sleep(20 * SEC).await;
    after.consider(ask(), None, &shutdown);
    tokio::time::sleep(SEC).await;
    let tries = cams.calls(1, "set-clock");
    assert_eq!(tries.len(), 2, "{tries:?}");
    assert!(tries[1] - tries[0] >= HOUR, "{tries:?}");
    shutdown.cancel();
}

/// A camera 10 minutes fast is set once, at the check that found it; the
/// next check measures it within 2 s (the time goes in whole seconds) and
/// without `clock-drift`; the attempt is audited with the offsets before
/// and after and counted; it is never set again.
#[tokio::test(start_paused = true)]
async fn a_camera_ten_minutes_fast_is_set_once_and_its_next_check_is_clean() {
    let rig = start(sync_cfg(ClockSync::Set), vec![fast(600)]);
    rig.until("the clock set", MIN, |r| {
        !r.cams.calls(1, "set-clock").is_empty()
    })
    .await;
    let set_at = rig.cams.calls(1, "set-clock")[0];
    rig.until("a check after the sync", MIN, |r| {
        r.sink.timed(1).iter().any(|(at, _)| *at > set_at)
    })
    .await;
    let (at, next) = rig
        .sink
        .timed(1)
        .into_iter()
        .find(|(at, _)| *at > set_at)
        .expect("next check");
    assert!(
        at - set_at <= 10 * SEC,
        "next check {at:?} after {set_at:?}"
    );
    let off = next.clock_offset_ms.expect("offset");
    assert!(off.abs() <= 2_000, "offset after the sync: {off}");
    assert!(!drifting(&next.verdict), "{:?}", next.verdict);
    assert_eq!(next.verdict, Verdict::Ok);

    tokio::time::sleep(2 * HOUR).await;
    assert_eq!(rig.cams.calls(1, "set-clock").len(), 1);
    let rows = auto_rows(&rig);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    assert_eq!((r.actor.as_str(), r.outcome.as_str()), ("system", "ok"));
    assert_eq!(r.source, "health.clock_sync");
    assert_eq!(r.target, Some(only_id(&rig)));
    let after = r.after.clone().unwrap_or_default();
    assert_eq!(after["mode"], "set");
    let before = after["offset_before_ms"].as_i64().expect("before");
    let now = after["offset_after_ms"].as_i64().expect("after");
    assert_eq!(before, 600_000, "{after}");
    assert!(now.abs() <= 2_000, "{after}");
    assert!(after["error"].is_null(), "{after}");
    assert_eq!(count_of(&rig, "set", "ok"), 1);
    let (_, sink) = rig.stop().await;
    assert_eq!(sink.of(1).pop().map(|h| h.verdict), Some(Verdict::Ok));
}

/// `clock_sync = "off"` (the default) never sets a clock, however far off.
#[tokio::test(start_paused = true)]
async fn off_never_sets_a_clock() {
    let rig = Rig::start_seeded(
        sync_cfg(ClockSync::Off),
        vec![fast(600)],
        Arc::new(Metrics::new()),
        |s, n| {
            fake::adopted(s, n);
        },
    );
    assert!(
        !rig.poller
            .set_clock_sync("CST-8".into(), AuditRetention::default())
    );
    tokio::time::sleep(2 * HOUR).await;
    assert!(rig.cams.calls(1, "set-clock").is_empty());
    assert!(auto_rows(&rig).is_empty());
    let (_, sink) = rig.stop().await;
    let last = sink.of(1).pop().expect("states");
    assert!(drifting(&last.verdict), "{:?}", last.verdict);
}

/// A camera 30 s off is drifting (over `max_clock_drift_secs`, 5 s) but
/// under the sync threshold (60 s): it is never touched, and neither is a
/// camera 10 minutes off whose login is refused (an attempt would be one
/// more refused login towards a lockout).
#[tokio::test(start_paused = true)]
async fn a_drift_under_the_threshold_or_a_refused_login_is_never_touched() {
    let refused_login = Script {
        auth_ok: false,
        ..fast(600)
    };
    let rig = start(sync_cfg(ClockSync::Set), vec![fast(30), refused_login]);
    tokio::time::sleep(2 * HOUR).await;
    assert!(rig.cams.calls(1, "set-clock").is_empty());
    assert!(rig.cams.calls(2, "set-clock").is_empty());
    assert!(auto_rows(&rig).is_empty());
    let (_, sink) = rig.stop().await;
    let last = sink.of(1).pop().expect("states");
    assert!(drifting(&last.verdict), "{:?}", last.verdict);
    assert_eq!(last.clock_offset_ms, Some(30_000));
    let last = sink.of(2).pop().expect("states");
    assert!(
        matches!(&last.verdict, Verdict::Degraded(r) if r.contains(&Reason::CredentialsRejected)),
        "{:?}",
        last.verdict
    );
}

/// With a time reference (a GB/T 28181 platform 30 s ahead of us, which
/// the checks measure against), "set" sends the platform's time, not
/// ours: the camera ends 30 s ahead of our clock, 0 from the reference,
/// and its next check shows no drift.
#[tokio::test(start_paused = true)]
async fn set_sends_the_reference_time_the_checks_measure_against() {
    let rig = start(sync_cfg(ClockSync::Set), vec![fast(600)]);
    let reference = Arc::new(TimeReference::default());
    reference.set(30_000, "county");
    rig.poller.set_time_reference(reference);
    rig.until("the clock set", MIN, |r| {
        !r.cams.calls(1, "set-clock").is_empty()
    })
    .await;
    let set_at = rig.cams.calls(1, "set-clock")[0];
    let raw = rig.cams.script(1).expect("script").clock_offset_ms;
    assert!((raw - 30_000).abs() <= 1_000, "camera − our clock: {raw}");
    rig.until("a check after the sync", MIN, |r| {
        r.sink.timed(1).iter().any(|(at, _)| *at > set_at)
    })
    .await;
    let (_, next) = rig
        .sink
        .timed(1)
        .into_iter()
        .find(|(at, _)| *at > set_at)
        .expect("next check");
    let off = next.clock_offset_ms.expect("offset");
    assert!(off.abs() <= 2_000, "camera − reference: {off}");
    assert!(!drifting(&next.verdict), "{:?}", next.verdict);
    let rows = auto_rows(&rig);
    let after = rows[0].after.clone().unwrap_or_default();
    assert_eq!(after["reference"], "county", "{after}");
    assert_eq!(after["offset_before_ms"], 570_000, "{after}");
    rig.stop().await;
}

/// Ten cameras 10 minutes fast whose clock takes 20 s to set: at most
/// four are set at once, all ten get theirs, and meanwhile every camera's
/// checks keep their 10 s rhythm (a sync never holds back a check).
#[tokio::test(start_paused = true)]
async fn at_most_four_at_once_and_checks_go_on_meanwhile() {
    let slow = Script {
        set_clock_takes: 20 * SEC,
        ..fast(600)
    };
    let rig = start(sync_cfg(ClockSync::Set), vec![slow; 10]);
    tokio::time::sleep(3 * MIN).await;
    let mut spans = Vec::new();
    for n in 1..=10 {
        let (s, e) = (
            rig.cams.calls(n, "set-clock"),
            rig.cams.calls(n, "set-clock-end"),
        );
        assert_eq!((s.len(), e.len()), (1, 1), "camera {n}: {s:?} {e:?}");
        spans.push((s[0], e[0]));
    }
    let most = spans
        .iter()
        .map(|(s, _)| spans.iter().filter(|(a, b)| a <= s && s < b).count())
        .max()
        .unwrap_or(0);
    assert_eq!(most, SLOTS, "{spans:?}");
    for n in 1..=10 {
        let times: Vec<Duration> = rig.sink.timed(n).into_iter().map(|(at, _)| at).collect();
        assert!(times.len() >= 17, "camera {n}: {times:?}");
        for w in times.windows(2) {
            assert!(w[1] - w[0] <= 10 * SEC + SEC, "camera {n}: {times:?}");
        }
    }
    assert_eq!(count_of(&rig, "set", "ok"), 10);
    rig.stop().await;
}
