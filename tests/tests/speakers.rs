//! Loudspeakers end to end: `tgw speaker test` against real peers (ffmpeg as
//! an RTP horn, baresip as an auto-answering SIP horn, both recording what
//! they hear, checked with a Goertzel filter), against simulated horns of
//! every driver kind playing one broadcast with one T0, and against horns
//! that misbehave (never answer, answer a codec we did not offer, refuse,
//! hang up mid-broadcast, are offline) while the others play on.
//!
//! Needs `ffmpeg` and `baresip` (scripts/install-peers). Outside CI a
//! missing peer skips its test with a message; under CI (`CI=true`) it fails.
//! All traffic stays on 127.0.0.0/8 (the multicast zone is joined on
//! 127.0.0.1, TTL 1, IP_MULTICAST_IF 127.0.0.1).
// Waiting for child processes needs real time.
#![allow(clippy::disallowed_methods)]

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tgw_e2e::*;

/// Runs `tgw speaker test ARGS --json`; returns exit success and one JSON
/// value per horn.
fn speaker_test(args: &[&str]) -> (bool, Vec<Value>, String) {
    let mut cmd = tgw();
    cmd.args(["speaker", "test"]).args(args).arg("--json");
    let out = run_with_timeout(cmd, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!stderr.contains("panicked"), "tgw panicked: {stderr}");
    let reports = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    (out.status.success(), reports, stderr)
}

/// ffmpeg, an RTP horn, records what `tgw speaker test rtp://…` plays: a
/// 1 kHz tone in µ-law and a 400 Hz tone in A-law, each the dominant
/// frequency of the recording.
#[test]
fn ffmpeg_records_the_tone_over_rtp() {
    if !have("ffmpeg") {
        return;
    }
    for (codec, hz, other) in [("pcmu", 1000.0, 400.0), ("pcma", 400.0, 1000.0)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = rtp_port_pair();
        // ffmpeg listens longer than the tone lasts (a receiver that goes
        // away mid-tone is reported unreachable) and is stopped after it.
        let mut ff = ffmpeg_rtp_receiver(dir.path(), port, codec, 30);
        // ffmpeg opens its socket after reading the SDP.
        wait_udp_bound(port, Duration::from_secs(10));
        let uri = format!("rtp://127.0.0.1:{port}?codec={codec}");
        let (_, reps, stderr) = speaker_test(&[&uri, "--tone", &hz.to_string(), "--seconds", "2"]);
        // ffmpeg sends no RTCP receiver report: played, but unconfirmed.
        assert_eq!(reps[0]["result"], "unknown", "{reps:?} {stderr}");
        assert_eq!(reps[0]["packets"], 100);
        assert_eq!(reps[0]["codec"], codec);
        // SIGINT: ffmpeg finishes the WAV it is writing and exits 0.
        let _ = Command::new("kill")
            .args(["-INT", &ff.id().to_string()])
            .status();
        // (ffmpeg exits 255 after a signal; the WAV is finalised all the same.)
        let _ = wait_for(Duration::from_secs(15), "ffmpeg to finish", || {
            ff.try_wait().ok().flatten()
        });
        let (rate, samples) = read_wav_i16(&dir.path().join("out.wav")).expect("ffmpeg's WAV");
        assert_eq!(rate, 8000);
        assert!(
            samples.len() >= 8000,
            "only {} samples recorded",
            samples.len()
        );
        let on = tone_share(&samples, hz, rate);
        let off = tone_share(&samples, other, rate);
        eprintln!("ffmpeg {codec}: {hz} Hz share {on:.3}, {other} Hz share {off:.3}");
        assert!(
            on > 0.8 && off < 0.05,
            "{codec}: {hz} Hz share {on}, {other} Hz {off}"
        );
    }
}

