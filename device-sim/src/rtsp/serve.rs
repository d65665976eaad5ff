//! The tokio IO of one RTSP connection around the pure [`super::Conn`]: reads
//! requests (skipping interleaved RTCP from the client), writes answers, and
//! while playing sends one frame per tick of a single `tokio::time::Interval`
//! (interleaved on the connection, or over UDP). Fault changes take effect on
//! the next frame. A connection with no session traffic for
//! [`IDLE_TIMEOUT`] while not playing is closed; one whose peer stops
//! reading for [`WRITE_TIMEOUT`] too.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tracing::debug;

use super::{
    Action, Conn, ConnCtx, Incoming, Pace, RequestedTransport, Response, Streamer, VideoTransport,
    parse_incoming, parse_transport, server_banner,
};
use crate::fault::Fault;
use crate::server::CameraNode;

/// Close a connection that is not playing after this long without a request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(2 * super::SESSION_TIMEOUT_S);
/// Close a connection whose peer has not taken a write for this long.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

struct Playing {
    streamer: Streamer,
    pace: Pace,
    interval: Interval,
    stream: usize,
    transport: VideoTransport,
}

fn interval_for(pace: Pace) -> Interval {
    let mut i = tokio::time::interval(pace.period());
    i.set_missed_tick_behavior(MissedTickBehavior::Delay);
    i
}

async fn tick(p: Option<&mut Playing>) {
    match p {
        Some(p) => {
            p.interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

fn camera_unix(node: &CameraNode, fault: Option<&Fault>) -> i64 {
    let now = node.clock.now_utc().unix_timestamp();
    match fault {
        Some(Fault::ClockSkew(s)) => now + s,
        _ => now,
    }
}

async fn write(wr: &mut OwnedWriteHalf, bytes: &[u8]) -> bool {
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, wr.write_all(bytes)).await,
        Ok(Ok(()))
    )
}

/// Serves one RTSP connection until the peer leaves, TEARDOWN, an error, or
/// the task is aborted (camera offline / shutdown).
pub(crate) async fn serve_conn(
    node: Arc<CameraNode>,
    stream: TcpStream,
    peer: SocketAddr,
    seed: u64,
) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let id = node.cam.id.as_str();
    let server = server_banner(node.cam.flavour);
    let mut buf: Vec<u8> = Vec::with_capacity(2048);
    let mut conn = Conn::new(seed);
    let mut fault_rx = node.fault.subscribe();
    let mut play: Option<Playing> = None;
    let mut udp: Option<UdpSocket> = None;
    let mut idle_at = Instant::now() + IDLE_TIMEOUT;
    let mut out: Vec<u8> = Vec::new();
    loop {
        tokio::select! {
            r = rd.read_buf(&mut buf) => {
                match r {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                idle_at = Instant::now() + IDLE_TIMEOUT;
                loop {
                    let (req, used) = match parse_incoming(&buf) {
                        Ok(None) => break,
                        Ok(Some((Incoming::Interleaved { .. }, used))) => {
                            buf.drain(..used);
                            continue;
                        }
                        Ok(Some((Incoming::Request(req), used))) => (req, used),
                        Err(e) => {
                            debug!(device = %id, %peer, error = %e, "RTSP garbage; closing");
                            let _ = write(&mut wr, &Response::new(400).to_bytes(None, server)).await;
                            return;
                        }
                    };
                    buf.drain(..used);
                    let fault = fault_rx.borrow().clone();
                    let wants_udp = req.method == "SETUP"
                        && matches!(
                            req.header("Transport").and_then(parse_transport),
                            Some(RequestedTransport::Udp { .. })
                        );
                    if wants_udp && udp.is_none() {
                        match UdpSocket::bind(SocketAddr::from((node.cam.ip, 0))).await {
                            Ok(u) => udp = Some(u),
                            Err(e) => debug!(device = %id, error = %e, "RTSP UDP bind failed"),
                        }
                    }
                    let udp_port = if wants_udp {
                        udp.as_ref().and_then(|u| u.local_addr().ok()).map(|a| a.port())
                    } else {
                        None
                    };
                    let ctx = ConnCtx {
                        camera: &node.cam,
                        fault: fault.as_ref(),
                        clips: &node.clips,
                        now_unix: camera_unix(&node, fault.as_ref()),
                        digest_secret: &node.digest_secret,
                        udp_port,
                    };
                    let (resp, action) = conn.handle(&ctx, &req);
                    debug!(device = %id, %peer, method = %req.method, status = resp.status, "RTSP");
                    if !write(&mut wr, &resp.to_bytes(req.header("CSeq"), server)).await {
                        return;
                    }
                    match action {
                        Action::None => {}
                        Action::Close => return,
                        Action::Pause => play = None,
                        Action::Play => {
                            if play.is_none()
                                && let Some(s) = &conn.session
                                && let Some(transport) = s.video
                            {
                                let clip = node.clips.get(s.stream);
                                let pace = Pace::of(clip, fault.as_ref());
                                let loss_seed = crate::camera::splitmix64(seed ^ 0x5eed);
                                play = Some(Playing {
                                    streamer: Streamer::new(s, loss_seed),
                                    pace,
                                    interval: interval_for(pace),
                                    stream: s.stream,
                                    transport,
                                });
                            }
                        }
                    }
                }
            }
            _ = tick(play.as_mut()) => {
                let Some(p) = play.as_mut() else { continue };
                let clip = node.clips.get(p.stream);
                let packets = p.streamer.next(clip, p.pace);
                match p.transport {
                    VideoTransport::Interleaved { channel } => {
                        out.clear();
                        for pkt in &packets {
                            let len = u16::try_from(pkt.len()).unwrap_or(u16::MAX);
                            out.push(b'$');
                            out.push(channel);
                            out.extend_from_slice(&len.to_be_bytes());
                            out.extend_from_slice(pkt.get(..usize::from(len)).unwrap_or(pkt));
                        }
                        if !out.is_empty() && !write(&mut wr, &out).await {
                            debug!(device = %id, %peer, "RTSP peer stopped reading; closing");
                            return;
                        }
                    }
                    VideoTransport::Udp { client_rtp, .. } => {
                        if let Some(u) = &udp {
                            let to = SocketAddr::new(peer.ip(), client_rtp);
                            for pkt in &packets {
                                let _ = u.send_to(pkt, to).await;
                            }
                        }
                    }
                }
            }
            r = fault_rx.changed() => {
                if r.is_err() {
                    return;
                }
                if let Some(p) = play.as_mut() {
                    let fault = fault_rx.borrow().clone();
                    let pace = Pace::of(node.clips.get(p.stream), fault.as_ref());
                    if pace.fps != p.pace.fps {
                        p.interval = interval_for(pace);
                    }
                    p.pace = pace;
                }
            }
            _ = tokio::time::sleep_until(idle_at), if play.is_none() => {
                debug!(device = %id, %peer, "RTSP connection idle; closing");
                return;
            }
        }
    }
}
