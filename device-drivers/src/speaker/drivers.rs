//! The [`Speaker`] trait and its drivers (RTP, SIP, Axis HTTP; the cloud
//! horn is `cloud_io`), one horn's
//! [`play`] and a many-horn [`broadcast`] with one T0.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{DriverOptions, SpeakerUri};
use crate::axis::{self, AxisStream, AxisTarget};
use crate::g711::Codec;
use crate::local_error::{self, LocalResource};
use crate::onvif_client::{SystemClock, WallClock};
use crate::rtp_io::{RtpSender, RtpTarget};
use crate::sip::CallError;
use crate::sip_io::{self, SipSession, SipTarget};

/// Small set of error kinds (metric labels, retry decisions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Socket errors, connection refused or reset.
    Io,
    /// No answer in time.
    Timeout,
    /// The horn refused (SIP 486/603, HTTP 4xx/5xx other than 401).
    Refused,
    /// Credentials missing or refused.
    Auth,
    /// The horn chose a codec we did not offer, or an unusable answer.
    Codec,
    /// The horn hung up during the broadcast.
    HungUp,
    /// Used in the wrong order (stream before prepare).
    Usage,
    /// A cloud horn reported an error (download failed, cannot play).
    CloudError,
    /// The horn's address refused the stream (ICMP port unreachable).
    Unreachable,
    /// The gateway itself ran out of a resource (file descriptors, socket
    /// buffers, memory, local ports) making or using the horn's socket:
    /// nothing aired, and nothing was learnt about the horn. Label `local`.
    Local(LocalResource),
}

impl ErrorKind {
    /// Lower-case label.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Io => "io",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Refused => "refused",
            ErrorKind::Auth => "auth",
            ErrorKind::Codec => "codec",
            ErrorKind::HungUp => "hung-up",
            ErrorKind::Usage => "usage",
            ErrorKind::CloudError => "cloud_error",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Local(_) => "local",
        }
    }

    /// The gateway's resource that ran out, for [`ErrorKind::Local`].
    pub fn local(self) -> Option<LocalResource> {
        match self {
            ErrorKind::Local(r) => Some(r),
            _ => None,
        }
    }
}

/// A speaker operation that failed: which speaker, which step, what happened.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{device}: {op}: {detail}")]
pub struct SpeakerError {
    /// The speaker (URI without password).
    pub device: String,
    /// `prepare`, `stream`, `stop`, `health check`.
    pub op: &'static str,
    /// Kind.
    pub kind: ErrorKind,
    /// What happened, with what came back.
    pub detail: String,
    /// What was sent before the error (a horn hanging up mid-broadcast).
    pub partial: Option<StreamStats>,
}

/// What streaming did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamStats {
    /// Packets (RTP) or 20 ms chunks (HTTP) sent.
    pub packets: u64,
    /// Audio bytes sent.
    pub octets: u64,
    /// When the first packet left.
    pub first_sent: Option<Instant>,
    /// Frames skipped because the horn was ready after their time.
    pub skipped_frames: u64,
    /// Stopped by cancellation.
    pub cancelled: bool,
    /// The horn sent something back while streaming (RTP: an RTCP
    /// receiver report).
    pub heard: bool,
}

/// A live source: 20 ms frames of i16 mono 8 kHz, paced by their producer.
pub type LiveFrames = futures::stream::BoxStream<'static, Arc<[i16]>>;

/// What a horn plays: PCM known in full, or a live stream.
enum Source<'a> {
    Pcm(&'a [i16]),
    Live(LiveFrames),
}

