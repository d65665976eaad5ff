//! The uplink against a scripted broker on 127.0.0.1:0 that does to a QoS 1
//! command subscription what a RabbitMQ 3.10 node does when the node
//! holding that subscription's queue is down (closes the connection on the
//! SUBSCRIBE, before any SUBACK, every time), or refuses it with a SUBACK
//! 0x80. The gateway must stay connected at QoS 0, keep publishing, and
//! answer a command (`docs/fleet.md`). A connection lost once on the
//! SUBSCRIBE (a flaky uplink) must not cost QoS 1. The pure decisions are
//! `command_qos.rs`'s.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use futures::future::BoxFuture;
use rumqttc::{
    ConnAck, ConnectReturnCode, Packet, PubAck, Publish, QoS, SubAck, SubscribeReasonCode,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::commands::Command;
use super::{CommandHandler, CommandReply, MetricsSnapshot, Uplink};

/// What the scripted broker does with a SUBSCRIBE at QoS 1.
#[derive(Clone, Copy, PartialEq)]
enum OnQos1 {
    /// Closes the connection without a SUBACK (RabbitMQ 3.10, home node down).
    Close,
    /// Closes the first connection without a SUBACK (lost on the way),
    /// grants QoS 1 on the others.
    CloseFirst,
    /// Answers SUBACK 0x80.
    Refuse,
}

/// What the broker saw, per connection (1-based).
#[derive(Default)]
struct Seen {
    connections: u32,
    /// (connection, filter, QoS asked).
    subscribes: Vec<(u32, String, u8)>,
    /// (connection, topic, payload).
    publishes: Vec<(u32, String, String)>,
}

/// What the broker saw, and a wake-up for every packet it records.
#[derive(Default)]
struct Log {
    seen: Mutex<Seen>,
    changed: Notify,
}

type Shared = Arc<Log>;

fn seen(s: &Shared) -> std::sync::MutexGuard<'_, Seen> {
    s.seen.lock().unwrap_or_else(|p| p.into_inner())
}

/// Records into the log and wakes whoever waits on it.
fn record(s: &Shared, f: impl FnOnce(&mut Seen)) {
    f(&mut seen(s));
    s.changed.notify_waiters();
}

async fn broker(on_qos1: OnQos1) -> (u16, Shared) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let shared: Shared = Arc::default();
    let s = shared.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let mut conn = 0;
            record(&s, |g| {
                g.connections += 1;
                conn = g.connections;
            });
            tokio::spawn(serve(sock, conn, on_qos1, s.clone()));
        }
    });
    (port, shared)
}

async fn write(sock: &mut TcpStream, p: Packet) -> std::io::Result<()> {
    let mut b = BytesMut::new();
    p.write(&mut b, 1 << 20).map_err(std::io::Error::other)?;
    sock.write_all(&b).await
}

