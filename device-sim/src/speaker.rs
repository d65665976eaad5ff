//! A simulated loudspeaker's pure core: RTP header parsing, G.711 (µ-law,
//! A-law) decoding, a Goertzel tone detector and per-stream statistics.
//! `server` does the UDP IO around [`RtpStats`].

use serde::Serialize;
use time::OffsetDateTime;

/// Tone frequencies the detector reports on, in Hz.
pub const CANDIDATE_TONES_HZ: [u32; 4] = [400, 800, 1000, 2000];

/// G.711 sample rate.
pub const SAMPLE_RATE: f64 = 8000.0;

/// A parsed RTP packet (RFC 3550 §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// Payload type.
    pub payload_type: u8,
    /// Marker bit.
    pub marker: bool,
    /// Sequence number.
    pub seq: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Payload (after CSRCs, extension; padding removed).
    pub payload: &'a [u8],
}

/// Why a datagram is not a usable RTP packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Shorter than its header says.
    #[error("RTP packet truncated ({0} bytes)")]
    Truncated(usize),
    /// Version other than 2.
    #[error("RTP version {0}, expected 2")]
    Version(u8),
    /// Padding length larger than the payload.
    #[error("RTP padding of {0} bytes exceeds the payload")]
    Padding(u8),
}

/// Parses an RTP packet.
pub fn parse_rtp(b: &[u8]) -> Result<RtpPacket<'_>, RtpError> {
    if b.len() < 12 {
        return Err(RtpError::Truncated(b.len()));
    }
    let version = b[0] >> 6;
    if version != 2 {
        return Err(RtpError::Version(version));
    }
    let padding = b[0] & 0x20 != 0;
    let extension = b[0] & 0x10 != 0;
    let cc = usize::from(b[0] & 0x0f);
    let mut off = 12 + 4 * cc;
    if extension {
        let ext = b
            .get(off + 2..off + 4)
            .ok_or(RtpError::Truncated(b.len()))?;
        off += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    if off > b.len() {
        return Err(RtpError::Truncated(b.len()));
    }
    let mut end = b.len();
    if padding {
        let pad = b[b.len() - 1];
        if usize::from(pad) > end - off || pad == 0 {
            return Err(RtpError::Padding(pad));
        }
        end -= usize::from(pad);
    }
    Ok(RtpPacket {
        payload_type: b[1] & 0x7f,
        marker: b[1] & 0x80 != 0,
        seq: u16::from_be_bytes([b[2], b[3]]),
        timestamp: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        payload: &b[off..end],
    })
}

// G.711 decoding is the drivers' (one implementation for sender and horn).
pub use device_drivers::g711::{alaw_to_linear, ulaw_to_linear};

/// Goertzel power of `freq` in `samples`, normalised so that a pure
/// full-period sine at `freq` gives about 1.0 relative to the block's energy
/// (returns the unnormalised power and the block energy).
pub fn goertzel(samples: &[f64], freq: f64, rate: f64) -> (f64, f64) {
    let w = 2.0 * std::f64::consts::PI * freq / rate;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut energy = 0.0;
    for &x in samples {
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
        energy += x * x;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    (power, energy)
}

/// What a speaker heard: the report `Sim::speaker_report` returns.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SpeakerReport {
    /// Device id, e.g. `spk-0001`.
    pub id: String,
    /// Valid RTP packets received.
    pub packets: u64,
    /// Payload bytes received.
    pub payload_bytes: u64,
    /// Datagrams that were not RTP or had an unsupported payload type.
    pub invalid: u64,
    /// Payload type of the last packet (0 PCMU, 8 PCMA).
    pub payload_type: Option<u8>,
    /// `pcmu` or `pcma`.
    pub codec: Option<String>,
    /// SSRC of the last packet.
    pub ssrc: Option<u32>,
    /// Arrival of the first packet (RFC 3339, UTC).
    pub first_packet_at: Option<String>,
    /// Arrival of the last packet (RFC 3339, UTC).
    pub last_packet_at: Option<String>,
    /// Highest sequence number seen (with wrap-around).
    pub last_seq: Option<u16>,
    /// Packets missing from the sequence (gaps).
    pub lost: u64,
    /// Packets that arrived late or twice.
    pub reordered: u64,
    /// Seconds of audio decoded.
    pub audio_seconds: f64,
    /// The candidate tone holding most of the audio energy, if any does.
    pub dominant_tone_hz: Option<u32>,
    /// Share of the energy per candidate tone (0..1), in [`CANDIDATE_TONES_HZ`] order.
    pub tone_share: Vec<(u32, f64)>,
    /// Driver kind: `rtp`, `rtp-multicast`, `sip`, `axis`, `cloud`.
    #[serde(default)]
    pub kind: String,
    /// Longest silence between two arrivals after the first, in ms (a
    /// stall or a gap of lost packets shows here).
    pub max_gap_ms: f64,
    /// Packets dropped on purpose by the `packet-loss` fault.
    pub dropped_by_fault: u64,
    /// SIP: calls answered with 200 OK.
    pub calls_answered: u64,
    /// SIP: calls refused (486/603/401 without valid credentials).
    pub calls_refused: u64,
    /// SIP: BYE received from the gateway.
    pub byes_received: u64,
    /// SIP: BYE sent by the horn (the `hang-up` fault).
    pub byes_sent: u64,
    /// SIP: codec the horn answered with (`pcmu`, `pcma`, `g729` for `wrong-codec`).
    pub answered_codec: Option<String>,
    /// HTTP: audio transmissions accepted (authenticated POSTs).
    pub http_streams: u64,
    /// HTTP / SIP: requests refused for bad or missing credentials.
    pub auth_failures: u64,
    /// Protocol events in order (`INVITE`, `200`, `BYE`, ...), last 32.
    pub events: Vec<String>,
}

