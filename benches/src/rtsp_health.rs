//! The issue-3 benches: `tgw probe rtsp` against `ffprobe`, a full health
//! sweep of 1,000 simulated cameras, and steady health polling of 1,000
//! cameras by a real `tgw run` process.
//!
//! - `rtsp-vs-ffprobe`: one simulated camera (in this process, so the bench
//!   needs neither Python nor GStreamer); each run spawns the release `tgw`
//!   binary and `ffprobe` once each, alternately, on the same main stream
//!   (1280x720, 25 fps, Digest auth). Wall time per child from spawn to
//!   exit; CPU time per child from this process's `cutime + cstime`
//!   (`/proc/self/stat` fields 16 and 17, the CPU of waited-for children)
//!   before and after waiting for it.
//! - `health-sweep`: the simulator in this process; for every camera,
//!   `concurrency` at a time, GetSystemDateAndTime, authenticated
//!   GetDeviceInformation and an RTSP DESCRIBE of the main stream, through
//!   the same driver calls the poller makes.
//! - `health-steady`: `tgw sim` and `tgw run` (release binary) as two child
//!   processes; once the gateway has discovered, adopted and inventoried
//!   every camera, the gateway process alone is measured for `--seconds`
//!   from `/proc/<pid>/stat` and `/proc/<pid>/status`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use device_drivers::onvif_client::{self, ClientOptions, Credentials, OnvifClient};
use device_drivers::rtsp_probe::{self, RtspOptions};
use device_sim::SimConfig;
use futures::StreamExt;
use serde_json::{Value, json};

use super::{
    Args, clock_ticks_per_sec, free_udp_port, ms, parse_stat_cpu_ticks, parse_status, secs_str,
    slash24s, ticks_to_duration,
};

/// Targets from the issue.
const TARGET_WALL_RATIO: f64 = 3.0;
const TARGET_CPU_RATIO: f64 = 20.0;
const TARGET_SWEEP_S: f64 = 10.0;
const TARGET_STEADY_CPU_PCT: f64 = 15.0;
const TARGET_STEADY_RSS_MIB: f64 = 100.0;

/// Addresses: one /16 per bench, away from issue 2's 127.60/127.61.
const PROBE_CAMERA: Ipv4Addr = Ipv4Addr::new(127, 63, 0, 1);
const SWEEP_FIRST: Ipv4Addr = Ipv4Addr::new(127, 64, 0, 1);
const STEADY_FIRST: Ipv4Addr = Ipv4Addr::new(127, 65, 0, 1);
const PASSWORD: &str = "bench-Passw0rd";
const USER: &str = "admin";

/// The release `tgw` binary: `$TGW_BIN`, else `<target>/release/tgw`.
fn release_tgw() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("TGW_BIN") {
        return Ok(PathBuf::from(p));
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .map(|p| p.join("target"))
                .unwrap_or_default()
        });
    let bin = target.join("release").join("tgw");
    if !bin.exists() {
        bail!(
            "{} not found: build it first with `cargo build --release -p tgw` (or set TGW_BIN)",
            bin.display()
        );
    }
    Ok(bin)
}

/// `cutime + cstime` of this process, in clock ticks.
fn children_ticks() -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    parse_stat_children_ticks(&stat).context("parsing cutime/cstime in /proc/self/stat")
}

/// cutime + cstime (fields 16 and 17) of a `/proc/<pid>/stat` line.
fn parse_stat_children_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let cutime: u64 = fields.get(16 - 3)?.parse().ok()?;
    let cstime: u64 = fields.get(17 - 3)?.parse().ok()?;
    Some(cutime + cstime)
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// One child run: wall time, CPU ticks, output.
struct ChildRun {
    wall: Duration,
    ticks: u64,
    stdout: Vec<u8>,
}

