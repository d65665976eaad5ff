//! Signed emergency commands over MQTT (pure): Ed25519 signatures, a key set
//! with per-key scopes, expiry, and nonce memory against replays.
//!
//! The wire format (`docs/warnings.md`) is a JSON envelope
//!
//! ```json
//! {"key_id": "county-1", "payload": "<base64 of the payload bytes>", "sig": "<base64 Ed25519 signature over exactly those bytes>"}
//! ```
//!
//! whose payload is itself JSON: `id`, `action` (`start` | `stop`),
//! `not_after` (RFC 3339), `nonce` (16-64 characters), `targets`, optional
//! `priority` (`emergency` | `superior`, default `emergency`), for `start`
//! exactly one of `text` or `asset` (`sha256:<64 hex>`), optional `volume`
//! (0-100) and `repeat` (1-10).
//!
//! [`Verifier::verify`] checks, in this order: size, envelope, presence of a
//! signature, key, signature (before the payload is even parsed), payload
//! fields, `not_after` (must be after `now` and at most 24 h ahead), nonce
//! (not seen before; remembered until its `not_after`; when the memory is full
//! the command is refused rather than an unexpired nonce forgotten), scope.
//! A [`Refusal`] never carries the signature or key material, only the key id.
//!
//! The file depends on `std`, `serde`, `serde_json`, `base64`, `time`,
//! `thiserror`, `ed25519-dalek` and the shared words of [`super`], so the
//! fuzz target `fuzz/fuzz_targets/signed_command.rs` includes it directly.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Ms, Priority, Target};

/// Largest command envelope accepted: 16 KiB.
pub const MAX_COMMAND_BYTES: usize = 16 * 1024;
/// How far ahead `not_after` may be: 24 h.
pub const MAX_AHEAD_MS: Ms = 24 * 3600 * 1000;
/// Default number of unexpired nonces remembered.
pub const DEFAULT_MAX_NONCES: usize = 10_000;
/// Most targets in one command.
pub const MAX_TARGETS: usize = 256;
/// Most characters of a command's TTS text.
pub const MAX_TEXT_CHARS: usize = 2000;

/// Standard base64; padding optional on input, written on output.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One trusted key, as written in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// The key id senders put in `key_id` (1-64 of `[A-Za-z0-9._:-]`). Required.
    pub id: String,
    /// The Ed25519 public key: base64 of its 32 bytes. Required.
    pub public_key: String,
    /// The targets this key may address; `["all"]` allows every target.
    /// Required, not empty.
    pub scope: Vec<Target>,
}

#[derive(Debug, Clone)]
struct Key {
    verifying: VerifyingKey,
    scope: Vec<Target>,
}

/// The trusted keys, checked and indexed by id.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: BTreeMap<String, Key>,
}

impl KeySet {
    /// Builds the key set from configuration. Errors name the entry and the
    /// field (`keys[1].public_key: …`) and never echo key material.
    pub fn from_config(keys: &[KeyConfig]) -> Result<KeySet, String> {
        let mut out = BTreeMap::new();
        for (i, k) in keys.iter().enumerate() {
            if !valid_token(&k.id, 64) {
                return Err(format!(
                    "keys[{i}].id: must be 1-64 characters of A-Z a-z 0-9 . _ : -"
                ));
            }
            let bytes = B64
                .decode(k.public_key.trim())
                .map_err(|_| format!("keys[{i}].public_key (key `{}`): not base64", k.id))?;
            let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                format!(
                    "keys[{i}].public_key (key `{}`): {} bytes, an Ed25519 public key is 32",
                    k.id,
                    bytes.len()
                )
            })?;
            let verifying = VerifyingKey::from_bytes(&arr).map_err(|_| {
                format!(
                    "keys[{i}].public_key (key `{}`): not a valid Ed25519 public key",
                    k.id
                )
            })?;
            if k.scope.is_empty() {
                return Err(format!(
                    "keys[{i}].scope (key `{}`): must list at least one target (`all` for every target)",
                    k.id
                ));
            }
            let key = Key {
                verifying,
                scope: k.scope.clone(),
            };
            if out.insert(k.id.clone(), key).is_some() {
                return Err(format!("keys[{i}].id: key `{}` is listed twice", k.id));
            }
        }
        Ok(KeySet { keys: out })
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is configured (every command is then refused).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The configured key ids.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

/// What a command asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Start the broadcast.
    Start,
    /// Stop the broadcast with this `id`.
    Stop,
}

/// What a `start` command plays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Text to speak (TTS).
    Text(String),
    /// A stored asset, `sha256:<64 hex>`.
    Asset(String),
}