/// Running statistics of one speaker's RTP input.
#[derive(Debug, Default)]
pub struct RtpStats {
    report: SpeakerReport,
    first: Option<OffsetDateTime>,
    last: Option<OffsetDateTime>,
    pending: Vec<u8>,
    tone_power: [f64; CANDIDATE_TONES_HZ.len()],
    energy: f64,
    samples: u64,
    scratch: Vec<f64>,
}

impl RtpStats {
    /// Statistics for speaker `id`.
    pub fn new(id: &str) -> RtpStats {
        RtpStats {
            report: SpeakerReport {
                id: id.to_string(),
                ..SpeakerReport::default()
            },
            ..RtpStats::default()
        }
    }

    /// Statistics for speaker `id` of driver kind `kind`.
    pub fn with_kind(id: &str, kind: &str) -> RtpStats {
        let mut s = RtpStats::new(id);
        s.report.kind = kind.to_string();
        s
    }

    /// The report for the IO layer to update its protocol counters.
    pub fn report_mut(&mut self) -> &mut SpeakerReport {
        &mut self.report
    }

    /// Records a protocol event (kept: the last 32).
    pub fn event(&mut self, e: impl Into<String>) {
        let ev = &mut self.report.events;
        if ev.len() >= 32 {
            ev.remove(0);
        }
        ev.push(e.into());
    }

    fn arrival(&mut self, at: OffsetDateTime) {
        let stamp = at
            .format(&time::format_description::well_known::Rfc3339)
            .ok();
        if self.first.is_none() {
            self.first = Some(at);
            self.report.first_packet_at = stamp.clone();
        }
        if let Some(last) = self.last {
            let gap = (at - last).as_seconds_f64() * 1e3;
            if gap > self.report.max_gap_ms {
                self.report.max_gap_ms = gap;
            }
        }
        self.last = Some(at);
        self.report.last_packet_at = stamp;
    }

    /// Accounts a chunk of a µ-law byte stream (HTTP speakers) that arrived
    /// at `at`: decoded in 20 ms blocks, each counted as a packet.
    pub fn on_ulaw_stream(&mut self, bytes: &[u8], at: OffsetDateTime) {
        if bytes.is_empty() {
            return;
        }
        self.arrival(at);
        self.report.payload_bytes += bytes.len() as u64;
        self.report.codec = Some("pcmu".into());
        self.pending.extend_from_slice(bytes);
        let whole = self.pending.len() / 160 * 160;
        let blocks: Vec<u8> = self.pending.drain(..whole).collect();
        for b in blocks.chunks(160) {
            self.report.packets += 1;
            self.decode(0, b);
        }
    }

