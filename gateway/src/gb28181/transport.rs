//! SIP transports of the GB/T 28181 task: the UDP socket on `listen`, one
//! outbound TCP connection per `transport = "tcp"` platform (made again
//! with backoff when it drops; each new connection starts the registration
//! afresh), and inbound TCP on the same `listen` address for platforms that
//! send their requests over their own connection. Messages are cut from the
//! streams by `device_drivers::gb28181::stream` (64 KiB cap; a stream that
//! breaks framing is closed). Everything arrives as one [`Inbound`] stream.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use device_drivers::gb28181::register::Registration;
use device_drivers::gb28181::stream::{Frame, Framer};
use device_drivers::sip;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Svc;
use crate::base::error::{Error, ErrorKind};

/// How long a TCP connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one write may stall before the connection is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// First reconnect delay; doubles per failure up to [`RECONNECT_MAX`].
const RECONNECT_FIRST: Duration = Duration::from_secs(1);
/// Longest reconnect delay.
const RECONNECT_MAX: Duration = Duration::from_secs(60);
/// A connection that lasted this long resets the backoff.
const STABLE: Duration = Duration::from_secs(30);
/// Inbound TCP connections held at once (more are closed at accept).
const MAX_INBOUND: usize = 16;
/// An inbound connection silent this long is closed.
const INBOUND_IDLE: Duration = Duration::from_secs(600);
/// Messages queued for one connection before sends are dropped.
const QUEUE: usize = 256;

/// What the transports hand the task.
pub(super) enum Inbound {
    /// A SIP message: a datagram, or one cut from a stream.
    Sip {
        /// The bytes.
        data: Vec<u8>,
        /// The peer (for TCP: the connection's peer address).
        from: SocketAddr,
    },
    /// Receiving on the UDP socket failed.
    UdpError(String),
    /// The outbound connection to platform `platform` is up.
    Up {
        /// Index in the configuration.
        platform: usize,
    },
    /// It dropped, or could not be made; the next try follows a backoff.
    Down {
        /// Index in the configuration.
        platform: usize,
        /// Why.
        error: String,
    },
}

type Conns = Arc<Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>>;

/// The sockets and connections.
pub(super) struct Transport {
    udp: Arc<UdpSocket>,
    /// Open TCP connections by peer address, to their writers.
    conns: Conns,
    /// Platform addresses reached over TCP only.
    tcp_peers: HashSet<SocketAddr>,
    tx: mpsc::Sender<Inbound>,
    rx: mpsc::Receiver<Inbound>,
    stop: CancellationToken,
}

fn lock(c: &Conns) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>> {
    c.lock().unwrap_or_else(|p| p.into_inner())
}

