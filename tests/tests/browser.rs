//! The dashboard in a real browser: Debian's Chromium driven by
//! `playwright-core` (tests/browser/suite.mjs) against `tgw run` and a
//! simulated township (`tgw sim`) on loopback. The suite logs in, sees the
//! overview, adopts a discovered camera into a village from the inbox,
//! watches it go offline live (SSE, no reload) when the simulator stops it,
//! and switches language. Screenshots go to `target/browser-artifacts/`.
//!
//! Prerequisites (scripts/install-peers): `/usr/bin/chromium`, `node`, and
//! `tests/browser/node_modules/playwright-core`. Without them the test is
//! skipped with a message, except under `CI=true`, where it fails.

use std::process::Command;
use std::time::Duration;

use tgw_e2e::*;

/// The health checks of the dashboard suites: every second, no stream
/// samples to speak of (every 30 s, 500 ms).
const BROWSER_HEALTH: &str = "check_interval_secs = 1\ndescribe_interval_secs = 5\n\
    sample_interval_secs = 30\nsample_ms = 500\ncall_timeout_ms = 1000";

fn prerequisites() -> Result<(), String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !std::path::Path::new(&chromium).exists() {
        return Err(format!("{chromium} missing (apt install chromium)"));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Err("node missing (apt install nodejs)".into());
    }
    let pw = workspace().join("tests/browser/node_modules/playwright-core");
    if !pw.exists() {
        return Err(format!("{} missing (scripts/install-peers)", pw.display()));
    }
    Ok(())
}

