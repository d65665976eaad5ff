//! Camera health: the status ladder and the verdict, as a pure state machine.
//!
//! Observations (a cheap ONVIF clock check, an authenticated call, an RTSP
//! DESCRIBE, a timed stream sample) go in with the time they were made; the
//! state says how far up the ladder the camera got and what the operator
//! should think of it. No clocks are read and no IO happens here (STYLE.md
//! §1, §4): the daemon's poller (`tgw::cameras::poller`) does that and feeds the results in.
//!
//! Ladder: `unreachable < tcp-reachable < onvif-up < authenticated < streaming`.
//! Verdict: `ok`, `degraded(reasons)` or `offline`, with hysteresis: a camera
//! becomes offline only after `offline_after` consecutive missed checks, and
//! a frozen stream counts as stalled only when no frame arrived for
//! `stall_after`.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// How far up the ladder a camera got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rung {
    /// Nothing answers.
    Unreachable,
    /// A TCP connection opens but ONVIF does not answer sensibly.
    TcpReachable,
    /// ONVIF answers unauthenticated calls (GetSystemDateAndTime).
    OnvifUp,
    /// Our credentials are accepted.
    Authenticated,
    /// Frames arrive on its stream.
    Streaming,
}

impl Rung {
    /// Stable label (metrics, MQTT, API).
    pub fn as_str(self) -> &'static str {
        match self {
            Rung::Unreachable => "unreachable",
            Rung::TcpReachable => "tcp-reachable",
            Rung::OnvifUp => "onvif-up",
            Rung::Authenticated => "authenticated",
            Rung::Streaming => "streaming",
        }
    }
}

/// Why a camera is degraded. Labels are bounded (no addresses or values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Its clock is more than the allowed drift away from ours.
    ClockDrift,
    /// ONVIF or RTSP refused our credentials.
    CredentialsRejected,
    /// The stream is refused or has no usable video.
    StreamUnavailable,
    /// The stream is open but no frame arrived for the stall period.
    Stalled,
    /// Measured fps far below the profile's configuration.
    LowFps,
    /// Measured bitrate far below the profile's configuration.
    LowBitrate,
    /// RTP loss above the threshold.
    RtpLoss,
    /// The stream's codec differs from the ONVIF profile's.
    CodecMismatch,
    /// No snapshot URI or the snapshot cannot be fetched.
    SnapshotUnavailable,
    /// The camera reports its view covered, sprayed, turned or defocused
    /// (ONVIF tamper / global scene change events), while it lasts.
    Tamper,
    /// The camera reports its video signal lost (ONVIF SignalLoss), while
    /// it lasts.
    VideoLoss,
    /// The ONVIF inventory (profiles, stream URIs) could not be taken; the
    /// cheap checks still run. The kind is in `Health::inventory_error_kind`.
    InventoryFailed,
}

impl Reason {
    /// Stable label.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::ClockDrift => "clock-drift",
            Reason::CredentialsRejected => "credentials-rejected",
            Reason::StreamUnavailable => "stream-unavailable",
            Reason::Stalled => "stalled",
            Reason::LowFps => "low-fps",
            Reason::LowBitrate => "low-bitrate",
            Reason::RtpLoss => "rtp-loss",
            Reason::CodecMismatch => "codec-mismatch",
            Reason::SnapshotUnavailable => "snapshot-unavailable",
            Reason::Tamper => "tamper",
            Reason::VideoLoss => "video-loss",
            Reason::InventoryFailed => "inventory-failed",
        }
    }
}

/// The operator's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", content = "reasons", rename_all = "lowercase")]
pub enum Verdict {
    /// Everything checked is fine.
    Ok,
    /// Reachable but something is wrong.
    Degraded(BTreeSet<Reason>),
    /// Missed `offline_after` checks in a row.
    Offline,
}

impl Verdict {
    /// `ok`, `degraded` or `offline`.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Degraded(_) => "degraded",
            Verdict::Offline => "offline",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Degraded(r) => {
                let r: Vec<&str> = r.iter().map(|r| r.as_str()).collect();
                write!(f, "degraded({})", r.join(","))
            }
            v => f.write_str(v.label()),
        }
    }
}

