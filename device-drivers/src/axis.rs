//! HTTP speakers, Axis VAPIX style: `POST /axis-cgi/audio/transmit.cgi` with
//! `Content-Type: audio/basic` (G.711 µ-law, 8 kHz), the body streamed in
//! real time, HTTP Digest authentication. The request head and response
//! head parsing are pure; the IO part (behind the `io` feature) is a
//! hand-rolled HTTP/1.1 client over one `TcpStream` so each 20 ms chunk
//! leaves when it is due.

/// The VAPIX audio transmit path.
pub const TRANSMIT_PATH: &str = "/axis-cgi/audio/transmit.cgi";

/// Largest response head accepted.
pub const MAX_HEAD: usize = 16 * 1024;

/// The head of a POST of `content_length` bytes of µ-law audio to `path`.
pub fn request_head(
    host: &str,
    path: &str,
    authorization: Option<&str>,
    content_length: u64,
) -> String {
    let mut h = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: tgw\r\nContent-Type: audio/basic\r\nContent-Length: {content_length}\r\n"
    );
    if let Some(a) = authorization {
        h.push_str("Authorization: ");
        h.push_str(a);
        h.push_str("\r\n");
    }
    h.push_str("Connection: close\r\n\r\n");
    h
}

/// A parsed HTTP response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a response head is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// Larger than [`MAX_HEAD`] without an end.
    #[error("HTTP response head longer than {MAX_HEAD} bytes")]
    TooLarge,
    /// The status line or a header is unreadable.
    #[error("bad HTTP response head: {0:?}")]
    Bad(String),
}

/// Parses a response head from the start of `buf`: `Ok(None)` when more
/// bytes are needed, else the head and its length.
pub fn parse_response_head(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, HeadError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD {
            Err(HeadError::TooLarge)
        } else {
            Ok(None)
        };
    };
    let text = String::from_utf8_lossy(&buf[..end]);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let bad = || HeadError::Bad(status_line.chars().take(80).collect());
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(bad());
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|s| (100..600).contains(s))
        .ok_or_else(bad)?;
    let reason = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    for l in lines {
        let (k, v) = l
            .split_once(':')
            .ok_or_else(|| HeadError::Bad(l.chars().take(80).collect()))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok(Some((
        ResponseHead {
            status,
            reason,
            headers,
        },
        end + 4,
    )))
}

#[cfg(feature = "io")]
pub use io::*;

#[cfg(feature = "io")]
mod io {
    use std::net::SocketAddr;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::time::{Instant, MissedTickBehavior};
    use tokio_util::sync::CancellationToken;

    use super::{HeadError, ResponseHead, TRANSMIT_PATH, parse_response_head, request_head};
    use crate::g711::Codec;
    use crate::local_error::{self, LocalResource};
    use crate::rtp::{FRAME, FRAME_SAMPLES};

