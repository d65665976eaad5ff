//! `tgw-bench mqtt`: the issue-4 benchmarks of the MQTT uplink against a
//! local Mosquitto (started here on a free loopback port, persistence off).
//!
//! 1. **Sustained QoS 1 throughput** through the outbox: `--messages N`
//!    (default 200 000) camera events published as fast as the outbox
//!    accepts them; the figure is N / (time from the first publish to the
//!    last PUBACK deleted from the outbox).
//! 2. **Outage**: Mosquitto is killed, then 1 000 000 events are queued;
//!    RSS growth of this process (gateway only: the broker is a separate
//!    process) between before and after queueing.
//! 3. **Drain**: Mosquitto restarts on the same port; drain rate = queued
//!    messages / (time from the broker accepting connections to an empty
//!    outbox). `drain_rate = 0` (unlimited) so the figure is the uplink's
//!    capacity, not the configured limit.
//!
//! The outbox is on disk (a temporary directory) with `outbox_fsync` as
//! given by `--fsync true|false` (default true, the product default).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tgw::uplink::{CommandHandler, CommandReply, Publisher, Uplink};
use tokio_util::sync::CancellationToken;

/// Targets from the issue.
const TARGET_THROUGHPUT: f64 = 20_000.0;
const TARGET_RSS_MB: f64 = 20.0;
const TARGET_DRAIN: f64 = 10_000.0;

struct NoCommands;
impl CommandHandler for NoCommands {
    fn handle(&self, _: tgw::uplink::commands::Command) -> BoxFuture<'static, CommandReply> {
        Box::pin(async {
            CommandReply::Rejected {
                code: "bench".into(),
                message: "no commands in the bench".into(),
            }
        })
    }
}

struct Broker {
    child: Option<Child>,
    port: u16,
    conf: PathBuf,
}

