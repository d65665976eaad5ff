//! The envelope (`key_id`, `payload`, `sig`) and the payload JSON, parsed
//! field by field so a [`Refusal`] names the field that is wrong.

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::command::{Action, Content, Refusal, malformed};
use super::{MAX_TARGETS, MAX_TEXT_CHARS, valid_token};
use crate::broadcast::{Ms, Priority, Target};

pub(super) struct Envelope {
    pub(super) key_id: String,
    pub(super) payload: String,
    pub(super) sig: Option<String>,
}

impl Envelope {
    pub(super) fn parse(bytes: &[u8]) -> Result<Envelope, Refusal> {
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

pub(super) struct Payload {
    pub(super) id: String,
    pub(super) action: Action,
    pub(super) not_after: Ms,
    pub(super) not_after_text: String,
    pub(super) nonce: String,
    pub(super) targets: Vec<Target>,
    pub(super) priority: Priority,
    pub(super) content: Option<Content>,
    pub(super) volume: Option<u8>,
    pub(super) repeat: Option<u8>,
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
    pub(super) fn parse(bytes: &[u8]) -> Result<Payload, Refusal> {
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
        let (not_after, not_after_text) = parse_not_after(&req_str(&mut m, "not_after")?)?;
        let nonce = parse_nonce(req_str(&mut m, "nonce")?)?;
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
            let t: Target = s.parse().map_err(|e: crate::broadcast::WordError| {
                malformed("targets", clip(&e.to_string()))
            })?;
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
            not_after_text,
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

/// `not_after` as ms since the epoch, and its (clipped) text for messages.
pub(super) fn parse_not_after(text: &str) -> Result<(Ms, String), Refusal> {
    let ms = OffsetDateTime::parse(text, &Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as Ms)
        .map_err(|_| {
            malformed(
                "not_after",
                format!(
                    "`{}` is not an RFC 3339 time such as 2026-07-15T09:00:00+08:00",
                    clip(text)
                ),
            )
        })?;
    Ok((ms, clip(text)))
}

/// A nonce: 16-64 printable ASCII characters without spaces.
pub(super) fn parse_nonce(nonce: String) -> Result<String, Refusal> {
    if !(16..=64).contains(&nonce.len()) || !nonce.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(malformed(
            "nonce",
            "must be 16-64 printable ASCII characters without spaces",
        ));
    }
    Ok(nonce)
}

/// At most 64 characters of a value a sender chose, for messages.
pub(super) fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}
