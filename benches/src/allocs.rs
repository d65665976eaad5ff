//! `allocs` (issue 18.3): heap allocations (count and bytes) of the hot
//! paths, counted by a counting `#[global_allocator]`
//! ([`allocation_counter`], per thread):
//!
//! - **one health check cycle**: the real [`Poller`] checking simulated
//!   cameras (`device-sim`, HTTP on loopback) every second: the cheap
//!   GetSystemDateAndTime, the metrics, the store's `save_health`, and the
//!   sink building and serialising the MQTT state body (as `MqttSink` and
//!   the uplink's `offer` do); allocations over a window divided by the
//!   checks in it;
//! - **one MQTT camera state body**: [`state_body`] and its JSON text;
//! - **one metrics update**: what a check records ([`Metrics::count`], the
//!   check-duration histogram, [`Metrics::set_verdict`]).
//!
//! The poller runs on a current-thread runtime on the measuring thread, so
//! every task it spawns (HTTP connections included) is counted; the
//! simulator runs on other threads and is not. Built only with
//! `--features count-allocations` (the counting allocator would otherwise
//! slow every other bench).
//!
//! ```text
//! cargo run --release -p tgw-benches --features count-allocations -- allocs [--cameras 20] [--seconds 10]
//! ```

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use device_sim::SimConfig;
use serde_json::{Value, json};
use tgw::base::metrics::{Metrics, ResultLabel};
use tgw::cameras::inventory::{Prober, summary};
use tgw::cameras::poller::{HealthSink, Poller};
use tgw::config::HealthSection;
use tgw::store::secrets::Password;
use tgw::store::{Device, Login, Sighting, Store};
use tgw::uplink::centre::{state_body, state_text};
use tgw_core::health::{Health, Transition};
use tokio_util::sync::CancellationToken;

/// First simulated camera of this bench (not the other benches' ranges).
const FIRST: Ipv4Addr = Ipv4Addr::new(127, 62, 0, 1);
const USER: &str = "admin";
const PASSWORD: &str = "alloc-Passw0rd";
/// Iterations of the state-body and metrics measurements.
const ITERATIONS: u64 = 10_000;

/// Options of `allocs`.
struct Opts {
    cameras: usize,
    seconds: u64,
}

fn parse(argv: &[String]) -> anyhow::Result<Opts> {
    let mut o = Opts {
        cameras: 20,
        seconds: 10,
    };
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        let n: u64 = value
            .parse()
            .with_context(|| format!("{flag} {value:?}: not a whole number"))?;
        match flag.as_str() {
            "--cameras" => o.cameras = usize::try_from(n)?,
            "--seconds" => o.seconds = n,
            other => bail!("allocs: unknown option {other:?} (--cameras N, --seconds S)"),
        }
    }
    if o.cameras == 0 || o.cameras > 250 || o.seconds == 0 {
        bail!("allocs: --cameras must be 1-250 and --seconds at least 1");
    }
    Ok(o)
}

/// Counts per operation.
#[derive(Debug, Clone, Copy)]
struct PerOp {
    allocations: f64,
    bytes: f64,
}

impl std::fmt::Display for PerOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1} allocations / {:.0} bytes",
            self.allocations, self.bytes
        )
    }
}

impl PerOp {
    fn of(info: &allocation_counter::AllocationInfo, ops: u64) -> Self {
        let n = ops.max(1) as f64;
        PerOp {
            allocations: info.count_total as f64 / n,
            bytes: info.bytes_total as f64 / n,
        }
    }

    fn json(&self) -> Value {
        json!({
            "allocations": (self.allocations * 10.0).round() / 10.0,
            "bytes": self.bytes.round(),
        })
    }
}

/// Builds the MQTT state body's text and drops it: as `MqttSink` does now
/// (`state_text`), or as it did before (`state_body`, a `Value`, then its
/// text, as the uplink's `offer` wrote it).
struct BodySink {
    value: bool,
}

impl HealthSink for BodySink {
    fn state(&self, device: &Device, health: &Health) {
        if self.value {
            black_box(state_body(device, health).to_string());
        } else {
            black_box(state_text(device, health));
        }
    }
    fn transition(&self, _: &Device, _: &Transition, _: &Health) {}
}

