//! The GB/T 28181 task: UDP and TCP (`transport`), one registration per platform, the
//! platform's requests answered (MESSAGE queries, SUBSCRIBE, INVITE/ACK/BYE/
//! CANCEL), health changes turned into catalog NOTIFYs and alarms. Pure
//! protocol work is `device_drivers::gb28181`'s; this is the IO around it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use device_drivers::gb28181::dialog::{self, SubKind, Subscription};
use device_drivers::gb28181::manscdp::{self, Charset, Root};
use device_drivers::gb28181::register::{self, Event, Out, RegState, RegisterConfig, Registration};
use device_drivers::gb28181::txn;
use device_drivers::sip::{self, Message, Request};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::catalog::{self, Catalog};
use super::media_api::{Media, MediaError, RelayInfo};
use super::sink::Change;
use crate::base::clock::{Clock, utc_to_ms};
use crate::base::error::{Error, ErrorKind};
use crate::cameras::clock_sync::TimeReference;
use crate::config::gb28181::{Gb28181Section, Transport};
use crate::store::{Store, fmt_time};

#[path = "calls.rs"]
mod calls;
#[path = "transport.rs"]
mod transport;
#[path = "txns.rs"]
mod txns;
#[path = "voice.rs"]
mod voice;
pub use voice::VoiceDeps;

/// How often the catalog is rebuilt to notice adoptions and removals.
const REFRESH: Duration = Duration::from_secs(30);
/// Requests (catalog pages, answers, NOTIFYs) outstanding per UDP platform.
const WINDOW: usize = 8;

/// One platform, as status pages show it.
#[derive(Debug, Clone, Serialize)]
pub struct PlatformStatus {
    /// Configured name.
    pub name: String,
    /// Its SIP id.
    pub server_id: String,
    /// Its address.
    pub address: String,
    /// `udp` or `tcp`.
    pub transport: &'static str,
    /// `idle`, `registering`, `registered`, `rejected`, `unreachable`.
    pub state: &'static str,
    /// The refusal (status and reason) when rejected.
    pub reason: Option<String>,
    /// When the last registration succeeded (UTC, RFC 3339).
    pub registered_at: Option<String>,
    /// When a keepalive was last answered (UTC, RFC 3339).
    pub last_keepalive_at: Option<String>,
    /// Keepalives unanswered in a row now.
    pub missed_keepalives: u32,
    /// The platform's clock minus ours, from the 200 OK `Date` (校时), seconds.
    pub clock_offset_secs: Option<i64>,
    /// Whether it subscribed to catalog changes.
    pub catalog_subscribed: bool,
    /// Whether it subscribed to alarms.
    pub alarm_subscribed: bool,
}

/// What `GET /api/v1/gb28181` shows.
#[derive(Debug, Clone, Serialize)]
pub struct GbStatus {
    /// Our 20-digit id.
    pub id: String,
    /// Where SIP is received.
    pub listen: String,
    /// Entries in the catalog (group, villages, grids, cameras).
    pub catalog_size: usize,
    /// Cameras in it.
    pub cameras: usize,
    /// Each platform.
    pub platforms: Vec<PlatformStatus>,
    /// Live media relays.
    pub relays: Vec<RelayInfo>,
}

struct Shared {
    id: String,
    listen: SocketAddr,
    platforms: Mutex<Vec<PlatformStatus>>,
    sizes: Mutex<(usize, usize)>,
    media: Arc<dyn Media>,
    /// 校时 for the camera clock checks (`time_source = true`).
    time_ref: Option<Arc<TimeReference>>,
    voice: voice::Voice,
}

/// A handle on the running service: status for the API and CLI.
#[derive(Clone)]
pub struct Gb {
    shared: Arc<Shared>,
}

impl Gb {
    /// The status now.
    pub fn status(&self) -> GbStatus {
        let (catalog_size, cameras) = *self.shared.sizes.lock().unwrap_or_else(|p| p.into_inner());
        GbStatus {
            id: self.shared.id.clone(),
            listen: self.shared.listen.to_string(),
            catalog_size,
            cameras,
            platforms: self
                .shared
                .platforms
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            relays: self.shared.media.active(),
        }
    }

