//! The simulator's HTTP control endpoint, for another process (the demo,
//! browser tests) to inject faults:
//!
//! - `GET /manifest` → the [`crate::Manifest`] as JSON
//! - `POST /devices/{id}/fault` with body `offline`, `slow:2s`, ... or `clear`
//!   (every [`crate::Fault`] string, including the stream faults
//!   `stream-refused`, `frozen`, `low-fps:5`, `packet-loss:10`, `wrong-codec`
//!   and `flapping:30`, and the event faults `tamper`, `video-loss`,
//!   `motion` and `expire-subscriptions`)
//! - `GET /devices/{id}/fault` → the current fault (`none` when clear)
//! - `GET /devices/{id}/report` → a speaker's [`crate::SpeakerReport`] as JSON

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::{Fault, Shared};

/// Serves the control endpoint until `shutdown`.
pub(crate) async fn run(listener: TcpListener, shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            acc = listener.accept() => {
                let Ok((stream, _)) = acc else { continue };
                let shared = shared.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(route(&shared, req).await) }
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        }
    }
    conns.abort_all();
}

fn text(status: StatusCode, ctype: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, ctype)
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn plain(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    text(status, "text/plain; charset=utf-8", body.into())
}

fn json<T: serde::Serialize>(v: &T) -> Response<Full<Bytes>> {
    match serde_json::to_string(v) {
        Ok(s) => text(StatusCode::OK, "application/json", s),
        Err(e) => plain(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn route(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method().clone(), parts.as_slice()) {
        (Method::GET, ["manifest"]) => json(&shared.manifest),
        (Method::GET, ["devices", id, "fault"]) => match shared.fault(id) {
            Ok(Some(f)) => plain(StatusCode::OK, f.to_string()),
            Ok(None) => plain(StatusCode::OK, "none"),
            Err(e) => plain(StatusCode::NOT_FOUND, e.to_string()),
        },
        (Method::GET, ["devices", id, "report"]) => match shared.speaker_report(id) {
            Some(r) => json(&r),
            None => plain(StatusCode::NOT_FOUND, format!("no speaker with id {id:?}")),
        },
        (Method::POST, ["devices", id, "fault"]) => {
            let id = id.to_string();
            let body = match Limited::new(req.into_body(), 1024).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "body over 1 KiB"),
            };
            let Ok(s) = std::str::from_utf8(&body) else {
                return plain(StatusCode::BAD_REQUEST, "body is not UTF-8");
            };
            let s = s.trim();
            let fault = if s.is_empty()
                || s.eq_ignore_ascii_case("clear")
                || s.eq_ignore_ascii_case("none")
            {
                None
            } else {
                match s.parse::<Fault>() {
                    Ok(f) => Some(f),
                    Err(e) => return plain(StatusCode::BAD_REQUEST, e.to_string()),
                }
            };
            let shown = fault.as_ref().map_or("none".to_string(), Fault::to_string);
            match shared.set_fault(&id, fault) {
                Ok(()) => plain(StatusCode::OK, format!("{id}: {shown}")),
                Err(e) => plain(StatusCode::NOT_FOUND, e.to_string()),
            }
        }
        _ => plain(StatusCode::NOT_FOUND, format!("no route for {path}")),
    }
}
