//! A simulated upper GB/T 28181 platform (the county's 雪亮工程 video
//! platform) for the e2e suite: the gateway registers to it, over UDP.
//!
//! - `REGISTER`: challenged (401, MD5 digest, realm = the domain), checked
//!   against the password ([`crate::digest::verify`]): 200 with `Date`
//!   (校时, China time, shifted by [`PlatformConfig::clock_offset_secs`]) and
//!   `Expires`, else 403. `Expires: 0` is counted as an unregister.
//! - `MESSAGE` Keepalive: 200 (unless the fault says drop); after each
//!   registration a `Query`/`Catalog` goes to where the gateway was seen
//!   from; the `Response`/`Catalog` pages are answered 200 and counted.
//! - Every response carries the gateway's `Via` with `received` and `rport`
//!   of the source address seen, as platforms behind or in front of NAT do.
//!
//! Faults: [`Faults::drop_keepalive_answers`] (the gateway must register
//! again after 3 misses), and [`PlatformConfig::nat`]: the gateway talks to
//! a relay playing its NAT, which forwards from another port (the platform
//! sees that port, not the one in `Via`, and answers there);
//! [`GbPlatform::rebind_nat`] moves the mapping to a new port, as a 4G NAT
//! does when a mapping expires.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use device_drivers::onvif_client::{SystemClock, WallClock};
use device_drivers::sip::{self, Headers, Message, Request, Response};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How the platform is set up.
#[derive(Debug, Clone)]
pub struct PlatformConfig {
    /// Its 20-digit id.
    pub server_id: String,
    /// Its SIP domain (the digest realm).
    pub domain: String,
    /// The gateway's 20-digit id (the digest user name).
    pub device_id: String,
    /// The registration password.
    pub password: String,
    /// Its clock minus the real one, seconds (the `Date` it sends).
    pub clock_offset_secs: i64,
    /// The gateway reaches it through a NAT-like relay.
    pub nat: bool,
}

/// Faults that can change while it runs.
#[derive(Debug, Default)]
pub struct Faults {
    /// Keepalive MESSAGEs go unanswered.
    pub drop_keepalive_answers: AtomicBool,
}

/// What the platform saw, for assertions.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// REGISTERs answered 200 with a non-zero expiry.
    pub registrations: u32,
    /// REGISTERs refused (403).
    pub refused: u32,
    /// REGISTERs with `Expires: 0` answered 200.
    pub unregistrations: u32,
    /// Keepalives received (answered or not).
    pub keepalives: u32,
    /// Catalog queries sent.
    pub catalog_queries: u32,
    /// Catalog response pages received.
    pub catalog_pages: u32,
    /// `SumNum` of the last catalog page.
    pub catalog_sum: Option<u32>,
    /// Items received over all catalog pages.
    pub catalog_items: u32,
    /// Where the gateway's messages came from, last.
    pub source: Option<SocketAddr>,
    /// Every distinct source seen, in order.
    pub sources: Vec<SocketAddr>,
    /// The `Via` sent-by of the last gateway request.
    pub via_sent_by: Option<String>,
}

enum Cmd {
    QueryCatalog,
}

/// A running platform.
pub struct GbPlatform {
    /// Where the gateway must send (the relay when `nat`).
    pub address: SocketAddr,
    /// The platform's own socket.
    pub platform_address: SocketAddr,
    /// Faults to flip while it runs.
    pub faults: Arc<Faults>,
    seen: Arc<Mutex<Seen>>,
    cmd: mpsc::Sender<Cmd>,
    rebind: Option<mpsc::Sender<()>>,
    stop: CancellationToken,
}

