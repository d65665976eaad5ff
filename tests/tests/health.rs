//! The health engine end to end: `tgw run` polls simulated cameras; faults
//! injected through the simulator's control endpoint change each camera's
//! verdict within the configured intervals, and clearing them brings the
//! camera back. Intervals are shortened (check 1 s, stall 3 s) so the test
//! takes seconds; the logic is the same as with the defaults.

use std::time::Duration;

use tgw_e2e::*;

/// (address, verdict, reasons) of one camera.
type Row = (String, String, String);

#[test]
fn faults_change_verdicts_and_recovery_restores_them() {
    let base = test_net(61);
    let cidr = cidr24(base);
    let (wsd, control, http) = (free_udp_port(), free_tcp_port(), free_tcp_port());
    let control = format!("127.0.0.1:{control}");
    let http = format!("127.0.0.1:{http}");
    let sim = SimProc::cameras(6, base, wsd, "pw-health", &["--control", &control]);
    let dir = tempfile::tempdir().expect("tmp");
    let cfg_path = GatewayConfig::new(dir.path())
        .camera_sweep(&cidr, wsd)
        .auto_adopt()
        .fast_health()
        .section("[health]", "stall_secs = 3\nauth_backoff_secs = 2")
        .credential_group("admin", "pw-health", &cidr)
        .http(&http)
        .write(dir.path().join("gateway.toml"));
    // The API needs a token (issue 6).
    let token = api_token(&cfg_path);
    let _gw = start_gateway(&cfg_path, &http);

    let ids: Vec<(String, String)> = sim.camera_addresses();
    let verdicts = || -> Option<Vec<Row>> {
        let (status, body) = http_get_as(&http, "/api/v1/cameras", Some(&token))?;
        (status == 200).then_some(())?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        Some(
            v.as_array()?
                .iter()
                .map(|c| {
                    let h = &c["health"];
                    let reasons = h["reasons"].as_array().map(|r| {
                        r.iter()
                            .filter_map(|x| x.as_str())
                            .collect::<Vec<_>>()
                            .join(",")
                    });
                    (
                        c["address"].as_str().unwrap_or_default().to_string(),
                        h["verdict"].as_str().unwrap_or("none").to_string(),
                        reasons.unwrap_or_default(),
                    )
                })
                .collect(),
        )
    };
    let wait_state = |what: &str, want: &dyn Fn(&[Row]) -> bool| {
        wait_for(Duration::from_secs(40), what, || {
            verdicts().filter(|v| v.len() == 6 && want(v))
        })
    };
    let of = |v: &[Row], i: usize| -> (String, String) {
        v.iter()
            .find(|(a, _, _)| *a == ids[i].1)
            .map(|(_, v, r)| (v.clone(), r.clone()))
            .unwrap_or_default()
    };

    // Everything polled and streaming fine first.
    wait_state("all six ok", &|v| {
        v.iter().all(|(_, verdict, _)| verdict == "ok")
    });

    sim_fault(&control, &ids[0].0, "offline");
    sim_fault(&control, &ids[1].0, "frozen");
    sim_fault(&control, &ids[2].0, "wrong-password");
    sim_fault(&control, &ids[3].0, "clock-skew:60");
    sim_fault(&control, &ids[4].0, "stream-refused");
    let v = wait_state("faults seen", &|v| {
        of(v, 0).0 == "offline"
            && of(v, 1).1.contains("stalled")
            && of(v, 2).1.contains("credentials-rejected")
            && of(v, 3).1.contains("clock-drift")
            && of(v, 4).1.contains("stream-unavailable")
    });
    assert_eq!(
        of(&v, 5),
        ("ok".into(), String::new()),
        "the untouched camera is unaffected"
    );

    for (id, _) in &ids[..5] {
        sim_fault(&control, id, "clear");
    }
    wait_state("all recovered", &|v| {
        v.iter().all(|(_, verdict, _)| verdict == "ok")
    });

    // Transitions were recorded, and the metrics count them.
    let id0 = {
        let (_, body) = http_get_as(&http, "/api/v1/cameras", Some(&token)).expect("cameras");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        v.as_array()
            .expect("array")
            .iter()
            .find(|c| c["address"] == ids[0].1.as_str())
            .and_then(|c| c["id"].as_str().map(String::from))
            .expect("camera 0")
    };
    let (_, events) = http_get_as(
        &http,
        &format!("/api/v1/cameras/{id0}/events"),
        Some(&token),
    )
    .expect("events");
    assert!(events.contains(r#""verdict_to":"offline""#), "{events}");
    let (_, metrics) = http_get(&http, "/metrics").expect("metrics");
    assert!(
        metrics.contains(r#"tgw_camera_transitions_total{to="offline"}"#),
        "{metrics}"
    );
}
