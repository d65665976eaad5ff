//! The MQTT uplink to the governance centre (`docs/mqtt.md`).
//!
//! | module | owns |
//! |---|---|
//! | [`topics`] (re-exported from `tgw_core::uplink`) | the topic tree `tgw/v1/{site}/{gateway}/…` |
//! | [`outbox`] | the durable SQLite outbox: accept, coalesce, evict, claim, ack |
//! | [`writer`] | the outbox writer thread: batched commits, claims, acks, the `outbox_full` alarm |
//! | [`settings`] | `[mqtt]` resolved for a session, and the TLS client configuration |
//! | [`session`] | the rumqttc session loop: connect, resend, window, PUBACKs, commands in |
//! | `failover` | which broker of `mqtt.urls` next, and the backoff (`docs/fleet.md`) |
//! | `command_qos` | the command subscription's QoS (pure): QoS 1 given up for QoS 0 when a broker strands it (two connections in a row closed before their SUBACK, or a refusal), retried later (`docs/fleet.md`) |
//! | `subscription` | one connection's SUBSCRIBEs and SUBACKs followed for `command_qos`, changes logged and counted |
//! | [`scout`] | after an incoming packet over `max_packet_bytes`: find its retained topic, clear ours, quarantine others |
//! | [`commands`] | the [`CommandHandler`] trait, reply bodies, one file per command behind a `match` |
//! | `broker` | a small embedded broker for `tgw demo` (feature `embedded-broker`, on by default) |
//! | [`centre`] | what the daemon publishes to the centre, and the handles its commands act on |
//!
//! Data flow: health engine → [`Publisher`] (never blocks; a bounded
//! channel) → outbox writer (batched commits: *accepted*) → uplink (claims in
//! class order, QoS 1, window of `mqtt.inflight`) → broker → PUBACK → delete.

#[cfg(feature = "embedded-broker")]
pub mod broker;
pub mod camera_events;
pub mod centre;
mod command_qos;
pub mod commands;
mod failover;
pub mod outbox;
pub mod scout;
pub mod session;
pub mod settings;
mod subscription;
pub mod writer;

#[cfg(test)]
mod stranded_tests;

pub use commands::{CommandHandler, CommandReply};
pub use tgw_core::uplink::topics;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::base::clock::Clock;
use crate::base::error::{Error, Result};
use outbox::{Class, NewMessage};

/// Envelope keys; a body's own keys with these names are dropped.
pub const ENVELOPE_KEYS: &[&str] = &["seq", "msg_id", "ts", "site", "gateway", "historical"];

/// Capacity of the channel between publishers and the outbox writer.
pub const CHANNEL_CAPACITY: usize = 65_536;

/// Counters and gauges of the uplink, as plain atomics (a Prometheus
/// endpoint reads [`Metrics::snapshot`]).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Messages committed to the outbox.
    pub accepted: AtomicU64,
    /// Offered but never accepted: the writer channel was full or closed.
    pub rejected_channel: AtomicU64,
    /// Offered but never accepted: larger than `max_packet_bytes`, or a
    /// device id that cannot be a topic level, or a body that is not an object.
    pub rejected_invalid: AtomicU64,
    /// Offered but refused because the budget was full of higher classes.
    pub rejected_budget: AtomicU64,
    /// Accepted and later evicted unsent (real loss), all classes.
    pub evicted: AtomicU64,
    /// Superseded by a newer retained message before being sent (not loss).
    pub coalesced: AtomicU64,
    /// Publishes written to the broker (including resends).
    pub sent: AtomicU64,
    /// Of which resends after a reconnect or restart.
    pub resent: AtomicU64,
    /// PUBACKs received for outbox rows.
    pub acked: AtomicU64,
    /// Outbox rows (gauge).
    pub depth: AtomicU64,
    /// Outbox bytes charged (gauge).
    pub bytes: AtomicU64,
    /// Acceptance time of the oldest row, unix ms, 0 when empty (gauge).
    pub oldest_ms: AtomicI64,
    /// 1 while connected (gauge).
    pub connected: AtomicU64,
    /// Successful connections (CONNACK accepted).
    pub connections: AtomicU64,
    /// Failed connection attempts and lost connections.
    pub connection_errors: AtomicU64,
    /// Commands received.
    pub commands: AtomicU64,
    /// Commands refused by the parser.
    pub commands_invalid: AtomicU64,
    /// Outbox commits that failed (disk full, I/O): messages not accepted.
    pub commit_errors: AtomicU64,
    /// Outbox rows per class, indexed by `Class as usize` (gauge).
    pub depth_by_class: [AtomicU64; 4],
    /// Sessions lost to an incoming packet over `max_packet_bytes` (each
    /// also counts in `connection_errors`).
    pub oversized: AtomicU64,
    /// Evictions per class, indexed by `Class as usize` (sum: `evicted`).
    pub evicted_by_class: [AtomicU64; 4],
    /// The QoS the command subscription asks on the current connection
    /// (0 or 1; 0 after a downgrade until QoS 1 is tried again) (gauge).
    pub command_qos: AtomicU64,
    /// QoS 1 given up for QoS 0, by reason: `[closed, refused]`
    /// (`command_qos::Downgrade as usize`).
    pub command_qos_downgrades: [AtomicU64; 2],
    /// SUBACKs refusing a subscription (0x80), at any QoS.
    pub command_subscriptions_refused: AtomicU64,
}

