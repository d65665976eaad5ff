//! Fixing a camera's login: the login test against a simulated camera
//! (wrong password → the camera's own fault text, right → ok, closed port →
//! unreachable, one test per camera at a time), bulk logins (one audit row
//! per camera, each probed), and the re-probe after a login or credential
//! group change. Passwords never appear in a response or the audit log.

use std::net::SocketAddr;
use tokio::time::Instant;

use device_sim::{Fault, SimConfig};

use super::*;

pub(super) const SIM_PW: &str = "s1m-Secret-pw";

/// One simulated camera on its own loopback address (`n` keeps tests
/// apart), recorded and adopted in the fixture's store; its id there.
pub(super) async fn sim_camera(
    fx: &Fx,
    n: u8,
) -> (device_sim::Sim, String, device_sim::DeviceEntry) {
    let sim = device_sim::start(SimConfig {
        cameras: 1,
        bind: Ipv4Addr::new(127, 79, n, 1),
        wsd_port: 38900 + u16::from(n),
        rtsp_port: 0,
        multicast: None,
        password: Some(SIM_PW.into()),
        probe_max_delay: Some(Duration::ZERO),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let cam = sim.manifest().devices[0].clone();
    let up = fx
        .st
        .store
        .record_sighting(&Sighting {
            endpoint_ref: cam.endpoint_ref.clone().unwrap(),
            address: Some(cam.address.parse().unwrap()),
            xaddrs: vec![cam.xaddr.clone().unwrap()],
            via: "unicast".into(),
            ..Default::default()
        })
        .unwrap();
    fx.st.store.adopt(&up.id, Some("dongcun"), None).unwrap();
    (sim, up.id, cam)
}

async fn test_login(fx: &Fx, id: &str, body: Option<serde_json::Value>) -> Resp {
    let tech = Auth::Bearer(&fx.tokens[&Role::Technician]);
    let b = body.map(|b| b.to_string());
    call(
        &fx.app,
        Method::POST,
        &format!("/api/v1/devices/{id}/credentials/test"),
        tech,
        b.as_deref().map(str::as_bytes),
    )
    .await
}

fn audit_text(fx: &Fx) -> String {
    serde_json::to_string(&fx.st.store.audit_log(1000, None).unwrap()).unwrap()
}

/// A wrong password is `credentials-rejected` with the simulator's own
/// fault text and the camera's clock offset; the right one (given, then
/// stored and tested without a body) is `ok`; neither password reaches the
/// response or the audit log, which has one row per test.
#[tokio::test]
async fn login_test_tells_wrong_from_right_with_the_cameras_fault_text() {
    let fx = fixture();
    let (sim, id, cam) = sim_camera(&fx, 1).await;
    let user = cam.username.clone().unwrap();
    let r = test_login(
        &fx,
        &id,
        Some(serde_json::json!({"username": user, "password": "not-the-pw-123"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["result"], "credentials-rejected", "{}", r.body);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("Sender not Authorized"),
        "{}",
        r.body
    );
    assert!(v["clock_offset_ms"].is_i64(), "{}", r.body);
    assert!(!r.body.contains("not-the-pw-123"));

    let r = test_login(
        &fx,
        &id,
        Some(serde_json::json!({"username": user, "password": SIM_PW})),
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["result"], "ok", "{}", r.body);
    assert!(!r.body.contains(SIM_PW));

    // No login stored yet: 409 naming what to do.
    let r = test_login(&fx, &id, None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "no_login");
    fx.st
        .store
        .set_device_login(&id, &user, &Password::new(SIM_PW))
        .unwrap();
    let r = test_login(&fx, &id, None).await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["result"], "ok", "{}", r.body);
    // The camera changes its password: the stored login is now refused.
    sim.set_fault(&cam.id, Some(Fault::WrongPassword)).unwrap();
    let r = test_login(&fx, &id, Some(serde_json::json!({}))).await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["result"], "credentials-rejected", "{}", r.body);

    let audit = audit_text(&fx);
    assert_eq!(
        audit.matches("device.credentials.test").count(),
        4,
        "{audit}"
    );
    assert!(audit.contains("credentials-rejected"), "{audit}");
    assert!(!audit.contains(SIM_PW) && !audit.contains("not-the-pw-123"));
    sim.shutdown().await;
}

/// A camera whose ONVIF port refuses connections is `unreachable` at once
/// (well under the test deadline).
#[tokio::test]
async fn a_refused_connection_is_unreachable_at_once() {
    let fx = fixture();
    let closed = std::net::TcpListener::bind("127.0.9.50:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let up = fx
        .st
        .store
        .record_sighting(&Sighting {
            endpoint_ref: "urn:uuid:cam-closed".into(),
            address: Some(Ipv4Addr::new(127, 0, 9, 50)),
            xaddrs: vec![format!("http://127.0.9.50:{port}/onvif/device_service")],
            via: "unicast".into(),
            ..Default::default()
        })
        .unwrap();
    let t0 = Instant::now();
    let r = test_login(
        &fx,
        &up.id,
        Some(serde_json::json!({"username": "admin", "password": "whatever-pw"})),
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["result"], "unreachable", "{}", r.body);
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert!(v["clock_offset_ms"].is_null());
    assert!(!r.body.contains("whatever-pw"));
}

/// While a test of a camera runs, a second test of the same camera is 409
/// `busy`; a test of another camera is not held up. The first test's camera
/// accepts the connection and never answers, so it is surely running.
#[tokio::test]
async fn a_second_test_of_one_camera_is_refused_while_the_first_runs() {
    let fx = fixture();
    let silent = tokio::net::TcpListener::bind("127.0.9.60:0").await.unwrap();
    let addr: SocketAddr = silent.local_addr().unwrap();
    let up = fx
        .st
        .store
        .record_sighting(&Sighting {
            endpoint_ref: "urn:uuid:cam-silent".into(),
            address: Some(Ipv4Addr::new(127, 0, 9, 60)),
            xaddrs: vec![format!("http://{addr}/onvif/device_service")],
            via: "unicast".into(),
            ..Default::default()
        })
        .unwrap();
    let body = serde_json::json!({"username": "admin", "password": "hang-pw-1"});
    let first = {
        let app = fx.app.clone();
        let path = format!("/api/v1/devices/{}/credentials/test", up.id);
        let tok = fx.tokens[&Role::Technician].clone();
        let b = body.to_string();
        tokio::spawn(async move {
            call(
                &app,
                Method::POST,
                &path,
                Auth::Bearer(&tok),
                Some(b.as_bytes()),
            )
            .await
        })
    };
    // The first test has connected: it holds the camera's slot.
    let (_conn, _) = silent.accept().await.unwrap();
    let r = test_login(&fx, &up.id, Some(body.clone())).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "busy");
    // The camera hangs up: the first test ends (not ok) and frees the slot.
    drop(_conn);
    let first = first.await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&first.body).unwrap();
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_ne!(v["result"], "ok", "{}", first.body);
    drop(silent);
    let r = test_login(&fx, &up.id, Some(body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// Bulk: one login applied to each camera named (one audit row each, each
/// queued for a probe), an unknown id answered per id without stopping the
/// rest; `clear: true` removes the cameras' own logins; bodies mixing both
/// are refused.
#[tokio::test]
async fn bulk_logins_apply_to_each_camera_and_are_audited_per_camera() {
    let mut fx = fixture();
    let ids: Vec<String> = fx
        .st
        .store
        .devices(None)
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(ids.len(), 3);
    let tech = Auth::Bearer(&fx.tokens[&Role::Technician]);
    let body = serde_json::json!({"ids": [ids[0], ids[1], "cam-nope"], "username": "ops", "password": "bulk-Secret-pw"}).to_string();
    let r = call(
        &fx.app,
        Method::POST,
        "/api/v1/devices/credentials",
        tech.clone(),
        Some(body.as_bytes()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v[0], serde_json::json!({"id": ids[0], "ok": true}));
    assert_eq!(v[1], serde_json::json!({"id": ids[1], "ok": true}));
    assert_eq!(v[2]["ok"], false);
    assert!(v[2]["error"].as_str().unwrap().contains("cam-nope"));
    for id in &ids[..2] {
        let l = fx.st.store.login_for(id).unwrap().unwrap();
        assert_eq!(
            (l.username.as_str(), l.password.expose()),
            ("ops", "bulk-Secret-pw")
        );
    }
    assert_eq!(fx._probe_rx.try_recv().unwrap(), ids[0]);
    assert_eq!(fx._probe_rx.try_recv().unwrap(), ids[1]);
    assert!(fx._probe_rx.try_recv().is_err());
    let audit = audit_text(&fx);
    assert_eq!(
        audit.matches("\"device.credentials\"").count(),
        2,
        "{audit}"
    );
    assert!(!audit.contains("bulk-Secret-pw") && !r.body.contains("bulk-Secret-pw"));

    let body = serde_json::json!({"ids": [ids[0]], "clear": true}).to_string();
    let r = call(
        &fx.app,
        Method::POST,
        "/api/v1/devices/credentials",
        tech.clone(),
        Some(body.as_bytes()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(fx.st.store.login_for(&ids[0]).unwrap().is_none());
    assert!(fx.st.store.login_for(&ids[1]).unwrap().is_some());
    assert_eq!(fx._probe_rx.try_recv().unwrap(), ids[0]);

    for bad in [
        serde_json::json!({"ids": [ids[0]], "clear": true, "username": "x", "password": "y"}),
        serde_json::json!({"ids": [ids[0]], "username": "x"}),
        serde_json::json!({"ids": [], "clear": true}),
    ] {
        let b = bad.to_string();
        let r = call(
            &fx.app,
            Method::POST,
            "/api/v1/devices/credentials",
            tech.clone(),
            Some(b.as_bytes()),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
}

/// Clearing a camera's login, and putting or deleting a credential group,
/// queue a probe of exactly the adopted cameras the change reaches (those
/// without their own login inside the group's scope, before or after).
#[tokio::test]
async fn login_changes_queue_a_probe_of_the_cameras_they_reach() {
    let mut fx = fixture();
    let tech = Auth::Bearer(&fx.tokens[&Role::Technician]);
    let path = format!("/api/v1/devices/{}/credentials", fx.cam);
    let r = call(&fx.app, Method::DELETE, &path, tech.clone(), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(fx._probe_rx.try_recv().unwrap(), fx.cam);
    // fx.cam (127.0.9.1, adopted, now without its own login) is in scope;
    // the two discovered cameras are not adopted.
    let g = serde_json::json!({"username": "admin", "password": "group-Secret-pw", "subnets": ["127.0.9.0/24"]}).to_string();
    let r = call(
        &fx.app,
        Method::PUT,
        "/api/v1/credential-groups/lab",
        tech.clone(),
        Some(g.as_bytes()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(fx._probe_rx.try_recv().unwrap(), fx.cam);
    assert!(fx._probe_rx.try_recv().is_err());
    // Narrowed away from the camera: it is still probed (it lost the login).
    let g = serde_json::json!({"username": "admin", "password": "group-Secret-pw", "subnets": ["10.9.9.0/24"]}).to_string();
    let r = call(
        &fx.app,
        Method::PUT,
        "/api/v1/credential-groups/lab",
        tech.clone(),
        Some(g.as_bytes()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(fx._probe_rx.try_recv().unwrap(), fx.cam);
    // Deleting a group that reaches no camera probes none.
    let r = call(
        &fx.app,
        Method::DELETE,
        "/api/v1/credential-groups/lab",
        tech.clone(),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(fx._probe_rx.try_recv().is_err());
}

/// A login given with the inbox's adopt is stored (sealed) and the camera
/// queued for a probe at once.
#[tokio::test]
async fn adopting_with_a_login_stores_it_and_probes() {
    let mut fx = fixture();
    let tech = Auth::Bearer(&fx.tokens[&Role::Technician]);
    let id = fx.st.store.devices(Some(DeviceState::Discovered)).unwrap()[0]
        .id
        .clone();
    let body = serde_json::json!({"ids": [id], "village": "dongcun", "username": "inst", "password": "adopt-Secret-pw"}).to_string();
    let r = call(
        &fx.app,
        Method::POST,
        "/api/v1/inbox/adopt",
        tech,
        Some(body.as_bytes()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let l = fx.st.store.login_for(&id).unwrap().unwrap();
    assert_eq!(
        (l.username.as_str(), l.password.expose(), l.source.as_str()),
        ("inst", "adopt-Secret-pw", "device")
    );
    assert_eq!(fx._probe_rx.try_recv().unwrap(), id);
    assert!(!audit_text(&fx).contains("adopt-Secret-pw"));
}
