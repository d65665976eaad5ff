//! `[discovery]` (WS-Discovery, SSDP, mDNS, sweeps, auto-adoption) and
//! `[inventory]` (fetching each camera's ONVIF inventory).

use std::net::Ipv4Addr;
use std::time::Duration;

use ipnet::Ipv4Net;
use serde::Deserialize;

use super::Ident;
use super::values::{
    de_cidrs, de_concurrency, de_repeats, de_secs_min10, de_sweep_rate, de_wait_ms, yes,
};

/// `[discovery]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoverySection {
    /// Run discovery at all. Default: `true`.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Seconds between discovery rounds (min 10). Default: `300`.
    #[serde(
        default = "default_discovery_interval",
        deserialize_with = "de_secs_min10"
    )]
    pub interval_secs: Duration,
    /// Send multicast Probes. Default: `true`.
    #[serde(default = "yes")]
    pub multicast: bool,
    /// Interfaces to probe from, by name (`eth0`) or IPv4 address. Default: every
    /// up, non-loopback IPv4 interface.
    #[serde(default)]
    pub interfaces: Vec<String>,
    /// Multicast group and port. Default: `239.255.255.250:3702`.
    #[serde(default = "default_group")]
    pub multicast_group: std::net::SocketAddrV4,
    /// How many times each multicast Probe is sent (1-5). Default: `3`.
    #[serde(default = "default_repeats", deserialize_with = "de_repeats")]
    pub probe_repeats: u8,
    /// Routed village networks to sweep with unicast Probes (where multicast
    /// never arrives), e.g. `["10.21.3.0/24"]`. At most a /16 each. Default: none.
    #[serde(default, deserialize_with = "de_cidrs")]
    pub cidrs: Vec<Ipv4Net>,
    /// UDP port of unicast Probes. Default: `3702`.
    #[serde(default = "default_wsd_port")]
    pub unicast_port: u16,
    /// Unicast Probes per second during a sweep (100-200000). Default: `20000`.
    #[serde(default = "default_sweep_rate", deserialize_with = "de_sweep_rate")]
    pub sweep_rate: u32,
    /// Milliseconds to wait for answers after the last Probe (100-60000). Default: `3000`.
    #[serde(default = "default_wait_ms", deserialize_with = "de_wait_ms")]
    pub wait_ms: Duration,
    /// Listen for Hello/Bye announcements between rounds. Default: `true`.
    #[serde(default = "yes")]
    pub listen: bool,
    /// Adopt newly discovered cameras without a technician when a rule
    /// matches. Default: none (everything waits in the inbox).
    #[serde(default)]
    pub auto_adopt: Vec<AutoAdoptRule>,
    /// Also send an SSDP M-SEARCH (UPnP MediaRenderer) each round, on the
    /// same interfaces, so network loudspeakers land in the inbox as
    /// speakers. Default: `true`.
    #[serde(default = "yes")]
    pub ssdp: bool,
    /// SSDP multicast group and port. Default: `239.255.255.250:1900`.
    #[serde(default = "default_ssdp_group")]
    pub ssdp_group: std::net::SocketAddrV4,
    /// Also send an mDNS / DNS-SD query each round, on the same interfaces,
    /// for SIP horns (`_sip._udp.local`) and plain RTP horns
    /// (`_rtp-horn._udp.local`); they land in the inbox as speakers with
    /// their driver kind and address. Multicast: `multicast = false` turns
    /// it off too. Default: `true`.
    #[serde(default = "yes")]
    pub mdns: bool,
    /// mDNS multicast group and port. Default: `224.0.0.251:5353`.
    #[serde(default = "default_mdns_group")]
    pub mdns_group: std::net::SocketAddrV4,
    /// Also send a second WS-Discovery Probe each round for ONVIF audio
    /// output devices (`tds:Device` with the scope
    /// `onvif://www.onvif.org/type/audio_output`), multicast only, to the
    /// same group; audio-only answers land in the inbox as speakers. The
    /// camera Probe is unchanged. Default: `true`.
    #[serde(default = "yes")]
    pub onvif_audio: bool,
}

impl Default for DiscoverySection {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_secs: default_discovery_interval(),
            multicast: true,
            interfaces: Vec::new(),
            multicast_group: default_group(),
            probe_repeats: default_repeats(),
            cidrs: Vec::new(),
            unicast_port: default_wsd_port(),
            sweep_rate: default_sweep_rate(),
            wait_ms: default_wait_ms(),
            listen: true,
            auto_adopt: Vec::new(),
            ssdp: true,
            ssdp_group: default_ssdp_group(),
            mdns: true,
            mdns_group: default_mdns_group(),
            onvif_audio: true,
        }
    }
}

/// `[[discovery.auto_adopt]]`: adopt cameras that match, into a village/grid.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoAdoptRule {
    /// Match cameras whose address is in this network. Default: any address.
    #[serde(default)]
    pub cidr: Option<Ipv4Net>,
    /// Put them in this village. Default: the village named by the camera's
    /// ONVIF scope `onvif://www.onvif.org/location/village/CODE`, if configured.
    #[serde(default)]
    pub village: Option<Ident>,
    /// Put them in this grid. Default: the grid named by the scope
    /// `onvif://www.onvif.org/location/grid/CODE`, if configured.
    #[serde(default)]
    pub grid: Option<Ident>,
}

fn default_discovery_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_group() -> std::net::SocketAddrV4 {
    std::net::SocketAddrV4::new(Ipv4Addr::new(239, 255, 255, 250), 3702)
}
fn default_ssdp_group() -> std::net::SocketAddrV4 {
    std::net::SocketAddrV4::new(Ipv4Addr::new(239, 255, 255, 250), 1900)
}
fn default_mdns_group() -> std::net::SocketAddrV4 {
    std::net::SocketAddrV4::new(Ipv4Addr::new(224, 0, 0, 251), 5353)
}
fn default_repeats() -> u8 {
    3
}
fn default_wsd_port() -> u16 {
    3702
}
fn default_sweep_rate() -> u32 {
    20_000
}
fn default_wait_ms() -> Duration {
    Duration::from_millis(3000)
}

/// `[inventory]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventorySection {
    /// Cameras probed at once (1-1024). Default: `64`.
    #[serde(default = "default_concurrency", deserialize_with = "de_concurrency")]
    pub concurrency: usize,
    /// Per-call ONVIF timeout in milliseconds (100-60000). Default: `5000`.
    #[serde(default = "default_call_timeout", deserialize_with = "de_wait_ms")]
    pub call_timeout_ms: Duration,
    /// Seconds between inventory refreshes of an adopted camera (min 10). Default: `3600`.
    #[serde(default = "default_refresh", deserialize_with = "de_secs_min10")]
    pub refresh_secs: Duration,
    /// Also probe cameras still waiting in the discovery inbox when a
    /// credential group matches them. Default: `true`.
    #[serde(default = "yes")]
    pub probe_unadopted: bool,
}

impl Default for InventorySection {
    fn default() -> Self {
        Self {
            concurrency: default_concurrency(),
            call_timeout_ms: default_call_timeout(),
            refresh_secs: default_refresh(),
            probe_unadopted: true,
        }
    }
}

fn default_concurrency() -> usize {
    64
}
fn default_call_timeout() -> Duration {
    Duration::from_millis(5000)
}
fn default_refresh() -> Duration {
    Duration::from_secs(3600)
}