    /// The platforms' clock (校时) for the camera clock checks, when
    /// `[gb28181] time_source = true`.
    pub fn time_reference(&self) -> Option<Arc<TimeReference>> {
        self.shared.time_ref.clone()
    }
}

struct Platform {
    name: String,
    addr: SocketAddr,
    charset: Charset,
    reg: Registration,
    subs: Vec<Subscription>,
    /// INVITEs by Call-ID: the request, our tag, answered yet.
    invites: HashMap<String, (Request, String, bool)>,
    /// UDP: always; TCP: while the connection is up (timers run only then).
    link_up: bool,
    /// UDP only: our requests until answered (resends, window); labels are
    /// (destination, what it is for the log).
    txns: txn::Table<(SocketAddr, String)>,
}

struct Svc {
    cfg: Gb28181Section,
    civil8: String,
    store: Store,
    clock: Arc<dyn Clock>,
    net: transport::Transport,
    local: SocketAddr,
    shared: Arc<Shared>,
    platforms: Vec<Platform>,
    catalog: Catalog,
    t0: Instant,
    tags: u64,
    invite_tx: mpsc::Sender<InviteDone>,
}

struct InviteDone {
    platform: usize,
    call_id: String,
    /// Where the INVITE came from: the final answer goes there too.
    from: SocketAddr,
    result: Result<String, MediaError>,
}

/// Our address as the platform at `peer` sees it: `public` if set, else the
/// local address the OS routes to `peer` from, with the socket's port.
fn local_for(bound: SocketAddr, peer: SocketAddr, public: Option<IpAddr>) -> SocketAddr {
    if let Some(ip) = public {
        return SocketAddr::new(ip, bound.port());
    }
    if !bound.ip().is_unspecified() {
        return bound;
    }
    let ip = std::net::UdpSocket::bind(SocketAddr::new(bound.ip(), 0))
        .and_then(|s| s.connect(peer).and_then(|_| s.local_addr()))
        .map(|a| a.ip())
        .unwrap_or(bound.ip());
    SocketAddr::new(ip, bound.port())
}

/// Binds the socket and starts the task. Returns the handle and the
/// sender the health and event sinks feed.
pub async fn spawn(
    cfg: Gb28181Section,
    store: Store,
    media: Arc<dyn Media>,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) -> Result<(Gb, mpsc::Sender<Change>, tokio::task::JoinHandle<()>), Error> {
    let (mut net, bound) = transport::Transport::bind(cfg.listen).await?;
    let t0 = Instant::now();
    let mut platforms = Vec::new();
    let mut statuses = Vec::new();
    for (i, p) in cfg.platforms.iter().enumerate() {
        let password = p
            .resolve_password()
            .map_err(|e| Error::new(ErrorKind::Invalid, e.to_string()))?;
        let local = local_for(bound, p.address, cfg.public_address);
        let rc = RegisterConfig {
            our_id: cfg.id.clone(),
            server_id: p.server_id.clone(),
            domain: p.domain.clone(),
            server: p.address,
            local,
            tcp: p.transport == Transport::Tcp,
            password,
            expires: p.register_expires_secs,
            keepalive: Duration::from_secs(u64::from(p.keepalive_secs)),
            charset: p.charset,
            seed: rand::random::<u64>() ^ i as u64,
        };
        platforms.push(Platform {
            name: p.name.clone(),
            addr: p.address,
            charset: p.charset,
            reg: Registration::new(rc, Duration::ZERO),
            subs: Vec::new(),
            invites: HashMap::new(),
            link_up: p.transport == Transport::Udp,
            txns: txn::Table::new(WINDOW),
        });
        if p.transport == Transport::Tcp {
            net.connect(i, p.address);
        }
        statuses.push(PlatformStatus {
            name: p.name.clone(),
            server_id: p.server_id.clone(),
            address: p.address.to_string(),
            transport: match p.transport {
                Transport::Udp => "udp",
                Transport::Tcp => "tcp",
            },
            state: "idle",
            reason: None,
            registered_at: None,
            last_keepalive_at: None,
            missed_keepalives: 0,
            clock_offset_secs: None,
            catalog_subscribed: false,
            alarm_subscribed: false,
        });
    }
    let shared = Arc::new(Shared {
        id: cfg.id.clone(),
        listen: bound,
        platforms: Mutex::new(statuses),
        sizes: Mutex::new((0, 0)),
        media,
        // Its readings kept in the store for `tgw camera sync-time`.
        time_ref: cfg
            .time_source
            .then(|| Arc::new(TimeReference::persisted(store.clone()))),
        voice: voice::Voice::new(shutdown.clone()),
    });
    let (tx, rx) = mpsc::channel(1024);
    let (invite_tx, invite_rx) = mpsc::channel(64);
    let local = local_for(
        bound,
        SocketAddr::from(([127, 0, 0, 1], 5060)),
        cfg.public_address,
    );
    tracing::info!(listen = %bound, platforms = cfg.platforms.len(), "GB/T 28181 listening");
    let mut svc = Svc {
        civil8: cfg.civil_code8(),
        cfg,
        store,
        clock,
        net,
        local,
        shared: shared.clone(),
        platforms,
        catalog: Catalog::default(),
        t0,
        tags: rand::random::<u32>().into(),
        invite_tx,
    };
    svc.refresh_catalog(false).await;
    let task = tokio::spawn(async move { svc.run(rx, invite_rx, shutdown).await });
    Ok((Gb { shared }, tx, task))
}

