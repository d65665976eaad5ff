//! Registration and keepalive with one upper platform, as a pure state
//! machine: time comes in as a `Duration` since an arbitrary origin, bytes go
//! out as [`Out::Send`]; no sockets, no clock.
//!
//! - REGISTER, answered 401/407 → once more with a digest (MD5 or SHA-256,
//!   whichever the challenge names); a second challenge for the same
//!   credentials (or a 403) → [`RegState::Rejected`], retried only after
//!   [`REJECTED_RETRY`] so a wrong password is no retry storm.
//! - 200 → registered; refresh at 80 % of the granted expiry; the 200's
//!   `Date` (校时) is handed up in [`Event::Registered`].
//! - A Keepalive MESSAGE every `keepalive`; three unanswered in a row (or a
//!   4xx/5xx answer) → a fresh REGISTER.
//! - No answer to a REGISTER within [`REGISTER_TIMEOUT`] (retransmitted over
//!   UDP from T1 doubling to 4 s) → [`RegState::Unreachable`], retried after
//!   a backoff doubling from 5 s to 5 min.

use std::net::SocketAddr;
use std::time::Duration;

use super::manscdp::{self, Charset};
use crate::sip::{self, Headers, Message, Request, Response};

/// How long a REGISTER may go unanswered.
pub const REGISTER_TIMEOUT: Duration = Duration::from_secs(32);
/// When a rejected registration is tried again.
pub const REJECTED_RETRY: Duration = Duration::from_secs(300);
/// Keepalives unanswered in a row before registering again.
pub const MAX_MISSED: u32 = 3;

/// Where and as whom to register.
#[derive(Clone, PartialEq, Eq)]
pub struct RegisterConfig {
    /// Our 20-digit id.
    pub our_id: String,
    /// The platform's 20-digit id.
    pub server_id: String,
    /// The platform's SIP domain (10 digits usually).
    pub domain: String,
    /// The platform's address (Request-URI host for digest `uri`).
    pub server: SocketAddr,
    /// Our address as put in Via and Contact.
    pub local: SocketAddr,
    /// `UDP` or `TCP` (the Via transport); retransmits only over UDP.
    pub tcp: bool,
    /// The registration password.
    pub password: String,
    /// Requested expiry.
    pub expires: u32,
    /// Keepalive interval.
    pub keepalive: Duration,
    /// Body charset.
    pub charset: Charset,
    /// Seeds Call-IDs, tags and branches (random in the daemon, fixed in tests).
    pub seed: u64,
}

impl std::fmt::Debug for RegisterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterConfig")
            .field("our_id", &self.our_id)
            .field("server_id", &self.server_id)
            .field("server", &self.server)
            .field("password", &"***")
            .finish_non_exhaustive()
    }
}

/// Where a registration stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RegState {
    /// Not started, or unregistered.
    Idle,
    /// A REGISTER is out.
    Registering,
    /// Registered.
    Registered,
    /// The platform refused our credentials or id.
    Rejected {
        /// The last status.
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// The platform did not answer.
    Unreachable,
}

impl RegState {
    /// A short label.
    pub fn label(&self) -> &'static str {
        match self {
            RegState::Idle => "idle",
            RegState::Registering => "registering",
            RegState::Registered => "registered",
            RegState::Rejected { .. } => "rejected",
            RegState::Unreachable => "unreachable",
        }
    }
}

/// Something the IO side must know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Registered for `expires` seconds; `date` is the 200's Date header.
    Registered {
        /// Granted expiry.
        expires: u32,
        /// The `Date` header (校时), as sent.
        date: Option<String>,
    },
    /// The platform refused us.
    Rejected {
        /// Status.
        status: u16,
    },
    /// No answer to REGISTER.
    Unreachable,
    /// A keepalive was answered 200.
    KeepaliveAnswered,
    /// Keepalives unanswered in a row, now registering again.
    Reregister {
        /// How many were missed.
        missed: u32,
    },
}

/// Output of the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// Bytes for the platform.
    Send(Vec<u8>),
    /// A state change.
    Event(Event),
}

/// One registration.
#[derive(Debug)]
pub struct Registration {
    cfg: RegisterConfig,
    state: RegState,
    call_id: String,
    from_tag: String,
    cseq: u32,
    counter: u64,
    /// The REGISTER out now: bytes, when first sent, next retransmit, the
    /// gap before it.
    pending: Option<(Vec<u8>, Duration, Duration, Duration)>,
    /// A digest was sent in the pending REGISTER.
    authed: bool,
    /// When to do the next REGISTER (refresh or retry).
    next_register: Option<Duration>,
    next_keepalive: Option<Duration>,
    /// Call-ID of the unanswered keepalive.
    keepalive_out: Option<String>,
    missed: u32,
    failures: u32,
    sn: u32,
}