/// baresip, configured as in BRIEF §5, auto-answers `tgw speaker test
/// sip:horn@…` (Answer-Mode / Call-Info / Alert-Info) and its decoded
/// recording (`dump-…-dec.wav`) carries the 1 kHz tone; our BYE ends the call.
#[test]
fn baresip_answers_and_records_the_tone() {
    if !have("baresip") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // baresip on its SIP port (restarted on another port if it does not
    // bind); on a loaded machine its user agent may still refuse the first
    // call: a call that is not answered is tried again (at most three
    // times), an answered one must record.
    let (mut bs, port, rec) = start_baresip(dir.path());
    let uri = format!("sip:horn@127.0.0.1:{port}");
    let mut attempt = 0;
    let (ok, reps, stderr) = loop {
        attempt += 1;
        let r = speaker_test(&[&uri, "--tone", "1000", "--seconds", "3"]);
        if r.0 || attempt == 3 {
            break r;
        }
        eprintln!("baresip call {attempt} not answered: {:?} {}", r.1, r.2);
    };
    assert!(ok, "{reps:?} {stderr}");
    let dump = wait_for(
        Duration::from_secs(10),
        "baresip's decoded recording",
        || {
            std::fs::read_dir(&rec)
                .ok()?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
                .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 8000))
        },
    );
    wait_stable(&dump);
    let _ = bs.kill();
    let _ = bs.wait();
    assert!(ok, "{reps:?} {stderr}");
    assert_eq!(reps[0]["answered"], "yes");
    assert_eq!(reps[0]["kind"], "sip");
    assert!(reps[0]["answer_ms"].as_f64().is_some());
    wait_stable(&dump);
    let (rate, samples) = read_wav_i16(&dump).expect("baresip's WAV");
    let on = tone_share(&samples, 1000.0, rate);
    let off = tone_share(&samples, 400.0, rate);
    eprintln!(
        "baresip: {} samples at {rate} Hz, 1 kHz share {on:.3}",
        samples.len()
    );
    assert!(
        samples.len() as u32 >= 2 * rate,
        "only {} samples",
        samples.len()
    );
    assert!(on > 0.8 && off < 0.05, "1 kHz share {on}, 400 Hz {off}");
}

fn report(control: &str, id: &str) -> Value {
    let (status, body) = http_get(control, &format!("/devices/{id}/report")).expect("report");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("report JSON")
}

fn rfc3339_ms(s: &str) -> f64 {
    // HH:MM:SS.fraction of the same day is enough for differences.
    let t = s
        .split('T')
        .nth(1)
        .unwrap_or_default()
        .trim_end_matches('Z');
    let mut p = t.split(':');
    let h: f64 = p.next().and_then(|x| x.parse().ok()).unwrap_or(0.0);
    let m: f64 = p.next().and_then(|x| x.parse().ok()).unwrap_or(0.0);
    let sec: f64 = p.next().and_then(|x| x.parse().ok()).unwrap_or(0.0);
    ((h * 60.0 + m) * 60.0 + sec) * 1e3
}

/// Eight simulated horns, two of each kind (RTP unicast, SIP with digest,
/// Axis HTTP with digest, RTP multicast zone), play one broadcast started
/// at one T0: every horn hears the 1 kHz tone without loss, and the first
/// packet arrival of each is recorded (start skew printed, not asserted:
/// figures belong to the benchmark).
#[test]
fn simulated_horns_of_every_kind_play_one_broadcast() {
    let net = test_net(58).to_string();
    let sim = SimProc::start(&[
        "--cameras",
        "0",
        "--speakers",
        "8",
        "--no-multicast",
        "--bind",
        &net,
        "--control",
        "127.0.0.1:0",
    ]);
    let control = sim.manifest["control"]
        .as_str()
        .expect("control")
        .to_string();
    let horns = sim.devices("speaker");
    assert_eq!(horns.len(), 8);
    // The two zone members share one URI (the group): it is sent to once.
    let mut uris: Vec<String> = Vec::new();
    for d in &horns {
        let u = d["uri"].as_str().expect("uri").to_string();
        if !uris.contains(&u) {
            uris.push(u);
        }
    }
    assert_eq!(uris.len(), 7);
    let kinds: Vec<&str> = horns
        .iter()
        .map(|d| d["speaker_kind"].as_str().unwrap_or(""))
        .collect();
    for k in ["rtp", "sip", "axis", "rtp-multicast"] {
        assert_eq!(kinds.iter().filter(|x| **x == k).count(), 2, "{kinds:?}");
    }
    let mut args: Vec<&str> = uris.iter().map(String::as_str).collect();
    args.extend([
        "--tone",
        "1000",
        "--seconds",
        "2",
        "--playout-delay-ms",
        "300",
    ]);
    let (ok, reps, stderr) = speaker_test(&args);
    assert!(ok, "{reps:#?} {stderr}");
    assert_eq!(reps.len(), 7);
    for rep in &reps {
        assert_eq!(rep["packets"], 100, "{rep}");
    }
    let t0 = rfc3339_ms(reps[0]["t0"].as_str().expect("t0"));
    let mut offsets = Vec::new();
    for d in &horns {
        let id = d["id"].as_str().expect("id");
        let r = report(&control, id);
        let kind = r["kind"].as_str().unwrap_or_default();
        assert_eq!(r["dominant_tone_hz"], 1000, "{id} ({kind}): {r}");
        assert_eq!(r["lost"], 0, "{id}: {r}");
        assert!(
            r["audio_seconds"].as_f64().unwrap_or(0.0) >= 1.99,
            "{id}: {r}"
        );
        let first = rfc3339_ms(r["first_packet_at"].as_str().expect("first packet"));
        offsets.push((id.to_string(), kind.to_string(), first - t0));
        if kind == "sip" {
            assert_eq!(r["calls_answered"], 1, "{r}");
            assert_eq!(r["byes_received"], 1, "{r}");
        }
        if kind == "axis" {
            assert_eq!(r["http_streams"], 1, "{r}");
        }
    }
    eprintln!("first packet after T0 (ms): {offsets:?}");
}