#[test]
fn dashboard_in_chromium() {
    if let Err(why) = prerequisites() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "browser suite prerequisites missing under CI: {why}"
        );
        eprintln!("SKIPPED dashboard_in_chromium: {why}");
        return;
    }
    let base = test_net(66);
    let cidr = cidr24(base);
    let (wsd, control, http) = (free_udp_port(), free_tcp_port(), free_tcp_port());
    let control = format!("127.0.0.1:{control}");
    let http = format!("127.0.0.1:{http}");
    let sim = SimProc::cameras(3, base, wsd, "pw-browser", &["--control", &control]);
    let cam = sim.devices("camera").into_iter().next().expect("a camera");
    let (sim_id, sim_addr) = (
        cam["id"].as_str().expect("id").to_string(),
        cam["address"].as_str().expect("address").to_string(),
    );
    let dir = tempfile::tempdir().expect("tmp");
    // No auto_adopt rule: discovered cameras wait in the inbox.
    let cfg_path = GatewayConfig::new(dir.path())
        .village("dongcun", "东村", &[("dongcun-1", "东村第一网格")])
        .camera_sweep(&cidr, wsd)
        .section("[health]", BROWSER_HEALTH)
        .credential_group("admin", "pw-browser", &cidr)
        .http(&http)
        .write(dir.path().join("gateway.toml"));
    let password = "browser-Admin-pw";
    add_user(&cfg_path, "admin", "admin", password);
    // A loudspeaker: an RTP "horn" that is a UDP socket held by this test.
    let horn = std::net::UdpSocket::bind("127.0.0.1:0").expect("horn socket");
    let horn_addr = horn.local_addr().expect("horn addr");
    let csv = dir.path().join("speakers.csv");
    std::fs::write(
        &csv,
        format!("id,name,kind,address,village,username,password\nspk-browser,东村广场,rtp,{horn_addr},dongcun,horn,spk-browser-Secret\n"),
    )
    .expect("speakers csv");
    import_speakers(&cfg_path, &csv);
    let mut gw = GatewayStart::new(&cfg_path, &http)
        .log(dir.path().join("gateway.log"))
        .start();
    gw.wait_ready();
    let artifacts = workspace().join("target/browser-artifacts");
    let mut node = Command::new("node");
    node.arg(workspace().join("tests/browser/suite.mjs"))
        .env("BASE", format!("http://{http}"))
        .env("CONTROL", &control)
        .env("USER_NAME", "admin")
        .env("PASS", password)
        .env("SIM_ID", &sim_id)
        .env("SIM_ADDR", &sim_addr)
        .env("ARTIFACTS", &artifacts);
    let out = run_with_timeout(node, Duration::from_secs(120));
    gw.stop();
    drop(sim);
    drop(horn);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{stderr}");
    let logs = gw.log();
    assert!(
        !logs.contains(password)
            && !logs.contains("pw-browser")
            && !logs.contains("spk-browser-Secret"),
        "a password reached the gateway log"
    );
    assert!(
        out.status.success(),
        "browser suite failed (screenshots in {}); gateway log tail:\n{}",
        artifacts.display(),
        logs.lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Broadcasts in a real browser (tests/browser/broadcasts.mjs) against
/// `tgw run` and three simulated horns (`tgw sim`: RTP, SIP with digest,
/// RTP) imported into the speaker inventory: an operator opens the
/// broadcasts page, starts an emergency broadcast through the confirmation
/// step (targets and horn count shown, count typed), watches every horn go
/// to started and then done live (SSE, no reload), drills down to the
/// per-horn report with its start skew, builds a timetable in the JSON
/// editors and sees its entry in the week view, then switches language.
/// The simulator confirms each horn heard the broadcast. Screenshots go to
/// `target/browser-artifacts/broadcasts-*.png`.
#[test]
fn broadcasts_in_chromium() {
    if let Err(why) = prerequisites() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "browser suite prerequisites missing under CI: {why}"
        );
        eprintln!("SKIPPED broadcasts_in_chromium: {why}");
        return;
    }
    let base = test_net(69);
    let control = format!("127.0.0.1:{}", free_tcp_port());
    let http = format!("127.0.0.1:{}", free_tcp_port());
    let sim = SimProc::start(&[
        "--cameras",
        "0",
        "--speakers",
        "3",
        "--speaker-kinds",
        "rtp,sip",
        "--bind",
        &base.to_string(),
        "--no-multicast",
        "--control",
        &control,
    ]);
    let horns = sim.devices("speaker");
    assert_eq!(horns.len(), 3, "{:?}", sim.manifest);
    // The simulator's horns into the inventory: two in 东村, one in 西河村.
    let mut csv = String::from("id,name,kind,address,village,username,password\n");
    for (i, d) in horns.iter().enumerate() {
        let id = d["id"].as_str().expect("id");
        let uri = d["uri"].as_str().expect("uri");
        let village = if i < 2 { "dongcun" } else { "xihe" };
        let name = format!("{}喇叭{}", if i < 2 { "东村" } else { "西河村" }, i + 1);
        let line = match d["speaker_kind"].as_str() {
            Some("sip") => {
                // sip:USER:PASS@IP:PORT
                let rest = uri.trim_start_matches("sip:");
                let (cred, host) = rest.split_once('@').expect("sip uri");
                let (user, pass) = cred.split_once(':').expect("sip credentials");
                let host = host.split('?').next().unwrap_or(host);
                format!("{id},{name},sip,sip:{user}@{host},{village},{user},{pass}\n")
            }
            _ => {
                let host = uri.trim_start_matches("rtp://");
                let host = host.split('?').next().unwrap_or(host);
                format!("{id},{name},rtp,{host},{village},,\n")
            }
        };
        csv.push_str(&line);
    }
    let dir = tempfile::tempdir().expect("tmp");
    let cfg_path = two_villages(dir.path())
        .no_discovery()
        .no_health()
        .http(&http)
        .write(dir.path().join("gateway.toml"));
    let password = "browser-Oper-pw";
    add_user(&cfg_path, "duty", "operator", password);
    let csv_path = dir.path().join("speakers.csv");
    std::fs::write(&csv_path, csv).expect("speakers csv");
    import_speakers(&cfg_path, &csv_path);
    let mut gw = GatewayStart::new(&cfg_path, &http)
        .log(dir.path().join("gateway.log"))
        .start();
    gw.wait_ready();
    let ids: Vec<&str> = horns.iter().filter_map(|d| d["id"].as_str()).collect();
    let artifacts = workspace().join("target/browser-artifacts");
    let mut node = Command::new("node");
    node.arg(workspace().join("tests/browser/broadcasts.mjs"))
        .env("BASE", format!("http://{http}"))
        .env("CONTROL", &control)
        .env("USER_NAME", "duty")
        .env("PASS", password)
        .env("HORNS", ids.join(","))
        .env("ARTIFACTS", &artifacts);
    let out = run_with_timeout(node, Duration::from_secs(180));
    gw.stop();
    drop(sim);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{stderr}");
    let logs = gw.log();
    assert!(
        !logs.contains(password),
        "a password reached the gateway log"
    );
    assert!(
        out.status.success(),
        "broadcast browser suite failed (screenshots in {}); gateway log tail:\n{}",
        artifacts.display(),
        logs.lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// `[gateway] timezone` Asia/Shanghai and two villages, 东村 (`dongcun`,
/// grid `dongcun-1`) and 西河村 (`xihe`, grid `xihe-1`).
fn two_villages(dir: &std::path::Path) -> GatewayConfig {
    GatewayConfig::new(dir)
        .timezone("Asia/Shanghai")
        .village("dongcun", "东村", &[("dongcun-1", "东村第一网格")])
        .village("xihe", "西河村", &[("xihe-1", "西河村第一网格")])
}

/// Every page in zh-CN and English in a real browser
/// (tests/browser/walk.mjs) against `tgw run` with three simulated cameras
/// auto-adopted into a village and one RTP horn: no missing key or raw
/// code on any page, an offline alarm acknowledged with a note, a camera
/// dragged onto the map that stays after a reload, a user edited and
/// disabled, the emergency dialog closed with Escape, a camera's GB/T 28181
/// id edited on the GB page (a silent platform shown). Screenshots of every
/// page go to `target/browser-artifacts/screenshots/` (`TGW_SHOTS=docs/screenshots`
/// refreshes the committed ones).
#[test]
fn dashboard_walk_in_chromium() {
    if let Err(why) = prerequisites() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "browser suite prerequisites missing under CI: {why}"
        );
        eprintln!("SKIPPED dashboard_walk_in_chromium: {why}");
        return;
    }
    let base = test_net(68);
    let cidr = cidr24(base);
    let (wsd, control, http) = (free_udp_port(), free_tcp_port(), free_tcp_port());
    let control = format!("127.0.0.1:{control}");
    let http = format!("127.0.0.1:{http}");
    let sim = SimProc::cameras(3, base, wsd, "pw-walk", &["--control", &control]);
    let mut cams: Vec<(String, String)> = sim
        .devices("camera")
        .iter()
        .map(|c| {
            (
                c["address"].as_str().expect("address").to_string(),
                c["id"].as_str().expect("id").to_string(),
            )
        })
        .collect();
    cams.sort_by_key(|(a, _)| {
        a.split(':')
            .next()
            .and_then(|ip| ip.parse::<std::net::Ipv4Addr>().ok())
            .map(u32::from)
            .unwrap_or(0)
    });
    let gb_platform = std::net::UdpSocket::bind("127.0.0.1:0").expect("gb platform socket");
    let dir = tempfile::tempdir().expect("tmp");
    let cfg_path = two_villages(dir.path())
        .camera_sweep(&cidr, wsd)
        .section(
            "[[discovery.auto_adopt]]",
            &format!("cidr = \"{cidr}\"\nvillage = \"dongcun\"\ngrid = \"dongcun-1\""),
        )
        .section("[health]", BROWSER_HEALTH)
        .credential_group("admin", "pw-walk", &cidr)
        .http(&http)
        // The GB/T 28181 page: a platform that never answers (a bound,
        // silent socket), so the page shows it registering, then not
        // answering.
        .gb28181("")
        .gb_platform(
            &gb_platform
                .local_addr()
                .expect("gb platform addr")
                .to_string(),
            "pw-gb-walk",
            "",
        )
        .write(dir.path().join("gateway.toml"));
    let password = "walk-Admin-pw";
    add_user(&cfg_path, "admin", "admin", password);
    let horn = std::net::UdpSocket::bind("127.0.0.1:0").expect("horn socket");
    let csv = dir.path().join("speakers.csv");
    std::fs::write(
        &csv,
        format!(
            "id,name,kind,address,village,username,password\nspk-walk,西河村广场,rtp,{},xihe,,\n",
            horn.local_addr().expect("horn addr")
        ),
    )
    .expect("speakers csv");
    import_speakers(&cfg_path, &csv);
    let mut gw = GatewayStart::new(&cfg_path, &http)
        .log(dir.path().join("gateway.log"))
        .start();
    gw.wait_ready();
    let ids: Vec<&str> = cams.iter().map(|(_, id)| id.as_str()).collect();
    let mut node = Command::new("node");
    node.arg(workspace().join("tests/browser/walk.mjs"))
        .env("BASE", format!("http://{http}"))
        .env("CONTROL", &control)
        .env("USER_NAME", "admin")
        .env("PASS", password)
        .env("SIM_IDS", ids.join(","))
        .env("ARTIFACTS", workspace().join("target/browser-artifacts"))
        // The committed screenshots in docs/ are refreshed on purpose only
        // (TGW_SHOTS=docs/screenshots); a test run never dirties the tree.
        .env(
            "SHOTS",
            std::env::var_os("TGW_SHOTS")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| workspace().join("target/browser-artifacts/screenshots")),
        );
    let out = run_with_timeout(node, Duration::from_secs(150));
    gw.stop();
    drop(sim);
    drop(horn);
    drop(gb_platform);
    eprintln!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let logs = gw.log();
    assert!(
        !logs.contains(password) && !logs.contains("pw-walk") && !logs.contains("pw-gb-walk"),
        "a password reached the gateway log"
    );
    let tail: Vec<&str> = logs.lines().rev().take(30).collect();
    assert!(
        out.status.success(),
        "dashboard walk failed (artifacts in target/browser-artifacts); gateway log tail:\n{}",
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
}

