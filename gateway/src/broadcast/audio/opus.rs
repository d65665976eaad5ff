//! Opus decoding with libopus (Debian `libopus-dev`, through the
//! `opusic-c` bindings): [`OpusDecoder`] turns one Opus packet into mono PCM (live
//! paging frames, clips), and [`OpusTrack`] decodes an Ogg or WebM Opus
//! track demuxed by symphonia (its `OpusHead`: pre-skip, output gain,
//! channel mapping).
//!
//! libopus validates every packet (TOC, frame lengths) before it decodes;
//! what it refuses comes back as an error naming the packet's size and
//! libopus's reason, never a panic. Output per packet is bounded by Opus
//! itself: at most 120 ms.

use crate::base::error::Error;

use super::AudioError;

/// The sample rates libopus decodes to.
pub const RATES: [u32; 5] = [8000, 12_000, 16_000, 24_000, 48_000];
/// The longest audio one Opus packet carries, ms (RFC 6716 §3.2.5).
const MAX_PACKET_MS: u32 = 120;
/// The largest packet accepted, bytes: 120 ms of 48 frames of at most 1275
/// bytes each (RFC 6716 §3.4 R2/R5), plus the longest padding length.
pub const MAX_PACKET_BYTES: usize = 48 * 1275 + 255;

/// A mono Opus decoder at one output rate. A lost packet (`decode(&[])`)
/// is concealed (PLC) for the duration of the last packet.
pub struct OpusDecoder {
    inner: opusic_c::Decoder,
    rate: u32,
    /// Samples of the last packet decoded (what a lost one is concealed as).
    last: usize,
    /// libopus's `opus_int16` samples, as the bindings type them.
    buf: Vec<u16>,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder")
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

impl OpusDecoder {
    /// A decoder producing mono PCM at `rate` (8000, 12000, 16000, 24000 or
    /// 48000 Hz); stereo packets are downmixed by libopus.
    pub fn new(rate: u32) -> Result<Self, Error> {
        if !RATES.contains(&rate) {
            return Err(Error::invalid(format!(
                "opus: sample rate {rate} Hz (8000, 12000, 16000, 24000 or 48000 accepted)"
            )));
        }
        let sr = match rate {
            8000 => opusic_c::SampleRate::Hz8000,
            12_000 => opusic_c::SampleRate::Hz12000,
            16_000 => opusic_c::SampleRate::Hz16000,
            24_000 => opusic_c::SampleRate::Hz24000,
            _ => opusic_c::SampleRate::Hz48000,
        };
        let inner = opusic_c::Decoder::new(opusic_c::Channels::Mono, sr).map_err(|e| {
            Error::internal(format!("opus: cannot create a decoder: {}", e.message()))
        })?;
        let max = (rate * MAX_PACKET_MS / 1000) as usize;
        Ok(Self {
            inner,
            rate,
            last: (rate / 50) as usize,
            buf: vec![0; max],
        })
    }

    /// The output rate, Hz.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Decodes one packet to mono PCM at the decoder's rate; an empty
    /// `packet` is a lost one, concealed for the last packet's duration
    /// (20 ms before any packet).
    pub fn decode(&mut self, packet: &[u8]) -> Result<Vec<i16>, Error> {
        if packet.len() > MAX_PACKET_BYTES {
            return Err(Error::invalid(format!(
                "opus: a packet of {} bytes (at most {MAX_PACKET_BYTES})",
                packet.len()
            )));
        }
        let out = if packet.is_empty() {
            &mut self.buf[..self.last]
        } else {
            &mut self.buf[..]
        };
        let n = self
            .inner
            .decode_to_slice(packet, out, false)
            .map_err(|e| {
                Error::invalid(format!(
                    "opus: a packet of {} bytes does not decode: {}",
                    packet.len(),
                    e.message()
                ))
            })?;
        let n = n.min(self.buf.len());
        if !packet.is_empty() && n > 0 {
            self.last = n;
        }
        // The bindings type libopus's int16 samples as u16: same bits.
        Ok(self.buf[..n].iter().map(|s| *s as i16).collect())
    }
}

/// The parts of an `OpusHead` (RFC 7845 §5.1) a mono decode needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusHead {
    /// Channels of the stream.
    pub channels: u8,
    /// Samples at 48 kHz to drop from the start (encoder delay).
    pub pre_skip: u16,
    /// Gain to apply, dB in Q7.8.
    pub output_gain: i16,
    /// 0: mono/stereo; 1: Vorbis order, up to 8; 255: undefined.
    pub mapping_family: u8,
}