/// Runs `allocs`; returns the JSON line and the human line.
pub async fn main(argv: &[String]) -> anyhow::Result<(Value, String)> {
    let o = parse(argv)?;
    let cfg = SimConfig {
        cameras: o.cameras,
        speakers: 0,
        bind: FIRST,
        wsd_port: crate::free_udp_port(FIRST)?,
        multicast: None,
        password: Some(PASSWORD.into()),
        username: Some(USER.into()),
        ..SimConfig::default()
    };
    // The simulator stays on this (multi-thread) runtime; the measured
    // gateway code runs on a thread of its own.
    let sim = device_sim::start(cfg)
        .await
        .context("starting the simulator")?;
    let xaddrs: Vec<(String, String)> = sim
        .manifest()
        .devices
        .iter()
        .filter_map(|d| Some((d.endpoint_ref.clone()?, d.xaddr.clone()?)))
        .collect();
    let seconds = o.seconds;
    let result = tokio::task::spawn_blocking(move || measure(&xaddrs, seconds))
        .await
        .context("measuring thread")?;
    sim.shutdown().await;
    let f = result?;
    let line = json!({
        "bench": "allocs",
        "cameras": o.cameras,
        "seconds": o.seconds,
        "check_cycle": f.cycle.0.json(),
        "checks": f.cycle.1,
        "check_cycle_with_value_body": f.cycle_value.0.json(),
        "checks_with_value_body": f.cycle_value.1,
        "state_body_text": f.body.0.json(),
        "state_body_value": f.body.1.json(),
        "metrics_update": f.metrics.0.json(),
        "metrics_update_label_allocated": f.metrics.1.json(),
    });
    let human = format!(
        "allocs ({} cameras, {} s windows): per check cycle {} ({} checks; with the Value body {}, {} checks); \
         per MQTT state body {} (Value, then text: {}); per metrics update {} (label allocated: {})",
        o.cameras,
        o.seconds,
        f.cycle.0,
        f.cycle.1,
        f.cycle_value.0,
        f.cycle_value.1,
        f.body.0,
        f.body.1,
        f.metrics.0,
        f.metrics.1,
    );
    Ok((line, human))
}

/// What `allocs` measured.
struct Figures {
    /// Per check cycle (state body as text), and the checks counted.
    cycle: (PerOp, u64),
    /// The same with the state body built as a `Value` (the code before).
    cycle_value: (PerOp, u64),
    /// Per state body: (as text, as a `Value` then text).
    body: (PerOp, PerOp),
    /// Per metrics update: (now, with the label allocated as before).
    metrics: (PerOp, PerOp),
}

