//! Test helpers of the store: a store synced with the example township,
//! and a camera sighting.

use std::net::Ipv4Addr;

use super::{Sighting, Store};
use crate::config::Config;

/// A store in a temporary directory with the example configuration's township.
pub(crate) fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let cfg = Config::parse(include_str!("../../../config/gateway.example.toml"), "x").unwrap();
    s.sync_township(&cfg.township).unwrap();
    (dir, s)
}

/// A unicast sighting of `epr` at `ip`.
pub(crate) fn sighting(epr: &str, ip: [u8; 4]) -> Sighting {
    Sighting {
        endpoint_ref: epr.into(),
        address: Some(Ipv4Addr::from(ip)),
        xaddrs: vec![format!(
            "http://{}.{}.{}.{}/onvif/device_service",
            ip[0], ip[1], ip[2], ip[3]
        )],
        via: "unicast".into(),
        ..Default::default()
    }
}
