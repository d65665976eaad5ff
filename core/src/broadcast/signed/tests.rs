//! The verifier end to end: envelopes signed here (and one by OpenSSL),
//! malformed input, expiry, replay, scope, and key configuration errors.

use ed25519_dalek::SigningKey;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::*;
use crate::broadcast::{Ms, Priority, Target};

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
    assert!(matches!(c.content, Some(Content::Text(ref t)) if t.starts_with("江宁区防汛指挥部")));
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
    let e = KeySet::from_config(&[good.clone(), short])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("keys[1].public_key (key `county-1`): 31 bytes"),
        "{e}"
    );
    let mut bad = good.clone();
    bad.public_key = "!!".into();
    assert!(
        KeySet::from_config(&[bad])
            .unwrap_err()
            .to_string()
            .contains("not base64")
    );
    let mut empty = good.clone();
    empty.scope.clear();
    assert!(
        KeySet::from_config(&[empty])
            .unwrap_err()
            .to_string()
            .starts_with("keys[0].scope")
    );
    let e = KeySet::from_config(&[good.clone(), good.clone()]).unwrap_err();
    assert!(e.to_string().contains("listed twice"), "{e}");
    assert_eq!(e.kind(), crate::error::ErrorKind::Invalid);
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

const CAP_XML: &str =
    "<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\"><identifier>x</identifier></alert>";

fn signed_cap(seed: u8, not_after: &str, nonce: &str) -> Vec<u8> {
    sign(
        &key(seed),
        cap_payload(CAP_XML, not_after, nonce).as_bytes(),
        "county-1",
    )
    .into_bytes()
}

/// A CAP document in the envelope, signed by a trusted key with scope
/// `all`: accepted, the XML handed back unchanged, its nonce remembered.
#[test]
fn signed_cap_passes_and_is_not_replayable() {
    let mut v = Verifier::new(keyset(&["all"]));
    let doc = signed_cap(1, "2026-07-15T10:00:00+08:00", "cap-nonce-000000001");
    let c = v.verify_cap(&doc, NOW).unwrap();
    assert_eq!((c.key_id.as_str(), c.cap.as_str()), ("county-1", CAP_XML));
    assert_eq!(v.verify_cap(&doc, NOW + 1).unwrap_err().code(), "replayed");
}

/// Unsigned, plain XML, a wrong key, expired, too far ahead, a key of
/// narrower scope, and a command payload presented as CAP: refused, each
/// with its code.
#[test]
fn signed_cap_refusals() {
    let code = |v: &mut Verifier, b: &[u8]| v.verify_cap(b, NOW).unwrap_err().code();
    let mut v = Verifier::new(keyset(&["all"]));
    let mut unsigned: Value = serde_json::from_slice(&signed_cap(
        1,
        "2026-07-15T10:00:00+08:00",
        "cap-nonce-000000002",
    ))
    .unwrap();
    unsigned.as_object_mut().unwrap().remove("sig");
    assert_eq!(code(&mut v, unsigned.to_string().as_bytes()), "unsigned");
    assert_eq!(code(&mut v, CAP_XML.as_bytes()), "malformed");
    let wrong = signed_cap(2, "2026-07-15T10:00:00+08:00", "cap-nonce-000000003");
    assert_eq!(code(&mut v, &wrong), "bad_signature");
    let old = signed_cap(1, "2026-07-15T08:59:59+08:00", "cap-nonce-000000004");
    assert_eq!(code(&mut v, &old), "expired");
    let far = signed_cap(1, "2026-07-17T10:00:00+08:00", "cap-nonce-000000005");
    assert_eq!(code(&mut v, &far), "too_far_ahead");
    let mut village = Verifier::new(keyset(&["village:320115106201"]));
    let ok = signed_cap(1, "2026-07-15T10:00:00+08:00", "cap-nonce-000000006");
    assert_eq!(code(&mut village, &ok), "out_of_scope");
    // A command's signature is no CAP signature, and the other way round.
    assert_eq!(
        code(&mut v, &signed(&payload("n-cmd-0123456789ab"))),
        "malformed"
    );
    assert_eq!(v.verify(&ok, NOW).unwrap_err().code(), "malformed");
    assert_eq!(v.nonce_count(), 0, "nothing refused is remembered");
    let huge = vec![b' '; MAX_SIGNED_CAP_BYTES + 1];
    assert_eq!(code(&mut v, &huge), "too_large");
}
