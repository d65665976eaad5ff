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

/// The body of `camera/{id}/state` as JSON text: the same text as
/// `state_body(d, h).to_string()` (the same keys in the same, sorted
/// order), written straight from the device and health without building a
/// `Value`. It is published after every check, so this is a hot path
/// (issue 18.3, `tgw-bench allocs`): one allocation, the text, instead of
/// one per key and value.
pub fn state_text(d: &Device, h: &Health) -> String {
    let mut out = Vec::with_capacity(STATE_TEXT_CAPACITY);
    // Writing into a Vec cannot fail and every field serialises; the
    // `Value` route stays as the fallback all the same.
    if serde_json::to_writer(&mut out, &StateBody::new(d, h)).is_err() {
        return state_body(d, h).to_string();
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Room for a state body with a stream sample and long ids (≈ 450 bytes).
const STATE_TEXT_CAPACITY: usize = 640;

/// [`state_body`] as a struct: fields in the sorted order a `Value`'s map
/// writes them, so the two texts are equal.
#[derive(serde::Serialize)]
struct StateBody<'a> {
    camera: &'a str,
    clock_offset_ms: Option<i64>,
    consecutive_failures: u32,
    grid: Option<&'a str>,
    last_error_kind: Option<&'a str>,
    last_frame_at: Option<Rfc3339>,
    last_seen: Option<Rfc3339>,
    reasons: Reasons<'a>,
    rung: &'static str,
    rung_since: Rfc3339,
    stream: Option<StreamBody<'a>>,
    verdict: &'static str,
    verdict_since: Rfc3339,
    village: Option<&'a str>,
}

#[derive(serde::Serialize)]
struct StreamBody<'a> {
    bitrate_kbps: f64,
    codec: Option<&'a str>,
    fps: f64,
    loss_pct: f64,
    time_to_first_frame_ms: Option<u64>,
}

impl<'a> StateBody<'a> {
    fn new(d: &'a Device, h: &'a Health) -> Self {
        StateBody {
            camera: &d.id,
            clock_offset_ms: h.clock_offset_ms,
            consecutive_failures: h.consecutive_failures,
            grid: d.grid.as_deref(),
            last_error_kind: h.last_error_kind.as_deref(),
            last_frame_at: h.last_frame_at.map(Rfc3339),
            last_seen: h.last_seen.map(Rfc3339),
            reasons: Reasons(&h.verdict),
            rung: h.rung.as_str(),
            rung_since: Rfc3339(h.rung_since),
            stream: h.last_sample.as_ref().map(|s| StreamBody {
                bitrate_kbps: s.bitrate_kbps,
                codec: s.codec.as_deref(),
                fps: s.fps,
                loss_pct: s.loss_pct,
                time_to_first_frame_ms: s.time_to_first_frame_ms,
            }),
            verdict: h.verdict.label(),
            verdict_since: Rfc3339(h.verdict_since),
            village: d.village.as_deref(),
        }
    }
}

/// A degraded verdict's reasons (an empty list otherwise).
struct Reasons<'a>(&'a Verdict);

impl serde::Serialize for Reasons<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Verdict::Degraded(r) => s.collect_seq(r.iter().map(|r| r.as_str())),
            _ => s.collect_seq(std::iter::empty::<&str>()),
        }
    }
}

/// A time as [`crate::store::fmt_time`] writes it (RFC 3339, whole
/// seconds), formatted on the stack.
struct Rfc3339(time::OffsetDateTime);

impl serde::Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.0.replace_nanosecond(0).unwrap_or(self.0);
        let mut buf = [0u8; 64];
        let mut w = &mut buf[..];
        let n = t
            .format_into(&mut w, &time::format_description::well_known::Rfc3339)
            .unwrap_or(0);
        // RFC 3339 text is ASCII; a time it cannot write is "" (as fmt_time).
        s.serialize_str(std::str::from_utf8(&buf[..n]).unwrap_or(""))
    }
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
        self.0
            .camera_state_text(&device.id, state_text(device, health));
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use tgw_core::health::{Reason, StreamSample};

    fn camera(village: bool) -> (tempfile::TempDir, Device) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in_memory(dir.path()).unwrap();
        let id = crate::cameras::fake::adopted(&store, 3);
        let mut d = store.device(&id).unwrap().unwrap();
        if village {
            d.village = Some("v01".into());
            d.grid = Some("v01-g2".into());
        }
        (dir, d)
    }

    /// The check path's text body is byte for byte the `Value` body's text:
    /// a camera never checked, and a degraded one with a stream sample,
    /// an error kind, sub-second times and a place.
    #[test]
    fn state_text_is_the_state_body_text() {
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(1_784_077_200_123_456_789).unwrap();
        let (_d1, bare) = camera(false);
        let fresh = Health::new(t);
        let (_d2, placed) = camera(true);
        let mut degraded = Health::new(t);
        degraded.verdict = Verdict::Degraded(BTreeSet::from([Reason::LowFps, Reason::ClockDrift]));
        degraded.last_seen = Some(t + time::Duration::seconds(5));
        degraded.last_frame_at = Some(t + time::Duration::milliseconds(4_500));
        degraded.consecutive_failures = 2;
        degraded.last_error_kind = Some("timeout".into());
        degraded.clock_offset_ms = Some(-7_250);
        degraded.last_sample = Some(StreamSample {
            frames: 71,
            fps: 23.7,
            bitrate_kbps: 1_843.25,
            loss_pct: 0.0,
            time_to_first_frame_ms: Some(212),
            codec: Some("H264".into()),
        });
        let mut nan = degraded.clone();
        if let Some(s) = &mut nan.last_sample {
            s.fps = f64::NAN;
            s.codec = None;
        }
        for (d, h) in [
            (&bare, &fresh),
            (&placed, &degraded),
            (&placed, &nan),
            (&bare, &degraded),
        ] {
            assert_eq!(state_text(d, h), state_body(d, h).to_string());
        }
        let v: Value = serde_json::from_str(&state_text(&placed, &degraded)).unwrap();
        assert_eq!(v["reasons"], json!(["clock-drift", "low-fps"]));
        assert_eq!(v["last_seen"], "2026-07-15T01:00:05Z");
        assert_eq!(v["village"], "v01");
    }
}
