//! The rumqttc session loop: connect, resend what was claimed and not
//! acknowledged, hand outbox rows to the broker within the window, record
//! PUBACKs, and pass the centre's commands to the [`CommandHandler`].
//!
//! We never rely on rumqttc's in-memory retransmission: every session starts
//! with a fresh `AsyncClient`/`EventLoop` pair and a clean MQTT session, and
//! whatever was claimed and not PUBACKed is resent from the outbox, in `seq`
//! order, before anything new (see `docs/mqtt.md`, "Delivery").

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectReturnCode, Event, EventLoop, Incoming, LastWill, MqttOptions,
    NetworkOptions, Outgoing, QoS, TlsConfiguration, Transport,
};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use tokio::sync::{Semaphore, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::command_qos::CommandQos;
use super::commands::{self, CommandHandler, CommandReply, ReplyCode, reply_body};
use super::failover::Rotation;
use super::outbox::OutRow;
use super::scout::{self, Quarantine};
use super::settings::Settings;
use super::subscription::{Subscription, qos_level};
use super::writer::{Ctl, WriterHandle};
use super::{Metrics, Publisher};

/// Rows claimed from the outbox at once.
pub const CLAIM_BATCH: usize = 500;
/// Commands handled at once; more are rejected with `busy`.
pub const MAX_CONCURRENT_COMMANDS: usize = 16;
/// Longest a command handler may take before an `error`/`timeout` reply.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a clean shutdown waits for outstanding PUBACKs.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// A connection must stay up this long for the reconnect backoff to start
/// again from `reconnect_min_ms`; one lost sooner keeps backing off, so a
/// session that dies right after connecting (an oversized retained message,
/// a broker that drops us) cannot reconnect in a tight loop.
pub const STABLE_AFTER: Duration = Duration::from_secs(10);

/// The payload of a claimed row: the envelope keys, then the body's keys.
pub fn envelope(row: &OutRow, site: &str, gateway: &str, historical: bool) -> Vec<u8> {
    let mut s = String::with_capacity(row.body.len() + 160);
    s.push_str("{\"seq\":");
    s.push_str(&row.seq.to_string());
    s.push_str(",\"msg_id\":");
    s.push_str(&Value::from(row.msg_id.as_str()).to_string());
    s.push_str(",\"ts\":");
    s.push_str(&Value::from(row.ts.as_str()).to_string());
    s.push_str(",\"site\":");
    s.push_str(&Value::from(site).to_string());
    s.push_str(",\"gateway\":");
    s.push_str(&Value::from(gateway).to_string());
    if historical {
        s.push_str(",\"historical\":true");
    }
    let inner = row
        .body
        .trim()
        .strip_prefix('{')
        .unwrap_or("}")
        .trim_start();
    if !inner.starts_with('}') {
        s.push(',');
    }
    s.push_str(inner);
    s.into_bytes()
}

/// Reconnect delay: `min · 2^attempt` capped at `max`, of which the upper
/// half is random ("equal jitter"); `jitter` in [0, 1) (0 in tests).
pub fn backoff(attempt: u32, min: Duration, max: Duration, jitter: f64) -> Duration {
    let cap = min.saturating_mul(1u32 << attempt.min(20)).min(max);
    cap / 2 + cap.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
}

fn status_body(
    s: &Settings,
    online: bool,
    reason: Option<&str>,
    boot: i64,
    conn: u64,
    last_seq: i64,
) -> Value {
    let mut v = json!({
        "online": online,
        "msg_id": uuid::Uuid::new_v4().to_string(),
        "ts": s.clock.now_utc().format(&Rfc3339).unwrap_or_default(),
        "site": s.site,
        "gateway": s.gateway,
        "boot": boot,
        "connection": conn,
        "version": env!("CARGO_PKG_VERSION"),
        "started_at": s.started_at,
        "last_seq": last_seq,
    });
    if let Some(r) = reason {
        v["reason"] = r.into();
    }
    v
}

enum Tracked {
    Row(i64),
    Status,
}

/// Runs sessions until shutdown, reconnecting with backoff and jitter.
pub(crate) async fn run(
    s: Settings,
    h: WriterHandle,
    publisher: Publisher,
    handler: Arc<dyn CommandHandler>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut h = h;
    let mut rotation = Rotation::new(s.brokers.len(), s.reconnect_min, s.reconnect_max);
    let mut conn_no = 0u64;
    let sem = Arc::new(Semaphore::new(MAX_CONCURRENT_COMMANDS));
    let mut first_failure_logged = false;
    let mut quarantine = Quarantine::default();
    let mut command_qos = CommandQos::new(s.command_qos);
    metrics
        .command_qos
        .store(qos_level(command_qos.effective()), Ordering::Relaxed);
    loop {
        let s = s.for_broker(rotation.current());
        let filters = quarantine.filters(&s.topics, &handler.raw_topics(), Instant::now());
        let ctx = SessionCtx {
            s: &s,
            publisher: &publisher,
            handler: &handler,
            metrics: &metrics,
            sem: &sem,
            filters: &filters,
        };
        let delay = match session(&ctx, &mut h, &mut conn_no, &mut command_qos, &shutdown).await {
            SessionEnd::Shutdown => break,
            SessionEnd::Lost {
                connected,
                error,
                up,
                oversized,
            } => {
                metrics.connected.store(0, Ordering::Relaxed);
                metrics.connection_errors.fetch_add(1, Ordering::Relaxed);
                if let Some(bytes) = oversized {
                    metrics.oversized.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        bytes,
                        max_bytes = s.max_packet,
                        "mqtt connection lost: an incoming packet is larger than mqtt.max_packet_bytes; looking for its topic"
                    );
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = find_oversized(&ctx, &mut quarantine) => {}
                    }
                }
                let delay = rotation.failed(connected.then_some(up), rand::random::<f64>());
                let next = s.for_broker(rotation.current());
                let (broker, next) = (
                    format!("{}:{}", s.host, s.port),
                    format!("{}:{}", next.host, next.port),
                );
                let attempt = rotation.failures();
                if connected {
                    first_failure_logged = attempt > 1;
                    tracing::warn!(broker = %broker, next = %next, error = %error, "mqtt connection lost; reconnecting");
                } else if !first_failure_logged || attempt.is_multiple_of(10) {
                    first_failure_logged = true;
                    tracing::warn!(broker = %broker, next = %next, attempt, error = %error, "mqtt connect failed; retrying with backoff");
                }
                delay
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
    }
    metrics.connected.store(0, Ordering::Relaxed);
    // Dropping the handle closes the control channel: the writer commits
    // what it still holds and stops.
    drop(h);
}

struct SessionCtx<'a> {
    s: &'a Settings,
    publisher: &'a Publisher,
    handler: &'a Arc<dyn CommandHandler>,
    metrics: &'a Arc<Metrics>,
    sem: &'a Arc<Semaphore>,
    /// What this session subscribes to (see [`Quarantine::filters`]).
    filters: &'a [String],
}