impl Drop for GbPlatform {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn lock(s: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

impl GbPlatform {
    /// Binds on 127.0.0.1 (ephemeral ports) and starts.
    pub async fn start(cfg: PlatformConfig) -> anyhow::Result<GbPlatform> {
        let sock = UdpSocket::bind("127.0.0.1:0").await?;
        let platform_address = sock.local_addr()?;
        let stop = CancellationToken::new();
        let (address, rebind) = if cfg.nat {
            let (addr, tx) = Nat::start(platform_address, stop.clone()).await?;
            (addr, Some(tx))
        } else {
            (platform_address, None)
        };
        let seen = Arc::new(Mutex::new(Seen::default()));
        let faults = Arc::new(Faults::default());
        let (cmd, cmd_rx) = mpsc::channel(8);
        let mut p = Platform {
            secret: format!("{:016x}", rand::random::<u64>()),
            cfg,
            sock,
            seen: seen.clone(),
            faults: faults.clone(),
            n: 0,
        };
        let s = stop.clone();
        tokio::spawn(async move { p.run(cmd_rx, s).await });
        Ok(GbPlatform {
            address,
            platform_address,
            faults,
            seen,
            cmd,
            rebind,
            stop,
        })
    }

    /// What it saw so far.
    pub fn seen(&self) -> Seen {
        lock(&self.seen).clone()
    }

    /// Sends a Catalog query to where the gateway was last seen from.
    pub async fn query_catalog(&self) {
        let _ = self.cmd.send(Cmd::QueryCatalog).await;
    }

    /// NAT only: the mapping moves to a new outside port.
    pub async fn rebind_nat(&self) {
        if let Some(r) = &self.rebind {
            let _ = r.send(()).await;
        }
    }
}

struct Platform {
    cfg: PlatformConfig,
    sock: UdpSocket,
    seen: Arc<Mutex<Seen>>,
    faults: Arc<Faults>,
    secret: String,
    n: u64,
}

/// `Via` with `received`/`rport` of the source it came from (RFC 3581).
fn via_received(via: &str, from: SocketAddr) -> String {
    let mut parts: Vec<String> = via
        .split(';')
        .filter(|p| {
            let k = p.split('=').next().unwrap_or("").trim();
            !k.eq_ignore_ascii_case("received") && !k.eq_ignore_ascii_case("rport")
        })
        .map(str::to_string)
        .collect();
    parts.push(format!("received={}", from.ip()));
    parts.push(format!("rport={}", from.port()));
    parts.join(";")
}

fn count(hay: &[u8], needle: &str) -> u32 {
    String::from_utf8_lossy(hay).matches(needle).count() as u32
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let a = text.find(open)? + open.len();
    let b = text[a..].find(close)? + a;
    Some(&text[a..b])
}

impl Platform {
    async fn run(&mut self, mut cmds: mpsc::Receiver<Cmd>, stop: CancellationToken) {
        let mut buf = vec![0u8; sip::MAX_MESSAGE];
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                Some(c) = cmds.recv() => match c {
                    Cmd::QueryCatalog => self.query_catalog().await,
                },
                r = self.sock.recv_from(&mut buf) => {
                    let Ok((n, from)) = r else { continue };
                    let Ok(msg) = sip::parse(&buf[..n]) else {
                        tracing::debug!(peer = %from, "gb platform: unreadable datagram");
                        continue;
                    };
                    if let Message::Request(req) = msg {
                        self.request(req, from).await;
                    }
                }
            }
        }
    }

    fn note_source(&self, req: &Request, from: SocketAddr) {
        let mut s = lock(&self.seen);
        s.source = Some(from);
        if !s.sources.contains(&from) {
            s.sources.push(from);
        }
        s.via_sent_by = req
            .headers
            .get("Via")
            .and_then(|v| v.split(';').next())
            .and_then(|v| v.split_whitespace().nth(1))
            .map(str::to_string);
    }

    async fn answer(&self, req: &Request, from: SocketAddr, status: u16, extra: &[(&str, String)]) {
        let reason = match status {
            200 => "OK",
            401 => "Unauthorized",
            403 => "Forbidden",
            _ => "Error",
        };
        let mut r = Response::to_request(req, status, reason, Some("simplat"));
        let vias: Vec<String> = r.headers.get_all("Via").map(str::to_string).collect();
        r.headers.0.retain(|(k, _)| !k.eq_ignore_ascii_case("Via"));
        for (i, v) in vias.iter().enumerate() {
            let v = if i == 0 {
                via_received(v, from)
            } else {
                v.clone()
            };
            r.headers.0.insert(i, ("Via".into(), v));
        }
        for (k, v) in extra {
            r.headers.push(k, v.clone());
        }
        let _ = self.sock.send_to(&r.to_bytes(), from).await;
    }

    async fn request(&mut self, req: Request, from: SocketAddr) {
        self.note_source(&req, from);
        match req.method.as_str() {
            "REGISTER" => self.register(req, from).await,
            "MESSAGE" => {
                let body = String::from_utf8_lossy(&req.body).into_owned();
                if body.contains("<CmdType>Keepalive</CmdType>") {
                    lock(&self.seen).keepalives += 1;
                    if self.faults.drop_keepalive_answers.load(Ordering::Relaxed) {
                        return;
                    }
                } else if body.contains("<CmdType>Catalog</CmdType>") && body.contains("<Response")
                {
                    let mut s = lock(&self.seen);
                    s.catalog_pages += 1;
                    s.catalog_items += count(&req.body, "<Item>");
                    s.catalog_sum =
                        between(&body, "<SumNum>", "</SumNum>").and_then(|v| v.trim().parse().ok());
                }
                self.answer(&req, from, 200, &[]).await;
            }
            _ => self.answer(&req, from, 200, &[]).await,
        }
    }

