//! Serving the router over TCP with limits: a header-read timeout, an idle
//! keep-alive timeout and a cap on concurrent connections (`[http]`).
//!
//! A connection is idle when no request is in flight (a streaming response
//! such as `/api/v1/events` counts as in flight until its body ends) and no
//! byte moved; after `idle_timeout` of that it is closed. A connection
//! accepted beyond `max_connections` is closed at once.
//!
//! With TLS ([`serve_tls`]) the handshake runs in the connection's own task
//! within `header_read_timeout`: a client that stalls or fails it (garbage
//! bytes, a plain HTTP request, a refused certificate) holds its slot at
//! most that long and is then dropped; the accept loop never waits on it.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use crate::config::HttpSection;

/// The limits of [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// Time to send a whole request header.
    pub header_read_timeout: Duration,
    /// Time without a request in flight and without traffic before a
    /// connection is closed.
    pub idle_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl From<&HttpSection> for ServeLimits {
    fn from(h: &HttpSection) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(h.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(h.idle_timeout_secs),
            max_connections: h.max_connections,
        }
    }
}

/// Serves `app` on `listener` until `shutdown`, then lets open connections
/// finish their requests (graceful) and returns when they are closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_inner(listener, app, limits, None, shutdown).await
}

/// [`serve`] over TLS: each connection's handshake with `acceptor` must end
/// within `header_read_timeout`.
pub async fn serve_tls(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    acceptor: tokio_rustls::TlsAcceptor,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_inner(listener, app, limits, Some(acceptor), shutdown).await
}

async fn serve_inner(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, max = limits.max_connections, "http connection refused: at max_connections");
            drop(stream);
            continue;
        };
        let app = app.clone();
        let sd = shutdown.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_conn(stream, peer, app, limits, sd).await,
                Some(acceptor) => {
                    if let Some(s) = handshake(&acceptor, stream, peer, limits, &sd).await {
                        serve_conn(s, peer, app, limits, sd).await;
                    }
                }
            }
            drop(permit);
        });
    }
    // Every connection holds a slot: all slots back = all connections closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// The TLS handshake of one connection, bounded by `header_read_timeout`
/// and the shutdown; `None` (logged at debug) when it failed or stalled.
async fn handshake(
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    peer: std::net::SocketAddr,
    limits: ServeLimits,
    shutdown: &CancellationToken,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    tokio::select! {
        () = shutdown.cancelled() => None,
        r = tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream)) => match r {
            Ok(Ok(s)) => Some(s),
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "https handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!(%peer, "https handshake timed out");
                None
            }
        },
    }
}

/// One connection: hyper HTTP/1 with the header-read timeout, and a
/// watchdog that closes it after `idle_timeout` idle.
async fn serve_conn<S>(
    stream: S,
    peer: std::net::SocketAddr,
    app: Router,
    limits: ServeLimits,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(AtomicU64::new(0));
    let inflight = Arc::new(AtomicUsize::new(0));
    let io = TokioIo::new(Counted {
        inner: stream,
        activity: activity.clone(),
    });
    let inf = inflight.clone();
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let guard = Inflight::new(inf.clone());
        let app = app.clone();
        async move {
            let resp = app.oneshot(req).await?;
            Ok::<_, std::convert::Infallible>(resp.map(|b| Tracked {
                inner: b,
                _guard: guard,
            }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Some(limits.header_read_timeout));
    // With upgrades: the live paging WebSocket (http/paging.rs) takes the
    // connection over; it watches its own idleness.
    let conn = builder.serve_connection(io, svc).with_upgrades();
    let mut conn = std::pin::pin!(conn);
    // The watchdog ticks four times per idle timeout: a connection is closed
    // between 1 and 1.25 idle timeouts after it fell idle.
    let tick = limits.idle_timeout / 4;
    let mut idle_ticks = 0u32;
    let mut last = activity.load(Ordering::Relaxed);
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "http connection ended");
                }
                return;
            }
            () = shutdown.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep(tick), if !closing => {
                let now = activity.load(Ordering::Relaxed);
                if now != last || inflight.load(Ordering::Relaxed) > 0 {
                    last = now;
                    idle_ticks = 0;
                    continue;
                }
                idle_ticks += 1;
                if idle_ticks >= 4 {
                    tracing::debug!(%peer, "http connection idle: closing");
                    return;
                }
            }
        }
    }
}

/// Counts requests in flight on a connection while alive.
struct Inflight(Arc<AtomicUsize>);

impl Inflight {
    fn new(n: Arc<AtomicUsize>) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Self(n)
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its request counted as in flight until the
/// body is finished or dropped.
struct Tracked {
    inner: axum::body::Body,
    _guard: Inflight,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A stream that counts reads and writes that moved bytes.
struct Counted<S> {
    inner: S,
    activity: Arc<AtomicU64>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut me.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            me.activity.fetch_add(1, Ordering::Relaxed);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let me = self.get_mut();
        let r = Pin::new(&mut me.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            me.activity.fetch_add(1, Ordering::Relaxed);
        }
        r
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
