//! `tgw demo` as a new user meets it: the banner comes last (after the
//! start-up logs) and again on SIGUSR1, the camera ids it names are the
//! gateway's (the ones every screen shows), a few cameras wait in the inbox,
//! horns of every driver kind are in the inventory, the timetable is held in
//! the store (editable), and `tgw status --config` works with the token the
//! demo wrote, or says how to get one.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tgw_e2e::*;

/// The gateway ids (`cam-` + 10 hex digits) in `text`.
fn gateway_ids(text: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"\bcam-[0-9a-f]{10}\b").expect("regex");
    re.find_iter(text).map(|m| m.as_str().to_string()).collect()
}

fn items(v: &Value) -> Vec<Value> {
    v.as_array()
        .or_else(|| v["items"].as_array())
        .cloned()
        .unwrap_or_else(|| panic!("not a list: {v}"))
}

#[test]
fn demo_banner_names_what_the_dashboard_shows() {
    let demo = DemoProc::start(81);
    let err = demo.stderr();
    let banner_at = err.find("青山镇 demo:").expect("banner");
    // The banner comes after the start-up logs.
    let imported = err.find("demo speakers imported").expect("start-up log");
    assert!(
        imported < banner_at,
        "banner before the start-up logs:\n{err}"
    );
    let banner = &err[banner_at..];
    assert!(banner.contains("admin / demo-admin-pw"), "{banner}");
    assert!(banner.contains("status --config"), "{banner}");
    let inbox_line = banner
        .lines()
        .find(|l| l.contains("to adopt (inbox):"))
        .expect("inbox line");
    let inbox = gateway_ids(inbox_line);
    assert_eq!(inbox.len(), 3, "{inbox_line}");

    // Every id the banner names exists in the API; the inbox ones wait there.
    let devices = items(&demo.get("/api/v1/devices?kind=camera"));
    let state = |id: &str| {
        devices
            .iter()
            .find(|d| d["id"] == id)
            .map(|d| d["state"].as_str().unwrap_or("").to_string())
    };
    let named = gateway_ids(banner);
    assert!(named.len() >= 6, "{banner}");
    for id in &named {
        let s = state(id).unwrap_or_else(|| panic!("{id} from the banner is not in the API"));
        assert_eq!(s == "discovered", inbox.contains(id), "{id} is {s}");
    }
    let adopted = devices.iter().filter(|d| d["state"] == "adopted").count();
    assert_eq!(adopted, 9, "{devices:?}");

    // Horns of every driver kind.
    let kinds: BTreeSet<String> = items(&demo.get("/api/v1/speakers"))
        .iter()
        .filter_map(|s| s["kind"].as_str().map(String::from))
        .collect();
    let want: BTreeSet<String> = ["rtp", "rtp-multicast", "sip", "axis", "cloud"]
        .map(String::from)
        .into();
    assert_eq!(kinds, want);

    // The timetable is the store's, editable, with the demo's schedules.
    let tt = demo.get("/api/v1/timetable");
    assert_eq!(tt["source"], "store", "{tt}");
    assert_eq!(tt["editable"], true, "{tt}");
    assert_eq!(tt["calendar_years"], serde_json::json!([2026]), "{tt}");
    let ids: BTreeSet<&str> = tt["parts"]["schedule"]
        .as_array()
        .expect("schedules")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    for s in [
        "morning-policy",
        "evening-policy",
        "weekly-fire-safety",
        "demo-loop",
    ] {
        assert!(ids.contains(s), "{s} missing: {ids:?}");
    }
    assert!(
        !tt["parts"]["quiet_hours"]
            .as_array()
            .expect("quiet hours")
            .is_empty(),
        "{tt}"
    );

    // `tgw status --config` finds the demo's token.
    let out = run_with_timeout(
        {
            let mut c = tgw();
            c.args(["status", "--config"]).arg(demo.config());
            c.env_remove("TGW_TOKEN");
            c
        },
        Duration::from_secs(30),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let adopted_ids: BTreeSet<String> = devices
        .iter()
        .filter(|d| d["state"] == "adopted")
        .filter_map(|d| d["id"].as_str().map(String::from))
        .collect();
    assert_eq!(gateway_ids(&stdout), adopted_ids, "{stdout}");

    // SIGUSR1 prints the banner again (with the login), and the demo lives on.
    let k = Command::new("kill")
        .args(["-USR1", &demo.pid().to_string()])
        .status()
        .expect("kill");
    assert!(k.success());
    demo.wait_banners(2);
    let again = demo.stderr();
    assert_eq!(again.matches("admin / demo-admin-pw").count(), 2);
    assert_eq!(http_get(&demo.http, "/healthz").map(|r| r.0), Some(200));
}

/// Without a token (none in the environment, the file gone), `tgw status`
/// fails with how to get one, not a bare 401; a garbled token file is
/// named.
#[test]
fn status_without_a_token_says_how_to_get_one() {
    let demo = DemoProc::start(82);
    let token_file = demo.dir.path().join("cli-token");
    std::fs::remove_file(&token_file).expect("rm cli-token");
    let status = || {
        let mut c = tgw();
        c.args(["status", "--config"]).arg(demo.config());
        c.env_remove("TGW_TOKEN");
        run_with_timeout(c, Duration::from_secs(30))
    };
    let out = status();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("HTTP 401: no API token"), "{err}");
    assert!(err.contains("tgw user token NAME --save --config"), "{err}");
    assert!(err.contains(&token_file.display().to_string()), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    std::fs::write(&token_file, "not a token\n").expect("write");
    let out = status();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cli-token: not an API token"), "{err}");

    // `tgw user token admin --save` puts a working one back.
    let mut c = tgw();
    c.args(["user", "token", "admin", "--save", "--config"])
        .arg(demo.config());
    let out = run_with_timeout(c, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = status();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
