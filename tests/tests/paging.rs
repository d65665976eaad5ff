//! Live paging end to end (issue 14): `tgw run` with simulated RTP horns
//! (`tgw sim`), paged by a headless client speaking the WebSocket protocol
//! of `docs/paging.md` (tokio-tungstenite): refusals first (no login,
//! viewer role, not a WebSocket, bad start message, opus at 44.1 kHz),
//! then a page of a 1 kHz tone that every horn hears, a second page on the
//! same horns refused with 409 naming who is live, a page that preempts a
//! routine broadcast which is interrupted and resumes after, a client
//! that goes silent, whose page ends within 2 s, and one that goes before
//! any audio, whose page fails (nothing aired). All on 127.0.0.0/8.
// Waiting for child processes needs real time.
#![allow(clippy::disallowed_methods)]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tgw_e2e::*;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Simulated RTP horns, `tgw run` with them in its inventory, an operator,
/// a viewer and an admin token (fields drop in this order: the gateway
/// stops before its data directory goes).
struct Rig {
    gw: Gateway,
    _sim: SimProc,
    _dir: tempfile::TempDir,
    http: String,
    control: String,
    horns: Vec<String>,
    operator: String,
    viewer: String,
    admin: String,
}

impl Rig {
    fn start(tag: u8, n: usize) -> Rig {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let (sim, control, horns) = sim_rtp_horns(tag, n, &d.join("horns.csv"));
        let http = format!("127.0.0.1:{}", free_tcp_port());
        // Nobody listens on the broker port: the uplink retries meanwhile.
        let cfg_path =
            GatewayConfig::test_site(d, &format!("mqtt://127.0.0.1:{}", free_tcp_port()))
                .village("east", "东村", &[])
                .http(&http)
                .section("[broadcast]", "playout_delay_ms = 100")
                .write(d.join("gateway.toml"));
        import_speakers(&cfg_path, &d.join("horns.csv"));
        let operator = api_token_as(&cfg_path, "op-wang", "operator");
        let viewer = api_token_as(&cfg_path, "viewer-li", "viewer");
        let admin = api_token_as(&cfg_path, "admin-zhao", "admin");
        let gw = GatewayStart::new(&cfg_path, &http).inherit_stderr().start();
        Rig {
            gw,
            _sim: sim,
            _dir: dir,
            http,
            control,
            horns,
            operator,
            viewer,
            admin,
        }
    }

    async fn connect(&self, token: Option<&str>) -> Result<Ws, u16> {
        let mut req = format!("ws://{}/api/v1/paging/live", self.http)
            .into_client_request()
            .expect("request");
        if let Some(t) = token {
            req.headers_mut().insert(
                "Authorization",
                format!("Bearer {t}").parse().expect("header"),
            );
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((ws, _)) => Ok(ws),
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
            Err(e) => panic!("connect: {e}"),
        }
    }

    fn get(&self, path: &str) -> Value {
        let (st, body) = http_get_as(&self.http, path, Some(&self.admin)).expect("answer");
        assert_eq!(st, 200, "GET {path}: {body}");
        serde_json::from_str(&body).expect("JSON")
    }

    fn report(&self, horn: &str) -> Value {
        let (st, body) =
            http_get(&self.control, &format!("/devices/{horn}/report")).expect("report");
        assert_eq!(st, 200, "{body}");
        serde_json::from_str(&body).expect("report JSON")
    }

    /// The audit entries of `action`, newest first.
    fn audit(&self, action: &str) -> Vec<Value> {
        let v = self.get("/api/v1/audit?limit=1000");
        let items = v
            .get("items")
            .and_then(Value::as_array)
            .or_else(|| v.as_array())
            .cloned()
            .unwrap_or_default();
        items
            .into_iter()
            .filter(|e| e["action"] == action)
            .collect()
    }
}

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("a message within 15 s")
            .expect("open")
            .expect("message");
        match m {
            Message::Text(t) => return serde_json::from_str(t.as_str()).expect("JSON"),
            Message::Close(_) => return json!({"type": "closed"}),
            _ => continue,
        }
    }
}

