//! The snapshot route sends a camera's login only to the camera's own host
//! (real HTTP servers on two loopback addresses), never as Basic over plain
//! HTTP unless the camera is opted in (`[[health.camera_access]]`).

use std::net::Ipv4Addr;

use super::*;
use crate::cameras::fake::{self, HttpSpy};
use crate::config::CameraAccess;

fn basic_401() -> String {
    fake::http_response(
        "401 Unauthorized",
        &["WWW-Authenticate: Basic realm=\"cam\"".to_string()],
    )
}

async fn get_snapshot(app: &Router, fx: &Fx, id: &str) -> Resp {
    call(
        app,
        Method::GET,
        &format!("/api/v1/cameras/{id}/snapshot"),
        Auth::Bearer(&fx.tokens[&Role::Viewer]),
        None,
    )
    .await
}

#[tokio::test]
async fn snapshot_route_never_sends_the_login_to_another_host() {
    let fx = fixture();
    // The other host (127.0.0.2) asks for Basic.
    let other = HttpSpy::start("127.0.0.2", basic_401()).await;
    let elsewhere = format!("http://{}/snap.jpg", other.addr);
    // Camera 1 (127.0.0.1) names the other host directly.
    let direct = fake::adopted_at(
        &fx.st.store,
        Ipv4Addr::LOCALHOST,
        "http://127.0.0.1:1/onvif/device_service",
        &elsewhere,
    );
    // Camera 2 (127.0.0.3) names itself, then redirects to the other host.
    let redirect = format!("Location: {elsewhere}");
    let cam = HttpSpy::start("127.0.0.3", fake::http_response("302 Found", &[redirect])).await;
    let via_redirect = fake::adopted_at(
        &fx.st.store,
        Ipv4Addr::new(127, 0, 0, 3),
        &format!("http://{}/onvif/device_service", cam.addr),
        &format!("http://{}/snap.jpg", cam.addr),
    );
    for id in [&direct, &via_redirect] {
        let r = get_snapshot(&fx.app, &fx, id).await;
        assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.body);
        assert!(r.body.contains("foreign-host"), "{}", r.body);
        assert!(!r.body.contains(fake::SPY_PASSWORD), "{}", r.body);
    }
    assert_eq!(cam.heads().len(), 1, "the camera was asked once");
    assert_eq!(other.heads().len(), 2, "the other host was asked twice");
    assert!(
        !other.saw_authorization(),
        "the other host got the login: {:?}",
        other.heads()
    );
}

#[tokio::test]
async fn snapshot_route_answers_plain_basic_only_when_opted_in() {
    let fx = fixture();
    let cam = HttpSpy::start("127.0.0.1", basic_401()).await;
    let id = fake::adopted_at(
        &fx.st.store,
        Ipv4Addr::LOCALHOST,
        &format!("http://{}/onvif/device_service", cam.addr),
        &format!("http://{}/snap.jpg", cam.addr),
    );
    let r = get_snapshot(&fx.app, &fx, &id).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.body);
    assert!(r.body.contains("plain-basic"), "{}", r.body);
    assert!(!cam.saw_authorization(), "{:?}", cam.heads());

    let opted = router(fx.st.clone().with_camera_access(vec![CameraAccess {
        device: id.clone(),
        extra_hosts: Vec::new(),
        plain_basic: true,
    }]));
    let r = get_snapshot(&opted, &fx, &id).await;
    // The camera keeps refusing; what matters is that the login was sent.
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.body);
    assert!(cam.saw_authorization(), "{:?}", cam.heads());
}
