//! `tgw-bench`: the issue-2 benchmarks (discovery and ONVIF inventory)
//! against the simulator on loopback, all in ONE process.
//!
//! ```text
//! cargo run --release -p tgw-benches -- discovery [--cameras 1000]
//! cargo run --release -p tgw-benches -- inventory [--cameras 1000] [--concurrency 64]
//! cargo run --release -p tgw-benches -- sweep16
//! cargo run --release -p tgw-benches -- all
//! cargo run --release -p tgw-benches -- rtsp-vs-ffprobe [--runs 20]
//! cargo run --release -p tgw-benches -- health-sweep [--cameras 1000] [--concurrency 128]
//! cargo run --release -p tgw-benches -- health-steady [--cameras 1000] [--seconds 120]
//! cargo run --release -p tgw-benches -- mqtt [--messages 200000] [--queued 1000000] [--fsync true]
//! cargo run --release -p tgw-benches -- horns [--horns 200] [--runs 5]   (issue 5, see horns.rs)
//! cargo run --release -p tgw-benches -- gb-catalog [--cameras 1000] [--runs 5] [--page-size 20]   (issue 17, see gb_catalog.rs)
//! cargo run --release -p tgw-benches -- broadcast-schedule|broadcast-emergency|broadcast-preempt|broadcast-year   (issue 7, see broadcast.rs)
//! cargo run --release -p tgw-benches --features count-allocations -- allocs [--cameras 20] [--seconds 10]   (issue 18.3, see allocs.rs)
//! ```
//!
//! The issue-3 benches are in [`rtsp_health`]; `rtsp-vs-ffprobe` and
//! `health-steady` run the release `tgw` binary as child processes.
//!
//! Every bench prints one JSON line of figures on stdout, then one line for
//! humans. Errors go to stderr and the exit status is 1. Warnings from the
//! gateway and drivers are shown on stderr (`TGW_LOG` overrides the `warn`
//! filter). What exactly each figure covers is written in BENCHMARKS.md and
//! in the doc comments below; the simulator runs in the same process, so CPU
//! time and peak RSS include it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use device_drivers::wsd_io::{self, DiscoverOptions, DiscoverReport, Discovered, Progress};
use device_sim::{Sim, SimConfig};
use futures::StreamExt;
use ipnet::Ipv4Net;
use serde_json::{Value, json};
use tgw::cameras::inventory::Prober;
use tgw::store::Login;
use tgw::store::secrets::Password;

#[cfg(feature = "count-allocations")]
mod allocs;
mod broadcast;
mod gb_catalog;
mod horns;
mod mqtt;
mod rtsp_health;

const USAGE: &str = "\
usage: tgw-bench <discovery|inventory|sweep16|all|rtsp-vs-ffprobe|health-sweep|health-steady|mqtt|horns|broadcast-*> [options]

  --cameras N          simulated cameras (default 1000)
  --concurrency N      inventory fetches in flight (default 64)
  --call-timeout SECS  timeout of each ONVIF call (default 5)
  --wait SECS          WS-Discovery wait after the last Probe (default 2, the product default)
  --rate N             unicast sweep rate in Probes/s (default: the product default)
  --runs N             rtsp-vs-ffprobe: probes of each tool (default 20)
  --seconds N          health-steady: measured window (default 120)
  mqtt: --messages N (200000) --queued N (1000000) --fsync BOOL (true); needs mosquitto
  horns: --horns N (200) --runs R (5) --seconds S (2) --playout-delay-ms D (100)
  broadcast-schedule: --horns N (200) --runs R (5) --interval S (10) --seconds S (2)
  broadcast-emergency: --horns N (200) --runs R (5) --tts BOOL (true); broadcast-preempt: --horns N --runs R
  broadcast-year: --horns N (500) --runs R (3)
  gb-catalog: --cameras N (1000) --runs R (5) --page-size P (20)
  allocs: --cameras N (20) --seconds S (10); needs --features count-allocations

Run with a release build: cargo run --release -p tgw-benches -- all";

/// First simulated camera address: 1000 cameras span 127.60.0.0/24 .. 127.60.3.0/24.
const SIM_FIRST: Ipv4Addr = Ipv4Addr::new(127, 60, 0, 1);
/// The empty /16 swept by `sweep16` (nothing of ours listens there).
const EMPTY_SLASH16: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(127, 61, 0, 0), 16);
/// Password of every simulated camera.
const SIM_PASSWORD: &str = "bench-Passw0rd";
/// The WS-Discovery multicast group (port chosen free per run).
const GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 255, 250);

