//! The audio pipeline: whatever an operator uploads or types becomes 8 kHz
//! mono 16-bit PCM at one loudness, ready for any horn driver.
//!
//! ```text
//! bytes ─ decode (symphonia: MP3, WAV, OGG/Vorbis, FLAC, AAC in MP4/ADTS;
//!         libopus: Opus in Ogg or WebM) ─ downmix to mono
//!       ─ resample to 8 kHz (windowed-sinc polyphase) ─ EBU R128 loudness
//!       normalisation to one target ─ peak limiter ─ i16 PCM
//! text  ─ TTS command (espeak-ng `cmn` by default) ─ WAV ─ same pipeline
//! ```
//!
//! | module | owns |
//! |---|---|
//! | [`decode`] | probing and decoding an upload under [`decode::DecodeLimits`], refusing corrupt/truncated/non-audio input, downmix, streaming resample |
//! | [`resample`] | the fixed-quality windowed-sinc resampler to 8 kHz, batch or streaming |
//! | [`loudness`] | EBU R128 integrated loudness, gain to the target, the limiter |
//! | [`opus`] | libopus: one packet to mono PCM ([`opus::OpusDecoder`], also for live paging), Ogg/WebM Opus tracks (`OpusHead`, pre-skip) |
//! | [`webm`] | filling in the unknown Segment/Cluster sizes of a streamed WebM (MediaRecorder) before demuxing |
//! | [`tts`] | running the text-to-speech command without a shell, with a timeout |
//! | [`assets`] | the content-addressed asset store in `DATA_DIR/assets/` |
//!
//! The interface to the horn drivers (`device-drivers`) is PCM: `Vec<i16>`,
//! mono, [`RATE`] Hz. Encoding (G.711, Opus, µ-law for Axis, WAV for cloud
//! horns via [`wav_bytes`]) happens at the driver.

pub mod assets;
pub mod decode;
pub mod loudness;
pub mod opus;
pub mod resample;
pub mod tts;
pub mod webm;

use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::config::AudioSection;

/// The sample rate of every PCM buffer this module produces.
pub const RATE: u32 = 8000;

/// Limits and targets of the pipeline (from `[audio]`; [`Default`] matches
/// the documented config defaults).
#[derive(Debug, Clone)]
pub struct AudioSettings {
    /// Integrated loudness every announcement is brought to, LUFS.
    pub loudness_lufs: f64,
    /// Ceiling of the limiter, dBFS (sample peak at 8 kHz).
    pub peak_ceiling_dbfs: f64,
    /// Largest upload accepted, bytes.
    pub max_bytes: u64,
    /// Longest audio accepted.
    pub max_duration: Duration,
    /// The TTS command; the argument `{text}` is replaced by the text.
    pub tts_command: Vec<String>,
    /// Most characters of text one TTS announcement may have.
    pub tts_max_chars: usize,
    /// How long the TTS command may run.
    pub tts_timeout: Duration,
}

impl Default for AudioSettings {
    fn default() -> Self {
        Self::from(&AudioSection::default())
    }
}

impl From<&AudioSection> for AudioSettings {
    fn from(a: &AudioSection) -> Self {
        Self {
            loudness_lufs: a.loudness_lufs,
            peak_ceiling_dbfs: a.peak_ceiling_dbfs,
            max_bytes: a.max_asset_bytes,
            max_duration: Duration::from_secs(a.max_asset_secs),
            tts_command: a.tts_command.clone(),
            tts_max_chars: a.tts_max_chars,
            tts_timeout: Duration::from_secs(a.tts_timeout_secs),
        }
    }
}

/// Why an upload or a text was refused. Each message says what is wrong;
/// callers add which file.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// Zero bytes.
    #[error("the file is empty (0 bytes)")]
    Empty,
    /// Over `max_bytes`.
    #[error("the file is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Not a format we decode.
    #[error(
        "not a recognised audio file (MP3, WAV, OGG/Vorbis, FLAC, Opus in WebM/Ogg or AAC in MP4/M4A/ADTS expected): {0}"
    )]
    NotAudio(String),
    /// A recognised container with a codec we do not decode.
    #[error("unsupported audio codec: {0}")]
    Unsupported(String),
    /// Damaged data.
    #[error("corrupt audio: {0}")]
    Corrupt(String),
    /// Ends before its header says it should.
    #[error("truncated audio: {0}")]
    Truncated(String),
    /// Longer than `max_duration`.
    #[error("the audio is longer than the limit of {limit_secs} s")]
    TooLong {
        /// The limit.
        limit_secs: u64,
    },
    /// Over a decode limit (sample rate, channels, the decode budget).
    #[error("the audio exceeds a decode limit: {0}")]
    Limit(String),
    /// Decodes to nothing audible.
    #[error("the audio is silent (nothing above -70 LUFS)")]
    Silent,
    /// Decodes to no samples at all.
    #[error("the file contains no audio samples")]
    NoSamples,
    /// TTS text or command problems.
    #[error("text to speech: {0}")]
    Tts(String),
}