impl Transport {
    /// Binds UDP on `listen`, and TCP on the address UDP got (a TCP bind
    /// failure only costs inbound TCP, with a log line).
    pub(super) async fn bind(listen: SocketAddr) -> Result<(Transport, SocketAddr), Error> {
        let udp = UdpSocket::bind(listen).await.map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("gb28181.listen {listen}: cannot bind: {e}"),
            )
        })?;
        let bound = udp
            .local_addr()
            .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?;
        let (tx, rx) = mpsc::channel(1024);
        let t = Transport {
            udp: Arc::new(udp),
            conns: Arc::default(),
            tcp_peers: HashSet::new(),
            tx,
            rx,
            stop: CancellationToken::new(),
        };
        match TcpListener::bind(bound).await {
            Ok(l) => {
                tokio::spawn(accept(l, t.conns.clone(), t.tx.clone(), t.stop.clone()));
            }
            Err(e) => {
                tracing::warn!(listen = %bound, error = %e, "GB/T 28181: no inbound SIP over TCP (cannot bind)");
            }
        }
        Ok((t, bound))
    }

    /// Keeps a TCP connection to platform `platform` at `addr`.
    pub(super) fn connect(&mut self, platform: usize, addr: SocketAddr) {
        self.tcp_peers.insert(addr);
        tokio::spawn(outbound(
            platform,
            addr,
            self.conns.clone(),
            self.tx.clone(),
            self.stop.clone(),
        ));
    }

    /// Sends `bytes` to `to`: over its TCP connection when there is one,
    /// dropped when `to` is a TCP platform not connected now, else UDP.
    pub(super) async fn send(&self, to: SocketAddr, bytes: &[u8]) {
        send_via(&self.udp, &self.conns, &self.tcp_peers, to, bytes).await;
    }

    /// A handle that sends as [`Transport::send`] does, for tasks of their
    /// own (a voice broadcast call's INVITE, ACK and BYE).
    pub(super) fn sender(&self) -> Sender {
        Sender {
            udp: self.udp.clone(),
            conns: self.conns.clone(),
            tcp_peers: Arc::new(self.tcp_peers.clone()),
        }
    }

    /// The next message or connection event (cancel-safe).
    pub(super) async fn recv(&mut self, buf: &mut [u8]) -> Inbound {
        tokio::select! {
            r = self.udp.recv_from(buf) => match r {
                Ok((n, from)) => Inbound::Sip { data: buf[..n].to_vec(), from },
                Err(e) => Inbound::UdpError(e.to_string()),
            },
            Some(m) = self.rx.recv() => m,
        }
    }

    /// Closes every connection.
    pub(super) fn close(&self) {
        self.stop.cancel();
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Sends through the service's sockets from another task.
#[derive(Clone)]
pub(super) struct Sender {
    udp: Arc<UdpSocket>,
    conns: Conns,
    tcp_peers: Arc<HashSet<SocketAddr>>,
}

impl Sender {
    /// As [`Transport::send`].
    pub(super) async fn send(&self, to: SocketAddr, bytes: &[u8]) {
        send_via(&self.udp, &self.conns, &self.tcp_peers, to, bytes).await;
    }
}

async fn send_via(
    udp: &UdpSocket,
    conns: &Conns,
    tcp_peers: &HashSet<SocketAddr>,
    to: SocketAddr,
    bytes: &[u8],
) {
    let conn = lock(conns).get(&to).cloned();
    match conn {
        Some(w) => {
            if let Err(e) = w.try_send(bytes.to_vec()) {
                tracing::warn!(peer = %to, error = %e, "GB/T 28181: TCP send queue full or closed; message dropped");
            }
        }
        None if tcp_peers.contains(&to) => {
            tracing::debug!(peer = %to, "GB/T 28181: not connected over TCP; message dropped");
        }
        None => {
            if let Err(e) = udp.send_to(bytes, to).await {
                tracing::warn!(peer = %to, error = %e, "GB/T 28181: send failed");
            }
        }
    }
}

/// The delay before reconnect attempt number `failures` (1, 2, 4 … 60 s).
fn reconnect_delay(failures: u32) -> Duration {
    (RECONNECT_FIRST * 2u32.saturating_pow(failures.saturating_sub(1).min(10))).min(RECONNECT_MAX)
}

async fn outbound(
    platform: usize,
    addr: SocketAddr,
    conns: Conns,
    tx: mpsc::Sender<Inbound>,
    stop: CancellationToken,
) {
    let mut failures = 0u32;
    loop {
        let r = tokio::select! {
            _ = stop.cancelled() => return,
            r = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)) => r,
        };
        let error = match r {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                let (wtx, wrx) = mpsc::channel(QUEUE);
                lock(&conns).insert(addr, wtx.clone());
                tracing::info!(peer = %addr, "GB/T 28181: TCP connected");
                if tx.send(Inbound::Up { platform }).await.is_err() {
                    return;
                }
                let started = Instant::now();
                let why = serve(stream, addr, wrx, &tx, &stop, None).await;
                {
                    let mut c = lock(&conns);
                    if c.get(&addr).is_some_and(|w| w.same_channel(&wtx)) {
                        c.remove(&addr);
                    }
                }
                if started.elapsed() >= STABLE {
                    failures = 0;
                }
                format!("TCP connection to {addr} lost: {why}")
            }
            Ok(Err(e)) => format!("TCP connect to {addr}: {e}"),
            Err(_) => format!(
                "TCP connect to {addr}: no answer in {} s",
                CONNECT_TIMEOUT.as_secs()
            ),
        };
        if stop.is_cancelled() {
            return;
        }
        if tx.send(Inbound::Down { platform, error }).await.is_err() {
            return;
        }
        failures += 1;
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(reconnect_delay(failures)) => {}
        }
    }
}

