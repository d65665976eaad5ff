//! SSDP IO: sends an M-SEARCH to the multicast group from each given
//! interface and collects the unicast answers until a deadline, de-duplicated
//! by USN. The message format lives in [`crate::ssdp`].

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use crate::ssdp::{self, Announcement, SsdpMessage};

/// What to search for, where.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    /// Local IPv4 addresses to send from (one socket each). Empty: none.
    pub interfaces: Vec<Ipv4Addr>,
    /// Group and port (default 239.255.255.250:1900; tests use a free port).
    pub group: SocketAddrV4,
    /// Search target (default [`ssdp::MEDIA_RENDERER`]).
    pub target: String,
    /// `MX` seconds announced in the request.
    pub mx: u32,
    /// Multicast TTL (default 2: the village LAN and one router).
    pub ttl: u32,
    /// How long to collect answers.
    pub timeout: Duration,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            interfaces: Vec::new(),
            group: SocketAddrV4::new(Ipv4Addr::new(239, 255, 255, 250), 1900),
            target: ssdp::MEDIA_RENDERER.into(),
            mx: 1,
            ttl: 2,
            timeout: Duration::from_secs(2),
        }
    }
}

/// One device that answered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Found {
    /// What it said.
    pub announcement: Announcement,
    /// Where the answer came from.
    pub from: SocketAddr,
    /// The local interface address the search went out on.
    pub interface: Ipv4Addr,
}

/// Why a search could not run.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// A socket on an interface could not be set up or used.
    #[error("SSDP search on interface {interface}: {what}: {source}")]
    Socket {
        /// The local address.
        interface: Ipv4Addr,
        /// The step that failed.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

fn socket(interface: Ipv4Addr, ttl: u32) -> Result<UdpSocket, SearchError> {
    let err = |what| {
        move |source| SearchError::Socket {
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

/// Sends one M-SEARCH per interface and returns the answers (search
/// responses and any NOTIFY alive that reach the socket) until
/// `opts.timeout`, de-duplicated by USN (first answer kept, a later one with
/// a LOCATION fills a missing one). Unparseable datagrams are logged and
/// skipped.
pub async fn search(opts: &SearchOptions) -> Result<Vec<Found>, SearchError> {
    let request = ssdp::build_msearch(&opts.group.to_string(), &opts.target, opts.mx);
    let mut socks = Vec::new();
    for &iface in &opts.interfaces {
        let s = socket(iface, opts.ttl)?;
        s.send_to(request.as_bytes(), SocketAddr::V4(opts.group))
            .await
            .map_err(|source| SearchError::Socket {
                interface: iface,
                what: "sending the M-SEARCH",
                source,
            })?;
        socks.push((iface, s));
    }
    let deadline = Instant::now() + opts.timeout;
    let mut tasks = tokio::task::JoinSet::new();
    for (iface, s) in socks {
        tasks.spawn(async move {
            let mut out = Vec::new();
            let mut buf = vec![0u8; ssdp::MAX_DATAGRAM + 1];
            while let Ok(r) = tokio::time::timeout_at(deadline, s.recv_from(&mut buf)).await {
                let Ok((n, from)) = r else { continue };
                match ssdp::parse(&buf[..n]) {
                    Ok(SsdpMessage::Response(a)) => out.push((a, from, iface)),
                    Ok(SsdpMessage::Notify(a)) if !a.is_byebye() => out.push((a, from, iface)),
                    Ok(_) => {}
                    Err(e) => tracing::debug!(%from, error = %e, "ignoring SSDP datagram"),
                }
            }
            out
        });
    }
    let mut found: Vec<Found> = Vec::new();
    let mut by_usn: HashMap<String, usize> = HashMap::new();
    while let Some(r) = tasks.join_next().await {
        for (a, from, interface) in r.unwrap_or_default() {
            match by_usn.get(&a.usn) {
                Some(&i) => {
                    if let Some(f) = found.get_mut(i)
                        && f.announcement.location.is_none()
                    {
                        f.announcement.location = a.location;
                    }
                }
                None => {
                    by_usn.insert(a.usn.clone(), found.len());
                    found.push(Found {
                        announcement: a,
                        from,
                        interface,
                    });
                }
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A responder joined on 127.0.0.1 answers twice (same USN) and once
    /// with garbage; the search keeps one device.
    #[tokio::test]
    async fn collects_and_dedups_answers_on_loopback() {
        let probe = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let group = SocketAddrV4::new(Ipv4Addr::new(239, 255, 255, 250), port);
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
            assert!(matches!(
                ssdp::parse(&buf[..n]),
                Ok(SsdpMessage::Search { .. })
            ));
            let a = Announcement {
                usn: "uuid:x::urn:schemas-upnp-org:device:MediaRenderer:1".into(),
                target: ssdp::MEDIA_RENDERER.into(),
                location: Some("http://127.0.0.1:1/description.xml".into()),
                server: Some("AXIS C1310-E".into()),
                nts: None,
            };
            let reply = ssdp::build_response(&a, 1800);
            let tx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
            tx.send_to(reply.as_bytes(), from).await.unwrap();
            tx.send_to(b"garbage", from).await.unwrap();
            tx.send_to(reply.as_bytes(), from).await.unwrap();
        });
        let found = search(&SearchOptions {
            interfaces: vec![Ipv4Addr::LOCALHOST],
            group,
            timeout: Duration::from_millis(500),
            ..SearchOptions::default()
        })
        .await
        .unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0].announcement.server.as_deref(),
            Some("AXIS C1310-E")
        );
        assert_eq!(found[0].interface, Ipv4Addr::LOCALHOST);
    }
}
