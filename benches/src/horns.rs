//! `tgw-bench horns`: the issue-5 broadcast benchmark (BRIEF P6). A
//! simulated township of `--horns N` (default 200) loudspeakers in this
//! process: three quarters plain RTP unicast horns, one quarter members of
//! ONE RTP multicast zone (joined on 127.0.0.1, TTL 1). Each run starts a
//! fresh simulator and plays a `--seconds S` (default 2) 1 kHz tone on all
//! of them through `device_drivers::speaker::broadcast`, with T0 = the
//! command time plus `--playout-delay-ms D` (default 100). `--runs R`
//! (default 5) runs are pooled.
//!
//! Figures, from the simulator's wall-clock arrival stamps (same clock as
//! the command stamp):
//! - **command → first packet** per horn: first arrival − command time
//!   (includes the playout delay D; target p99 ≤ 300 ms);
//! - **start skew across horns**: |first arrival − median first arrival of
//!   the run|, unicast horns and zone members separately (targets p99 ≤
//!   10 ms and ≤ 2 ms);
//! - **sender offset**: first packet sent − T0 per stream (driver side);
//! - **CPU per concurrent stream**: process CPU during the runs / (wall ×
//!   streams), where streams = unicast horns + 1 (the zone is one stream).
//!   The receiving simulator is in the same process, so this includes the
//!   200 receivers decoding G.711 and running Goertzel filters.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use device_drivers::speaker::{self, DriverOptions, SpeakerUri};
use device_sim::{SimConfig, SpeakerKind};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

/// Targets from the issue, in ms.
const TARGET_LATENCY_P99_MS: f64 = 300.0;
const TARGET_SKEW_UNICAST_P99_MS: f64 = 10.0;
const TARGET_SKEW_MULTICAST_P99_MS: f64 = 2.0;

/// Parses the options and runs the bench.
pub async fn main(argv: &[String]) -> anyhow::Result<(Value, String)> {
    let (mut horns, mut runs, mut seconds, mut delay_ms) = (200usize, 5usize, 2.0f64, 100u64);
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        let bad = || format!("{flag} {value}");
        match flag.as_str() {
            "--horns" => horns = value.parse().with_context(bad)?,
            "--runs" => runs = value.parse().with_context(bad)?,
            "--seconds" => seconds = value.parse().with_context(bad)?,
            "--playout-delay-ms" => delay_ms = value.parse().with_context(bad)?,
            other => bail!("unknown option {other:?} for horns"),
        }
    }
    if horns < 4 || runs == 0 || !(seconds > 0.0 && seconds <= 60.0) {
        bail!("need --horns ≥ 4, --runs ≥ 1 and 0 < --seconds ≤ 60");
    }
    bench(horns, runs, seconds, Duration::from_millis(delay_ms)).await
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[i.min(v.len() - 1)]
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn cpu_ticks() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| super::parse_stat_cpu_ticks(&s))
        .unwrap_or(0)
}

