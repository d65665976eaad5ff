//! The poller's rules against scripted cameras on paused tokio time: checks
//! spread over the interval and never held back by another camera, a busy
//! sample slot deferring (not delaying) a sample, rejected credentials
//! backing off the authenticated call, a frozen stream re-sampled after
//! `stall_secs`, offline after exactly `offline_after` missed checks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{HealthSink, Poller};
use crate::base::clock::TokioClock;
use crate::base::metrics::Metrics;
use crate::cameras::fake::{self, FakeCameras, Script};
use crate::config::HealthSection;
use crate::store::{Device, Store};
use tgw_core::health::{Health, Reason, Rung, Transition, Verdict};

pub(super) const SEC: Duration = Duration::from_secs(1);

/// Every state the poller published, with when and for which host.
#[derive(Default)]
pub(super) struct Recorder {
    states: Mutex<Vec<(Duration, String, Health)>>,
    t0: Option<Instant>,
}

impl HealthSink for Recorder {
    fn state(&self, device: &Device, health: &Health) {
        let at = self.t0.map(|t| t.elapsed()).unwrap_or_default();
        let host = device.address.clone().unwrap_or_default();
        self.states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((at, host, health.clone()));
    }
    fn transition(&self, _: &Device, _: &Transition, _: &Health) {}
}

impl Recorder {
    /// Camera `n`'s published states with when, oldest first.
    pub(super) fn timed(&self, n: u8) -> Vec<(Duration, Health)> {
        let h = fake::host(n);
        self.states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, host, _)| *host == h)
            .map(|(at, _, s)| (*at, s.clone()))
            .collect()
    }

    /// Camera `n`'s published states, oldest first.
    pub(super) fn of(&self, n: u8) -> Vec<Health> {
        let h = fake::host(n);
        self.states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, host, _)| *host == h)
            .map(|(_, _, s)| s.clone())
            .collect()
    }
}

/// A running poller over scripted cameras `1..=n`, with the daemon's
/// inventory path: ids asked for on the probe channel are probed through
/// the same scripted cameras, recorded, counted, then woken.
pub(super) struct Rig {
    pub(super) cams: FakeCameras,
    pub(super) store: Store,
    pub(super) metrics: Arc<Metrics>,
    pub(super) sink: Arc<Recorder>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    /// What the API sends after a login change (`probe_tx`).
    pub(super) probe: mpsc::Sender<String>,
    /// The poller itself (its setters).
    pub(super) poller: Arc<Poller>,
    _dir: tempfile::TempDir,
}

pub(super) fn cfg(check: u64, describe: u64, sample: u64) -> HealthSection {
    HealthSection {
        check_interval_secs: Duration::from_secs(check),
        describe_interval_secs: Duration::from_secs(describe),
        sample_interval_secs: Duration::from_secs(sample),
        ..HealthSection::default()
    }
}

impl Rig {
    fn start(cfg: HealthSection, scripts: Vec<Script>) -> Rig {
        Self::start_with(cfg, scripts, Arc::new(Metrics::new()))
    }

    fn start_with(cfg: HealthSection, scripts: Vec<Script>, metrics: Arc<Metrics>) -> Rig {
        Self::start_seeded(cfg, scripts, metrics, |store, n| {
            fake::adopted(store, n);
        })
    }

