//! Fixing a camera's login end to end: `tgw run` adopts two simulated
//! cameras through a credential group; one has the wrong-password fault.
//! The login test answers `credentials-rejected` with the simulator's own
//! fault text for it and `ok` for the other; with the camera's real password
//! it answers `ok`, and setting that login through the API is accepted; a
//! camera taken offline is `unreachable` at once. No password reaches a
//! response, the audit log or the daemon's log.

use std::time::{Duration, Instant};

use tgw_e2e::*;

const GROUP_PW: &str = "pw-logins-e2e";

#[test]
fn wrong_password_is_reported_with_the_cameras_text_and_fixed_from_the_api() {
    let base = test_net(93);
    let cidr = cidr24(base);
    let (wsd, control, http) = (free_udp_port(), free_tcp_port(), free_tcp_port());
    let control = format!("127.0.0.1:{control}");
    let http = format!("127.0.0.1:{http}");
    let sim = SimProc::cameras(
        2,
        base,
        wsd,
        GROUP_PW,
        &["--control", &control, "--fault", "cam-0002=wrong-password"],
    );
    let dir = tempfile::tempdir().expect("tmp");
    let cfg_path = GatewayConfig::new(dir.path())
        .camera_sweep(&cidr, wsd)
        .auto_adopt()
        .credential_group("admin", GROUP_PW, &cidr)
        .http(&http)
        .write(dir.path().join("gateway.toml"));
    let tech = api_token_as(&cfg_path, "tech", "technician");
    let admin = api_token_as(&cfg_path, "boss", "admin");
    let mut gw = GatewayStart::new(&cfg_path, &http)
        .env("RUST_LOG", "debug")
        .log(dir.path().join("tgw.log"))
        .start();

    let cams = sim.devices("camera");
    let addr_of = |i: usize| cams[i]["address"].as_str().expect("address").to_string();
    // Our ids of the two cameras, once both are adopted.
    let ids: Vec<String> = wait_for(Duration::from_secs(30), "2 adopted cameras", || {
        let (status, body) = http_get_as(&http, "/api/v1/devices?state=adopted", Some(&tech))?;
        (status == 200).then_some(())?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let find = |a: &str| {
            v.as_array()?
                .iter()
                .find(|d| d["address"] == a)
                .and_then(|d| d["id"].as_str().map(str::to_string))
        };
        Some(vec![find(&addr_of(0))?, find(&addr_of(1))?])
    });
    let test = |id: &str, body: &str| -> serde_json::Value {
        let (status, resp) = http_post_as(
            &http,
            &format!("/api/v1/devices/{id}/credentials/test"),
            &tech,
            body,
        )
        .expect("login test");
        assert_eq!(status, 200, "{resp}");
        assert!(!resp.contains(GROUP_PW), "{resp}");
        serde_json::from_str(&resp).expect("json")
    };

    // The stored (group) login: refused by the camera whose password changed,
    // with the simulator's own words; accepted by the other.
    let v = test(&ids[1], "{}");
    assert_eq!(v["result"], "credentials-rejected", "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Sender not Authorized"),
        "{v}"
    );
    assert!(v["clock_offset_ms"].is_i64(), "{v}");
    let v = test(&ids[0], "{}");
    assert_eq!(v["result"], "ok", "{v}");

    // The camera's real (changed) password works, and can be set.
    let real = format!("{GROUP_PW}#changed");
    let login = serde_json::json!({"username": "admin", "password": real}).to_string();
    let v = test(&ids[1], &login);
    assert_eq!(v["result"], "ok", "{v}");
    let bulk = serde_json::json!({"ids": [ids[1]], "username": "admin", "password": real});
    let (status, resp) = http_post_as(
        &http,
        "/api/v1/devices/credentials",
        &tech,
        &bulk.to_string(),
    )
    .expect("bulk");
    assert_eq!(status, 200, "{resp}");
    assert!(
        resp.contains("\"ok\":true") && !resp.contains(&real),
        "{resp}"
    );
    let v = test(&ids[1], "");
    assert_eq!(v["result"], "ok", "{v}");

    // Offline: refused at once.
    sim_fault(&control, cams[0]["id"].as_str().expect("id"), "offline");
    let t0 = Instant::now();
    let v = test(&ids[0], "{}");
    assert_eq!(v["result"], "unreachable", "{v}");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());

    let (status, audit) =
        http_get_as(&http, "/api/v1/audit?limit=100", Some(&admin)).expect("audit");
    assert_eq!(status, 200, "{audit}");
    assert_eq!(
        audit.matches("device.credentials.test").count(),
        5,
        "{audit}"
    );
    assert!(
        !audit.contains(&real) && !audit.contains(GROUP_PW),
        "{audit}"
    );

    gw.stop();
    let text = gw.log();
    assert!(text.contains("login test"), "the tests are logged");
    assert!(!text.contains(GROUP_PW), "a password reached the log");
}
