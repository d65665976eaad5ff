//! The daemon's side of the uplink to the governance centre: what it
//! publishes (camera state, transitions, metadata), the handles its
//! commands act on ([`Commands`], which builds each command's context for
//! [`crate::uplink::commands`]), and CAP documents arriving over MQTT.
//!
//! Topics, envelopes and durability are [`crate::uplink`]'s; this module only
//! decides the bodies, which never contain credentials (URIs are stored
//! credential-free, and logins are not part of any body).

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

use crate::cameras::poller::HealthSink;
use crate::store::{Device, Store};
use crate::uplink::Publisher;
use crate::uplink::commands::{self, Command, CommandHandler, CommandReply, Ctx};
use tgw_core::health::{Health, Transition, Verdict};

/// The body of `camera/{id}/state`.
pub fn state_body(d: &Device, h: &Health) -> Value {
    let reasons: Vec<&str> = match &h.verdict {
        Verdict::Degraded(r) => r.iter().map(|r| r.as_str()).collect(),
        _ => Vec::new(),
    };
    let fmt = |t: Option<time::OffsetDateTime>| t.map(crate::store::fmt_time);
    json!({
        "camera": d.id,
        "village": d.village,
        "grid": d.grid,
        "rung": h.rung.as_str(),
        "rung_since": crate::store::fmt_time(h.rung_since),
        "verdict": h.verdict.label(),
        "reasons": reasons,
        "verdict_since": crate::store::fmt_time(h.verdict_since),
        "last_seen": fmt(h.last_seen),
        "consecutive_failures": h.consecutive_failures,
        "last_error_kind": h.last_error_kind,
        "clock_offset_ms": h.clock_offset_ms,
        "stream": h.last_sample.as_ref().map(|s| json!({
            "fps": s.fps,
            "bitrate_kbps": s.bitrate_kbps,
            "loss_pct": s.loss_pct,
            "time_to_first_frame_ms": s.time_to_first_frame_ms,
            "codec": s.codec,
        })),
        "last_frame_at": fmt(h.last_frame_at),
    })
}

/// The body of a `camera/{id}/event` for a transition.
pub fn transition_body(d: &Device, t: &Transition) -> Value {
    let reasons: Vec<&str> = match &t.to {
        Verdict::Degraded(r) => r.iter().map(|r| r.as_str()).collect(),
        _ => Vec::new(),
    };
    json!({
        "camera": d.id,
        "village": d.village,
        "type": "transition",
        "from": t.from.label(),
        "to": t.to.label(),
        "reasons": reasons,
        "rung_from": t.rung_from.as_str(),
        "rung_to": t.rung_to.as_str(),
        "at": crate::store::fmt_time(t.at),
    })
}

/// The body of `camera/{id}/meta`: identity, place and the ONVIF inventory
/// (credential-free by construction).
pub fn meta_body(d: &Device) -> Value {
    json!({
        "camera": d.id,
        "endpoint_ref": d.endpoint_ref,
        "mac": d.mac,
        "name": d.name,
        "manufacturer": d.manufacturer,
        "model": d.model,
        "firmware": d.firmware,
        "serial": d.serial,
        "address": d.address,
        "village": d.village,
        "grid": d.grid,
        "inventory": d.inventory,
        "inventory_at": d.inventory_at,
    })
}

/// Publishes health over MQTT.
pub struct MqttSink(pub Publisher);

impl HealthSink for MqttSink {
    fn state(&self, device: &Device, health: &Health) {
        self.0.camera_state(&device.id, state_body(device, health));
    }
    fn transition(&self, device: &Device, t: &Transition, _health: &Health) {
        self.0.camera_event(&device.id, transition_body(device, t));
    }
}

/// Several sinks as one.
pub struct Fanout(pub Vec<Arc<dyn HealthSink>>);

impl HealthSink for Fanout {
    fn state(&self, device: &Device, health: &Health) {
        for s in &self.0 {
            s.state(device, health);
        }
    }
    fn transition(&self, device: &Device, t: &Transition, health: &Health) {
        for s in &self.0 {
            s.transition(device, t, health);
        }
    }
}

/// The handles the centre's commands act on; carries them out through
/// [`commands::dispatch`].
pub struct Commands {
    /// The store.
    pub store: Store,
    /// Starts a discovery round now.
    pub rediscover: Arc<Notify>,
    /// Re-fetches a camera's inventory.
    pub probe: mpsc::Sender<String>,
    /// Re-checks a camera's health now.
    pub wake: mpsc::Sender<String>,
    /// Re-reads the configuration (township, credential groups).
    pub reload: Arc<Notify>,
    /// The broadcast runtime, once started (signed emergency commands, CAP).
    pub broadcasts: Arc<std::sync::OnceLock<crate::broadcast::runtime::Broadcasts>>,
    /// The MQTT topic filter CAP documents arrive on (`[warnings] mqtt_topic`).
    pub cap_topic: Option<String>,
}

impl CommandHandler for Commands {
    fn handle(&self, command: Command) -> BoxFuture<'static, CommandReply> {
        let ctx = Ctx {
            store: &self.store,
            rediscover: &self.rediscover,
            probe: &self.probe,
            wake: &self.wake,
            reload: &self.reload,
            broadcasts: self.broadcasts.get().cloned(),
        };
        commands::dispatch(ctx, command)
    }

    fn raw_topics(&self) -> Vec<String> {
        self.cap_topic.iter().cloned().collect()
    }

    fn raw(&self, topic: &str, payload: bytes::Bytes) {
        let Some(b) = self.broadcasts.get().cloned() else {
            tracing::warn!(
                topic,
                "CAP document before the broadcast runtime started; dropped"
            );
            return;
        };
        let via = format!("mqtt:{topic}");
        tokio::spawn(async move {
            let out = b.cap_mqtt(payload, &via).await;
            tracing::info!(via = %via, decision = %out.decision, identifier = ?out.identifier, reason = ?out.reason, "CAP document received");
        });
    }
}
