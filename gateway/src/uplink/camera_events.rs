//! Camera-raised events (tamper, video loss, motion, digital input) on
//! `camera/{id}/event`, beside the health transitions there: the body
//! carries `"type": "camera-event"` (`docs/schemas/camera-event.json`).

use serde_json::{Value, json};

use crate::cameras::events::{CameraEvent, EventSink};
use crate::uplink::centre::MqttSink;

/// The body of a `camera/{id}/event` for a camera-raised event.
pub fn event_body(e: &CameraEvent) -> Value {
    json!({
        "camera": e.camera,
        "village": e.village,
        "type": "camera-event",
        "event": e.kind,
        "kind": e.kind,
        "state": e.state,
        "alarm": e.alarm,
        "topic": e.topic,
        "camera_time": e.camera_time,
        "at": e.at,
    })
}

impl EventSink for MqttSink {
    fn event(&self, e: &CameraEvent) {
        self.0.camera_event(&e.camera, event_body(e));
    }
}