/// Chromium with a fake microphone paging one RTP horn played by ffmpeg:
/// what the clip and live-paging cases share. The microphone is 10 s of
/// `hz` at 48 kHz mono (Chromium loops it); the gateway has one operator
/// `duty` and the horn `horn-1` in village `dongcun`; with `sip`, also the
/// SIP horn `horn-2` there, an auto-answering baresip
/// (`tests/src::start_baresip`) that records what it decodes.
///
/// Fields drop in order: the gateway and the horns stop before the folder
/// goes.
struct MicHornRig {
    gw: Gateway,
    ff: KillOnDrop,
    /// baresip and its recordings folder.
    sip: Option<(KillOnDrop, std::path::PathBuf)>,
    dir: tempfile::TempDir,
    tone: std::path::PathBuf,
    password: &'static str,
}

/// The password of the rig's admin `chief` (reads the audit log).
const MIC_ADMIN_PW: &str = "browser-Chief-pw";

impl MicHornRig {
    fn start(hz: f64, password: &'static str, sip: bool) -> MicHornRig {
        // `tgw` is built (when stale) before any horn waits for a stream:
        // a build of minutes under a waiting ffmpeg lost the page's audio.
        let _ = tgw_bin();
        let dir = tempfile::tempdir().expect("tmp");
        let tone = dir.path().join("tone.wav");
        let pcm: Vec<i16> = (0..480_000)
            .map(|i| ((i as f64 * hz / 48_000.0 * std::f64::consts::TAU).sin() * 12_000.0) as i16)
            .collect();
        let data = 2 * pcm.len() as u32;
        let mut wav = Vec::new();
        wav.extend_from_slice(b"RIFF");
        wav.extend_from_slice(&(36 + data).to_le_bytes());
        wav.extend_from_slice(b"WAVEfmt ");
        wav.extend_from_slice(&16u32.to_le_bytes());
        wav.extend_from_slice(&[1, 0, 1, 0]); // PCM, mono
        wav.extend_from_slice(&48_000u32.to_le_bytes());
        wav.extend_from_slice(&96_000u32.to_le_bytes());
        wav.extend_from_slice(&[2, 0, 16, 0]); // block align 2, 16 bits
        wav.extend_from_slice(b"data");
        wav.extend_from_slice(&data.to_le_bytes());
        for s in &pcm {
            wav.extend_from_slice(&s.to_le_bytes());
        }
        std::fs::write(&tone, wav).expect("tone.wav");

        // The horn: ffmpeg receiving PCMU over RTP into out.wav.
        let port = rtp_port_pair();
        let ff = ffmpeg_rtp_receiver(dir.path(), port, "pcmu", 120);
        wait_udp_bound(port, Duration::from_secs(10));
        let mut horns = format!("horn-1,东村喇叭,rtp,127.0.0.1:{port},dongcun,,\n");
        let sip = sip.then(|| {
            let bs_dir = dir.path().join("baresip");
            std::fs::create_dir_all(&bs_dir).expect("baresip dir");
            let (bs, sip_port, rec) = start_baresip(&bs_dir);
            horns.push_str(&format!(
                "horn-2,东村喇叭2,sip,sip:horn@127.0.0.1:{sip_port},dongcun,,\n"
            ));
            (bs, rec)
        });
        let http = format!("127.0.0.1:{}", free_tcp_port());
        let cfg_path = GatewayConfig::new(dir.path())
            .timezone("Asia/Shanghai")
            .village("dongcun", "东村", &[("dongcun-1", "东村第一网格")])
            .no_discovery()
            .no_health()
            .http(&http)
            .write(dir.path().join("gateway.toml"));
        add_user(&cfg_path, "duty", "operator", password);
        add_user(&cfg_path, "chief", "admin", MIC_ADMIN_PW);
        let csv_path = dir.path().join("speakers.csv");
        std::fs::write(
            &csv_path,
            format!("id,name,kind,address,village,username,password\n{horns}"),
        )
        .expect("speakers csv");
        import_speakers(&cfg_path, &csv_path);
        let gw = GatewayStart::new(&cfg_path, &http)
            .log(dir.path().join("gateway.log"))
            .start();
        gw.wait_ready();
        MicHornRig {
            gw,
            ff,
            sip,
            dir,
            tone,
            password,
        }
    }

