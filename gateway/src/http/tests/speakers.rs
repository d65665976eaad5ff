//! The speaker test tone and its refusals.

use super::*;

const SPK_PW: &str = "sp3aker-Secret-pw";

fn add_speaker(fx: &Fx, id: &str, kind: crate::speakers::DriverKind, address: &str) {
    use crate::speakers::{Codec, NewSpeaker, Speakers};
    Speakers::open(&fx.st.store)
        .unwrap()
        .upsert(&[NewSpeaker {
            id: crate::config::Ident::parse(id).unwrap(),
            name: Some("东村广场".into()),
            kind,
            address: address.into(),
            village: Some("dongcun".into()),
            grid: None,
            zone: None,
            codec: Codec::Pcmu,
            volume: Some(70),
            ttl: None,
            username: Some("horn".into()),
            password: Some(Password::new(SPK_PW)),
        }])
        .unwrap();
}

/// A technician tests a simulated RTP horn (a UDP socket here): the tone
/// arrives as RTP, the answer reports answered/packets, the listing shows
/// the last test, an audit entry names who/what/from where/result, and
/// neither the answers nor the audit log contain the horn's password.
#[tokio::test]
async fn speaker_test_plays_a_tone_and_is_audited() {
    let fx = fixture();
    let horn = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = horn.local_addr().unwrap();
    add_speaker(
        &fx,
        "spk-1",
        crate::speakers::DriverKind::Rtp,
        &addr.to_string(),
    );
    let rx = tokio::spawn(async move {
        let mut n = 0u32;
        let mut buf = [0u8; 2048];
        while let Ok(Ok((len, _))) =
            tokio::time::timeout(Duration::from_secs(3), horn.recv_from(&mut buf)).await
        {
            // RTP version 2, payload type 0 (PCMU).
            if len > 12 && buf[0] >> 6 == 2 && buf[1] & 0x7f == 0 {
                n += 1;
            }
        }
        n
    });
    let tech = Auth::Bearer(&fx.tokens[&Role::Technician]);
    let path = "/api/v1/speakers/spk-1/test";
    let body = br#"{"tone_hz": 1000, "seconds": 1}"#;
    let r = call(&fx.app, Method::POST, path, tech.clone(), Some(body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    // The socket swallows the tone and sends no RTCP receiver report: the
    // gateway cannot know the horn played, so it never says ok.
    assert_eq!(v["answered"], "unknown", "{v}");
    assert_eq!(v["result"], "unknown", "{v}");
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["packets"], 50, "1 s of 20 ms packets: {v}");
    assert!(
        v["started_at"].is_string() && v["skew_ms"].is_number(),
        "{v}"
    );
    assert!(rx.await.unwrap() >= 50, "the horn received the tone");
    let m = call(&fx.app, Method::GET, "/metrics", Auth::None, None).await;
    assert!(
        m.body
            .contains(r#"tgw_speaker_tests_total{result="unknown"} 1"#),
        "the unconfirmed test is counted as unknown, not ok: {}",
        m.body
    );
    let list = call(
        &fx.app,
        Method::GET,
        "/api/v1/speakers?village=dongcun",
        Auth::Bearer(&fx.tokens[&Role::Viewer]),
        None,
    )
    .await;
    let l: serde_json::Value = serde_json::from_str(&list.body).unwrap();
    assert_eq!(l[0]["id"], "spk-1");
    assert_eq!(l[0]["has_password"], true);
    assert_eq!(l[0]["last_test"]["packets"], 50);
    let one = call(
        &fx.app,
        Method::GET,
        "/api/v1/speakers/spk-1",
        tech.clone(),
        None,
    )
    .await;
    let other = call(
        &fx.app,
        Method::GET,
        "/api/v1/speakers?village=xinhe",
        tech.clone(),
        None,
    )
    .await;
    assert_eq!(other.body, "[]");
    let audit = fx.st.users().audit_log(10, None).unwrap();
    let e = audit
        .iter()
        .find(|e| e.action == "speaker.test")
        .expect("audit entry");
    assert_eq!(e.actor, "tech");
    assert_eq!(e.target.as_deref(), Some("spk-1"));
    assert_eq!(e.outcome, "unconfirmed");
    assert_eq!(e.after.as_ref().unwrap()["packets"], 50);
    let audit_text = serde_json::to_string(&fx.st.users().audit_log(100, None).unwrap()).unwrap();
    for text in [&r.body, &list.body, &one.body, &audit_text] {
        assert!(!text.contains(SPK_PW), "speaker password leaked: {text}");
    }
}

/// A horn whose port is refused (nothing listening: ICMP port
/// unreachable on loopback) fails as unreachable, answered no, audited as
/// a device error.
#[tokio::test]
async fn speaker_test_of_a_refused_port_is_unreachable() {
    let fx = fixture();
    let port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    add_speaker(
        &fx,
        "spk-1",
        crate::speakers::DriverKind::Rtp,
        &format!("127.0.0.1:{port}"),
    );
    let tech = Auth::Bearer(&fx.tokens[&Role::Technician]);
    let body = br#"{"tone_hz": 1000, "seconds": 1}"#;
    let r = call(
        &fx.app,
        Method::POST,
        "/api/v1/speakers/spk-1/test",
        tech,
        Some(body),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["result"], "failed: unreachable", "{v}");
    assert_eq!(v["answered"], "no", "{v}");
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["error_kind"], "unreachable", "{v}");
    assert!(v["packets"].as_u64().unwrap() < 5, "stopped at once: {v}");
    let audit = fx.st.users().audit_log(10, None).unwrap();
    let e = audit.iter().find(|e| e.action == "speaker.test").unwrap();
    assert_eq!(e.outcome, "device_error");
}

/// Out-of-range tones → 400; unknown horn → 404; a horn already under
/// test → 409 (audited as busy); a cloud horn → 422.
#[tokio::test]
async fn speaker_test_refusals() {
    let fx = fixture();
    add_speaker(
        &fx,
        "spk-1",
        crate::speakers::DriverKind::Rtp,
        "127.0.0.1:9",
    );
    add_speaker(
        &fx,
        "spk-c",
        crate::speakers::DriverKind::Cloud,
        "horn-0001",
    );
    let tech = Auth::Bearer(&fx.tokens[&Role::Technician]);
    let path = "/api/v1/speakers/spk-1/test";
    for bad in [
        &br#"{"tone_hz": 399, "seconds": 1}"#[..],
        br#"{"tone_hz": 3001, "seconds": 1}"#,
        br#"{"tone_hz": 1000, "seconds": 0}"#,
        br#"{"tone_hz": 1000, "seconds": 11}"#,
        br#"{"tone_hz": -5}"#,
    ] {
        let r = call(&fx.app, Method::POST, path, tech.clone(), Some(bad)).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    let ok = br#"{"tone_hz": 1000, "seconds": 1}"#;
    let r = call(
        &fx.app,
        Method::POST,
        "/api/v1/speakers/nope/test",
        tech.clone(),
        Some(ok),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(
        &fx.app,
        Method::GET,
        "/api/v1/speakers/nope",
        tech.clone(),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(
        &fx.app,
        Method::POST,
        "/api/v1/speakers/spk-c/test",
        tech.clone(),
        Some(ok),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let slot = fx.st.speaker_tests.take("spk-1").unwrap();
    let r = call(&fx.app, Method::POST, path, tech.clone(), Some(ok)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "busy");
    drop(slot);
    assert!(
        fx.st.speaker_tests.take("spk-1").is_some(),
        "slot freed on drop"
    );
    let audit = fx.st.users().audit_log(10, None).unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "speaker.test" && e.outcome == "busy")
    );
}