impl OpusHead {
    /// Parses an `OpusHead` (Ogg's first packet, Matroska's CodecPrivate).
    pub fn parse(b: &[u8]) -> Result<Self, AudioError> {
        if b.len() < 19 || &b[..8] != b"OpusHead" {
            return Err(AudioError::Corrupt(format!(
                "the Opus track has no valid OpusHead ({} bytes of codec data)",
                b.len()
            )));
        }
        if b[8] >> 4 != 0 {
            return Err(AudioError::Unsupported(format!(
                "Opus header version {}",
                b[8]
            )));
        }
        let h = Self {
            channels: b[9],
            pre_skip: u16::from_le_bytes([b[10], b[11]]),
            output_gain: i16::from_le_bytes([b[16], b[17]]),
            mapping_family: b[18],
        };
        if h.channels == 0 {
            return Err(AudioError::Corrupt("the OpusHead gives 0 channels".into()));
        }
        // One plain Opus stream carries at most 2 channels; more is a
        // multistream (surround), which a horn announcement never is.
        if h.channels > 2 {
            return Err(AudioError::Unsupported(format!(
                "Opus with {} channels (mapping family {}; mono or stereo accepted)",
                h.channels, h.mapping_family
            )));
        }
        Ok(h)
    }
}

/// An Ogg or WebM Opus track: decodes its packets to mono `f32` at 48 kHz,
/// pre-skip dropped and the header's output gain applied.
pub struct OpusTrack {
    dec: OpusDecoder,
    skip: usize,
    gain: f32,
    /// Channels the header declares.
    pub channels: usize,
}

impl OpusTrack {
    /// Opus always decodes at this rate here (and resamples to 8 kHz after).
    pub const RATE: u32 = 48_000;

    /// A track from its codec data (`OpusHead`).
    pub fn new(extra_data: Option<&[u8]>) -> Result<Self, AudioError> {
        let head = OpusHead::parse(extra_data.unwrap_or_default())?;
        let dec = OpusDecoder::new(Self::RATE)
            .map_err(|e| AudioError::Unsupported(e.message().to_string()))?;
        Ok(Self {
            dec,
            skip: usize::from(head.pre_skip),
            gain: 10f32.powf(f32::from(head.output_gain) / 256.0 / 20.0),
            channels: usize::from(head.channels),
        })
    }

