//! Health and camera events into the GB/T 28181 task: the poller's
//! [`HealthSink`] and the events' [`EventSink`], never blocking (a full
//! queue drops the change; the 30 s catalog rebuild catches verdicts up).

use tokio::sync::mpsc;

use super::catalog::online;
use crate::cameras::events::{CameraEvent, EventSink};
use crate::cameras::poller::HealthSink;
use crate::store::Device;
use tgw_core::health::{Health, Transition};

/// A change the platforms may hear about.
#[derive(Debug, Clone)]
pub enum Change {
    /// A camera's ON/OFF status may have changed.
    Verdict {
        /// Device id.
        device_id: String,
        /// ON (ok or degraded) or OFF.
        online: bool,
    },
    /// A camera event became active (`tamper`, `video-loss`).
    Event {
        /// Device id.
        device_id: String,
        /// The kind.
        kind: &'static str,
    },
}

/// Feeds the GB/T 28181 task.
pub struct GbSink(pub mpsc::Sender<Change>);

impl GbSink {
    fn push(&self, c: Change) {
        if self.0.try_send(c).is_err() {
            tracing::debug!(
                "GB/T 28181 change queue full or closed; the next catalog rebuild catches up"
            );
        }
    }
}

impl HealthSink for GbSink {
    fn state(&self, _: &Device, _: &Health) {}

    fn transition(&self, device: &Device, t: &Transition, _: &Health) {
        let (from, to) = (online(Some(&t.from)), online(Some(&t.to)));
        if from != to {
            self.push(Change::Verdict {
                device_id: device.id.clone(),
                online: to,
            });
        }
    }
}

impl EventSink for GbSink {
    fn event(&self, e: &CameraEvent) {
        if e.state == "active" && matches!(e.kind, "tamper" | "video-loss") {
            self.push(Change::Event {
                device_id: e.camera.clone(),
                kind: e.kind,
            });
        }
    }
}
