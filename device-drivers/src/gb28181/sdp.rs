//! The SDP of a GB/T 28181 live-video INVITE (pure): the platform's offer and
//! our answer.
//!
//! An offer as WVP-GB28181 and county platforms send it:
//!
//! ```text
//! v=0
//! o=34020000002000000001 0 0 IN IP4 10.0.0.1
//! s=Play
//! c=IN IP4 10.0.0.1
//! t=0 0
//! m=video 30000 TCP/RTP/AVP 96 97 98
//! a=recvonly
//! a=rtpmap:96 PS/90000
//! a=rtpmap:98 H264/90000
//! a=setup:passive
//! a=connection:new
//! y=0100000001
//! ```
//!
//! `s=Play` only (Playback and Download are refused for now); `m=video` over
//! `RTP/AVP` (UDP) or `TCP/RTP/AVP`; a payload type mapped to `PS/90000`;
//! `y=` the SSRC in 10 decimal digits. For TCP, the offer's `a=setup` is the
//! platform's role: `passive` (it listens on `c=`/`m=`, we connect: our
//! *active* mode) or `active` (it connects to the port in our answer: our
//! *passive* mode). Offers are capped at [`MAX_OFFER_BYTES`] and
//! [`MAX_LINES`]; every refusal says which line was wrong.

use std::fmt::Write as _;
use std::net::IpAddr;

/// Largest offer read.
pub const MAX_OFFER_BYTES: usize = 4096;
/// Most lines in an offer.
pub const MAX_LINES: usize = 64;

/// How the RTP goes to the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaTransport {
    /// RTP over UDP to the offer's address and port.
    Udp,
    /// RTP over TCP (RFC 4571); we connect to the offer's address and port
    /// (the offer said `a=setup:passive`).
    TcpActive,
    /// RTP over TCP (RFC 4571); we listen on the port of our answer and the
    /// platform connects (the offer said `a=setup:active`).
    TcpPassive,
}

impl MediaTransport {
    /// `udp`, `tcp-active`, `tcp-passive` (status pages, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            MediaTransport::Udp => "udp",
            MediaTransport::TcpActive => "tcp-active",
            MediaTransport::TcpPassive => "tcp-passive",
        }
    }
}

/// A checked live-video offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The `o=` username (the platform's id), if any.
    pub origin: Option<String>,
    /// Where the platform receives (or listens): `c=`.
    pub address: IpAddr,
    /// The `m=video` port.
    pub port: u16,
    /// UDP, TCP active or TCP passive (our role).
    pub transport: MediaTransport,
    /// The payload type mapped to `PS/90000` (96 in practice).
    pub payload_type: u8,
    /// The SSRC, as the 10 digits of `y=`.
    pub ssrc_text: String,
    /// The SSRC as a number.
    pub ssrc: u32,
    /// The `f=` line's value, if any (media description; not acted on).
    pub format: Option<String>,
}

/// Why an offer was refused (answered 488).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// Over [`MAX_OFFER_BYTES`] or [`MAX_LINES`].
    #[error("offer too large: {0}")]
    TooLarge(String),
    /// A line that is not `x=value`, or a required field missing or wrong.
    #[error("{line}: {why}")]
    Bad {
        /// The line (or field) at fault, truncated.
        line: String,
        /// What was wrong with it.
        why: &'static str,
    },
    /// A session we do not serve yet (`s=Playback`, `s=Download`, `s=Talk`).
    #[error("s={0} is not supported (live video only: s=Play)")]
    Unsupported(String),
}

fn bad(line: &str, why: &'static str) -> SdpError {
    SdpError::Bad {
        line: line.chars().take(80).collect(),
        why,
    }
}

