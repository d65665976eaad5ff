//! The broadcast runtime: one task owning the [`Engine`], the scheduler and
//! the early-warning desk. It resolves targets to horns, renders
//! programmes, carries out the engine's actions with the speaker drivers
//! (through a [`Player`]), and records and publishes every horn's report.
//!
//! ```text
//! API / MQTT / CAP / timetable ─► Cmd ─► runtime task ─► Engine ─► Action
//!     Start ─► executor task per start: segment by segment, one T0,
//!              per-horn cancellation ─► Finished ─► Engine
//!     Stop  ─► cancel those horns' tokens
//!     Report ─► store (broadcast_horn, broadcast_event), MQTT, live SSE
//! ```

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use device_drivers::speaker::{DriverOptions, PlayReport, SpeakerUri};
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::engine::{Action, Engine, EngineConfig, HornState, Outcome, Request};
use super::record::Records;
use super::render::{Recipe, Rendered, render};
use super::{Ms, OnPreempt, Priority, Target};
use crate::base::live::{LiveEvent, LiveHub};
use crate::broadcast::audio::assets::AssetStore;
use crate::speakers::Speakers;
use crate::uplink::Publisher;
use tgw_core::schedule::{HornInfo, Timetable};

pub use crate::base::clock::{Clock, SystemClock, TokioClock};

/// Plays PCM on one horn from T0 until the end or `cancel`. Every horn of a
/// broadcast is given the same T0 per segment, which is what makes their
/// starts synchronous. [`DriverPlayer`] is the real one; the paused-time
/// day test records calls.
pub trait Player: Send + Sync + 'static {
    /// What happened on the horn.
    fn play(
        &self,
        horn: SpeakerUri,
        pcm: Arc<Vec<i16>>,
        t0: Instant,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, PlayReport>;
}

/// The speaker drivers.
pub struct DriverPlayer(pub DriverOptions);

impl Player for DriverPlayer {
    fn play(
        &self,
        horn: SpeakerUri,
        pcm: Arc<Vec<i16>>,
        t0: Instant,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, PlayReport> {
        let opts = self.0.clone();
        Box::pin(
            async move { device_drivers::speaker::play_at(&horn, &opts, &pcm, t0, &cancel).await },
        )
    }
}

/// Runtime settings (from `[broadcast]`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Time from deciding to start to T0 (horns get ready meanwhile).
    pub lead: Duration,
    /// Scheduled broadcasts are submitted this long before their time.
    pub preroll: Duration,
    /// How long a scheduled broadcast may wait behind another on a horn.
    pub queue_window: Duration,
    /// How long a horn may take to stop before it is reported stuck.
    pub stop_timeout: Duration,
    /// Volume of emergency broadcasts (forced on every horn).
    pub emergency_volume: u8,
    /// Volume when the programme sets none.
    pub default_volume: u8,
    /// Time zone of timetables and quiet hours.
    pub tz: jiff::tz::TimeZone,
    /// Cloud horns: the broker they listen on and where their audio is served.
    pub cloud: Option<(std::net::SocketAddr, std::net::SocketAddr)>,
    /// Furthest back a restart looks for missed occurrences.
    pub max_catch_up: Duration,
    /// Interface for multicast zones (loopback in tests and the demo).
    pub multicast_if: Option<std::net::Ipv4Addr>,
    /// Driver timeouts and RTP options.
    pub driver: DriverOptions,
    /// Render programmes inside the runtime task instead of a blocking
    /// thread (tests on paused time, where a blocking thread lets the
    /// clock run ahead).
    pub inline_render: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            lead: Duration::from_millis(150),
            preroll: Duration::from_secs(5),
            queue_window: Duration::from_secs(600),
            stop_timeout: Duration::from_secs(3),
            emergency_volume: 100,
            default_volume: 100,
            tz: jiff::tz::TimeZone::get("Asia/Shanghai").unwrap_or(jiff::tz::TimeZone::UTC),
            cloud: None,
            max_catch_up: Duration::from_secs(24 * 3600),
            multicast_if: None,
            driver: DriverOptions::default(),
            inline_render: false,
        }
    }
}

/// A broadcast to make.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Id; generated when `None`.
    pub id: Option<String>,
    /// Who or what asked: `schedule:ID`, `operator:USER`, `mqtt:KEY`, `cap:IDENTIFIER`.
    pub origin: String,
    /// Programme name or headline.
    pub title: String,
    /// Priority.
    pub priority: Priority,
    /// Where.
    pub targets: Vec<Target>,
    /// What.
    pub recipe: Recipe,
    /// T0 (`None`: as soon as possible).
    pub start_at: Option<Ms>,
    /// Latest start on a busy horn (`None`: the queue window, or for
    /// emergencies: no limit).
    pub latest_start: Option<Ms>,
    /// What a preemption does to it.
    pub on_preempt: OnPreempt,
}

/// The timetable in force, replaced whole on every change (readers take a
/// snapshot without copying it).
type Shared = Arc<RwLock<Arc<Timetable>>>;

fn read(t: &Shared) -> Arc<Timetable> {
    match t.read() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

/// What a submit answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Submitted {
    /// The broadcast id.
    pub id: String,
    /// Horns it goes to.
    pub horns: usize,
    /// Horns skipped for quiet hours.
    pub quiet: usize,
}

enum Cmd {
    Submit(Spec, oneshot::Sender<Result<Submitted, String>>),
    Rendered(String, Result<Arc<Rendered>, String>),
    Cancel(String, oneshot::Sender<bool>),
    StopAll(String, oneshot::Sender<usize>),
    Measured {
        broadcast: String,
        horn: String,
        report: Box<PlayReport>,
    },
    Finished {
        broadcast: String,
        horn: String,
        outcome: Outcome,
    },
    TimetableChanged,
    Cap(bytes::Bytes, String, oneshot::Sender<CapOutcome>),
    CapParsed(Box<device_drivers::cap::Alert>, [u8; 32], String),
    Signed(
        bytes::Bytes,
        oneshot::Sender<Result<Value, (String, String)>>,
    ),
}

/// What became of a CAP document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapOutcome {
    /// `play`, `cancel`, `ignore` or `reject`.
    pub decision: String,
    /// Why (for ignore/reject), or the alert's event.
    pub reason: Option<String>,
    /// The broadcast started or stopped.
    pub broadcast: Option<String>,
    /// The CAP identifier, when the document parsed.
    pub identifier: Option<String>,
}

