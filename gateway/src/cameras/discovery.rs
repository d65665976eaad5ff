//! Discovery rounds: WS-Discovery (multicast per interface and unicast sweeps
//! of routed village networks) into the store's inbox, plus auto-adoption.
//!
//! The protocol and sockets live in `device_drivers::wsd_io`; this module
//! decides *what* to probe from the configuration and *what to do* with what
//! answered: de-duplicate by EndpointReference (the store then merges by MAC
//! once the inventory is known), keep video transmitters as cameras and ONVIF
//! audio-output devices as speakers, and adopt cameras by rule.
//!
//! Loudspeakers are looked for three more ways in the same round (see
//! [`SpeakerSearch`]), all into the same inbox as `kind = 'speaker'`, each
//! with the driver kind and address discovery can infer (adopting the
//! speaker copies them into the speaker inventory):
//!
//! | search | finds | driver recorded |
//! |---|---|---|
//! | SSDP M-SEARCH (MediaRenderer) | Axis and SIP network speakers | `axis` at the answer's IP (VAPIX on port 80) when the banner says AXIS; otherwise none |
//! | mDNS / DNS-SD (`_sip._udp`, `_rtp-horn._udp`) | SIP and RTP horns | `sip:USER@IP:PORT` / `IP:PORT` from SRV, TXT and A |
//! | WS-Discovery audio Probe (`tds:Device` + `type/audio_output`) | ONVIF audio outputs | `axis` at the device service's `HOST:PORT` for Axis models; otherwise none |
//!
//! The camera Probe (`dn:NetworkVideoTransmitter`) is not changed by any of
//! them; an answer to the audio Probe that is a video transmitter is ignored.

use std::net::{IpAddr, Ipv4Addr};

use device_drivers::mdns_io;
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
    /// Loudspeakers that answered (SSDP, mDNS, or WS-Discovery audio outputs).
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

/// mDNS query options from the `[discovery]` section (same interfaces as
/// WS-Discovery); `None` when `mdns = false` or `multicast = false`.
pub fn mdns_options(
    cfg: &DiscoverySection,
    wsd: &DiscoverOptions,
) -> Option<mdns_io::QueryOptions> {
    (cfg.mdns && cfg.multicast).then(|| mdns_io::QueryOptions {
        interfaces: if wsd.interfaces.is_empty() {
            default_interfaces()
        } else {
            wsd.interfaces.clone()
        },
        group: cfg.mdns_group,
        timeout: cfg.wait_ms,
        ..mdns_io::QueryOptions::default()
    })
}

/// The audio-output WS-Discovery Probe from the `[discovery]` section: the
/// camera options with `tds:Device` + [`wsd::AUDIO_OUTPUT_SCOPE`],
/// multicast only (no unicast sweep); `None` when `onvif_audio = false` or
/// `multicast = false`.
pub fn onvif_audio_options(
    cfg: &DiscoverySection,
    wsd: &DiscoverOptions,
) -> Option<DiscoverOptions> {
    (cfg.onvif_audio && cfg.multicast).then(|| DiscoverOptions {
        cidrs: Vec::new(),
        types: Some(wsd::DEVICE_TYPE.into()),
        scopes: Some(wsd::AUDIO_OUTPUT_SCOPE.into()),
        ..wsd.clone()
    })
}

/// The loudspeaker searches of a round, besides the camera Probe.
#[derive(Debug, Clone, Default)]
pub struct SpeakerSearch {
    /// SSDP M-SEARCH, if on.
    pub ssdp: Option<SearchOptions>,
    /// mDNS / DNS-SD query, if on.
    pub mdns: Option<mdns_io::QueryOptions>,
    /// Audio-output WS-Discovery Probe, if on.
    pub onvif_audio: Option<DiscoverOptions>,
}