impl Registration {
    /// A registration that starts at once (the first [`Registration::on_tick`]).
    pub fn new(cfg: RegisterConfig, now: Duration) -> Registration {
        let call_id = format!("{:016x}reg@tgw", cfg.seed);
        let from_tag = format!("{:08x}", cfg.seed as u32 ^ 0x5a5a_5a5a);
        Registration {
            cfg,
            state: RegState::Idle,
            call_id,
            from_tag,
            cseq: 0,
            counter: 0,
            pending: None,
            authed: false,
            next_register: Some(now),
            next_keepalive: None,
            keepalive_out: None,
            missed: 0,
            failures: 0,
            sn: 0,
        }
    }

    /// Where it stands.
    pub fn state(&self) -> &RegState {
        &self.state
    }

    /// A REGISTER (or the unregister) is still unanswered.
    pub fn unregistering(&self) -> bool {
        self.pending.is_some() && self.state == RegState::Idle
    }

    /// Keepalives unanswered in a row now.
    pub fn missed(&self) -> u32 {
        self.missed
    }

    /// The configuration.
    pub fn config(&self) -> &RegisterConfig {
        &self.cfg
    }

    /// The next time [`Registration::on_tick`] has work.
    pub fn next_deadline(&self) -> Option<Duration> {
        [
            self.pending.as_ref().map(|p| p.2),
            self.next_register.filter(|_| self.pending.is_none()),
            self.next_keepalive
                .filter(|_| self.state == RegState::Registered),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn uniq(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// A branch for a new transaction.
    pub fn branch(&mut self) -> String {
        let n = self.uniq();
        format!("z9hG4bK{:x}{n:x}", self.cfg.seed)
    }

    fn via(&mut self) -> String {
        let t = if self.cfg.tcp { "TCP" } else { "UDP" };
        let branch = self.branch();
        format!("SIP/2.0/{t} {};rport;branch={branch}", self.cfg.local)
    }

    fn server_uri(&self) -> String {
        format!("sip:{}@{}", self.cfg.server_id, self.cfg.domain)
    }

    fn register_request(&mut self, expires: u32, auth: Option<(&str, String)>) -> Vec<u8> {
        self.cseq += 1;
        let mut h = Headers::default();
        h.push("Via", self.via());
        h.push("Max-Forwards", "70");
        let me = format!("<sip:{}@{}>", self.cfg.our_id, self.cfg.domain);
        h.push("From", format!("{me};tag={}", self.from_tag));
        h.push("To", me);
        h.push("Call-ID", self.call_id.clone());
        h.push("CSeq", format!("{} REGISTER", self.cseq));
        h.push(
            "Contact",
            format!("<sip:{}@{}>", self.cfg.our_id, self.cfg.local),
        );
        if let Some((name, value)) = auth {
            h.push(name, value);
        }
        h.push("User-Agent", "tgw");
        h.push("Expires", expires.to_string());
        Request {
            method: "REGISTER".into(),
            uri: format!("sip:{}@{}", self.cfg.server_id, self.cfg.domain),
            headers: h,
            body: Vec::new(),
        }
        .to_bytes()
    }

    fn send_register(&mut self, now: Duration, bytes: Vec<u8>) -> Out {
        let first_retry = if self.cfg.tcp {
            now + REGISTER_TIMEOUT
        } else {
            now + sip::T1
        };
        self.pending = Some((bytes.clone(), now, first_retry, sip::T1));
        // A refresh keeps the registration we have until it is answered.
        if self.state != RegState::Registered {
            self.state = RegState::Registering;
        }
        Out::Send(bytes)
    }

    /// Timers: REGISTER (first, refresh, retry), retransmits, keepalives.
    pub fn on_tick(&mut self, now: Duration) -> Vec<Out> {
        let mut out = Vec::new();
        if let Some((bytes, sent, retry, gap)) = self.pending.clone()
            && now >= retry
        {
            if now.saturating_sub(sent) >= REGISTER_TIMEOUT {
                self.pending = None;
                self.state = RegState::Unreachable;
                self.failures += 1;
                let backoff = Duration::from_secs(5u64 << self.failures.min(6).saturating_sub(1))
                    .min(Duration::from_secs(300));
                self.next_register = Some(now + backoff);
                self.next_keepalive = None;
                out.push(Out::Event(Event::Unreachable));
            } else {
                let gap = (gap * 2).min(Duration::from_secs(4));
                let next = (retry + gap).min(sent + REGISTER_TIMEOUT);
                self.pending = Some((bytes.clone(), sent, next, gap));
                out.push(Out::Send(bytes));
            }
        }
        if self.next_register.is_some_and(|t| now >= t) && self.pending.is_none() {
            self.next_register = None;
            self.authed = false;
            let b = self.register_request(self.cfg.expires, None);
            out.push(self.send_register(now, b));
        }
        if self.next_keepalive.is_some_and(|t| now >= t) && self.state == RegState::Registered {
            if self.keepalive_out.is_some() {
                self.missed += 1;
            }
            if self.missed >= MAX_MISSED {
                let missed = self.missed;
                self.missed = 0;
                self.keepalive_out = None;
                self.next_keepalive = None;
                out.push(Out::Event(Event::Reregister { missed }));
                self.state = RegState::Registering;
                self.authed = false;
                let b = self.register_request(self.cfg.expires, None);
                out.push(self.send_register(now, b));
            } else {
                self.next_keepalive = Some(now + self.cfg.keepalive);
                self.sn = self.sn.wrapping_add(1);
                let body = manscdp::keepalive(self.sn, &self.cfg.our_id, self.cfg.charset);
                let (call_id, bytes) = self.message(body, manscdp::CONTENT_TYPE);
                self.keepalive_out = Some(call_id);
                out.push(Out::Send(bytes));
            }
        }
        out
    }

    /// A MESSAGE to the platform (out of dialog); returns its Call-ID.
    pub fn message(&mut self, body: Vec<u8>, content_type: &str) -> (String, Vec<u8>) {
        let n = self.uniq();
        let call_id = format!("{:x}m{n:x}@tgw", self.cfg.seed);
        let mut h = Headers::default();
        h.push("Via", self.via());
        h.push("Max-Forwards", "70");
        h.push(
            "From",
            format!(
                "<sip:{}@{}>;tag={:x}{n:x}",
                self.cfg.our_id, self.cfg.domain, self.cfg.seed as u32
            ),
        );
        h.push("To", format!("<{}>", self.server_uri()));
        h.push("Call-ID", call_id.clone());
        h.push("CSeq", "20 MESSAGE");
        h.push("Content-Type", content_type);
        h.push("User-Agent", "tgw");
        let bytes = Request {
            method: "MESSAGE".into(),
            uri: self.server_uri(),
            headers: h,
            body,
        }
        .to_bytes();
        (call_id, bytes)
    }

    /// The next SN for a notify we start (alarms, keepalives).
    pub fn next_sn(&mut self) -> u32 {
        self.sn = self.sn.wrapping_add(1);
        self.sn
    }

    /// A response from the platform. Responses to other transactions (our
    /// query answers) are ignored.
    pub fn on_response(&mut self, resp: &Response, now: Duration) -> Vec<Out> {
        let call_id = resp.headers.get("Call-ID").unwrap_or_default();
        let Some((cseq, method)) = resp.cseq() else {
            return Vec::new();
        };
        if method.eq_ignore_ascii_case("MESSAGE") {
            if self.keepalive_out.as_deref() == Some(call_id) {
                if resp.status < 200 {
                    return Vec::new();
                }
                self.keepalive_out = None;
                if resp.status < 300 {
                    self.missed = 0;
                    return vec![Out::Event(Event::KeepaliveAnswered)];
                }
                // The platform no longer knows us: register again now.
                self.next_keepalive = None;
                self.state = RegState::Registering;
                self.authed = false;
                let b = self.register_request(self.cfg.expires, None);
                return vec![self.send_register(now, b)];
            }
            return Vec::new();
        }
        if !method.eq_ignore_ascii_case("REGISTER")
            || call_id != self.call_id
            || cseq != self.cseq
            || self.pending.is_none()
        {
            return Vec::new();
        }
        match resp.status {
            100..=199 => {
                // Provisional: stop retransmitting, keep the timeout.
                if let Some(p) = &mut self.pending {
                    p.2 = p.1 + REGISTER_TIMEOUT;
                }
                Vec::new()
            }
            200..=299 => {
                self.pending = None;
                self.failures = 0;
                let expires = granted_expires(resp).unwrap_or(self.cfg.expires);
                if expires == 0 {
                    self.state = RegState::Idle;
                    return Vec::new();
                }
                self.state = RegState::Registered;
                self.missed = 0;
                self.keepalive_out = None;
                self.next_register = Some(now + Duration::from_secs(u64::from(expires)) * 4 / 5);
                self.next_keepalive = Some(now);
                vec![Out::Event(Event::Registered {
                    expires,
                    date: resp.headers.get("Date").map(str::to_string),
                })]
            }
            401 | 407 if !self.authed || stale(resp) => {
                let (chal_name, auth_name) = if resp.status == 401 {
                    ("WWW-Authenticate", "Authorization")
                } else {
                    ("Proxy-Authenticate", "Proxy-Authorization")
                };
                let Some(chal) = pick_challenge(resp.headers.get_all(chal_name)) else {
                    return self.reject(resp, now);
                };
                let uri = self.server_uri();
                match sip::digest_authorization(
                    chal,
                    "REGISTER",
                    &uri,
                    &self.cfg.our_id,
                    &self.cfg.password,
                ) {
                    Ok(value) => {
                        self.authed = true;
                        let expires = if self.state_unregistering() {
                            0
                        } else {
                            self.cfg.expires
                        };
                        let b = self.register_request(expires, Some((auth_name, value)));
                        vec![self.send_register(now, b)]
                    }
                    Err(_) => self.reject(resp, now),
                }
            }
            _ => self.reject(resp, now),
        }
    }

    fn state_unregistering(&self) -> bool {
        self.pending
            .as_ref()
            .is_some_and(|p| String::from_utf8_lossy(&p.0).contains("\r\nExpires: 0\r\n"))
    }

    fn reject(&mut self, resp: &Response, now: Duration) -> Vec<Out> {
        self.pending = None;
        self.next_keepalive = None;
        self.keepalive_out = None;
        self.state = RegState::Rejected {
            status: resp.status,
            reason: resp.reason.chars().take(80).collect(),
        };
        self.next_register = Some(now + REJECTED_RETRY);
        vec![Out::Event(Event::Rejected {
            status: resp.status,
        })]
    }

    /// A REGISTER with `Expires: 0` (on shutdown); stops every timer.
    pub fn unregister(&mut self, now: Duration) -> Vec<u8> {
        self.next_register = None;
        self.next_keepalive = None;
        self.keepalive_out = None;
        self.authed = false;
        let b = self.register_request(0, None);
        self.pending = Some((b.clone(), now, now + REGISTER_TIMEOUT, REGISTER_TIMEOUT));
        self.state = RegState::Idle;
        b
    }

    /// A message from the platform that is a response: feeds
    /// [`Registration::on_response`]; requests are the caller's.
    pub fn on_message(&mut self, msg: &Message, now: Duration) -> Vec<Out> {
        match msg {
            Message::Response(r) => self.on_response(r, now),
            Message::Request(_) => Vec::new(),
        }
    }
}

fn stale(resp: &Response) -> bool {
    resp.headers
        .0
        .iter()
        .filter(|(k, _)| k.ends_with("Authenticate"))
        .any(|(_, v)| {
            v.to_ascii_lowercase()
                .replace(' ', "")
                .contains("stale=true")
        })
}

/// The strongest digest challenge we can answer: SHA-256 over MD5.
fn pick_challenge<'a>(chals: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut best = None;
    for c in chals {
        let l = c.to_ascii_lowercase();
        if !l.trim_start().starts_with("digest") {
            continue;
        }
        if l.contains("sha-256") {
            return Some(c);
        }
        best.get_or_insert(c);
    }
    best
}

fn granted_expires(resp: &Response) -> Option<u32> {
    if let Some(c) = resp.headers.get("Contact")
        && let Some(p) = c.split(';').find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim().eq_ignore_ascii_case("expires").then_some(v.trim())
        })
        && let Ok(n) = p.parse()
    {
        return Some(n);
    }
    resp.headers.get("Expires")?.trim().parse().ok()
}

/// The GB 200 OK `Date` (`2026-12-06T18:07:07.123`, local time of the
/// platform, China) as Unix seconds; also accepts RFC 1123 dates (GMT).
pub fn parse_date(value: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc2822;
    let v = value.trim();
    if let Ok(t) = time::OffsetDateTime::parse(v, &Rfc2822) {
        return Some(t.unix_timestamp());
    }
    let v = v.split('.').next()?;
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let t = time::PrimitiveDateTime::parse(v, &fmt).ok()?;
    Some(t.assume_offset(time::macros::offset!(+8)).unix_timestamp())
}

#[cfg(test)]
#[path = "register_tests.rs"]
mod tests;
