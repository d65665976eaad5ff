//! The TCP server's limits: header-read timeout, idle keep-alive timeout
//! and the connection cap (`[http]`), on 127.0.0.1 with short timeouts.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::*;

async fn start(limits: ServeLimits) -> (std::net::SocketAddr, CancellationToken, Fx) {
    let fx = fixture();
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let sd = CancellationToken::new();
    tokio::spawn(serve(l, fx.app.clone(), limits, sd.clone()));
    (addr, sd, fx)
}

/// Reads until EOF (or a reset); panics if the server keeps the connection
/// open longer than `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut all = Vec::new();
    let r = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(r.is_ok(), "connection still open after {within:?}");
    all
}

fn limits(idle_ms: u64, header_ms: u64, max: usize) -> ServeLimits {
    ServeLimits {
        header_read_timeout: Duration::from_millis(header_ms),
        idle_timeout: Duration::from_millis(idle_ms),
        max_connections: max,
    }
}

/// An idle keep-alive connection is closed after the idle timeout.
#[tokio::test]
async fn idle_keep_alive_connection_is_closed() {
    let (addr, sd, _fx) = start(limits(200, 10_000, 16)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let got = closed_within(&mut s, Duration::from_secs(3)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    sd.cancel();
}

/// A client that never finishes its header is cut off.
#[tokio::test]
async fn slow_header_is_cut_off() {
    let (addr, sd, _fx) = start(limits(10_000, 200, 16)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHo").await.unwrap();
    closed_within(&mut s, Duration::from_secs(3)).await;
    sd.cancel();
}

/// A connection beyond `max_connections` is closed at once; the held one
/// still works.
#[tokio::test]
async fn connections_beyond_the_cap_are_closed() {
    let (addr, sd, _fx) = start(limits(10_000, 10_000, 1)).await;
    let mut first = TcpStream::connect(addr).await.unwrap();
    first
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = first.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let mut second = TcpStream::connect(addr).await.unwrap();
    let _ = second
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let got = closed_within(&mut second, Duration::from_secs(3)).await;
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    sd.cancel();
}
