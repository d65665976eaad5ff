//! RTSP IO on retina: DESCRIBE-only metadata and a timed PLAY sample.
//!
//! The thin IO half of [`crate::rtsp`]: [`describe`] sends DESCRIBE (with
//! credentials from the arguments or the URL's userinfo) and reads the SDP
//! with [`crate::rtsp::parse_sdp`], filling gaps from retina's own parse;
//! [`sample`] SETUPs the first video track, PLAYs, and measures frames for a
//! window. Every await has a timeout ([`RtspOptions::timeout`]); a stream that
//! connects but never sends a frame is [`RtspErrorKind::NoFrames`], not a hang.
//! Errors carry `host:port` only; credentials never appear in errors, `Debug`
//! or logs.

use std::time::Duration;

use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::local_error::{self, LocalResource};
use crate::onvif_client::Credentials;
use crate::rtsp::{self, StreamMetadata, Track};

/// RTP transport to request in SETUP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// Interleaved on the RTSP TCP connection (default: works through NAT and
    /// firewalls, no loss from the network).
    #[default]
    Tcp,
    /// RTP over UDP (shows real network loss).
    Udp,
}

/// Probe settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtspOptions {
    /// Timeout of each RTSP exchange, and of the wait for the first frame.
    /// Default 5 s.
    pub timeout: Duration,
    /// How long [`sample`] measures after the first frame. Default 3 s.
    pub window: Duration,
    /// RTP transport for [`sample`]. Default TCP.
    pub transport: Transport,
}

impl Default for RtspOptions {
    fn default() -> Self {
        RtspOptions {
            timeout: Duration::from_secs(5),
            window: Duration::from_secs(3),
            transport: Transport::Tcp,
        }
    }
}

/// What went wrong, in a form that drives retries and metric labels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtspErrorKind {
    /// An exchange (or the wait for the first frame's connection) did not
    /// finish within [`RtspOptions::timeout`].
    #[error("timed out")]
    Timeout,
    /// TCP connect failed.
    #[error("connect failed: {0}")]
    Connect(String),
    /// The probe failed on our side: the gateway is out of a local resource
    /// (open files, socket buffers, memory, local ports). Says nothing
    /// about the camera ([`crate::local_error`]).
    #[error("the gateway's own limit: {0}")]
    Local(LocalResource),
    /// The server answered with a non-success status (other than 401/403).
    #[error("refused with RTSP status {status}")]
    Refused {
        /// The RTSP status code.
        status: u16,
    },
    /// 401/403: missing or wrong credentials.
    #[error("credentials refused")]
    AuthRejected,
    /// Anything that does not follow the protocol (garbage, bad SDP, bad RTP).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The SDP is over [`rtsp::MAX_SDP_BYTES`].
    #[error("response over the size limit")]
    TooLarge,
    /// The stream has no video track we can sample.
    #[error("no video track")]
    NoVideo,
    /// PLAY succeeded but no frame arrived within the timeout (a frozen stream).
    #[error("no frames within the timeout")]
    NoFrames,
}

/// A failed RTSP probe: which camera (host:port), which operation, what happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} to {peer}: {kind}")]
pub struct RtspError {
    /// `host:port` of the camera (never userinfo).
    pub peer: String,
    /// `DESCRIBE`, `SETUP`, `PLAY`, `sample` or `url`.
    pub operation: &'static str,
    /// What happened.
    pub kind: RtspErrorKind,
}

impl RtspError {
    /// A short, bounded label for metrics: `timeout`, `connect`, `local`,
    /// `refused`, `auth`, `protocol`, `too_large`, `no_video`, `no_frames`.
    pub fn kind_label(&self) -> &'static str {
        match self.kind {
            RtspErrorKind::Timeout => "timeout",
            RtspErrorKind::Connect(_) => "connect",
            RtspErrorKind::Local(_) => "local",
            RtspErrorKind::Refused { .. } => "refused",
            RtspErrorKind::AuthRejected => "auth",
            RtspErrorKind::Protocol(_) => "protocol",
            RtspErrorKind::TooLarge => "too_large",
            RtspErrorKind::NoVideo => "no_video",
            RtspErrorKind::NoFrames => "no_frames",
        }
    }
}

