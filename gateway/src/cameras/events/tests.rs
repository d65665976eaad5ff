//! The event loops against scripted cameras on paused time: renewal at half
//! the granted time on a skewed camera clock, rebuild after expiry with no
//! event lost, a camera without events marked and left alone, a slow camera
//! not delaying another, unknown topics counted.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::fake::{FakeEvents, Script};
use super::health::{Conditions, EventHealth, same_server};
use super::{CameraEvent, EventMetrics, EventSink, Events, EventsConfig};
use crate::base::clock::{Clock, TokioClock};
use crate::base::metrics::Metrics;
use crate::cameras::fake;
use crate::cameras::poller::HealthSink;
use crate::cameras::poller::saves::HealthSaves;
use crate::store::secrets::Password;
use crate::store::{Device, Store};
use tgw_core::health::{Health, Reason, Thresholds, Transition, Verdict};

const SEC: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Rec {
    events: Mutex<Vec<(Instant, CameraEvent)>>,
    verdicts: Mutex<Vec<(String, Verdict)>>,
}

impl EventSink for Rec {
    fn event(&self, e: &CameraEvent) {
        self.events
            .lock()
            .unwrap()
            .push((Instant::now(), e.clone()));
    }
}

impl HealthSink for Rec {
    fn state(&self, _: &Device, _: &Health) {}
    fn transition(&self, d: &Device, t: &Transition, _: &Health) {
        self.verdicts
            .lock()
            .unwrap()
            .push((d.id.clone(), t.to.clone()));
    }
}

impl Rec {
    fn kinds(&self, id: &str) -> Vec<(&'static str, &'static str)> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, e)| e.camera == id)
            .map(|(_, e)| (e.kind, e.state))
            .collect()
    }
}

struct World {
    _dir: tempfile::TempDir,
    store: Store,
    fake: Arc<FakeEvents>,
    rec: Arc<Rec>,
    metrics: Arc<EventMetrics>,
    shutdown: CancellationToken,
    events: Arc<Events>,
    /// The current health saved by the events (the poller's buffer).
    saves: Arc<HealthSaves>,
    /// What the events share with the poller.
    conditions: Arc<Conditions>,
}

fn world(cfg: EventsConfig) -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_in_memory(dir.path()).expect("store");
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(1_796_000_000_000));
    let fake = FakeEvents::new(clock.clone());
    let rec = Arc::new(Rec::default());
    let metrics = Arc::new(EventMetrics::new(None));
    let saves = Arc::new(HealthSaves::new(store.clone()));
    let health = Arc::new(EventHealth::new(
        store.clone(),
        saves.clone(),
        Arc::new(Metrics::new()),
        rec.clone(),
        clock.clone(),
        Thresholds::default(),
    ));
    let conditions = health.conditions.clone();
    let events = Events::new(
        store.clone(),
        cfg,
        Arc::new(fake.clone()),
        clock,
        rec.clone(),
        health,
        metrics.clone(),
    );
    World {
        _dir: dir,
        store,
        fake,
        rec,
        metrics,
        shutdown: CancellationToken::new(),
        events,
        saves,
        conditions,
    }
}

