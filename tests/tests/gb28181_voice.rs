//! GB/T 28181 voice broadcast end to end (issue 17 item 5): `tgw run` with
//! simulated RTP horns (`tgw sim`) imported as speakers, registered to a
//! platform played by this test (a UDP SIP peer that answers requests 200
//! and keeps what it hears). The platform finds the horns in the Catalog
//! as type-137 channels and sends MANSCDP `Broadcast`: refusals first (an
//! unknown channel → Result ERROR; a second broadcast to a horn already
//! held → ERROR "busy"; an INVITE the platform never answers → CANCEL and
//! the end audited `no-answer`; an answered call without RTP → our BYE,
//! `rtp-timeout`; both pages aired nothing and end `failed` with why, on
//! the horn and the broadcast), then a call whose G.711 A-law 1 kHz tone,
//! sent by ffmpeg (`-f rtp`), the horn plays, ended by the platform's BYE,
//! audited, recorded and `done`. All on 127.0.0.0/8.
// Waiting on child processes and sockets needs real time.
#![allow(clippy::disallowed_methods)]

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tgw_e2e::*;

const OUR_ID: &str = GB_GATEWAY_ID;
const PLATFORM_ID: &str = GB_PLATFORM_ID;
const DOMAIN: &str = GB_DOMAIN;

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.split("\r\n\r\n").next()?.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

fn body(msg: &str) -> &str {
    msg.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// The text of `<name>` in a MANSCDP body.
fn xml_field<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{name}>"))?;
    Some(&xml[start..start + len])
}

/// A 200 OK to `req` with our tag, and an optional SDP.
fn ok(req: &str, sdp: Option<&str>, port: u16) -> String {
    let mut to = header(req, "To").unwrap_or_default().to_string();
    if !to.contains(";tag=") {
        to.push_str(";tag=platform1");
    }
    let mut extra = String::new();
    if req.starts_with("REGISTER ") {
        extra.push_str("Date: 2026-12-06T18:00:00.000\r\nExpires: 3600\r\n");
    }
    if sdp.is_some() {
        extra.push_str(&format!(
            "Contact: <sip:{PLATFORM_ID}@127.0.0.1:{port}>\r\nContent-Type: application/sdp\r\n"
        ));
    }
    let b = sdp.unwrap_or("");
    format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: {}\r\n\r\n{b}",
        header(req, "Via").unwrap_or_default(),
        header(req, "From").unwrap_or_default(),
        header(req, "Call-ID").unwrap_or_default(),
        header(req, "CSeq").unwrap_or_default(),
        b.len()
    )
}

