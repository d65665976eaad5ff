//! Probing and decoding an upload with symphonia (MP3, WAV/PCM,
//! OGG/Vorbis, FLAC), downmixed to mono `f32` at the source rate.
//!
//! Everything here reads untrusted bytes: no panics, limits checked while
//! decoding (a tiny FLAC of silence can expand to hours), and a file that
//! ends before its header's frame count is refused as truncated.

use std::io::Cursor;
use std::time::Duration;

use symphonia::core::audio::{AudioBufferRef, SampleBuffer};
use symphonia::core::codecs::{CODEC_TYPE_NULL, DecoderOptions};
use symphonia::core::errors::Error;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::AudioError;

/// Highest source sample rate accepted.
pub const MAX_RATE: u32 = 384_000;
/// Most channels accepted.
pub const MAX_CHANNELS: usize = 32;
/// Frames a decoder may legitimately fall short of the header's count
/// (encoder delay/padding of MP3 and Vorbis).
const FRAME_SLACK: u64 = 4608;

/// Decoded mono audio at its source rate.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// Mono samples in [-1, 1] (the mean of the channels).
    pub samples: Vec<f32>,
    /// Source sample rate, Hz.
    pub rate: u32,
    /// Source channel count.
    pub channels: usize,
    /// `mp3`, `wav`, `ogg/vorbis` or `flac`.
    pub format: String,
}

/// Decodes `bytes`; `ext_hint` (a file extension) helps the probe but is not
/// trusted.
pub fn decode(bytes: &[u8], ext_hint: Option<&str>, max: Duration) -> Result<Decoded, AudioError> {
    if bytes.is_empty() {
        return Err(AudioError::Empty);
    }
    let mss = MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), Default::default());
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
    let codec_name = symphonia::default::get_codecs()
        .get_codec(params.codec)
        .map(|d| d.short_name)
        .unwrap_or("unknown");
    let format = match codec_name {
        n if n.starts_with("pcm") => "wav".to_string(),
        "vorbis" => "ogg/vorbis".to_string(),
        n => n.to_string(),
    };
    let rate = params
        .sample_rate
        .ok_or_else(|| AudioError::Corrupt("the header gives no sample rate".into()))?;
    if !(1000..=MAX_RATE).contains(&rate) {
        return Err(AudioError::Unsupported(format!(
            "sample rate {rate} Hz (1000-{MAX_RATE} accepted)"
        )));
    }
    let max_frames = (max.as_secs_f64() * f64::from(rate)).ceil() as u64;
    if let Some(n) = params.n_frames
        && n > max_frames + FRAME_SLACK
    {
        return Err(AudioError::TooLong {
            limit_secs: max.as_secs(),
        });
    }
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(|e| AudioError::Unsupported(format!("{codec_name}: {}", describe(&e))))?;

    let mut samples: Vec<f32> = Vec::new();
    let mut channels = params.channels.map(|c| c.count()).unwrap_or(0);
    let mut packets = 0u64;
    let mut bad_packets = 0u64;
    let mut first_error = None;
    let mut buf: Option<SampleBuffer<f32>> = None;
    loop {
        let packet = match reader.next_packet() {
            Ok(p) => p,
            // Symphonia reports the end of the stream as an unexpected EOF.
            Err(Error::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(Error::ResetRequired) => break,
            Err(e) => {
                return Err(AudioError::Corrupt(format!(
                    "after {:.2} s: {}",
                    samples.len() as f64 / f64::from(rate),
                    describe(&e)
                )));
            }
        };
        if packet.track_id() != track_id {
            continue;
        }
        packets += 1;
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            Err(e @ (Error::DecodeError(_) | Error::IoError(_))) => {
                bad_packets += 1;
                first_error.get_or_insert_with(|| {
                    format!(
                        "packet {packets} (at {:.2} s): {}",
                        samples.len() as f64 / f64::from(rate),
                        describe(&e)
                    )
                });
                continue;
            }
            Err(e) => return Err(AudioError::Corrupt(describe(&e))),
        };
        channels = mix_down(decoded, rate, &mut buf, &mut samples)?;
        if samples.len() as u64 > max_frames {
            return Err(AudioError::TooLong {
                limit_secs: max.as_secs(),
            });
        }
    }
    // A few damaged packets in a long MP3 are tolerated (the decoder resyncs);
    // more than that, or nothing decodable, is a corrupt file.
    if bad_packets > 0 && (samples.is_empty() || bad_packets > 3.max(packets / 100)) {
        return Err(AudioError::Corrupt(format!(
            "{bad_packets} of {packets} packets do not decode; first: {}",
            first_error.unwrap_or_default()
        )));
    }
    if samples.is_empty() {
        return Err(AudioError::NoSamples);
    }
    if let Some(n) = params.n_frames
        && (samples.len() as u64) + FRAME_SLACK < n
    {
        return Err(AudioError::Truncated(format!(
            "the header announces {:.2} s but the data ends after {:.2} s",
            n as f64 / f64::from(rate),
            samples.len() as f64 / f64::from(rate)
        )));
    }
    Ok(Decoded {
        samples,
        rate,
        channels,
        format,
    })
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
    if ch == 0 || ch > MAX_CHANNELS {
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
