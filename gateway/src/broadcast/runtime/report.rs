//! Reports: a horn's state recorded and published (MQTT, live events), a
//! broadcast's row published, a broadcast's end recorded.

use device_drivers::local_error::LocalResource;
use serde_json::{Value, json};

use super::{Runtime, rfc3339};
use crate::base::live::LiveEvent;

/// Where horn and broadcast reports go besides the store and the live
/// dashboards: the MQTT uplink's `Publisher` implements it (so broadcast
/// does not depend on uplink); tests and benches use [`NoReports`].
pub trait ReportSink: Send + Sync + 'static {
    /// A horn's state (`speaker/{id}/state`).
    fn speaker_state(&self, id: &str, body: Value);
    /// A broadcast's row (`broadcast/{id}`).
    fn broadcast_state(&self, id: &str, body: Value);
    /// One horn's report in one broadcast, every one of them, in order
    /// (`broadcast/{id}/horn/{speaker}`, never coalesced).
    fn broadcast_horn(&self, id: &str, speaker: &str, body: Value);
    /// A horn failed because the gateway ran out of `what` (once per
    /// horn and start, not per packet): the gateway's trouble, counted in
    /// `tgw_local_errors_total{task="horn"}` by [`crate::broadcast::metered::Metered`].
    fn horn_failed_locally(&self, _what: LocalResource) {}
}

/// Reports go nowhere but the store and the live hub.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoReports;

impl ReportSink for NoReports {
    fn speaker_state(&self, _: &str, _: Value) {}
    fn broadcast_state(&self, _: &str, _: Value) {}
    fn broadcast_horn(&self, _: &str, _: &str, _: Value) {}
}

impl Runtime {
    pub(super) fn report(&self, broadcast: &str, horn: &str, state: &str, detail: Option<Value>) {
        if let Err(e) = self.records.horn(broadcast, horn, state, detail.as_ref()) {
            tracing::warn!(error = %e, broadcast, horn, "recording a horn report failed");
        }
        self.publish_horn(broadcast, horn, state, detail.as_ref());
    }

    pub(super) fn publish_horn(
        &self,
        broadcast: &str,
        horn: &str,
        state: &str,
        detail: Option<&Value>,
    ) {
        let at = rfc3339(self.clock.now_ms());
        let body = json!({ "speaker": horn, "broadcast": broadcast, "state": state, "detail": detail, "at": at });
        self.publisher.broadcast_horn(broadcast, horn, body.clone());
        self.publisher.speaker_state(horn, body);
        self.live.publish(LiveEvent::Horn {
            broadcast: broadcast.to_string(),
            speaker: horn.to_string(),
            state: state.to_string(),
            detail: detail.cloned(),
            at,
        });
    }

    pub(super) fn publish_broadcast(&self, id: &str) {
        match self.records.get(id) {
            Ok(Some((b, _))) => {
                let body = serde_json::to_value(&b).unwrap_or(Value::Null);
                self.publisher.broadcast_state(id, body.clone());
                self.live.publish(LiveEvent::Broadcast { broadcast: body });
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "reading a broadcast failed"),
        }
    }

    pub(super) fn finish_broadcast(&mut self, id: &str, state: &str) {
        if let Err(e) = self.records.set_state(id, state, None, true) {
            tracing::warn!(error = %e, "recording a broadcast's end failed");
        }
        tracing::info!(broadcast = %id, state, "broadcast finished");
        self.publish_broadcast(id);
    }
}
