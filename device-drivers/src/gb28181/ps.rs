//! MPEG-2 Program Stream muxer for GB/T 28181 live video (pure).
//!
//! One video stream (`stream_id` 0xE0), H.264 (`stream_type` 0x1B) or H.265
//! (0x24), no transcoding. Each access unit becomes:
//!
//! - a pack header (`00 00 01 BA`): SCR from the frame's 90 kHz DTS, the
//!   configured mux rate;
//! - on keyframes only, a system header (`00 00 01 BB`) and a program stream
//!   map (`00 00 01 BC`, CRC-32/MPEG-2), as Hikvision and Dahua cameras do;
//! - the access unit in Annex B in one PES (`00 00 01 E0`) with PTS and DTS,
//!   continued in further PES packets without timestamps when it is over
//!   what one PES holds (`PES_packet_length` ≤ 65,535).
//!
//! Access units arrive as retina hands them over (AVC/HEVC length-prefixed
//! NAL units) and are converted with [`to_annexb`]: access unit delimiters
//! are dropped (GB cameras do not send them), and a keyframe without in-band
//! parameter sets gets the stream's VPS/SPS/PPS in front, so a platform that
//! joins at any keyframe can decode.

/// Video codec of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// H.264 / AVC: `stream_type` 0x1B.
    H264,
    /// H.265 / HEVC: `stream_type` 0x24.
    H265,
}

impl VideoCodec {
    /// The PSM `stream_type`.
    pub fn stream_type(self) -> u8 {
        match self {
            VideoCodec::H264 => 0x1B,
            VideoCodec::H265 => 0x24,
        }
    }

    /// The NAL unit type of a NAL unit's first byte.
    fn nal_type(self, first: u8) -> u8 {
        match self {
            VideoCodec::H264 => first & 0x1F,
            VideoCodec::H265 => (first >> 1) & 0x3F,
        }
    }

    fn is_aud(self, t: u8) -> bool {
        match self {
            VideoCodec::H264 => t == 9,
            VideoCodec::H265 => t == 35,
        }
    }

    fn is_parameter_set(self, t: u8) -> bool {
        match self {
            VideoCodec::H264 => t == 7 || t == 8,
            VideoCodec::H265 => (32..=34).contains(&t),
        }
    }
}

/// The video stream's id in every PES and in the PSM.
pub const VIDEO_STREAM_ID: u8 = 0xE0;
/// Most bytes of an access unit accepted (a 4K I-frame is well under it).
pub const MAX_ACCESS_UNIT: usize = 8 * 1024 * 1024;
/// Most payload bytes in one PES packet with PTS and DTS (65,535 − 3 − 10).
pub const MAX_PES_PAYLOAD: usize = 65_535 - 3 - 10;
const START: [u8; 4] = [0, 0, 0, 1];

/// Why an access unit could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PsError {
    /// A NAL length runs past the end of the access unit.
    #[error("access unit truncated at byte {offset}: NAL length {len} with {left} bytes left")]
    Truncated {
        /// Offset of the length prefix.
        offset: usize,
        /// The length it gave.
        len: usize,
        /// Bytes left after the prefix.
        left: usize,
    },
    /// Over [`MAX_ACCESS_UNIT`].
    #[error("access unit of {0} bytes is over the {MAX_ACCESS_UNIT}-byte limit")]
    TooLarge(usize),
    /// A decoder configuration record (avcC / hvcC) we cannot read.
    #[error("bad decoder configuration record: {0}")]
    BadConfig(&'static str),
}

/// The parameter sets of a stream (VPS for H.265, SPS, PPS), without start codes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParameterSets {
    /// NAL units in decoding order (VPS, SPS, PPS).
    pub nals: Vec<Vec<u8>>,
}

impl ParameterSets {
    /// From an `AVCDecoderConfigurationRecord` (ISO 14496-15 §5.3.3).
    pub fn from_avcc(rec: &[u8]) -> Result<ParameterSets, PsError> {
        let mut r = Reader { b: rec, at: 0 };
        r.skip(5)?;
        let mut nals = Vec::new();
        let sps = r.u8()? & 0x1F;
        for _ in 0..sps {
            nals.push(r.sized()?.to_vec());
        }
        let pps = r.u8()?;
        for _ in 0..pps {
            nals.push(r.sized()?.to_vec());
        }
        Ok(ParameterSets { nals })
    }