async fn accept(l: TcpListener, conns: Conns, tx: mpsc::Sender<Inbound>, stop: CancellationToken) {
    let live = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            r = l.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "GB/T 28181: TCP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        use std::sync::atomic::Ordering;
        if live.load(Ordering::Relaxed) >= MAX_INBOUND {
            tracing::warn!(peer = %peer, max = MAX_INBOUND, "GB/T 28181: too many inbound TCP connections; closed");
            continue;
        }
        live.fetch_add(1, Ordering::Relaxed);
        let (wtx, wrx) = mpsc::channel(QUEUE);
        lock(&conns).insert(peer, wtx);
        let (conns, tx, stop, live) = (conns.clone(), tx.clone(), stop.clone(), live.clone());
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let why = serve(stream, peer, wrx, &tx, &stop, Some(INBOUND_IDLE)).await;
            tracing::debug!(peer = %peer, reason = %why, "GB/T 28181: inbound TCP closed");
            lock(&conns).remove(&peer);
            live.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Reads messages into `tx` and writes `wrx` out until the connection
/// ends; returns why it ended.
async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    mut wrx: mpsc::Receiver<Vec<u8>>,
    tx: &mpsc::Sender<Inbound>,
    stop: &CancellationToken,
    idle: Option<Duration>,
) -> String {
    let (mut rd, mut wr) = stream.into_split();
    let mut framer = Framer::new(sip::MAX_MESSAGE);
    let mut buf = vec![0u8; 16 * 1024];
    let mut deadline = idle.map(|d| Instant::now() + d);
    loop {
        let idle_until = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
        let out = tokio::select! {
            _ = stop.cancelled() => return "stopped".into(),
            _ = tokio::time::sleep_until(idle_until), if deadline.is_some() => {
                return "idle".into();
            }
            r = rd.read(&mut buf) => match r {
                Ok(0) => return "closed by the peer".into(),
                Err(e) => return e.to_string(),
                Ok(n) => {
                    deadline = idle.map(|d| Instant::now() + d);
                    framer.push(&buf[..n]);
                    let mut pong = false;
                    loop {
                        match framer.next_frame() {
                            Ok(Some(Frame::Message(data))) => {
                                if tx.send(Inbound::Sip { data, from: peer }).await.is_err() {
                                    return "stopped".into();
                                }
                            }
                            Ok(Some(Frame::Ping)) => pong = true,
                            Ok(None) => break,
                            Err(e) => {
                                tracing::warn!(peer = %peer, error = %e, "GB/T 28181: unreadable SIP stream; closing it");
                                return e.to_string();
                            }
                        }
                    }
                    pong.then(|| b"\r\n".to_vec())
                }
            },
            m = wrx.recv() => match m {
                Some(b) => Some(b),
                None => return "closed".into(),
            },
        };
        if let Some(b) = out {
            match tokio::time::timeout(WRITE_TIMEOUT, wr.write_all(&b)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return e.to_string(),
                Err(_) => return format!("a write stalled for {} s", WRITE_TIMEOUT.as_secs()),
            }
        }
    }
}