/// One loudspeaker, whatever its protocol. Call in order: `prepare`
/// (connect, call, authenticate: everything slow), `start_at(t0)`, `stream`,
/// `stop`. `health_check` stands alone.
pub trait Speaker: Send {
    /// The speaker's URI, without password.
    fn describe(&self) -> String;
    /// Makes the horn ready to play `samples` samples at once.
    fn prepare(&mut self, samples: usize) -> BoxFuture<'_, Result<(), SpeakerError>>;
    /// Sets the absolute start instant shared by the broadcast.
    fn start_at(&mut self, t0: Instant);
    /// Streams PCM (i16 mono 8 kHz) from T0 in real time until the end,
    /// `cancel`, or the horn hangs up.
    fn stream<'a>(
        &'a mut self,
        pcm: &'a [i16],
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<StreamStats, SpeakerError>>;
    /// Streams a live source (20 ms frames of i16 mono 8 kHz, paced by the
    /// source) until it ends, `cancel`, or the horn hangs up. Drivers that
    /// need the whole audio first (Axis HTTP with a length, cloud horns
    /// fetching a file) refuse with [`ErrorKind::Usage`].
    fn stream_live<'a>(
        &'a mut self,
        frames: LiveFrames,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<StreamStats, SpeakerError>> {
        let _ = (frames, cancel);
        let device = self.describe();
        Box::pin(async move {
            Err(SpeakerError {
                device,
                op: "stream",
                kind: ErrorKind::Usage,
                detail: "this kind of horn cannot play a live page (RTP and SIP horns can)".into(),
                partial: None,
            })
        })
    }
    /// Ends the session (SIP BYE); harmless when there is none.
    fn stop(&mut self) -> BoxFuture<'_, Result<(), SpeakerError>>;
    /// Whether the horn answers (RTP: cannot tell, always Ok). Returns a
    /// short description of the answer.
    fn health_check(&mut self) -> BoxFuture<'_, Result<String, SpeakerError>>;
    /// SIP: time from INVITE to answer; others `None`.
    fn answer_time(&self) -> Option<Duration> {
        None
    }
    /// Whether a successful `prepare` says nothing about the horn (plain
    /// RTP): then only [`StreamStats::heard`] makes it answered.
    fn one_way(&self) -> bool {
        false
    }
    /// The codec in use once prepared.
    fn codec(&self) -> Option<Codec>;
}

/// A driver for `uri`.
pub fn open(uri: &SpeakerUri, opts: &DriverOptions) -> Box<dyn Speaker> {
    match uri {
        SpeakerUri::Rtp { .. } => Box::new(RtpSpeaker {
            uri: uri.clone(),
            opts: opts.clone(),
            sender: None,
            t0: None,
            clock: Arc::new(SystemClock),
        }),
        SpeakerUri::Sip { .. } => Box::new(SipSpeaker {
            uri: uri.clone(),
            opts: opts.clone(),
            sender: None,
            session: None,
            t0: None,
        }),
        SpeakerUri::Axis { .. } => Box::new(AxisSpeaker {
            uri: uri.clone(),
            opts: opts.clone(),
            stream: None,
            t0: None,
        }),
        SpeakerUri::Cloud { .. } => Box::new(super::cloud_io::CloudSpeaker::new(uri, opts)),
    }
}

pub(super) fn err(
    uri: &SpeakerUri,
    op: &'static str,
    kind: ErrorKind,
    detail: impl Into<String>,
) -> SpeakerError {
    SpeakerError {
        device: uri.to_string(),
        op,
        kind,
        detail: detail.into(),
        partial: None,
    }
}

/// A horn's socket error: the gateway's own exhaustion (`EMFILE` …) is
/// [`ErrorKind::Local`], whatever the io error's kind says.
pub(super) fn io_kind(e: &std::io::Error) -> ErrorKind {
    if let Some(r) = local_error::of_io(e) {
        return ErrorKind::Local(r);
    }
    match e.kind() {
        std::io::ErrorKind::TimedOut => ErrorKind::Timeout,
        std::io::ErrorKind::ConnectionRefused => ErrorKind::Unreachable,
        _ => ErrorKind::Io,
    }
}

/// The error of a step that failed with `kind`: a local one says first
/// that it is the gateway's limit and not the horn's fault, then what
/// came back.
pub(super) fn kind_err(
    uri: &SpeakerUri,
    op: &'static str,
    kind: ErrorKind,
    detail: impl std::fmt::Display,
) -> SpeakerError {
    match kind {
        ErrorKind::Local(r) => err(
            uri,
            op,
            kind,
            format!("the gateway's own limit, {r}: not the horn's fault; nothing aired ({detail})"),
        ),
        _ => err(uri, op, kind, detail.to_string()),
    }
}

/// Plain RTP (unicast or a multicast zone).
pub struct RtpSpeaker {
    uri: SpeakerUri,
    opts: DriverOptions,
    sender: Option<RtpSender>,
    t0: Option<Instant>,
    clock: Arc<dyn WallClock>,
}

fn rtp_target(uri: &SpeakerUri, opts: &DriverOptions) -> Option<RtpTarget> {
    match uri {
        SpeakerUri::Rtp {
            dest,
            codec,
            ttl,
            multicast_if,
        } => Some(RtpTarget {
            dest: *dest,
            codec: *codec,
            ttl: *ttl,
            multicast_if: *multicast_if,
            dscp_ef: opts.dscp_ef,
            rtcp_interval: opts.rtcp_interval,
        }),
        _ => None,
    }
}