/// Bad URIs (unknown scheme, missing port, bad codec) give one clear line
/// naming the URI and what is wrong, a failing exit code, no panic.
#[test]
fn bad_uris_are_refused_clearly() {
    for (uri, want) in [
        ("http://127.0.0.1:80", "unsupported scheme"),
        ("rtp://127.0.0.1", "missing port"),
        ("sip:horn@127.0.0.1", "missing port"),
        ("rtp://127.0.0.1:5004?codec=g729", "bad parameter"),
        ("axis://root:pw@horn.local:80", "not an IP address"),
    ] {
        let (ok, reps, stderr) = speaker_test(&[uri, "--tone", "1000", "--seconds", "1"]);
        assert!(!ok && reps.is_empty(), "{uri}");
        assert!(
            stderr.contains(want) && stderr.contains(uri),
            "{uri}: {stderr}"
        );
    }
}

/// One broadcast to nine horns, six of which misbehave: a SIP horn that
/// never answers (timeout), one answering G.729 (not offered), one hanging
/// up mid-broadcast, one refusing (486), one answering 700 ms late (after
/// T0: it joins the broadcast where it is, frames before are skipped), one
/// offline. Each failure is reported with its kind; the RTP, SIP and Axis
/// horns that work play the whole tone, undisturbed.
#[test]
fn failing_horns_do_not_affect_the_others() {
    let net = test_net(52).to_string();
    let sim = SimProc::start(&[
        "--cameras",
        "0",
        "--speakers",
        "8",
        "--no-multicast",
        "--bind",
        &net,
        "--control",
        "127.0.0.1:0",
        "--speaker-kinds",
        "rtp,sip,axis,sip,sip,sip,sip,sip",
        "--fault",
        "spk-0004=hang",
        "--fault",
        "spk-0005=wrong-codec",
        "--fault",
        "spk-0006=hang-up:400ms",
        "--fault",
        "spk-0007=refuse:486",
        "--fault",
        "spk-0008=late-answer:700ms",
    ]);
    let control = sim.manifest["control"]
        .as_str()
        .expect("control")
        .to_string();
    let mut uris: Vec<String> = sim
        .devices("speaker")
        .iter()
        .map(|d| d["uri"].as_str().expect("uri").to_string())
        .collect();
    // A ninth, offline horn: nothing listens on this port.
    uris.push(format!("sip:horn@127.0.0.1:{}", free_udp_port()));
    let mut args: Vec<&str> = uris.iter().map(String::as_str).collect();
    args.extend(["--tone", "400", "--seconds", "2", "--answer-timeout", "1.5"]);
    let (ok, reps, stderr) = speaker_test(&args);
    assert!(!ok, "some horns failed: the exit code says so");
    assert_eq!(reps.len(), 9, "{stderr}");
    let kinds: Vec<Option<&str>> = reps.iter().map(|r| r["error_kind"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            None,
            None,
            None,
            Some("timeout"),
            Some("codec"),
            Some("hung-up"),
            Some("refused"),
            None,
            Some("timeout")
        ],
        "{reps:#?}"
    );
    assert!(
        reps[4]["errors"][0].as_str().unwrap_or("").contains("[18]"),
        "{}",
        reps[4]
    );
    assert!(
        reps[6]["errors"][0]
            .as_str()
            .unwrap_or("")
            .contains("486 Busy Here")
    );
    assert!(
        reps[8]["errors"][0]
            .as_str()
            .unwrap_or("")
            .contains("port unreachable")
    );
    let late = &reps[7];
    let skipped = late["skipped_frames"].as_u64().unwrap_or(0);
    assert!(late["completed"] == true && skipped > 0, "{late}");
    assert_eq!(
        late["packets"].as_u64().unwrap_or(0) + skipped,
        100,
        "{late}"
    );
    let hung = reps[5]["packets"].as_u64().unwrap_or(0);
    assert!(hung > 0 && hung < 100, "hang-up after some packets: {hung}");
    for (i, id) in ["spk-0001", "spk-0002", "spk-0003"].iter().enumerate() {
        assert_eq!(reps[i]["packets"], 100, "{}", reps[i]);
        let r = report(&control, id);
        assert_eq!(r["dominant_tone_hz"], 400, "{id}: {r}");
        assert_eq!(r["lost"], 0, "{id}: {r}");
    }
    let r = report(&control, "spk-0006");
    assert_eq!(r["byes_sent"], 1, "{r}");
}