/// What a timed PLAY showed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleReport {
    /// Transport used.
    pub transport: Transport,
    /// From the start of the call (before connecting) to the first frame.
    pub time_to_first_frame_ms: u64,
    /// Complete video frames received in the window (including the first).
    pub frames: u64,
    /// Frames per second by arrival time (first to last frame).
    pub measured_fps: Option<f32>,
    /// Video payload bitrate over the window, kbit/s.
    pub bitrate_kbps: f32,
    /// Mean frames between keyframes (needs two keyframes in the window).
    pub keyframe_interval_frames: Option<f32>,
    /// Mean RTP-timestamp milliseconds between keyframes.
    pub keyframe_interval_ms: Option<f32>,
    /// RTP packets lost (sum of retina's per-frame loss).
    pub rtp_loss_packets: u64,
    /// Milliseconds from the last frame to the end of the sample.
    pub last_frame_age_ms: u64,
    /// Video codec (`H264`, `H265`, `MJPEG`).
    pub codec: String,
    /// Width from the in-band parameters.
    pub width: Option<u32>,
    /// Height from the in-band parameters.
    pub height: Option<u32>,
}

/// A checked URL: without userinfo, with its peer and credentials apart.
struct Target {
    url: url::Url,
    peer: String,
    creds: Option<retina::client::Credentials>,
    /// Strings to scrub from any error text (user name, password).
    secrets: Vec<String>,
}

fn target(url: &str, creds: Option<&Credentials>) -> Result<Target, RtspError> {
    let bad = |why: &str| RtspError {
        peer: peer_of_str(url),
        operation: "url",
        kind: RtspErrorKind::Protocol(why.to_string()),
    };
    let mut u = url::Url::parse(url.trim()).map_err(|_| bad("invalid URL"))?;
    if !matches!(u.scheme(), "rtsp" | "rtsps") {
        return Err(bad("not an rtsp:// URL"));
    }
    let host = u.host_str().ok_or_else(|| bad("URL without host"))?;
    let peer = format!("{host}:{}", u.port().unwrap_or(554));
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let url_user = decode(u.username());
    let url_pass = u.password().map(decode);
    let creds = match creds {
        Some(c) => Some(retina::client::Credentials {
            username: c.username.clone(),
            password: c.password.expose().to_string(),
        }),
        None if !url_user.is_empty() => Some(retina::client::Credentials {
            username: url_user,
            password: url_pass.unwrap_or_default(),
        }),
        None => None,
    };
    let _ = u.set_username("");
    let _ = u.set_password(None);
    let secrets = creds
        .iter()
        .flat_map(|c| [c.username.clone(), c.password.clone()])
        .filter(|s| s.len() >= 3)
        .collect();
    Ok(Target {
        url: u,
        peer,
        creds,
        secrets,
    })
}