/// A point-in-time copy of [`Metrics`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct MetricsSnapshot {
    /// See [`Metrics::accepted`].
    pub accepted: u64,
    /// See [`Metrics::rejected_channel`].
    pub rejected_channel: u64,
    /// See [`Metrics::rejected_invalid`].
    pub rejected_invalid: u64,
    /// See [`Metrics::rejected_budget`].
    pub rejected_budget: u64,
    /// See [`Metrics::evicted`].
    pub evicted: u64,
    /// See [`Metrics::coalesced`].
    pub coalesced: u64,
    /// See [`Metrics::sent`].
    pub sent: u64,
    /// See [`Metrics::resent`].
    pub resent: u64,
    /// See [`Metrics::acked`].
    pub acked: u64,
    /// See [`Metrics::depth`].
    pub depth: u64,
    /// See [`Metrics::bytes`].
    pub bytes: u64,
    /// See [`Metrics::oldest_ms`].
    pub oldest_ms: i64,
    /// See [`Metrics::connected`].
    pub connected: u64,
    /// See [`Metrics::connections`].
    pub connections: u64,
    /// See [`Metrics::connection_errors`].
    pub connection_errors: u64,
    /// See [`Metrics::commands`].
    pub commands: u64,
    /// See [`Metrics::commands_invalid`].
    pub commands_invalid: u64,
    /// See [`Metrics::commit_errors`].
    pub commit_errors: u64,
    /// See [`Metrics::depth_by_class`].
    pub depth_by_class: [u64; 4],
    /// See [`Metrics::oversized`].
    pub oversized: u64,
    /// See [`Metrics::command_qos`].
    pub command_qos: u64,
    /// See [`Metrics::command_qos_downgrades`].
    pub command_qos_downgrades: [u64; 2],
    /// See [`Metrics::command_subscriptions_refused`].
    pub command_subscriptions_refused: u64,
}