/// Thresholds (from `[health]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// Consecutive missed checks before offline.
    pub offline_after: u32,
    /// No frames for this long = stalled.
    pub stall_after: Duration,
    /// Allowed clock drift.
    pub max_clock_drift: Duration,
    /// Measured fps below this fraction of the configured fps = low-fps.
    pub min_fps_ratio: f64,
    /// Measured bitrate below this fraction of the configured limit = low-bitrate.
    pub min_bitrate_ratio: f64,
    /// RTP loss above this percentage = rtp-loss.
    pub max_loss_pct: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            offline_after: 3,
            stall_after: Duration::from_secs(20),
            max_clock_drift: Duration::from_secs(5),
            min_fps_ratio: 0.5,
            min_bitrate_ratio: 0.2,
            max_loss_pct: 2.0,
        }
    }
}

/// What a cheap check found.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckResult {
    /// GetSystemDateAndTime answered; camera clock minus ours.
    OnvifUp {
        /// Offset in ms.
        clock_offset_ms: i64,
    },
    /// A TCP connection opened but the answer was not ONVIF.
    TcpOnly {
        /// Error kind label.
        kind: String,
        /// Detail (no secrets).
        detail: String,
    },
    /// Nothing answered (refused, timed out).
    Unreachable {
        /// Error kind label.
        kind: String,
        /// Detail (no secrets).
        detail: String,
    },
}

/// What a timed stream sample measured.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StreamSample {
    /// Frames received.
    pub frames: u64,
    /// Measured frames per second.
    pub fps: f64,
    /// Measured kbit/s.
    pub bitrate_kbps: f64,
    /// RTP packets lost, in percent of expected.
    pub loss_pct: f64,
    /// Time to the first frame.
    pub time_to_first_frame_ms: Option<u64>,
    /// Codec seen on the wire (`H264`, `H265`, …).
    pub codec: Option<String>,
}

/// What the ONVIF profile says the stream should be.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Expected {
    /// Configured frame rate.
    pub fps: Option<f64>,
    /// Configured bitrate limit, kbit/s.
    pub bitrate_kbps: Option<f64>,
    /// Configured encoding.
    pub codec: Option<String>,
}

/// One observation, stamped with when it was made.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// The periodic cheap check.
    Check(CheckResult),
    /// An authenticated call (ONVIF or RTSP): accepted or not.
    Auth {
        /// Accepted.
        ok: bool,
    },
    /// RTSP DESCRIBE / stream setup.
    Stream(Result<(), StreamFailure>),
    /// A timed sample on the stream.
    Sample {
        /// What was measured; `None` when no frame arrived in the window.
        sample: Option<StreamSample>,
        /// What the profile promised.
        expected: Expected,
    },
    /// Snapshot URI and fetch.
    Snapshot {
        /// Available.
        ok: bool,
    },
    /// A condition the camera raises itself (an ONVIF event): `Tamper` or
    /// `VideoLoss` starting (`active`) or ending. Other reasons are ignored.
    Event {
        /// `Reason::Tamper` or `Reason::VideoLoss`.
        reason: Reason,
        /// The condition holds now.
        active: bool,
    },
    /// The ONVIF inventory was taken (`Ok`) or failed with an error kind
    /// label (`Err("auth")`, `Err("timeout")`, ...).
    Inventory(Result<(), String>),
}

/// Why the stream could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StreamFailure {
    /// Refused, no video, protocol error.
    Unavailable,
    /// Credentials refused by the RTSP server.
    AuthRejected,
}

