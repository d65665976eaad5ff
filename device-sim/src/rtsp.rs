//! The simulated cameras' RTSP server: the pure core. Bytes in, values out;
//! the tokio IO around it is in [`serve`] (crate-private).
//!
//! - [`Clip`] / [`Clips`]: the committed H.264 clips (`testdata/main.h264`,
//!   1280x720 at 25 fps; `testdata/sub.h264`, 640x360 at 15 fps), split into
//!   access units and packetised (RFC 6184, FU-A above [`MTU`]) once per
//!   process and shared by every camera.
//! - [`parse_incoming`]: one RTSP request (or one interleaved `$` frame the
//!   client sent, e.g. an RTCP receiver report) from the front of a buffer.
//! - [`Conn`]: the per-connection state machine (OPTIONS, DESCRIBE, SETUP
//!   TCP-interleaved or UDP unicast, PLAY, PAUSE, GET/SET_PARAMETER, TEARDOWN)
//!   with Digest authentication and the stream faults.
//! - [`sdp`]: the SDP a flavour answers (TP-Link adds its bogus
//!   `m=application/TP-LINK` section, Dahua an ONVIF metadata track).
//! - [`Streamer`]: the RTP packets of the next frame: continuous sequence
//!   numbers and 90 kHz timestamps across clip loops, deterministic loss.
//!
//! Stream faults: [`Fault::StreamRefused`] answers every request but OPTIONS
//! with `503 Service Unavailable`; [`Fault::Frozen`] answers PLAY and then
//! sends no RTP (the connection stays open, keepalives are answered);
//! [`Fault::LowFps`] sends N frames per second (the clip plays in slow motion,
//! so it still decodes; timestamps advance 90000/N per frame);
//! [`Fault::PacketLoss`] drops that percentage of RTP packets after numbering
//! them (so a receiver sees sequence gaps); [`Fault::WrongCodec`] makes the SDP
//! announce `H265/90000` (no parameter sets) while ONVIF still says H264 and
//! the payload stays H.264.

pub(crate) mod serve;

use std::fmt::Write as _;

use base64::Engine as _;
use bytes::Bytes;
use device_drivers::rtsp::{
    RtpHeader, h264_access_units, h264_is_keyframe, packetize_h264, split_annexb,
};

use crate::camera::{Camera, PROFILES, splitmix64};
use crate::digest;
use crate::fault::Fault;
use crate::flavour::Flavour;

/// The main-stream clip: 1280x720, 25 fps, H.264 Main, 2 s (see `testdata/PROVENANCE.md`).
pub const MAIN_H264: &[u8] = include_bytes!("../testdata/main.h264");
/// The sub-stream clip: 640x360, 15 fps, H.264 Constrained Baseline, 2 s.
pub const SUB_H264: &[u8] = include_bytes!("../testdata/sub.h264");
/// The JPEG served on every snapshot URI (320x180).
pub const SNAPSHOT_JPEG: &[u8] = include_bytes!("../testdata/snap.jpg");

/// Largest RTP payload sent.
pub const MTU: usize = 1400;
/// Largest RTSP request head (plus body) accepted.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// The dynamic RTP payload type of the video track.
pub const VIDEO_PT: u8 = 96;
/// Session timeout announced in `Session:` (seconds).
pub const SESSION_TIMEOUT_S: u64 = 60;

/// One video frame, packetised.
#[derive(Debug, Clone)]
pub struct Frame {
    /// RTP payloads in order; the last one carries the marker bit.
    pub payloads: Vec<Bytes>,
    /// Whether the access unit holds an IDR slice.
    pub keyframe: bool,
}

/// A looped H.264 clip, packetised once.
#[derive(Debug, Clone)]
pub struct Clip {
    /// Frames per second it was encoded at.
    pub fps: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The sequence parameter set (NAL unit, no start code).
    pub sps: Vec<u8>,
    /// The picture parameter set.
    pub pps: Vec<u8>,
    /// Frames in decode (= presentation: no B-frames) order.
    pub frames: Vec<Frame>,
    /// Annex B bytes of the clip (for bitrate figures).
    pub bytes: usize,
}

/// A clip that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClipError {
    /// No access units in the bytes.
    #[error("the clip holds no H.264 access units")]
    Empty,
    /// No SPS or no PPS in the clip.
    #[error("the clip holds no SPS/PPS")]
    NoParameterSets,
    /// The first frame is not a keyframe (a looping client could not start).
    #[error("the clip does not start with an IDR frame")]
    NoLeadingKeyframe,
}

