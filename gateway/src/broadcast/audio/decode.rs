//! Probing and decoding an upload with symphonia (MP3, WAV/PCM,
//! OGG/Vorbis, FLAC, AAC-LC in MP4/M4A or ADTS; Ogg, WebM/Matroska and
//! MP4 demuxing) and libopus for Opus tracks ([`super::opus`]), downmixed
//! to mono `f32` and resampled as it decodes.
//!
//! Everything here reads untrusted bytes: no panics; [`DecodeLimits`]
//! (sample rate, channels, duration, rate × duration × channels) checked on
//! the container's declared parameters before decoding and again packet by
//! packet while decoding (a tiny FLAC of silence can expand to hours);
//! memory follows the 8 kHz output, not the source; and a file that ends
//! before its header's frame count is refused as truncated. A panic inside
//! a demuxer on malformed input (symphonia has a few) is caught and
//! reported as a corrupt file.

use std::io::Cursor;
use std::time::Duration;

use symphonia::core::audio::{AudioBufferRef, SampleBuffer};
use symphonia::core::codecs::{CODEC_TYPE_NULL, CODEC_TYPE_OPUS, Decoder, DecoderOptions};
use symphonia::core::errors::Error;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::AudioError;
use super::opus::OpusTrack;

/// Highest source sample rate accepted.
pub const MAX_RATE: u32 = 192_000;
/// Most channels accepted.
pub const MAX_CHANNELS: usize = 8;
/// The decode budget per second of the longest accepted announcement:
/// source samples (rate × channels) a 48 kHz stereo file would have.
pub const BUDGET_PER_SEC: u64 = 48_000 * 2;
/// Frames a decoder may legitimately fall short of the header's count
/// (encoder delay/padding of MP3 and Vorbis).
const FRAME_SLACK: u64 = 4608;

/// What a decode may cost; checked on the container's declared parameters
/// before decoding, and again on what is decoded, packet by packet.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Longest audio.
    pub max_duration: Duration,
    /// Highest source sample rate, Hz.
    pub max_rate: u32,
    /// Most channels.
    pub max_channels: usize,
    /// Most source samples (frames × channels) decoded.
    pub sample_budget: u64,
}

impl DecodeLimits {
    /// The limits for a longest duration: [`MAX_RATE`], [`MAX_CHANNELS`] and
    /// [`BUDGET_PER_SEC`] × its seconds.
    pub fn for_duration(max_duration: Duration) -> Self {
        Self {
            max_duration,
            max_rate: MAX_RATE,
            max_channels: MAX_CHANNELS,
            sample_budget: (max_duration.as_secs_f64().ceil() as u64).max(1) * BUDGET_PER_SEC,
        }
    }
}

/// Decoded mono audio, resampled while decoding.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// Mono samples in [-1, 1] (the mean of the channels) at the output rate.
    pub samples: Vec<f32>,
    /// Source sample rate, Hz.
    pub rate: u32,
    /// Source channel count.
    pub channels: usize,
    /// `mp3`, `wav`, `ogg/vorbis`, `flac`, `ogg/opus`, `webm/opus`,
    /// `webm/vorbis`, `mp4/aac` or `aac` (ADTS).
    pub format: String,
}

/// Decodes `bytes` to mono at `out_rate`; `ext_hint` (a file extension)
/// helps the probe but is not trusted. `packets` counts the packets read
/// (also when it fails: how far decoding went before a refusal).
pub fn decode(
    bytes: &[u8],
    ext_hint: Option<&str>,
    limits: &DecodeLimits,
    out_rate: u32,
    packets: &mut u64,
) -> Result<Decoded, AudioError> {
    if bytes.is_empty() {
        return Err(AudioError::Empty);
    }
    let mut n = 0;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_inner(bytes, ext_hint, limits, out_rate, &mut n)
    }));
    *packets += n;
    r.unwrap_or_else(|_| {
        Err(AudioError::Corrupt(format!(
            "the {} demuxer failed on malformed data after {n} packets",
            container(bytes)
        )))
    })
}