/// The upper platform: answers every request but INVITE 200 (the test
/// answers INVITEs) and keeps every datagram.
struct Platform {
    sock: UdpSocket,
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Platform {
    fn start() -> Platform {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind platform");
        let port = sock.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (rx, log) = (sock.try_clone().expect("clone"), seen.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while let Ok((n, from)) = rx.recv_from(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let request = !msg.starts_with("SIP/2.0") && msg.contains(" SIP/2.0\r\n");
                if request && !msg.starts_with("INVITE ") {
                    let _ = rx.send_to(ok(&msg, None, port).as_bytes(), from);
                }
                log.lock().unwrap_or_else(|p| p.into_inner()).push(msg);
            }
        });
        Platform { sock, port, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn send(&self, to: SocketAddr, msg: &str) {
        self.sock.send_to(msg.as_bytes(), to).expect("send SIP");
    }

    /// The first message after `skip` that `f` accepts, within 20 s.
    fn wait(&self, what: &str, skip: usize, f: impl Fn(&str) -> bool) -> String {
        wait_for(Duration::from_secs(20), what, || {
            self.seen().into_iter().skip(skip).find(|m| f(m))
        })
    }

    /// Sends a Broadcast notify for `target` with `sn`; returns the Result
    /// and Reason of our MANSCDP answer.
    fn broadcast(&self, gw: SocketAddr, target: &str, sn: u32) -> (String, String) {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Notify>\r\n<CmdType>Broadcast</CmdType>\r\n\
             <SN>{sn}</SN>\r\n<SourceID>{PLATFORM_ID}</SourceID>\r\n<TargetID>{target}</TargetID>\r\n</Notify>\r\n"
        );
        self.request(gw, "MESSAGE", OUR_ID, &format!("bc{sn}"), &xml);
        let r = self.wait("the Broadcast answer", 0, |m| {
            m.starts_with("MESSAGE ")
                && body(m).contains("<CmdType>Broadcast</CmdType>")
                && body(m).contains(&format!("<SN>{sn}</SN>"))
        });
        let b = body(&r);
        (
            xml_field(b, "Result").unwrap_or_default().to_string(),
            xml_field(b, "Reason").unwrap_or_default().to_string(),
        )
    }

    fn request(&self, to: SocketAddr, method: &str, user: &str, call_id: &str, xml: &str) {
        let msg = format!(
            "{method} sip:{user}@{DOMAIN} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};rport;branch=z9hG4bK{call_id}{method}\r\n\
             From: <sip:{PLATFORM_ID}@{DOMAIN}>;tag=pf{call_id}\r\n\
             To: <sip:{user}@{DOMAIN}>\r\nCall-ID: {call_id}\r\nCSeq: 1 {method}\r\n\
             Max-Forwards: 70\r\nContent-Type: Application/MANSCDP+xml\r\n\
             Content-Length: {len}\r\n\r\n{xml}",
            port = self.port,
            len = xml.len()
        );
        self.send(to, &msg);
    }

    /// The INVITE for `channel` heard after `skip` messages.
    fn invite(&self, channel: &str, skip: usize) -> String {
        self.wait("our INVITE", skip, |m| {
            m.starts_with("INVITE ") && header(m, "From").is_some_and(|f| f.contains(channel))
        })
    }

    /// Answers `invite` 200 with an SDP whose RTP comes from 127.0.0.1:`rtp`.
    fn answer(&self, gw: SocketAddr, invite: &str, rtp: u16) {
        let sdp = format!(
            "v=0\r\no={PLATFORM_ID} 0 0 IN IP4 127.0.0.1\r\ns=Play\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {rtp} RTP/AVP 8\r\na=sendonly\r\na=rtpmap:8 PCMA/8000\r\ny=0100000001\r\nf=v/////a/1/8/1\r\n"
        );
        self.send(gw, &ok(invite, Some(&sdp), self.port));
    }

    /// A BYE in the dialog of `invite` (answered with tag `platform1`).
    fn bye(&self, gw: SocketAddr, invite: &str) {
        let from = header(invite, "From").unwrap_or_default();
        let to = header(invite, "To").unwrap_or_default();
        let call_id = header(invite, "Call-ID").unwrap_or_default();
        let msg = format!(
            "BYE sip:{OUR_ID}@{gw} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};rport;branch=z9hG4bKbye{call_id}\r\n\
             From: {to};tag=platform1\r\nTo: {from}\r\nCall-ID: {call_id}\r\nCSeq: 2 BYE\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            port = self.port
        );
        self.send(gw, &msg);
    }
}

/// The RTP port of our INVITE's offer.
fn offer_port(invite: &str) -> u16 {
    body(invite)
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no m=audio port: {invite}"))
}

/// The gateway, its horns and the platform (fields drop in this order: the
/// gateway stops before its data directory goes).
struct Rig {
    _gw: Gateway,
    _sim: SimProc,
    _dir: tempfile::TempDir,
    http: String,
    control: String,
    admin: String,
    platform: Platform,
    sip: SocketAddr,
    /// Horn id → its voice channel id.
    channels: Vec<(String, String)>,
}

impl Rig {
    fn start(tag: u8, n: usize) -> Rig {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let (sim, control, horns) = sim_rtp_horns(tag, n, &d.join("horns.csv"));
        let platform = Platform::start();
        let http = format!("127.0.0.1:{}", free_tcp_port());
        let rtp_min = 20_000 + u16::from(tag) * 40;
        // Nobody listens on the broker port: the uplink retries meanwhile.
        let cfg_path =
            GatewayConfig::test_site(d, &format!("mqtt://127.0.0.1:{}", free_tcp_port()))
                .village("east", "东村", &[])
                .http(&http)
                .section("[broadcast]", "playout_delay_ms = 100")
                .gb28181(&format!(
                    "media_setup_timeout_secs = 3\nrtp_port_min = {rtp_min}\nrtp_port_max = {}",
                    rtp_min + 39
                ))
                .gb_platform(
                    &format!("127.0.0.1:{}", platform.port),
                    "pw-platform",
                    "keepalive_secs = 30\ncharset = \"utf-8\"",
                )
                .write(d.join("gateway.toml"));
        import_speakers(&cfg_path, &d.join("horns.csv"));
        let admin = api_token_as(&cfg_path, "admin-zhao", "admin");
        let gw = GatewayStart::new(&cfg_path, &http).inherit_stderr().start();
        let sip: SocketAddr = wait_for(Duration::from_secs(20), "registered", || {
            let (st, b) = http_get_as(&http, "/api/v1/gb28181", Some(&admin))?;
            let v: Value = serde_json::from_str(&b).ok()?;
            (st == 200 && v["platforms"][0]["state"] == "registered").then_some(())?;
            v["listen"].as_str()?.parse().ok()
        });
        // The catalog lists each horn as a type-137 channel under its village.
        let query = format!(
            "<?xml version=\"1.0\"?>\r\n<Query>\r\n<CmdType>Catalog</CmdType>\r\n<SN>3</SN>\r\n\
             <DeviceID>{OUR_ID}</DeviceID>\r\n</Query>\r\n"
        );
        platform.request(sip, "MESSAGE", OUR_ID, "cat1", &query);
        let cat = platform.wait("the catalog", 0, |m| {
            m.starts_with("MESSAGE ") && body(m).contains("<CmdType>Catalog</CmdType>")
        });
        let mut channels = Vec::new();
        for item in body(&cat).split("<Item>").skip(1) {
            let id = xml_field(item, "DeviceID").unwrap_or_default();
            let name = xml_field(item, "Name").unwrap_or_default();
            if id.get(10..13) == Some("137") {
                assert!(horns.iter().any(|h| h == name), "{item}");
                assert!(xml_field(item, "ParentID").is_some(), "{item}");
                channels.push((name.to_string(), id.to_string()));
            }
        }
        assert_eq!(channels.len(), n, "{}", body(&cat));
        Rig {
            _gw: gw,
            _sim: sim,
            _dir: dir,
            http,
            control,
            admin,
            platform,
            sip,
            channels,
        }
    }

