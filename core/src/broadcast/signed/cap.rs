//! Signed CAP documents (`[warnings] mqtt_trust = "signed"`): the same
//! envelope as a command (`key_id`, `payload`, `sig`), whose payload is the
//! JSON object
//!
//! ```json
//! {"not_after": "2026-07-15T10:00:00+08:00", "nonce": "<16-64 characters>", "cap": "<the CAP 1.2 XML>"}
//! ```
//!
//! No other field is allowed, so a signed CAP payload is never a valid
//! command payload and the other way round (a signature for one cannot be
//! replayed as the other). The checks are those of a command: size, envelope,
//! signature, key, signature, fields, `not_after` (after `now`, at most 24 h
//! ahead), nonce (shared memory with commands), and scope: only a key whose
//! scope is `["all"]` may sign CAP, as the desk, not the sender, decides
//! where an alert plays.

use serde_json::{Map, Value};

use super::MAX_AHEAD_MS;
use super::command::{Refusal, malformed};
use super::envelope::{Envelope, clip, parse_nonce, parse_not_after};
use super::verifier::Verifier;
use crate::broadcast::{Ms, Target};

/// Largest signed CAP envelope accepted: 512 KiB (a CAP document is at most
/// [`device_drivers::cap::MAX_CAP_BYTES`], base64 adds a third).
pub const MAX_SIGNED_CAP_BYTES: usize = 512 * 1024;

/// A signed CAP document that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCap {
    /// The key that signed it.
    pub key_id: String,
    /// Not valid at or after this instant.
    pub not_after: Ms,
    /// The nonce, now remembered until `not_after`.
    pub nonce: String,
    /// The CAP XML, for [`device_drivers::cap::parse`].
    pub cap: String,
}

/// The payload JSON of a signed CAP document, for signers (the CLI, tests).
pub fn cap_payload(cap_xml: &str, not_after_rfc3339: &str, nonce: &str) -> String {
    serde_json::json!({ "not_after": not_after_rfc3339, "nonce": nonce, "cap": cap_xml })
        .to_string()
}

impl Verifier {
    /// Checks one signed CAP document received at `now` and, when it passes,
    /// remembers its nonce. See the module docs of [`self`](super::cap).
    pub fn verify_cap(&mut self, bytes: &[u8], now: Ms) -> Result<SignedCap, Refusal> {
        if bytes.len() > MAX_SIGNED_CAP_BYTES {
            return Err(Refusal::TooLarge {
                len: bytes.len(),
                max: MAX_SIGNED_CAP_BYTES,
            });
        }
        let env = Envelope::parse(bytes)?;
        let (key_id, payload, scope) = self.check_signature(env)?;
        let v: Value = serde_json::from_slice(&payload)
            .map_err(|e| malformed("payload", format!("not JSON: {e}")))?;
        let Value::Object(mut m) = v else {
            return Err(malformed("payload", "must be a JSON object"));
        };
        if let Some(k) = m
            .keys()
            .find(|k| !matches!(k.as_str(), "not_after" | "nonce" | "cap"))
        {
            return Err(malformed(
                "payload",
                format!(
                    "unknown field `{}` (a signed CAP payload has not_after, nonce, cap)",
                    clip(k)
                ),
            ));
        }
        let (not_after, not_after_text) = parse_not_after(&str_field(&mut m, "not_after")?)?;
        let nonce = parse_nonce(str_field(&mut m, "nonce")?)?;
        let cap = str_field(&mut m, "cap")?;
        if cap.trim().is_empty() || cap.len() > device_drivers::cap::MAX_CAP_BYTES {
            return Err(malformed(
                "cap",
                format!(
                    "must be a CAP document of 1-{} bytes",
                    device_drivers::cap::MAX_CAP_BYTES
                ),
            ));
        }
        let id = "cap".to_string();
        if not_after <= now {
            return Err(Refusal::Expired {
                key_id,
                id,
                not_after: not_after_text,
            });
        }
        if not_after > now.saturating_add(MAX_AHEAD_MS) {
            return Err(Refusal::TooFarAhead {
                key_id,
                id,
                not_after: not_after_text,
            });
        }
        if self.is_replay(&nonce, now) {
            return Err(Refusal::Replayed { key_id, id });
        }
        if !scope.contains(&Target::All) {
            return Err(Refusal::OutOfScope {
                key_id,
                target: "all (CAP is signed only by keys with scope [\"all\"])".into(),
            });
        }
        self.remember_nonce(&nonce, not_after, now)?;
        Ok(SignedCap {
            key_id,
            not_after,
            nonce,
            cap,
        })
    }
}

fn str_field(m: &mut Map<String, Value>, field: &'static str) -> Result<String, Refusal> {
    match m.remove(field) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(malformed(field, "missing")),
        Some(_) => Err(malformed(field, "must be a string")),
    }
}
