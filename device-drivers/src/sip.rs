//! A small SIP codec for paging horns (RFC 3261 over UDP, no proxy): message
//! parsing and building, auto-answer headers (RFC 5373 and the common vendor
//! forms), digest authentication (the `digest_auth` crate), SDP offer/answer
//! for PCMU/PCMA (RFC 3264), and the INVITE client transaction plus dialog as
//! a pure state machine: messages and the time go in, datagrams to send and
//! call events come out. `sip_io` does the sockets and timers.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::g711::Codec;

/// Largest SIP message accepted (UDP datagrams stay well below).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// RFC 3261 T1: the first retransmission interval over UDP.
pub const T1: Duration = Duration::from_millis(500);

/// Why a SIP message or an SDP body could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SipError {
    /// Empty, or larger than [`MAX_MESSAGE`].
    #[error("SIP message of {0} bytes is empty or too large")]
    Size(usize),
    /// Not UTF-8 in the head.
    #[error("SIP message head is not UTF-8")]
    NotUtf8,
    /// No blank line ending the head.
    #[error("SIP message has no end of headers")]
    NoHeadEnd,
    /// The first line is neither a request nor a status line.
    #[error("bad SIP start line {0:?}")]
    StartLine(String),
    /// A header line without a colon.
    #[error("bad SIP header line {0:?}")]
    Header(String),
    /// Content-Length unreadable or larger than the body present.
    #[error("bad Content-Length {0:?}")]
    ContentLength(String),
    /// A header a message must carry is absent.
    #[error("SIP message without {0}")]
    Missing(&'static str),
    /// The SDP answer is unreadable.
    #[error("bad SDP: {0}")]
    Sdp(String),
    /// The SDP answer picked no codec we offered.
    #[error("SDP answer chose payload types {answered:?}, none of the offered {offered:?}")]
    CodecNotOffered {
        /// Payload types in the answer's m=audio line.
        answered: Vec<u8>,
        /// Payload types we offered.
        offered: Vec<u8>,
    },
    /// A digest challenge we cannot answer.
    #[error("cannot answer the digest challenge: {0}")]
    Digest(String),
}

/// Header names in their compact form (RFC 3261 §7.3.3) mapped to full names.
fn expand_compact(name: &str) -> &str {
    match name {
        "v" | "V" => "Via",
        "f" | "F" => "From",
        "t" | "T" => "To",
        "i" | "I" => "Call-ID",
        "m" | "M" => "Contact",
        "l" | "L" => "Content-Length",
        "c" | "C" => "Content-Type",
        "k" | "K" => "Supported",
        _ => name,
    }
}

/// Headers in order, names compared case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Appends a header.
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.0.push((name.to_string(), value.into()));
    }

    /// Replaces every value of `name` by one.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.push(name, value);
    }
}

/// A SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Method (`INVITE`, `BYE`, ...).
    pub method: String,
    /// Request-URI.
    pub uri: String,
    /// Headers.
    pub headers: Headers,
    /// Body.
    pub body: Vec<u8>,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Headers.
    pub headers: Headers,
    /// Body.
    pub body: Vec<u8>,
}

/// A parsed SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

impl Message {
    /// Headers of either kind.
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }
}