/// The next message of `kind` (skipping horn updates).
async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let v = next_json(ws).await;
        if v["type"] == kind || v["type"] == "closed" || v["type"] == "error" {
            return v;
        }
    }
}

fn start(targets: &[String], priority: &str) -> Message {
    Message::Text(
        json!({"targets": targets, "priority": priority, "codec": "pcm16", "rate": 16000})
            .to_string()
            .into(),
    )
}

/// One 20 ms frame of a `freq` tone at 16 kHz, frame number `k`.
fn frame(freq: f64, k: usize) -> Message {
    let bytes: Vec<u8> = (0..320)
        .flat_map(|i| {
            let n = (k * 320 + i) as f64;
            let s = (2.0 * std::f64::consts::PI * freq * n / 16_000.0).sin() * 12_000.0;
            (s as i16).to_le_bytes()
        })
        .collect();
    Message::Binary(bytes.into())
}

/// Sends `frames` frames of a tone in real time.
async fn speak(ws: &mut Ws, freq: f64, frames: usize) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for k in 0..frames {
        tick.tick().await;
        ws.send(frame(freq, k)).await.expect("send frame");
    }
}

fn targets_of(horns: &[String]) -> Vec<String> {
    horns.iter().map(|h| format!("speaker:{h}")).collect()
}

/// No login, a viewer, a plain GET, a bad start message, an unknown target
/// and opus at a rate it cannot have: each refused with its status or code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_what_is_wrong() {
    let rig = Rig::start(95, 2);
    assert_eq!(rig.connect(None).await.err(), Some(401));
    assert_eq!(rig.connect(Some(&rig.viewer)).await.err(), Some(403));
    let (st, body) =
        http_get_as(&rig.http, "/api/v1/paging/live", Some(&rig.operator)).expect("answer");
    assert_eq!(st, 426, "{body}");

    let mut ws = rig.connect(Some(&rig.operator)).await.expect("ws");
    ws.send(Message::Text("{\"targets\": \"all\"}".into()))
        .await
        .expect("send");
    let e = next_json(&mut ws).await;
    assert_eq!(e["code"], "bad-start", "{e}");

    let mut ws = rig.connect(Some(&rig.operator)).await.expect("ws");
    ws.send(Message::Binary(vec![0u8; 640].into()))
        .await
        .expect("send");
    let e = next_json(&mut ws).await;
    assert_eq!(e["code"], "bad-start", "{e}");

    let mut ws = rig.connect(Some(&rig.operator)).await.expect("ws");
    ws.send(start(&["speaker:no-such-horn".into()], "township"))
        .await
        .expect("send");
    let e = next_json(&mut ws).await;
    assert_eq!(e["type"], "error", "{e}");
    assert!(
        e["message"].as_str().unwrap_or("").contains("no-such-horn"),
        "{e}"
    );

    let mut ws = rig.connect(Some(&rig.operator)).await.expect("ws");
    ws.send(Message::Text(
        json!({"targets": ["all"], "priority": "township", "codec": "opus", "rate": 44100})
            .to_string()
            .into(),
    ))
    .await
    .expect("send");
    let e = next_json(&mut ws).await;
    assert_eq!(e["code"], "bad-rate", "{e}");
}

