//! The signed emergency command glue (`cmd/emergency`): verified, its
//! nonce memory saved, audited, and carried out (a broadcast started or
//! stopped).

use std::time::Duration;

use serde_json::{Value, json};

use super::Runtime;
use super::handle::SignedRefusal;
use super::spec::Spec;
use crate::broadcast::render::{Part, Recipe};
use crate::broadcast::{Ms, OnPreempt};

impl Runtime {
    pub(super) fn on_signed(&mut self, body: &[u8], now: Ms) -> Result<Value, SignedRefusal> {
        use crate::broadcast::signed::{Action as SAction, Content};
        let cmd = match self.verifier.verify(body, now) {
            Ok(c) => c,
            Err(r) => {
                tracing::warn!(code = r.code(), reason = %r, "signed command refused");
                self.records.audit(
                    "mqtt",
                    "cmd/emergency",
                    "broadcast.signed",
                    None,
                    Some(json!({ "reason": r.to_string() })),
                    r.code(),
                );
                return Err(SignedRefusal::new(r.code(), r.to_string()));
            }
        };
        if let Ok(s) = serde_json::to_string(&self.verifier.snapshot())
            && let Err(e) = self.records.set_kv("signed_nonces", &s)
        {
            tracing::warn!(error = %e, "saving command nonces failed");
        }
        match cmd.action {
            SAction::Stop => {
                let stopped = self.cancel_now(&cmd.id, now);
                self.records.audit(
                    &format!("key:{}", cmd.key_id),
                    "mqtt",
                    "broadcast.signed_stop",
                    Some(&cmd.id),
                    None,
                    if stopped { "ok" } else { "not_found" },
                );
                tracing::warn!(key = %cmd.key_id, broadcast = %cmd.id, stopped, "signed stop");
                Ok(json!({ "broadcast": cmd.id, "stopped": stopped }))
            }
            SAction::Start => {
                let item = match cmd.content {
                    Some(Content::Text(t)) => Part::Tts(t),
                    Some(Content::Asset(a)) => Part::Asset(a),
                    None => {
                        return Err(SignedRefusal::new(
                            "malformed",
                            "start without text or asset",
                        ));
                    }
                };
                let spec = Spec {
                    id: Some(cmd.id.clone()),
                    origin: format!("mqtt:{}", cmd.key_id),
                    title: match &item {
                        Part::Tts(t) => t.chars().take(40).collect(),
                        _ => "紧急广播".into(),
                    },
                    priority: cmd.priority,
                    targets: cmd.targets.clone(),
                    recipe: Recipe {
                        pre: Some(Part::Chime),
                        items: vec![item],
                        post: None,
                        repeat: u32::from(cmd.repeat.unwrap_or(1)),
                        interval: Duration::from_secs(3),
                        volume: cmd.volume,
                    },
                    start_at: None,
                    latest_start: None,
                    on_preempt: OnPreempt::Drop,
                };
                let targets: Vec<String> = cmd.targets.iter().map(|t| t.to_string()).collect();
                let actor = format!("key:{}", cmd.key_id);
                let s = match self.submit(spec, now) {
                    Ok(s) => s,
                    Err(e) => {
                        self.records.audit(
                            &actor,
                            "mqtt",
                            "broadcast.signed",
                            Some(&cmd.id),
                            Some(json!({"targets": targets, "reason": e.to_string()})),
                            "refused",
                        );
                        return Err(SignedRefusal::new("refused", e.to_string()));
                    }
                };
                self.records.audit(
                    &actor,
                    "mqtt",
                    "broadcast.signed",
                    Some(&s.id),
                    Some(json!({"targets": targets, "priority": cmd.priority, "horns": s.horns})),
                    "ok",
                );
                tracing::warn!(key = %cmd.key_id, broadcast = %s.id, horns = s.horns, "signed emergency broadcast");
                Ok(serde_json::to_value(&s).unwrap_or(Value::Null))
            }
        }
    }
}
