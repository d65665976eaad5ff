//! The tokio IO of the simulated horns other than plain unicast RTP (which
//! `server::run_speaker` runs): members of an RTP multicast zone, SIP
//! auto-answer horns (INVITE → 100 → 200 + SDP, ACK, BYE, OPTIONS, CANCEL;
//! digest; faults refuse / late answer / hang up / wrong codec / hang /
//! packet loss / offline) and Axis-style HTTP speakers (digest, µ-law body
//! decoded as it arrives). Every kind feeds one [`crate::speaker::RtpStats`].

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use device_drivers::axis::TRANSMIT_PATH;
use device_drivers::sip::{self, Message, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::digest;
use crate::fault::Fault;
use crate::server::{SpeakerNode, bind_tcp, bind_udp, lock};

/// The driver kind of a simulated horn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpeakerKind {
    /// Plain RTP, unicast.
    Rtp,
    /// A member of the RTP multicast zone.
    RtpMulticast,
    /// A SIP auto-answer horn.
    Sip,
    /// An Axis-style HTTP speaker.
    Axis,
    /// A 4G / cloud horn commanded over MQTT (needs `SimConfig::cloud_broker`;
    /// not in [`SpeakerKind::ALL`]).
    Cloud,
}

impl SpeakerKind {
    /// `rtp`, `rtp-multicast`, `sip`, `axis`, `cloud` (also the manifest flavour).
    pub fn name(self) -> &'static str {
        match self {
            SpeakerKind::Rtp => "rtp",
            SpeakerKind::RtpMulticast => "rtp-multicast",
            SpeakerKind::Sip => "sip",
            SpeakerKind::Axis => "axis",
            SpeakerKind::Cloud => "cloud",
        }
    }

    /// Every kind, in the order a mixed township cycles through them.
    pub const ALL: [SpeakerKind; 4] = [
        SpeakerKind::Rtp,
        SpeakerKind::Sip,
        SpeakerKind::Axis,
        SpeakerKind::RtpMulticast,
    ];
}

impl std::str::FromStr for SpeakerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "rtp" => Ok(SpeakerKind::Rtp),
            "rtp-multicast" | "multicast" => Ok(SpeakerKind::RtpMulticast),
            "sip" => Ok(SpeakerKind::Sip),
            "axis" | "http" => Ok(SpeakerKind::Axis),
            "cloud" | "4g" => Ok(SpeakerKind::Cloud),
            _ => Err(format!(
                "unknown speaker kind {s:?}: expected rtp, rtp-multicast, sip, axis or cloud"
            )),
        }
    }
}

/// SIP user part of every simulated SIP horn.
pub const SIP_USER: &str = "horn";
/// HTTP user of every simulated Axis speaker.
pub const AXIS_USER: &str = "root";
/// Digest realm of the simulated horns.
pub const REALM: &str = "tgw-sim-horn";