/// 4G / cloud horns over MQTT: `tgw sim` runs two simulated cloud horns on
/// its embedded broker (a free loopback port). `tgw speaker test cloud://…`
/// serves the tone as a WAV under a token, publishes `play` at T0 and
/// waits for the horn's reports: the healthy horn reports `done` and heard
/// 1 kHz; the one whose download fails (`refuse:500`) reports `error`, seen
/// as `cloud_error`; a horn id nobody serves times out.
#[test]
fn cloud_horn_over_mqtt_plays_the_tone() {
    let net = test_net(53).to_string();
    let sim = SimProc::start(&[
        "--cameras",
        "0",
        "--speakers",
        "2",
        "--no-multicast",
        "--bind",
        &net,
        "--control",
        "127.0.0.1:0",
        "--speaker-kinds",
        "cloud",
        "--fault",
        "spk-0002=refuse:500",
    ]);
    let control = sim.manifest["control"]
        .as_str()
        .expect("control")
        .to_string();
    let uris: Vec<String> = sim
        .devices("speaker")
        .iter()
        .map(|d| d["uri"].as_str().expect("uri").to_string())
        .collect();
    assert_eq!(uris.len(), 2);
    assert!(
        uris[0].starts_with("cloud://spk-0001@127.0.0.1:"),
        "{uris:?}"
    );

    let (ok, reps, stderr) = speaker_test(&[&uris[0], "--tone", "1000", "--seconds", "1"]);
    assert!(ok, "{reps:#?} {stderr}");
    let rep = &reps[0];
    assert_eq!(rep["kind"], "cloud", "{rep}");
    assert_eq!(rep["answered"], "yes", "{rep}");
    assert_eq!(rep["completed"], true, "{rep}");
    assert!(
        rep["start_offset_ms"].is_number(),
        "horn's start known: {rep}"
    );
    let r = report(&control, "spk-0001");
    assert_eq!(r["dominant_tone_hz"], 1000, "{r}");
    assert!(r["audio_seconds"].as_f64().unwrap_or(0.0) >= 0.99, "{r}");
    let events: Vec<&str> = r["events"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        events.ends_with(&["play", "downloading", "playing", "done"]),
        "{events:?}"
    );

    // Download error, and a horn id no horn listens for.
    let broker = uris[0].rsplit_once('@').map(|x| x.1).unwrap_or_default();
    let ghost = format!("cloud://ghost@{broker}");
    let (ok, reps, stderr) = speaker_test(&[
        &uris[1],
        &ghost,
        "--tone",
        "1000",
        "--seconds",
        "1",
        "--answer-timeout",
        "1",
    ]);
    assert!(!ok, "{reps:#?}");
    assert_eq!(reps.len(), 2, "{stderr}");
    assert_eq!(reps[0]["error_kind"], "cloud_error", "{}", reps[0]);
    assert!(
        reps[0]["errors"][0]
            .as_str()
            .unwrap_or("")
            .contains("HTTP 500"),
        "{}",
        reps[0]
    );
    assert_eq!(reps[1]["error_kind"], "timeout", "{}", reps[1]);
}

