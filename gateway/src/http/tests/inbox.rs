//! Adoption from the discovery inbox, probes and the audit trail.

use super::*;

/// Adopting a discovered speaker (an mDNS-found SIP horn) creates its
/// speaker inventory entry with the request's village/grid/zone, the
/// driver kind and address from the sighting and the login (sealed, not
/// listed); it then shows in `GET /api/v1/speakers`, no camera probe is
/// queued, and the audit entry names the speaker. A speaker whose driver
/// discovery could not tell is refused unless `driver`/`address` come
/// with the request; zone/driver on a camera are refused.
#[tokio::test]
async fn adopting_a_discovered_speaker_fills_the_speaker_inventory() {
    let mut fx = fixture();
    let tech = Auth::Bearer(&fx.tokens[&Role::Technician]);
    let sip = fx
        .st
        .store
        .record_speaker_sighting(
            "mdns:Horn 1._sip._udp.local",
            Some([10, 21, 3, 41].into()),
            None,
            Some("Horn 1"),
            "mdns",
            Some(("sip", "sip:horn@10.21.3.41:5062")),
        )
        .unwrap()
        .id;
    let bare = fx
        .st
        .store
        .record_speaker_sighting(
            "uuid:x::urn:y",
            Some([10, 21, 3, 42].into()),
            None,
            Some("SPON"),
            "ssdp",
            None,
        )
        .unwrap()
        .id;
    let adopt = |body: serde_json::Value| {
        let app = fx.app.clone();
        let tech = tech.clone();
        async move {
            let b = body.to_string();
            call(
                &app,
                Method::POST,
                "/api/v1/inbox/adopt",
                tech,
                Some(b.as_bytes()),
            )
            .await
        }
    };
    let r = adopt(
        serde_json::json!({"ids": [sip], "village": "dongcun", "grid": "dongcun-1",
        "zone": "dongcun-square", "username": "horn", "password": "horn-pw"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["adopted"][0], sip.as_str(), "{v}");
    assert!(
        fx._probe_rx.try_recv().is_err(),
        "no ONVIF probe for a speaker"
    );
    let list = call(
        &fx.app,
        Method::GET,
        "/api/v1/speakers?village=dongcun",
        tech.clone(),
        None,
    )
    .await;
    assert_eq!(list.status, StatusCode::OK);
    let list: serde_json::Value = serde_json::from_str(&list.body).unwrap();
    let e = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == sip.as_str())
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(e["kind"], "sip");
    assert_eq!(e["address"], "sip:horn@10.21.3.41:5062");
    assert_eq!(
        (&e["village"], &e["grid"], &e["zone"]),
        (
            &"dongcun".into(),
            &"dongcun-1".into(),
            &"dongcun-square".into()
        )
    );
    assert_eq!(e["name"], "Horn 1");
    assert_eq!(e["has_password"], true);
    assert!(!list.to_string().contains("horn-pw"));
    let dev = fx.st.store.device(&sip).unwrap().unwrap();
    assert_eq!(dev.state, DeviceState::Adopted);
    assert!(
        !dev.has_credentials,
        "the login belongs to the speaker inventory"
    );
    let log = fx.st.users().audit_log(100, None).unwrap();
    let a = log
        .iter()
        .find(|e| e.action == "device.adopt" && e.target.as_deref() == Some(sip.as_str()))
        .unwrap();
    assert_eq!(a.after.as_ref().unwrap()["speaker"]["kind"], "sip");
    assert!(!serde_json::to_string(&a.after).unwrap().contains("horn-pw"));

    // No driver known: refused, nothing changes; with one, adopted.
    let r = adopt(serde_json::json!({"ids": [bare], "village": "dongcun"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("give `driver` and `address`"), "{}", r.body);
    assert_eq!(
        fx.st.store.device(&bare).unwrap().unwrap().state,
        DeviceState::Discovered
    );
    let r = adopt(serde_json::json!({"ids": [bare], "village": "dongcun", "driver": "rtp", "address": "10.21.3.42:0"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = adopt(serde_json::json!({"ids": [bare], "village": "dongcun", "driver": "rtp", "address": "10.21.3.42:5004"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let one = call(
        &fx.app,
        Method::GET,
        &format!("/api/v1/speakers/{bare}"),
        tech.clone(),
        None,
    )
    .await;
    assert!(one.body.contains("\"kind\":\"rtp\""), "{}", one.body);

    // Speaker-only fields on a camera.
    let cam = fx
        .st
        .store
        .devices(Some(DeviceState::Discovered))
        .unwrap()
        .into_iter()
        .find(|d| d.kind == "camera")
        .unwrap()
        .id;
    let r = adopt(serde_json::json!({"ids": [cam], "zone": "z1"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("apply to speakers"), "{}", r.body);
}

/// Adoption, credentials and probe-now reach the store and the probe
/// channel, and each writes an audit entry with before/after.
#[tokio::test]
async fn adopt_probe_and_audit() {
    let mut fx = fixture();
    let tech = Auth::Bearer(&fx.tokens[&Role::Technician]);
    let ids: Vec<String> = fx
        .st
        .store
        .devices(Some(DeviceState::Discovered))
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(ids.len(), 2);
    let inbox = call(&fx.app, Method::GET, "/api/v1/inbox", tech.clone(), None).await;
    assert!(inbox.body.contains(&ids[0]));
    let body = serde_json::json!({"ids": [ids[0], ids[1], "cam-nope"], "village": "dongcun", "grid": "dongcun-2"}).to_string();
    let r = call(
        &fx.app,
        Method::POST,
        "/api/v1/inbox/adopt",
        tech.clone(),
        Some(body.as_bytes()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["adopted"].as_array().unwrap().len(), 2);
    assert_eq!(v["errors"][0]["code"], "not_found");
    assert_eq!(
        fx.st
            .store
            .device(&ids[0])
            .unwrap()
            .unwrap()
            .grid
            .as_deref(),
        Some("dongcun-2")
    );
    assert_eq!(fx._probe_rx.try_recv().unwrap(), ids[0]);
    let r = call(
        &fx.app,
        Method::POST,
        &format!("/api/v1/cameras/{}/probe", fx.cam),
        tech.clone(),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let cams = call(
        &fx.app,
        Method::GET,
        "/api/v1/cameras?village=dongcun&per_page=2&page=1",
        tech.clone(),
        None,
    )
    .await;
    assert_eq!(cams.headers["x-total-count"], "3");
    assert_eq!(
        serde_json::from_str::<Vec<CameraStatus>>(&cams.body)
            .unwrap()
            .len(),
        2
    );
    let cams = call(
        &fx.app,
        Method::GET,
        "/api/v1/cameras?grid=dongcun-2",
        tech.clone(),
        None,
    )
    .await;
    assert_eq!(cams.headers["x-total-count"], "2");
    let log = fx.st.users().audit_log(100, None).unwrap();
    let adopt = log
        .iter()
        .find(|e| e.action == "device.adopt" && e.target.as_deref() == Some(ids[0].as_str()))
        .unwrap();
    assert_eq!(adopt.actor, "tech");
    assert_eq!(adopt.before.as_ref().unwrap()["state"], "discovered");
    assert_eq!(adopt.after.as_ref().unwrap()["state"], "adopted");
    assert!(log.iter().any(|e| e.action == "camera.probe"));
    // The last admin cannot demote itself away.
    let adm = Auth::Bearer(&fx.tokens[&Role::Admin]);
    let r = call(
        &fx.app,
        Method::PATCH,
        "/api/v1/users/adm",
        adm.clone(),
        Some(br#"{"role":"viewer"}"#),
    )
    .await;
    assert_eq!(r.code(), "last_admin");
    // Overview counts.
    let o = call(&fx.app, Method::GET, "/api/v1/overview", adm, None).await;
    let o: serde_json::Value = serde_json::from_str(&o.body).unwrap();
    assert_eq!(o["cameras"], 3);
    assert_eq!(o["totals"]["unknown"], 3);
}