/// A headless client pages every simulated horn with a 1 kHz tone: the
/// server answers `live`, a second page on the same horns is refused with
/// 409 naming the page and its operator, every horn hears the tone, the
/// page ends `ended` and is audited with who, targets and duration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_reaches_every_horn_and_a_second_page_is_busy() {
    let n = 200;
    let rig = Rig::start(92, n);
    assert_eq!(rig.horns.len(), n);
    let targets = targets_of(&rig.horns);
    let mut ws = rig.connect(Some(&rig.operator)).await.expect("ws");
    ws.send(start(&targets, "township")).await.expect("start");
    let live = next_of(&mut ws, "live").await;
    assert_eq!(live["type"], "live", "{live}");
    assert_eq!(live["horns"], n, "{live}");
    let id = live["id"].as_str().expect("id").to_string();

    let mut second = rig.connect(Some(&rig.operator)).await.expect("ws");
    second
        .send(start(&targets[..1], "superior"))
        .await
        .expect("start");
    let busy = next_json(&mut second).await;
    assert_eq!(busy["code"], "busy", "{busy}");
    assert_eq!(busy["status"], 409, "{busy}");
    let msg = busy["message"].as_str().unwrap_or_default();
    assert!(msg.contains(&id) && msg.contains("op-wang"), "{busy}");

    // Figures for BENCHMARKS.md (printed, not asserted): first frame sent
    // → first RTP packet at each horn, and the gateway's CPU for the page.
    let sent_at = time::OffsetDateTime::now_utc();
    let cpu0 = cpu_secs(rig.gw.pid());
    speak(&mut ws, 1000.0, 150).await;
    let cpu1 = cpu_secs(rig.gw.pid());
    ws.send(Message::Text("{\"end\": true}".into()))
        .await
        .expect("end");
    let ended = next_of(&mut ws, "ended").await;
    assert_eq!(ended["reason"], "ended", "{ended}");

    let mut delays = Vec::new();
    for h in &rig.horns {
        let r = rig.report(h);
        assert_eq!(r["dominant_tone_hz"], 1000, "{h}: {r}");
        assert!(
            r["audio_seconds"].as_f64().unwrap_or(0.0) >= 2.5,
            "{h}: {r}"
        );
        if let Some(first) = r["first_packet_at"].as_str().and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        }) {
            delays.push((first - sent_at).as_seconds_f64() * 1e3);
        }
    }
    delays.sort_by(f64::total_cmp);
    if !delays.is_empty() {
        let pct = |p: f64| delays[((delays.len() - 1) as f64 * p).round() as usize];
        eprintln!(
            "BENCH live page to {n} horns: first frame sent -> first RTP packet at the horn p50 {:.1} ms p99 {:.1} ms; gateway CPU {:.2} s over 3 s of speech",
            pct(0.5),
            pct(0.99),
            cpu1 - cpu0
        );
    }
    let b = wait_for(Duration::from_secs(10), "the page's record final", || {
        let b = rig.get(&format!("/api/v1/broadcasts/{id}"));
        (b["broadcast"]["state"] == "done").then_some(b)
    });
    assert_eq!(b["broadcast"]["priority"], "township", "{b}");
    let end = rig.audit("paging.end");
    let e = end.first().expect("a paging.end audit entry");
    assert_eq!(e["actor"], "op-wang", "{e}");
    assert_eq!(e["target"], id.as_str(), "{e}");
    let after = &e["after"];
    assert!(after["duration_ms"].as_u64().unwrap_or(0) >= 2500, "{e}");
    assert_eq!(after["targets"].as_array().map(Vec::len), Some(n), "{e}");
    assert_eq!(rig.audit("paging.start").len(), 2, "the busy one too");

    // What aired is downloadable from the audit entry: the entry names its
    // recording, whose link serves the WAV of the tone; the download is
    // audited in turn.
    let rec = &e["recording"];
    assert_eq!(rec["id"], id.as_str(), "{e}");
    assert_eq!(rec["kind"], "live-page", "{e}");
    assert_eq!(rec["state"], "done", "{e}");
    assert!(rec["duration_ms"].as_i64().unwrap_or(0) >= 2500, "{e}");
    let href = rec["href"].as_str().expect("href");
    assert_eq!(href, format!("/api/v1/recordings/{id}"));
    let (status, wav) = get_bytes(&rig.http, href, &rig.admin);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&wav));
    let pcm = mulaw_wav_samples(&wav).expect("an 8 kHz µ-law WAV");
    assert!(pcm.len() >= 20_000, "{} samples", pcm.len());
    let (on, off) = (
        tone_share(&pcm, 1000.0, 8000),
        tone_share(&pcm, 400.0, 8000),
    );
    assert!(
        on > 0.8 && off < 0.05,
        "recording: 1 kHz share {on:.3}, 400 Hz {off:.3}"
    );
    let dl = rig.audit("recording.download");
    assert_eq!(
        dl.first().map(|d| d["target"].clone()),
        Some(json!(id)),
        "{dl:?}"
    );
    // The start entry links the same recording.
    let started = rig.audit("paging.start");
    assert!(
        started.iter().any(|s| s["recording"]["id"] == id.as_str()),
        "{started:?}"
    );
}

