//! RTP packetising of G.711 audio (RFC 3550, RFC 3551): 20 ms frames of 160
//! samples, RTCP sender reports with a CNAME, and the pacing arithmetic of a
//! sender clocked from one absolute start instant. Pure: no sockets, no
//! clock reads (times are passed in).

use std::time::Duration;

use crate::g711::Codec;

/// Samples per 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;

/// Duration of one frame.
pub const FRAME: Duration = Duration::from_millis(20);

/// Seconds from 1900-01-01 (NTP era 0) to 1970-01-01.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// Splits PCM into 20 ms G.711 payloads; the last frame is padded with
/// silence. An empty input gives no frames.
pub fn frames(pcm: &[i16], codec: Codec) -> Vec<Vec<u8>> {
    pcm.chunks(FRAME_SAMPLES)
        .map(|c| {
            let mut f = codec.encode(c);
            f.resize(FRAME_SAMPLES, codec.silence());
            f
        })
        .collect()
}

/// Numbers RTP packets of one stream: sequence number, timestamp, SSRC,
/// marker on the first packet (start of a talkspurt).
#[derive(Debug, Clone)]
pub struct Packetizer {
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    payload_type: u8,
    first: bool,
    packets: u32,
    octets: u32,
}

impl Packetizer {
    /// A stream with these (normally random) initial values.
    pub fn new(codec: Codec, ssrc: u32, initial_seq: u16, initial_ts: u32) -> Packetizer {
        Packetizer {
            ssrc,
            seq: initial_seq,
            timestamp: initial_ts,
            payload_type: codec.payload_type(),
            first: true,
            packets: 0,
            octets: 0,
        }
    }

    /// The next packet carrying `payload` (whose sample count advances the
    /// timestamp: one byte per sample for G.711).
    pub fn packet(&mut self, payload: &[u8]) -> Vec<u8> {
        let mut p = Vec::with_capacity(12 + payload.len());
        p.push(0x80);
        p.push(self.payload_type | if self.first { 0x80 } else { 0 });
        p.extend_from_slice(&self.seq.to_be_bytes());
        p.extend_from_slice(&self.timestamp.to_be_bytes());
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        self.first = false;
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(payload.len() as u32);
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(payload.len() as u32);
        p
    }

    /// SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Timestamp the next packet will carry.
    pub fn next_timestamp(&self) -> u32 {
        self.timestamp
    }

    /// Packets numbered so far.
    pub fn packet_count(&self) -> u32 {
        self.packets
    }

    /// Payload octets so far.
    pub fn octet_count(&self) -> u32 {
        self.octets
    }

    /// An RTCP compound packet (SR + SDES CNAME) for this stream at wall
    /// time `unix` (since 1970), whose RTP timestamp is `rtp_ts`.
    pub fn sender_report(&self, unix: Duration, rtp_ts: u32, cname: &str) -> Vec<u8> {
        build_sender_report(
            self.ssrc,
            ntp_timestamp(unix),
            rtp_ts,
            self.packets,
            self.octets,
            cname,
        )
    }
}

