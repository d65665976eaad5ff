//! `tgw-bench broadcast-*`: the issue-7 benchmarks (schedules, emergency
//! broadcasts, preemption, a year of timetable). Everything runs in this
//! process on loopback: the real broadcast runtime
//! (`tgw::broadcast::runtime::start`) with the [`SystemClock`], the real
//! drivers ([`DriverPlayer`], RTP unicast), a SQLite store in a temporary
//! directory, and simulated horns.
//!
//! - `broadcast-schedule [--horns 200] [--runs 5] [--interval 10] [--seconds 2]`:
//!   a timetable with `--runs` schedules `--interval` s apart, the first
//!   ≈ 9 s after start (the scheduler's preroll is 5 s); occurrence k plays
//!   a tone on its own `--horns` simulated horns (`device-sim`, one
//!   simulator per occurrence, so each horn's `first_packet_at` belongs to
//!   one occurrence). Figure: |first packet arrival − scheduled T0| per horn.
//! - `broadcast-emergency [--horns 200] [--runs 5] [--tts true]`: a routine
//!   programme plays on every horn; a signed emergency command (Ed25519,
//!   an imported asset as content) goes through `Broadcasts::signed`.
//!   Figure: command handed to the gateway → first packet of the emergency
//!   at each horn. With `--tts true` one more run with a text (espeak-ng),
//!   reported separately.
//! - `broadcast-preempt [--horns 200] [--runs 5]`: the same with the
//!   emergency submitted directly (`Broadcasts::submit`, what the dashboard
//!   button does after its confirmation). Figures: submit → last packet of
//!   the routine at each horn, submit → first packet of the emergency, and
//!   the silence between the two.
//! - `broadcast-year [--horns 500] [--runs 3]`: an example-like timetable
//!   (15 schedules, the example workday calendar, quiet hours, groups)
//!   expanded over 2026 and resolved to per-horn timelines for 500 horns in
//!   20 villages; also `schedule::check` over the same year. Figures: wall
//!   time and peak RSS growth.
//!
//! Arrival stamps are wall clock (`OffsetDateTime::now_utc`), taken when the
//! receiving horn's task wakes for the datagram, as in `device-sim` and the
//! `horns` bench; the gateway's T0 and the command stamp use the same clock.
//! The emergency and preemption benches need per-stream arrivals (the
//! routine and the emergency reach the same horn one after the other), which
//! the simulator does not keep (it records a horn's first and last packet
//! only), so they use minimal RTP receivers defined here ([`ProbeHorns`]),
//! which stamp the first and last packet of every SSRC the same way.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use device_drivers::speaker::SpeakerUri;
use device_sim::{SimConfig, SpeakerKind};
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};
use tgw::broadcast::audio::assets::AssetStore;
use tgw::broadcast::record::Records;
use tgw::broadcast::render::{Part, Recipe};
use tgw::broadcast::runtime::{self, Broadcasts, DriverPlayer, Parts, Settings, Spec, SystemClock};
use tgw::broadcast::{OnPreempt, Priority, Target};
use tgw::config::{Ident, TownshipSection, VillageConfig, VillageKind};
use tgw::speakers::{Codec, DriverKind, NewSpeaker, Speakers};
use tgw::store::Store;
use tgw_core::broadcast::signed::{self, KeyConfig, KeySet};
use tgw_core::schedule::{Calendar, HornInfo, Timetable};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

/// Targets from the issue, in ms.
const TARGET_FIRING_MS: f64 = 20.0;
const TARGET_EMERGENCY_P99_MS: f64 = 300.0;

/// The example workday calendar shipped in `config/`.
const CALENDAR: &str = include_str!("../../config/workdays-cn-2026.example.txt");

const TZ: &str = "Asia/Shanghai";

/// Options of the `broadcast-*` benches.
#[derive(Debug, Clone)]
struct Opts {
    horns: usize,
    runs: usize,
    interval_s: u64,
    seconds: f64,
    tts: bool,
}

/// Parses the options and runs bench `which` (`schedule`, `emergency`,
/// `preempt`, `year`).
pub async fn main(which: &str, argv: &[String]) -> anyhow::Result<(Value, String)> {
    let mut o = Opts {
        horns: if which == "year" { 500 } else { 200 },
        runs: if which == "year" { 3 } else { 5 },
        interval_s: 10,
        seconds: 2.0,
        tts: true,
    };
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        let bad = || format!("{flag} {value}");
        match flag.as_str() {
            "--horns" => o.horns = value.parse().with_context(bad)?,
            "--runs" => o.runs = value.parse().with_context(bad)?,
            "--interval" => o.interval_s = value.parse().with_context(bad)?,
            "--seconds" => o.seconds = value.parse().with_context(bad)?,
            "--tts" => o.tts = value.parse().with_context(bad)?,
            other => bail!("unknown option {other:?} for broadcast-{which}"),
        }
    }
    if o.horns == 0 || o.runs == 0 {
        bail!("--horns and --runs must be at least 1");
    }
    match which {
        "schedule" => {
            if o.runs > 60 || o.horns > 1000 {
                bail!("broadcast-schedule: at most 60 runs of 1000 horns");
            }
            if !(o.seconds > 0.0 && o.seconds <= 60.0) || (o.interval_s as f64) < o.seconds + 2.0 {
                bail!("broadcast-schedule: need 0 < --seconds ≤ 60 and --interval ≥ seconds + 2");
            }
            bench_schedule(&o).await
        }
        "emergency" => bench_preempt(&o, true).await,
        "preempt" => bench_preempt(&o, false).await,
        "year" => bench_year(&o),
        other => bail!(
            "unknown bench broadcast-{other}: use broadcast-schedule, broadcast-emergency, broadcast-preempt or broadcast-year"
        ),
    }
}

