//! A small embedded MQTT 3.1.1 broker for `tgw demo` (feature
//! `embedded-broker`), so one command shows MQTT traffic without installing
//! Mosquitto. Production points `[mqtt] url` at Mosquitto or EMQX.
//!
//! **Demo only.** Anyone who can reach it may connect, subscribe to
//! everything and publish anything, including `cmd/*` commands to the
//! gateway: there is no authentication, no ACL and no TLS. `tgw demo` binds
//! it to 127.0.0.1 (port 1883 when free, else an ephemeral one) and nothing
//! else starts it. Its memory is bounded: packets up to [`MAX_PACKET`]
//! bytes (a larger one closes that connection), a retained store of at most
//! [`MAX_RETAINED_TOPICS`] topics and [`MAX_RETAINED_BYTES`] bytes (topic +
//! payload; a retained message that would go over is delivered live but
//! not stored: what is stored stays, replacing or clearing a stored topic
//! always works within the byte cap), and at most [`CLIENT_QUEUE_BYTES`]
//! queued for each subscriber (beyond that it loses messages).
//!
//! Built on rumqttc's own packet codec (no extra dependency); rumqttd was
//! not used because it pulls a second axum, `config` and a Prometheus
//! exporter into every build of `tgw`.
//!
//! What it does: CONNECT/CONNACK (anyone), PUBLISH QoS 0/1 in (PUBACK for
//! QoS 1), retained messages (an empty payload clears), SUBSCRIBE with `+`
//! and `#`, delivery to subscribers at QoS 0, retained messages on
//! subscribe, last wills on abrupt disconnects, PINGREQ. What it does not:
//! persistent sessions, QoS 1/2 delivery to subscribers, authentication,
//! TLS. A slow subscriber loses messages rather than slowing publishers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use rumqttc::{
    ConnAck, ConnectReturnCode, Packet, PubAck, Publish, QoS, SubAck, SubscribeReasonCode,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Largest packet read or written (the gateway's default `max_packet_bytes`).
pub const MAX_PACKET: usize = 1 << 20;
/// Most retained topics stored.
pub const MAX_RETAINED_TOPICS: usize = 10_000;
/// Most retained bytes (topic + payload) stored.
pub const MAX_RETAINED_BYTES: usize = 32 << 20;
/// Most bytes queued for one subscriber; more are dropped for it.
pub const CLIENT_QUEUE_BYTES: usize = 16 << 20;
const CLIENT_QUEUE: usize = 10_000;

/// The retained store, capped in topics and bytes; a message over a cap is
/// refused (the oldest are kept: they are the gateway's status and state).
struct Retained {
    map: HashMap<String, Bytes>,
    bytes: usize,
    max_topics: usize,
    max_bytes: usize,
    warned: AtomicBool,
}

impl Retained {
    fn new(max_topics: usize, max_bytes: usize) -> Retained {
        Retained {
            map: HashMap::new(),
            bytes: 0,
            max_topics,
            max_bytes,
            warned: AtomicBool::new(false),
        }
    }

    /// Stores (or, with an empty payload, clears) `topic`; false when refused.
    fn put(&mut self, topic: &str, payload: Bytes) -> bool {
        let old = self.map.get(topic).map(|p| topic.len() + p.len());
        if payload.is_empty() {
            if let Some(o) = old {
                self.map.remove(topic);
                self.bytes -= o;
            }
            return true;
        }
        let cost = topic.len() + payload.len();
        let fits_count = old.is_some() || self.map.len() < self.max_topics;
        let fits_bytes = self.bytes - old.unwrap_or(0) + cost <= self.max_bytes;
        if !(fits_count && fits_bytes) {
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    topics = self.map.len(),
                    bytes = self.bytes,
                    "embedded broker: retained store full; retained messages over the cap are not stored (demo broker)"
                );
            }
            return false;
        }
        self.bytes = self.bytes - old.unwrap_or(0) + cost;
        self.map.insert(topic.to_string(), payload);
        true
    }
}

struct State {
    retained: Retained,
    clients: HashMap<u64, Client>,
    next_id: u64,
}

impl Default for State {
    fn default() -> State {
        State {
            retained: Retained::new(MAX_RETAINED_TOPICS, MAX_RETAINED_BYTES),
            clients: HashMap::new(),
            next_id: 0,
        }
    }
}

struct Client {
    filters: Vec<String>,
    tx: mpsc::Sender<Bytes>,
    queued: Arc<AtomicUsize>,
}

impl Client {
    /// Queues `b` unless the subscriber already has too much queued.
    fn offer(&self, b: &Bytes) {
        if self.queued.load(Ordering::Relaxed) + b.len() > CLIENT_QUEUE_BYTES {
            return;
        }
        if self.tx.try_send(b.clone()).is_ok() {
            self.queued.fetch_add(b.len(), Ordering::Relaxed);
        }
    }
}

type Shared = Arc<Mutex<State>>;