/// The health of one camera.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// Current rung.
    pub rung: Rung,
    /// Since when on this rung.
    #[serde(with = "time::serde::rfc3339")]
    pub rung_since: OffsetDateTime,
    /// Current verdict.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Since when this verdict.
    #[serde(with = "time::serde::rfc3339")]
    pub verdict_since: OffsetDateTime,
    /// Last time anything answered.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_seen: Option<OffsetDateTime>,
    /// Consecutive failed checks.
    pub consecutive_failures: u32,
    /// Kind of the last error.
    pub last_error_kind: Option<String>,
    /// The last error (no secrets).
    pub last_error: Option<String>,
    /// Camera clock minus ours, ms.
    pub clock_offset_ms: Option<i64>,
    /// The last stream sample.
    pub last_sample: Option<StreamSample>,
    /// When the last frame was seen.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_frame_at: Option<OffsetDateTime>,
    // Facts the verdict is derived from (kept so a restart resumes them).
    #[serde(default)]
    auth_ok: Option<bool>,
    #[serde(default)]
    stream: Option<StreamFailure>,
    #[serde(default)]
    stalled: bool,
    #[serde(default)]
    quality: BTreeSet<Reason>,
    #[serde(default)]
    snapshot_ok: Option<bool>,
    /// Conditions the camera raised itself that still hold (tamper, video loss).
    #[serde(default)]
    events: BTreeSet<Reason>,
    /// Why the last inventory failed (error kind label); `None` once it succeeds.
    #[serde(default)]
    pub inventory_error_kind: Option<String>,
}

