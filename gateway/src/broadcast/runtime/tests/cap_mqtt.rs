//! CAP documents from the MQTT warnings topic (issue 12, high 4): with
//! `mqtt_trust = "signed"` only a valid Ed25519 envelope reaches the desk;
//! with `broker` only listed senders; and a `sent` far in the past or the
//! future never plays.

use ed25519_dalek::SigningKey;

use super::*;
use crate::broadcast::signed::{self, KeyConfig, KeySet};

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn keys() -> KeySet {
    KeySet::from_config(&[KeyConfig {
        id: "county-1".into(),
        public_key: signed::public_key_base64(&key(1).verifying_key()),
        scope: vec![Target::All],
    }])
    .unwrap()
}

/// The orange warning, sent at `sent` (`2026-10-10T…` wall time, +08:00).
fn alert(identifier_suffix: &str, sent: &str) -> String {
    let b = cap(
        "jiangning_rainstorm_orange_alert.xml",
        &[
            ("2026-07-15T08:30:00", sent),
            ("2026-07-15T20:30:00", "2026-10-10T20:30:00"),
            ("_20260715083000", identifier_suffix),
        ],
    );
    String::from_utf8(b.to_vec()).unwrap()
}

fn envelope(seed: u8, xml: &str, nonce: &str) -> bytes::Bytes {
    let payload = signed::cap_payload(xml, "2026-10-10T00:10:00+08:00", nonce);
    signed::sign(&key(seed), payload.as_bytes(), "county-1").into()
}

/// Plain CAP (the attack), a wrong key and a replay are refused with their
/// reason; the signed document plays; a signed one sent five months ago
/// is ignored as stale.
#[tokio::test(start_paused = true)]
async fn only_signed_fresh_cap_from_mqtt_plays() {
    let w = world();
    let shutdown = CancellationToken::new();
    let (b, _task) = start_runtime_with(&w, warnings(), keys(), shutdown.clone());
    until(&w, "00:00:05").await;
    let xml = alert("_a1", "2026-10-10T00:00:00");

    let out = b.cap_mqtt(xml.clone().into(), "mqtt:county/cap").await;
    assert_eq!(out.decision, "reject", "{out:?}");
    let why = out.reason.unwrap_or_default();
    assert!(why.starts_with("unsigned:"), "{why}");

    let out = b
        .cap_mqtt(envelope(2, &xml, "nonce-wrong-key-0001"), "mqtt:county/cap")
        .await;
    assert_eq!(out.decision, "reject", "{out:?}");
    assert!(out.reason.unwrap_or_default().starts_with("bad_signature"));

    let good = envelope(1, &xml, "nonce-good-00000001");
    let out = b.cap_mqtt(good.clone(), "mqtt:county/cap").await;
    assert_eq!(out.decision, "play", "{out:?}");
    assert!(out.broadcast.is_some());
    let out = b.cap_mqtt(good, "mqtt:county/cap").await;
    assert_eq!(out.decision, "reject", "{out:?}");
    assert!(out.reason.unwrap_or_default().starts_with("replayed"));

    let old = alert("_a2", "2026-05-10T00:00:00");
    let out = b
        .cap_mqtt(envelope(1, &old, "nonce-stale-0000001"), "mqtt:county/cap")
        .await;
    assert_eq!(out.decision, "ignore", "{out:?}");
    assert!(out.reason.unwrap_or_default().starts_with("stale:"));
    let ahead = alert("_a3", "2026-10-10T01:00:00");
    let out = b
        .cap_mqtt(
            envelope(1, &ahead, "nonce-future-000001"),
            "mqtt:county/cap",
        )
        .await;
    assert_eq!(out.decision, "ignore", "{out:?}");
    assert!(
        out.reason
            .unwrap_or_default()
            .starts_with("from-the-future:")
    );

    let refused = crate::auth::Users::new(w.store.clone())
        .unwrap()
        .audit_log(100, None)
        .unwrap()
        .into_iter()
        .filter(|a| a.action == "broadcast.cap_refused")
        .count();
    assert_eq!(refused, 3, "each refusal is audited");
    shutdown.cancel();
}

/// `mqtt_trust = "broker"`: plain CAP is taken, but only from the senders
/// in `mqtt_senders`.
#[tokio::test(start_paused = true)]
async fn broker_trust_takes_plain_cap_from_listed_senders_only() {
    let w = world();
    let mut cfg = warnings();
    cfg.mqtt_trust = tgw_core::warning::MqttTrust::Broker;
    cfg.mqtt_senders = vec!["someone-else@example.cn".into()];
    let shutdown = CancellationToken::new();
    let (b, _task) = start_runtime_with(&w, cfg, keys(), shutdown.clone());
    until(&w, "00:00:05").await;
    let xml = alert("_b1", "2026-10-10T00:00:00");
    let out = b.cap_mqtt(xml.into(), "mqtt:county/cap").await;
    assert_eq!(out.decision, "reject", "{out:?}");
    assert!(
        out.reason
            .unwrap_or_default()
            .starts_with("sender-not-allowed")
    );
    shutdown.cancel();

    let w = world();
    let mut cfg = warnings();
    cfg.mqtt_trust = tgw_core::warning::MqttTrust::Broker;
    cfg.mqtt_senders = vec!["南京市江宁区气象台".into()];
    let shutdown = CancellationToken::new();
    let (b, _task) = start_runtime_with(&w, cfg, keys(), shutdown.clone());
    until(&w, "00:00:05").await;
    let xml = alert("_b2", "2026-10-10T00:00:00");
    let out = b.cap_mqtt(xml.into(), "mqtt:county/cap").await;
    assert_eq!(out.decision, "play", "{out:?}");
    shutdown.cancel();
}
