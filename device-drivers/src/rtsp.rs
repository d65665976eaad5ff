//! RTSP / SDP stream metadata and H.264 RTP packetising: the pure core.
//!
//! Bytes in, values out; no sockets, no clock reads (STYLE.md §1). The IO
//! around it lives in [`crate::rtsp_probe`] (on retina).
//!
//! - [`parse_response`]: one raw RTSP response (status line, headers, body),
//!   with size caps ([`MAX_HEADER_BYTES`], [`MAX_SDP_BYTES`]).
//! - [`parse_sdp`] / [`parse_describe`]: an SDP (or a whole DESCRIBE response)
//!   into [`StreamMetadata`]. The SDP reader is deliberately lenient: CRLF or
//!   LF, unknown lines ignored, bogus media sections (TP-Link's
//!   `m=application/TP-LINK`) listed in [`StreamMetadata::skipped`] rather than
//!   failing. H.264 `sprop-parameter-sets` are decoded with `h264-reader` for
//!   resolution (after cropping), profile, level and VUI frame rate; H.265
//!   `sprop-sps` with a small reader of our own. A bogus parameter set never
//!   panics: that track gets `None`s and a line in [`StreamMetadata::warnings`].
//! - [`packetize_h264`], [`h264_access_units`], [`RtpHeader`], [`interleaved`]:
//!   an RFC 6184 packetiser (single NAL unit + FU-A) for test servers and the
//!   simulator.
//! - [`redact_url`]: a URL with its credentials removed, safe to log.

use std::fmt::Write as _;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Cap on the status line plus headers of one RTSP response.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Cap on an SDP body.
pub const MAX_SDP_BYTES: usize = 64 * 1024;
/// Cap on the number of media sections kept from one SDP.
const MAX_MEDIA_SECTIONS: usize = 64;
/// Cap on the length of a skipped line or warning we keep.
const MAX_NOTE_CHARS: usize = 120;

/// Why an RTSP response or SDP could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A part of the message is over its cap.
    #[error("{what} is {len} bytes, over the {max}-byte cap")]
    TooLarge {
        /// `"headers"` or `"sdp"`.
        what: &'static str,
        /// Bytes seen (at least).
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The message ends before the part named.
    #[error("truncated: {0}")]
    Truncated(&'static str),
    /// The first line is not `RTSP/1.x NNN reason`.
    #[error("bad status line: {0:?}")]
    BadStatusLine(String),
    /// A header line without `:`.
    #[error("bad header line at byte {offset}")]
    BadHeader {
        /// Byte offset of the line in the response.
        offset: usize,
    },
    /// Text that is not UTF-8.
    #[error("{what} is not UTF-8 (byte {offset})")]
    NotUtf8 {
        /// `"headers"` or `"sdp"`.
        what: &'static str,
        /// Offset of the first bad byte.
        offset: usize,
    },
    /// The body does not look like an SDP (no `v=` line).
    #[error("not an SDP: {0}")]
    NotSdp(String),
}

/// One parsed RTSP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtspResponse {
    /// Status code, e.g. 200 or 401.
    pub status: u16,
    /// Reason phrase as sent.
    pub reason: String,
    /// Headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes; empty if absent).
    pub body: Vec<u8>,
}

impl RtspResponse {
    /// First header of that name (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Kind of a media section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackKind {
    /// `m=video`.
    Video,
    /// `m=audio`.
    Audio,
    /// `m=application` (ONVIF metadata, in practice).
    Application,
}

/// One media section of an SDP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Track {
    /// Media kind.
    pub kind: TrackKind,
    /// Codec: `H264`, `H265`, `MJPEG`, `PCMA`, `PCMU`, `AAC`, `ONVIF-METADATA`,
    /// otherwise the upper-cased RTP encoding name (`OPUS`, `G726-32`, ...).
    pub codec: String,
    /// RFC 6381 codec string, e.g. `avc1.4d401f`, `hvc1.1.6.L93.B0`, `mp4a.40.2`.
    pub rfc6381: Option<String>,
    /// Picture width in pixels (after cropping).
    pub width: Option<u32>,
    /// Picture height in pixels (after cropping).
    pub height: Option<u32>,
    /// Frames per second: SPS VUI timing, else `a=framerate` / `a=x-framerate`.
    pub fps: Option<f32>,
    /// Profile name, e.g. `Main`, `High`, `Constrained Baseline`.
    pub profile: Option<String>,
    /// Level, e.g. `3.1`.
    pub level: Option<String>,
    /// RTP clock rate in Hz.
    pub clock_rate: Option<u32>,
    /// Audio channels.
    pub channels: Option<u16>,
    /// `a=control` as sent, credentials removed.
    pub control: Option<String>,
    /// RTP payload type (first format of the `m=` line).
    pub payload_type: u8,
}

/// What a DESCRIBE told about a stream.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StreamMetadata {
    /// `Server` header, else the SDP's `a=tool`.
    pub server: Option<String>,
    /// Usable media sections, in SDP order.
    pub tracks: Vec<Track>,
    /// Media sections skipped as unknown or bogus (the `m=` line, shortened).
    pub skipped: Vec<String>,
    /// Problems that cost a field (bogus base64 or SPS), one line each.
    pub warnings: Vec<String>,
}

