//! Where a relay's RTP goes: a connected UDP socket (so an ICMP port
//! unreachable fails the next send), a TCP connection we open (active), or
//! one the platform opens to our listener (passive). Local ports come from
//! the configured range.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use device_drivers::gb28181::rtp_ps::frame_rfc4571;
use device_drivers::gb28181::sdp::MediaTransport;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};

/// A bound local port, not yet carrying media.
pub(super) enum Pending {
    Udp(UdpSocket),
    TcpActive(TcpSocket),
    TcpPassive(TcpListener),
}

/// A local port range handed out round-robin.
pub(super) struct Ports {
    min: u16,
    max: u16,
    next: AtomicU32,
}

impl Ports {
    pub fn new(min: u16, max: u16) -> Ports {
        Ports {
            min,
            max,
            next: AtomicU32::new(0),
        }
    }

    /// Binds `transport`'s local end on `local` at the first free port of
    /// the range; `None` when every port is taken.
    pub fn bind(&self, transport: MediaTransport, local: IpAddr) -> Option<(Pending, u16)> {
        let span = u32::from(self.max - self.min) + 1;
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..span {
            let port = self.min + ((start.wrapping_add(i)) % span) as u16;
            let addr = SocketAddr::new(local, port);
            let bound = match transport {
                MediaTransport::Udp => std::net::UdpSocket::bind(addr)
                    .and_then(|s| {
                        s.set_nonblocking(true)?;
                        UdpSocket::from_std(s)
                    })
                    .map(Pending::Udp)
                    .ok(),
                MediaTransport::TcpActive => tcp_socket(local)
                    .and_then(|s| s.bind(addr).map(|()| s))
                    .map(Pending::TcpActive)
                    .ok(),
                MediaTransport::TcpPassive => tcp_socket(local)
                    .and_then(|s| s.bind(addr).map(|()| s))
                    .and_then(|s| s.listen(4))
                    .map(Pending::TcpPassive)
                    .ok(),
            };
            if let Some(p) = bound {
                self.next
                    .store(start.wrapping_add(i + 1), Ordering::Relaxed);
                return Some((p, port));
            }
        }
        None
    }
}

fn tcp_socket(local: IpAddr) -> std::io::Result<TcpSocket> {
    let s = if local.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    s.set_reuseaddr(true)?;
    Ok(s)
}

/// A live media connection.
pub(super) enum Sink {
    Udp(UdpSocket),
    Tcp(TcpStream, Vec<u8>),
}

impl Pending {
    /// Connects to (or accepts from) the platform at `dest`.
    pub async fn open(self, dest: SocketAddr) -> std::io::Result<Sink> {
        match self {
            Pending::Udp(s) => {
                s.connect(dest).await?;
                Ok(Sink::Udp(s))
            }
            Pending::TcpActive(s) => {
                let t = s.connect(dest).await?;
                let _ = t.set_nodelay(true);
                Ok(Sink::Tcp(t, Vec::new()))
            }
            Pending::TcpPassive(l) => {
                let (t, from) = l.accept().await?;
                if from.ip() != dest.ip() {
                    tracing::info!(%from, expected = %dest.ip(), "platform connected from another address (NAT?)");
                }
                let _ = t.set_nodelay(true);
                Ok(Sink::Tcp(t, Vec::new()))
            }
        }
    }
}

impl Sink {
    /// Sends one frame's RTP packets: each as a datagram, or all RFC 4571
    /// framed in one write (within `limit`, else the platform is stalled).
    pub async fn send(&mut self, packets: &[Vec<u8>], limit: Duration) -> std::io::Result<()> {
        match self {
            Sink::Udp(s) => {
                for p in packets {
                    s.send(p).await?;
                }
                Ok(())
            }
            Sink::Tcp(t, buf) => {
                buf.clear();
                for p in packets {
                    frame_rfc4571(p, buf);
                }
                tokio::time::timeout(limit, t.write_all(buf))
                    .await
                    .map_err(|_| {
                        std::io::Error::new(std::io::ErrorKind::TimedOut, "platform stalled")
                    })?
            }
        }
    }
}
