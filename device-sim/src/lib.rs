//! A simulated township for Township Gateway: N ONVIF cameras and M simple
//! RTP loudspeakers in one process, each on its own loopback address, with
//! vendor flavours and per-device fault injection. It powers `tgw sim`,
//! `tgw demo`, the integration tests and the benchmarks.
//!
//! | module | what |
//! |---|---|
//! | [`fault`] | injectable faults and their string form (`slow:2s`, ...) |
//! | [`township`] | the sample township 青山镇 and device placement |
//! | [`flavour`] | vendor flavours (Hikvision, Dahua, Uniview, TP-Link, Axis, OEM) and their quirks |
//! | [`camera`] | a camera's identity: addresses, MAC, serial, scopes, profiles |
//! | [`onvif`] | pure SOAP core: auth (UsernameToken, Digest) and answers from templates |
//! | [`digest`] | pure server-side HTTP Digest |
//! | [`speaker`] | pure RTP / G.711 / Goertzel core of a speaker |
//! | [`horns`] | IO of the multicast-zone, SIP auto-answer and Axis HTTP horns |
//! | [`gb_platform`] | a simulated upper GB/T 28181 platform (REGISTER with digest, keepalives, catalog query) with NAT and dropped-keepalive faults, for the e2e suite |
//! | [`rtsp`] | pure RTSP server core: clips, SDP, sessions, RTP numbering (IO in `rtsp::serve`) |
//! | `server` | tokio IO: per-camera task (SOAP + snapshots, RTSP, WS-Discovery), multicast responder, speaker sockets |
//! | `control` | the optional HTTP control endpoint (faults, manifest) |
//!
//! Start with [`start`]; the returned [`Sim`] gives the [`Manifest`] and
//! injects faults. One tokio runtime, one task per device, no threads.

pub mod camera;
mod cloud_horn;
mod control;
pub mod digest;
pub mod events;
pub mod fault;
pub mod flavour;
pub mod gb_platform;
pub mod horns;
pub mod onvif;
pub mod rtsp;
mod server;
pub mod speaker;
pub mod township;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
pub use device_drivers::onvif_client::{SystemClock, WallClock};
use rand::Rng;
use rand::distributions::Alphanumeric;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use camera::Camera;
pub use fault::{BadFault, Fault};
pub use flavour::Flavour;
pub use horns::SpeakerKind;
pub use speaker::SpeakerReport;
pub use township::{Grid, Township, Village, sample_township};

use server::{CameraNode, SpeakerNode, lock};

/// The WS-Discovery multicast group and port.
pub const DEFAULT_MULTICAST: SocketAddrV4 =
    SocketAddrV4::new(Ipv4Addr::new(239, 255, 255, 250), 3702);

/// WS-Discovery's APP_MAX_DELAY: the default upper bound of the random delay
/// before answering a multicast Probe.
pub const APP_MAX_DELAY: Duration = Duration::from_millis(500);