/// A cancelled cloud-horn broadcast is stopped on the horn: `tgw speaker
/// test` plays a 6 s tone on a simulated cloud horn and gets SIGTERM once
/// the horn reports `playing`; the driver publishes `stop` for that play and
/// the horn stops (events `stop`, `stopped`; far less than 6 s heard), and
/// the report says the play did not complete, without errors.
#[test]
fn cancelled_cloud_broadcast_stops_the_horn() {
    let net = test_net(57).to_string();
    let sim = SimProc::start(&[
        "--cameras",
        "0",
        "--speakers",
        "1",
        "--no-multicast",
        "--bind",
        &net,
        "--control",
        "127.0.0.1:0",
        "--speaker-kinds",
        "cloud",
    ]);
    let control = sim.manifest["control"]
        .as_str()
        .expect("control")
        .to_string();
    let uri = sim.devices("speaker")[0]["uri"]
        .as_str()
        .expect("uri")
        .to_string();
    let child = tgw()
        .args([
            "speaker",
            "test",
            &uri,
            "--tone",
            "1000",
            "--seconds",
            "6",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn_killed("tgw speaker test");
    let events = |r: &Value| -> Vec<String> {
        r["events"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    wait_for(Duration::from_secs(20), "the horn playing", || {
        let r = report(&control, "spk-0001");
        (events(&r).iter().any(|e| e == "playing") && r["audio_seconds"].as_f64() > Some(0.3))
            .then_some(())
    });
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let rep: Value = serde_json::from_str(stdout.lines().next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout} {stderr}"));
    assert_eq!(rep["completed"], false, "{rep}");
    assert_eq!(rep["errors"].as_array().map(Vec::len), Some(0), "{rep}");
    let r = wait_for(Duration::from_secs(5), "the horn's `stopped`", || {
        let r = report(&control, "spk-0001");
        events(&r).iter().any(|e| e == "stopped").then_some(r)
    });
    let ev = events(&r);
    assert!(
        ev.ends_with(&["stop".to_string(), "stopped".to_string()]),
        "{ev:?}"
    );
    assert!(!ev.iter().any(|e| e == "done"), "{ev:?}");
    let heard = r["audio_seconds"].as_f64().unwrap_or(99.0);
    assert!(heard < 5.0, "the horn kept playing: {heard} s heard");
    // Nothing more arrives after the stop.
    std::thread::sleep(Duration::from_millis(600));
    let later = report(&control, "spk-0001");
    assert_eq!(later["audio_seconds"].as_f64(), Some(heard), "{later}");
}

/// Issue 14.5: nothing listening on an RTP horn's address (loopback: the
/// kernel answers ICMP port unreachable) is `failed: unreachable`, exit 1;
/// a horn that swallows the packets silently is `answered: unknown`, exit 0
/// with a warning, and never `ok`.
#[test]
fn refused_rtp_horn_fails_and_silent_one_is_unknown() {
    let out = run_with_timeout(
        {
            let mut c = tgw();
            c.args([
                "speaker",
                "test",
                "rtp://127.0.1.250:5004",
                "--tone",
                "1000",
            ])
            .args(["--seconds", "2"]);
            c
        },
        Duration::from_secs(60),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("result:    failed: unreachable"), "{text}");
    assert!(text.contains("answered:  no"), "{text}");
    assert!(text.contains("unreachable"), "{text}");

    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let uri = format!("rtp://{}", silent.local_addr().expect("addr"));
    let (ok, reps, stderr) = speaker_test(&[&uri, "--tone", "1000", "--seconds", "1"]);
    assert!(ok, "played to the end: exit 0: {reps:?} {stderr}");
    assert_eq!(reps[0]["answered"], "unknown", "{reps:?}");
    assert_eq!(reps[0]["result"], "unknown", "{reps:?}");
    assert!(stderr.contains("warning:"), "{stderr}");
    assert!(stderr.contains("never answered"), "{stderr}");
    drop(silent);
}
