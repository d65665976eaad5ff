//! Thin tokio IO around [`crate::wsd`]: active discovery and a passive
//! Hello/Bye listener.
//!
//! [`discover`] sends a multicast Probe from every chosen IPv4 interface
//! (repeated with the same MessageID, as WS-Discovery retransmission wants)
//! and, for routed village VLANs where multicast never arrives, a paced
//! unicast Probe to every host of the configured CIDRs. It then collects
//! ProbeMatches until [`DiscoverOptions::timeout`] after the last send,
//! keeping only answers whose `RelatesTo` is one of our MessageIDs, and merges
//! everything said about one EndpointReference (repeated probes, several
//! datagrams, multicast and unicast) into one [`Discovered`].
//!
//! [`listen`] joins the group on one interface and turns Hello/Bye into
//! [`WsdEvent`]s until shut down.
//!
//! Sockets are set up with socket2 and then handed to tokio, so all timers are
//! tokio's and tests can run on paused time.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use crate::wsd::{self, ProbeMatch, WsdError, WsdMessage};

/// Receive buffer requested for discovery sockets: a thousand cameras may
/// answer one multicast Probe at once. Best effort (the OS may cap it).
const RECV_BUFFER_BYTES: usize = 4 << 20;

/// What to probe and how.
#[derive(Debug, Clone)]
pub struct DiscoverOptions {
    /// Local IPv4 addresses to send multicast Probes from. Default: empty,
    /// meaning every up, non-loopback IPv4 interface (from `if-addrs`).
    pub interfaces: Vec<Ipv4Addr>,
    /// Whether to send multicast Probes. Default: `true`.
    pub multicast: bool,
    /// Multicast group and port. Default: `239.255.255.250:3702`.
    pub multicast_group: SocketAddrV4,
    /// Multicast TTL (hops). Default: 1 (the local segment).
    pub multicast_ttl: u32,
    /// How many times the multicast Probe is sent, with the same MessageID.
    /// Default: 3. At least one Probe is always sent.
    pub probe_repeats: u8,
    /// Spacing of the repeated multicast Probes. Default: 100 ms.
    pub probe_interval: Duration,
    /// Networks swept with unicast Probes (network and broadcast addresses
    /// skipped for prefixes shorter than /31). Default: none.
    pub cidrs: Vec<ipnet::Ipv4Net>,
    /// Destination port of the unicast sweep. Default: 3702.
    pub unicast_port: u16,
    /// Pacing of the unicast sweep, in Probes per second. Default: 20 000
    /// (an empty /16 takes about 3.3 s plus `timeout`).
    pub sweep_rate_per_sec: u32,
    /// How long to wait for answers after the last Probe. Default: 2 s.
    pub timeout: Duration,
    /// Types to probe for; see [`wsd::build_probe`]. Default: `None`
    /// (`dn:NetworkVideoTransmitter`).
    pub types: Option<String>,
    /// Scopes the Probe asks for (space-separated URIs); see
    /// [`wsd::build_probe_scoped`]. Default: `None` (no `<d:Scopes>`).
    pub scopes: Option<String>,
}

impl Default for DiscoverOptions {
    fn default() -> Self {
        DiscoverOptions {
            interfaces: Vec::new(),
            multicast: true,
            multicast_group: SocketAddrV4::new(wsd::MULTICAST_V4, wsd::PORT),
            multicast_ttl: 1,
            probe_repeats: 3,
            probe_interval: Duration::from_millis(100),
            cidrs: Vec::new(),
            unicast_port: wsd::PORT,
            sweep_rate_per_sec: 20_000,
            timeout: Duration::from_secs(2),
            types: None,
            scopes: None,
        }
    }
}

/// Progress of a running [`discover`], reported after sends and new finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Probes sent so far.
    pub sent: u64,
    /// Probes to send in all (multicast and unicast).
    pub total: u64,
    /// Distinct endpoints found so far.
    pub found: usize,
}

/// How an endpoint was first heard of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// Answer to a multicast Probe.
    Multicast,
    /// Answer to a unicast Probe of the sweep.
    Unicast,
    /// Announced by a Hello.
    Hello,
}

/// One endpoint found by WS-Discovery.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Discovered {
    /// `EndpointReference/Address` (the identity), e.g. `urn:uuid:...`.
    pub endpoint_ref: String,
    /// Advertised types as QName text.
    pub types: Vec<String>,
    /// Advertised scope URIs.
    pub scopes: Vec<String>,
    /// Advertised XAddrs, as given (see [`Discovered::preferred_xaddr`]).
    pub xaddrs: Vec<String>,
    /// Highest `MetadataVersion` seen.
    pub metadata_version: Option<u32>,
    /// Source of the first datagram that named this endpoint.
    pub from: SocketAddr,
    /// How the endpoint was first heard of.
    pub via: Via,
}

impl Discovered {
    /// Wraps a parsed match with where it came from.
    pub fn new(m: ProbeMatch, from: SocketAddr, via: Via) -> Self {
        Discovered {
            endpoint_ref: m.endpoint_ref,
            types: m.types,
            scopes: m.scopes,
            xaddrs: m.xaddrs,
            metadata_version: m.metadata_version,
            from,
            via,
        }
    }