    /// The audit entries of `action`, newest first.
    fn audit(&self, action: &str) -> Vec<Value> {
        let (st, b) =
            http_get_as(&self.http, "/api/v1/audit?limit=1000", Some(&self.admin)).expect("audit");
        assert_eq!(st, 200, "{b}");
        let v: Value = serde_json::from_str(&b).expect("JSON");
        v.get("items")
            .and_then(Value::as_array)
            .or_else(|| v.as_array())
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["action"] == action)
            .collect()
    }

    /// `GET /api/v1/broadcasts/{page}` once the page has a final state.
    fn page_final(&self, page: &str) -> Value {
        wait_for(Duration::from_secs(10), "the page's record final", || {
            let (st, b) = http_get_as(
                &self.http,
                &format!("/api/v1/broadcasts/{page}"),
                Some(&self.admin),
            )?;
            let v: Value = serde_json::from_str(&b).ok()?;
            let state = v["broadcast"]["state"].as_str()?;
            (st == 200 && !["queued", "playing"].contains(&state)).then_some(v)
        })
    }

    /// A page that aired nothing: the end's audit says why, and the page's
    /// record is `failed` with the same words on its horn (never `done`).
    fn assert_failed(&self, end: &Value, reason: &str) {
        let page = end["after"]["page"].as_str().expect("page");
        let why = end["after"]["failure"].as_str().unwrap_or_default();
        assert!(
            why.contains(&format!("({reason})")) && why.ends_with("nothing aired"),
            "{end}"
        );
        let b = self.page_final(page);
        assert_eq!(b["broadcast"]["state"], "failed", "{b}");
        let horns = b["horns"].as_array().expect("horns");
        assert_eq!(horns.len(), 1, "{b}");
        assert_eq!(horns[0]["state"], "failed", "{b}");
        assert_eq!(horns[0]["detail"]["why"], why, "{b}");
    }

