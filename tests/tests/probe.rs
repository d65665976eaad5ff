//! `tgw probe camera` against simulated cameras: the full inventory, a camera
//! whose clock is 10 minutes off, wrong passwords and dead cameras.

use std::time::Duration;

use tgw_e2e::*;

fn start(tag: u8, n: usize, faults: &[&str]) -> SimProc {
    let mut args: Vec<String> = [
        "--cameras",
        &n.to_string(),
        "--bind",
        &test_net(tag).to_string(),
        "--wsd-port",
        &free_udp_port().to_string(),
        "--no-multicast",
        "--password",
        "Demo-pass-1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for f in faults {
        args.extend(["--fault".to_string(), f.to_string()]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    SimProc::start(&refs)
}

fn probe(xaddr: &str, user: &str, password: &str) -> std::process::Output {
    let mut c = tgw();
    c.args([
        "probe",
        "camera",
        xaddr,
        "--user",
        user,
        "--json",
        "--timeout",
        "3",
    ])
    .env("TGW_PASSWORD", password);
    run_with_timeout(c, Duration::from_secs(60))
}

/// The done-when case: a camera whose clock is 10 minutes fast is still
/// fully inventoried (WS-UsernameToken uses the measured offset), and the
/// offset is reported.
#[test]
fn inventories_a_camera_whose_clock_is_ten_minutes_off() {
    let sim = start(41, 6, &["cam-0001=clock-skew:600"]);
    let cams = sim.devices("camera");
    for cam in &cams {
        let xaddr = cam["xaddr"].as_str().expect("xaddr");
        let user = cam["username"].as_str().expect("username");
        let out = probe(xaddr, user, "Demo-pass-1");
        assert!(
            out.status.success(),
            "{}: {}",
            cam["id"],
            String::from_utf8_lossy(&out.stderr)
        );
        let inv: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let offset = inv["clock_offset_ms"].as_i64().expect("offset");
        if cam["id"] == "cam-0001" {
            assert!((595_000..=605_000).contains(&offset), "offset {offset}");
        } else {
            assert!(offset.abs() < 5_000, "{}: offset {offset}", cam["id"]);
        }
        for key in ["manufacturer", "model", "firmware_version", "serial_number"] {
            assert!(
                inv["device"][key].as_str().is_some_and(|s| !s.is_empty()),
                "{}: {key} in {inv}",
                cam["id"]
            );
        }
        assert_eq!(inv["mac"].as_str(), cam["mac"].as_str(), "{}", cam["id"]);
        let profiles = inv["profiles"].as_array().expect("profiles");
        assert!(profiles.len() >= 2, "{}: main and sub profiles", cam["id"]);
        for p in profiles {
            let uri = p["stream_uri"].as_str().expect("stream uri");
            assert!(uri.starts_with("rtsp://"), "{uri}");
            assert!(!uri.contains("Demo-pass-1"), "credentials in {uri}");
            assert!(
                p["profile"]["video"]["width"].as_u64().unwrap_or(0) > 0,
                "{p}"
            );
            assert!(p["snapshot_uri"].is_string(), "{p}");
        }
        assert!(!String::from_utf8_lossy(&out.stdout).contains("Demo-pass-1"));
        assert!(!String::from_utf8_lossy(&out.stderr).contains("Demo-pass-1"));
    }
}

/// A wrong password and a dead camera each give a clear error naming the
/// camera and the call, never the password, and never hang.
#[test]
fn wrong_password_and_dead_camera_give_clear_errors() {
    let sim = start(42, 3, &["cam-0002=offline", "cam-0003=hang"]);
    let cams = sim.devices("camera");
    let out = probe(
        cams[0]["xaddr"].as_str().expect("xaddr"),
        "admin",
        "not-the-password",
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("GetServices") && err.contains("credentials refused"),
        "{err}"
    );
    assert!(!err.contains("not-the-password"), "{err}");

    for cam in &cams[1..] {
        let out = probe(
            cam["xaddr"].as_str().expect("xaddr"),
            "admin",
            "Demo-pass-1",
        );
        assert!(!out.status.success(), "{}", cam["id"]);
        let err = String::from_utf8_lossy(&out.stderr);
        let addr = cam["address"].as_str().expect("address");
        assert!(
            err.contains(addr),
            "error should name the camera {addr}: {err}"
        );
    }
}