/// Targets from the issue, in seconds.
const TARGET_DISCOVERY_S: f64 = 5.0;
const TARGET_INVENTORY_S: f64 = 15.0;
const TARGET_SWEEP16_S: f64 = 20.0;

/// Which benchmark to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bench {
    Discovery,
    Inventory,
    Sweep16,
    All,
    RtspVsFfprobe,
    HealthSweep,
    HealthSteady,
}

/// Parsed command line.
#[derive(Debug, Clone, PartialEq)]
struct Args {
    bench: Bench,
    cameras: usize,
    concurrency: usize,
    call_timeout: Duration,
    wait: Duration,
    rate: Option<u32>,
    runs: usize,
    seconds: u64,
}

fn parse_args(argv: &[String]) -> Result<Args, String> {
    let mut it = argv.iter();
    let bench = match it.next().map(String::as_str) {
        Some("discovery") => Bench::Discovery,
        Some("inventory") => Bench::Inventory,
        Some("sweep16") => Bench::Sweep16,
        Some("all") => Bench::All,
        Some("rtsp-vs-ffprobe") => Bench::RtspVsFfprobe,
        Some("health-sweep") => Bench::HealthSweep,
        Some("health-steady") => Bench::HealthSteady,
        Some(other) => return Err(format!("unknown bench {other:?}")),
        None => return Err("no bench given".into()),
    };
    let mut args = Args {
        bench,
        cameras: 1000,
        concurrency: 64,
        call_timeout: Duration::from_secs(5),
        wait: DiscoverOptions::default().timeout,
        rate: None,
        runs: 20,
        seconds: 120,
    };
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value:?}: {e}");
        match flag.as_str() {
            "--cameras" => args.cameras = value.parse().map_err(|e| bad(&e))?,
            "--concurrency" => args.concurrency = value.parse().map_err(|e| bad(&e))?,
            "--call-timeout" => args.call_timeout = secs(value).map_err(|e| bad(&e))?,
            "--wait" => args.wait = secs(value).map_err(|e| bad(&e))?,
            "--rate" => args.rate = Some(value.parse().map_err(|e| bad(&e))?),
            "--runs" => args.runs = value.parse().map_err(|e| bad(&e))?,
            "--seconds" => args.seconds = value.parse().map_err(|e| bad(&e))?,
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if args.cameras == 0 {
        return Err("--cameras must be at least 1".into());
    }
    if args.concurrency == 0 {
        return Err("--concurrency must be at least 1".into());
    }
    if args.runs == 0 || args.seconds == 0 {
        return Err("--runs and --seconds must be at least 1".into());
    }
    if args.rate == Some(0) {
        return Err("--rate must be at least 1".into());
    }
    Ok(args)
}

fn secs(s: &str) -> Result<Duration, String> {
    let f: f64 = s.parse().map_err(|e| format!("{e}"))?;
    Duration::try_from_secs_f64(f).map_err(|e| format!("{e}"))
}