/// A routine broadcast plays; a live page on the same horns preempts it
/// (its horns report `interrupted`), and once the page ends it resumes
/// (`started` again, resumed) and finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_page_preempts_routine_which_resumes() {
    let rig = Rig::start(96, 3);
    // A 6 s 400 Hz routine announcement.
    let wav = tone_wav(400.0, 6.0);
    let (st, body) = http_post_raw(
        &rig.http,
        "/api/v1/audio-assets?name=t.wav",
        &rig.operator,
        "audio/wav",
        &wav,
    );
    assert_eq!(st, 201, "{body}");
    let asset: Value = serde_json::from_str(&body).expect("asset");
    let sha = asset["sha256"].as_str().expect("sha256");
    let targets = targets_of(&rig.horns);
    let (st, body) = http_post_as(
        &rig.http,
        "/api/v1/broadcasts",
        &rig.operator,
        &json!({"targets": targets, "asset": format!("sha256:{sha}"), "priority": "routine", "chime": false}).to_string(),
    )
    .expect("announce");
    assert!(st == 200 || st == 201 || st == 202, "{st} {body}");
    let routine = serde_json::from_str::<Value>(&body).expect("JSON")["id"]
        .as_str()
        .expect("id")
        .to_string();
    wait_for(Duration::from_secs(10), "routine playing", || {
        let b = rig.get(&format!("/api/v1/broadcasts/{routine}"));
        (b["broadcast"]["state"] == "playing").then_some(())
    });

    let mut ws = rig.connect(Some(&rig.operator)).await.expect("ws");
    ws.send(start(&targets, "township")).await.expect("start");
    let live = next_of(&mut ws, "live").await;
    assert_eq!(live["type"], "live", "{live}");
    speak(&mut ws, 1000.0, 75).await;
    ws.send(Message::Text("{\"end\": true}".into()))
        .await
        .expect("end");
    let ended = next_of(&mut ws, "ended").await;
    assert_eq!(ended["reason"], "ended", "{ended}");

    let b = wait_for(
        Duration::from_secs(30),
        "routine done after resuming",
        || {
            let b = rig.get(&format!("/api/v1/broadcasts/{routine}"));
            (b["broadcast"]["state"] == "done").then_some(b)
        },
    );
    let text = b.to_string();
    assert!(text.contains("interrupted"), "{b:#}");
    assert!(text.contains("\"resumed\":true"), "{b:#}");
}