    /// Cameras `1..=n` scripted by `scripts` and recorded in the store by
    /// `seed` (adopted with an inventory, adopted without one, ...).
    pub(super) fn start_seeded(
        cfg: HealthSection,
        scripts: Vec<Script>,
        metrics: Arc<Metrics>,
        seed: impl Fn(&Store, u8),
    ) -> Rig {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open_in_memory(dir.path()).expect("store");
        let cams = FakeCameras::new(cfg.call_timeout_ms);
        for (i, s) in scripts.into_iter().enumerate() {
            let n = u8::try_from(i + 1).expect("few cameras");
            cams.set(n, s);
            seed(&store, n);
        }
        let sink = Arc::new(Recorder {
            t0: Some(Instant::now()),
            ..Recorder::default()
        });
        let (wake_tx, wake_rx) = mpsc::channel(8);
        let (probe_tx, mut probe_rx) = mpsc::channel::<String>(8);
        let clock: Arc<dyn crate::base::clock::Clock> =
            Arc::new(TokioClock::starting_at(1_784_077_200_000));
        cams.set_wall_clock(clock.clone());
        let poller = Poller::with_io(
            store.clone(),
            cfg,
            metrics.clone(),
            sink.clone(),
            Arc::new(cams.clone()),
            clock,
            Some(probe_tx.clone()),
        );
        let prober = crate::cameras::inventory::Prober::with_io(Arc::new(cams.clone()));
        let (s2, m2, local) = (store.clone(), metrics.clone(), poller.local_probes());
        tokio::spawn(async move {
            while let Some(id) = probe_rx.recv().await {
                let o = crate::cameras::inventory::probe_counted(&s2, &prober, &m2, &id).await;
                local.note(&o);
                if wake_tx.send(id).await.is_err() {
                    break;
                }
            }
        });
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(poller.clone().run(shutdown.clone(), wake_rx));
        Rig {
            cams,
            store,
            metrics,
            sink,
            shutdown,
            task,
            probe: probe_tx,
            poller,
            _dir: dir,
        }
    }

