//! Tokio UDP transport and timers around [`crate::sip::InviteClient`]: place
//! a call and wait for the answer (retransmitting, with the answer timeout),
//! keep the dialog listening for the horn's BYE while media flows, hang up,
//! and send OPTIONS as a health check.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::g711::Codec;
use crate::local_error::{self, LocalResource};
use crate::sip::{self, Answered, AutoAnswer, CallConfig, CallError, Event, InviteClient, Message};

/// A SIP operation that failed, naming the horn and what came back.
#[derive(Debug, thiserror::Error)]
#[error("SIP {op} to {peer}: {detail}")]
pub struct SipIoError {
    /// The horn.
    pub peer: SocketAddr,
    /// `INVITE`, `BYE`, `OPTIONS`.
    pub op: &'static str,
    /// What happened, readable.
    pub detail: String,
    /// The call-level reason, when the call itself failed.
    pub call: Option<CallError>,
    /// The gateway's own resource that ran out (a socket that could not
    /// be made or used for want of a descriptor, buffer, memory or port):
    /// nothing was learnt about the horn.
    pub local: Option<LocalResource>,
}

impl SipIoError {
    fn io(peer: SocketAddr, op: &'static str, what: &str, e: std::io::Error) -> SipIoError {
        SipIoError {
            peer,
            op,
            detail: format!("{what}: {e}"),
            call: None,
            local: local_error::of_io(&e),
        }
    }
}

/// A horn to call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipTarget {
    /// User part of the horn's URI.
    pub user: String,
    /// Horn address.
    pub remote: SocketAddr,
    /// Digest credentials.
    pub credentials: Option<(String, String)>,
    /// Auto-answer headers.
    pub auto_answer: AutoAnswer,
    /// How long to wait for the answer.
    pub answer_timeout: Duration,
    /// Codecs offered, preferred first.
    pub codecs: Vec<Codec>,
}

impl SipTarget {
    /// `user@remote`, PCMU then PCMA, all auto-answer headers, 5 s to answer.
    pub fn new(user: &str, remote: SocketAddr) -> SipTarget {
        SipTarget {
            user: user.to_string(),
            remote,
            credentials: None,
            auto_answer: AutoAnswer::All,
            answer_timeout: Duration::from_secs(5),
            codecs: vec![Codec::Pcmu, Codec::Pcma],
        }
    }
}

/// A connected UDP socket to the horn and our address as it sees us.
async fn socket(
    remote: SocketAddr,
    op: &'static str,
) -> Result<(UdpSocket, SocketAddr), SipIoError> {
    let bind: SocketAddr = (Ipv4Addr::UNSPECIFIED, 0).into();
    let sock = UdpSocket::bind(bind)
        .await
        .map_err(|e| SipIoError::io(remote, op, "binding a local port", e))?;
    sock.connect(remote)
        .await
        .map_err(|e| SipIoError::io(remote, op, "connecting the UDP socket", e))?;
    let local = sock
        .local_addr()
        .map_err(|e| SipIoError::io(remote, op, "reading the local address", e))?;
    Ok((sock, local))
}