    /// Accounts linear PCM played by a horn (cloud horns fetch a WAV) at
    /// `at`: analysed in 20 ms blocks, each counted as a packet.
    pub fn on_pcm(&mut self, pcm: &[i16], at: OffsetDateTime) {
        if pcm.is_empty() {
            return;
        }
        self.arrival(at);
        self.report.payload_bytes += 2 * pcm.len() as u64;
        self.report.codec = Some("pcm16".into());
        for b in pcm.chunks(160) {
            self.report.packets += 1;
            self.scratch.clear();
            self.scratch.extend(b.iter().map(|&x| f64::from(x)));
            self.analyse();
        }
    }

    /// Accounts one datagram that arrived at `at`.
    pub fn on_datagram(&mut self, bytes: &[u8], at: OffsetDateTime) {
        let p = match parse_rtp(bytes) {
            Ok(p) if p.payload_type == 0 || p.payload_type == 8 => p,
            _ => {
                self.report.invalid += 1;
                return;
            }
        };
        let r = &mut self.report;
        r.packets += 1;
        r.payload_bytes += p.payload.len() as u64;
        r.payload_type = Some(p.payload_type);
        r.codec = Some(if p.payload_type == 0 { "pcmu" } else { "pcma" }.to_string());
        r.ssrc = Some(p.ssrc);
        match r.last_seq {
            None => r.last_seq = Some(p.seq),
            Some(last) => {
                let ahead = p.seq.wrapping_sub(last);
                if ahead == 0 || ahead >= 0x8000 {
                    r.reordered += 1;
                } else {
                    r.lost += u64::from(ahead - 1);
                    r.last_seq = Some(p.seq);
                }
            }
        }
        self.arrival(at);
        self.decode(p.payload_type, p.payload);
    }

    fn decode(&mut self, payload_type: u8, payload: &[u8]) {
        self.scratch.clear();
        let decode = if payload_type == 0 {
            ulaw_to_linear
        } else {
            alaw_to_linear
        };
        self.scratch
            .extend(payload.iter().map(|&b| f64::from(decode(b))));
        self.analyse();
    }

    /// Feeds `scratch` (one block) to the tone detector.
    fn analyse(&mut self) {
        for (i, f) in CANDIDATE_TONES_HZ.iter().enumerate() {
            let (power, _) = goertzel(&self.scratch, f64::from(*f), SAMPLE_RATE);
            // A sine of amplitude A over N samples: power ≈ (A·N/2)², energy ≈ N·A²/2,
            // so 2·power/N is that tone's share of the energy (times the energy).
            self.tone_power[i] += 2.0 * power / self.scratch.len().max(1) as f64;
        }
        self.energy += self.scratch.iter().map(|x| x * x).sum::<f64>();
        self.samples += self.scratch.len() as u64;
    }

    /// The report so far.
    pub fn report(&self) -> SpeakerReport {
        let mut r = self.report.clone();
        r.audio_seconds = self.samples as f64 / SAMPLE_RATE;
        r.tone_share = CANDIDATE_TONES_HZ
            .iter()
            .zip(self.tone_power)
            .map(|(f, p)| {
                let share = if self.energy > 0.0 {
                    (p / self.energy).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                (*f, share)
            })
            .collect();
        r.dominant_tone_hz = r
            .tone_share
            .iter()
            .filter(|(_, s)| *s >= 0.5)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(f, _)| *f);
        r
    }
}

