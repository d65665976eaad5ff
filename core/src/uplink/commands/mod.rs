//! Commands from the centre: the pure parser of `cmd/{method}` messages
//! into one typed [`Command`], and the refusal bodies (see `docs/mqtt.md`,
//! `docs/schemas/command.json`). A message is parsed once, here; handlers
//! get typed values, and `emergency` gets the signed envelope as the exact
//! bytes received (verified once, on those bytes, by the broadcast runtime).
//!
//! | module | owns |
//! |---|---|
//! | [`code`] | [`ReplyCode`]: every reply code the gateway itself sends, once |

mod code;

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

pub use code::ReplyCode;

/// Methods this gateway understands (the topic levels of [`Method`]).
pub const METHODS: &[&str] = &["rediscover", "probe", "reload", "emergency"];

/// A method of `cmd/{method}`; the serde names are the topic levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Start a discovery round now.
    Rediscover,
    /// Re-fetch one camera's inventory and re-check its health.
    Probe,
    /// Re-read the configuration.
    Reload,
    /// A signed emergency broadcast command.
    Emergency,
}

impl Method {
    /// Every method, in the order of [`METHODS`].
    pub const ALL: [Method; 4] = [
        Method::Rediscover,
        Method::Probe,
        Method::Reload,
        Method::Emergency,
    ];

