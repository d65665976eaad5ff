//! Commands from the centre: the pure parser of `cmd/{method}` messages and
//! the reply bodies (see `docs/mqtt.md`, `docs/schemas/command.json`).
//!
//! This file depends only on `std` and `serde_json`, so the fuzz target
//! `fuzz/fuzz_targets/mqtt_command.rs` includes it directly.

use serde_json::{Map, Value, json};

/// Methods this gateway understands.
pub const METHODS: &[&str] = &["rediscover", "probe", "reload", "emergency"];

/// A command that parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// The centre's correlation id; the reply goes to `reply/{request_id}`.
    pub request_id: String,
    /// One of [`METHODS`].
    pub method: String,
    /// The method's parameters (an object; `{}` when absent).
    pub params: Value,
}

/// Why a command was refused before it reached a handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError {
    /// The request id, when it could be read.
    pub request_id: Option<String>,
    /// The method from the topic.
    pub method: String,
    /// `too_large`, `malformed`, `bad_request_id`, `unknown_method` or `bad_params`.
    pub code: &'static str,
    /// Human-readable detail.
    pub message: String,
}

/// Whether a request id can be used as a topic level: 1-128 bytes of
/// `[A-Za-z0-9._:-]`.
pub fn valid_request_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Parses the payload of `cmd/{method}`: `{"request_id": "...", "params": {...}}`.
/// Never panics; every refusal names what was wrong.
pub fn parse_command(
    method: &str,
    payload: &[u8],
    max_bytes: usize,
) -> Result<Command, CommandError> {
    let err = |rid: Option<String>, code, message: String| CommandError {
        request_id: rid,
        method: method.chars().take(64).collect(),
        code,
        message,
    };
    if payload.len() > max_bytes {
        return Err(err(
            None,
            "too_large",
            format!(
                "payload of {} bytes exceeds the limit of {max_bytes}",
                payload.len()
            ),
        ));
    }
    let v: Value = serde_json::from_slice(payload)
        .map_err(|e| err(None, "malformed", format!("not JSON: {e}")))?;
    let Value::Object(mut obj) = v else {
        return Err(err(
            None,
            "malformed",
            "the body must be a JSON object".into(),
        ));
    };
    let request_id = match obj.remove("request_id") {
        Some(Value::String(s)) if valid_request_id(&s) => s,
        Some(_) => {
            return Err(err(
                None,
                "bad_request_id",
                "request_id must be 1-128 characters of A-Z a-z 0-9 . _ : -".into(),
            ));
        }
        None => return Err(err(None, "bad_request_id", "request_id is missing".into())),
    };
    let rid = Some(request_id.clone());
    let params = match obj.remove("params") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(p @ Value::Object(_)) => p,
        Some(_) => return Err(err(rid, "bad_params", "params must be an object".into())),
    };
    if let Some(k) = obj.keys().next() {
        return Err(err(
            rid,
            "malformed",
            format!("unknown field `{}`", k.chars().take(64).collect::<String>()),
        ));
    }
    if !METHODS.contains(&method) {
        return Err(err(
            rid,
            "unknown_method",
            format!("unknown method; known: {}", METHODS.join(", ")),
        ));
    }
    let allowed: &[&str] = match method {
        "probe" => &["camera"],
        // The signed envelope (`docs/warnings.md`); the verifier checks it.
        "emergency" => &["key_id", "payload", "sig"],
        _ => &[],
    };
    if let Some(k) = params
        .as_object()
        .and_then(|p| p.keys().find(|k| !allowed.contains(&k.as_str())))
    {
        return Err(err(
            rid,
            "bad_params",
            format!(
                "unknown parameter `{}`",
                k.chars().take(64).collect::<String>()
            ),
        ));
    }
    if method == "probe" {
        match params.get("camera") {
            Some(Value::String(c)) if valid_request_id(c) => {}
            _ => {
                return Err(err(
                    rid,
                    "bad_params",
                    "probe needs params.camera, a camera id".into(),
                ));
            }
        }
    }
    Ok(Command {
        request_id,
        method: method.to_string(),
        params,
    })
}