async fn send(
    uri: &SpeakerUri,
    sender: Option<&RtpSender>,
    t0: Option<Instant>,
    pcm: &[i16],
    cancel: &CancellationToken,
    clock: Arc<dyn WallClock>,
) -> Result<StreamStats, SpeakerError> {
    let s = sender.ok_or_else(|| err(uri, "stream", ErrorKind::Usage, "stream before prepare"))?;
    let t0 = t0.unwrap_or_else(Instant::now);
    let st = s
        .send_paced(pcm, t0, cancel, clock)
        .await
        .map_err(|e| kind_err(uri, "stream", io_kind(&e), &e))?;
    Ok(StreamStats {
        packets: st.packets,
        octets: st.octets,
        first_sent: st.first_sent,
        skipped_frames: st.skipped_frames,
        cancelled: st.cancelled,
        heard: st.receiver_reports > 0,
    })
}

async fn send_live(
    uri: &SpeakerUri,
    sender: Option<&RtpSender>,
    frames: LiveFrames,
    cancel: &CancellationToken,
    clock: Arc<dyn WallClock>,
) -> Result<StreamStats, SpeakerError> {
    let s = sender.ok_or_else(|| err(uri, "stream", ErrorKind::Usage, "stream before prepare"))?;
    let st = s
        .send_live(frames, cancel, clock)
        .await
        .map_err(|e| kind_err(uri, "stream", io_kind(&e), &e))?;
    Ok(StreamStats {
        packets: st.packets,
        octets: st.octets,
        first_sent: st.first_sent,
        skipped_frames: 0,
        cancelled: st.cancelled,
        heard: st.receiver_reports > 0,
    })
}

impl Speaker for RtpSpeaker {
    fn describe(&self) -> String {
        self.uri.to_string()
    }

    fn prepare(&mut self, _samples: usize) -> BoxFuture<'_, Result<(), SpeakerError>> {
        Box::pin(async move {
            let t = rtp_target(&self.uri, &self.opts)
                .ok_or_else(|| err(&self.uri, "prepare", ErrorKind::Usage, "not an RTP URI"))?;
            self.sender = Some(
                RtpSender::bind(t).map_err(|e| kind_err(&self.uri, "prepare", io_kind(&e), &e))?,
            );
            Ok(())
        })
    }

    fn start_at(&mut self, t0: Instant) {
        self.t0 = Some(t0);
    }

    fn stream<'a>(
        &'a mut self,
        pcm: &'a [i16],
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<StreamStats, SpeakerError>> {
        Box::pin(send(
            &self.uri,
            self.sender.as_ref(),
            self.t0,
            pcm,
            cancel,
            self.clock.clone(),
        ))
    }

    fn stream_live<'a>(
        &'a mut self,
        frames: LiveFrames,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<StreamStats, SpeakerError>> {
        Box::pin(send_live(
            &self.uri,
            self.sender.as_ref(),
            frames,
            cancel,
            self.clock.clone(),
        ))
    }

    fn stop(&mut self) -> BoxFuture<'_, Result<(), SpeakerError>> {
        self.sender = None;
        Box::pin(async { Ok(()) })
    }

    fn health_check(&mut self) -> BoxFuture<'_, Result<String, SpeakerError>> {
        Box::pin(async { Ok("RTP is one-way: no answer to check".to_string()) })
    }

    fn one_way(&self) -> bool {
        true
    }

    fn codec(&self) -> Option<Codec> {
        match &self.uri {
            SpeakerUri::Rtp { codec, .. } => Some(*codec),
            _ => None,
        }
    }
}

/// A SIP paging horn: INVITE with auto-answer, RTP to the answer, BYE.
pub struct SipSpeaker {
    uri: SpeakerUri,
    opts: DriverOptions,
    sender: Option<RtpSender>,
    session: Option<SipSession>,
    t0: Option<Instant>,
}