impl Clip {
    /// Parses an Annex B stream into packetised frames.
    pub fn from_annexb(
        stream: &[u8],
        fps: u32,
        width: u32,
        height: u32,
    ) -> Result<Clip, ClipError> {
        let aus = h264_access_units(stream);
        if aus.is_empty() {
            return Err(ClipError::Empty);
        }
        let nals = split_annexb(stream);
        let find = |ty: u8| {
            nals.iter()
                .find(|n| n.first().is_some_and(|b| b & 0x1f == ty))
                .map(|n| n.to_vec())
        };
        let (Some(sps), Some(pps)) = (find(7), find(8)) else {
            return Err(ClipError::NoParameterSets);
        };
        let frames: Vec<Frame> = aus
            .iter()
            .map(|au| Frame {
                payloads: packetize_h264(au, MTU)
                    .into_iter()
                    .map(Bytes::from)
                    .collect(),
                keyframe: h264_is_keyframe(au),
            })
            .filter(|f| !f.payloads.is_empty())
            .collect();
        if !frames.first().is_some_and(|f| f.keyframe) {
            return Err(ClipError::NoLeadingKeyframe);
        }
        Ok(Clip {
            fps: fps.max(1),
            width,
            height,
            sps,
            pps,
            frames,
            bytes: stream.len(),
        })
    }

    /// `profile-level-id`: the three bytes after the SPS NAL header, in hex.
    pub fn profile_level_id(&self) -> String {
        self.sps
            .get(1..4)
            .map(hex::encode)
            .unwrap_or_else(|| "42001f".to_string())
    }

    /// `sprop-parameter-sets`: base64 SPS, comma, base64 PPS.
    pub fn sprop_parameter_sets(&self) -> String {
        let b = base64::engine::general_purpose::STANDARD;
        format!("{},{}", b.encode(&self.sps), b.encode(&self.pps))
    }

    /// Bitrate of the clip in kbit/s.
    pub fn kbps(&self) -> u64 {
        let secs_x1000 = (self.frames.len() as u64 * 1000) / u64::from(self.fps);
        (self.bytes as u64 * 8).checked_div(secs_x1000).unwrap_or(0)
    }
}

/// The main and sub clips, shared (behind an `Arc`) by every camera.
#[derive(Debug, Clone)]
pub struct Clips {
    /// Index 0: main stream; 1: sub stream.
    pub streams: [Clip; 2],
}

impl Clips {
    /// The committed clips, at the [`PROFILES`] frame rates and sizes.
    pub fn builtin() -> Result<Clips, ClipError> {
        let [m, s] = PROFILES;
        Ok(Clips {
            streams: [
                Clip::from_annexb(MAIN_H264, m.fps, m.width, m.height)?,
                Clip::from_annexb(SUB_H264, s.fps, s.width, s.height)?,
            ],
        })
    }

    /// The clip of profile `p` (0 main, anything else sub).
    pub fn get(&self, p: usize) -> &Clip {
        let [m, s] = &self.streams;
        if p == 0 { m } else { s }
    }
}

// ---------------------------------------------------------------------------
// Requests

/// One RTSP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `DESCRIBE`, ...
    pub method: String,
    /// Request URI as sent.
    pub uri: String,
    /// Headers in order (names as sent).
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the client sent, from the front of the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A request.
    Request(Request),
    /// An interleaved binary frame (RTCP from the client); ignored.
    Interleaved {
        /// Channel.
        channel: u8,
    },
}

/// Bytes that are not RTSP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Request head over [`MAX_REQUEST_BYTES`].
    #[error("request over {MAX_REQUEST_BYTES} bytes")]
    TooLarge,
    /// Not an RTSP request line / header.
    #[error("not an RTSP request: {0}")]
    Malformed(String),
}

