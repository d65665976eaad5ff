//! Horns as GB/T 28181 voice output channels (语音广播, issue 17 item 5):
//! the platform's `Broadcast` notify becomes a live page at `superior`
//! priority on the channel's horn; we answer Result OK (or ERROR with the
//! reason), INVITE the platform for its audio (G.711, we `recvonly`), and
//! feed the RTP it sends through the live-page jitter buffer to the horn,
//! recorded and audited like an operator's page (who = the platform).
//! The page ends on BYE from either side, when the platform does not
//! answer the INVITE, or when no RTP comes for `media_setup_timeout_secs`.
//! A page that aired nothing (no answer, refused, a bad answer, no RTP)
//! ends `failed` on its horn with why ([`LiveFeed::fail`]), never `done`.
//! Pure parts: `device_drivers::gb28181::voice`; the dialog is the horn
//! calls' `sip::InviteClient`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use device_drivers::gb28181::manscdp::{self, Manscdp};
use device_drivers::gb28181::voice::{self as proto, Broadcast};
use device_drivers::sip::{
    AutoAnswer, CallConfig, CallError, Event, InviteAs, InviteClient, Message,
};
use serde_json::json;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::{Gb, Shared, Svc};
use crate::broadcast::aired::{Aired, AiredKind, AiredWriter};
use crate::broadcast::live::jitter::{FRAME_MS, FRAME_SAMPLES, JitterBuffer, Pop};
use crate::broadcast::render::Recipe;
use crate::broadcast::runtime::{Broadcasts, LiveFeed, Spec};
use crate::broadcast::{OnPreempt, Priority, Target};
use crate::store::audit::AuditRetention;
use crate::store::{NewAudit, Store};

/// What voice broadcasts need from the rest of the daemon, set once the
/// broadcast runtime is up ([`Gb::set_voice`]).
#[derive(Clone)]
pub struct VoiceDeps {
    /// The broadcast runtime (live pages).
    pub broadcasts: Broadcasts,
    /// The recorder of what aired, when recordings are kept.
    pub aired: Option<Aired>,
    /// The audit log's retention.
    pub audit: AuditRetention,
}

/// The voice side of the service: its dependencies and the calls in
/// progress (Call-ID → the call task's inbox).
pub(super) struct Voice {
    deps: OnceLock<VoiceDeps>,
    calls: Mutex<HashMap<String, mpsc::Sender<Message>>>,
    shutdown: CancellationToken,
}

impl Voice {
    pub(super) fn new(shutdown: CancellationToken) -> Voice {
        Voice {
            deps: OnceLock::new(),
            calls: Mutex::new(HashMap::new()),
            shutdown,
        }
    }

    fn calls(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::Sender<Message>>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands a SIP message of a voice call (by Call-ID) to its task; false
    /// when it belongs to no voice call.
    pub(super) fn route(&self, msg: &Message) -> bool {
        let Some(id) = msg.headers().get("Call-ID") else {
            return false;
        };
        let Some(tx) = self.calls().get(id).cloned() else {
            return false;
        };
        if tx.try_send(msg.clone()).is_err() {
            tracing::debug!(call_id = %id, "GB/T 28181 voice call busy or gone; message dropped");
        }
        true
    }
}

impl Gb {
    /// Enables voice broadcasts (until then a Broadcast is answered ERROR).
    pub fn set_voice(&self, deps: VoiceDeps) {
        let _ = self.shared.voice.deps.set(deps);
    }
}

/// One accepted broadcast, ready to call the platform.
struct Call {
    call_id: String,
    platform: String,
    platform_addr: SocketAddr,
    channel_id: String,
    speaker: String,
    page: String,
    feed: LiveFeed,
    rtp: UdpSocket,
    client: CallConfig,
    invite_as: InviteAs,
    timeout: Duration,
    deps: VoiceDeps,
    store: Store,
    sip: super::transport::Sender,
    shared: Arc<Shared>,
}

/// Binds a UDP port of `min..=max` on `ip`, starting at a random one.
fn bind_rtp(ip: IpAddr, min: u16, max: u16) -> Option<UdpSocket> {
    let span = u32::from(max.saturating_sub(min)) + 1;
    let start = rand::random::<u32>();
    (0..span).find_map(|i| {
        let port = min + (start.wrapping_add(i) % span) as u16;
        let s = std::net::UdpSocket::bind(SocketAddr::new(ip, port)).ok()?;
        s.set_nonblocking(true).ok()?;
        UdpSocket::from_std(s).ok()
    })
}

fn audit(store: &Store, keep: AuditRetention, e: NewAudit<'_>) {
    if let Err(err) = store.audit(e, keep) {
        tracing::warn!(error = %err, "audit entry not written");
    }
}

impl Svc {
    /// A `Notify`/`Broadcast` from platform `i` (already answered 200): the
    /// MANSCDP Response, then, when accepted, the call to the platform.
    pub(super) async fn broadcast(&mut self, i: usize, m: &Manscdp) {
        let cs = self.platforms[i].charset;
        let name = self.platforms[i].name.clone();
        let (sn, target, result) = match proto::broadcast(m) {
            Ok(b) => {
                let r = self.accept(i, &b).await;
                (b.sn, b.target_id.clone(), r)
            }
            Err(e) => (m.sn, m.device_id.clone(), Err(e.to_string())),
        };
        if let Err(why) = &result {
            tracing::warn!(platform = %name, channel = %target, reason = %why, "GB/T 28181 broadcast refused");
        }
        let body = proto::broadcast_response(
            sn,
            &target,
            result.as_ref().map(|_| ()).map_err(String::as_str),
            cs,
        );
        let (_, bytes) = self.platforms[i].reg.message(body, manscdp::CONTENT_TYPE);
        self.send(self.platforms[i].addr, &bytes).await;
        if let Ok(call) = result {
            let (tx, rx) = mpsc::channel(16);
            self.shared.voice.calls().insert(call.call_id.clone(), tx);
            tokio::spawn(run_call(*call, rx));
        }
    }

