//! Discovery rounds: WS-Discovery (multicast per interface and unicast sweeps
//! of routed village networks) into the store's inbox, plus auto-adoption.
//!
//! The protocol and sockets live in `device_drivers::wsd_io`; this module
//! decides *what* to probe from the configuration and *what to do* with what
//! answered: de-duplicate by EndpointReference (the store then merges by MAC
//! once the inventory is known), keep video transmitters as cameras and ONVIF
//! audio-output devices as speakers, and adopt cameras by rule. SSDP
//! M-SEARCH answers (network loudspeakers) go into the same inbox as
//! `kind = 'speaker'`.

use std::net::{IpAddr, Ipv4Addr};

use device_drivers::ssdp_io::{self, Found, SearchOptions};
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
    /// Loudspeakers that answered (SSDP, or WS-Discovery audio outputs).
    pub speakers: usize,
    /// Of them, first seen in this round.
    pub new_speakers: usize,
}

/// Whether a non-NVT WS-Discovery answer is an ONVIF audio output device
/// (a `type/audio_output` scope, or an `AudioOutput`-ish type).
pub fn is_audio_output(d: &Discovered) -> bool {
    !wsd::is_nvt(&d.types)
        && (d.scopes.iter().any(|s| {
            let s = s.to_ascii_lowercase();
            s.starts_with("onvif://www.onvif.org/type/audio_output")
                || s.starts_with("onvif://www.onvif.org/type/audio_outputs")
        }) || d
            .types
            .iter()
            .any(|t| t.to_ascii_lowercase().contains("audiooutput")))
}

/// SSDP search options from the `[discovery]` section (same interfaces as
/// WS-Discovery); `None` when `ssdp = false`.
/// SSDP is multicast: `multicast = false` turns it off too.
pub fn ssdp_options(cfg: &DiscoverySection, wsd: &DiscoverOptions) -> Option<SearchOptions> {
    (cfg.ssdp && cfg.multicast).then(|| SearchOptions {
        interfaces: if wsd.interfaces.is_empty() {
            default_interfaces()
        } else {
            wsd.interfaces.clone()
        },
        group: cfg.ssdp_group,
        timeout: cfg.wait_ms,
        ..SearchOptions::default()
    })
}

/// Records SSDP answers as speakers in the inbox.
pub fn record_ssdp(
    store: &Store,
    found: &[Found],
    report: &mut RoundReport,
) -> Result<(), StoreError> {
    for f in found {
        let a = &f.announcement;
        let address = a
            .location
            .as_deref()
            .and_then(device_drivers::ssdp::location_ipv4)
            .or(match f.from.ip() {
                IpAddr::V4(ip) => Some(ip),
                IpAddr::V6(_) => None,
            });
        let up = store.record_speaker_sighting(
            &a.usn,
            address,
            a.location.as_deref(),
            a.server.as_deref(),
            "ssdp",
        )?;
        note_speaker(report, &up.id, up.new, &a.usn, "ssdp");
    }
    Ok(())
}

fn note_speaker(report: &mut RoundReport, id: &str, new: bool, key: &str, via: &str) {
    report.speakers += 1;
    report.ids.push(id.to_string());
    if new {
        report.new_speakers += 1;
        tracing::info!(device = %id, key = %key, via = %via, "speaker discovered");
    }
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
    for d in found.iter().filter(|d| is_audio_output(d)) {
        let s = sighting(d);
        let up = store.record_speaker_sighting(
            &d.endpoint_ref,
            s.address,
            d.preferred_xaddr().as_deref(),
            d.hardware().as_deref(),
            &format!("wsd-{}", s.via),
        )?;
        note_speaker(&mut report, &up.id, up.new, &d.endpoint_ref, &s.via);
    }
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

/// Runs one discovery round (WS-Discovery, plus an SSDP M-SEARCH when
/// `ssdp` is given, both at once) and records it.
pub async fn round(
    store: &Store,
    opts: &DiscoverOptions,
    ssdp: Option<&SearchOptions>,
    rules: &[AutoAdoptRule],
) -> anyhow::Result<RoundReport> {
    let search = async {
        match ssdp {
            Some(o) => ssdp_io::search(o).await.map(Some),
            None => Ok(None),
        }
    };
    let (found, answered) = tokio::join!(wsd_io::discover(opts, &|_| {}), search);
    let mut report = record(store, &found?, rules)?;
    match answered {
        Ok(Some(a)) => record_ssdp(store, &a, &mut report)?,
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "SSDP search failed; WS-Discovery results kept"),
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(epr: &str, types: &[&str], scopes: &[&str]) -> Discovered {
        Discovered {
            endpoint_ref: epr.into(),
            types: types.iter().map(|s| s.to_string()).collect(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            xaddrs: vec!["http://10.21.3.40/onvif/device_service".into()],
            metadata_version: None,
            from: "10.21.3.40:3702".parse().expect("addr"),
            via: Via::Multicast,
        }
    }

    /// An ONVIF audio output device (Axis network speaker: `tds:Device`, no
    /// NetworkVideoTransmitter, `type/audio_output` scope) lands in the inbox
    /// as a speaker; a camera stays a camera; other devices are dropped.
    #[test]
    fn audio_outputs_become_speakers_and_nvts_cameras() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let all = [
            found(
                "urn:uuid:horn",
                &["tds:Device"],
                &[
                    "onvif://www.onvif.org/type/audio_output",
                    "onvif://www.onvif.org/hardware/C1310-E",
                ],
            ),
            found("urn:uuid:cam", &["dn:NetworkVideoTransmitter"], &[]),
            found(
                "urn:uuid:printer",
                &["tds:Device"],
                &["onvif://www.onvif.org/type/printer"],
            ),
        ];
        let r = record(&store, &all, &[]).expect("record");
        assert_eq!((r.found, r.new, r.speakers, r.new_speakers), (1, 1, 1, 1));
        let devs = store.devices(None).expect("devices");
        let mut kinds: Vec<(&str, &str)> = devs
            .iter()
            .map(|d| (d.kind.as_str(), d.endpoint_ref.as_deref().unwrap_or("")))
            .collect();
        kinds.sort();
        assert_eq!(
            kinds,
            [("camera", "urn:uuid:cam"), ("speaker", "urn:uuid:horn")]
        );
        let spk = devs.iter().find(|d| d.kind == "speaker").expect("speaker");
        assert!(spk.id.starts_with("spk-"));
        assert_eq!(spk.model.as_deref(), Some("C1310-E"));
        // A second round refreshes, no new row.
        let r = record(&store, &all, &[]).expect("record");
        assert_eq!(r.new_speakers, 0);
        assert_eq!(store.devices(None).expect("devices").len(), 2);
    }
}