/// A command that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmergencyCommand {
    /// The key that signed it.
    pub key_id: String,
    /// The broadcast id (1-128 of `[A-Za-z0-9._:-]`); `stop` names it.
    pub id: String,
    /// Start or stop.
    pub action: Action,
    /// Not valid at or after this instant.
    pub not_after: Ms,
    /// The nonce, now remembered until `not_after`.
    pub nonce: String,
    /// Where, each inside the key's scope; not empty, no duplicates.
    pub targets: Vec<Target>,
    /// `Emergency` unless the payload said `superior`.
    pub priority: Priority,
    /// For `start`: what to play. `None` for `stop`.
    pub content: Option<Content>,
    /// Volume 0-100, when given.
    pub volume: Option<u8>,
    /// Times to play (1-10), when given.
    pub repeat: Option<u8>,
}

/// Why a command was refused. `Display` is the reason for logs and replies;
/// [`Refusal::code`] is a bounded label for metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Over [`MAX_COMMAND_BYTES`].
    #[error("command of {len} bytes is over the {MAX_COMMAND_BYTES}-byte limit")]
    TooLarge {
        /// Its size.
        len: usize,
    },
    /// The envelope or payload is not what the format says; `field` names where.
    #[error("malformed command: `{field}`: {reason}")]
    Malformed {
        /// `envelope`, `key_id`, `payload`, `sig`, or a payload field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// No signature (`sig` missing, null or empty).
    #[error("unsigned command for key `{key_id}`: `sig` is missing")]
    Unsigned {
        /// The key id it claimed.
        key_id: String,
    },
    /// The key id is not in the key set.
    #[error("unknown key `{key_id}`")]
    UnknownKey {
        /// The key id it claimed.
        key_id: String,
    },
    /// The signature does not verify over the payload bytes with that key.
    #[error("bad signature for key `{key_id}`")]
    BadSignature {
        /// The key id it claimed.
        key_id: String,
    },
    /// `not_after` is at or before now.
    #[error("command `{id}` (key `{key_id}`) expired: not_after {not_after} is not after now")]
    Expired {
        /// Signing key.
        key_id: String,
        /// Command id.
        id: String,
        /// `not_after` as sent.
        not_after: String,
    },
    /// `not_after` is more than [`MAX_AHEAD_MS`] ahead.
    #[error("command `{id}` (key `{key_id}`): not_after {not_after} is more than 24 h ahead")]
    TooFarAhead {
        /// Signing key.
        key_id: String,
        /// Command id.
        id: String,
        /// `not_after` as sent.
        not_after: String,
    },
    /// The nonce was already used by a command that has not expired.
    #[error("command `{id}` (key `{key_id}`) replays a nonce already used")]
    Replayed {
        /// Signing key.
        key_id: String,
        /// Command id.
        id: String,
    },
    /// The nonce memory holds `max` unexpired nonces: refused rather than
    /// forgetting one early (which would let it be replayed).
    #[error("nonce memory is full ({max} unexpired nonces): command refused")]
    NonceMemoryFull {
        /// The capacity.
        max: usize,
    },
    /// A target is not inside the key's scope.
    #[error("key `{key_id}` may not address `{target}`")]
    OutOfScope {
        /// Signing key.
        key_id: String,
        /// The first target outside its scope.
        target: String,
    },
}

impl Refusal {
    /// A bounded label for metrics and replies.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::TooLarge { .. } => "too_large",
            Refusal::Malformed { .. } => "malformed",
            Refusal::Unsigned { .. } => "unsigned",
            Refusal::UnknownKey { .. } => "unknown_key",
            Refusal::BadSignature { .. } => "bad_signature",
            Refusal::Expired { .. } => "expired",
            Refusal::TooFarAhead { .. } => "too_far_ahead",
            Refusal::Replayed { .. } => "replayed",
            Refusal::NonceMemoryFull { .. } => "nonce_memory_full",
            Refusal::OutOfScope { .. } => "out_of_scope",
        }
    }
}

fn malformed(field: &'static str, reason: impl Into<String>) -> Refusal {
    Refusal::Malformed {
        field,
        reason: reason.into(),
    }
}

/// The remembered nonces, for saving across restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonceSnapshot {
    /// (nonce, its command's `not_after`).
    pub nonces: Vec<(String, Ms)>,
}

/// Verifies commands against a [`KeySet`] and remembers their nonces.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: KeySet,
    nonces: HashMap<String, Ms>,
    max_nonces: usize,
}

impl Verifier {
    /// A verifier with an empty nonce memory of [`DEFAULT_MAX_NONCES`].
    pub fn new(keys: KeySet) -> Verifier {
        Verifier::with_max_nonces(keys, DEFAULT_MAX_NONCES)
    }

    /// A verifier remembering at most `max` unexpired nonces (at least 1).
    pub fn with_max_nonces(keys: KeySet, max: usize) -> Verifier {
        Verifier {
            keys,
            nonces: HashMap::new(),
            max_nonces: max.max(1),
        }
    }