/// The container by its magic bytes (for names and messages only).
fn container(bytes: &[u8]) -> &'static str {
    match bytes {
        [b'O', b'g', b'g', b'S', ..] => "ogg",
        [0x1a, 0x45, 0xdf, 0xa3, ..] => "webm",
        [_, _, _, _, b'f', b't', b'y', b'p', ..] => "mp4",
        [0xff, b, ..] if b & 0xf0 == 0xf0 => "adts",
        [b'R', b'I', b'F', b'F', ..] => "wav",
        _ => "audio",
    }
}

/// What decodes the track: a symphonia codec, or libopus.
enum Codec {
    Symphonia(Box<dyn Decoder>),
    Opus(OpusTrack),
}

fn decode_inner(
    bytes: &[u8],
    ext_hint: Option<&str>,
    limits: &DecodeLimits,
    out_rate: u32,
    packets: &mut u64,
) -> Result<Decoded, AudioError> {
    // MediaRecorder's WebM (Segment and Clusters of unknown size) with the
    // sizes filled in: symphonia's demuxer needs them.
    let data = match container(bytes) {
        "webm" => super::webm::with_known_sizes(bytes),
        _ => None,
    }
    .unwrap_or_else(|| bytes.to_vec());
    let mss = MediaSourceStream::new(Box::new(Cursor::new(data)), Default::default());
    let mut hint = Hint::new();
    if let Some(e) = ext_hint {
        hint.with_extension(&e.to_ascii_lowercase());
    }
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            mss,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| AudioError::NotAudio(describe(&e)))?;
    let mut reader = probed.format;
    let track = reader
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| AudioError::NotAudio("no audio track".into()))?;
    let params = track.codec_params.clone();
    let track_id = track.id;
    let is_opus = params.codec == CODEC_TYPE_OPUS;
    let codec_name = symphonia::default::get_codecs()
        .get_codec(params.codec)
        .map(|d| d.short_name)
        .unwrap_or(if is_opus { "opus" } else { "unknown" });
    let format = match (codec_name, container(bytes)) {
        (n, _) if n.starts_with("pcm") => "wav".to_string(),
        ("vorbis" | "opus", "webm") => format!("webm/{codec_name}"),
        ("vorbis" | "opus", _) => format!("ogg/{codec_name}"),
        ("aac", "mp4") => "mp4/aac".to_string(),
        (n, _) => n.to_string(),
    };
    let rate = check_declared(&params, limits)?;
    // libopus decodes at 48 kHz whatever rate the container states.
    let rate = if is_opus { OpusTrack::RATE } else { rate };
    let max_frames = (limits.max_duration.as_secs_f64() * f64::from(rate)).ceil() as u64;
    let mut decoder = if is_opus {
        Codec::Opus(OpusTrack::new(params.extra_data.as_deref())?)
    } else {
        Codec::Symphonia(
            symphonia::default::get_codecs()
                .make(&params, &DecoderOptions::default())
                .map_err(|e| AudioError::Unsupported(format!("{codec_name}: {}", describe(&e))))?,
        )
    };

    let mut st = Stream {
        rate,
        limits: *limits,
        max_frames,
        frames: 0,
        decoded: 0,
        channels: params.channels.map(|c| c.count()).unwrap_or(0),
        buf: None,
        mono: Vec::new(),
        resampler: super::resample::Resampler::new(rate, out_rate),
        out: Vec::new(),
    };
    let mut bad_packets = 0u64;
    let mut first_error = None;
    loop {
        let packet = match reader.next_packet() {
            Ok(p) => p,
            // Symphonia reports the end of the stream as an unexpected EOF.
            Err(Error::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(Error::ResetRequired) => break,
            Err(e) => {
                return Err(AudioError::Corrupt(format!(
                    "after {:.2} s: {}",
                    st.secs(),
                    describe(&e)
                )));
            }
        };
        if packet.track_id() != track_id {
            continue;
        }
        *packets += 1;
        let bad = match &mut decoder {
            Codec::Symphonia(d) => match d.decode(&packet) {
                Ok(d) => {
                    st.take(d)?;
                    None
                }
                Err(e @ (Error::DecodeError(_) | Error::IoError(_))) => Some(describe(&e)),
                Err(e) => return Err(AudioError::Corrupt(describe(&e))),
            },
            Codec::Opus(o) => {
                st.mono.clear();
                match o.decode(&packet.data, &mut st.mono) {
                    Ok(_) => {
                        st.channels = o.channels;
                        st.take_mono(o.channels)?;
                        None
                    }
                    Err(e) => Some(e),
                }
            }
        };
        if let Some(e) = bad {
            bad_packets += 1;
            first_error
                .get_or_insert_with(|| format!("packet {packets} (at {:.2} s): {e}", st.secs()));
        }
    }
    // A few damaged packets in a long MP3 are tolerated (the decoder resyncs);
    // more than that, or nothing decodable, is a corrupt file.
    if bad_packets > 0 && (st.frames == 0 || bad_packets > 3.max(*packets / 100)) {
        return Err(AudioError::Corrupt(format!(
            "{bad_packets} of {packets} packets do not decode; first: {}",
            first_error.unwrap_or_default()
        )));
    }
    if st.frames == 0 {
        return Err(AudioError::NoSamples);
    }
    if let Some(n) = declared_frames(&params, rate)
        && st.frames + FRAME_SLACK < n
    {
        return Err(AudioError::Truncated(format!(
            "the header announces {:.2} s but the data ends after {:.2} s",
            n as f64 / f64::from(rate),
            st.secs()
        )));
    }
    st.resampler.finish(&mut st.out);
    Ok(Decoded {
        samples: st.out,
        rate,
        channels: st.channels,
        format,
    })
}

