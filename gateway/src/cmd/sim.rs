//! `tgw sim`: a simulated township (ONVIF cameras, loudspeakers) until
//! stopped; the first line on stdout is the JSON manifest.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::ExitCode;

use clap::Args;

use crate::base::error::Error;
use crate::base::shutdown::shutdown_signal;

#[derive(Args)]
pub(super) struct SimArgs {
    /// Number of cameras.
    #[arg(long, default_value_t = 50)]
    cameras: usize,
    /// Number of loudspeakers.
    #[arg(long, default_value_t = 0)]
    speakers: usize,
    /// First device address; devices take consecutive addresses from it.
    #[arg(long, default_value = "127.0.1.1")]
    bind: Ipv4Addr,
    /// UDP port each camera answers unicast WS-Discovery Probes on.
    #[arg(long, default_value_t = 3702)]
    wsd_port: u16,
    /// Multicast group:port to answer Probes on (on 127.0.0.1).
    #[arg(long, default_value = "239.255.255.250:3702")]
    multicast: SocketAddrV4,
    /// Do not answer multicast Probes.
    #[arg(long)]
    no_multicast: bool,
    /// Let the SIP and Axis speakers answer SSDP M-SEARCH on this group:port
    /// (joined on 127.0.0.1), e.g. `239.255.255.250:1900`. Default: no SSDP.
    #[arg(long)]
    ssdp: Option<SocketAddrV4>,
    /// Let the SIP and RTP horns answer mDNS / DNS-SD queries on this
    /// group:port (joined on 127.0.0.1), e.g. `224.0.0.251:5353`. Default: no mDNS.
    #[arg(long)]
    mdns: Option<SocketAddrV4>,
    /// Password of every camera (default: a random one per camera).
    #[arg(long)]
    password: Option<String>,
    /// Username of every camera (default: the vendor's, e.g. `root` for Axis).
    #[arg(long)]
    username: Option<String>,
    /// Inject a fault: `ID=FAULT`, e.g. `cam-0003=offline`, `cam-0004=clock-skew:600`.
    #[arg(long = "fault", value_parser = parse_fault_arg)]
    faults: Vec<(String, device_sim::Fault)>,
    /// Address of the fault-injection control endpoint (HTTP).
    #[arg(long)]
    control: Option<SocketAddr>,
    /// Seed for identities and flavours.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Driver kinds of the loudspeakers, cycled over them (comma-separated:
    /// rtp, sip, axis, rtp-multicast, cloud; cloud horns connect to an
    /// embedded MQTT broker on 127.0.0.1). Every manifest entry carries a `uri`
    /// for `tgw speaker test`.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "rtp,sip,axis,rtp-multicast"
    )]
    speaker_kinds: Vec<device_sim::SpeakerKind>,
}

/// `--fault ID=FAULT`; the message is what clap prints after the flag.
fn parse_fault_arg(s: &str) -> Result<(String, device_sim::Fault), Error> {
    let (id, f) = s.split_once('=').ok_or_else(|| {
        Error::invalid(format!("`{s}`: expected ID=FAULT, e.g. cam-0003=offline"))
    })?;
    let fault = f
        .parse::<device_sim::Fault>()
        .map_err(|e| Error::invalid(format!("`{s}`: {e}")))?;
    Ok((id.to_string(), fault))
}

/// Runs the simulator until SIGINT or SIGTERM.
pub(super) async fn sim(a: SimArgs) -> anyhow::Result<ExitCode> {
    let cfg = device_sim::SimConfig {
        cameras: a.cameras,
        speakers: a.speakers,
        bind: a.bind,
        wsd_port: a.wsd_port,
        multicast: (!a.no_multicast).then_some(a.multicast),
        ssdp: a.ssdp,
        mdns: a.mdns,
        seed: a.seed,
        faults: a.faults,
        password: a.password,
        username: a.username,
        control: a.control,
        speaker_kinds: a.speaker_kinds.clone(),
        cloud_broker: if a.speaker_kinds.contains(&device_sim::SpeakerKind::Cloud) {
            Some(
                crate::uplink::broker::start_embedded(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
                    .await?,
            )
        } else {
            None
        },
        ..Default::default()
    };
    let sim = device_sim::start(cfg).await?;
    // A closed stdout is fine: the simulator runs on until stopped.
    let _ = super::output::emit(&format!("{}\n", serde_json::to_string(sim.manifest())?));
    shutdown_signal().await;
    sim.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_flag_needs_id_equals_fault() {
        let (id, _) = parse_fault_arg("cam-0003=offline").unwrap();
        assert_eq!(id, "cam-0003");
        let e = parse_fault_arg("bogus").unwrap_err();
        assert_eq!(e.kind(), crate::base::error::ErrorKind::Invalid);
        assert_eq!(
            e.to_string(),
            "`bogus`: expected ID=FAULT, e.g. cam-0003=offline"
        );
    }
}
