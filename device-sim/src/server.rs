//! The thin tokio IO around the pure cores: one task per camera (HTTP SOAP +
//! snapshot listener, RTSP listener, unicast WS-Discovery socket; RTSP
//! connections run as children of that task), one shared multicast
//! responder, one task per speaker (RTP socket). Faults are watched per
//! device; going offline (or the offline half of `flapping`) closes the
//! sockets and coming back re-binds the same addresses.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use device_drivers::wsd::{self, ProbeMatch, WsdMessage};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use rand::Rng;
use tokio::net::{TcpListener, TcpSocket, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::WallClock;
use crate::camera::Camera;
use crate::fault::Fault;
use crate::flavour::Flavour;
use crate::onvif::{self, NonceCache};
use crate::rtsp::{self, Clips};
use crate::speaker::RtpStats;

/// Locks a mutex, recovering from poisoning (state here stays consistent).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running simulated camera, shared between its task, the multicast
/// responder, the control endpoint and [`crate::Sim`].
pub(crate) struct CameraNode {
    pub cam: Camera,
    pub probe_match: ProbeMatch,
    pub fault: watch::Sender<Option<Fault>>,
    /// The camera's WS-Discovery socket while it is online.
    pub udp: Mutex<Option<Arc<UdpSocket>>>,
    pub nonces: Mutex<NonceCache>,
    /// Event subscriptions and the settable clock.
    pub events: Mutex<crate::events::EventState>,
    pub digest_secret: String,
    pub multicast: Option<SocketAddrV4>,
    pub clock: Arc<dyn WallClock>,
    /// The looped clips, shared by every camera.
    pub clips: Arc<Clips>,
}

/// A running simulated speaker.
pub(crate) struct SpeakerNode {
    pub id: String,
    /// RTP address (rtp), the group:port (multicast member), SIP address
    /// (sip) or HTTP address (axis).
    pub addr: SocketAddr,
    /// SIP horns: the RTP address offered in the SDP answer.
    pub media: Option<SocketAddr>,
    /// Multicast zone members: the group joined on 127.0.0.1.
    pub group: Option<SocketAddrV4>,
    /// SIP and HTTP: digest password (`None` = no authentication).
    pub password: Option<String>,
    pub digest_secret: String,
    pub fault: watch::Sender<Option<Fault>>,
    pub stats: Mutex<RtpStats>,
    pub clock: Arc<dyn WallClock>,
}

/// Binds a TCP listener with SO_REUSEADDR (so an offline camera can re-bind).
pub(crate) fn bind_tcp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let s = TcpSocket::new_v4()?;
    s.set_reuseaddr(true)?;
    s.bind(addr)?;
    s.listen(1024)
}

/// Binds a UDP socket with SO_REUSEADDR; when `mcast_if` is set, multicast
/// sent from it leaves through that interface address.
pub(crate) fn bind_udp(addr: SocketAddr, mcast_if: Option<Ipv4Addr>) -> std::io::Result<UdpSocket> {
    let s = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    if let Some(ifaddr) = mcast_if {
        s.set_multicast_if_v4(&ifaddr)?;
        s.set_multicast_loop_v4(true)?;
    }
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}

/// Binds the shared multicast responder: the group address and port with
/// SO_REUSEADDR, joined on 127.0.0.1.
pub(crate) fn bind_multicast(group: SocketAddrV4) -> std::io::Result<UdpSocket> {
    let s = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::V4(group).into())?;
    s.join_multicast_v4(group.ip(), &Ipv4Addr::LOCALHOST)?;
    UdpSocket::from_std(s.into())
}

/// One SSDP answer of a speaker: the device's address (answers are sent
/// from a socket bound on it, so the source address is the speaker's) and
/// what it says.
pub(crate) struct SsdpAnswer {
    pub ip: Ipv4Addr,
    pub node: Arc<SpeakerNode>,
    pub announcement: device_drivers::ssdp::Announcement,
}