/// The limits on what the container declares, before any decoding: sample
/// rate, channels, duration and rate × duration × channels. Answers the rate.
fn check_declared(
    params: &symphonia::core::codecs::CodecParameters,
    limits: &DecodeLimits,
) -> Result<u32, AudioError> {
    let rate = params
        .sample_rate
        .ok_or_else(|| AudioError::Corrupt("the header gives no sample rate".into()))?;
    if !(1000..=limits.max_rate).contains(&rate) {
        return Err(AudioError::Limit(format!(
            "sample rate {rate} Hz (1000-{} Hz accepted)",
            limits.max_rate
        )));
    }
    let channels = params.channels.map(|c| c.count());
    if let Some(ch) = channels
        && ch > limits.max_channels
    {
        return Err(AudioError::Limit(format!(
            "{ch} channels (at most {} accepted)",
            limits.max_channels
        )));
    }
    let max_frames = (limits.max_duration.as_secs_f64() * f64::from(rate)).ceil() as u64;
    if let Some(n) = declared_frames(params, rate) {
        if n > max_frames + FRAME_SLACK {
            return Err(AudioError::TooLong {
                limit_secs: limits.max_duration.as_secs(),
            });
        }
        let cost = n.saturating_mul(channels.unwrap_or(1).max(1) as u64);
        if cost > limits.sample_budget {
            return Err(AudioError::Limit(budget_message(
                cost,
                rate,
                limits.sample_budget,
            )));
        }
    }
    Ok(rate)
}

/// The declared length in frames at `rate`: Matroska and MP4 count it in
/// their own time base (milliseconds, the track's timescale), not samples.
fn declared_frames(params: &symphonia::core::codecs::CodecParameters, rate: u32) -> Option<u64> {
    let n = params.n_frames?;
    match params.time_base {
        Some(tb) if tb.numer > 0 && tb.denom > 0 && (tb.numer, tb.denom) != (1, rate) => {
            let t = tb.calc_time(n);
            Some(((t.seconds as f64 + t.frac) * f64::from(rate)).ceil() as u64)
        }
        _ => Some(n),
    }
}