// ---------------------------------------------------------------- helpers

/// Wall-clock milliseconds since the Unix epoch, as the horns stamp arrivals.
fn wall_ms() -> f64 {
    OffsetDateTime::now_utc().unix_timestamp_nanos() as f64 / 1e6
}

fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[i.min(v.len() - 1)]
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// p50 / p99 / max (and min, mean) of `v` as JSON.
fn dist(v: &[f64]) -> Value {
    let mean = if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    };
    json!({
        "n": v.len(),
        "min": round2(pct(v, 0.0)),
        "p50": round2(pct(v, 50.0)),
        "p99": round2(pct(v, 99.0)),
        "max": round2(pct(v, 100.0)),
        "mean": round2(mean),
    })
}

fn verdict(ok: bool) -> &'static str {
    if ok { "within" } else { "OVER" }
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_default()
}

/// A gateway's state in a temporary directory: store, speakers, assets.
struct World {
    dir: PathBuf,
    store: Store,
    speakers: Speakers,
    assets: AssetStore,
}

impl World {
    fn new(tag: &str, villages: &[String]) -> anyhow::Result<World> {
        let dir = std::env::temp_dir().join(format!("tgw-bench-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let store = Store::open(&dir).context("opening the store")?;
        let ident = |s: &str| Ident::parse(s).map_err(|e| anyhow!(e));
        let township = TownshipSection {
            code: ident("bench")?,
            name: "基准镇".into(),
            villages: villages
                .iter()
                .map(|v| {
                    Ok(VillageConfig {
                        code: ident(v)?,
                        name: v.clone(),
                        kind: VillageKind::default(),
                        grids: Vec::new(),
                    })
                })
                .collect::<anyhow::Result<_>>()?,
        };
        store
            .sync_township(&township)
            .context("writing the township")?;
        let speakers = Speakers::open(&store)?;
        let assets = AssetStore::open(&dir, tgw::broadcast::audio::AudioSettings::default())?;
        Ok(World {
            dir,
            store,
            speakers,
            assets,
        })
    }

    /// Registers RTP unicast horns: (id, address, village).
    fn add_horns(&self, horns: &[(String, SocketAddr, String)]) -> anyhow::Result<()> {
        let list = horns
            .iter()
            .map(|(id, addr, village)| {
                Ok(NewSpeaker {
                    id: Ident::parse(id).map_err(|e| anyhow!(e))?,
                    name: None,
                    kind: DriverKind::Rtp,
                    address: addr.to_string(),
                    village: Some(village.clone()),
                    grid: None,
                    zone: None,
                    codec: Codec::Pcmu,
                    volume: None,
                    ttl: None,
                    username: None,
                    password: None,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        self.speakers.upsert(&list).context("registering horns")?;
        Ok(())
    }

    /// Imports a sine tone as an asset; returns its sha256 hex.
    fn tone(&self, hz: f64, seconds: f64) -> anyhow::Result<String> {
        let pcm = device_drivers::g711::tone(hz, seconds, 12_000);
        let a = self
            .assets
            .import(&tgw::broadcast::audio::wav_bytes(&pcm, 8000), "tone.wav")
            .context("importing the tone asset")?;
        Ok(a.sha256)
    }

    /// The runtime as the daemon starts it (system clock, real drivers,
    /// `[broadcast]` defaults).
    fn start(
        &self,
        timetable: Timetable,
        keys: KeySet,
        shutdown: CancellationToken,
    ) -> anyhow::Result<(Broadcasts, tokio::task::JoinHandle<()>)> {
        let settings = Settings {
            default_volume: 80,
            ..Settings::default()
        };
        let driver = settings.driver.clone();
        Ok(runtime::start(
            Parts {
                records: Records::open(&self.store)?,
                publisher: std::sync::Arc::new(tgw::broadcast::runtime::NoReports),
                live: tgw::base::live::LiveHub::default(),
                speakers: self.speakers.clone(),
                assets: self.assets.clone(),
                timetable,
                settings,
                clock: Arc::new(SystemClock),
                player: Arc::new(DriverPlayer(driver)),
                warnings: None,
                keys,
            },
            shutdown,
        ))
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ------------------------------------------------- 1. schedule firing accuracy

async fn bench_schedule(o: &Opts) -> anyhow::Result<(Value, String)> {
    let load0 = load();
    let villages: Vec<String> = (1..=o.runs).map(|k| format!("r{k}")).collect();
    let world = World::new("schedule", &villages)?;
    let tone = world.tone(1000.0, o.seconds)?;
    // One simulator (o.horns RTP horns) per occurrence.
    let mut sims = Vec::with_capacity(o.runs);
    let mut horns = Vec::new();
    for k in 0..o.runs {
        let sim = device_sim::start(SimConfig {
            cameras: 0,
            speakers: o.horns,
            bind: Ipv4Addr::new(127, 63, (4 * k) as u8, 1),
            multicast: None,
            speaker_kinds: vec![SpeakerKind::Rtp],
            ..SimConfig::default()
        })
        .await
        .context("starting the simulated horns")?;
        for d in &sim.manifest().devices {
            let uri: SpeakerUri = d.uri.as_deref().context("speaker without uri")?.parse()?;
            let SpeakerUri::Rtp { dest, .. } = uri else {
                bail!("simulated horn {} is not RTP", d.id);
            };
            horns.push((format!("r{}-{}", k + 1, d.id), dest, format!("r{}", k + 1)));
        }
        sims.push(sim);
    }
    world.add_horns(&horns)?;

    let tz = jiff::tz::TimeZone::get(TZ)?;
    let first_s = (wall_ms() / 1000.0).ceil() as i64 + 9;
    let t0s: Vec<i64> = (0..o.runs as i64)
        .map(|k| (first_s + k * o.interval_s as i64) * 1000)
        .collect();
    let mut toml = format!(
        "timezone = \"{TZ}\"\n\n[[programme]]\nid = \"tone\"\nname = \"bench\"\nitems = [ {{ asset = \"sha256:{tone}\" }} ]\n"
    );
    for (k, t) in t0s.iter().enumerate() {
        let local = jiff::Timestamp::from_millisecond(*t)?.to_zoned(tz.clone());
        toml.push_str(&format!(
            "\n[[schedule]]\nid = \"occ-{n}\"\nprogramme = \"tone\"\ntargets = [\"village:r{n}\"]\nat = [\"{}\"]\n",
            local.strftime("%H:%M:%S"),
            n = k + 1
        ));
    }
    let tt = Timetable::parse(&toml, TZ).map_err(|e| anyhow!("bench timetable: {e}"))?;
    let shutdown = CancellationToken::new();
    let (_b, task) = world.start(tt, KeySet::default(), shutdown.clone())?;

    let last = *t0s.last().context("no occurrence")? as f64;
    let end = last + o.seconds * 1000.0 + 1500.0;
    tokio::time::sleep(Duration::from_secs_f64(
        ((end - wall_ms()) / 1000.0).max(0.0),
    ))
    .await;

    let mut abs = Vec::new();
    let mut signed_off = Vec::new();
    let mut per_occ = Vec::new();
    let (mut missing, mut wrong) = (0usize, 0usize);
    for (k, sim) in sims.iter().enumerate() {
        let t0 = t0s[k] as f64;
        let mut occ = Vec::new();
        for d in &sim.manifest().devices {
            let rep = sim.speaker_report(&d.id);
            let first = rep
                .as_ref()
                .and_then(|r| r.first_packet_at.as_deref())
                .and_then(|s| {
                    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
                });
            let Some(first) = first else {
                missing += 1;
                continue;
            };
            if rep.as_ref().and_then(|r| r.dominant_tone_hz) != Some(1000) {
                wrong += 1;
            }
            let off = first.unix_timestamp_nanos() as f64 / 1e6 - t0;
            signed_off.push(off);
            abs.push(off.abs());
            occ.push(off.abs());
        }
        per_occ.push(json!({"occurrence": k + 1, "abs_offset_ms": dist(&occ)}));
    }
    let records = Records::open(&world.store)?;
    let mut states: BTreeMap<String, u32> = BTreeMap::new();
    // The gateway's own report: first packet sent − T0 per horn (driver side).
    let mut sender = Vec::new();
    for r in records.list(1000)? {
        for (s, n) in &r.counts {
            *states.entry(s.clone()).or_default() += n;
        }
        if let Some((_, hs)) = records.get(&r.id)? {
            sender.extend(
                hs.iter()
                    .filter_map(|h| h.detail.as_ref()?.get("skew_ms")?.as_f64()),
            );
        }
    }
    shutdown.cancel();
    let _ = task.await;
    for s in sims {
        s.shutdown().await;
    }
    let (p50, p99, max) = (pct(&abs, 50.0), pct(&abs, 99.0), pct(&abs, 100.0));
    let line = json!({
        "bench": "broadcast-schedule",
        "horns_per_occurrence": o.horns,
        "occurrences": o.runs,
        "interval_s": o.interval_s,
        "programme_seconds": o.seconds,
        "abs_first_packet_minus_t0_ms": dist(&abs),
        "first_packet_minus_t0_ms": dist(&signed_off),
        "reported_sender_offset_ms": dist(&sender),
        "per_occurrence": per_occ,
        "target_ms": TARGET_FIRING_MS,
        "horns_without_packets": missing,
        "horns_not_hearing_1khz": wrong,
        "horn_final_states": states,
        "load_before": load0,
        "load_after": load(),
    });
    let human = format!(
        "broadcast-schedule: {} occurrences × {} horns: |first packet − T0| p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms \
         (target ≤ {TARGET_FIRING_MS} ms: {}); {missing} horns silent, {wrong} wrong tone",
        o.runs,
        o.horns,
        verdict(max <= TARGET_FIRING_MS),
    );
    Ok((line, human))
}

// ------------------------------------------ 2. + 3. emergency and preemption

/// One RTP stream as a horn saw it.
#[derive(Debug, Clone, Copy)]
struct Seen {
    ssrc: u32,
    /// Wall ms of the first and last packet.
    first: f64,
    last: f64,
    packets: u64,
}

/// Minimal simulated RTP horns that remember every stream (by SSRC).
struct ProbeHorns {
    addrs: Vec<SocketAddr>,
    logs: Vec<Arc<Mutex<Vec<Seen>>>>,
    cancel: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ProbeHorns {
    async fn start(n: usize) -> anyhow::Result<ProbeHorns> {
        let cancel = CancellationToken::new();
        let (mut addrs, mut logs, mut tasks) = (Vec::new(), Vec::new(), Vec::new());
        for j in 0..n {
            let ip = Ipv4Addr::new(127, 64, (j / 250) as u8, (j % 250 + 1) as u8);
            let sock = tokio::net::UdpSocket::bind((ip, 0))
                .await
                .with_context(|| format!("binding probe horn {j} on {ip}"))?;
            addrs.push(sock.local_addr()?);
            let log: Arc<Mutex<Vec<Seen>>> = Arc::default();
            logs.push(log.clone());
            let c = cancel.clone();
            tasks.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 2048];
                loop {
                    let r = tokio::select! {
                        _ = c.cancelled() => break,
                        r = sock.recv_from(&mut buf) => r,
                    };
                    let Ok((len, _)) = r else { continue };
                    let at = wall_ms();
                    let Ok(p) = device_sim::speaker::parse_rtp(&buf[..len]) else {
                        continue;
                    };
                    if p.payload_type != 0 && p.payload_type != 8 {
                        continue;
                    }
                    let mut g = log.lock().unwrap_or_else(|e| e.into_inner());
                    match g.iter_mut().rev().find(|s| s.ssrc == p.ssrc) {
                        Some(s) => {
                            s.last = at;
                            s.packets += 1;
                        }
                        None => g.push(Seen {
                            ssrc: p.ssrc,
                            first: at,
                            last: at,
                            packets: 1,
                        }),
                    }
                }
            }));
        }
        Ok(ProbeHorns {
            addrs,
            logs,
            cancel,
            tasks,
        })
    }

    fn seen(&self, j: usize) -> Vec<Seen> {
        self.logs[j]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until `f` finds something on every horn; returns what it found.
    async fn wait_all<T>(
        &self,
        what: &str,
        timeout: Duration,
        f: impl Fn(&[Seen]) -> Option<T>,
    ) -> anyhow::Result<Vec<T>> {
        let until = Instant::now() + timeout;
        loop {
            let found: Vec<Option<T>> = (0..self.addrs.len()).map(|j| f(&self.seen(j))).collect();
            let missing = found.iter().filter(|x| x.is_none()).count();
            if missing == 0 {
                return Ok(found.into_iter().flatten().collect());
            }
            if Instant::now() > until {
                bail!(
                    "{what}: {missing} of {} horns never got it",
                    self.addrs.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until no horn has received anything for `quiet`.
    async fn wait_quiet(&self, quiet: Duration, timeout: Duration) {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            let last = (0..self.addrs.len())
                .flat_map(|j| self.seen(j).into_iter().map(|s| s.last))
                .fold(0.0f64, f64::max);
            if wall_ms() - last > quiet.as_secs_f64() * 1000.0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn shutdown(self) {
        self.cancel.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Figures of one preemption run, per horn.
#[derive(Default)]
struct RunFigures {
    /// Command (or submit) → first packet of the emergency.
    first: Vec<f64>,
    /// Command → last packet of the routine.
    stop: Vec<f64>,
    /// Last routine packet → first emergency packet (silence on the horn).
    gap: Vec<f64>,
    /// How long the `signed` / `submit` call took to answer.
    call_ms: f64,
    /// Routine packets that arrived after the command, all horns.
    late_packets: u64,
}

#[derive(Clone, Copy, PartialEq)]
enum Via {
    Signed,
    SignedTts,
    Submit,
}

struct Scenario {
    b: Broadcasts,
    key: SigningKey,
    routine: String,
    emergency: String,
    n: usize,
}

const TTS_TEXT: &str = "紧急通知：请注意防范强降雨，低洼地带居民请立即转移。";

impl Scenario {
    /// One run: a routine programme on every horn (unless `idle`), then
    /// the emergency.
    async fn run(
        &mut self,
        probe: &ProbeHorns,
        via: Via,
        idle: bool,
    ) -> anyhow::Result<RunFigures> {
        self.n += 1;
        let k = self.n;
        if idle {
            return self
                .emergency(probe, via, k, &vec![0; probe.addrs.len()])
                .await;
        }
        // The routine programme, on every horn.
        let t_r = wall_ms();
        self.b
            .submit(Spec {
                id: Some(format!("routine-{k}")),
                origin: "operator:bench".into(),
                title: "routine".into(),
                priority: Priority::Routine,
                targets: vec![Target::All],
                recipe: Recipe {
                    pre: None,
                    items: vec![Part::Asset(self.routine.clone())],
                    post: None,
                    repeat: 1,
                    interval: Duration::ZERO,
                    volume: Some(80),
                },
                start_at: None,
                latest_start: None,
                on_preempt: OnPreempt::Drop,
            })
            .await
            .map_err(|e| anyhow!("routine refused: {e}"))?;
        let routine: Vec<u32> = probe
            .wait_all("routine programme", Duration::from_secs(15), |s| {
                s.iter().find(|x| x.first > t_r).map(|x| x.ssrc)
            })
            .await?;
        // Mid-programme, off the 20 ms grid by a varying amount.
        tokio::time::sleep(Duration::from_millis(1000 + 7 * k as u64)).await;
        self.emergency(probe, via, k, &routine).await
    }

    /// Sends emergency `k` and measures it against the routine streams
    /// (`routine[j]`: SSRC of the routine at horn j, 0 for none).
    async fn emergency(
        &mut self,
        probe: &ProbeHorns,
        via: Via,
        k: usize,
        routine: &[u32],
    ) -> anyhow::Result<RunFigures> {
        let (body, spec) = match via {
            Via::Signed | Via::SignedTts => {
                let not_after = OffsetDateTime::now_utc() + time::Duration::minutes(10);
                let mut p = json!({
                    "id": format!("em-{k}"),
                    "action": "start",
                    "not_after": not_after.format(&time::format_description::well_known::Rfc3339)?,
                    "nonce": format!("bench-{}-{k}-{:016x}", std::process::id(), rand::random::<u64>()),
                    "targets": ["all"],
                });
                if via == Via::SignedTts {
                    p["text"] = json!(TTS_TEXT);
                } else {
                    p["asset"] = json!(format!("sha256:{}", self.emergency));
                }
                let env = signed::sign(&self.key, p.to_string().as_bytes(), "bench-county");
                (Some(bytes::Bytes::from(env)), None)
            }
            Via::Submit => (
                None,
                Some(Spec {
                    id: Some(format!("em-{k}")),
                    origin: "operator:bench".into(),
                    title: "emergency".into(),
                    priority: Priority::Emergency,
                    targets: vec![Target::All],
                    recipe: Recipe {
                        pre: Some(Part::Chime),
                        items: vec![Part::Asset(self.emergency.clone())],
                        post: None,
                        repeat: 1,
                        interval: Duration::ZERO,
                        volume: Some(100),
                    },
                    start_at: None,
                    latest_start: None,
                    on_preempt: OnPreempt::Drop,
                }),
            ),
        };
        // The command arrives now.
        let t_cmd = wall_ms();
        match (body, spec) {
            (Some(body), _) => {
                self.b
                    .signed(body)
                    .await
                    .map_err(|r| anyhow!("signed command refused: {}: {}", r.code, r.message))?;
            }
            (None, Some(spec)) => {
                self.b
                    .submit(spec)
                    .await
                    .map_err(|e| anyhow!("emergency refused: {e}"))?;
            }
            (None, None) => bail!("nothing to send"),
        }
        let call_ms = wall_ms() - t_cmd;
        let timeout = Duration::from_secs(if via == Via::SignedTts { 60 } else { 15 });
        let em: Vec<Seen> = probe
            .wait_all("emergency", timeout, |s| {
                s.iter()
                    .find(|x| x.first > t_cmd && !routine.contains(&x.ssrc))
                    .copied()
            })
            .await?;
        probe
            .wait_quiet(Duration::from_millis(600), Duration::from_secs(90))
            .await;
        let mut f = RunFigures {
            call_ms,
            ..RunFigures::default()
        };
        for (j, e) in em.iter().enumerate() {
            f.first.push(e.first - t_cmd);
            if let Some(r) = probe.seen(j).iter().find(|x| x.ssrc == routine[j]) {
                f.stop.push(r.last - t_cmd);
                f.gap.push(e.first - r.last);
                // Frames are 20 ms apart: packets that still arrived after the command.
                f.late_packets += ((r.last - t_cmd) / 20.0).ceil().max(0.0) as u64;
            }
        }
        Ok(f)
    }
}

async fn bench_preempt(o: &Opts, via_signed: bool) -> anyhow::Result<(Value, String)> {
    let load0 = load();
    let villages: Vec<String> = (1..=20).map(|v| format!("v{v:02}")).collect();
    let world = World::new(if via_signed { "emergency" } else { "preempt" }, &villages)?;
    let probe = ProbeHorns::start(o.horns).await?;
    let horns: Vec<(String, SocketAddr, String)> = probe
        .addrs
        .iter()
        .enumerate()
        .map(|(j, a)| {
            (
                format!("h{:04}", j + 1),
                *a,
                villages[j % villages.len()].clone(),
            )
        })
        .collect();
    world.add_horns(&horns)?;
    let routine = world.tone(400.0, 30.0)?;
    let emergency = world.tone(1000.0, 2.0)?;
    let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let keys = KeySet::from_config(&[KeyConfig {
        id: "bench-county".into(),
        public_key: signed::public_key_base64(&key.verifying_key()),
        scope: vec![Target::All],
    }])
    .map_err(|e| anyhow!(e))?;
    let tt = Timetable::from_parts(
        tgw_core::schedule::Parts::default(),
        Calendar::default(),
        TZ,
    )
    .map_err(|e| anyhow!("{e}"))?;
    let shutdown = CancellationToken::new();
    let (b, task) = world.start(tt, keys, shutdown.clone())?;
    let mut sc = Scenario {
        b,
        key,
        routine,
        emergency,
        n: 0,
    };
    let via = if via_signed { Via::Signed } else { Via::Submit };
    let (mut first, mut stop, mut gap, mut calls) = (vec![], vec![], vec![], vec![]);
    let mut late_packets = 0u64;
    let mut per_run = Vec::new();
    for _ in 0..o.runs {
        let f = sc.run(&probe, via, false).await?;
        per_run.push(json!({
            "first_packet_ms": dist(&f.first),
            "routine_last_packet_ms": dist(&f.stop),
            "call_ms": round2(f.call_ms),
        }));
        first.extend(f.first);
        stop.extend(f.stop);
        gap.extend(f.gap);
        calls.push(f.call_ms);
        late_packets += f.late_packets;
    }
    let tts = if via_signed && o.tts {
        Some(sc.run(&probe, Via::SignedTts, false).await?)
    } else {
        None
    };
    // For comparison: the same command to idle horns (nothing to preempt).
    let idle = sc.run(&probe, via, true).await?;
    shutdown.cancel();
    let _ = task.await;
    probe.shutdown().await;

    let (f50, f99, fmax) = (pct(&first, 50.0), pct(&first, 99.0), pct(&first, 100.0));
    let (s50, s99) = (pct(&stop, 50.0), pct(&stop, 99.0));
    let name = if via_signed {
        "broadcast-emergency"
    } else {
        "broadcast-preempt"
    };
    let mut line = json!({
        "bench": name,
        "horns": o.horns,
        "runs": o.runs,
        "path": if via_signed { "Broadcasts::signed (Ed25519 envelope, asset content)" } else { "Broadcasts::submit (priority emergency, asset content)" },
        "command_to_first_packet_ms": dist(&first),
        "command_to_routine_last_packet_ms": dist(&stop),
        "routine_last_to_emergency_first_ms": dist(&gap),
        "routine_packets_after_the_command": late_packets,
        "call_answer_ms": dist(&calls),
        "target_first_packet_p99_ms": TARGET_EMERGENCY_P99_MS,
        "per_run": per_run,
        "load_before": load0,
        "load_after": load(),
    });
    let mut human = format!(
        "{name}: {} horns × {} runs: command→first packet p50 {f50:.1} / p99 {f99:.1} / max {fmax:.1} ms (target p99 ≤ {TARGET_EMERGENCY_P99_MS} ms: {}); \
         routine's last packet p50 {s50:.1} / p99 {s99:.1} ms after the command ({late_packets} routine packets after it in all)",
        o.horns,
        o.runs,
        verdict(f99 <= TARGET_EMERGENCY_P99_MS),
    );
    line["idle_run"] = json!({
        "command_to_first_packet_ms": dist(&idle.first),
        "call_answer_ms": round2(idle.call_ms),
    });
    human.push_str(&format!(
        "; to idle horns (1 run): first packet p50 {:.1} / p99 {:.1} ms",
        pct(&idle.first, 50.0),
        pct(&idle.first, 99.0)
    ));
    if let Some(t) = tts {
        line["tts_run"] = json!({
            "text": TTS_TEXT,
            "command_to_first_packet_ms": dist(&t.first),
            "command_to_routine_last_packet_ms": dist(&t.stop),
            "call_answer_ms": round2(t.call_ms),
        });
        human.push_str(&format!(
            "; with TTS (1 run): first packet p50 {:.1} / p99 {:.1} ms",
            pct(&t.first, 50.0),
            pct(&t.first, 99.0)
        ));
    }
    Ok((line, human))
}

// ------------------------------------------------- 4. a year of timetable

/// An example-like timetable (cf. `config/timetable.example.toml`) for 20
/// villages: 15 schedules (workdays, rest days, weekdays, RRULEs, date
/// ranges), 3 groups, 3 quiet-hours rules, priorities from background to
/// superior.
fn year_timetable() -> String {
    let tts = |t: &str| format!("items = [ {{ tts = \"{t}\" }} ]");
    let mut s = String::from("timezone = \"Asia/Shanghai\"\n\n");
    s.push_str(
        r#"[[group]]
name = "schools"
targets = ["speaker:h0003", "speaker:h0017", "zone:east", "grid:v05-g1"]

[[group]]
name = "river-villages"
targets = ["village:v01", "village:v02", "village:v03", "village:v04", "village:v05", "group:schools"]

[[group]]
name = "market-villages"
targets = ["village:v10", "village:v11", "village:v12", "village:v13", "village:v14", "village:v15", "village:v16", "village:v17", "village:v18", "village:v19", "village:v20"]

[[quiet_hours]]
targets = ["all"]
from = "22:00"
to = "06:30"

[[quiet_hours]]
targets = ["group:schools"]
from = "12:00"
to = "13:30"

[[quiet_hours]]
targets = ["village:v03"]
from = "12:00"
to = "14:00"

"#,
    );
    let programmes = [
        (
            "morning-news",
            "routine",
            "各位村民早上好，现在播报今日政策信息。",
            2,
        ),
        ("noon-news", "routine", "午间新闻。", 1),
        ("fire-safety", "township", "天干物燥，小心火烛。", 3),
        ("evening-reminder", "routine", "夜间请关好门窗。", 1),
        (
            "monthly-meeting",
            "routine",
            "本月村民议事会将于今晚召开。",
            2,
        ),
        ("epidemic", "township", "请做好个人防护。", 2),
        ("flood", "superior", "汛期请注意防范。", 2),
        ("school", "routine", "上学路上注意交通安全。", 1),
        ("night-music", "background", "轻音乐。", 1),
        ("market", "routine", "今天是赶集日。", 1),
    ];
    for (id, prio, text, repeat) in programmes {
        s.push_str(&format!(
            "[[programme]]\nid = \"{id}\"\n{}\nrepeat = {repeat}\ninterval = \"30s\"\npriority = \"{prio}\"\n\n",
            tts(text)
        ));
    }
    let schedules = [
        r#"id = "workday-morning-winter"
programme = "morning-news"
targets = ["all"]
at = ["07:30"]
days = "workdays"
until = "2026-04-30""#,
        r#"id = "workday-morning-summer"
programme = "morning-news"
targets = ["all"]
at = ["07:00"]
days = "workdays"
from = "2026-05-01"
until = "2026-09-30""#,
        r#"id = "workday-morning-autumn"
programme = "morning-news"
targets = ["all"]
at = ["07:30"]
days = "workdays"
from = "2026-10-01""#,
        r#"id = "noon-news"
programme = "noon-news"
targets = ["group:river-villages"]
at = ["12:30"]"#,
        r#"id = "rest-day-fire-safety"
programme = "fire-safety"
targets = ["group:river-villages"]
at = ["09:00", "16:00"]
days = "rest-days""#,
        r#"id = "evening-mon-thu"
programme = "evening-reminder"
targets = ["village:v01", "zone:east"]
rrule = "FREQ=WEEKLY;BYDAY=MO,TH;BYHOUR=19;BYMINUTE=30""#,
        r#"id = "last-friday-meeting"
programme = "monthly-meeting"
targets = ["all"]
rrule = "FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=17;BYMINUTE=0""#,
        r#"id = "first-of-month"
programme = "monthly-meeting"
targets = ["all"]
rrule = "FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=9;BYMINUTE=0""#,
        r#"id = "epidemic-season"
programme = "epidemic"
targets = ["all"]
at = ["10:00", "15:00"]
from = "2026-11-01""#,
        r#"id = "flood-season"
programme = "flood"
targets = ["group:river-villages"]
rrule = "FREQ=DAILY;BYHOUR=8,20;BYMINUTE=0"
from = "2026-06-01"
until = "2026-08-31""#,
        r#"id = "school-mornings"
programme = "school"
targets = ["group:schools"]
at = ["07:50"]
days = ["mon", "tue", "wed", "thu", "fri"]"#,
        r#"id = "evening-music"
programme = "night-music"
targets = ["all"]
at = ["21:00"]
days = "rest-days""#,
        r#"id = "saturday-market"
programme = "market"
targets = ["group:market-villages"]
at = ["08:00"]
days = ["sat"]"#,
        r#"id = "sunday-evening"
programme = "evening-reminder"
targets = ["all"]
rrule = "FREQ=WEEKLY;BYDAY=SU;BYHOUR=18;BYMINUTE=0""#,
        r#"id = "village-evening"
programme = "evening-reminder"
targets = ["village:v06", "village:v07", "village:v08", "village:v09"]
at = ["18:30"]
days = "workdays""#,
    ];
    for sch in schedules {
        s.push_str("[[schedule]]\n");
        s.push_str(sch);
        s.push_str("\n\n");
    }
    s
}

fn year_horns(n: usize) -> Vec<HornInfo> {
    (0..n)
        .map(|j| {
            let v = j % 20 + 1;
            HornInfo {
                id: format!("h{:04}", j + 1),
                village: Some(format!("v{v:02}")),
                grid: Some(format!("v{v:02}-g{}", (j / 20) % 5 + 1)),
                zone: match j % 10 {
                    0 => Some("east".into()),
                    5 => Some("west".into()),
                    _ => None,
                },
            }
        })
        .collect()
}

/// Resets the peak RSS (VmHWM) to the current RSS; false when not allowed.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn bench_year(o: &Opts) -> anyhow::Result<(Value, String)> {
    let load0 = load();
    let calendar = Calendar::parse(CALENDAR).map_err(|e| anyhow!("example calendar: {e}"))?;
    let tt = Timetable::parse(&year_timetable(), TZ)
        .map_err(|e| anyhow!("bench timetable: {e}"))?
        .with_calendar(calendar)
        .map_err(|e| anyhow!("bench timetable: {e}"))?;
    let infos = year_horns(o.horns);
    let tz = jiff::tz::TimeZone::get(TZ)?;
    let day = |d: &str| -> anyhow::Result<jiff::Timestamp> {
        Ok(d.parse::<jiff::civil::Date>()?
            .to_zoned(tz.clone())?
            .timestamp())
    };
    let (from, to) = (day("2026-01-01")?, day("2027-01-01")?);
    let unknown = tt.unknown_targets(&infos);
    if !unknown.is_empty() {
        bail!("bench timetable names targets no horn has: {unknown:?}");
    }
    let index: HashMap<&str, usize> = infos
        .iter()
        .enumerate()
        .map(|(i, h)| (h.id.as_str(), i))
        .collect();
    let mut runs = Vec::new();
    for _ in 0..o.runs {
        let peak_reset = reset_peak_rss();
        let rss0 = super::read_status()?.vm_rss_kib.unwrap_or(0);
        let t = Instant::now();
        let occs = tt.occurrences(from, to, None);
        let expand_s = t.elapsed().as_secs_f64();
        // Per-horn timelines: (instant ms, index of the occurrence).
        let mut timelines: Vec<Vec<(i64, u32)>> = vec![Vec::new(); infos.len()];
        let mut quiet_dropped = 0usize;
        for (i, occ) in occs.iter().enumerate() {
            let horns = tt.resolve(&occ.targets, &infos);
            let quiet = if occ.priority == Priority::Emergency {
                Default::default()
            } else {
                tt.quiet_horns(occ.local, &infos)
            };
            let at = occ.at.as_millisecond();
            for h in &horns {
                if quiet.contains(h) {
                    quiet_dropped += 1;
                    continue;
                }
                if let Some(&k) = index.get(h.as_str()) {
                    timelines[k].push((at, i as u32));
                }
            }
        }
        let total_s = t.elapsed().as_secs_f64();
        let st = super::read_status()?;
        let entries: usize = timelines.iter().map(Vec::len).sum();
        let busiest = timelines.iter().map(Vec::len).max().unwrap_or(0);
        let quietest = timelines.iter().map(Vec::len).min().unwrap_or(0);
        let peak_delta_kib = st.vm_hwm_kib.unwrap_or(0).saturating_sub(rss0);
        drop(timelines);
        drop(occs);
        let check_reset = reset_peak_rss();
        let rss1 = super::read_status()?.vm_rss_kib.unwrap_or(0);
        let t = Instant::now();
        let report = tgw_core::schedule::check(&tt, from, to, &infos);
        let check_s = t.elapsed().as_secs_f64();
        let check_peak_kib = super::read_status()?
            .vm_hwm_kib
            .unwrap_or(0)
            .saturating_sub(rss1);
        let occurrences = report.occurrences.len();
        let warnings: Vec<String> = report
            .warnings
            .iter()
            .map(|w| format!("{:?} {:?} ×{}", w.kind, w.schedules, w.count))
            .collect();
        drop(report);
        runs.push(json!({
            "occurrences": occurrences,
            "expand_ms": round2(expand_s * 1e3),
            "expand_and_resolve_ms": round2(total_s * 1e3),
            "timeline_entries": entries,
            "entries_per_horn_min_max": [quietest, busiest],
            "dropped_for_quiet_hours": quiet_dropped,
            "peak_rss_delta_kib": if peak_reset { json!(peak_delta_kib) } else { Value::Null },
            "rss_before_kib": rss0,
            "schedule_check_ms": round2(check_s * 1e3),
            "schedule_check_peak_rss_delta_kib": if check_reset { json!(check_peak_kib) } else { Value::Null },
            "check_warnings": warnings,
        }));
    }
    let col = |k: &str| -> Vec<f64> { runs.iter().filter_map(|r| r[k].as_f64()).collect() };
    let (res, chk) = (col("expand_and_resolve_ms"), col("schedule_check_ms"));
    // Peak RSS growth is only meaningful in the first run: later runs reuse
    // memory the allocator kept.
    let first = &runs[0];
    let line = json!({
        "bench": "broadcast-year",
        "horns": o.horns,
        "villages": 20,
        "schedules": tt.parts().schedules.len(),
        "range": "2026-01-01..2027-01-01 Asia/Shanghai",
        "expand_and_resolve_ms_median": round2(pct(&res, 50.0)),
        "schedule_check_ms_median": round2(pct(&chk, 50.0)),
        "peak_rss_delta_kib_first_run": first["peak_rss_delta_kib"],
        "schedule_check_peak_rss_delta_kib_first_run": first["schedule_check_peak_rss_delta_kib"],
        "runs": runs,
        "load_before": load0,
        "load_after": load(),
    });
    let human = format!(
        "broadcast-year: {} schedules, 2026, {} horns: {} occurrences → {} horn entries; expand + resolve median {:.1} ms (peak RSS +{} KiB), \
         schedule check median {:.1} ms (peak RSS +{} KiB); no target in the issue",
        tt.parts().schedules.len(),
        o.horns,
        first["occurrences"],
        first["timeline_entries"],
        pct(&res, 50.0),
        first["peak_rss_delta_kib"],
        pct(&chk, 50.0),
        first["schedule_check_peak_rss_delta_kib"],
    );
    Ok((line, human))
}