/// Parses one SIP message (one UDP datagram).
pub fn parse(bytes: &[u8]) -> Result<Message, SipError> {
    if bytes.is_empty() || bytes.len() > MAX_MESSAGE {
        return Err(SipError::Size(bytes.len()));
    }
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| (p, p + 4))
        .or_else(|| {
            bytes
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|p| (p, p + 2))
        })
        .ok_or(SipError::NoHeadEnd)?;
    let head = std::str::from_utf8(&bytes[..end.0]).map_err(|_| SipError::NotUtf8)?;
    let mut lines = head.split('\n').map(|l| l.trim_end_matches('\r'));
    let start = lines.next().unwrap_or_default();
    let mut headers = Headers::default();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            // Folded continuation of the previous header.
            match headers.0.last_mut() {
                Some((_, v)) => {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                None => return Err(SipError::Header(line.to_string())),
            }
            continue;
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| SipError::Header(line.to_string()))?;
        let k = k.trim();
        if k.is_empty() || k.contains(' ') {
            return Err(SipError::Header(line.to_string()));
        }
        headers.push(expand_compact(k), v.trim());
    }
    let rest = &bytes[end.1..];
    let body = match headers.get("Content-Length") {
        Some(l) => {
            let n: usize = l
                .trim()
                .parse()
                .map_err(|_| SipError::ContentLength(l.to_string()))?;
            rest.get(..n)
                .ok_or_else(|| SipError::ContentLength(l.to_string()))?
                .to_vec()
        }
        None => rest.to_vec(),
    };
    let mut parts = start.splitn(3, ' ');
    let (a, b, c) = (parts.next(), parts.next(), parts.next());
    let bad = || SipError::StartLine(start.chars().take(80).collect());
    if a == Some("SIP/2.0") {
        let status: u16 = b.and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        if !(100..700).contains(&status) {
            return Err(bad());
        }
        Ok(Message::Response(Response {
            status,
            reason: c.unwrap_or_default().to_string(),
            headers,
            body,
        }))
    } else {
        match (a, b, c) {
            (Some(m), Some(u), Some("SIP/2.0"))
                if !m.is_empty() && m.bytes().all(|x| x.is_ascii_uppercase()) =>
            {
                Ok(Message::Request(Request {
                    method: m.to_string(),
                    uri: u.to_string(),
                    headers,
                    body,
                }))
            }
            _ => Err(bad()),
        }
    }
}

fn write_message(start: &str, headers: &Headers, body: &[u8]) -> Vec<u8> {
    let mut out = String::with_capacity(512);
    out.push_str(start);
    out.push_str("\r\n");
    for (k, v) in &headers.0 {
        if k.eq_ignore_ascii_case("Content-Length") {
            continue;
        }
        out.push_str(k);
        out.push_str(": ");
        out.push_str(v);
        out.push_str("\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut b = out.into_bytes();
    b.extend_from_slice(body);
    b
}

impl Request {
    /// Serialises with a correct Content-Length.
    pub fn to_bytes(&self) -> Vec<u8> {
        write_message(
            &format!("{} {} SIP/2.0", self.method, self.uri),
            &self.headers,
            &self.body,
        )
    }

    /// The CSeq number and method.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        parse_cseq(self.headers.get("CSeq")?)
    }
}

impl Response {
    /// Serialises with a correct Content-Length.
    pub fn to_bytes(&self) -> Vec<u8> {
        write_message(
            &format!("SIP/2.0 {} {}", self.status, self.reason),
            &self.headers,
            &self.body,
        )
    }

    /// A response to `req` (Via, From, To, Call-ID, CSeq copied; `to_tag`
    /// added to To when it has none), as a UAS builds it.
    pub fn to_request(req: &Request, status: u16, reason: &str, to_tag: Option<&str>) -> Response {
        let mut h = Headers::default();
        for v in req.headers.get_all("Via") {
            h.push("Via", v);
        }
        for name in ["From", "To", "Call-ID", "CSeq"] {
            if let Some(v) = req.headers.get(name) {
                let v = match (name, to_tag) {
                    ("To", Some(t)) if tag(v).is_none() => format!("{v};tag={t}"),
                    _ => v.to_string(),
                };
                h.push(name, v);
            }
        }
        Response {
            status,
            reason: reason.to_string(),
            headers: h,
            body: Vec::new(),
        }
    }

    /// The CSeq number and method.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        parse_cseq(self.headers.get("CSeq")?)
    }
}

fn parse_cseq(v: &str) -> Option<(u32, &str)> {
    let (n, m) = v.trim().split_once(char::is_whitespace)?;
    Some((n.parse().ok()?, m.trim()))
}

/// The `tag` parameter of a From/To value.
pub fn tag(name_addr: &str) -> Option<&str> {
    let params = match name_addr.rfind('>') {
        Some(i) => &name_addr[i + 1..],
        None => name_addr,
    };
    params
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("tag"))
        .map(|(_, v)| v.trim())
}

/// The URI inside `<...>` of a name-addr, or the value up to `;`.
pub fn addr_spec(name_addr: &str) -> &str {
    match (name_addr.find('<'), name_addr.find('>')) {
        (Some(a), Some(b)) if a < b => &name_addr[a + 1..b],
        _ => name_addr.split(';').next().unwrap_or_default().trim(),
    }
}