/// One connection: CONNACK, PUBACKs, PINGRESPs; a SUBSCRIBE at QoS 1 is
/// closed on or refused; once a QoS 0 subscription is granted, a
/// `cmd/probe` is sent to the gateway.
async fn serve(mut sock: TcpStream, conn: u32, on_qos1: OnQos1, s: Shared) -> std::io::Result<()> {
    let mut buf = BytesMut::new();
    loop {
        let packet = match Packet::read(&mut buf, 1 << 20) {
            Ok(p) => p,
            Err(rumqttc::Error::InsufficientBytes(_)) => {
                if sock.read_buf(&mut buf).await? == 0 {
                    return Ok(());
                }
                continue;
            }
            Err(e) => return Err(std::io::Error::other(format!("{e:?}"))),
        };
        match packet {
            Packet::Connect(_) => {
                write(
                    &mut sock,
                    Packet::ConnAck(ConnAck::new(ConnectReturnCode::Success, false)),
                )
                .await?
            }
            Packet::Subscribe(sub) => {
                let mut codes = Vec::new();
                for f in &sub.filters {
                    let qos = f.qos as u8;
                    record(&s, |g| g.subscribes.push((conn, f.path.clone(), qos)));
                    let close = match on_qos1 {
                        OnQos1::Close => true,
                        OnQos1::CloseFirst => conn == 1,
                        OnQos1::Refuse => false,
                    };
                    if qos == 1 && close {
                        return Ok(()); // dropped: the socket closes, no SUBACK
                    }
                    codes.push(if qos == 1 && on_qos1 == OnQos1::CloseFirst {
                        SubscribeReasonCode::Success(QoS::AtLeastOnce)
                    } else if qos == 1 {
                        SubscribeReasonCode::Failure
                    } else {
                        SubscribeReasonCode::Success(QoS::AtMostOnce)
                    });
                }
                let granted = codes
                    .iter()
                    .any(|c| matches!(c, SubscribeReasonCode::Success(_)));
                write(&mut sock, Packet::SubAck(SubAck::new(sub.pkid, codes))).await?;
                if granted {
                    let cmd =
                        json!({"request_id": format!("r-{conn}"), "params": {"camera": "cam-1"}});
                    let p = Publish::new("tgw/v1/s/g/cmd/probe", QoS::AtMostOnce, cmd.to_string());
                    write(&mut sock, Packet::Publish(p)).await?;
                }
            }
            Packet::Publish(p) => {
                let payload = String::from_utf8_lossy(&p.payload).into_owned();
                record(&s, |g| g.publishes.push((conn, p.topic.clone(), payload)));
                if p.qos == QoS::AtLeastOnce {
                    write(&mut sock, Packet::PubAck(PubAck::new(p.pkid))).await?;
                }
            }
            Packet::PingReq => write(&mut sock, Packet::PingResp).await?,
            Packet::Disconnect => return Ok(()),
            _ => {}
        }
    }
}

struct Echo;

impl CommandHandler for Echo {
    fn handle(&self, command: Command) -> BoxFuture<'static, CommandReply> {
        Box::pin(async move { CommandReply::Result(json!({"method": command.method().as_str()})) })
    }
}

async fn start(port: u16, dir: &tempfile::TempDir) -> (Uplink, CancellationToken) {
    let text = format!(
        "[gateway]\nsite = \"s\"\nid = \"g\"\ndata_dir = \"{}\"\n\
         [township]\ncode = \"s\"\nname = \"S\"\n\
         [mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\nreconnect_min_ms = 10\n\
         reconnect_max_secs = 1\nkeep_alive_secs = 5\n",
        dir.path().display()
    );
    let cfg = crate::config::Config::parse(&text, "t.toml").unwrap();
    let shutdown = CancellationToken::new();
    let up = Uplink::start(
        &cfg,
        shutdown.clone(),
        Arc::new(Echo),
        crate::base::clock::system(),
    )
    .await
    .unwrap();
    (up, shutdown)
}

/// Waits until `f` holds, checking after every packet the broker
/// records; 10 s at most.
async fn until(s: &Shared, what: &str, mut f: impl FnMut() -> bool) {
    let done = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let changed = s.changed.notified();
            if f() {
                return;
            }
            changed.await;
        }
    })
    .await;
    assert!(done.is_ok(), "timed out waiting for {what}");
}

fn births(s: &Shared) -> Vec<(u32, Value)> {
    seen(s)
        .publishes
        .iter()
        .filter(|(_, t, _)| t == "tgw/v1/s/g/status")
        .filter_map(|(c, _, p)| Some((*c, serde_json::from_str(p).ok()?)))
        .collect()
}

fn replies(s: &Shared) -> Vec<(u32, Value)> {
    seen(s)
        .publishes
        .iter()
        .filter(|(_, t, _)| t.starts_with("tgw/v1/s/g/reply/"))
        .filter_map(|(c, _, p)| Some((*c, serde_json::from_str(p).ok()?)))
        .collect()
}

