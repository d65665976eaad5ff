//! The automatic camera clock sync end to end (`[health] clock_sync =
//! "set"`, docs/health.md § Camera clocks): `tgw run` against `tgw sim`,
//! whose SetSystemDateAndTime really moves a camera's clock. A camera 10
//! minutes fast ends within 2 s of our clock without any operator action,
//! and the audit API shows the automatic row (`camera.sync_time.auto`,
//! actor `system`, the offsets before and after); a camera 30 s fast
//! (drifting, under the 60 s threshold) is left alone. Checks every 1 s, so
//! the test takes seconds; no sleeps: the API is polled with a deadline.
//! And the manual `tgw camera sync-time` with a GB/T 28181 platform as the
//! time source (`[gb28181] time_source`, docs/gb28181.md § 校时): the CLI
//! sets the platform's time, which it reads from the store, where the
//! running daemon keeps its last 校时.

use std::time::Duration;

use device_sim::gb_platform::{GbPlatform, PlatformConfig};
use tgw_e2e::*;

/// (our id, reasons, clock offset ms) of the camera at `address`.
fn camera(http: &str, token: &str, address: &str) -> Option<(String, String, i64)> {
    let (status, body) = http_get_as(http, "/api/v1/cameras", Some(token))?;
    (status == 200).then_some(())?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let c = v.as_array()?.iter().find(|c| c["address"] == address)?;
    let h = &c["health"];
    let reasons: Vec<&str> = h["reasons"]
        .as_array()
        .map(|r| r.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    Some((
        c["id"].as_str()?.to_string(),
        reasons.join(","),
        h["clock_offset_ms"].as_i64()?,
    ))
}

/// The automatic clock sync rows of the audit log.
fn auto_rows(http: &str, token: &str) -> Option<Vec<serde_json::Value>> {
    let (status, body) = http_get_as(http, "/api/v1/audit?limit=1000", Some(token))?;
    (status == 200).then_some(())?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    Some(
        v.as_array()?
            .iter()
            .filter(|e| e["action"] == "camera.sync_time.auto")
            .cloned()
            .collect(),
    )
}

#[test]
fn a_camera_ten_minutes_fast_is_set_without_an_operator_and_audited() {
    let base = test_net(91);
    let cidr = cidr24(base);
    let (wsd, http) = (free_udp_port(), free_tcp_port());
    let http = format!("127.0.0.1:{http}");
    // The first camera is 10 minutes fast, the second 30 s.
    let sim = SimProc::cameras(
        2,
        base,
        wsd,
        "pw-clock",
        &[
            "--fault",
            "cam-0001=clock-skew:600",
            "--fault",
            "cam-0002=clock-skew:30",
        ],
    );
    let cams: Vec<(String, String)> = sim.camera_addresses();
    assert_eq!(cams[0].0, "cam-0001", "{cams:?}");
    let dir = tempfile::tempdir().expect("tmp");
    let cfg_path = GatewayConfig::new(dir.path())
        .camera_sweep(&cidr, wsd)
        .auto_adopt()
        .section(
            "[health]",
            "events = false\ncheck_interval_secs = 1\ndescribe_interval_secs = 5\n\
             sample_interval_secs = 30\ncall_timeout_ms = 1500\nclock_sync = \"set\"\n\
             clock_sync_after_secs = 60",
        )
        .credential_group("admin", "pw-clock", &cidr)
        .http(&http)
        .write(dir.path().join("gateway.toml"));
    // The audit log is for admins.
    let token = api_token_as(&cfg_path, "e2e", "admin");
    let _gw = start_gateway(&cfg_path, &http);

    let (id, reasons, off) = wait_for(Duration::from_secs(60), "camera 1 set", || {
        camera(&http, &token, &cams[0].1).filter(|(_, _, off)| off.abs() <= 2_000)
    });
    assert!(!reasons.contains("clock-drift"), "{reasons}");
    let rows = wait_for(Duration::from_secs(10), "the audit row", || {
        auto_rows(&http, &token).filter(|r| !r.is_empty())
    });
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let r = &rows[0];
    assert_eq!(r["target"], id.as_str(), "{r:#}");
    assert_eq!(
        (&r["actor"], &r["outcome"]),
        (&"system".into(), &"ok".into())
    );
    let before = r["after"]["offset_before_ms"].as_i64().expect("before");
    let after = r["after"]["offset_after_ms"].as_i64().expect("after");
    assert!((before - 600_000).abs() < 2_000, "{r:#}");
    assert!(after.abs() <= 2_000, "{r:#}");
    assert!(
        !r.to_string().contains("pw-clock"),
        "login in the audit: {r:#}"
    );

    // The second camera is drifting, and left alone: 30 s is under the
    // threshold. A few more checks of both, then nothing new.
    let (_, reasons2, off2) = wait_for(Duration::from_secs(10), "camera 2 checked", || {
        camera(&http, &token, &cams[1].1)
    });
    assert!((off2 - 30_000).abs() < 2_000, "{off2}");
    assert!(reasons2.contains("clock-drift"), "{reasons2}");
    let (_, m) = wait_for(Duration::from_secs(10), "metrics", || {
        http_get_as(&http, "/metrics", Some(&token))
    });
    assert!(
        m.lines()
            .any(|l| l == "tgw_camera_clock_syncs_total{mode=\"set\",result=\"ok\"} 1"),
        "{m}"
    );
    let (_, _, again) = camera(&http, &token, &cams[0].1).expect("camera 1");
    assert!(
        again.abs() <= 2_000,
        "camera 1 stays set: {again} (was {off})"
    );
    assert_eq!(auto_rows(&http, &token).map(|r| r.len()), Some(1));
}

/// A platform 2 minutes ahead of us is the time source: the poller
/// measures a camera on our time at −120 s from it; `tgw camera sync-time`
/// (a process of its own) sets the platform's time, says so in its report
/// (`time_source` `gb28181`, the platform's offset), and the poller then
/// measures the camera within 2 s of the platform.
#[test]
fn a_manual_sync_sets_the_gb_platforms_time() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let platform = rt
        .block_on(GbPlatform::start(PlatformConfig {
            server_id: GB_PLATFORM_ID.into(),
            domain: GB_DOMAIN.into(),
            device_id: GB_GATEWAY_ID.into(),
            password: "pw-sim-platform".into(),
            clock_offset_secs: 120,
            nat: false,
        }))
        .expect("platform");
    let base = test_net(63);
    let cidr = cidr24(base);
    let (wsd, http) = (free_udp_port(), free_tcp_port());
    let http = format!("127.0.0.1:{http}");
    let sim = SimProc::cameras(1, base, wsd, "pw-clock-gb", &[]);
    let cams: Vec<(String, String)> = sim.camera_addresses();
    let dir = tempfile::tempdir().expect("tmp");
    let cfg_path = GatewayConfig::new(dir.path())
        .village("dongcun", "东村", &[("dongcun-1", "东村第一网格")])
        .camera_sweep(&cidr, wsd)
        .auto_adopt()
        .section(
            "[health]",
            "events = false\ncheck_interval_secs = 1\ndescribe_interval_secs = 5\n\
             sample_interval_secs = 30\ncall_timeout_ms = 1500",
        )
        .credential_group("admin", "pw-clock-gb", &cidr)
        .http(&http)
        .gb28181("time_source = true")
        .gb_platform(
            &platform.address.to_string(),
            "pw-sim-platform",
            "keepalive_secs = 5",
        )
        .write(dir.path().join("gateway.toml"));
    let token = api_token(&cfg_path);
    let _gw = start_gateway(&cfg_path, &http);

    let (id, _, _) = wait_for(
        Duration::from_secs(60),
        "the camera measured against the platform",
        || camera(&http, &token, &cams[0].1).filter(|(_, _, off)| (off + 120_000).abs() < 2_000),
    );
    let rep = sync_time_json(&id, &cfg_path);
    let r = &rep[0];
    assert_eq!(r["time_source"], "gb28181", "{r:#}");
    let reference = r["reference_offset_ms"].as_i64().expect("reference offset");
    assert!((reference - 120_000).abs() <= 1_500, "{r:#}");
    let before = r["offset_before_ms"].as_i64().expect("before");
    let after = r["offset_after_ms"].as_i64().expect("after");
    assert!((before + 120_000).abs() < 2_000, "{r:#}");
    assert!(after.abs() <= 2_000, "{r:#}");
    wait_for(
        Duration::from_secs(30),
        "the poller measures the camera on the platform's time",
        || camera(&http, &token, &cams[0].1).filter(|(_, _, off)| off.abs() <= 2_000),
    );
    drop(platform);
}