/// The shared SSDP responder: answers each matching M-SEARCH on the group
/// with one unicast response per online speaker, sent from its own address.
pub(crate) async fn run_ssdp(
    sock: UdpSocket,
    answers: Arc<Vec<SsdpAnswer>>,
    shutdown: CancellationToken,
) {
    use device_drivers::ssdp::{self, SsdpMessage};
    let mut buf = vec![0u8; ssdp::MAX_DATAGRAM + 1];
    loop {
        let (n, from) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(error = %e, "SSDP responder receive failed");
                    continue;
                }
            },
        };
        let Ok(SsdpMessage::Search { target, .. }) = ssdp::parse(&buf[..n]) else {
            continue;
        };
        for a in answers.iter() {
            if !ssdp::matches(&target, &a.announcement.target) || is_offline(&a.node.fault.borrow())
            {
                continue;
            }
            let reply = ssdp::build_response(&a.announcement, 1800);
            match UdpSocket::bind(SocketAddr::from((a.ip, 0))).await {
                Ok(tx) => {
                    if let Err(e) = tx.send_to(reply.as_bytes(), from).await {
                        tracing::debug!(speaker = %a.node.id, %from, error = %e, "SSDP answer not sent");
                    }
                }
                Err(e) => tracing::debug!(speaker = %a.node.id, error = %e, "SSDP answer socket"),
            }
        }
    }
}

fn is_offline(f: &Option<Fault>) -> bool {
    matches!(f, Some(Fault::Offline))
}

/// Whether a camera is offline `elapsed` after its fault was set, and how
/// long until that changes (`None`: not until the fault changes).
/// `flapping:S` is online for S, offline for S, and so on.
pub(crate) fn availability(f: Option<&Fault>, elapsed: Duration) -> (bool, Option<Duration>) {
    match f {
        Some(Fault::Offline) => (true, None),
        Some(Fault::Flapping(period)) if !period.is_zero() => {
            let p = period.as_nanos();
            let e = elapsed.as_nanos();
            let phase = e / p;
            let into = e % p;
            let left = u64::try_from(p - into).unwrap_or(u64::MAX);
            (phase % 2 == 1, Some(Duration::from_nanos(left)))
        }
        _ => (false, None),
    }
}