impl World {
    fn start(&self) {
        tokio::spawn(self.events.clone().run(self.shutdown.clone()));
    }
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(3600);
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within an hour");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A camera 10 minutes fast that grants 60 s is renewed after about 30 s,
/// not after the 5.5 minutes a naive reading of its TerminationTime
/// against our clock would give, and keeps being renewed.
#[tokio::test(start_paused = true)]
async fn renews_at_half_the_granted_time_on_a_skewed_clock() {
    let w = world(EventsConfig::default());
    let id = fake::adopted(&w.store, 1);
    w.fake.set(
        1,
        Script {
            offset_ms: 600_000,
            ..Script::default()
        },
    );
    w.start();
    until("created", || w.fake.created(1) == 1).await;
    let created = w.fake.calls(1, "create")[0];
    until("renewed twice", || w.fake.calls(1, "renew").len() >= 2).await;
    let renews = w.fake.calls(1, "renew");
    let first = renews[0] - created;
    assert!(
        first >= 29 * SEC && first <= 31 * SEC,
        "first renew after {first:?}"
    );
    let second = renews[1] - renews[0];
    assert!(
        second >= 29 * SEC && second <= 31 * SEC,
        "second after {second:?}"
    );
    assert_eq!(w.fake.created(1), 1, "renewed, not rebuilt");
    assert_eq!(w.metrics.state(&id), Some("active"));
    w.shutdown.cancel();
}

/// Saves an ok health for camera `id` (as the poller would have).
fn healthy(store: &Store, id: &str) {
    store.save_health(id, &ok_health()).unwrap();
}

/// A health the poller would call ok (clock offset 0, streaming).
fn ok_health() -> Health {
    use tgw_core::health::{CheckResult, Expected, Observation, StreamSample};
    let th = Thresholds::default();
    let now = time::OffsetDateTime::UNIX_EPOCH + Duration::from_secs(1_796_000_000);
    let mut h = Health::new(now);
    h.observe(
        Observation::Check(CheckResult::OnvifUp { clock_offset_ms: 0 }),
        now,
        &th,
    );
    h.observe(Observation::Auth { ok: true }, now, &th);
    h.observe(Observation::Stream(Ok(())), now, &th);
    h.observe(
        Observation::Sample {
            sample: Some(StreamSample {
                frames: 45,
                fps: 15.0,
                bitrate_kbps: 500.0,
                loss_pct: 0.0,
                time_to_first_frame_ms: Some(120),
                codec: Some("H264".into()),
            }),
            expected: Expected::default(),
        },
        now,
        &th,
    );
    h.observe(Observation::Snapshot { ok: true }, now, &th);
    assert_eq!(h.verdict, Verdict::Ok);
    h
}

/// An event applies to the health the poller saved last, still in the
/// buffer, not to the older row in the store; the verdict change it makes
/// is written at once.
#[tokio::test(start_paused = true)]
async fn an_event_applies_to_the_buffered_health_not_an_older_row() {
    let w = world(EventsConfig::default());
    let id = fake::adopted(&w.store, 1);
    let then = time::OffsetDateTime::UNIX_EPOCH + Duration::from_secs(1_796_000_000);
    w.store.save_health(&id, &Health::new(then)).unwrap();
    w.saves.save(&id, &ok_health());
    w.fake.set(1, Script::default());
    w.start();
    until("subscribed", || w.fake.created(1) == 1).await;
    w.fake.tamper(1, true);
    until("tamper event", || !w.rec.kinds(&id).is_empty()).await;
    // A verdict change is written at once (before the sinks hear of it),
    // from the buffered health, not the older row.
    let (_, h) = w.store.all_health().unwrap().remove(0);
    assert_eq!(h.verdict, Verdict::Degraded([Reason::Tamper].into()));
    assert_eq!(h.clock_offset_ms, Some(0), "the poller's last check kept");
    assert!(h.last_sample.is_some(), "the poller's last check kept");
    w.shutdown.cancel();
}

/// Tamper degrades the camera and publishes an event; a subscription that
/// expires is rebuilt, and a tamper cleared while it was gone still arrives
/// (from the new subscription's Initialized state): nothing lost.
#[tokio::test(start_paused = true)]
async fn tamper_degrades_and_expiry_rebuilds_without_losing_events() {
    let w = world(EventsConfig::default());
    let id = fake::adopted(&w.store, 1);
    healthy(&w.store, &id);
    w.fake.set(1, Script::default());
    w.start();
    until("subscribed", || w.fake.created(1) == 1).await;
    w.fake.tamper(1, true);
    until("tamper event", || !w.rec.kinds(&id).is_empty()).await;
    assert_eq!(w.rec.kinds(&id), vec![("tamper", "active")]);
    // Written as the poller's supervisor does, within a second.
    w.saves.flush().unwrap();
    let (_, h) = w.store.all_health().unwrap().remove(0);
    assert_eq!(h.verdict, Verdict::Degraded([Reason::Tamper].into()));
    assert_eq!(
        w.rec
            .verdicts
            .lock()
            .unwrap()
            .last()
            .map(|(_, v)| v.clone()),
        Some(Verdict::Degraded([Reason::Tamper].into()))
    );
    // Expired, and the lens is uncovered before the gateway notices.
    w.fake.expire(1);
    w.fake.tamper(1, false);
    until("rebuilt", || w.fake.created(1) == 2).await;
    until("clear event", || w.rec.kinds(&id).len() == 2).await;
    assert_eq!(
        w.rec.kinds(&id),
        vec![("tamper", "active"), ("tamper", "inactive")]
    );
    w.saves.flush().unwrap();
    let (_, h) = w.store.all_health().unwrap().remove(0);
    assert_eq!(h.verdict, Verdict::Ok);
    // The same state again after another rebuild is not a new event.
    w.fake.expire(1);
    until("rebuilt again", || w.fake.created(1) == 3).await;
    tokio::time::sleep(20 * SEC).await;
    assert_eq!(w.rec.kinds(&id).len(), 2);
    w.shutdown.cancel();
}

/// An Axis-like camera that hands out one address for every subscription
/// and tells them apart by a reference parameter: the loop keeps the
/// parameter with the subscription, so pulls find it, renewals keep it
/// alive (not rebuilt), and a tamper arrives.
#[tokio::test(start_paused = true)]
async fn subscriptions_named_by_reference_parameter_are_pulled_and_renewed() {
    let w = world(EventsConfig::default());
    let id = fake::adopted(&w.store, 1);
    w.fake.set(
        1,
        Script {
            by_reference: true,
            ..Script::default()
        },
    );
    w.start();
    until("subscribed", || w.fake.created(1) == 1).await;
    until("renewed twice", || w.fake.calls(1, "renew").len() >= 2).await;
    w.fake.tamper(1, true);
    until("tamper event", || !w.rec.kinds(&id).is_empty()).await;
    assert_eq!(w.rec.kinds(&id), vec![("tamper", "active")]);
    assert_eq!(w.fake.created(1), 1, "renewed, not rebuilt");
    assert_eq!(w.metrics.state(&id), Some("active"));
    w.shutdown.cancel();
}

/// A camera without the event service is marked and asked only once.
#[tokio::test(start_paused = true)]
async fn no_service_is_marked_and_not_retried() {
    let w = world(EventsConfig::default());
    let id = fake::adopted(&w.store, 1);
    w.fake.set(
        1,
        Script {
            events: false,
            ..Script::default()
        },
    );
    w.start();
    until("marked", || w.metrics.state(&id) == Some("no-service")).await;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(w.fake.calls(1, "services").len(), 1);
    assert_eq!(w.fake.created(1), 0);
    w.shutdown.cancel();
}

/// One camera whose pulls hang for an hour does not delay another's event
/// beyond its own pull cadence (`pull_every`), even with one short-call slot.
#[tokio::test(start_paused = true)]
async fn a_slow_camera_does_not_delay_another() {
    let w = world(EventsConfig {
        concurrency: 1,
        ..EventsConfig::default()
    });
    fake::adopted(&w.store, 1);
    let fast = fake::adopted(&w.store, 2);
    w.fake.set(
        1,
        Script {
            pull_delay: Duration::from_secs(3600),
            ..Script::default()
        },
    );
    w.fake.set(2, Script::default());
    w.start();
    until("both subscribed", || {
        w.fake.created(1) == 1 && w.fake.created(2) == 1
    })
    .await;
    let t0 = Instant::now();
    w.fake.tamper(2, true);
    until("fast camera's event", || !w.rec.kinds(&fast).is_empty()).await;
    assert!(t0.elapsed() <= 6 * SEC, "took {:?}", t0.elapsed());
    w.shutdown.cancel();
}

/// With a single pull slot, a camera whose pulls hang has each one cut at
/// its wait plus the grace, so the slot comes back and the other camera's
/// event still arrives within one turn of each; the hanging camera's
/// subscription is rebuilt after `rebuild_after` cut pulls.
#[tokio::test(start_paused = true)]
async fn a_hanging_pull_gives_its_slot_back() {
    let w = world(EventsConfig {
        pulls: 1,
        ..EventsConfig::default()
    });
    fake::adopted(&w.store, 1);
    let fast = fake::adopted(&w.store, 2);
    w.fake.set(
        1,
        Script {
            pull_delay: Duration::from_secs(3600),
            ..Script::default()
        },
    );
    w.fake.set(2, Script::default());
    w.start();
    until("both pulled", || {
        !w.fake.calls(1, "pull").is_empty() && !w.fake.calls(2, "pull").is_empty()
    })
    .await;
    let t0 = Instant::now();
    w.fake.tamper(2, true);
    until("fast camera's event", || !w.rec.kinds(&fast).is_empty()).await;
    // Its own cadence (5 s) plus the hanging camera's cut pull (1 s + 5 s).
    assert!(t0.elapsed() <= 12 * SEC, "took {:?}", t0.elapsed());
    assert_eq!(w.fake.max_inflight(), 1, "one pull at a time");
    until("hanging camera rebuilt", || w.fake.created(1) >= 2).await;
    w.shutdown.cancel();
}

/// Many cameras take turns: never more pulls in flight than `pulls`, yet
/// every camera keeps pulling and an event on any of them arrives within
/// the documented round, `max(pull_every, ceil(cameras / pulls) × wait)`.
#[tokio::test(start_paused = true)]
async fn cameras_pull_in_turns_within_the_round() {
    let w = world(EventsConfig {
        pulls: 2,
        ..EventsConfig::default()
    });
    let ids: Vec<String> = (1..=12).map(|n| fake::adopted(&w.store, n)).collect();
    for n in 1..=12 {
        w.fake.set(n, Script::default());
    }
    w.start();
    until("all pulled", || {
        (1..=12).all(|n| w.fake.calls(n, "pull").len() >= 2)
    })
    .await;
    let t0 = Instant::now();
    w.fake.tamper(12, true);
    until("event", || !w.rec.kinds(&ids[11]).is_empty()).await;
    // ceil(12 / 2) × 1 s = 6 s per round, plus the pull that answers.
    assert!(t0.elapsed() <= 7 * SEC, "took {:?}", t0.elapsed());
    assert_eq!(w.fake.max_inflight(), 2);
    w.shutdown.cancel();
}

/// An empty pull is followed `pull_every` after it began; a pull that
/// brought messages is followed at once.
#[tokio::test(start_paused = true)]
async fn empty_pulls_wait_for_the_cadence_busy_ones_do_not() {
    let w = world(EventsConfig::default());
    fake::adopted(&w.store, 1);
    w.fake.set(1, Script::default());
    w.start();
    // The first pull brings the Initialized state: the second follows at
    // once; the second is empty (1 s wait): the third 5 s after it began.
    until("three pulls", || w.fake.calls(1, "pull").len() >= 3).await;
    let p = w.fake.calls(1, "pull");
    assert!(p[1] - p[0] < SEC, "after messages: {:?}", p[1] - p[0]);
    assert_eq!(p[2] - p[1], 5 * SEC, "after an empty pull");
    w.shutdown.cancel();
}

/// A camera whose inventory is fetched again gets a new subscription (the
/// supervisor compares inventory times, reading no inventories); a camera
/// removed from adoption stops being pulled.
#[tokio::test(start_paused = true)]
async fn inventory_change_resubscribes_and_removal_stops() {
    let w = world(EventsConfig::default());
    let id = fake::adopted(&w.store, 1);
    w.fake.set(1, Script::default());
    w.start();
    until("subscribed", || w.fake.created(1) == 1).await;
    // A later inventory (the store's own clock is the system's: its time
    // is set here).
    w.store
        .with_conn(|c| {
            c.execute(
                "UPDATE device SET inventory_at = '2099-01-01T00:00:00Z' WHERE id = ?1",
                [&id],
            )?;
            Ok(())
        })
        .expect("inventory time");
    until("resubscribed", || w.fake.created(1) == 2).await;
    w.store.ignore(&id).expect("no longer adopted");
    until("forgotten", || w.metrics.state(&id).is_none()).await;
    let pulls = w.fake.calls(1, "pull").len();
    tokio::time::sleep(60 * SEC).await;
    assert_eq!(
        w.fake.calls(1, "pull").len(),
        pulls,
        "no pulls after removal"
    );
    w.shutdown.cancel();
}

/// The supervisor waits on the store's writes, not on its rescan: a camera
/// adopted while the loops run is subscribed at once, one removed is no
/// longer pulled at once, and a corrected login is tried at once by a camera
/// whose loop is failing (backing off for minutes).
#[tokio::test(start_paused = true)]
async fn store_writes_are_seen_at_once_not_at_the_rescan() {
    let w = world(EventsConfig::default());
    assert!(
        w.events.cfg.rescan >= 60 * SEC,
        "the rescan is a safety net"
    );
    let first = fake::adopted(&w.store, 1);
    for n in 1..=2 {
        w.fake.set(n, Script::default());
    }
    w.fake.set(
        3,
        Script {
            password: Some("right"),
            ..Script::default()
        },
    );
    w.start();
    until("camera 1 subscribed", || w.fake.created(1) == 1).await;
    tokio::time::sleep(2 * SEC).await;
    let t = Instant::now();
    fake::adopted(&w.store, 2);
    until("camera 2 subscribed", || w.fake.created(2) == 1).await;
    assert!(
        t.elapsed() < 2 * SEC,
        "adoption seen after {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    w.store.ignore(&first).expect("no longer adopted");
    until("camera 1 forgotten", || w.metrics.state(&first).is_none()).await;
    assert!(
        t.elapsed() < 2 * SEC,
        "removal seen after {:?}",
        t.elapsed()
    );
    let pulls = w.fake.calls(1, "pull").len();
    tokio::time::sleep(120 * SEC).await;
    assert_eq!(w.fake.calls(1, "pull").len(), pulls, "pulled after removal");
    // Camera 3 refuses the stored login ("secret"): its loop backs off
    // longer and longer (2 s, 4 s, … 64 s after the 6th refusal).
    let third = fake::adopted(&w.store, 3);
    until("refused 6 times", || w.fake.calls(3, "create").len() >= 6).await;
    assert_eq!(w.metrics.state(&third), Some("failing"));
    tokio::time::sleep(SEC).await;
    let t = Instant::now();
    w.store
        .set_device_login(&third, "admin", &Password::new("right"))
        .expect("login");
    until("camera 3 subscribed", || w.fake.created(3) == 1).await;
    assert!(
        t.elapsed() < 2 * SEC,
        "new login tried after {:?}",
        t.elapsed()
    );
    until("camera 3 active", || {
        w.metrics.state(&third) == Some("active")
    })
    .await;
    assert_eq!(w.fake.created(2), 1, "a working camera is not resubscribed");
    w.shutdown.cancel();
}

/// Unknown topics are counted, not published; the message limit holds.
#[tokio::test(start_paused = true)]
async fn unknown_topics_are_counted_not_published() {
    let w = world(EventsConfig {
        message_limit: 10,
        ..EventsConfig::default()
    });
    let id = fake::adopted(&w.store, 1);
    w.fake.set(1, Script::default());
    w.start();
    until("subscribed", || w.fake.created(1) == 1).await;
    let pulls_before = w.fake.calls(1, "pull").len();
    w.fake.junk(1, 95);
    until("counted", || {
        w.metrics
            .events
            .get_or_create(&super::metrics::KindLabel {
                kind: "unknown".into(),
            })
            .get()
            == 95
    })
    .await;
    assert!(
        w.fake.calls(1, "pull").len() - pulls_before >= 10,
        "10 per pull"
    );
    assert!(w.rec.kinds(&id).is_empty());
    w.shutdown.cancel();
}

/// The renewal arithmetic: camera times, our time plus offset, floors.
#[test]
fn renew_in_uses_the_cameras_clock() {
    use super::task::renew_in;
    let us = time::OffsetDateTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let cam = us + Duration::from_secs(600);
    let asked = Duration::from_secs(60);
    // Both times from the camera.
    assert_eq!(
        renew_in(Some(cam), Some(cam + asked), us, 0, asked),
        30 * SEC
    );
    // Only the termination: our time plus the measured offset.
    assert_eq!(
        renew_in(None, Some(cam + asked), us, 600_000, asked),
        30 * SEC
    );
    // Nothing: what we asked for.
    assert_eq!(renew_in(None, None, us, 0, asked), 30 * SEC);
    // Already over: renew soon, not never.
    assert_eq!(renew_in(Some(cam), Some(cam - asked), us, 0, asked), SEC);
}

/// A pull the camera answered on its device service's server is noted
/// for the poller; one that failed
/// forgets it; pulls on another server (another port) are never noted.
#[tokio::test(start_paused = true)]
async fn pulls_answered_on_the_device_server_stand_for_its_check() {
    let w = world(EventsConfig::default());
    let id = fake::adopted(&w.store, 1);
    let other = fake::adopted(&w.store, 2);
    w.fake.set(
        1,
        Script {
            offset_ms: 600_000,
            ..Script::default()
        },
    );
    w.fake.set(
        2,
        Script {
            pull_port: Some(8080),
            ..Script::default()
        },
    );
    let t0 = Instant::now();
    w.start();
    until("pulls", || {
        w.fake.calls(1, "pull").len() >= 2 && w.fake.calls(2, "pull").len() >= 2
    })
    .await;
    tokio::time::sleep(SEC).await;
    assert!(w.conditions.answered.since(&id, t0), "noted");
    assert!(!w.conditions.answered.since(&other, t0), "other server");

    // The camera forgets the subscription and refuses a new one: the
    // failed pull forgets the answer, and none comes after.
    let mut s = Script {
        offset_ms: 600_000,
        password: Some("changed"),
        ..Script::default()
    };
    s.created = w.fake.created(1);
    w.fake.set(1, s);
    w.fake.expire(1);
    let created = w.fake.calls(1, "create").len();
    until("a refused rebuild", || {
        w.fake.calls(1, "create").len() > created
    })
    .await;
    assert!(!w.conditions.answered.since(&id, t0), "forgotten");
    w.shutdown.cancel();
}

#[test]
fn same_server_is_scheme_host_and_port() {
    let dev = "http://192.0.2.7/onvif/device_service";
    assert!(same_server(dev, "http://192.0.2.7:80/pullpoint/3"));
    assert!(same_server(dev, "http://192.0.2.7/onvif/services"));
    assert!(!same_server(dev, "http://192.0.2.7:8080/pullpoint/3"));
    assert!(!same_server(dev, "https://192.0.2.7/pullpoint/3"));
    assert!(!same_server(dev, "http://192.0.2.8/pullpoint/3"));
    assert!(!same_server(dev, "not a url"));
}