impl SipSpeaker {
    fn stream_source<'a>(
        &'a mut self,
        src: Source<'a>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<StreamStats, SpeakerError>> {
        Box::pin(async move {
            let hung_up = self
                .session
                .as_ref()
                .map(SipSession::hung_up)
                .ok_or_else(|| {
                    err(
                        &self.uri,
                        "stream",
                        ErrorKind::Usage,
                        "stream before prepare",
                    )
                })?;
            let both = cancel.child_token();
            let b2 = both.clone();
            let h2 = hung_up.clone();
            let watcher = tokio::spawn(async move {
                h2.cancelled().await;
                b2.cancel();
            });
            let r = match src {
                Source::Pcm(pcm) => {
                    send(
                        &self.uri,
                        self.sender.as_ref(),
                        self.t0,
                        pcm,
                        &both,
                        Arc::new(SystemClock),
                    )
                    .await
                }
                Source::Live(frames) => {
                    send_live(
                        &self.uri,
                        self.sender.as_ref(),
                        frames,
                        &both,
                        Arc::new(SystemClock),
                    )
                    .await
                }
            };
            watcher.abort();
            let st = r?;
            if hung_up.is_cancelled() && !cancel.is_cancelled() {
                self.session = None;
                let mut e = err(
                    &self.uri,
                    "stream",
                    ErrorKind::HungUp,
                    format!("the horn hung up (BYE) after {} packets", st.packets),
                );
                e.partial = Some(st);
                return Err(e);
            }
            Ok(st)
        })
    }

    fn target(&self) -> Option<SipTarget> {
        match &self.uri {
            SpeakerUri::Sip {
                user,
                password,
                addr,
                auto_answer,
            } => {
                let mut t = SipTarget::new(user, *addr);
                t.credentials = password.clone().map(|p| (user.clone(), p));
                t.auto_answer = *auto_answer;
                t.answer_timeout = self.opts.answer_timeout;
                Some(t)
            }
            _ => None,
        }
    }
}

fn sip_kind(e: &sip_io::SipIoError) -> ErrorKind {
    if let Some(r) = e.local {
        return ErrorKind::Local(r);
    }
    match &e.call {
        Some(CallError::Timeout(_)) => ErrorKind::Timeout,
        Some(CallError::Refused { .. }) => ErrorKind::Refused,
        Some(CallError::Auth { .. }) => ErrorKind::Auth,
        Some(CallError::Answer(_)) => ErrorKind::Codec,
        Some(CallError::HungUp) => ErrorKind::HungUp,
        None => ErrorKind::Io,
    }
}

impl Speaker for SipSpeaker {
    fn describe(&self) -> String {
        self.uri.to_string()
    }

    fn prepare(&mut self, _samples: usize) -> BoxFuture<'_, Result<(), SpeakerError>> {
        Box::pin(async move {
            let t = self
                .target()
                .ok_or_else(|| err(&self.uri, "prepare", ErrorKind::Usage, "not a SIP URI"))?;
            let mut rt = RtpTarget::new(SocketAddr::new(t.remote.ip(), 9), Codec::Pcmu);
            rt.dscp_ef = self.opts.dscp_ef;
            rt.rtcp_interval = self.opts.rtcp_interval;
            let mut sender =
                RtpSender::bind(rt).map_err(|e| kind_err(&self.uri, "prepare", io_kind(&e), &e))?;
            let local = sender
                .local_addr()
                .map_err(|e| kind_err(&self.uri, "prepare", io_kind(&e), &e))?;
            let session = sip_io::call(&t, local)
                .await
                .map_err(|e| kind_err(&self.uri, "prepare", sip_kind(&e), &e))?;
            sender.retarget(session.answered.rtp, session.answered.codec);
            self.sender = Some(sender);
            self.session = Some(session);
            Ok(())
        })
    }

    fn start_at(&mut self, t0: Instant) {
        self.t0 = Some(t0);
    }

    fn stream<'a>(
        &'a mut self,
        pcm: &'a [i16],
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<StreamStats, SpeakerError>> {
        self.stream_source(Source::Pcm(pcm), cancel)
    }

    fn stream_live<'a>(
        &'a mut self,
        frames: LiveFrames,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<StreamStats, SpeakerError>> {
        self.stream_source(Source::Live(frames), cancel)
    }

    fn stop(&mut self) -> BoxFuture<'_, Result<(), SpeakerError>> {
        Box::pin(async move {
            self.sender = None;
            match self.session.take() {
                Some(s) => s
                    .hangup()
                    .await
                    .map_err(|e| kind_err(&self.uri, "stop", sip_kind(&e), &e)),
                None => Ok(()),
            }
        })
    }

    fn health_check(&mut self) -> BoxFuture<'_, Result<String, SpeakerError>> {
        Box::pin(async move {
            let t = self
                .target()
                .ok_or_else(|| err(&self.uri, "health check", ErrorKind::Usage, "not a SIP URI"))?;
            let r = sip_io::options(&t.user, t.remote, self.opts.answer_timeout)
                .await
                .map_err(|e| kind_err(&self.uri, "health check", sip_kind(&e), &e))?;
            Ok(format!("OPTIONS answered {} {}", r.status, r.reason))
        })
    }

    fn answer_time(&self) -> Option<Duration> {
        self.session.as_ref().map(|s| s.answer_time)
    }

    fn codec(&self) -> Option<Codec> {
        self.session.as_ref().map(|s| s.answered.codec)
    }
}