enum SessionEnd {
    Shutdown,
    Lost {
        connected: bool,
        error: String,
        /// How long the connection was up (zero when it never was).
        up: Duration,
        /// The size of the incoming packet over `max_packet_bytes` that
        /// rumqttc refused, when that is what ended the session.
        oversized: Option<usize>,
    },
}

/// After a session lost to an oversized incoming packet: the scout finds
/// the retained topic, clears it when it is one of our command topics, and
/// the quarantine keeps the session off the others; one alarm per finding.
async fn find_oversized(ctx: &SessionCtx<'_>, quarantine: &mut Quarantine) {
    let s = ctx.s;
    let own = |t: &str| s.topics.command_method(t).is_some();
    let found = match scout::scout(s, ctx.filters, own).await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "mqtt: could not look for the oversized retained message");
            return;
        }
    };
    let blocked = quarantine.record(&found, Instant::now());
    for (f, blocked) in found.iter().zip(blocked) {
        tracing::warn!(topic = %f.topic.escape_debug(), bytes = f.bytes, cleared = f.cleared, unsubscribed = blocked, "mqtt: retained message larger than mqtt.max_packet_bytes");
        ctx.publisher.alarm(json!({
            "alarm": "oversized_message",
            "severity": "major",
            "topic": f.topic,
            "bytes": f.bytes,
            "max_bytes": s.max_packet,
            "cleared": f.cleared,
            "unsubscribed_secs": if blocked { scout::QUARANTINE.as_secs() } else { 0 },
        }));
    }
}

