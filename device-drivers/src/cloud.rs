//! The pure core of the 4G / cloud horn driver: a tiny WAV writer and
//! reader (8 kHz mono 16-bit PCM), the MQTT topics and JSON messages
//! (`play` / `ping` / `stop` commands, `downloading|playing|done|error|
//! stopped|pong` status reports) and the short-lived audio token table with an injected clock.
//! The IO (HTTP server, MQTT client) is `speaker::CloudSpeaker`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// How long an audio token stays valid after the end of the broadcast.
pub const TOKEN_GRACE: Duration = Duration::from_secs(60);

/// The topic the gateway publishes commands to.
pub fn cmd_topic(horn_id: &str) -> String {
    format!("horn/{horn_id}/cmd")
}

/// The topic the horn publishes its status reports to.
pub fn status_topic(horn_id: &str) -> String {
    format!("horn/{horn_id}/status")
}

/// A WAV file (RIFF, PCM 16-bit, mono) of `pcm` at `rate` Hz.
pub fn wav_bytes(pcm: &[i16], rate: u32) -> Vec<u8> {
    let data_len = (pcm.len() * 2) as u32;
    let mut v = Vec::with_capacity(44 + pcm.len() * 2);
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data_len).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes()); // PCM
    v.extend_from_slice(&1u16.to_le_bytes()); // mono
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * 2).to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data_len.to_le_bytes());
    for s in pcm {
        v.extend_from_slice(&s.to_le_bytes());
    }
    v
}

/// Why bytes are not a WAV [`parse_wav`] can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WavError {
    /// Not RIFF/WAVE, or truncated.
    #[error("not a RIFF/WAVE file ({0})")]
    NotWav(&'static str),
    /// Not mono 16-bit PCM.
    #[error("unsupported WAV format: {0}")]
    Format(String),
}

/// Reads a mono 16-bit PCM WAV: (sample rate, samples).
pub fn parse_wav(b: &[u8]) -> Result<(u32, Vec<i16>), WavError> {
    if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return Err(WavError::NotWav("no RIFF/WAVE header"));
    }
    let mut off = 12;
    let mut rate = None;
    while off + 8 <= b.len() {
        let id = &b[off..off + 4];
        let len = u32::from_le_bytes([b[off + 4], b[off + 5], b[off + 6], b[off + 7]]) as usize;
        let body = off + 8;
        let end = body.saturating_add(len).min(b.len());
        let chunk = &b[body..end];
        match id {
            b"fmt " => {
                if chunk.len() < 16 {
                    return Err(WavError::NotWav("short fmt chunk"));
                }
                let fmt = u16::from_le_bytes([chunk[0], chunk[1]]);
                let ch = u16::from_le_bytes([chunk[2], chunk[3]]);
                let bits = u16::from_le_bytes([chunk[14], chunk[15]]);
                if (fmt, ch, bits) != (1, 1, 16) {
                    return Err(WavError::Format(format!(
                        "format {fmt}, {ch} channels, {bits} bits (want PCM, 1, 16)"
                    )));
                }
                rate = Some(u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]));
            }
            b"data" => {
                let rate = rate.ok_or(WavError::NotWav("data before fmt"))?;
                let pcm = chunk
                    .chunks_exact(2)
                    .map(|c| i16::from_le_bytes([c[0], c[1]]))
                    .collect();
                return Ok((rate, pcm));
            }
            _ => {}
        }
        off = body.saturating_add(len + (len & 1));
    }
    Err(WavError::NotWav("no data chunk"))
}

/// A command to a horn (`horn/{id}/cmd`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Command {
    /// Fetch `url` and play it at `t0`.
    Play {
        /// Command id, echoed in the status reports.
        id: String,
        /// Where the WAV is.
        url: String,
        /// Absolute start, RFC 3339 UTC with milliseconds.
        t0: String,
        /// Volume 0..=100.
        volume: u8,
        /// Length of the audio.
        duration_ms: u64,
    },
    /// Answer with a `pong` status.
    Ping {
        /// Command id, echoed in the `pong`.
        #[serde(default)]
        id: String,
    },
    /// Stop the `play` command `id` at once (its broadcast was cancelled);
    /// the horn answers with a `stopped` status carrying the same id.
    Stop {
        /// The id of the `play` command to stop.
        id: String,
    },
}

impl Command {
    /// The JSON the horn receives.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a command (what a horn does).
    pub fn parse(b: &[u8]) -> Result<Command, String> {
        serde_json::from_slice(b).map_err(|e| format!("bad horn command: {e}"))
    }
}

/// A horn's status report (`horn/{id}/status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The command it answers.
    #[serde(default)]
    pub id: String,
    /// `downloading`, `playing`, `done`, `error`, `stopped` or `pong`.
    pub state: String,
    /// When (RFC 3339); for `playing`, the horn's actual start.
    #[serde(default)]
    pub at: Option<String>,
    /// Free text (the error).
    #[serde(default)]
    pub detail: Option<String>,
}

impl Status {
    /// Parses a report; what came back is in the error.
    pub fn parse(b: &[u8]) -> Result<Status, String> {
        serde_json::from_slice(b).map_err(|e| {
            format!(
                "bad horn status {:?}: {e}",
                String::from_utf8_lossy(&b[..b.len().min(200)])
            )
        })
    }