impl StreamMetadata {
    /// The first video track, if any.
    pub fn video(&self) -> Option<&Track> {
        self.tracks.iter().find(|t| t.kind == TrackKind::Video)
    }
}

/// Removes credentials from a URL (userinfo and `user=`/`password=`-style
/// query parameters) so it can be logged or returned.
pub fn redact_url(url: &str) -> String {
    crate::onvif::strip_credentials(url)
}

// ---------------------------------------------------------------------------
// RTSP response

fn find_subslice(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses one raw RTSP response: status line, headers, and a body of
/// `Content-Length` bytes (bodies over [`MAX_SDP_BYTES`] are refused).
pub fn parse_response(bytes: &[u8]) -> Result<RtspResponse, ParseError> {
    // End of headers: the first empty line, CRLF or LF.
    let (head_end, body_start) = match (
        find_subslice(bytes, b"\r\n\r\n"),
        find_subslice(bytes, b"\n\n"),
    ) {
        (Some(a), Some(b)) if b + 2 <= a + 4 && b < a => (b, b + 2),
        (Some(a), _) => (a, a + 4),
        (None, Some(b)) => (b, b + 2),
        (None, None) => {
            if bytes.len() > MAX_HEADER_BYTES {
                return Err(ParseError::TooLarge {
                    what: "headers",
                    len: bytes.len(),
                    max: MAX_HEADER_BYTES,
                });
            }
            return Err(ParseError::Truncated("headers"));
        }
    };
    if head_end > MAX_HEADER_BYTES {
        return Err(ParseError::TooLarge {
            what: "headers",
            len: head_end,
            max: MAX_HEADER_BYTES,
        });
    }
    let head = std::str::from_utf8(&bytes[..head_end]).map_err(|e| ParseError::NotUtf8 {
        what: "headers",
        offset: e.valid_up_to(),
    })?;
    let mut lines = head.split('\n');
    let first_line = lines.next().unwrap_or("");
    let status_line = first_line.trim_end_matches('\r');
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    if !version.starts_with("RTSP/") || code.len() != 3 {
        return Err(ParseError::BadStatusLine(shorten(status_line)));
    }
    let status: u16 = code
        .parse()
        .map_err(|_| ParseError::BadStatusLine(shorten(status_line)))?;
    let reason = parts.next().unwrap_or("").trim().to_string();
    let mut headers = Vec::new();
    let mut offset = first_line.len() + 1;
    for line in lines {
        let len = line.len() + 1;
        let l = line.trim_end_matches('\r');
        if !l.trim().is_empty() {
            let (name, value) = l.split_once(':').ok_or(ParseError::BadHeader { offset })?;
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        offset += len;
    }
    let mut resp = RtspResponse {
        status,
        reason,
        headers,
        body: Vec::new(),
    };
    let content_length = match resp.header("Content-Length") {
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ParseError::BadHeader { offset: 0 })?,
        None => 0,
    };
    if content_length > MAX_SDP_BYTES {
        return Err(ParseError::TooLarge {
            what: "sdp",
            len: content_length,
            max: MAX_SDP_BYTES,
        });
    }
    let rest = &bytes[body_start.min(bytes.len())..];
    if rest.len() < content_length {
        return Err(ParseError::Truncated("body"));
    }
    resp.body = rest[..content_length].to_vec();
    Ok(resp)
}

/// Parses a whole DESCRIBE response into metadata. A non-2xx status is
/// returned as [`ParseError::NotSdp`] naming the status.
pub fn parse_describe(bytes: &[u8]) -> Result<StreamMetadata, ParseError> {
    let resp = parse_response(bytes)?;
    if !(200..300).contains(&resp.status) {
        return Err(ParseError::NotSdp(format!("status {}", resp.status)));
    }
    let mut meta = parse_sdp(&resp.body)?;
    if let Some(server) = resp.header("Server").filter(|s| !s.is_empty()) {
        meta.server = Some(shorten(server));
    }
    Ok(meta)
}

// ---------------------------------------------------------------------------
// SDP

fn shorten(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() <= MAX_NOTE_CHARS {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(MAX_NOTE_CHARS).collect();
        out.push('…');
        out
    }
}

/// One media section while reading.
#[derive(Default)]
struct Section<'a> {
    m_line: &'a str,
    media: &'a str,
    formats: Vec<&'a str>,
    attrs: Vec<(&'a str, &'a str)>,
}

impl<'a> Section<'a> {
    fn attr(&self, name: &str) -> Option<&'a str> {
        self.attrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// `a=rtpmap:PT ...` or `a=fmtp:PT ...` for this payload type.
    fn attr_for_pt(&self, name: &str, pt: u8) -> Option<&'a str> {
        self.attrs
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .find_map(|(_, v)| {
                let (p, rest) = v.split_once(|c: char| c.is_ascii_whitespace())?;
                (p.trim().parse::<u8>().ok() == Some(pt)).then_some(rest.trim())
            })
    }
}

