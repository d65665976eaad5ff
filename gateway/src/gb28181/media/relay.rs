//! One relay's task: camera → PS → RTP → platform.
//!
//! While it waits for the ACK and for the media connection, it keeps reading
//! the camera and holds the frames since the last keyframe (capped), so the
//! platform's first packets start at a keyframe without waiting a whole GOP.
//! It ends on BYE (cancel), camera loss, a failed send, or a setup timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use device_drivers::gb28181::ps::PsMuxer;
use device_drivers::gb28181::rtp_ps::RtpPacketizer;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::camera::{Camera, Frame};
use super::sink::{Pending, Sink};

/// Most bytes held while waiting to start.
const GOP_CAP_BYTES: usize = 8 * 1024 * 1024;

/// Packets and bytes sent, for `active()`.
#[derive(Default)]
pub(super) struct Stats {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
}

/// Why a relay ended.
#[derive(Debug)]
pub(super) enum End {
    Bye,
    NoAck,
    NoConnection(String),
    Camera(String),
    Send(String),
}

impl End {
    /// The `tgw_gb_relays_failed_total` reason, `None` for a BYE.
    pub(super) fn failure(&self) -> Option<&'static str> {
        match self {
            End::Bye => None,
            End::NoAck => Some("no_ack"),
            End::NoConnection(_) => Some("no_connection"),
            End::Camera(_) => Some("camera_lost"),
            End::Send(_) => Some("send"),
        }
    }
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::Bye => f.write_str("stopped by BYE"),
            End::NoAck => f.write_str("no ACK within the setup timeout"),
            End::NoConnection(e) => write!(f, "media connection not made: {e}"),
            End::Camera(e) => write!(f, "camera lost: {e}"),
            End::Send(e) => write!(f, "sending to the platform failed: {e}"),
        }
    }
}

/// Everything a relay task needs.
pub(super) struct Job {
    pub camera: Camera,
    pub pending: Option<Pending>,
    pub dest: SocketAddr,
    pub ssrc: u32,
    pub payload_type: u8,
    pub setup_timeout: Duration,
    pub ack: watch::Receiver<bool>,
    pub cancel: CancellationToken,
    pub stats: Arc<Stats>,
}

/// Frames since the last keyframe.
#[derive(Default)]
struct Gop {
    frames: Vec<Frame>,
    bytes: usize,
}

impl Gop {
    fn push(&mut self, f: Frame) {
        if f.keyframe {
            self.frames.clear();
            self.bytes = 0;
        } else if self.frames.is_empty() {
            return;
        }
        self.bytes += f.annexb.len();
        self.frames.push(f);
        if self.bytes > GOP_CAP_BYTES {
            self.frames.clear();
            self.bytes = 0;
        }
    }
}

impl Job {
    /// Runs the relay to its end.
    pub async fn run(mut self) -> End {
        let mut gop = Gop::default();
        if let Err(end) = self.wait_ack(&mut gop).await {
            return end;
        }
        let mut sink = match self.connect(&mut gop).await {
            Ok(s) => s,
            Err(end) => return end,
        };
        let muxer = PsMuxer::new(self.camera.codec());
        let mut rtp =
            RtpPacketizer::new(self.ssrc, rand::random()).with_payload_type(self.payload_type);
        let mut started = false;
        for f in std::mem::take(&mut gop.frames) {
            started |= f.keyframe;
            if let Err(end) = self.send(&mut sink, &muxer, &mut rtp, &f).await {
                return end;
            }
        }
        loop {
            let f = tokio::select! {
                () = self.cancel.cancelled() => return End::Bye,
                f = self.camera.next() => match f {
                    Ok(f) => f,
                    Err(e) => return End::Camera(e.to_string()),
                },
            };
            started |= f.keyframe;
            if !started {
                continue;
            }
            if let Err(end) = self.send(&mut sink, &muxer, &mut rtp, &f).await {
                return end;
            }
        }
    }

    async fn wait_ack(&mut self, gop: &mut Gop) -> Result<(), End> {
        let deadline = tokio::time::sleep(self.setup_timeout);
        tokio::pin!(deadline);
        loop {
            if *self.ack.borrow_and_update() {
                return Ok(());
            }
            tokio::select! {
                () = self.cancel.cancelled() => return Err(End::Bye),
                () = &mut deadline => return Err(End::NoAck),
                r = self.ack.changed() => if r.is_err() { return Err(End::Bye) },
                f = self.camera.next() => gop.push(f.map_err(|e| End::Camera(e.to_string()))?),
            }
        }
    }

    async fn connect(&mut self, gop: &mut Gop) -> Result<Sink, End> {
        let pending = self
            .pending
            .take()
            .ok_or_else(|| End::NoConnection("already opened".into()))?;
        let open = tokio::time::timeout(self.setup_timeout, pending.open(self.dest));
        tokio::pin!(open);
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => return Err(End::Bye),
                r = &mut open => return match r {
                    Err(_) => Err(End::NoConnection("timed out".into())),
                    Ok(Err(e)) => Err(End::NoConnection(e.to_string())),
                    Ok(Ok(s)) => Ok(s),
                },
                f = self.camera.next() => gop.push(f.map_err(|e| End::Camera(e.to_string()))?),
            }
        }
    }

    async fn send(
        &self,
        sink: &mut Sink,
        muxer: &PsMuxer,
        rtp: &mut RtpPacketizer,
        f: &Frame,
    ) -> Result<(), End> {
        let mut ps = Vec::with_capacity(f.annexb.len() + 64);
        muxer.mux(&f.annexb, f.pts, f.pts, f.keyframe, &mut ps);
        let mut packets = Vec::with_capacity(ps.len() / 1400 + 1);
        rtp.packetize(&ps, f.pts as u32, |p| packets.push(p.to_vec()));
        let bytes: usize = packets.iter().map(Vec::len).sum();
        tokio::select! {
            () = self.cancel.cancelled() => return Err(End::Bye),
            r = sink.send(&packets, self.setup_timeout) => r.map_err(|e| End::Send(e.to_string()))?,
        }
        self.stats
            .packets
            .fetch_add(packets.len() as u64, Ordering::Relaxed);
        self.stats.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        let c = crate::gb28181::metrics::counters();
        c.ps_packets.inc_by(packets.len() as u64);
        c.ps_bytes.inc_by(bytes as u64);
        Ok(())
    }
}