    /// The topic level (and the `method` of replies).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Rediscover => "rediscover",
            Method::Probe => "probe",
            Method::Reload => "reload",
            Method::Emergency => "emergency",
        }
    }

    /// The method named by a topic level, if it is one of ours.
    pub fn from_name(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == name)
    }

    /// The parameter names the method takes.
    fn allowed_params(self) -> &'static [&'static str] {
        match self {
            Method::Probe => &["camera"],
            // The signed envelope (`docs/warnings.md`); the verifier checks it.
            Method::Emergency => &["key_id", "payload", "sig"],
            Method::Rediscover | Method::Reload => &[],
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A camera id from a command: 1-128 bytes of `[A-Za-z0-9._:-]` (a valid
/// topic level).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CameraId(String);

impl CameraId {
    /// `s` as a camera id, if it is a valid one.
    pub fn parse(s: &str) -> Option<CameraId> {
        valid_request_id(s).then(|| CameraId(s.to_string()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CameraId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the centre asked for, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `rediscover`: start a discovery round now.
    Rediscover,
    /// `probe`: re-fetch a camera's inventory and re-check its health.
    Probe {
        /// The camera.
        camera: CameraId,
    },
    /// `reload`: re-read the configuration.
    Reload,
    /// `emergency`: a signed broadcast command.
    Emergency {
        /// The signed envelope (the message's `params` object) as the exact
        /// bytes received; `{}` when `params` was absent or null.
        envelope: Vec<u8>,
    },
}

impl Command {
    /// The method this command came on.
    pub fn method(&self) -> Method {
        match self {
            Command::Rediscover => Method::Rediscover,
            Command::Probe { .. } => Method::Probe,
            Command::Reload => Method::Reload,
            Command::Emergency { .. } => Method::Emergency,
        }
    }
}

/// A `cmd/{method}` message that parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The centre's correlation id; the reply goes to `reply/{request_id}`.
    pub request_id: String,
    /// The command.
    pub command: Command,
}

/// Why a command was refused before it reached a handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError {
    /// The request id, when it could be read.
    pub request_id: Option<String>,
    /// The method from the topic (at most 64 characters of it).
    pub method: String,
    /// `too_large`, `malformed`, `bad_request_id`, `unknown_method` or `bad_params`.
    pub code: ReplyCode,
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
/// Never panics; every refusal names what was wrong. The checks run in a
/// fixed order (size, JSON, request id, params shape, unknown fields,
/// method, parameter names, parameter values), so the first problem found
/// is the one reported.
pub fn parse_command(
    method: &str,
    payload: &[u8],
    max_bytes: usize,
) -> Result<Request, CommandError> {
    let err = |rid: Option<String>, code, message: String| CommandError {
        request_id: rid,
        method: method.chars().take(64).collect(),
        code,
        message,
    };
    if payload.len() > max_bytes {
        return Err(err(
            None,
            ReplyCode::TooLarge,
            format!(
                "payload of {} bytes exceeds the limit of {max_bytes}",
                payload.len()
            ),
        ));
    }
    let v: Value = serde_json::from_slice(payload)
        .map_err(|e| err(None, ReplyCode::Malformed, format!("not JSON: {e}")))?;
    let Value::Object(mut obj) = v else {
        return Err(err(
            None,
            ReplyCode::Malformed,
            "the body must be a JSON object".into(),
        ));
    };
    let request_id = match obj.remove("request_id") {
        Some(Value::String(s)) if valid_request_id(&s) => s,
        Some(_) => {
            return Err(err(
                None,
                ReplyCode::BadRequestId,
                "request_id must be 1-128 characters of A-Z a-z 0-9 . _ : -".into(),
            ));
        }
        None => {
            return Err(err(
                None,
                ReplyCode::BadRequestId,
                "request_id is missing".into(),
            ));
        }
    };
    let rid = Some(request_id.clone());
    let params = match obj.remove("params") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(p)) => p,
        Some(_) => {
            return Err(err(
                rid,
                ReplyCode::BadParams,
                "params must be an object".into(),
            ));
        }
    };
    if let Some(k) = obj.keys().next() {
        return Err(err(
            rid,
            ReplyCode::Malformed,
            format!("unknown field `{}`", k.chars().take(64).collect::<String>()),
        ));
    }
    let Some(m) = Method::from_name(method) else {
        return Err(err(
            rid,
            ReplyCode::UnknownMethod,
            format!("unknown method; known: {}", METHODS.join(", ")),
        ));
    };
    if let Some(k) = params
        .keys()
        .find(|k| !m.allowed_params().contains(&k.as_str()))
    {
        return Err(err(
            rid,
            ReplyCode::BadParams,
            format!(
                "unknown parameter `{}`",
                k.chars().take(64).collect::<String>()
            ),
        ));
    }
    let command = match m {
        Method::Rediscover => Command::Rediscover,
        Method::Reload => Command::Reload,
        Method::Probe => {
            let camera = match params.get("camera") {
                Some(Value::String(c)) => CameraId::parse(c),
                _ => None,
            };
            let Some(camera) = camera else {
                return Err(err(
                    rid,
                    ReplyCode::BadParams,
                    "probe needs params.camera, a camera id".into(),
                ));
            };
            Command::Probe { camera }
        }
        Method::Emergency => Command::Emergency {
            envelope: raw_params(payload)
                .map_err(|e| err(rid, ReplyCode::Malformed, format!("not JSON: {e}")))?,
        },
    };
    Ok(Request {
        request_id,
        command,
    })
}

/// The exact bytes of the body's `params` value, `{}` when absent or null.
/// Called only after the body parsed as an object, so it does not fail in
/// practice; a later duplicate `params` wins, as in the parse above.
fn raw_params(payload: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
    let fields: HashMap<String, &RawValue> = serde_json::from_slice(payload)?;
    Ok(match fields.get("params").map(|r| r.get()) {
        None | Some("null") => b"{}".to_vec(),
        Some(raw) => raw.as_bytes().to_vec(),
    })
}

/// The reply body for a refused command (published to `reply/{request_id}`
/// or `reply/_invalid`).
pub fn error_reply(e: &CommandError) -> Value {
    json!({
        "request_id": e.request_id,
        "method": e.method,
        "status": "error",
        "error": { "code": e.code.as_str(), "message": e.message },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(method: &str, body: &str) -> Result<Request, CommandError> {
        parse_command(method, body.as_bytes(), 65536)
    }

    #[test]
    fn good_commands_parse() {
        let c = parse(
            "probe",
            r#"{"request_id":"r-1","params":{"camera":"cam-7"}}"#,
        )
        .unwrap();
        assert_eq!(c.request_id, "r-1");
        assert_eq!(
            c.command,
            Command::Probe {
                camera: CameraId::parse("cam-7").unwrap()
            }
        );
        assert_eq!(c.command.method(), Method::Probe);
        let c = parse("reload", r#"{"request_id":"r:2"}"#).unwrap();
        assert_eq!(c.command, Command::Reload);
        let c = parse("rediscover", r#"{"request_id":"x","params":null}"#).unwrap();
        assert_eq!(c.command, Command::Rediscover);
    }

    #[test]
    fn methods_are_listed_once_in_order() {
        let names: Vec<&str> = Method::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(names, METHODS);
        for m in Method::ALL {
            assert_eq!(Method::from_name(m.as_str()), Some(m));
            assert_eq!(serde_json::to_value(m).unwrap(), json!(m.as_str()));
        }
        assert_eq!(Method::from_name("reboot"), None);
    }

    /// The signed envelope reaches the handler as the bytes the centre sent,
    /// spacing and escapes included, not re-serialised.
    #[test]
    fn emergency_keeps_the_envelope_bytes_as_received() {
        let body =
            br#"{"request_id":"e-1","params": {"key_id" : "k1","payload":"e30=","sig":"AA=="} }"#;
        let c = parse_command("emergency", body, 65536).unwrap();
        assert_eq!(
            c.command,
            Command::Emergency {
                envelope: br#"{"key_id" : "k1","payload":"e30=","sig":"AA=="}"#.to_vec()
            }
        );
        for body in [
            r#"{"request_id":"e-2"}"#,
            r#"{"request_id":"e-2","params":null}"#,
        ] {
            let c = parse("emergency", body).unwrap();
            assert_eq!(
                c.command,
                Command::Emergency {
                    envelope: b"{}".to_vec()
                }
            );
        }
        // A repeated `params` counts once, the last one (as serde_json's map).
        let c = parse(
            "emergency",
            r#"{"params":{"sig":"x"},"request_id":"e-3","params":{"key_id":"k"}}"#,
        )
        .unwrap();
        assert_eq!(
            c.command,
            Command::Emergency {
                envelope: br#"{"key_id":"k"}"#.to_vec()
            }
        );
        let e = parse("emergency", r#"{"request_id":"e-4","params":{"x":1}}"#).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (ReplyCode::BadParams, "unknown parameter `x`")
        );
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
            assert_eq!(e.code.as_str(), code, "{m} {body}: {e:?}");
            assert_eq!(e.request_id.as_deref(), rid, "{body}");
            let r = error_reply(&e);
            assert_eq!(r["status"], "error");
        }
        let big = format!(
            r#"{{"request_id":"r","params":{{"camera":"{}"}}}}"#,
            "a".repeat(70_000)
        );
        assert_eq!(parse("probe", &big).unwrap_err().code, ReplyCode::TooLarge);
        let e = parse("reboot", r#"{"request_id":"r"}"#).unwrap_err();
        assert_eq!(
            e.message,
            "unknown method; known: rediscover, probe, reload, emergency"
        );
        assert_eq!(
            error_reply(&e),
            json!({
                "request_id": "r",
                "method": "reboot",
                "status": "error",
                "error": {
                    "code": "unknown_method",
                    "message": "unknown method; known: rediscover, probe, reload, emergency"
                },
            })
        );
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
                Ok(c) => assert!(valid_request_id(&c.request_id)),
                Err(e) => assert!(!e.code.as_str().is_empty() && !e.message.is_empty()),
            }
        }
    }
}