impl Metrics {
    /// Reads every counter.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        MetricsSnapshot {
            accepted: g(&self.accepted),
            rejected_channel: g(&self.rejected_channel),
            rejected_invalid: g(&self.rejected_invalid),
            rejected_budget: g(&self.rejected_budget),
            evicted: g(&self.evicted),
            coalesced: g(&self.coalesced),
            sent: g(&self.sent),
            resent: g(&self.resent),
            acked: g(&self.acked),
            depth: g(&self.depth),
            bytes: g(&self.bytes),
            oldest_ms: self.oldest_ms.load(Ordering::Relaxed),
            connected: g(&self.connected),
            connections: g(&self.connections),
            connection_errors: g(&self.connection_errors),
            commands: g(&self.commands),
            commands_invalid: g(&self.commands_invalid),
            commit_errors: g(&self.commit_errors),
            depth_by_class: self.depth_by_class.each_ref().map(g),
            oversized: g(&self.oversized),
            command_qos: g(&self.command_qos),
            command_qos_downgrades: self.command_qos_downgrades.each_ref().map(g),
            command_subscriptions_refused: g(&self.command_subscriptions_refused),
        }
    }

    /// The outbox figures for `/metrics`, the oldest row's age taken
    /// against `clock`.
    pub fn outbox_stats(&self, clock: &dyn Clock) -> crate::base::metrics::OutboxStats {
        let s = self.snapshot();
        let oldest_age_secs = if s.depth == 0 || s.oldest_ms == 0 {
            0.0
        } else {
            (clock.now_ms() - s.oldest_ms).max(0) as f64 / 1000.0
        };
        crate::base::metrics::OutboxStats {
            messages: Class::ALL
                .iter()
                .map(|c| (c.as_str(), s.depth_by_class[*c as usize]))
                .collect(),
            bytes: s.bytes,
            oldest_age_secs,
            commit_errors: s.commit_errors,
            uplink: crate::base::metrics_ops::UplinkStats {
                connected: s.connected,
                connections: s.connections,
                connection_errors: s.connection_errors,
                accepted: s.accepted,
                rejected: vec![
                    ("channel", s.rejected_channel),
                    ("invalid", s.rejected_invalid),
                    ("budget", s.rejected_budget),
                ],
                published: s.sent,
                resent: s.resent,
                acked: s.acked,
                evicted: Class::ALL
                    .iter()
                    .map(|c| {
                        let n = self.evicted_by_class[*c as usize].load(Ordering::Relaxed);
                        (c.as_str(), n)
                    })
                    .collect(),
                commands: s.commands,
                command_qos: s.command_qos,
                command_qos_downgrades: vec![
                    ("closed", s.command_qos_downgrades[0]),
                    ("refused", s.command_qos_downgrades[1]),
                ],
                command_subscriptions_refused: s.command_subscriptions_refused,
            },
        }
    }
}

/// Hands messages to the outbox. Cheap to clone; never blocks.
///
/// A message is *accepted* once the writer has committed it (within about
/// a millisecond under load). Offering never waits: when the writer's
/// channel ([`CHANNEL_CAPACITY`] messages) is full, the message is refused
/// and counted in `rejected_channel`, with a rate-limited warning.
#[derive(Clone)]
pub struct Publisher {
    inner: Option<Arc<PubInner>>,
}

struct PubInner {
    tx: mpsc::Sender<NewMessage>,
    metrics: Arc<Metrics>,
    max_body: usize,
    clock: Arc<dyn Clock>,
    last_warn_ms: AtomicI64,
}

impl Publisher {
    /// A publisher that drops everything (no `[mqtt]` section).
    pub fn disabled() -> Publisher {
        Publisher { inner: None }
    }

    pub(crate) fn new(
        tx: mpsc::Sender<NewMessage>,
        metrics: Arc<Metrics>,
        max_body: usize,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Publisher {
            inner: Some(Arc::new(PubInner {
                tx,
                metrics,
                max_body,
                clock,
                last_warn_ms: AtomicI64::new(0),
            })),
        }
    }