/// Binds a member of a multicast zone: the group and port with
/// SO_REUSEADDR/SO_REUSEPORT, joined on 127.0.0.1.
pub(crate) fn bind_group_member(group: SocketAddrV4) -> std::io::Result<UdpSocket> {
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

/// Whether the `packet-loss` fault drops datagram number `n` (deterministic).
pub(crate) fn drops(fault: Option<&Fault>, n: u64) -> bool {
    match fault {
        Some(Fault::PacketLoss(p)) => {
            let x = crate::camera::splitmix64(n) % 100;
            x < u64::from(*p)
        }
        _ => false,
    }
}

fn now_unix(node: &SpeakerNode) -> i64 {
    node.clock.now_utc().unix_timestamp()
}

/// Runs one SIP horn until `shutdown`.
pub(crate) async fn run_sip(node: Arc<SpeakerNode>, shutdown: CancellationToken) {
    let mut fault_rx = node.fault.subscribe();
    let media = node.media.unwrap_or(node.addr);
    let mut sip_sock: Option<UdpSocket> = None;
    let mut rtp_sock: Option<UdpSocket> = None;
    let mut sbuf = vec![0u8; sip::MAX_MESSAGE];
    let mut rbuf = vec![0u8; 2048];
    let mut rtp_n: u64 = 0;
    // (when, datagram, to): a late 200 OK or a hang-up BYE.
    let mut timers: Vec<(Instant, Vec<u8>, SocketAddr, &'static str)> = Vec::new();
    loop {
        let fault = fault_rx.borrow_and_update().clone();
        if matches!(fault, Some(Fault::Offline)) {
            sip_sock = None;
            rtp_sock = None;
            timers.clear();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                r = fault_rx.changed() => if r.is_err() { break },
            }
            continue;
        }
        if sip_sock.is_none() || rtp_sock.is_none() {
            match (bind_udp(node.addr, None), bind_udp(media, None)) {
                (Ok(a), Ok(b)) => {
                    sip_sock = Some(a);
                    rtp_sock = Some(b);
                }
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(device = %node.id, error = %e, "re-binding SIP horn sockets failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                    continue;
                }
            }
        }
        let (Some(ss), Some(rs)) = (sip_sock.as_ref(), rtp_sock.as_ref()) else {
            continue;
        };
        let next = timers.iter().map(|t| t.0).min();
        tokio::select! {
            _ = shutdown.cancelled() => break,
            r = fault_rx.changed() => if r.is_err() { break },
            _ = async {
                match next {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => {
                let now = Instant::now();
                let due: Vec<_> = timers.iter().filter(|t| t.0 <= now).cloned().collect();
                timers.retain(|t| t.0 > now);
                for (_, bytes, to, what) in due {
                    let _ = ss.send_to(&bytes, to).await;
                    let mut st = lock(&node.stats);
                    st.event(what);
                    match what {
                        "200" => st.report_mut().calls_answered += 1,
                        "BYE" => st.report_mut().byes_sent += 1,
                        _ => {}
                    }
                }
            }
            r = ss.recv_from(&mut sbuf) => if let Ok((n, from)) = r {
                let Ok(Message::Request(req)) = sip::parse(&sbuf[..n]) else { continue };
                for (delay, bytes, what) in on_sip_request(&node, &req, fault.as_ref(), media) {
                    if delay.is_zero() {
                        let _ = ss.send_to(&bytes, from).await;
                        let mut st = lock(&node.stats);
                        st.event(what);
                        match what {
                            "200" if req.method == "INVITE" => st.report_mut().calls_answered += 1,
                            _ => {}
                        }
                    } else {
                        timers.push((Instant::now() + delay, bytes, from, what));
                    }
                }
                if req.method == "CANCEL" || req.method == "BYE" {
                    // No late answer or hang-up for a call that is over.
                    let id = req.headers.get("Call-ID").unwrap_or_default().to_string();
                    timers.retain(|t| !String::from_utf8_lossy(&t.1).contains(&id));
                }
            },
            r = rs.recv_from(&mut rbuf) => if let Ok((n, _)) = r {
                rtp_n += 1;
                if drops(fault.as_ref(), rtp_n) {
                    lock(&node.stats).report_mut().dropped_by_fault += 1;
                } else {
                    let at = node.clock.now_utc();
                    lock(&node.stats).on_datagram(&rbuf[..n], at);
                }
            },
        }
    }
}

/// The horn's answers to one request: (delay, datagram, event name).
fn on_sip_request(
    node: &SpeakerNode,
    req: &Request,
    fault: Option<&Fault>,
    media: SocketAddr,
) -> Vec<(Duration, Vec<u8>, &'static str)> {
    let tag = format!(
        "{:08x}",
        crate::camera::splitmix64(node.addr.port().into()) as u32
    );
    let reply = |status: u16, reason: &str| Response::to_request(req, status, reason, Some(&tag));
    lock(&node.stats).event(req.method.clone());
    match req.method.as_str() {
        "INVITE" => {
            if let Some(pass) = &node.password {
                let now = now_unix(node);
                let ok = req.headers.get("Authorization").is_some_and(|h| {
                    digest::verify(
                        h,
                        "INVITE",
                        &req.uri,
                        SIP_USER,
                        pass,
                        REALM,
                        &node.digest_secret,
                        now,
                    )
                    .is_ok()
                });
                if !ok {
                    let mut st = lock(&node.stats);
                    if req.headers.get("Authorization").is_some() {
                        st.report_mut().auth_failures += 1;
                        st.report_mut().calls_refused += 1;
                    }
                    drop(st);
                    let mut r = reply(401, "Unauthorized");
                    let nonce = digest::make_nonce(&node.digest_secret, now);
                    r.headers
                        .push("WWW-Authenticate", digest::challenge(REALM, &nonce, false));
                    return vec![(Duration::ZERO, r.to_bytes(), "401")];
                }
            }
            match fault {
                Some(Fault::Hang) => return Vec::new(),
                Some(Fault::Refuse(code)) => {
                    lock(&node.stats).report_mut().calls_refused += 1;
                    let reason = match code {
                        486 => "Busy Here",
                        603 => "Decline",
                        480 => "Temporarily Unavailable",
                        _ => "Refused",
                    };
                    return vec![(Duration::ZERO, reply(*code, reason).to_bytes(), "refused")];
                }
                _ => {}
            }
            let (pt, name) = if matches!(fault, Some(Fault::WrongCodec)) {
                (18, "G729")
            } else {
                match sip::parse_sdp(&req.body) {
                    Ok(o) if o.payload_types.contains(&0) => (0, "PCMU"),
                    Ok(o) if o.payload_types.contains(&8) => (8, "PCMA"),
                    _ => {
                        return vec![(
                            Duration::ZERO,
                            reply(488, "Not Acceptable Here").to_bytes(),
                            "488",
                        )];
                    }
                }
            };
            lock(&node.stats).report_mut().answered_codec = Some(name.to_ascii_lowercase());
            let mut ok = reply(200, "OK");
            ok.headers
                .push("Contact", format!("<sip:{SIP_USER}@{}>", node.addr));
            ok.headers.push("Content-Type", "application/sdp");
            ok.body = sip::sdp_answer(media, pt, name, 1).into_bytes();
            let delay = match fault {
                Some(Fault::LateAnswer(d)) => *d,
                _ => Duration::ZERO,
            };
            let mut out = vec![
                (Duration::ZERO, reply(100, "Trying").to_bytes(), "100"),
                (delay, ok.to_bytes(), "200"),
            ];
            if let Some(Fault::HangUp(after)) = fault {
                out.push((delay + *after, horn_bye(req, &tag, node.addr), "BYE"));
            }
            out
        }
        "BYE" => {
            lock(&node.stats).report_mut().byes_received += 1;
            vec![(Duration::ZERO, reply(200, "OK").to_bytes(), "200")]
        }
        "OPTIONS" => vec![(Duration::ZERO, reply(200, "OK").to_bytes(), "200")],
        "CANCEL" => vec![(Duration::ZERO, reply(200, "OK").to_bytes(), "200")],
        "ACK" => Vec::new(),
        _ => vec![(
            Duration::ZERO,
            reply(501, "Not Implemented").to_bytes(),
            "501",
        )],
    }
}

/// The BYE a horn sends to hang up the call `invite` set up.
fn horn_bye(invite: &Request, tag: &str, local: SocketAddr) -> Vec<u8> {
    let target = invite
        .headers
        .get("Contact")
        .map(sip::addr_spec)
        .unwrap_or("sip:tgw@127.0.0.1")
        .to_string();
    let mut h = sip::Headers::default();
    h.push(
        "Via",
        format!("SIP/2.0/UDP {local};branch=z9hG4bKhornbye{tag}"),
    );
    h.push("Max-Forwards", "70");
    let to = invite.headers.get("To").unwrap_or_default();
    h.push("From", format!("{to};tag={tag}"));
    h.push("To", invite.headers.get("From").unwrap_or_default());
    h.push("Call-ID", invite.headers.get("Call-ID").unwrap_or_default());
    h.push("CSeq", "1 BYE");
    Request {
        method: "BYE".into(),
        uri: target,
        headers: h,
        body: Vec::new(),
    }
    .to_bytes()
}

/// Runs one Axis-style HTTP speaker until `shutdown`.
pub(crate) async fn run_axis(
    node: Arc<SpeakerNode>,
    mut listener: Option<TcpListener>,
    shutdown: CancellationToken,
) {
    let mut fault_rx = node.fault.subscribe();
    let mut conns = JoinSet::new();
    loop {
        if matches!(*fault_rx.borrow_and_update(), Some(Fault::Offline)) {
            listener = None;
            conns.abort_all();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                r = fault_rx.changed() => if r.is_err() { break },
            }
            continue;
        }
        if listener.is_none() {
            match bind_tcp(node.addr) {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    tracing::warn!(device = %node.id, error = %e, "re-binding HTTP speaker failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                    continue;
                }
            }
        }
        let Some(l) = listener.as_ref() else { continue };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            r = fault_rx.changed() => if r.is_err() { break },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            a = l.accept() => if let Ok((stream, _)) = a {
                let n = node.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |req| {
                        let n = n.clone();
                        async move { Ok::<_, Infallible>(serve_axis(n, req).await) }
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            },
        }
    }
    conns.abort_all();
}

fn plain(status: StatusCode, body: &str) -> hyper::Response<Full<Bytes>> {
    let mut r = hyper::Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    r
}

async fn serve_axis(
    node: Arc<SpeakerNode>,
    req: hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    if req.method() != hyper::Method::POST || req.uri().path() != TRANSMIT_PATH {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    }
    if let Some(pass) = &node.password {
        let now = now_unix(&node);
        let auth = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let ok = auth.is_some_and(|h| {
            digest::verify(
                h,
                "POST",
                TRANSMIT_PATH,
                AXIS_USER,
                pass,
                REALM,
                &node.digest_secret,
                now,
            )
            .is_ok()
        });
        if !ok {
            if auth.is_some() {
                lock(&node.stats).report_mut().auth_failures += 1;
            }
            let nonce = digest::make_nonce(&node.digest_secret, now);
            let mut r = plain(StatusCode::UNAUTHORIZED, "unauthorized\n");
            if let Ok(v) = header::HeaderValue::from_str(&digest::challenge(REALM, &nonce, false)) {
                r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            return r;
        }
    }
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if !ctype.starts_with("audio/basic") {
        return plain(StatusCode::UNSUPPORTED_MEDIA_TYPE, "expected audio/basic\n");
    }
    {
        let mut st = lock(&node.stats);
        st.report_mut().http_streams += 1;
        st.event("POST");
    }
    let mut body = req.into_body();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Some(d) = f.data_ref() {
                    let at = node.clock.now_utc();
                    lock(&node.stats).on_ulaw_stream(d, at);
                }
            }
            Err(_) => {
                lock(&node.stats).event("body-cut");
                return plain(StatusCode::BAD_REQUEST, "body cut\n");
            }
        }
    }
    lock(&node.stats).event("200");
    plain(StatusCode::OK, "OK\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SystemClock;
    use std::sync::Mutex;

    fn node(password: Option<&str>) -> SpeakerNode {
        SpeakerNode {
            id: "spk-0001".into(),
            addr: "127.0.0.1:5070".parse().unwrap(),
            media: Some("127.0.0.1:7000".parse().unwrap()),
            group: None,
            password: password.map(str::to_string),
            digest_secret: "s".into(),
            fault: tokio::sync::watch::Sender::new(None),
            stats: Mutex::new(crate::speaker::RtpStats::with_kind("spk-0001", "sip")),
            clock: Arc::new(SystemClock),
        }
    }

    fn invite(sdp_pts: &str) -> Request {
        let raw = format!(
            "INVITE sip:horn@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bK1\r\n\
             From: <sip:tgw@127.0.0.1>;tag=a\r\nTo: <sip:horn@127.0.0.1:5070>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\
             Contact: <sip:tgw@127.0.0.1:4000>\r\nContent-Type: application/sdp\r\n\r\n\
             v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4002 RTP/AVP {sdp_pts}\r\n"
        );
        match sip::parse(raw.as_bytes()).unwrap() {
            Message::Request(r) => r,
            _ => unreachable!(),
        }
    }

    fn status(b: &[u8]) -> (u16, Response) {
        match sip::parse(b).unwrap() {
            Message::Response(r) => (r.status, r),
            _ => panic!("not a response"),
        }
    }

    /// A healthy horn: 100 then 200 whose SDP answers PCMA when only PCMA
    /// is offered, on its media port.
    #[test]
    fn answers_with_an_offered_codec() {
        let n = node(None);
        let out = on_sip_request(&n, &invite("8"), None, n.media.unwrap());
        assert_eq!(out.len(), 2);
        assert_eq!(status(&out[0].1).0, 100);
        let (st, ok) = status(&out[1].1);
        assert_eq!((st, out[1].0), (200, Duration::ZERO));
        let sdp = sip::parse_sdp(&ok.body).unwrap();
        assert_eq!(sdp.payload_types, vec![8]);
        assert_eq!(sdp.port, 7000);
        assert!(sip::tag(ok.headers.get("To").unwrap()).is_some());
        // No G.711 offered at all: 488.
        let out = on_sip_request(&n, &invite("18"), None, n.media.unwrap());
        assert_eq!(status(&out[0].1).0, 488);
    }

    /// Faults: refuse, wrong codec, late answer, hang-up (a BYE to the
    /// caller's Contact after the answer), hang (silence).
    #[test]
    fn faults_shape_the_answer() {
        let n = node(None);
        let m = n.media.unwrap();
        let out = on_sip_request(&n, &invite("0 8"), Some(&Fault::Refuse(603)), m);
        assert_eq!(status(&out[0].1).1.reason, "Decline");
        let out = on_sip_request(&n, &invite("0 8"), Some(&Fault::WrongCodec), m);
        assert_eq!(
            sip::parse_sdp(&status(&out[1].1).1.body)
                .unwrap()
                .payload_types,
            vec![18]
        );
        let out = on_sip_request(
            &n,
            &invite("0"),
            Some(&Fault::LateAnswer(Duration::from_secs(3))),
            m,
        );
        assert_eq!(out[1].0, Duration::from_secs(3));
        let out = on_sip_request(
            &n,
            &invite("0"),
            Some(&Fault::HangUp(Duration::from_secs(1))),
            m,
        );
        assert_eq!(out[2].0, Duration::from_secs(1));
        let Message::Request(bye) = sip::parse(&out[2].1).unwrap() else {
            panic!()
        };
        assert_eq!(
            (bye.method.as_str(), bye.uri.as_str()),
            ("BYE", "sip:tgw@127.0.0.1:4000")
        );
        assert_eq!(bye.headers.get("Call-ID"), Some("c1"));
        assert!(on_sip_request(&n, &invite("0"), Some(&Fault::Hang), m).is_empty());
        let r = n.stats.lock().unwrap().report();
        assert_eq!(r.calls_refused, 1);
    }

    /// With a password the first INVITE is challenged; the driver's digest
    /// answer (device_drivers::sip) is accepted, a wrong password is not.
    #[test]
    fn digest_protects_the_horn() {
        let n = node(Some("pw"));
        let m = n.media.unwrap();
        let inv = invite("0");
        let out = on_sip_request(&n, &inv, None, m);
        let (st, ch) = status(&out[0].1);
        assert_eq!(st, 401);
        let challenge = ch.headers.get("WWW-Authenticate").unwrap();
        for (pass, want) in [("pw", 200), ("bad", 401)] {
            let mut again = inv.clone();
            let a =
                sip::digest_authorization(challenge, "INVITE", &inv.uri, SIP_USER, pass).unwrap();
            again.headers.push("Authorization", a);
            let out = on_sip_request(&n, &again, None, m);
            assert_eq!(status(&out.last().unwrap().1).0, want, "{pass}");
        }
        assert_eq!(n.stats.lock().unwrap().report().auth_failures, 1);
    }

    /// The packet-loss fault drops about its share, deterministically.
    #[test]
    fn packet_loss_is_deterministic() {
        let f = Fault::PacketLoss(10);
        let dropped = (1..=1000).filter(|&i| drops(Some(&f), i)).count();
        assert!((60..=140).contains(&dropped), "{dropped}");
        assert_eq!((1..=1000).filter(|&i| drops(Some(&f), i)).count(), dropped);
        assert!(!drops(None, 1));
    }
}