    /// Runs `tests/browser/{script}` against the gateway; its stdout, after
    /// asserting it succeeded (the gateway's log tail if not).
    fn run_script(&self, script: &str, env: &[(&str, &str)]) -> String {
        let artifacts = workspace().join("target/browser-artifacts");
        let mut node = Command::new("node");
        node.arg(workspace().join("tests/browser").join(script))
            .env("BASE", format!("http://{}", self.gw.http))
            .env("USER_NAME", "duty")
            .env("PASS", self.password)
            .env("TONE", &self.tone)
            .env("HORN", "horn-1")
            .env("SIP_HORN", if self.sip.is_some() { "horn-2" } else { "" })
            .env("ARTIFACTS", &artifacts)
            .envs(env.iter().copied());
        let out = run_with_timeout(node, Duration::from_secs(120));
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!("{stdout}\n{stderr}");
        let logs = self.gw.log();
        assert!(
            out.status.success(),
            "{script} failed (screenshots in {}); gateway log tail:\n{}",
            artifacts.display(),
            logs.lines().rev().take(30).collect::<Vec<_>>().join("\n")
        );
        stdout
    }

    /// The SIP horn's recording (baresip's decoded `…-dec.wav`) once it has
    /// at least 2 s and baresip has closed it (the call ended); baresip is
    /// stopped then.
    fn sip_recording(&mut self) -> (u32, Vec<i16>) {
        let (bs, rec) = self.sip.as_mut().expect("a rig with a SIP horn");
        let dump = wait_for(
            Duration::from_secs(30),
            "baresip's decoded recording",
            || {
                std::fs::read_dir(&*rec)
                    .ok()?
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
                    .filter(|p| read_wav_i16(p).is_some_and(|(r, s)| s.len() as u32 >= 2 * r))
            },
        );
        wait_stable(&dump);
        bs.stop();
        read_wav_i16(&dump).expect("baresip's WAV")
    }

