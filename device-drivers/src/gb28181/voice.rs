//! GB/T 28181 voice broadcast (语音广播, 2016 §9.12), pure: the platform's
//! `Broadcast` notify and our MANSCDP answer, the audio offer the device
//! (we, for a horn channel) sends in its INVITE to the platform, and the
//! RTP packets of G.711 audio that come back.
//!
//! ```text
//! platform ── MESSAGE Notify/Broadcast (SourceID, TargetID) ──► tgw
//! platform ◄── 200, then MESSAGE Response/Broadcast Result OK|ERROR ── tgw
//! platform ◄── INVITE (SDP: m=audio RTP/AVP 8 0, a=recvonly, y=) ── tgw
//! platform ── 200 (SDP: its RTP source), ACK; RTP G.711 ──► tgw ─► horns
//! either side ── BYE ──► the other
//! ```

use std::net::IpAddr;

use super::manscdp::{Charset, Manscdp, Root};
use crate::g711::Codec;
use crate::xml::escape;

/// Why a broadcast notify or an RTP packet was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoiceError {
    /// The notify lacks SourceID or TargetID, or they are not 20 digits.
    #[error("Broadcast notify: {0}")]
    Notify(String),
    /// An RTP packet that is not one.
    #[error("RTP packet: {0}")]
    Rtp(String),
}

/// A platform's request to broadcast to one of our voice channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broadcast {
    /// SN, echoed in the answer.
    pub sn: u32,
    /// The platform's audio source (its broadcast channel id).
    pub source_id: String,
    /// Our voice channel it wants.
    pub target_id: String,
}

fn twenty_digits(s: &str) -> bool {
    s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Reads a parsed `Notify`/`Broadcast` (from [`super::manscdp::parse`]).
pub fn broadcast(m: &Manscdp) -> Result<Broadcast, VoiceError> {
    if m.root != Root::Notify || m.cmd_type != "Broadcast" {
        return Err(VoiceError::Notify(format!(
            "{:?}/{} is not Notify/Broadcast",
            m.root, m.cmd_type
        )));
    }
    let source_id = m
        .field("SourceID")
        .ok_or_else(|| VoiceError::Notify("no <SourceID>".into()))?
        .trim()
        .to_string();
    let target_id = m
        .field("TargetID")
        .unwrap_or(&m.device_id)
        .trim()
        .to_string();
    for (name, v) in [("SourceID", &source_id), ("TargetID", &target_id)] {
        if !twenty_digits(v) {
            return Err(VoiceError::Notify(format!(
                "<{name}> {:?} is not 20 digits",
                v.chars().take(40).collect::<String>()
            )));
        }
    }
    Ok(Broadcast {
        sn: m.sn,
        source_id,
        target_id,
    })
}

/// Our answer to a Broadcast notify: `Result` OK, or ERROR with the reason
/// in `Reason` (platforms that do not know the element ignore it).
pub fn broadcast_response(
    sn: u32,
    target_id: &str,
    result: Result<(), &str>,
    charset: Charset,
) -> Vec<u8> {
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"{}\"?>\r\n<Response>\r\n<CmdType>Broadcast</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{}</DeviceID>\r\n",
        charset.label(),
        escape(target_id)
    );
    match result {
        Ok(()) => s.push_str("<Result>OK</Result>\r\n"),
        Err(why) => s.push_str(&format!(
            "<Result>ERROR</Result>\r\n<Reason>{}</Reason>\r\n",
            escape(why)
        )),
    }
    s.push_str("</Response>\r\n");
    charset.encode(&s)
}

/// The `Subject` of our INVITE: sender (the platform's source) and
/// receiver (our channel), each with stream number 0.
pub fn subject(b: &Broadcast) -> String {
    format!("{}:0,{}:0", b.source_id, b.target_id)
}

/// The SDP offer of our INVITE: we receive (`recvonly`) G.711 A-law (8) or
/// µ-law (0) on `ip`:`port`; `ssrc` is the 10-digit `y=` (0 + the civil
/// code's digits 4-8 + a serial, as the standard suggests; any 10 digits).
pub fn audio_offer(channel_id: &str, ip: IpAddr, port: u16, ssrc: u32) -> String {
    let fam = if ip.is_ipv4() { "IP4" } else { "IP6" };
    format!(
        "v=0\r\no={channel_id} 0 0 IN {fam} {ip}\r\ns=Play\r\nc=IN {fam} {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 8 0\r\na=recvonly\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:0 PCMU/8000\r\ny={:010}\r\nf=v/////a/1/8/1\r\n",
        ssrc % 1_000_000_000
    )
}

