//! The early-warning glue: CAP documents and parsed alerts handed to the
//! desk, its decisions carried out (a warning broadcast, a cancel), the
//! alert recorded and published, and the desk's memory saved.

use std::time::Duration;

use serde_json::{Value, json};

use super::spec::{CapOutcome, Spec};
use super::{Runtime, rfc3339};
use crate::base::live::LiveEvent;
use crate::broadcast::render::{Part, Recipe};
use crate::broadcast::{Ms, OnPreempt};

impl Runtime {
    pub(super) fn save_desk(&self) {
        if let Some(d) = &self.desk
            && let Ok(s) = serde_json::to_string(&d.snapshot())
            && let Err(e) = self.records.set_kv("warning_desk", &s)
        {
            tracing::warn!(error = %e, "saving the warning desk failed");
        }
    }

    /// A document from the MQTT warnings topic: unwrapped from its signed
    /// envelope (`mqtt_trust = "signed"`) or taken as plain CAP from an
    /// allowed sender (`broker`). Refusals are logged and audited with
    /// their reason and never reach the desk.
    pub(super) fn on_cap_mqtt(&mut self, doc: &[u8], via: &str, now: Ms) -> CapOutcome {
        use tgw_core::warning::MqttTrust;
        let Some(cfg) = self.desk.as_ref().map(|d| d.config().clone()) else {
            return self.on_cap(doc, via, now);
        };
        let signed;
        let (xml, by): (&[u8], String) = match cfg.mqtt_trust {
            MqttTrust::Broker => (doc, "broker".into()),
            MqttTrust::Signed if doc.trim_ascii_start().starts_with(b"<") => {
                let reason = "unsigned: a plain CAP document; with [warnings] mqtt_trust = \"signed\" only signed envelopes (tgw broadcast sign --cap) are accepted".to_string();
                return self.refuse_cap(via, "mqtt", "unsigned", reason);
            }
            MqttTrust::Signed => match self.verifier.verify_cap(doc, now) {
                Ok(s) => {
                    if let Ok(n) = serde_json::to_string(&self.verifier.snapshot())
                        && let Err(e) = self.records.set_kv("signed_nonces", &n)
                    {
                        tracing::warn!(error = %e, "saving command nonces failed");
                    }
                    signed = s;
                    (signed.cap.as_bytes(), format!("key:{}", signed.key_id))
                }
                Err(r) => {
                    let reason = format!("{}: {r}", r.code());
                    return self.refuse_cap(via, "mqtt", r.code(), reason);
                }
            },
        };
        let alert = match device_drivers::cap::parse(xml) {
            Ok(a) => a,
            Err(e) => return self.refuse_cap(via, &by, "malformed", e.to_string()),
        };
        if !cfg.mqtt_sender_allowed(&alert.sender) {
            let reason = format!(
                "sender-not-allowed: CAP sender `{}` is not in [warnings] mqtt_senders",
                alert.sender.chars().take(64).collect::<String>()
            );
            return self.refuse_cap(via, &by, "sender_not_allowed", reason);
        }
        self.on_alert(&alert, tgw_core::warning::sha256(xml), via, now)
    }

    /// A document from the MQTT topic that is not trusted: logged, audited
    /// (`broadcast.cap_refused`, outcome `code`), answered `reject`.
    fn refuse_cap(&mut self, via: &str, actor: &str, code: &str, reason: String) -> CapOutcome {
        tracing::warn!(via, code, reason = %reason, "CAP document from MQTT refused");
        self.records.audit(
            actor,
            via,
            "broadcast.cap_refused",
            None,
            Some(json!({ "reason": reason })),
            code,
        );
        CapOutcome {
            decision: "reject".into(),
            reason: Some(reason),
            broadcast: None,
            identifier: None,
        }
    }

    pub(super) fn on_cap(&mut self, doc: &[u8], via: &str, now: Ms) -> CapOutcome {
        let alert = match device_drivers::cap::parse(doc) {
            Ok(a) => a,
            Err(e) => {
                let reason = e.to_string();
                tracing::warn!(via, error = %reason, "CAP document rejected");
                return CapOutcome {
                    decision: "reject".into(),
                    reason: Some(reason),
                    broadcast: None,
                    identifier: None,
                };
            }
        };
        self.on_alert(&alert, tgw_core::warning::sha256(doc), via, now)
    }

