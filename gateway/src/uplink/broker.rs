//! A small embedded MQTT 3.1.1 broker for `tgw demo` (feature
//! `embedded-broker`), so one command shows MQTT traffic without installing
//! Mosquitto. Production points `[mqtt] url` at Mosquitto or EMQX.
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
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use rumqttc::{
    ConnAck, ConnectReturnCode, Packet, PubAck, Publish, QoS, SubAck, SubscribeReasonCode,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const MAX_PACKET: usize = 2 << 20;
const CLIENT_QUEUE: usize = 10_000;

#[derive(Default)]
struct State {
    retained: HashMap<String, Bytes>,
    clients: HashMap<u64, Client>,
    next_id: u64,
}

struct Client {
    filters: Vec<String>,
    tx: mpsc::Sender<Bytes>,
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
        if payload.is_empty() {
            st.retained.remove(topic);
        } else {
            st.retained.insert(topic.to_string(), payload.clone());
        }
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
            let _ = c.tx.try_send(bytes.clone());
        }
    }
}

async fn serve(sock: TcpStream, state: Shared) -> anyhow::Result<()> {
    let _ = sock.set_nodelay(true);
    let (mut rd, mut wr) = sock.into_split();
    let (tx, mut rx) = mpsc::channel::<Bytes>(CLIENT_QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if wr.write_all(&b).await.is_err() {
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
                        for (t, payload) in &st.retained {
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
                        let _ = tx.send(b).await;
                    }
                    for (t, payload) in retained {
                        let mut p = Publish::new(t, QoS::AtMostOnce, payload.to_vec());
                        p.retain = true;
                        if let Some(b) = encode(&Packet::Publish(p)) {
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