    /// Waits for the horn to have recorded at least 2 s (`what` names it),
    /// stops ffmpeg and the gateway, and returns the horn's recording.
    fn horn_recording(mut self, what: &str) -> (u32, Vec<i16>) {
        let wav_path = self.dir.path().join("out.wav");
        wait_for(Duration::from_secs(30), what, || {
            read_wav_i16(&wav_path).filter(|(_, s)| s.len() >= 16_000)
        });
        wait_stable(&wav_path);
        let _ = Command::new("kill")
            .args(["-INT", &self.ff.id().to_string()])
            .status();
        let _ = wait_for(Duration::from_secs(15), "ffmpeg to finish", || {
            self.ff.try_wait().ok().flatten()
        });
        self.gw.stop();
        read_wav_i16(&wav_path).expect("ffmpeg's WAV")
    }
}

/// Skips a browser case outside CI when Chromium, node or ffmpeg is
/// missing; under CI that fails it.
fn browser_prerequisites(case: &str) -> bool {
    match prerequisites() {
        Ok(()) => true,
        Err(why) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "browser suite prerequisites missing under CI: {why}"
            );
            eprintln!("SKIPPED {case}: {why}");
            false
        }
    }
}

/// A recorded clip end to end (tests/browser/record.mjs): Chromium's fake
/// microphone plays a 700 Hz tone; an operator records it on the broadcasts
/// page with MediaRecorder (Opus in WebM, unknown-size clusters), listens
/// back, uploads it (the asset is `webm/opus`, about as long as recorded)
/// and broadcasts it to an RTP horn played by ffmpeg, which records the
/// tone.
#[test]
fn clip_recorded_in_chromium_plays_on_an_ffmpeg_horn() {
    if !browser_prerequisites("clip_recorded_in_chromium_plays_on_an_ffmpeg_horn") {
        return;
    }
    let rig = MicHornRig::start(700.0, "browser-Rec-pw", false);
    let stdout = rig.run_script("record.mjs", &[]);
    let asset: serde_json::Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("ASSET "))
        .and_then(|j| serde_json::from_str(j).ok())
        .expect("ASSET line");
    assert_eq!(asset["format"], "webm/opus", "{asset}");
    let ms = asset["duration_ms"].as_u64().expect("duration_ms");
    // 3 s recorded (MediaRecorder starts and stops within a few 100 ms).
    assert!((2000..=4500).contains(&ms), "clip of {ms} ms");
    let (rate, samples) = rig.horn_recording("the horn to record the clip");
    let on = tone_share(&samples, 700.0, rate);
    let off = tone_share(&samples, 1500.0, rate);
    assert!(
        on > 0.5 && off < 0.05,
        "the horn did not hear the 700 Hz clip: share {on:.3} at 700 Hz, {off:.3} at 1500 Hz"
    );
}