#[tokio::main]
async fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TGW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();

    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return;
    }
    // `mqtt` (issue 4) parses its own options: see benches/src/mqtt.rs.
    if argv.first().map(String::as_str) == Some("mqtt") {
        if cfg!(debug_assertions) {
            eprintln!(
                "tgw-bench: warning: debug build; figures are only meaningful with --release"
            );
        }
        match mqtt::main(&argv[1..]).await {
            Ok((line, human)) => emit(&line, &human),
            Err(e) => {
                eprintln!("tgw-bench: {e:#}");
                std::process::exit(1);
            }
        }
        return;
    }
    // `broadcast-*` (issue 7) parse their own options: see benches/src/broadcast.rs.
    if let Some(which) = argv.first().and_then(|a| a.strip_prefix("broadcast-")) {
        if cfg!(debug_assertions) {
            eprintln!(
                "tgw-bench: warning: debug build; figures are only meaningful with --release"
            );
        }
        match broadcast::main(which, &argv[1..]).await {
            Ok((line, human)) => emit(&line, &human),
            Err(e) => {
                eprintln!("tgw-bench: {e:#}");
                std::process::exit(1);
            }
        }
        return;
    }
    // `gb-catalog` (issue 17) parses its own options: see benches/src/gb_catalog.rs.
    if argv.first().map(String::as_str) == Some("gb-catalog") {
        if cfg!(debug_assertions) {
            eprintln!(
                "tgw-bench: warning: debug build; figures are only meaningful with --release"
            );
        }
        match gb_catalog::main(&argv[1..]).await {
            Ok((line, human)) => emit(&line, &human),
            Err(e) => {
                eprintln!("tgw-bench: {e:#}");
                std::process::exit(1);
            }
        }
        return;
    }
    // `allocs` (issue 18.3) parses its own options: see benches/src/allocs.rs.
    if argv.first().map(String::as_str) == Some("allocs") {
        if cfg!(debug_assertions) {
            eprintln!(
                "tgw-bench: warning: debug build; figures are only meaningful with --release"
            );
        }
        #[cfg(feature = "count-allocations")]
        let r = allocs::main(&argv[1..]).await;
        #[cfg(not(feature = "count-allocations"))]
        let r: anyhow::Result<(Value, String)> = Err(anyhow::anyhow!(
            "allocs needs the counting allocator: cargo run --release -p tgw-benches --features count-allocations -- allocs"
        ));
        match r {
            Ok((line, human)) => emit(&line, &human),
            Err(e) => {
                eprintln!("tgw-bench: {e:#}");
                std::process::exit(1);
            }
        }
        return;
    }
    // `horns` (issue 5) parses its own options: see benches/src/horns.rs.
    if argv.first().map(String::as_str) == Some("horns") {
        if cfg!(debug_assertions) {
            eprintln!(
                "tgw-bench: warning: debug build; figures are only meaningful with --release"
            );
        }
        match horns::main(&argv[1..]).await {
            Ok((line, human)) => emit(&line, &human),
            Err(e) => {
                eprintln!("tgw-bench: {e:#}");
                std::process::exit(1);
            }
        }
        return;
    }
    let args = match parse_args(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tgw-bench: {e}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args).await {
        eprintln!("tgw-bench: {e:#}");
        std::process::exit(1);
    }
}

async fn run(args: &Args) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("tgw-bench: warning: debug build; figures are only meaningful with --release");
    }
    let issue3 = match args.bench {
        Bench::RtspVsFfprobe => Some(rtsp_health::rtsp_vs_ffprobe(args).await),
        Bench::HealthSweep => {
            check_fd_limit(args)?;
            Some(rtsp_health::health_sweep(args).await)
        }
        Bench::HealthSteady => Some(rtsp_health::health_steady(args).await),
        _ => None,
    };
    if let Some(r) = issue3 {
        let (line, human) = r?;
        emit(&line, &human);
        return Ok(());
    }
    let needs_sim = args.bench != Bench::Sweep16;
    if needs_sim {
        check_fd_limit(args)?;
        let town = Town::start(args.cameras).await?;
        let result = run_with_sim(args, &town).await;
        town.sim.shutdown().await;
        result?;
    }
    if matches!(args.bench, Bench::Sweep16 | Bench::All) {
        let (line, human) = bench_sweep16(args).await?;
        emit(&line, &human);
    }
    Ok(())
}

async fn run_with_sim(args: &Args, town: &Town) -> anyhow::Result<()> {
    let found = if matches!(args.bench, Bench::Discovery | Bench::All) {
        let (line, human, found) = bench_discovery(args, town).await?;
        emit(&line, &human);
        found
    } else {
        // The inventory bench alone still needs the XAddrs: discover first
        // (multicast and unicast), untimed.
        let opts = town.discover_options(args, true, true);
        wsd_io::discover(&opts, &|_| {})
            .await
            .context("discovery before the inventory bench")?
    };
    if matches!(args.bench, Bench::Inventory | Bench::All) {
        let (line, human) = bench_inventory(args, town, &found).await?;
        emit(&line, &human);
    }
    Ok(())
}

fn emit(line: &Value, human: &str) {
    println!("{line}");
    println!("{human}");
}

/// The simulated township and what it should look like.
struct Town {
    sim: Sim,
    /// Camera id, username and MAC by EndpointReference.
    cameras: HashMap<String, SimCamera>,
    /// The /24s holding the cameras.
    nets: Vec<Ipv4Net>,
    wsd_port: u16,
    group: SocketAddrV4,
    /// Resident set size just before the simulator started, KiB.
    rss_before_sim_kib: Option<u64>,
}