    /// From an `HEVCDecoderConfigurationRecord` (ISO 14496-15 §8.3.3).
    pub fn from_hvcc(rec: &[u8]) -> Result<ParameterSets, PsError> {
        let mut r = Reader { b: rec, at: 0 };
        r.skip(22)?;
        let arrays = r.u8()?;
        let mut nals = Vec::new();
        for _ in 0..arrays {
            r.skip(1)?;
            let n = r.u16()?;
            for _ in 0..n {
                nals.push(r.sized()?.to_vec());
            }
        }
        Ok(ParameterSets { nals })
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PsError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or(PsError::BadConfig("record truncated"))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn skip(&mut self, n: usize) -> Result<(), PsError> {
        self.take(n).map(|_| ())
    }
    fn u8(&mut self) -> Result<u8, PsError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, PsError> {
        let s = self.take(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    fn sized(&mut self) -> Result<&'a [u8], PsError> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }
}

/// Converts a length-prefixed access unit (4-byte big-endian lengths, as
/// retina delivers) to Annex B: AUDs dropped, and for a keyframe whose own
/// NAL units carry no parameter set, `params` put in front.
pub fn to_annexb(
    codec: VideoCodec,
    au: &[u8],
    keyframe: bool,
    params: &ParameterSets,
) -> Result<Vec<u8>, PsError> {
    if au.len() > MAX_ACCESS_UNIT {
        return Err(PsError::TooLarge(au.len()));
    }
    let mut nals = Vec::new();
    let mut at = 0;
    while at < au.len() {
        let left = au.len() - at;
        if left < 4 {
            return Err(PsError::Truncated {
                offset: at,
                len: 0,
                left,
            });
        }
        let len = u32::from_be_bytes([au[at], au[at + 1], au[at + 2], au[at + 3]]) as usize;
        if len > left - 4 {
            return Err(PsError::Truncated {
                offset: at,
                len,
                left: left - 4,
            });
        }
        if len > 0 {
            nals.push(&au[at + 4..at + 4 + len]);
        }
        at += 4 + len;
    }
    let has_params = nals
        .iter()
        .any(|n| codec.is_parameter_set(codec.nal_type(n[0])));
    let mut out = Vec::with_capacity(au.len() + 64);
    if keyframe && !has_params {
        for p in params.nals.iter().filter(|p| !p.is_empty()) {
            out.extend_from_slice(&START);
            out.extend_from_slice(p);
        }
    }
    for n in nals {
        if codec.is_aud(codec.nal_type(n[0])) {
            continue;
        }
        out.extend_from_slice(&START);
        out.extend_from_slice(n);
    }
    Ok(out)
}

/// The muxer of one stream: remembers nothing but its settings, so each
/// frame's bytes depend only on the frame.
#[derive(Debug, Clone)]
pub struct PsMuxer {
    codec: VideoCodec,
    /// In units of 50 bytes/s (22 bits).
    mux_rate: u32,
}

impl PsMuxer {
    /// Default mux rate: 8 Mbit/s, in units of 50 bytes/s.
    pub const DEFAULT_MUX_RATE: u32 = 8_000_000 / 8 / 50;

    /// A muxer for `codec` with the default mux rate.
    pub fn new(codec: VideoCodec) -> PsMuxer {
        PsMuxer {
            codec,
            mux_rate: Self::DEFAULT_MUX_RATE,
        }
    }

    /// Sets the mux rate (bytes per second, rounded up to 50-byte units,
    /// capped at 22 bits).
    pub fn with_rate(mut self, bytes_per_sec: u32) -> PsMuxer {
        self.mux_rate = bytes_per_sec.div_ceil(50).clamp(1, 0x3F_FFFF);
        self
    }

    /// The codec.
    pub fn codec(&self) -> VideoCodec {
        self.codec
    }

    /// Appends one access unit (Annex B) as PS to `out`: pack header,
    /// system header and PSM on keyframes, then PES packets. `pts` and
    /// `dts` are 90 kHz (only the low 33 bits are written).
    pub fn mux(&self, annexb: &[u8], pts: u64, dts: u64, keyframe: bool, out: &mut Vec<u8>) {
        self.pack_header(dts, out);
        if keyframe {
            self.system_header(out);
            self.psm(out);
        }
        let mut chunks = annexb.chunks(MAX_PES_PAYLOAD);
        let first = chunks.next().unwrap_or(&[]);
        // PES header after the length: flags (2), header_data_length (1), PTS, DTS.
        let len = 3 + 10 + first.len();
        out.extend_from_slice(&[0, 0, 1, VIDEO_STREAM_ID]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        // '10', not scrambled, priority 0, data_alignment 1, no copyright, original.
        out.extend_from_slice(&[0x85, 0xC0, 10]);
        timestamp(0x3, pts, out);
        timestamp(0x1, dts, out);
        out.extend_from_slice(first);
        for chunk in chunks {
            out.extend_from_slice(&[0, 0, 1, VIDEO_STREAM_ID]);
            out.extend_from_slice(&((3 + chunk.len()) as u16).to_be_bytes());
            out.extend_from_slice(&[0x81, 0x00, 0]);
            out.extend_from_slice(chunk);
        }
    }

    fn pack_header(&self, scr: u64, out: &mut Vec<u8>) {
        let scr = scr & 0x1_FFFF_FFFF;
        let ext: u64 = 0;
        let rate = self.mux_rate;
        out.extend_from_slice(&[
            0,
            0,
            1,
            0xBA,
            0x44 | (((scr >> 30) & 0x07) << 3) as u8 | ((scr >> 28) & 0x03) as u8,
            ((scr >> 20) & 0xFF) as u8,
            0x04 | (((scr >> 15) & 0x1F) << 3) as u8 | ((scr >> 13) & 0x03) as u8,
            ((scr >> 5) & 0xFF) as u8,
            0x04 | ((scr & 0x1F) << 3) as u8 | ((ext >> 7) & 0x03) as u8,
            0x01 | ((ext & 0x7F) << 1) as u8,
            (rate >> 14) as u8,
            (rate >> 6) as u8,
            0x03 | ((rate & 0x3F) << 2) as u8,
            // reserved '11111', no stuffing
            0xF8,
        ]);
    }

    fn system_header(&self, out: &mut Vec<u8>) {
        let rate = self.mux_rate;
        out.extend_from_slice(&[
            0,
            0,
            1,
            0xBB,
            0,
            9,
            0x80 | (rate >> 15) as u8,
            (rate >> 7) as u8,
            0x01 | ((rate & 0x7F) << 1) as u8,
            // audio_bound 0, fixed 0, CSPS 0
            0x00,
            // audio lock, video lock, marker, video_bound 1
            0xE1,
            // packet rate restriction 0, reserved
            0x7F,
            VIDEO_STREAM_ID,
            // '11', buffer scale 1 (1024 bytes), size bound 0x800 (2 MiB)
            0xE0 | 0x20 | 0x08,
            0x00,
        ]);
    }

    fn psm(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[
            0,
            0,
            1,
            0xBC,
            0,
            14,
            // current_next 1, reserved, version 0
            0xE0,
            // reserved, marker
            0xFF,
            0,
            0,
            0,
            4,
            self.codec.stream_type(),
            VIDEO_STREAM_ID,
            0,
            0,
        ]);
        let crc = crc32_mpeg2(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
}

/// A PTS or DTS field: 4-bit prefix, 33 bits with markers.
fn timestamp(prefix: u8, ts: u64, out: &mut Vec<u8>) {
    let ts = ts & 0x1_FFFF_FFFF;
    out.extend_from_slice(&[
        (prefix << 4) | (((ts >> 30) & 0x07) << 1) as u8 | 1,
        ((ts >> 22) & 0xFF) as u8,
        (((ts >> 15) & 0x7F) << 1) as u8 | 1,
        ((ts >> 7) & 0xFF) as u8,
        ((ts & 0x7F) << 1) as u8 | 1,
    ]);
}

/// CRC-32/MPEG-2 (polynomial 0x04C11DB7, initial all ones, no reflection).
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a parse of our PS gives back.
    #[derive(Default, Debug)]
    struct Parsed {
        scrs: Vec<u64>,
        mux_rates: Vec<u32>,
        system_headers: usize,
        stream_types: Vec<u8>,
        pts: Vec<u64>,
        dts: Vec<u64>,
        pes_lengths: Vec<usize>,
        payload: Vec<u8>,
    }

    fn ts(b: &[u8]) -> u64 {
        (u64::from(b[0] >> 1) & 7) << 30
            | u64::from(b[1]) << 22
            | u64::from(b[2] >> 1) << 15
            | u64::from(b[3]) << 7
            | u64::from(b[4] >> 1)
    }

    /// A strict PS reader: every packet must start where the last ended.
    fn parse(ps: &[u8]) -> Parsed {
        let mut p = Parsed::default();
        let mut at = 0;
        while at < ps.len() {
            assert_eq!(&ps[at..at + 3], &[0, 0, 1], "start code at {at}");
            let id = ps[at + 3];
            if id == 0xBA {
                let b = &ps[at + 4..at + 14];
                assert_eq!(b[0] & 0xC4, 0x44, "'01' and marker");
                let scr = (u64::from(b[0] >> 3) & 7) << 30
                    | (u64::from(b[0]) & 3) << 28
                    | u64::from(b[1]) << 20
                    | (u64::from(b[2] >> 3)) << 15
                    | (u64::from(b[2]) & 3) << 13
                    | u64::from(b[3]) << 5
                    | u64::from(b[4] >> 3);
                p.scrs.push(scr);
                p.mux_rates
                    .push(u32::from(b[6]) << 14 | u32::from(b[7]) << 6 | u32::from(b[8] >> 2));
                at += 14 + usize::from(b[9] & 7);
                continue;
            }
            let len = usize::from(u16::from_be_bytes([ps[at + 4], ps[at + 5]]));
            let body = &ps[at + 6..at + 6 + len];
            match id {
                0xBB => p.system_headers += 1,
                0xBC => {
                    let whole = &ps[at..at + 6 + len];
                    assert_eq!(
                        crc32_mpeg2(whole),
                        0,
                        "PSM CRC over the map and its CRC is 0"
                    );
                    let es_len = usize::from(u16::from_be_bytes([body[4], body[5]]));
                    assert_eq!(es_len, 4);
                    p.stream_types.push(body[6]);
                    assert_eq!(body[7], VIDEO_STREAM_ID);
                }
                0xE0 => {
                    p.pes_lengths.push(len);
                    let hdl = usize::from(body[2]);
                    if body[1] & 0x80 != 0 {
                        p.pts.push(ts(&body[3..8]));
                    }
                    if body[1] & 0x40 != 0 {
                        p.dts.push(ts(&body[8..13]));
                    }
                    p.payload.extend_from_slice(&body[3 + hdl..]);
                }
                other => panic!("unexpected stream id {other:#x}"),
            }
            at += 6 + len;
        }
        p
    }

    fn avc(nals: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for n in nals {
            v.extend_from_slice(&(n.len() as u32).to_be_bytes());
            v.extend_from_slice(n);
        }
        v
    }

    /// A keyframe carries pack + system header + PSM (0x1B) + one PES whose
    /// PTS/DTS and SCR are the frame's 90 kHz time, above 2^32 too.
    #[test]
    fn keyframe_round_trips() {
        let m = PsMuxer::new(VideoCodec::H264);
        let au = [0, 0, 0, 1, 0x65, 1, 2, 3];
        let t = (1u64 << 32) + 12_345;
        let mut out = Vec::new();
        m.mux(&au, t + 3600, t, true, &mut out);
        let p = parse(&out);
        assert_eq!(p.scrs, vec![t]);
        assert_eq!(p.mux_rates, vec![PsMuxer::DEFAULT_MUX_RATE]);
        assert_eq!(p.system_headers, 1);
        assert_eq!(p.stream_types, vec![0x1B]);
        assert_eq!(p.pts, vec![t + 3600]);
        assert_eq!(p.dts, vec![t]);
        assert_eq!(p.payload, au);
    }

    /// A P-frame has a pack header and PES only; H.265 maps to 0x24.
    #[test]
    fn non_keyframe_has_no_psm_and_h265_is_0x24() {
        let m = PsMuxer::new(VideoCodec::H265).with_rate(1_000_000);
        let mut out = Vec::new();
        m.mux(&[0, 0, 0, 1, 0x02, 0x01, 9], 90, 90, false, &mut out);
        let p = parse(&out);
        assert_eq!(p.system_headers, 0);
        assert!(p.stream_types.is_empty());
        assert_eq!(p.mux_rates, vec![20_000]);
        let mut out = Vec::new();
        m.mux(&[0, 0, 0, 1, 0x26, 0x01, 9], 90, 90, true, &mut out);
        assert_eq!(parse(&out).stream_types, vec![0x24]);
    }

    /// An I-frame over 65,535 bytes is split: the first PES carries the
    /// timestamps, the rest none, no PES_packet_length overflows, and the
    /// bytes come back whole and in order.
    #[test]
    fn large_frame_splits_at_pes_limit() {
        let m = PsMuxer::new(VideoCodec::H264);
        let mut au = vec![0, 0, 0, 1, 0x65];
        au.extend((0..200_000u32).map(|i| (i % 251) as u8));
        let mut out = Vec::new();
        m.mux(&au, 0, 0, true, &mut out);
        let p = parse(&out);
        assert_eq!(p.payload, au);
        assert_eq!(p.pes_lengths.len(), 4);
        assert_eq!(p.pes_lengths[0], 65_535);
        assert!(p.pes_lengths.iter().all(|l| *l <= 65_535));
        assert_eq!(p.pts.len(), 1, "only the first PES has a PTS");
    }

    /// A keyframe without in-band SPS/PPS gets the stream's in front; AUDs
    /// are dropped; a P-frame is left as it came.
    #[test]
    fn annexb_inserts_parameters_and_drops_aud() {
        let params = ParameterSets {
            nals: vec![vec![0x67, 1], vec![0x68, 2]],
        };
        let au = avc(&[&[0x09, 0xF0], &[0x65, 7, 7]]);
        let out = to_annexb(VideoCodec::H264, &au, true, &params).expect("au");
        assert_eq!(
            out,
            [
                0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2, 0, 0, 0, 1, 0x65, 7, 7
            ]
        );
        let au = avc(&[&[0x67, 9], &[0x68, 9], &[0x65, 7]]);
        let out = to_annexb(VideoCodec::H264, &au, true, &params).expect("au");
        assert_eq!(
            out.iter().filter(|b| **b == 0x67).count(),
            1,
            "in-band SPS kept, not doubled"
        );
        let out = to_annexb(VideoCodec::H264, &avc(&[&[0x41, 5]]), false, &params).expect("au");
        assert_eq!(out, [0, 0, 0, 1, 0x41, 5]);
        // H.265: AUD type 35, VPS/SPS/PPS types 32-34.
        let au = avc(&[&[35 << 1, 1, 0x50], &[19 << 1, 1, 4]]);
        let hp = ParameterSets {
            nals: vec![vec![32 << 1, 1], vec![33 << 1, 1], vec![34 << 1, 1]],
        };
        let out = to_annexb(VideoCodec::H265, &au, true, &hp).expect("au");
        assert_eq!(out.len(), 3 * 6 + 7);
    }

    /// Garbage length prefixes are errors naming the offset, never a panic.
    #[test]
    fn truncated_access_unit_is_an_error() {
        let p = ParameterSets::default();
        let e = to_annexb(VideoCodec::H264, &[0, 0, 0, 9, 0x65], false, &p).unwrap_err();
        assert_eq!(
            e,
            PsError::Truncated {
                offset: 0,
                len: 9,
                left: 1
            }
        );
        assert!(to_annexb(VideoCodec::H264, &[0, 0], false, &p).is_err());
        assert_eq!(
            to_annexb(VideoCodec::H264, &[0, 0, 0, 0], false, &p).expect("empty nal skipped"),
            Vec::<u8>::new()
        );
    }

    /// avcC and hvcC records give their parameter sets in order; short
    /// records are errors.
    #[test]
    fn decoder_configuration_records() {
        let avcc = [1, 0x4D, 0, 0x1F, 0xFF, 0xE1, 0, 2, 0x67, 1, 1, 0, 1, 0x68];
        let p = ParameterSets::from_avcc(&avcc).expect("avcC");
        assert_eq!(p.nals, vec![vec![0x67, 1], vec![0x68]]);
        assert!(ParameterSets::from_avcc(&avcc[..9]).is_err());
        let mut hvcc = vec![1u8; 22];
        hvcc.extend_from_slice(&[2, 0x20, 0, 1, 0, 2, 0x40, 1, 0x21, 0, 1, 0, 1, 0x42]);
        let p = ParameterSets::from_hvcc(&hvcc).expect("hvcC");
        assert_eq!(p.nals, vec![vec![0x40, 1], vec![0x42]]);
        assert!(ParameterSets::from_hvcc(&hvcc[..30]).is_err());
    }

    /// The CRC-32/MPEG-2 check value.
    #[test]
    fn crc_check_value() {
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
    }
}