async fn sleep_opt(until: Option<tokio::time::Instant>) {
    match until {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn accept_opt(
    l: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match l {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Does a Probe with these requested types reach this camera?
pub(crate) fn probe_matches(flavour: Flavour, types: &[String]) -> bool {
    if types.is_empty() {
        return !flavour.requires_probe_types();
    }
    types.iter().any(|t| {
        let local = t.rsplit(':').next().unwrap_or(t);
        local == "NetworkVideoTransmitter" || local == "Device"
    })
}

/// WS-Discovery scope matching (the default RFC 3986 rule, simplified):
/// every requested scope equals an advertised one or is a prefix of it
/// ending at a `/`, case-insensitively. No `Scopes` matches everything.
pub(crate) fn scopes_match(requested: Option<&str>, advertised: &[String]) -> bool {
    requested.is_none_or(|r| {
        r.split_whitespace().all(|want| {
            let want = want.trim_end_matches('/').to_ascii_lowercase();
            advertised.iter().any(|a| {
                let a = a.to_ascii_lowercase();
                a == want
                    || a.strip_prefix(&want)
                        .is_some_and(|rest| rest.starts_with('/'))
            })
        })
    })
}

/// A horn that answers WS-Discovery Probes on the multicast responder
/// (the Axis flavour: an ONVIF device with an audio output, no video).
pub(crate) struct WsdHorn {
    /// The horn's address; answers are sent from a socket bound on it.
    pub ip: Ipv4Addr,
    pub node: Arc<SpeakerNode>,
    pub probe_match: ProbeMatch,
}

/// The ProbeMatches a horn sends for a Probe, or `None`: it advertises
/// only `tds:Device`, so a Probe for `NetworkVideoTransmitter` (what the
/// gateway's camera discovery sends) never reaches it.
pub(crate) fn answer_horn_probe(pm: &ProbeMatch, msg: &WsdMessage) -> Option<String> {
    let WsdMessage::Probe {
        message_id,
        types,
        scopes,
    } = msg
    else {
        return None;
    };
    let types_ok = types.iter().all(|t| {
        let local = t.rsplit(':').next().unwrap_or(t);
        local == "Device"
    });
    if !types_ok || !scopes_match(scopes.as_deref(), &pm.scopes) {
        return None;
    }
    let id = format!("urn:uuid:{}", uuid::Uuid::new_v4());
    Some(wsd::build_probe_matches(
        message_id,
        &id,
        std::slice::from_ref(pm),
    ))
}

/// One mDNS advert of a horn, answered from the horn's own address.
pub(crate) struct MdnsAnswer {
    pub ip: Ipv4Addr,
    pub node: Arc<SpeakerNode>,
    pub advert: device_drivers::mdns::Advert,
}

/// The shared mDNS responder: answers each query on the group with one
/// unicast response per online horn whose service type is asked for (PTR
/// in the answer, SRV/TXT/A as additional records), echoing the query id
/// and questions as a legacy unicast answer (RFC 6762 §6.7), sent from the
/// horn's own address.
pub(crate) async fn run_mdns(
    sock: UdpSocket,
    answers: Arc<Vec<MdnsAnswer>>,
    shutdown: CancellationToken,
) {
    use device_drivers::mdns;
    let mut buf = vec![0u8; mdns::MAX_PACKET + 1];
    loop {
        let (n, from) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(error = %e, "mDNS responder receive failed");
                    continue;
                }
            },
        };
        let Ok(q) = mdns::parse(&buf[..n]) else {
            continue;
        };
        if q.is_response {
            continue;
        }
        for a in answers.iter() {
            let asked: Vec<mdns::Question> = q
                .questions
                .iter()
                .filter(|x| a.advert.answers(x))
                .cloned()
                .collect();
            if asked.is_empty() || is_offline(&a.node.fault.borrow()) {
                continue;
            }
            // Legacy unicast answers carry a TTL of at most 10 s.
            let (ans, add) = a.advert.records(10);
            let Ok(reply) = mdns::build_response(q.id, &asked, &ans, &add) else {
                continue;
            };
            lock(&a.node.stats).event("mdns");
            match UdpSocket::bind(SocketAddr::from((a.ip, 0))).await {
                Ok(tx) => {
                    if let Err(e) = tx.send_to(&reply, from).await {
                        tracing::debug!(speaker = %a.node.id, %from, error = %e, "mDNS answer not sent");
                    }
                }
                Err(e) => tracing::debug!(speaker = %a.node.id, error = %e, "mDNS answer socket"),
            }
        }
    }
}

/// Whether raw XML has whitespace between two tags (`>  <`).
pub(crate) fn has_inter_tag_whitespace(bytes: &[u8]) -> bool {
    let mut after_gt = false;
    let mut saw_ws = false;
    for &b in bytes {
        match b {
            b'>' => {
                after_gt = true;
                saw_ws = false;
            }
            b' ' | b'\t' | b'\r' | b'\n' if after_gt => saw_ws = true,
            b'<' if after_gt && saw_ws => return true,
            _ => after_gt = false,
        }
    }
    false
}

/// The ProbeMatches a camera sends for a Probe, or `None` when it stays silent.
/// `unicast_raw` is the raw datagram for a unicast probe (Hikvision checks it).
pub(crate) fn answer_probe(
    cam: &Camera,
    pm: &ProbeMatch,
    msg: &WsdMessage,
    unicast_raw: Option<&[u8]>,
) -> Option<String> {
    let WsdMessage::Probe {
        message_id,
        types,
        scopes,
    } = msg
    else {
        return None;
    };
    if let Some(raw) = unicast_raw
        && cam.flavour.rejects_whitespace_unicast_probe()
        && has_inter_tag_whitespace(raw)
    {
        return None;
    }
    if !probe_matches(cam.flavour, types) || !scopes_match(scopes.as_deref(), &pm.scopes) {
        return None;
    }
    let id = format!("urn:uuid:{}", uuid::Uuid::new_v4());
    Some(wsd::build_probe_matches(
        message_id,
        &id,
        std::slice::from_ref(pm),
    ))
}

/// Runs one camera until `shutdown`.
pub(crate) async fn run_camera(
    node: Arc<CameraNode>,
    mut listener: Option<TcpListener>,
    mut rtsp_listener: Option<TcpListener>,
    shutdown: CancellationToken,
) {
    let http_addr = SocketAddr::from((node.cam.ip, node.cam.port));
    let rtsp_addr = SocketAddr::from((node.cam.ip, node.cam.rtsp_port));
    let udp_addr = lock(&node.udp).as_ref().and_then(|u| u.local_addr().ok());
    let mcast_if = node.multicast.map(|_| Ipv4Addr::LOCALHOST);
    let mut fault_rx = node.fault.subscribe();
    let mut conns: JoinSet<()> = JoinSet::new();
    let mut buf = vec![0u8; wsd::MAX_DATAGRAM];
    let mut fault_since = tokio::time::Instant::now();
    let mut last_fault = fault_rx.borrow().clone();
    let mut conn_seq: u64 = 0;
    loop {
        let fault = fault_rx.borrow_and_update().clone();
        if fault != last_fault {
            fault_since = tokio::time::Instant::now();
            last_fault = fault.clone();
        }
        let now = tokio::time::Instant::now();
        let (offline, toggle_in) = availability(fault.as_ref(), now - fault_since);
        let toggle_at = toggle_in.map(|d| now + d);
        if offline {
            listener = None;
            rtsp_listener = None;
            *lock(&node.udp) = None;
            conns.abort_all();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                r = fault_rx.changed() => if r.is_err() { break },
                _ = sleep_opt(toggle_at) => {}
            }
            continue;
        }
        if listener.is_none() {
            match bind_tcp(http_addr) {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    warn!(device = %node.cam.id, addr = %http_addr, error = %e, "re-binding SOAP listener failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                    continue;
                }
            }
        }
        if rtsp_listener.is_none() {
            match bind_tcp(rtsp_addr) {
                Ok(l) => rtsp_listener = Some(l),
                Err(e) => {
                    warn!(device = %node.cam.id, addr = %rtsp_addr, error = %e, "re-binding RTSP listener failed; retrying")
                }
            }
        }
        let need_udp = lock(&node.udp).is_none();
        if need_udp && let Some(a) = udp_addr {
            match bind_udp(a, mcast_if) {
                Ok(u) => *lock(&node.udp) = Some(Arc::new(u)),
                Err(e) => {
                    warn!(device = %node.cam.id, addr = %a, error = %e, "re-binding WS-Discovery socket failed")
                }
            }
        }
        let udp = lock(&node.udp).clone();
        let Some(l) = listener.as_ref() else { continue };
        // Retry a failed RTSP re-bind after a while even without a toggle.
        let retry_at = if rtsp_listener.is_none() {
            Some(now + Duration::from_millis(500))
        } else {
            toggle_at
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            r = fault_rx.changed() => if r.is_err() { break },
            _ = sleep_opt(retry_at) => {}
            acc = l.accept() => match acc {
                Ok((stream, _peer)) => {
                    let n = node.clone();
                    conns.spawn(async move {
                        let svc = service_fn(move |req| {
                            let n = n.clone();
                            async move { Ok::<_, Infallible>(serve_soap(n, req).await) }
                        });
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
                Err(e) => debug!(device = %node.cam.id, error = %e, "accept failed"),
            },
            acc = accept_opt(rtsp_listener.as_ref()) => match acc {
                Ok((stream, peer)) => {
                    conn_seq += 1;
                    let seed = crate::camera::splitmix64(
                        (node.cam.index as u64) << 32 ^ conn_seq,
                    );
                    conns.spawn(rtsp::serve::serve_conn(node.clone(), stream, peer, seed));
                }
                Err(e) => debug!(device = %node.cam.id, error = %e, "RTSP accept failed"),
            },
            r = recv(udp.as_deref(), &mut buf) => if let Some((len, from)) = r {
                let raw = buf.get(..len).unwrap_or_default();
                if let Ok(msg) = wsd::parse(raw)
                    && let Some(reply) = answer_probe(&node.cam, &node.probe_match, &msg, Some(raw))
                    && let Some(u) = &udp
                    && let Err(e) = u.send_to(reply.as_bytes(), from).await
                {
                    debug!(device = %node.cam.id, to = %from, error = %e, "unicast ProbeMatches not sent");
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
    *lock(&node.udp) = None;
}

async fn recv(u: Option<&UdpSocket>, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
    match u {
        Some(u) => u.recv_from(buf).await.ok(),
        None => std::future::pending().await,
    }
}

fn response(status: u16, body: String, www: Option<String>) -> Response<Full<Bytes>> {
    let mut b = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/soap+xml; charset=utf-8");
    if let Some(w) = www {
        b = b.header(header::WWW_AUTHENTICATE, w);
    }
    b.body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

async fn serve_soap(node: Arc<CameraNode>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let fault = node.fault.borrow().clone();
    let method = req.method().as_str().to_string();
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".to_string());
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = match Limited::new(req.into_body(), onvif::MAX_REQUEST_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => return response(413, String::new(), None),
    };
    if matches!(fault, Some(Fault::Hang)) {
        std::future::pending::<()>().await;
    }
    if method == "GET"
        && let Some(idx) = node.cam.snapshot_index(&target)
    {
        return serve_snapshot(&node, fault.as_ref(), idx, &target, auth.as_deref()).await;
    }
    let mut fault_rx = node.fault.subscribe();
    let mut reply = {
        let mut nonces = lock(&node.nonces);
        let mut events = lock(&node.events);
        let mut ctx = onvif::Ctx {
            camera: &node.cam,
            fault: fault.as_ref(),
            now_utc: node.clock.now_utc(),
            digest_secret: &node.digest_secret,
            nonces: &mut nonces,
            events: &mut events,
        };
        onvif::handle(
            &mut ctx,
            &onvif::Request {
                method: &method,
                target: &target,
                authorization: auth.as_deref(),
                body: &body,
            },
        )
    };
    if let Some(p) = reply.pull.filter(|p| !p.wait.is_zero()) {
        // Long poll: hold the request until a fault change queues an event
        // or the pull's timeout passes.
        let deadline = tokio::time::Instant::now() + p.wait;
        loop {
            let timed_out = tokio::select! {
                _ = tokio::time::sleep_until(deadline) => true,
                r = fault_rx.changed() => r.is_err(),
            };
            let fault = node.fault.borrow().clone();
            let mut nonces = lock(&node.nonces);
            let mut events = lock(&node.events);
            let mut ctx = onvif::Ctx {
                camera: &node.cam,
                fault: fault.as_ref(),
                now_utc: node.clock.now_utc(),
                digest_secret: &node.digest_secret,
                nonces: &mut nonces,
                events: &mut events,
            };
            reply = onvif::pull_again(&mut ctx, p);
            if timed_out || reply.pull.is_none() {
                break;
            }
        }
    }
    debug!(device = %node.cam.id, operation = %reply.operation, status = reply.status, "SOAP");
    if let Some(Fault::Slow(d)) = fault {
        tokio::time::sleep(d).await;
    }
    response(reply.status, reply.body, reply.www_authenticate)
}

/// Answers a snapshot GET: Digest-authenticated JPEG (the same picture for
/// both profiles).
async fn serve_snapshot(
    node: &CameraNode,
    fault: Option<&Fault>,
    idx: usize,
    target: &str,
    auth: Option<&str>,
) -> Response<Full<Bytes>> {
    let now_unix = match fault {
        Some(Fault::ClockSkew(s)) => node.clock.now_utc().unix_timestamp() + s,
        _ => node.clock.now_utc().unix_timestamp(),
    };
    let checked = rtsp::authenticate(
        &node.cam,
        fault,
        "GET",
        target,
        auth,
        &node.digest_secret,
        now_unix,
    );
    debug!(device = %node.cam.id, profile = idx, ok = checked.is_ok(), "snapshot");
    if let Some(Fault::Slow(d)) = fault {
        tokio::time::sleep(*d).await;
    }
    let b = match checked {
        Ok(()) => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "image/jpeg")
            .body(Full::new(Bytes::from_static(rtsp::SNAPSHOT_JPEG))),
        Err(www) => Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header(header::WWW_AUTHENTICATE, www)
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Full::new(Bytes::from_static(b"401 Unauthorized"))),
    };
    b.unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// Runs the shared multicast responder until `shutdown`.
pub(crate) async fn run_multicast(
    sock: UdpSocket,
    cameras: Arc<Vec<Arc<CameraNode>>>,
    horns: Arc<Vec<WsdHorn>>,
    max_delay: Duration,
    shutdown: CancellationToken,
) {
    let mut buf = vec![0u8; wsd::MAX_DATAGRAM];
    let mut sends: JoinSet<()> = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(_) = sends.join_next(), if !sends.is_empty() => {}
            r = sock.recv_from(&mut buf) => {
                let Ok((len, from)) = r else { continue };
                let Ok(msg) = wsd::parse(buf.get(..len).unwrap_or_default()) else { continue };
                if !matches!(msg, WsdMessage::Probe { .. }) {
                    continue;
                }
                for node in cameras.iter() {
                    if is_offline(&node.fault.borrow()) {
                        continue;
                    }
                    // Also None during the offline half of `flapping`.
                    let Some(udp) = lock(&node.udp).clone() else { continue };
                    let Some(reply) = answer_probe(&node.cam, &node.probe_match, &msg, None) else {
                        continue;
                    };
                    let delay = if max_delay.is_zero() {
                        Duration::ZERO
                    } else {
                        rand::thread_rng().gen_range(Duration::ZERO..=max_delay)
                    };
                    let shutdown = shutdown.clone();
                    sends.spawn(async move {
                        tokio::select! {
                            _ = shutdown.cancelled() => {}
                            _ = tokio::time::sleep(delay) => {
                                let _ = udp.send_to(reply.as_bytes(), from).await;
                            }
                        }
                    });
                }
                for h in horns.iter() {
                    if is_offline(&h.node.fault.borrow()) {
                        continue;
                    }
                    let Some(reply) = answer_horn_probe(&h.probe_match, &msg) else { continue };
                    lock(&h.node.stats).event("wsd-probe");
                    let ip = h.ip;
                    sends.spawn(async move {
                        if let Ok(tx) = UdpSocket::bind(SocketAddr::from((ip, 0))).await {
                            let _ = tx.send_to(reply.as_bytes(), from).await;
                        }
                    });
                }
            }
        }
    }
    sends.abort_all();
}

/// Runs one speaker until `shutdown`.
pub(crate) async fn run_speaker(
    node: Arc<SpeakerNode>,
    mut sock: Option<UdpSocket>,
    shutdown: CancellationToken,
) {
    let mut fault_rx = node.fault.subscribe();
    let mut buf = vec![0u8; 64 * 1024];
    let mut received: u64 = 0;
    loop {
        if is_offline(&fault_rx.borrow_and_update()) {
            sock = None;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                r = fault_rx.changed() => if r.is_err() { break },
            }
            continue;
        }
        if sock.is_none() {
            let bound = match node.group {
                Some(g) => crate::horns::bind_group_member(g),
                None => bind_udp(node.addr, None),
            };
            match bound {
                Ok(s) => sock = Some(s),
                Err(e) => {
                    warn!(device = %node.id, addr = %node.addr, error = %e, "re-binding RTP socket failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                    continue;
                }
            }
        }
        let Some(s) = sock.as_ref() else { continue };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            r = fault_rx.changed() => if r.is_err() { break },
            r = s.recv_from(&mut buf) => if let Ok((len, _)) = r {
                received += 1;
                if crate::horns::drops(fault_rx.borrow().as_ref(), received) {
                    lock(&node.stats).report_mut().dropped_by_fault += 1;
                    continue;
                }
                let at = node.clock.now_utc();
                lock(&node.stats).on_datagram(buf.get(..len).unwrap_or_default(), at);
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hikvision's check: whitespace between tags, not inside text.
    #[test]
    fn inter_tag_whitespace() {
        assert!(has_inter_tag_whitespace(b"<a>\n  <b/></a>"));
        assert!(has_inter_tag_whitespace(b"<a> <b/></a>"));
        assert!(!has_inter_tag_whitespace(b"<a><b>x y</b></a>"));
        assert!(!has_inter_tag_whitespace(b"<a>x <b/></a>"));
    }

    /// `flapping:2s`: online for 2 s, offline for 2 s, online again; the
    /// time to the next toggle counts down; other faults never toggle.
    #[test]
    fn flapping_availability() {
        let f = Fault::Flapping(Duration::from_secs(2));
        let at = |ms| availability(Some(&f), Duration::from_millis(ms));
        assert_eq!(at(0), (false, Some(Duration::from_secs(2))));
        assert_eq!(at(1500), (false, Some(Duration::from_millis(500))));
        assert_eq!(at(2000), (true, Some(Duration::from_secs(2))));
        assert_eq!(at(3999), (true, Some(Duration::from_millis(1))));
        assert_eq!(at(4000), (false, Some(Duration::from_secs(2))));
        assert_eq!(
            availability(Some(&Fault::Offline), Duration::ZERO),
            (true, None)
        );
        assert_eq!(
            availability(Some(&Fault::Frozen), Duration::ZERO),
            (false, None)
        );
        assert_eq!(availability(None, Duration::from_secs(9)), (false, None));
    }

    /// Type filter: absent Types matches except on TP-Link; prefixes ignored.
    #[test]
    fn type_filter() {
        assert!(probe_matches(Flavour::Hikvision, &[]));
        assert!(!probe_matches(Flavour::TpLink, &[]));
        assert!(probe_matches(
            Flavour::TpLink,
            &["dn:NetworkVideoTransmitter".into()]
        ));
        assert!(probe_matches(Flavour::Axis, &["x:Device".into()]));
        assert!(!probe_matches(Flavour::Axis, &["wsdp:Printer".into()]));
    }

    /// Scope matching: whole segments, case-insensitive, all requested
    /// scopes needed; none requested matches anything.
    #[test]
    fn scope_filter() {
        let adv = vec![
            "onvif://www.onvif.org/type/audio_output".to_string(),
            "onvif://www.onvif.org/hardware/C1310-E".to_string(),
        ];
        assert!(scopes_match(None, &adv));
        assert!(scopes_match(
            Some("onvif://www.onvif.org/type/audio_output"),
            &adv
        ));
        assert!(scopes_match(Some("ONVIF://www.onvif.org/type"), &adv));
        assert!(!scopes_match(
            Some("onvif://www.onvif.org/type/audio"),
            &adv
        ));
        assert!(!scopes_match(
            Some("onvif://www.onvif.org/type/audio_output onvif://www.onvif.org/name/x"),
            &adv
        ));
    }

    /// A horn answers a `tds:Device` Probe (with or without its scope) but
    /// never the camera Probe for `NetworkVideoTransmitter`.
    #[test]
    fn horn_answers_only_device_probes() {
        let pm = ProbeMatch {
            endpoint_ref: "urn:uuid:horn".into(),
            types: vec![wsd::DEVICE_TYPE.into()],
            scopes: vec!["onvif://www.onvif.org/type/audio_output".into()],
            xaddrs: vec!["http://127.0.0.1:80/onvif/device_service".into()],
            metadata_version: Some(1),
        };
        let probe = |types: Option<&str>, scopes: Option<&str>| {
            let raw = wsd::build_probe_scoped("urn:uuid:p", types, scopes);
            wsd::parse(raw.as_bytes()).unwrap()
        };
        assert!(answer_horn_probe(&pm, &probe(None, None)).is_none());
        assert!(answer_horn_probe(&pm, &probe(Some("tds:Device"), None)).is_some());
        let audio = Some("onvif://www.onvif.org/type/audio_output");
        assert!(answer_horn_probe(&pm, &probe(Some("tds:Device"), audio)).is_some());
        assert!(
            answer_horn_probe(
                &pm,
                &probe(
                    Some("tds:Device"),
                    Some("onvif://www.onvif.org/type/video_encoder")
                )
            )
            .is_none()
        );
    }
}