struct SimCamera {
    id: String,
    flavour: String,
    username: String,
    mac: Option<String>,
}

impl Town {
    async fn start(cameras: usize) -> anyhow::Result<Town> {
        let rss_before_sim_kib = read_status().ok().and_then(|s| s.vm_rss_kib);
        let wsd_port = free_udp_port(SIM_FIRST)?;
        let group = SocketAddrV4::new(GROUP, free_udp_port(Ipv4Addr::UNSPECIFIED)?);
        let cfg = SimConfig {
            cameras,
            speakers: 0,
            bind: SIM_FIRST,
            wsd_port,
            multicast: Some(group),
            password: Some(SIM_PASSWORD.into()),
            ..SimConfig::default()
        };
        let sim = device_sim::start(cfg).await.with_context(|| {
            format!("starting the simulator with {cameras} cameras from {SIM_FIRST}")
        })?;
        let mut map = HashMap::new();
        let mut addrs = Vec::new();
        for d in sim.manifest().devices.iter().filter(|d| d.kind == "camera") {
            let (Some(er), Some(user)) = (&d.endpoint_ref, &d.username) else {
                bail!(
                    "simulator manifest: camera {} has no EndpointReference or username",
                    d.id
                );
            };
            let addr: Ipv4Addr = d.address.parse().with_context(|| {
                format!(
                    "simulator manifest: camera {} address {:?}",
                    d.id, d.address
                )
            })?;
            addrs.push(addr);
            map.insert(
                er.clone(),
                SimCamera {
                    id: d.id.clone(),
                    flavour: d.flavour.clone(),
                    username: user.clone(),
                    mac: d.mac.clone(),
                },
            );
        }
        if map.len() != cameras {
            bail!(
                "simulator manifest lists {} distinct camera EndpointReferences, expected {cameras}",
                map.len()
            );
        }
        Ok(Town {
            sim,
            cameras: map,
            nets: slash24s(&addrs),
            wsd_port,
            group,
            rss_before_sim_kib,
        })
    }

    fn discover_options(&self, args: &Args, multicast: bool, unicast: bool) -> DiscoverOptions {
        let mut o = DiscoverOptions {
            interfaces: vec![Ipv4Addr::LOCALHOST],
            multicast,
            multicast_group: self.group,
            cidrs: if unicast {
                self.nets.clone()
            } else {
                Vec::new()
            },
            unicast_port: self.wsd_port,
            timeout: args.wait,
            ..DiscoverOptions::default()
        };
        if let Some(r) = args.rate {
            o.sweep_rate_per_sec = r;
        }
        o
    }
}

/// A UDP port free on `ip` right now (bound then released).
fn free_udp_port(ip: Ipv4Addr) -> anyhow::Result<u16> {
    let s = std::net::UdpSocket::bind((ip, 0))
        .with_context(|| format!("finding a free UDP port on {ip}"))?;
    Ok(s.local_addr()?.port())
}

/// The distinct /24 networks holding `addrs`, sorted.
fn slash24s(addrs: &[Ipv4Addr]) -> Vec<Ipv4Net> {
    let set: BTreeSet<Ipv4Net> = addrs
        .iter()
        .filter_map(|a| Ipv4Net::new(*a, 24).ok().map(|n| n.trunc()))
        .collect();
    set.into_iter().collect()
}

/// Times recorded from [`wsd_io::discover_report`]'s progress callback,
/// relative to the moment just before the call.
struct Tracker {
    start: Instant,
    state: Mutex<TrackState>,
}

#[derive(Default)]
struct TrackState {
    found: usize,
    /// When the last NEW endpoint was recorded by the collector.
    last_new: Option<Duration>,
    /// When the last Probe had been sent.
    sends_done: Option<Duration>,
}

impl Tracker {
    fn new() -> Tracker {
        Tracker {
            start: Instant::now(),
            state: Mutex::default(),
        }
    }

    fn observe(&self, p: Progress) {
        let now = self.start.elapsed();
        let mut s = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if p.found > s.found {
            s.found = p.found;
            s.last_new = Some(now);
        }
        if p.sent >= p.total && s.sends_done.is_none() {
            s.sends_done = Some(now);
        }
    }

    fn finish(self) -> (Option<Duration>, Option<Duration>) {
        let s = match self.state.into_inner() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        (s.last_new, s.sends_done)
    }
}