    /// Merges another sighting (see [`ProbeMatch::merge`]); `from` and `via` stay.
    pub fn merge(&mut self, m: ProbeMatch) {
        wsd::union_into(&mut self.types, m.types);
        wsd::union_into(&mut self.scopes, m.scopes);
        wsd::union_into(&mut self.xaddrs, m.xaddrs);
        self.metadata_version = match (self.metadata_version, m.metadata_version) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// The `name` scope, percent-decoded.
    pub fn name(&self) -> Option<String> {
        wsd::scope_values(&self.scopes, "name").into_iter().next()
    }

    /// The `hardware` scope, percent-decoded.
    pub fn hardware(&self) -> Option<String> {
        wsd::scope_values(&self.scopes, "hardware")
            .into_iter()
            .next()
    }

    /// Whether it advertises `NetworkVideoTransmitter`.
    pub fn is_nvt(&self) -> bool {
        wsd::is_nvt(&self.types)
    }

    /// The XAddr to use, preferring one on the address the answer came from.
    pub fn preferred_xaddr(&self) -> Option<String> {
        wsd::preferred_xaddr(&self.xaddrs, Some(self.from.ip()))
    }
}

/// What a [`discover_report`] found and what it threw away.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscoverReport {
    /// Distinct endpoints, in the order first heard.
    pub devices: Vec<Discovered>,
    /// Probes sent.
    pub sent: u64,
    /// Probes the OS refused to send.
    pub send_errors: u64,
    /// ProbeMatches datagrams accepted (answers to our MessageIDs).
    pub replies: u64,
    /// ProbeMatches whose `RelatesTo` is missing or not ours (spoofed or
    /// unsolicited): dropped.
    pub unsolicited: u64,
    /// Datagrams that did not parse as WS-Discovery: dropped.
    pub unparsable: u64,
    /// Matches without an EndpointReference inside accepted answers: dropped.
    pub skipped_matches: u64,
    /// Other well-formed messages (Probe, Hello, Bye) on our sockets: ignored.
    pub other_messages: u64,
}

/// An event from the passive [`listen`]er.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsdEvent {
    /// A device announced itself (`via` is [`Via::Hello`]).
    Hello(Discovered),
    /// A device said goodbye.
    Bye {
        /// Its EndpointReference.
        endpoint_ref: String,
        /// Source of the Bye.
        from: SocketAddr,
    },
}

/// A WS-Discovery IO failure, naming the interface or address and the operation.
#[derive(Debug, thiserror::Error)]
pub enum WsdIoError {
    /// The interface list could not be read.
    #[error("WS-Discovery: listing network interfaces failed")]
    Interfaces(#[source] io::Error),
    /// A socket operation failed.
    #[error("WS-Discovery: {op} on {addr} failed")]
    Socket {
        /// What was being done, e.g. `join multicast group`.
        op: &'static str,
        /// The interface or socket address concerned.
        addr: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Multicast is off or no interface qualifies, and no CIDR is configured.
    #[error(
        "WS-Discovery: nothing to probe (no IPv4 interface for multicast and no CIDR to sweep)"
    )]
    NothingToProbe,
}

fn sock_err(op: &'static str, addr: impl ToString) -> impl FnOnce(io::Error) -> WsdIoError {
    let addr = addr.to_string();
    move |source| WsdIoError::Socket { op, addr, source }
}

fn new_message_id() -> String {
    format!("urn:uuid:{}", uuid::Uuid::new_v4())
}

/// Normalises a MessageID for comparison: some devices echo it with a
/// different case or without the `urn:` prefix.
fn normalise_id(id: &str) -> String {
    let id = id.trim();
    let id = id
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("urn:"))
        .map_or(id, |_| &id[4..]);
    id.to_ascii_lowercase()
}