/// `host:port` from a URL string we could not parse, without userinfo.
fn peer_of_str(url: &str) -> String {
    let redacted = rtsp::redact_url(url);
    let rest = redacted.split_once("://").map_or(&*redacted, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority.chars().take(64).collect()
}

/// The local resource a retina error's text says ran out. retina keeps
/// the io error to itself (no `source()`), so its first line is read:
/// one of its io-error messages ending with std's `(os error N)`. Text
/// from the camera (an RTSP framing error's description) is never read.
fn local_of_retina(text: &str) -> Option<LocalResource> {
    const IO_PREFIXES: [&str; 4] = [
        "Unable to connect to RTSP server: ",
        "Error reading from RTSP peer: ",
        "Error writing to RTSP peer: ",
        "Error receiving UDP packet: ",
    ];
    let first = text.lines().next().unwrap_or("").trim_end();
    let io = IO_PREFIXES.iter().find_map(|p| first.strip_prefix(p))?;
    let tail = io.rfind("(os error ").map(|i| &io[i..])?;
    local_error::of_text(tail)
}

impl Target {
    fn err(&self, operation: &'static str, kind: RtspErrorKind) -> RtspError {
        RtspError {
            peer: self.peer.clone(),
            operation,
            kind,
        }
    }

    /// Maps a retina error to our kinds, scrubbing credentials from its text.
    fn map(&self, operation: &'static str, e: &retina::Error) -> RtspError {
        let kind = match e.status_code() {
            Some(401 | 403) => RtspErrorKind::AuthRejected,
            // A 2xx that retina could not use (e.g. an unparseable SDP).
            Some(status) if !(200..300).contains(&status) => RtspErrorKind::Refused { status },
            _ => {
                let text = e.to_string();
                if let Some(r) = local_of_retina(&text) {
                    return self.err(operation, RtspErrorKind::Local(r));
                }
                let first = text.lines().next().unwrap_or("").trim();
                let mut first: String = first.chars().take(200).collect();
                for s in &self.secrets {
                    first = first.replace(s.as_str(), "***");
                }
                if let Some(rest) = first.strip_prefix("Unable to connect to RTSP server: ") {
                    RtspErrorKind::Connect(rest.to_string())
                } else if first == "Timeout" {
                    RtspErrorKind::Timeout
                } else {
                    RtspErrorKind::Protocol(first)
                }
            }
        };
        self.err(operation, kind)
    }

    fn session_options(&self) -> retina::client::SessionOptions {
        retina::client::SessionOptions::default()
            .creds(self.creds.clone())
            .user_agent(concat!("tgw/", env!("CARGO_PKG_VERSION")).to_string())
    }

    async fn describe(
        &self,
        opts: &RtspOptions,
    ) -> Result<retina::client::Session<retina::client::Described>, RtspError> {
        match tokio::time::timeout(
            opts.timeout,
            retina::client::Session::describe(self.url.clone(), self.session_options()),
        )
        .await
        {
            Err(_) => Err(self.err("DESCRIBE", RtspErrorKind::Timeout)),
            Ok(Err(e)) => Err(self.map("DESCRIBE", &e)),
            Ok(Ok(s)) => Ok(s),
        }
    }
}

/// Encoding name as our codec string (`H264`, `H265`, `MJPEG`, ...).
fn codec_of(stream: &retina::client::Stream) -> String {
    match stream.encoding_name().to_ascii_lowercase().as_str() {
        "h264" => "H264".into(),
        "h265" => "H265".into(),
        "jpeg" => "MJPEG".into(),
        "mpeg4-generic" => "AAC".into(),
        "vnd.onvif.metadata" => "ONVIF-METADATA".into(),
        other => other.to_ascii_uppercase(),
    }
}

/// Fills what our SDP parse lacks from retina's parse of the same SDP.
fn merge_retina(meta: &mut StreamMetadata, streams: &[retina::client::Stream]) {
    let mut used = vec![false; meta.tracks.len()];
    for s in streams {
        let codec = codec_of(s);
        let slot = meta.tracks.iter().enumerate().position(|(i, t)| {
            !used[i] && t.payload_type == s.rtp_payload_type() && t.codec == codec
        });
        let Some(i) = slot else { continue };
        used[i] = true;
        let t: &mut Track = &mut meta.tracks[i];
        if let Some(retina::codec::ParametersRef::Video(v)) = s.parameters() {
            if t.width.is_none() {
                let (w, h) = v.pixel_dimensions();
                if w > 0 && h > 0 {
                    t.width = Some(w);
                    t.height = Some(h);
                }
            }
            if t.rfc6381.is_none() && !v.rfc6381_codec().is_empty() {
                t.rfc6381 = Some(v.rfc6381_codec().to_string());
            }
            if t.fps.is_none()
                && let Some((num, den)) = v.frame_rate()
                && num > 0
            {
                t.fps = Some(den as f32 / num as f32);
            }
        }
        if t.fps.is_none() {
            t.fps = s.framerate().filter(|f| f.is_finite() && *f > 0.0);
        }
    }
}

/// DESCRIBE only: the stream's metadata (codec, resolution, fps, profile,
/// audio, ONVIF metadata tracks, server banner). Credentials come from `creds`
/// or else from the URL's userinfo.
pub async fn describe(
    url: &str,
    creds: Option<&Credentials>,
    opts: &RtspOptions,
) -> Result<StreamMetadata, RtspError> {
    let t = target(url, creds)?;
    let session = t.describe(opts).await?;
    metadata_of(&t, &session)
}

fn metadata_of(
    t: &Target,
    session: &retina::client::Session<retina::client::Described>,
) -> Result<StreamMetadata, RtspError> {
    let mut meta = rtsp::parse_sdp(session.sdp()).map_err(|e| match e {
        rtsp::ParseError::TooLarge { .. } => t.err("DESCRIBE", RtspErrorKind::TooLarge),
        other => t.err("DESCRIBE", RtspErrorKind::Protocol(other.to_string())),
    })?;
    if let Some(tool) = session.tool() {
        meta.server = Some(tool.to_string());
    }
    merge_retina(&mut meta, session.streams());
    Ok(meta)
}

/// Running figures while sampling.
#[derive(Default)]
struct Tally {
    frames: u64,
    bytes: u64,
    loss: u64,
    first_at: Option<Instant>,
    last_at: Option<Instant>,
    keyframes: Vec<(u64, f64)>, // (frame index, RTP seconds)
}

/// PLAYs the first video track for [`RtspOptions::window`] after the first
/// frame and reports fps, bitrate, keyframe interval and RTP loss.
pub async fn sample(
    url: &str,
    creds: Option<&Credentials>,
    opts: &RtspOptions,
) -> Result<SampleReport, RtspError> {
    let started = Instant::now();
    let t = target(url, creds)?;
    let mut session = t.describe(opts).await?;
    if rtsp::parse_sdp(session.sdp()).is_err_and(|e| matches!(e, rtsp::ParseError::TooLarge { .. }))
    {
        return Err(t.err("DESCRIBE", RtspErrorKind::TooLarge));
    }
    let Some(idx) = session.streams().iter().position(|s| {
        s.media() == "video" && matches!(s.encoding_name(), "h264" | "h265" | "jpeg")
    }) else {
        return Err(t.err("DESCRIBE", RtspErrorKind::NoVideo));
    };
    let transport = match opts.transport {
        Transport::Tcp => retina::client::Transport::Tcp(Default::default()),
        Transport::Udp => retina::client::Transport::Udp(Default::default()),
    };
    let setup = session.setup(
        idx,
        retina::client::SetupOptions::default().transport(transport),
    );
    match tokio::time::timeout(opts.timeout, setup).await {
        Err(_) => return Err(t.err("SETUP", RtspErrorKind::Timeout)),
        Ok(Err(e)) => return Err(t.map("SETUP", &e)),
        Ok(Ok(())) => {}
    }
    let play = session.play(retina::client::PlayOptions::default());
    let playing = match tokio::time::timeout(opts.timeout, play).await {
        Err(_) => return Err(t.err("PLAY", RtspErrorKind::Timeout)),
        Ok(Err(e)) => return Err(t.map("PLAY", &e)),
        Ok(Ok(p)) => p,
    };
    let mut demuxed = playing.demuxed().map_err(|e| t.map("PLAY", &e))?;

    let mut tally = Tally::default();
    let first_deadline = Instant::now() + opts.timeout;
    let end = loop {
        let deadline = match tally.first_at {
            Some(first) => first + opts.window,
            None => first_deadline,
        };
        let item = match tokio::time::timeout_at(deadline, demuxed.next()).await {
            Err(_) => break Instant::now(),
            Ok(None) => break Instant::now(),
            Ok(Some(Err(e))) => {
                if tally.frames == 0 {
                    return Err(t.map("sample", &e));
                }
                tracing::debug!(peer = %t.peer, error = %t.map("sample", &e), "stream error after frames");
                break Instant::now();
            }
            Ok(Some(Ok(item))) => item,
        };
        if let retina::codec::CodecItem::VideoFrame(f) = item {
            let now = Instant::now();
            tally.first_at.get_or_insert(now);
            tally.last_at = Some(now);
            tally.loss += u64::from(f.loss());
            tally.bytes += f.data().len() as u64;
            if f.is_random_access_point() {
                tally
                    .keyframes
                    .push((tally.frames, f.timestamp().elapsed_secs()));
            }
            tally.frames += 1;
        }
    };
    let (Some(first), Some(last)) = (tally.first_at, tally.last_at) else {
        return Err(t.err("sample", RtspErrorKind::NoFrames));
    };
    let span = end.saturating_duration_since(first).as_secs_f32();
    let arrival_span = last.saturating_duration_since(first).as_secs_f32();
    let measured_fps =
        (tally.frames >= 2 && arrival_span > 0.0).then(|| (tally.frames - 1) as f32 / arrival_span);
    let bitrate_kbps = if span > 0.0 {
        tally.bytes as f32 * 8.0 / 1000.0 / span
    } else {
        0.0
    };
    let (keyframe_interval_frames, keyframe_interval_ms) =
        match (tally.keyframes.first(), tally.keyframes.last()) {
            (Some(a), Some(b)) if tally.keyframes.len() >= 2 => {
                let n = (tally.keyframes.len() - 1) as f32;
                (
                    Some((b.0 - a.0) as f32 / n),
                    Some(((b.1 - a.1) * 1000.0) as f32 / n),
                )
            }
            _ => (None, None),
        };
    let stream = demuxed.streams().get(idx);
    let (width, height) = match stream.and_then(|s| s.parameters()) {
        Some(retina::codec::ParametersRef::Video(v)) => {
            let (w, h) = v.pixel_dimensions();
            (Some(w), Some(h))
        }
        _ => (None, None),
    };
    Ok(SampleReport {
        transport: opts.transport,
        time_to_first_frame_ms: first.saturating_duration_since(started).as_millis() as u64,
        frames: tally.frames,
        measured_fps,
        bitrate_kbps,
        keyframe_interval_frames,
        keyframe_interval_ms,
        rtp_loss_packets: tally.loss,
        last_frame_age_ms: end.saturating_duration_since(last).as_millis() as u64,
        codec: stream.map(codec_of).unwrap_or_default(),
        width,
        height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Userinfo never reaches the peer, and URL credentials are picked up.
    #[test]
    fn target_strips_userinfo() {
        let t = target("rtsp://admin:s3cr%40t@10.0.0.5/Streaming/101", None).expect("url");
        assert_eq!(t.peer, "10.0.0.5:554");
        assert_eq!(t.url.as_str(), "rtsp://10.0.0.5/Streaming/101");
        let c = t.creds.expect("creds");
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("admin", "s3cr@t")
        );
        let e = target("http://u:pw@h:80/", None).err().expect("error");
        assert_eq!(e.peer, "h:80");
        assert_eq!(e.kind_label(), "protocol");
    }

    /// retina's io errors name the errno in their first line; only those
    /// are read, never an RTSP framing error's text from the camera.
    #[test]
    fn retinas_io_error_text_says_when_we_ran_out() {
        let emfile = std::io::Error::from_raw_os_error(24);
        let text = format!("Unable to connect to RTSP server: {emfile}");
        assert_eq!(local_of_retina(&text), Some(LocalResource::Emfile));
        let nobufs = std::io::Error::from_raw_os_error(105);
        let text = format!("Error writing to RTSP peer: {nobufs}\n\nconn: 127.0.0.1:1");
        assert_eq!(local_of_retina(&text), Some(LocalResource::Enobufs));
        let refused = std::io::Error::from_raw_os_error(111);
        let text = format!("Unable to connect to RTSP server: {refused}");
        assert_eq!(local_of_retina(&text), None);
        let framing = "RTSP framing error: bad header (os error 24)\n\nconn: x";
        assert_eq!(local_of_retina(framing), None);
    }
}
