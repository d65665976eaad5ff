//! The 4G / cloud horn driver's IO: a small HTTP server handing out the
//! prepared WAV under a short-lived token, and an MQTT client that publishes
//! the `play` / `ping` commands and consumes the horn's status reports. A
//! cancelled broadcast publishes `stop` for its play and waits briefly
//! ([`STOP_WAIT`]) for the horn's `stopped`.
//! Messages and tokens are the pure [`crate::cloud`] core.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, NetworkOptions, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::drivers::{ErrorKind, Speaker, SpeakerError, StreamStats, err, io_kind, kind_err};
use super::{DriverOptions, SpeakerUri};
use crate::cloud::{self, Command, Lookup, Status, TokenTable};
use crate::g711::Codec;
use crate::local_error::{self, LocalResource};
use crate::onvif_client::{SystemClock, WallClock};

/// Aborts its task when dropped.
struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Conn {
    client: AsyncClient,
    status: mpsc::Receiver<Status>,
    _task: Task,
}

struct AudioServer {
    addr: SocketAddr,
    tokens: Arc<Mutex<TokenTable>>,
    _task: Task,
}

/// The audio servers in use, by configured address. Every cloud horn of a
/// broadcast is told to fetch from the same `serve` address, so they share
/// one listener and one token table (tokens are random per play); the last
/// horn to let go of it closes it. Port 0 asks for a server of one's own.
fn audio_servers() -> &'static tokio::sync::Mutex<HashMap<SocketAddr, Weak<AudioServer>>> {
    static SERVERS: OnceLock<tokio::sync::Mutex<HashMap<SocketAddr, Weak<AudioServer>>>> =
        OnceLock::new();
    SERVERS.get_or_init(Default::default)
}

/// The audio server on `serve`: the one already running there, or a new one.
async fn audio_server(serve: SocketAddr) -> std::io::Result<Arc<AudioServer>> {
    let mut servers = audio_servers().lock().await;
    servers.retain(|_, s| s.strong_count() > 0);
    if serve.port() != 0
        && let Some(s) = servers.get(&serve).and_then(Weak::upgrade)
    {
        return Ok(s);
    }
    let l = TcpListener::bind(serve).await?;
    let addr = l.local_addr()?;
    let tokens = Arc::new(Mutex::new(TokenTable::default()));
    let task = Task(tokio::spawn(serve_audio(l, tokens.clone())));
    let s = Arc::new(AudioServer {
        addr,
        tokens,
        _task: task,
    });
    if serve.port() != 0 {
        servers.insert(serve, Arc::downgrade(&s));
    }
    Ok(s)
}

/// A 4G / cloud horn (`cloud://HORN_ID@BROKER:PORT?serve=ADDR:PORT`).
pub struct CloudSpeaker {
    uri: SpeakerUri,
    opts: DriverOptions,
    conn: Option<Conn>,
    server: Option<Arc<AudioServer>>,
    t0: Option<Instant>,
    clock: Arc<dyn WallClock>,
}

impl CloudSpeaker {
    /// A driver for a `cloud://` URI (others fail with a usage error).
    pub fn new(uri: &SpeakerUri, opts: &DriverOptions) -> CloudSpeaker {
        CloudSpeaker {
            uri: uri.clone(),
            opts: opts.clone(),
            conn: None,
            server: None,
            t0: None,
            clock: Arc::new(SystemClock),
        }
    }

    fn parts(
        &self,
        op: &'static str,
    ) -> Result<(String, SocketAddr, SocketAddr, u8), SpeakerError> {
        match &self.uri {
            SpeakerUri::Cloud {
                horn_id,
                broker,
                serve,
                volume,
            } => Ok((horn_id.clone(), *broker, *serve, *volume)),
            _ => Err(err(&self.uri, op, ErrorKind::Usage, "not a cloud URI")),
        }
    }