/// Decodes, downmixes, resamples to 8 kHz and normalises bytes of an upload.
pub fn prepare(
    bytes: &[u8],
    ext_hint: Option<&str>,
    s: &AudioSettings,
) -> Result<Prepared, AudioError> {
    if bytes.is_empty() {
        return Err(AudioError::Empty);
    }
    let size = bytes.len() as u64;
    if size > s.max_bytes {
        return Err(AudioError::TooLarge {
            size,
            limit: s.max_bytes,
        });
    }
    let limits = decode::DecodeLimits::for_duration(s.max_duration);
    let d = decode::decode(bytes, ext_hint, &limits, RATE, &mut 0)?;
    let (pcm, report) =
        loudness::normalise(&d.samples, RATE, s.loudness_lufs, s.peak_ceiling_dbfs)?;
    Ok(Prepared {
        pcm,
        format: d.format,
        source_rate: d.rate,
        source_channels: d.channels,
        loudness: report,
    })
}

/// The result of [`prepare`].
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Mono PCM at [`RATE`], normalised.
    pub pcm: Vec<i16>,
    /// The detected container/codec, e.g. `mp3`, `wav`, `ogg/vorbis`, `flac`,
    /// `webm/opus`, `ogg/opus`, `mp4/aac`, `aac`.
    pub format: String,
    /// The input's sample rate.
    pub source_rate: u32,
    /// The input's channel count.
    pub source_channels: usize,
    /// What loudness normalisation did.
    pub loudness: loudness::LoudnessReport,
}

impl Prepared {
    /// Duration of the PCM.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.pcm.len() as f64 / f64::from(RATE))
    }
}

/// Reads an audio file and returns it as normalised 8 kHz mono PCM, with the
/// default [`AudioSettings`]. Errors name the file and what is wrong.
pub fn load_file(path: &Path) -> anyhow::Result<Vec<i16>> {
    load_file_with(path, &AudioSettings::default()).map(|p| p.pcm)
}

/// [`load_file`] with explicit settings, returning the details.
pub fn load_file_with(path: &Path, s: &AudioSettings) -> anyhow::Result<Prepared> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("{}: cannot read", path.display()))?;
    if meta.len() > s.max_bytes {
        return Err(AudioError::TooLarge {
            size: meta.len(),
            limit: s.max_bytes,
        })
        .with_context(|| path.display().to_string());
    }
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let ext = path.extension().and_then(|e| e.to_str());
    prepare(&bytes, ext, s).with_context(|| path.display().to_string())
}

/// Speaks `text` with the default TTS command (espeak-ng, Mandarin `cmn`)
/// and returns normalised 8 kHz mono PCM.
pub fn tts(text: &str) -> anyhow::Result<Vec<i16>> {
    tts_with(text, &AudioSettings::default()).map(|p| p.pcm)
}

/// [`tts`] with explicit settings, returning the details.
pub fn tts_with(text: &str, s: &AudioSettings) -> anyhow::Result<Prepared> {
    let wav = tts::synthesize(text, s)?;
    // TTS output is our own; only the duration limit applies.
    let unlimited = AudioSettings {
        max_bytes: u64::MAX,
        ..s.clone()
    };
    prepare(&wav, Some("wav"), &unlimited).context("text to speech: the command's output")
}

/// A RIFF/WAVE file of 16-bit mono PCM at `rate` (for cloud horns that fetch
/// a URL, and for the asset store).
pub fn wav_bytes(pcm: &[i16], rate: u32) -> Vec<u8> {
    let data_len = (pcm.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + pcm.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in pcm {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod clip_tests;
#[cfg(test)]
mod tests;
