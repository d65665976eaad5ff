//! `POST /api/v1/cameras/{id}/sync-time` through the router against a
//! simulated camera: refusals first (role, unknown camera, a zone that is
//! not POSIX, a camera that refuses the login), then a skewed clock set
//! right. Every attempt is audited; no password reaches a reply or the log.

use device_sim::Fault;

use super::logins::{SIM_PW, sim_camera};
use super::*;

async fn sync(fx: &Fx, role: Role, id: &str, body: serde_json::Value) -> Resp {
    let b = body.to_string();
    call(
        &fx.app,
        Method::POST,
        &format!("/api/v1/cameras/{id}/sync-time"),
        Auth::Bearer(&fx.tokens[&role]),
        Some(b.as_bytes()),
    )
    .await
}

fn sync_audit_rows(fx: &Fx) -> Vec<serde_json::Value> {
    let all = serde_json::to_value(fx.st.store.audit_log(1000, None).unwrap()).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .filter(|r| r.to_string().contains("camera.sync_time"))
        .cloned()
        .collect()
}

#[tokio::test]
async fn sync_time_refuses_what_it_must_and_sets_a_skewed_clock() {
    let fx = fixture();
    let (sim, id, cam) = sim_camera(&fx, 7).await;
    let user = cam.username.clone().unwrap();

    // An operator may not set camera clocks.
    let r = sync(&fx, Role::Operator, &id, serde_json::json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // Unknown camera, a zone that is not POSIX, a field we do not know.
    let r = sync(&fx, Role::Technician, "cam-nope", serde_json::json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = sync(
        &fx,
        Role::Technician,
        &id,
        serde_json::json!({"tz": "Mars"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("POSIX"), "{}", r.body);
    let r = sync(
        &fx,
        Role::Technician,
        &id,
        serde_json::json!({"tz": "CST-8; reboot"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);

    // The stored login is wrong: the camera's refusal, never the password.
    fx.st
        .store
        .set_device_login(&id, &user, &Password::new("wrong-Secret-pw"))
        .unwrap();
    let r = sync(&fx, Role::Technician, &id, serde_json::json!({})).await;
    assert!(
        r.status.is_client_error() || r.status.is_server_error(),
        "{}",
        r.body
    );
    assert!(!r.body.contains("wrong-Secret-pw"), "{}", r.body);
    let rows = sync_audit_rows(&fx);
    assert!(
        rows.iter().any(|r| !r.to_string().contains("\"ok\"")),
        "a refused sync is audited as a failure: {rows:?}"
    );

    // The right login, a camera 2 h fast: the offset before says so, after
    // it is within a second, and the camera's clock really moved.
    fx.st
        .store
        .set_device_login(&id, &user, &Password::new(SIM_PW))
        .unwrap();
    sim.set_fault(&cam.id, Some(Fault::ClockSkew(7200)))
        .unwrap();
    let r = sync(&fx, Role::Technician, &id, serde_json::json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["mode"], "manual", "{v}");
    let before = v["offset_before_ms"].as_i64().unwrap();
    assert!((before - 7_200_000).abs() < 5_000, "{v}");
    let after = v["offset_after_ms"].as_i64().unwrap();
    assert!(after.abs() < 1_500, "{v}");
    let rows = sync_audit_rows(&fx);
    assert!(
        rows.iter().any(|r| r.to_string().contains("\"ok\"")),
        "{rows:?}"
    );
    let audit = serde_json::to_string(&rows).unwrap();
    assert!(!audit.contains(SIM_PW) && !audit.contains("wrong-Secret-pw"));
    sim.shutdown().await;
}