impl SpeakerSearch {
    /// All three from the `[discovery]` section.
    pub fn from_config(cfg: &DiscoverySection, wsd: &DiscoverOptions) -> SpeakerSearch {
        SpeakerSearch {
            ssdp: ssdp_options(cfg, wsd),
            mdns: mdns_options(cfg, wsd),
            onvif_audio: onvif_audio_options(cfg, wsd),
        }
    }
}

/// The driver an SSDP answer implies: an `AXIS` banner is a VAPIX speaker
/// on port 80 of its address. Other banners (SIP horns) say nothing about
/// the SIP port, so no driver is guessed.
pub fn ssdp_driver(
    server: Option<&str>,
    address: Option<Ipv4Addr>,
) -> Option<(&'static str, String)> {
    let axis = server.is_some_and(|s| s.to_ascii_lowercase().contains("axis"));
    Some(("axis", address.filter(|_| axis)?.to_string()))
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
        let driver = ssdp_driver(a.server.as_deref(), address);
        let up = store.record_speaker_sighting(
            &a.usn,
            address,
            a.location.as_deref(),
            a.server.as_deref(),
            "ssdp",
            driver.as_ref().map(|(k, a)| (*k, a.as_str())),
        )?;
        note_speaker(report, &up.id, up.new, &a.usn, "ssdp");
    }
    Ok(())
}

/// Records mDNS answers as speakers in the inbox, keyed by instance name,
/// with the driver their service type implies.
pub fn record_mdns(
    store: &Store,
    found: &[mdns_io::Found],
    report: &mut RoundReport,
) -> Result<(), StoreError> {
    for f in found {
        let i = &f.instance;
        let (Some(kind), Some(addr)) = (i.driver(), f.driver_address()) else {
            tracing::debug!(instance = %i.name, "mDNS answer without SRV port or known type; skipped");
            continue;
        };
        let key = format!("mdns:{}", i.name);
        let up = store.record_speaker_sighting(
            &key,
            f.address(),
            None,
            Some(&i.label),
            "mdns",
            Some((kind.as_str(), &addr)),
        )?;
        note_speaker(report, &up.id, up.new, &key, "mdns");
    }
    Ok(())
}

/// The driver an ONVIF audio output implies: an Axis model (by its
/// `hardware`/`name` scope) is a VAPIX speaker at its device service's
/// `HOST:PORT`. Others (ONVIF audio backchannel) have no driver yet.
pub fn onvif_audio_driver(d: &Discovered) -> Option<(&'static str, String)> {
    let axis = d
        .hardware()
        .into_iter()
        .chain(d.name())
        .any(|v| v.to_ascii_lowercase().contains("axis"));
    if !axis {
        return None;
    }
    let url = url::Url::parse(&d.preferred_xaddr()?).ok()?;
    let host: Ipv4Addr = url.host_str()?.parse().ok()?;
    let port = url.port_or_known_default().unwrap_or(80);
    Some(("axis", format!("{host}:{port}")))
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
        let driver = onvif_audio_driver(d);
        let up = store.record_speaker_sighting(
            &d.endpoint_ref,
            s.address,
            d.preferred_xaddr().as_deref(),
            d.hardware().as_deref(),
            &format!("wsd-{}", s.via),
            driver.as_ref().map(|(k, a)| (*k, a.as_str())),
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
                        && (v.grids.iter().any(|(c, _)| c == g)
                            || v.micro_grids.iter().any(|(c, _, _)| c == g))
                })
            });
        store.adopt(id, village.as_deref(), grid.as_deref())?;
        tracing::info!(device = %id, village = ?village, grid = ?grid, "camera auto-adopted");
        return Ok(true);
    }
    Ok(false)
}