/// The `host:port` of a `sip:` URI (port 5060 when absent), if it is an IP.
pub fn uri_socket_addr(uri: &str) -> Option<SocketAddr> {
    let rest = uri.strip_prefix("sip:")?;
    let hostport = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let hostport = hostport.split([';', '?']).next()?;
    match hostport.rsplit_once(':') {
        Some((h, p)) => Some(SocketAddr::new(h.parse().ok()?, p.parse().ok()?)),
        None => Some(SocketAddr::new(hostport.parse().ok()?, 5060)),
    }
}

/// How a horn is told to answer by itself; devices differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoAnswer {
    /// RFC 5373: `Answer-Mode: Auto`.
    Rfc5373,
    /// `Call-Info: <sip:HOST>;answer-after=0` (Polycom, Yealink, Grandstream).
    CallInfo,
    /// `Alert-Info: info=alert-autoanswer` (Cisco, Snom).
    AlertInfo,
    /// All three at once (the default: unknown devices ignore the others).
    #[default]
    All,
}

impl std::str::FromStr for AutoAnswer {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "rfc5373" | "answer-mode" => Ok(AutoAnswer::Rfc5373),
            "call-info" => Ok(AutoAnswer::CallInfo),
            "alert-info" => Ok(AutoAnswer::AlertInfo),
            "all" => Ok(AutoAnswer::All),
            _ => Err(format!(
                "unknown auto-answer style {s:?}: expected rfc5373, call-info, alert-info or all"
            )),
        }
    }
}

impl AutoAnswer {
    /// The headers this style adds to an INVITE to `host`.
    pub fn headers(self, host: &str) -> Vec<(&'static str, String)> {
        let a = ("Answer-Mode", "Auto".to_string());
        let c = ("Call-Info", format!("<sip:{host}>;answer-after=0"));
        let i = ("Alert-Info", "info=alert-autoanswer".to_string());
        match self {
            AutoAnswer::Rfc5373 => vec![a],
            AutoAnswer::CallInfo => vec![c],
            AutoAnswer::AlertInfo => vec![i],
            AutoAnswer::All => vec![a, c, i],
        }
    }
}

/// An SDP offer for one audio stream from `addr` (RFC 4566/3264). It says
/// `sendrecv`, not `sendonly`: some horns only play a sendrecv stream
/// (baresip's aubridge, which clocks its player from the source, records
/// nothing for a sendonly offer); we simply ignore what the horn sends.
pub fn sdp_offer(addr: SocketAddr, codecs: &[Codec], session_id: u64) -> String {
    let ip = addr.ip();
    let fam = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let pts: Vec<String> = codecs
        .iter()
        .map(|c| c.payload_type().to_string())
        .collect();
    let mut s = format!(
        "v=0\r\no=tgw {session_id} {session_id} IN {fam} {ip}\r\ns=tgw\r\nc=IN {fam} {ip}\r\nt=0 0\r\nm=audio {} RTP/AVP {}\r\n",
        addr.port(),
        pts.join(" ")
    );
    for c in codecs {
        s.push_str(&format!(
            "a=rtpmap:{} {}/8000\r\na=ptime:20\r\n",
            c.payload_type(),
            c.sdp_name()
        ));
    }
    s.push_str("a=sendrecv\r\n");
    s
}

/// The audio part of an SDP body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpAudio {
    /// Connection address (media level, else session level).
    pub addr: IpAddr,
    /// Port of the `m=audio` line (0 = stream refused).
    pub port: u16,
    /// Payload types in the `m=audio` line, in order of preference.
    pub payload_types: Vec<u8>,
    /// `a=rtpmap` encoding names by payload type.
    pub rtpmap: Vec<(u8, String)>,
}

impl SdpAudio {
    /// Where to send RTP.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.addr, self.port)
    }

    /// The first payload type that is one of `offered`, as a codec; an
    /// error naming both lists otherwise.
    pub fn chosen_codec(&self, offered: &[Codec]) -> Result<Codec, SipError> {
        self.payload_types
            .iter()
            .filter_map(|&pt| {
                let c = Codec::from_payload_type(pt)?;
                offered.contains(&c).then_some(c)
            })
            .next()
            .ok_or_else(|| SipError::CodecNotOffered {
                answered: self.payload_types.clone(),
                offered: offered.iter().map(|c| c.payload_type()).collect(),
            })
    }
}

