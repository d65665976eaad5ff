//! A stand-in for the health engine that drives the MQTT uplink: N cameras
//! publish a state and an event every interval. Used by the MQTT chaos test
//! (`tests/tests/mqtt_chaos.rs`) until `tgw run` publishes health itself.
//!
//! ```text
//! mqtt_pump CONFIG [--cameras N] [--interval-ms MS] [--publish-secs S] [--run-id K] [--progress-ms MS]
//! ```
//! Prints `ready boot=B` once started, and after the publishing window
//! `published ticks=N` (rounds of events accepted) and
//! `drained accepted=…` once the outbox is empty. SIGTERM/ctrl-c stops it
//! cleanly.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Value, json};
use tgw::uplink::commands::Command;
use tgw::uplink::{CommandHandler, CommandReply, Uplink};
use tokio_util::sync::CancellationToken;

struct Echo;

impl CommandHandler for Echo {
    fn handle(&self, command: Command) -> BoxFuture<'static, CommandReply> {
        Box::pin(async move {
            match &command {
                Command::Probe { camera } if camera.as_str() == "cam-missing" => {
                    CommandReply::Rejected {
                        code: "unknown_camera".into(),
                        message: "no such camera".into(),
                    }
                }
                Command::Rediscover => CommandReply::Accepted(json!({"round": "started"})),
                _ => CommandReply::Result(
                    json!({ "method": command.method(), "params": params(&command) }),
                ),
            }
        })
    }
}

/// The command's parameters as the centre sent them (for the echo).
fn params(command: &Command) -> Value {
    match command {
        Command::Probe { camera } => json!({ "camera": camera.as_str() }),
        Command::Emergency { envelope } => {
            serde_json::from_slice(envelope).unwrap_or_else(|_| json!({}))
        }
        Command::Rediscover | Command::Reload => json!({}),
    }
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("TGW_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .ok_or_else(|| anyhow::anyhow!("usage: mqtt_pump CONFIG [...]"))?;
    let cfg = tgw::config::Config::load(std::path::Path::new(path))?;
    let cameras = arg(&args, "--cameras", 200);
    let interval = Duration::from_millis(arg(&args, "--interval-ms", 1000));
    let publish_for = Duration::from_secs(arg(&args, "--publish-secs", 30));
    let run_id = arg(&args, "--run-id", 1);

    let shutdown = CancellationToken::new();
    let uplink = Uplink::start(
        &cfg,
        shutdown.clone(),
        Arc::new(Echo),
        tgw::base::clock::system(),
    )
    .await?;
    let publisher = uplink.publisher();
    println!("ready");
    // `--progress-ms N`: a `progress sent=… acked=…` line every N ms (the
    // fleet suite waits for messages in flight to an unanswering broker).
    let progress = arg(&args, "--progress-ms", 0);
    if progress > 0 {
        let (u, sd) = (uplink.publisher(), shutdown.clone());
        tokio::spawn(async move {
            let mut t = tokio::time::interval(Duration::from_millis(progress));
            while !sd.is_cancelled() {
                t.tick().await;
                let m = u.metrics();
                println!(
                    "progress sent={} acked={} resent={} depth={}",
                    m.sent, m.acked, m.resent, m.depth
                );
            }
        });
    }
    {
        let sd = shutdown.clone();
        tokio::spawn(async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
            sd.cancel();
        });
    }
    for c in 0..cameras {
        let id = format!("cam-{c:04}");
        publisher.camera_meta(
            &id,
            json!({"name": id, "manufacturer": "Sim", "model": "pump"}),
        );
    }
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(interval);
    let mut n = 0u64;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        if start.elapsed() >= publish_for {
            break;
        }
        n += 1;
        for c in 0..cameras {
            let id = format!("cam-{c:04}");
            publisher.camera_state(
                &id,
                json!({"run": run_id, "n": n, "verdict": "ok", "ladder": "streaming"}),
            );
            publisher.camera_event(
                &id,
                json!({"run": run_id, "n": n, "event": "check", "verdict": "ok"}),
            );
        }
    }
    // How many rounds of events were accepted (the fleet suite checks them).
    println!("published ticks={n}");
    // Wait until everything accepted has been acknowledged, then report.
    while !shutdown.is_cancelled() {
        let m = uplink.metrics();
        if m.depth == 0 && m.connected == 1 {
            println!(
                "drained accepted={} sent={} resent={} evicted={}",
                m.accepted, m.sent, m.resent, m.evicted
            );
            break;
        }
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    shutdown.cancelled().await;
    uplink.join().await;
    Ok(())
}