/// Parses an SDP into metadata (see the module docs for the leniency).
pub fn parse_sdp(sdp: &[u8]) -> Result<StreamMetadata, ParseError> {
    if sdp.len() > MAX_SDP_BYTES {
        return Err(ParseError::TooLarge {
            what: "sdp",
            len: sdp.len(),
            max: MAX_SDP_BYTES,
        });
    }
    let text = std::str::from_utf8(sdp).map_err(|e| ParseError::NotUtf8 {
        what: "sdp",
        offset: e.valid_up_to(),
    })?;
    let text = text.trim_start_matches('\u{feff}');
    let mut meta = StreamMetadata::default();
    let mut saw_version = false;
    let mut session_attrs: Vec<(&str, &str)> = Vec::new();
    let mut sections: Vec<Section<'_>> = Vec::new();
    for raw in text.split('\n') {
        let line = raw.trim_end_matches('\r').trim_end();
        let Some((ty, value)) = line.split_once('=') else {
            continue;
        };
        match ty.trim() {
            "v" => saw_version = true,
            "m" => {
                if sections.len() >= MAX_MEDIA_SECTIONS {
                    meta.skipped.push(shorten(line));
                    continue;
                }
                let mut fields = value.split_ascii_whitespace();
                let media = fields.next().unwrap_or("");
                let _port = fields.next();
                let _proto = fields.next();
                sections.push(Section {
                    m_line: line,
                    media,
                    formats: fields.collect(),
                    attrs: Vec::new(),
                });
            }
            "a" => {
                let (name, v) = match value.split_once(':') {
                    Some((n, v)) => (n.trim(), v.trim()),
                    None => (value.trim(), ""),
                };
                match sections.last_mut() {
                    Some(s) => s.attrs.push((name, v)),
                    None => session_attrs.push((name, v)),
                }
            }
            _ => {}
        }
    }
    if !saw_version {
        return Err(ParseError::NotSdp(shorten(
            text.lines().next().unwrap_or(""),
        )));
    }
    if let Some((_, tool)) = session_attrs
        .iter()
        .find(|(n, v)| n.eq_ignore_ascii_case("tool") && !v.is_empty())
    {
        meta.server = Some(shorten(tool));
    }
    for s in &sections {
        let kind = match s.media {
            "video" => TrackKind::Video,
            "audio" => TrackKind::Audio,
            "application" => TrackKind::Application,
            _ => {
                meta.skipped.push(shorten(s.m_line));
                continue;
            }
        };
        let Some(pt) = s.formats.first().and_then(|f| f.parse::<u8>().ok()) else {
            meta.skipped.push(shorten(s.m_line));
            continue;
        };
        if pt > 127 {
            meta.skipped.push(shorten(s.m_line));
            continue;
        }
        meta.tracks
            .push(track_from_section(s, kind, pt, &mut meta.warnings));
    }
    Ok(meta)
}

/// Static RTP payload types (RFC 3551): encoding, clock rate, channels.
fn static_pt(pt: u8) -> Option<(&'static str, u32, Option<u16>)> {
    Some(match pt {
        0 => ("PCMU", 8000, Some(1)),
        3 => ("GSM", 8000, Some(1)),
        4 => ("G723", 8000, Some(1)),
        8 => ("PCMA", 8000, Some(1)),
        9 => ("G722", 8000, Some(1)),
        14 => ("MPA", 90000, None),
        18 => ("G729", 8000, Some(1)),
        26 => ("JPEG", 90000, None),
        32 => ("MPV", 90000, None),
        _ => return None,
    })
}

fn codec_name(encoding: &str) -> String {
    let up = encoding.to_ascii_uppercase();
    match up.as_str() {
        "H264" | "H.264" | "AVC" => "H264".into(),
        "H265" | "H.265" | "HEVC" => "H265".into(),
        "JPEG" | "MJPEG" => "MJPEG".into(),
        "MPEG4-GENERIC" | "MP4A-LATM" | "AAC" => "AAC".into(),
        "VND.ONVIF.METADATA" => "ONVIF-METADATA".into(),
        _ => up,
    }
}

/// Leading decimal number of `s` (`"25"`, `"15.000000"`, `"0S"` → 0).
fn leading_f32(s: &str) -> Option<f32> {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    s[..end].parse::<f32>().ok()
}

fn sane_fps(f: f32) -> Option<f32> {
    (f.is_finite() && f > 0.0 && f <= 1000.0).then_some(f)
}

fn sane_dim(d: u32) -> Option<u32> {
    (d > 0 && d <= 16384).then_some(d)
}

/// `a=x-dimensions:1920,1080`, `a=framesize:97 240-160`, `a=cliprect:0,0,160,240`.
fn dims_from_attrs(s: &Section<'_>) -> Option<(u32, u32)> {
    let two = |a: &str, b: &str| -> Option<(u32, u32)> {
        Some((
            sane_dim(a.trim().parse().ok()?)?,
            sane_dim(b.trim().parse().ok()?)?,
        ))
    };
    if let Some(v) = s.attr("x-dimensions")
        && let Some((w, h)) = v.split_once(',')
        && let Some(d) = two(w, h)
    {
        return Some(d);
    }
    if let Some(v) = s.attr("framesize") {
        let v = v.split_once(' ').map(|(_, d)| d).unwrap_or(v);
        if let Some((w, h)) = v.split_once('-')
            && let Some(d) = two(w, h)
        {
            return Some(d);
        }
    }
    None
}