/// An Axis-style HTTP speaker.
pub struct AxisSpeaker {
    uri: SpeakerUri,
    opts: DriverOptions,
    stream: Option<AxisStream>,
    t0: Option<Instant>,
}

impl AxisSpeaker {
    fn target(&self) -> Option<AxisTarget> {
        match &self.uri {
            SpeakerUri::Axis {
                user,
                password,
                addr,
            } => {
                let creds = password
                    .clone()
                    .map(|p| (user.clone().unwrap_or_else(|| "root".into()), p));
                let mut t = AxisTarget::new(*addr, creds);
                t.timeout = self.opts.answer_timeout;
                Some(t)
            }
            _ => None,
        }
    }
}

fn axis_kind(e: &axis::AxisError) -> ErrorKind {
    if let Some(r) = e.local {
        return ErrorKind::Local(r);
    }
    match e.status {
        Some(401) => ErrorKind::Auth,
        Some(_) => ErrorKind::Refused,
        None if e.detail.contains("timed out") || e.detail.contains("no response within") => {
            ErrorKind::Timeout
        }
        None => ErrorKind::Io,
    }
}

impl Speaker for AxisSpeaker {
    fn describe(&self) -> String {
        self.uri.to_string()
    }

    fn prepare(&mut self, samples: usize) -> BoxFuture<'_, Result<(), SpeakerError>> {
        Box::pin(async move {
            let t = self
                .target()
                .ok_or_else(|| err(&self.uri, "prepare", ErrorKind::Usage, "not an Axis URI"))?;
            self.stream = Some(
                axis::open(&t, samples as u64)
                    .await
                    .map_err(|e| kind_err(&self.uri, "prepare", axis_kind(&e), &e))?,
            );
            Ok(())
        })
    }

    fn start_at(&mut self, t0: Instant) {
        self.t0 = Some(t0);
    }

    fn stream<'a>(
        &'a mut self,
        pcm: &'a [i16],
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<StreamStats, SpeakerError>> {
        Box::pin(async move {
            let s = self.stream.take().ok_or_else(|| {
                err(
                    &self.uri,
                    "stream",
                    ErrorKind::Usage,
                    "stream before prepare",
                )
            })?;
            let st = s
                .stream(pcm, self.t0.unwrap_or_else(Instant::now), cancel)
                .await
                .map_err(|e| {
                    let kind =
                        if e.op == "streaming audio" && e.status.is_none() && e.local.is_none() {
                            ErrorKind::HungUp
                        } else {
                            axis_kind(&e)
                        };
                    kind_err(&self.uri, "stream", kind, &e)
                })?;
            Ok(StreamStats {
                packets: st.chunks,
                octets: st.octets,
                first_sent: st.first_sent,
                skipped_frames: 0,
                cancelled: st.cancelled,
                heard: true,
            })
        })
    }

    fn stop(&mut self) -> BoxFuture<'_, Result<(), SpeakerError>> {
        self.stream = None;
        Box::pin(async { Ok(()) })
    }

    fn health_check(&mut self) -> BoxFuture<'_, Result<String, SpeakerError>> {
        Box::pin(async move {
            let t = self.target().ok_or_else(|| {
                err(
                    &self.uri,
                    "health check",
                    ErrorKind::Usage,
                    "not an Axis URI",
                )
            })?;
            let s = axis::health(&t)
                .await
                .map_err(|e| kind_err(&self.uri, "health check", axis_kind(&e), &e))?;
            Ok(format!("HTTP {s}"))
        })
    }

    fn codec(&self) -> Option<Codec> {
        Some(Codec::Pcmu)
    }
}

/// Whether a horn answered (see [`PlayReport::answered`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Answered {
    /// It answered.
    Yes,
    /// It refused, was unreachable or never got ready.
    No,
    /// One-way RTP and nothing came back: nobody can tell.
    Unknown,
}

impl Answered {
    /// `yes`, `no`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Answered::Yes => "yes",
            Answered::No => "no",
            Answered::Unknown => "unknown",
        }
    }
}