/// A change worth recording and publishing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// Verdict before.
    pub from: Verdict,
    /// Verdict after.
    pub to: Verdict,
    /// Rung before.
    pub rung_from: Rung,
    /// Rung after.
    pub rung_to: Rung,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl Health {
    /// A camera we know nothing about yet (counted as unreachable, verdict
    /// offline until the first check answers).
    pub fn new(now: OffsetDateTime) -> Self {
        Self {
            rung: Rung::Unreachable,
            rung_since: now,
            verdict: Verdict::Offline,
            verdict_since: now,
            last_seen: None,
            consecutive_failures: 0,
            last_error_kind: None,
            last_error: None,
            clock_offset_ms: None,
            last_sample: None,
            last_frame_at: None,
            auth_ok: None,
            stream: None,
            stalled: false,
            quality: BTreeSet::new(),
            snapshot_ok: None,
            events: BTreeSet::new(),
            inventory_error_kind: None,
        }
    }

    /// Applies an observation made at `now`; returns a transition when the
    /// verdict or rung changed.
    pub fn observe(
        &mut self,
        obs: Observation,
        now: OffsetDateTime,
        th: &Thresholds,
    ) -> Option<Transition> {
        let (old_v, old_r) = (self.verdict.clone(), self.rung);
        match obs {
            Observation::Check(r) => match r {
                CheckResult::OnvifUp { clock_offset_ms } => {
                    self.consecutive_failures = 0;
                    self.last_seen = Some(now);
                    self.clock_offset_ms = Some(clock_offset_ms);
                    self.last_error_kind = None;
                    self.last_error = None;
                }
                CheckResult::TcpOnly { kind, detail }
                | CheckResult::Unreachable { kind, detail } => {
                    self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                    self.last_error_kind = Some(kind);
                    self.last_error = Some(detail);
                    if self.consecutive_failures >= th.offline_after {
                        // Everything above the failed rung is stale now.
                        self.auth_ok = None;
                        self.stream = None;
                        self.stalled = false;
                        self.quality.clear();
                    }
                }
            },
            Observation::Auth { ok } => {
                self.auth_ok = Some(ok);
                if ok {
                    self.last_seen = Some(now);
                }
            }
            Observation::Stream(r) => {
                self.stream = r.err();
                if self.stream == Some(StreamFailure::AuthRejected) {
                    self.auth_ok = Some(false);
                }
                if r.is_ok() {
                    self.last_seen = Some(now);
                }
            }
            Observation::Sample { sample, expected } => {
                self.quality.clear();
                match sample {
                    Some(s) if s.frames > 0 => {
                        self.last_frame_at = Some(now);
                        self.stalled = false;
                        self.stream = None;
                        self.last_seen = Some(now);
                        if let Some(want) = expected.fps.filter(|f| *f > 0.0)
                            && s.fps < want * th.min_fps_ratio
                        {
                            self.quality.insert(Reason::LowFps);
                        }
                        if let Some(want) = expected.bitrate_kbps.filter(|b| *b > 0.0)
                            && s.bitrate_kbps < want * th.min_bitrate_ratio
                        {
                            self.quality.insert(Reason::LowBitrate);
                        }
                        if s.loss_pct > th.max_loss_pct {
                            self.quality.insert(Reason::RtpLoss);
                        }
                        if let (Some(want), Some(got)) = (&expected.codec, &s.codec)
                            && !codec_eq(want, got)
                        {
                            self.quality.insert(Reason::CodecMismatch);
                        }
                        self.last_sample = Some(s);
                    }
                    _ => {
                        // No frame in this window: stalled once the last frame
                        // (or, never having seen one, the stream's first
                        // attempt) is older than the stall period.
                        let since = self.last_frame_at.unwrap_or(self.rung_since);
                        let quiet = (now - since).unsigned_abs();
                        self.stalled = quiet >= th.stall_after;
                        self.last_sample = None;
                    }
                }
            }
            Observation::Snapshot { ok } => self.snapshot_ok = Some(ok),
            Observation::Event { reason, active } => {
                if matches!(reason, Reason::Tamper | Reason::VideoLoss) {
                    if active {
                        self.events.insert(reason);
                    } else {
                        self.events.remove(&reason);
                    }
                }
            }
            Observation::Inventory(r) => self.inventory_error_kind = r.err(),
        }
        self.derive(now, th);
        (old_v != self.verdict || old_r != self.rung).then(|| Transition {
            from: old_v,
            to: self.verdict.clone(),
            rung_from: old_r,
            rung_to: self.rung,
            at: now,
        })
    }

    fn derive(&mut self, now: OffsetDateTime, th: &Thresholds) {
        let reachable = self.last_seen.is_some() && self.consecutive_failures == 0;
        let rung = if !reachable {
            match self.last_error_kind.as_deref() {
                _ if self.last_seen.is_none() && self.consecutive_failures == 0 => {
                    Rung::Unreachable
                }
                Some(k) if tcp_level(k) => Rung::TcpReachable,
                _ => Rung::Unreachable,
            }
        } else if self.auth_ok != Some(true) {
            Rung::OnvifUp
        } else if self.last_frame_at.is_some() && self.stream.is_none() && !self.stalled {
            Rung::Streaming
        } else {
            Rung::Authenticated
        };
        if rung != self.rung {
            self.rung = rung;
            self.rung_since = now;
        }
        let verdict = if self.consecutive_failures >= th.offline_after || self.last_seen.is_none() {
            Verdict::Offline
        } else {
            let mut reasons = self.quality.clone();
            if self
                .clock_offset_ms
                .is_some_and(|o| o.unsigned_abs() > th.max_clock_drift.as_millis() as u64)
            {
                reasons.insert(Reason::ClockDrift);
            }
            if self.auth_ok == Some(false) {
                reasons.insert(Reason::CredentialsRejected);
            }
            if self.stream == Some(StreamFailure::Unavailable) {
                reasons.insert(Reason::StreamUnavailable);
            }
            if self.stalled {
                reasons.insert(Reason::Stalled);
            }
            if self.snapshot_ok == Some(false) {
                reasons.insert(Reason::SnapshotUnavailable);
            }
            if self.inventory_error_kind.is_some() && self.auth_ok != Some(false) {
                // A refused login already says why; otherwise say the
                // inventory is what is missing.
                reasons.insert(Reason::InventoryFailed);
            }
            reasons.extend(self.events.iter().copied());
            if reasons.is_empty() {
                Verdict::Ok
            } else {
                Verdict::Degraded(reasons)
            }
        };
        if verdict != self.verdict {
            self.verdict = verdict;
            self.verdict_since = now;
        }
    }
}

/// Error kinds that prove a TCP connection opened (the camera is there but
/// ONVIF is not answering properly).
fn tcp_level(kind: &str) -> bool {
    matches!(
        kind,
        "http" | "parse" | "fault" | "protocol" | "too_large" | "timeout-after-connect"
    )
}

fn codec_eq(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.to_ascii_uppercase()
            .replace(['.', '-'], "")
            .replace("AVC", "H264")
            .replace("HEVC", "H265")
    };
    norm(a) == norm(b)
}

#[cfg(test)]
mod tests;
