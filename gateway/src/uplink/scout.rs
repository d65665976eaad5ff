//! Finding (and, on our own command topics, clearing) a retained message
//! larger than `mqtt.max_packet_bytes` (issue 12, item 7).
//!
//! rumqttc refuses an incoming packet over its limit from the fixed header
//! alone (`PayloadSizeLimitExceeded`) and drops the connection without
//! saying which topic it was; the broker re-delivers the retained message on
//! the next SUBSCRIBE, and the session would loop. After such a loss the
//! session runs this scout once: a short connection of its own (same broker,
//! client id, credentials and TLS; clean session; no last will) subscribes
//! the same filters at QoS 0 and reads packets with a small parser of its
//! own that keeps at most `max_packet_bytes` in memory: of a packet over the
//! limit it reads the topic and discards the rest as it arrives. Oversized
//! topics for which the caller says so are cleared (an empty retained
//! PUBLISH, QoS 1); the others are reported for the session to stop
//! subscribing to them for a while.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use rumqttc::{
    ConnectReturnCode, Packet, PubAck, Publish, QoS, Subscribe, SubscribeFilter,
    mqttbytes::v4::Connect,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, timeout, timeout_at};

use super::settings::Settings;
use crate::base::error::{Error, Result};

/// How long the scout keeps reading after the SUBACK once nothing arrives.
pub const QUIET: Duration = Duration::from_millis(1500);
/// The longest a scout runs in all.
pub const SCOUT_LIMIT: Duration = Duration::from_secs(20);

/// One oversized message the scout saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oversized {
    /// Its topic.
    pub topic: String,
    /// Its size (remaining length of the PUBLISH packet).
    pub bytes: usize,
    /// Whether the retained message was cleared (the broker PUBACKed our
    /// empty retained PUBLISH; an ACL may still have dropped it silently).
    pub cleared: bool,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The fixed header at the start of `buf`: packet type, header length and
/// remaining length; `None` while incomplete; an error when malformed.
pub fn fixed_header(buf: &[u8]) -> Result<Option<(u8, usize, usize)>> {
    let Some(&b0) = buf.first() else {
        return Ok(None);
    };
    let mut len = 0usize;
    for i in 0..4 {
        let Some(&b) = buf.get(1 + i) else {
            return Ok(None);
        };
        len |= ((b & 0x7f) as usize) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((b0 >> 4, 2 + i, len)));
        }
    }
    Err(Error::unavailable("mqtt scout: malformed remaining length"))
}

/// What [`Reader::next`] read.
enum Next {
    Packet(Packet),
    /// A PUBLISH over the limit (its payload discarded); `None` for another
    /// packet type over the limit.
    Oversized(Option<String>, usize),
}

struct Reader {
    io: Box<dyn Io>,
    buf: BytesMut,
    max: usize,
}

impl Reader {
    async fn fill(&mut self, need: usize) -> Result<()> {
        while self.buf.len() < need {
            if self.io.read_buf(&mut self.buf).await.map_err(io_err)? == 0 {
                return Err(Error::unavailable(
                    "mqtt scout: the broker closed the connection",
                ));
            }
        }
        Ok(())
    }

    async fn next(&mut self) -> Result<Next> {
        let (kind, hl, rl) = loop {
            match fixed_header(&self.buf)? {
                Some(h) => break h,
                None => {
                    let n = self.buf.len() + 1;
                    self.fill(n).await?
                }
            }
        };
        if rl <= self.max {
            self.fill(hl + rl).await?;
            return Packet::read(&mut self.buf, self.max)
                .map(Next::Packet)
                .map_err(|e| Error::unavailable(format!("mqtt scout: bad packet: {e}")));
        }
        let mut topic = None;
        if kind == 3 && rl >= 2 {
            self.fill(hl + 2).await?;
            let tl = u16::from_be_bytes([self.buf[hl], self.buf[hl + 1]]) as usize;
            if 2 + tl <= rl && tl <= 65_535 {
                self.fill(hl + 2 + tl).await?;
                topic = Some(String::from_utf8_lossy(&self.buf[hl + 2..hl + 2 + tl]).into_owned());
            }
        }
        // Discard the rest of the frame without keeping it.
        let mut left = hl + rl;
        let here = left.min(self.buf.len());
        self.buf.advance(here);
        left -= here;
        let mut scratch = [0u8; 16 * 1024];
        while left > 0 {
            let want = left.min(scratch.len());
            let n = self.io.read(&mut scratch[..want]).await.map_err(io_err)?;
            if n == 0 {
                return Err(Error::unavailable(
                    "mqtt scout: the broker closed the connection",
                ));
            }
            left -= n;
        }
        Ok(Next::Oversized(topic, rl))
    }