/// What happened to one horn of a broadcast.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PlayReport {
    /// The speaker (URI without password).
    pub device: String,
    /// `rtp`, `rtp-multicast`, `sip`, `axis`, `cloud`.
    pub kind: String,
    /// Whether the horn answered: SIP answered the call, HTTP accepted the
    /// POST, a cloud horn acknowledged, an RTP horn sent an RTCP receiver
    /// report; `unknown` for an RTP horn that stayed silent (it may or may
    /// not be playing), `no` when it refused or never got ready.
    pub answered: Answered,
    /// SIP: milliseconds from INVITE to answer.
    pub answer_ms: Option<f64>,
    /// Codec used.
    pub codec: Option<String>,
    /// Milliseconds from T0 to the first packet sent (negative: early).
    pub start_offset_ms: Option<f64>,
    /// Packets (RTP) or 20 ms chunks (HTTP) sent.
    pub packets: u64,
    /// Audio bytes sent.
    pub octets: u64,
    /// Frames skipped because the horn was ready after their time.
    pub skipped_frames: u64,
    /// Played to the end (not cancelled, no error).
    pub completed: bool,
    /// Error kind, if any.
    pub error_kind: Option<String>,
    /// With error kind `local`: the gateway's own resource that ran out
    /// (serialised as its errno, `EMFILE` …). The horn is not at fault.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "errno_of")]
    pub local: Option<LocalResource>,
    /// Errors, in order.
    pub errors: Vec<String>,
    /// When the first packet left (not serialised).
    #[serde(skip)]
    pub first_sent: Option<Instant>,
}

fn errno_of<S: serde::Serializer>(r: &Option<LocalResource>, s: S) -> Result<S::Ok, S::Error> {
    match r {
        Some(r) => s.serialize_str(r.errno()),
        None => s.serialize_none(),
    }
}

impl PlayReport {
    /// `ok` (played to the end and answered), `unknown` (played, but a
    /// one-way RTP horn sent nothing back: it may not have played),
    /// `failed: KIND` (`unreachable`, `refused`, `timeout` ...).
    pub fn result(&self) -> String {
        if !(self.errors.is_empty() && self.completed) {
            return format!(
                "failed: {}",
                self.error_kind.as_deref().unwrap_or("incomplete")
            );
        }
        match self.answered {
            Answered::Yes => "ok".into(),
            Answered::Unknown => "unknown".into(),
            Answered::No => "failed: no answer".into(),
        }
    }
}

/// Plays `pcm` on one prepared speaker from `t0`, then stops it. Never fails:
/// every error lands in the report.
async fn run_prepared(
    sp: &mut dyn Speaker,
    prepared: Result<(), SpeakerError>,
    kind: &str,
    src: Source<'_>,
    t0: Instant,
    cancel: &CancellationToken,
) -> PlayReport {
    let mut rep = PlayReport {
        device: sp.describe(),
        kind: kind.to_string(),
        answered: if prepared.is_ok() {
            Answered::Yes
        } else {
            Answered::No
        },
        answer_ms: sp.answer_time().map(|d| d.as_secs_f64() * 1e3),
        codec: sp.codec().map(|c| c.to_string()),
        start_offset_ms: None,
        packets: 0,
        octets: 0,
        skipped_frames: 0,
        completed: false,
        error_kind: None,
        local: None,
        errors: Vec::new(),
        first_sent: None,
    };
    if let Err(e) = prepared {
        rep.error_kind = Some(e.kind.as_str().into());
        rep.local = e.kind.local();
        if rep.local.is_some() {
            // Nothing was learnt about the horn: it never got the chance.
            rep.answered = Answered::Unknown;
        }
        rep.errors.push(e.to_string());
        return rep;
    }
    sp.start_at(t0);
    let one_way = sp.one_way();
    if one_way {
        rep.answered = Answered::Unknown;
    }
    let streamed = match src {
        Source::Pcm(pcm) => sp.stream(pcm, cancel).await,
        Source::Live(frames) => sp.stream_live(frames, cancel).await,
    };
    match streamed {
        Ok(st) => {
            if st.heard {
                rep.answered = Answered::Yes;
            }
            rep.packets = st.packets;
            rep.octets = st.octets;
            rep.skipped_frames = st.skipped_frames;
            rep.first_sent = st.first_sent;
            rep.completed = !st.cancelled;
        }
        Err(e) => {
            if let Some(st) = &e.partial {
                rep.packets = st.packets;
                rep.octets = st.octets;
                rep.skipped_frames = st.skipped_frames;
                rep.first_sent = st.first_sent;
            }
            if e.kind == ErrorKind::Unreachable {
                rep.answered = Answered::No;
            }
            rep.error_kind = Some(e.kind.as_str().into());
            rep.local = e.kind.local();
            rep.errors.push(e.to_string());
        }
    }
    rep.start_offset_ms = rep.first_sent.map(|f| {
        if f >= t0 {
            (f - t0).as_secs_f64() * 1e3
        } else {
            -((t0 - f).as_secs_f64() * 1e3)
        }
    });
    if let Err(e) = sp.stop().await {
        if rep.error_kind.is_none() {
            rep.local = e.kind.local();
        }
        rep.error_kind.get_or_insert_with(|| e.kind.as_str().into());
        rep.errors.push(e.to_string());
    }
    rep
}