    /// A verifier whose nonce memory is `snapshot` (from [`Verifier::snapshot`]
    /// before a restart). Entries past their `not_after` are dropped lazily.
    pub fn restore(keys: KeySet, snapshot: NonceSnapshot) -> Verifier {
        let mut v = Verifier::new(keys);
        v.nonces = snapshot.nonces.into_iter().collect();
        v
    }

    /// The nonce memory, sorted by `not_after`, for saving.
    pub fn snapshot(&self) -> NonceSnapshot {
        let mut nonces: Vec<(String, Ms)> =
            self.nonces.iter().map(|(n, t)| (n.clone(), *t)).collect();
        nonces.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        NonceSnapshot { nonces }
    }

    /// Replaces the key set (config reload); the nonce memory is kept.
    pub fn set_keys(&mut self, keys: KeySet) {
        self.keys = keys;
    }

    /// Number of nonces remembered (expired ones included until purged).
    pub fn nonce_count(&self) -> usize {
        self.nonces.len()
    }

    /// Checks one command received at `now` and, when it passes, remembers
    /// its nonce. See the module docs for the order of checks.
    pub fn verify(&mut self, bytes: &[u8], now: Ms) -> Result<EmergencyCommand, Refusal> {
        if bytes.len() > MAX_COMMAND_BYTES {
            return Err(Refusal::TooLarge { len: bytes.len() });
        }
        let env = Envelope::parse(bytes)?;
        let Some(sig_b64) = env.sig else {
            return Err(Refusal::Unsigned { key_id: env.key_id });
        };
        let key = self
            .keys
            .keys
            .get(&env.key_id)
            .ok_or_else(|| Refusal::UnknownKey {
                key_id: env.key_id.clone(),
            })?;
        let payload = B64
            .decode(env.payload.as_bytes())
            .map_err(|_| malformed("payload", "not base64"))?;
        let sig = B64
            .decode(sig_b64.as_bytes())
            .map_err(|_| malformed("sig", "not base64"))?;
        let sig: [u8; 64] = sig.as_slice().try_into().map_err(|_| {
            malformed(
                "sig",
                format!("{} bytes, an Ed25519 signature is 64", sig.len()),
            )
        })?;
        key.verifying
            .verify_strict(&payload, &Signature::from_bytes(&sig))
            .map_err(|_| Refusal::BadSignature {
                key_id: env.key_id.clone(),
            })?;

        let p = Payload::parse(&payload)?;
        let (key_id, id) = (env.key_id, p.id);
        if p.not_after <= now {
            return Err(Refusal::Expired {
                key_id,
                id,
                not_after: p.not_after_text,
            });
        }
        if p.not_after > now.saturating_add(MAX_AHEAD_MS) {
            return Err(Refusal::TooFarAhead {
                key_id,
                id,
                not_after: p.not_after_text,
            });
        }
        if self.nonces.get(&p.nonce).is_some_and(|&t| t > now) {
            return Err(Refusal::Replayed { key_id, id });
        }
        let all = key.scope.contains(&Target::All);
        if let Some(t) = p.targets.iter().find(|t| !all && !key.scope.contains(t)) {
            return Err(Refusal::OutOfScope {
                key_id,
                target: t.to_string(),
            });
        }
        if self.nonces.len() >= self.max_nonces && !self.nonces.contains_key(&p.nonce) {
            self.nonces.retain(|_, t| *t > now);
            if self.nonces.len() >= self.max_nonces {
                return Err(Refusal::NonceMemoryFull {
                    max: self.max_nonces,
                });
            }
        }
        self.nonces.insert(p.nonce.clone(), p.not_after);
        Ok(EmergencyCommand {
            key_id,
            id,
            action: p.action,
            not_after: p.not_after,
            nonce: p.nonce,
            targets: p.targets,
            priority: p.priority,
            content: p.content,
            volume: p.volume,
            repeat: p.repeat,
        })
    }
}

/// Signs `payload` (the payload JSON bytes, exactly as they will be verified)
/// and returns the envelope JSON. Used by tests, the CLI and the benches.
pub fn sign(signing_key: &SigningKey, payload: &[u8], key_id: &str) -> String {
    let sig = signing_key.sign(payload);
    serde_json::json!({
        "key_id": key_id,
        "payload": B64.encode(payload),
        "sig": B64.encode(sig.to_bytes()),
    })
    .to_string()
}

/// The base64 of a public key, as `KeyConfig::public_key` wants it.
pub fn public_key_base64(key: &VerifyingKey) -> String {
    B64.encode(key.as_bytes())
}

