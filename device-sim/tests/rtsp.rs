//! End-to-end tests of the simulated cameras' RTSP servers and snapshots over
//! real loopback sockets, with a minimal RTSP client written here and, as a
//! cross-check, device-drivers' retina-based probe. Each test has its own
//! address range (127.79.N.x), no multicast, ephemeral RTSP ports. Streaming
//! tests measure a second or two of real time (the stream is paced by the
//! wall clock); assertions leave wide margins.

// Helpers outside #[test] fns unwrap too: a failure here is a test failure.
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use device_drivers::onvif_client::Credentials;
use device_drivers::rtsp_probe::{self, RtspOptions, Transport};
use device_sim::digest::{DigestParams, expected_response, parse_authorization};
use device_sim::{Fault, Sim, SimConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

const PW: &str = "pw-rtsp";

async fn sim(n: u8, cameras: usize, faults: Vec<(String, Fault)>) -> Sim {
    device_sim::start(SimConfig {
        cameras,
        bind: Ipv4Addr::new(127, 79, n, 1),
        wsd_port: 38700 + u16::from(n),
        rtsp_port: 0,
        multicast: None,
        password: Some(PW.into()),
        faults,
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

fn uri(sim: &Sim, cam: usize, stream: usize) -> String {
    sim.manifest().devices[cam].rtsp.as_ref().unwrap()[stream].clone()
}

fn user(sim: &Sim, cam: usize) -> String {
    sim.manifest().devices[cam].username.clone().unwrap()
}

fn peer(uri: &str) -> SocketAddr {
    let rest = uri.split_once("://").unwrap().1;
    let hostport = rest.split('/').next().unwrap();
    hostport.parse().unwrap()
}

fn digest_header(www: &str, method: &str, uri: &str, user: &str, pw: &str) -> String {
    let ch = parse_authorization(www).unwrap();
    let p = DigestParams {
        username: user.into(),
        realm: ch.realm.clone(),
        nonce: ch.nonce.clone(),
        uri: uri.into(),
        ..Default::default()
    };
    let r = expected_response(&p, method, pw);
    format!(
        "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{r}\"",
        ch.realm, ch.nonce
    )
}

/// One RTP packet as received: (sequence, timestamp, marker, arrival).
type Pkt = (u16, u32, bool, Instant);

/// A minimal RTSP client: one request at a time, Digest on demand,
/// interleaved RTP collected while reading.
struct Client {
    tcp: TcpStream,
    buf: Vec<u8>,
    cseq: u32,
    user: String,
    pw: String,
    www: Option<String>,
    session: Option<String>,
    rtp: Vec<Pkt>,
}

struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

impl Client {
    async fn connect(uri: &str, user: &str, pw: &str) -> std::io::Result<Client> {
        Ok(Client {
            tcp: TcpStream::connect(peer(uri)).await?,
            buf: Vec::new(),
            cseq: 0,
            user: user.into(),
            pw: pw.into(),
            www: None,
            session: None,
            rtp: Vec::new(),
        })
    }

    /// Reads until one RTSP answer is complete, collecting RTP on the way.
    async fn answer(&mut self) -> Answer {
        loop {
            while self.buf.first() == Some(&b'$') && self.buf.len() >= 4 {
                let len = usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
                if self.buf.len() < 4 + len {
                    break;
                }
                let p = &self.buf[4..4 + len];
                self.rtp.push((
                    u16::from_be_bytes([p[2], p[3]]),
                    u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
                    p[1] & 0x80 != 0,
                    Instant::now(),
                ));
                self.buf.drain(..4 + len);
            }
            if self.buf.starts_with(b"RTSP/")
                && let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n")
            {
                let head = String::from_utf8(self.buf[..end].to_vec()).unwrap();
                let mut a = Answer {
                    status: head[9..12].parse().unwrap(),
                    head,
                    body: String::new(),
                };
                let len: usize = a.header("Content-Length").map_or(0, |v| v.parse().unwrap());
                if self.buf.len() >= end + 4 + len {
                    a.body = String::from_utf8(self.buf[end + 4..end + 4 + len].to_vec()).unwrap();
                    self.buf.drain(..end + 4 + len);
                    return a;
                }
            }
            let mut tmp = [0u8; 16384];
            let n = timeout(Duration::from_secs(5), self.tcp.read(&mut tmp))
                .await
                .expect("answer within 5 s")
                .unwrap();
            assert!(n > 0, "connection closed while waiting for an answer");
            self.buf.extend_from_slice(&tmp[..n]);
        }
    }

    async fn request(&mut self, method: &str, uri: &str, extra: &[(&str, &str)]) -> Answer {
        for attempt in 0..2 {
            self.cseq += 1;
            let mut s = format!("{method} {uri} RTSP/1.0\r\nCSeq: {}\r\n", self.cseq);
            if let Some(www) = &self.www {
                let h = digest_header(www, method, uri, &self.user, &self.pw);
                s.push_str(&format!("Authorization: {h}\r\n"));
            }
            if let Some(id) = &self.session {
                s.push_str(&format!("Session: {id}\r\n"));
            }
            for (k, v) in extra {
                s.push_str(&format!("{k}: {v}\r\n"));
            }
            s.push_str("\r\n");
            self.tcp.write_all(s.as_bytes()).await.unwrap();
            let a = self.answer().await;
            if a.status == 401 && attempt == 0 && self.www.is_none() {
                self.www = a.header("WWW-Authenticate");
                continue;
            }
            if let Some(id) = a.header("Session") {
                self.session = Some(id.split(';').next().unwrap().to_string());
            }
            return a;
        }
        unreachable!()
    }

    /// DESCRIBE, SETUP (interleaved), PLAY; returns the PLAY answer.
    async fn play(&mut self, uri: &str) -> Answer {
        let d = self.request("DESCRIBE", uri, &[]).await;
        assert_eq!(d.status, 200, "{}", d.head);
        let base = d.header("Content-Base").unwrap();
        let control = if d.body.contains("a=control:track1") {
            "track1"
        } else {
            "trackID=1"
        };
        let s = self
            .request(
                "SETUP",
                &format!("{base}{control}"),
                &[("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")],
            )
            .await;
        assert_eq!(s.status, 200, "{}", s.head);
        self.request("PLAY", uri, &[("Range", "npt=0.000-")]).await
    }

    /// Collects RTP for `d`.
    async fn collect(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        loop {
            let mut tmp = [0u8; 16384];
            match tokio::time::timeout_at(deadline, self.tcp.read(&mut tmp)).await {
                Err(_) => break,
                Ok(Ok(0)) | Ok(Err(_)) => panic!("connection closed while streaming"),
                Ok(Ok(n)) => {
                    self.buf.extend_from_slice(&tmp[..n]);
                    while self.buf.first() == Some(&b'$') && self.buf.len() >= 4 {
                        let len = usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
                        if self.buf.len() < 4 + len {
                            break;
                        }
                        let p = &self.buf[4..4 + len];
                        self.rtp.push((
                            u16::from_be_bytes([p[2], p[3]]),
                            u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
                            p[1] & 0x80 != 0,
                            Instant::now(),
                        ));
                        self.buf.drain(..4 + len);
                    }
                }
            }
        }
    }

    /// Complete frames (marker packets) received.
    fn frames(&self) -> Vec<&Pkt> {
        self.rtp.iter().filter(|p| p.2).collect()
    }
}

/// Frames per second between the first and last complete frame.
fn fps(frames: &[&Pkt]) -> f64 {
    let (first, last) = (frames.first().unwrap().3, frames.last().unwrap().3);
    (frames.len() - 1) as f64 / (last - first).as_secs_f64()
}

/// DESCRIBE/SETUP/PLAY on the sub stream: the SDP carries the clip's
/// sprop-parameter-sets, about 15 frames per second arrive, sequence numbers
/// are contiguous and RTP timestamps step by exactly 6000 (90 kHz / 15)
/// through the 2 s clip's loop boundary, starting at PLAY's RTP-Info.
#[tokio::test]
async fn plays_sub_stream_in_real_time_across_the_loop() {
    let sim = sim(1, 1, vec![]).await;
    let u = uri(&sim, 0, 1);
    let mut c = Client::connect(&u, &user(&sim, 0), PW).await.unwrap();
    let d = c.request("DESCRIBE", &u, &[]).await;
    let clips = device_sim::rtsp::Clips::builtin().unwrap();
    assert!(d.body.contains(&format!(
        "sprop-parameter-sets={}",
        clips.get(1).sprop_parameter_sets()
    )));
    assert_eq!(
        d.header("Server").as_deref(),
        Some("HIKVISION RTSP Server/1.0")
    );
    let p = c.play(&u).await;
    assert_eq!(p.status, 200);
    let info = p.header("RTP-Info").unwrap();
    c.collect(Duration::from_millis(2600)).await;
    let frames = c.frames();
    assert!(
        frames.len() > 32,
        "past the 30-frame loop: {}",
        frames.len()
    );
    let f = fps(&frames);
    assert!((12.0..=18.0).contains(&f), "fps {f}");
    let (s0, t0, ..) = c.rtp[0];
    assert!(info.ends_with(&format!("seq={s0};rtptime={t0}")), "{info}");
    for w in c.rtp.windows(2) {
        assert_eq!(w[1].0, w[0].0.wrapping_add(1), "sequence gap");
        let dt = w[1].1.wrapping_sub(w[0].1);
        assert!(dt == 0 || dt == 6000, "timestamp step {dt}");
    }
    sim.shutdown().await;
}

/// The retina-based probe of device-drivers accepts the stream: DESCRIBE
/// metadata matches the ONVIF profiles (1280x720@25 main, 640x360@15 sub)
/// and a TCP sample of the sub stream measures about 15 fps without loss;
/// UDP transport works too.
#[tokio::test]
async fn retina_probe_cross_check() {
    let sim = sim(2, 1, vec![]).await;
    let creds = Credentials::new(user(&sim, 0), PW);
    let opts = RtspOptions {
        window: Duration::from_millis(1500),
        ..RtspOptions::default()
    };
    let main = rtsp_probe::describe(&uri(&sim, 0, 0), Some(&creds), &opts)
        .await
        .unwrap();
    let v = main.video().unwrap();
    assert_eq!(
        (v.codec.as_str(), v.width, v.height),
        ("H264", Some(1280), Some(720))
    );
    assert_eq!(v.fps, Some(25.0));
    let s = rtsp_probe::sample(&uri(&sim, 0, 1), Some(&creds), &opts)
        .await
        .unwrap();
    assert_eq!((s.width, s.height), (Some(640), Some(360)));
    let f = s.measured_fps.unwrap();
    assert!((12.0..=18.0).contains(&f), "fps {f}");
    assert_eq!(s.rtp_loss_packets, 0);
    let udp = RtspOptions {
        transport: Transport::Udp,
        window: Duration::from_millis(700),
        ..RtspOptions::default()
    };
    let s = rtsp_probe::sample(&uri(&sim, 0, 1), Some(&creds), &udp)
        .await
        .unwrap();
    assert!(s.frames >= 5, "{s:?}");
    sim.shutdown().await;
}

/// TP-Link flavour: the bogus `m=application/TP-LINK` section is skipped by
/// the probe; Dahua flavour: an ONVIF metadata track besides the video.
#[tokio::test]
async fn vendor_sdps_through_the_probe() {
    let sim = sim(3, 4, vec![]).await;
    let opts = RtspOptions::default();
    let tp = sim.manifest().devices[3].clone();
    assert_eq!(tp.flavour, "tplink");
    let creds = Credentials::new(user(&sim, 3), PW);
    let m = rtsp_probe::describe(&uri(&sim, 3, 0), Some(&creds), &opts)
        .await
        .unwrap();
    assert_eq!(m.tracks.len(), 1);
    assert_eq!(m.skipped.len(), 1, "{:?}", m.skipped);
    assert_eq!(m.server.as_deref(), Some("TP-LINK RTSP Server"));
    let creds = Credentials::new(user(&sim, 1), PW);
    let m = rtsp_probe::describe(&uri(&sim, 1, 1), Some(&creds), &opts)
        .await
        .unwrap();
    assert!(
        m.tracks.iter().any(|t| t.codec == "ONVIF-METADATA"),
        "{m:?}"
    );
    sim.shutdown().await;
}

/// frozen: PLAY is answered 200, then no RTP for a second, connection open;
/// clearing the fault resumes the stream on the same connection.
#[tokio::test]
async fn frozen_plays_but_sends_nothing() {
    let sim = sim(4, 1, vec![("cam-0001".into(), Fault::Frozen)]).await;
    let u = uri(&sim, 0, 1);
    let mut c = Client::connect(&u, &user(&sim, 0), PW).await.unwrap();
    assert_eq!(c.play(&u).await.status, 200);
    c.collect(Duration::from_secs(1)).await;
    assert!(c.rtp.is_empty(), "{} packets", c.rtp.len());
    assert_eq!(c.request("GET_PARAMETER", &u, &[]).await.status, 200);
    sim.set_fault("cam-0001", None).unwrap();
    c.collect(Duration::from_millis(500)).await;
    assert!(!c.frames().is_empty());
    sim.shutdown().await;
}

/// stream-refused: DESCRIBE is answered 503 (ONVIF is unaffected).
#[tokio::test]
async fn stream_refused_is_503() {
    let sim = sim(5, 1, vec![("cam-0001".into(), Fault::StreamRefused)]).await;
    let u = uri(&sim, 0, 0);
    let mut c = Client::connect(&u, &user(&sim, 0), PW).await.unwrap();
    assert_eq!(c.request("DESCRIBE", &u, &[]).await.status, 503);
    let creds = Credentials::new(user(&sim, 0), PW);
    let e = rtsp_probe::describe(&u, Some(&creds), &RtspOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind_label(), "refused", "{e}");
    sim.shutdown().await;
}

/// wrong-password: the configured credentials get 401 on DESCRIBE.
#[tokio::test]
async fn wrong_password_is_401() {
    let sim = sim(6, 1, vec![("cam-0001".into(), Fault::WrongPassword)]).await;
    let u = uri(&sim, 0, 0);
    let mut c = Client::connect(&u, &user(&sim, 0), PW).await.unwrap();
    assert_eq!(c.request("DESCRIBE", &u, &[]).await.status, 401);
    sim.shutdown().await;
}

/// low-fps:5: about 5 frames per second, timestamps 18000 apart.
#[tokio::test]
async fn low_fps() {
    let sim = sim(
        7,
        1,
        vec![("cam-0001".into(), "low-fps:5".parse().unwrap())],
    )
    .await;
    let u = uri(&sim, 0, 0);
    let mut c = Client::connect(&u, &user(&sim, 0), PW).await.unwrap();
    assert_eq!(c.play(&u).await.status, 200);
    c.collect(Duration::from_millis(1700)).await;
    let frames = c.frames();
    assert!((6..=11).contains(&frames.len()), "{} frames", frames.len());
    let f = fps(&frames);
    assert!((4.0..=6.0).contains(&f), "fps {f}");
    for w in frames.windows(2) {
        assert_eq!(w[1].1.wrapping_sub(w[0].1), 18_000);
    }
    sim.shutdown().await;
}

/// packet-loss:20: about a fifth of the sequence numbers never arrive.
#[tokio::test]
async fn packet_loss_shows_as_sequence_gaps() {
    let sim = sim(8, 1, vec![("cam-0001".into(), Fault::PacketLoss(20))]).await;
    let u = uri(&sim, 0, 0);
    let mut c = Client::connect(&u, &user(&sim, 0), PW).await.unwrap();
    assert_eq!(c.play(&u).await.status, 200);
    c.collect(Duration::from_millis(1500)).await;
    let first = c.rtp.first().unwrap().0;
    let last = c.rtp.last().unwrap().0;
    let span = usize::from(last.wrapping_sub(first)) + 1;
    let lost = span - c.rtp.len();
    let pct = lost as f64 * 100.0 / span as f64;
    assert!((8.0..=32.0).contains(&pct), "{pct:.1}% of {span}");
    sim.shutdown().await;
}

async fn rtsp_up(addr: SocketAddr) -> bool {
    matches!(
        timeout(Duration::from_millis(200), TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// flapping:1: the whole camera (SOAP and RTSP ports) is up for a second,
/// down for a second, up again.
#[tokio::test]
async fn flapping_alternates() {
    let sim = sim(
        9,
        1,
        vec![("cam-0001".into(), "flapping:1".parse().unwrap())],
    )
    .await;
    let t0 = Instant::now();
    let rtsp = peer(&uri(&sim, 0, 0));
    let xaddr = sim.manifest().devices[0].xaddr.clone().unwrap();
    let soap = peer(&xaddr);
    let mut seen = Vec::new();
    for at_ms in [300u64, 1500, 2500] {
        tokio::time::sleep_until(t0 + Duration::from_millis(at_ms)).await;
        seen.push((rtsp_up(rtsp).await, rtsp_up(soap).await));
    }
    assert_eq!(seen, vec![(true, true), (false, false), (true, true)]);
    sim.shutdown().await;
}

/// An RTSP session is cut when its camera goes offline.
#[tokio::test]
async fn offline_cuts_sessions() {
    let sim = sim(10, 1, vec![]).await;
    let u = uri(&sim, 0, 1);
    let mut c = Client::connect(&u, &user(&sim, 0), PW).await.unwrap();
    assert_eq!(c.play(&u).await.status, 200);
    sim.set_fault("cam-0001", Some(Fault::Offline)).unwrap();
    let mut tmp = [0u8; 65536];
    let closed = timeout(Duration::from_secs(2), async {
        loop {
            match c.tcp.read(&mut tmp).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok());
    assert!(!rtsp_up(peer(&u)).await);
    sim.shutdown().await;
}

/// Snapshots: a Digest-protected JPEG on the camera's HTTP port, a
/// different URI per profile; 401 without or with wrong credentials.
#[tokio::test]
async fn snapshots() {
    let sim = sim(11, 2, vec![("cam-0002".into(), Fault::WrongPassword)]).await;
    let http = reqwest::Client::new();
    for cam in 0..2 {
        let snaps = sim.manifest().devices[cam].snapshot.clone().unwrap();
        assert_ne!(snaps[0], snaps[1]);
        for s in &snaps {
            let r = http.get(s).send().await.unwrap();
            assert_eq!(r.status(), 401);
            let www = r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .to_string();
            let rest = s.strip_prefix("http://").unwrap();
            let target = &rest[rest.find('/').unwrap()..];
            let auth = digest_header(&www, "GET", target, &user(&sim, cam), PW);
            let r = http
                .get(s)
                .header("Authorization", auth)
                .send()
                .await
                .unwrap();
            if cam == 1 {
                assert_eq!(r.status(), 401, "wrong-password camera");
                continue;
            }
            assert_eq!(r.status(), 200, "{s}");
            assert_eq!(r.headers()["content-type"], "image/jpeg");
            let body = r.bytes().await.unwrap();
            assert_eq!(&body[..2], &[0xff, 0xd8]);
            assert_eq!(&body[..], device_sim::rtsp::SNAPSHOT_JPEG);
        }
    }
    sim.shutdown().await;
}

/// The manifest's and ONVIF's stream URIs carry the RTSP port really bound
/// (a fixed port is honoured; port 0 gives ephemeral ports).
#[tokio::test]
async fn manifest_has_the_real_port() {
    let sim = device_sim::start(SimConfig {
        cameras: 2,
        bind: Ipv4Addr::new(127, 79, 12, 1),
        wsd_port: 38712,
        rtsp_port: 18554,
        multicast: None,
        password: Some(PW.into()),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(
        uri(&sim, 0, 0),
        "rtsp://127.79.12.1:18554/Streaming/Channels/101"
    );
    assert_eq!(
        uri(&sim, 1, 1),
        "rtsp://127.79.12.2:18554/cam/realmonitor?channel=1&subtype=1"
    );
    assert!(rtsp_up(peer(&uri(&sim, 1, 0))).await);
    sim.shutdown().await;
    let sim = sim_ephemeral().await;
    let port = peer(&uri(&sim, 0, 0)).port();
    assert_ne!(port, 0);
    assert!(rtsp_up(peer(&uri(&sim, 0, 0))).await);
    sim.shutdown().await;
}

async fn sim_ephemeral() -> Sim {
    sim(13, 1, vec![]).await
}

/// wrong-codec: the probe reads H265 from the SDP of a profile ONVIF calls H264.
#[tokio::test]
async fn wrong_codec_through_the_probe() {
    let sim = sim(14, 1, vec![("cam-0001".into(), Fault::WrongCodec)]).await;
    let creds = Credentials::new(user(&sim, 0), PW);
    let m = rtsp_probe::describe(&uri(&sim, 0, 0), Some(&creds), &RtspOptions::default())
        .await
        .unwrap();
    assert_eq!(m.video().unwrap().codec, "H265");
    sim.shutdown().await;
}