/// The handle the API, MQTT and CAP use.
#[derive(Clone)]
pub struct Broadcasts {
    tx: mpsc::Sender<Cmd>,
    timetable: Shared,
}

impl Broadcasts {
    /// Starts a broadcast; answers once the horns are known (rendering and
    /// playing go on in the background).
    pub async fn submit(&self, spec: Spec) -> Result<Submitted, String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Submit(spec, tx))
            .await
            .map_err(|_| "the broadcast runtime has stopped".to_string())?;
        rx.await
            .map_err(|_| "the broadcast runtime has stopped".to_string())?
    }

    /// Cancels a broadcast everywhere; false when unknown or finished.
    pub async fn cancel(&self, id: &str) -> bool {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Cmd::Cancel(id.into(), tx)).await.is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// Stops everything playing or queued (the local "stop all"). Returns
    /// how many broadcasts were stopped.
    pub async fn stop_all(&self, by: &str) -> usize {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Cmd::StopAll(by.into(), tx)).await.is_err() {
            return 0;
        }
        rx.await.unwrap_or(0)
    }

    /// The timetable in force.
    pub fn timetable(&self) -> Timetable {
        (*read(&self.timetable)).clone()
    }

    /// Hands a CAP 1.2 document to the early-warning desk; `via` is `mqtt`
    /// or the feed URL.
    pub async fn cap(&self, doc: bytes::Bytes, via: &str) -> CapOutcome {
        let (tx, rx) = oneshot::channel();
        let stopped = CapOutcome {
            decision: "reject".into(),
            reason: Some("the broadcast runtime has stopped".into()),
            broadcast: None,
            identifier: None,
        };
        if self.tx.send(Cmd::Cap(doc, via.into(), tx)).await.is_err() {
            return stopped;
        }
        rx.await.unwrap_or(stopped)
    }

    /// An alert a feed carried (already parsed); alerts already handled
    /// are skipped quietly, as feeds repeat them on every poll.
    pub async fn cap_parsed(&self, alert: device_drivers::cap::Alert, sha256: [u8; 32], via: &str) {
        let _ = self
            .tx
            .send(Cmd::CapParsed(Box::new(alert), sha256, via.into()))
            .await;
    }

    /// Verifies and carries out a signed emergency command (the body of
    /// `cmd/emergency`). `Err((code, reason))` when refused.
    pub async fn signed(&self, body: bytes::Bytes) -> Result<Value, (String, String)> {
        let (tx, rx) = oneshot::channel();
        let stopped = || {
            (
                "unavailable".to_string(),
                "the broadcast runtime has stopped".to_string(),
            )
        };
        self.tx
            .send(Cmd::Signed(body, tx))
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Replaces the timetable (already validated and saved).
    pub async fn set_timetable(&self, tt: Timetable) {
        match self.timetable.write() {
            Ok(mut g) => *g = Arc::new(tt),
            Err(p) => *p.into_inner() = Arc::new(tt),
        }
        let _ = self.tx.send(Cmd::TimetableChanged).await;
    }
}

struct Pending {
    spec: Spec,
    horns: Vec<String>,
    uris: HashMap<String, SpeakerUri>,
    /// Gain volume per horn.
    volumes: HashMap<String, u8>,
    rendered: Option<Arc<Rendered>>,
}

struct Runtime {
    engine: Engine,
    records: Records,
    publisher: Publisher,
    live: LiveHub,
    speakers: Speakers,
    assets: AssetStore,
    timetable: Shared,
    settings: Settings,
    clock: Arc<dyn Clock>,
    player: Arc<dyn Player>,
    tx: mpsc::Sender<Cmd>,
    pending: HashMap<String, Pending>,
    running: HashMap<(String, String), CancellationToken>,
    checked_until: Ms,
    desk: Option<tgw_core::warning::Desk>,
    verifier: super::signed::Verifier,
    expiries: Vec<(Ms, String)>,
    /// Engine actions of a batch of finishes, applied together.
    deferred: Vec<Action>,
    /// The `now` of the batch being handled.
    batch_now: Option<Ms>,
}

/// Everything the runtime needs.
pub struct Parts {
    /// Broadcast records.
    pub records: Records,
    /// MQTT.
    pub publisher: Publisher,
    /// Dashboards.
    pub live: LiveHub,
    /// The speaker inventory.
    pub speakers: Speakers,
    /// Audio assets.
    pub assets: AssetStore,
    /// The timetable in force at start.
    pub timetable: Timetable,
    /// Settings.
    pub settings: Settings,
    /// Wall clock.
    pub clock: Arc<dyn Clock>,
    /// Horn drivers.
    pub player: Arc<dyn Player>,
    /// Early warnings (`None`: off).
    pub warnings: Option<tgw_core::warning::WarningsConfig>,
    /// Keys of signed MQTT commands.
    pub keys: super::signed::KeySet,
}

/// Starts the runtime task; it stops on `shutdown` (stopping every horn).
pub fn start(
    parts: Parts,
    shutdown: CancellationToken,
) -> (Broadcasts, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(1024);
    let timetable: Shared = Arc::new(RwLock::new(Arc::new(parts.timetable)));
    let now = parts.clock.now_ms();
    let checked_until = parts
        .records
        .kv("scheduler_checked_until")
        .ok()
        .flatten()
        .and_then(|s| s.parse::<Ms>().ok())
        .map(|c| c.max(now - parts.settings.max_catch_up.as_millis() as Ms))
        .unwrap_or(now);
    let desk = parts.warnings.map(|cfg| {
        match parts
            .records
            .kv("warning_desk")
            .ok()
            .flatten()
            .and_then(|s| serde_json::from_str::<tgw_core::warning::DeskSnapshot>(&s).ok())
        {
            Some(snap) => tgw_core::warning::Desk::restore(cfg.clone(), snap).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "warning desk memory not restored");
                tgw_core::warning::Desk::new(cfg)
            }),
            None => tgw_core::warning::Desk::new(cfg),
        }
    });
    let verifier = match parts
        .records
        .kv("signed_nonces")
        .ok()
        .flatten()
        .and_then(|s| serde_json::from_str::<super::signed::NonceSnapshot>(&s).ok())
    {
        Some(snap) => super::signed::Verifier::restore(parts.keys, snap),
        None => super::signed::Verifier::new(parts.keys),
    };
    let rt = Runtime {
        engine: Engine::new(EngineConfig {
            lead_ms: parts.settings.lead.as_millis() as i64,
            stop_timeout_ms: parts.settings.stop_timeout.as_millis() as i64,
        }),
        records: parts.records,
        publisher: parts.publisher,
        live: parts.live,
        speakers: parts.speakers,
        assets: parts.assets,
        timetable: timetable.clone(),
        settings: parts.settings,
        clock: parts.clock,
        player: parts.player,
        tx: tx.clone(),
        pending: HashMap::new(),
        running: HashMap::new(),
        checked_until,
        desk,
        verifier,
        expiries: Vec::new(),
        deferred: Vec::new(),
        batch_now: None,
    };
    let h = tokio::spawn(rt.run(rx, shutdown));
    (Broadcasts { tx, timetable }, h)
}