/// One timed discovery.
struct DiscoveryRun {
    report: DiscoverReport,
    last_new: Option<Duration>,
    sends_done: Option<Duration>,
    total: Duration,
}

async fn timed_discovery(opts: &DiscoverOptions) -> anyhow::Result<DiscoveryRun> {
    let tracker = Tracker::new();
    let start = tracker.start;
    let report = wsd_io::discover_report(opts, &|p| tracker.observe(p))
        .await
        .context("WS-Discovery")?;
    let total = start.elapsed();
    let (last_new, sends_done) = tracker.finish();
    Ok(DiscoveryRun {
        report,
        last_new,
        sends_done,
        total,
    })
}

fn ms(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| {
        json!((d.as_secs_f64() * 1000.0).round() as u64)
    })
}

fn secs_str(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".into(), |d| format!("{:.2} s", d.as_secs_f64()))
}

/// Discovery of the simulated township: (a) multicast on 127.0.0.1 only,
/// (b) unicast sweep of the cameras' /24s only, (c) both. Returns the JSON
/// line, the human line and the endpoints found by (c).
async fn bench_discovery(
    args: &Args,
    town: &Town,
) -> anyhow::Result<(Value, String, Vec<Discovered>)> {
    let variants = [
        ("multicast", true, false),
        ("unicast", false, true),
        ("both", true, true),
    ];
    let mut figures = serde_json::Map::new();
    let mut human = Vec::new();
    let mut last = Vec::new();
    let mut worst: Option<Duration> = Some(Duration::ZERO);
    for (name, multicast, unicast) in variants {
        // Let stragglers of the previous variant drain (they would be
        // dropped as unsolicited anyway).
        tokio::time::sleep(Duration::from_millis(500)).await;
        let opts = town.discover_options(args, multicast, unicast);
        let run = timed_discovery(&opts).await?;
        let matched = run
            .report
            .devices
            .iter()
            .filter(|d| town.cameras.contains_key(&d.endpoint_ref))
            .count();
        let missing_flavours = missing_by_flavour(town, &run.report.devices);
        worst = match (worst, run.last_new) {
            (Some(w), Some(l)) => Some(w.max(l)),
            _ => None,
        };
        figures.insert(
            name.into(),
            json!({
                "found": matched,
                "found_other": run.report.devices.len() - matched,
                "expected": town.cameras.len(),
                "to_last_new_answer_ms": ms(run.last_new),
                "sends_done_ms": ms(run.sends_done),
                "total_with_wait_ms": ms(Some(run.total)),
                "wait_ms": ms(Some(opts.timeout)),
                "probes_sent": run.report.sent,
                "send_errors": run.report.send_errors,
                "replies": run.report.replies,
                "unsolicited": run.report.unsolicited,
                "unparsable": run.report.unparsable,
                "missing_by_flavour": missing_flavours,
            }),
        );
        human.push(format!(
            "{name}: {matched}/{} in {}",
            town.cameras.len(),
            secs_str(run.last_new)
        ));
        last = run.report.devices;
    }
    let line = json!({
        "bench": "discovery",
        "cameras": town.cameras.len(),
        "target_s": TARGET_DISCOVERY_S,
        "variants": figures,
    });
    let verdict = match worst {
        Some(w) if w.as_secs_f64() <= TARGET_DISCOVERY_S => "within",
        _ => "OVER",
    };
    let human = format!(
        "discovery of {} cameras (time to the last new answer): {}; {verdict} the {TARGET_DISCOVERY_S} s target",
        town.cameras.len(),
        human.join(", ")
    );
    Ok((line, human, last))
}

/// Simulated cameras not found, counted by flavour.
fn missing_by_flavour(town: &Town, found: &[Discovered]) -> BTreeMap<String, usize> {
    let seen: BTreeSet<&str> = found.iter().map(|d| d.endpoint_ref.as_str()).collect();
    let mut out = BTreeMap::new();
    for (er, cam) in &town.cameras {
        if !seen.contains(er.as_str()) {
            *out.entry(cam.flavour.clone()).or_insert(0) += 1;
        }
    }
    out
}