/// A 64-bit NTP timestamp for a wall time given as time since the Unix epoch.
pub fn ntp_timestamp(unix: Duration) -> u64 {
    let secs = unix.as_secs().wrapping_add(NTP_UNIX_OFFSET) & 0xffff_ffff;
    let frac = (u64::from(unix.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// An RTCP compound packet: a sender report without report blocks (RFC
/// 3550 §6.4.1) followed by an SDES chunk with the CNAME (§6.5), as every
/// compound packet must carry one.
pub fn build_sender_report(
    ssrc: u32,
    ntp: u64,
    rtp_ts: u32,
    packets: u32,
    octets: u32,
    cname: &str,
) -> Vec<u8> {
    let mut p = Vec::with_capacity(28 + 12 + cname.len());
    p.extend_from_slice(&[0x80, 200, 0, 6]);
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&ntp.to_be_bytes());
    p.extend_from_slice(&rtp_ts.to_be_bytes());
    p.extend_from_slice(&packets.to_be_bytes());
    p.extend_from_slice(&octets.to_be_bytes());
    // SDES: header, SSRC, CNAME item, END, padding to 32 bits.
    let name = &cname.as_bytes()[..cname.len().min(255)];
    let mut chunk = Vec::new();
    chunk.extend_from_slice(&ssrc.to_be_bytes());
    chunk.push(1);
    chunk.push(name.len() as u8);
    chunk.extend_from_slice(name);
    chunk.push(0);
    while chunk.len() % 4 != 0 {
        chunk.push(0);
    }
    let words = (chunk.len() / 4) as u16;
    p.extend_from_slice(&[0x81, 202]);
    p.extend_from_slice(&words.to_be_bytes());
    p.extend_from_slice(&chunk);
    p
}

/// When frame `index` is due, counted from the stream's start instant.
pub fn frame_due(index: u64) -> Duration {
    FRAME.saturating_mul(u32::try_from(index).unwrap_or(u32::MAX))
}

/// How many frames should have been sent `elapsed` after the start
/// (frame 0 is due at the start itself).
pub fn frames_due_by(elapsed: Duration) -> u64 {
    (elapsed.as_micros() / FRAME.as_micros()) as u64 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Header fields, numbering with wrap-around, marker only on the first packet.
    #[test]
    fn packetizer_numbers_packets() {
        let mut p = Packetizer::new(Codec::Pcma, 0x0102_0304, 65535, u32::MAX - 100);
        let a = p.packet(&[1; 160]);
        let b = p.packet(&[2; 160]);
        assert_eq!(&a[..2], &[0x80, 0x88]);
        assert_eq!(&a[2..4], &[0xff, 0xff]);
        assert_eq!(&a[8..12], &[1, 2, 3, 4]);
        assert_eq!(a.len(), 172);
        assert_eq!(b[1], 8, "marker only on the first packet");
        assert_eq!(&b[2..4], &[0, 0]);
        assert_eq!(u32::from_be_bytes([b[4], b[5], b[6], b[7]]), 59);
        assert_eq!(p.packet_count(), 2);
        assert_eq!(p.octet_count(), 320);
    }

    /// 20 ms frames, the last padded with the codec's silence.
    #[test]
    fn frames_pad_with_silence() {
        let f = frames(&[0i16; 400], Codec::Pcmu);
        assert_eq!(f.len(), 3);
        assert!(f.iter().all(|x| x.len() == 160));
        assert!(f[2].iter().all(|&b| b == 0xff));
        assert!(frames(&[], Codec::Pcma).is_empty());
    }

    /// NTP conversion of a known instant and the SR + SDES layout.
    #[test]
    fn sender_report_layout() {
        let ntp = ntp_timestamp(Duration::new(1_700_000_000, 500_000_000));
        assert_eq!(ntp >> 32, 1_700_000_000 + NTP_UNIX_OFFSET);
        assert_eq!(ntp & 0xffff_ffff, 0x8000_0000);
        let sr = build_sender_report(7, ntp, 1234, 10, 1600, "tgw@gw");
        assert_eq!(&sr[..4], &[0x80, 200, 0, 6]);
        assert_eq!(u32::from_be_bytes([sr[20], sr[21], sr[22], sr[23]]), 10);
        assert_eq!(u32::from_be_bytes([sr[24], sr[25], sr[26], sr[27]]), 1600);
        assert_eq!(sr[28..30], [0x81, 202]);
        let words = usize::from(u16::from_be_bytes([sr[30], sr[31]]));
        assert_eq!(sr.len(), 32 + 4 * words);
        assert_eq!(&sr[38..44], b"tgw@gw");
        assert_eq!(sr.len() % 4, 0);
    }

    /// Frame k is due at k·20 ms; the count of due frames steps at each boundary.
    #[test]
    fn pacing_math() {
        assert_eq!(frame_due(0), Duration::ZERO);
        assert_eq!(frame_due(50), Duration::from_secs(1));
        assert_eq!(frames_due_by(Duration::ZERO), 1);
        assert_eq!(frames_due_by(Duration::from_millis(19)), 1);
        assert_eq!(frames_due_by(Duration::from_millis(20)), 2);
        assert_eq!(frames_due_by(Duration::from_secs(1)), 51);
    }
}