    async fn register(&mut self, req: Request, from: SocketAddr) {
        let now = SystemClock.now_utc();
        let expires = req
            .headers
            .get("Expires")
            .and_then(|e| e.trim().parse::<u32>().ok())
            .unwrap_or(3600);
        let Some(auth) = req.headers.get("Authorization") else {
            let nonce = crate::digest::make_nonce(&self.secret, now.unix_timestamp());
            let chal = format!(
                "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm=MD5",
                self.cfg.domain
            );
            self.answer(&req, from, 401, &[("WWW-Authenticate", chal)])
                .await;
            return;
        };
        let ok = crate::digest::verify(
            auth,
            "REGISTER",
            &req.uri,
            &self.cfg.device_id,
            &self.cfg.password,
            &self.cfg.domain,
            &self.secret,
            now.unix_timestamp(),
        );
        if let Err(e) = ok {
            tracing::info!(error = %e, "gb platform: REGISTER refused");
            lock(&self.seen).refused += 1;
            self.answer(&req, from, 403, &[]).await;
            return;
        }
        let date = (now + time::Duration::seconds(self.cfg.clock_offset_secs))
            .to_offset(time::macros::offset!(+8));
        let fmt = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]"
        );
        let date = date.format(&fmt).unwrap_or_default();
        self.answer(
            &req,
            from,
            200,
            &[("Date", date), ("Expires", expires.to_string())],
        )
        .await;
        if expires == 0 {
            lock(&self.seen).unregistrations += 1;
            return;
        }
        lock(&self.seen).registrations += 1;
        self.query_catalog().await;
    }

    async fn query_catalog(&mut self) {
        let Some(to) = lock(&self.seen).source else {
            return;
        };
        self.n += 1;
        let n = self.n;
        let local = self.sock.local_addr().ok();
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Query>\r\n<CmdType>Catalog</CmdType>\r\n<SN>{n}</SN>\r\n<DeviceID>{}</DeviceID>\r\n</Query>\r\n",
            self.cfg.device_id
        );
        let mut h = Headers::default();
        h.push(
            "Via",
            format!(
                "SIP/2.0/UDP {};rport;branch=z9hG4bKsimplat{n}",
                local.map(|a| a.to_string()).unwrap_or_default()
            ),
        );
        h.push("Max-Forwards", "70");
        h.push(
            "From",
            format!(
                "<sip:{}@{}>;tag=simq{n}",
                self.cfg.server_id, self.cfg.domain
            ),
        );
        h.push(
            "To",
            format!("<sip:{}@{}>", self.cfg.device_id, self.cfg.domain),
        );
        h.push("Call-ID", format!("simplat-q{n}"));
        h.push("CSeq", "1 MESSAGE");
        h.push("Content-Type", "Application/MANSCDP+xml");
        let req = Request {
            method: "MESSAGE".into(),
            uri: format!("sip:{}@{}", self.cfg.device_id, self.cfg.domain),
            headers: h,
            body: body.into_bytes(),
        };
        lock(&self.seen).catalog_queries += 1;
        let _ = self.sock.send_to(&req.to_bytes(), to).await;
    }
}

/// The gateway's NAT: the gateway sends to `inside`; datagrams leave from
/// an `outside` socket towards the platform, and the platform's datagrams to
/// `outside` come back to the gateway from `inside`.
struct Nat;

impl Nat {
    async fn start(
        platform: SocketAddr,
        stop: CancellationToken,
    ) -> anyhow::Result<(SocketAddr, mpsc::Sender<()>)> {
        let inside = UdpSocket::bind("127.0.0.1:0").await?;
        let addr = inside.local_addr()?;
        let (tx, mut rx) = mpsc::channel::<()>(4);
        tokio::spawn(async move {
            let mut outside = match UdpSocket::bind("127.0.0.1:0").await {
                Ok(s) => s,
                Err(_) => return,
            };
            let mut gateway: Option<SocketAddr> = None;
            let mut a = vec![0u8; sip::MAX_MESSAGE];
            let mut b = vec![0u8; sip::MAX_MESSAGE];
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    Some(()) = rx.recv() => {
                        if let Ok(s) = UdpSocket::bind("127.0.0.1:0").await {
                            outside = s;
                        }
                    }
                    r = inside.recv_from(&mut a) => {
                        if let Ok((n, from)) = r {
                            gateway = Some(from);
                            let _ = outside.send_to(&a[..n], platform).await;
                        }
                    }
                    r = outside.recv_from(&mut b) => {
                        if let (Ok((n, _)), Some(g)) = (r, gateway) {
                            let _ = inside.send_to(&b[..n], g).await;
                        }
                    }
                }
            }
        });
        Ok((addr, tx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `received`/`rport` replace whatever the Via had.
    #[test]
    fn via_gets_the_source() {
        let from: SocketAddr = "10.1.2.3:40000".parse().expect("addr");
        let v = via_received("SIP/2.0/UDP 192.168.1.5:5060;rport;branch=z9hG4bKx", from);
        assert_eq!(
            v,
            "SIP/2.0/UDP 192.168.1.5:5060;branch=z9hG4bKx;received=10.1.2.3;rport=40000"
        );
    }
}