fn fmtp_params(fmtp: &str) -> Vec<(String, &str)> {
    fmtp.split(';')
        .filter_map(|kv| {
            let kv = kv.trim();
            let (k, v) = kv.split_once('=')?;
            Some((k.trim().to_ascii_lowercase(), v.trim()))
        })
        .collect()
}

fn fmtp_get<'a>(params: &[(String, &'a str)], key: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

fn track_from_section(
    s: &Section<'_>,
    kind: TrackKind,
    pt: u8,
    warnings: &mut Vec<String>,
) -> Track {
    let rtpmap = s.attr_for_pt("rtpmap", pt);
    let (encoding, clock_rate, channels) = match rtpmap {
        Some(map) => {
            let mut it = map.split('/');
            let enc = it.next().unwrap_or("").trim();
            let rate = it.next().and_then(|r| r.trim().parse::<u32>().ok());
            let ch = it.next().and_then(|c| c.trim().parse::<u16>().ok());
            (enc.to_string(), rate, ch)
        }
        None => match static_pt(pt) {
            Some((enc, rate, ch)) => (enc.to_string(), Some(rate), ch),
            None => (String::new(), None, None),
        },
    };
    let codec = if encoding.is_empty() {
        format!("PT{pt}")
    } else {
        codec_name(&encoding)
    };
    let mut t = Track {
        kind,
        codec,
        rfc6381: None,
        width: None,
        height: None,
        fps: None,
        profile: None,
        level: None,
        clock_rate,
        channels,
        control: s.attr("control").map(|c| shorten(&redact_url(c))),
        payload_type: pt,
    };
    let fmtp = s.attr_for_pt("fmtp", pt).unwrap_or("");
    let params = fmtp_params(fmtp);
    match t.codec.as_str() {
        "H264" => h264_track(&mut t, &params, warnings),
        "H265" => h265_track(&mut t, &params, warnings),
        "AAC" => aac_track(&mut t, &params),
        _ => {}
    }
    if kind == TrackKind::Video {
        if t.width.is_none()
            && let Some((w, h)) = dims_from_attrs(s)
        {
            t.width = Some(w);
            t.height = Some(h);
        }
        if t.fps.is_none() {
            t.fps = ["framerate", "x-framerate"]
                .iter()
                .filter_map(|n| {
                    s.attrs
                        .iter()
                        .filter(|(a, _)| a.eq_ignore_ascii_case(n))
                        .find_map(|(_, v)| leading_f32(v).and_then(sane_fps))
                })
                .next();
        }
    }
    t
}

fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(s))
        .ok()
}

/// Removes what some cameras append to a parameter set: Annex B start codes
/// and trailing zero bytes.
fn trim_nal(mut nal: &[u8]) -> &[u8] {
    if let Some(rest) = nal.strip_prefix(&[0, 0, 0, 1]) {
        nal = rest;
    } else if let Some(rest) = nal.strip_prefix(&[0, 0, 1]) {
        nal = rest;
    }
    if let Some(rest) = nal.strip_suffix(&[0, 0, 0, 1]) {
        nal = rest;
    } else if let Some(rest) = nal.strip_suffix(&[0, 0, 1]) {
        nal = rest;
    }
    while let Some(rest) = nal.strip_suffix(&[0]) {
        nal = rest;
    }
    nal
}

fn h264_profile_name(profile_idc: u8, constraint_flags: u8) -> String {
    match profile_idc {
        66 if constraint_flags & 0x40 != 0 => "Constrained Baseline".into(),
        66 => "Baseline".into(),
        77 => "Main".into(),
        88 => "Extended".into(),
        100 => "High".into(),
        110 => "High 10".into(),
        122 => "High 4:2:2".into(),
        244 => "High 4:4:4 Predictive".into(),
        other => format!("profile_idc {other}"),
    }
}

fn h264_level_name(level_idc: u8, profile_idc: u8, constraint_flags: u8) -> String {
    if level_idc == 11 && constraint_flags & 0x10 != 0 && matches!(profile_idc, 66 | 77 | 88) {
        return "1b".into();
    }
    format!("{}.{}", level_idc / 10, level_idc % 10)
}

/// What an H.264 SPS told.
#[derive(Debug, Clone, PartialEq)]
pub struct H264SpsInfo {
    /// RFC 6381 string, `avc1.PPCCLL`.
    pub rfc6381: String,
    /// Profile name.
    pub profile: String,
    /// Level, e.g. `3.1`.
    pub level: String,
    /// Width and height after cropping, if the SPS is consistent.
    pub dimensions: Option<(u32, u32)>,
    /// VUI frame rate (`time_scale / (2 * num_units_in_tick)`), if present.
    pub fps: Option<f32>,
}

/// A `BitRead` that tolerates trailing data after the SPS (as retina does).
struct Tolerant<R>(R);