#[cfg(test)]
pub(crate) use device_drivers::g711::{linear_to_alaw, linear_to_ulaw};

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    /// Known table values of G.711 decoding.
    #[test]
    fn g711_known_values() {
        assert_eq!(ulaw_to_linear(0xff), 0);
        assert_eq!(ulaw_to_linear(0x7f), 0);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xaa), 32256);
        assert_eq!(alaw_to_linear(0x2a), -32256);
    }

    /// Encode → decode stays within G.711's quantisation error everywhere.
    #[test]
    fn g711_round_trip_error_is_small() {
        for x in (-32000i32..32000).step_by(97) {
            let x = x as i16;
            let u = ulaw_to_linear(linear_to_ulaw(x));
            let a = alaw_to_linear(linear_to_alaw(x));
            let tol = (i32::from(x).abs() / 16).max(16);
            assert!(
                (i32::from(u) - i32::from(x)).abs() <= tol,
                "ulaw {x} -> {u}"
            );
            assert!(
                (i32::from(a) - i32::from(x)).abs() <= tol,
                "alaw {x} -> {a}"
            );
        }
    }

    fn tone(freq: f64, n: usize, amp: f64) -> Vec<i16> {
        (0..n)
            .map(|i| {
                (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / SAMPLE_RATE).sin()) as i16
            })
            .collect()
    }

    fn rtp(pt: u8, seq: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, pt, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    /// Goertzel picks the right candidate for clean tones and none for silence.
    #[test]
    fn goertzel_finds_tone() {
        for f in [400.0, 1000.0] {
            let s: Vec<f64> = tone(f, 1600, 8000.0)
                .iter()
                .map(|&x| f64::from(x))
                .collect();
            let (p_on, e) = goertzel(&s, f, SAMPLE_RATE);
            let (p_off, _) = goertzel(&s, 2000.0, SAMPLE_RATE);
            let share = 2.0 * p_on / s.len() as f64 / e;
            assert!(share > 0.9, "{f}: {share}");
            assert!(p_off < p_on / 1000.0);
        }
    }

    /// A µ-law 1 kHz stream and an A-law 400 Hz stream, with a gap and a
    /// duplicate: tone, codec, loss and reordering are all reported.
    #[test]
    fn stats_over_rtp_streams() {
        let at = datetime!(2026-11-23 08:00:00 UTC);
        let mut st = RtpStats::new("spk-0001");
        let samples = tone(1000.0, 160 * 10, 10000.0);
        for (i, chunk) in samples.chunks(160).enumerate() {
            if i == 4 {
                continue; // lost
            }
            let payload: Vec<u8> = chunk.iter().map(|&x| linear_to_ulaw(x)).collect();
            st.on_datagram(&rtp(0, 65533u16.wrapping_add(i as u16), &payload), at);
        }
        st.on_datagram(&rtp(0, 65533, &[0xff; 160]), at); // late duplicate
        st.on_datagram(b"not rtp", at);
        let r = st.report();
        assert_eq!(r.packets, 10);
        assert_eq!(r.lost, 1);
        assert_eq!(r.reordered, 1);
        assert_eq!(r.invalid, 1);
        assert_eq!(r.codec.as_deref(), Some("pcmu"));
        assert_eq!(r.dominant_tone_hz, Some(1000), "{:?}", r.tone_share);
        assert_eq!(r.first_packet_at.as_deref(), Some("2026-11-23T08:00:00Z"));

        let mut st = RtpStats::new("spk-0002");
        for (i, chunk) in tone(400.0, 160 * 5, 12000.0).chunks(160).enumerate() {
            let payload: Vec<u8> = chunk.iter().map(|&x| linear_to_alaw(x)).collect();
            st.on_datagram(&rtp(8, i as u16, &payload), at);
        }
        let r = st.report();
        assert_eq!(r.codec.as_deref(), Some("pcma"));
        assert_eq!(r.dominant_tone_hz, Some(400), "{:?}", r.tone_share);
        assert_eq!(r.lost, 0);

        let mut st = RtpStats::new("spk-0003");
        st.on_datagram(&rtp(0, 1, &[0xff; 160]), at);
        assert_eq!(st.report().dominant_tone_hz, None);
    }

    /// Header fields, CSRCs, extension and padding are handled; junk is refused.
    #[test]
    fn rtp_parsing() {
        let mut p = vec![0xb1, 0x88, 0x00, 0x07, 0, 0, 0, 1, 0, 0, 0, 2];
        p.extend_from_slice(&[9, 9, 9, 9]); // one CSRC
        p.extend_from_slice(&[0xbe, 0xde, 0x00, 0x01, 1, 2, 3, 4]); // extension, 1 word
        p.extend_from_slice(&[0xaa, 0xbb, 0, 2]); // payload + 2 bytes padding
        let r = parse_rtp(&p).unwrap();
        assert_eq!(r.payload_type, 8);
        assert!(r.marker);
        assert_eq!(r.seq, 7);
        assert_eq!(r.ssrc, 2);
        assert_eq!(r.payload, &[0xaa, 0xbb]);
        assert_eq!(parse_rtp(&[0x80; 5]), Err(RtpError::Truncated(5)));
        assert_eq!(parse_rtp(&[0x40; 12]), Err(RtpError::Version(1)));
        let mut bad_pad = vec![0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        bad_pad.push(9);
        assert_eq!(parse_rtp(&bad_pad), Err(RtpError::Padding(9)));
    }
}