/// The RabbitMQ stranding: the broker closes on every QoS 1 SUBSCRIBE.
/// After the second such connection in a row, the next subscribes at QoS 0
/// and stays: the birth says `command_qos: 0`, health reaches the broker,
/// the command is answered, and no further connection follows (no
/// flapping).
#[tokio::test]
async fn a_broker_closing_on_the_qos_1_subscribe_gets_qos_0_next() {
    let (port, s) = broker(OnQos1::Close).await;
    let dir = tempfile::tempdir().unwrap();
    let (up, shutdown) = start(port, &dir).await;
    until(&s, "the reply to the command on connection 3", || {
        !replies(&s).is_empty()
    })
    .await;
    up.publisher()
        .camera_state("cam-1", json!({"verdict": "ok"}));
    until(&s, "a camera state on connection 3", || {
        seen(&s)
            .publishes
            .iter()
            .any(|(c, t, _)| *c == 3 && t.ends_with("/camera/cam-1/state"))
    })
    .await;
    let subs = seen(&s).subscribes.clone();
    let filter = "tgw/v1/s/g/cmd/+".to_string();
    assert_eq!(
        subs,
        [
            (1, filter.clone(), 1),
            (2, filter.clone(), 1),
            (3, filter, 0)
        ],
        "{subs:?}"
    );
    let b = births(&s);
    assert!(
        b.iter().all(|(c, _)| *c == 3),
        "a birth went through a closed connection: {b:?}"
    );
    assert_eq!(b[0].1["command_qos"], 0, "{b:?}");
    let r = replies(&s);
    assert_eq!(
        (r[0].0, r[0].1["request_id"].as_str()),
        (3, Some("r-3")),
        "{r:?}"
    );
    assert_eq!(r[0].1["status"], "result");
    let m: MetricsSnapshot = up.metrics();
    assert_eq!(m.command_qos, 0);
    assert_eq!(m.command_qos_downgrades, [1, 0]);
    assert_eq!((m.connections, m.connected), (3, 1));
    assert_eq!(seen(&s).connections, 3, "a connection after the QoS 0 one");
    shutdown.cancel();
    up.join().await;
}

/// A flaky uplink: the first connection is lost on its QoS 1 SUBSCRIBE,
/// the next one's is granted. The gateway stays at QoS 1 (birth
/// `command_qos: 1`, gauge 1), counts no downgrade, and answers the
/// command on connection 2.
#[tokio::test]
async fn one_connection_lost_on_the_qos_1_subscribe_keeps_qos_1() {
    let (port, s) = broker(OnQos1::CloseFirst).await;
    let dir = tempfile::tempdir().unwrap();
    let (up, shutdown) = start(port, &dir).await;
    until(&s, "the reply to the command on connection 2", || {
        !replies(&s).is_empty()
    })
    .await;
    let subs = seen(&s).subscribes.clone();
    let filter = "tgw/v1/s/g/cmd/+".to_string();
    assert_eq!(subs, [(1, filter.clone(), 1), (2, filter, 1)], "{subs:?}");
    let b = births(&s);
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!((b[0].0, &b[0].1["command_qos"]), (2, &json!(1)), "{b:?}");
    assert_eq!(replies(&s)[0].0, 2);
    let m: MetricsSnapshot = up.metrics();
    assert_eq!(m.command_qos, 1);
    assert_eq!(m.command_qos_downgrades, [0, 0]);
    assert_eq!((m.connections, m.connected), (2, 1));
    shutdown.cancel();
    up.join().await;
}

/// A SUBACK refusing QoS 1 (0x80): counted, and the filter subscribed
/// again at QoS 0 on the same connection — no reconnect — so the command
/// still arrives and is answered.
#[tokio::test]
async fn a_suback_refusing_qos_1_is_retried_at_qos_0_on_the_same_connection() {
    let (port, s) = broker(OnQos1::Refuse).await;
    let dir = tempfile::tempdir().unwrap();
    let (up, shutdown) = start(port, &dir).await;
    until(&s, "the reply to the command", || !replies(&s).is_empty()).await;
    let subs = seen(&s).subscribes.clone();
    assert_eq!(
        subs,
        [
            (1, "tgw/v1/s/g/cmd/+".to_string(), 1),
            (1, "tgw/v1/s/g/cmd/+".to_string(), 0)
        ]
    );
    assert_eq!(replies(&s)[0].0, 1);
    let m = up.metrics();
    assert_eq!(m.command_qos, 0);
    assert_eq!(m.command_qos_downgrades, [0, 1]);
    assert_eq!(m.command_subscriptions_refused, 1);
    assert_eq!((m.connections, m.connection_errors), (1, 0));
    shutdown.cancel();
    up.join().await;
}