/// Parses one message from the front of `buf`: `Ok(None)` = need more bytes;
/// `Ok(Some((msg, consumed)))` otherwise.
pub fn parse_incoming(buf: &[u8]) -> Result<Option<(Incoming, usize)>, RequestError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first == b'$' {
        let (Some(&channel), Some(hi), Some(lo)) = (buf.get(1), buf.get(2), buf.get(3)) else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        if buf.len() < 4 + len {
            return Ok(None);
        }
        return Ok(Some((Incoming::Interleaved { channel }, 4 + len)));
    }
    let head_end = find(buf, b"\r\n\r\n").map(|i| (i, i + 4));
    let Some((end, body_start)) = head_end else {
        if buf.len() > MAX_REQUEST_BYTES {
            return Err(RequestError::TooLarge);
        }
        return Ok(None);
    };
    if end > MAX_REQUEST_BYTES {
        return Err(RequestError::TooLarge);
    }
    let head = std::str::from_utf8(&buf[..end])
        .map_err(|_| RequestError::Malformed("request head is not UTF-8".into()))?;
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ').filter(|s| !s.is_empty());
    let (Some(method), Some(uri), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(RequestError::Malformed(shorten(line)));
    };
    if !version.starts_with("RTSP/") || !method.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
    {
        return Err(RequestError::Malformed(shorten(line)));
    }
    let mut headers = Vec::new();
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            return Err(RequestError::Malformed(shorten(l)));
        };
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let req = Request {
        method: method.to_string(),
        uri: uri.to_string(),
        headers,
    };
    let body_len: usize = match req.header("Content-Length") {
        Some(v) => v
            .parse()
            .map_err(|_| RequestError::Malformed(format!("Content-Length {v:?}")))?,
        None => 0,
    };
    if body_start + body_len > MAX_REQUEST_BYTES {
        return Err(RequestError::TooLarge);
    }
    if buf.len() < body_start + body_len {
        return Ok(None);
    }
    Ok(Some((Incoming::Request(req), body_start + body_len)))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn shorten(s: &str) -> String {
    s.chars().take(80).collect()
}

// ---------------------------------------------------------------------------
// Responses

/// An RTSP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers after `CSeq` (which [`Response::to_bytes`] writes first).
    pub headers: Vec<(&'static str, String)>,
    /// Body (an SDP).
    pub body: String,
}

