//! G.711 µ-law (PCMU) and A-law (PCMA) encoding and decoding (ITU-T G.711),
//! 8 kHz mono, one byte per sample. Pure.

use std::fmt;
use std::str::FromStr;

/// G.711 sample rate, Hz.
pub const SAMPLE_RATE: u32 = 8000;

/// A G.711 variant, with its static RTP payload type (RFC 3551).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// µ-law, payload type 0.
    Pcmu,
    /// A-law, payload type 8.
    Pcma,
}

impl Codec {
    /// Static RTP payload type.
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The codec of a static payload type, if it is G.711.
    pub fn from_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// SDP encoding name (`PCMU`, `PCMA`).
    pub fn sdp_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// Encodes one sample.
    pub fn encode_sample(self, s: i16) -> u8 {
        match self {
            Codec::Pcmu => linear_to_ulaw(s),
            Codec::Pcma => linear_to_alaw(s),
        }
    }

    /// Decodes one byte.
    pub fn decode_sample(self, b: u8) -> i16 {
        match self {
            Codec::Pcmu => ulaw_to_linear(b),
            Codec::Pcma => alaw_to_linear(b),
        }
    }

    /// Encodes PCM samples.
    pub fn encode(self, pcm: &[i16]) -> Vec<u8> {
        pcm.iter().map(|&s| self.encode_sample(s)).collect()
    }

    /// Decodes G.711 bytes.
    pub fn decode(self, bytes: &[u8]) -> Vec<i16> {
        bytes.iter().map(|&b| self.decode_sample(b)).collect()
    }

    /// The byte that encodes silence.
    pub fn silence(self) -> u8 {
        self.encode_sample(0)
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Codec::Pcmu => "pcmu",
            Codec::Pcma => "pcma",
        })
    }
}

/// A codec name that is not G.711.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown codec {0:?}: expected pcmu or pcma")]
pub struct UnknownCodec(pub String);

impl FromStr for Codec {
    type Err = UnknownCodec;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "pcmu" | "ulaw" | "mulaw" | "g711u" => Ok(Codec::Pcmu),
            "pcma" | "alaw" | "g711a" => Ok(Codec::Pcma),
            _ => Err(UnknownCodec(s.to_string())),
        }
    }
}

/// Encodes one sample to µ-law (Sun g711.c).
pub fn linear_to_ulaw(pcm: i16) -> u8 {
    const BIAS: i32 = 0x84;
    let mut v = i32::from(pcm);
    let sign = if v < 0 {
        v = -v;
        0x80
    } else {
        0
    };
    v = (v + BIAS).min(0x7fff);
    let mut exp = 7;
    let mut mask = 0x4000;
    while exp > 0 && v & mask == 0 {
        exp -= 1;
        mask >>= 1;
    }
    let mant = (v >> (exp + 3)) & 0x0f;
    !(sign | (exp << 4) | mant) as u8
}

/// Encodes one sample to A-law.
pub fn linear_to_alaw(pcm: i16) -> u8 {
    let mut v = i32::from(pcm);
    let sign = if v >= 0 {
        0x80
    } else {
        v = -v - 1;
        0
    };
    let v = v.min(0x7fff);
    let (exp, mant) = if v < 256 {
        (0, v >> 4)
    } else {
        let mut exp = 7;
        while v < (256 << (exp - 1)) {
            exp -= 1;
        }
        (exp, (v >> (exp + 3)) & 0x0f)
    };
    ((sign | (exp << 4) | mant) ^ 0x55) as u8
}

/// Decodes one µ-law byte.
pub fn ulaw_to_linear(u: u8) -> i16 {
    let u = !u;
    let exponent = (u >> 4) & 0x07;
    let mantissa = i32::from(u & 0x0f);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    let s = if u & 0x80 != 0 { -magnitude } else { magnitude };
    s as i16
}

/// Decodes one A-law byte.
pub fn alaw_to_linear(a: u8) -> i16 {
    let a = a ^ 0x55;
    let exponent = (a >> 4) & 0x07;
    let mantissa = i32::from(a & 0x0f);
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    let s = if a & 0x80 != 0 { magnitude } else { -magnitude };
    s as i16
}

/// A sine tone of `freq` Hz, `seconds` long, at 8 kHz, peak `amplitude`.
pub fn tone(freq: f64, seconds: f64, amplitude: i16) -> Vec<i16> {
    let n = (seconds.max(0.0) * f64::from(SAMPLE_RATE)).round() as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(SAMPLE_RATE);
            (f64::from(amplitude) * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Table values of G.711 (silence, extremes).
    #[test]
    fn known_values() {
        assert_eq!(linear_to_ulaw(0), 0xff);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(linear_to_alaw(0), 0xd5);
        assert_eq!(alaw_to_linear(0xaa), 32256);
        assert_eq!(Codec::Pcmu.silence(), 0xff);
        assert_eq!(Codec::Pcma.silence(), 0xd5);
    }

    /// Encode → decode stays within G.711's quantisation error everywhere.
    #[test]
    fn round_trip() {
        for x in (-32768i32..32767).step_by(31) {
            let x = x as i16;
            let tol = (i32::from(x).abs() / 16).max(16);
            for c in [Codec::Pcmu, Codec::Pcma] {
                let y = c.decode_sample(c.encode_sample(x));
                assert!((i32::from(y) - i32::from(x)).abs() <= tol, "{c} {x} -> {y}");
            }
        }
    }

    /// Names and payload types.
    #[test]
    fn names() {
        assert_eq!("PCMA".parse(), Ok(Codec::Pcma));
        assert_eq!("ulaw".parse(), Ok(Codec::Pcmu));
        assert!("g729".parse::<Codec>().is_err());
        assert_eq!(Codec::from_payload_type(8), Some(Codec::Pcma));
        assert_eq!(Codec::from_payload_type(18), None);
        assert_eq!(Codec::Pcmu.to_string(), "pcmu");
        assert_eq!(tone(1000.0, 0.5, 1000).len(), 4000);
    }
}