async fn ask<T>(h: &WriterHandle, f: impl FnOnce(oneshot::Sender<T>) -> Ctl) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    h.ctl_tx.send(f(tx)).ok()?;
    rx.await.ok()
}

/// The options of one session: clean session, limits, the last will
/// (`connection_lost` for connection `conn_no + 1`), credentials and TLS.
fn mqtt_options(s: &Settings, boot: i64, conn_no: u64) -> MqttOptions {
    let mut opts = MqttOptions::new(s.client_id.clone(), s.host.clone(), s.port);
    opts.set_keep_alive(s.keep_alive)
        .set_clean_session(true)
        .set_max_packet_size(s.max_packet, s.max_packet)
        .set_inflight((s.window + 4).min(u16::MAX as usize) as u16)
        .set_last_will(LastWill::new(
            s.topics.status(),
            status_body(s, false, Some("connection_lost"), boot, conn_no + 1, 0)
                .to_string()
                .into_bytes(),
            QoS::AtLeastOnce,
            true,
        ));
    if let Some((u, p)) = &s.credentials {
        opts.set_credentials(u.clone(), p.clone());
    }
    if let Some(tls) = &s.tls {
        opts.set_transport(Transport::Tls(TlsConfiguration::Rustls(tls.clone())));
    }
    opts
}

