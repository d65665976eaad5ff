//! Unit tests of the pure RTSP core: clips, SDP, request parsing, the
//! connection state machine and RTP numbering.

use std::net::Ipv4Addr;

use device_drivers::rtsp as drv;

use super::*;
use crate::digest::{DigestParams, expected_response};

const SECRET: &str = "s3cret";
const NOW: i64 = 1_800_000_000;

fn clips() -> Clips {
    Clips::builtin().unwrap()
}

fn cam(index: usize) -> Camera {
    let mut c = Camera::new(
        index,
        1,
        Ipv4Addr::new(127, 9, 0, 1),
        8000,
        "pw".into(),
        "v".into(),
        "g".into(),
    );
    c.rtsp_port = 8554;
    c
}

fn req(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request {
    Request {
        method: method.into(),
        uri: uri.into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// A Digest `Authorization` a client computes from a 401's challenge.
fn authorization(www: &str, method: &str, uri: &str, user: &str, pw: &str) -> String {
    let ch = crate::digest::parse_authorization(www).unwrap();
    let p = DigestParams {
        username: user.into(),
        realm: ch.realm.clone(),
        nonce: ch.nonce.clone(),
        uri: uri.into(),
        qop: Some("auth".into()),
        nc: Some("00000001".into()),
        cnonce: Some("c0ffee".into()),
        ..Default::default()
    };
    let r = expected_response(&p, method, pw);
    format!(
        "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{r}\", qop=auth, nc=00000001, cnonce=\"c0ffee\"",
        ch.realm, ch.nonce
    )
}

struct Client {
    conn: Conn,
    cam: Camera,
    clips: Clips,
    fault: Option<Fault>,
    password: String,
    session: Option<String>,
}

impl Client {
    fn new(index: usize) -> Client {
        Client {
            conn: Conn::new(7),
            cam: cam(index),
            clips: clips(),
            fault: None,
            password: "pw".into(),
            session: None,
        }
    }

    fn raw(&mut self, r: &Request) -> (Response, Action) {
        let ctx = ConnCtx {
            camera: &self.cam,
            fault: self.fault.as_ref(),
            clips: &self.clips,
            now_unix: NOW,
            digest_secret: SECRET,
            udp_port: Some(40000),
        };
        self.conn.handle(&ctx, r)
    }

    /// Sends with Digest auth (answering the 401 first), like a client does.
    fn send(&mut self, method: &str, uri: &str, extra: &[(&str, &str)]) -> (Response, Action) {
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        let sess = self.session.clone();
        if let Some(s) = &sess {
            headers.push(("Session", s));
        }
        let (r, a) = self.raw(&req(method, uri, &headers));
        if r.status != 401 {
            return (r, a);
        }
        let www = r.header("WWW-Authenticate").unwrap().to_string();
        let auth = authorization(
            &www,
            method,
            uri,
            &self.cam.username.clone(),
            &self.password.clone(),
        );
        headers.push(("Authorization", &auth));
        let (r, a) = self.raw(&req(method, uri, &headers));
        if let Some(s) = r.header("Session") {
            self.session = Some(s.split(';').next().unwrap().to_string());
        }
        (r, a)
    }
}

/// The committed clips parse into the frame counts, sizes and H.264 profiles
/// the ONVIF profiles advertise, every payload fits the MTU, and big
/// keyframes are FU-A fragmented.
#[test]
fn builtin_clips() {
    let c = clips();
    let (m, s) = (c.get(0), c.get(1));
    assert_eq!(
        (m.frames.len(), m.fps, m.width, m.height),
        (50, 25, 1280, 720)
    );
    assert_eq!(
        (s.frames.len(), s.fps, s.width, s.height),
        (30, 15, 640, 360)
    );
    for clip in [m, s] {
        assert!(clip.frames[0].keyframe);
        assert_eq!(clip.frames.iter().filter(|f| f.keyframe).count(), 1);
        assert!(
            clip.frames
                .iter()
                .flatten_payloads()
                .all(|p| p.len() <= MTU)
        );
        let sps = drv::parse_h264_sps(&clip.sps).unwrap();
        assert_eq!(sps.dimensions, Some((clip.width, clip.height)));
        assert_eq!(sps.fps, Some(clip.fps as f32));
    }
    assert_eq!(m.profile_level_id(), "4d401f");
    assert!(
        s.profile_level_id().starts_with("42"),
        "{}",
        s.profile_level_id()
    );
    // The main keyframe is far above the MTU: FU-A (type 28) start and end.
    let kf = &m.frames[0].payloads;
    assert!(kf.iter().any(|p| p[0] & 0x1f == 28 && p[1] & 0x80 != 0));
    assert!(kf.iter().any(|p| p[0] & 0x1f == 28 && p[1] & 0x40 != 0));
    // Within 15 % of the profile bitrate limits (512 / 256 kbit/s).
    assert!((435..=590).contains(&m.kbps()), "{}", m.kbps());
    assert!((217..=295).contains(&s.kbps()), "{}", s.kbps());
}

trait Flatten<'a> {
    fn flatten_payloads(self) -> Box<dyn Iterator<Item = &'a Bytes> + 'a>;
}

impl<'a, I: Iterator<Item = &'a Frame> + 'a> Flatten<'a> for I {
    fn flatten_payloads(self) -> Box<dyn Iterator<Item = &'a Bytes> + 'a> {
        Box::new(self.flat_map(|f| f.payloads.iter()))
    }
}

/// Clips without parameter sets or without a leading IDR are refused.
#[test]
fn bad_clips_refused() {
    assert_eq!(
        Clip::from_annexb(b"", 25, 1, 1).unwrap_err(),
        ClipError::Empty
    );
    let p_only = [0, 0, 0, 1, 0x41, 0x9a, 1, 2];
    assert_eq!(
        Clip::from_annexb(&p_only, 25, 1, 1).unwrap_err(),
        ClipError::NoParameterSets
    );
}

/// The SDP carries the clip's sprop-parameter-sets, which device-drivers'
/// SDP reader turns back into the profile's resolution and frame rate.
#[test]
fn sdp_round_trips_through_the_probe_parser() {
    let c = clips();
    for (stream, spec) in PROFILES.iter().enumerate() {
        let sdp = sdp(&cam(0), stream, c.get(stream), None, 42);
        assert!(sdp.contains("a=rtpmap:96 H264/90000\r\n"), "{sdp}");
        assert!(sdp.contains(&format!(
            "sprop-parameter-sets={}",
            c.get(stream).sprop_parameter_sets()
        )));
        assert!(sdp.contains("packetization-mode=1;profile-level-id="));
        assert!(sdp.contains("a=control:trackID=1\r\n"));
        let meta = drv::parse_sdp(sdp.as_bytes()).unwrap();
        let v = meta.video().unwrap();
        assert_eq!(v.codec, "H264");
        assert_eq!((v.width, v.height), (Some(spec.width), Some(spec.height)));
        assert_eq!(v.fps, Some(spec.fps as f32));
        assert!(meta.warnings.is_empty(), "{:?}", meta.warnings);
    }
}

/// TP-Link/Mercury quirk: a bogus `m=application/TP-LINK` section after the
/// video, which parsers must skip; Dahua adds an ONVIF metadata track.
#[test]
fn vendor_sdp_sections() {
    let c = clips();
    let tp = cam(3);
    assert_eq!(tp.flavour, Flavour::TpLink);
    let s = sdp(&tp, 0, c.get(0), None, 1);
    assert!(
        s.contains("m=application/TP-LINK 0 RTP/AVP smart/1/90000\r\na=rtpmap:95 TP-LINK/90000")
    );
    assert!(s.contains("a=control:track1\r\n"));
    let meta = drv::parse_sdp(s.as_bytes()).unwrap();
    assert_eq!(meta.tracks.len(), 1);
    assert_eq!(meta.skipped.len(), 1, "{:?}", meta.skipped);

    let dh = cam(1);
    assert_eq!(dh.flavour, Flavour::Dahua);
    let meta = drv::parse_sdp(sdp(&dh, 1, c.get(1), None, 1).as_bytes()).unwrap();
    assert_eq!(meta.tracks.len(), 2);
    assert_eq!(meta.tracks[1].codec, "ONVIF-METADATA");
}

/// wrong-codec: the SDP says H265 (no parameter sets) while ONVIF says H264.
#[test]
fn wrong_codec_sdp() {
    let c = clips();
    let s = sdp(&cam(0), 0, c.get(0), Some(&Fault::WrongCodec), 1);
    assert!(s.contains("a=rtpmap:96 H265/90000"));
    assert!(!s.contains("sprop-parameter-sets"));
    let meta = drv::parse_sdp(s.as_bytes()).unwrap();
    assert_eq!(meta.video().unwrap().codec, "H265");
}

/// Requests split across reads, bodies, client RTCP frames and garbage.
#[test]
fn parses_incoming() {
    let r = b"OPTIONS rtsp://h/x RTSP/1.0\r\nCSeq: 1\r\n\r\n";
    for cut in 0..r.len() {
        assert_eq!(parse_incoming(&r[..cut]), Ok(None), "cut {cut}");
    }
    let (m, used) = parse_incoming(r).unwrap().unwrap();
    assert_eq!(used, r.len());
    let Incoming::Request(q) = m else { panic!() };
    assert_eq!(
        (q.method.as_str(), q.header("cseq")),
        ("OPTIONS", Some("1"))
    );

    let with_body = b"SET_PARAMETER rtsp://h/x RTSP/1.0\r\nCSeq: 2\r\nContent-Length: 4\r\n\r\nab";
    assert_eq!(parse_incoming(with_body), Ok(None));
    let mut full = with_body.to_vec();
    full.extend_from_slice(b"cdNEXT");
    assert_eq!(parse_incoming(&full).unwrap().unwrap().1, full.len() - 4);

    let rtcp = [b'$', 1, 0, 3, 9, 9, 9, b'O'];
    assert_eq!(
        parse_incoming(&rtcp),
        Ok(Some((Incoming::Interleaved { channel: 1 }, 7)))
    );
    assert_eq!(parse_incoming(&rtcp[..5]), Ok(None));

    assert!(matches!(
        parse_incoming(b"GET / HTTP/1.1\r\n\r\n"),
        Err(RequestError::Malformed(_))
    ));
    assert!(matches!(
        parse_incoming(b"\x16\x03\x01 junk junk\r\n\r\n"),
        Err(RequestError::Malformed(_))
    ));
    assert_eq!(
        parse_incoming(&vec![b'A'; MAX_REQUEST_BYTES + 1]),
        Err(RequestError::TooLarge)
    );
    let huge_body = b"ANNOUNCE rtsp://h/x RTSP/1.0\r\nContent-Length: 99999999\r\n\r\n";
    assert_eq!(parse_incoming(huge_body), Err(RequestError::TooLarge));
}

/// Transport specs: interleaved with/without channels, UDP client ports,
/// multicast refused, first acceptable spec wins.
#[test]
fn transports() {
    use RequestedTransport as T;
    assert_eq!(
        parse_transport("RTP/AVP/TCP;unicast;interleaved=2-3"),
        Some(T::Interleaved(Some((2, 3))))
    );
    assert_eq!(
        parse_transport("RTP/AVP/TCP;unicast"),
        Some(T::Interleaved(None))
    );
    assert_eq!(
        parse_transport("RTP/AVP;unicast;client_port=5000-5001"),
        Some(T::Udp {
            rtp: 5000,
            rtcp: 5001
        })
    );
    assert_eq!(
        parse_transport("RTP/AVP;multicast, RTP/AVP/UDP;unicast;client_port=6000"),
        Some(T::Udp {
            rtp: 6000,
            rtcp: 6001
        })
    );
    assert_eq!(parse_transport("RAW/RAW/UDP;unicast"), None);
    assert_eq!(parse_transport("RTP/AVP;unicast"), None);
}

/// The URI helpers find the stream, the track and tolerate Dahua's query.
#[test]
fn uris() {
    let dh = cam(1);
    let main = dh.stream_uri(0);
    assert_eq!(stream_of(&dh, &main), Some(0));
    assert_eq!(stream_of(&dh, &dh.stream_uri(1)), Some(1));
    assert_eq!(stream_of(&dh, "rtsp://127.9.0.2:8554/nope"), None);
    assert_eq!(track_of(&format!("{main}/trackID=4")), Some(4));
    assert_eq!(track_of("rtsp://h/stream1/track3"), Some(3));
    assert_eq!(track_of(&main), None);
    assert_eq!(path_of("rtsp://h:1/a?b"), "/a?b");
}

/// OPTIONS is open; everything else needs Digest; DESCRIBE → SETUP → PLAY →
/// GET_PARAMETER → TEARDOWN works and PLAY's RTP-Info matches the session.
#[test]
fn happy_session() {
    let mut c = Client::new(0);
    let uri = c.cam.stream_uri(1);
    let (r, _) = c.raw(&req("OPTIONS", &uri, &[]));
    assert_eq!(r.status, 200);
    assert!(r.header("Public").unwrap().contains("GET_PARAMETER"));
    let (r, _) = c.raw(&req("DESCRIBE", &uri, &[]));
    assert_eq!(r.status, 401);
    assert!(
        r.header("WWW-Authenticate")
            .unwrap()
            .contains("realm=\"IP Camera(")
    );
    let (r, _) = c.send("DESCRIBE", &uri, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Base"), Some(format!("{uri}/").as_str()));
    assert!(r.body.starts_with("v=0\r\n"));
    let bytes = String::from_utf8(r.to_bytes(Some("3"), "X")).unwrap();
    assert!(bytes.starts_with("RTSP/1.0 200 OK\r\nCSeq: 3\r\nServer: X\r\n"));
    assert!(bytes.contains(&format!("Content-Length: {}\r\n", r.body.len())));

    let track = format!("{uri}/trackID=1");
    let (r, a) = c.send("PLAY", &uri, &[]);
    assert_eq!((r.status, a), (455, Action::None), "PLAY before SETUP");
    let (r, _) = c.send(
        "SETUP",
        &track,
        &[("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")],
    );
    assert_eq!(r.status, 200);
    assert!(r.header("Session").unwrap().ends_with(";timeout=60"));
    assert!(
        r.header("Transport")
            .unwrap()
            .starts_with("RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=")
    );
    let s = c.conn.session.clone().unwrap();
    assert_eq!(s.video, Some(VideoTransport::Interleaved { channel: 0 }));
    let (r, a) = c.send("PLAY", &uri, &[]);
    assert_eq!((r.status, a), (200, Action::Play));
    assert_eq!(
        r.header("RTP-Info").unwrap(),
        format!("url={track};seq={};rtptime={}", s.first_seq, s.first_ts)
    );
    let (r, _) = c.send("GET_PARAMETER", &uri, &[]);
    assert_eq!(r.status, 200);
    c.session = Some("999".into());
    let (r, _) = c.send("PLAY", &uri, &[]);
    assert_eq!(r.status, 454, "foreign session id");
    c.session = Some(s.id.clone());
    let (r, a) = c.send("TEARDOWN", &uri, &[]);
    assert_eq!((r.status, a), (200, Action::Close));
}

/// UDP SETUP answers with the server port the IO bound; without one, 461.
#[test]
fn udp_setup() {
    let mut c = Client::new(2);
    let uri = c.cam.stream_uri(0);
    let (r, _) = c.send(
        "SETUP",
        &format!("{uri}/trackID=1"),
        &[("Transport", "RTP/AVP;unicast;client_port=5000-5001")],
    );
    assert_eq!(r.status, 200);
    assert!(
        r.header("Transport")
            .unwrap()
            .contains("client_port=5000-5001;server_port=40000-40001")
    );
    assert_eq!(
        c.conn.session.as_ref().unwrap().video,
        Some(VideoTransport::Udp {
            client_rtp: 5000,
            server_rtp: 40000
        })
    );
}

/// Unknown stream path → 404; unknown method → 501.
#[test]
fn not_found_and_not_implemented() {
    let mut c = Client::new(0);
    let (r, _) = c.send("DESCRIBE", "rtsp://127.9.0.1:8554/nope", &[]);
    assert_eq!(r.status, 404);
    let (r, _) = c.raw(&req("RECORD", &c.cam.stream_uri(0), &[]));
    assert_eq!(r.status, 501);
}

/// wrong-password: the configured password gets 401 again after the
/// challenge; stream-refused: 503 for everything but OPTIONS.
#[test]
fn auth_and_refusal_faults() {
    let mut c = Client::new(0);
    let uri = c.cam.stream_uri(0);
    c.fault = Some(Fault::WrongPassword);
    assert_eq!(c.send("DESCRIBE", &uri, &[]).0.status, 401);
    c.password = "pw#changed".into();
    assert_eq!(c.send("DESCRIBE", &uri, &[]).0.status, 200);
    c.fault = Some(Fault::StreamRefused);
    assert_eq!(c.send("DESCRIBE", &uri, &[]).0.status, 503);
    assert_eq!(c.raw(&req("OPTIONS", &uri, &[])).0.status, 200);
}

fn rtp_fields(p: &[u8]) -> (bool, u16, u32, u32) {
    (
        p[1] & 0x80 != 0,
        u16::from_be_bytes([p[2], p[3]]),
        u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
    )
}

fn session(seq: u16, ts: u32) -> Session {
    Session {
        id: "1".into(),
        stream: 1,
        video: None,
        next_channel: 2,
        ssrc: 0xabcd,
        first_seq: seq,
        first_ts: ts,
        playing: true,
    }
}

/// Looping the clip: sequence numbers +1 per packet and timestamps +6000 per
/// frame (15 fps) continue across the loop boundary and across u16/u32 wrap;
/// the marker sits on each frame's last packet; payloads are the clip's.
#[test]
fn numbering_continues_across_loops() {
    let c = clips();
    let clip = c.get(1);
    let mut st = Streamer::new(&session(65_530, u32::MAX - 10_000), 1);
    let pace = Pace::of(clip, None);
    let mut last: Option<(u16, u32)> = None;
    let mut frames = 0;
    for f in 0..(clip.frames.len() * 2 + 5) {
        let pkts = st.next(clip, pace);
        let want = &clip.frames[f % clip.frames.len()].payloads;
        assert_eq!(pkts.len(), want.len());
        for (i, p) in pkts.iter().enumerate() {
            let (marker, seq, ts, ssrc) = rtp_fields(p);
            assert_eq!(ssrc, 0xabcd);
            assert_eq!(marker, i + 1 == pkts.len());
            assert_eq!(&p[12..], &want[i][..]);
            if let Some((ls, lt)) = last {
                assert_eq!(seq, ls.wrapping_add(1));
                let d = ts.wrapping_sub(lt);
                assert!(d == 0 || d == 6000, "ts step {d} at frame {f}");
            }
            last = Some((seq, ts));
        }
        frames += 1;
    }
    assert_eq!(frames, 65);
}

/// low-fps:4 advances timestamps 22500 per frame (90000/4) and plays the
/// clip frame after frame (slow motion, still decodable); a rate that does
/// not divide 90000 still sums exactly to 90000 per second.
#[test]
fn low_fps_timestamps() {
    let c = clips();
    let clip = c.get(0);
    let mut st = Streamer::new(&session(0, 0), 1);
    let pace = Pace::of(clip, Some(&Fault::LowFps(4)));
    assert_eq!(pace.fps, 4);
    assert_eq!(pace.period(), std::time::Duration::from_millis(250));
    let ts: Vec<u32> = (0..3)
        .map(|_| rtp_fields(&st.next(clip, pace)[0]).2)
        .collect();
    assert_eq!(ts, vec![0, 22_500, 45_000]);
    assert_eq!(st.next_frame, 3);
    let mut st = Streamer::new(&session(0, 0), 1);
    let pace = Pace::of(clip, Some(&Fault::LowFps(7)));
    for _ in 0..7 {
        st.next(clip, pace);
    }
    assert_eq!(st.ts, 90_000);
    assert_eq!(
        Pace::of(clip, Some(&Fault::LowFps(100))).fps,
        25,
        "capped at the clip rate"
    );
}

/// frozen: no packets, sequence numbers stay, timestamps keep time.
#[test]
fn frozen_sends_nothing() {
    let c = clips();
    let clip = c.get(1);
    let mut st = Streamer::new(&session(10, 0), 1);
    let pace = Pace::of(clip, Some(&Fault::Frozen));
    for _ in 0..15 {
        assert!(st.next(clip, pace).is_empty());
    }
    assert_eq!((st.seq, st.ts, st.next_frame), (10, 90_000, 0));
}

/// packet-loss:20 drops about a fifth of the packets, deterministically, and
/// the gaps show in the sequence numbers.
#[test]
fn packet_loss_is_deterministic() {
    let c = clips();
    let clip = c.get(0);
    let run = || {
        let mut st = Streamer::new(&session(0, 0), 99);
        let pace = Pace::of(clip, Some(&Fault::PacketLoss(20)));
        (0..500)
            .flat_map(|_| st.next(clip, pace))
            .map(|p| rtp_fields(&p).1)
            .collect::<Vec<u16>>()
    };
    let a = run();
    assert_eq!(a, run());
    let sent = usize::from(*a.last().unwrap()) + 1;
    let lost = sent - a.len();
    let pct = lost * 100 / sent;
    assert!((15..=25).contains(&pct), "{pct}% of {sent}");
    assert!(a.windows(2).any(|w| w[1] > w[0] + 1));
    let mut st = Streamer::new(&session(0, 0), 99);
    let all = Pace::of(clip, Some(&Fault::PacketLoss(100)));
    assert!(st.next(clip, all).is_empty());
}