fn run_child(mut cmd: Command) -> anyhow::Result<ChildRun> {
    let before = children_ticks()?;
    let start = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    let wall = start.elapsed();
    let after = children_ticks()?;
    if !out.status.success() {
        bail!(
            "{:?} failed ({}): {}",
            cmd.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(ChildRun {
        wall,
        ticks: after.saturating_sub(before),
        stdout: out.stdout,
    })
}

/// (a) `tgw probe rtsp URL --json` against `ffprobe -show_streams` on the
/// same simulated stream.
pub async fn rtsp_vs_ffprobe(args: &Args) -> anyhow::Result<(Value, String)> {
    let tgw = release_tgw()?;
    let cfg = SimConfig {
        cameras: 1,
        bind: PROBE_CAMERA,
        wsd_port: free_udp_port(PROBE_CAMERA)?,
        rtsp_port: 0,
        multicast: None,
        password: Some(PASSWORD.into()),
        username: Some(USER.into()),
        ..SimConfig::default()
    };
    let sim = device_sim::start(cfg)
        .await
        .context("starting the simulator")?;
    let plain = sim
        .manifest()
        .devices
        .first()
        .and_then(|d| d.rtsp.as_ref())
        .and_then(|r| r.first().cloned())
        .context("simulator manifest: camera without an RTSP URI")?;
    let Some(rest) = plain.strip_prefix("rtsp://") else {
        bail!("simulator manifest: RTSP URI {plain:?} does not start with rtsp://");
    };
    let url = format!("rtsp://{USER}:{PASSWORD}@{rest}");
    let runs = args.runs;
    let result = tokio::task::spawn_blocking(move || probe_series(&tgw, &url, runs))
        .await
        .context("probe series task")?;
    sim.shutdown().await;
    let s = result?;

    let (mut tw, mut fw): (Vec<f64>, Vec<f64>) = (
        s.tgw
            .iter()
            .map(|r| r.wall.as_secs_f64() * 1000.0)
            .collect(),
        s.ffprobe
            .iter()
            .map(|r| r.wall.as_secs_f64() * 1000.0)
            .collect(),
    );
    let hz = s.hz;
    let cpu_ms = |v: &[ChildRun]| {
        let ticks: u64 = v.iter().map(|r| r.ticks).sum();
        ticks_to_duration(ticks, hz).as_secs_f64() * 1000.0 / v.len().max(1) as f64
    };
    let (mut tc, mut fc): (Vec<f64>, Vec<f64>) = (
        s.tgw
            .iter()
            .map(|r| ticks_to_duration(r.ticks, hz).as_secs_f64() * 1000.0)
            .collect(),
        s.ffprobe
            .iter()
            .map(|r| ticks_to_duration(r.ticks, hz).as_secs_f64() * 1000.0)
            .collect(),
    );
    let (tw_med, fw_med) = (median(&mut tw), median(&mut fw));
    let (tc_mean, fc_mean) = (cpu_ms(&s.tgw), cpu_ms(&s.ffprobe));
    let (tc_med, fc_med) = (median(&mut tc), median(&mut fc));
    let wall_ratio = fw_med / tw_med;
    let cpu_ratio = if tc_mean > 0.0 {
        fc_mean / tc_mean
    } else {
        f64::INFINITY
    };
    let line = json!({
        "bench": "rtsp-vs-ffprobe",
        "runs": runs,
        "stream": plain,
        "tgw": {
            "wall_ms_median": round2(tw_med),
            "wall_ms_min": round2(tw.first().copied().unwrap_or(f64::NAN)),
            "wall_ms_max": round2(tw.last().copied().unwrap_or(f64::NAN)),
            "cpu_ms_mean": round2(tc_mean),
            "cpu_ms_median": round2(tc_med),
        },
        "ffprobe": {
            "wall_ms_median": round2(fw_med),
            "wall_ms_min": round2(fw.first().copied().unwrap_or(f64::NAN)),
            "wall_ms_max": round2(fw.last().copied().unwrap_or(f64::NAN)),
            "cpu_ms_mean": round2(fc_mean),
            "cpu_ms_median": round2(fc_med),
        },
        "wall_ratio": round2(wall_ratio),
        "cpu_ratio": round2(cpu_ratio),
        "clock_tick_ms": 1000 / hz.max(1),
        "tgw_saw": s.tgw_saw,
        "ffprobe_saw": s.ffprobe_saw,
        "target_wall_ratio": TARGET_WALL_RATIO,
        "target_cpu_ratio": TARGET_CPU_RATIO,
    });
    let verdict = |r: f64, t: f64| if r >= t { "met" } else { "MISSED" };
    let human = format!(
        "rtsp-vs-ffprobe, {runs} runs each: tgw {tw_med:.1} ms wall / {tc_mean:.1} ms CPU, ffprobe {fw_med:.1} ms / {fc_mean:.1} ms; \
         {wall_ratio:.1}x less wall ({} {TARGET_WALL_RATIO}x), {cpu_ratio:.1}x less CPU ({} {TARGET_CPU_RATIO}x)",
        verdict(wall_ratio, TARGET_WALL_RATIO),
        verdict(cpu_ratio, TARGET_CPU_RATIO),
    );
    Ok((line, human))
}

struct Series {
    tgw: Vec<ChildRun>,
    ffprobe: Vec<ChildRun>,
    hz: u64,
    tgw_saw: String,
    ffprobe_saw: String,
}

fn probe_series(tgw: &std::path::Path, url: &str, runs: usize) -> anyhow::Result<Series> {
    // Before anything is timed: `getconf` is a child too.
    let hz = clock_ticks_per_sec();
    let tgw_cmd = || {
        let mut c = Command::new(tgw);
        c.args(["probe", "rtsp", url, "--json"])
            .env_remove("TGW_LOG");
        c
    };
    let ff_cmd = || {
        let mut c = Command::new("ffprobe");
        c.args([
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-show_streams",
            url,
        ]);
        c
    };
    // One untimed run of each (page cache, first connection), checked.
    let t = run_child(tgw_cmd())?;
    let v: Value = serde_json::from_slice(&t.stdout).context("tgw probe rtsp JSON")?;
    let tr = &v["metadata"]["tracks"][0];
    let tgw_saw = format!(
        "{} {}x{} {} fps",
        tr["codec"].as_str().unwrap_or("?"),
        tr["width"],
        tr["height"],
        tr["fps"]
    );
    let f = run_child(ff_cmd()).context("ffprobe (is it installed? scripts/install-peers)")?;
    let text = String::from_utf8_lossy(&f.stdout);
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or("?")
            .to_string()
    };
    let ffprobe_saw = format!(
        "{} {}x{} {}",
        field("codec_name="),
        field("width="),
        field("height="),
        field("r_frame_rate=")
    );
    let mut s = Series {
        tgw: Vec::new(),
        ffprobe: Vec::new(),
        hz,
        tgw_saw,
        ffprobe_saw,
    };
    for _ in 0..runs {
        s.tgw.push(run_child(tgw_cmd())?);
        s.ffprobe.push(run_child(ff_cmd())?);
    }
    Ok(s)
}

/// (b) One full health sweep of `--cameras` simulated cameras.
pub async fn health_sweep(args: &Args) -> anyhow::Result<(Value, String)> {
    let cfg = SimConfig {
        cameras: args.cameras,
        bind: SWEEP_FIRST,
        wsd_port: free_udp_port(SWEEP_FIRST)?,
        rtsp_port: 0,
        multicast: None,
        password: Some(PASSWORD.into()),
        username: Some(USER.into()),
        ..SimConfig::default()
    };
    let sim = device_sim::start(cfg)
        .await
        .with_context(|| format!("starting the simulator with {} cameras", args.cameras))?;
    let mut jobs = Vec::new();
    for d in sim.manifest().devices.iter().filter(|d| d.kind == "camera") {
        let (Some(x), Some(rtsp)) = (&d.xaddr, d.rtsp.as_ref().and_then(|r| r.first())) else {
            bail!(
                "simulator manifest: camera {} has no XAddr or RTSP URI",
                d.id
            );
        };
        jobs.push((d.id.clone(), x.clone(), rtsp.clone()));
    }
    // As the poller builds its client (health defaults: 3 s per call).
    let timeout = args.call_timeout.min(Duration::from_secs(3));
    let opts = ClientOptions {
        timeout,
        connect_timeout: timeout,
        ..ClientOptions::default()
    };
    let http = onvif_client::http_client(&opts).context("building the HTTP client")?;
    let ropts = RtspOptions {
        timeout,
        ..RtspOptions::default()
    };
    let creds = Credentials::new(USER, PASSWORD);
    let cpu_before = super::cpu_time();
    let start = Instant::now();
    let results: Vec<Result<(), String>> = futures::stream::iter(jobs)
        .map(|(id, xaddr, rtsp)| {
            let (http, creds, ropts) = (http.clone(), creds.clone(), ropts.clone());
            async move {
                let c = OnvifClient::with_http(http, &xaddr, Some(creds.clone()), opts)
                    .map_err(|e| format!("clock/{}: {id}: {e}", e.kind_label()))?;
                c.measure_clock()
                    .await
                    .map_err(|e| format!("clock/{}: {id}: {e}", e.kind_label()))?;
                c.device_information()
                    .await
                    .map_err(|e| format!("devinfo/{}: {id}: {e}", e.kind_label()))?;
                let m = rtsp_probe::describe(&rtsp, Some(&creds), &ropts)
                    .await
                    .map_err(|e| format!("describe/{}: {id}: {e}", e.kind_label()))?;
                if m.video().is_none() {
                    return Err(format!("describe/no-video: {id}"));
                }
                Ok(())
            }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let wall = start.elapsed();
    let cpu = match (cpu_before, super::cpu_time()) {
        (Ok(b), Ok(a)) => Some(a.saturating_sub(b)),
        _ => None,
    };
    sim.shutdown().await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let mut kinds = std::collections::BTreeMap::<String, (usize, String)>::new();
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        let k = e.split(':').next().unwrap_or("?").to_string();
        let entry = kinds.entry(k).or_insert_with(|| (0, e.clone()));
        entry.0 += 1;
    }
    let line = json!({
        "bench": "health-sweep",
        "cameras": args.cameras,
        "concurrency": args.concurrency,
        "call_timeout_ms": ms(Some(timeout)),
        "ok": ok,
        "failed": results.len() - ok,
        "failures": kinds.iter().map(|(k, (n, first))| (k.clone(), json!({"count": n, "first": first}))).collect::<serde_json::Map<_, _>>(),
        "wall_ms": ms(Some(wall)),
        "cpu_ms": ms(cpu),
        "includes_simulator": true,
        "target_s": TARGET_SWEEP_S,
    });
    let verdict = if wall.as_secs_f64() <= TARGET_SWEEP_S && ok == args.cameras {
        "within"
    } else {
        "OVER or incomplete vs"
    };
    let human = format!(
        "health sweep of {} cameras (clock + GetDeviceInformation + DESCRIBE) at concurrency {}: {ok} ok in {}, CPU {} (gateway + simulator); {verdict} the {TARGET_SWEEP_S} s target",
        args.cameras,
        args.concurrency,
        secs_str(Some(wall)),
        secs_str(cpu),
    );
    Ok((line, human))
}

/// A child process killed (and reaped) on drop.
struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// CPU ticks (utime + stime) and VmRSS (KiB) of a process.
fn proc_sample(pid: u32) -> anyhow::Result<(u64, Option<u64>, Option<u64>)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let ticks = parse_stat_cpu_ticks(&stat).context("parsing utime/stime")?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let s = parse_status(&status);
    Ok((ticks, s.vm_rss_kib, s.vm_hwm_kib))
}

/// A plain HTTP GET on loopback: the body when the status is 200.
fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    if head.split_whitespace().nth(1)? != "200" {
        return None;
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            if n == 0 || tail.len() < n {
                break;
            }
            out.push_str(&tail[..n]);
            rest = tail[n..].trim_start_matches("\r\n");
        }
        return Some(out);
    }
    Some(body.to_string())
}