/// The codecs [`audio_offer`] offers, preferred first.
pub const OFFERED: [Codec; 2] = [Codec::Pcma, Codec::Pcmu];

/// One RTP packet's header fields and payload (RFC 3550 §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// Payload type.
    pub payload_type: u8,
    /// Sequence number.
    pub seq: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// SSRC.
    pub ssrc: u32,
    /// The payload, without CSRCs, extension or padding.
    pub payload: &'a [u8],
}

/// Reads an RTP packet: version 2, CSRCs, a header extension and padding
/// skipped; RTCP (payload types 72-76 with the marker) refused.
pub fn parse_rtp(b: &[u8]) -> Result<RtpPacket<'_>, VoiceError> {
    let bad = |m: String| Err(VoiceError::Rtp(m));
    if b.len() < 12 {
        return bad(format!("{} bytes, under the 12-byte header", b.len()));
    }
    if b[0] >> 6 != 2 {
        return bad(format!("version {}, not 2", b[0] >> 6));
    }
    let pt = b[1] & 0x7f;
    if (72..=76).contains(&pt) {
        return bad(format!("RTCP (type {})", b[1]));
    }
    let mut off = 12 + 4 * usize::from(b[0] & 0x0f);
    if b[0] & 0x10 != 0 {
        if b.len() < off + 4 {
            return bad("header extension cut short".into());
        }
        let words = usize::from(u16::from_be_bytes([b[off + 2], b[off + 3]]));
        off += 4 + 4 * words;
    }
    let mut end = b.len();
    if b[0] & 0x20 != 0 {
        let pad = usize::from(b[end - 1]);
        if pad == 0 || pad > end {
            return bad(format!("padding {pad} of {end} bytes"));
        }
        end -= pad;
    }
    if off > end {
        return bad(format!("header of {off} bytes in a {end}-byte packet"));
    }
    Ok(RtpPacket {
        payload_type: pt,
        seq: u16::from_be_bytes([b[2], b[3]]),
        timestamp: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        payload: &b[off..end],
    })
}