/// Runs one discovery round (the camera WS-Discovery Probe, plus the
/// speaker searches that are on, all at once) and records it. A failing
/// speaker search is logged; the others' results are kept.
pub async fn round(
    store: &Store,
    opts: &DiscoverOptions,
    speakers: &SpeakerSearch,
    rules: &[AutoAdoptRule],
) -> anyhow::Result<RoundReport> {
    let ssdp = async {
        match &speakers.ssdp {
            Some(o) => ssdp_io::search(o).await.map(Some),
            None => Ok(None),
        }
    };
    let mdns = async {
        match &speakers.mdns {
            Some(o) => mdns_io::query(o).await.map(Some),
            None => Ok(None),
        }
    };
    let audio = async {
        match &speakers.onvif_audio {
            Some(o) => wsd_io::discover(o, &|_| {}).await.map(Some),
            None => Ok(None),
        }
    };
    let (found, ssdp, mdns, audio) =
        tokio::join!(wsd_io::discover(opts, &|_| {}), ssdp, mdns, audio);
    let mut report = record(store, &found?, rules)?;
    match ssdp {
        Ok(Some(a)) => record_ssdp(store, &a, &mut report)?,
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "SSDP search failed; other results kept"),
    }
    match mdns {
        Ok(Some(a)) => record_mdns(store, &a, &mut report)?,
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "mDNS query failed; other results kept"),
    }
    match audio {
        Ok(Some(a)) => record_onvif_audio(store, &a, &mut report)?,
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %e, "WS-Discovery audio-output Probe failed; other results kept")
        }
    }
    Ok(report)
}

