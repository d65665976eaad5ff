//! PS over RTP for GB/T 28181 (pure): payload type 96, 90 kHz clock, one
//! timestamp per frame, the marker bit on a frame's last packet, the SSRC the
//! platform gave in `y=`, payloads of at most [`MAX_PAYLOAD`] bytes; and
//! RFC 4571 framing (a 2-byte big-endian length before each packet) for
//! RTP over TCP.

/// Most PS bytes in one RTP packet (fits a 1500-byte MTU with IP/UDP/RTP).
pub const MAX_PAYLOAD: usize = 1400;
/// The payload type GB/T 28181 uses for PS.
pub const PAYLOAD_TYPE: u8 = 96;

/// Numbers packets of one stream.
#[derive(Debug, Clone)]
pub struct RtpPacketizer {
    ssrc: u32,
    seq: u16,
    payload_type: u8,
}

impl RtpPacketizer {
    /// A packetizer with this SSRC, starting at sequence number `first_seq`.
    pub fn new(ssrc: u32, first_seq: u16) -> RtpPacketizer {
        RtpPacketizer {
            ssrc,
            seq: first_seq,
            payload_type: PAYLOAD_TYPE,
        }
    }

    /// Uses the payload type the offer mapped to PS (96 unless it said otherwise).
    pub fn with_payload_type(mut self, pt: u8) -> RtpPacketizer {
        self.payload_type = pt & 0x7F;
        self
    }

    /// The SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Splits one frame's PS into RTP packets, each handed to `emit`; all
    /// carry `timestamp`, the last has the marker bit. An empty frame emits
    /// nothing.
    pub fn packetize(&mut self, ps: &[u8], timestamp: u32, mut emit: impl FnMut(&[u8])) {
        let mut buf = Vec::with_capacity(12 + MAX_PAYLOAD);
        let n = ps.len().div_ceil(MAX_PAYLOAD);
        for (i, chunk) in ps.chunks(MAX_PAYLOAD).enumerate() {
            buf.clear();
            let marker = if i + 1 == n { 0x80 } else { 0 };
            buf.extend_from_slice(&[0x80, marker | self.payload_type]);
            buf.extend_from_slice(&self.seq.to_be_bytes());
            buf.extend_from_slice(&timestamp.to_be_bytes());
            buf.extend_from_slice(&self.ssrc.to_be_bytes());
            buf.extend_from_slice(chunk);
            self.seq = self.seq.wrapping_add(1);
            emit(&buf);
        }
    }
}

/// One RTP packet framed for TCP (RFC 4571): its length, then the packet.
pub fn frame_rfc4571(packet: &[u8], out: &mut Vec<u8>) {
    // Packets are at most 12 + MAX_PAYLOAD bytes, far under 65,535.
    out.extend_from_slice(&(packet.len().min(65_535) as u16).to_be_bytes());
    out.extend_from_slice(packet);
}

/// The header fields of an RTP packet, for tests and receivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// Payload type.
    pub payload_type: u8,
    /// Marker bit.
    pub marker: bool,
    /// Sequence number.
    pub seq: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// SSRC.
    pub ssrc: u32,
    /// Header length (12 + CSRCs + extension): where the payload starts.
    pub header_len: usize,
}

/// Reads an RTP header; `None` if it is not RTP version 2 or is truncated.
pub fn parse_header(p: &[u8]) -> Option<RtpHeader> {
    if p.len() < 12 || p[0] >> 6 != 2 {
        return None;
    }
    let mut len = 12 + 4 * usize::from(p[0] & 0x0F);
    if p[0] & 0x10 != 0 {
        let ext = p.get(len + 2..len + 4)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    if len > p.len() {
        return None;
    }
    Some(RtpHeader {
        payload_type: p[1] & 0x7F,
        marker: p[1] & 0x80 != 0,
        seq: u16::from_be_bytes([p[2], p[3]]),
        timestamp: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        ssrc: u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
        header_len: len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3,000-byte frame: three packets, one timestamp, marker on the last
    /// only, payloads ≤ 1,400, sequence numbers wrap.
    #[test]
    fn frame_splits_with_marker_on_last() {
        let mut p = RtpPacketizer::new(100_000_001, u16::MAX);
        let ps: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let mut pkts = Vec::new();
        p.packetize(&ps, 90_000, |b| pkts.push(b.to_vec()));
        assert_eq!(pkts.len(), 3);
        let hs: Vec<RtpHeader> = pkts.iter().map(|b| parse_header(b).expect("rtp")).collect();
        assert_eq!(
            hs.iter().map(|h| h.seq).collect::<Vec<_>>(),
            vec![u16::MAX, 0, 1]
        );
        assert!(
            hs.iter()
                .all(|h| h.timestamp == 90_000 && h.ssrc == 100_000_001)
        );
        assert!(hs.iter().all(|h| h.payload_type == 96));
        assert_eq!(
            hs.iter().map(|h| h.marker).collect::<Vec<_>>(),
            vec![false, false, true]
        );
        assert!(pkts.iter().all(|b| b.len() - 12 <= MAX_PAYLOAD));
        let back: Vec<u8> = pkts.iter().flat_map(|b| b[12..].to_vec()).collect();
        assert_eq!(back, ps);
        let mut none = 0;
        p.packetize(&[], 1, |_| none += 1);
        assert_eq!(none, 0);
    }

    /// RFC 4571: two-byte length, then the packet.
    #[test]
    fn rfc4571_prefixes_length() {
        let mut out = Vec::new();
        frame_rfc4571(&[1, 2, 3], &mut out);
        assert_eq!(out, [0, 3, 1, 2, 3]);
    }

    /// Short, non-v2 and extension-overrunning packets are not RTP.
    #[test]
    fn parse_header_refuses_garbage() {
        assert!(parse_header(&[0x80; 11]).is_none());
        assert!(parse_header(&[0x40; 12]).is_none());
        let mut ext = vec![0x90, 96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
        assert!(parse_header(&ext).is_none());
        ext.extend([0; 36]);
        assert_eq!(parse_header(&ext).expect("rtp").header_len, 52);
    }
}