/// Parses the first `m=audio` stream of an SDP body.
pub fn parse_sdp(body: &[u8]) -> Result<SdpAudio, SipError> {
    let text = std::str::from_utf8(body).map_err(|_| SipError::Sdp("not UTF-8".into()))?;
    let mut session_c: Option<IpAddr> = None;
    let mut media_c: Option<IpAddr> = None;
    let mut audio: Option<(u16, Vec<u8>)> = None;
    let mut in_audio = false;
    let mut seen_media = false;
    let mut rtpmap = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(c) = line.strip_prefix("c=") {
            let ip = c
                .split_whitespace()
                .nth(2)
                .and_then(|a| a.split('/').next())
                .and_then(|a| a.parse::<IpAddr>().ok())
                .ok_or_else(|| SipError::Sdp(format!("bad connection line {line:?}")))?;
            if !seen_media {
                session_c = Some(ip);
            } else if in_audio {
                media_c = Some(ip);
            }
        } else if let Some(m) = line.strip_prefix("m=") {
            seen_media = true;
            in_audio = false;
            let mut f = m.split_whitespace();
            if f.next() == Some("audio") && audio.is_none() {
                let port = f
                    .next()
                    .and_then(|p| p.split('/').next())
                    .and_then(|p| p.parse::<u16>().ok())
                    .ok_or_else(|| SipError::Sdp(format!("bad media line {line:?}")))?;
                let _proto = f.next();
                let pts = f.filter_map(|p| p.parse::<u8>().ok()).collect();
                audio = Some((port, pts));
                in_audio = true;
            }
        } else if let Some(a) = line.strip_prefix("a=rtpmap:")
            && in_audio
            && let Some((pt, name)) = a.split_once(' ')
            && let Ok(pt) = pt.parse::<u8>()
        {
            rtpmap.push((pt, name.split('/').next().unwrap_or_default().to_string()));
        }
    }
    let (port, payload_types) = audio.ok_or_else(|| SipError::Sdp("no m=audio line".into()))?;
    let addr = media_c
        .or(session_c)
        .ok_or_else(|| SipError::Sdp("no connection address".into()))?;
    Ok(SdpAudio {
        addr,
        port,
        payload_types,
        rtpmap,
    })
}

/// An SDP answer (recvonly) for a horn receiving at `addr` with `codec`.
pub fn sdp_answer(addr: SocketAddr, pt: u8, name: &str, session_id: u64) -> String {
    let ip = addr.ip();
    format!(
        "v=0\r\no=horn {session_id} {session_id} IN IP4 {ip}\r\ns=horn\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {} RTP/AVP {pt}\r\na=rtpmap:{pt} {name}/8000\r\na=recvonly\r\n",
        addr.port()
    )
}

/// Parses a digest challenge (`WWW-Authenticate` / `Proxy-Authenticate`
/// value). Refuses one that is not ASCII before `digest_auth` sees it: its
/// parser (0.3.1) slices the text by character count and panics on a
/// multi-byte character (found by the `gb_sip` fuzz target).
pub fn parse_digest_challenge(
    challenge: &str,
) -> Result<digest_auth::WwwAuthenticateHeader, String> {
    if !challenge.is_ascii() {
        return Err("the digest challenge is not ASCII".into());
    }
    digest_auth::parse(challenge).map_err(|e| e.to_string())
}

/// The `Authorization` value answering a `WWW-Authenticate` (or
/// `Proxy-Authenticate`) digest challenge for `method` on `uri`.
pub fn digest_authorization(
    challenge: &str,
    method: &str,
    uri: &str,
    user: &str,
    password: &str,
) -> Result<String, SipError> {
    let mut prompt = parse_digest_challenge(challenge)
        .map_err(|e| SipError::Digest(format!("{e}: {challenge:?}")))?;
    let ctx = digest_auth::AuthContext::new_with_method(
        user,
        password,
        uri,
        Option::<&[u8]>::None,
        digest_auth::HttpMethod::from(method),
    );
    prompt
        .respond(&ctx)
        .map(|a| a.to_header_string())
        .map_err(|e| SipError::Digest(e.to_string()))
}

/// Where and how to call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallConfig {
    /// Horn user part (`horn`, an extension number).
    pub user: String,
    /// Horn address.
    pub remote: SocketAddr,
    /// Our SIP address (Via, Contact).
    pub local: SocketAddr,
    /// Our RTP address offered in SDP.
    pub rtp: SocketAddr,
    /// Codecs offered, preferred first.
    pub codecs: Vec<Codec>,
    /// Auto-answer headers.
    pub auto_answer: AutoAnswer,
    /// Digest user and password, if the horn asks.
    pub credentials: Option<(String, String)>,
    /// How long to wait for a final answer.
    pub answer_timeout: Duration,
    /// Call-ID (random, from the IO layer).
    pub call_id: String,
    /// From tag (random).
    pub from_tag: String,
    /// Prefix of branch ids (random); a counter is appended.
    pub branch_seed: String,
    /// SDP session id.
    pub session_id: u64,
}

