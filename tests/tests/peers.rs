//! Real peers: python-WSDiscovery (PyPI) publishing a
//! `dn:NetworkVideoTransmitter` must be found by `tgw discover`, by multicast
//! and by a unicast sweep. The peer ignores loopback, so both sides run in
//! network namespaces this test creates, joined by a veth pair.
//!
//! Needs root (for `ip netns`) and the peer installed by
//! `scripts/install-peers` into `target/peers/python`. Outside CI a missing
//! prerequisite skips the test with a message; under CI (`CI=true`) it fails.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use tgw_e2e::*;

fn prerequisites() -> Option<std::path::PathBuf> {
    let py = workspace().join("target/peers/python");
    let missing = if !can_netns() {
        Some("root and iproute2 (for network namespaces)")
    } else if !py.join("wsdiscovery").exists() {
        Some("python-WSDiscovery in target/peers/python (run scripts/install-peers)")
    } else {
        None
    };
    match missing {
        None => Some(py),
        Some(what) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI is missing a test prerequisite: {what}")
        }
        Some(what) => {
            eprintln!("SKIPPED: needs {what}");
            None
        }
    }
}

#[test]
fn python_wsdiscovery_peer_is_found_by_multicast_and_sweep() {
    let Some(py) = prerequisites() else { return };
    let tag = std::process::id() % 10_000;
    let a = NetNs::new(&format!("tgw-a-{tag}"));
    let b = NetNs::new(&format!("tgw-b-{tag}"));
    let (va, vb) = (format!("tgwa{tag}"), format!("tgwb{tag}"));
    sh(&[
        "ip", "link", "add", &va, "netns", &a.name, "type", "veth", "peer", "name", &vb, "netns",
        &b.name,
    ]);
    for (ns, dev, ip) in [(&a, &va, "10.253.0.1/24"), (&b, &vb, "10.253.0.2/24")] {
        ns.exec(&["ip", "addr", "add", ip, "dev", dev]);
        ns.exec(&["ip", "link", "set", dev, "up"]);
        ns.exec(&["ip", "route", "add", "224.0.0.0/4", "dev", dev]);
    }

    let mut peer = b
        .command("python3")
        .arg(workspace().join("tests/peers/wsd_publish.py"))
        .args(["10.253.0.2", "PyPeer"])
        .env("PYTHONPATH", &py)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn_killed("the python peer");
    let mut line = String::new();
    BufReader::new(peer.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("peer output");
    assert_eq!(line.trim(), "ready", "peer did not start");

    let discover = |extra: &[&str]| {
        let mut c = a.command(tgw_bin().to_str().expect("path"));
        c.args(["discover", "--json", "--timeout", "2"]).args(extra);
        let out = run_with_timeout(c, Duration::from_secs(60));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        v
    };
    for (how, args) in [
        ("multicast", vec!["--interface", va.as_str()]),
        (
            "unicast sweep",
            vec!["--no-multicast", "--cidr", "10.253.0.0/24"],
        ),
    ] {
        let found = discover(&args);
        let arr = found.as_array().expect("array");
        assert_eq!(arr.len(), 1, "{how}: {found}");
        let d = &arr[0];
        assert_eq!(d["name"], "PyPeer", "{how}: {d}");
        assert_eq!(d["hardware"], "WSDiscoveryPeer", "{how}: {d}");
        assert_eq!(d["address"], "10.253.0.2", "{how}: {d}");
        assert!(
            d["xaddrs"]
                .to_string()
                .contains("http://10.253.0.2:8080/onvif/device_service"),
            "{how}: {d}"
        );
        assert!(
            d["endpoint_ref"]
                .as_str()
                .is_some_and(|e| e.starts_with("urn:uuid:")),
            "{how}: {d}"
        );
    }
    peer.stop();
}