impl Broker {
    fn start(dir: &Path) -> anyhow::Result<Broker> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_inflight_messages 0\nlog_dest stderr\nlog_type error\n"
            ),
        )?;
        let mut b = Broker {
            child: None,
            port,
            conf,
        };
        b.spawn()?;
        Ok(b)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let bin = ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("mosquitto");
        let child = Command::new(bin)
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {bin} (install: scripts/install-peers)"))?;
        self.child = Some(child);
        Ok(())
    }

    async fn wait_listening(&self) -> anyhow::Result<()> {
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        bail!("mosquitto did not listen on port {}", self.port)
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Publishes `n` events, never more than ~half the writer channel ahead
/// of the outbox's acceptance (the Publisher refuses rather than blocks).
async fn offer(p: &Publisher, n: u64, base: u64) -> anyhow::Result<()> {
    let start = p.metrics().accepted;
    let mut i = 0;
    while i < n {
        let m = p.metrics();
        if m.rejected_channel > 0 {
            bail!("{} messages refused by a full channel", m.rejected_channel);
        }
        if i - (m.accepted - start) > (tgw::uplink::CHANNEL_CAPACITY as u64) / 2 {
            tokio::time::sleep(Duration::from_micros(200)).await;
            continue;
        }
        for _ in 0..1000.min(n - i) {
            let cam = (base + i) % 1000;
            p.camera_event(
                &format!("cam-{cam:04}"),
                json!({"event": "check", "n": base + i, "verdict": "ok", "ladder": "streaming"}),
            );
            i += 1;
        }
        tokio::task::yield_now().await;
    }
    while p.metrics().accepted - start < n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

async fn until(mut f: impl FnMut() -> bool, limit: Duration, what: &str) -> anyhow::Result<()> {
    let t = Instant::now();
    while !f() {
        if t.elapsed() > limit {
            bail!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

/// Runs the three phases.
pub async fn bench(messages: u64, queued: u64, fsync: bool) -> anyhow::Result<(Value, String)> {
    let dir = tempfile_dir()?;
    let mut broker = Broker::start(&dir)?;
    broker.wait_listening().await?;
    let toml = format!(
        r#"[gateway]
site = "bench"
id = "gw-b"
data_dir = "{}"
[township]
code = "bench"
name = "Bench"
[discovery]
enabled = false
[mqtt]
url = "mqtt://127.0.0.1:{}"
drain_rate = 0
reconnect_min_ms = 10
reconnect_max_secs = 1
outbox_max_bytes = 4294967296
outbox_fsync = {fsync}
"#,
        dir.join("data").display(),
        broker.port
    );
    let cfg = tgw::config::Config::parse(&toml, "bench.toml")?;
    let shutdown = CancellationToken::new();
    let uplink = Uplink::start(
        &cfg,
        shutdown.clone(),
        Arc::new(NoCommands),
        tgw::base::clock::system(),
    )
    .await?;
    let p = uplink.publisher();
    until(
        || p.metrics().connected == 1,
        Duration::from_secs(10),
        "the connection",
    )
    .await?;

    // 1. Sustained throughput.
    let t = Instant::now();
    offer(&p, messages, 0).await?;
    let accepted_in = t.elapsed();
    until(
        || p.metrics().depth == 0,
        Duration::from_secs(600),
        "the last PUBACK",
    )
    .await?;
    let sustained = t.elapsed();
    let throughput = messages as f64 / sustained.as_secs_f64();

    // 2. Outage.
    broker.kill();
    until(
        || p.metrics().connected == 0,
        Duration::from_secs(30),
        "the disconnect",
    )
    .await?;
    let rss_before = super::read_status()?.vm_rss_kib.unwrap_or(0);
    let t = Instant::now();
    offer(&p, queued, messages).await?;
    let queue_time = t.elapsed();
    let rss_after = super::read_status()?.vm_rss_kib.unwrap_or(0);
    let m = p.metrics();
    let rss_growth_mb = (rss_after as f64 - rss_before as f64) / 1024.0;

    // 3. Drain.
    broker.spawn()?;
    broker.wait_listening().await?;
    let t = Instant::now();
    until(
        || p.metrics().depth == 0,
        Duration::from_secs(1200),
        "the drain",
    )
    .await?;
    let drain = t.elapsed();
    let drain_rate = queued as f64 / drain.as_secs_f64();
    let end = p.metrics();
    shutdown.cancel();
    uplink.join().await;
    let _ = std::fs::remove_dir_all(&dir);

    let line = json!({
        "bench": "mqtt",
        "fsync": fsync,
        "messages": messages,
        "sustained_s": sustained.as_secs_f64(),
        "accepted_s": accepted_in.as_secs_f64(),
        "throughput_msg_s": throughput,
        "queued": queued,
        "queue_s": queue_time.as_secs_f64(),
        "outbox_bytes_queued": m.bytes,
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "rss_growth_mb": rss_growth_mb,
        "drain_s": drain.as_secs_f64(),
        "drain_msg_s": drain_rate,
        "evicted": end.evicted,
        "rejected": end.rejected_channel + end.rejected_budget + end.rejected_invalid,
        "sent": end.sent,
        "acked": end.acked,
    });
    let ok = |b: bool| if b { "meets" } else { "MISSES" };
    let human = format!(
        "mqtt (fsync={fsync}): sustained {throughput:.0} msg/s QoS 1 ({messages} in {:.2} s; {} the {TARGET_THROUGHPUT} target); \
         {queued} queued during an outage in {:.1} s, RSS +{rss_growth_mb:.1} MB ({} the {TARGET_RSS_MB} MB target), outbox {} MB on disk; \
         drained at {drain_rate:.0} msg/s ({} the {TARGET_DRAIN} target)",
        sustained.as_secs_f64(),
        ok(throughput >= TARGET_THROUGHPUT),
        queue_time.as_secs_f64(),
        ok(rss_growth_mb <= TARGET_RSS_MB),
        m.bytes / (1 << 20),
        ok(drain_rate >= TARGET_DRAIN),
    );
    Ok((line, human))
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("tgw-bench-mqtt-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// `tgw-bench mqtt [--messages N] [--queued N] [--fsync true|false]`.
pub async fn main(argv: &[String]) -> anyhow::Result<(Value, String)> {
    let (mut messages, mut queued, mut fsync) = (200_000u64, 1_000_000u64, true);
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--messages" => messages = value.parse().with_context(|| format!("{flag} {value}"))?,
            "--queued" => queued = value.parse().with_context(|| format!("{flag} {value}"))?,
            "--fsync" => fsync = value.parse().with_context(|| format!("{flag} {value}"))?,
            other => bail!("unknown option {other:?} for mqtt"),
        }
    }
    if messages == 0 || queued == 0 {
        bail!("--messages and --queued must be at least 1");
    }
    bench(messages, queued, fsync).await
}