impl Response {
    fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    fn with(mut self, k: &'static str, v: impl Into<String>) -> Response {
        self.headers.push((k, v.into()));
        self
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Serialises the response, echoing `cseq`.
    pub fn to_bytes(&self, cseq: Option<&str>, server: &str) -> Vec<u8> {
        let mut s = format!("RTSP/1.0 {} {}\r\n", self.status, reason(self.status));
        if let Some(c) = cseq {
            let _ = write!(s, "CSeq: {c}\r\n");
        }
        let _ = write!(s, "Server: {server}\r\n");
        for (k, v) in &self.headers {
            let _ = write!(s, "{k}: {v}\r\n");
        }
        if !self.body.is_empty() {
            let _ = write!(s, "Content-Length: {}\r\n", self.body.len());
        }
        s.push_str("\r\n");
        s.push_str(&self.body);
        s.into_bytes()
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        454 => "Session Not Found",
        455 => "Method Not Valid in This State",
        459 => "Aggregate Operation Not Allowed",
        461 => "Unsupported Transport",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// The `Server:` banner a flavour's RTSP server sends.
pub fn server_banner(f: Flavour) -> &'static str {
    match f {
        Flavour::Hikvision => "HIKVISION RTSP Server/1.0",
        Flavour::Dahua => "Rtsp Server/3.0",
        Flavour::Uniview => "UNV RTSP Server/2.0",
        Flavour::TpLink => "TP-LINK RTSP Server",
        Flavour::Axis => "AXIS Media Control/1.0",
        Flavour::Generic => "H264DVR RTSP Server/1.0",
    }
}

// ---------------------------------------------------------------------------
// URIs and SDP

/// Path and query of an `rtsp://host[:port]/...` URI (the URI itself when it
/// is already a path).
pub fn path_of(uri: &str) -> &str {
    let Some(rest) = uri
        .strip_prefix("rtsp://")
        .or_else(|| uri.strip_prefix("RTSP://"))
    else {
        return uri;
    };
    match rest.find('/') {
        Some(i) => &rest[i..],
        None => "/",
    }
}

/// Which stream (0 main, 1 sub) a request URI names, if any.
pub fn stream_of(cam: &Camera, uri: &str) -> Option<usize> {
    let p = path_of(uri);
    cam.flavour
        .info()
        .stream_paths
        .iter()
        .position(|sp| p.starts_with(sp))
}

/// The track number a SETUP URI names (`trackID=N`, `trackN`), if any.
pub fn track_of(uri: &str) -> Option<u32> {
    let p = path_of(uri);
    let digits = |s: &str| -> Option<u32> {
        let d: String = s.chars().take_while(char::is_ascii_digit).collect();
        d.parse().ok()
    };
    if let Some(i) = p.rfind("trackID=") {
        return digits(&p[i + 8..]);
    }
    p.rfind("/track").and_then(|i| digits(&p[i + 6..]))
}

fn video_control(f: Flavour) -> &'static str {
    if f == Flavour::TpLink {
        "track1"
    } else {
        "trackID=1"
    }
}

/// `Content-Base` of a stream: its URI with a trailing slash.
pub fn content_base(cam: &Camera, stream: usize) -> String {
    format!("{}/", cam.stream_uri(stream))
}

/// The SDP a camera answers for `stream` under `fault`.
pub fn sdp(
    cam: &Camera,
    stream: usize,
    clip: &Clip,
    fault: Option<&Fault>,
    session_id: u64,
) -> String {
    let f = cam.flavour;
    let name = match f {
        Flavour::Hikvision => "Media Presentation".to_string(),
        Flavour::Dahua => "Media Server".to_string(),
        _ => format!("Session streamed by \"{}\"", server_banner(f)),
    };
    let spec = PROFILES.get(stream).copied().unwrap_or(PROFILES[1]);
    let mut s = String::with_capacity(768);
    let _ = write!(
        s,
        "v=0\r\no=- {session_id} 1 IN IP4 {ip}\r\ns={name}\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n\
         a=control:*\r\na=range:npt=now-\r\n",
        ip = cam.ip,
    );
    // Hikvision and Dahua SDPs carry no a=tool (as in the captures); the
    // others name their server like LIVE555-based firmware does.
    if !matches!(f, Flavour::Hikvision | Flavour::Dahua) {
        let _ = write!(s, "a=tool:{}\r\n", server_banner(f));
    }
    let _ = write!(
        s,
        "m=video 0 RTP/AVP {VIDEO_PT}\r\nb=AS:{kbps}\r\n",
        kbps = spec.bitrate_kbps
    );
    if matches!(fault, Some(Fault::WrongCodec)) {
        let _ = write!(s, "a=rtpmap:{VIDEO_PT} H265/90000\r\n");
    } else {
        let _ = write!(
            s,
            "a=rtpmap:{VIDEO_PT} H264/90000\r\n\
             a=fmtp:{VIDEO_PT} packetization-mode=1;profile-level-id={plid};sprop-parameter-sets={sprop}\r\n",
            plid = clip.profile_level_id(),
            sprop = clip.sprop_parameter_sets(),
        );
    }
    let _ = write!(
        s,
        "a=framerate:{}\r\na=x-dimensions:{},{}\r\na=control:{}\r\na=recvonly\r\n",
        clip.fps,
        clip.width,
        clip.height,
        video_control(f)
    );
    match f {
        Flavour::TpLink => s.push_str(
            "m=application/TP-LINK 0 RTP/AVP smart/1/90000\r\na=rtpmap:95 TP-LINK/90000\r\na=control:track3\r\n",
        ),
        Flavour::Dahua => s.push_str(
            "m=application 0 RTP/AVP 107\r\na=control:trackID=4\r\na=rtpmap:107 vnd.onvif.metadata/90000\r\na=recvonly\r\n",
        ),
        _ => {}
    }
    s
}

// ---------------------------------------------------------------------------
// Transport

/// A transport the client asked for in SETUP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestedTransport {
    /// `RTP/AVP/TCP;interleaved=a-b` (channels default to the next free pair).
    Interleaved(Option<(u8, u8)>),
    /// `RTP/AVP[/UDP];unicast;client_port=a-b`.
    Udp {
        /// Client RTP port.
        rtp: u16,
        /// Client RTCP port.
        rtcp: u16,
    },
}

/// The first usable transport spec in a `Transport:` header.
pub fn parse_transport(h: &str) -> Option<RequestedTransport> {
    h.split(',').find_map(|spec| {
        let mut parts = spec.split(';').map(str::trim);
        let proto = parts.next()?.to_ascii_uppercase();
        let params: Vec<&str> = parts.collect();
        let param = |name: &str| {
            params.iter().find_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
            })
        };
        let pair = |v: &str| -> Option<(u16, u16)> {
            match v.split_once('-') {
                Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                None => {
                    let a: u16 = v.parse().ok()?;
                    Some((a, a.checked_add(1)?))
                }
            }
        };
        if params.iter().any(|p| p.eq_ignore_ascii_case("multicast")) {
            return None;
        }
        match proto.as_str() {
            "RTP/AVP/TCP" => {
                let ch = match param("interleaved") {
                    Some(v) => {
                        let (a, b) = pair(v)?;
                        Some((u8::try_from(a).ok()?, u8::try_from(b).ok()?))
                    }
                    None => None,
                };
                Some(RequestedTransport::Interleaved(ch))
            }
            "RTP/AVP" | "RTP/AVP/UDP" => {
                let (rtp, rtcp) = pair(param("client_port")?)?;
                Some(RequestedTransport::Udp { rtp, rtcp })
            }
            _ => None,
        }
    })
}