    async fn send(&mut self, p: Packet) -> Result<()> {
        let mut b = BytesMut::new();
        p.write(&mut b, usize::MAX)
            .map_err(|e| Error::unavailable(format!("mqtt scout: encode: {e}")))?;
        self.io.write_all(&b).await.map_err(io_err)?;
        self.io.flush().await.map_err(io_err)
    }
}

fn io_err(e: std::io::Error) -> Error {
    Error::unavailable(format!("mqtt scout: {e}"))
}

async fn open(s: &Settings) -> Result<Box<dyn Io>> {
    let tcp = timeout(
        s.connect_timeout.max(Duration::from_secs(1)),
        tokio::net::TcpStream::connect((s.host.as_str(), s.port)),
    )
    .await
    .map_err(|_| Error::unavailable("mqtt scout: connect timed out"))?
    .map_err(io_err)?;
    let _ = tcp.set_nodelay(true);
    let Some(tls) = &s.tls else {
        return Ok(Box::new(tcp));
    };
    let name = rustls::pki_types::ServerName::try_from(s.host.clone())
        .map_err(|e| Error::invalid(format!("mqtt.url host: {e}")))?;
    let conn = rumqttc::tokio_rustls::TlsConnector::from(Arc::clone(tls))
        .connect(name, tcp)
        .await
        .map_err(io_err)?;
    Ok(Box::new(conn))
}

/// Runs the scout (see the module doc) over `filters`; `clear(topic)` says
/// whether an oversized retained message on `topic` may be cleared.
pub(crate) async fn scout(
    s: &Settings,
    filters: &[String],
    clear: impl Fn(&str) -> bool + Sync,
) -> Result<Vec<Oversized>> {
    let deadline = Instant::now() + SCOUT_LIMIT;
    timeout_at(deadline, run(s, filters, &clear, deadline))
        .await
        .unwrap_or_else(|_| Err(Error::unavailable("mqtt scout: no answer in time")))
}

async fn run(
    s: &Settings,
    filters: &[String],
    clear: &(dyn Fn(&str) -> bool + Sync),
    deadline: Instant,
) -> Result<Vec<Oversized>> {
    let mut r = Reader {
        io: open(s).await?,
        buf: BytesMut::with_capacity(8192),
        max: s.max_packet,
    };
    let mut c = Connect::new(s.client_id.clone());
    c.keep_alive = 60;
    if let Some((u, p)) = &s.credentials {
        c.set_login(u.clone(), p.clone());
    }
    r.send(Packet::Connect(c)).await?;
    match r.next().await? {
        Next::Packet(Packet::ConnAck(a)) if a.code == ConnectReturnCode::Success => {}
        Next::Packet(Packet::ConnAck(a)) => {
            return Err(Error::unavailable(format!(
                "mqtt scout: broker refused the connection: {:?}",
                a.code
            )));
        }
        _ => return Err(Error::unavailable("mqtt scout: no CONNACK")),
    }
    let mut sub = Subscribe::new_many(
        filters
            .iter()
            .map(|f| SubscribeFilter::new(f.clone(), QoS::AtMostOnce)),
    );
    sub.pkid = 1;
    r.send(Packet::Subscribe(sub)).await?;
    let mut found: Vec<Oversized> = Vec::new();
    let mut pending: Vec<(u16, usize)> = Vec::new();
    let mut subacked = false;
    let mut next_pkid = 2u16;
    loop {
        let wait = if subacked && pending.is_empty() {
            Instant::now() + QUIET
        } else {
            deadline
        };
        let Ok(next) = timeout_at(wait.min(deadline), r.next()).await else {
            break;
        };
        match next? {
            Next::Packet(Packet::SubAck(a)) if a.pkid == 1 => subacked = true,
            Next::Packet(Packet::PubAck(PubAck { pkid, .. })) => {
                if let Some(i) = pending.iter().position(|(p, _)| *p == pkid) {
                    found[pending.remove(i).1].cleared = true;
                }
            }
            Next::Oversized(Some(topic), bytes) => {
                if found.iter().any(|f| f.topic == topic) {
                    continue;
                }
                if clear(&topic) {
                    let mut p = Publish::new(topic.clone(), QoS::AtLeastOnce, Vec::new());
                    p.retain = true;
                    p.pkid = next_pkid;
                    r.send(Packet::Publish(p)).await?;
                    pending.push((next_pkid, found.len()));
                    next_pkid = next_pkid.wrapping_add(1).max(2);
                }
                found.push(Oversized {
                    topic,
                    bytes,
                    cleared: false,
                });
            }
            _ => {}
        }
    }
    let _ = r.send(Packet::Disconnect).await;
    Ok(found)
}