impl<R: h264_reader::rbsp::BitRead> h264_reader::rbsp::BitRead for Tolerant<R> {
    fn read_ue(&mut self, name: &'static str) -> Result<u32, h264_reader::rbsp::BitReaderError> {
        self.0.read_ue(name)
    }
    fn read_se(&mut self, name: &'static str) -> Result<i32, h264_reader::rbsp::BitReaderError> {
        self.0.read_se(name)
    }
    fn read_bool(&mut self, name: &'static str) -> Result<bool, h264_reader::rbsp::BitReaderError> {
        self.0.read_bool(name)
    }
    fn read<U: h264_reader::rbsp::Numeric>(
        &mut self,
        bit_count: u32,
        name: &'static str,
    ) -> Result<U, h264_reader::rbsp::BitReaderError> {
        self.0.read(bit_count, name)
    }
    fn read_to<V: h264_reader::rbsp::Primitive>(
        &mut self,
        name: &'static str,
    ) -> Result<V, h264_reader::rbsp::BitReaderError> {
        self.0.read_to(name)
    }
    fn skip(
        &mut self,
        bit_count: u32,
        name: &'static str,
    ) -> Result<(), h264_reader::rbsp::BitReaderError> {
        self.0.skip(bit_count, name)
    }
    fn has_more_rbsp_data(
        &mut self,
        name: &'static str,
    ) -> Result<bool, h264_reader::rbsp::BitReaderError> {
        self.0.has_more_rbsp_data(name)
    }
    fn finish_rbsp(self) -> Result<(), h264_reader::rbsp::BitReaderError> {
        Ok(())
    }
    fn finish_sei_payload(self) -> Result<(), h264_reader::rbsp::BitReaderError> {
        Ok(())
    }
}

/// Decodes an H.264 SPS NAL unit (header byte included, as carried in
/// `sprop-parameter-sets`). Errors are short strings for warnings.
pub fn parse_h264_sps(nal: &[u8]) -> Result<H264SpsInfo, String> {
    use h264_reader::nal::sps::{ChromaFormat, FrameMbsFlags, SeqParameterSet};
    let nal = trim_nal(nal);
    if nal.first().map(|b| b & 0x1f) != Some(7) {
        return Err("not an SPS NAL unit".into());
    }
    let rbsp = h264_reader::rbsp::decode_nal(nal).map_err(|_| "bad SPS escaping".to_string())?;
    if rbsp.len() < 4 {
        return Err("SPS too short".into());
    }
    let (profile_idc, flags, level_idc) = (rbsp[0], rbsp[1], rbsp[2]);
    let mut info = H264SpsInfo {
        rfc6381: format!("avc1.{profile_idc:02x}{flags:02x}{level_idc:02x}"),
        profile: h264_profile_name(profile_idc, flags),
        level: h264_level_name(level_idc, profile_idc, flags),
        dimensions: None,
        fps: None,
    };
    let sps = SeqParameterSet::from_bits(Tolerant(h264_reader::rbsp::BitReader::new(&rbsp[..])))
        .map_err(|e| format!("bad SPS: {}", shorten(&format!("{e:?}"))))?;
    // Dimensions with checked arithmetic (a bogus SPS can carry huge values).
    let dims = (|| {
        let w = sps
            .pic_width_in_mbs_minus1
            .checked_add(1)?
            .checked_mul(16)?;
        let field_mul = match sps.frame_mbs_flags {
            FrameMbsFlags::Fields { .. } => 2u32,
            FrameMbsFlags::Frames => 1,
        };
        let h = sps
            .pic_height_in_map_units_minus1
            .checked_add(1)?
            .checked_mul(16 * field_mul)?;
        let (sub_w, sub_h) = match sps.chroma_info.chroma_format {
            ChromaFormat::YUV420 => (2u32, 2u32),
            ChromaFormat::YUV422 => (2, 1),
            _ => (1, 1),
        };
        let (w, h) = match &sps.frame_cropping {
            Some(c) => {
                let step_y = sub_h.checked_mul(field_mul)?;
                let x = c
                    .left_offset
                    .checked_add(c.right_offset)?
                    .checked_mul(sub_w)?;
                let y = c
                    .top_offset
                    .checked_add(c.bottom_offset)?
                    .checked_mul(step_y)?;
                (w.checked_sub(x)?, h.checked_sub(y)?)
            }
            None => (w, h),
        };
        Some((sane_dim(w)?, sane_dim(h)?))
    })();
    info.dimensions = dims;
    info.fps = sps
        .vui_parameters
        .as_ref()
        .and_then(|v| v.timing_info.as_ref())
        .and_then(|t| {
            if t.num_units_in_tick == 0 {
                return None;
            }
            sane_fps((f64::from(t.time_scale) / (2.0 * f64::from(t.num_units_in_tick))) as f32)
        });
    Ok(info)
}

fn h264_track(t: &mut Track, params: &[(String, &str)], warnings: &mut Vec<String>) {
    let mut sps_nal = None;
    if let Some(sets) = fmtp_get(params, "sprop-parameter-sets") {
        for set in sets.split(',').filter(|s| !s.trim().is_empty()) {
            match b64_decode(set) {
                Some(nal) if trim_nal(&nal).first().map(|b| b & 0x1f) == Some(7) => {
                    sps_nal = Some(nal);
                    break;
                }
                Some(_) => {}
                None => warnings.push(format!(
                    "track {}: sprop-parameter-sets is not base64",
                    t.payload_type
                )),
            }
        }
    }
    if let Some(nal) = sps_nal {
        match parse_h264_sps(&nal) {
            Ok(info) => {
                t.rfc6381 = Some(info.rfc6381);
                t.profile = Some(info.profile);
                t.level = Some(info.level);
                if let Some((w, h)) = info.dimensions {
                    t.width = Some(w);
                    t.height = Some(h);
                }
                t.fps = info.fps;
                return;
            }
            Err(e) => warnings.push(format!("track {}: H.264 {e}", t.payload_type)),
        }
    }
    // Fall back to profile-level-id when it is well formed.
    if let Some(pli) = fmtp_get(params, "profile-level-id")
        && pli.len() == 6
        && let Ok(v) = u32::from_str_radix(pli, 16)
    {
        let [_, p, c, l] = v.to_be_bytes();
        t.rfc6381 = Some(format!("avc1.{p:02x}{c:02x}{l:02x}"));
        t.profile = Some(h264_profile_name(p, c));
        t.level = Some(h264_level_name(l, p, c));
    }
}