/// Runs discovery and returns the endpoints found; see [`discover_report`].
pub async fn discover(
    opts: &DiscoverOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Vec<Discovered>, WsdIoError> {
    Ok(discover_report(opts, progress).await?.devices)
}

/// Runs discovery (see the module docs) and reports what was found and dropped.
///
/// Fails only when no socket can be set up for what was asked: an
/// explicitly listed interface that cannot be used is an error, an
/// automatically found one is skipped with a warning.
pub async fn discover_report(
    opts: &DiscoverOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<DiscoverReport, WsdIoError> {
    let interfaces = if !opts.multicast {
        Vec::new()
    } else if opts.interfaces.is_empty() {
        auto_interfaces()?
    } else {
        opts.interfaces.clone()
    };
    let cidrs = distinct_cidrs(&opts.cidrs);
    let unicast_total: u64 = cidrs.iter().map(host_count).sum();

    let mut multicast_socks = Vec::new();
    for iface in &interfaces {
        match probe_socket(*iface, opts.multicast_ttl) {
            Ok(s) => multicast_socks.push((*iface, Arc::new(s), new_message_id())),
            Err(e) if opts.interfaces.is_empty() => {
                tracing::warn!(interface = %iface, error = %e, cause = ?std::error::Error::source(&e), "skipping interface for WS-Discovery");
            }
            Err(e) => return Err(e),
        }
    }
    let unicast = if unicast_total > 0 {
        Some((Arc::new(sweep_socket()?), new_message_id()))
    } else {
        None
    };
    if multicast_socks.is_empty() && unicast.is_none() {
        return Err(WsdIoError::NothingToProbe);
    }

    let mut ours: HashSet<String> = multicast_socks
        .iter()
        .map(|(_, _, id)| normalise_id(id))
        .collect();
    if let Some((_, id)) = &unicast {
        ours.insert(normalise_id(id));
    }

    let repeats = u64::from(opts.probe_repeats.max(1));
    let total = multicast_socks.len() as u64 * repeats + unicast_total;

    let (tx, mut rx) = mpsc::channel::<Incoming>(1024);
    let mut receivers = JoinSet::new();
    for (_, sock, _) in &multicast_socks {
        receivers.spawn(recv_loop(sock.clone(), Via::Multicast, tx.clone()));
    }
    if let Some((sock, _)) = &unicast {
        receivers.spawn(recv_loop(sock.clone(), Via::Unicast, tx.clone()));
    }
    drop(tx);

    let counters = Counters::default();
    let found = AtomicUsize::new(0);
    let report = |c: &Counters| {
        progress(Progress {
            sent: c.sent.load(Ordering::Relaxed),
            total,
            found: found.load(Ordering::Relaxed),
        })
    };
    let types = opts.types.as_deref();
    let scopes = opts.scopes.as_deref();
    let send_multicast = async {
        for r in 0..repeats {
            if r > 0 {
                tokio::time::sleep(opts.probe_interval).await;
            }
            for (iface, sock, id) in &multicast_socks {
                let probe = wsd::build_probe_scoped(id, types, scopes);
                match sock
                    .send_to(probe.as_bytes(), SocketAddr::V4(opts.multicast_group))
                    .await
                {
                    Ok(_) => {}
                    Err(e) => {
                        counters.send_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(interface = %iface, group = %opts.multicast_group, error = %e, "WS-Discovery multicast Probe not sent");
                    }
                }
                counters.sent.fetch_add(1, Ordering::Relaxed);
                report(&counters);
            }
        }
    };
    let send_unicast = async {
        if let Some((sock, id)) = &unicast {
            let probe = wsd::build_probe_scoped(id, types, scopes);
            sweep(
                sock,
                probe.as_bytes(),
                &cidrs,
                opts.unicast_port,
                opts.sweep_rate_per_sec,
                &counters,
                &|| report(&counters),
            )
            .await;
        }
    };

    let mut collector = Collector::new(ours);
    let sending = async { tokio::join!(send_multicast, send_unicast) };
    tokio::pin!(sending);
    loop {
        tokio::select! {
            _ = &mut sending => break,
            Some(inc) = rx.recv() => {
                if collector.handle(inc) {
                    found.store(collector.devices.len(), Ordering::Relaxed);
                    report(&counters);
                }
            }
        }
    }
    let deadline = Instant::now() + opts.timeout;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
            inc = rx.recv() => match inc {
                Some(inc) => {
                    if collector.handle(inc) {
                        found.store(collector.devices.len(), Ordering::Relaxed);
                        report(&counters);
                    }
                }
                None => {
                    tracing::warn!("all WS-Discovery receive sockets failed; stopping early");
                    break;
                }
            }
        }
    }
    receivers.abort_all();
    report(&counters);

    let mut out = collector.report;
    out.devices = collector.devices;
    out.sent = counters.sent.load(Ordering::Relaxed);
    out.send_errors = counters.send_errors.load(Ordering::Relaxed);
    tracing::debug!(
        found = out.devices.len(),
        sent = out.sent,
        send_errors = out.send_errors,
        replies = out.replies,
        unsolicited = out.unsolicited,
        unparsable = out.unparsable,
        skipped_matches = out.skipped_matches,
        "WS-Discovery finished"
    );
    Ok(out)
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    send_errors: AtomicU64,
}

/// A received datagram, parsed on the receiving task.
struct Incoming {
    from: SocketAddr,
    via: Via,
    msg: Result<WsdMessage, WsdError>,
}

struct Collector {
    ours: HashSet<String>,
    index: HashMap<String, usize>,
    devices: Vec<Discovered>,
    report: DiscoverReport,
}

impl Collector {
    fn new(ours: HashSet<String>) -> Self {
        Collector {
            ours,
            index: HashMap::new(),
            devices: Vec::new(),
            report: DiscoverReport::default(),
        }
    }

    /// Takes one datagram into account; true when a new endpoint was found.
    fn handle(&mut self, inc: Incoming) -> bool {
        let (relates_to, matches, skipped) = match inc.msg {
            Ok(WsdMessage::ProbeMatches {
                relates_to,
                matches,
                skipped,
                ..
            }) => (relates_to, matches, skipped),
            Ok(other) => {
                self.report.other_messages += 1;
                tracing::debug!(from = %inc.from, message = ?other, "ignoring WS-Discovery message that is not a ProbeMatches");
                return false;
            }
            Err(e) => {
                self.report.unparsable += 1;
                tracing::debug!(from = %inc.from, error = %e, "dropping unparsable WS-Discovery datagram");
                return false;
            }
        };
        if !relates_to
            .as_deref()
            .is_some_and(|r| self.ours.contains(&normalise_id(r)))
        {
            self.report.unsolicited += 1;
            tracing::debug!(from = %inc.from, relates_to = ?relates_to, "dropping ProbeMatches not answering one of our Probes");
            return false;
        }
        self.report.replies += 1;
        self.report.skipped_matches += skipped as u64;
        if skipped > 0 {
            tracing::debug!(from = %inc.from, skipped, "ProbeMatch without EndpointReference skipped");
        }
        let mut new = false;
        for m in matches {
            match self.index.get(&m.endpoint_ref) {
                Some(&i) => self.devices[i].merge(m),
                None => {
                    self.index
                        .insert(m.endpoint_ref.clone(), self.devices.len());
                    self.devices.push(Discovered::new(m, inc.from, inc.via));
                    new = true;
                }
            }
        }
        new
    }
}