/// How long a topic whose oversized retained message could not be cleared
/// keeps its filter unsubscribed.
pub const QUARANTINE: Duration = Duration::from_secs(3600);

/// Oversized retained topics the session keeps away from: what it tried to
/// clear once, and what it does not subscribe to until a deadline.
#[derive(Default)]
pub(crate) struct Quarantine {
    cleared_once: std::collections::HashSet<String>,
    blocked: Vec<(String, Instant)>,
}

impl Quarantine {
    /// The filters to subscribe: `…/cmd/+` (or, when a blocked topic falls
    /// under it, each known `…/cmd/{method}` that is not blocked) and the
    /// handler's raw filters that no blocked topic falls under.
    pub(crate) fn filters(
        &mut self,
        topics: &tgw_core::uplink::topics::Topics,
        raw: &[String],
        now: Instant,
    ) -> Vec<String> {
        self.blocked.retain(|(_, until)| *until > now);
        let blocked = |f: &str| self.blocked.iter().any(|(t, _)| rumqttc::matches(t, f));
        let mut out = Vec::new();
        let cmd = topics.command_filter();
        if blocked(&cmd) {
            for m in tgw_core::uplink::commands::METHODS {
                let t = topics.full(&format!("cmd/{m}"));
                if !blocked(&t) {
                    out.push(t);
                }
            }
        } else {
            out.push(cmd);
        }
        out.extend(raw.iter().filter(|f| !blocked(f)).cloned());
        out
    }

    /// Takes what a scout found: a topic cleared for the first time is
    /// given another chance; any other is blocked for [`QUARANTINE`].
    /// Returns, per finding, whether its topic is now blocked.
    pub(crate) fn record(&mut self, found: &[Oversized], now: Instant) -> Vec<bool> {
        found
            .iter()
            .map(|f| {
                if f.cleared && self.cleared_once.insert(f.topic.clone()) {
                    return false;
                }
                self.blocked.retain(|(t, _)| *t != f.topic);
                self.blocked.push((f.topic.clone(), now + QUARANTINE));
                true
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cleared command topic gets one more chance; what was not cleared
    /// (or comes back) takes its filter out: `cmd/+` becomes each known
    /// method but the blocked one, a raw filter is left out; for an hour.
    #[test]
    fn quarantine_narrows_the_subscriptions() {
        let t = tgw_core::uplink::topics::Topics::new("s", "g");
        let raw = vec!["warn/#".to_string()];
        let now = Instant::now();
        let mut q = Quarantine::default();
        assert_eq!(q.filters(&t, &raw, now), ["tgw/v1/s/g/cmd/+", "warn/#"]);
        let f = |topic: &str, cleared| Oversized {
            topic: topic.into(),
            bytes: 1 << 21,
            cleared,
        };
        assert_eq!(q.record(&[f("tgw/v1/s/g/cmd/probe", true)], now), [false]);
        assert_eq!(q.filters(&t, &raw, now).len(), 2);
        let again = [f("tgw/v1/s/g/cmd/probe", true), f("warn/cap", false)];
        assert_eq!(q.record(&again, now), [true, true]);
        assert_eq!(
            q.filters(&t, &raw, now),
            [
                "tgw/v1/s/g/cmd/rediscover",
                "tgw/v1/s/g/cmd/reload",
                "tgw/v1/s/g/cmd/emergency"
            ]
        );
        let later = now + QUARANTINE + Duration::from_secs(1);
        assert_eq!(q.filters(&t, &raw, later).len(), 2);
    }

    #[test]
    fn fixed_header_reads_the_remaining_length() {
        assert_eq!(fixed_header(&[]).unwrap(), None);
        assert_eq!(fixed_header(&[0x30]).unwrap(), None);
        assert_eq!(fixed_header(&[0x30, 0x05]).unwrap(), Some((3, 2, 5)));
        assert_eq!(fixed_header(&[0x31, 0x80]).unwrap(), None);
        // 2 MB: 0x80 0x80 0x80 0x01
        assert_eq!(
            fixed_header(&[0x30, 0x80, 0x80, 0x80, 0x01]).unwrap(),
            Some((3, 5, 1 << 21))
        );
        assert!(fixed_header(&[0x30, 0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