async fn session(
    ctx: &SessionCtx<'_>,
    h: &mut WriterHandle,
    conn_no: &mut u64,
    command_qos: &mut CommandQos,
    shutdown: &CancellationToken,
) -> SessionEnd {
    let s = ctx.s;
    let lost_at =
        |up_since: Option<Instant>, error: String, oversized: Option<usize>| SessionEnd::Lost {
            connected: up_since.is_some(),
            error,
            up: up_since.map(|t| t.elapsed()).unwrap_or_default(),
            oversized,
        };
    let lost = |connected: bool, error: String| SessionEnd::Lost {
        connected,
        error,
        up: Duration::ZERO,
        oversized: None,
    };
    let opts = mqtt_options(s, h.boot, *conn_no);
    let (client, mut el) = AsyncClient::new(opts, s.window + 64);
    let mut net = NetworkOptions::new();
    net.set_connection_timeout(s.connect_timeout.as_secs().max(1));
    el.set_network_options(net);

    // CONNACK (rumqttc applies the connection timeout).
    tokio::select! {
        _ = shutdown.cancelled() => return SessionEnd::Shutdown,
        ev = el.poll() => match ev {
            Ok(Event::Incoming(Incoming::ConnAck(ack))) if ack.code == ConnectReturnCode::Success => {}
            Ok(other) => return lost(false, format!("unexpected first packet {other:?}")),
            Err(e) => return lost(false, connect_error(&e)),
        }
    }
    *conn_no += 1;
    let up_since = Some(Instant::now());
    ctx.metrics.connected.store(1, Ordering::Relaxed);
    ctx.metrics.connections.fetch_add(1, Ordering::Relaxed);
    let Some(resume) = ask(h, Ctl::Resume).await else {
        return lost(true, "outbox writer stopped".into());
    };
    tracing::info!(broker = %format!("{}:{}", s.host, s.port), connection = *conn_no, resend = resume.claimed.len(), "mqtt connected");

    let mut queued: VecDeque<Tracked> = VecDeque::new();
    let mut inflight: HashMap<u16, Tracked> = HashMap::new();
    let mut acks: Vec<i64> = Vec::new();
    let asked = command_qos.for_connection(Instant::now());
    let broker = format!("{}:{}", s.host, s.port);
    let mut sub = match Subscription::start(&client, ctx.filters, asked, ctx.metrics, broker) {
        Ok(p) => p,
        Err(e) => return lost(true, e),
    };
    let mut birth = status_body(s, true, None, h.boot, *conn_no, resume.last_seq);
    birth["command_qos"] = qos_level(asked).into();
    let birth = birth.to_string().into_bytes();
    if let Err(e) = client.try_publish(s.topics.status(), QoS::AtLeastOnce, true, birth) {
        return lost(true, format!("publish status: {e}"));
    }
    queued.push_back(Tracked::Status);
    let mark = resume.mark;
    let mut buffer: VecDeque<OutRow> = resume.claimed.into();
    let resend_until = buffer.back().map(|r| r.seq).unwrap_or(0);
    let mut claim_rx: Option<oneshot::Receiver<Vec<OutRow>>> = None;
    let mut bucket = TokenBucket::new(s.drain_rate);

    loop {
        // Hand rows to rumqttc within the window; historical rows pay tokens.
        let mut token_wait: Option<Instant> = None;
        while queued.len() + inflight.len() < s.window {
            let Some(row) = buffer.front() else { break };
            let historical = row.id <= mark;
            if historical && let Err(at) = bucket.take(Instant::now()) {
                token_wait = Some(at);
                break;
            }
            let Some(row) = buffer.pop_front() else { break };
            let payload = envelope(&row, &s.site, &s.gateway, historical);
            if let Err(e) = client.try_publish(
                s.topics.full(&row.topic),
                QoS::AtLeastOnce,
                row.retain,
                payload,
            ) {
                return lost(true, format!("publish: {e}"));
            }
            ctx.metrics.sent.fetch_add(1, Ordering::Relaxed);
            if row.seq <= resend_until {
                ctx.metrics.resent.fetch_add(1, Ordering::Relaxed);
            }
            queued.push_back(Tracked::Row(row.id));
        }
        if !acks.is_empty() && h.ctl_tx.send(Ctl::Ack(std::mem::take(&mut acks))).is_err() {
            return lost(true, "outbox writer stopped".into());
        }
        let unsent = *h.unsent.borrow();
        if claim_rx.is_none() && buffer.len() < CLAIM_BATCH / 2 && unsent > 0 {
            let (tx, rx) = oneshot::channel();
            if h.ctl_tx
                .send(Ctl::Claim(CLAIM_BATCH - buffer.len(), tx))
                .is_err()
            {
                return lost(true, "outbox writer stopped".into());
            }
            claim_rx = Some(rx);
        }
        let idle = claim_rx.is_none() && buffer.is_empty();
        tokio::select! {
            _ = shutdown.cancelled() => {
                close(ctx, h, &client, &mut el, queued, inflight, acks, resume.last_seq, *conn_no).await;
                return SessionEnd::Shutdown;
            }
            ev = el.poll() => match ev {
                Ok(ev) => {
                    if let Err(e) = sub.on_event(&ev, &client, command_qos) {
                        return lost(true, e);
                    }
                    on_event(ctx, ev, &mut queued, &mut inflight, &mut acks);
                }
                Err(e) => {
                    sub.on_error(&e, command_qos);
                    if !acks.is_empty() {
                        let _ = h.ctl_tx.send(Ctl::Ack(std::mem::take(&mut acks)));
                    }
                    return lost_at(up_since, e.to_string(), oversized_len(&e));
                }
            },
            rows = async { claim_rx.as_mut().expect("guarded by is_some").await }, if claim_rx.is_some() => {
                claim_rx = None;
                buffer.extend(rows.unwrap_or_default());
            }
            r = h.unsent.changed(), if idle && unsent == 0 => {
                if r.is_err() {
                    return lost(true, "outbox writer stopped".into());
                }
            }
            _ = tokio::time::sleep_until(token_wait.unwrap_or_else(Instant::now)), if token_wait.is_some() => {}
        }
    }
}