async fn bench(
    horns: usize,
    runs: usize,
    seconds: f64,
    delay: Duration,
) -> anyhow::Result<(Value, String)> {
    let pcm = Arc::new(device_drivers::g711::tone(1000.0, seconds, 12_000));
    let (mut latency, mut skew_u, mut skew_m, mut sender_off) = (vec![], vec![], vec![], vec![]);
    let (mut failed, mut heard_wrong, mut lost) = (0usize, 0usize, 0u64);
    let mut streams = 0usize;
    let mut cpu_s = 0.0;
    let mut wall_s = 0.0;
    let hz = super::clock_ticks_per_sec() as f64;
    for run in 0..runs {
        let cfg = SimConfig {
            cameras: 0,
            speakers: horns,
            bind: std::net::Ipv4Addr::new(127, 62, (run % 200) as u8, 1),
            multicast: None,
            speaker_kinds: vec![
                SpeakerKind::Rtp,
                SpeakerKind::Rtp,
                SpeakerKind::Rtp,
                SpeakerKind::RtpMulticast,
            ],
            ..SimConfig::default()
        };
        let sim = device_sim::start(cfg)
            .await
            .context("starting the simulated horns")?;
        let devices = sim.manifest().devices.clone();
        let mut uris: Vec<SpeakerUri> = Vec::new();
        for d in &devices {
            let u: SpeakerUri = d.uri.as_deref().context("speaker without uri")?.parse()?;
            if !uris.contains(&u) {
                uris.push(u);
            }
        }
        streams = uris.len();
        let opts = DriverOptions::default();
        let cancel = CancellationToken::new();
        let cpu0 = cpu_ticks();
        let w0 = Instant::now();
        // The command arrives now.
        let command_wall = OffsetDateTime::now_utc();
        let t0 = tokio::time::Instant::now() + delay;
        let reps = speaker::broadcast(&uris, &opts, pcm.clone(), t0, &cancel).await;
        cpu_s += (cpu_ticks().saturating_sub(cpu0)) as f64 / hz;
        wall_s += w0.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_millis(100)).await;
        for r in &reps {
            if !r.errors.is_empty() || !r.completed {
                failed += 1;
            }
            if let Some(o) = r.start_offset_ms {
                sender_off.push(o);
            }
        }
        let mut firsts: Vec<(bool, f64)> = Vec::new();
        for d in &devices {
            let Some(rep) = sim.speaker_report(&d.id) else {
                continue;
            };
            lost += rep.lost;
            if rep.dominant_tone_hz != Some(1000) {
                heard_wrong += 1;
            }
            let Some(first) = rep.first_packet_at.as_deref().and_then(|s| {
                OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
            }) else {
                heard_wrong += 1;
                continue;
            };
            let ms = (first - command_wall).as_seconds_f64() * 1e3;
            latency.push(ms);
            firsts.push((rep.kind == "rtp-multicast", ms));
        }
        for multicast in [false, true] {
            let mut v: Vec<f64> = firsts
                .iter()
                .filter(|f| f.0 == multicast)
                .map(|f| f.1)
                .collect();
            let med = pct(&mut v, 50.0);
            let target = if multicast { &mut skew_m } else { &mut skew_u };
            target.extend(v.iter().map(|x| (x - med).abs()));
        }
        sim.shutdown().await;
    }
    let cpu_per_stream = if wall_s > 0.0 && streams > 0 {
        100.0 * cpu_s / wall_s / streams as f64
    } else {
        f64::NAN
    };
    let (l50, l99, lmax) = (
        pct(&mut latency, 50.0),
        pct(&mut latency, 99.0),
        pct(&mut latency, 100.0),
    );
    let (su99, sm99) = (pct(&mut skew_u, 99.0), pct(&mut skew_m, 99.0));
    let (so50, so99) = (pct(&mut sender_off, 50.0), pct(&mut sender_off, 99.0));
    let verdict = |ok: bool| if ok { "within" } else { "OVER" };
    let line = json!({
        "bench": "horns",
        "horns": horns,
        "streams": streams,
        "runs": runs,
        "seconds": seconds,
        "playout_delay_ms": delay.as_millis() as u64,
        "command_to_first_packet_ms": {"p50": round2(l50), "p99": round2(l99), "max": round2(lmax), "target_p99": TARGET_LATENCY_P99_MS},
        "start_skew_unicast_ms": {"p99": round2(su99), "target_p99": TARGET_SKEW_UNICAST_P99_MS},
        "start_skew_multicast_ms": {"p99": round2(sm99), "target_p99": TARGET_SKEW_MULTICAST_P99_MS},
        "sender_offset_from_t0_ms": {"p50": round2(so50), "p99": round2(so99)},
        "cpu_percent_of_one_core_per_stream": round2(cpu_per_stream),
        "failed_streams": failed,
        "horns_not_hearing_the_tone": heard_wrong,
        "packets_lost": lost,
    });
    let human = format!(
        "horns: {horns} horns ({streams} streams) × {runs} runs: command→first packet p99 {l99:.1} ms ({}, incl. {} ms playout delay); \
         skew p99 unicast {su99:.2} ms ({}), multicast {sm99:.2} ms ({}); CPU {cpu_per_stream:.3} % of a core per stream (incl. receivers); \
         {failed} failed, {heard_wrong} wrong, {lost} lost",
        verdict(l99 <= TARGET_LATENCY_P99_MS),
        delay.as_millis(),
        verdict(su99 <= TARGET_SKEW_UNICAST_P99_MS),
        verdict(sm99 <= TARGET_SKEW_MULTICAST_P99_MS),
    );
    Ok((line, human))
}
