//! The tokio UDP sender around [`crate::rtp`]: unicast or multicast (TTL,
//! multicast interface), DSCP EF, paced by one tokio interval anchored at an
//! absolute start instant so that every horn of a broadcast sends frame k
//! at `t0 + k·20 ms`. RTCP sender reports go to port + 1.
//!
//! Presence: a unicast stream's socket is connected to the horn, so an ICMP
//! port-unreachable for one packet makes the next send (or receive) fail
//! with `ConnectionRefused`: the stream stops with an error saying the horn
//! is unreachable. RTCP goes out from a second socket connected to port + 1;
//! a receiver report (RR, PT 201) coming back on either socket counts as
//! the horn having been heard from ([`SendStats::receiver_reports`]). A horn
//! that swallows packets silently leaves both at zero: nobody can tell.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::net::UdpSocket;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::g711::Codec;
use crate::onvif_client::WallClock;
use crate::rtp::{self, FRAME, Packetizer};

/// DSCP Expedited Forwarding (46) in the IPv4 TOS byte.
pub const TOS_EF: u32 = 46 << 2;

/// Where and how to send one RTP stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpTarget {
    /// Destination (unicast address or multicast group) and RTP port.
    pub dest: SocketAddr,
    /// G.711 variant.
    pub codec: Codec,
    /// Multicast TTL (ignored for unicast). 1 keeps packets on the link.
    pub ttl: u32,
    /// Interface address multicast leaves through (`IP_MULTICAST_IF`);
    /// `None` = the kernel's choice.
    pub multicast_if: Option<Ipv4Addr>,
    /// Mark packets DSCP EF.
    pub dscp_ef: bool,
    /// Interval of RTCP sender reports to port + 1; `None` = no RTCP.
    pub rtcp_interval: Option<Duration>,
}

impl RtpTarget {
    /// Unicast or multicast (by address) to `dest`, TTL 1, DSCP EF, RTCP every 5 s.
    pub fn new(dest: SocketAddr, codec: Codec) -> RtpTarget {
        RtpTarget {
            dest,
            codec,
            ttl: 1,
            multicast_if: None,
            dscp_ef: true,
            rtcp_interval: Some(Duration::from_secs(5)),
        }
    }
}

/// What one paced send did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SendStats {
    /// RTP packets sent.
    pub packets: u64,
    /// Payload octets sent.
    pub octets: u64,
    /// RTCP packets sent.
    pub rtcp: u64,
    /// When the first packet left.
    pub first_sent: Option<Instant>,
    /// When the last packet left.
    pub last_sent: Option<Instant>,
    /// Frames sent more than one frame period after they were due.
    pub late_frames: u64,
    /// Frames skipped because the stream started after their time (a horn
    /// that answered late joins the broadcast where it is, in sync).
    pub skipped_frames: u64,
    /// Stopped by the cancellation token before the end.
    pub cancelled: bool,
    /// RTCP receiver reports (PT 201) received from the horn.
    pub receiver_reports: u64,
}

/// Whether `buf` is an RTCP compound packet starting with a receiver
/// report (version 2, PT 201) or a sender report carrying report blocks
/// (PT 200, RC > 0): a horn that reports what it received.
pub fn is_receiver_report(buf: &[u8]) -> bool {
    buf.len() >= 8
        && buf[0] >> 6 == 2
        && (buf[1] == 201 || (buf[1] == 200 && buf[0] & 0x1f > 0 && buf.len() >= 52))
}

/// An io error with what we were doing and where: it displays as
/// `RTP to DEST: WHAT: ERROR` and keeps the original as its `source()`, so
/// its errno still tells the gateway's own exhaustion
/// ([`crate::local_error::of_io`]) from the horn's trouble.
#[derive(Debug)]
struct Context {
    text: String,
    source: std::io::Error,
}

impl std::fmt::Display for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Context {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn context(e: std::io::Error, text: String) -> std::io::Error {
    std::io::Error::new(e.kind(), Context { text, source: e })
}

/// The message of a stream stopped by an ICMP port-unreachable.
fn unreachable(dest: SocketAddr, k: usize) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        format!(
            "RTP to {dest}: unreachable: the horn's port refused packet {k} (ICMP port unreachable)"
        ),
    )
}

