//! `tgw run` against a simulated township: discovery fills the inbox,
//! auto-adoption by location scope, inventories fetched through a credential
//! group, the HTTP API shows them, and no password appears anywhere.

use std::time::Duration;

use tgw_e2e::*;

/// `[discovery]` keys of these tests: a round every 10 s on 127.0.0.1,
/// multicast to the test's own group port (not the simulators of other
/// tests), 1 s for answers.
fn multicast_discovery(group: u16) -> String {
    format!(
        "interval_secs = 10\ninterfaces = [\"127.0.0.1\"]\n\
         multicast_group = \"239.255.255.250:{group}\"\nwait_ms = 1000"
    )
}

#[test]
fn run_discovers_adopts_and_inventories_without_leaking_secrets() {
    let base = test_net(51);
    let o = base.octets();
    let cidr = format!("{}.{}.{}.0/24", o[0], o[1], o[2]);
    let wsd = free_udp_port();
    let group = free_udp_port();
    let password = "Gr0up-Secret-pw";
    let sim = SimProc::start(&[
        "--cameras",
        "12",
        "--bind",
        &base.to_string(),
        "--wsd-port",
        &wsd.to_string(),
        "--multicast",
        &format!("239.255.255.250:{group}"),
        "--password",
        password,
        "--username",
        "admin",
        "--fault",
        "cam-0004=wrong-password",
    ]);
    let user = sim.devices("camera")[0]["username"]
        .as_str()
        .expect("user")
        .to_string();
    let dir = tempfile::tempdir().expect("tmp");
    let http = format!("127.0.0.1:{}", free_tcp_port());
    // The sample township's codes come from the simulator; adopt by scope.
    let mut cfg = GatewayConfig::new(dir.path()).section("[log]", "level = \"debug\"");
    let mut villages =
        std::collections::BTreeMap::<String, std::collections::BTreeSet<String>>::new();
    for d in sim.devices("camera") {
        villages
            .entry(d["village"].as_str().expect("v").to_string())
            .or_default()
            .insert(d["grid"].as_str().expect("g").to_string());
    }
    for (v, grids) in &villages {
        let grids: Vec<(&str, &str)> = grids.iter().map(|g| (g.as_str(), g.as_str())).collect();
        cfg = cfg.village(v, v, &grids);
    }
    let cfg_path = cfg
        .section("[discovery]", &multicast_discovery(group))
        .section(
            "[discovery]",
            &format!("cidrs = [\"{cidr}\"]\nunicast_port = {wsd}"),
        )
        .auto_adopt()
        .section(
            "[[credential_groups]]",
            &format!(
                "name = \"batch\"\nusername = \"{user}\"\npassword_env = \"TGW_TEST_BATCH_PW\"\n\
                 subnets = [\"{cidr}\"]"
            ),
        )
        .http(&http)
        .write(dir.path().join("gateway.toml"));
    // The API needs a token (issue 6).
    let token = api_token(&cfg_path);
    let mut gw = GatewayStart::new(&cfg_path, &http)
        .env("TGW_TEST_BATCH_PW", password)
        .log(dir.path().join("tgw.log"))
        .start();

    let devices = wait_for(
        Duration::from_secs(60),
        "12 cameras inventoried or failed",
        || {
            let (status, body) = http_get_as(&http, "/api/v1/devices", Some(&token))?;
            if status != 200 {
                return None;
            }
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            let arr = v.as_array()?.clone();
            let done = arr
                .iter()
                .filter(|d| !d["inventory"].is_null() || !d["probe_error_kind"].is_null())
                .count();
            (arr.len() == 12 && done == 12).then_some((arr, body))
        },
    );
    let (arr, body) = devices;
    gw.stop();

    for d in &arr {
        assert_eq!(d["state"], "adopted", "{d}");
        assert!(d["village"].is_string() && d["grid"].is_string(), "{d}");
        if d["address"].as_str() == sim.devices("camera")[3]["address"].as_str() {
            assert_eq!(d["probe_error_kind"], "auth", "{d}");
        } else {
            assert!(d["probe_error_kind"].is_null(), "{d}");
            assert!(d["manufacturer"].is_string() && d["mac"].is_string(), "{d}");
        }
    }
    // The village/grid the camera advertises is where it was adopted.
    for cam in sim.devices("camera") {
        let d = arr
            .iter()
            .find(|d| d["address"] == cam["address"])
            .expect("listed");
        assert_eq!(d["village"], cam["village"]);
        assert_eq!(d["grid"], cam["grid"]);
    }
    let (_, page) = http_get(&http, "/").unwrap_or_default();
    let logs = gw.log();
    for (what, text) in [("API", &body), ("page", &page), ("log", &logs)] {
        assert!(!text.contains(password), "password in {what}");
    }
    let db = std::fs::read(dir.path().join("tgw.db")).unwrap_or_default();
    let wal = std::fs::read(dir.path().join("tgw.db-wal")).unwrap_or_default();
    assert!(
        !db.windows(password.len()).any(|w| w == password.as_bytes()),
        "password in db"
    );
    assert!(
        !wal.windows(password.len())
            .any(|w| w == password.as_bytes()),
        "password in wal"
    );
}