/// Live paging end to end (tests/browser/paging.mjs): Chromium's fake
/// microphone plays a 600 Hz tone; an operator pages two real horns, one
/// RTP horn (ffmpeg) and one SIP horn (baresip, called when the page
/// starts), holding the push-to-talk button on the broadcasts page for
/// about 3 s (AudioWorklet → 20 ms pcm16 frames at 16 kHz over the
/// WebSocket); a second tab on the phone page paging the RTP horn
/// meanwhile gets the busy error naming who is live. Both horns record the
/// tone; baresip's call is ended by our BYE when the page ends. An admin
/// then downloads the recording of what aired from the page's audit entry
/// (a WAV of at least 2 s) and sees the download audited.
#[test]
fn live_page_from_chromium_plays_on_ffmpeg_and_baresip_horns() {
    if !browser_prerequisites("live_page_from_chromium_plays_on_ffmpeg_and_baresip_horns") {
        return;
    }
    if !have("baresip") {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "baresip missing under CI"
        );
        eprintln!("SKIPPED live_page_from_chromium_plays_on_ffmpeg_and_baresip_horns: no baresip");
        return;
    }
    let mut rig = MicHornRig::start(600.0, "browser-Page-pw", true);
    let stdout = rig.run_script(
        "paging.mjs",
        &[("ADMIN_USER", "chief"), ("ADMIN_PASS", MIC_ADMIN_PW)],
    );
    let page: serde_json::Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("PAGE "))
        .and_then(|j| serde_json::from_str(j).ok())
        .expect("PAGE line");
    assert!(
        page["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{page}"
    );
    assert!(page["frames"].as_u64().unwrap_or(0) >= 150, "{page}");
    // The recording of what aired, downloaded from the page's audit entry.
    let rec: serde_json::Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RECORDING "))
        .and_then(|j| serde_json::from_str(j).ok())
        .expect("RECORDING line");
    assert_eq!(rec["id"], page["id"], "{rec}");
    assert_eq!(rec["riff"], "RIFF", "{rec}");
    assert!(rec["bytes"].as_u64().unwrap_or(0) >= 58 + 16_000, "{rec}");
    // The SIP horn heard the page: at least 2 s of it decoded by baresip.
    let (rate, samples) = rig.sip_recording();
    let on = tone_share(&samples, 600.0, rate);
    let off = tone_share(&samples, 1500.0, rate);
    eprintln!(
        "baresip recorded {} samples at {rate} Hz: share {on:.3} at 600 Hz, {off:.3} at 1500 Hz",
        samples.len()
    );
    assert!(
        on > 0.5 && off < 0.05,
        "the SIP horn did not hear the 600 Hz page: share {on:.3} at 600 Hz, {off:.3} at 1500 Hz ({} samples)",
        samples.len()
    );
    // The RTP horn heard it: at least 2 s of it recorded.
    let (rate, samples) = rig.horn_recording("the horn to record the page");
    let on = tone_share(&samples, 600.0, rate);
    let off = tone_share(&samples, 1500.0, rate);
    eprintln!(
        "ffmpeg recorded {} samples at {rate} Hz: share {on:.3} at 600 Hz, {off:.3} at 1500 Hz",
        samples.len()
    );
    assert!(
        on > 0.5 && off < 0.05,
        "the horn did not hear the 600 Hz page: share {on:.3} at 600 Hz, {off:.3} at 1500 Hz ({} samples)",
        samples.len()
    );
}