/// The answered call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    /// Where to send RTP.
    pub rtp: SocketAddr,
    /// Codec chosen by the horn.
    pub codec: Codec,
    /// When the 200 OK arrived.
    pub at: Duration,
}

/// Why a call did not happen or ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No final answer within the answer timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// A final non-2xx answer (486 Busy Here, 603 Decline, ...).
    #[error("refused: {status} {reason}")]
    Refused {
        /// Status code.
        status: u16,
        /// Reason phrase.
        reason: String,
    },
    /// Authentication demanded without credentials, or the credentials refused.
    #[error("authentication failed: {status} {reason}")]
    Auth {
        /// Status code (401/407).
        status: u16,
        /// Reason phrase.
        reason: String,
    },
    /// The 200 OK's SDP is unusable (no audio, a codec we did not offer).
    #[error("unusable answer: {0}")]
    Answer(SipError),
    /// The horn hung up (BYE) during the call.
    #[error("the horn hung up")]
    HungUp,
}

/// What the state machine asks of its IO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Send this datagram to the horn.
    Send(Vec<u8>),
    /// A provisional response (100 Trying, 180 Ringing, ...).
    Provisional(u16),
    /// The call is up: start the media.
    Answered(Answered),
    /// The call failed or ended abnormally; no more events but sends.
    Failed(CallError),
    /// The call ended normally (our BYE answered or given up on).
    Ended,
}

/// How an INVITE differs from a horn call's (GB/T 28181 voice broadcast:
/// the device calls the platform): who we are, extra headers, our own SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteAs {
    /// Our user part in From and Contact (a channel id).
    pub from_user: String,
    /// The host part of From (a SIP domain).
    pub from_host: String,
    /// Extra headers of the INVITE (`Subject`).
    pub headers: Vec<(String, String)>,
    /// The SDP offer, instead of [`sdp_offer`]'s.
    pub sdp: String,
}

/// States of [`InviteClient`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// INVITE sent, nothing heard.
    Calling,
    /// A provisional response heard.
    Proceeding,
    /// 200 OK acknowledged: media flows.
    Confirmed,
    /// BYE sent, waiting for its answer.
    Terminating,
    /// Over.
    Terminated,
}

/// An outgoing call: the INVITE client transaction (RFC 3261 §17.1.1) and
/// the dialog up to the BYE. Pure: `now` is time since an origin the IO
/// layer chooses.
#[derive(Debug, Clone)]
pub struct InviteClient {
    cfg: CallConfig,
    state: CallState,
    cseq: u32,
    branches: u32,
    invite: Request,
    started: Duration,
    next_retransmit: Option<Duration>,
    interval: Duration,
    auth_tried: bool,
    to_tag: Option<String>,
    remote_target: String,
    last_ack: Option<Vec<u8>>,
    bye: Option<(Vec<u8>, Duration)>,
    invite_as: Option<InviteAs>,
}

impl InviteClient {
    /// A new call; returns it and the INVITE to send.
    pub fn new(cfg: CallConfig, now: Duration) -> (InviteClient, Vec<u8>) {
        InviteClient::new_as(cfg, None, now)
    }

    /// A new call made as `invite_as` says (identity, headers, offer);
    /// returns it and the INVITE to send.
    pub fn new_as(
        cfg: CallConfig,
        invite_as: Option<InviteAs>,
        now: Duration,
    ) -> (InviteClient, Vec<u8>) {
        let remote_target = format!("sip:{}@{}", cfg.user, cfg.remote);
        let mut c = InviteClient {
            state: CallState::Calling,
            cseq: 1,
            branches: 0,
            invite: Request {
                method: String::new(),
                uri: String::new(),
                headers: Headers::default(),
                body: Vec::new(),
            },
            started: now,
            next_retransmit: Some(now + T1),
            interval: T1,
            auth_tried: false,
            to_tag: None,
            remote_target,
            last_ack: None,
            bye: None,
            invite_as,
            cfg,
        };
        c.invite = c.build_invite(None);
        let bytes = c.invite.to_bytes();
        (c, bytes)
    }