/// What to simulate.
#[derive(Clone)]
pub struct SimConfig {
    /// Number of cameras. Default 10.
    pub cameras: usize,
    /// Number of speakers. Default 0.
    pub speakers: usize,
    /// First device address; device k sits at the k-th address from here,
    /// skipping host octets .0 and .255. Default 127.0.1.1.
    pub bind: Ipv4Addr,
    /// Unicast WS-Discovery port each camera listens on. Default 3702.
    pub wsd_port: u16,
    /// RTSP port each camera listens on (on its own address). Default 554;
    /// 0 = an ephemeral port per camera. When binding fails with "permission
    /// denied" (not root) or "address in use", that camera falls back to an
    /// ephemeral port; the [`Manifest`] and the ONVIF `GetStreamUri` answers
    /// always carry the port really bound.
    pub rtsp_port: u16,
    /// Multicast group:port answered by one shared responder joined on
    /// 127.0.0.1; `None` disables multicast. Default 239.255.255.250:3702.
    pub multicast: Option<SocketAddrV4>,
    /// Seed for identities (EndpointReference, MAC, serial). Default 1.
    pub seed: u64,
    /// Faults present from the start, by device id.
    pub faults: Vec<(String, Fault)>,
    /// Password of every device; `None` = random per device. Default `None`.
    pub password: Option<String>,
    /// Username of every camera; `None` = the vendor's default (`admin`,
    /// `root` for Axis). Default `None`.
    pub username: Option<String>,
    /// Address of the HTTP control endpoint; `None` = none. Default `None`.
    pub control: Option<SocketAddr>,
    /// Upper bound of the random delay before each multicast ProbeMatches
    /// (spreads a thousand answers so a receiver's buffer is not flooded);
    /// `None` = [`APP_MAX_DELAY`] up to 250 cameras, 250 ms above (all
    /// answers within about a second either way). Tests use zero.
    pub probe_max_delay: Option<Duration>,
    /// Driver kinds of the speakers, cycled over them (speaker j gets
    /// `speaker_kinds[j % len]`). Default `[Rtp]`; `tgw sim` mixes all
    /// kinds ([`SpeakerKind::ALL`]).
    pub speaker_kinds: Vec<SpeakerKind>,
    /// SSDP group:port the SIP and Axis speakers answer M-SEARCH on (one
    /// shared responder joined on 127.0.0.1; each answer is sent from the
    /// speaker's own address). `None` = no SSDP. Default `None`; tests use a
    /// free port, `tgw sim --ssdp 239.255.255.250:1900` the real group. No
    /// responder is bound when no speaker answers SSDP.
    pub ssdp: Option<SocketAddrV4>,
    /// mDNS group:port the SIP horns (`_sip._udp`) and unicast RTP horns
    /// (`_rtp-horn._udp`) answer DNS-SD queries on (one shared responder
    /// joined on 127.0.0.1; answers are legacy unicast, sent from each
    /// horn's own address). `None` = no mDNS. Default `None`; tests use a
    /// free port on 224.0.0.251, `tgw sim --mdns 224.0.0.251:5353` the real
    /// one. (Axis horns answer the WS-Discovery audio-output Probe instead,
    /// whenever `multicast` is set.)
    pub mdns: Option<SocketAddrV4>,
    /// Multicast group of the RTP zone the `RtpMulticast` speakers join (on
    /// 127.0.0.1, an ephemeral port shared by the zone). Default 239.255.42.1.
    pub speaker_group: Ipv4Addr,
    /// MQTT broker the `Cloud` horns connect to (device-sim runs none; a
    /// test starts one). Required when cloud horns are requested.
    pub cloud_broker: Option<SocketAddr>,
    /// Whether SIP and HTTP horns demand digest authentication (with the
    /// device's password, which the manifest URI carries). Default true.
    pub speaker_auth: bool,
    /// Wall clock for camera clocks (plus any skew), Digest nonces,
    /// UsernameToken freshness and speaker arrival stamps. Default: the
    /// system clock.
    pub clock: Arc<dyn WallClock>,
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("cameras", &self.cameras)
            .field("speakers", &self.speakers)
            .field("bind", &self.bind)
            .field("wsd_port", &self.wsd_port)
            .field("rtsp_port", &self.rtsp_port)
            .field("multicast", &self.multicast)
            .field("seed", &self.seed)
            .field("faults", &self.faults)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("username", &self.username)
            .field("control", &self.control)
            .field("probe_max_delay", &self.probe_max_delay)
            .finish_non_exhaustive()
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            cameras: 10,
            speakers: 0,
            bind: Ipv4Addr::new(127, 0, 1, 1),
            wsd_port: 3702,
            rtsp_port: 554,
            multicast: Some(DEFAULT_MULTICAST),
            seed: 1,
            faults: Vec::new(),
            password: None,
            username: None,
            control: None,
            probe_max_delay: None,
            speaker_kinds: vec![SpeakerKind::Rtp],
            ssdp: None,
            mdns: None,
            speaker_group: Ipv4Addr::new(239, 255, 42, 1),
            cloud_broker: None,
            speaker_auth: true,
            clock: Arc::new(SystemClock),
        }
    }
}

/// What is running, as `tgw sim` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Every device, cameras first.
    pub devices: Vec<DeviceEntry>,
    /// Unicast WS-Discovery port of the cameras.
    pub wsd_port: u16,
    /// Multicast group:port answered, if any.
    pub multicast: Option<String>,
    /// Control endpoint address, if any.
    pub control: Option<String>,
}