/// Where a session's video RTP goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoTransport {
    /// Interleaved on the RTSP connection, on this channel.
    Interleaved {
        /// RTP channel.
        channel: u8,
    },
    /// UDP from the server's socket (`server_port`) to the client's port.
    Udp {
        /// Client RTP port (on the RTSP peer's address).
        client_rtp: u16,
        /// The server's RTP port.
        server_rtp: u16,
    },
}

// ---------------------------------------------------------------------------
// Connection state machine

/// What the camera knows when answering one request.
pub struct ConnCtx<'a> {
    /// The camera.
    pub camera: &'a Camera,
    /// Its current fault.
    pub fault: Option<&'a Fault>,
    /// The clips.
    pub clips: &'a Clips,
    /// Camera-clock unix time (for Digest nonces).
    pub now_unix: i64,
    /// Secret for stateless Digest nonces.
    pub digest_secret: &'a str,
    /// The port of a UDP socket the IO bound for this request's SETUP, if
    /// the client asked for UDP and the bind worked.
    pub udp_port: Option<u16>,
}

/// What the IO must do after sending a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing.
    None,
    /// Start (or keep) streaming the session's video.
    Play,
    /// Stop streaming, keep the session.
    Pause,
    /// Close the connection after the response.
    Close,
}

/// A SETUP-established session on one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Session id.
    pub id: String,
    /// 0 main, 1 sub.
    pub stream: usize,
    /// The video transport, once the video track is set up.
    pub video: Option<VideoTransport>,
    /// Channels taken on the connection (next free pair starts here).
    pub next_channel: u8,
    /// SSRC.
    pub ssrc: u32,
    /// First sequence number.
    pub first_seq: u16,
    /// First RTP timestamp.
    pub first_ts: u32,
    /// Whether PLAY was answered (and no PAUSE since).
    pub playing: bool,
}

/// Per-connection RTSP state.
#[derive(Debug, Clone)]
pub struct Conn {
    seed: u64,
    described: Option<usize>,
    /// The session, after SETUP.
    pub session: Option<Session>,
}

/// Checks Digest credentials for a camera: `Err(www_authenticate)` when the
/// request must be answered 401. Honours [`Fault::WrongPassword`].
pub fn authenticate(
    cam: &Camera,
    fault: Option<&Fault>,
    method: &str,
    uri: &str,
    authorization: Option<&str>,
    secret: &str,
    now_unix: i64,
) -> Result<(), String> {
    let realm = cam.realm();
    let password = cam.accepted_password(fault);
    let mut stale = false;
    if let Some(h) = authorization {
        match digest::verify(
            h,
            method,
            uri,
            &cam.username,
            &password,
            &realm,
            secret,
            now_unix,
        ) {
            Ok(()) => return Ok(()),
            Err(digest::DigestError::Stale) => stale = true,
            Err(_) => {}
        }
    }
    Err(digest::challenge(
        &realm,
        &digest::make_nonce(secret, now_unix),
        stale,
    ))
}

impl Conn {
    /// A fresh connection; `seed` makes session id, SSRC and initial numbers.
    pub fn new(seed: u64) -> Conn {
        Conn {
            seed,
            described: None,
            session: None,
        }
    }

    fn next_rand(&mut self) -> u64 {
        self.seed = splitmix64(self.seed);
        self.seed
    }