    /// Connects to the broker and subscribes to the status topic; returns
    /// once the SUBACK is in.
    async fn connect(&mut self, op: &'static str) -> Result<(), SpeakerError> {
        if self.conn.is_some() {
            return Ok(());
        }
        let (horn_id, broker, _, _) = self.parts(op)?;
        let mut mo = MqttOptions::new(
            format!("tgw-{}", uuid::Uuid::new_v4().simple()),
            broker.ip().to_string(),
            broker.port(),
        );
        mo.set_keep_alive(Duration::from_secs(30));
        let (client, mut el) = AsyncClient::new(mo, 16);
        let mut net = NetworkOptions::new();
        net.set_connection_timeout(self.opts.answer_timeout.as_secs().max(1));
        el.set_network_options(net);
        let topic = cloud::status_topic(&horn_id);
        let (tx, rx) = mpsc::channel(64);
        let (ready_tx, ready_rx) =
            oneshot::channel::<Result<(), (String, Option<LocalResource>)>>();
        let t2 = topic.clone();
        let task = tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Incoming::SubAck(_))) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(Ok(()));
                        }
                    }
                    Ok(Event::Incoming(Incoming::Publish(p))) if p.topic == t2 => {
                        match Status::parse(&p.payload) {
                            Ok(s) => {
                                if tx.send(s).await.is_err() {
                                    break;
                                }
                            }
                            Err(e) => {
                                tracing::warn!(topic = %t2, error = %e, "ignoring horn status")
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(Err((e.to_string(), local_error::of_chain(&e))));
                            break;
                        }
                        tracing::warn!(error = %e, "cloud horn: MQTT connection lost; reconnecting");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
        let task = Task(task);
        client
            .subscribe(topic.clone(), QoS::AtLeastOnce)
            .await
            .map_err(|e| {
                err(
                    &self.uri,
                    op,
                    ErrorKind::Io,
                    format!("subscribing {topic}: {e}"),
                )
            })?;
        match tokio::time::timeout(self.opts.answer_timeout, ready_rx).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err((e, local)))) => {
                return Err(kind_err(
                    &self.uri,
                    op,
                    local.map_or(ErrorKind::Io, ErrorKind::Local),
                    format!("MQTT broker {broker}: {e}"),
                ));
            }
            Ok(Err(_)) => {
                return Err(err(&self.uri, op, ErrorKind::Io, "MQTT client stopped"));
            }
            Err(_) => {
                return Err(err(
                    &self.uri,
                    op,
                    ErrorKind::Timeout,
                    format!(
                        "MQTT broker {broker}: no SUBACK for {topic} within {:?}",
                        self.opts.answer_timeout
                    ),
                ));
            }
        }
        self.conn = Some(Conn {
            client,
            status: rx,
            _task: task,
        });
        Ok(())
    }

    async fn publish(&mut self, op: &'static str, cmd: &Command) -> Result<(), SpeakerError> {
        let (horn_id, ..) = self.parts(op)?;
        let conn = self
            .conn
            .as_ref()
            .ok_or_else(|| err(&self.uri, op, ErrorKind::Usage, "not connected"))?;
        let topic = cloud::cmd_topic(&horn_id);
        conn.client
            .publish(topic.clone(), QoS::AtLeastOnce, false, cmd.to_json())
            .await
            .map_err(|e| {
                err(
                    &self.uri,
                    op,
                    ErrorKind::Io,
                    format!("publishing to {topic}: {e}"),
                )
            })
    }

    async fn play(
        &mut self,
        pcm: &[i16],
        cancel: &CancellationToken,
    ) -> Result<StreamStats, SpeakerError> {
        let op = "stream";
        let (_, _, _, volume) = self.parts(op)?;
        let server = self
            .server
            .as_ref()
            .ok_or_else(|| err(&self.uri, op, ErrorKind::Usage, "stream before prepare"))?;
        let t0 = self.t0.unwrap_or_else(Instant::now);
        let duration = Duration::from_millis(pcm.len() as u64 / 8);
        let wav = Arc::new(cloud::wav_bytes(pcm, 8000));
        let octets = wav.len() as u64;
        let token = uuid::Uuid::new_v4().simple().to_string();
        let valid_until = (t0 + duration + cloud::TOKEN_GRACE).into_std();
        let path = match server.tokens.lock() {
            Ok(mut t) => t.insert(&token, wav, valid_until),
            Err(p) => p.into_inner().insert(&token, wav, valid_until),
        };
        let url = format!("http://{}{path}", server.addr);
        let now = Instant::now();
        let wall_now = self.clock.now_utc();
        let t0_wall = if t0 >= now {
            wall_now + (t0 - now)
        } else {
            wall_now - (now - t0)
        };
        let id = uuid::Uuid::new_v4().to_string();
        let cmd = Command::Play {
            id: id.clone(),
            url,
            t0: cloud::rfc3339_ms(t0_wall),
            volume,
            duration_ms: duration.as_millis() as u64,
        };
        self.publish(op, &cmd).await?;
        let deadline = t0.max(Instant::now()) + duration + self.opts.answer_timeout;
        let mut stats = StreamStats {
            packets: 0,
            octets: 0,
            first_sent: None,
            skipped_frames: 0,
            cancelled: false,
            heard: false,
        };
        let mut last = "none".to_string();
        let clock = self.clock.clone();
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| err(&self.uri, op, ErrorKind::Usage, "stream before prepare"))?;
        let cancelled = loop {
            let s = tokio::select! {
                _ = cancel.cancelled() => break true,
                _ = tokio::time::sleep_until(deadline) => {
                    let mut e = err(&self.uri, op, ErrorKind::Timeout, format!(
                        "no `done` from the horn by T0 + {} ms + {:?} (last state: {last})",
                        duration.as_millis(), self.opts.answer_timeout));
                    e.partial = Some(stats);
                    return Err(e);
                }
                s = conn.status.recv() => s,
            };
            let Some(s) = s else {
                let mut e = err(&self.uri, op, ErrorKind::Io, "MQTT client stopped");
                e.partial = Some(stats);
                return Err(e);
            };
            if s.id != id {
                continue;
            }
            last.clone_from(&s.state);
            match s.state.as_str() {
                "playing" => {
                    // The horn's own start: skew from T0 is known.
                    let now = Instant::now();
                    stats.first_sent = Some(match s.at_time() {
                        Some(at) => {
                            let ago = clock.now_utc() - at;
                            if ago.is_positive() {
                                now.checked_sub(ago.unsigned_abs()).unwrap_or(now)
                            } else {
                                now + ago.unsigned_abs()
                            }
                        }
                        None => now,
                    });
                }
                "done" => {
                    stats.packets = 1;
                    stats.octets = octets;
                    return Ok(stats);
                }
                "error" => {
                    let mut e = err(
                        &self.uri,
                        op,
                        ErrorKind::CloudError,
                        format!(
                            "the horn reported an error: {}",
                            s.detail.as_deref().unwrap_or("(no detail)")
                        ),
                    );
                    e.partial = Some(stats);
                    return Err(e);
                }
                _ => {}
            }
        };
        if cancelled {
            stats.cancelled = true;
            self.stop_play(&id).await;
        }
        Ok(stats)
    }

    /// A cancelled broadcast: publishes `stop` for the play `id` and waits
    /// up to [`STOP_WAIT`] (at most the answer timeout) for the horn's
    /// `stopped` (or a final `done` / `error`). Best effort: the outcome is
    /// logged, the play report stays "cancelled" either way.
    async fn stop_play(&mut self, id: &str) {
        let op = "stop";
        let sent = Instant::now();
        if let Err(e) = self
            .publish(op, &Command::Stop { id: id.to_string() })
            .await
        {
            tracing::warn!(speaker = %self.uri, error = %e, "cloud horn: stop not sent");
            return;
        }
        let wait = STOP_WAIT.min(self.opts.answer_timeout);
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let r = tokio::time::timeout(wait, async {
            while let Some(s) = conn.status.recv().await {
                if s.id == id && matches!(s.state.as_str(), "stopped" | "done" | "error") {
                    return Some(s.state);
                }
            }
            None
        })
        .await;
        match r {
            Ok(Some(state)) => tracing::info!(
                speaker = %self.uri, play = %id, state = %state,
                ms = sent.elapsed().as_millis() as u64, "cloud horn stopped"
            ),
            Ok(None) => {
                tracing::warn!(speaker = %self.uri, play = %id, "cloud horn: MQTT client stopped before the horn confirmed stop")
            }
            Err(_) => {
                tracing::warn!(speaker = %self.uri, play = %id, wait = ?wait, "cloud horn: no `stopped` status in time")
            }
        }
    }
}