    /// The `gb28181.broadcast.end` entry whose outcome is `reason`.
    fn ended(&self, reason: &str) -> Value {
        wait_for(
            Duration::from_secs(20),
            &format!("broadcast end {reason}"),
            || {
                self.audit("gb28181.broadcast.end")
                    .into_iter()
                    .find(|e| e["outcome"] == reason)
            },
        )
    }
}

/// Unknown channel → ERROR; a held horn → ERROR busy; an INVITE nobody
/// answers → CANCEL and `no-answer`; an answered call without RTP → our
/// BYE and `rtp-timeout`. Neither page aired: each ends `failed` (page and
/// horn) with the reason, never `done`. The platform is the actor of every
/// entry.
#[test]
fn broadcast_refusals_and_timeouts() {
    let rig = Rig::start(97, 1);
    let (p, gw) = (&rig.platform, rig.sip);
    let (_, ch) = rig.channels[0].clone();

    let (res, why) = p.broadcast(gw, "34020000001370009999", 1);
    assert_eq!(res, "ERROR");
    assert!(
        why.contains("unknown voice channel 34020000001370009999"),
        "{why}"
    );

    let skip = p.seen().len();
    let (res, why) = p.broadcast(gw, &ch, 2);
    assert_eq!((res.as_str(), why.as_str()), ("OK", ""));
    let inv = p.invite(&ch, skip);
    let sdp = body(&inv);
    assert!(
        sdp.contains("m=audio ") && sdp.contains("a=recvonly"),
        "{inv}"
    );
    assert!(
        sdp.contains("a=rtpmap:8 PCMA/8000") && sdp.contains("\r\ny="),
        "{inv}"
    );
    assert_eq!(
        header(&inv, "Subject"),
        Some(format!("{PLATFORM_ID}:0,{ch}:0").as_str()),
        "{inv}"
    );
    // Held by the first broadcast: busy, naming the page and the platform.
    let (res, why) = p.broadcast(gw, &ch, 3);
    assert_eq!(res, "ERROR");
    assert!(why.contains("busy") && why.contains("county"), "{why}");
    // Never answered: CANCEL after media_setup_timeout_secs, ended.
    let call_id = header(&inv, "Call-ID").unwrap_or_default().to_string();
    p.wait("our CANCEL", skip, |m| {
        m.starts_with("CANCEL ") && header(m, "Call-ID") == Some(&call_id)
    });
    let e = rig.ended("no-answer");
    assert_eq!(e["actor"], "county", "{e}");
    assert_eq!(e["target"], ch.as_str(), "{e}");
    // Nothing aired: the page the unanswered call created is failed, not done.
    rig.assert_failed(&e, "no-answer");
    assert_eq!(
        e["after"]["failure"], "the platform did not answer the INVITE (no-answer): nothing aired",
        "{e}"
    );

    // Answered, then no RTP: we hang up. The horn is released just after
    // the end is audited, so a request in between is refused as busy: ask
    // again until it is free (never anything but busy in between).
    let skip = p.seen().len();
    let mut sn = 4;
    let (res, why) = wait_for(Duration::from_secs(10), "the horn free again", || {
        let r = p.broadcast(gw, &ch, sn);
        sn += 1;
        (r.0 != "ERROR" || !r.1.contains("busy")).then_some(r)
    });
    assert_eq!(res, "OK", "{why}");
    let inv = p.invite(&ch, skip);
    p.answer(gw, &inv, free_udp_port());
    let call_id = header(&inv, "Call-ID").unwrap_or_default().to_string();
    p.wait("our ACK", skip, |m| {
        m.starts_with("ACK ") && header(m, "Call-ID") == Some(&call_id)
    });
    p.wait("our BYE", skip, |m| {
        m.starts_with("BYE ") && header(m, "Call-ID") == Some(&call_id)
    });
    let e = rig.ended("rtp-timeout");
    assert_eq!(e["after"]["packets"], 0, "{e}");
    rig.assert_failed(&e, "rtp-timeout");
    let starts = rig.audit("gb28181.broadcast");
    let outcomes: Vec<&str> = starts
        .iter()
        .filter_map(|e| e["outcome"].as_str())
        .collect();
    assert!(
        outcomes.contains(&"busy") && outcomes.contains(&"ok"),
        "{starts:?}"
    );
}