    /// Answers one request.
    pub fn handle(&mut self, ctx: &ConnCtx<'_>, req: &Request) -> (Response, Action) {
        let cam = ctx.camera;
        let m = req.method.as_str();
        if m == "OPTIONS" {
            let r = Response::new(200).with(
                "Public",
                "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER",
            );
            return (r, Action::None);
        }
        if matches!(ctx.fault, Some(Fault::StreamRefused)) {
            return (Response::new(503), Action::None);
        }
        if !matches!(
            m,
            "DESCRIBE"
                | "SETUP"
                | "PLAY"
                | "PAUSE"
                | "TEARDOWN"
                | "GET_PARAMETER"
                | "SET_PARAMETER"
        ) {
            return (Response::new(501), Action::None);
        }
        if let Err(www) = authenticate(
            cam,
            ctx.fault,
            m,
            &req.uri,
            req.header("Authorization"),
            ctx.digest_secret,
            ctx.now_unix,
        ) {
            return (
                Response::new(401).with("WWW-Authenticate", www),
                Action::None,
            );
        }
        match m {
            "DESCRIBE" => self.describe(ctx, req),
            "SETUP" => self.setup(ctx, req),
            "PLAY" => self.play(ctx, req),
            "PAUSE" => match self.session_check(req) {
                Err(r) => (r, Action::None),
                Ok(s) => {
                    s.playing = false;
                    let id = s.id.clone();
                    (Response::new(200).with("Session", id), Action::Pause)
                }
            },
            "TEARDOWN" => {
                let r = match self.session.take() {
                    Some(s) => Response::new(200).with("Session", s.id),
                    None => Response::new(200),
                };
                (r, Action::Close)
            }
            _ => {
                let mut r = Response::new(200);
                if let Some(s) = &self.session {
                    r = r.with("Session", s.id.clone());
                }
                (r, Action::None)
            }
        }
    }

    fn describe(&mut self, ctx: &ConnCtx<'_>, req: &Request) -> (Response, Action) {
        let Some(stream) = stream_of(ctx.camera, &req.uri) else {
            return (Response::new(404), Action::None);
        };
        self.described = Some(stream);
        let sid = self.next_rand() >> 12;
        let body = sdp(ctx.camera, stream, ctx.clips.get(stream), ctx.fault, sid);
        let mut r = Response::new(200)
            .with("Content-Type", "application/sdp")
            .with("Content-Base", content_base(ctx.camera, stream));
        r.body = body;
        (r, Action::None)
    }

    fn session_check(&mut self, req: &Request) -> Result<&mut Session, Response> {
        let Some(s) = self.session.as_mut() else {
            return Err(Response::new(455));
        };
        let asked = req
            .header("Session")
            .map(|v| v.split(';').next().unwrap_or_default().trim());
        if asked != Some(s.id.as_str()) {
            return Err(Response::new(454));
        }
        Ok(s)
    }

    fn setup(&mut self, ctx: &ConnCtx<'_>, req: &Request) -> (Response, Action) {
        let Some(stream) = stream_of(ctx.camera, &req.uri)
            .or(self.described)
            .or(self.session.as_ref().map(|s| s.stream))
        else {
            return (Response::new(404), Action::None);
        };
        let Some(asked) = req.header("Transport").and_then(parse_transport) else {
            return (Response::new(461), Action::None);
        };
        if self.session.is_some() {
            if let Err(r) = self.session_check(req) {
                return (r, Action::None);
            }
        } else {
            let r = self.next_rand();
            let id = format!("{}", (r >> 24) % 9_000_000_000 + 1_000_000_000);
            let r2 = self.next_rand();
            self.session = Some(Session {
                id,
                stream,
                video: None,
                next_channel: 0,
                ssrc: r2 as u32,
                first_seq: (r2 >> 32) as u16,
                first_ts: (r >> 32) as u32,
                playing: false,
            });
        }
        let Some(s) = self.session.as_mut() else {
            return (Response::new(455), Action::None);
        };
        let is_video = matches!(track_of(&req.uri), None | Some(1));
        let transport = match asked {
            RequestedTransport::Interleaved(ch) => {
                let (a, b) = ch.unwrap_or((s.next_channel, s.next_channel.saturating_add(1)));
                s.next_channel = s.next_channel.max(b.saturating_add(1));
                if is_video {
                    s.video = Some(VideoTransport::Interleaved { channel: a });
                }
                format!(
                    "RTP/AVP/TCP;unicast;interleaved={a}-{b};ssrc={:08X};mode=\"play\"",
                    s.ssrc
                )
            }
            RequestedTransport::Udp { rtp, rtcp } => {
                let Some(port) = ctx.udp_port else {
                    return (Response::new(461), Action::None);
                };
                if is_video {
                    s.video = Some(VideoTransport::Udp {
                        client_rtp: rtp,
                        server_rtp: port,
                    });
                }
                format!(
                    "RTP/AVP;unicast;client_port={rtp}-{rtcp};server_port={port}-{};ssrc={:08X};mode=\"play\"",
                    port.saturating_add(1),
                    s.ssrc
                )
            }
        };
        let r = Response::new(200)
            .with("Session", format!("{};timeout={SESSION_TIMEOUT_S}", s.id))
            .with("Transport", transport);
        (r, Action::None)
    }