/// A `tgw run` discovery round also sends an SSDP M-SEARCH: the simulated
/// SIP and Axis horns land in the inbox as `kind = "speaker"`,
/// `state = "discovered"`, `spk-` ids, one row each, next to the camera.
#[test]
fn run_round_puts_ssdp_speakers_into_the_inbox() {
    let base = test_net(54);
    let (wsd, group, ssdp) = (free_udp_port(), free_udp_port(), free_udp_port());
    let sim = SimProc::start(&[
        "--cameras",
        "1",
        "--speakers",
        "4",
        "--speaker-kinds",
        "sip,axis",
        "--bind",
        &base.to_string(),
        "--wsd-port",
        &wsd.to_string(),
        "--multicast",
        &format!("239.255.255.250:{group}"),
        "--ssdp",
        &format!("239.255.255.250:{ssdp}"),
    ]);
    let dir = tempfile::tempdir().expect("tmp");
    let http = format!("127.0.0.1:{}", free_tcp_port());
    let cfg_path = GatewayConfig::new(dir.path())
        .village("dongcun", "东村", &[("dongcun-1", "东村第一网格")])
        .section("[discovery]", &multicast_discovery(group))
        .section(
            "[discovery]",
            &format!("ssdp_group = \"239.255.255.250:{ssdp}\"\nmdns = false\nonvif_audio = false"),
        )
        .http(&http)
        .write(dir.path().join("gateway.toml"));
    let token = api_token(&cfg_path);
    let mut gw = start_gateway(&cfg_path, &http);
    let speakers = wait_for(Duration::from_secs(30), "4 speakers in the inbox", || {
        let (status, body) = http_get_as(&http, "/api/v1/devices", Some(&token))?;
        if status != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let spk: Vec<serde_json::Value> = v
            .as_array()?
            .iter()
            .filter(|d| d["kind"] == "speaker")
            .cloned()
            .collect();
        (spk.len() >= 4).then_some(spk)
    });
    gw.stop();
    assert_eq!(speakers.len(), 4, "{speakers:?}");
    let want: std::collections::BTreeSet<String> = sim
        .devices("speaker")
        .iter()
        .map(|d| d["address"].as_str().expect("address").to_string())
        .collect();
    let got: std::collections::BTreeSet<String> = speakers
        .iter()
        .map(|d| d["address"].as_str().unwrap_or("?").to_string())
        .collect();
    assert_eq!(got, want);
    for d in &speakers {
        assert_eq!(d["state"], "discovered", "{d}");
        assert!(
            d["id"].as_str().is_some_and(|i| i.starts_with("spk-")),
            "{d}"
        );
    }
}