async fn recv_loop(sock: Arc<UdpSocket>, via: Via, tx: mpsc::Sender<Incoming>) {
    let mut buf = vec![0u8; wsd::MAX_DATAGRAM];
    let mut consecutive_errors = 0u32;
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((n, from)) => {
                consecutive_errors = 0;
                let msg = wsd::parse(&buf[..n]);
                if tx.send(Incoming { from, via, msg }).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                // e.g. ICMP errors reported on some platforms; keep going
                // unless the socket is persistently broken.
                consecutive_errors += 1;
                tracing::debug!(socket = ?sock.local_addr().ok(), error = %e, "WS-Discovery receive error");
                if consecutive_errors >= 100 {
                    tracing::warn!(socket = ?sock.local_addr().ok(), error = %e, "WS-Discovery socket keeps failing; no longer reading it");
                    return;
                }
            }
        }
    }
}

/// Sends `probe` to every host of `cidrs`, paced at `rate` per second.
async fn sweep(
    sock: &UdpSocket,
    probe: &[u8],
    cidrs: &[ipnet::Ipv4Net],
    port: u16,
    rate: u32,
    counters: &Counters,
    progress: &(dyn Fn() + Sync),
) {
    let (tick, per_tick) = pacing(rate);
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut hosts = cidrs.iter().flat_map(|c| c.hosts());
    let mut last_error: Option<(Ipv4Addr, io::Error)> = None;
    let mut errors = 0u64;
    'outer: loop {
        interval.tick().await;
        for _ in 0..per_tick {
            let Some(host) = hosts.next() else {
                break 'outer;
            };
            let to = SocketAddr::V4(SocketAddrV4::new(host, port));
            if let Err(e) = sock.send_to(probe, to).await {
                errors += 1;
                counters.send_errors.fetch_add(1, Ordering::Relaxed);
                last_error = Some((host, e));
            }
            counters.sent.fetch_add(1, Ordering::Relaxed);
        }
        progress();
    }
    progress();
    if let Some((host, e)) = last_error {
        tracing::warn!(errors, last_host = %host, error = %e, "WS-Discovery unicast sweep: some Probes not sent");
    }
}

/// Tick length and Probes per tick for a rate in Probes per second.
fn pacing(rate: u32) -> (Duration, u64) {
    let rate = u64::from(rate.max(1));
    // 10 ms ticks, or slower when under 100 Probes per second.
    let tick_ms = (1000 / rate).max(10);
    let per_tick = (rate * tick_ms / 1000).max(1);
    (Duration::from_millis(tick_ms), per_tick)
}

/// Drops CIDRs contained in another one, so no host is probed twice.
fn distinct_cidrs(cidrs: &[ipnet::Ipv4Net]) -> Vec<ipnet::Ipv4Net> {
    let mut out: Vec<ipnet::Ipv4Net> = Vec::new();
    for (i, c) in cidrs.iter().enumerate() {
        let c = c.trunc();
        let covered = cidrs.iter().enumerate().any(|(j, o)| {
            let o = o.trunc();
            j != i && o.contains(&c) && (o != c || j < i)
        });
        if !covered {
            out.push(c);
        }
    }
    out
}

fn host_count(net: &ipnet::Ipv4Net) -> u64 {
    let size = 1u64 << (32 - u32::from(net.prefix_len()));
    if net.prefix_len() < 31 {
        size - 2
    } else {
        size
    }
}

fn auto_interfaces() -> Result<Vec<Ipv4Addr>, WsdIoError> {
    let all = if_addrs::get_if_addrs().map_err(WsdIoError::Interfaces)?;
    let mut out = Vec::new();
    for i in all {
        if let IpAddr::V4(a) = i.ip()
            && !i.is_loopback()
            && i.is_oper_up()
            && !out.contains(&a)
        {
            out.push(a);
        }
    }
    Ok(out)
}

fn into_tokio(s: Socket, addr: &str) -> Result<UdpSocket, WsdIoError> {
    s.set_nonblocking(true)
        .map_err(sock_err("set non-blocking", addr))?;
    UdpSocket::from_std(s.into()).map_err(sock_err("register socket with tokio", addr))
}

fn new_udp(addr: &str) -> Result<Socket, WsdIoError> {
    Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
        .map_err(sock_err("create UDP socket", addr))
}