/// The 8 kHz samples of a G.711 packet, whichever of PCMA (8) and PCMU (0)
/// it carries; other payload types (PS audio, 96) are refused by name.
pub fn decode_g711(p: &RtpPacket<'_>) -> Result<Vec<i16>, VoiceError> {
    match Codec::from_payload_type(p.payload_type) {
        Some(c) => Ok(c.decode(p.payload)),
        None => Err(VoiceError::Rtp(format!(
            "payload type {} is not G.711 (PCMA 8, PCMU 0)",
            p.payload_type
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gb28181::manscdp;

    /// A Broadcast notify as WVP-GB28181-pro sends it (no DeviceID, GB2312).
    const NOTIFY: &str = "<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Notify>\r\n\
        <CmdType>Broadcast</CmdType>\r\n<SN>995</SN>\r\n\
        <SourceID>34020000002000000001</SourceID>\r\n\
        <TargetID>34020000001370000001</TargetID>\r\n</Notify>\r\n";

    #[test]
    fn broadcast_notify_without_device_id_is_read() {
        let m = manscdp::parse(NOTIFY.as_bytes()).unwrap();
        assert_eq!(m.device_id, "34020000001370000001");
        let b = broadcast(&m).unwrap();
        assert_eq!(b.sn, 995);
        assert_eq!(b.source_id, "34020000002000000001");
        assert_eq!(b.target_id, "34020000001370000001");
        assert_eq!(subject(&b), "34020000002000000001:0,34020000001370000001:0");
    }

    /// Missing or malformed ids are refused, naming the element.
    #[test]
    fn bad_ids_are_named() {
        let no_source = NOTIFY.replace("<SourceID>34020000002000000001</SourceID>\r\n", "");
        let e = broadcast(&manscdp::parse(no_source.as_bytes()).unwrap()).unwrap_err();
        assert!(e.to_string().contains("SourceID"), "{e}");
        let short = NOTIFY.replace("34020000001370000001", "3402");
        let e = broadcast(&manscdp::parse(short.as_bytes()).unwrap()).unwrap_err();
        assert!(e.to_string().contains("TargetID"), "{e}");
        let query = NOTIFY.replace("Notify>", "Query>");
        let e = broadcast(&manscdp::parse(query.as_bytes()).unwrap()).unwrap_err();
        assert!(e.to_string().contains("Notify/Broadcast"), "{e}");
    }

    #[test]
    fn response_ok_and_error_with_reason() {
        let ok = broadcast_response(7, "34020000001370000001", Ok(()), Charset::Utf8);
        let m = manscdp::parse(&ok).unwrap();
        assert_eq!(
            (m.root, m.cmd_type.as_str(), m.sn),
            (Root::Response, "Broadcast", 7)
        );
        assert_eq!(m.field("Result"), Some("OK"));
        let err = broadcast_response(8, "x", Err("horn busy: <page> by 王"), Charset::Gb2312);
        let m = manscdp::parse(&err).unwrap();
        assert_eq!(m.field("Result"), Some("ERROR"));
        assert_eq!(m.field("Reason"), Some("horn busy: <page> by 王"));
    }

    /// The offer parses as audio with our codecs through the SIP SDP reader
    /// (the one horn calls use), recvonly, with a 10-digit y=.
    #[test]
    fn offer_is_recvonly_g711_with_ssrc() {
        let o = audio_offer(
            "34020000001370000001",
            "10.0.0.5".parse().unwrap(),
            30002,
            7,
        );
        assert!(
            o.contains("a=recvonly\r\n") && o.contains("y=0000000007\r\n"),
            "{o}"
        );
        let a = crate::sip::parse_sdp(o.as_bytes()).unwrap();
        assert_eq!(a.port, 30002);
        assert_eq!(a.payload_types, vec![8, 0]);
        assert_eq!(a.chosen_codec(&OFFERED).unwrap(), Codec::Pcma);
    }

    fn packet(pt: u8, payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0x80, pt, 0, 5, 0, 0, 0, 160, 1, 2, 3, 4];
        b.extend_from_slice(payload);
        b
    }

    #[test]
    fn rtp_g711_is_decoded() {
        let pcm: Vec<i16> = (0..160).map(|i| (i * 100) as i16).collect();
        let b = packet(8, &Codec::Pcma.encode(&pcm));
        let p = parse_rtp(&b).unwrap();
        assert_eq!(
            (p.payload_type, p.seq, p.timestamp, p.ssrc),
            (8, 5, 160, 0x01020304)
        );
        let out = decode_g711(&p).unwrap();
        assert_eq!(out.len(), 160);
        assert!(
            out.iter()
                .zip(&pcm)
                .all(|(a, b)| (a - b).abs() <= b.abs() / 16 + 16)
        );
        let u = packet(0, &Codec::Pcmu.encode(&pcm));
        assert_eq!(decode_g711(&parse_rtp(&u).unwrap()).unwrap().len(), 160);
    }

    /// CSRCs, an extension and padding are skipped; PS (96), RTCP, short
    /// and inconsistent packets are refused with what was wrong.
    #[test]
    fn rtp_edges() {
        let mut b = packet(8, &[]);
        b[0] = 0x80 | 0x20 | 0x10 | 1; // padding, extension, one CSRC
        b.extend_from_slice(&[9, 9, 9, 9]); // CSRC
        b.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // extension
        b.extend_from_slice(&[0xd5, 0xd5]);
        b.extend_from_slice(&[0, 0, 3]); // padding
        assert_eq!(parse_rtp(&b).unwrap().payload, &[0xd5, 0xd5]);
        let ps = packet(96, &[0; 10]);
        let e = decode_g711(&parse_rtp(&ps).unwrap()).unwrap_err();
        assert!(e.to_string().contains("96"), "{e}");
        assert!(parse_rtp(&[0x80, 200, 0, 1]).is_err());
        let mut rtcp = packet(72, &[]);
        rtcp[1] = 200;
        assert!(parse_rtp(&rtcp).unwrap_err().to_string().contains("RTCP"));
        let mut v1 = packet(8, &[1]);
        v1[0] = 0x40;
        assert!(parse_rtp(&v1).unwrap_err().to_string().contains("version"));
        let mut pad = packet(8, &[1]);
        pad[0] |= 0x20;
        *pad.last_mut().unwrap() = 200;
        assert!(parse_rtp(&pad).is_err());
        let mut cc = packet(8, &[]);
        cc[0] |= 0x0f;
        assert!(parse_rtp(&cc).is_err());
    }
}
