//! Drives `tgw::gb28181::media::Relays` without SIP, for the e2e suite
//! (`tests/tests/gb28181_media.rs`) and the relay benchmark.
//!
//! Reads one JSON command per stdin line and prints one JSON line per answer:
//!
//! ```text
//! {"op":"invite","call":"c1","url":"rtsp://…","user":"admin","password":"…","offer":"v=0…"}
//!   → {"call":"c1","ok":true,"answer":"v=0…"} | {"call":"c1","ok":false,"status":486,"error":"…"}
//! {"op":"ack","call":"c1"}      → {"call":"c1","ok":true}
//! {"op":"bye","call":"c1"}      → {"call":"c1","ok":true}
//! {"op":"active"}               → {"active":[RelayInfo…]}
//! ```
//!
//! Arguments: `[max_relays] [rtp_port_min] [rtp_port_max] [setup_timeout_secs] [camera_timeout_secs]`.
//! Invites run concurrently; answers come in completion order. Exits at EOF.

use std::io::Write as _;
use std::net::IpAddr;

use serde_json::{Value, json};
use tgw::config::gb28181_media::Gb28181Media;
use tgw::gb28181::media::Relays;
use tgw::gb28181::media_api::{Media, MediaSource};

fn say(v: Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let cfg = Gb28181Media {
        max_relays: num(0, 32) as usize,
        rtp_port_min: num(1, 30000) as u16,
        rtp_port_max: num(2, 30999) as u16,
        media_setup_timeout_secs: num(3, 10),
        camera_timeout_secs: num(4, 10),
        ..Gb28181Media::default()
    };
    cfg.check().map_err(anyhow::Error::msg)?;
    let relays = Relays::new(cfg, tgw::base::clock::system());
    let local: IpAddr = "127.0.0.1".parse()?;
    // stdin on a thread (tokio's io-std is not enabled in this workspace).
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = rx.recv().await {
        let Ok(cmd) = serde_json::from_str::<Value>(&line) else {
            say(json!({"ok": false, "error": "not JSON"}));
            continue;
        };
        let call = text(&cmd, "call");
        match cmd["op"].as_str().unwrap_or_default() {
            "invite" => {
                let relays = relays.clone();
                let source = MediaSource {
                    device_id: call.clone(),
                    channel_id: "34020000001320000001".into(),
                    rtsp_url: text(&cmd, "url"),
                    username: cmd["user"].as_str().map(str::to_string),
                    password: cmd["password"].as_str().map(str::to_string),
                };
                let offer = text(&cmd, "offer");
                tokio::spawn(async move {
                    match relays.invite(&call, source, &offer, local).await {
                        Ok(answer) => say(json!({"call": call, "ok": true, "answer": answer})),
                        Err(e) => say(json!({"call": call, "ok": false,
                            "status": e.sip_status(), "error": e.to_string()})),
                    }
                });
            }
            "ack" => {
                relays.ack(&call);
                say(json!({"call": call, "ok": true}));
            }
            "bye" => {
                relays.bye(&call);
                say(json!({"call": call, "ok": true}));
            }
            "active" => say(json!({"active": relays.active()})),
            other => say(json!({"ok": false, "error": format!("unknown op {other:?}")})),
        }
    }
    Ok(())
}