/// Drains what came back on `sock` without waiting: counts receiver
/// reports, and says whether the kernel reported the peer refusing.
fn drain(sock: &UdpSocket, reports: &mut u64) -> bool {
    let mut buf = [0u8; 1500];
    for _ in 0..64 {
        match sock.try_recv(&mut buf) {
            Ok(n) => {
                if is_receiver_report(&buf[..n]) {
                    *reports += 1;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return true,
            Err(_) => return false,
        }
    }
    false
}

/// The numbering and counters one stream's packets share.
struct Out<'a> {
    pk: &'a mut Packetizer,
    stats: &'a mut SendStats,
    next_rtcp: &'a mut Instant,
    cname: &'a str,
    rtcp_dest: SocketAddr,
    clock: &'a dyn WallClock,
}

/// A UDP socket sending one RTP stream.
#[derive(Debug)]
pub struct RtpSender {
    sock: UdpSocket,
    /// Unicast: the RTCP socket connected to port + 1 (receiver reports
    /// come back here); multicast: none (SRs go out from `sock`).
    rtcp: Option<UdpSocket>,
    target: RtpTarget,
    /// Sent elsewhere than where the socket is connected (SIP answer).
    retargeted: bool,
}

impl RtpSender {
    /// Binds an ephemeral socket for `target` and sets TTL, multicast
    /// interface and DSCP. Errors name the destination.
    pub fn bind(target: RtpTarget) -> std::io::Result<RtpSender> {
        let ctx = |what: &str, e: std::io::Error| {
            let text = format!("RTP to {}: {what}: {e}", target.dest);
            context(e, text)
        };
        let s = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )
        .map_err(|e| ctx("creating a socket", e))?;
        s.set_nonblocking(true)
            .map_err(|e| ctx("setting non-blocking", e))?;
        if target.dscp_ef {
            s.set_tos_v4(TOS_EF)
                .map_err(|e| ctx("setting DSCP EF", e))?;
        }
        if target.dest.ip().is_multicast() {
            s.set_multicast_ttl_v4(target.ttl)
                .map_err(|e| ctx("setting the multicast TTL", e))?;
            s.set_multicast_loop_v4(true)
                .map_err(|e| ctx("enabling multicast loop", e))?;
            if let Some(ifaddr) = target.multicast_if {
                s.set_multicast_if_v4(&ifaddr)
                    .map_err(|e| ctx("setting IP_MULTICAST_IF", e))?;
            }
        }
        let local: SocketAddr = match (target.multicast_if, target.dest.ip()) {
            (Some(i), ip) if ip.is_multicast() => (i, 0).into(),
            _ => (Ipv4Addr::UNSPECIFIED, 0).into(),
        };
        s.bind(&local.into())
            .map_err(|e| ctx("binding a local port", e))?;
        let unicast = !target.dest.ip().is_multicast();
        if unicast {
            s.connect(&target.dest.into())
                .map_err(|e| ctx("connecting the socket", e))?;
        }
        let sock = UdpSocket::from_std(s.into()).map_err(|e| ctx("registering", e))?;
        let rtcp = if unicast && target.rtcp_interval.is_some() {
            let r = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
                .map_err(|e| ctx("binding the RTCP port", e))?;
            let rdest = SocketAddr::new(target.dest.ip(), target.dest.port().wrapping_add(1));
            r.connect(rdest)
                .map_err(|e| ctx("connecting the RTCP socket", e))?;
            r.set_nonblocking(true)
                .map_err(|e| ctx("setting non-blocking", e))?;
            Some(UdpSocket::from_std(r).map_err(|e| ctx("registering", e))?)
        } else {
            None
        };
        Ok(RtpSender {
            sock,
            rtcp,
            target,
            retargeted: false,
        })
    }

    /// The local address bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// The target.
    pub fn target(&self) -> &RtpTarget {
        &self.target
    }

    /// Sends to another destination and codec from the same socket (SIP:
    /// the port is offered before the answer says where to send).
    pub fn retarget(&mut self, dest: SocketAddr, codec: Codec) {
        self.target.dest = dest;
        self.target.codec = codec;
        // The answer may name another port: send unconnected from now on
        // (presence is the SIP session's business then).
        self.retargeted = true;
    }

    /// Sends `pcm` as 20 ms packets, frame k at `start + k·20 ms` (frames
    /// that fall behind are sent at once, so the stream never drifts from
    /// the shared clock), until the end or `cancel`. Called after `start`,
    /// the frames whose time has passed are skipped. `clock` stamps RTCP.
    pub async fn send_paced(
        &self,
        pcm: &[i16],
        start: Instant,
        cancel: &CancellationToken,
        clock: Arc<dyn WallClock>,
    ) -> std::io::Result<SendStats> {
        let frames = rtp::frames(pcm, self.target.codec);
        let (ssrc, seq, ts) = {
            let mut r = rand::thread_rng();
            (r.r#gen::<u32>(), r.r#gen::<u16>(), r.r#gen::<u32>())
        };
        let mut pk = Packetizer::new(self.target.codec, ssrc, seq, ts);
        let rtcp_dest = SocketAddr::new(
            self.target.dest.ip(),
            self.target.dest.port().wrapping_add(1),
        );
        let cname = format!("tgw@{}", self.local_addr()?.ip());
        let mut stats = SendStats::default();
        let now = Instant::now();
        let skip = if now > start + FRAME {
            rtp::frames_due_by(now - start) - 1
        } else {
            0
        };
        let skip = usize::try_from(skip)
            .unwrap_or(usize::MAX)
            .min(frames.len());
        stats.skipped_frames = skip as u64;
        let first_due = start + rtp::frame_due(skip as u64);
        let mut tick = tokio::time::interval_at(first_due, FRAME);
        tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut next_rtcp = first_due;
        for (k, frame) in frames.iter().enumerate().skip(skip) {
            let due = tokio::select! {
                biased;
                _ = cancel.cancelled() => {
                    stats.cancelled = true;
                    break;
                }
                d = tick.tick() => d,
            };
            let mut out = Out {
                pk: &mut pk,
                stats: &mut stats,
                next_rtcp: &mut next_rtcp,
                cname: &cname,
                rtcp_dest,
                clock: &*clock,
            };
            self.emit(&mut out, frame, k, Some(due)).await?;
        }
        Ok(stats)
    }

    /// Sends one G.711 frame as packet `k` (RTCP sender reports on their
    /// interval); `due` counts frames sent more than 20 ms late.
    async fn emit(
        &self,
        o: &mut Out<'_>,
        frame: &[u8],
        k: usize,
        due: Option<Instant>,
    ) -> std::io::Result<()> {
        let pkt = o.pk.packet(frame);
        let err = |e: std::io::Error| {
            let text = format!("RTP to {}: sending packet {k}: {e}", self.target.dest);
            context(e, text)
        };
        let connected = !self.retargeted && !self.target.dest.ip().is_multicast();
        let sent = if connected {
            self.sock.send(&pkt).await
        } else {
            self.sock.send_to(&pkt, self.target.dest).await
        };
        match sent {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Err(unreachable(self.target.dest, k));
            }
            r => r.map_err(err)?,
        };
        if connected && drain(&self.sock, &mut o.stats.receiver_reports) {
            return Err(unreachable(self.target.dest, k));
        }
        if let Some(r) = &self.rtcp {
            // A refused RTCP port is fine: many horns only listen for RTP.
            drain(r, &mut o.stats.receiver_reports);
        }
        let now = Instant::now();
        if let Some(due) = due
            && now.saturating_duration_since(due) > FRAME
        {
            o.stats.late_frames += 1;
        }
        o.stats.first_sent.get_or_insert(now);
        o.stats.last_sent = Some(now);
        o.stats.packets += 1;
        o.stats.octets += frame.len() as u64;
        if let Some(every) = self.target.rtcp_interval
            && now >= *o.next_rtcp
        {
            *o.next_rtcp = now + every;
            let unix = Duration::try_from(o.clock.now_utc() - time::OffsetDateTime::UNIX_EPOCH)
                .unwrap_or_default();
            let sr = o.pk.sender_report(unix, o.pk.next_timestamp(), o.cname);
            // RTCP is best effort: a receiver without an RTCP port is fine.
            let sent = match &self.rtcp {
                Some(r) if !self.retargeted => r.send(&sr).await,
                _ => self.sock.send_to(&sr, o.rtcp_dest).await,
            };
            if sent.is_ok() {
                o.stats.rtcp += 1;
            }
        }
        Ok(())
    }

    /// Sends a live stream: each 20 ms frame (160 samples of 8 kHz PCM;
    /// shorter ones are padded with silence, longer ones split) as soon as
    /// it arrives, one SSRC and continuous sequence numbers and timestamps
    /// for the whole stream. The source paces it (the live page's playout
    /// clock), so every horn of a page sends frame k at the same moment.
    /// Ends when the source ends or at `cancel`.
    pub async fn send_live(
        &self,
        mut frames: futures::stream::BoxStream<'static, Arc<[i16]>>,
        cancel: &CancellationToken,
        clock: Arc<dyn WallClock>,
    ) -> std::io::Result<SendStats> {
        use futures::StreamExt;
        let (ssrc, seq, ts) = {
            let mut r = rand::thread_rng();
            (r.r#gen::<u32>(), r.r#gen::<u16>(), r.r#gen::<u32>())
        };
        let mut pk = Packetizer::new(self.target.codec, ssrc, seq, ts);
        let rtcp_dest = SocketAddr::new(
            self.target.dest.ip(),
            self.target.dest.port().wrapping_add(1),
        );
        let cname = format!("tgw@{}", self.local_addr()?.ip());
        let mut stats = SendStats::default();
        let mut next_rtcp = Instant::now();
        let mut k = 0usize;
        loop {
            let pcm = tokio::select! {
                biased;
                _ = cancel.cancelled() => {
                    stats.cancelled = true;
                    break;
                }
                f = frames.next() => match f {
                    Some(f) => f,
                    None => break,
                },
            };
            for frame in rtp::frames(&pcm, self.target.codec) {
                let mut out = Out {
                    pk: &mut pk,
                    stats: &mut stats,
                    next_rtcp: &mut next_rtcp,
                    cname: &cname,
                    rtcp_dest,
                    clock: &*clock,
                };
                self.emit(&mut out, &frame, k, None).await?;
                k += 1;
            }
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onvif_client::SystemClock;

    /// The context added to a socket error keeps its errno (the gateway's
    /// EMFILE stays recognisable) and its kind; the text names the horn.
    #[test]
    fn context_keeps_the_errno() {
        let e = context(
            std::io::Error::from_raw_os_error(24),
            "RTP to 127.0.0.1:5004: creating a socket: Too many open files (os error 24)".into(),
        );
        assert_eq!(
            crate::local_error::of_io(&e),
            Some(crate::local_error::LocalResource::Emfile)
        );
        assert!(
            e.to_string()
                .starts_with("RTP to 127.0.0.1:5004: creating a socket")
        );
        let refused = context(std::io::Error::from_raw_os_error(111), "refused".into());
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
        assert_eq!(crate::local_error::of_io(&refused), None);
    }

    /// Packets leave on the 20 ms grid from the start instant (paused time):
    /// 10 frames span 180 ms; RTCP goes to port + 1.
    #[tokio::test(start_paused = true)]
    async fn paced_from_start_instant() {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let dest = rx.local_addr().unwrap();
        let mut t = RtpTarget::new(dest, Codec::Pcmu);
        t.rtcp_interval = None;
        let tx = RtpSender::bind(t).unwrap();
        let start = Instant::now() + Duration::from_millis(100);
        let pcm = vec![0i16; 1600];
        let cancel = CancellationToken::new();
        let s = tx
            .send_paced(&pcm, start, &cancel, Arc::new(SystemClock))
            .await
            .unwrap();
        assert_eq!(s.packets, 10);
        assert_eq!(s.octets, 1600);
        assert_eq!(s.first_sent, Some(start));
        assert_eq!(s.last_sent, Some(start + Duration::from_millis(180)));
        assert!(!s.cancelled);
        let mut buf = [0u8; 512];
        let (n, _) = rx.recv_from(&mut buf).await.unwrap();
        assert_eq!(n, 172);
        assert_eq!(buf[1], 0x80, "marker, PCMU");
    }

    /// Cancelling stops the stream between frames.
    #[tokio::test(start_paused = true)]
    async fn cancel_stops() {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let tx = RtpSender::bind(RtpTarget::new(rx.local_addr().unwrap(), Codec::Pcma)).unwrap();
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            c2.cancel();
        });
        let s = tx
            .send_paced(
                &vec![0; 8000],
                Instant::now(),
                &cancel,
                Arc::new(SystemClock),
            )
            .await
            .unwrap();
        assert!(s.cancelled);
        assert_eq!(s.packets, 3, "frames at 0, 20, 40 ms");
        assert_eq!(s.rtcp, 1);
    }

    /// A live stream: every frame the source yields leaves at once as one
    /// packet with consecutive sequence numbers and timestamps +160 (a
    /// 100-sample frame is padded, a 320-sample one split); the stream ends
    /// when the source does.
    #[tokio::test]
    async fn live_frames_are_sent_as_they_come() {
        use futures::StreamExt;
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut target = RtpTarget::new(rx.local_addr().unwrap(), Codec::Pcmu);
        target.rtcp_interval = None;
        let tx = RtpSender::bind(target).unwrap();
        let frames: Vec<Arc<[i16]>> = vec![
            Arc::from(vec![100i16; 160]),
            Arc::from(vec![0i16; 100]),
            Arc::from(vec![0i16; 320]),
        ];
        let src = futures::stream::iter(frames).boxed();
        let s = tx
            .send_live(src, &CancellationToken::new(), Arc::new(SystemClock))
            .await
            .unwrap();
        assert!(!s.cancelled);
        assert_eq!(s.packets, 4);
        let mut buf = [0u8; 1500];
        let mut heads = Vec::new();
        for _ in 0..4 {
            let n = rx.recv(&mut buf).await.unwrap();
            assert_eq!(n, 12 + 160);
            let seq = u16::from_be_bytes([buf[2], buf[3]]);
            let ts = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
            heads.push((seq, ts));
        }
        for w in heads.windows(2) {
            assert_eq!(w[1].0, w[0].0.wrapping_add(1));
            assert_eq!(w[1].1, w[0].1.wrapping_add(160));
        }
    }

    /// Cancelling a live stream that has no frames ends it, marked cancelled.
    #[tokio::test(start_paused = true)]
    async fn live_cancel_stops_a_silent_source() {
        use futures::StreamExt;
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let tx = RtpSender::bind(RtpTarget::new(rx.local_addr().unwrap(), Codec::Pcma)).unwrap();
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            c2.cancel();
        });
        let s = tx
            .send_live(
                futures::stream::pending().boxed(),
                &cancel,
                Arc::new(SystemClock),
            )
            .await
            .unwrap();
        assert!(s.cancelled);
        assert_eq!(s.packets, 0);
    }

    /// A stream started 1 s after its start instant joins where the
    /// broadcast is: 50 frames skipped, the rest on the shared grid.
    #[tokio::test(start_paused = true)]
    async fn late_start_skips_past_frames() {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut t = RtpTarget::new(rx.local_addr().unwrap(), Codec::Pcmu);
        t.rtcp_interval = None;
        let tx = RtpSender::bind(t).unwrap();
        let start = Instant::now();
        tokio::time::sleep(Duration::from_millis(1005)).await;
        let s = tx
            .send_paced(
                &vec![0; 16000],
                start,
                &CancellationToken::new(),
                Arc::new(SystemClock),
            )
            .await
            .unwrap();
        assert_eq!(s.skipped_frames, 50);
        assert_eq!(s.packets, 50);
        assert_eq!(s.first_sent, Some(start + Duration::from_millis(1005)));
        assert_eq!(s.last_sent, Some(start + Duration::from_millis(1980)));
    }

    /// Multicast: TTL 1, IP_MULTICAST_IF 127.0.0.1; a member joined on
    /// 127.0.0.1 receives the stream.
    #[tokio::test]
    async fn multicast_on_loopback() {
        let group: std::net::SocketAddrV4 = "239.255.42.99:0".parse().unwrap();
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        s.set_reuse_address(true).unwrap();
        s.bind(&SocketAddr::V4(group).into()).unwrap();
        s.join_multicast_v4(group.ip(), &Ipv4Addr::LOCALHOST)
            .unwrap();
        s.set_nonblocking(true).unwrap();
        let rx = UdpSocket::from_std(s.into()).unwrap();
        let mut t = RtpTarget::new(rx.local_addr().unwrap(), Codec::Pcma);
        t.multicast_if = Some(Ipv4Addr::LOCALHOST);
        t.rtcp_interval = None;
        let tx = RtpSender::bind(t).unwrap();
        assert_eq!(tx.local_addr().unwrap().ip(), Ipv4Addr::LOCALHOST);
        let st = tx
            .send_paced(
                &[0; 320],
                Instant::now(),
                &CancellationToken::new(),
                Arc::new(SystemClock),
            )
            .await
            .unwrap();
        assert_eq!(st.packets, 2);
        let mut buf = [0u8; 512];
        let (n, from) = tokio::time::timeout(Duration::from_secs(2), rx.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((n, buf[1] & 0x7f), (172, 8));
        assert_eq!(from.ip(), Ipv4Addr::LOCALHOST);
    }

    /// Nothing listening on the horn's port: the kernel answers the first
    /// packet with ICMP port-unreachable and the stream stops at once with
    /// `ConnectionRefused`, saying the horn is unreachable.
    #[tokio::test]
    async fn refused_port_is_unreachable() {
        let port = {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap().port()
        };
        let dest: SocketAddr = (Ipv4Addr::LOCALHOST, port).into();
        let tx = RtpSender::bind(RtpTarget::new(dest, Codec::Pcmu)).unwrap();
        let e = tx
            .send_paced(
                &[0; 8000],
                Instant::now(),
                &CancellationToken::new(),
                Arc::new(SystemClock),
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
        assert!(e.to_string().contains("unreachable"), "{e}");
        assert!(e.to_string().contains(&dest.to_string()), "{e}");
    }

    /// Binds a horn's RTP and RTCP ports (P, P + 1).
    async fn port_pair() -> (UdpSocket, UdpSocket) {
        for _ in 0..50 {
            let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let p = a.local_addr().unwrap().port();
            if p == u16::MAX {
                continue;
            }
            if let Ok(b) = UdpSocket::bind(("127.0.0.1", p + 1)).await {
                return (a, b);
            }
        }
        panic!("no free UDP port pair");
    }

    /// A horn that swallows packets: the stream completes, nothing heard.
    /// A horn that answers each sender report with a receiver report: heard.
    #[tokio::test]
    async fn receiver_reports_are_counted() {
        let (rtp, rtcp) = port_pair().await;
        let dest = rtp.local_addr().unwrap();
        let mut t = RtpTarget::new(dest, Codec::Pcmu);
        t.rtcp_interval = Some(Duration::from_millis(40));
        let go = |t: RtpTarget| async move {
            RtpSender::bind(t)
                .unwrap()
                .send_paced(
                    &[0; 1600],
                    Instant::now(),
                    &CancellationToken::new(),
                    Arc::new(SystemClock),
                )
                .await
                .unwrap()
        };
        let silent = go(t.clone()).await;
        assert_eq!(silent.packets, 10);
        assert!(silent.rtcp > 0);
        assert_eq!(silent.receiver_reports, 0);

        // The horn answers SRs with an RR (V=2, RC=0, PT=201, length 1).
        let answer = tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            loop {
                let (n, from) = rtcp.recv_from(&mut buf).await.unwrap();
                if n >= 8 && buf[1] == 200 {
                    let rr = [0x80, 201, 0, 1, 1, 2, 3, 4];
                    rtcp.send_to(&rr, from).await.unwrap();
                }
            }
        });
        let heard = go(t).await;
        answer.abort();
        assert!(heard.receiver_reports > 0, "{heard:?}");
        drop(rtp);
    }

    #[test]
    fn receiver_report_recognised() {
        assert!(is_receiver_report(&[0x80, 201, 0, 1, 1, 2, 3, 4]));
        assert!(!is_receiver_report(&[0x80, 200, 0, 6, 1, 2, 3, 4]));
        assert!(!is_receiver_report(&[0x40, 201, 0, 1, 1, 2, 3, 4]));
        assert!(!is_receiver_report(&[0x80, 201, 0]));
        assert!(!is_receiver_report(&[0x80, 0, 0, 1, 1, 2, 3, 4]));
    }
}
