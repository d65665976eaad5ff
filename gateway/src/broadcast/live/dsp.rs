//! A live page's audio on its way to the horns: the client's frames
//! decoded ([`Decoder`]: PCM s16le today; Opus is refused with
//! libopus through `audio/opus.rs`), resampled to 8 kHz
//! (the asset pipeline's [`Resampler`]), limited to a ceiling, and cut into
//! 20 ms frames. Pure: no IO, no clock.

use crate::broadcast::audio::resample::Resampler;

use super::jitter::FRAME_SAMPLES;

/// The codecs a client may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// PCM, signed 16-bit little-endian, mono.
    Pcm16,
    /// One Opus packet per frame.
    Opus,
}

/// Why a frame or a codec was refused: a short code and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DspError {
    /// `codec-unsupported`, `bad-frame`, `bad-rate`.
    pub code: &'static str,
    /// What was wrong.
    pub message: String,
}

fn bad(code: &'static str, message: impl Into<String>) -> DspError {
    DspError {
        code,
        message: message.into(),
    }
}

/// Rates a client may send.
pub const RATES: [u32; 2] = [16_000, 48_000];

/// One frame's payload → mono i16 samples at the client's rate.
pub enum Decoder {
    /// PCM s16le mono.
    Pcm16 {
        /// Largest payload accepted (100 ms at the rate).
        max_bytes: usize,
    },
    /// One Opus packet per frame (libopus, `audio/opus.rs`), mono out.
    Opus(Box<crate::broadcast::audio::opus::OpusDecoder>),
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decoder::Pcm16 { max_bytes } => write!(f, "Pcm16 {{ max_bytes: {max_bytes} }}"),
            Decoder::Opus(d) => write!(f, "Opus {{ rate: {} }}", d.rate()),
        }
    }
}

impl Decoder {
    /// A decoder for `codec` at `rate`; Opus is refused for now.
    pub fn new(codec: Codec, rate: u32) -> Result<Decoder, DspError> {
        if !RATES.contains(&rate) {
            return Err(bad("bad-rate", format!("rate {rate}: use 16000 or 48000")));
        }
        match codec {
            Codec::Pcm16 => Ok(Decoder::Pcm16 {
                max_bytes: rate as usize / 10 * 2,
            }),
            Codec::Opus => crate::broadcast::audio::opus::OpusDecoder::new(rate)
                .map(|d| Decoder::Opus(Box::new(d)))
                .map_err(|e| bad("codec-unsupported", e.message().to_string())),
        }
    }

    /// Decodes one frame.
    pub fn decode(&mut self, payload: &[u8]) -> Result<Vec<i16>, DspError> {
        match self {
            Decoder::Pcm16 { max_bytes } => {
                if payload.len() > *max_bytes {
                    return Err(bad(
                        "bad-frame",
                        format!(
                            "a frame of {} bytes; at most {max_bytes} (100 ms)",
                            payload.len()
                        ),
                    ));
                }
                if !payload.len().is_multiple_of(2) {
                    return Err(bad(
                        "bad-frame",
                        format!("a pcm16 frame of {} bytes (odd)", payload.len()),
                    ));
                }
                Ok(payload
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]))
                    .collect())
            }
            // An empty frame is a lost packet: libopus conceals it.
            Decoder::Opus(d) => d
                .decode(payload)
                .map_err(|e| bad("bad-frame", e.message().to_string())),
        }
    }
}

/// Ceiling of the limiter: −1 dBFS.
const CEILING: f32 = 0.891;
/// Limiter release per sample at 8 kHz (back to unity in about 250 ms).
const RELEASE: f32 = 1.0 / 2000.0;

/// Client samples → limited 8 kHz 20 ms frames.
pub struct Conditioner {
    resampler: Resampler,
    /// 8 kHz samples not yet a whole frame.
    pending: Vec<f32>,
    gain: f32,
    /// Samples the limiter reduced.
    pub limited: u64,
}

impl Conditioner {
    /// From `rate` Hz to 8 kHz.
    pub fn new(rate: u32) -> Conditioner {
        Conditioner {
            resampler: Resampler::new(rate, 8_000),
            pending: Vec::new(),
            gain: 1.0,
            limited: 0,
        }
    }

    /// Feeds decoded samples; returns the whole 8 kHz frames they complete.
    pub fn push(&mut self, pcm: &[i16]) -> Vec<Vec<i16>> {
        let input: Vec<f32> = pcm.iter().map(|s| f32::from(*s) / 32768.0).collect();
        self.resampler.push(&input, &mut self.pending);
        let whole = self.pending.len() / FRAME_SAMPLES * FRAME_SAMPLES;
        let rest = self.pending.split_off(whole);
        let done = std::mem::replace(&mut self.pending, rest);
        done.chunks(FRAME_SAMPLES).map(|c| self.limit(c)).collect()
    }

