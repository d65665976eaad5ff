//! The health engine end to end: `tgw run` polls simulated cameras; faults
//! injected through the simulator's control endpoint change each camera's
//! verdict within the configured intervals, and clearing them brings the
//! camera back. Intervals are shortened (check 1 s, stall 3 s) so the test
//! takes seconds; the logic is the same as with the defaults.

use std::process::Stdio;
use std::time::Duration;

use tgw_e2e::*;

/// (address, verdict, reasons) of one camera.
type Row = (String, String, String);

fn post(addr: &str, path: &str, body: &str) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("control endpoint");
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 200"), "{path} {body}: {out}");
}

#[test]
fn faults_change_verdicts_and_recovery_restores_them() {
    let base = test_net(61);
    let o = base.octets();
    let cidr = format!("{}.{}.{}.0/24", o[0], o[1], o[2]);
    let (wsd, control, http) = (free_udp_port(), free_tcp_port(), free_tcp_port());
    let control = format!("127.0.0.1:{control}");
    let http = format!("127.0.0.1:{http}");
    let sim = SimProc::start(&[
        "--cameras",
        "6",
        "--bind",
        &base.to_string(),
        "--wsd-port",
        &wsd.to_string(),
        "--no-multicast",
        "--password",
        "pw-health",
        "--username",
        "admin",
        "--control",
        &control,
    ]);
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = format!(
        r#"
[gateway]
site = "qingshan"
data_dir = "{data}"
[township]
code = "qingshan"
name = "青山镇"
[discovery]
interval_secs = 10
multicast = false
cidrs = ["{cidr}"]
unicast_port = {wsd}
wait_ms = 500
[[discovery.auto_adopt]]
[health]
check_interval_secs = 1
describe_interval_secs = 5
sample_interval_secs = 5
sample_ms = 800
call_timeout_ms = 1500
stall_secs = 3
auth_backoff_secs = 2
[[credential_groups]]
name = "batch"
username = "admin"
password = "pw-health"
subnets = ["{cidr}"]
[http]
listen = "{http}"
"#,
        data = dir.path().display()
    );
    let cfg_path = dir.path().join("gateway.toml");
    std::fs::write(&cfg_path, cfg).expect("config");
    // The API needs a token (issue 6).
    let token = api_token(&cfg_path);
    let mut gw = tgw()
        .args(["run", "--config"])
        .arg(&cfg_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tgw run");

    let ids: Vec<(String, String)> = sim
        .devices("camera")
        .iter()
        .map(|d| {
            (
                d["id"].as_str().expect("id").into(),
                d["address"].as_str().expect("addr").into(),
            )
        })
        .collect();
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

    post(&control, &format!("/devices/{}/fault", ids[0].0), "offline");
    post(&control, &format!("/devices/{}/fault", ids[1].0), "frozen");
    post(
        &control,
        &format!("/devices/{}/fault", ids[2].0),
        "wrong-password",
    );
    post(
        &control,
        &format!("/devices/{}/fault", ids[3].0),
        "clock-skew:60",
    );
    post(
        &control,
        &format!("/devices/{}/fault", ids[4].0),
        "stream-refused",
    );
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
        post(&control, &format!("/devices/{id}/fault"), "clear");
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
    let _ = gw.kill();
    let _ = gw.wait();
}