/// One device in the [`Manifest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceEntry {
    /// `cam-0001`, `spk-0001`.
    pub id: String,
    /// `camera` or `speaker`.
    pub kind: String,
    /// Vendor flavour (`hikvision`, ...; speakers: `rtp-g711`).
    pub flavour: String,
    /// IPv4 address.
    pub address: String,
    /// Device-service XAddr (cameras; Axis horns, which answer WS-Discovery).
    pub xaddr: Option<String>,
    /// `urn:uuid:` EndpointReference (cameras; Axis horns).
    pub endpoint_ref: Option<String>,
    /// MAC address (cameras).
    pub mac: Option<String>,
    /// User name (cameras).
    pub username: Option<String>,
    /// Password (cameras).
    pub password: Option<String>,
    /// Village code.
    pub village: String,
    /// Grid code.
    pub grid: String,
    /// `rtp://IP:PORT?codec=pcmu` (speakers).
    pub rtp: Option<String>,
    /// RTSP URIs of the main and sub streams, without credentials (cameras).
    #[serde(default)]
    pub rtsp: Option<Vec<String>>,
    /// Snapshot URIs of the main and sub profiles (cameras).
    #[serde(default)]
    pub snapshot: Option<Vec<String>>,
    /// Speakers: the address `tgw speaker test` takes (`rtp://…`,
    /// `sip:horn:PASS@…`, `axis://root:PASS@…`).
    #[serde(default)]
    pub uri: Option<String>,
    /// Speakers: driver kind (`rtp`, `rtp-multicast`, `sip`, `axis`).
    #[serde(default)]
    pub speaker_kind: Option<String>,
}

/// Spawns a horn's task once its node is shared.
type SpawnHorn = Box<dyn FnOnce(Arc<SpeakerNode>) -> JoinHandle<()>>;

/// No device with this id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no simulated device with id {0:?}")]
pub struct UnknownDevice(pub String);

#[derive(Clone)]
enum Node {
    Camera(Arc<CameraNode>),
    Speaker(Arc<SpeakerNode>),
}

impl Node {
    fn fault(&self) -> &watch::Sender<Option<Fault>> {
        match self {
            Node::Camera(c) => &c.fault,
            Node::Speaker(s) => &s.fault,
        }
    }
}

/// State shared with the control endpoint.
pub(crate) struct Shared {
    manifest: Manifest,
    nodes: HashMap<String, Node>,
    multicast: Option<SocketAddrV4>,
}

impl Shared {
    fn set_fault(&self, id: &str, fault: Option<Fault>) -> Result<(), UnknownDevice> {
        let node = self
            .nodes
            .get(id)
            .ok_or_else(|| UnknownDevice(id.to_string()))?;
        if let (Node::Camera(c), Some(Fault::ExpireSubscriptions)) = (node, &fault) {
            server::lock(&c.events).expire_all();
        }
        node.fault().send_replace(fault);
        Ok(())
    }

    fn fault(&self, id: &str) -> Result<Option<Fault>, UnknownDevice> {
        let node = self
            .nodes
            .get(id)
            .ok_or_else(|| UnknownDevice(id.to_string()))?;
        Ok(node.fault().borrow().clone())
    }

    fn speaker_report(&self, id: &str) -> Option<SpeakerReport> {
        match self.nodes.get(id)? {
            Node::Speaker(s) => Some(lock(&s.stats).report()),
            Node::Camera(_) => None,
        }
    }
}

/// A running simulation. Dropping it without [`Sim::shutdown`] cancels the
/// tasks too, but does not wait for them.
pub struct Sim {
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The k-th device address from `first` (0-based), skipping .0 and .255.
pub fn device_addr(first: Ipv4Addr, k: usize) -> Option<Ipv4Addr> {
    let mut a = u32::from(first);
    let mut left = k;
    loop {
        let last = a & 0xff;
        if last != 0 && last != 255 {
            if left == 0 {
                return Some(Ipv4Addr::from(a));
            }
            left -= 1;
        }
        a = a.checked_add(1)?;
    }
}

fn random_password() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(12)
        .map(char::from)
        .collect()
}