/// A socket on `iface` (ephemeral port) sending multicast Probes out of that interface.
fn probe_socket(iface: Ipv4Addr, ttl: u32) -> Result<UdpSocket, WsdIoError> {
    let name = format!("interface {iface}");
    let s = new_udp(&name)?;
    s.set_multicast_if_v4(&iface)
        .map_err(sock_err("set IP_MULTICAST_IF", &name))?;
    s.set_multicast_ttl_v4(ttl)
        .map_err(sock_err("set IP_MULTICAST_TTL", &name))?;
    s.set_multicast_loop_v4(true)
        .map_err(sock_err("set IP_MULTICAST_LOOP", &name))?;
    let _ = s.set_recv_buffer_size(RECV_BUFFER_BYTES);
    s.bind(&SocketAddr::V4(SocketAddrV4::new(iface, 0)).into())
        .map_err(sock_err("bind", &name))?;
    into_tokio(s, &name)
}

/// The socket of the unicast sweep: any address, ephemeral port.
fn sweep_socket() -> Result<UdpSocket, WsdIoError> {
    let name = "0.0.0.0:0 (unicast sweep)";
    let s = new_udp(name)?;
    let _ = s.set_recv_buffer_size(RECV_BUFFER_BYTES);
    let _ = s.set_send_buffer_size(RECV_BUFFER_BYTES);
    s.bind(&SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).into())
        .map_err(sock_err("bind", name))?;
    into_tokio(s, name)
}

/// Opens the passive listener socket: `group`'s port with SO_REUSEADDR (and
/// SO_REUSEPORT on Linux) so it coexists with other WS-Discovery listeners,
/// joined to `group` on `iface`.
///
/// Split from [`listen_on`] so a caller (or test) knows when the group is joined.
pub fn listen_socket(iface: Ipv4Addr, group: SocketAddrV4) -> Result<UdpSocket, WsdIoError> {
    let name = format!("interface {iface}, group {group}");
    let s = new_udp(&name)?;
    s.set_reuse_address(true)
        .map_err(sock_err("set SO_REUSEADDR", &name))?;
    #[cfg(target_os = "linux")]
    {
        s.set_reuse_port(true)
            .map_err(sock_err("set SO_REUSEPORT", &name))?;
        // Only datagrams for groups joined on this socket (not every group
        // joined by anyone on the host).
        let _ = s.set_multicast_all_v4(false);
    }
    // On Unix, binding to the group address keeps unicast traffic to the
    // port out; elsewhere bind to any address.
    let bind_ip = if cfg!(unix) {
        *group.ip()
    } else {
        Ipv4Addr::UNSPECIFIED
    };
    s.bind(&SocketAddr::V4(SocketAddrV4::new(bind_ip, group.port())).into())
        .map_err(sock_err("bind", &name))?;
    s.join_multicast_v4(group.ip(), &iface)
        .map_err(sock_err("join multicast group", &name))?;
    into_tokio(s, &name)
}