/// Records the answers to the audio-output Probe: audio-only devices as
/// speakers; anything that is a video transmitter (a camera ignoring the
/// Probe's scope) is left to the camera Probe.
pub fn record_onvif_audio(
    store: &Store,
    found: &[Discovered],
    report: &mut RoundReport,
) -> Result<(), StoreError> {
    let audio: Vec<Discovered> = found
        .iter()
        .filter(|d| is_audio_output(d))
        .cloned()
        .collect();
    let r = record(store, &audio, &[])?;
    report.speakers += r.speakers;
    report.new_speakers += r.new_speakers;
    report.ids.extend(r.ids);
    Ok(())
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

    /// Answers to the audio-output Probe: an Axis speaker (name scope says
    /// AXIS) is recorded with driver `axis` at its device service's
    /// HOST:PORT; another vendor's audio output gets no driver; a camera
    /// that ignored the Probe's scope is not recorded at all.
    #[test]
    fn audio_probe_answers_record_axis_drivers_and_skip_cameras() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let mut axis = found(
            "urn:uuid:axis",
            &["tds:Device"],
            &[
                wsd::AUDIO_OUTPUT_SCOPE,
                "onvif://www.onvif.org/name/AXIS%20C1310-E",
            ],
        );
        axis.xaddrs = vec!["http://10.21.3.40:8080/onvif/device_service".into()];
        let other = found("urn:uuid:oem", &["tds:Device"], &[wsd::AUDIO_OUTPUT_SCOPE]);
        let cam = found("urn:uuid:cam", &["dn:NetworkVideoTransmitter"], &[]);
        let mut report = RoundReport::default();
        record_onvif_audio(&store, &[axis, other, cam], &mut report).expect("record");
        assert_eq!((report.speakers, report.found), (2, 0));
        let devs = store.devices(None).expect("devices");
        assert_eq!(devs.len(), 2, "{devs:?}");
        let a = devs
            .iter()
            .find(|d| d.endpoint_ref.as_deref() == Some("urn:uuid:axis"))
            .expect("axis");
        assert_eq!(
            (a.driver.as_deref(), a.driver_address.as_deref()),
            (Some("axis"), Some("10.21.3.40:8080"))
        );
        let o = devs
            .iter()
            .find(|d| d.endpoint_ref.as_deref() == Some("urn:uuid:oem"))
            .expect("oem");
        assert_eq!(o.driver, None);
    }

    /// mDNS answers become speakers keyed `mdns:INSTANCE` with the driver of
    /// their service type; an instance without an SRV port is skipped.
    /// SSDP: an AXIS banner implies `axis` at the answer's address.
    #[test]
    fn mdns_and_ssdp_answers_record_drivers() {
        use device_drivers::mdns::{self, Instance};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let inst = |svc: &str, label: &str, port: Option<u16>| Instance {
            service: svc.into(),
            name: format!("{label}.{svc}"),
            label: label.into(),
            host: Some("h.local".into()),
            port,
            addrs: vec![Ipv4Addr::new(10, 21, 3, 50)],
            txt: vec![("user".into(), "paging".into())],
        };
        let f = |i: Instance| mdns_io::Found {
            instance: i,
            from: "10.21.3.50:5353".parse().expect("addr"),
            interface: Ipv4Addr::LOCALHOST,
        };
        let answers = [
            f(inst(mdns::SIP_SERVICE, "Horn A", Some(5062))),
            f(inst(mdns::RTP_HORN_SERVICE, "Horn B", Some(5004))),
            f(inst(mdns::RTP_HORN_SERVICE, "Horn C", None)),
        ];
        let mut report = RoundReport::default();
        record_mdns(&store, &answers, &mut report).expect("record");
        assert_eq!((report.speakers, report.new_speakers), (2, 2));
        let mut got: Vec<(String, String, String)> = store
            .devices(None)
            .expect("devices")
            .into_iter()
            .map(|d| {
                (
                    d.driver.unwrap_or_default(),
                    d.driver_address.unwrap_or_default(),
                    d.via.unwrap_or_default(),
                )
            })
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("rtp".into(), "10.21.3.50:5004".into(), "mdns".into()),
                (
                    "sip".into(),
                    "sip:paging@10.21.3.50:5062".into(),
                    "mdns".into()
                ),
            ]
        );
        let ip = Some(Ipv4Addr::new(10, 21, 3, 40));
        assert_eq!(
            ssdp_driver(Some("Linux UPnP/1.0 AXIS C1310-E/11.1"), ip),
            Some(("axis", "10.21.3.40".to_string()))
        );
        assert_eq!(ssdp_driver(Some("SPON-IPHorn-SIP/2.1"), ip), None);
    }

    /// The speaker searches follow `[discovery]`: mDNS and the audio Probe
    /// are on by default, multicast only (the audio Probe never sweeps the
    /// CIDRs and never changes the camera Probe), and off with
    /// `multicast = false` or their own keys.
    #[test]
    fn speaker_searches_follow_the_config() {
        let mut cfg = DiscoverySection {
            interfaces: vec!["127.0.0.1".into()],
            cidrs: vec!["10.0.0.0/24".parse().expect("cidr")],
            ..DiscoverySection::default()
        };
        let wsd_opts = options(&cfg).expect("options");
        assert_eq!(wsd_opts.types, None);
        assert_eq!(wsd_opts.scopes, None);
        let s = SpeakerSearch::from_config(&cfg, &wsd_opts);
        let m = s.mdns.expect("mdns on");
        assert_eq!(m.group, device_drivers::mdns::GROUP);
        assert_eq!(m.interfaces, vec![Ipv4Addr::LOCALHOST]);
        let a = s.onvif_audio.expect("audio probe on");
        assert_eq!(a.types.as_deref(), Some(wsd::DEVICE_TYPE));
        assert_eq!(a.scopes.as_deref(), Some(wsd::AUDIO_OUTPUT_SCOPE));
        assert!(a.cidrs.is_empty());
        cfg.mdns = false;
        cfg.onvif_audio = false;
        let s = SpeakerSearch::from_config(&cfg, &wsd_opts);
        assert!(s.mdns.is_none() && s.onvif_audio.is_none() && s.ssdp.is_some());
        cfg.mdns = true;
        cfg.onvif_audio = true;
        cfg.multicast = false;
        let s = SpeakerSearch::from_config(&cfg, &wsd_opts);
        assert!(s.mdns.is_none() && s.onvif_audio.is_none() && s.ssdp.is_none());
    }
}