fn random_secret() -> String {
    hex::encode(rand::thread_rng().r#gen::<[u8; 16]>())
}

/// Binds a camera's RTSP listener on `port`, falling back to an ephemeral
/// port when `port` needs privileges we lack or is taken.
fn bind_rtsp(ip: Ipv4Addr, port: u16) -> std::io::Result<tokio::net::TcpListener> {
    match server::bind_tcp(SocketAddr::from((ip, port))) {
        Err(e)
            if port != 0
                && matches!(
                    e.kind(),
                    std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::AddrInUse
                ) =>
        {
            tracing::debug!(%ip, port, error = %e, "RTSP port unavailable; using an ephemeral port");
            server::bind_tcp(SocketAddr::from((ip, 0)))
        }
        r => r,
    }
}

/// What a speaker of `kind` answers to an SSDP M-SEARCH: SIP horns and Axis
/// network speakers advertise a UPnP MediaRenderer (as the real ones do);
/// the other kinds stay silent.
fn ssdp_announcement(
    kind: SpeakerKind,
    seed: u64,
    j: usize,
    ip: Ipv4Addr,
    addr: SocketAddr,
) -> Option<device_drivers::ssdp::Announcement> {
    use device_drivers::ssdp::{Announcement, MEDIA_RENDERER};
    let (port, server) = match kind {
        SpeakerKind::Axis => (
            addr.port(),
            "Linux/4.14, UPnP/1.0, AXIS C1310-E Network Horn Speaker/11.1.67",
        ),
        SpeakerKind::Sip => (49152, "Linux/3.10 UPnP/1.0 SPON-IPHorn-SIP/2.1"),
        _ => return None,
    };
    let uuid = format!("uuid:{:08x}-5350-4b00-8000-{:012x}", seed as u32, j + 1);
    Some(Announcement {
        usn: format!("{uuid}::{MEDIA_RENDERER}"),
        target: MEDIA_RENDERER.into(),
        location: Some(format!("http://{ip}:{port}/description.xml")),
        server: Some(server.into()),
        nts: None,
    })
}

/// What a speaker of `kind` answers to an mDNS query: SIP horns advertise
/// `_sip._udp` (TXT `user=horn`) on their SIP port, unicast RTP horns
/// `_rtp-horn._udp` (TXT `codec=pcmu`) on their RTP port; the others stay
/// silent.
fn mdns_advert(
    kind: SpeakerKind,
    id: &str,
    ip: Ipv4Addr,
    addr: SocketAddr,
) -> Option<device_drivers::mdns::Advert> {
    use device_drivers::mdns::{Advert, RTP_HORN_SERVICE, SIP_SERVICE};
    let (service, label, txt) = match kind {
        SpeakerKind::Sip => (
            SIP_SERVICE,
            format!("SPON IP Horn {id}"),
            vec![format!("user={}", horns::SIP_USER), "txtvers=1".into()],
        ),
        SpeakerKind::Rtp => (
            RTP_HORN_SERVICE,
            format!("RTP Horn {id}"),
            vec!["codec=pcmu".into(), "txtvers=1".into()],
        ),
        _ => return None,
    };
    Some(Advert {
        service: service.into(),
        label,
        host: format!("{id}.local"),
        addr: ip,
        port: addr.port(),
        txt,
    })
}

/// What an Axis network speaker says to a WS-Discovery Probe: an ONVIF
/// `tds:Device` (no `NetworkVideoTransmitter`) with the `type/audio_output`
/// scope and its device service on its HTTP port (as on a real C1310-E,
/// where VAPIX and ONVIF share port 80).
fn horn_probe_match(
    seed: u64,
    j: usize,
    ip: Ipv4Addr,
    addr: SocketAddr,
    village: &str,
    grid: &str,
) -> device_drivers::wsd::ProbeMatch {
    use device_drivers::wsd::{AUDIO_OUTPUT_SCOPE, DEVICE_TYPE, ProbeMatch};
    ProbeMatch {
        endpoint_ref: format!("urn:uuid:{:08x}-4158-4953-8000-{:012x}", seed as u32, j + 1),
        types: vec![DEVICE_TYPE.into()],
        scopes: vec![
            AUDIO_OUTPUT_SCOPE.into(),
            "onvif://www.onvif.org/Profile/T".into(),
            "onvif://www.onvif.org/name/AXIS%20C1310-E".into(),
            "onvif://www.onvif.org/hardware/C1310-E".into(),
            format!("onvif://www.onvif.org/location/village/{village}"),
            format!("onvif://www.onvif.org/location/grid/{grid}"),
        ],
        xaddrs: vec![format!("http://{ip}:{}/onvif/device_service", addr.port())],
        metadata_version: Some(1),
    }
}

/// Starts the simulation: binds every socket (errors name the address), then
/// spawns one task per device on the current tokio runtime.
pub async fn start(cfg: SimConfig) -> anyhow::Result<Sim> {
    let township = sample_township();
    let shutdown = CancellationToken::new();
    let mcast_if = cfg.multicast.map(|_| Ipv4Addr::LOCALHOST);
    let mut tasks = Vec::new();
    let mut devices = Vec::new();
    let mut nodes = HashMap::new();
    let mut cameras = Vec::with_capacity(cfg.cameras);
    let initial: HashMap<&str, &Fault> = cfg.faults.iter().map(|(i, f)| (i.as_str(), f)).collect();
    let clips = Arc::new(rtsp::Clips::builtin().context("loading the built-in H.264 clips")?);

    for i in 0..cfg.cameras {
        let ip = device_addr(cfg.bind, i)
            .with_context(|| format!("camera {} has no address after {}", i + 1, cfg.bind))?;
        let listener = server::bind_tcp(SocketAddr::from((ip, 0)))
            .with_context(|| format!("binding camera {} SOAP listener on {ip}:0", i + 1))?;
        let port = listener.local_addr()?.port();
        let udp = server::bind_udp(SocketAddr::from((ip, cfg.wsd_port)), mcast_if).with_context(
            || {
                format!(
                    "binding camera {} WS-Discovery socket on {ip}:{}",
                    i + 1,
                    cfg.wsd_port
                )
            },
        )?;
        let rtsp_listener = bind_rtsp(ip, cfg.rtsp_port)
            .with_context(|| format!("binding camera {} RTSP listener on {ip}", i + 1))?;
        let rtsp_port = rtsp_listener.local_addr()?.port();
        let (village, grid) = township
            .place(i)
            .map(|(v, g)| (v.code.clone(), g.code.clone()))
            .unwrap_or_default();
        let password = cfg.password.clone().unwrap_or_else(random_password);
        let mut cam = Camera::new(i, cfg.seed, ip, port, password, village, grid);
        cam.rtsp_port = rtsp_port;
        if let Some(u) = &cfg.username {
            cam.username = u.clone();
        }
        let fault = initial.get(cam.id.as_str()).map(|f| (*f).clone());
        devices.push(DeviceEntry {
            id: cam.id.clone(),
            kind: "camera".into(),
            flavour: cam.flavour.name().into(),
            address: ip.to_string(),
            xaddr: Some(cam.xaddr()),
            endpoint_ref: Some(cam.endpoint_ref.clone()),
            mac: Some(cam.mac_string()),
            username: Some(cam.username.clone()),
            password: Some(cam.password.clone()),
            village: cam.village.clone(),
            grid: cam.grid.clone(),
            rtp: None,
            rtsp: Some(vec![cam.stream_uri(0), cam.stream_uri(1)]),
            snapshot: Some(vec![cam.snapshot_uri(0), cam.snapshot_uri(1)]),
            uri: None,
            speaker_kind: None,
        });
        let node = Arc::new(CameraNode {
            probe_match: cam.probe_match(),
            cam,
            fault: watch::Sender::new(fault),
            udp: Mutex::new(Some(Arc::new(udp))),
            nonces: Mutex::default(),
            events: Mutex::default(),
            digest_secret: random_secret(),
            multicast: cfg.multicast,
            clock: cfg.clock.clone(),
            clips: clips.clone(),
        });
        nodes.insert(node.cam.id.clone(), Node::Camera(node.clone()));
        cameras.push(node.clone());
        tasks.push(tokio::spawn(server::run_camera(
            node,
            Some(listener),
            Some(rtsp_listener),
            shutdown.child_token(),
        )));
    }

    let mut zone_port: Option<u16> = None;
    let mut ssdp_answers = Vec::new();
    let mut mdns_answers = Vec::new();
    let mut wsd_horns = Vec::new();
    for j in 0..cfg.speakers {
        let kind = cfg
            .speaker_kinds
            .get(j % cfg.speaker_kinds.len().max(1))
            .copied()
            .unwrap_or(SpeakerKind::Rtp);
        let ip = device_addr(cfg.bind, cfg.cameras + j)
            .with_context(|| format!("speaker {} has no address after {}", j + 1, cfg.bind))?;
        let id = format!("spk-{:04}", j + 1);
        let (village, grid) = township
            .place(j)
            .map(|(v, g)| (v.code.clone(), g.code.clone()))
            .unwrap_or_default();
        let password = match kind {
            SpeakerKind::Sip | SpeakerKind::Axis if cfg.speaker_auth => {
                Some(cfg.password.clone().unwrap_or_else(random_password))
            }
            _ => None,
        };
        let fault = initial.get(id.as_str()).map(|f| (*f).clone());
        let mut node = SpeakerNode {
            stats: Mutex::new(speaker::RtpStats::with_kind(&id, kind.name())),
            fault: watch::Sender::new(fault),
            id: id.clone(),
            addr: SocketAddr::from((ip, 0)),
            media: None,
            group: None,
            password: password.clone(),
            digest_secret: random_secret(),
            clock: cfg.clock.clone(),
        };
        let cred = |user: &str| match &password {
            Some(p) => format!("{user}:{p}@"),
            None => String::new(),
        };
        let (uri, task): (String, SpawnHorn) = match kind {
            SpeakerKind::Rtp => {
                let sock = server::bind_udp(SocketAddr::from((ip, 0)), None)
                    .with_context(|| format!("binding speaker {id} RTP socket on {ip}:0"))?;
                node.addr = sock.local_addr()?;
                let t = shutdown.child_token();
                (
                    format!("rtp://{}?codec=pcmu", node.addr),
                    Box::new(move |n| tokio::spawn(server::run_speaker(n, Some(sock), t))),
                )
            }
            SpeakerKind::RtpMulticast => {
                let port = match zone_port {
                    Some(p) => p,
                    None => {
                        // An ephemeral port nobody else uses for the group.
                        let probe = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
                            .context("choosing the multicast zone port")?;
                        let p = probe.local_addr()?.port();
                        zone_port = Some(p);
                        p
                    }
                };
                let group = SocketAddrV4::new(cfg.speaker_group, port);
                let sock = horns::bind_group_member(group).with_context(|| {
                    format!("speaker {id}: joining multicast zone {group} on 127.0.0.1")
                })?;
                node.addr = SocketAddr::V4(group);
                node.group = Some(group);
                let t = shutdown.child_token();
                (
                    format!("rtp://{group}?codec=pcma&ttl=1&if=127.0.0.1"),
                    Box::new(move |n| tokio::spawn(server::run_speaker(n, Some(sock), t))),
                )
            }
            SpeakerKind::Sip => {
                // Bind both to learn the ports; the task re-binds them
                // (SO_REUSEADDR) right away.
                let a = server::bind_udp(SocketAddr::from((ip, 0)), None)
                    .with_context(|| format!("binding speaker {id} SIP socket on {ip}:0"))?;
                let b = server::bind_udp(SocketAddr::from((ip, 0)), None)
                    .with_context(|| format!("binding speaker {id} RTP socket on {ip}:0"))?;
                node.addr = a.local_addr()?;
                node.media = Some(b.local_addr()?);
                drop((a, b));
                let t = shutdown.child_token();
                (
                    format!("sip:{}{}", cred(horns::SIP_USER), node.addr),
                    Box::new(move |n| tokio::spawn(horns::run_sip(n, t))),
                )
            }
            SpeakerKind::Axis => {
                let l = server::bind_tcp(SocketAddr::from((ip, 0)))
                    .with_context(|| format!("binding speaker {id} HTTP listener on {ip}:0"))?;
                node.addr = l.local_addr()?;
                let t = shutdown.child_token();
                (
                    format!("axis://{}{}", cred(horns::AXIS_USER), node.addr),
                    Box::new(move |n| tokio::spawn(horns::run_axis(n, Some(l), t))),
                )
            }
            SpeakerKind::Cloud => {
                let Some(broker) = cfg.cloud_broker else {
                    shutdown.cancel();
                    anyhow::bail!(
                        "speaker {id} is a cloud horn but SimConfig.cloud_broker is not set (start an MQTT broker first)"
                    );
                };
                node.addr = broker;
                let t = shutdown.child_token();
                (
                    format!("cloud://{id}@{broker}"),
                    Box::new(move |n| tokio::spawn(cloud_horn::run_cloud(n, broker, t))),
                )
            }
        };
        let horn_pm = (kind == SpeakerKind::Axis)
            .then(|| horn_probe_match(cfg.seed, j, ip, node.addr, &village, &grid));
        devices.push(DeviceEntry {
            id: id.clone(),
            kind: "speaker".into(),
            flavour: if kind == SpeakerKind::Rtp {
                "rtp-g711".into()
            } else {
                kind.name().into()
            },
            address: ip.to_string(),
            xaddr: horn_pm.as_ref().and_then(|p| p.xaddrs.first().cloned()),
            endpoint_ref: horn_pm.as_ref().map(|p| p.endpoint_ref.clone()),
            mac: None,
            username: password.as_ref().map(|_| {
                if kind == SpeakerKind::Sip {
                    horns::SIP_USER.to_string()
                } else {
                    horns::AXIS_USER.to_string()
                }
            }),
            password: password.clone(),
            village,
            grid,
            rtp: matches!(kind, SpeakerKind::Rtp | SpeakerKind::RtpMulticast).then(|| uri.clone()),
            rtsp: None,
            snapshot: None,
            uri: Some(uri),
            speaker_kind: Some(kind.name().into()),
        });
        let node = Arc::new(node);
        if let Some(announcement) = ssdp_announcement(kind, cfg.seed, j, ip, node.addr) {
            ssdp_answers.push(server::SsdpAnswer {
                ip,
                node: node.clone(),
                announcement,
            });
        }
        if let Some(advert) = mdns_advert(kind, &id, ip, node.addr) {
            mdns_answers.push(server::MdnsAnswer {
                ip,
                node: node.clone(),
                advert,
            });
        }
        if let Some(probe_match) = horn_pm {
            wsd_horns.push(server::WsdHorn {
                ip,
                node: node.clone(),
                probe_match,
            });
        }
        nodes.insert(id, Node::Speaker(node.clone()));
        tasks.push(task(node));
    }

    for (id, _) in &cfg.faults {
        if !nodes.contains_key(id) {
            shutdown.cancel();
            anyhow::bail!(UnknownDevice(id.clone()));
        }
    }

    if let Some(group) = cfg.multicast {
        let sock = server::bind_multicast(group).with_context(|| {
            format!("binding the WS-Discovery multicast responder on {group} (joined on 127.0.0.1)")
        });
        let sock = match sock {
            Ok(s) => s,
            Err(e) => {
                shutdown.cancel();
                return Err(e);
            }
        };
        let max_delay = cfg.probe_max_delay.unwrap_or(if cfg.cameras > 250 {
            Duration::from_millis(250)
        } else {
            APP_MAX_DELAY
        });
        tasks.push(tokio::spawn(server::run_multicast(
            sock,
            Arc::new(cameras),
            Arc::new(wsd_horns),
            max_delay,
            shutdown.child_token(),
        )));
    }

    if let Some(group) = cfg.ssdp.filter(|_| !ssdp_answers.is_empty()) {
        let sock = match server::bind_multicast(group)
            .with_context(|| format!("binding the SSDP responder on {group} (joined on 127.0.0.1)"))
        {
            Ok(s) => s,
            Err(e) => {
                shutdown.cancel();
                return Err(e);
            }
        };
        tasks.push(tokio::spawn(server::run_ssdp(
            sock,
            Arc::new(ssdp_answers),
            shutdown.child_token(),
        )));
    }

    if let Some(group) = cfg.mdns.filter(|_| !mdns_answers.is_empty()) {
        let sock = match server::bind_multicast(group)
            .with_context(|| format!("binding the mDNS responder on {group} (joined on 127.0.0.1)"))
        {
            Ok(s) => s,
            Err(e) => {
                shutdown.cancel();
                return Err(e);
            }
        };
        tasks.push(tokio::spawn(server::run_mdns(
            sock,
            Arc::new(mdns_answers),
            shutdown.child_token(),
        )));
    }

    let mut manifest = Manifest {
        devices,
        wsd_port: cfg.wsd_port,
        multicast: cfg.multicast.map(|m| m.to_string()),
        control: None,
    };
    let control_listener = match cfg.control {
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr).await;
            let l = match l.with_context(|| format!("binding the control endpoint on {addr}")) {
                Ok(l) => l,
                Err(e) => {
                    shutdown.cancel();
                    return Err(e);
                }
            };
            manifest.control = Some(l.local_addr()?.to_string());
            Some(l)
        }
        None => None,
    };
    let shared = Arc::new(Shared {
        manifest,
        nodes,
        multicast: cfg.multicast,
    });
    if let Some(l) = control_listener {
        tasks.push(tokio::spawn(control::run(
            l,
            shared.clone(),
            shutdown.child_token(),
        )));
    }
    Ok(Sim {
        shared,
        shutdown,
        tasks,
    })
}