/// 1-`max` characters of `[A-Za-z0-9._:-]`.
fn valid_token(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

struct Envelope {
    key_id: String,
    payload: String,
    sig: Option<String>,
}

impl Envelope {
    fn parse(bytes: &[u8]) -> Result<Envelope, Refusal> {
        let v: Value = serde_json::from_slice(bytes)
            .map_err(|e| malformed("envelope", format!("not JSON: {e}")))?;
        let Value::Object(mut m) = v else {
            return Err(malformed("envelope", "must be a JSON object"));
        };
        if let Some(k) = m
            .keys()
            .find(|k| !matches!(k.as_str(), "key_id" | "payload" | "sig"))
        {
            return Err(malformed(
                "envelope",
                format!("unknown field `{}`", clip(k)),
            ));
        }
        let key_id = match m.remove("key_id") {
            Some(Value::String(s)) if valid_token(&s, 64) => s,
            Some(Value::String(_)) => {
                return Err(malformed(
                    "key_id",
                    "must be 1-64 characters of A-Z a-z 0-9 . _ : -",
                ));
            }
            Some(_) => return Err(malformed("key_id", "must be a string")),
            None => return Err(malformed("key_id", "missing")),
        };
        let sig = match m.remove("sig") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => return Err(malformed("sig", "must be a base64 string")),
        };
        let payload = match m.remove("payload") {
            Some(Value::String(s)) if !s.is_empty() => s,
            Some(Value::String(_)) => return Err(malformed("payload", "empty")),
            Some(_) => return Err(malformed("payload", "must be a base64 string")),
            None => return Err(malformed("payload", "missing")),
        };
        Ok(Envelope {
            key_id,
            payload,
            sig,
        })
    }
}

struct Payload {
    id: String,
    action: Action,
    not_after: Ms,
    not_after_text: String,
    nonce: String,
    targets: Vec<Target>,
    priority: Priority,
    content: Option<Content>,
    volume: Option<u8>,
    repeat: Option<u8>,
}

const PAYLOAD_FIELDS: &[&str] = &[
    "id",
    "action",
    "not_after",
    "nonce",
    "targets",
    "priority",
    "text",
    "asset",
    "volume",
    "repeat",
];

impl Payload {
    fn parse(bytes: &[u8]) -> Result<Payload, Refusal> {
        let v: Value = serde_json::from_slice(bytes)
            .map_err(|e| malformed("payload", format!("not JSON: {e}")))?;
        let Value::Object(mut m) = v else {
            return Err(malformed("payload", "must be a JSON object"));
        };
        if let Some(k) = m.keys().find(|k| !PAYLOAD_FIELDS.contains(&k.as_str())) {
            return Err(malformed("payload", format!("unknown field `{}`", clip(k))));
        }
        let id = req_str(&mut m, "id")?;
        if !valid_token(&id, 128) {
            return Err(malformed(
                "id",
                "must be 1-128 characters of A-Z a-z 0-9 . _ : -",
            ));
        }
        let action = match req_str(&mut m, "action")?.as_str() {
            "start" => Action::Start,
            "stop" => Action::Stop,
            other => {
                return Err(malformed(
                    "action",
                    format!("`{}` is not start or stop", clip(other)),
                ));
            }
        };
        let not_after_text = req_str(&mut m, "not_after")?;
        let not_after = OffsetDateTime::parse(&not_after_text, &Rfc3339)
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as Ms)
            .map_err(|_| {
                malformed(
                    "not_after",
                    format!(
                        "`{}` is not an RFC 3339 time such as 2026-07-15T09:00:00+08:00",
                        clip(&not_after_text)
                    ),
                )
            })?;
        let nonce = req_str(&mut m, "nonce")?;
        if !(16..=64).contains(&nonce.len()) || !nonce.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(malformed(
                "nonce",
                "must be 16-64 printable ASCII characters without spaces",
            ));
        }
        let targets = match m.remove("targets") {
            Some(Value::Array(a)) => a,
            Some(_) => return Err(malformed("targets", "must be an array of strings")),
            None => return Err(malformed("targets", "missing")),
        };
        if targets.is_empty() || targets.len() > MAX_TARGETS {
            return Err(malformed(
                "targets",
                format!("must list 1-{MAX_TARGETS} targets"),
            ));
        }
        let mut parsed: Vec<Target> = Vec::with_capacity(targets.len());
        for t in targets {
            let Value::String(s) = t else {
                return Err(malformed("targets", "must be an array of strings"));
            };
            let t: Target = s
                .parse()
                .map_err(|e: String| malformed("targets", clip(&e)))?;
            if !parsed.contains(&t) {
                parsed.push(t);
            }
        }
        let priority = match opt_str(&mut m, "priority")?.as_deref() {
            None | Some("emergency") => Priority::Emergency,
            Some("superior") => Priority::Superior,
            Some(other) => {
                return Err(malformed(
                    "priority",
                    format!("`{}` is not emergency or superior", clip(other)),
                ));
            }
        };
        let text = opt_str(&mut m, "text")?;
        let asset = opt_str(&mut m, "asset")?;
        let volume = opt_int(&mut m, "volume", 0, 100)?;
        let repeat = opt_int(&mut m, "repeat", 1, 10)?;
        let content = match (action, text, asset) {
            (Action::Start, Some(t), None) => {
                let n = t.chars().count();
                if t.trim().is_empty() || n > MAX_TEXT_CHARS {
                    return Err(malformed(
                        "text",
                        format!("must be 1-{MAX_TEXT_CHARS} characters, not blank"),
                    ));
                }
                Some(Content::Text(t))
            }
            (Action::Start, None, Some(a)) => {
                let ok = a.strip_prefix("sha256:").is_some_and(|h| {
                    h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                });
                if !ok {
                    return Err(malformed("asset", "must be sha256:<64 lowercase hex>"));
                }
                Some(Content::Asset(a))
            }
            (Action::Start, Some(_), Some(_)) => {
                return Err(malformed("text", "give either text or asset, not both"));
            }
            (Action::Start, None, None) => {
                return Err(malformed("text", "start needs text or asset"));
            }
            (Action::Stop, t, a) => {
                if t.is_some() || a.is_some() || volume.is_some() || repeat.is_some() {
                    return Err(malformed(
                        "action",
                        "stop takes no text, asset, volume or repeat",
                    ));
                }
                None
            }
        };
        Ok(Payload {
            id,
            action,
            not_after,
            not_after_text: clip(&not_after_text),
            nonce,
            targets: parsed,
            priority,
            content,
            volume,
            repeat,
        })
    }
}

