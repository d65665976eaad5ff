//! `tgw discover` against `tgw sim`: multicast on loopback, unicast sweeps,
//! and both together, over 50 simulated cameras of every vendor flavour.

use std::collections::BTreeSet;
use std::time::Duration;

use tgw_e2e::*;

fn eprs(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|d| {
            d["endpoint_ref"]
                .as_str()
                .expect("endpoint_ref")
                .to_string()
        })
        .collect()
}

fn sim(tag: u8, n: usize) -> (SimProc, u16, u16, String) {
    let base = test_net(tag);
    let (wsd, group) = (free_udp_port(), free_udp_port());
    let sim = SimProc::start(&[
        "--cameras",
        &n.to_string(),
        "--bind",
        &base.to_string(),
        "--wsd-port",
        &wsd.to_string(),
        "--multicast",
        &format!("239.255.255.250:{group}"),
    ]);
    let o = base.octets();
    (sim, wsd, group, format!("{}.{}.{}.0/24", o[0], o[1], o[2]))
}

fn discover(args: &[&str]) -> serde_json::Value {
    let mut c = tgw();
    c.arg("discover")
        .args(args)
        .args(["--json", "--timeout", "1.5"]);
    let out = run_with_timeout(c, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "discover failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("discover --json prints JSON")
}

/// Every one of 50 simulated cameras is found by multicast alone, by a
/// unicast sweep alone (the routed-VLAN case), and by both without duplicates.
#[test]
fn finds_every_simulated_camera_by_multicast_and_by_sweep() {
    let (sim, wsd, group, cidr) = sim(31, 50);
    let want: BTreeSet<String> = sim
        .devices("camera")
        .iter()
        .map(|d| d["endpoint_ref"].as_str().expect("epr").to_string())
        .collect();
    assert_eq!(want.len(), 50);

    let mc = discover(&[
        "--interface",
        "127.0.0.1",
        "--group",
        &format!("239.255.255.250:{group}"),
    ]);
    assert_eq!(eprs(&mc), want, "multicast");

    let uc = discover(&[
        "--no-multicast",
        "--cidr",
        &cidr,
        "--port",
        &wsd.to_string(),
    ]);
    assert_eq!(eprs(&uc), want, "unicast sweep");

    let both = discover(&[
        "--interface",
        "lo",
        "--group",
        &format!("239.255.255.250:{group}"),
        "--cidr",
        &cidr,
        "--port",
        &wsd.to_string(),
    ]);
    assert_eq!(
        both.as_array().map(Vec::len),
        Some(50),
        "merged, no duplicates"
    );
    // Each answer carries what a technician needs to recognise the camera.
    for d in both.as_array().expect("array") {
        assert!(d["xaddrs"].as_array().is_some_and(|x| !x.is_empty()), "{d}");
        assert!(d["name"].is_string(), "{d}");
        assert!(d["hardware"].is_string(), "{d}");
        assert!(
            d["types"].to_string().contains("NetworkVideoTransmitter"),
            "{d}"
        );
    }
}

/// A sweep of a silent network ends with an empty list, not an error.
#[test]
fn sweep_of_a_silent_network_is_empty() {
    let net = test_net(32).octets();
    let out = discover(&[
        "--no-multicast",
        "--cidr",
        &format!("{}.{}.{}.0/24", net[0], net[1], net[2]),
        "--port",
        &free_udp_port().to_string(),
    ]);
    assert_eq!(out.as_array().map(Vec::len), Some(0));
}

/// Bad arguments are refused with a message naming them.
#[test]
fn bad_arguments_are_named() {
    let mut c = tgw();
    c.args(["discover", "--cidr", "10.0.0.0/8"]);
    let out = run_with_timeout(c, Duration::from_secs(20));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("larger than a /16"));
    let mut c = tgw();
    c.args(["discover", "--interface", "no-such-if0", "--timeout", "0.2"]);
    let out = run_with_timeout(c, Duration::from_secs(20));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-if0"));
}

/// SIP and Axis horns of `tgw sim --ssdp` answer the SSDP M-SEARCH of
/// `tgw discover --speakers`: every speaker is listed once, with
/// `"kind": "speaker"`, its own address and a LOCATION on it.
#[test]
fn discover_speakers_lists_ssdp_answers_with_kind() {
    let base = test_net(47);
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
    let want: BTreeSet<String> = sim
        .devices("speaker")
        .iter()
        .map(|d| d["address"].as_str().expect("address").to_string())
        .collect();
    assert_eq!(want.len(), 4);
    let out = discover(&[
        "--interface",
        "127.0.0.1",
        "--group",
        &format!("239.255.255.250:{group}"),
        "--speakers",
        "--ssdp-group",
        &format!("239.255.255.250:{ssdp}"),
    ]);
    let all = out.as_array().expect("array");
    let speakers: Vec<_> = all.iter().filter(|d| d["kind"] == "speaker").collect();
    let got: BTreeSet<String> = speakers
        .iter()
        .map(|d| d["address"].as_str().expect("address").to_string())
        .collect();
    assert_eq!(got, want, "{out:#}");
    assert_eq!(speakers.len(), 4, "one entry per USN: {out:#}");
    for s in &speakers {
        let loc = s["location"].as_str().expect("location");
        assert!(loc.contains(s["address"].as_str().unwrap_or("?")), "{s}");
    }
    assert_eq!(all.iter().filter(|d| d["kind"] == "camera").count(), 1);
}