impl Sim {
    /// What is running.
    pub fn manifest(&self) -> &Manifest {
        &self.shared.manifest
    }

    /// Sets (`Some`) or clears (`None`) a device's fault, effective at once.
    pub fn set_fault(&self, id: &str, fault: Option<Fault>) -> Result<(), UnknownDevice> {
        self.shared.set_fault(id, fault)
    }

    /// A device's current fault.
    pub fn fault(&self, id: &str) -> Result<Option<Fault>, UnknownDevice> {
        self.shared.fault(id)
    }

    /// What speaker `id` has heard so far; `None` if it is not a speaker.
    pub fn speaker_report(&self, id: &str) -> Option<SpeakerReport> {
        self.shared.speaker_report(id)
    }

    fn camera(&self, id: &str) -> anyhow::Result<&Arc<CameraNode>> {
        match self.shared.nodes.get(id) {
            Some(Node::Camera(c)) => Ok(c),
            Some(Node::Speaker(_)) => anyhow::bail!("{id} is a speaker, not a camera"),
            None => Err(UnknownDevice(id.to_string()).into()),
        }
    }

    fn send_to_group(&self, id: &str, msg: String, what: &str) -> anyhow::Result<()> {
        let node = self.camera(id)?;
        let group = self
            .shared
            .multicast
            .with_context(|| format!("{id}: cannot send {what}: multicast is disabled"))?;
        let sock = lock(&node.udp)
            .clone()
            .with_context(|| format!("{id}: cannot send {what}: the camera is offline"))?;
        // Straight to the (non-blocking) socket: a UDP send does not wait,
        // and tokio's readiness flag may not be set on a fresh socket yet.
        socket2::SockRef::from(&*sock)
            .send_to(msg.as_bytes(), &SocketAddr::V4(group).into())
            .with_context(|| format!("{id}: sending {what} to {group}"))?;
        Ok(())
    }

    /// Sends camera `id`'s multicast Hello to the group.
    pub fn say_hello(&self, id: &str) -> anyhow::Result<()> {
        let node = self.camera(id)?;
        let msg = device_drivers::wsd::build_hello(
            &format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            &node.probe_match,
        );
        self.send_to_group(id, msg, "Hello")
    }

    /// Sends camera `id`'s multicast Bye to the group.
    pub fn say_bye(&self, id: &str) -> anyhow::Result<()> {
        let node = self.camera(id)?;
        let msg = device_drivers::wsd::build_bye(
            &format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            &node.cam.endpoint_ref,
        );
        self.send_to_group(id, msg, "Bye")
    }

    /// Stops every task and waits for them; all sockets are closed on return.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

#[cfg(test)]
mod tests;