    /// Decodes one packet, appending mono samples in [-1, 1] to `out`;
    /// answers how many were appended.
    pub fn decode(&mut self, packet: &[u8], out: &mut Vec<f32>) -> Result<usize, String> {
        if packet.is_empty() {
            return Ok(0);
        }
        let pcm = self
            .dec
            .decode(packet)
            .map_err(|e| e.message().to_string())?;
        let drop = self.skip.min(pcm.len());
        self.skip -= drop;
        let before = out.len();
        out.extend(
            pcm[drop..]
                .iter()
                .map(|s| (f32::from(*s) / 32768.0 * self.gain).clamp(-1.0, 1.0)),
        );
        Ok(out.len() - before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 20 ms of a 400 Hz tone at `rate`, encoded by libopus.
    fn packets(rate: u32, n: usize) -> Vec<Vec<u8>> {
        let mut dec = OpusDecoder::new(rate).unwrap();
        let mut enc = opusic_c::Encoder::new(
            opusic_c::Channels::Mono,
            dec.inner.get_sample_rate().unwrap(),
            opusic_c::Application::Voip,
        )
        .unwrap();
        let frame = (rate / 50) as usize;
        (0..n)
            .map(|k| {
                let pcm: Vec<u16> = (0..frame)
                    .map(|i| {
                        let t = (k * frame + i) as f32 / rate as f32;
                        ((t * 400.0 * std::f32::consts::TAU).sin() * 12_000.0) as i16 as u16
                    })
                    .collect();
                let mut out = vec![0u8; 4000];
                let n = enc.encode_to_slice(&pcm, &mut out).unwrap();
                out.truncate(n);
                out
            })
            .collect()
    }

    /// Rates libopus cannot decode to are refused, naming the accepted ones.
    #[test]
    fn wrong_rates_are_refused() {
        for r in [0, 44_100, 96_000, 8001] {
            let e = OpusDecoder::new(r).unwrap_err();
            assert_eq!(e.kind(), crate::base::error::ErrorKind::Invalid);
            assert!(e.message().contains(&format!("{r} Hz")), "{e}");
            assert!(e.message().contains("48000"), "{e}");
        }
    }

    /// Garbage and oversized packets are errors naming the size, not panics;
    /// the decoder still works after them.
    #[test]
    fn garbage_packets_are_errors() {
        let mut d = OpusDecoder::new(16_000).unwrap();
        // TOC of a code-3 packet announcing 63 frames with no data.
        let e = d.decode(&[0x03 | 0x08, 0xff]).unwrap_err();
        assert!(e.message().contains("2 bytes"), "{e}");
        let e = d.decode(&vec![0u8; MAX_PACKET_BYTES + 1]).unwrap_err();
        assert!(e.message().contains("at most"), "{e}");
        let mut seed = 0x1234_5678u32;
        for len in 1..300 {
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            if let Ok(pcm) = d.decode(&junk) {
                assert!(pcm.len() <= 16 * 120, "{len}: {}", pcm.len());
            }
        }
        let good = packets(16_000, 1);
        assert_eq!(d.decode(&good[0]).unwrap().len(), 320);
    }

    /// Every rate decodes a 20 ms packet to 20 ms; a lost packet is
    /// concealed as 20 ms too, and PLC before any packet gives 20 ms.
    #[test]
    fn packets_and_loss_at_every_rate() {
        for rate in RATES {
            let mut d = OpusDecoder::new(rate).unwrap();
            assert_eq!(d.decode(&[]).unwrap().len(), (rate / 50) as usize);
            for p in packets(rate, 5) {
                assert_eq!(d.decode(&p).unwrap().len(), (rate / 50) as usize, "{rate}");
            }
            let plc = d.decode(&[]).unwrap();
            assert_eq!(plc.len(), (rate / 50) as usize, "{rate}");
            // Concealment continues the tone rather than going silent.
            assert!(plc.iter().any(|s| s.unsigned_abs() > 1000), "{rate}");
        }
    }

    /// A broken OpusHead, a surround header and a future version are refused.
    #[test]
    fn opus_heads() {
        let mut h = b"OpusHead\x01\x02\x38\x01\x80\xbb\0\0\0\0\0".to_vec();
        assert_eq!(
            OpusHead::parse(&h).unwrap(),
            OpusHead {
                channels: 2,
                pre_skip: 312,
                output_gain: 0,
                mapping_family: 0
            }
        );
        assert!(matches!(
            OpusHead::parse(&h[..18]),
            Err(AudioError::Corrupt(_))
        ));
        assert!(matches!(OpusHead::parse(b""), Err(AudioError::Corrupt(_))));
        h[9] = 6;
        let e = OpusHead::parse(&h).unwrap_err().to_string();
        assert!(e.contains("6 channels"), "{e}");
        h[9] = 0;
        assert!(
            OpusHead::parse(&h)
                .unwrap_err()
                .to_string()
                .contains("0 channels")
        );
        h[9] = 1;
        h[8] = 0x10;
        assert!(matches!(
            OpusHead::parse(&h),
            Err(AudioError::Unsupported(_))
        ));
    }
}