/// Passively listens for Hello and Bye on `bind_iface` until `shutdown`
/// completes or `tx` is closed. Other messages and unparsable datagrams are
/// ignored (logged at debug level).
pub async fn listen(
    bind_iface: Ipv4Addr,
    group: SocketAddrV4,
    tx: mpsc::Sender<WsdEvent>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WsdIoError> {
    let sock = listen_socket(bind_iface, group)?;
    listen_on(sock, tx, shutdown).await;
    Ok(())
}

/// The loop of [`listen`] on a socket from [`listen_socket`].
pub async fn listen_on(
    sock: UdpSocket,
    tx: mpsc::Sender<WsdEvent>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut buf = vec![0u8; wsd::MAX_DATAGRAM];
    loop {
        let received = tokio::select! {
            _ = &mut shutdown => return,
            r = sock.recv_from(&mut buf) => r,
        };
        let (n, from) = match received {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(socket = ?sock.local_addr().ok(), error = %e, "WS-Discovery listener receive error");
                // Do not spin on a persistent error.
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        let event = match wsd::parse(&buf[..n]) {
            Ok(WsdMessage::Hello(m)) => WsdEvent::Hello(Discovered::new(m, from, Via::Hello)),
            Ok(WsdMessage::Bye { endpoint_ref }) => WsdEvent::Bye { endpoint_ref, from },
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!(from = %from, error = %e, "dropping unparsable WS-Discovery datagram");
                continue;
            }
        };
        tokio::select! {
            _ = &mut shutdown => return,
            r = tx.send(event) => if r.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Clone, Copy, PartialEq)]
    enum Mode {
        /// Answers each Probe with one ProbeMatches.
        Normal,
        /// Answers with a RelatesTo that is not the Probe's MessageID.
        Spoof,
        /// Answers with two datagrams, one match each, same endpoint.
        Split,
        /// Answers with garbage and a DTD bomb.
        Garbage,
    }

    type Seen = Arc<Mutex<Vec<String>>>;

    fn matching(epr: &str, ip: IpAddr) -> ProbeMatch {
        ProbeMatch {
            endpoint_ref: epr.to_string(),
            types: vec![wsd::NVT_TYPE.into(), wsd::DEVICE_TYPE.into()],
            scopes: vec![format!("onvif://www.onvif.org/name/{epr}")],
            xaddrs: vec![format!("http://{ip}/onvif/device_service")],
            metadata_version: Some(1),
        }
    }

    /// Spawns a responder on `sock`; returns the MessageIDs of the Probes it saw.
    fn respond(sock: UdpSocket, epr: &'static str, mode: Mode) -> Seen {
        let seen: Seen = Arc::default();
        let seen2 = seen.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            let ip = match sock.local_addr().unwrap().ip() {
                IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                ip => ip,
            };
            loop {
                let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(WsdMessage::Probe { message_id, .. }) = wsd::parse(&buf[..n]) else {
                    continue;
                };
                seen2.lock().unwrap().push(message_id.clone());
                let m = matching(epr, ip);
                let answers: Vec<Vec<u8>> = match mode {
                    Mode::Normal => {
                        vec![wsd::build_probe_matches(&message_id, "urn:uuid:a", &[m]).into()]
                    }
                    Mode::Spoof => vec![
                        wsd::build_probe_matches("urn:uuid:not-ours", "urn:uuid:a", &[m]).into(),
                    ],
                    Mode::Split => {
                        let mut a = m.clone();
                        a.scopes = vec!["onvif://www.onvif.org/hardware/HW".into()];
                        a.xaddrs = vec![format!("https://{ip}/onvif/device_service")];
                        a.metadata_version = Some(2);
                        vec![
                            wsd::build_probe_matches(&message_id, "urn:uuid:a", &[m]).into(),
                            wsd::build_probe_matches(&message_id, "urn:uuid:b", &[a]).into(),
                        ]
                    }
                    Mode::Garbage => vec![
                        b"\x00<<<not xml at all".to_vec(),
                        br#"<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>"#.to_vec(),
                    ],
                };
                for a in answers {
                    let _ = sock.send_to(&a, from).await;
                }
            }
        });
        seen
    }

    /// Binds UDP sockets on each of `ips` with one common port.
    async fn bind_same_port(ips: &[Ipv4Addr]) -> (u16, Vec<UdpSocket>) {
        'retry: for _ in 0..20 {
            let first = UdpSocket::bind((ips[0], 0)).await.unwrap();
            let port = first.local_addr().unwrap().port();
            let mut socks = vec![first];
            for ip in &ips[1..] {
                match UdpSocket::bind((*ip, port)).await {
                    Ok(s) => socks.push(s),
                    Err(_) => continue 'retry,
                }
            }
            return (port, socks);
        }
        panic!("could not bind a common port on {ips:?}");
    }

    /// A responder listening on the multicast group (on 127.0.0.1) at a random port.
    fn group_responder() -> (SocketAddrV4, UdpSocket) {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        s.set_reuse_address(true).unwrap();
        s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)).into())
            .unwrap();
        s.join_multicast_v4(&wsd::MULTICAST_V4, &Ipv4Addr::LOCALHOST)
            .unwrap();
        s.set_nonblocking(true).unwrap();
        let sock = UdpSocket::from_std(s.into()).unwrap();
        let port = sock.local_addr().unwrap().port();
        (SocketAddrV4::new(wsd::MULTICAST_V4, port), sock)
    }

    fn sweep_opts(cidr: &str, port: u16) -> DiscoverOptions {
        DiscoverOptions {
            multicast: false,
            cidrs: vec![cidr.parse().unwrap()],
            unicast_port: port,
            timeout: Duration::from_millis(300),
            ..DiscoverOptions::default()
        }
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn unicast_sweep_finds_responders() {
        let (port, mut socks) = bind_same_port(&[ip("127.77.0.1"), ip("127.77.0.2")]).await;
        let seen_b = respond(socks.pop().unwrap(), "urn:uuid:b", Mode::Normal);
        let seen_a = respond(socks.pop().unwrap(), "urn:uuid:a", Mode::Normal);
        let last = Mutex::new(None);
        let report = discover_report(&sweep_opts("127.77.0.0/30", port), &|p| {
            *last.lock().unwrap() = Some(p)
        })
        .await
        .unwrap();
        let mut eprs: Vec<_> = report
            .devices
            .iter()
            .map(|d| d.endpoint_ref.as_str())
            .collect();
        eprs.sort();
        assert_eq!(eprs, ["urn:uuid:a", "urn:uuid:b"]);
        for d in &report.devices {
            assert_eq!(d.via, Via::Unicast);
            assert_eq!(d.from.port(), port);
            assert_eq!(
                d.preferred_xaddr(),
                Some(format!("http://{}/onvif/device_service", d.from.ip()))
            );
        }
        assert_eq!(report.sent, 2);
        assert_eq!(report.replies, 2);
        assert_eq!(
            *last.lock().unwrap(),
            Some(Progress {
                sent: 2,
                total: 2,
                found: 2
            })
        );
        // One MessageID for the sweep, and the Probe asked for cameras.
        assert_eq!(seen_a.lock().unwrap().len(), 1);
        assert_eq!(*seen_a.lock().unwrap(), *seen_b.lock().unwrap());
    }

    /// WS-Discovery retransmission: the repeated multicast Probes carry the
    /// same MessageID, and the repeated answers merge into one device.
    #[tokio::test]
    async fn multicast_probe_repeated_with_same_message_id() {
        let (group, sock) = group_responder();
        let seen = respond(sock, "urn:uuid:mc", Mode::Normal);
        let opts = DiscoverOptions {
            interfaces: vec![Ipv4Addr::LOCALHOST],
            multicast_group: group,
            probe_repeats: 3,
            probe_interval: Duration::from_millis(20),
            timeout: Duration::from_millis(300),
            ..DiscoverOptions::default()
        };
        let report = discover_report(&opts, &|_| {}).await.unwrap();
        assert_eq!(report.devices.len(), 1);
        assert_eq!(report.devices[0].endpoint_ref, "urn:uuid:mc");
        assert_eq!(report.devices[0].via, Via::Multicast);
        assert_eq!(report.devices[0].from.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(report.sent, 3);
        assert_eq!(report.replies, 3);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 3);
        assert!(seen.iter().all(|id| *id == seen[0]));
        assert!(seen[0].starts_with("urn:uuid:"));
    }

    /// Spoofed or unsolicited ProbeMatches (RelatesTo not ours) are dropped
    /// and counted; the genuine answer still counts.
    #[tokio::test]
    async fn spoofed_relates_to_is_dropped() {
        let (port, mut socks) = bind_same_port(&[ip("127.77.1.1"), ip("127.77.1.2")]).await;
        respond(socks.pop().unwrap(), "urn:uuid:spoof", Mode::Spoof);
        respond(socks.pop().unwrap(), "urn:uuid:real", Mode::Normal);
        let report = discover_report(&sweep_opts("127.77.1.0/30", port), &|_| {})
            .await
            .unwrap();
        assert_eq!(report.devices.len(), 1);
        assert_eq!(report.devices[0].endpoint_ref, "urn:uuid:real");
        assert_eq!(report.unsolicited, 1);
        assert_eq!(report.replies, 1);
    }

    /// The same endpoint heard by multicast (3 repeats) and by the unicast
    /// sweep (2 addresses) is one device.
    #[tokio::test]
    async fn duplicates_from_multicast_and_unicast_merge() {
        let (group, sock) = group_responder();
        let seen = respond(sock, "urn:uuid:dup", Mode::Normal);
        let opts = DiscoverOptions {
            interfaces: vec![Ipv4Addr::LOCALHOST],
            multicast_group: group,
            probe_interval: Duration::from_millis(20),
            cidrs: vec!["127.77.2.0/30".parse().unwrap()],
            unicast_port: group.port(),
            timeout: Duration::from_millis(300),
            ..DiscoverOptions::default()
        };
        let report = discover_report(&opts, &|_| {}).await.unwrap();
        assert_eq!(seen.lock().unwrap().len(), 5);
        assert_eq!(report.replies, 5);
        assert_eq!(report.devices.len(), 1);
        assert_eq!(
            report.devices[0].xaddrs,
            vec!["http://127.0.0.1/onvif/device_service"]
        );
        // Distinct MessageIDs for the multicast Probe and the sweep.
        let ids: HashSet<_> = seen.lock().unwrap().iter().cloned().collect();
        assert_eq!(ids.len(), 2);
    }

    /// A reply split over several datagrams (one match each) is merged:
    /// XAddrs and scopes united, highest MetadataVersion kept.
    #[tokio::test]
    async fn split_datagrams_merge() {
        let (port, mut socks) = bind_same_port(&[ip("127.77.3.1")]).await;
        respond(socks.pop().unwrap(), "urn:uuid:split", Mode::Split);
        let report = discover_report(&sweep_opts("127.77.3.1/32", port), &|_| {})
            .await
            .unwrap();
        assert_eq!(report.replies, 2);
        assert_eq!(report.devices.len(), 1);
        let d = &report.devices[0];
        assert_eq!(
            d.xaddrs,
            vec![
                "http://127.77.3.1/onvif/device_service",
                "https://127.77.3.1/onvif/device_service"
            ]
        );
        assert_eq!(d.name().as_deref(), Some("urn:uuid:split"));
        assert_eq!(d.hardware().as_deref(), Some("HW"));
        assert_eq!(d.metadata_version, Some(2));
        assert!(d.is_nvt());
    }

    /// A device answering garbage (or a DTD bomb) does not stop the others.
    #[tokio::test]
    async fn garbage_does_not_break_others() {
        let (port, mut socks) = bind_same_port(&[ip("127.77.4.1"), ip("127.77.4.2")]).await;
        respond(socks.pop().unwrap(), "urn:uuid:good", Mode::Normal);
        respond(socks.pop().unwrap(), "urn:uuid:bad", Mode::Garbage);
        let report = discover_report(&sweep_opts("127.77.4.0/30", port), &|_| {})
            .await
            .unwrap();
        assert_eq!(report.devices.len(), 1);
        assert_eq!(report.devices[0].endpoint_ref, "urn:uuid:good");
        assert_eq!(report.unparsable, 2);
    }

    /// An empty /16 is swept in well under 20 s: ~3.3 s of pacing at the
    /// default 20 000 Probes/s plus the answer timeout (paused clock; the
    /// Probes really go out, to loopback addresses where nobody listens).
    #[tokio::test(start_paused = true)]
    async fn empty_slash16_sweep_is_paced_and_bounded() {
        let holder = UdpSocket::bind(("127.78.0.1", 0)).await.unwrap();
        let port = holder.local_addr().unwrap().port();
        let opts = DiscoverOptions {
            multicast: false,
            cidrs: vec!["127.78.0.0/16".parse().unwrap()],
            unicast_port: port,
            timeout: Duration::from_secs(2),
            ..DiscoverOptions::default()
        };
        let calls = AtomicU64::new(0);
        let start = Instant::now();
        let report = discover_report(&opts, &|_| {
            calls.fetch_add(1, Ordering::Relaxed);
        })
        .await
        .unwrap();
        let elapsed = start.elapsed();
        assert_eq!(report.sent, 65_534);
        assert!(report.devices.is_empty());
        assert!(
            elapsed >= Duration::from_millis(3_270 + 2_000),
            "{elapsed:?}"
        );
        assert!(elapsed < Duration::from_secs(8), "{elapsed:?}");
        // Progress is reported per tick, not per Probe.
        assert!(calls.load(Ordering::Relaxed) < 1_000);
    }

    #[tokio::test]
    async fn nothing_to_probe_is_an_error() {
        let opts = DiscoverOptions {
            multicast: false,
            ..DiscoverOptions::default()
        };
        assert!(matches!(
            discover(&opts, &|_| {}).await,
            Err(WsdIoError::NothingToProbe)
        ));
    }

    /// An explicitly requested interface that does not exist is an error
    /// naming it and the operation.
    #[tokio::test]
    async fn bad_interface_error_names_it() {
        let opts = DiscoverOptions {
            interfaces: vec![ip("192.0.2.77")],
            timeout: Duration::from_millis(10),
            ..DiscoverOptions::default()
        };
        let e = discover(&opts, &|_| {}).await.unwrap_err();
        let text = e.to_string();
        assert!(text.contains("192.0.2.77"), "{text}");
        assert!(matches!(e, WsdIoError::Socket { .. }), "{e:?}");
    }

    /// The futures can be spawned on a multi-threaded runtime.
    #[test]
    fn futures_are_send() {
        fn assert_send<T: Send>(_: &T) {}
        let opts = DiscoverOptions::default();
        let progress = |_: Progress| {};
        assert_send(&discover(&opts, &progress));
        let (tx, _rx) = mpsc::channel(1);
        assert_send(&listen(
            Ipv4Addr::LOCALHOST,
            SocketAddrV4::new(wsd::MULTICAST_V4, 0),
            tx,
            std::future::pending::<()>(),
        ));
    }

    #[test]
    fn pacing_math() {
        assert_eq!(pacing(20_000), (Duration::from_millis(10), 200));
        assert_eq!(pacing(50), (Duration::from_millis(20), 1));
        assert_eq!(pacing(0), (Duration::from_millis(1000), 1));
        assert_eq!(pacing(u32::MAX).1, u64::from(u32::MAX) / 100);
    }

    #[test]
    fn cidr_helpers() {
        let n = |s: &str| s.parse::<ipnet::Ipv4Net>().unwrap();
        assert_eq!(host_count(&n("10.0.0.0/16")), 65_534);
        assert_eq!(host_count(&n("10.0.0.0/31")), 2);
        assert_eq!(host_count(&n("10.0.0.1/32")), 1);
        assert_eq!(host_count(&n("0.0.0.0/0")), (1u64 << 32) - 2);
        assert_eq!(
            distinct_cidrs(&[
                n("10.0.0.0/24"),
                n("10.0.0.7/30"),
                n("10.0.0.0/24"),
                n("10.1.0.0/24")
            ]),
            vec![n("10.0.0.0/24"), n("10.1.0.0/24")]
        );
        for c in ["10.0.0.0/30", "10.0.0.0/31", "10.0.0.9/32"] {
            assert_eq!(n(c).hosts().count() as u64, host_count(&n(c)));
        }
    }

    #[test]
    fn message_ids_compare_leniently() {
        assert_eq!(
            normalise_id(" urn:uuid:ABC-def "),
            normalise_id("uuid:abc-DEF")
        );
        assert_ne!(normalise_id("urn:uuid:a"), normalise_id("urn:uuid:b"));
    }

    /// Hello and Bye on the group become events; Probes from other clients
    /// and garbage are ignored; shutdown ends the listener.
    #[tokio::test]
    async fn listener_reports_hello_and_bye() {
        let port = UdpSocket::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let group = SocketAddrV4::new(wsd::MULTICAST_V4, port);
        let sock = listen_socket(Ipv4Addr::LOCALHOST, group).unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(listen_on(sock, tx, async {
            let _ = stopped.await;
        }));

        let sender = probe_socket(Ipv4Addr::LOCALHOST, 1).unwrap();
        let m = matching("urn:uuid:hello", IpAddr::V4(Ipv4Addr::LOCALHOST));
        let to = SocketAddr::V4(group);
        for msg in [
            wsd::build_probe("urn:uuid:p", None).into_bytes(),
            b"garbage".to_vec(),
            wsd::build_hello("urn:uuid:h", &m).into_bytes(),
            wsd::build_bye("urn:uuid:b", "urn:uuid:hello").into_bytes(),
        ] {
            sender.send_to(&msg, to).await.unwrap();
        }
        let sender_addr = sender.local_addr().unwrap();
        let first = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            first,
            WsdEvent::Hello(Discovered::new(m, sender_addr, Via::Hello))
        );
        let second = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            second,
            WsdEvent::Bye {
                endpoint_ref: "urn:uuid:hello".into(),
                from: sender_addr
            }
        );
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }
}