    /// The report as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// `at`, parsed.
    pub fn at_time(&self) -> Option<OffsetDateTime> {
        self.at.as_deref().and_then(parse_rfc3339)
    }
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-23T01:02:03.456Z`.
pub fn rfc3339_ms(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Parses RFC 3339.
pub fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// What an audio request finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The WAV.
    Found(Arc<Vec<u8>>),
    /// A token that was valid once (HTTP 410).
    Expired,
    /// Any other path (HTTP 404).
    NotFound,
}

/// Audio served under `/audio/{token}.wav`, each valid until its deadline.
/// Time is passed in, so tests need no clock.
#[derive(Debug, Default)]
pub struct TokenTable {
    entries: HashMap<String, (Instant, Arc<Vec<u8>>)>,
}

impl TokenTable {
    /// Serves `wav` under `token` until `valid_until`; returns the path.
    pub fn insert(&mut self, token: &str, wav: Arc<Vec<u8>>, valid_until: Instant) -> String {
        self.entries.insert(token.to_string(), (valid_until, wav));
        format!("/audio/{token}.wav")
    }

    /// What `path` finds at `now`. Expired entries older than a further
    /// grace period are forgotten (then 404).
    pub fn lookup(&mut self, path: &str, now: Instant) -> Lookup {
        self.entries
            .retain(|_, (until, _)| now < *until + TOKEN_GRACE * 10);
        let Some(token) = path
            .strip_prefix("/audio/")
            .and_then(|p| p.strip_suffix(".wav"))
        else {
            return Lookup::NotFound;
        };
        match self.entries.get(token) {
            Some((until, wav)) if now < *until => Lookup::Found(wav.clone()),
            Some(_) => Lookup::Expired,
            None => Lookup::NotFound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The WAV we write reads back identically.
    #[test]
    fn wav_round_trip() {
        let pcm: Vec<i16> = (0..800).map(|i| (i * 37 % 2000 - 1000) as i16).collect();
        let w = wav_bytes(&pcm, 8000);
        assert_eq!(w.len(), 44 + 1600);
        assert_eq!(parse_wav(&w).unwrap(), (8000, pcm));
        assert!(matches!(
            parse_wav(b"RIFF....WAVX"),
            Err(WavError::NotWav(_))
        ));
        let mut stereo = wav_bytes(&[0; 4], 8000);
        stereo[22] = 2;
        assert!(matches!(parse_wav(&stereo), Err(WavError::Format(_))));
        assert!(parse_wav(&w[..40]).is_err());
    }

    /// The play command carries every field the horn needs; `stop` names
    /// the play it stops.
    #[test]
    fn play_command_json() {
        let c = Command::Play {
            id: "abc".into(),
            url: "http://127.0.0.1:1/audio/t.wav".into(),
            t0: rfc3339_ms(time::macros::datetime!(2026-11-23 01:02:03.4567 UTC)),
            volume: 80,
            duration_ms: 1000,
        };
        let v: serde_json::Value = serde_json::from_str(&c.to_json()).unwrap();
        assert_eq!(v["cmd"], "play");
        assert_eq!(v["t0"], "2026-11-23T01:02:03.456Z");
        assert_eq!(v["volume"], 80);
        assert_eq!(v["duration_ms"], 1000);
        assert_eq!(Command::parse(c.to_json().as_bytes()).unwrap(), c);
        assert_eq!(
            Command::parse(br#"{"cmd":"ping"}"#).unwrap(),
            Command::Ping { id: String::new() }
        );
        assert!(Command::parse(br#"{"cmd":"explode"}"#).is_err());
        let stop = Command::Stop { id: "abc".into() };
        assert_eq!(stop.to_json(), r#"{"cmd":"stop","id":"abc"}"#);
        assert_eq!(Command::parse(stop.to_json().as_bytes()).unwrap(), stop);
        assert!(
            Command::parse(br#"{"cmd":"stop"}"#).is_err(),
            "stop names the play"
        );
    }

    /// Status reports parse; `at` is the horn's actual start.
    #[test]
    fn status_parse() {
        let s = Status::parse(
            br#"{"id":"a","state":"playing","at":"2026-11-23T01:02:03.456Z","detail":null}"#,
        )
        .unwrap();
        assert_eq!(s.state, "playing");
        assert_eq!(s.at_time().unwrap().millisecond(), 456);
        let e = Status::parse(b"not json").unwrap_err();
        assert!(e.contains("not json"), "{e}");
    }

    /// A token serves until its deadline, then 410; other paths 404.
    #[test]
    fn token_expiry() {
        let t0 = Instant::now();
        let mut t = TokenTable::default();
        let wav = Arc::new(vec![1, 2, 3]);
        let path = t.insert("tok", wav.clone(), t0 + Duration::from_secs(61));
        assert_eq!(path, "/audio/tok.wav");
        assert_eq!(t.lookup(&path, t0), Lookup::Found(wav));
        assert_eq!(
            t.lookup(&path, t0 + Duration::from_secs(61)),
            Lookup::Expired
        );
        assert_eq!(t.lookup("/audio/other.wav", t0), Lookup::NotFound);
        assert_eq!(t.lookup("/etc/passwd", t0), Lookup::NotFound);
        assert_eq!(t.lookup("/audio/tok", t0), Lookup::NotFound);
    }
}
