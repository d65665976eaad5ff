//! `tgw discover`: ONVIF cameras by WS-Discovery (multicast and unicast
//! sweeps) and, with `--speakers`, loudspeakers by SSDP.

use std::net::SocketAddrV4;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::output::{emit, outln};

use crate::config;

#[derive(Args)]
pub(super) struct DiscoverArgs {
    /// Interface (name or IPv4 address) to send multicast Probes from; repeatable.
    /// Default: every up, non-loopback IPv4 interface.
    #[arg(long = "interface")]
    interfaces: Vec<String>,
    /// Network to sweep with unicast Probes (at most a /16); repeatable.
    #[arg(long = "cidr", value_parser = config::parse_cidr)]
    cidrs: Vec<ipnet::Ipv4Net>,
    /// Seconds to wait for answers after the last Probe.
    #[arg(long, default_value_t = 3.0)]
    timeout: f64,
    /// Print one JSON array of the devices found.
    #[arg(long)]
    json: bool,
    /// Do not send multicast Probes (unicast sweep only).
    #[arg(long)]
    no_multicast: bool,
    /// Multicast group:port.
    #[arg(long, default_value = "239.255.255.250:3702")]
    group: SocketAddrV4,
    /// UDP port for unicast Probes.
    #[arg(long, default_value_t = 3702)]
    port: u16,
    /// Unicast Probes per second.
    #[arg(long, default_value_t = 20_000)]
    rate: u32,
    /// Include devices that are not video transmitters.
    #[arg(long)]
    all: bool,
    /// Also send an SSDP M-SEARCH (UPnP MediaRenderer) and list the
    /// loudspeakers that answer (with `--json`: entries with `"kind": "speaker"`).
    #[arg(long)]
    speakers: bool,
    /// SSDP group:port for `--speakers`.
    #[arg(long, default_value = "239.255.255.250:1900")]
    ssdp_group: SocketAddrV4,
}

/// One discovery sweep, printed as a table (count on stderr) or JSON.
pub(super) async fn discover(a: DiscoverArgs) -> anyhow::Result<ExitCode> {
    let mut o = String::new();
    anyhow::ensure!(
        a.timeout.is_finite() && (0.05..=120.0).contains(&a.timeout),
        "--timeout must be between 0.05 and 120 seconds"
    );
    let interfaces = if a.interfaces.is_empty() {
        crate::cameras::discovery::default_interfaces()
    } else {
        crate::cameras::discovery::resolve_interfaces(&a.interfaces)?
    };
    let opts = device_drivers::wsd_io::DiscoverOptions {
        interfaces,
        multicast: !a.no_multicast,
        multicast_group: a.group,
        cidrs: a.cidrs,
        unicast_port: a.port,
        sweep_rate_per_sec: a.rate.clamp(100, 200_000),
        timeout: Duration::from_secs_f64(a.timeout),
        ..Default::default()
    };
    let bar = super::progress::spinner(
        "{spinner} probes {pos}/{len} · found {msg} · {elapsed}",
        a.json,
    );
    let b2 = bar.clone();
    let ssdp_opts = device_drivers::ssdp_io::SearchOptions {
        interfaces: opts.interfaces.clone(),
        group: a.ssdp_group,
        timeout: opts.timeout,
        ..Default::default()
    };
    let search = async {
        if a.speakers {
            device_drivers::ssdp_io::search(&ssdp_opts).await
        } else {
            Ok(Vec::new())
        }
    };
    let progress = move |p: device_drivers::wsd_io::Progress| {
        b2.set_length(p.total);
        b2.set_position(p.sent);
        b2.set_message(p.found.to_string());
    };
    let (found, speakers) =
        tokio::join!(device_drivers::wsd_io::discover(&opts, &progress), search);
    let (found, speakers) = (found?, speakers?);
    bar.finish_and_clear();
    let found: Vec<_> = found
        .into_iter()
        .filter(|d| a.all || device_drivers::wsd::is_nvt(&d.types))
        .collect();
    if a.json {
        let mut out: Vec<serde_json::Value> = found.iter().map(discovered_json).collect();
        out.extend(speakers.iter().map(ssdp_json));
        outln!(o, "{}", serde_json::to_string_pretty(&out)?);
    } else {
        for f in &speakers {
            let s = &f.announcement;
            outln!(
                o,
                "{:<46} {:<22} {:<20} {}",
                s.usn,
                f.from,
                s.server.as_deref().unwrap_or("-"),
                s.location.as_deref().unwrap_or("-")
            );
        }
        for d in &found {
            let name = device_drivers::wsd::scope_values(&d.scopes, "name").join(",");
            outln!(
                o,
                "{:<46} {:<22} {:<20} {}",
                d.endpoint_ref,
                d.from,
                name,
                d.xaddrs.join(" ")
            );
        }
        eprintln!(
            "{} device(s) and {} speaker(s) found",
            found.len(),
            speakers.len()
        );
    }
    emit(&o)?;
    Ok(ExitCode::SUCCESS)
}

/// One SSDP answer of `tgw discover --speakers --json`.
fn ssdp_json(f: &device_drivers::ssdp_io::Found) -> serde_json::Value {
    let s = &f.announcement;
    serde_json::json!({
        "kind": "speaker",
        "usn": s.usn,
        "st": s.target,
        "location": s.location,
        "server": s.server,
        "address": s.location.as_deref().and_then(device_drivers::ssdp::location_ipv4)
            .map_or_else(|| f.from.ip().to_string(), |ip| ip.to_string()),
        "via": "ssdp",
    })
}

fn discovered_json(d: &device_drivers::wsd_io::Discovered) -> serde_json::Value {
    use device_drivers::wsd::scope_values;
    serde_json::json!({
        "kind": if device_drivers::wsd::is_nvt(&d.types) { "camera" } else { "other" },
        "endpoint_ref": d.endpoint_ref,
        "xaddrs": d.xaddrs,
        "types": d.types,
        "scopes": d.scopes,
        "name": scope_values(&d.scopes, "name").into_iter().next(),
        "hardware": scope_values(&d.scopes, "hardware").into_iter().next(),
        "address": d.from.ip().to_string(),
        "via": d.via,
    })
}