/// The size of the incoming packet rumqttc refused for being over its
/// `max_packet_size`, if that is the error.
fn oversized_len(e: &rumqttc::ConnectionError) -> Option<usize> {
    match e {
        rumqttc::ConnectionError::MqttState(rumqttc::StateError::Deserialization(
            rumqttc::mqttbytes::Error::PayloadSizeLimitExceeded(n),
        )) => Some(*n),
        _ => None,
    }
}

fn connect_error(e: &rumqttc::ConnectionError) -> String {
    match e {
        rumqttc::ConnectionError::ConnectionRefused(code) => {
            format!("broker refused the connection: {code:?}")
        }
        other => other.to_string(),
    }
}

fn on_event(
    ctx: &SessionCtx<'_>,
    ev: Event,
    queued: &mut VecDeque<Tracked>,
    inflight: &mut HashMap<u16, Tracked>,
    acks: &mut Vec<i64>,
) {
    match ev {
        Event::Outgoing(Outgoing::Publish(pkid)) => {
            if let Some(t) = queued.pop_front() {
                inflight.insert(pkid, t);
            }
        }
        Event::Incoming(Incoming::PubAck(ack)) => {
            if let Some(Tracked::Row(id)) = inflight.remove(&ack.pkid) {
                acks.push(id);
            }
        }
        Event::Incoming(Incoming::Publish(p)) => {
            if ctx.s.topics.command_method(&p.topic).is_none()
                && ctx
                    .handler
                    .raw_topics()
                    .iter()
                    .any(|f| topic_matches(f, &p.topic))
            {
                ctx.handler.raw(&p.topic, p.payload.clone());
            } else {
                on_command(ctx, &p.topic, &p.payload)
            }
        }
        _ => {}
    }
}

/// MQTT topic filter matching (`+` one level, `#` the rest).
fn topic_matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

fn on_command(ctx: &SessionCtx<'_>, topic: &str, payload: &[u8]) {
    ctx.metrics.commands.fetch_add(1, Ordering::Relaxed);
    let Some(method) = ctx.s.topics.command_method(topic) else {
        ctx.metrics.commands_invalid.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(topic = %topic.escape_debug(), "message on an unexpected topic ignored");
        return;
    };
    let req = match commands::parse_command(method, payload, ctx.s.command_max) {
        Ok(r) => r,
        Err(e) => {
            ctx.metrics.commands_invalid.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(method = %e.method.escape_debug(), code = %e.code, error = %e.message, "command refused");
            ctx.publisher
                .reply(e.request_id.as_deref(), commands::error_reply(&e));
            return;
        }
    };
    let (request_id, method) = (req.request_id, req.command.method());
    let Ok(permit) = ctx.sem.clone().try_acquire_owned() else {
        ctx.publisher.reply(
            Some(&request_id),
            reply_body(
                &request_id,
                method,
                CommandReply::rejected(
                    ReplyCode::Busy,
                    format!("{MAX_CONCURRENT_COMMANDS} commands already running"),
                ),
            ),
        );
        return;
    };
    tracing::info!(method = %method, request_id = %request_id, "command");
    let fut = ctx.handler.handle(req.command);
    let publisher = ctx.publisher.clone();
    tokio::spawn(async move {
        let reply = match tokio::time::timeout(COMMAND_TIMEOUT, fut).await {
            Ok(r) => r,
            Err(_) => CommandReply::rejected(
                ReplyCode::Timeout,
                format!("no result within {} s", COMMAND_TIMEOUT.as_secs()),
            ),
        };
        publisher.reply(Some(&request_id), reply_body(&request_id, method, reply));
        drop(permit);
    });
}