impl Svc {
    fn now(&self) -> Duration {
        self.t0.elapsed()
    }

    fn tag(&mut self) -> String {
        self.tags = self.tags.wrapping_add(0x9e37_79b9);
        format!("{:x}", self.tags)
    }

    async fn send(&self, to: SocketAddr, bytes: &[u8]) {
        self.net.send(to, bytes).await;
    }

    async fn run(
        &mut self,
        mut changes: mpsc::Receiver<Change>,
        mut invites: mpsc::Receiver<InviteDone>,
        shutdown: CancellationToken,
    ) {
        let mut buf = vec![0u8; sip::MAX_MESSAGE + 1];
        let mut next_refresh = Instant::now() + REFRESH;
        for i in 0..self.platforms.len() {
            self.tick(i).await;
        }
        loop {
            let next = self
                .platforms
                .iter()
                .filter(|p| p.link_up)
                .flat_map(|p| [p.reg.next_deadline(), p.txns.next_deadline()])
                .flatten()
                .min()
                .map(|d| self.t0 + d)
                .unwrap_or(next_refresh)
                .min(next_refresh);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                m = self.net.recv(&mut buf) => self.inbound(m).await,
                Some(c) = changes.recv() => self.change(c).await,
                Some(d) = invites.recv() => self.invite_done(d).await,
                _ = tokio::time::sleep_until(next) => {
                    if Instant::now() >= next_refresh {
                        next_refresh = Instant::now() + REFRESH;
                        self.refresh_catalog(true).await;
                    }
                    for i in 0..self.platforms.len() {
                        self.tick(i).await;
                    }
                }
            }
        }
        self.unregister_all(&mut buf).await;
    }

    /// Unregisters every registered platform, waiting up to 2 s for answers
    /// (a digest challenge to the unregister included).
    async fn unregister_all(&mut self, buf: &mut [u8]) {
        let now = self.now();
        for i in 0..self.platforms.len() {
            if self.platforms[i].reg.state() == &RegState::Registered {
                let b = self.platforms[i].reg.unregister(now);
                self.send(self.platforms[i].addr, &b).await;
            }
        }
        let until = Instant::now() + Duration::from_secs(2);
        while self.platforms.iter().any(|p| p.reg.unregistering()) {
            let Ok(m) = tokio::time::timeout_at(until, self.net.recv(buf)).await else {
                break;
            };
            let transport::Inbound::Sip { data, from } = m else {
                continue;
            };
            if let Ok(Message::Response(r)) = sip::parse(&data) {
                let now = self.now();
                for i in 0..self.platforms.len() {
                    if self.platforms[i].addr == from {
                        let outs = self.platforms[i].reg.on_response(&r, now);
                        self.apply(i, outs).await;
                    }
                }
            }
        }
        for i in 0..self.platforms.len() {
            self.update_status(i, |s| s.state = "idle");
        }
        self.net.close();
        tracing::info!("GB/T 28181 stopped");
    }

    async fn tick(&mut self, i: usize) {
        if !self.platforms[i].link_up {
            return;
        }
        let now = self.now();
        let outs = self.platforms[i].reg.on_tick(now);
        self.apply(i, outs).await;
        let outs = self.platforms[i].txns.on_tick(now);
        self.txn_outs(i, outs).await;
    }

    fn update_status(&self, i: usize, f: impl FnOnce(&mut PlatformStatus)) {
        let mut s = self
            .shared
            .platforms
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(st) = s.get_mut(i) {
            f(st);
        }
    }

    async fn apply(&mut self, i: usize, outs: Vec<Out>) {
        let now_utc = self.clock.now_utc();
        for o in outs {
            match o {
                Out::Send(b) => {
                    super::metrics::counters().sent(&b);
                    self.send(self.platforms[i].addr, &b).await;
                }
                Out::Event(e) => {
                    super::metrics::counters().event(&e);
                    let name = self.platforms[i].name.clone();
                    match &e {
                        Event::Registered { expires, date } => {
                            let offset = date
                                .as_deref()
                                .and_then(register::parse_date)
                                .map(|t| t - now_utc.unix_timestamp());
                            tracing::info!(platform = %name, expires, clock_offset_secs = ?offset, "GB/T 28181 registered");
                            if let (Some(r), Some(t)) = (
                                &self.shared.time_ref,
                                date.as_deref().and_then(register::parse_date),
                            ) {
                                r.set(t * 1000 - utc_to_ms(now_utc), &name);
                            }
                            self.update_status(i, |s| {
                                s.registered_at = Some(fmt_time(now_utc));
                                s.clock_offset_secs = offset;
                                s.reason = None;
                            });
                        }
                        Event::Rejected { status } => {
                            let reason = match self.platforms[i].reg.state() {
                                RegState::Rejected { status, reason } => {
                                    format!("{status} {reason}")
                                }
                                _ => status.to_string(),
                            };
                            tracing::warn!(platform = %name, status, "GB/T 28181 registration rejected (wrong id or password?); retrying in 5 min");
                            self.update_status(i, |s| s.reason = Some(reason));
                        }
                        Event::Unreachable => {
                            tracing::warn!(platform = %name, "GB/T 28181 platform does not answer REGISTER");
                        }
                        Event::KeepaliveAnswered => {
                            self.update_status(i, |s| {
                                s.last_keepalive_at = Some(fmt_time(now_utc))
                            });
                        }
                        Event::Reregister { missed } => {
                            tracing::warn!(platform = %name, missed, "GB/T 28181 keepalives unanswered; registering again");
                        }
                    }
                }
            }
        }
        let state = self.platforms[i].reg.state().label();
        let missed = self.platforms[i].reg.missed();
        let (cat, alarm) = (
            self.platforms[i]
                .subs
                .iter()
                .any(|s| s.kind == SubKind::Catalog),
            self.platforms[i]
                .subs
                .iter()
                .any(|s| s.kind == SubKind::Alarm),
        );
        self.update_status(i, |s| {
            s.state = state;
            s.missed_keepalives = missed;
            s.catalog_subscribed = cat;
            s.alarm_subscribed = alarm;
        });
    }

    async fn datagram(&mut self, data: &[u8], from: SocketAddr) {
        let msg = match sip::parse(data) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(peer = %from, error = %e, "GB/T 28181: unreadable SIP datagram ignored");
                return;
            }
        };
        if self.shared.voice.route(&msg) {
            return;
        }
        match msg {
            Message::Response(r) => {
                let now = self.now();
                if let Some(key) = txn::key_of_response(&r) {
                    for i in 0..self.platforms.len() {
                        let (ours, outs) = self.platforms[i].txns.on_response(&key, r.status, now);
                        if ours {
                            self.txn_outs(i, outs).await;
                            return;
                        }
                    }
                }
                for i in 0..self.platforms.len() {
                    let outs = self.platforms[i].reg.on_response(&r, now);
                    if !outs.is_empty() {
                        self.apply(i, outs).await;
                    }
                }
            }
            Message::Request(req) => {
                let by_user = req.headers.get("From").and_then(dialog::user_of);
                let Some(i) = self
                    .platforms
                    .iter()
                    .position(|p| p.addr == from)
                    .or_else(|| {
                        self.platforms
                            .iter()
                            .position(|p| Some(p.reg.config().server_id.as_str()) == by_user)
                    })
                else {
                    tracing::warn!(peer = %from, method = %req.method, "GB/T 28181: request from no configured platform ignored");
                    return;
                };
                self.request(i, req, from).await;
            }
        }
    }

    async fn answer(
        &mut self,
        to: SocketAddr,
        req: &Request,
        status: u16,
        body: Option<(&str, Vec<u8>)>,
    ) {
        let tag = self.tag();
        let contact = format!("<sip:{}@{}>", self.cfg.id, self.local);
        let b = dialog::answer(
            req,
            status,
            dialog::reason(status),
            &tag,
            Some(&contact),
            body,
        );
        self.send(to, &b).await;
    }

    async fn request(&mut self, i: usize, req: Request, from: SocketAddr) {
        match req.method.as_str() {
            "MESSAGE" => self.message(i, req, from).await,
            "SUBSCRIBE" => self.subscribe(i, req, from).await,
            "INVITE" => self.invite(i, req, from).await,
            "ACK" => {
                if let Some(id) = req.headers.get("Call-ID") {
                    self.shared.media.ack(id);
                }
            }
            "BYE" => {
                let id = req.headers.get("Call-ID").unwrap_or_default().to_string();
                let known = self.platforms[i].invites.remove(&id).is_some();
                self.shared.media.bye(&id);
                self.answer(from, &req, if known { 200 } else { 481 }, None)
                    .await;
            }
            "CANCEL" => {
                let id = req.headers.get("Call-ID").unwrap_or_default().to_string();
                self.answer(from, &req, 200, None).await;
                if let Some((inv, tag, false)) = self.platforms[i].invites.remove(&id) {
                    let b = dialog::answer(&inv, 487, dialog::reason(487), &tag, None, None);
                    self.send(from, &b).await;
                    self.shared.media.bye(&id);
                }
            }
            "OPTIONS" | "NOTIFY" | "INFO" => self.answer(from, &req, 200, None).await,
            _ => self.answer(from, &req, 405, None).await,
        }
    }

    fn local_time(&self) -> String {
        let t = self.clock.now_utc().to_offset(time::macros::offset!(+8));
        let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
        t.format(&f).unwrap_or_default()
    }

    async fn message(&mut self, i: usize, req: Request, from: SocketAddr) {
        let m = match manscdp::parse(&req.body) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(platform = %self.platforms[i].name, error = %e, "GB/T 28181: unreadable MANSCDP body");
                self.answer(from, &req, 400, None).await;
                return;
            }
        };
        self.answer(from, &req, 200, None).await;
        let cs = self.platforms[i].charset;
        let id = self.cfg.id.clone();
        let bodies: Vec<Vec<u8>> = match (m.root, m.cmd_type.as_str()) {
            (Root::Query, "Catalog") => {
                self.refresh_catalog(true).await;
                manscdp::catalog_pages(
                    m.sn,
                    &id,
                    &self.catalog.items,
                    self.cfg.catalog_page_size,
                    cs,
                )
            }
            (Root::Query, "DeviceInfo") => {
                let info = manscdp::DeviceInfo {
                    name: &self.store.township_row().map(|t| t.1).unwrap_or_default(),
                    manufacturer: "Township Gateway",
                    model: "tgw",
                    firmware: env!("CARGO_PKG_VERSION"),
                    channels: self.catalog.channels.len(),
                };
                vec![manscdp::device_info(m.sn, &m.device_id, &info, cs)]
            }
            (Root::Query, "DeviceStatus") => {
                let online = m.device_id == id
                    || self
                        .catalog
                        .channels
                        .get(&m.device_id)
                        .is_some_and(|c| c.online);
                vec![manscdp::device_status(
                    m.sn,
                    &m.device_id,
                    online,
                    &self.local_time(),
                    cs,
                )]
            }
            (Root::Notify, "Broadcast") => {
                self.broadcast(i, &m).await;
                Vec::new()
            }
            _ => Vec::new(),
        };
        if m.cmd_type == "Catalog" {
            super::metrics::counters().catalog("response", bodies.len() as u64);
        }
        for b in bodies {
            let (_, bytes) = self.platforms[i].reg.message(b, manscdp::CONTENT_TYPE);
            let to = self.platforms[i].addr;
            let what = format!("{} SN {}", m.cmd_type, m.sn);
            self.send_request(i, to, bytes, what).await;
        }
    }

    /// Rebuilds the catalog from the store; with `notify`, subscribers hear
    /// about cameras added, removed, or whose status changed.
    async fn refresh_catalog(&mut self, notify: bool) {
        let store = self.store.clone();
        let civil8 = self.civil8.clone();
        let built = tokio::task::spawn_blocking(move || catalog::build(&store, &civil8)).await;
        let new = match built {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "GB/T 28181: catalog not built");
                return;
            }
            Err(_) => return,
        };
        let mut changes = Vec::new();
        if notify {
            for it in new
                .items
                .iter()
                .filter(|i| new.channels.contains_key(&i.device_id))
            {
                let ev = match self.catalog.channels.get(&it.device_id) {
                    None => Some("ADD"),
                    Some(old) if old.online != it.online => {
                        Some(if it.online { "ON" } else { "OFF" })
                    }
                    _ => None,
                };
                if let Some(ev) = ev {
                    let mut c = it.clone();
                    c.event = Some(ev);
                    changes.push(c);
                }
            }
            for (gb, _) in self
                .catalog
                .channels
                .iter()
                .filter(|(g, _)| !new.channels.contains_key(*g))
            {
                if let Some(it) = self.catalog.items.iter().find(|i| &i.device_id == gb) {
                    let mut c = it.clone();
                    c.event = Some("DEL");
                    changes.push(c);
                }
            }
        }
        *self.shared.sizes.lock().unwrap_or_else(|p| p.into_inner()) =
            (new.items.len(), new.channels.len());
        self.catalog = new;
        if !changes.is_empty() {
            let id = self.cfg.id.clone();
            self.notify_all(SubKind::Catalog, |sn, cs| {
                manscdp::catalog_notify(sn, &id, &changes, cs)
            })
            .await;
        }
    }

    async fn change(&mut self, c: Change) {
        match c {
            Change::Verdict { device_id, online } => {
                if self.catalog.item_of(&device_id).is_none() {
                    // Not in the tree yet (just adopted): the rebuild adds it,
                    // with the status the store holds; this verdict follows
                    // if that differs.
                    self.refresh_catalog(true).await;
                }
                let Some(item) = self.catalog.item_of(&device_id).cloned() else {
                    return;
                };
                if item.online == online {
                    return;
                }
                if let Some(ch) = self.catalog.channels.get_mut(&item.device_id) {
                    ch.online = online;
                }
                if let Some(it) = self
                    .catalog
                    .items
                    .iter_mut()
                    .find(|i| i.device_id == item.device_id)
                {
                    it.online = online;
                }
                let mut ev = item.clone();
                ev.online = online;
                ev.event = Some(if online { "ON" } else { "OFF" });
                let id = self.cfg.id.clone();
                self.notify_all(SubKind::Catalog, |sn, cs| {
                    manscdp::catalog_notify(sn, &id, std::slice::from_ref(&ev), cs)
                })
                .await;
                if !online {
                    self.alarm(&item.device_id, 2, 1, "设备离线 offline").await;
                }
            }
            Change::Event { device_id, kind } => {
                let Some(gb) = self
                    .catalog
                    .item_of(&device_id)
                    .map(|i| i.device_id.clone())
                else {
                    return;
                };
                match kind {
                    "video-loss" => self.alarm(&gb, 2, 1, "视频丢失 video loss").await,
                    "tamper" => self.alarm(&gb, 2, 2, "防拆报警 tamper").await,
                    _ => {}
                }
            }
        }
    }

    async fn alarm(&mut self, channel_id: &str, method: u8, alarm_type: u8, description: &str) {
        let time = self.local_time();
        let alarm = manscdp::Alarm {
            channel_id,
            priority: 2,
            method,
            alarm_type,
            time: &time,
            description,
        };
        self.notify_all(SubKind::Alarm, |sn, cs| {
            manscdp::alarm_notify(sn, &alarm, cs)
        })
        .await;
    }
}