/// Sum of a Prometheus counter's samples whose line starts with `prefix`.
fn counter(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// (b) Steady polling of `--cameras` cameras by `tgw run` for `--seconds`.
pub async fn health_steady(args: &Args) -> anyhow::Result<(Value, String)> {
    let tgw = release_tgw()?;
    let args = args.clone();
    tokio::task::spawn_blocking(move || steady_blocking(&tgw, &args))
        .await
        .context("steady bench task")?
}

// The steady bench polls child processes once a second: real sleeps.
#[allow(clippy::disallowed_methods)]
fn steady_blocking(tgw: &std::path::Path, args: &Args) -> anyhow::Result<(Value, String)> {
    let dir = std::env::temp_dir().join(format!("tgw-bench-steady-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let wsd = free_udp_port(STEADY_FIRST)?;
    let sim_log = std::fs::File::create(dir.join("sim.log"))?;
    let mut sim = Kid(Command::new(tgw)
        .args([
            "sim",
            "--cameras",
            &args.cameras.to_string(),
            "--bind",
            &STEADY_FIRST.to_string(),
        ])
        .args([
            "--wsd-port",
            &wsd.to_string(),
            "--no-multicast",
            "--password",
            PASSWORD,
        ])
        .args(["--username", USER])
        .env_remove("TGW_LOG")
        .stdout(Stdio::piped())
        .stderr(sim_log)
        .spawn()
        .context("spawning tgw sim")?);
    let mut out = BufReader::new(sim.0.stdout.take().context("sim stdout")?);
    let mut line = String::new();
    out.read_line(&mut line)
        .context("reading the simulator manifest")?;
    // Keep draining the simulator's stdout so it never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = out.read_to_end(&mut sink);
    });
    let manifest: Value = serde_json::from_str(&line).context("simulator manifest is not JSON")?;
    let cams: Vec<&Value> = manifest["devices"]
        .as_array()
        .map(|a| a.iter().filter(|d| d["kind"] == "camera").collect())
        .unwrap_or_default();
    if cams.len() != args.cameras {
        bail!(
            "simulator manifest lists {} cameras, expected {}",
            cams.len(),
            args.cameras
        );
    }
    let addrs: Vec<Ipv4Addr> = cams
        .iter()
        .filter_map(|d| d["address"].as_str()?.parse().ok())
        .collect();
    let cidrs: Vec<String> = slash24s(&addrs)
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect();
    let mut villages =
        std::collections::BTreeMap::<String, std::collections::BTreeSet<String>>::new();
    for d in &cams {
        if let (Some(v), Some(g)) = (d["village"].as_str(), d["grid"].as_str()) {
            villages.entry(v.into()).or_default().insert(g.into());
        }
    }
    let http_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let http = format!("127.0.0.1:{http_port}");
    let mut cfg = format!(
        "[gateway]\nsite = \"bench\"\ndata_dir = \"{}\"\n[log]\nlevel = \"warn\"\n[township]\ncode = \"bench\"\nname = \"bench\"\n",
        dir.display()
    );
    for (v, grids) in &villages {
        cfg.push_str(&format!(
            "[[township.villages]]\ncode = \"{v}\"\nname = \"{v}\"\ngrids = ["
        ));
        for g in grids {
            cfg.push_str(&format!("{{ code = \"{g}\", name = \"{g}\" }},"));
        }
        cfg.push_str("]\n");
    }
    // Discovery once at start (then hourly), unicast only; health section
    // left out: the product defaults.
    cfg.push_str(&format!(
        "[discovery]\ninterval_secs = 3600\nmulticast = false\ninterfaces = [\"127.0.0.1\"]\ncidrs = [{}]\nunicast_port = {wsd}\nwait_ms = 2000\nlisten = false\n\
         [[discovery.auto_adopt]]\n\
         [[credential_groups]]\nname = \"bench\"\nusername = \"{USER}\"\npassword_env = \"TGW_BENCH_PW\"\nsubnets = [{}]\n\
         [http]\nlisten = \"{http}\"\n",
        cidrs.join(", "),
        cidrs.join(", "),
    ));
    let cfg_path = dir.join("gateway.toml");
    std::fs::write(&cfg_path, cfg)?;
    let gw_log = std::fs::File::create(dir.join("tgw.log"))?;
    let gw = Kid(Command::new(tgw)
        .args(["run", "--config"])
        .arg(&cfg_path)
        .env("TGW_BENCH_PW", PASSWORD)
        .env_remove("TGW_LOG")
        .stdout(Stdio::null())
        .stderr(gw_log)
        .spawn()
        .context("spawning tgw run")?);
    let pid = gw.0.id();

    // Wait until every camera is adopted and inventoried.
    let started = Instant::now();
    let ready_limit = Duration::from_secs(300);
    loop {
        let done = http_get(&http, "/api/v1/devices")
            .and_then(|b| serde_json::from_str::<Value>(&b).ok())
            .and_then(|v| {
                v.as_array()
                    .map(|a| a.iter().filter(|d| !d["inventory"].is_null()).count())
            })
            .unwrap_or(0);
        if done >= args.cameras {
            break;
        }
        if started.elapsed() > ready_limit {
            bail!(
                "after {ready_limit:?} only {done} of {} cameras are inventoried (logs in {})",
                args.cameras,
                dir.display()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let ready_after = started.elapsed();
    let hz = clock_ticks_per_sec();
    let metrics0 = http_get(&http, "/metrics").unwrap_or_default();
    let (t0, _, hwm_before) = proc_sample(pid)?;
    let start = Instant::now();
    let mut rss = Vec::new();
    let mut per_30s = Vec::new();
    let mut last_ticks = t0;
    let mut next_bucket = Duration::from_secs(30);
    let window = Duration::from_secs(args.seconds);
    while start.elapsed() < window {
        std::thread::sleep(Duration::from_secs(1));
        let (t, r, _) = proc_sample(pid)?;
        if let Some(r) = r {
            rss.push(r);
        }
        if start.elapsed() >= next_bucket || start.elapsed() >= window {
            let secs =
                30.0f64.min(start.elapsed().as_secs_f64() - (next_bucket.as_secs_f64() - 30.0));
            let pct = ticks_to_duration(t - last_ticks, hz).as_secs_f64() / secs.max(1.0) * 100.0;
            per_30s.push(round2(pct));
            last_ticks = t;
            next_bucket += Duration::from_secs(30);
        }
    }
    let elapsed = start.elapsed();
    let (t1, rss_end, hwm) = proc_sample(pid)?;
    let metrics1 = http_get(&http, "/metrics").unwrap_or_default();
    drop(gw);
    drop(sim);
    let cpu = ticks_to_duration(t1.saturating_sub(t0), hz);
    let cpu_pct = cpu.as_secs_f64() / elapsed.as_secs_f64() * 100.0;
    let rss_max = rss.iter().copied().max();
    let rss_mean = (!rss.is_empty()).then(|| rss.iter().sum::<u64>() / rss.len() as u64);
    let delta = |p: &str| counter(&metrics1, p) - counter(&metrics0, p);
    let verdicts: serde_json::Map<String, Value> = ["ok", "degraded", "offline"]
        .iter()
        .map(|v| {
            let prefix = "tgw_cameras{";
            let n: f64 = metrics1
                .lines()
                .filter(|l| l.starts_with(prefix) && l.contains(&format!("verdict=\"{v}\"")))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum();
            // `+ 0.0` turns an empty sum's -0.0 into 0.0.
            (v.to_string(), json!(n + 0.0))
        })
        .collect();
    let mib = |k: Option<u64>| k.map(|k| round2(k as f64 / 1024.0));
    let line = json!({
        "bench": "health-steady",
        "cameras": args.cameras,
        "seconds": elapsed.as_secs(),
        "ready_after_ms": ms(Some(ready_after)),
        "gateway_cpu_ms": ms(Some(cpu)),
        "gateway_cpu_pct_of_one_core": round2(cpu_pct),
        "cpu_pct_per_30s": per_30s,
        "rss_mib_max": mib(rss_max),
        "rss_mib_mean": mib(rss_mean),
        "rss_mib_end": mib(rss_end),
        "vm_hwm_mib_lifetime": mib(hwm),
        "vm_hwm_mib_before_window": mib(hwm_before),
        "checks": delta("tgw_camera_checks_total{"),
        "checks_ok": delta("tgw_camera_checks_total{result=\"ok\"}"),
        "describes": delta("tgw_rtsp_describes_total{"),
        "samples": delta("tgw_rtsp_samples_total{"),
        "samples_ok": delta("tgw_rtsp_samples_total{result=\"ok\"}"),
        "verdicts_at_end": verdicts,
        "includes_simulator": false,
        "target_cpu_pct": TARGET_STEADY_CPU_PCT,
        "target_rss_mib": TARGET_STEADY_RSS_MIB,
    });
    let _ = std::fs::remove_dir_all(&dir);
    let rss_max_mib = rss_max.map_or(f64::NAN, |k| k as f64 / 1024.0);
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let human = format!(
        "steady polling of {} cameras by `tgw run` for {} s (simulator in another process): gateway CPU {cpu_pct:.1} % of one core ({} {TARGET_STEADY_CPU_PCT} %), RSS max {rss_max_mib:.0} MiB ({} {TARGET_STEADY_RSS_MIB} MiB); {} checks, {} DESCRIBEs, {} samples in the window",
        args.cameras,
        elapsed.as_secs(),
        verdict(cpu_pct <= TARGET_STEADY_CPU_PCT),
        verdict(rss_max_mib <= TARGET_STEADY_RSS_MIB),
        delta("tgw_camera_checks_total{"),
        delta("tgw_rtsp_describes_total{"),
        delta("tgw_rtsp_samples_total{"),
    );
    Ok((line, human))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// cutime/cstime are fields 16 and 17, counted after the last `)`.
    #[test]
    fn children_ticks_after_odd_comm() {
        let stat =
            "4242 (tgw) bench (x)) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 37 11 5 20 0 9 0 123";
        assert_eq!(parse_stat_children_ticks(stat), Some(16));
        assert_eq!(parse_stat_children_ticks("4242 (x) S 1 2"), None);
    }

    #[test]
    fn median_and_counters() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
        let m = "# HELP x\ntgw_camera_checks_total{result=\"ok\"} 10\ntgw_camera_checks_total{result=\"timeout\"} 2\n";
        assert_eq!(counter(m, "tgw_camera_checks_total{"), 12.0);
        assert_eq!(counter(m, "tgw_camera_checks_total{result=\"ok\"}"), 10.0);
    }
}