    /// A peak limiter with instant attack and a slow release: no sample
    /// leaves above the ceiling.
    fn limit(&mut self, x: &[f32]) -> Vec<i16> {
        x.iter()
            .map(|v| {
                let a = v.abs();
                if a * self.gain > CEILING {
                    self.gain = CEILING / a;
                    self.limited += 1;
                } else {
                    self.gain = (self.gain + RELEASE).min(1.0);
                }
                ((v * self.gain).clamp(-CEILING, CEILING) * 32767.0) as i16
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f64, rate: u32, n: usize, amp: f64) -> Vec<i16> {
        (0..n)
            .map(|i| {
                ((2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin() * amp)
                    as i16
            })
            .collect()
    }

    /// Opus frames decode to 20 ms of the tone; garbage is `bad-frame`
    /// naming its size; a lost (empty) frame is concealed, not an error.
    #[test]
    fn opus_frames_decode_and_garbage_is_refused() {
        let mut d = Decoder::new(Codec::Opus, 48_000).unwrap();
        let mut enc = opusic_c::Encoder::new(
            opusic_c::Channels::Mono,
            opusic_c::SampleRate::Hz48000,
            opusic_c::Application::Voip,
        )
        .unwrap();
        let mut energy = 0f64;
        for k in 0..10 {
            let pcm: Vec<u16> = (0..960)
                .map(|i| {
                    let t = (k * 960 + i) as f32 / 48_000.0;
                    ((t * 1000.0 * std::f32::consts::TAU).sin() * 12_000.0) as i16 as u16
                })
                .collect();
            let mut out = vec![0u8; 4000];
            let n = enc.encode_to_slice(&pcm, &mut out).unwrap();
            let got = d.decode(&out[..n]).unwrap();
            assert_eq!(got.len(), 960, "20 ms at 48 kHz");
            if k > 2 {
                energy += got.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>();
            }
        }
        assert!(energy / (7.0 * 960.0) > 1.0e6, "the tone came through");
        assert_eq!(
            d.decode(&[]).unwrap().len(),
            960,
            "a lost frame is concealed"
        );
        let e = d.decode(&[0xff; 700]).unwrap_err();
        assert_eq!(e.code, "bad-frame", "{e}");
        assert!(e.message.contains("700"), "{e}");
    }

    /// Rates other than 16/48 kHz are refused; odd and oversized frames
    /// are refused naming their size.
    #[test]
    fn refusals_name_what_is_wrong() {
        assert_eq!(
            Decoder::new(Codec::Opus, 44_100).unwrap_err().code,
            "bad-rate"
        );
        assert_eq!(
            Decoder::new(Codec::Pcm16, 44_100).unwrap_err().code,
            "bad-rate"
        );
        let mut d = Decoder::new(Codec::Pcm16, 16_000).unwrap();
        let e = d.decode(&[0u8; 641]).unwrap_err();
        assert_eq!(e.code, "bad-frame");
        assert!(e.message.contains("641"), "{e}");
        let e = d.decode(&vec![0u8; 3202]).unwrap_err();
        assert!(e.message.contains("3202"), "{e}");
        assert_eq!(d.decode(&[1, 0, 0xff, 0xff]).unwrap(), vec![1, -1]);
    }

    /// 20 ms client frames at 16 and 48 kHz become 20 ms frames at 8 kHz
    /// (one per input frame, after the resampler's delay) that keep a
    /// 1 kHz tone.
    #[test]
    fn resamples_to_8k_frames_keeping_the_tone() {
        for rate in RATES {
            let mut c = Conditioner::new(rate);
            let per = rate as usize / 50;
            let src = tone(1000.0, rate, per * 50, 8000.0);
            let mut out = Vec::new();
            for f in src.chunks(per) {
                out.extend(c.push(f));
            }
            assert!(
                (45..=50).contains(&out.len()),
                "{rate}: {} frames",
                out.len()
            );
            assert!(out.iter().all(|f| f.len() == FRAME_SAMPLES));
            let flat: Vec<f64> = out.concat().iter().map(|s| f64::from(*s)).collect();
            let tail = &flat[800..];
            let power = |hz: f64| {
                let (mut re, mut im) = (0.0, 0.0);
                for (i, s) in tail.iter().enumerate() {
                    let w = 2.0 * std::f64::consts::PI * hz * i as f64 / 8000.0;
                    re += s * w.cos();
                    im += s * w.sin();
                }
                re * re + im * im
            };
            assert!(power(1000.0) > 100.0 * power(600.0), "{rate}");
        }
    }

    /// A full-scale square wave leaves at or under the ceiling.
    #[test]
    fn limiter_holds_the_ceiling() {
        let mut c = Conditioner::new(16_000);
        let sq: Vec<i16> = (0..3200)
            .map(|i| if i % 40 < 20 { i16::MAX } else { i16::MIN })
            .collect();
        let out = c.push(&sq).concat();
        let peak = out.iter().map(|s| i32::from(*s).abs()).max().unwrap();
        assert!(peak <= (CEILING * 32767.0) as i32 + 1, "{peak}");
        assert!(c.limited > 0);
    }
}
