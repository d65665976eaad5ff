//! `GET /api/v1/paging/live`: live paging (实时喊话, issue 14) over a
//! WebSocket. Operator role. A bearer token, or the session cookie with the
//! CSRF token as `?csrf=` (a browser cannot set headers on a WebSocket).
//!
//! Protocol (`docs/paging.md`): the first message is JSON `{"targets":
//! [...], "priority": "township"|"superior"|"emergency", "codec":
//! "pcm16"|"opus", "rate": 16000|48000}`; then binary 20 ms frames; then
//! `{"end": true}`. The server answers JSON: `{"type": "live", ...}`,
//! `{"type": "horns", ...}` as horn states change, `{"type": "error",
//! "code", "status"?, "message"}` and `{"type": "ended", ...}`.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::broadcasts::runtime;
use super::extract::Ctx;
use super::{ApiError, AppState};
use crate::auth::Via;
use crate::broadcast::live::dsp::{Codec, Conditioner, Decoder};
use crate::broadcast::live::{AirTap, Inbound, Session};
use crate::broadcast::render::Recipe;
use crate::broadcast::runtime::{LiveFeed, Spec};
use crate::broadcast::{OnPreempt, Priority, Target};

/// How long the client has to send its first message.
const START_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest WebSocket message (a 100 ms frame at 48 kHz is 9,600 bytes).
const MAX_MESSAGE: usize = 16 * 1024;

/// The first message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Start {
    targets: Vec<Target>,
    priority: Priority,
    codec: Codec,
    rate: u32,
}

/// Later text messages.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Control {
    end: bool,
}

/// `?csrf=`
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LiveQuery {
    csrf: Option<String>,
}

/// `GET /api/v1/paging/live` (WebSocket upgrade).
pub async fn live(
    State(st): State<AppState>,
    ctx: Ctx,
    uri: axum::http::Uri,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let q: LiveQuery = match uri.query() {
        Some(qs) => match serde_urlencoded_query(qs) {
            Ok(q) => q,
            Err(e) => return ApiError::new(StatusCode::BAD_REQUEST, "invalid", e).into_response(),
        },
        None => LiveQuery::default(),
    };
    if let Via::Session { csrf, .. } = &ctx.who.via {
        let sent = q.csrf.as_deref().unwrap_or("");
        if sent.len() != csrf.len()
            || sent
                .bytes()
                .zip(csrf.bytes())
                .fold(0u8, |a, (x, y)| a | (x ^ y))
                != 0
        {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "missing or wrong ?csrf= (the session's CSRF token)",
            )
            .into_response();
        }
    }
    if let Err(e) = runtime(&st) {
        return e.into_response();
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => {
            return ApiError::new(
                StatusCode::UPGRADE_REQUIRED,
                "websocket",
                format!("this is a WebSocket endpoint: {e}"),
            )
            .into_response();
        }
    };
    ws.max_message_size(MAX_MESSAGE)
        .on_upgrade(move |socket| page(st, ctx, socket))
}

fn serde_urlencoded_query(qs: &str) -> Result<LiveQuery, String> {
    let mut q = LiveQuery::default();
    for (k, v) in url::form_urlencoded::parse(qs.as_bytes()) {
        match &*k {
            "csrf" => q.csrf = Some(v.into_owned()),
            other => return Err(format!("unknown query parameter `{other}`; only csrf")),
        }
    }
    Ok(q)
}

fn error(code: &str, status: Option<u16>, message: impl Into<String>) -> Value {
    let mut v = json!({"type": "error", "code": code, "message": message.into()});
    if let Some(s) = status {
        v["status"] = json!(s);
    }
    v
}

async fn send(ws: &mut WebSocket, v: &Value) -> bool {
    ws.send(Message::Text(v.to_string().into())).await.is_ok()
}

/// Refuses the page: the error, then a close.
async fn refuse(mut ws: WebSocket, v: Value) {
    let _ = send(&mut ws, &v).await;
    let _ = ws.send(Message::Close(None)).await;
}