    pub(super) fn on_alert(
        &mut self,
        alert: &device_drivers::cap::Alert,
        sha: [u8; 32],
        via: &str,
        now: Ms,
    ) -> CapOutcome {
        use crate::broadcast::record::CapRow;
        let received_at = rfc3339(now);
        let Some(desk) = self.desk.as_mut() else {
            return CapOutcome {
                decision: "ignore".into(),
                reason: Some("early warnings are not enabled ([warnings] enabled = false)".into()),
                broadcast: None,
                identifier: Some(alert.identifier.clone()),
            };
        };
        let decision = desk.handle(alert, sha, now);
        let mut row = CapRow {
            identifier: alert.identifier.clone(),
            sender: alert.sender.clone(),
            sent: alert.sent.to_string(),
            msg_type: format!("{:?}", alert.msg_type),
            status: format!("{:?}", alert.status),
            headline: alert.infos.iter().find_map(|i| i.headline.clone()),
            received_at,
            via: via.to_string(),
            decision: String::new(),
            reason: None,
            broadcast_id: None,
        };
        // Each branch fills in the row; the answer is derived from it.
        let (decision, reason, broadcast) = match decision {
            tgw_core::warning::Decision::Ignore { reason } => {
                tracing::info!(alert = %alert.identifier, reason = %reason, "CAP alert ignored");
                ("ignore", reason, None)
            }
            tgw_core::warning::Decision::Cancel {
                broadcast_id,
                reason,
                ..
            } => {
                tracing::warn!(alert = %alert.identifier, broadcast = %broadcast_id, "CAP cancel: stopping the warning");
                self.expiries.retain(|(_, id)| *id != broadcast_id);
                self.cancel_now(&broadcast_id, now);
                ("cancel", reason, Some(broadcast_id))
            }
            tgw_core::warning::Decision::Play(plan) => {
                if let Some(old) = &plan.replaces {
                    self.expiries.retain(|(_, id)| id != old);
                    self.cancel_now(old, now);
                }
                let chime = plan.chime.then_some(Part::Chime);
                let spec = Spec {
                    id: Some(plan.broadcast_id.clone()),
                    origin: format!("cap:{}", plan.alert_id),
                    title: row.headline.clone().unwrap_or_else(|| plan.event.clone()),
                    priority: plan.priority,
                    targets: plan.targets.clone(),
                    recipe: Recipe {
                        pre: chime.clone(),
                        items: vec![Part::Tts(plan.text.clone())],
                        post: chime,
                        repeat: plan.repeat,
                        interval: Duration::from_millis(plan.interval_ms.max(0) as u64),
                        volume: None,
                    },
                    start_at: None,
                    latest_start: plan.expires,
                    on_preempt: OnPreempt::Resume,
                };
                match self.submit(spec, now) {
                    Ok(s) => {
                        tracing::warn!(alert = %plan.alert_id, broadcast = %s.id, priority = %plan.priority, horns = s.horns, "CAP warning broadcast");
                        if let Some(e) = plan.expires {
                            self.expiries.push((e, s.id.clone()));
                        }
                        ("play", plan.event, Some(s.id))
                    }
                    Err(e) => {
                        tracing::warn!(alert = %plan.alert_id, error = %e, "CAP warning could not be broadcast");
                        ("ignore", e.to_string(), None)
                    }
                }
            }
        };
        row.decision = decision.to_string();
        row.reason = Some(reason);
        row.broadcast_id = broadcast;
        let out = CapOutcome {
            decision: row.decision.clone(),
            reason: row.reason.clone(),
            broadcast: row.broadcast_id.clone(),
            identifier: Some(row.identifier.clone()),
        };
        if row.decision == "play" || row.decision == "cancel" {
            self.records.audit(
                &format!("cap:{}", row.sender),
                &row.via,
                &format!("broadcast.cap_{}", row.decision),
                row.broadcast_id.as_deref(),
                Some(json!({ "identifier": row.identifier, "headline": row.headline })),
                "ok",
            );
        }
        if let Err(e) = self.records.cap(&row) {
            tracing::warn!(error = %e, "recording a CAP alert failed");
        }
        self.save_desk();
        self.live.publish(LiveEvent::Alert {
            alert: serde_json::to_value(&row).unwrap_or(Value::Null),
        });
        out
    }
}