/// Full ONVIF inventory of every discovered simulated camera, `concurrency`
/// at a time through one shared [`Prober`].
async fn bench_inventory(
    args: &Args,
    town: &Town,
    found: &[Discovered],
) -> anyhow::Result<(Value, String)> {
    let mut jobs = Vec::new();
    let mut no_xaddr = 0usize;
    for d in found {
        let Some(cam) = town.cameras.get(&d.endpoint_ref) else {
            continue;
        };
        match d.preferred_xaddr() {
            Some(x) => jobs.push((cam, x)),
            None => no_xaddr += 1,
        }
    }
    let prober = Prober::new(args.call_timeout).context("building the ONVIF prober")?;
    let before = read_status().ok();
    let cpu_before = cpu_time();
    let start = Instant::now();
    let results: Vec<_> = futures::stream::iter(jobs)
        .map(|(cam, xaddr)| {
            let prober = &prober;
            async move {
                let login = Login {
                    username: cam.username.clone(),
                    password: Password::new(SIM_PASSWORD),
                    source: "bench".into(),
                };
                let r = prober.inventory(&xaddr, Some(&login)).await;
                (cam, xaddr, r)
            }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let wall = start.elapsed();
    let cpu_after = cpu_time();

    let mut ok = 0usize;
    let mut mac_mismatch = 0usize;
    let mut profiles = 0usize;
    let mut failures: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for (cam, xaddr, r) in &results {
        match r {
            Ok(inv) => {
                ok += 1;
                profiles += inv.profiles.len();
                let norm = |m: &Option<String>| {
                    m.as_ref().map(|s| s.to_ascii_lowercase().replace('-', ":"))
                };
                if norm(&inv.mac) != norm(&cam.mac) {
                    mac_mismatch += 1;
                }
            }
            Err(e) => {
                let key = format!("{}/{}", cam.flavour, e.kind_label());
                let entry = failures
                    .entry(key)
                    .or_insert_with(|| (0, format!("{} {xaddr}: {e}", cam.id)));
                entry.0 += 1;
            }
        }
    }
    let cpu = match (&cpu_before, &cpu_after) {
        (Ok(b), Ok(a)) => Some(a.saturating_sub(*b)),
        _ => None,
    };
    let cpu_total = cpu_after.as_ref().ok().copied();
    let status = read_status();
    let failures_json: serde_json::Map<String, Value> = failures
        .iter()
        .map(|(k, (n, first))| (k.clone(), json!({"count": n, "first": first})))
        .collect();
    let line = json!({
        "bench": "inventory",
        "cameras": town.cameras.len(),
        "attempted": results.len(),
        "ok": ok,
        "failed": results.len() - ok,
        "not_discovered": town.cameras.len() - results.len() - no_xaddr,
        "no_xaddr": no_xaddr,
        "mac_mismatch": mac_mismatch,
        "profiles": profiles,
        "concurrency": args.concurrency,
        "call_timeout_ms": ms(Some(args.call_timeout)),
        "wall_ms": ms(Some(wall)),
        "cpu_ms": ms(cpu),
        "cpu_process_total_ms": ms(cpu_total),
        "cpu_per_camera_ms": cpu.filter(|_| !results.is_empty()).map(|c| (c.as_secs_f64() * 1000.0 / results.len() as f64 * 100.0).round() / 100.0),
        "peak_rss_kib": status.as_ref().ok().and_then(|s| s.vm_hwm_kib),
        "rss_kib": status.as_ref().ok().and_then(|s| s.vm_rss_kib),
        "threads": status.as_ref().ok().and_then(|s| s.threads),
        "open_fds": std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count()),
        "rss_before_sim_kib": town.rss_before_sim_kib,
        "peak_rss_before_inventory_kib": before.as_ref().and_then(|s| s.vm_hwm_kib),
        "includes_simulator": true,
        "target_s": TARGET_INVENTORY_S,
        "failures": failures_json,
    });
    if let Err(e) = &cpu_after {
        eprintln!("tgw-bench: CPU time not available: {e:#}");
    }
    if let Err(e) = &status {
        eprintln!("tgw-bench: peak RSS not available: {e:#}");
    }
    let verdict = if wall.as_secs_f64() <= TARGET_INVENTORY_S && ok == town.cameras.len() {
        "within"
    } else {
        "OVER or incomplete vs"
    };
    let human = format!(
        "inventory of {} cameras at concurrency {}: {ok} ok, {} failed in {}; CPU {} (gateway + simulator), peak RSS {}; {verdict} the {TARGET_INVENTORY_S} s target",
        town.cameras.len(),
        args.concurrency,
        results.len() - ok,
        secs_str(Some(wall)),
        secs_str(cpu),
        status
            .as_ref()
            .ok()
            .and_then(|s| s.vm_hwm_kib)
            .map_or_else(|| "-".into(), |k| format!("{:.0} MiB", k as f64 / 1024.0)),
    );
    for (k, (n, first)) in &failures {
        eprintln!("tgw-bench: inventory failures {k}: {n}, first: {first}");
    }
    Ok((line, human))
}

/// Unicast sweep of an empty /16 on loopback at the default (or `--rate`) pace.
async fn bench_sweep16(args: &Args) -> anyhow::Result<(Value, String)> {
    let port = free_udp_port(Ipv4Addr::UNSPECIFIED)?;
    let mut opts = DiscoverOptions {
        multicast: false,
        cidrs: vec![EMPTY_SLASH16],
        unicast_port: port,
        timeout: args.wait,
        ..DiscoverOptions::default()
    };
    if let Some(r) = args.rate {
        opts.sweep_rate_per_sec = r;
    }
    let run = timed_discovery(&opts).await?;
    let line = json!({
        "bench": "sweep16",
        "cidr": EMPTY_SLASH16.to_string(),
        "port": port,
        "rate_per_s": opts.sweep_rate_per_sec,
        "probes_sent": run.report.sent,
        "send_errors": run.report.send_errors,
        "found": run.report.devices.len(),
        "sends_done_ms": ms(run.sends_done),
        "wait_ms": ms(Some(opts.timeout)),
        "total_with_wait_ms": ms(Some(run.total)),
        "target_s": TARGET_SWEEP16_S,
    });
    let verdict = if run.total.as_secs_f64() <= TARGET_SWEEP16_S {
        "within"
    } else {
        "OVER"
    };
    let human = format!(
        "sweep of empty {EMPTY_SLASH16} at {}/s: {} Probes ({} send errors) sent in {}, {} with the {} wait; {verdict} the {TARGET_SWEEP16_S} s target",
        opts.sweep_rate_per_sec,
        run.report.sent,
        run.report.send_errors,
        secs_str(run.sends_done),
        secs_str(Some(run.total)),
        secs_str(Some(opts.timeout)),
    );
    Ok((line, human))
}

/// Refuses to start when the open-file limit cannot hold the simulator (a
/// TCP listener and a UDP socket per camera) plus the inventory's HTTP
/// connections: the shared client keeps up to two idle keep-alive
/// connections per camera host and the simulator holds the other ends, so up
/// to four more per camera (5 per camera were measured with 1000 cameras).
fn check_fd_limit(args: &Args) -> anyhow::Result<()> {
    let limits = match std::fs::read_to_string("/proc/self/limits") {
        Ok(l) => l,
        Err(_) => return Ok(()), // not Linux: let the bind errors speak
    };
    let Some(soft) = parse_open_files_limit(&limits) else {
        return Ok(());
    };
    let need = 6 * args.cameras as u64 + 2 * args.concurrency as u64 + 64;
    if soft < need {
        bail!(
            "open-file limit is {soft}, {} cameras need about {need}; raise it (ulimit -n {need}) or use fewer --cameras",
            args.cameras
        );
    }
    Ok(())
}

/// The soft "Max open files" of a `/proc/<pid>/limits` text (`None` = unlimited or unreadable).
fn parse_open_files_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// User + system CPU time of this process so far (all threads), from `/proc/self/stat`.
fn cpu_time() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    let ticks = parse_stat_cpu_ticks(&stat).context("parsing utime/stime in /proc/self/stat")?;
    Ok(ticks_to_duration(ticks, clock_ticks_per_sec()))
}