/// Clean shutdown: say offline (retained; the last will is not sent on a
/// clean DISCONNECT), wait briefly for PUBACKs, record them, disconnect.
#[allow(clippy::too_many_arguments)]
async fn close(
    ctx: &SessionCtx<'_>,
    h: &WriterHandle,
    client: &AsyncClient,
    el: &mut EventLoop,
    mut queued: VecDeque<Tracked>,
    mut inflight: HashMap<u16, Tracked>,
    mut acks: Vec<i64>,
    last_seq: i64,
    conn_no: u64,
) {
    let s = ctx.s;
    let bye = status_body(s, false, Some("shutdown"), h.boot, conn_no, last_seq);
    if client
        .try_publish(s.topics.status(), QoS::AtLeastOnce, true, bye.to_string())
        .is_ok()
    {
        queued.push_back(Tracked::Status);
    }
    let deadline = Instant::now() + SHUTDOWN_GRACE;
    while !(queued.is_empty() && inflight.is_empty()) {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
            ev = el.poll() => match ev {
                Ok(Event::Incoming(Incoming::Publish(_))) => {} // no new commands while stopping
                Ok(ev) => on_event(ctx, ev, &mut queued, &mut inflight, &mut acks),
                Err(_) => break,
            },
        }
    }
    if !acks.is_empty() {
        let _ = h.ctl_tx.send(Ctl::Ack(acks));
    }
    if client.try_disconnect().is_ok() {
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            loop {
                match el.poll().await {
                    Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
    }
}

/// Drain limiter for historical rows: `rate` tokens per second, bursts of
/// up to one second's worth; rate 0 = unlimited.
struct TokenBucket {
    rate: f64,
    tokens: f64,
    at: Option<Instant>,
}

impl TokenBucket {
    fn new(rate: u32) -> Self {
        TokenBucket {
            rate: rate as f64,
            tokens: 0.0,
            at: None,
        }
    }

    /// Takes a token, or says when the next one is due.
    fn take(&mut self, now: Instant) -> Result<(), Instant> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let elapsed = self.at.map_or(1.0, |t| (now - t).as_secs_f64());
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate.max(1.0));
        self.at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(now + Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn topic_filters_match_like_a_broker() {
        assert!(topic_matches("cap/#", "cap/320115/alert"));
        assert!(topic_matches("cap/+/alert", "cap/320115/alert"));
        assert!(!topic_matches("cap/+/alert", "cap/320115/x"));
        assert!(topic_matches("warn/cap", "warn/cap"));
        assert!(!topic_matches("warn/cap", "warn/cap/x"));
        assert!(!topic_matches("warn/cap/x", "warn/cap"));
    }

    use super::*;
    use crate::uplink::outbox::Class;

    fn row(body: &str) -> OutRow {
        OutRow {
            id: 3,
            seq: 42,
            class: Class::State,
            topic: "camera/c/state".into(),
            retain: true,
            msg_id: "m-1".into(),
            ts: "2026-01-01T00:00:00Z".into(),
            accepted_ms: 0,
            body: body.into(),
        }
    }

    #[test]
    fn envelope_comes_first_and_is_valid_json() {
        let v: Value =
            serde_json::from_slice(&envelope(&row("{\"verdict\":\"ok\"}"), "s", "g", true))
                .unwrap();
        assert_eq!(v["seq"], 42);
        assert_eq!(v["historical"], true);
        assert_eq!(v["verdict"], "ok");
        let v: Value = serde_json::from_slice(&envelope(&row("{}"), "s", "g", false)).unwrap();
        assert_eq!(v.as_object().map(|o| o.len()), Some(5));
        assert!(v.get("historical").is_none());
    }

    #[test]
    fn backoff_doubles_caps_and_jitters_the_upper_half() {
        let (a, b) = (Duration::from_millis(500), Duration::from_secs(60));
        assert_eq!(backoff(0, a, b, 0.0), Duration::from_millis(250));
        assert_eq!(backoff(1, a, b, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(3, a, b, 0.999_999).as_millis(), 3999);
        assert_eq!(backoff(40, a, b, 0.0), Duration::from_secs(30));
        assert!(backoff(40, a, b, 0.99) <= b);
    }

    #[tokio::test(start_paused = true)]
    async fn token_bucket_paces_the_drain() {
        let mut b = TokenBucket::new(10);
        let t0 = Instant::now();
        for _ in 0..10 {
            assert!(b.take(t0).is_ok());
        }
        let next = b.take(t0).unwrap_err();
        assert_eq!(next - t0, Duration::from_millis(100));
        assert!(b.take(next).is_ok());
        assert!(TokenBucket::new(0).take(t0).is_ok());
    }
}