fn opt_str(m: &mut Map<String, Value>, field: &'static str) -> Result<Option<String>, Refusal> {
    match m.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(malformed(field, "must be a string")),
    }
}

fn req_str(m: &mut Map<String, Value>, field: &'static str) -> Result<String, Refusal> {
    opt_str(m, field)?.ok_or_else(|| malformed(field, "missing"))
}

fn opt_int(
    m: &mut Map<String, Value>,
    field: &'static str,
    min: u8,
    max: u8,
) -> Result<Option<u8>, Refusal> {
    match m.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if (u64::from(min)..=u64::from(max)).contains(&v) => Ok(Some(v as u8)),
            _ => Err(malformed(field, format!("must be an integer {min}-{max}"))),
        },
        Some(_) => Err(malformed(field, format!("must be an integer {min}-{max}"))),
    }
}

/// At most 64 characters of a value a sender chose, for messages.
fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// 2026-07-15T09:00:00+08:00.
    const NOW: Ms = 1_784_077_200_000;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn keyset(scope: &[&str]) -> KeySet {
        KeySet::from_config(&[KeyConfig {
            id: "county-1".into(),
            public_key: public_key_base64(&key(1).verifying_key()),
            scope: scope.iter().map(|s| s.parse().unwrap()).collect(),
        }])
        .unwrap()
    }

    fn payload(nonce: &str) -> Value {
        json!({
            "id": "flood-2026-07-15",
            "action": "start",
            "not_after": "2026-07-15T10:00:00+08:00",
            "nonce": nonce,
            "targets": ["village:320115106201"],
            "text": "江宁区防汛指挥部紧急通知：请低洼地带居民立即转移。",
            "volume": 90,
            "repeat": 3
        })
    }

    fn signed(p: &Value) -> Vec<u8> {
        sign(&key(1), p.to_string().as_bytes(), "county-1").into_bytes()
    }

    fn verify(v: &mut Verifier, p: &Value) -> Result<EmergencyCommand, Refusal> {
        v.verify(&signed(p), NOW)
    }

    #[test]
    fn now_constant_is_right() {
        let t = OffsetDateTime::parse("2026-07-15T09:00:00+08:00", &Rfc3339).unwrap();
        assert_eq!(t.unix_timestamp() * 1000, NOW);
    }

    #[test]
    fn valid_command_passes() {
        let mut v = Verifier::new(keyset(&["village:320115106201", "village:320115106202"]));
        let c = verify(&mut v, &payload("n-0123456789abcdef")).unwrap();
        assert_eq!(c.key_id, "county-1");
        assert_eq!(c.id, "flood-2026-07-15");
        assert_eq!(c.action, Action::Start);
        assert_eq!(c.not_after, NOW + 3_600_000);
        assert_eq!(c.targets, vec![Target::Village("320115106201".into())]);
        assert_eq!(c.priority, Priority::Emergency);
        assert!(matches!(c.content, Some(Content::Text(ref t)) if t.contains("转移")));
        assert_eq!((c.volume, c.repeat), (Some(90), Some(3)));
        assert_eq!(v.nonce_count(), 1);
    }

    #[test]
    fn stop_and_asset_and_superior() {
        let mut v = Verifier::new(keyset(&["all"]));
        let stop = json!({"id": "flood-2026-07-15", "action": "stop",
            "not_after": "2026-07-15T09:05:00+08:00", "nonce": "stop-0123456789ab",
            "targets": ["all"], "priority": "superior"});
        let c = verify(&mut v, &stop).unwrap();
        assert_eq!(
            (c.action, c.priority, c.content),
            (Action::Stop, Priority::Superior, None)
        );
        let mut p = payload("asset-0123456789ab");
        p.as_object_mut().unwrap().remove("text");
        p["asset"] = json!(format!("sha256:{}", "ab".repeat(32)));
        let c = verify(&mut v, &p).unwrap();
        assert!(matches!(c.content, Some(Content::Asset(_))));
    }

    #[test]
    fn too_large() {
        let mut v = Verifier::new(keyset(&["all"]));
        let big = vec![b' '; MAX_COMMAND_BYTES + 1];
        assert_eq!(v.verify(&big, NOW).unwrap_err().code(), "too_large");
    }

    #[test]
    fn malformed_envelopes_name_the_field() {
        let mut v = Verifier::new(keyset(&["all"]));
        let good: Value = serde_json::from_slice(&signed(&payload("n-0123456789abcdef"))).unwrap();
        let field = |v: &mut Verifier, e: Value| match v.verify(e.to_string().as_bytes(), NOW) {
            Err(Refusal::Malformed { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert!(matches!(
            v.verify(b"{", NOW),
            Err(Refusal::Malformed {
                field: "envelope",
                ..
            })
        ));
        assert_eq!(field(&mut v, json!([1])), "envelope");
        let mut e = good.clone();
        e["extra"] = json!(1);
        assert_eq!(field(&mut v, e), "envelope");
        let mut e = good.clone();
        e.as_object_mut().unwrap().remove("key_id");
        assert_eq!(field(&mut v, e), "key_id");
        let mut e = good.clone();
        e["key_id"] = json!("county 1");
        assert_eq!(field(&mut v, e), "key_id");
        let mut e = good.clone();
        e.as_object_mut().unwrap().remove("payload");
        assert_eq!(field(&mut v, e), "payload");
        let mut e = good.clone();
        e["payload"] = json!("%%%");
        assert_eq!(field(&mut v, e), "payload");
        let mut e = good.clone();
        e["sig"] = json!("%%%");
        assert_eq!(field(&mut v, e), "sig");
        let mut e = good.clone();
        e["sig"] = json!(B64.encode([0u8; 63]));
        assert_eq!(field(&mut v, e), "sig");
    }

    #[test]
    fn malformed_payloads_name_the_field() {
        let mut v = Verifier::new(keyset(&["all"]));
        let cases: Vec<(&str, Value, &str)> = vec![
            ("id", json!("a b"), "id"),
            ("action", json!("play"), "action"),
            ("not_after", json!("2026-07-15 10:00"), "not_after"),
            ("nonce", json!("short"), "nonce"),
            ("nonce", json!("x".repeat(65)), "nonce"),
            ("targets", json!([]), "targets"),
            ("targets", json!(["town:x"]), "targets"),
            ("targets", json!("village:1"), "targets"),
            ("priority", json!("routine"), "priority"),
            ("text", json!(" "), "text"),
            ("volume", json!(101), "volume"),
            ("volume", json!(-1), "volume"),
            ("repeat", json!(0), "repeat"),
            ("asset", json!("sha256:xyz"), "text"),
            ("colour", json!("red"), "payload"),
        ];
        for (i, (k, val, want)) in cases.into_iter().enumerate() {
            let mut p = payload(&format!("nonce-{i:012}"));
            p[k] = val;
            match verify(&mut v, &p) {
                Err(Refusal::Malformed { field, reason }) => {
                    assert_eq!(field, want, "{k}: {reason}")
                }
                other => panic!("{k}: {other:?}"),
            }
        }
        let mut p = payload("nonce-asset-only-1");
        p.as_object_mut().unwrap().remove("text");
        p["asset"] = json!("md5:00");
        assert!(matches!(
            verify(&mut v, &p),
            Err(Refusal::Malformed { field: "asset", .. })
        ));
        let p = json!({"id": "x", "action": "stop", "not_after": "2026-07-15T10:00:00+08:00",
            "nonce": "nonce-stop-text-1", "targets": ["all"], "text": "hi"});
        assert!(matches!(
            verify(&mut v, &p),
            Err(Refusal::Malformed {
                field: "action",
                ..
            })
        ));
        let sig = key(1).sign(b"[1,2]");
        let env = json!({"key_id": "county-1", "payload": B64.encode(b"[1,2]"), "sig": B64.encode(sig.to_bytes())});
        assert!(matches!(
            v.verify(env.to_string().as_bytes(), NOW),
            Err(Refusal::Malformed {
                field: "payload",
                ..
            })
        ));
        assert_eq!(v.nonce_count(), 0, "refused commands burn no nonce");
    }

    #[test]
    fn unsigned_unknown_key_bad_signature() {
        let mut v = Verifier::new(keyset(&["all"]));
        let p = payload("n-0123456789abcdef");
        let mut e: Value = serde_json::from_slice(&signed(&p)).unwrap();
        let sig = e["sig"].as_str().unwrap().to_string();
        for unsigned in [json!(null), json!("")] {
            e["sig"] = unsigned;
            let r = v.verify(e.to_string().as_bytes(), NOW).unwrap_err();
            assert_eq!(r.code(), "unsigned");
        }
        e.as_object_mut().unwrap().remove("sig");
        assert_eq!(
            v.verify(e.to_string().as_bytes(), NOW).unwrap_err().code(),
            "unsigned"
        );

        let other = sign(&key(1), p.to_string().as_bytes(), "county-9");
        let r = v.verify(other.as_bytes(), NOW).unwrap_err();
        assert_eq!(
            r,
            Refusal::UnknownKey {
                key_id: "county-9".into()
            }
        );

        // Signed by another key under our key id.
        let forged = sign(&key(2), p.to_string().as_bytes(), "county-1");
        let r = v.verify(forged.as_bytes(), NOW).unwrap_err();
        assert_eq!(
            r,
            Refusal::BadSignature {
                key_id: "county-1".into()
            }
        );
        // Payload changed after signing (one byte of JSON whitespace).
        e["sig"] = json!(sig);
        e["payload"] = json!(B64.encode(format!("{p} ")));
        let r = v.verify(e.to_string().as_bytes(), NOW).unwrap_err();
        assert_eq!(r.code(), "bad_signature");
        assert!(
            !r.to_string().contains(&sig[..16]),
            "never echoes the signature"
        );
        assert_eq!(v.nonce_count(), 0);
    }

    #[test]
    fn not_after_boundaries() {
        let mut v = Verifier::new(keyset(&["all"]));
        let at = |secs: i64, nonce: &str| {
            let mut p = payload(nonce);
            let t = OffsetDateTime::from_unix_timestamp(NOW / 1000 + secs).unwrap();
            p["not_after"] = json!(t.format(&Rfc3339).unwrap());
            p
        };
        let r = verify(&mut v, &at(0, "nonce-exactly-now")).unwrap_err();
        assert_eq!(r.code(), "expired");
        assert!(r.to_string().contains("2026-07-15T01:00:00Z"), "{r}");
        assert_eq!(
            verify(&mut v, &at(-60, "nonce-a-minute-ago"))
                .unwrap_err()
                .code(),
            "expired"
        );
        assert!(verify(&mut v, &at(1, "nonce-one-second-on")).is_ok());
        assert!(verify(&mut v, &at(24 * 3600, "nonce-exactly-24-h")).is_ok());
        assert_eq!(
            verify(&mut v, &at(24 * 3600 + 1, "nonce-24-h-and-1-s"))
                .unwrap_err()
                .code(),
            "too_far_ahead"
        );
    }

    #[test]
    fn replay_is_refused_also_after_restore() {
        let ks = || keyset(&["all"]);
        let mut v = Verifier::new(ks());
        let cmd = signed(&payload("n-0123456789abcdef"));
        assert!(v.verify(&cmd, NOW).is_ok());
        assert_eq!(v.verify(&cmd, NOW + 1).unwrap_err().code(), "replayed");

        let saved = serde_json::to_string(&v.snapshot()).unwrap();
        let mut v2 = Verifier::restore(ks(), serde_json::from_str(&saved).unwrap());
        let r = v2.verify(&cmd, NOW + 1000).unwrap_err();
        assert_eq!(
            r,
            Refusal::Replayed {
                key_id: "county-1".into(),
                id: "flood-2026-07-15".into()
            }
        );
        // Once expired it is refused as expired, not as a replay.
        assert_eq!(
            v2.verify(&cmd, NOW + 3_600_000).unwrap_err().code(),
            "expired"
        );
    }

    #[test]
    fn full_nonce_memory_refuses_instead_of_forgetting() {
        let mut v = Verifier::with_max_nonces(keyset(&["all"]), 2);
        assert!(verify(&mut v, &payload("nonce-0000000000001")).is_ok());
        assert!(verify(&mut v, &payload("nonce-0000000000002")).is_ok());
        let third = signed(&payload("nonce-0000000000003"));
        assert_eq!(
            v.verify(&third, NOW).unwrap_err(),
            Refusal::NonceMemoryFull { max: 2 }
        );
        // The first two are still refused as replays.
        assert_eq!(
            verify(&mut v, &payload("nonce-0000000000001"))
                .unwrap_err()
                .code(),
            "replayed"
        );
        // Once they expire their room is reused. (The third has the same
        // not_after, so make a later one.)
        let mut p = payload("nonce-0000000000004");
        p["not_after"] = json!("2026-07-15T11:00:00+08:00");
        assert!(v.verify(&signed(&p), NOW + 3_600_000).is_ok());
        assert_eq!(v.nonce_count(), 1);
    }

    #[test]
    fn scope_is_enforced() {
        let mut v = Verifier::new(keyset(&["village:320115106201", "zone:east"]));
        let mut p = payload("nonce-scope-000001");
        p["targets"] = json!(["zone:east", "village:320115106202"]);
        assert_eq!(
            verify(&mut v, &p).unwrap_err(),
            Refusal::OutOfScope {
                key_id: "county-1".into(),
                target: "village:320115106202".into()
            }
        );
        p["targets"] = json!(["all"]);
        assert_eq!(verify(&mut v, &p).unwrap_err().code(), "out_of_scope");
        p["targets"] = json!(["zone:east", "village:320115106201", "zone:east"]);
        let c = verify(&mut v, &p).unwrap();
        assert_eq!(c.targets.len(), 2, "duplicates folded");
        assert_eq!(v.nonce_count(), 1);
    }

    /// An envelope made with `openssl pkeyutl -sign -rawin` (OpenSSL 3.0),
    /// as in docs/warnings.md: another Ed25519 implementation verifies.
    #[test]
    fn openssl_signed_envelope_verifies() {
        let keys = KeySet::from_config(&[KeyConfig {
            id: "county-1".into(),
            public_key: "C0kwMbVvFSArqWhbKdkNpP9NQPR2BJfUw8/gkCSaNX0=".into(),
            scope: vec!["village:320115106201".parse().unwrap()],
        }])
        .unwrap();
        let env = json!({
            "key_id": "county-1",
            "payload": "eyJpZCI6ImZsb29kLTIwMjYtMDctMTUiLCJhY3Rpb24iOiJzdGFydCIsIm5vdF9hZnRlciI6IjIwMjYtMDctMTVUMTA6MDA6MDArMDg6MDAiLCJub25jZSI6ImMxZDVlMGEwYjdmMDRhOGUiLCJ0YXJnZXRzIjpbInZpbGxhZ2U6MzIwMTE1MTA2MjAxIl0sInRleHQiOiLmsZ/lroHljLrpmLLmsZvmjIfmjKXpg6jntKfmgKXpgJrnn6XvvJror7fkvY7mtLzlnLDluKblsYXmsJHnq4vljbPovaznp7vjgIIifQ==",
            "sig": "vMssTXlTJkHQ8Mf4OhsG38+kL3eOKv3fmWcnhB4EwejnmarGJsUwbXyiqWI1dJuOIFSHZXHLjneITwLne+RVBA==",
        });
        let mut v = Verifier::new(keys);
        let c = v.verify(env.to_string().as_bytes(), NOW).unwrap();
        assert_eq!(c.nonce, "c1d5e0a0b7f04a8e");
        assert!(
            matches!(c.content, Some(Content::Text(ref t)) if t.starts_with("江宁区防汛指挥部"))
        );
    }

    #[test]
    fn key_config_errors_name_the_entry() {
        let good = KeyConfig {
            id: "county-1".into(),
            public_key: public_key_base64(&key(1).verifying_key()),
            scope: vec![Target::All],
        };
        let mut short = good.clone();
        short.public_key = B64.encode([1u8; 31]);
        let e = KeySet::from_config(&[good.clone(), short]).unwrap_err();
        assert!(
            e.starts_with("keys[1].public_key (key `county-1`): 31 bytes"),
            "{e}"
        );
        let mut bad = good.clone();
        bad.public_key = "!!".into();
        assert!(
            KeySet::from_config(&[bad])
                .unwrap_err()
                .contains("not base64")
        );
        let mut empty = good.clone();
        empty.scope.clear();
        assert!(
            KeySet::from_config(&[empty])
                .unwrap_err()
                .starts_with("keys[0].scope")
        );
        let e = KeySet::from_config(&[good.clone(), good.clone()]).unwrap_err();
        assert!(e.contains("listed twice"), "{e}");
        let toml_src = r#"
            id = "county-1"
            public_key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
            scope = ["village:320115106201", "all"]
        "#;
        let k: KeyConfig = toml::from_str(toml_src).unwrap();
        assert_eq!(k.scope[1], Target::All);
        assert!(toml::from_str::<KeyConfig>("id='a'\npublic_key='x'\nscope=[]\nextra=1").is_err());
        let ks = KeySet::from_config(&[good]).unwrap();
        assert_eq!(ks.ids().collect::<Vec<_>>(), ["county-1"]);
        assert!(!ks.is_empty() && ks.len() == 1);
    }
}
