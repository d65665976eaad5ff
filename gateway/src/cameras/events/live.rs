//! Camera events on the dashboards: the live hub is an [`EventSink`]; the
//! alarm list shows them as `camera_event` SSE messages.

use super::{CameraEvent, EventSink};
use crate::base::live::{LiveEvent, LiveHub};

impl EventSink for LiveHub {
    fn event(&self, e: &CameraEvent) {
        if self.subscribers() == 0 {
            return;
        }
        self.publish(LiveEvent::CameraEvent {
            event: serde_json::to_value(e).unwrap_or_default(),
        });
    }
}