/// The first message, or why there is none.
async fn start_message(ws: &mut WebSocket) -> Result<Start, Value> {
    let first = tokio::time::timeout(START_TIMEOUT, ws.recv()).await;
    let text = match first {
        Err(_) => {
            return Err(error("start-timeout", None, "no start message within 5 s"));
        }
        Ok(Some(Ok(Message::Text(t)))) => t,
        Ok(Some(Ok(_))) => {
            return Err(error(
                "bad-start",
                Some(400),
                "the first message must be JSON text: {\"targets\", \"priority\", \"codec\", \"rate\"}",
            ));
        }
        Ok(_) => return Err(error("client-gone", None, "closed before starting")),
    };
    let start: Start = serde_json::from_str(text.as_str())
        .map_err(|e| error("bad-start", Some(400), format!("start message: {e}")))?;
    if start.targets.is_empty() || start.targets.len() > 200 {
        return Err(error(
            "bad-start",
            Some(400),
            "targets: name 1 to 200 targets",
        ));
    }
    if start.priority < Priority::Township {
        return Err(error(
            "bad-start",
            Some(400),
            "priority: township, superior or emergency",
        ));
    }
    Ok(start)
}

/// The recording of one live page, finished when the page ends.
type Recording = std::sync::Arc<std::sync::Mutex<Option<crate::broadcast::aired::AiredWriter>>>;

/// What aired is recorded (`broadcast/aired.rs`) when the gateway keeps
/// recordings: the tap pushes every 8 kHz frame sent to the horns. A
/// recording that cannot be written is marked failed; the page goes on.
fn air_tap(st: &AppState, page: &str) -> (Option<AirTap>, Option<Recording>) {
    let Some(aired) = st.aired.as_ref() else {
        return (None, None);
    };
    match aired.start(page, crate::broadcast::aired::AiredKind::LivePage) {
        Ok(w) => {
            let rec: Recording = std::sync::Arc::new(std::sync::Mutex::new(Some(w)));
            let r2 = rec.clone();
            let tap: AirTap = Box::new(move |f| {
                if let Some(w) = r2.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                    // A failed write marks the recording failed (logged there).
                    let _ = w.push(f);
                }
            });
            (Some(tap), Some(rec))
        }
        Err(e) => {
            tracing::warn!(page, error = %e, "live page not recorded");
            (None, None)
        }
    }
}

/// Ends the page's recording (if any) once the page has ended.
fn finish_recording(page: &str, rec: Option<Recording>) {
    let Some(rec) = rec else { return };
    let w = rec.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(w) = w
        && let Err(e) = w.finish()
    {
        tracing::warn!(page, error = %e, "live page recording failed");
    }
}

/// How a page went, for its `paging.end` audit: the reason, the duration
/// and `after` (the start's summary plus duration, reason, horns, the
/// jitter buffer's counters and `failure`: why nothing aired, as its horns
/// report it, or null).
fn end_entry(
    res: &Result<crate::broadcast::live::Summary, tokio::task::JoinError>,
    mut after: Value,
    horns: usize,
) -> (&'static str, u64, Value) {
    let (reason, ms, failure, detail) = match res {
        Ok(s) => (
            s.reason.as_str(),
            s.duration.as_millis() as u64,
            s.failure.clone(),
            json!({
                "underruns": s.jitter.underruns,
                "dropped": s.jitter.dropped,
                "frames": s.jitter.played,
                "first_frame_delay_ms": s.first_frame_delay.map(|d| d.as_secs_f64() * 1e3),
            }),
        ),
        Err(_) => ("failed", 0, None, Value::Null),
    };
    after["duration_ms"] = json!(ms);
    after["reason"] = json!(reason);
    after["horns"] = json!(horns);
    after["jitter"] = detail;
    after["failure"] = json!(failure);
    (reason, ms, after)
}