    /// Whether messages go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The uplink's counters (all zero when disabled).
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner
            .as_ref()
            .map(|i| i.metrics.snapshot())
            .unwrap_or_default()
    }

    /// `camera/{id}/state`: retained, class state, coalesced per camera.
    pub fn camera_state(&self, id: &str, body: Value) {
        self.device(id, topics::camera_state(id), Class::State, true, body);
    }

    /// [`camera_state`](Self::camera_state) with a body already written as
    /// JSON text (`centre::state_text`: an object without envelope keys),
    /// so the check path builds no `Value`.
    pub fn camera_state_text(&self, id: &str, body: String) {
        if self.inner.is_none() || !self.valid_device(id) {
            return;
        }
        let topic = topics::camera_state(id);
        let key = Some(topic.clone());
        self.offer_text(topic, Class::State, true, key, body);
    }

    /// `camera/{id}/meta`: retained, class metadata, coalesced per camera.
    pub fn camera_meta(&self, id: &str, body: Value) {
        self.device(id, topics::camera_meta(id), Class::Metadata, true, body);
    }

    /// `camera/{id}/event`: not retained, class history, never coalesced.
    pub fn camera_event(&self, id: &str, body: Value) {
        self.device(id, topics::camera_event(id), Class::History, false, body);
    }

    /// `speaker/{id}/state`: a horn's part in the latest broadcast that
    /// touched it; retained, class state, coalesced per horn.
    pub fn speaker_state(&self, id: &str, body: Value) {
        self.device(id, topics::speaker_state(id), Class::State, true, body);
    }

    /// `broadcast/{id}`: a broadcast's state and per-state horn counts; not
    /// retained, class state, coalesced per broadcast (a backlog keeps the
    /// latest).
    pub fn broadcast_state(&self, id: &str, body: Value) {
        if !topics::valid_level(id) {
            tracing::warn!(broadcast = %id.escape_debug(), "broadcast id cannot be an MQTT topic level; message dropped");
            return;
        }
        let topic = topics::broadcast(id);
        self.offer(topic.clone(), Class::State, false, Some(topic), body);
    }

    /// `broadcast/{id}/horn/{speaker}`: every state change of one horn in one
    /// broadcast; not retained, class state, never coalesced (a backlog
    /// keeps every step: queued, started, interrupted, done ...).
    pub fn broadcast_horn(&self, id: &str, speaker: &str, body: Value) {
        if !topics::valid_level(id) || !topics::valid_level(speaker) {
            if let Some(i) = &self.inner {
                i.metrics.rejected_invalid.fetch_add(1, Ordering::Relaxed);
            }
            tracing::warn!(broadcast = %id.escape_debug(), speaker = %speaker.escape_debug(), "broadcast or speaker id cannot be an MQTT topic level; message dropped");
            return;
        }
        self.offer(
            topics::broadcast_horn(id, speaker),
            Class::State,
            false,
            None,
            body,
        );
    }

    /// `alarm`: a gateway-level alarm, not retained, highest class.
    pub fn alarm(&self, body: Value) {
        self.offer(topics::ALARM.into(), Class::Urgent, false, None, body);
    }

    /// `reply/{request_id}` (or `reply/_invalid`): highest class.
    pub(crate) fn reply(&self, request_id: Option<&str>, body: Value) {
        let topic = match request_id {
            Some(r) if topics::valid_level(r) => topics::reply(r),
            _ => topics::REPLY_INVALID.into(),
        };
        self.offer(topic, Class::Urgent, false, None, body);
    }

    fn device(&self, id: &str, topic: String, class: Class, retain: bool, body: Value) {
        if !self.valid_device(id) {
            return;
        }
        let key = retain.then(|| topic.clone());
        self.offer(topic, class, retain, key, body);
    }

    /// Whether `id` can be a topic level (counted and logged when not).
    fn valid_device(&self, id: &str) -> bool {
        if topics::valid_level(id) {
            return true;
        }
        if let Some(i) = &self.inner {
            i.metrics.rejected_invalid.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(device = %id.escape_debug(), "device id cannot be an MQTT topic level; message dropped");
        }
        false
    }

    fn offer(&self, topic: String, class: Class, retain: bool, key: Option<String>, body: Value) {
        let Some(inner) = &self.inner else { return };
        let Value::Object(mut obj) = body else {
            inner
                .metrics
                .rejected_invalid
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(topic, "message body is not a JSON object; dropped");
            return;
        };
        for k in ENVELOPE_KEYS {
            obj.remove(*k);
        }
        let body = Value::Object(obj).to_string();
        self.offer_text(topic, class, retain, key, body);
    }

    /// Queues `body` (a JSON object's text without envelope keys) for the
    /// outbox writer: refused when too large or when the writer is behind.
    fn offer_text(
        &self,
        topic: String,
        class: Class,
        retain: bool,
        key: Option<String>,
        body: String,
    ) {
        let Some(inner) = &self.inner else { return };
        if body.len() + topic.len() + 256 > inner.max_body {
            inner
                .metrics
                .rejected_invalid
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                topic,
                bytes = body.len(),
                "message larger than mqtt.max_packet_bytes; dropped"
            );
            return;
        }
        let msg = writer::new_message(inner.clock.as_ref(), topic, class, retain, key, body);
        let now_ms = msg.accepted_ms;
        if inner.tx.try_send(msg).is_err() {
            inner
                .metrics
                .rejected_channel
                .fetch_add(1, Ordering::Relaxed);
            let last = inner.last_warn_ms.load(Ordering::Relaxed);
            if now_ms - last > 10_000 {
                inner.last_warn_ms.store(now_ms, Ordering::Relaxed);
                tracing::warn!(
                    rejected_total = inner.metrics.rejected_channel.load(Ordering::Relaxed),
                    "mqtt outbox writer is behind or stopped; message refused"
                );
            }
        }
    }
}

/// The running uplink: the outbox writer thread and the MQTT session task.
pub struct Uplink {
    publisher: Publisher,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    session: tokio::task::JoinHandle<()>,
    writer: std::thread::JoinHandle<()>,
}

