//! GB/T 28181 end to end against the simulated upper platform of
//! `device-sim` (`device_sim::gb_platform`), over UDP: the gateway
//! registers with the digest and answers its catalog query; keepalive
//! answers dropped → the platform sees a second REGISTER (after 3 misses);
//! behind a NAT-like relay (the platform sees another source port than the
//! gateway's `Via`, answers there with `received`/`rport`, and the mapping
//! moves to a new port mid-run) the gateway stays registered and answers
//! the catalog. Also 校时: the platform's clock (2 min ahead) is the
//! `clock_offset_secs` in the API.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use device_sim::gb_platform::{GbPlatform, PlatformConfig};
use tgw_e2e::*;

const DEVICE: &str = GB_GATEWAY_ID;
const PASSWORD: &str = "pw-sim-platform";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

fn sim_platform(rt: &tokio::runtime::Runtime, nat: bool, clock_offset_secs: i64) -> GbPlatform {
    rt.block_on(GbPlatform::start(PlatformConfig {
        server_id: GB_PLATFORM_ID.into(),
        domain: GB_DOMAIN.into(),
        device_id: DEVICE.into(),
        password: PASSWORD.into(),
        clock_offset_secs,
        nat,
    }))
    .expect("platform")
}

/// `tgw run` registering to `platform` (keepalive every 5 s).
fn gateway(dir: &Path, platform: std::net::SocketAddr) -> (Gateway, String, String) {
    let http = format!("127.0.0.1:{}", free_tcp_port());
    let path = GatewayConfig::new(dir.join("data"))
        .village("dongcun", "东村", &[("dongcun-1", "东村第一网格")])
        .no_discovery()
        .no_health()
        .http(&http)
        .gb28181("time_source = true")
        .gb_platform(&platform.to_string(), PASSWORD, "keepalive_secs = 5")
        .write(dir.join("gateway.toml"));
    let token = api_token(&path);
    let gw = GatewayStart::new(&path, &http)
        .log(dir.join("tgw.log"))
        .start();
    (gw, http, token)
}

fn status(http: &str, token: &str) -> Option<serde_json::Value> {
    let (code, body) = http_get_as(http, "/api/v1/gb28181", Some(token))?;
    (code == 200).then_some(())?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    Some(v["platforms"][0].clone())
}

/// Registered with the digest checked by the platform; the catalog query
/// it sends after the registration is answered (3 entries: group, village,
/// grid); the platform's Date (2 min ahead) is read as its clock.
#[test]
fn registers_and_answers_the_catalog() {
    let rt = runtime();
    let p = sim_platform(&rt, false, 120);
    let dir = tempfile::tempdir().expect("tmp");
    let (_gw, http, token) = gateway(dir.path(), p.address);
    let seen = wait_for(Duration::from_secs(20), "catalog at the platform", || {
        let s = p.seen();
        (s.registrations >= 1 && s.catalog_sum == Some(3) && s.catalog_items >= 3).then_some(s)
    });
    assert_eq!(seen.refused, 0, "{seen:?}");
    let st = wait_for(Duration::from_secs(10), "registered in the API", || {
        status(&http, &token).filter(|s| s["state"] == "registered")
    });
    let offset = st["clock_offset_secs"].as_i64().expect("offset");
    assert!((118..=122).contains(&offset), "{st}");
}

/// The platform stops answering keepalives: after 3 unanswered the
/// gateway registers again, which the platform sees.
#[test]
fn dropped_keepalive_answers_make_it_register_again() {
    let rt = runtime();
    let p = sim_platform(&rt, false, 0);
    p.faults
        .drop_keepalive_answers
        .store(true, Ordering::Relaxed);
    let dir = tempfile::tempdir().expect("tmp");
    let (_gw, _http, _token) = gateway(dir.path(), p.address);
    let seen = wait_for(Duration::from_secs(30), "a second REGISTER", || {
        let s = p.seen();
        (s.registrations >= 2).then_some(s)
    });
    assert!(seen.keepalives >= 3, "{seen:?}");
}

/// Behind a NAT-like relay: the platform sees the gateway from another
/// port than its `Via` says and answers there; the gateway stays
/// registered and answers the catalog, also after the mapping moved to a
/// new port (its next keepalive opens it; the query goes there).
#[test]
fn nat_rewrite_keeps_it_registered_and_catalog_answered() {
    let rt = runtime();
    let p = sim_platform(&rt, true, 0);
    let dir = tempfile::tempdir().expect("tmp");
    let (_gw, http, token) = gateway(dir.path(), p.address);
    let seen = wait_for(Duration::from_secs(20), "catalog through the NAT", || {
        let s = p.seen();
        (s.catalog_pages >= 1 && s.keepalives >= 1).then_some(s)
    });
    let source = seen.source.expect("source").to_string();
    assert_ne!(
        seen.via_sent_by.as_deref(),
        Some(source.as_str()),
        "the platform sees the NAT's port, not the gateway's"
    );
    rt.block_on(p.rebind_nat());
    let moved = wait_for(
        Duration::from_secs(15),
        "traffic on the new mapping",
        || {
            let s = p.seen();
            (s.sources.len() >= 2).then_some(s)
        },
    );
    rt.block_on(p.query_catalog());
    wait_for(
        Duration::from_secs(10),
        "catalog on the new mapping",
        || (p.seen().catalog_pages > moved.catalog_pages).then_some(()),
    );
    let st = status(&http, &token).expect("status");
    assert_eq!(st["state"], "registered", "{st}");
    assert_eq!(st["missed_keepalives"], 0, "{st}");
}