fn parse_c(value: &str, line: &str) -> Result<IpAddr, SdpError> {
    let mut it = value.split_ascii_whitespace();
    let (Some("IN"), Some(kind), Some(addr), None) = (it.next(), it.next(), it.next(), it.next())
    else {
        return Err(bad(line, "expected c=IN IP4 <address>"));
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| bad(line, "connection address is not an IP address"))?;
    match (kind, ip) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => {}
        _ => return Err(bad(line, "address family does not match the address")),
    }
    if ip.is_unspecified() || ip.is_multicast() {
        return Err(bad(line, "connection address is unspecified or multicast"));
    }
    Ok(ip)
}

/// State while reading the offer.
#[derive(Default)]
struct Draft {
    origin: Option<String>,
    session: Option<String>,
    session_c: Option<IpAddr>,
    media_c: Option<IpAddr>,
    /// (port, proto, payload types) of `m=video`.
    video: Option<(u16, String, Vec<u8>)>,
    in_video: bool,
    ps_pt: Option<u8>,
    setup: Option<String>,
    direction: Option<String>,
    ssrc: Option<String>,
    format: Option<String>,
}

impl Draft {
    fn line(&mut self, line: &str) -> Result<(), SdpError> {
        let Some((key, value)) = line.split_once('=') else {
            return Err(bad(line, "not a type=value line"));
        };
        match key {
            "o" => self.origin = value.split_ascii_whitespace().next().map(str::to_string),
            "s" => self.session = Some(value.trim().to_string()),
            "c" if self.in_video => self.media_c = Some(parse_c(value, line)?),
            "c" if self.video.is_none() => self.session_c = Some(parse_c(value, line)?),
            "m" => self.media(value, line)?,
            "a" if self.in_video || self.video.is_none() => self.attribute(value, line)?,
            "y" => {
                let v = value.trim();
                if v.len() != 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad(line, "y= must be 10 decimal digits"));
                }
                self.ssrc = Some(v.to_string());
            }
            "f" => self.format = Some(value.trim().to_string()).filter(|f| !f.is_empty()),
            k if k.len() == 1 => {}
            _ => return Err(bad(line, "not a type=value line")),
        }
        Ok(())
    }

    fn media(&mut self, value: &str, line: &str) -> Result<(), SdpError> {
        let mut it = value.split_ascii_whitespace();
        let media = it.next().unwrap_or("");
        if media != "video" {
            self.in_video = false;
            return Ok(());
        }
        if self.video.is_some() {
            return Err(bad(line, "more than one m=video"));
        }
        let port = it
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p != 0)
            .ok_or_else(|| bad(line, "m=video port is not 1-65535"))?;
        let proto = it.next().unwrap_or("").to_ascii_uppercase();
        let mut pts = Vec::new();
        for pt in it.take(32) {
            pts.push(
                pt.parse::<u8>()
                    .ok()
                    .filter(|p| *p < 128)
                    .ok_or_else(|| bad(line, "payload type is not 0-127"))?,
            );
        }
        self.video = Some((port, proto, pts));
        self.in_video = true;
        Ok(())
    }

    fn attribute(&mut self, value: &str, line: &str) -> Result<(), SdpError> {
        let (name, arg) = value.split_once(':').unwrap_or((value, ""));
        match name.trim() {
            "rtpmap" => {
                let (pt, enc) = arg.split_once(' ').unwrap_or((arg, ""));
                let pt: u8 = pt
                    .trim()
                    .parse()
                    .map_err(|_| bad(line, "rtpmap payload type is not a number"))?;
                if enc.trim().eq_ignore_ascii_case("PS/90000") && self.ps_pt.is_none() {
                    self.ps_pt = Some(pt);
                }
            }
            "setup" => self.setup = Some(arg.trim().to_ascii_lowercase()),
            d @ ("recvonly" | "sendonly" | "sendrecv" | "inactive") => {
                self.direction = Some(d.to_string())
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(self) -> Result<Offer, SdpError> {
        let session = self.session.ok_or_else(|| bad("s=", "no s= line"))?;
        if !session.eq_ignore_ascii_case("Play") {
            return Err(SdpError::Unsupported(session.chars().take(32).collect()));
        }
        let (port, proto, pts) = self.video.ok_or_else(|| bad("m=", "no m=video line"))?;
        let address = self
            .media_c
            .or(self.session_c)
            .ok_or_else(|| bad("c=", "no c= line"))?;
        let payload_type = self
            .ps_pt
            .ok_or_else(|| bad("a=rtpmap", "no payload type mapped to PS/90000"))?;
        if !pts.contains(&payload_type) {
            return Err(bad(
                "m=video",
                "the PS payload type is not offered on m=video",
            ));
        }
        if let Some(d) = self.direction.as_deref()
            && d != "recvonly"
        {
            return Err(bad("a=", "live video offers must be a=recvonly"));
        }
        let transport = match proto.as_str() {
            "RTP/AVP" => MediaTransport::Udp,
            "TCP/RTP/AVP" | "RTP/AVP/TCP" => match self.setup.as_deref() {
                Some("passive") | Some("actpass") | None => MediaTransport::TcpActive,
                Some("active") => MediaTransport::TcpPassive,
                Some(_) => return Err(bad("a=setup", "a=setup must be active or passive")),
            },
            _ => return Err(bad("m=video", "transport must be RTP/AVP or TCP/RTP/AVP")),
        };
        let ssrc_text = self.ssrc.ok_or_else(|| bad("y=", "no y= SSRC line"))?;
        let ssrc = ssrc_text
            .parse::<u32>()
            .map_err(|_| bad("y=", "SSRC over 4294967295"))?;
        Ok(Offer {
            origin: self.origin,
            address,
            port,
            transport,
            payload_type,
            ssrc_text,
            ssrc,
            format: self.format,
        })
    }
}

/// Parses and checks a platform's INVITE offer.
pub fn parse_offer(sdp: &str) -> Result<Offer, SdpError> {
    if sdp.len() > MAX_OFFER_BYTES {
        return Err(SdpError::TooLarge(format!(
            "{} bytes, limit {MAX_OFFER_BYTES}",
            sdp.len()
        )));
    }
    let mut d = Draft::default();
    for (n, line) in sdp
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        if n >= MAX_LINES {
            return Err(SdpError::TooLarge(format!("over {MAX_LINES} lines")));
        }
        d.line(line)?;
    }
    d.finish()
}

/// Our answer to `offer`: `sendonly`, our address and port, the same SSRC.
/// `id` is our channel id (the `o=` username); `address` what the platform
/// can reach (the configured public address, or the local one); `port`
/// where we send from (UDP, TCP active) or listen (TCP passive).
pub fn answer(offer: &Offer, id: &str, address: IpAddr, port: u16) -> String {
    let fam = if address.is_ipv4() { "IP4" } else { "IP6" };
    let proto = match offer.transport {
        MediaTransport::Udp => "RTP/AVP",
        _ => "TCP/RTP/AVP",
    };
    let pt = offer.payload_type;
    let id: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(32)
        .collect();
    let id = if id.is_empty() { "-".to_string() } else { id };
    let mut s = String::with_capacity(256);
    let _ = write!(
        s,
        "v=0\r\no={id} 0 0 IN {fam} {address}\r\ns=Play\r\nc=IN {fam} {address}\r\nt=0 0\r\n\
         m=video {port} {proto} {pt}\r\na=sendonly\r\na=rtpmap:{pt} PS/90000\r\n"
    );
    match offer.transport {
        MediaTransport::Udp => {}
        MediaTransport::TcpActive => s.push_str("a=setup:active\r\na=connection:new\r\n"),
        MediaTransport::TcpPassive => s.push_str("a=setup:passive\r\na=connection:new\r\n"),
    }
    let _ = write!(s, "y={}\r\nf=\r\n", offer.ssrc_text);
    s
}

#[cfg(test)]
mod tests;