impl Uplink {
    /// Opens the outbox (the store's SQLite file, `cfg.db_path()`, on its own
    /// WAL connection) and starts the writer and the uplink. Fails when
    /// `[mqtt]` is absent or invalid (TLS files unreadable, password
    /// variable unset) or the outbox cannot be opened; a broker that is down
    /// is not an error (the uplink keeps retrying). `clock` stamps every
    /// message's `ts` and acceptance time.
    pub async fn start(
        cfg: &crate::config::Config,
        shutdown: CancellationToken,
        commands: Arc<dyn CommandHandler>,
        clock: Arc<dyn Clock>,
    ) -> Result<Uplink> {
        let mqtt = cfg
            .mqtt
            .clone()
            .ok_or_else(|| Error::invalid("no [mqtt] section in the configuration"))?;
        let settings = settings::Settings::from_config(cfg, &mqtt, clock.clone())?;
        let metrics = Arc::new(Metrics::default());
        let (writer, handle) = writer::start_writer(
            &cfg.db_path(),
            mqtt.outbox_max_bytes,
            mqtt.outbox_fsync,
            metrics.clone(),
            clock.clone(),
        )?;
        let publisher = Publisher::new(
            handle.pub_tx.clone(),
            metrics.clone(),
            mqtt.max_packet_bytes,
            clock.clone(),
        );
        let session = tokio::spawn(session::run(
            settings,
            handle,
            publisher.clone(),
            commands,
            metrics.clone(),
            shutdown,
        ));
        Ok(Uplink {
            publisher,
            metrics,
            clock,
            session,
            writer,
        })
    }

    /// A publisher feeding this uplink.
    pub fn publisher(&self) -> Publisher {
        self.publisher.clone()
    }

    /// The uplink's counters and gauges.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }

    /// Reads the outbox gauges for `/metrics` (`tgw_outbox_*`).
    pub fn outbox_source(&self) -> crate::base::metrics::OutboxSource {
        let (m, clock) = (self.metrics.clone(), self.clock.clone());
        Arc::new(move || m.outbox_stats(clock.as_ref()))
    }

    /// Waits, after the shutdown token fired, for the session to say
    /// offline and for the writer to commit what it holds.
    pub async fn join(self) {
        if let Err(e) = self.session.await {
            tracing::error!(error = %e, "mqtt uplink task failed");
        }
        drop(self.publisher);
        let writer = self.writer;
        let _ = tokio::task::spawn_blocking(move || writer.join()).await;
    }
}

/// Horn and broadcast reports from the broadcast runtime go out as retained
/// `speaker/{id}/state`, `broadcast/{id}` and uncoalesced
/// `broadcast/{id}/horn/{speaker}` messages.
impl crate::broadcast::runtime::ReportSink for Publisher {
    fn speaker_state(&self, id: &str, body: Value) {
        Publisher::speaker_state(self, id, body);
    }

    fn broadcast_state(&self, id: &str, body: Value) {
        Publisher::broadcast_state(self, id, body);
    }

    fn broadcast_horn(&self, id: &str, speaker: &str, body: Value) {
        Publisher::broadcast_horn(self, id, speaker, body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const BASE: &str =
        "[gateway]\nsite = \"s\"\ndata_dir = \"/tmp/x\"\n[township]\ncode = \"s\"\nname = \"S\"\n";

    fn parse(mqtt: &str) -> Result<Config, String> {
        Config::parse(&format!("{BASE}[mqtt]\n{mqtt}"), "t.toml").map_err(|e| e.to_string())
    }

    #[test]
    fn mqtt_section_defaults_and_url_forms() {
        let c = parse("url = \"mqtt://10.0.0.1\"\n").unwrap();
        let m = c.mqtt.unwrap();
        assert_eq!(m.keep_alive_secs, std::time::Duration::from_secs(30));
        assert_eq!(
            (m.max_packet_bytes, m.inflight, m.drain_rate),
            (1 << 20, 100, 1000)
        );
        assert!(m.outbox_fsync);
        let u = m.broker().unwrap();
        assert_eq!((u.host.as_str(), u.port, u.tls), ("10.0.0.1", 1883, false));
        let u = crate::config::parse_broker_url("mqtts://[::1]:9000").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.tls), ("::1", 9000, true));
        assert!(Config::parse(BASE, "t").unwrap().mqtt.is_none());
    }

