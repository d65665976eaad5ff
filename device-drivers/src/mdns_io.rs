//! mDNS IO: sends a DNS-SD query (PTR for each service type) to the mDNS
//! group from each given interface and collects the answers for a window.
//! The query leaves from an ephemeral port, so it is a "legacy unicast"
//! query (RFC 6762 §6.7) and responders answer straight to that socket.
//! Records are gathered per responder over every datagram it sends, then
//! resolved into instances with [`crate::mdns::instances`] and
//! de-duplicated by instance name. The message format lives in
//! [`crate::mdns`].

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use crate::mdns::{self, Instance, Record};

/// What to ask for, where.
#[derive(Debug, Clone)]
pub struct QueryOptions {
    /// Local IPv4 addresses to send from (one socket each). Empty: none.
    pub interfaces: Vec<Ipv4Addr>,
    /// Group and port (default [`mdns::GROUP`], 224.0.0.251:5353; tests use
    /// a free port on the same group).
    pub group: SocketAddrV4,
    /// Service types asked for (default [`mdns::SERVICES`]).
    pub services: Vec<String>,
    /// Multicast TTL (default 255, as RFC 6762 §11 asks; link-local anyway).
    pub ttl: u32,
    /// How many times the query is sent (default 2, 250 ms apart).
    pub repeats: u8,
    /// Spacing of the repeated queries.
    pub repeat_interval: Duration,
    /// How long to collect answers after the first query.
    pub timeout: Duration,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions {
            interfaces: Vec::new(),
            group: mdns::GROUP,
            services: mdns::SERVICES.iter().map(|s| s.to_string()).collect(),
            ttl: 255,
            repeats: 2,
            repeat_interval: Duration::from_millis(250),
            timeout: Duration::from_secs(2),
        }
    }
}

/// One service instance that answered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Found {
    /// What its records say.
    pub instance: Instance,
    /// Where the answer came from.
    pub from: SocketAddr,
    /// The local interface address the query went out on.
    pub interface: Ipv4Addr,
}

impl Found {
    /// The horn's IPv4 address: its first A record, else the answer's source.
    pub fn address(&self) -> Option<Ipv4Addr> {
        self.instance
            .addrs
            .first()
            .copied()
            .or(match self.from.ip() {
                IpAddr::V4(ip) => Some(ip),
                IpAddr::V6(_) => None,
            })
    }

    /// The driver address for the speaker inventory (see
    /// [`Instance::driver_address`]).
    pub fn driver_address(&self) -> Option<String> {
        self.instance.driver_address(self.address()?)
    }
}