    fn play(&mut self, ctx: &ConnCtx<'_>, req: &Request) -> (Response, Action) {
        let cam = ctx.camera;
        let s = match self.session_check(req) {
            Ok(s) => s,
            Err(r) => return (r, Action::None),
        };
        if s.video.is_none() {
            return (Response::new(455), Action::None);
        }
        s.playing = true;
        let url = format!(
            "{}{}",
            content_base(cam, s.stream),
            video_control(cam.flavour)
        );
        let r = Response::new(200)
            .with("Session", s.id.clone())
            .with("Range", "npt=0.000-")
            .with(
                "RTP-Info",
                format!("url={url};seq={};rtptime={}", s.first_seq, s.first_ts),
            );
        (r, Action::Play)
    }
}

// ---------------------------------------------------------------------------
// Streaming

/// How a playing session sends, given the camera's fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// Frames per second to send (and to advance timestamps by).
    pub fps: u32,
    /// Send nothing (frozen).
    pub frozen: bool,
    /// Percentage of packets dropped.
    pub loss_pct: u8,
}

impl Pace {
    /// The pace of a clip under a fault.
    pub fn of(clip: &Clip, fault: Option<&Fault>) -> Pace {
        let mut p = Pace {
            fps: clip.fps,
            frozen: false,
            loss_pct: 0,
        };
        match fault {
            Some(Fault::Frozen) => p.frozen = true,
            Some(Fault::LowFps(n)) => p.fps = (*n).clamp(1, clip.fps),
            Some(Fault::PacketLoss(pct)) => p.loss_pct = (*pct).min(100),
            _ => {}
        }
        p
    }

    /// Time between frames.
    pub fn period(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(1_000_000_000 / u64::from(self.fps.max(1)))
    }
}

/// Numbers a session's RTP packets: the next frame of the looped clip with
/// continuous sequence numbers and 90 kHz timestamps.
#[derive(Debug, Clone)]
pub struct Streamer {
    /// Next frame index into the clip (wraps).
    pub next_frame: usize,
    /// Next sequence number.
    pub seq: u16,
    /// RTP timestamp of the next frame.
    pub ts: u32,
    /// Remainder of 90000/fps carried between frames (exact for any integer fps).
    rem: u64,
    ssrc: u32,
    rng: u64,
}

impl Streamer {
    /// Starts at the session's first numbers; `loss_seed` seeds the loss PRNG.
    pub fn new(session: &Session, loss_seed: u64) -> Streamer {
        Streamer {
            next_frame: 0,
            seq: session.first_seq,
            ts: session.first_ts,
            rem: 0,
            ssrc: session.ssrc,
            rng: loss_seed,
        }
    }

    /// The RTP packets of the next frame (dropped ones omitted), advancing
    /// frame, sequence and timestamp. Frozen: nothing is sent, sequence
    /// numbers stay, the timestamp still advances with time.
    pub fn next(&mut self, clip: &Clip, pace: Pace) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        if !pace.frozen
            && let Some(frame) = clip.frames.get(self.next_frame % clip.frames.len().max(1))
        {
            let n = frame.payloads.len();
            for (i, payload) in frame.payloads.iter().enumerate() {
                let h = RtpHeader {
                    payload_type: VIDEO_PT,
                    marker: i + 1 == n,
                    sequence: self.seq,
                    timestamp: self.ts,
                    ssrc: self.ssrc,
                };
                self.seq = self.seq.wrapping_add(1);
                self.rng = splitmix64(self.rng);
                if (self.rng % 100) < u64::from(pace.loss_pct) {
                    continue;
                }
                out.push(h.packet(payload));
            }
            self.next_frame = (self.next_frame + 1) % clip.frames.len().max(1);
        }
        let fps = u64::from(pace.fps.max(1));
        let num = 90_000 + self.rem;
        self.ts = self.ts.wrapping_add((num / fps) as u32);
        self.rem = num % fps;
        out
    }
}

#[cfg(test)]
mod tests;