async fn page(st: AppState, ctx: Ctx, mut ws: WebSocket) {
    let start = match start_message(&mut ws).await {
        Ok(s) => s,
        Err(v) => return refuse(ws, v).await,
    };
    let decoder = match Decoder::new(start.codec, start.rate) {
        Ok(d) => d,
        Err(e) => return refuse(ws, error(e.code, Some(400), e.message)).await,
    };
    let Ok(rt) = runtime(&st).cloned() else {
        return refuse(
            ws,
            error("unavailable", Some(503), "broadcasts are not running"),
        )
        .await;
    };
    let targets: Vec<String> = start.targets.iter().map(|t| t.to_string()).collect();
    let summary = json!({"targets": targets, "priority": start.priority, "codec": start.codec, "rate": start.rate});
    let spec = Spec {
        id: None,
        origin: format!("operator:{}", ctx.who.user),
        title: format!("live page by {}", ctx.who.user),
        priority: start.priority,
        targets: start.targets,
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
    let submitted = match rt.submit_live(spec, feed.clone(), &ctx.who.user).await {
        Ok(s) => s,
        Err(e) => {
            let kind = e.kind();
            let code = if kind.http_status() == 409 {
                "busy"
            } else {
                kind.code()
            };
            st.audit(&ctx, "paging.start", None, None, Some(summary), "refused");
            return refuse(ws, error(code, Some(kind.http_status()), e.message())).await;
        }
    };
    let id = submitted.id.clone();
    st.audit(
        &ctx,
        "paging.start",
        Some(&id),
        None,
        Some(summary.clone()),
        "ok",
    );
    if !send(
        &mut ws,
        &json!({"type": "live", "id": id, "horns": submitted.horns, "quiet": submitted.quiet}),
    )
    .await
    {
        feed.fail(crate::broadcast::live::EndReason::ClientGone.nothing_aired());
        rt.cancel(&id).await;
        return;
    }
    let (tap, recording) = air_tap(&st, &id);
    let session = Session {
        id: id.clone(),
        feed: feed.clone(),
        decoder,
        conditioner: Conditioner::new(start.rate),
        tap,
        records: crate::broadcast::record::Records::open(&st.store).ok(),
    };
    let (mut sink, mut stream) = ws.split();
    let (in_tx, in_rx) = mpsc::channel::<Inbound>(64);
    let (out_tx, mut out_rx) = mpsc::channel::<Value>(64);
    let reader = tokio::spawn(async move {
        while let Some(m) = stream.next().await {
            let m = match m {
                Ok(m) => m,
                Err(_) => break,
            };
            let inbound = match m {
                Message::Binary(b) => Inbound::Frame(b),
                Message::Text(t) => match serde_json::from_str::<Control>(t.as_str()) {
                    Ok(Control { end: true }) => Inbound::End,
                    _ => continue,
                },
                Message::Close(_) => break,
                _ => continue,
            };
            if in_tx.send(inbound).await.is_err() {
                break;
            }
        }
    });
    let shutdown = st.shutdown.clone();
    let run = tokio::spawn(session.run(in_rx, out_tx, shutdown));
    while let Some(v) = out_rx.recv().await {
        if sink
            .send(Message::Text(v.to_string().into()))
            .await
            .is_err()
        {
            break;
        }
    }
    let res = run.await;
    reader.abort();
    finish_recording(&id, recording);
    if res.is_err() {
        // The session ends its feed; one that panicked did not.
        feed.fail("the page stopped unexpectedly: nothing aired");
    }
    // Horns still queued behind a higher priority are cancelled; those
    // playing are done if audio reached them, else failed (nothing aired).
    rt.cancel(&id).await;
    let (reason, ms, after) = end_entry(&res, summary, submitted.horns);
    st.audit(&ctx, "paging.end", Some(&id), None, Some(after), reason);
    tracing::info!(page = %id, reason, duration_ms = ms, "live page ended");
    let _ = sink
        .send(Message::Text(
            json!({"type": "ended", "id": id, "reason": reason, "duration_ms": ms})
                .to_string()
                .into(),
        ))
        .await;
    let _ = sink.send(Message::Close(None)).await;
}