/// A `tgw run` round also asks mDNS (`_sip._udp`, `_rtp-horn._udp`) and
/// sends the audio-output WS-Discovery Probe: the simulated SIP and RTP
/// horns (mDNS) and the Axis horn (WS-Discovery) land in the inbox as
/// speakers with their driver kind and exact address; the multicast-zone
/// member answers neither; the camera is still found by the camera Probe.
/// Adopting the SIP horn with its login puts it in `GET /api/v1/speakers`
/// in the chosen village, grid and zone, and the horn test from the API
/// then reaches the simulated horn (it answers the call).
#[test]
fn run_round_finds_mdns_and_onvif_audio_horns_and_adopts_one() {
    let base = test_net(55);
    let (wsd, group, mdns) = (free_udp_port(), free_udp_port(), free_udp_port());
    let sim = SimProc::start(&[
        "--cameras",
        "1",
        "--speakers",
        "4",
        "--speaker-kinds",
        "sip,rtp,axis,rtp-multicast",
        "--bind",
        &base.to_string(),
        "--wsd-port",
        &wsd.to_string(),
        "--multicast",
        &format!("239.255.255.250:{group}"),
        "--mdns",
        &format!("224.0.0.251:{mdns}"),
        "--password",
        "horn-pw",
        "--control",
        "127.0.0.1:0",
    ]);
    let dir = tempfile::tempdir().expect("tmp");
    let http = format!("127.0.0.1:{}", free_tcp_port());
    let cfg_path = GatewayConfig::new(dir.path())
        .village("dongcun", "东村", &[("dongcun-1", "东村第一网格")])
        .section("[discovery]", &multicast_discovery(group))
        .section(
            "[discovery]",
            &format!("ssdp = false\nmdns_group = \"224.0.0.251:{mdns}\""),
        )
        .section("[inventory]", "probe_unadopted = false")
        .http(&http)
        .write(dir.path().join("gateway.toml"));
    let token = api_token(&cfg_path);
    let tech = api_token_as(&cfg_path, "e2e-tech", "technician");
    let mut gw = start_gateway(&cfg_path, &http);
    let devices = wait_for(Duration::from_secs(30), "3 speakers and a camera", || {
        let (status, body) = http_get_as(&http, "/api/v1/devices", Some(&token))?;
        if status != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let all = v.as_array()?.clone();
        let spk = all.iter().filter(|d| d["kind"] == "speaker").count();
        let cam = all.iter().filter(|d| d["kind"] == "camera").count();
        (spk >= 3 && cam >= 1).then_some(all)
    });
    let manifest = sim.devices("speaker");
    let horn = |kind: &str| {
        manifest
            .iter()
            .find(|d| d["speaker_kind"] == kind)
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} horn in the manifest"))
    };
    let hostport = |uri: &str| -> String {
        let rest = uri.rsplit_once('@').map_or(uri, |x| x.1);
        let rest = rest.strip_prefix("rtp://").unwrap_or(rest);
        rest.split('?').next().unwrap_or(rest).to_string()
    };
    let mut got: Vec<(String, String)> = devices
        .iter()
        .filter(|d| d["kind"] == "speaker")
        .map(|d| {
            assert_eq!(d["state"], "discovered", "{d}");
            (
                d["driver"].as_str().unwrap_or("?").to_string(),
                d["driver_address"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    got.sort();
    let sip_uri = horn("sip")["uri"].as_str().expect("uri").to_string();
    let rtp_uri = horn("rtp")["uri"].as_str().expect("uri").to_string();
    let axis_uri = horn("axis")["uri"].as_str().expect("uri").to_string();
    let sip_addr = format!("sip:horn@{}", hostport(&sip_uri));
    assert_eq!(
        got,
        vec![
            ("axis".to_string(), hostport(&axis_uri)),
            ("rtp".to_string(), hostport(&rtp_uri)),
            ("sip".to_string(), sip_addr.clone()),
        ],
        "{devices:#?}"
    );
    assert_eq!(
        devices.iter().filter(|d| d["kind"] == "speaker").count(),
        3,
        "the multicast-zone member answers nothing: {devices:#?}"
    );
    let sip_id = devices
        .iter()
        .find(|d| d["driver"] == "sip")
        .and_then(|d| d["id"].as_str())
        .expect("sip id")
        .to_string();
    let body = serde_json::json!({"ids": [sip_id], "village": "dongcun", "grid": "dongcun-1",
        "zone": "dongcun-square", "username": "horn", "password": "horn-pw"})
    .to_string();
    let (status, resp) = http_post_as(&http, "/api/v1/inbox/adopt", &tech, &body).expect("adopt");
    assert_eq!(status, 200, "{resp}");
    let (status, list) = http_get_as(&http, "/api/v1/speakers", Some(&token)).expect("speakers");
    assert_eq!(status, 200, "{list}");
    assert!(!list.contains("horn-pw"), "{list}");
    let list: serde_json::Value = serde_json::from_str(&list).expect("json");
    let e = list
        .as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == sip_id.as_str()))
        .unwrap_or_else(|| panic!("{sip_id} not in {list}"));
    assert_eq!(e["kind"], "sip", "{e}");
    assert_eq!(e["address"], sip_addr.as_str(), "{e}");
    assert_eq!(e["village"], "dongcun", "{e}");
    assert_eq!(e["grid"], "dongcun-1", "{e}");
    assert_eq!(e["zone"], "dongcun-square", "{e}");
    // The adopted horn can be driven: the API's horn test calls it.
    let (status, test) = http_post_as(
        &http,
        &format!("/api/v1/speakers/{sip_id}/test"),
        &tech,
        r#"{"tone_hz": 1000, "seconds": 1}"#,
    )
    .expect("horn test");
    gw.stop();
    assert_eq!(status, 200, "{test}");
    let test: serde_json::Value = serde_json::from_str(&test).expect("test json");
    assert_eq!(test["ok"], true, "{test}");
    let control = sim.manifest["control"].as_str().expect("control");
    let sip_sim_id = horn("sip")["id"].as_str().expect("id").to_string();
    let (_, r) = http_get(control, &format!("/devices/{sip_sim_id}/report")).expect("report");
    let r: serde_json::Value = serde_json::from_str(&r).expect("report json");
    assert_eq!(r["calls_answered"], 1, "{r}");
}

/// `tgw run` started by hand from a shell with a low soft open-file limit
/// raises it to the hard limit (at most 65,536) before it opens anything:
/// 1,000 cameras and 200 horns measured up to 854 open files
/// (docs/health.md), near a shell's usual 1,024.
#[test]
fn run_raises_a_low_soft_open_file_limit() {
    let dir = tempfile::tempdir().expect("tmp");
    let http = format!("127.0.0.1:{}", free_tcp_port());
    let config = GatewayConfig::new(dir.path())
        .no_discovery()
        .http(&http)
        .write(dir.path().join("gateway.toml"));
    // prlimit sets the soft limit (the hard one unchanged) and execs tgw:
    // the pid is tgw's.
    let child = std::process::Command::new("prlimit")
        .arg("--nofile=256:")
        .arg(tgw_bin())
        .args(["run", "--config"])
        .arg(&config)
        .env_remove("TGW_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn_killed("prlimit tgw run");
    wait_for(Duration::from_secs(30), "tgw run to serve HTTP", || {
        http_get(&http, "/healthz")
    });
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files");
    let f: Vec<&str> = line.split_whitespace().collect();
    let (soft, hard) = (f[3], f[4]);
    let expect = match hard.parse::<u64>() {
        Ok(h) => h.min(65_536),
        Err(_) => 65_536, // unlimited
    };
    assert_eq!(soft.parse::<u64>().ok(), Some(expect), "{line}");
}