    /// The state.
    pub fn state(&self) -> CallState {
        self.state
    }

    /// The Call-ID.
    pub fn call_id(&self) -> &str {
        &self.cfg.call_id
    }

    fn branch(&mut self) -> String {
        self.branches += 1;
        format!("z9hG4bK{}{}", self.cfg.branch_seed, self.branches)
    }

    fn base(&mut self, method: &str, uri: &str, cseq: u32, branch: Option<String>) -> Request {
        let branch = branch.unwrap_or_else(|| self.branch());
        let mut h = Headers::default();
        h.push(
            "Via",
            format!("SIP/2.0/UDP {};branch={branch};rport", self.cfg.local),
        );
        h.push("Max-Forwards", "70");
        let from = match &self.invite_as {
            Some(a) => format!("<sip:{}@{}>", a.from_user, a.from_host),
            None => format!("<sip:tgw@{}>", self.cfg.local.ip()),
        };
        h.push("From", format!("{from};tag={}", self.cfg.from_tag));
        let to = format!("<sip:{}@{}>", self.cfg.user, self.cfg.remote);
        h.push(
            "To",
            match &self.to_tag {
                Some(t) => format!("{to};tag={t}"),
                None => to,
            },
        );
        h.push("Call-ID", self.cfg.call_id.clone());
        h.push("CSeq", format!("{cseq} {method}"));
        h.push("User-Agent", "tgw");
        Request {
            method: method.to_string(),
            uri: uri.to_string(),
            headers: h,
            body: Vec::new(),
        }
    }