fn budget_message(cost: u64, rate: u32, budget: u64) -> String {
    format!(
        "decode budget: sample rate × duration × channels = {cost} samples ({rate} Hz), more than the budget of {budget} (a 48 kHz stereo file of the longest accepted length)"
    )
}

/// Decoding state: counters against the limits, the downmix buffers and the
/// streaming resampler (memory follows the output rate, not the source).
struct Stream {
    rate: u32,
    limits: DecodeLimits,
    max_frames: u64,
    /// Source frames decoded.
    frames: u64,
    /// Source samples (frames × channels) decoded.
    decoded: u64,
    channels: usize,
    buf: Option<SampleBuffer<f32>>,
    mono: Vec<f32>,
    resampler: super::resample::Resampler,
    out: Vec<f32>,
}

impl Stream {
    fn secs(&self) -> f64 {
        self.frames as f64 / f64::from(self.rate)
    }

    /// One decoded packet: limits first, then downmix and resample.
    fn take(&mut self, decoded: AudioBufferRef<'_>) -> Result<(), AudioError> {
        let ch = decoded.spec().channels.count();
        self.count(decoded.frames() as u64, ch)?;
        self.mono.clear();
        self.channels = mix_down(decoded, self.rate, &mut self.buf, &mut self.mono)?;
        self.resampler.push(&self.mono, &mut self.out);
        Ok(())
    }

    /// One packet already decoded to mono in `self.mono` (from `ch`
    /// channels): limits, then resample.
    fn take_mono(&mut self, ch: usize) -> Result<(), AudioError> {
        self.count(self.mono.len() as u64, ch)?;
        self.resampler.push(&self.mono, &mut self.out);
        Ok(())
    }

    /// Counts `n` frames of `ch` channels against the limits.
    fn count(&mut self, n: u64, ch: usize) -> Result<(), AudioError> {
        if ch > self.limits.max_channels {
            return Err(AudioError::Limit(format!(
                "{ch} channels (at most {} accepted)",
                self.limits.max_channels
            )));
        }
        self.frames += n;
        self.decoded += n * ch as u64;
        if self.frames > self.max_frames {
            return Err(AudioError::TooLong {
                limit_secs: self.limits.max_duration.as_secs(),
            });
        }
        if self.decoded > self.limits.sample_budget {
            return Err(AudioError::Limit(budget_message(
                self.decoded,
                self.rate,
                self.limits.sample_budget,
            )));
        }
        Ok(())
    }
}

/// Appends one decoded packet to `samples`, downmixed to mono; answers
/// its channel count.
fn mix_down(
    decoded: AudioBufferRef<'_>,
    rate: u32,
    buf: &mut Option<SampleBuffer<f32>>,
    samples: &mut Vec<f32>,
) -> Result<usize, AudioError> {
    let spec = *decoded.spec();
    let ch = spec.channels.count();
    if ch == 0 {
        return Err(AudioError::Unsupported(format!("{ch} channels")));
    }
    if spec.rate != rate {
        return Err(AudioError::Corrupt(format!(
            "sample rate changes mid-stream from {rate} to {} Hz",
            spec.rate
        )));
    }
    let frames = decoded.frames();
    let need = (frames * ch) as u64;
    let sb = match buf {
        Some(b) if b.capacity() as u64 >= need => b,
        _ => buf.insert(SampleBuffer::<f32>::new(decoded.capacity() as u64, spec)),
    };
    sb.copy_interleaved_ref(decoded);
    let scale = 1.0 / ch as f32;
    for frame in sb.samples().chunks_exact(ch) {
        let s: f32 = frame.iter().sum::<f32>() * scale;
        samples.push(if s.is_finite() {
            s.clamp(-1.0, 1.0)
        } else {
            0.0
        });
    }
    Ok(ch)
}

fn describe(e: &Error) -> String {
    match e {
        Error::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the data ends unexpectedly".into()
        }
        Error::Unsupported(what) => format!("unsupported {what}"),
        other => other.to_string(),
    }
}