fn random_token() -> String {
    format!("{:016x}", rand::thread_rng().r#gen::<u64>())
}

/// An answered call: media may flow to [`SipSession::answered`].
#[derive(Debug)]
pub struct SipSession {
    /// Where to send RTP and with which codec.
    pub answered: Answered,
    /// Provisional responses heard before the answer.
    pub provisional: Vec<u16>,
    /// Time from the INVITE to the 200 OK.
    pub answer_time: Duration,
    hung_up: CancellationToken,
    cmd: mpsc::Sender<oneshot::Sender<bool>>,
    peer: SocketAddr,
}

impl SipSession {
    /// Cancelled when the horn hangs up (sends BYE) during the call.
    pub fn hung_up(&self) -> CancellationToken {
        self.hung_up.clone()
    }

    /// Sends BYE and waits for its answer (retransmitting up to 32 s).
    /// Ok also when the horn had hung up already.
    pub async fn hangup(self) -> Result<(), SipIoError> {
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(tx).await.is_err() {
            return Ok(()); // the dialog ended: the horn's BYE was answered
        }
        match rx.await {
            Ok(true) | Err(_) => Ok(()),
            Ok(false) => Err(SipIoError {
                peer: self.peer,
                op: "BYE",
                detail: "no answer to BYE".into(),
                call: None,
                local: None,
            }),
        }
    }
}

/// Places a call offering RTP from `rtp_local`; returns once answered.
pub async fn call(target: &SipTarget, rtp_local: SocketAddr) -> Result<SipSession, SipIoError> {
    let peer = target.remote;
    let (sock, local) = socket(peer, "INVITE").await?;
    let rtp_addr = if rtp_local.ip().is_unspecified() {
        SocketAddr::new(local.ip(), rtp_local.port())
    } else {
        rtp_local
    };
    let cfg = CallConfig {
        user: target.user.clone(),
        remote: peer,
        local,
        rtp: rtp_addr,
        codecs: target.codecs.clone(),
        auto_answer: target.auto_answer,
        credentials: target.credentials.clone(),
        answer_timeout: target.answer_timeout,
        call_id: format!("{}@tgw", random_token()),
        from_tag: random_token(),
        branch_seed: random_token(),
        session_id: rand::thread_rng().r#gen::<u32>().into(),
    };
    let origin = Instant::now();
    let (mut client, invite) = InviteClient::new(cfg, Duration::ZERO);
    let send = |bytes: Vec<u8>| {
        let sock = &sock;
        async move {
            sock.send(&bytes)
                .await
                .map_err(|e| SipIoError::io(peer, "INVITE", "sending", e))
        }
    };
    send(invite).await?;
    let mut provisional = Vec::new();
    let mut refused_port = false;
    let mut buf = vec![0u8; sip::MAX_MESSAGE];
    loop {
        let deadline = client
            .next_deadline()
            .map_or(origin + target.answer_timeout, |d| origin + d);
        let events = tokio::select! {
            r = sock.recv(&mut buf) => match r {
                Ok(n) => match sip::parse(&buf[..n]) {
                    Ok(m) => client.on_message(&m, origin.elapsed()),
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "unreadable SIP datagram ignored");
                        Vec::new()
                    }
                },
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    refused_port = true;
                    Vec::new()
                }
                Err(e) => return Err(SipIoError::io(peer, "INVITE", "receiving", e)),
            },
            _ = tokio::time::sleep_until(deadline) => client.on_tick(origin.elapsed()),
        };
        for ev in events {
            match ev {
                Event::Send(b) => {
                    send(b).await?;
                }
                Event::Provisional(s) => provisional.push(s),
                Event::Answered(a) => {
                    let hung_up = CancellationToken::new();
                    let (cmd, cmd_rx) = mpsc::channel(1);
                    let answer_time = a.at;
                    tokio::spawn(dialog(
                        Arc::new(sock),
                        client,
                        origin,
                        hung_up.clone(),
                        cmd_rx,
                    ));
                    return Ok(SipSession {
                        answered: a,
                        provisional,
                        answer_time,
                        hung_up,
                        cmd,
                        peer,
                    });
                }
                Event::Failed(e) => {
                    let mut detail = e.to_string();
                    if refused_port && matches!(e, CallError::Timeout(_)) {
                        detail.push_str(" (ICMP port unreachable: nothing listens there)");
                    }
                    return Err(SipIoError {
                        peer,
                        op: "INVITE",
                        detail,
                        call: Some(e),
                        local: None,
                    });
                }
                Event::Ended => {}
            }
        }
    }
}

/// The dialog after the answer: answers the horn's BYE (cancelling
/// `hung_up`), or sends ours on command and reports whether it was answered.
async fn dialog(
    sock: Arc<UdpSocket>,
    mut client: InviteClient,
    origin: Instant,
    hung_up: CancellationToken,
    mut cmd: mpsc::Receiver<oneshot::Sender<bool>>,
) {
    let mut buf = vec![0u8; sip::MAX_MESSAGE];
    let mut waiting: Option<oneshot::Sender<bool>> = None;
    loop {
        let deadline = client.next_deadline().map(|d| origin + d);
        let events = tokio::select! {
            r = sock.recv(&mut buf) => match r {
                Ok(n) => match sip::parse(&buf[..n]) {
                    Ok(m) => client.on_message(&m, origin.elapsed()),
                    Err(_) => Vec::new(),
                },
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Vec::new(),
                Err(_) => break,
            },
            c = cmd.recv(), if waiting.is_none() => match c {
                Some(reply) => {
                    waiting = Some(reply);
                    match client.hangup(origin.elapsed()) {
                        Some(bye) => vec![Event::Send(bye)],
                        None => vec![Event::Ended],
                    }
                }
                None => match client.hangup(origin.elapsed()) {
                    // The session was dropped: still say goodbye.
                    Some(bye) => vec![Event::Send(bye)],
                    None => break,
                },
            },
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => client.on_tick(origin.elapsed()),
        };
        for ev in events {
            match ev {
                Event::Send(b) => {
                    let _ = sock.send(&b).await;
                }
                Event::Failed(CallError::HungUp) => {
                    hung_up.cancel();
                }
                Event::Ended => {
                    if let Some(w) = waiting.take() {
                        let _ = w.send(client.state() == sip::CallState::Terminated);
                    }
                    return;
                }
                _ => {}
            }
        }
        if client.state() == sip::CallState::Terminated
            && waiting.is_none()
            && hung_up.is_cancelled()
        {
            // Keep answering retransmitted BYEs briefly, then stop.
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while let Ok(n) = sock.recv(&mut buf).await {
                    if let Ok(m) = sip::parse(&buf[..n]) {
                        for ev in client.on_message(&m, origin.elapsed()) {
                            if let Event::Send(b) = ev {
                                let _ = sock.send(&b).await;
                            }
                        }
                    }
                }
            })
            .await;
            return;
        }
    }
}

