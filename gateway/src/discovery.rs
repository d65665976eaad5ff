//! Discovery rounds: WS-Discovery (multicast per interface and unicast sweeps
//! of routed village networks) into the store's inbox, plus auto-adoption.
//!
//! The protocol and sockets live in `device_drivers::wsd_io`; this module
//! decides *what* to probe from the configuration and *what to do* with what
//! answered: de-duplicate by EndpointReference (the store then merges by MAC
//! once the inventory is known), keep only video transmitters, and adopt by
//! rule.

use std::net::{IpAddr, Ipv4Addr};

use device_drivers::wsd;
use device_drivers::wsd_io::{self, DiscoverOptions, Discovered, Via};
use ipnet::Ipv4Net;

use crate::config::{AutoAdoptRule, DiscoverySection};
use crate::store::{Sighting, Store, StoreError};

/// What one round found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RoundReport {
    /// Video transmitters that answered.
    pub found: usize,
    /// Of them, first seen in this round.
    pub new: usize,
    /// Adopted by an auto-adopt rule in this round.
    pub auto_adopted: usize,
    /// Ids of the devices seen (new or known).
    pub ids: Vec<String>,
}

/// Resolves interface names (`eth0`) or addresses (`10.0.0.2`) to the local
/// IPv4 addresses to probe from.
pub fn resolve_interfaces(names: &[String]) -> anyhow::Result<Vec<Ipv4Addr>> {
    let mut out = Vec::new();
    if names.is_empty() {
        return Ok(out);
    }
    let ifaces = if_addrs_v4()?;
    for n in names {
        if let Ok(ip) = n.parse::<Ipv4Addr>() {
            out.push(ip);
            continue;
        }
        let matches: Vec<Ipv4Addr> = ifaces
            .iter()
            .filter(|(name, _)| name == n)
            .map(|(_, ip)| *ip)
            .collect();
        if matches.is_empty() {
            let known: Vec<&str> = ifaces.iter().map(|(n, _)| n.as_str()).collect();
            anyhow::bail!(
                "interface `{n}` has no IPv4 address (known: {})",
                known.join(", ")
            );
        }
        out.extend(matches);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Every up, non-loopback IPv4 address of this machine.
pub fn default_interfaces() -> Vec<Ipv4Addr> {
    if_addrs_v4()
        .unwrap_or_default()
        .into_iter()
        .map(|(_, ip)| ip)
        .filter(|ip| !ip.is_loopback())
        .collect()
}

fn if_addrs_v4() -> anyhow::Result<Vec<(String, Ipv4Addr)>> {
    Ok(if_addrs::get_if_addrs()?
        .into_iter()
        .filter_map(|i| match i.ip() {
            IpAddr::V4(ip) => Some((i.name, ip)),
            IpAddr::V6(_) => None,
        })
        .collect())
}

/// Builds the driver's options from the `[discovery]` section.
pub fn options(cfg: &DiscoverySection) -> anyhow::Result<DiscoverOptions> {
    Ok(DiscoverOptions {
        interfaces: resolve_interfaces(&cfg.interfaces)?,
        multicast: cfg.multicast,
        multicast_group: cfg.multicast_group,
        probe_repeats: cfg.probe_repeats,
        cidrs: cfg.cidrs.clone(),
        unicast_port: cfg.unicast_port,
        sweep_rate_per_sec: cfg.sweep_rate,
        timeout: cfg.wait_ms,
        ..DiscoverOptions::default()
    })
}

/// Converts a discovery answer into what the store keeps.
pub fn sighting(d: &Discovered) -> Sighting {
    let address = match d.from.ip() {
        IpAddr::V4(ip) => Some(ip),
        IpAddr::V6(_) => None,
    };
    Sighting {
        endpoint_ref: d.endpoint_ref.clone(),
        address,
        xaddrs: d.xaddrs.clone(),
        scopes: d.scopes.clone(),
        types: d.types.clone(),
        via: match d.via {
            Via::Multicast => "multicast",
            Via::Unicast => "unicast",
            Via::Hello => "hello",
        }
        .into(),
        name: wsd::scope_values(&d.scopes, "name").into_iter().next(),
    }
}

/// Records what answered and applies auto-adopt rules to new cameras.
pub fn record(
    store: &Store,
    found: &[Discovered],
    rules: &[AutoAdoptRule],
) -> Result<RoundReport, StoreError> {
    let mut report = RoundReport::default();
    for d in found.iter().filter(|d| wsd::is_nvt(&d.types)) {
        let s = sighting(d);
        let up = store.record_sighting(&s)?;
        report.found += 1;
        report.ids.push(up.id.clone());
        if up.new {
            report.new += 1;
            tracing::info!(device = %up.id, endpoint_ref = %s.endpoint_ref, address = ?s.address, via = %s.via, "camera discovered");
            if auto_adopt(store, &up.id, &s, rules)? {
                report.auto_adopted += 1;
            }
        }
    }
    Ok(report)
}

/// Adopts a new camera if a rule matches; returns whether it did.
fn auto_adopt(
    store: &Store,
    id: &str,
    s: &Sighting,
    rules: &[AutoAdoptRule],
) -> Result<bool, StoreError> {
    let villages = store.villages()?;
    for rule in rules {
        if let Some(net) = rule.cidr
            && !s.address.is_some_and(|a| Ipv4Net::contains(&net, &a))
        {
            continue;
        }
        let scope_village = wsd::scope_values(&s.scopes, "location/village")
            .into_iter()
            .next();
        let scope_grid = wsd::scope_values(&s.scopes, "location/grid")
            .into_iter()
            .next();
        let village = rule
            .village
            .as_ref()
            .map(|v| v.0.clone())
            .or(scope_village)
            .filter(|v| villages.iter().any(|x| &x.code == v));
        let grid = rule
            .grid
            .as_ref()
            .map(|g| g.0.clone())
            .or(scope_grid)
            .filter(|g| {
                villages.iter().any(|v| {
                    village.as_ref().is_none_or(|vc| &v.code == vc)
                        && v.grids.iter().any(|(c, _)| c == g)
                })
            });
        store.adopt(id, village.as_deref(), grid.as_deref())?;
        tracing::info!(device = %id, village = ?village, grid = ?grid, "camera auto-adopted");
        return Ok(true);
    }
    Ok(false)
}

/// Runs one discovery round and records it.
pub async fn round(
    store: &Store,
    opts: &DiscoverOptions,
    rules: &[AutoAdoptRule],
) -> anyhow::Result<RoundReport> {
    let found = wsd_io::discover(opts, &|_| {}).await?;
    Ok(record(store, &found, rules)?)
}