/// The platform's 1 kHz tone, G.711 A-law over RTP from ffmpeg, reaches the
/// horn; the platform's BYE ends the page, audited and recorded.
#[test]
fn broadcast_tone_reaches_the_horn() {
    if !have("ffmpeg") {
        return;
    }
    let rig = Rig::start(98, 1);
    let (p, gw) = (&rig.platform, rig.sip);
    let (horn, ch) = rig.channels[0].clone();
    let skip = p.seen().len();
    let (res, why) = p.broadcast(gw, &ch, 11);
    assert_eq!(res, "OK", "{why}");
    let inv = p.invite(&ch, skip);
    let port = offer_port(&inv);
    let rtp_src = free_udp_port();
    p.answer(gw, &inv, rtp_src);
    let call_id = header(&inv, "Call-ID").unwrap_or_default().to_string();
    p.wait("our ACK", skip, |m| {
        m.starts_with("ACK ") && header(m, "Call-ID") == Some(&call_id)
    });
    let mut ff = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi"])
        .args(["-i", "sine=frequency=1000:sample_rate=8000:duration=3"])
        .args([
            "-ac",
            "1",
            "-c:a",
            "pcm_alaw",
            "-packetsize",
            "172",
            "-f",
            "rtp",
        ])
        .arg(format!("rtp://127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn_killed("ffmpeg");
    let st = wait_for(Duration::from_secs(20), "ffmpeg done", || {
        ff.try_wait().ok().flatten()
    });
    assert!(st.success(), "ffmpeg: {st}");
    p.bye(gw, &inv);
    let e = rig.ended("platform-bye");
    assert_eq!(e["actor"], "county", "{e}");
    assert!(e["after"]["packets"].as_u64().unwrap_or(0) >= 100, "{e}");
    assert_eq!(e["after"]["failure"], Value::Null, "audio aired: {e}");
    let page = e["after"]["page"].as_str().expect("page").to_string();
    let (st, b) = http_get(&rig.control, &format!("/devices/{horn}/report")).expect("report");
    assert_eq!(st, 200, "{b}");
    let r: Value = serde_json::from_str(&b).expect("report JSON");
    assert_eq!(r["dominant_tone_hz"], 1000, "{r}");
    assert!(r["audio_seconds"].as_f64().unwrap_or(0.0) >= 2.0, "{r}");
    let b = wait_for(Duration::from_secs(10), "the page's record final", || {
        let (st, b) = http_get_as(
            &rig.http,
            &format!("/api/v1/broadcasts/{page}"),
            Some(&rig.admin),
        )?;
        let v: Value = serde_json::from_str(&b).ok()?;
        (st == 200 && v["broadcast"]["state"] == "done").then_some(v)
    });
    assert_eq!(b["broadcast"]["priority"], "superior", "{b}");
    let (st, _) = http_get_as(
        &rig.http,
        &format!("/api/v1/recordings/{page}"),
        Some(&rig.admin),
    )
    .expect("recording");
    assert_eq!(st, 200, "recording of {page}");
}