fn rfc3339(ms: Ms) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

impl Runtime {
    async fn run(mut self, mut rx: mpsc::Receiver<Cmd>, shutdown: CancellationToken) {
        self.recover_after_restart();
        loop {
            let now = self.clock.now_ms();
            self.run_scheduler(now);
            let acts = self.engine.tick(now);
            self.apply(acts);
            let mut wake = now + 30_000;
            if let Some(d) = self.engine.next_deadline() {
                wake = wake.min(d);
            }
            self.run_expiries(now);
            if let Some(e) = self.expiries.iter().map(|(t, _)| *t).min() {
                wake = wake.min(e);
            }
            if let Some(n) = self.next_occurrence(now) {
                wake = wake.min(n - self.settings.preroll.as_millis() as Ms);
            }
            let sleep = Duration::from_millis(wake.saturating_sub(now).clamp(1, 30_000) as u64);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(sleep) => {}
                cmd = rx.recv() => match cmd {
                    Some(c) => {
                        // Take what else is waiting with the same `now`: the
                        // 200 horns a preemption frees finish within a few
                        // ms of each other and must get one shared T0.
                        self.handle(c);
                        let mut n = 0;
                        while n < 1000 && let Ok(c) = rx.try_recv() {
                            self.handle(c);
                            n += 1;
                        }
                        self.batch_now = None;
                        let acts = std::mem::take(&mut self.deferred);
                        self.apply(acts);
                    }
                    None => break,
                }
            }
        }
        let now = self.clock.now_ms();
        let acts = self.engine.stop_all(now);
        self.apply(acts);
        for t in self.running.values() {
            t.cancel();
        }
    }

    fn handle(&mut self, c: Cmd) {
        let now = self.batch_now.unwrap_or_else(|| self.clock.now_ms());
        match c {
            Cmd::Submit(spec, reply) => {
                let _ = reply.send(self.submit(spec, now));
            }
            Cmd::Rendered(id, res) => self.rendered(&id, res, now),
            Cmd::Cancel(id, reply) => {
                let _ = reply.send(self.cancel_now(&id, now));
            }
            Cmd::StopAll(by, reply) => {
                let n = self.pending.len();
                let acts = self.engine.stop_all(now);
                self.apply(acts);
                // What is still rendering never reached the engine.
                let rendering: Vec<String> = self
                    .pending
                    .iter()
                    .filter(|(_, p)| p.rendered.is_none())
                    .map(|(k, _)| k.clone())
                    .collect();
                for id in rendering {
                    self.cancel_now(&id, now);
                }
                tracing::warn!(by = %by, broadcasts = n, "stop all");
                let _ = reply.send(n);
            }
            Cmd::Measured {
                broadcast,
                horn,
                report,
            } => {
                let detail = json!({
                    "answered": report.answered,
                    "skew_ms": report.start_offset_ms,
                    "answer_ms": report.answer_ms,
                    "codec": report.codec,
                    "kind": report.kind,
                    "errors": report.errors,
                });
                if let Err(e) = self.records.horn_detail(&broadcast, &horn, &detail) {
                    tracing::warn!(error = %e, "recording a horn report failed");
                }
                self.publish_horn(&broadcast, &horn, "started", Some(&detail));
            }
            Cmd::Finished {
                broadcast,
                horn,
                outcome,
            } => {
                self.running.remove(&(broadcast.clone(), horn.clone()));
                // Starts are carried out after the whole batch (see `run`),
                // all with the `now` of the first finish.
                let now = *self.batch_now.get_or_insert(now);
                let acts = self.engine.finished(&broadcast, &horn, outcome, now);
                self.deferred.extend(acts);
            }
            Cmd::TimetableChanged => {
                // The next loop iteration recomputes the next occurrence.
            }
            Cmd::Cap(doc, via, reply) => {
                let out = self.on_cap(&doc, &via, now);
                let _ = reply.send(out);
            }
            Cmd::CapParsed(alert, sha, via) => {
                if self
                    .desk
                    .as_ref()
                    .is_some_and(|d| d.has_seen(&alert.identifier))
                {
                    return;
                }
                self.on_alert(&alert, sha, &via, now);
            }
            Cmd::Signed(body, reply) => {
                let _ = reply.send(self.on_signed(&body, now));
            }
        }
    }

    fn run_expiries(&mut self, now: Ms) {
        let due: Vec<String> = self
            .expiries
            .iter()
            .filter(|(t, _)| *t <= now)
            .map(|(_, id)| id.clone())
            .collect();
        self.expiries.retain(|(t, _)| *t > now);
        for id in due {
            tracing::info!(broadcast = %id, "warning expired; its broadcast stops");
            self.cancel_now(&id, now);
        }
    }

    /// Cancels a broadcast wherever it is (engine or still rendering).
    fn cancel_now(&mut self, id: &str, now: Ms) -> bool {
        let known = self.pending.contains_key(id);
        let acts = self.engine.cancel(id, now);
        let any = known || !acts.is_empty();
        self.apply(acts);
        if let Some(p) = self.pending.get(id)
            && p.rendered.is_none()
        {
            let horns = p.horns.clone();
            for h in &horns {
                self.report(id, h, "cancelled", None);
            }
            self.pending.remove(id);
            self.finish_broadcast(id, "cancelled");
        }
        any
    }

    fn save_desk(&self) {
        if let Some(d) = &self.desk
            && let Ok(s) = serde_json::to_string(&d.snapshot())
            && let Err(e) = self.records.set_kv("warning_desk", &s)
        {
            tracing::warn!(error = %e, "saving the warning desk failed");
        }
    }

    fn on_cap(&mut self, doc: &[u8], via: &str, now: Ms) -> CapOutcome {
        let alert = match device_drivers::cap::parse(doc) {
            Ok(a) => a,
            Err(e) => {
                let reason = e.to_string();
                tracing::warn!(via, error = %reason, "CAP document rejected");
                return CapOutcome {
                    decision: "reject".into(),
                    reason: Some(reason),
                    broadcast: None,
                    identifier: None,
                };
            }
        };
        self.on_alert(&alert, tgw_core::warning::sha256(doc), via, now)
    }

    fn on_alert(
        &mut self,
        alert: &device_drivers::cap::Alert,
        sha: [u8; 32],
        via: &str,
        now: Ms,
    ) -> CapOutcome {
        use crate::broadcast::record::CapRow;
        let received_at = rfc3339(now);
        let Some(desk) = self.desk.as_mut() else {
            return CapOutcome {
                decision: "ignore".into(),
                reason: Some("early warnings are not enabled ([warnings] enabled = false)".into()),
                broadcast: None,
                identifier: Some(alert.identifier.clone()),
            };
        };
        let decision = desk.handle(alert, sha, now);
        let mut row = CapRow {
            identifier: alert.identifier.clone(),
            sender: alert.sender.clone(),
            sent: alert.sent.to_string(),
            msg_type: format!("{:?}", alert.msg_type),
            status: format!("{:?}", alert.status),
            headline: alert.infos.iter().find_map(|i| i.headline.clone()),
            received_at,
            via: via.to_string(),
            decision: String::new(),
            reason: None,
            broadcast_id: None,
        };
        // Each branch fills in the row; the answer is derived from it.
        let (decision, reason, broadcast) = match decision {
            tgw_core::warning::Decision::Ignore { reason } => {
                tracing::info!(alert = %alert.identifier, reason = %reason, "CAP alert ignored");
                ("ignore", reason, None)
            }
            tgw_core::warning::Decision::Cancel {
                broadcast_id,
                reason,
                ..
            } => {
                tracing::warn!(alert = %alert.identifier, broadcast = %broadcast_id, "CAP cancel: stopping the warning");
                self.expiries.retain(|(_, id)| *id != broadcast_id);
                self.cancel_now(&broadcast_id, now);
                ("cancel", reason, Some(broadcast_id))
            }
            tgw_core::warning::Decision::Play(plan) => {
                if let Some(old) = &plan.replaces {
                    self.expiries.retain(|(_, id)| id != old);
                    self.cancel_now(old, now);
                }
                let chime = plan.chime.then_some(super::render::Part::Chime);
                let spec = Spec {
                    id: Some(plan.broadcast_id.clone()),
                    origin: format!("cap:{}", plan.alert_id),
                    title: row.headline.clone().unwrap_or_else(|| plan.event.clone()),
                    priority: plan.priority,
                    targets: plan.targets.clone(),
                    recipe: Recipe {
                        pre: chime.clone(),
                        items: vec![super::render::Part::Tts(plan.text.clone())],
                        post: chime,
                        repeat: plan.repeat,
                        interval: Duration::from_millis(plan.interval_ms.max(0) as u64),
                        volume: None,
                    },
                    start_at: None,
                    latest_start: plan.expires,
                    on_preempt: OnPreempt::Resume,
                };
                match self.submit(spec, now) {
                    Ok(s) => {
                        tracing::warn!(alert = %plan.alert_id, broadcast = %s.id, priority = %plan.priority, horns = s.horns, "CAP warning broadcast");
                        if let Some(e) = plan.expires {
                            self.expiries.push((e, s.id.clone()));
                        }
                        ("play", plan.event, Some(s.id))
                    }
                    Err(e) => {
                        tracing::warn!(alert = %plan.alert_id, error = %e, "CAP warning could not be broadcast");
                        ("ignore", e, None)
                    }
                }
            }
        };
        row.decision = decision.to_string();
        row.reason = Some(reason);
        row.broadcast_id = broadcast;
        let out = CapOutcome {
            decision: row.decision.clone(),
            reason: row.reason.clone(),
            broadcast: row.broadcast_id.clone(),
            identifier: Some(row.identifier.clone()),
        };
        if row.decision == "play" || row.decision == "cancel" {
            self.records.audit(
                &format!("cap:{}", row.sender),
                &row.via,
                &format!("broadcast.cap_{}", row.decision),
                row.broadcast_id.as_deref(),
                Some(json!({ "identifier": row.identifier, "headline": row.headline })),
                "ok",
            );
        }
        if let Err(e) = self.records.cap(&row) {
            tracing::warn!(error = %e, "recording a CAP alert failed");
        }
        self.save_desk();
        self.live.publish(LiveEvent::Alert {
            alert: serde_json::to_value(&row).unwrap_or(Value::Null),
        });
        out
    }

    fn on_signed(&mut self, body: &[u8], now: Ms) -> Result<Value, (String, String)> {
        use super::signed::{Action as SAction, Content};
        let cmd = match self.verifier.verify(body, now) {
            Ok(c) => c,
            Err(r) => {
                tracing::warn!(code = r.code(), reason = %r, "signed command refused");
                self.records.audit(
                    "mqtt",
                    "cmd/emergency",
                    "broadcast.signed",
                    None,
                    Some(json!({ "reason": r.to_string() })),
                    r.code(),
                );
                return Err((r.code().to_string(), r.to_string()));
            }
        };
        if let Ok(s) = serde_json::to_string(&self.verifier.snapshot())
            && let Err(e) = self.records.set_kv("signed_nonces", &s)
        {
            tracing::warn!(error = %e, "saving command nonces failed");
        }
        match cmd.action {
            SAction::Stop => {
                let stopped = self.cancel_now(&cmd.id, now);
                self.records.audit(
                    &format!("key:{}", cmd.key_id),
                    "mqtt",
                    "broadcast.signed_stop",
                    Some(&cmd.id),
                    None,
                    if stopped { "ok" } else { "not_found" },
                );
                tracing::warn!(key = %cmd.key_id, broadcast = %cmd.id, stopped, "signed stop");
                Ok(json!({ "broadcast": cmd.id, "stopped": stopped }))
            }
            SAction::Start => {
                let item = match cmd.content {
                    Some(Content::Text(t)) => super::render::Part::Tts(t),
                    Some(Content::Asset(a)) => super::render::Part::Asset(a),
                    None => return Err(("malformed".into(), "start without text or asset".into())),
                };
                let spec = Spec {
                    id: Some(cmd.id.clone()),
                    origin: format!("mqtt:{}", cmd.key_id),
                    title: match &item {
                        super::render::Part::Tts(t) => t.chars().take(40).collect(),
                        _ => "紧急广播".into(),
                    },
                    priority: cmd.priority,
                    targets: cmd.targets.clone(),
                    recipe: Recipe {
                        pre: Some(super::render::Part::Chime),
                        items: vec![item],
                        post: None,
                        repeat: u32::from(cmd.repeat.unwrap_or(1)),
                        interval: Duration::from_secs(3),
                        volume: cmd.volume,
                    },
                    start_at: None,
                    latest_start: None,
                    on_preempt: OnPreempt::Drop,
                };
                let targets: Vec<String> = cmd.targets.iter().map(|t| t.to_string()).collect();
                let actor = format!("key:{}", cmd.key_id);
                let s = match self.submit(spec, now) {
                    Ok(s) => s,
                    Err(e) => {
                        self.records.audit(
                            &actor,
                            "mqtt",
                            "broadcast.signed",
                            Some(&cmd.id),
                            Some(json!({"targets": targets, "reason": e})),
                            "refused",
                        );
                        return Err(("refused".to_string(), e));
                    }
                };
                self.records.audit(
                    &actor,
                    "mqtt",
                    "broadcast.signed",
                    Some(&s.id),
                    Some(json!({"targets": targets, "priority": cmd.priority, "horns": s.horns})),
                    "ok",
                );
                tracing::warn!(key = %cmd.key_id, broadcast = %s.id, horns = s.horns, "signed emergency broadcast");
                Ok(serde_json::to_value(&s).unwrap_or(Value::Null))
            }
        }
    }

    fn uri_of(&self, s: &crate::speakers::Speaker, volume: u8) -> Result<SpeakerUri, String> {
        if s.kind == crate::speakers::DriverKind::Cloud {
            let Some((broker, serve)) = self.settings.cloud else {
                return Err(format!(
                    "speaker `{}`: cloud horns need [broadcast] cloud_serve and an [mqtt] broker given by IP address",
                    s.id
                ));
            };
            return format!(
                "cloud://{}@{broker}?serve={serve}&volume={volume}",
                s.address
            )
            .parse()
            .map_err(|e| format!("speaker `{}`: {e}", s.id));
        }
        let login = self.speakers.login_for(&s.id).map_err(|e| e.to_string())?;
        let mut uri =
            crate::speakers::uri::speaker_uri(s, login.as_ref()).map_err(|e| e.to_string())?;
        if let SpeakerUri::Rtp {
            dest, multicast_if, ..
        } = &mut uri
            && dest.ip().is_multicast()
        {
            *multicast_if = self.settings.multicast_if;
        }
        Ok(uri)
    }

    fn submit(&mut self, mut spec: Spec, now: Ms) -> Result<Submitted, String> {
        if spec.targets.is_empty() {
            return Err("the broadcast names no targets".into());
        }
        let id = spec
            .id
            .clone()
            .unwrap_or_else(|| format!("b-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]));
        if self.pending.contains_key(&id) {
            return Err(format!("broadcast `{id}` is already running"));
        }
        spec.id = Some(id.clone());
        if spec.priority == Priority::Emergency {
            // Forced on every horn, whatever the horn's own volume.
            spec.recipe.volume = Some(spec.recipe.volume.unwrap_or(self.settings.emergency_volume));
        }
        let tt = read(&self.timetable);
        let inventory: HashMap<String, crate::speakers::Speaker> = self
            .speakers
            .list()
            .map_err(|e| format!("reading the speaker inventory: {e}"))?
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect();
        let infos: Vec<HornInfo> = inventory.values().map(|s| s.horn_info()).collect();
        let all: BTreeSet<String> = tt.resolve(&spec.targets, &infos);
        if all.is_empty() {
            return Err(format!(
                "no horns match {}",
                spec.targets
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let at = spec.start_at.unwrap_or(now).max(now);
        let quiet: BTreeSet<String> = if spec.priority == Priority::Emergency {
            BTreeSet::new()
        } else {
            let local = jiff::Timestamp::from_millisecond(at)
                .map(|t| t.to_zoned(self.settings.tz.clone()).datetime())
                .map_err(|e| e.to_string())?;
            tt.quiet_horns(local, &infos)
                .intersection(&all)
                .cloned()
                .collect()
        };
        let mut horns = Vec::new();
        let mut uris = HashMap::new();
        let mut volumes = HashMap::new();
        let mut unusable = Vec::new();
        for h in all.iter().filter(|h| !quiet.contains(*h)) {
            let Some(s) = inventory.get(h) else { continue };
            let volume = spec
                .recipe
                .volume
                .or(s.volume)
                .unwrap_or(self.settings.default_volume);
            match self.uri_of(s, volume) {
                Ok(u) => {
                    // Cloud horns set their volume themselves (in the play
                    // command); the others get it as gain.
                    let gain = if matches!(u, SpeakerUri::Cloud { .. }) {
                        100
                    } else {
                        volume
                    };
                    volumes.insert(h.clone(), gain);
                    uris.insert(h.clone(), u);
                    horns.push(h.clone());
                }
                Err(e) => unusable.push((h.clone(), e)),
            }
        }
        let targets: Vec<String> = spec.targets.iter().map(|t| t.to_string()).collect();
        let detail = json!({ "start_at": spec.start_at.map(rfc3339), "volume": spec.recipe.volume, "repeat": spec.recipe.repeat });
        self.records
            .create(
                &id,
                &spec.origin,
                &spec.title,
                spec.priority.as_str(),
                &targets,
                all.len(),
                Some(&detail),
            )
            .map_err(|e| format!("recording the broadcast: {e}"))?;
        for h in &quiet {
            self.report(&id, h, "dropped", Some(json!({ "why": "quiet hours" })));
        }
        for (h, e) in &unusable {
            self.report(&id, h, "failed", Some(json!({ "why": e })));
        }
        for h in &horns {
            self.report(&id, h, "queued", None);
        }
        self.publish_broadcast(&id);
        let submitted = Submitted {
            id: id.clone(),
            horns: horns.len(),
            quiet: quiet.len(),
        };
        if horns.is_empty() {
            self.finish_broadcast(&id, "done");
            return Ok(submitted);
        }
        tracing::info!(broadcast = %id, origin = %spec.origin, priority = %spec.priority, horns = horns.len(), quiet = quiet.len(), "broadcast submitted");
        let recipe = spec.recipe.clone();
        let assets = self.assets.clone();
        let tx = self.tx.clone();
        let rid = id.clone();
        if self.settings.inline_render {
            let res = render(&recipe, &assets)
                .map(Arc::new)
                .map_err(|e| format!("{e:#}"));
            self.pending.insert(
                id.clone(),
                Pending {
                    spec,
                    horns,
                    uris,
                    volumes,
                    rendered: None,
                },
            );
            self.rendered(&id, res, now);
            return Ok(submitted);
        }
        tokio::spawn(async move {
            let res = tokio::task::spawn_blocking(move || render(&recipe, &assets))
                .await
                .map_err(|e| format!("rendering failed: {e}"))
                .and_then(|r| r.map(Arc::new).map_err(|e| format!("{e:#}")));
            let _ = tx.send(Cmd::Rendered(rid, res)).await;
        });
        self.pending.insert(
            id,
            Pending {
                spec,
                horns,
                uris,
                volumes,
                rendered: None,
            },
        );
        Ok(submitted)
    }

    fn rendered(&mut self, id: &str, res: Result<Arc<Rendered>, String>, now: Ms) {
        let Some(p) = self.pending.get_mut(id) else {
            return;
        };
        match res {
            Err(e) => {
                tracing::warn!(broadcast = %id, error = %e, "broadcast audio could not be made");
                let horns = p.horns.clone();
                self.pending.remove(id);
                for h in &horns {
                    self.report(id, h, "failed", Some(json!({ "why": e })));
                }
                self.finish_broadcast(id, "failed");
            }
            Ok(r) => {
                let segments = r.segments.len() as u32;
                p.rendered = Some(r);
                let start_at = p.spec.start_at.unwrap_or(now).max(now);
                let latest_start = p.spec.latest_start.or_else(|| {
                    (p.spec.priority != Priority::Emergency)
                        .then(|| start_at + self.settings.queue_window.as_millis() as Ms)
                });
                let req = Request {
                    id: id.to_string(),
                    priority: p.spec.priority,
                    horns: p.horns.clone(),
                    start_at,
                    latest_start,
                    on_preempt: p.spec.on_preempt,
                    segments,
                };
                match self.engine.submit(req, now) {
                    Ok(acts) => self.apply(acts),
                    Err(e) => {
                        tracing::warn!(broadcast = %id, error = %e, "engine refused a broadcast");
                        let horns = self.pending.remove(id).map(|p| p.horns).unwrap_or_default();
                        for h in &horns {
                            self.report(id, h, "failed", Some(json!({ "why": e.to_string() })));
                        }
                        self.finish_broadcast(id, "failed");
                    }
                }
            }
        }
    }

    fn apply(&mut self, acts: Vec<Action>) {
        // Horns first (starts and stops), then the records: a report's
        // SQLite write never delays a horn.
        let (mut first, rest): (Vec<Action>, Vec<Action>) = acts
            .into_iter()
            .partition(|a| matches!(a, Action::Start { .. } | Action::Stop { .. }));
        first.extend(rest);
        let mut queue: std::collections::VecDeque<Action> = first.into();
        while let Some(a) = queue.pop_front() {
            match a {
                Action::Start {
                    broadcast,
                    horns,
                    t0,
                    from_segment,
                } => self.start(&broadcast, horns, t0, from_segment),
                Action::Stop {
                    broadcast, horns, ..
                } => {
                    for h in horns {
                        match self.running.get(&(broadcast.clone(), h.clone())) {
                            Some(t) => t.cancel(),
                            None => {
                                let now = self.clock.now_ms();
                                queue.extend(self.engine.finished(
                                    &broadcast,
                                    &h,
                                    Outcome::Stopped { segments_done: 0 },
                                    now,
                                ));
                            }
                        }
                    }
                }
                Action::Report {
                    state: HornState::Queued { from_segment: 0 },
                    ..
                } => {
                    // Already reported queued when it was submitted.
                }
                Action::Report {
                    broadcast,
                    horn,
                    state,
                    ..
                } => {
                    let name = state.name();
                    let detail = serde_json::to_value(&state).ok();
                    self.report(&broadcast, &horn, name, detail);
                }
                Action::BroadcastDone { broadcast, .. } => {
                    let state = match self.records.get(&broadcast) {
                        Ok(Some((_, horns))) if horns.iter().any(|h| h.state == "done") => "done",
                        Ok(Some((_, horns))) if horns.iter().all(|h| h.state == "cancelled") => {
                            "cancelled"
                        }
                        Ok(Some((_, horns))) if horns.iter().any(|h| h.state == "interrupted") => {
                            "interrupted"
                        }
                        _ => "failed",
                    };
                    self.pending.remove(&broadcast);
                    self.finish_broadcast(&broadcast, state);
                }
            }
        }
    }

    fn start(&mut self, broadcast: &str, horns: Vec<String>, t0: Ms, from: u32) {
        let Some(p) = self.pending.get(broadcast) else {
            tracing::warn!(broadcast, "engine started an unknown broadcast");
            return;
        };
        let Some(rendered) = p.rendered.clone() else {
            return;
        };
        let mut uris = Vec::with_capacity(horns.len());
        let mut cancels = Vec::with_capacity(horns.len());
        let mut ids = Vec::with_capacity(horns.len());
        let mut segs = Vec::with_capacity(horns.len());
        for h in horns {
            let Some(u) = p.uris.get(&h) else { continue };
            let t = CancellationToken::new();
            self.running
                .insert((broadcast.to_string(), h.clone()), t.clone());
            segs.push(rendered.at_volume(p.volumes.get(&h).copied().unwrap_or(100)));
            uris.push(u.clone());
            cancels.push(t);
            ids.push(h);
        }
        let _ = self
            .records
            .set_state(broadcast, "playing", Some(&rfc3339(t0)), false);
        self.publish_broadcast(broadcast);
        let now = self.clock.now_ms();
        let t0_inst = if t0 >= now {
            Instant::now() + Duration::from_millis((t0 - now) as u64)
        } else {
            Instant::now()
                .checked_sub(Duration::from_millis((now - t0) as u64))
                .unwrap_or_else(Instant::now)
        };
        let ctx = Exec {
            broadcast: broadcast.to_string(),
            ids,
            segs,
            uris,
            cancels,
            rendered,
            t0: t0_inst,
            from,
            lead: self.settings.lead,
            player: self.player.clone(),
            tx: self.tx.clone(),
        };
        ctx.run();
    }

    fn report(&self, broadcast: &str, horn: &str, state: &str, detail: Option<Value>) {
        if let Err(e) = self.records.horn(broadcast, horn, state, detail.as_ref()) {
            tracing::warn!(error = %e, broadcast, horn, "recording a horn report failed");
        }
        self.publish_horn(broadcast, horn, state, detail.as_ref());
    }

    fn publish_horn(&self, broadcast: &str, horn: &str, state: &str, detail: Option<&Value>) {
        let at = rfc3339(self.clock.now_ms());
        self.publisher.speaker_state(
            horn,
            json!({ "speaker": horn, "broadcast": broadcast, "state": state, "detail": detail, "at": at }),
        );
        self.live.publish(LiveEvent::Horn {
            broadcast: broadcast.to_string(),
            speaker: horn.to_string(),
            state: state.to_string(),
            detail: detail.cloned(),
            at,
        });
    }

    fn publish_broadcast(&self, id: &str) {
        match self.records.get(id) {
            Ok(Some((b, _))) => {
                let body = serde_json::to_value(&b).unwrap_or(Value::Null);
                self.publisher.broadcast_state(id, body.clone());
                self.live.publish(LiveEvent::Broadcast { broadcast: body });
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "reading a broadcast failed"),
        }
    }

    fn finish_broadcast(&mut self, id: &str, state: &str) {
        if let Err(e) = self.records.set_state(id, state, None, true) {
            tracing::warn!(error = %e, "recording a broadcast's end failed");
        }
        tracing::info!(broadcast = %id, state, "broadcast finished");
        self.publish_broadcast(id);
    }

    /// Broadcasts cut off by a restart: their horns were stopped when the
    /// process ended (RTP stops with the sender, SIP calls time out on the
    /// horn); they are reported interrupted, never resumed.
    fn recover_after_restart(&mut self) {
        match self.records.unfinished() {
            Ok(list) => {
                for (id, horns) in list {
                    for h in horns {
                        self.report(&id, &h, "interrupted", Some(json!({ "by": "restart" })));
                    }
                    self.finish_broadcast(&id, "interrupted");
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading unfinished broadcasts failed"),
        }
    }

    fn next_occurrence(&self, now: Ms) -> Option<Ms> {
        let tt = read(&self.timetable);
        let from = jiff::Timestamp::from_millisecond(now.max(self.checked_until) - 1).ok()?;
        tt.next_after(from).map(|o| o.at.as_millisecond())
    }

    /// Submits every occurrence due within the preroll; handles the ones
    /// missed (gateway down, clock jumped forward) by their policy. A
    /// clock jumping back never fires an occurrence twice: fired ones are
    /// remembered in the store.
    fn run_scheduler(&mut self, now: Ms) {
        // Occurrences up to and including now + preroll.
        let horizon = now + self.settings.preroll.as_millis() as Ms + 1;
        if horizon <= self.checked_until {
            if self.checked_until - horizon > 60_000 {
                tracing::warn!(
                    by_ms = self.checked_until - horizon,
                    "wall clock went back; occurrences already handled are not played again"
                );
                self.checked_until = horizon;
            }
            return;
        }
        let tt = read(&self.timetable);
        let (Ok(from), Ok(to)) = (
            jiff::Timestamp::from_millisecond(self.checked_until),
            jiff::Timestamp::from_millisecond(horizon),
        ) else {
            return;
        };
        let occs = tt.occurrences(from, to, None);
        self.checked_until = horizon;
        let _ = self
            .records
            .set_kv("scheduler_checked_until", &horizon.to_string());
        for o in occs {
            // [from, to): each instant is looked at once.
            let at = o.at.as_millisecond();
            let key = o.at.to_string();
            match self.records.fired(&o.schedule, &key) {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "reading fired occurrences failed");
                    continue;
                }
            }
            let missed = now - at > 2_000;
            let Ok(now_ts) = jiff::Timestamp::from_millisecond(now) else {
                continue;
            };
            if !o.missed.should_play(o.at, now_ts) {
                tracing::info!(schedule = %o.schedule, at = %key, "missed occurrence skipped by its policy");
                let _ = self.records.mark_fired(&o.schedule, &key, None, "missed");
                continue;
            }
            let Some(spec) = self.spec_for(&tt, &o, missed, now) else {
                let _ = self
                    .records
                    .mark_fired(&o.schedule, &key, None, "unknown programme");
                continue;
            };
            let id = spec.id.clone();
            match self.submit(spec, now) {
                Ok(s) => {
                    let _ = self
                        .records
                        .mark_fired(&o.schedule, &key, Some(&s.id), "submitted");
                }
                Err(e) => {
                    tracing::warn!(schedule = %o.schedule, at = %key, error = %e, "scheduled broadcast not started");
                    let _ = self
                        .records
                        .mark_fired(&o.schedule, &key, id.as_deref(), &e);
                }
            }
        }
    }

    fn spec_for(
        &self,
        tt: &Timetable,
        o: &tgw_core::schedule::Occurrence,
        missed: bool,
        now: Ms,
    ) -> Option<Spec> {
        let p = tt.programme(&o.programme)?;
        let at = o.at.as_millisecond();
        Some(Spec {
            id: Some(format!(
                "s-{}-{}",
                o.schedule,
                o.local.strftime("%Y%m%dT%H%M%S")
            )),
            origin: format!("schedule:{}", o.schedule),
            title: if p.name.is_empty() {
                p.id.clone()
            } else {
                p.name.clone()
            },
            priority: o.priority,
            targets: o.targets.clone(),
            recipe: super::recipe_of(p),
            start_at: Some(if missed { now } else { at }),
            latest_start: None,
            on_preempt: p.on_preempt,
        })
    }
}

/// One Start action carried out: every horn runs its own task, segment
/// after segment, each segment at the same T0 on every horn; a horn taken
/// away (cancelled) is released at once, whatever the others do.
struct Exec {
    broadcast: String,
    ids: Vec<String>,
    /// Per horn: the segments at its volume.
    segs: Vec<super::render::Segments>,
    uris: Vec<SpeakerUri>,
    cancels: Vec<CancellationToken>,
    rendered: Arc<Rendered>,
    t0: Instant,
    from: u32,
    lead: Duration,
    player: Arc<dyn Player>,
    tx: mpsc::Sender<Cmd>,
}

impl Exec {
    fn run(self) {
        let n = self.rendered.segments.len() as u32;
        for (((id, uri), cancel), segs) in self
            .ids
            .into_iter()
            .zip(self.uris)
            .zip(self.cancels)
            .zip(self.segs)
        {
            let (rendered, player, tx) =
                (self.rendered.clone(), self.player.clone(), self.tx.clone());
            let (broadcast, t0, from, lead) =
                (self.broadcast.clone(), self.t0, self.from, self.lead);
            tokio::spawn(async move {
                let outcome = one_horn(
                    &broadcast, &id, uri, &cancel, &rendered, &segs, t0, from, n, lead, &*player,
                    &tx,
                )
                .await;
                let _ = tx
                    .send(Cmd::Finished {
                        broadcast,
                        horn: id,
                        outcome,
                    })
                    .await;
            });
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn one_horn(
    broadcast: &str,
    id: &str,
    uri: SpeakerUri,
    cancel: &CancellationToken,
    rendered: &Rendered,
    segs: &[Arc<Vec<i16>>],
    t0: Instant,
    from: u32,
    n: u32,
    lead: Duration,
    player: &dyn Player,
    tx: &mpsc::Sender<Cmd>,
) -> Outcome {
    let mut seg_t0 = t0;
    for seg in from..n {
        let Some(pcm) = segs.get(seg as usize).cloned() else {
            return Outcome::Failed(format!("segment {seg} missing"));
        };
        let rep = player.play(uri.clone(), pcm, seg_t0, cancel.clone()).await;
        if seg == from {
            let _ = tx
                .send(Cmd::Measured {
                    broadcast: broadcast.to_string(),
                    horn: id.to_string(),
                    report: Box::new(rep.clone()),
                })
                .await;
        }
        if cancel.is_cancelled() {
            return Outcome::Stopped { segments_done: seg };
        }
        if rep.error_kind.is_some() || !rep.completed {
            return Outcome::Failed(if rep.errors.is_empty() {
                "the horn did not play to the end".to_string()
            } else {
                rep.errors.join("; ")
            });
        }
        if seg + 1 < n {
            seg_t0 += rendered.segment_len(seg as usize) + rendered.gap;
            // Wait for the next repeat; a horn taken away meanwhile is
            // released at once.
            let ready = seg_t0.checked_sub(lead).unwrap_or(seg_t0);
            tokio::select! {
                _ = tokio::time::sleep_until(ready) => {}
                _ = cancel.cancelled() => return Outcome::Stopped { segments_done: seg + 1 },
            }
        }
    }
    Outcome::Done
}

/// Loads the timetable in force: the `[broadcast] timetable` file when
/// set, else the newest version in the store, else an empty one.
pub fn load_timetable(cfg: &crate::config::Config, records: &Records) -> anyhow::Result<Timetable> {
    let b = &cfg.broadcast;
    if let Some(f) = &b.timetable {
        return Timetable::load(f, &b.timezone).map_err(|e| anyhow::anyhow!("{e}"));
    }
    let calendar = match &b.calendar {
        Some(p) => tgw_core::schedule::Calendar::load(p).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => tgw_core::schedule::Calendar::default(),
    };
    let parts = match records.timetable()? {
        Some((v, doc)) => serde_json::from_str::<tgw_core::schedule::Parts>(&doc)
            .map_err(|e| anyhow::anyhow!("stored timetable version {v}: {e}"))?,
        None => tgw_core::schedule::Parts::default(),
    };
    Timetable::from_parts(parts, calendar, &b.timezone)
        .map_err(|e| anyhow::anyhow!("stored timetable: {e}"))
}

/// What the daemon needs from [`start_for_daemon`].
pub struct Started {
    /// The handle.
    pub broadcasts: Broadcasts,
    /// The asset store (for the API).
    pub assets: AssetStore,
    /// The runtime task and the feed pollers.
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts the runtime from the configuration, with the system clock and
/// the real drivers, and a poller per `[warnings]` feed.
pub fn start_for_daemon(
    cfg: &crate::config::Config,
    store: &crate::store::Store,
    publisher: Publisher,
    live: LiveHub,
    multicast_if: Option<std::net::Ipv4Addr>,
    shutdown: CancellationToken,
) -> anyhow::Result<Started> {
    let b = &cfg.broadcast;
    let records = Records::open(store)?;
    let timetable = load_timetable(cfg, &records)?;
    let assets = AssetStore::open(
        &cfg.gateway.data_dir,
        crate::broadcast::audio::AudioSettings::from(&cfg.audio),
    )?;
    let keys = super::signed::KeySet::from_config(&b.keys)
        .map_err(|e| anyhow::anyhow!("[broadcast] keys: {e}"))?;
    let cloud = match (&cfg.mqtt, b.cloud_serve) {
        (Some(m), Some(serve)) => m.broker().ok().and_then(|u| {
            u.host
                .parse::<std::net::IpAddr>()
                .ok()
                .map(|ip| (std::net::SocketAddr::new(ip, u.port), serve))
        }),
        _ => None,
    };
    let settings = Settings {
        lead: Duration::from_millis(b.playout_delay_ms),
        preroll: Duration::from_secs(b.preroll_secs),
        queue_window: Duration::from_secs(b.queue_window_secs),
        emergency_volume: b.emergency_volume.min(100) as u8,
        default_volume: b.default_volume.min(100) as u8,
        tz: jiff::tz::TimeZone::get(&b.timezone)?,
        cloud,
        multicast_if,
        ..Settings::default()
    };
    let driver = settings.driver.clone();
    let warnings = cfg.warnings.enabled.then(|| cfg.warnings.clone());
    let feeds = cfg.warnings.feeds.clone();
    let (broadcasts, h) = start(
        Parts {
            records,
            publisher,
            live,
            speakers: Speakers::open(store)?,
            assets: assets.clone(),
            timetable,
            settings,
            clock: Arc::new(SystemClock),
            player: Arc::new(DriverPlayer(driver)),
            warnings,
            keys,
        },
        shutdown.clone(),
    );
    let mut tasks = vec![h];
    if cfg.warnings.enabled {
        for f in feeds {
            tasks.push(tokio::spawn(super::feeds::poll(
                f,
                broadcasts.clone(),
                shutdown.clone(),
            )));
        }
    }
    Ok(Started {
        broadcasts,
        assets,
        tasks,
    })
}

#[cfg(test)]
#[path = "day_tests.rs"]
mod day_tests;