/// What an H.265 SPS told.
#[derive(Debug, Clone, PartialEq)]
pub struct H265SpsInfo {
    /// RFC 6381 string, e.g. `hvc1.1.6.L150.B0`.
    pub rfc6381: String,
    /// Profile name (`Main`, `Main 10`, ...).
    pub profile: String,
    /// Level, e.g. `5.1`.
    pub level: String,
    /// Width and height after the conformance window.
    pub dimensions: Option<(u32, u32)>,
}

/// Minimal MSB-first bit reader over an RBSP.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let b = (byte >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Some(u32::from(b))
    }
    fn bits(&mut self, n: u32) -> Option<u64> {
        let mut v = 0u64;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.bit()?);
        }
        Some(v)
    }
    fn skip(&mut self, n: usize) -> Option<()> {
        self.pos = self.pos.checked_add(n)?;
        (self.pos <= self.data.len() * 8).then_some(())
    }
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0u32;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        u32::try_from((1u64 << zeros) - 1 + rest).ok()
    }
}

/// Removes emulation-prevention bytes (`00 00 03` → `00 00`).
fn unescape(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Decodes an H.265 SPS NAL unit (2-byte header included, as in `sprop-sps`).
pub fn parse_h265_sps(nal: &[u8]) -> Result<H265SpsInfo, String> {
    let nal = trim_nal(nal);
    if nal.len() < 3 || (nal[0] >> 1) & 0x3f != 33 {
        return Err("not an SPS NAL unit".into());
    }
    let rbsp = unescape(&nal[2..]);
    let mut r = Bits {
        data: &rbsp,
        pos: 0,
    };
    let short = || "SPS too short".to_string();
    r.skip(4).ok_or_else(short)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.bits(3).ok_or_else(short)? as usize;
    r.skip(1).ok_or_else(short)?; // temporal_id_nesting
    // profile_tier_level
    let profile_space = r.bits(2).ok_or_else(short)?;
    let tier = r.bits(1).ok_or_else(short)?;
    let profile_idc = r.bits(5).ok_or_else(short)? as u8;
    let compat = r.bits(32).ok_or_else(short)? as u32;
    let mut constraint = [0u8; 6];
    for c in &mut constraint {
        *c = r.bits(8).ok_or_else(short)? as u8;
    }
    let level_idc = r.bits(8).ok_or_else(short)? as u8;
    let mut sub_profile = [false; 8];
    let mut sub_level = [false; 8];
    for i in 0..max_sub_layers_minus1 {
        sub_profile[i] = r.bit().ok_or_else(short)? == 1;
        sub_level[i] = r.bit().ok_or_else(short)? == 1;
    }
    if max_sub_layers_minus1 > 0 {
        r.skip(2 * (8 - max_sub_layers_minus1)).ok_or_else(short)?;
    }
    for i in 0..max_sub_layers_minus1 {
        if sub_profile[i] {
            r.skip(88).ok_or_else(short)?;
        }
        if sub_level[i] {
            r.skip(8).ok_or_else(short)?;
        }
    }
    let profile = match profile_idc {
        1 => "Main".to_string(),
        2 => "Main 10".to_string(),
        3 => "Main Still Picture".to_string(),
        4 => "Range Extensions".to_string(),
        other => format!("profile_idc {other}"),
    };
    let level = format!("{}.{}", level_idc / 30, (level_idc % 30) / 3);
    let mut rfc = String::from("hvc1.");
    if let Some(c) = ["", "A", "B", "C"].get(profile_space as usize) {
        rfc.push_str(c);
    }
    let _ = write!(
        rfc,
        "{profile_idc}.{:x}.{}{level_idc}",
        compat.reverse_bits(),
        if tier == 1 { 'H' } else { 'L' }
    );
    let keep = constraint
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |i| i + 1);
    if keep == 0 {
        rfc.push_str(".B0");
    } else {
        for b in &constraint[..keep] {
            let _ = write!(rfc, ".{b:X}");
        }
    }
    let mut info = H265SpsInfo {
        rfc6381: rfc,
        profile,
        level,
        dimensions: None,
    };
    info.dimensions = (|| {
        r.ue()?; // sps_seq_parameter_set_id
        let chroma = r.ue()?;
        if chroma == 3 {
            r.skip(1)?;
        }
        let w = r.ue()?;
        let h = r.ue()?;
        let (sub_w, sub_h) = match chroma {
            1 => (2u32, 2u32),
            2 => (2, 1),
            _ => (1, 1),
        };
        let (w, h) = if r.bit()? == 1 {
            let (l, rt, t, b) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
            (
                w.checked_sub(l.checked_add(rt)?.checked_mul(sub_w)?)?,
                h.checked_sub(t.checked_add(b)?.checked_mul(sub_h)?)?,
            )
        } else {
            (w, h)
        };
        Some((sane_dim(w)?, sane_dim(h)?))
    })();
    Ok(info)
}

