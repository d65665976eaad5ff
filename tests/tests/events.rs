//! ONVIF events end to end: `tgw run` subscribes to simulated cameras'
//! PullPoint event services; a `tamper` fault raises a `camera/{id}/event`
//! on MQTT and a degraded verdict (reason `tamper`) within one pull round,
//! clearing it restores ok; a subscription the camera expires is rebuilt and
//! the tamper raised meanwhile still arrives; the Axis camera, which only
//! answers WS-Addressed event calls that echo its subscription's reference
//! parameter, raises its tamper too; `tgw camera sync-time` brings a camera
//! 10 minutes fast to within 2 s.

use std::time::{Duration, Instant};

use tgw_e2e::*;

/// Camera events received on MQTT so far: (camera, kind, state).
fn camera_events(sub: &MqttSub) -> Vec<(String, String, String)> {
    sub.lines()
        .into_iter()
        .filter_map(|(_, p)| serde_json::from_str::<serde_json::Value>(&p).ok())
        .filter(|v| v["type"] == "camera-event")
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            (s("camera"), s("kind"), s("state"))
        })
        .collect()
}

#[test]
fn tamper_raises_an_event_and_degrades_and_expiry_loses_nothing() {
    let Some(broker) = Mosquitto::start() else {
        assert!(
            std::env::var("CI").is_err(),
            "mosquitto is required under CI"
        );
        eprintln!("skipped: mosquitto not installed");
        return;
    };
    let base = test_net(83);
    let cidr = cidr24(base);
    let (wsd, control, http) = (free_udp_port(), free_tcp_port(), free_tcp_port());
    let control = format!("127.0.0.1:{control}");
    let http = format!("127.0.0.1:{http}");
    // cam-0001 is a Hikvision (TamperDetector), cam-0002 a Dahua
    // (GlobalSceneChange), cam-0003 a Uniview, cam-0004 a TP-Link (no
    // events), cam-0005 an Axis (Tampering; strict WS-Addressing).
    let sim = SimProc::cameras(5, base, wsd, "pw-events", &["--control", &control]);
    let dir = tempfile::tempdir().expect("tmp");
    let cfg_path = GatewayConfig::new(dir.path())
        .id("gw-ev")
        .camera_sweep(&cidr, wsd)
        .auto_adopt()
        .fast_health()
        .section("[health]", "stall_secs = 3")
        .credential_group("admin", "pw-events", &cidr)
        .http(&http)
        .mqtt(&broker.url())
        .write(dir.path().join("gateway.toml"));
    let token = api_token(&cfg_path);
    let sub = MqttSub::start(
        broker.port,
        "tgw/v1/+/+/camera/+/event",
        "events-e2e",
        dir.path(),
    );
    let _gw = start_gateway(&cfg_path, &http);

    let sim_ids: Vec<(String, String)> = sim.camera_addresses();
    // (our id, verdict, reasons, clock offset ms) of the sim's camera `i`.
    let cam_at = |i: usize| -> Option<(String, String, String, i64)> {
        let (status, body) = http_get_as(&http, "/api/v1/cameras", Some(&token))?;
        (status == 200).then_some(())?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let c = v
            .as_array()?
            .iter()
            .find(|c| c["address"] == sim_ids[i].1.as_str())?;
        let h = &c["health"];
        let reasons: Vec<&str> = h["reasons"]
            .as_array()
            .map(|r| r.iter().filter_map(|x| x.as_str()).collect())
            .unwrap_or_default();
        Some((
            c["id"].as_str()?.to_string(),
            h["verdict"].as_str().unwrap_or("none").to_string(),
            reasons.join(","),
            h["clock_offset_ms"].as_i64().unwrap_or(i64::MAX),
        ))
    };
    let first = || cam_at(0).map(|(id, v, r, _)| (id, v, r));
    let (cam, _, _) = wait_for(Duration::from_secs(60), "camera ok", || {
        first().filter(|(_, v, _)| v == "ok")
    });
    // Subscribed: the metrics say so.
    wait_for(Duration::from_secs(30), "subscriptions active", || {
        let (_, m) = http_get_as(&http, "/metrics", Some(&token))?;
        m.lines()
            .any(|l| l.starts_with("tgw_camera_event_subscriptions{state=\"active\"} 4"))
            .then_some(())
    });
    let fault = |f: &str| sim_fault(&control, &sim_ids[0].0, f);

    // Tamper: an event and a degraded verdict within one pull round (10 s).
    let t0 = Instant::now();
    fault("tamper");
    wait_for(Duration::from_secs(10), "tamper event on MQTT", || {
        camera_events(&sub)
            .contains(&(cam.clone(), "tamper".into(), "active".into()))
            .then_some(())
    });
    wait_for(Duration::from_secs(10), "degraded by tamper", || {
        first().filter(|(_, v, r)| v == "degraded" && r.contains("tamper"))
    });
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());

    // Clearing restores ok.
    fault("clear");
    wait_for(Duration::from_secs(10), "tamper cleared on MQTT", || {
        camera_events(&sub)
            .contains(&(cam.clone(), "tamper".into(), "inactive".into()))
            .then_some(())
    });
    wait_for(Duration::from_secs(20), "ok again", || {
        first().filter(|(_, v, _)| v == "ok")
    });

    // The Axis camera refuses event calls without `wsa:Action` or without
    // its `SubscriptionId` reference parameter: its tamper still arrives.
    let (axis, _, _, _) = cam_at(4).expect("the Axis camera is listed");
    let axis_fault = |f: &str| sim_fault(&control, &sim_ids[4].0, f);
    axis_fault("tamper");
    wait_for(Duration::from_secs(10), "Axis tamper on MQTT", || {
        camera_events(&sub)
            .contains(&(axis.clone(), "tamper".into(), "active".into()))
            .then_some(())
    });
    axis_fault("clear");
    wait_for(Duration::from_secs(10), "Axis tamper cleared", || {
        camera_events(&sub)
            .contains(&(axis.clone(), "tamper".into(), "inactive".into()))
            .then_some(())
    });

    // The camera expires every subscription, and the lens is covered right
    // after: the gateway rebuilds, and the new subscription's state carries
    // the tamper (nothing lost).
    let before = camera_events(&sub).len();
    fault("expire-subscriptions");
    fault("tamper");
    wait_for(Duration::from_secs(30), "tamper after the rebuild", || {
        camera_events(&sub)[before..]
            .contains(&(cam.clone(), "tamper".into(), "active".into()))
            .then_some(())
    });
    wait_for(Duration::from_secs(10), "degraded again", || {
        first().filter(|(_, v, r)| v == "degraded" && r.contains("tamper"))
    });
    // The other cameras raised nothing.
    assert!(
        camera_events(&sub)
            .iter()
            .all(|(c, _, _)| *c == cam || *c == axis),
        "{:?}",
        camera_events(&sub)
    );

    // Camera clocks: the second camera runs 10 minutes fast; `tgw camera
    // sync-time` brings it within 2 s, as the poller then measures too.
    sim_fault(&control, &sim_ids[1].0, "clock-skew:600");
    let (cam2, _, _, _) = wait_for(Duration::from_secs(30), "10 minutes fast seen", || {
        cam_at(1).filter(|(_, _, _, off)| (off - 600_000).abs() < 2_000)
    });
    let rep = sync_time_json(&cam2, &cfg_path);
    let before = rep[0]["offset_before_ms"].as_i64().expect("before");
    let after = rep[0]["offset_after_ms"].as_i64().expect("after");
    assert!((before - 600_000).abs() < 2_000, "before {before}");
    assert!(after.abs() <= 2_000, "after {after}");
    wait_for(
        Duration::from_secs(30),
        "poller measures the synced clock",
        || cam_at(1).filter(|(_, _, _, off)| off.abs() <= 2_000),
    );
    // An unknown camera is an error naming it, not a hang.
    let mut cmd = tgw();
    cmd.args(["camera", "sync-time", "cam-nope", "--config"])
        .arg(&cfg_path);
    let out = run_with_timeout(cmd, Duration::from_secs(30));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cam-nope"));
}
