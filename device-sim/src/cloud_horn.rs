//! A simulated 4G / cloud horn: an MQTT client on `horn/{id}/cmd` that, on
//! `play`, downloads the WAV URL (plain HTTP GET, loopback only), waits until
//! T0, "plays" it into the Goertzel tone detector and reports
//! `downloading` → `playing` (at = its actual start) → `done` on
//! `horn/{id}/status`; `ping` is answered with `pong`; `stop` (naming a
//! play) ends that play at once, before or during playback, reported as
//! `stopped` (the audio heard so far stays in the report). Faults:
//! `offline` and `hang` never answer; `refuse:CODE` reports a download error.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use device_drivers::cloud::{self, Command, Status};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::fault::Fault;
use crate::server::{SpeakerNode, lock};

/// Largest WAV a simulated cloud horn downloads.
const MAX_DOWNLOAD: usize = 16 << 20;

/// Plays in progress, by command id: cancelling one stops it.
type Plays = Arc<Mutex<HashMap<String, CancellationToken>>>;

/// Runs one cloud horn connected to `broker` until `shutdown`.
pub(crate) async fn run_cloud(
    node: Arc<SpeakerNode>,
    broker: SocketAddr,
    shutdown: CancellationToken,
) {
    let mut fault_rx = node.fault.subscribe();
    let cmd_topic = cloud::cmd_topic(&node.id);
    let plays: Plays = Arc::default();
    'outer: loop {
        if matches!(*fault_rx.borrow_and_update(), Some(Fault::Offline)) {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                r = fault_rx.changed() => if r.is_err() { break },
            }
            continue;
        }
        let mut mo = MqttOptions::new(
            format!("sim-{}", node.id),
            broker.ip().to_string(),
            broker.port(),
        );
        mo.set_keep_alive(Duration::from_secs(30));
        let (client, mut el) = AsyncClient::new(mo, 16);
        if client
            .subscribe(cmd_topic.clone(), QoS::AtLeastOnce)
            .await
            .is_err()
        {
            break;
        }
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break 'outer,
                r = fault_rx.changed() => {
                    if r.is_err() { break 'outer }
                    if matches!(*fault_rx.borrow(), Some(Fault::Offline)) {
                        continue 'outer;
                    }
                }
                ev = el.poll() => match ev {
                    Ok(Event::Incoming(Incoming::Publish(p))) if p.topic == cmd_topic => {
                        let fault = fault_rx.borrow().clone();
                        let (n, c) = (node.clone(), client.clone());
                        let t = shutdown.child_token();
                        match Command::parse(&p.payload) {
                            Ok(cmd) => {
                                let stop = CancellationToken::new();
                                if let Command::Play { id, .. } = &cmd {
                                    lock(&plays).insert(id.clone(), stop.clone());
                                }
                                let plays = plays.clone();
                                tokio::spawn(async move {
                                    let id = match &cmd {
                                        Command::Play { id, .. } => Some(id.clone()),
                                        _ => None,
                                    };
                                    tokio::select! {
                                        _ = t.cancelled() => {}
                                        _ = on_command(n, c, cmd, fault, stop, &plays) => {}
                                    }
                                    if let Some(id) = id {
                                        lock(&plays).remove(&id);
                                    }
                                });
                            }
                            Err(e) => lock(&node.stats).event(format!("bad command: {e}")),
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(device = %node.id, error = %e, "cloud horn: MQTT connection failed; retrying");
                        tokio::select! {
                            _ = shutdown.cancelled() => break 'outer,
                            _ = tokio::time::sleep(Duration::from_millis(300)) => {}
                        }
                    }
                },
            }
        }
    }
}

async fn report(
    node: &SpeakerNode,
    client: &AsyncClient,
    id: &str,
    state: &str,
    detail: Option<String>,
) {
    let s = Status {
        id: id.to_string(),
        state: state.to_string(),
        at: Some(cloud::rfc3339_ms(node.clock.now_utc())),
        detail,
    };
    lock(&node.stats).event(state.to_string());
    let _ = client
        .publish(
            cloud::status_topic(&node.id),
            QoS::AtLeastOnce,
            false,
            s.to_json(),
        )
        .await;
}