fn h265_track(t: &mut Track, params: &[(String, &str)], warnings: &mut Vec<String>) {
    let Some(sps) = fmtp_get(params, "sprop-sps") else {
        return;
    };
    let parsed = b64_decode(sps)
        .ok_or_else(|| "sprop-sps is not base64".to_string())
        .and_then(|nal| parse_h265_sps(&nal));
    match parsed {
        Ok(info) => {
            t.rfc6381 = Some(info.rfc6381);
            t.profile = Some(info.profile);
            t.level = Some(info.level);
            if let Some((w, h)) = info.dimensions {
                t.width = Some(w);
                t.height = Some(h);
            }
        }
        Err(e) => warnings.push(format!("track {}: H.265 {e}", t.payload_type)),
    }
}

fn aac_track(t: &mut Track, params: &[(String, &str)]) {
    // AudioSpecificConfig: 5 bits object type, 4 bits frequency index, 4 bits channels.
    let Some(cfg) = fmtp_get(params, "config") else {
        return;
    };
    if cfg.len() < 4 || cfg.len() % 2 != 0 {
        return;
    }
    let Ok(hi) = u16::from_str_radix(&cfg[..4], 16) else {
        return;
    };
    let aot = hi >> 11;
    let freq_index = (hi >> 7) & 0xf;
    let ch = (hi >> 3) & 0xf;
    if aot == 0 || aot == 31 {
        return;
    }
    t.rfc6381 = Some(format!("mp4a.40.{aot}"));
    const RATES: [u32; 13] = [
        96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
    ];
    if t.clock_rate.is_none() {
        t.clock_rate = RATES.get(usize::from(freq_index)).copied();
    }
    if t.channels.is_none() && (1..=7).contains(&ch) {
        t.channels = Some(if ch == 7 { 8 } else { ch });
    }
}

// ---------------------------------------------------------------------------
// RTP packetising (RFC 3550 header, RFC 6184 H.264 payloads)

/// Fields of a 12-byte RTP header (no CSRCs, no extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// Payload type (0..=127).
    pub payload_type: u8,
    /// Marker bit: last packet of an access unit for video.
    pub marker: bool,
    /// Sequence number.
    pub sequence: u16,
    /// RTP timestamp (90 kHz for video).
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
}

impl RtpHeader {
    /// Serialises the header followed by `payload` into one RTP packet.
    pub fn packet(&self, payload: &[u8]) -> Vec<u8> {
        let mut p = Vec::with_capacity(12 + payload.len());
        p.push(0x80);
        p.push((u8::from(self.marker) << 7) | (self.payload_type & 0x7f));
        p.extend_from_slice(&self.sequence.to_be_bytes());
        p.extend_from_slice(&self.timestamp.to_be_bytes());
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }
}

/// Frames an RTP/RTCP packet for RTSP-interleaved TCP (`$`, channel, length).
/// Packets over 65,535 bytes are truncated to fit the 16-bit length.
pub fn interleaved(channel: u8, packet: &[u8]) -> Vec<u8> {
    let len = packet.len().min(usize::from(u16::MAX));
    let mut out = Vec::with_capacity(4 + len);
    out.push(b'$');
    out.push(channel);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&packet[..len]);
    out
}

/// Splits an Annex B byte stream into NAL units (start codes removed).
pub fn split_annexb(stream: &[u8]) -> Vec<&[u8]> {
    let mut nals = Vec::new();
    let mut i = 0;
    let mut start: Option<usize> = None;
    while i + 3 <= stream.len() {
        if stream[i] == 0 && stream[i + 1] == 0 && stream[i + 2] == 1 {
            if let Some(s) = start {
                let mut end = i;
                while end > s && stream[end - 1] == 0 {
                    end -= 1;
                }
                if end > s {
                    nals.push(&stream[s..end]);
                }
            }
            i += 3;
            start = Some(i);
        } else {
            i += 1;
        }
    }
    match start {
        Some(s) if s < stream.len() => nals.push(&stream[s..]),
        None if !stream.is_empty() => nals.push(stream),
        _ => {}
    }
    nals
}