/// How long a cancelled cloud play waits for the horn's `stopped`.
pub const STOP_WAIT: Duration = Duration::from_secs(2);

/// Serves the token table over HTTP/1.1 GET: 200 with the WAV, 410 for an
/// expired token, 404 for anything else.
async fn serve_audio(listener: TcpListener, tokens: Arc<Mutex<TokenTable>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let tokens = tokens.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(30), answer(stream, tokens)).await;
        });
    }
}

async fn answer(mut s: TcpStream, tokens: Arc<Mutex<TokenTable>>) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut chunk).await?;
        if n == 0 || buf.len() > 8192 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let mut first = head.lines().next().unwrap_or_default().split(' ');
    let (method, path) = (
        first.next().unwrap_or_default(),
        first.next().unwrap_or_default(),
    );
    let found = if method == "GET" {
        match tokens.lock() {
            Ok(mut t) => t.lookup(path, Instant::now().into_std()),
            Err(p) => p.into_inner().lookup(path, Instant::now().into_std()),
        }
    } else {
        Lookup::NotFound
    };
    let (status, body): (&str, &[u8]) = match &found {
        Lookup::Found(w) => ("200 OK", w.as_slice()),
        Lookup::Expired => ("410 Gone", b"token expired\n"),
        Lookup::NotFound => ("404 Not Found", b"not found\n"),
    };
    let ctype = if matches!(found, Lookup::Found(_)) {
        "audio/wav"
    } else {
        "text/plain"
    };
    s.write_all(
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await?;
    s.write_all(body).await?;
    s.shutdown().await
}