/// Why a query could not run.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A socket on an interface could not be set up or used.
    #[error("mDNS query on interface {interface}: {what}: {source}")]
    Socket {
        /// The local address.
        interface: Ipv4Addr,
        /// The step that failed.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// A service type that cannot be written as a DNS name.
    #[error("mDNS query: {0}")]
    Build(#[from] mdns::MdnsError),
}

fn socket(interface: Ipv4Addr, ttl: u32) -> Result<UdpSocket, QueryError> {
    let err = |what| {
        move |source| QueryError::Socket {
            interface,
            what,
            source,
        }
    };
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
        .map_err(err("creating a UDP socket"))?;
    s.set_nonblocking(true)
        .map_err(err("setting non-blocking"))?;
    s.set_multicast_if_v4(&interface)
        .map_err(err("setting IP_MULTICAST_IF"))?;
    s.set_multicast_loop_v4(true)
        .map_err(err("setting IP_MULTICAST_LOOP"))?;
    s.set_multicast_ttl_v4(ttl)
        .map_err(err("setting the multicast TTL"))?;
    s.bind(&SocketAddr::from((interface, 0)).into())
        .map_err(err("binding port 0"))?;
    UdpSocket::from_std(s.into()).map_err(err("registering with tokio"))
}

/// Sends the query (`opts.repeats` times) from every interface and returns
/// the instances of `opts.services` answered until `opts.timeout`.
/// Unparseable datagrams are logged and skipped; a responder's records are
/// merged over all its datagrams before they are resolved.
pub async fn query(opts: &QueryOptions) -> Result<Vec<Found>, QueryError> {
    let services: Vec<&str> = opts.services.iter().map(String::as_str).collect();
    let id: u16 = rand::random();
    let request = mdns::build_query(id, &services, false)?;
    let mut socks = Vec::new();
    for &iface in &opts.interfaces {
        socks.push((iface, socket(iface, opts.ttl)?));
    }
    let deadline = Instant::now() + opts.timeout;
    let mut tasks = tokio::task::JoinSet::new();
    for (iface, s) in socks {
        let request = request.clone();
        let group = SocketAddr::V4(opts.group);
        let (repeats, every) = (opts.repeats.max(1), opts.repeat_interval);
        tasks.spawn(async move {
            let mut by_source: Vec<(SocketAddr, Vec<Record>)> = Vec::new();
            let mut buf = vec![0u8; mdns::MAX_PACKET + 1];
            let mut sent = 0u8;
            let mut next_send = Instant::now();
            let mut send_error = None;
            let mut recv_errors = 0u32;
            loop {
                if sent < repeats && Instant::now() >= next_send {
                    if let Err(e) = s.send_to(&request, group).await {
                        send_error = Some(e);
                    }
                    sent += 1;
                    next_send += every;
                }
                let wake = if sent < repeats {
                    next_send.min(deadline)
                } else {
                    deadline
                };
                match tokio::time::timeout_at(wake, s.recv_from(&mut buf)).await {
                    Err(_) if wake >= deadline => break,
                    Err(_) => continue,
                    Ok(Err(e)) => {
                        // e.g. ICMP errors on some platforms; give up on a
                        // socket that keeps failing.
                        recv_errors += 1;
                        tracing::debug!(interface = %iface, error = %e, "mDNS receive error");
                        if recv_errors >= 100 {
                            break;
                        }
                    }
                    Ok(Ok((n, from))) => match mdns::parse(&buf[..n]) {
                        Ok(m) if m.is_response => {
                            let recs: Vec<Record> = m.records().cloned().collect();
                            match by_source.iter_mut().find(|(f, _)| *f == from) {
                                Some((_, all)) => all.extend(recs),
                                None => by_source.push((from, recs)),
                            }
                        }
                        Ok(_) => {}
                        Err(e) => tracing::debug!(%from, error = %e, "ignoring mDNS datagram"),
                    },
                }
            }
            if let Some(e) = send_error {
                tracing::warn!(interface = %iface, error = %e, "mDNS query not sent");
            }
            (iface, by_source)
        });
    }
    let mut found: Vec<Found> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    while let Some(r) = tasks.join_next().await {
        let Ok((interface, by_source)) = r else {
            continue;
        };
        for (from, recs) in by_source {
            for instance in mdns::instances(&recs, &services) {
                let key = instance.name.to_ascii_lowercase();
                if by_name.contains_key(&key) {
                    continue;
                }
                by_name.insert(key, found.len());
                found.push(Found {
                    instance,
                    from,
                    interface,
                });
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mdns::{Advert, Question};

    /// A responder joined on 127.0.0.1 (a free port on 224.0.0.251, as the
    /// simulator does) answers the query: a SIP horn in one datagram, an RTP
    /// horn split over two (PTR, then SRV/TXT/A), garbage in between, and the
    /// SIP answer again. The query finds two instances with their driver
    /// addresses.
    #[tokio::test]
    async fn collects_answers_on_loopback() {
        let probe = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let group = SocketAddrV4::new(*mdns::GROUP.ip(), port);
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        s.set_reuse_address(true).unwrap();
        s.set_nonblocking(true).unwrap();
        s.bind(&SocketAddr::V4(group).into()).unwrap();
        s.join_multicast_v4(group.ip(), &Ipv4Addr::LOCALHOST)
            .unwrap();
        let responder = UdpSocket::from_std(s.into()).unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let (n, from) = responder.recv_from(&mut buf).await.unwrap();
            let q = mdns::parse(&buf[..n]).unwrap();
            assert!(!q.is_response);
            assert_eq!(q.questions.len(), 2);
            let sip = Advert {
                service: mdns::SIP_SERVICE.into(),
                label: "Horn 1".into(),
                host: "horn-1.local".into(),
                addr: Ipv4Addr::new(127, 0, 0, 1),
                port: 5070,
                txt: vec!["user=horn".into()],
            };
            let rtp = Advert {
                service: mdns::RTP_HORN_SERVICE.into(),
                label: "Horn 2".into(),
                host: "horn-2.local".into(),
                addr: Ipv4Addr::new(127, 0, 0, 1),
                port: 5004,
                txt: vec!["codec=pcma".into()],
            };
            let qs: Vec<Question> = q.questions.clone();
            let (a1, x1) = sip.records(120);
            let one = mdns::build_response(q.id, &qs, &a1, &x1).unwrap();
            let (a2, x2) = rtp.records(120);
            let ptr = mdns::build_response(q.id, &[], &a2, &[]).unwrap();
            let rest = mdns::build_response(q.id, &[], &[], &x2).unwrap();
            let tx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
            for d in [&one[..], &ptr[..], b"\xff\xff garbage", &rest[..], &one[..]] {
                tx.send_to(d, from).await.unwrap();
            }
        });
        let mut found = query(&QueryOptions {
            interfaces: vec![Ipv4Addr::LOCALHOST],
            group,
            timeout: Duration::from_millis(600),
            ..QueryOptions::default()
        })
        .await
        .unwrap();
        found.sort_by(|a, b| a.instance.label.cmp(&b.instance.label));
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(
            found[0].driver_address().as_deref(),
            Some("sip:horn@127.0.0.1:5070")
        );
        assert_eq!(found[1].driver_address().as_deref(), Some("127.0.0.1:5004"));
        assert_eq!(found[1].instance.txt_value("codec"), Some("pcma"));
        assert_eq!(found[0].interface, Ipv4Addr::LOCALHOST);
    }

    /// Nobody answers: an empty list after the window, no error.
    #[tokio::test]
    async fn silence_is_an_empty_list() {
        let probe = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let found = query(&QueryOptions {
            interfaces: vec![Ipv4Addr::LOCALHOST],
            group: SocketAddrV4::new(*mdns::GROUP.ip(), port),
            timeout: Duration::from_millis(200),
            ..QueryOptions::default()
        })
        .await
        .unwrap();
        assert!(found.is_empty());
    }
}