/// Starts the broker on `addr` (port 0 picks a free port) and returns the
/// address it listens on. It runs until the runtime stops.
pub async fn start_embedded(addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("embedded MQTT broker on {addr}: {e}"))?;
    let local = listener.local_addr()?;
    let state: Shared = Arc::default();
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((sock, peer)) => {
                    let state = state.clone();
                    tokio::spawn(async move {
                        if let Err(e) = serve(sock, state).await {
                            tracing::debug!(%peer, error = %e, "embedded broker: client gone");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "embedded broker: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(local)
}

fn encode(p: &Packet) -> Option<Bytes> {
    let mut b = BytesMut::new();
    p.write(&mut b, MAX_PACKET).ok()?;
    Some(b.freeze())
}

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// Routes one publish: retained store, then every matching subscriber.
fn route(state: &Shared, topic: &str, payload: Bytes, retain: bool) {
    let mut st = lock(state);
    if retain {
        st.retained.put(topic, payload.clone());
    }
    let Some(bytes) = encode(&Packet::Publish(Publish::new(
        topic,
        QoS::AtMostOnce,
        payload.to_vec(),
    ))) else {
        return;
    };
    for c in st.clients.values() {
        if c.filters.iter().any(|f| rumqttc::matches(topic, f)) {
            c.offer(&bytes);
        }
    }
}

async fn serve(sock: TcpStream, state: Shared) -> anyhow::Result<()> {
    let _ = sock.set_nodelay(true);
    let (mut rd, mut wr) = sock.into_split();
    let (tx, mut rx) = mpsc::channel::<Bytes>(CLIENT_QUEUE);
    let queued = Arc::new(AtomicUsize::new(0));
    let q = queued.clone();
    let writer = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            let r = wr.write_all(&b).await;
            let _ = q.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(b.len()))
            });
            if r.is_err() {
                break;
            }
        }
    });
    let mut buf = BytesMut::with_capacity(8192);
    let mut id = None;
    let mut will = None;
    let mut clean_exit = false;
    let result: anyhow::Result<()> = async {
        loop {
            let packet = loop {
                match Packet::read(&mut buf, MAX_PACKET) {
                    Ok(p) => break p,
                    Err(rumqttc::Error::InsufficientBytes(_)) => {
                        if rd.read_buf(&mut buf).await? == 0 {
                            return Ok(());
                        }
                    }
                    Err(e) => anyhow::bail!("bad packet: {e:?}"),
                }
            };
            let reply = match packet {
                Packet::Connect(c) if id.is_none() => {
                    will = c.last_will.clone();
                    let mut st = lock(&state);
                    st.next_id += 1;
                    let n = st.next_id;
                    st.clients.insert(
                        n,
                        Client {
                            filters: Vec::new(),
                            tx: tx.clone(),
                            queued: queued.clone(),
                        },
                    );
                    id = Some(n);
                    Some(Packet::ConnAck(ConnAck::new(
                        ConnectReturnCode::Success,
                        false,
                    )))
                }
                _ if id.is_none() => anyhow::bail!("first packet was not CONNECT"),
                Packet::Publish(p) => {
                    route(&state, &p.topic, p.payload.clone(), p.retain);
                    (p.qos != QoS::AtMostOnce).then(|| Packet::PubAck(PubAck::new(p.pkid)))
                }
                Packet::Subscribe(s) => {
                    let mut retained = Vec::new();
                    {
                        let mut st = lock(&state);
                        for (t, payload) in &st.retained.map {
                            if s.filters.iter().any(|f| rumqttc::matches(t, &f.path)) {
                                retained.push((t.clone(), payload.clone()));
                            }
                        }
                        if let Some(c) = id.and_then(|n| st.clients.get_mut(&n)) {
                            c.filters.extend(s.filters.iter().map(|f| f.path.clone()));
                        }
                    }
                    let codes = s
                        .filters
                        .iter()
                        .map(|_| SubscribeReasonCode::Success(QoS::AtMostOnce))
                        .collect();
                    if let Some(b) = encode(&Packet::SubAck(SubAck::new(s.pkid, codes))) {
                        queued.fetch_add(b.len(), Ordering::Relaxed);
                        let _ = tx.send(b).await;
                    }
                    for (t, payload) in retained {
                        let mut p = Publish::new(t, QoS::AtMostOnce, payload.to_vec());
                        p.retain = true;
                        if let Some(b) = encode(&Packet::Publish(p)) {
                            queued.fetch_add(b.len(), Ordering::Relaxed);
                            let _ = tx.send(b).await;
                        }
                    }
                    None
                }
                Packet::PingReq => Some(Packet::PingResp),
                Packet::Disconnect => {
                    clean_exit = true;
                    return Ok(());
                }
                _ => None,
            };
            if let Some(b) = reply.as_ref().and_then(encode) {
                queued.fetch_add(b.len(), Ordering::Relaxed);
                let _ = tx.send(b).await;
            }
        }
    }
    .await;
    if let Some(n) = id {
        lock(&state).clients.remove(&n);
    }
    if !clean_exit && let Some(w) = will {
        route(&state, &w.topic, w.message, w.retain);
    }
    drop(tx);
    let _ = writer.await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::{AsyncClient, Event, Incoming, MqttOptions};

    /// The retained store refuses what goes over its topic or byte cap,
    /// keeps what it holds, and always lets a stored topic be cleared.
    #[test]
    fn retained_store_is_capped_in_topics_and_bytes() {
        let z = |n: usize| Bytes::from(vec![b'z'; n]);
        let mut r = Retained::new(2, 100);
        assert!(r.put("a", z(40)) && r.put("b", z(40))); // 82 bytes
        assert!(!r.put("c", z(1)), "third topic");
        assert!(!r.put("a", z(60)), "82 - 41 + 61 > 100");
        assert_eq!(r.map["a"].len(), 40);
        assert!(r.put("a", z(50)));
        assert!(r.put("b", Bytes::new()) && r.put("nothing", Bytes::new()));
        assert_eq!((r.map.len(), r.bytes), (1, 51));
        assert!(r.put("c", z(1)));

        // The report's 50 × 1.9 MB: over MAX_PACKET, a connection is closed
        // before routing; 50 × 0.9 MB routed stay under MAX_RETAINED_BYTES.
        let state: Shared = Arc::default();
        for i in 0..50 {
            route(&state, &format!("x/{i}"), z(900_000), true);
        }
        let st = lock(&state);
        assert!(
            st.retained.bytes <= MAX_RETAINED_BYTES,
            "{}",
            st.retained.bytes
        );
        assert_eq!(st.retained.map.len(), MAX_RETAINED_BYTES / 900_004);
    }

    /// A subscriber that does not read gets at most CLIENT_QUEUE_BYTES
    /// queued; what goes beyond is dropped for it, not buffered without
    /// bound (the broker's memory stays bounded by a stalled client).
    #[test]
    fn a_stalled_subscriber_queues_at_most_its_byte_cap() {
        let (tx, mut rx) = mpsc::channel(100_000);
        let c = Client {
            filters: vec!["#".into()],
            tx,
            queued: Arc::default(),
        };
        let packet = Bytes::from(vec![0u8; 1 << 20]);
        for _ in 0..40 {
            c.offer(&packet);
        }
        assert_eq!(c.queued.load(Ordering::Relaxed), CLIENT_QUEUE_BYTES);
        let mut n = 0;
        while rx.try_recv().is_ok() {
            n += 1;
        }
        assert_eq!(n, CLIENT_QUEUE_BYTES >> 20, "40 offered, 16 MiB queued");
    }

    /// A packet over MAX_PACKET closes that connection; the broker goes on.
    #[tokio::test]
    async fn oversized_packet_closes_the_connection() {
        let addr = start_embedded("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let mut o = MqttOptions::new("big", "127.0.0.1", addr.port());
        o.set_max_packet_size(4 << 20, 4 << 20);
        let (c, mut el) = AsyncClient::new(o, 10);
        // 1.1 MB: over the 1 MiB cap (the gateway's default max_packet_bytes).
        c.publish("x", QoS::AtLeastOnce, true, vec![0u8; 1_100_000])
            .await
            .unwrap();
        let end = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Incoming::PubAck(_))) => return false,
                    Err(_) => return true,
                    Ok(_) => {}
                }
            }
        })
        .await
        .unwrap();
        assert!(end, "the oversized publish was acknowledged");
    }

    /// Retained status and state reach a late subscriber; a live publish too.
    #[tokio::test]
    async fn retained_and_live_messages_reach_subscribers() {
        let addr = start_embedded("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let (publ, mut pel) = AsyncClient::new(MqttOptions::new("p", "127.0.0.1", addr.port()), 10);
        publ.publish(
            "tgw/v1/s/g/status",
            QoS::AtLeastOnce,
            true,
            "{\"online\":true}",
        )
        .await
        .unwrap();
        // Drive the publisher until its PUBACK.
        loop {
            if let Event::Incoming(Incoming::PubAck(_)) = pel.poll().await.unwrap() {
                break;
            }
        }
        let (sub, mut sel) = AsyncClient::new(MqttOptions::new("s", "127.0.0.1", addr.port()), 10);
        sub.subscribe("tgw/v1/#", QoS::AtLeastOnce).await.unwrap();
        let mut got = Vec::new();
        let mut sent_live = false;
        while got.len() < 2 {
            let ev = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                tokio::select! {
                    e = sel.poll() => e.map(Some),
                    e = pel.poll() => e.map(|_| None),
                }
            })
            .await
            .unwrap()
            .unwrap();
            match ev {
                Some(Event::Incoming(Incoming::Publish(p))) => got.push((p.topic, p.retain)),
                Some(Event::Incoming(Incoming::SubAck(_))) if !sent_live => {
                    sent_live = true;
                    publ.publish("tgw/v1/s/g/camera/c/event", QoS::AtLeastOnce, false, "{}")
                        .await
                        .unwrap();
                }
                _ => {}
            }
        }
        assert!(
            got.contains(&("tgw/v1/s/g/status".to_string(), true)),
            "{got:?}"
        );
        assert!(
            got.contains(&("tgw/v1/s/g/camera/c/event".to_string(), false)),
            "{got:?}"
        );
    }
}