impl Svc {
    /// A transport event: SIP goes to [`Svc::datagram`]; a TCP platform's
    /// connection coming up starts its registration afresh, and going down
    /// stops it (`unreachable`, the reason in the status) until the next
    /// connection.
    pub(super) async fn inbound(&mut self, ev: Inbound) {
        match ev {
            Inbound::Sip { data, from } => self.datagram(&data, from).await,
            Inbound::UdpError(e) => tracing::warn!(error = %e, "GB/T 28181: receive failed"),
            Inbound::Up { platform: i } => {
                let Some(p) = self.platforms.get_mut(i) else {
                    return;
                };
                let mut rc = p.reg.config().clone();
                rc.seed = rand::random::<u64>();
                p.reg = Registration::new(rc, self.t0.elapsed());
                p.link_up = true;
                self.tick(i).await;
            }
            Inbound::Down { platform: i, error } => {
                let Some(p) = self.platforms.get_mut(i) else {
                    return;
                };
                if p.link_up {
                    tracing::warn!(platform = %p.name, error = %error, "GB/T 28181: connection to the platform lost; reconnecting");
                } else {
                    tracing::debug!(platform = %p.name, error = %error, "GB/T 28181: platform not reachable over TCP");
                }
                p.link_up = false;
                let rc = p.reg.config().clone();
                p.reg = Registration::new(rc, self.t0.elapsed());
                self.update_status(i, |s| {
                    s.state = "unreachable";
                    s.reason = Some(error);
                    s.missed_keepalives = 0;
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Backoff: 1, 2, 4 … capped at 60 s.
    #[test]
    fn reconnect_backoff_doubles_to_a_minute() {
        let d: Vec<u64> = (1..=8).map(|f| reconnect_delay(f).as_secs()).collect();
        assert_eq!(d, vec![1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(reconnect_delay(1000).as_secs(), 60);
    }

    /// Over a loopback TCP pair: a message written in two pieces arrives
    /// whole; a connection breaking the framing (no Content-Length) is
    /// closed with the reason; an outbound connection whose peer goes away
    /// reports `Down` and comes `Up` again when the peer is back.
    #[tokio::test]
    async fn streams_frames_and_reconnects() {
        let (mut t, bound) = Transport::bind("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind");
        let mut buf = vec![0u8; 2048];
        // Inbound: a message in two writes.
        let mut c = TcpStream::connect(bound).await.expect("connect");
        c.write_all(b"OPTIONS sip:a SIP/2.0\r\nContent-Le")
            .await
            .expect("w");
        c.flush().await.expect("flush");
        c.write_all(b"ngth: 2\r\n\r\nok").await.expect("w");
        let Inbound::Sip { data, from } = t.recv(&mut buf).await else {
            panic!("a message")
        };
        assert!(data.ends_with(b"\r\n\r\nok"));
        assert_eq!(from, c.local_addr().expect("local"));
        // Our answer goes back on the same connection.
        t.send(from, b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n")
            .await;
        let mut got = [0u8; 64];
        let n = c.read(&mut got).await.expect("read");
        assert!(got[..n].starts_with(b"SIP/2.0 200 OK"));
        // Garbage framing: closed.
        c.write_all(b"OPTIONS sip:a SIP/2.0\r\nCall-ID: x\r\n\r\n")
            .await
            .expect("w");
        assert_eq!(c.read(&mut got).await.expect("eof"), 0);
        // Outbound to a listener that goes away and comes back.
        let l = TcpListener::bind("127.0.0.1:0").await.expect("listen");
        let addr = l.local_addr().expect("addr");
        t.connect(3, addr);
        let (s, _) = l.accept().await.expect("accept");
        assert!(matches!(
            t.recv(&mut buf).await,
            Inbound::Up { platform: 3 }
        ));
        drop(s);
        drop(l);
        let Inbound::Down { platform: 3, error } = t.recv(&mut buf).await else {
            panic!("down")
        };
        assert!(error.contains("lost"), "{error}");
        // Sends while down are dropped, not sent over UDP.
        t.send(addr, b"x").await;
        let l = TcpListener::bind(addr).await.expect("listen again");
        let (_s, _) = l.accept().await.expect("accept again");
        loop {
            match t.recv(&mut buf).await {
                Inbound::Up { platform: 3 } => break,
                Inbound::Down { .. } => continue,
                _ => panic!("unexpected"),
            }
        }
        t.close();
    }
}