    /// Checks the channel, takes its horn with a live page and binds the
    /// RTP port; the reason when refused.
    async fn accept(&mut self, i: usize, b: &Broadcast) -> Result<Box<Call>, String> {
        let platform = self.platforms[i].name.clone();
        if !self.catalog.voice.contains_key(&b.target_id) {
            // A speaker imported since the last rebuild.
            self.refresh_catalog(true).await;
        }
        let Some(speaker) = self.catalog.voice.get(&b.target_id).cloned() else {
            return Err(format!("unknown voice channel {}", b.target_id));
        };
        let Some(deps) = self.shared.voice.deps.get().cloned() else {
            return Err("broadcasts are not running on this gateway".into());
        };
        let media = self.cfg.media();
        // Our SIP address as this platform reaches us (public_address when set).
        let local = super::local_for(
            self.shared.listen,
            self.platforms[i].addr,
            self.cfg.public_address,
        );
        let Some(rtp) = bind_rtp(self.cfg.listen.ip(), media.rtp_port_min, media.rtp_port_max)
        else {
            return Err(format!(
                "no free RTP port in {}-{}",
                media.rtp_port_min, media.rtp_port_max
            ));
        };
        let rtp_port = rtp.local_addr().map(|a| a.port()).unwrap_or_default();
        let spec = Spec {
            id: None,
            origin: format!("gb28181:{platform}"),
            title: format!("GB/T 28181 broadcast by {platform}"),
            priority: Priority::Superior,
            targets: vec![Target::Speaker(speaker.clone())],
            recipe: Recipe {
                pre: None,
                items: Vec::new(),
                post: None,
                repeat: 1,
                interval: Duration::ZERO,
                volume: None,
            },
            start_at: None,
            latest_start: None,
            on_preempt: OnPreempt::Drop,
        };
        let feed = LiveFeed::new();
        let addr = self.platforms[i].addr.to_string();
        let submitted = deps
            .broadcasts
            .submit_live(spec, feed.clone(), &platform)
            .await;
        let (page, outcome, why) = match &submitted {
            Ok(s) => (Some(s.id.clone()), "ok", None),
            Err(e) if e.kind().http_status() == 409 => {
                (None, "busy", Some(format!("horn busy: {}", e.message())))
            }
            Err(e) => (None, e.kind().code(), Some(e.message().to_string())),
        };
        audit(
            &self.store,
            deps.audit,
            NewAudit {
                actor: &platform,
                source: &addr,
                action: "gb28181.broadcast",
                target: Some(&b.target_id),
                before: None,
                after: Some(json!({
                    "speaker": speaker, "source_id": b.source_id, "page": page, "reason": why,
                })),
                outcome,
            },
        );
        let page = match (page, why) {
            (Some(p), _) => p,
            (None, why) => return Err(why.unwrap_or_default()),
        };
        tracing::info!(platform = %platform, channel = %b.target_id, speaker = %speaker, page = %page, rtp_port, "GB/T 28181 broadcast accepted; inviting the platform");
        let call_id = format!("{:x}v@tgw", rand::random::<u64>());
        let reg = self.platforms[i].reg.config();
        let client = CallConfig {
            user: b.source_id.clone(),
            remote: self.platforms[i].addr,
            local,
            rtp: SocketAddr::new(local.ip(), rtp_port),
            codecs: proto::OFFERED.to_vec(),
            auto_answer: AutoAnswer::default(),
            credentials: None,
            answer_timeout: Duration::from_secs(media.media_setup_timeout_secs),
            call_id: call_id.clone(),
            from_tag: format!("{:x}", rand::random::<u32>()),
            branch_seed: format!("{:x}", rand::random::<u32>()),
            session_id: 0,
        };
        let invite_as = InviteAs {
            from_user: b.target_id.clone(),
            from_host: reg.domain.clone(),
            headers: vec![("Subject".into(), proto::subject(b))],
            sdp: proto::audio_offer(&b.target_id, local.ip(), rtp_port, rand::random::<u32>()),
        };
        Ok(Box::new(Call {
            call_id,
            platform,
            platform_addr: self.platforms[i].addr,
            channel_id: b.target_id.clone(),
            speaker,
            page,
            feed,
            rtp,
            client,
            invite_as,
            timeout: Duration::from_secs(media.media_setup_timeout_secs),
            deps,
            store: self.store.clone(),
            sip: self.net.sender(),
            shared: self.shared.clone(),
        }))
    }
}

/// What a call did, for its end.
#[derive(Default)]
struct Counts {
    packets: u64,
    bad: u64,
    frames: u64,
}

/// The call's SIP events: sends go out, the end (reason, detail) comes back.
async fn events(
    c: &Call,
    evs: Vec<Event>,
    answered: &mut Option<Instant>,
) -> Option<(&'static str, String)> {
    let mut end = None;
    for e in evs {
        match e {
            Event::Send(b) => {
                c.sip.send(c.platform_addr, &b).await;
            }
            Event::Provisional(_) | Event::Ended => {}
            Event::Answered(a) => {
                tracing::info!(call_id = %c.call_id, platform_rtp = %a.rtp, codec = ?a.codec, "GB/T 28181 broadcast: platform answered");
                *answered = Some(Instant::now());
            }
            Event::Failed(f) => {
                let reason = match &f {
                    CallError::Timeout(_) => "no-answer",
                    CallError::HungUp => "platform-bye",
                    CallError::Answer(_) => "bad-answer",
                    CallError::Refused { .. } | CallError::Auth { .. } => "refused",
                };
                let detail = match f {
                    CallError::HungUp => "the platform hung up (BYE)".to_string(),
                    f => f.to_string(),
                };
                end.get_or_insert((reason, detail));
            }
        }
    }
    end
}

/// The call from INVITE to its end, and the page's end.
async fn run_call(c: Call, mut rx: mpsc::Receiver<Message>) {
    let t0 = Instant::now();
    let since = |t: Instant| t - t0;
    let (mut client, invite) =
        InviteClient::new_as(c.client.clone(), Some(c.invite_as.clone()), Duration::ZERO);
    let mut answered: Option<Instant> = None;
    let mut end = events(&c, vec![Event::Send(invite)], &mut answered).await;
    let mut writer: Option<AiredWriter> = c.deps.aired.as_ref().and_then(|a| {
        a.start(&c.page, AiredKind::LivePage)
            .map_err(
                |e| tracing::warn!(page = %c.page, error = %e, "GB/T 28181 broadcast not recorded"),
            )
            .ok()
    });
    let mut jitter = JitterBuffer::new();
    let mut pending: Vec<i16> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(FRAME_MS as u64));
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut heard = t0 + c.timeout;
    let mut counts = Counts::default();
    let mut buf = vec![0u8; 2048];
    let far = t0 + Duration::from_secs(86_400 * 365);
    let (reason, detail) = loop {
        if let Some(e) = end.take() {
            break e;
        }
        let sip_at = client.next_deadline().map_or(far, |d| t0 + d);
        let up = answered.is_some();
        tokio::select! {
            _ = c.shared.voice.shutdown.cancelled() => {
                if let Some(bye) = client.hangup(since(Instant::now())) {
                    events(&c, vec![Event::Send(bye)], &mut answered).await;
                }
                break ("shutdown", "the gateway is stopping".to_string());
            }
            m = rx.recv() => match m {
                Some(m) => {
                    let evs = client.on_message(&m, since(Instant::now()));
                    end = events(&c, evs, &mut answered).await;
                    if let (true, Some(a)) = (!up, answered) {
                        heard = a + c.timeout;
                    }
                }
                None => break ("stopped", "the service stopped".to_string()),
            },
            _ = tokio::time::sleep_until(sip_at) => {
                let evs = client.on_tick(since(Instant::now()));
                end = events(&c, evs, &mut answered).await;
            }
            r = c.rtp.recv_from(&mut buf), if up => {
                let Ok((n, _)) = r else { continue };
                match proto::parse_rtp(&buf[..n]).and_then(|p| proto::decode_g711(&p)) {
                    Ok(pcm) => {
                        counts.packets += 1;
                        heard = Instant::now() + c.timeout;
                        pending.extend_from_slice(&pcm);
                        let now_ms = since(Instant::now()).as_millis() as i64;
                        while pending.len() >= FRAME_SAMPLES {
                            let f: Vec<i16> = pending.drain(..FRAME_SAMPLES).collect();
                            jitter.push(f, now_ms);
                        }
                    }
                    Err(e) => {
                        counts.bad += 1;
                        if counts.bad == 1 {
                            tracing::warn!(call_id = %c.call_id, error = %e, "GB/T 28181 broadcast: unusable RTP packet ignored");
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until(heard), if up => {
                if let Some(bye) = client.hangup(since(Instant::now())) {
                    events(&c, vec![Event::Send(bye)], &mut answered).await;
                }
                break ("rtp-timeout", format!("no RTP from the platform for {} s", c.timeout.as_secs()));
            }
            _ = tick.tick(), if up => {
                let f = match jitter.pop() {
                    Pop::Waiting => continue,
                    Pop::Frame(f) => f,
                    Pop::Silence => vec![0; FRAME_SAMPLES],
                };
                counts.frames += 1;
                if let Some(w) = writer.as_mut() {
                    let _ = w.push(&f);
                }
                c.feed.send(Arc::from(f));
            }
        }
    };
    c.shared.voice.calls().remove(&c.call_id);
    // A page that aired nothing ends failed, with why, on its horn and in
    // the broadcast's record: the platform is never told it aired.
    let failure = (counts.frames == 0).then(|| nothing_aired(reason, &detail));
    match &failure {
        Some(why) => c.feed.fail(why.clone()),
        None => c.feed.end(),
    }
    c.deps.broadcasts.cancel(&c.page).await;
    if let Some(w) = writer
        && let Err(e) = w.finish()
    {
        tracing::warn!(page = %c.page, error = %e, "GB/T 28181 broadcast recording failed");
    }
    let ms = t0.elapsed().as_millis() as u64;
    let expected = reason == "shutdown"
        || (failure.is_none() && matches!(reason, "platform-bye" | "rtp-timeout"));
    if expected {
        tracing::info!(platform = %c.platform, channel = %c.channel_id, page = %c.page, reason, detail = %detail, duration_ms = ms, packets = counts.packets, "GB/T 28181 broadcast ended");
    } else {
        tracing::warn!(platform = %c.platform, channel = %c.channel_id, page = %c.page, reason, detail = %detail, duration_ms = ms, packets = counts.packets, failure = failure.as_deref().unwrap_or(""), "GB/T 28181 broadcast ended");
    }
    audit(
        &c.store,
        c.deps.audit,
        NewAudit {
            actor: &c.platform,
            source: &c.platform_addr.to_string(),
            action: "gb28181.broadcast.end",
            target: Some(&c.channel_id),
            before: None,
            after: Some(json!({
                "speaker": c.speaker, "page": c.page, "reason": reason, "detail": detail,
                "duration_ms": ms, "packets": counts.packets, "bad_packets": counts.bad,
                "frames": counts.frames, "failure": failure,
            })),
            outcome: reason,
        },
    );
}

/// Why a call's page aired nothing, for the horn's `failed` report: what
/// went wrong, the end reason, then "nothing aired".
fn nothing_aired(reason: &str, detail: &str) -> String {
    let what = match reason {
        "no-answer" => "the platform did not answer the INVITE".to_string(),
        "refused" => format!(
            "the platform refused the INVITE: {}",
            detail.strip_prefix("refused: ").unwrap_or(detail)
        ),
        "bad-answer" => format!(
            "the platform's answer to the INVITE was unusable: {}",
            detail.strip_prefix("unusable answer: ").unwrap_or(detail)
        ),
        "platform-bye" => "the platform hung up before sending any audio".to_string(),
        "shutdown" => "the gateway stopped before any audio came".to_string(),
        _ => detail.to_string(),
    };
    format!("{what} ({reason}): nothing aired")
}

#[cfg(test)]
mod tests {
    use super::nothing_aired;

    /// Each end reason reads as what went wrong, the reason, and that
    /// nothing aired (the horn's `failed` text a centre operator sees).
    #[test]
    fn a_call_that_aired_nothing_says_why() {
        assert_eq!(
            nothing_aired("no-answer", "no answer within 3s"),
            "the platform did not answer the INVITE (no-answer): nothing aired"
        );
        assert_eq!(
            nothing_aired("refused", "refused: 486 Busy Here"),
            "the platform refused the INVITE: 486 Busy Here (refused): nothing aired"
        );
        assert_eq!(
            nothing_aired("bad-answer", "unusable answer: no audio"),
            "the platform's answer to the INVITE was unusable: no audio (bad-answer): nothing aired"
        );
        assert_eq!(
            nothing_aired("rtp-timeout", "no RTP from the platform for 3 s"),
            "no RTP from the platform for 3 s (rtp-timeout): nothing aired"
        );
    }
}