/// Plays on one horn: prepare, then start `playout_delay` after it is
/// ready (T0 for a single horn), stream, stop.
pub async fn play(
    uri: &SpeakerUri,
    opts: &DriverOptions,
    pcm: &[i16],
    playout_delay: Duration,
    cancel: &CancellationToken,
) -> PlayReport {
    let mut sp = open(uri, opts);
    let prepared = sp.prepare(pcm.len()).await;
    let t0 = Instant::now() + playout_delay;
    run_prepared(
        sp.as_mut(),
        prepared,
        uri.kind(),
        Source::Pcm(pcm),
        t0,
        cancel,
    )
    .await
}

/// Plays `pcm` on every horn with one absolute start `t0`: all are prepared
/// concurrently, each streams frame k at `t0 + k·20 ms` (a horn ready after
/// T0 joins where the broadcast is). One horn failing (offline, refusing,
/// hanging up) never affects the others. Reports are in the input order.
pub async fn broadcast(
    uris: &[SpeakerUri],
    opts: &DriverOptions,
    pcm: Arc<Vec<i16>>,
    t0: Instant,
    cancel: &CancellationToken,
) -> Vec<PlayReport> {
    let mut tasks = Vec::with_capacity(uris.len());
    for uri in uris {
        let uri = uri.clone();
        let opts = opts.clone();
        let pcm = pcm.clone();
        let cancel = cancel.clone();
        tasks.push(tokio::spawn(async move {
            let mut sp = open(&uri, &opts);
            let prepared = sp.prepare(pcm.len()).await;
            run_prepared(
                sp.as_mut(),
                prepared,
                uri.kind(),
                Source::Pcm(&pcm),
                t0,
                &cancel,
            )
            .await
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for (t, uri) in tasks.into_iter().zip(uris) {
        out.push(t.await.unwrap_or_else(|e| failed_task(uri, &e)));
    }
    out
}

/// Plays `pcm` on one horn from `t0` until the end or `cancel`: the
/// broadcast runtime runs one per horn, every horn of a segment with the
/// same T0, so that it can take single horns away for a higher-priority
/// broadcast while the others play on. Never fails: every error lands in
/// the report. Cancelled before it started: nothing sent, no error.
pub async fn play_at(
    uri: &SpeakerUri,
    opts: &DriverOptions,
    pcm: &[i16],
    t0: Instant,
    cancel: &CancellationToken,
) -> PlayReport {
    if cancel.is_cancelled() {
        let mut rep = failed_task_report(uri, Vec::new());
        rep.error_kind = None;
        return rep;
    }
    let mut sp = open(uri, opts);
    let prepared = tokio::select! {
        p = sp.prepare(pcm.len()) => p,
        _ = cancel.cancelled() => Err(err(uri, "prepare", ErrorKind::Usage, "cancelled before the horn was ready")),
    };
    run_prepared(
        sp.as_mut(),
        prepared,
        uri.kind(),
        Source::Pcm(pcm),
        t0,
        cancel,
    )
    .await
}

/// Plays a live source on one horn from now until the source ends or
/// `cancel` (a live page: the broadcast runtime runs one per horn). RTP
/// and SIP horns play it; the others report a `usage` error. Never fails:
/// every error lands in the report; `start_offset_ms` is from the moment
/// the horn was ready.
pub async fn play_live(
    uri: &SpeakerUri,
    opts: &DriverOptions,
    frames: LiveFrames,
    cancel: &CancellationToken,
) -> PlayReport {
    if cancel.is_cancelled() {
        let mut rep = failed_task_report(uri, Vec::new());
        rep.error_kind = None;
        return rep;
    }
    let mut sp = open(uri, opts);
    let prepared = tokio::select! {
        p = sp.prepare(0) => p,
        _ = cancel.cancelled() => Err(err(uri, "prepare", ErrorKind::Usage, "cancelled before the horn was ready")),
    };
    let t0 = Instant::now();
    run_prepared(
        sp.as_mut(),
        prepared,
        uri.kind(),
        Source::Live(frames),
        t0,
        cancel,
    )
    .await
}

fn failed_task(uri: &SpeakerUri, e: &tokio::task::JoinError) -> PlayReport {
    failed_task_report(uri, vec![format!("{uri}: driver task failed: {e}")])
}

fn failed_task_report(uri: &SpeakerUri, errors: Vec<String>) -> PlayReport {
    PlayReport {
        device: uri.to_string(),
        kind: uri.kind().into(),
        answered: Answered::No,
        answer_ms: None,
        codec: None,
        start_offset_ms: None,
        packets: 0,
        octets: 0,
        skipped_frames: 0,
        completed: false,
        error_kind: Some("io".into()),
        local: None,
        errors,
        first_sent: None,
    }
}

/// The loopback interface, for multicast in tests and the simulator.
pub const LOOPBACK_IF: Ipv4Addr = Ipv4Addr::LOCALHOST;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn rtp() -> SpeakerUri {
        "rtp://127.0.0.1:5004".parse().expect("uri")
    }

    /// The horn's own trouble (refused, reset, timed out, unreachable
    /// network) keeps its kind: never `local`.
    #[test]
    fn the_horns_socket_errors_are_not_local() {
        let refused = io::Error::from_raw_os_error(111);
        assert_eq!(io_kind(&refused), ErrorKind::Unreachable);
        assert_eq!(io_kind(&io::Error::from_raw_os_error(104)), ErrorKind::Io);
        assert_eq!(io_kind(&io::Error::from_raw_os_error(101)), ErrorKind::Io);
        assert_eq!(
            io_kind(&io::Error::from_raw_os_error(110)),
            ErrorKind::Timeout
        );
        let e = kind_err(&rtp(), "prepare", io_kind(&refused), &refused);
        assert_eq!(e.kind.as_str(), "unreachable");
        assert_eq!(e.kind.local(), None);
        assert!(!e.to_string().contains("gateway"), "{e}");
        let sip = sip_io::SipIoError {
            peer: "127.0.0.1:5060".parse().expect("addr"),
            op: "INVITE",
            detail: "486 Busy Here (os error 24)".into(),
            call: Some(CallError::Refused {
                status: 486,
                reason: "Busy Here (os error 24)".into(),
            }),
            local: None,
        };
        assert_eq!(
            sip_kind(&sip),
            ErrorKind::Refused,
            "the horn's text decides nothing"
        );
    }

    /// EMFILE, ENFILE, ENOBUFS, ENOMEM and EADDRNOTAVAIL are the gateway's:
    /// kind `local` naming the errno, also through the RTP sender's context
    /// wrapper and a SIP or HTTP error that carries it.
    #[test]
    fn the_gateways_exhaustion_is_local() {
        let emfile = io::Error::from_raw_os_error(24);
        assert_eq!(io_kind(&emfile), ErrorKind::Local(LocalResource::Emfile));
        assert_eq!(
            io_kind(&io::Error::from_raw_os_error(105)),
            ErrorKind::Local(LocalResource::Enobufs)
        );
        let e = kind_err(&rtp(), "prepare", io_kind(&emfile), &emfile);
        assert_eq!(e.kind.as_str(), "local");
        let text = e.to_string();
        assert!(
            text.contains("the gateway's own limit, too many open files (EMFILE)")
                && text.contains("not the horn's fault"),
            "{text}"
        );
        let sip = sip_io::SipIoError {
            peer: "127.0.0.1:5060".parse().expect("addr"),
            op: "INVITE",
            detail: "binding a local port: Too many open files (os error 24)".into(),
            call: None,
            local: Some(LocalResource::Emfile),
        };
        assert_eq!(sip_kind(&sip), ErrorKind::Local(LocalResource::Emfile));
        let axis = axis::AxisError {
            peer: "127.0.0.1:80".parse().expect("addr"),
            op: "authentication probe",
            detail: "connect: Cannot assign requested address (os error 99)".into(),
            status: None,
            local: Some(LocalResource::Eaddrnotavail),
        };
        assert_eq!(
            axis_kind(&axis),
            ErrorKind::Local(LocalResource::Eaddrnotavail)
        );
    }
}