/// Handles one command. A play runs until done, or until `stop` fires (a
/// `stop` command naming it; the play task itself reports `stopped`).
async fn on_command(
    node: Arc<SpeakerNode>,
    client: AsyncClient,
    cmd: Command,
    fault: Option<Fault>,
    stop: CancellationToken,
    plays: &Plays,
) {
    if matches!(fault, Some(Fault::Offline | Fault::Hang)) {
        return;
    }
    match cmd {
        Command::Ping { id } => report(&node, &client, &id, "pong", None).await,
        Command::Stop { id } => {
            lock(&node.stats).event("stop");
            let running = lock(plays).get(&id).cloned();
            match running {
                Some(t) => t.cancel(),
                None => {
                    let d = Some("nothing playing under this id".to_string());
                    report(&node, &client, &id, "stopped", d).await;
                }
            }
        }
        Command::Play { id, url, t0, .. } => {
            tokio::select! {
                _ = play(&node, &client, &id, &url, &t0, fault.as_ref()) => {}
                _ = stop.cancelled() => report(&node, &client, &id, "stopped", None).await,
            }
        }
    }
}

/// Downloads and plays one WAV: reports `downloading`, waits for T0,
/// reports `playing` and feeds the audio to the detector in real time
/// (200 ms chunks), then reports `done`. Dropped when the play is stopped.
async fn play(
    node: &SpeakerNode,
    client: &AsyncClient,
    id: &str,
    url: &str,
    t0: &str,
    fault: Option<&Fault>,
) {
    lock(&node.stats).event("play");
    report(node, client, id, "downloading", None).await;
    if let Some(Fault::Refuse(code)) = fault {
        let d = format!("download failed: HTTP {code} (fault)");
        report(node, client, id, "error", Some(d)).await;
        return;
    }
    let pcm = match download(url)
        .await
        .and_then(|b| cloud::parse_wav(&b).map_err(|e| format!("{url}: {e}")))
    {
        Ok((8000, pcm)) => pcm,
        Ok((rate, _)) => {
            let d = format!("{url}: {rate} Hz, expected 8000");
            report(node, client, id, "error", Some(d)).await;
            return;
        }
        Err(e) => {
            report(node, client, id, "error", Some(e)).await;
            return;
        }
    };
    let Some(t0) = cloud::parse_rfc3339(t0) else {
        let d = format!("bad t0 {t0:?}");
        report(node, client, id, "error", Some(d)).await;
        return;
    };
    let wait = t0 - node.clock.now_utc();
    if wait.is_positive() {
        tokio::time::sleep(wait.unsigned_abs()).await;
    }
    report(node, client, id, "playing", None).await;
    lock(&node.stats).report_mut().http_streams += 1;
    const CHUNK: usize = 1600; // 200 ms at 8 kHz
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    for chunk in pcm.chunks(CHUNK) {
        tick.tick().await;
        let at = node.clock.now_utc();
        lock(&node.stats).on_pcm(chunk, at);
    }
    // The last chunk plays out too.
    tick.tick().await;
    report(node, client, id, "done", None).await;
}

/// `http://IP:PORT/PATH` → the body of a 200 answer. Loopback only.
async fn download(url: &str) -> Result<Vec<u8>, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: not an http:// URL"))?;
    let (hp, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr: SocketAddr = hp
        .parse()
        .map_err(|_| format!("{url}: host is not IP:PORT"))?;
    let loopback = match addr.ip() {
        IpAddr::V4(v) => v.is_loopback(),
        IpAddr::V6(v) => v.is_loopback(),
    };
    if !loopback {
        return Err(format!("{url}: the simulator only fetches from loopback"));
    }
    let fetch = async {
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("{url}: connect: {e}"))?;
        let path = if path.is_empty() { "/" } else { path };
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {hp}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .map_err(|e| format!("{url}: send: {e}"))?;
        let mut out = Vec::new();
        (&mut s)
            .take(MAX_DOWNLOAD as u64 + 4096)
            .read_to_end(&mut out)
            .await
            .map_err(|e| format!("{url}: read: {e}"))?;
        Ok::<_, String>(out)
    };
    let out = tokio::time::timeout(Duration::from_secs(10), fetch)
        .await
        .map_err(|_| format!("{url}: no answer within 10 s"))??;
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("{url}: no HTTP header end"))?;
    let head = String::from_utf8_lossy(&out[..split]);
    let status = head.lines().next().unwrap_or_default();
    if status.split(' ').nth(1) != Some("200") {
        return Err(format!("download failed: {url}: {status}"));
    }
    Ok(out[split + 4..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The simulator refuses to fetch from anything but loopback, and names
    /// the URL in its errors.
    #[tokio::test]
    async fn downloads_only_from_loopback() {
        let e = download("http://10.1.2.3:80/a.wav").await.unwrap_err();
        assert!(e.contains("loopback"), "{e}");
        let e = download("ftp://127.0.0.1/a").await.unwrap_err();
        assert!(e.contains("not an http"), "{e}");
        let e = download("http://horn.local:80/a").await.unwrap_err();
        assert!(e.contains("IP:PORT"), "{e}");
    }
}