/// Sends OPTIONS and returns the final response (any status: a horn that
/// answers at all is alive), retransmitting until `timeout`.
pub async fn options(
    user: &str,
    remote: SocketAddr,
    timeout: Duration,
) -> Result<sip::Response, SipIoError> {
    let (sock, local) = socket(remote, "OPTIONS").await?;
    let call_id = format!("{}@tgw", random_token());
    let req = sip::options_request(user, remote, local, &call_id, &random_token());
    let mut buf = vec![0u8; sip::MAX_MESSAGE];
    let start = Instant::now();
    let mut interval = sip::T1;
    loop {
        sock.send(&req)
            .await
            .map_err(|e| SipIoError::io(remote, "OPTIONS", "sending", e))?;
        let until = (Instant::now() + interval).min(start + timeout);
        loop {
            match tokio::time::timeout_at(until, sock.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Ok(n)) => {
                    if let Ok(Message::Response(r)) = sip::parse(&buf[..n])
                        && r.headers.get("Call-ID") == Some(call_id.as_str())
                        && r.status >= 200
                    {
                        return Ok(r);
                    }
                }
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    return Err(SipIoError {
                        peer: remote,
                        op: "OPTIONS",
                        detail: "ICMP port unreachable: nothing listens there".into(),
                        call: None,
                        local: None,
                    });
                }
                Ok(Err(e)) => return Err(SipIoError::io(remote, "OPTIONS", "receiving", e)),
            }
        }
        if Instant::now() >= start + timeout {
            return Err(SipIoError {
                peer: remote,
                op: "OPTIONS",
                detail: format!("no answer within {timeout:?}"),
                call: Some(CallError::Timeout(timeout)),
                local: None,
            });
        }
        interval = (interval * 2).min(Duration::from_secs(4));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A horn that reads the INVITE and never answers: after the answer
    /// timeout the call fails as a timeout naming the horn, and the
    /// INVITE was retransmitted meanwhile (paused time).
    #[tokio::test(start_paused = true)]
    async fn silent_horn_times_out() {
        let horn = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut t = SipTarget::new("horn", horn.local_addr().unwrap());
        t.answer_timeout = Duration::from_secs(2);
        let counter = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut invites = 0;
            while let Ok(Ok((n, _))) =
                tokio::time::timeout(Duration::from_secs(3), horn.recv_from(&mut buf)).await
            {
                if buf[..n].starts_with(b"INVITE") {
                    invites += 1;
                }
            }
            invites
        });
        let e = call(&t, "127.0.0.1:4000".parse().unwrap())
            .await
            .unwrap_err();
        assert_eq!(e.call, Some(CallError::Timeout(Duration::from_secs(2))));
        assert_eq!(e.op, "INVITE");
        assert!(e.to_string().contains(&t.remote.to_string()), "{e}");
        assert_eq!(counter.await.unwrap(), 3, "sent at 0, 0.5 and 1.5 s");
    }

    /// Nothing listens: OPTIONS fails at once on the ICMP port unreachable.
    #[tokio::test]
    async fn options_to_a_closed_port() {
        let port = {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap().port()
        };
        let e = options(
            "horn",
            ([127, 0, 0, 1], port).into(),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(e.detail.contains("port unreachable"), "{e}");
    }
}