impl Speaker for CloudSpeaker {
    fn describe(&self) -> String {
        self.uri.to_string()
    }

    fn prepare(&mut self, _samples: usize) -> BoxFuture<'_, Result<(), SpeakerError>> {
        Box::pin(async move {
            let (_, _, serve, _) = self.parts("prepare")?;
            if self.server.is_none() {
                let server = audio_server(serve).await.map_err(|e| {
                    kind_err(
                        &self.uri,
                        "prepare",
                        io_kind(&e),
                        format!("serving audio on {serve}: {e}"),
                    )
                })?;
                self.server = Some(server);
            }
            self.connect("prepare").await
        })
    }

    fn start_at(&mut self, t0: Instant) {
        self.t0 = Some(t0);
    }

    fn stream<'a>(
        &'a mut self,
        pcm: &'a [i16],
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<StreamStats, SpeakerError>> {
        Box::pin(self.play(pcm, cancel))
    }

    fn stop(&mut self) -> BoxFuture<'_, Result<(), SpeakerError>> {
        Box::pin(async move {
            if let Some(c) = self.conn.take() {
                let _ = c.client.disconnect().await;
            }
            self.server = None;
            Ok(())
        })
    }

    fn health_check(&mut self) -> BoxFuture<'_, Result<String, SpeakerError>> {
        Box::pin(async move {
            let op = "health check";
            self.connect(op).await?;
            let id = uuid::Uuid::new_v4().to_string();
            let sent = Instant::now();
            self.publish(op, &Command::Ping { id: id.clone() }).await?;
            let wait = self.opts.answer_timeout;
            let conn = self
                .conn
                .as_mut()
                .ok_or_else(|| err(&self.uri, op, ErrorKind::Usage, "not connected"))?;
            let r = tokio::time::timeout(wait, async {
                while let Some(s) = conn.status.recv().await {
                    if s.state == "pong" && (s.id == id || s.id.is_empty()) {
                        return true;
                    }
                }
                false
            })
            .await;
            match r {
                Ok(true) => Ok(format!("pong in {} ms", sent.elapsed().as_millis())),
                Ok(false) => Err(err(&self.uri, op, ErrorKind::Io, "MQTT client stopped")),
                Err(_) => Err(err(
                    &self.uri,
                    op,
                    ErrorKind::Timeout,
                    format!("no pong within {wait:?}"),
                )),
            }
        })
    }

    fn codec(&self) -> Option<Codec> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        String::from_utf8_lossy(&out)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    }

    /// The audio server: a live token is served, after T0 + duration + 60 s
    /// it is 410, an unknown token or path 404 (tokio's paused clock).
    #[tokio::test(start_paused = true)]
    async fn audio_server_expires_tokens() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let tokens = Arc::new(Mutex::new(TokenTable::default()));
        let _t = Task(tokio::spawn(serve_audio(l, tokens.clone())));
        let until = (Instant::now() + Duration::from_secs(61)).into_std();
        let path =
            tokens
                .lock()
                .unwrap()
                .insert("tok", Arc::new(cloud::wav_bytes(&[0; 8], 8000)), until);
        assert_eq!(get(addr, &path).await, "HTTP/1.1 200 OK");
        assert_eq!(get(addr, "/audio/nope.wav").await, "HTTP/1.1 404 Not Found");
        assert_eq!(get(addr, "/").await, "HTTP/1.1 404 Not Found");
        tokio::time::advance(Duration::from_secs(62)).await;
        assert_eq!(get(addr, &path).await, "HTTP/1.1 410 Gone");
    }

    /// Horns told to serve on one address share its server (a broadcast
    /// to several cloud horns used to fail on the second with "address in
    /// use"); once the last lets go, the address is free to bind again.
    #[tokio::test]
    async fn horns_on_one_serve_address_share_its_server() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let serve = free.local_addr().unwrap();
        drop(free);
        let a = audio_server(serve).await.unwrap();
        let b = audio_server(serve).await.unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.addr, serve);
        let path = a.tokens.lock().unwrap().insert(
            "shared",
            Arc::new(cloud::wav_bytes(&[0; 8], 8000)),
            (Instant::now() + Duration::from_secs(60)).into_std(),
        );
        // A token issued through one horn is served to the other's listener.
        assert_eq!(get(b.addr, &path).await, "HTTP/1.1 200 OK");
        // Port 0: a server of its own.
        let own = audio_server("127.0.0.1:0".parse().unwrap()).await.unwrap();
        assert!(!Arc::ptr_eq(&own, &a));
        drop((a, b));
        // The listener closes once the runtime has run the aborted task.
        let mut again = None;
        for _ in 0..100 {
            tokio::task::yield_now().await;
            if let Ok(s) = audio_server(serve).await {
                again = Some(s);
                break;
            }
        }
        assert_eq!(again.expect("address free again").addr, serve);
    }

    /// No broker listening: prepare fails with an error naming the broker.
    #[tokio::test]
    async fn no_broker_is_an_io_error() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let uri: SpeakerUri = format!("cloud://h1@127.0.0.1:{port}").parse().unwrap();
        let mut sp = CloudSpeaker::new(&uri, &DriverOptions::default());
        let e = sp.prepare(8).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Io, "{e}");
        assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    }
}