/// A client that stops sending without closing: its page ends
/// `client-gone`, its horns are free again, and the audit says it lasted
/// under 2 s after the last frame; what it said aired, so it is `done`. A
/// second client that goes away before any frame: its page is `failed`,
/// on every horn and in its audit, "nothing aired".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_client_page_ends_within_two_seconds() {
    let rig = Rig::start(94, 2);
    let targets = targets_of(&rig.horns);
    let mut ws = rig.connect(Some(&rig.operator)).await.expect("ws");
    ws.send(start(&targets, "township")).await.expect("start");
    let live = next_of(&mut ws, "live").await;
    let id = live["id"].as_str().expect("id").to_string();
    speak(&mut ws, 1000.0, 10).await;
    // Silence, connection open.
    let ended = next_of(&mut ws, "ended").await;
    assert_eq!(ended["reason"], "client-gone", "{ended}");
    let ms = ended["duration_ms"].as_u64().expect("duration");
    assert!(ms < 200 + 2000, "{ended}");
    // The horns are free: a new page starts.
    let mut again = rig.connect(Some(&rig.operator)).await.expect("ws");
    again
        .send(start(&targets, "township"))
        .await
        .expect("start");
    let live2 = next_of(&mut again, "live").await;
    assert_eq!(live2["type"], "live", "{live2}");
    assert_ne!(live2["id"], id.as_str());
    drop(again);
    let e = wait_for(
        Duration::from_secs(10),
        "audit of the vanished page",
        || {
            rig.audit("paging.end")
                .into_iter()
                .find(|e| e["target"] == id.as_str())
        },
    );
    assert_eq!(e["outcome"], "client-gone", "{e}");
    assert_eq!(e["after"]["failure"], Value::Null, "it aired: {e}");
    let final_state = |id: &str| {
        wait_for(Duration::from_secs(10), "the page's record final", || {
            let b = rig.get(&format!("/api/v1/broadcasts/{id}"));
            let s = b["broadcast"]["state"].as_str()?.to_string();
            (s != "queued" && s != "playing").then_some(b)
        })
    };
    // What it said aired: done, though the client vanished.
    let b = final_state(&id);
    assert_eq!(b["broadcast"]["state"], "done", "{b}");
    // The second client went away before sending a frame: nothing aired,
    // so its page is failed on every horn, saying why, and so is its audit.
    let id2 = live2["id"].as_str().expect("id");
    let why = "the client went away before any audio (client-gone): nothing aired";
    let e = wait_for(Duration::from_secs(10), "audit of the empty page", || {
        rig.audit("paging.end")
            .into_iter()
            .find(|e| e["target"] == id2)
    });
    assert_eq!(e["after"]["failure"], why, "{e}");
    let b = final_state(id2);
    assert_eq!(b["broadcast"]["state"], "failed", "{b}");
    for h in b["horns"].as_array().expect("horns") {
        assert_eq!(h["state"], "failed", "{b}");
        assert_eq!(h["detail"]["why"], why, "{b}");
    }
}

/// utime + stime of a process, in seconds (Linux `/proc`, 100 ticks/s).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// GETs `path` with a bearer token; returns the status and the raw body
/// (a WAV is not text).
fn get_bytes(addr: &str, path: &str, token: &str) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let at = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&out[..at]).to_ascii_lowercase();
    assert!(
        !head.contains("transfer-encoding: chunked"),
        "a chunked download: {head}"
    );
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out[at + 4..].to_vec())
}

/// The samples of an 8 kHz mono G.711 µ-law WAV (format 7), or None.
fn mulaw_wav_samples(b: &[u8]) -> Option<Vec<i16>> {
    if b.get(0..4)? != b"RIFF" || b.get(8..12)? != b"WAVE" {
        return None;
    }
    let mut off = 12usize;
    let mut mulaw = false;
    while off + 8 <= b.len() {
        let id = &b[off..off + 4];
        let len = u32::from_le_bytes(b[off + 4..off + 8].try_into().ok()?) as usize;
        let body = b.get(off + 8..off + 8 + len)?;
        if id == b"fmt " && body.len() >= 16 {
            let rate = u32::from_le_bytes(body[4..8].try_into().ok()?);
            mulaw = u16::from_le_bytes([body[0], body[1]]) == 7 && rate == 8000;
        } else if id == b"data" {
            return mulaw.then(|| body.iter().map(|&u| ulaw(u)).collect());
        }
        off += 8 + len + (len & 1);
    }
    None
}

/// G.711 µ-law to linear.
fn ulaw(u: u8) -> i16 {
    let u = !u;
    let t = ((i32::from(u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}