/// On this thread: the store and the poller on a current-thread runtime,
/// then the three measurements.
fn measure(xaddrs: &[(String, String)], seconds: u64) -> anyhow::Result<Figures> {
    if allocation_counter::measure(|| drop(black_box(Box::new(1u8)))).count_total != 1 {
        bail!("the counting allocator is not installed");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("runtime")?;
    let dir = std::env::temp_dir().join(format!("tgw-bench-allocs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = (|| {
        let store = Store::open(&dir).context("opening the store")?;
        let ids = rt.block_on(adopt_all(&store, xaddrs))?;
        let cycle = poll(&rt, &store, seconds, false)?;
        let cycle_value = poll(&rt, &store, seconds, true)?;
        let (body, metrics) = body_and_metrics(&store, &ids)?;
        Ok(Figures {
            cycle,
            cycle_value,
            body,
            metrics,
        })
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Records every simulated camera as discovered, with a login and its real
/// inventory, and adopts it (uncounted set-up).
async fn adopt_all(store: &Store, xaddrs: &[(String, String)]) -> anyhow::Result<Vec<String>> {
    let prober = Prober::new(Duration::from_secs(5))?;
    let login = Login {
        username: USER.into(),
        password: Password::new(PASSWORD),
        source: "bench".into(),
    };
    let mut ids = Vec::new();
    for (endpoint_ref, xaddr) in xaddrs {
        let s = Sighting {
            endpoint_ref: endpoint_ref.clone(),
            address: url_ip(xaddr),
            xaddrs: vec![xaddr.clone()],
            via: "unicast".into(),
            ..Sighting::default()
        };
        let id = store.record_sighting(&s)?.id;
        store.set_device_login(&id, USER, &login.password)?;
        let inv = prober
            .inventory(xaddr, Some(&login))
            .await
            .map_err(|e| anyhow::anyhow!("inventory of {xaddr}: {e}"))?;
        store.record_inventory(&id, &summary(&inv), &serde_json::to_value(&inv)?)?;
        store.adopt(&id, None, None)?;
        ids.push(id);
    }
    Ok(ids)
}

fn url_ip(xaddr: &str) -> Option<Ipv4Addr> {
    let host = xaddr.strip_prefix("http://")?.split(['/', ':']).next()?;
    host.parse().ok()
}

/// `ok` checks so far.
fn checks_ok(m: &Metrics) -> u64 {
    m.checks
        .get_or_create(&ResultLabel {
            result: "ok".into(),
        })
        .get()
}

/// Runs the poller: a warm-up (every camera's first, full cycle), then a
/// counted window of cheap checks every second. Its tasks (HTTP
/// connections included) run on `rt`, on this thread, only inside
/// `block_on`: all of them are counted.
fn poll(
    rt: &tokio::runtime::Runtime,
    store: &Store,
    seconds: u64,
    value_body: bool,
) -> anyhow::Result<(PerOp, u64)> {
    let cfg = HealthSection {
        events: false,
        check_interval_secs: Duration::from_secs(1),
        describe_interval_secs: Duration::from_secs(86_400),
        sample_interval_secs: Duration::from_secs(86_400),
        ..HealthSection::default()
    };
    let metrics = Arc::new(Metrics::new());
    let _guard = rt.enter();
    let poller = Poller::new(
        store.clone(),
        cfg,
        metrics.clone(),
        Arc::new(BodySink { value: value_body }),
        None,
    )?;
    let shutdown = CancellationToken::new();
    let (_wake_tx, wake_rx) = tokio::sync::mpsc::channel(16);
    let task = rt.spawn(poller.run(shutdown.clone(), wake_rx));
    // Warm-up: the first cycles are jittered over 1 s and include the
    // authenticated call and the DESCRIBE.
    rt.block_on(tokio::time::sleep(Duration::from_secs(3)));
    let before = checks_ok(&metrics);
    if before == 0 {
        bail!("no camera answered its check during the warm-up");
    }
    let info = allocation_counter::measure(|| {
        rt.block_on(tokio::time::sleep(Duration::from_secs(seconds)));
    });
    let checks = checks_ok(&metrics) - before;
    shutdown.cancel();
    let _ = rt.block_on(task);
    Ok((PerOp::of(&info, checks), checks))
}

/// The state body (built and serialised, as `MqttSink` and the uplink's
/// `offer` do) and one check's metrics update (the check counter, the
/// duration histogram and the verdict gauge's entry, as the poller records
/// them), `ITERATIONS` times each, for the cameras' real device rows and
/// health.
#[allow(clippy::type_complexity)]
fn body_and_metrics(
    store: &Store,
    ids: &[String],
) -> anyhow::Result<((PerOp, PerOp), (PerOp, PerOp))> {
    let health: std::collections::HashMap<String, Health> =
        store.all_health()?.into_iter().collect();
    let mut cams = Vec::new();
    for id in ids {
        let d = store
            .device(id)?
            .with_context(|| format!("device {id} gone"))?;
        let h = health
            .get(id)
            .cloned()
            .with_context(|| format!("no health saved for {id}"))?;
        cams.push((d, h));
    }
    let n = cams.len();
    let per = |f: &dyn Fn(&Device, &Health)| {
        let info = allocation_counter::measure(|| {
            for i in 0..ITERATIONS {
                let (d, h) = &cams[i as usize % n];
                f(d, h);
            }
        });
        PerOp::of(&info, ITERATIONS)
    };
    let text = per(&|d, h| drop(black_box(state_text(d, h))));
    let value = per(&|d, h| drop(black_box(state_body(d, h).to_string())));
    let m = Metrics::new();
    for (d, h) in &cams {
        m.set_verdict(&d.id, "unassigned", h.verdict.label(), h.rung.as_str());
    }
    let now = per(&|d, h| {
        Metrics::count(&m.checks, "ok");
        m.check_seconds.observe(0.002);
        m.set_verdict(&d.id, "unassigned", h.verdict.label(), h.rung.as_str());
    });
    // The same with the label allocated per call, as `Metrics::count` did
    // before (`result.to_string()`).
    let before = per(&|d, h| {
        m.checks
            .get_or_create(&ResultLabel {
                result: "ok".to_string().into(),
            })
            .inc();
        m.check_seconds.observe(0.002);
        m.set_verdict(&d.id, "unassigned", h.verdict.label(), h.rung.as_str());
    });
    Ok(((text, value), (now, before)))
}