/// The reply body for a refused command (published to `reply/{request_id}`
/// or `reply/_invalid`).
pub fn error_reply(e: &CommandError) -> Value {
    json!({
        "request_id": e.request_id,
        "method": e.method,
        "status": "error",
        "error": { "code": e.code, "message": e.message },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(method: &str, body: &str) -> Result<Command, CommandError> {
        parse_command(method, body.as_bytes(), 65536)
    }

    #[test]
    fn good_commands_parse() {
        let c = parse(
            "probe",
            r#"{"request_id":"r-1","params":{"camera":"cam-7"}}"#,
        )
        .unwrap();
        assert_eq!(c.params["camera"], "cam-7");
        let c = parse("reload", r#"{"request_id":"r:2"}"#).unwrap();
        assert_eq!(c.params, json!({}));
        assert!(parse("rediscover", r#"{"request_id":"x","params":null}"#).is_ok());
    }

    #[test]
    fn every_refusal_has_a_code_and_keeps_the_request_id_when_readable() {
        let cases = [
            ("probe", "nope", "malformed", None),
            ("probe", "[1]", "malformed", None),
            ("probe", r#"{"params":{}}"#, "bad_request_id", None),
            ("probe", r#"{"request_id":"a/b"}"#, "bad_request_id", None),
            ("probe", r#"{"request_id":7}"#, "bad_request_id", None),
            (
                "reboot",
                r#"{"request_id":"r"}"#,
                "unknown_method",
                Some("r"),
            ),
            ("probe", r#"{"request_id":"r"}"#, "bad_params", Some("r")),
            (
                "probe",
                r##"{"request_id":"r","params":{"camera":"#"}}"##,
                "bad_params",
                Some("r"),
            ),
            (
                "probe",
                r#"{"request_id":"r","params":[]}"#,
                "bad_params",
                Some("r"),
            ),
            (
                "reload",
                r#"{"request_id":"r","params":{"x":1}}"#,
                "bad_params",
                Some("r"),
            ),
            (
                "reload",
                r#"{"request_id":"r","extra":1}"#,
                "malformed",
                Some("r"),
            ),
        ];
        for (m, body, code, rid) in cases {
            let e = parse(m, body).unwrap_err();
            assert_eq!(e.code, code, "{m} {body}: {e:?}");
            assert_eq!(e.request_id.as_deref(), rid, "{body}");
            let r = error_reply(&e);
            assert_eq!(r["status"], "error");
        }
        let big = format!(
            r#"{{"request_id":"r","params":{{"camera":"{}"}}}}"#,
            "a".repeat(70_000)
        );
        assert_eq!(parse("probe", &big).unwrap_err().code, "too_large");
    }

    /// A fuzz-style loop (no nightly needed): xorshift mutations of valid
    /// and broken commands never panic and always end in Ok or a coded error.
    #[test]
    fn mutated_commands_never_panic() {
        let corpus: &[&[u8]] = &[
            br#"{"request_id":"r-1","params":{"camera":"cam-7"}}"#,
            br#"{"request_id":"r","params":{}}"#,
            br#"{"request_id":"\u0000","params":{"camera":"\ud800"}}"#,
            b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
            b"{\"request_id\":1e999999}",
            b"\xff\xfe{}",
            b"",
        ];
        let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for round in 0..20_000 {
            let mut buf = corpus[round % corpus.len()].to_vec();
            for _ in 0..(next() % 6) {
                let r = next();
                let pos = if buf.is_empty() {
                    0
                } else {
                    (r >> 8) as usize % buf.len()
                };
                match r % 4 {
                    0 if !buf.is_empty() => buf[pos] = (r >> 32) as u8,
                    1 => buf.insert(pos, b"{}[]\",:\\0e-"[(r >> 40) as usize % 11]),
                    2 if !buf.is_empty() => {
                        buf.remove(pos);
                    }
                    _ => buf.extend_from_slice(&buf.clone()[..pos.min(buf.len())]),
                }
            }
            let method = METHODS[round % 3];
            match parse_command(method, &buf, 4096) {
                Ok(c) => assert!(valid_request_id(&c.request_id) && c.params.is_object()),
                Err(e) => assert!(!e.code.is_empty() && !e.message.is_empty()),
            }
        }
    }
}