    fn build_invite(&mut self, auth: Option<(&'static str, String)>) -> Request {
        let uri = self.remote_target.clone();
        let mut r = self.base("INVITE", &uri, self.cseq, None);
        let user = self
            .invite_as
            .as_ref()
            .map_or("tgw", |a| a.from_user.as_str());
        r.headers
            .push("Contact", format!("<sip:{user}@{}>", self.cfg.local));
        r.headers.push("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS");
        if self.invite_as.is_none() {
            for (k, v) in self
                .cfg
                .auto_answer
                .headers(&self.cfg.remote.ip().to_string())
            {
                r.headers.push(k, v);
            }
        }
        if let Some((k, v)) = auth {
            r.headers.push(k, v);
        }
        r.headers.push("Content-Type", "application/sdp");
        r.body = match &self.invite_as {
            Some(a) => {
                for (k, v) in &a.headers {
                    r.headers.push(k, v.clone());
                }
                a.sdp.clone().into_bytes()
            }
            None => sdp_offer(self.cfg.rtp, &self.cfg.codecs, self.cfg.session_id).into_bytes(),
        };
        r
    }

    /// ACK for a non-2xx final response: same branch and CSeq number as the INVITE.
    fn ack_non2xx(&self, resp: &Response) -> Vec<u8> {
        let mut h = Headers::default();
        if let Some(v) = self.invite.headers.get("Via") {
            h.push("Via", v);
        }
        h.push("Max-Forwards", "70");
        for name in ["From", "Call-ID"] {
            if let Some(v) = self.invite.headers.get(name) {
                h.push(name, v);
            }
        }
        if let Some(v) = resp.headers.get("To") {
            h.push("To", v);
        }
        h.push("CSeq", format!("{} ACK", self.cseq));
        Request {
            method: "ACK".into(),
            uri: self.invite.uri.clone(),
            headers: h,
            body: Vec::new(),
        }
        .to_bytes()
    }

    /// When [`InviteClient::on_tick`] must next run.
    pub fn next_deadline(&self) -> Option<Duration> {
        match self.state {
            CallState::Calling => self
                .next_retransmit
                .map(|r| r.min(self.started + self.cfg.answer_timeout)),
            CallState::Proceeding => Some(self.started + self.cfg.answer_timeout),
            CallState::Terminating => self.next_retransmit,
            _ => None,
        }
    }

    /// Timers: INVITE and BYE retransmission, the answer timeout.
    pub fn on_tick(&mut self, now: Duration) -> Vec<Event> {
        let mut ev = Vec::new();
        match self.state {
            CallState::Calling | CallState::Proceeding => {
                if now >= self.started + self.cfg.answer_timeout {
                    self.state = CallState::Terminated;
                    if self.to_tag.is_none() {
                        // CANCEL the pending INVITE (same branch and CSeq number).
                        let mut c = self.invite.clone();
                        c.method = "CANCEL".into();
                        c.headers.0.retain(|(k, _)| {
                            ["Via", "From", "To", "Call-ID", "Max-Forwards"]
                                .iter()
                                .any(|n| k.eq_ignore_ascii_case(n))
                        });
                        c.headers.push("CSeq", format!("{} CANCEL", self.cseq));
                        c.body.clear();
                        ev.push(Event::Send(c.to_bytes()));
                    }
                    ev.push(Event::Failed(CallError::Timeout(self.cfg.answer_timeout)));
                } else if self.state == CallState::Calling
                    && let Some(r) = self.next_retransmit
                    && now >= r
                {
                    self.interval = (self.interval * 2).min(Duration::from_secs(4));
                    self.next_retransmit = Some(now + self.interval);
                    ev.push(Event::Send(self.invite.to_bytes()));
                }
            }
            CallState::Terminating => {
                if let Some((bytes, since)) = &self.bye {
                    if now >= *since + T1 * 64 {
                        self.state = CallState::Terminated;
                        ev.push(Event::Ended);
                    } else if self.next_retransmit.is_some_and(|r| now >= r) {
                        self.interval = (self.interval * 2).min(Duration::from_secs(4));
                        self.next_retransmit = Some(now + self.interval);
                        ev.push(Event::Send(bytes.clone()));
                    }
                }
            }
            _ => {}
        }
        ev
    }

    /// A message from the horn.
    pub fn on_message(&mut self, msg: &Message, now: Duration) -> Vec<Event> {
        if msg.headers().get("Call-ID") != Some(self.cfg.call_id.as_str()) {
            return Vec::new();
        }
        match msg {
            Message::Response(r) => self.on_response(r, now),
            Message::Request(r) => self.on_request(r),
        }
    }

    fn on_request(&mut self, req: &Request) -> Vec<Event> {
        let ok = |r: &Request| Event::Send(Response::to_request(r, 200, "OK", None).to_bytes());
        match req.method.as_str() {
            "BYE" => {
                let was_up = matches!(self.state, CallState::Confirmed);
                let mut ev = vec![ok(req)];
                if was_up {
                    self.state = CallState::Terminated;
                    ev.push(Event::Failed(CallError::HungUp));
                }
                ev
            }
            "OPTIONS" => vec![ok(req)],
            "ACK" => Vec::new(),
            _ => vec![Event::Send(
                Response::to_request(req, 501, "Not Implemented", None).to_bytes(),
            )],
        }
    }

    fn on_response(&mut self, r: &Response, now: Duration) -> Vec<Event> {
        let Some((n, method)) = r.cseq() else {
            return Vec::new();
        };
        if method == "BYE" {
            if self.state == CallState::Terminating && r.status >= 200 {
                self.state = CallState::Terminated;
                return vec![Event::Ended];
            }
            return Vec::new();
        }
        if method != "INVITE" || n != self.cseq {
            return Vec::new();
        }
        match (self.state, r.status) {
            (CallState::Calling | CallState::Proceeding, 100..=199) => {
                self.state = CallState::Proceeding;
                self.next_retransmit = None;
                vec![Event::Provisional(r.status)]
            }
            (CallState::Calling | CallState::Proceeding, 200..=299) => self.on_answer(r, now),
            (CallState::Confirmed | CallState::Terminating, 200..=299) => {
                // A retransmitted 200 OK: our ACK was lost.
                self.last_ack.clone().map(Event::Send).into_iter().collect()
            }
            (CallState::Calling | CallState::Proceeding, 401 | 407) => {
                let mut ev = vec![Event::Send(self.ack_non2xx(r))];
                let (hdr, ans) = if r.status == 401 {
                    ("WWW-Authenticate", "Authorization")
                } else {
                    ("Proxy-Authenticate", "Proxy-Authorization")
                };
                let fail = |reason: &str| {
                    Event::Failed(CallError::Auth {
                        status: r.status,
                        reason: reason.to_string(),
                    })
                };
                match (&self.cfg.credentials, r.headers.get(hdr), self.auth_tried) {
                    (Some((u, p)), Some(ch), false) => {
                        match digest_authorization(ch, "INVITE", &self.remote_target, u, p) {
                            Ok(a) => {
                                self.auth_tried = true;
                                self.cseq += 1;
                                self.invite = self.build_invite(Some((ans, a)));
                                self.state = CallState::Calling;
                                self.interval = T1;
                                self.next_retransmit = Some(now + T1);
                                ev.push(Event::Send(self.invite.to_bytes()));
                            }
                            Err(e) => {
                                self.state = CallState::Terminated;
                                ev.push(fail(&format!("{} ({e})", r.reason)));
                            }
                        }
                    }
                    (None, _, _) => {
                        self.state = CallState::Terminated;
                        ev.push(fail(&format!("{} (no credentials configured)", r.reason)));
                    }
                    (_, None, _) => {
                        self.state = CallState::Terminated;
                        ev.push(fail(&format!("{} (without a {hdr} challenge)", r.reason)));
                    }
                    (_, _, true) => {
                        self.state = CallState::Terminated;
                        ev.push(fail(&format!("{} (credentials refused)", r.reason)));
                    }
                }
                ev
            }
            (CallState::Calling | CallState::Proceeding, 300..) => {
                self.state = CallState::Terminated;
                vec![
                    Event::Send(self.ack_non2xx(r)),
                    Event::Failed(CallError::Refused {
                        status: r.status,
                        reason: r.reason.clone(),
                    }),
                ]
            }
            _ => Vec::new(),
        }
    }

    fn on_answer(&mut self, r: &Response, now: Duration) -> Vec<Event> {
        self.to_tag = r.headers.get("To").and_then(tag).map(str::to_string);
        if let Some(c) = r.headers.get("Contact") {
            let spec = addr_spec(c);
            if spec.starts_with("sip:") {
                self.remote_target = spec.to_string();
            }
        }
        let uri = self.remote_target.clone();
        let ack = self.base("ACK", &uri, self.cseq, None).to_bytes();
        self.last_ack = Some(ack.clone());
        self.state = CallState::Confirmed;
        self.next_retransmit = None;
        let answer = parse_sdp(&r.body).and_then(|sdp| {
            let codec = sdp.chosen_codec(&self.cfg.codecs)?;
            if sdp.port == 0 {
                return Err(SipError::Sdp("audio stream refused (port 0)".into()));
            }
            Ok(Answered {
                rtp: sdp.socket_addr(),
                codec,
                at: now,
            })
        });
        match answer {
            Ok(a) => vec![Event::Send(ack), Event::Answered(a)],
            Err(e) => {
                let mut ev = vec![Event::Send(ack)];
                if let Some(bye) = self.hangup(now) {
                    ev.push(Event::Send(bye));
                }
                ev.push(Event::Failed(CallError::Answer(e)));
                ev
            }
        }
    }

    /// Ends the call: a BYE when it is up (to send, then retransmitted by
    /// [`InviteClient::on_tick`]); `None` otherwise.
    pub fn hangup(&mut self, now: Duration) -> Option<Vec<u8>> {
        if self.state != CallState::Confirmed {
            if matches!(self.state, CallState::Calling | CallState::Proceeding) {
                self.state = CallState::Terminated;
            }
            return None;
        }
        self.cseq += 1;
        let uri = self.remote_target.clone();
        let bye = self.base("BYE", &uri, self.cseq, None).to_bytes();
        self.state = CallState::Terminating;
        self.interval = T1;
        self.next_retransmit = Some(now + T1);
        self.bye = Some((bye.clone(), now));
        Some(bye)
    }
}

/// An OPTIONS request (the health check) to `user@remote` from `local`.
pub fn options_request(
    user: &str,
    remote: SocketAddr,
    local: SocketAddr,
    call_id: &str,
    branch: &str,
) -> Vec<u8> {
    let mut h = Headers::default();
    h.push(
        "Via",
        format!("SIP/2.0/UDP {local};branch=z9hG4bK{branch};rport"),
    );
    h.push("Max-Forwards", "70");
    h.push("From", format!("<sip:tgw@{}>;tag={branch}", local.ip()));
    h.push("To", format!("<sip:{user}@{remote}>"));
    h.push("Call-ID", call_id);
    h.push("CSeq", "1 OPTIONS");
    h.push("Accept", "application/sdp");
    Request {
        method: "OPTIONS".into(),
        uri: format!("sip:{user}@{remote}"),
        headers: h,
        body: Vec::new(),
    }
    .to_bytes()
}

impl fmt::Display for CallState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests;