    /// An Axis-style HTTP speaker.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AxisTarget {
        /// Speaker address.
        pub addr: SocketAddr,
        /// Digest user and password.
        pub credentials: Option<(String, String)>,
        /// Path (default [`TRANSMIT_PATH`]).
        pub path: String,
        /// Timeout of connecting and of each response.
        pub timeout: Duration,
    }

    impl AxisTarget {
        /// The default path, 5 s timeouts.
        pub fn new(addr: SocketAddr, credentials: Option<(String, String)>) -> AxisTarget {
            AxisTarget {
                addr,
                credentials,
                path: TRANSMIT_PATH.to_string(),
                timeout: Duration::from_secs(5),
            }
        }
    }

    /// An HTTP speaker operation that failed, naming the speaker.
    #[derive(Debug, thiserror::Error)]
    #[error("HTTP speaker {peer}: {op}: {detail}")]
    pub struct AxisError {
        /// Speaker address.
        pub peer: SocketAddr,
        /// What we were doing.
        pub op: &'static str,
        /// What happened.
        pub detail: String,
        /// The HTTP status that came back, if one did.
        pub status: Option<u16>,
        /// The gateway's own resource that ran out (no descriptor for the
        /// connection, no buffer for a write): nothing was learnt about
        /// the speaker.
        pub local: Option<LocalResource>,
    }

    /// What a transmission did.
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct AxisStats {
        /// 20 ms chunks written.
        pub chunks: u64,
        /// Audio bytes written.
        pub octets: u64,
        /// When the first chunk was written.
        pub first_sent: Option<Instant>,
        /// Stopped by cancellation before the end.
        pub cancelled: bool,
        /// Final HTTP status.
        pub status: Option<u16>,
    }

    async fn read_head(
        s: &mut TcpStream,
        target: &AxisTarget,
        op: &'static str,
    ) -> Result<ResponseHead, AxisError> {
        let err = |detail: String, local: Option<LocalResource>| AxisError {
            peer: target.addr,
            op,
            detail,
            status: None,
            local,
        };
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        let fut = async {
            loop {
                let n = s.read(&mut chunk).await.map_err(|e| {
                    err(format!("reading the response: {e}"), local_error::of_io(&e))
                })?;
                if n == 0 {
                    return Err(err(
                        format!("connection closed after {} bytes of response", buf.len()),
                        None,
                    ));
                }
                buf.extend_from_slice(&chunk[..n]);
                match parse_response_head(&buf) {
                    Ok(Some((h, _))) => return Ok(h),
                    Ok(None) => {}
                    Err(e @ (HeadError::TooLarge | HeadError::Bad(_))) => {
                        return Err(err(e.to_string(), None));
                    }
                }
            }
        };
        tokio::time::timeout(target.timeout, fut)
            .await
            .map_err(|_| err(format!("no response within {:?}", target.timeout), None))?
    }

    async fn connect(target: &AxisTarget, op: &'static str) -> Result<TcpStream, AxisError> {
        let s = tokio::time::timeout(target.timeout, TcpStream::connect(target.addr))
            .await
            .map_err(|_| AxisError {
                peer: target.addr,
                op,
                detail: format!("connect timed out after {:?}", target.timeout),
                status: None,
                local: None,
            })?
            .map_err(|e| AxisError {
                peer: target.addr,
                op,
                detail: format!("connect: {e}"),
                status: None,
                local: local_error::of_io(&e),
            })?;
        let _ = s.set_nodelay(true);
        Ok(s)
    }

    /// Asks the speaker for its digest challenge (an empty POST) and returns
    /// the `Authorization` value to use; `None` when it wants none.
    pub async fn authorize(
        target: &AxisTarget,
        content_length: u64,
    ) -> Result<Option<String>, AxisError> {
        let _ = content_length;
        let host = target.addr.to_string();
        let mut s = connect(target, "authentication probe").await?;
        s.write_all(request_head(&host, &target.path, None, 0).as_bytes())
            .await
            .map_err(|e| AxisError {
                peer: target.addr,
                op: "authentication probe",
                detail: format!("writing: {e}"),
                status: None,
                local: local_error::of_io(&e),
            })?;
        let head = read_head(&mut s, target, "authentication probe").await?;
        match head.status {
            200..=299 => Ok(None),
            401 => {
                let (user, pass) = target.credentials.as_ref().ok_or_else(|| AxisError {
                    peer: target.addr,
                    op: "authentication probe",
                    detail: "401 Unauthorized and no credentials configured".into(),
                    status: Some(401),
                    local: None,
                })?;
                let challenge = head.header("WWW-Authenticate").ok_or_else(|| AxisError {
                    peer: target.addr,
                    op: "authentication probe",
                    detail: "401 without WWW-Authenticate".into(),
                    status: Some(401),
                    local: None,
                })?;
                crate::sip::digest_authorization(challenge, "POST", &target.path, user, pass)
                    .map(Some)
                    .map_err(|e| AxisError {
                        peer: target.addr,
                        op: "authentication probe",
                        detail: e.to_string(),
                        status: Some(401),
                        local: None,
                    })
            }
            s => Err(AxisError {
                peer: target.addr,
                op: "authentication probe",
                detail: format!("{s} {}", head.reason),
                status: Some(s),
                local: None,
            }),
        }
    }

    /// An open transmission: the request head is sent, the body is not.
    #[derive(Debug)]
    pub struct AxisStream {
        stream: TcpStream,
        target: AxisTarget,
    }

    /// Authenticates and opens a POST for `content_length` bytes of audio.
    pub async fn open(target: &AxisTarget, content_length: u64) -> Result<AxisStream, AxisError> {
        let auth = authorize(target, content_length).await?;
        let mut s = connect(target, "opening the transmission").await?;
        let head = request_head(
            &target.addr.to_string(),
            &target.path,
            auth.as_deref(),
            content_length,
        );
        s.write_all(head.as_bytes()).await.map_err(|e| AxisError {
            peer: target.addr,
            op: "opening the transmission",
            detail: format!("writing the request head: {e}"),
            status: None,
            local: local_error::of_io(&e),
        })?;
        Ok(AxisStream {
            stream: s,
            target: target.clone(),
        })
    }

    impl AxisStream {
        /// Streams `pcm` as µ-law, one 20 ms chunk at `start + k·20 ms`,
        /// then reads the answer (2xx expected). A speaker that closes the
        /// connection mid-stream gives an error naming how far we got.
        pub async fn stream(
            mut self,
            pcm: &[i16],
            start: Instant,
            cancel: &CancellationToken,
        ) -> Result<AxisStats, AxisError> {
            let peer = self.target.addr;
            let mut stats = AxisStats::default();
            let bytes = Codec::Pcmu.encode(pcm);
            let mut tick = tokio::time::interval_at(start, FRAME);
            tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
            for chunk in bytes.chunks(FRAME_SAMPLES) {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => {
                        stats.cancelled = true;
                        // The body is short: the speaker sees the cut.
                        let _ = self.stream.shutdown().await;
                        return Ok(stats);
                    }
                    _ = tick.tick() => {}
                }
                if let Err(e) = self.stream.write_all(chunk).await {
                    // The speaker may have answered (401, 503) before closing.
                    return Err(AxisError {
                        peer,
                        op: "streaming audio",
                        detail: format!(
                            "connection lost after {} of {} bytes: {e}",
                            stats.octets,
                            bytes.len()
                        ),
                        status: None,
                        local: local_error::of_io(&e),
                    });
                }
                stats.first_sent.get_or_insert_with(Instant::now);
                stats.chunks += 1;
                stats.octets += chunk.len() as u64;
            }
            let head = read_head(&mut self.stream, &self.target, "reading the answer").await?;
            stats.status = Some(head.status);
            if !(200..300).contains(&head.status) {
                return Err(AxisError {
                    peer,
                    op: "streaming audio",
                    detail: format!("{} {}", head.status, head.reason),
                    status: Some(head.status),
                    local: None,
                });
            }
            Ok(stats)
        }
    }

    /// Health check: the speaker answers an empty POST (401 counts as alive).
    pub async fn health(target: &AxisTarget) -> Result<u16, AxisError> {
        let mut s = connect(target, "health check").await?;
        s.write_all(request_head(&target.addr.to_string(), &target.path, None, 0).as_bytes())
            .await
            .map_err(|e| AxisError {
                peer: target.addr,
                op: "health check",
                detail: format!("writing: {e}"),
                status: None,
                local: local_error::of_io(&e),
            })?;
        Ok(read_head(&mut s, target, "health check").await?.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The head carries the VAPIX content type, length and credentials.
    #[test]
    fn head_layout() {
        let h = request_head("10.0.0.5:80", TRANSMIT_PATH, Some("Digest x"), 16000);
        assert!(h.starts_with("POST /axis-cgi/audio/transmit.cgi HTTP/1.1\r\n"));
        assert!(h.contains("Content-Type: audio/basic\r\n"));
        assert!(h.contains("Content-Length: 16000\r\n"));
        assert!(h.contains("Authorization: Digest x\r\n"));
        assert!(h.ends_with("\r\n\r\n"));
    }

    /// Partial heads ask for more; complete ones parse; junk is refused.
    #[test]
    fn response_heads() {
        assert_eq!(parse_response_head(b"HTTP/1.1 401 Unauth"), Ok(None));
        let buf =
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"AXIS\"\r\n\r\nbody";
        let (h, n) = parse_response_head(buf).unwrap().unwrap();
        assert_eq!(h.status, 401);
        assert_eq!(h.header("www-authenticate"), Some("Digest realm=\"AXIS\""));
        assert_eq!(&buf[n..], b"body");
        assert!(parse_response_head(b"SIP/2.0 200 OK\r\n\r\n").is_err());
        assert!(parse_response_head(b"HTTP/1.1 99x\r\n\r\n").is_err());
        assert_eq!(
            parse_response_head(&vec![b'a'; MAX_HEAD + 1]),
            Err(HeadError::TooLarge)
        );
    }
}