/// Splits an Annex B H.264 stream into access units (each still Annex B,
/// borrowed from `stream`). A new access unit starts at an AUD, SPS, PPS or
/// SEI after a slice, or at a slice whose `first_mb_in_slice` is 0.
pub fn h264_access_units(stream: &[u8]) -> Vec<&[u8]> {
    // Find start-code positions with NAL offsets.
    let mut starts = Vec::new(); // (start_code_pos, nal_pos)
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i] == 0 && stream[i + 1] == 0 && stream[i + 2] == 1 {
            let sc = if i > 0 && stream[i - 1] == 0 {
                i - 1
            } else {
                i
            };
            starts.push((sc, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut aus = Vec::new();
    let mut au_start: Option<usize> = None;
    let mut seen_slice = false;
    for &(sc, nal) in &starts {
        let Some(&hdr) = stream.get(nal) else {
            continue;
        };
        let ty = hdr & 0x1f;
        let is_slice = matches!(ty, 1 | 5);
        let first_mb_zero = stream.get(nal + 1).is_some_and(|b| b & 0x80 != 0);
        let boundary = seen_slice && (matches!(ty, 6..=9) || (is_slice && first_mb_zero));
        if boundary {
            if let Some(s) = au_start {
                aus.push(&stream[s..sc]);
            }
            au_start = Some(sc);
            seen_slice = false;
        }
        if au_start.is_none() {
            au_start = Some(sc);
        }
        if is_slice {
            seen_slice = true;
        }
    }
    if let Some(s) = au_start {
        aus.push(&stream[s..]);
    }
    aus
}

/// True if the Annex B access unit holds an IDR slice (NAL type 5).
pub fn h264_is_keyframe(access_unit: &[u8]) -> bool {
    split_annexb(access_unit)
        .iter()
        .any(|n| n.first().is_some_and(|b| b & 0x1f == 5))
}

/// Packetises one H.264 access unit (Annex B, or one bare NAL unit) into RTP
/// payloads of at most `mtu` bytes (RFC 6184): a NAL unit that fits goes whole
/// (single NAL unit mode), a larger one as FU-A fragments. The caller adds
/// [`RtpHeader`]s, setting `marker` on the last payload. `mtu` below 3 is
/// raised to 3.
pub fn packetize_h264(access_unit: &[u8], mtu: usize) -> Vec<Vec<u8>> {
    let mtu = mtu.max(3);
    let mut out = Vec::new();
    for nal in split_annexb(access_unit) {
        let Some((&hdr, body)) = nal.split_first() else {
            continue;
        };
        if nal.len() <= mtu {
            out.push(nal.to_vec());
            continue;
        }
        let indicator = (hdr & 0xe0) | 28;
        let ty = hdr & 0x1f;
        let chunk = mtu - 2;
        let n = body.len().div_ceil(chunk);
        for (i, piece) in body.chunks(chunk).enumerate() {
            let mut fu_header = ty;
            if i == 0 {
                fu_header |= 0x80;
            }
            if i + 1 == n {
                fu_header |= 0x40;
            }
            let mut p = Vec::with_capacity(2 + piece.len());
            p.push(indicator);
            p.push(fu_header);
            p.extend_from_slice(piece);
            out.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fu_a_round_trip() {
        let mut nal = vec![0x65];
        nal.extend((0..3000u32).map(|i| (i % 251) as u8 + 1));
        let mut au = vec![0, 0, 0, 1, 0x67, 1, 2, 3, 0, 0, 1];
        au.extend_from_slice(&nal);
        let pkts = packetize_h264(&au, 1200);
        assert_eq!(pkts[0], vec![0x67, 1, 2, 3]);
        assert!(pkts.iter().all(|p| p.len() <= 1200));
        assert_eq!(pkts.len(), 1 + 3000usize.div_ceil(1198));
        // Reassemble the FU-A.
        let mut re = vec![(pkts[1][0] & 0xe0) | (pkts[1][1] & 0x1f)];
        for (i, p) in pkts[1..].iter().enumerate() {
            assert_eq!(p[0] & 0x1f, 28);
            assert_eq!(p[1] & 0x80 != 0, i == 0);
            assert_eq!(p[1] & 0x40 != 0, i == pkts.len() - 2);
            re.extend_from_slice(&p[2..]);
        }
        assert_eq!(re, nal);
    }

    #[test]
    fn rtp_header_bytes() {
        let h = RtpHeader {
            payload_type: 96,
            marker: true,
            sequence: 0x1234,
            timestamp: 0x0102_0304,
            ssrc: 0xdead_beef,
        };
        assert_eq!(
            h.packet(&[9]),
            vec![
                0x80, 0xe0, 0x12, 0x34, 1, 2, 3, 4, 0xde, 0xad, 0xbe, 0xef, 9
            ]
        );
        assert_eq!(interleaved(2, &[7, 8]), vec![b'$', 2, 0, 2, 7, 8]);
    }

    #[test]
    fn access_units_split_on_first_slice() {
        // SPS, PPS, IDR(first_mb=0), P(first_mb=0), P second slice (first_mb!=0)
        let s = [
            0, 0, 0, 1, 0x67, 0xaa, 0, 0, 0, 1, 0x68, 0xbb, 0, 0, 1, 0x65, 0x88, 1, 0, 0, 1, 0x41,
            0x9a, 2, 0, 0, 1, 0x41, 0x40, 3,
        ];
        let aus = h264_access_units(&s);
        assert_eq!(aus.len(), 2);
        assert!(h264_is_keyframe(aus[0]));
        assert!(!h264_is_keyframe(aus[1]));
        assert_eq!(split_annexb(aus[1]).len(), 2);
    }

    #[test]
    fn h265_level_and_rfc6381() {
        let nal = b64_decode("QgEBAWAAAAMAsAAAAwAAAwBaoAWCAeFja5JFL83BQYFBAAADAAEAAAMADKE=")
            .expect("base64");
        let info = parse_h265_sps(&nal).expect("sps");
        assert_eq!(info.profile, "Main");
        assert_eq!(info.level, "3.0");
        assert_eq!(info.rfc6381, "hvc1.1.6.L90.B0");
    }
}