    #[test]
    fn bad_mqtt_settings_name_key_and_line_without_secrets() {
        let e = parse("url = \"http://x\"\n").unwrap_err();
        assert!(e.contains("mqtt.url") && e.contains("line 8"), "{e}");
        let e = parse("url = \"mqtt://user:s3cret@x\"\n").unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
        let e = parse("url = \"mqtts://x\"\n").unwrap_err();
        assert!(e.contains("ca_file"), "{e}");
        let e = parse("url = \"mqtt://x\"\npassword_env = \"P\"\n").unwrap_err();
        assert!(e.contains("username"), "{e}");
        let e = parse("url = \"mqtts://x\"\nca_file = \"/c\"\nclient_cert_file = \"/a\"\n")
            .unwrap_err();
        assert!(e.contains("client_key_file"), "{e}");
        let e = parse("url = \"mqtt://x\"\ninflight = 0\n").unwrap_err();
        assert!(e.contains("mqtt.inflight"), "{e}");
        let e = parse("url = \"mqtt://x\"\ncolour = 1\n").unwrap_err();
        assert!(e.contains("colour"), "{e}");
    }

    /// `urls` lists brokers in order (mixed TLS and plain); `url` and
    /// `urls` together, neither, an empty list, a duplicate, too many and
    /// a bad entry are refused naming the key, without the password.
    #[test]
    fn broker_list_forms_and_refusals() {
        let c = parse("urls = [\"mqtts://a:8883\", \"mqtt://b\", \"mqtt://127.0.0.1:1885\"]\nca_file = \"/c\"\n")
            .unwrap();
        let b = c.mqtt.unwrap().brokers().unwrap();
        let got: Vec<_> = b.iter().map(|u| (u.host.as_str(), u.port, u.tls)).collect();
        assert_eq!(
            got,
            [
                ("a", 8883, true),
                ("b", 1883, false),
                ("127.0.0.1", 1885, false)
            ]
        );
        for (text, want) in [
            ("url = \"mqtt://a\"\nurls = [\"mqtt://b\"]\n", "not both"),
            ("keep_alive_secs = 30\n", "give `url` or `urls`"),
            ("urls = []\n", "give `url` or `urls`"),
            ("urls = [\"mqtt://a:1883\", \"mqtt://a\"]\n", "twice"),
            (
                "urls = [\"mqtt://a\", \"http://u:s3cret@b\"]\n",
                "mqtt.urls",
            ),
            ("urls = [\"mqtt://a\", \"mqtts://b\"]\n", "ca_file"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want) && !e.contains("s3cret"), "{text}: {e}");
        }
        let many: Vec<String> = (0..17).map(|i| format!("\"mqtt://h{i}\"")).collect();
        let e = parse(&format!("urls = [{}]\n", many.join(","))).unwrap_err();
        assert!(e.contains("at most 16"), "{e}");
    }

    /// `for_broker` aims the settings at one broker, with TLS only where
    /// its URL says `mqtts://`.
    #[test]
    fn settings_follow_the_broker_index() {
        let c = parse("urls = [\"mqtt://a:1\", \"mqtt://b:2\"]\n").unwrap();
        let m = c.mqtt.clone().unwrap();
        let clock: Arc<dyn Clock> = Arc::new(crate::base::clock::ManualClock::at(0));
        let s = settings::Settings::from_config(&c, &m, clock).unwrap();
        assert_eq!((s.host.as_str(), s.port), ("a", 1));
        let b = s.for_broker(1);
        assert_eq!((b.host.as_str(), b.port, b.tls.is_none()), ("b", 2, true));
        assert_eq!(s.for_broker(2).host, "a");
    }

    /// A missing CA file or a file without certificates is a clear start-up error.
    #[test]
    fn unreadable_tls_material_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a pem").unwrap();
        for (ca, want) in [
            ("/nonexistent/ca.pem", "/nonexistent/ca.pem"),
            (empty.to_str().unwrap(), "no PEM certificate"),
        ] {
            let c = parse(&format!("url = \"mqtts://x\"\nca_file = \"{ca}\"\n")).unwrap();
            let e = settings::tls_config(c.mqtt.as_ref().unwrap())
                .unwrap_err()
                .to_string();
            assert!(e.contains("mqtt.ca_file") && e.contains(want), "{e}");
        }
    }

    #[test]
    fn publisher_stamps_refuses_and_never_blocks() {
        assert!(!Publisher::disabled().is_enabled());
        Publisher::disabled().camera_state("c", serde_json::json!({})); // no-op
        let (tx, mut rx) = mpsc::channel(1);
        let m = Arc::new(Metrics::default());
        let clock = Arc::new(crate::base::clock::ManualClock::at(1_784_077_200_123));
        let p = Publisher::new(tx, m.clone(), 4096, clock);
        p.camera_state("cam-1", serde_json::json!({"seq": 9, "verdict": "ok"}));
        p.camera_event("cam-1", serde_json::json!({"x": 1})); // channel full: refused
        p.camera_event("a/b", serde_json::json!({})); // not a topic level
        p.alarm(serde_json::json!([1])); // not an object
        p.camera_event("cam-1", serde_json::json!({"big": "x".repeat(5000)}));
        let got = rx.try_recv().unwrap();
        assert_eq!(got.topic, "camera/cam-1/state");
        assert_eq!(got.coalesce_key.as_deref(), Some("camera/cam-1/state"));
        assert!(got.retain && got.class == Class::State);
        assert_eq!(got.body, "{\"verdict\":\"ok\"}");
        assert_eq!(got.msg_id.len(), 36);
        assert_eq!(got.accepted_ms, 1_784_077_200_123);
        assert_eq!(got.ts, "2026-07-15T01:00:00.123Z");
        let s = m.snapshot();
        assert_eq!((s.rejected_channel, s.rejected_invalid), (1, 3));
    }

    /// A state body given as text goes where `camera_state` puts one
    /// (topic, coalescing key, retained, class state) and is refused alike
    /// for a bad id or a body over the packet limit.
    #[test]
    fn camera_state_text_is_camera_state() {
        Publisher::disabled().camera_state_text("c", "{}".into()); // no-op
        let (tx, mut rx) = mpsc::channel(4);
        let m = Arc::new(Metrics::default());
        let clock = Arc::new(crate::base::clock::ManualClock::at(1_784_077_200_123));
        let p = Publisher::new(tx, m.clone(), 4096, clock);
        p.camera_state_text("cam-1", "{\"verdict\":\"ok\"}".into());
        p.camera_state("cam-1", serde_json::json!({"verdict": "ok"}));
        p.camera_state_text("a/b", "{}".into());
        p.camera_state_text("cam-1", format!("{{\"big\":\"{}\"}}", "x".repeat(5000)));
        let text = rx.try_recv().unwrap();
        let value = rx.try_recv().unwrap();
        assert!(rx.try_recv().is_err());
        for got in [&text, &value] {
            assert_eq!(got.topic, "camera/cam-1/state");
            assert_eq!(got.coalesce_key.as_deref(), Some("camera/cam-1/state"));
            assert!(got.retain && got.class == Class::State);
            assert_eq!(got.body, "{\"verdict\":\"ok\"}");
        }
        assert_eq!(m.snapshot().rejected_invalid, 2);
    }

    /// What `/metrics` shows of the outbox: rows per class, bytes, the
    /// oldest row's age on the injected clock, commit errors.
    #[test]
    fn outbox_stats_for_metrics() {
        let m = Metrics::default();
        let clock = crate::base::clock::ManualClock::at(1_000_000);
        let s = m.outbox_stats(&clock);
        assert_eq!(s.oldest_age_secs, 0.0);
        assert_eq!(s.messages.len(), 4);
        m.depth.store(3, Ordering::Relaxed);
        m.depth_by_class[Class::History as usize].store(2, Ordering::Relaxed);
        m.depth_by_class[Class::Urgent as usize].store(1, Ordering::Relaxed);
        m.bytes.store(900, Ordering::Relaxed);
        m.oldest_ms.store(1_000_000 - 90_500, Ordering::Relaxed);
        m.commit_errors.store(4, Ordering::Relaxed);
        let s = m.outbox_stats(&clock);
        assert_eq!(
            s.messages,
            vec![("urgent", 1), ("state", 0), ("metadata", 0), ("history", 2)]
        );
        assert_eq!((s.bytes, s.commit_errors), (900, 4));
        assert_eq!(s.oldest_age_secs, 90.5);
    }
}