fn ticks_to_duration(ticks: u64, hz: u64) -> Duration {
    let hz = hz.max(1);
    Duration::from_secs(ticks / hz) + Duration::from_nanos((ticks % hz) * 1_000_000_000 / hz)
}

/// utime + stime (fields 14 and 15, in clock ticks) of a `/proc/<pid>/stat`
/// line. The command name (field 2) may hold spaces and parentheses, so
/// fields are counted after its last `)`.
fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): field n is fields[n - 3].
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

/// USER_HZ from `getconf CLK_TCK` (100 on every Linux we target; used if getconf fails).
fn clock_ticks_per_sec() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&hz| hz > 0)
        .unwrap_or(100)
}

/// Memory and thread figures from `/proc/self/status`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Status {
    vm_hwm_kib: Option<u64>,
    vm_rss_kib: Option<u64>,
    threads: Option<u64>,
}

fn read_status() -> anyhow::Result<Status> {
    let s = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    Ok(parse_status(&s))
}

fn parse_status(s: &str) -> Status {
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    Status {
        vm_hwm_kib: field("VmHWM:"),
        vm_rss_kib: field("VmRSS:"),
        threads: field("Threads:"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn args_defaults_and_options() {
        let a = parse_args(&argv("inventory")).unwrap();
        assert_eq!(a.bench, Bench::Inventory);
        assert_eq!(a.cameras, 1000);
        assert_eq!(a.concurrency, 64);
        assert_eq!(a.wait, DiscoverOptions::default().timeout);
        let a = parse_args(&argv(
            "all --cameras 12 --concurrency 8 --wait 0.5 --rate 500",
        ))
        .unwrap();
        assert_eq!((a.bench, a.cameras, a.concurrency), (Bench::All, 12, 8));
        assert_eq!(a.wait, Duration::from_millis(500));
        assert_eq!(a.rate, Some(500));
    }

    #[test]
    fn args_of_the_issue3_benches() {
        let a = parse_args(&argv("rtsp-vs-ffprobe")).unwrap();
        assert_eq!((a.bench, a.runs), (Bench::RtspVsFfprobe, 20));
        let a = parse_args(&argv("health-steady --cameras 10 --seconds 30")).unwrap();
        assert_eq!(
            (a.bench, a.cameras, a.seconds),
            (Bench::HealthSteady, 10, 30)
        );
        let a = parse_args(&argv("health-sweep --runs 3")).unwrap();
        assert_eq!((a.bench, a.runs, a.seconds), (Bench::HealthSweep, 3, 120));
        assert!(parse_args(&argv("rtsp-vs-ffprobe --runs 0")).is_err());
        assert!(parse_args(&argv("health-steady --seconds 0")).is_err());
    }

    #[test]
    fn args_errors_name_the_problem() {
        assert!(parse_args(&argv("")).unwrap_err().contains("no bench"));
        assert!(
            parse_args(&argv("frobnicate"))
                .unwrap_err()
                .contains("frobnicate")
        );
        assert!(
            parse_args(&argv("sweep16 --rate"))
                .unwrap_err()
                .contains("--rate needs a value")
        );
        assert!(
            parse_args(&argv("sweep16 --rate 0"))
                .unwrap_err()
                .contains("--rate")
        );
        assert!(
            parse_args(&argv("discovery --cameras x"))
                .unwrap_err()
                .contains("--cameras \"x\"")
        );
        assert!(parse_args(&argv("discovery --wait -1")).is_err());
        assert!(
            parse_args(&argv("discovery --bogus 1"))
                .unwrap_err()
                .contains("--bogus")
        );
    }

    #[test]
    fn slash24s_of_a_thousand_cameras() {
        let addrs: Vec<_> = (0..1000)
            .filter_map(|k| device_sim::device_addr(SIM_FIRST, k))
            .collect();
        let nets: Vec<String> = slash24s(&addrs).iter().map(|n| n.to_string()).collect();
        assert_eq!(
            nets,
            [
                "127.60.0.0/24",
                "127.60.1.0/24",
                "127.60.2.0/24",
                "127.60.3.0/24"
            ]
        );
    }

    /// A command name with spaces and `)` must not shift the fields.
    #[test]
    fn stat_cpu_ticks_after_odd_comm() {
        let stat = "4242 (tgw) bench (x)) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 37 0 0 20 0 9 0 123 456 789";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(287));
        assert_eq!(parse_stat_cpu_ticks("4242 (x) S 1 2"), None);
        assert_eq!(ticks_to_duration(287, 100), Duration::from_millis(2870));
    }

    #[test]
    fn status_and_limits_parsing() {
        let s = "Name:\ttgw-bench\nVmHWM:\t  123456 kB\nVmRSS:\t   99999 kB\nThreads:\t5\n";
        assert_eq!(
            parse_status(s),
            Status {
                vm_hwm_kib: Some(123456),
                vm_rss_kib: Some(99999),
                threads: Some(5)
            }
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(parse_open_files_limit(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_open_files_limit(unlimited), None);
    }
}