    /// Lets paused time run until `done` holds (at most `limit`).
    pub(super) async fn until(&self, what: &str, limit: Duration, done: impl Fn(&Rig) -> bool) {
        let end = Instant::now() + limit;
        while !done(self) {
            assert!(Instant::now() < end, "still waiting for {what}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits until camera 1 is offline, stops the rig, and checks its
    /// states from the `from`-th on: one, two, three missed checks in a row,
    /// ending unreachable.
    pub(super) async fn offline_after_three_misses(self, from: usize) {
        self.until("offline", 60 * SEC, |r| {
            r.sink
                .of(1)
                .last()
                .is_some_and(|h| h.verdict == Verdict::Offline)
        })
        .await;
        let (_, sink) = self.stop().await;
        let missed: Vec<u32> = sink.of(1)[from..]
            .iter()
            .map(|h| h.consecutive_failures)
            .collect();
        assert_eq!(missed, [1, 2, 3]);
        assert_eq!(sink.of(1).last().expect("a state").rung, Rung::Unreachable);
    }

    pub(super) async fn stop(self) -> (FakeCameras, Arc<Recorder>) {
        self.shutdown.cancel();
        let _ = self.task.await;
        (self.cams, self.sink)
    }
}

fn gaps(times: &[Duration]) -> Vec<Duration> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

/// `d` is `want`, give or take the timer's millisecond rounding.
fn about(d: Duration, want: Duration) -> bool {
    d >= want && d <= want + Duration::from_millis(5)
}

#[tokio::test(start_paused = true)]
async fn first_checks_spread_over_the_interval_and_a_hanging_camera_delays_no_other() {
    let mut c = cfg(30, 300, 600);
    c.concurrency = 4;
    let mut scripts = vec![Script::default(); 10];
    scripts[0].hang = true; // camera 1 times out on every check
    let rig = Rig::start(c, scripts);
    tokio::time::sleep(400 * SEC).await;
    let (cams, _) = rig.stop().await;

    let firsts: Vec<Duration> = (1..=10).map(|n| cams.calls(n, "clock")[0]).collect();
    assert!(firsts.iter().all(|t| *t < 30 * SEC), "{firsts:?}");
    let mut distinct = firsts.clone();
    distinct.sort();
    distinct.dedup();
    assert!(
        distinct.len() >= 5,
        "first checks bunched, not spread over the interval: {firsts:?}"
    );
    for n in 2..=10 {
        let g = gaps(&cams.calls(n, "clock"));
        assert!(g.len() >= 11, "camera {n}: {g:?}");
        assert!(
            g.iter().all(|g| about(*g, 30 * SEC)),
            "camera {n} checks not every 30 s: {g:?}"
        );
    }
    // Camera 1 did hang: each check took the 3 s call timeout.
    let g = gaps(&cams.calls(1, "clock"));
    assert!(g.iter().all(|g| about(*g, 33 * SEC)), "{g:?}");
}

#[tokio::test(start_paused = true)]
async fn a_busy_sample_slot_defers_the_sample_without_holding_back_checks() {
    let mut c = cfg(10, 300, 60);
    c.sample_concurrency = 1;
    let slow = Script {
        sample_takes: 100 * SEC,
        ..Script::default()
    };
    let rig = Rig::start(c, vec![slow, Script::default()]);
    tokio::time::sleep(1000 * SEC).await;
    let (cams, _) = rig.stop().await;

    // Camera 2 is checked every 10 s whatever camera 1's sample holds.
    let g = gaps(&cams.calls(2, "clock"));
    assert!(g.len() >= 95, "{g:?}");
    assert!(
        g.iter().all(|g| about(*g, 10 * SEC)),
        "camera 2 held back: {g:?}"
    );
    // Camera 1 holds the only slot 100 s at a time; camera 2's sample, due
    // at least every 70 s, is deferred inside each of those windows and
    // taken at its first check after the slot is free.
    let (starts, ends) = (cams.calls(1, "sample"), cams.calls(1, "sample-end"));
    let mine = cams.calls(2, "sample");
    assert!(ends.len() >= 4, "{starts:?} {ends:?}");
    for (s, e) in starts.iter().zip(&ends) {
        assert!(
            !mine.iter().any(|m| m >= s && m < e),
            "camera 2 sampled in camera 1's slot: {mine:?}"
        );
        if *e + 10 * SEC < cams.elapsed() {
            assert!(
                mine.iter().any(|m| *m >= *e && *m <= *e + 10 * SEC),
                "camera 2's deferred sample not taken within a check of {e:?}: {mine:?}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn rejected_credentials_back_off_the_authenticated_call() {
    let mut c = cfg(10, 10, 600);
    c.auth_backoff_secs = 60 * SEC;
    let locked = Script {
        auth_ok: false,
        ..Script::default()
    };
    let rig = Rig::start(c, vec![locked]);
    tokio::time::sleep(1000 * SEC).await;

    // 60, 120, 240, 480 s apart (on the 10 s check grid), never every 10 s.
    let auth = rig.cams.calls(1, "auth");
    let g = gaps(&auth);
    assert_eq!(g.len(), 4, "{auth:?}");
    for (i, g) in g.iter().enumerate() {
        let backoff = 60 * SEC * 2u32.pow(i as u32);
        assert!(
            *g >= backoff && *g < backoff + 10 * SEC,
            "attempt {} after {g:?}, backoff {backoff:?}",
            i + 2
        );
    }
    // The cheap checks go on meanwhile, and the verdict says why.
    assert!(rig.cams.calls(1, "clock").len() >= 99);
    let last = rig.sink.of(1).pop().expect("a state");
    assert!(
        matches!(&last.verdict, Verdict::Degraded(r) if r.contains(&Reason::CredentialsRejected)),
        "{}",
        last.verdict
    );

    // Fixed credentials: accepted at the next allowed attempt, and the
    // authenticated call is back on its 10 s interval.
    rig.cams.edit(1, |s| s.auth_ok = true);
    let before = auth.len();
    rig.until("an accepted login", 1000 * SEC, |r| {
        r.cams.calls(1, "auth").len() > before
    })
    .await;
    tokio::time::sleep(100 * SEC).await;
    let (cams, sink) = rig.stop().await;
    let auth = cams.calls(1, "auth");
    let g = gaps(&auth[before..]);
    assert!(g.len() >= 9, "{auth:?}");
    assert!(g.iter().all(|g| about(*g, 10 * SEC)), "{g:?}");
    assert_eq!(sink.of(1).pop().expect("a state").verdict, Verdict::Ok);
}

#[tokio::test(start_paused = true)]
async fn a_frozen_stream_is_stalled_and_sampled_again_after_stall_secs() {
    let mut c = cfg(10, 300, 600);
    c.stall_secs = 20 * SEC;
    let frozen = Script {
        frames: 0,
        ..Script::default()
    };
    let rig = Rig::start(c, vec![frozen]);
    rig.until("three samples", 700 * SEC, |r| {
        r.cams.calls(1, "sample").len() >= 3
    })
    .await;
    // Re-sampled 20 s apart, not 600 s, and named stalled.
    let g = gaps(&rig.cams.calls(1, "sample"));
    assert!(g.iter().all(|g| about(*g, 20 * SEC)), "{g:?}");
    let last = rig.sink.of(1).pop().expect("a state");
    assert!(
        matches!(&last.verdict, Verdict::Degraded(r) if r.contains(&Reason::Stalled)),
        "{}",
        last.verdict
    );

    // Frames again: no longer stalled, and back to the 600 s interval.
    rig.cams.edit(1, |s| s.frames = 75);
    tokio::time::sleep(1300 * SEC).await;
    let (cams, sink) = rig.stop().await;
    let samples = cams.calls(1, "sample");
    let g = gaps(&samples[2..]);
    assert_eq!(g.len(), 3, "{samples:?}");
    assert!(about(g[0], 20 * SEC), "{g:?}");
    assert!(
        g[1..].iter().all(|g| about(*g, 600 * SEC)),
        "healthy stream not on the 600 s interval: {g:?}"
    );
    assert_eq!(sink.of(1).pop().expect("a state").verdict, Verdict::Ok);
}

#[tokio::test(start_paused = true)]
async fn offline_after_exactly_three_missed_checks_and_back_with_one_answer() {
    let rig = Rig::start(cfg(10, 300, 600), vec![Script::default()]);
    rig.until("two checks", 60 * SEC, |r| r.sink.of(1).len() >= 2)
        .await;
    assert_eq!(rig.sink.of(1).pop().expect("a state").verdict, Verdict::Ok);

    rig.cams.edit(1, |s| s.up = false);
    let before = rig.sink.of(1).len();
    rig.until("three missed checks", 60 * SEC, |r| {
        r.sink.of(1).len() >= before + 3
    })
    .await;
    let missed = &rig.sink.of(1)[before..before + 3];
    let fails: Vec<u32> = missed.iter().map(|h| h.consecutive_failures).collect();
    assert_eq!(fails, [1, 2, 3]);
    assert_ne!(
        missed[0].verdict,
        Verdict::Offline,
        "offline after one miss"
    );
    assert_ne!(
        missed[1].verdict,
        Verdict::Offline,
        "offline after two misses"
    );
    assert_eq!(
        missed[2].verdict,
        Verdict::Offline,
        "not offline after three"
    );

    rig.cams.edit(1, |s| s.up = true);
    let before = rig.sink.of(1).len();
    rig.until("an answer", 60 * SEC, |r| r.sink.of(1).len() > before)
        .await;
    let (_, sink) = rig.stop().await;
    let back = &sink.of(1)[before];
    assert_ne!(back.verdict, Verdict::Offline, "one answer brings it back");
    assert_eq!(back.consecutive_failures, 0);
}

#[tokio::test(start_paused = true)]
async fn a_wake_checks_a_camera_fully_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_in_memory(dir.path()).expect("store");
    let cams = FakeCameras::new(SEC);
    cams.set(1, Script::default());
    let id = fake::adopted(&store, 1);
    let poller = Poller::with_io(
        store,
        cfg(30, 3000, 6000),
        Arc::new(Metrics::new()),
        Arc::new(super::NoSink),
        Arc::new(cams.clone()),
        Arc::new(TokioClock::starting_at(0)),
        None,
    );
    let (wake_tx, wake_rx) = mpsc::channel(8);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(poller.run(shutdown.clone(), wake_rx));
    // Past the first (jittered) check, which also describes.
    tokio::time::sleep(31 * SEC).await;
    let (describes, samples) = (cams.calls(1, "describe").len(), cams.calls(1, "sample"));
    wake_tx.send(id).await.expect("wake");
    tokio::time::sleep(SEC).await;
    assert_eq!(cams.calls(1, "describe").len(), describes + 1);
    assert_eq!(cams.calls(1, "sample").len(), samples.len() + 1);
    shutdown.cancel();
    let _ = task.await;
}

/// Health history points are an optional write: while the disk watchdog
/// says the data volume is low they are skipped (and counted), the current
/// health and the sink still get every cycle; with space back they resume.
#[tokio::test(start_paused = true)]
async fn history_points_stop_while_the_disk_is_low() {
    use crate::base::disk::{DiskLevel, Marks, Space};
    let metrics = Arc::new(Metrics::new());
    let low = Space {
        free: 10 << 20,
        total: 1 << 30,
    };
    metrics
        .disk()
        .set(DiskLevel::Low, low, Marks::from_mb(64, 16));
    let rig = Rig::start_with(cfg(10, 20, 600), vec![Script::default()], metrics);
    let id = rig.store.devices(None).unwrap()[0].id.clone();
    rig.until("three cycles", 120 * SEC, |r| r.sink.of(1).len() >= 3)
        .await;
    assert_eq!(rig.store.history_points(&id).unwrap(), 0);
    assert!(
        rig.metrics
            .encode()
            .contains(r#"tgw_disk_skipped_writes_total{write="health_history"}"#),
        "skips are counted"
    );
    assert_eq!(
        rig.store.all_health().unwrap().len(),
        1,
        "current health saved"
    );
    let ok = Space {
        free: 900 << 20,
        total: 1 << 30,
    };
    rig.metrics
        .disk()
        .set(DiskLevel::Ok, ok, Marks::from_mb(64, 16));
    let n = rig.sink.of(1).len();
    rig.until("two more cycles", 120 * SEC, |r| {
        r.sink.of(1).len() >= n + 4
    })
    .await;
    assert!(rig.store.history_points(&id).unwrap() > 0);
    rig.stop().await;
}

/// Counts the states the poller published.
#[derive(Default)]
struct Count(std::sync::atomic::AtomicUsize);

impl HealthSink for Count {
    fn state(&self, _: &Device, _: &Health) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    fn transition(&self, _: &Device, _: &Transition, _: &Health) {}
}

/// The real IO against two loopback hosts (so on real time, briefly): the
/// camera on 127.0.0.1 reports a snapshot URI on 127.0.0.2, which asks for
/// Basic. The poller fetches it without the camera's login: the other host
/// never sees an `Authorization` header, and the snapshot counts as
/// unavailable.
#[tokio::test]
async fn snapshot_on_another_host_never_gets_the_camera_login() {
    // One canned answer for both ONVIF calls: the camera accepts the login
    // (a refused one would hold back the snapshot: the auth backoff).
    let body = concat!(
        r#"<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>"#,
        "<GetSystemDateAndTimeResponse><SystemDateAndTime><UTCDateTime><Time><Hour>1</Hour><Minute>0</Minute><Second>0</Second></Time>",
        "<Date><Year>2026</Year><Month>1</Month><Day>1</Day></Date></UTCDateTime></SystemDateAndTime></GetSystemDateAndTimeResponse>",
        "<GetDeviceInformationResponse><Manufacturer>Acme</Manufacturer><Model>Cam</Model></GetDeviceInformationResponse>",
        "</s:Body></s:Envelope>"
    );
    let camera = fake::HttpSpy::start(
        "127.0.0.1",
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    let basic = "WWW-Authenticate: Basic realm=\"cam\"".to_string();
    let other = fake::HttpSpy::start(
        "127.0.0.2",
        fake::http_response("401 Unauthorized", &[basic]),
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_in_memory(dir.path()).expect("store");
    let xaddr = format!("http://{}/onvif/device_service", camera.addr);
    let snap = format!("http://{}/snap.jpg", other.addr);
    fake::adopted_at(&store, std::net::Ipv4Addr::LOCALHOST, &xaddr, &snap);
    let mut c = cfg(1, 1, 3600);
    c.call_timeout_ms = 2 * SEC;
    let clock = crate::base::clock::system();
    let io =
        crate::cameras::device::RealCameraIo::new(Default::default(), clock.clone()).expect("io");
    let sink = Arc::new(Count::default());
    let poller = Poller::with_io(
        store,
        c,
        Arc::new(Metrics::new()),
        sink.clone(),
        Arc::new(io),
        clock,
        None,
    );
    let (_wake_tx, wake_rx) = mpsc::channel(1);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(poller.run(shutdown.clone(), wake_rx));
    // The first cycle is a full one (check, describe, snapshot), then a state.
    let end = Instant::now() + 15 * SEC;
    while sink.0.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(Instant::now() < end, "no cycle finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    let _ = task.await;
    assert!(!camera.heads().is_empty(), "the camera was polled");
    assert!(!other.heads().is_empty(), "the snapshot URI was fetched");
    assert!(
        !other.saw_authorization(),
        "the other host got the login: {:?}",
        other.heads()
    );
}
