//! GB/T 28181 end to end through SIP: `tgw run` registers to a platform
//! played by this test (a small UDP SIP peer: it answers every request 200
//! and records what it hears), with one `tgw sim` camera adopted by
//! discovery and polled by health every second. The platform subscribes to
//! the catalog and to alarms, then INVITEs: an unknown channel → 404; the
//! camera's channel (from the catalog NOTIFY) with an offer whose `m=video`
//! port is a UDP socket here → 200 with an SDP answer, ACK, RTP with the
//! offer's `y=` SSRC whose payloads `ffprobe -f mpeg` reads as H.264 at the
//! main stream's 1280x720; a second INVITE over `max_relays = 1` → 486;
//! BYE → 200 and the RTP stops. SIPp (`tests/sipp/gb_invite.xml`) then
//! plays the camera from another port (answers go where the INVITE came
//! from). Last the camera goes offline (sim fault) and the platform hears a
//! catalog NOTIFY with Status OFF and an Alarm NOTIFY.
// Waiting on child processes and sockets needs real time.
#![allow(clippy::disallowed_methods)]

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tgw_e2e::*;

const OUR_ID: &str = GB_GATEWAY_ID;
const PLATFORM_ID: &str = GB_PLATFORM_ID;
const DOMAIN: &str = GB_DOMAIN;

/// The upper platform: one UDP socket; a thread answers requests 200 and
/// keeps every datagram.
struct Platform {
    sock: UdpSocket,
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.split("\r\n\r\n").next()?.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

fn body(msg: &str) -> &str {
    msg.split_once("\r\n\r\n").map_or("", |(_, b)| b)
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
                if !msg.starts_with("SIP/2.0") && msg.contains(" SIP/2.0\r\n") {
                    let _ = rx.send_to(ok(&msg).as_bytes(), from);
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

    /// The final response (≥ 200) to `call_id`.
    fn final_response(&self, call_id: &str, method: &str) -> String {
        wait_for(
            Duration::from_secs(30),
            &format!("final answer to {method}"),
            || {
                self.seen().into_iter().find(|m| {
                    m.starts_with("SIP/2.0 ")
                        && !m.starts_with("SIP/2.0 1")
                        && header(m, "Call-ID") == Some(call_id)
                        && header(m, "CSeq").is_some_and(|c| c.ends_with(method))
                })
            },
        )
    }

    /// A request from the platform to the gateway.
    #[allow(clippy::too_many_arguments)]
    fn request(
        &self,
        to: SocketAddr,
        method: &str,
        user: &str,
        call_id: &str,
        cseq: u32,
        to_tag: Option<&str>,
        extra: &str,
        body: Option<(&str, &str)>,
    ) {
        let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        let (ctype, text) = body.map_or((String::new(), ""), |(t, b)| {
            (format!("Content-Type: {t}\r\n"), b)
        });
        let msg = format!(
            "{method} sip:{user}@{DOMAIN} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};rport;branch=z9hG4bK{call_id}{cseq}{method}\r\n\
             From: <sip:{PLATFORM_ID}@{DOMAIN}>;tag=pf{call_id}\r\n\
             To: <sip:{user}@{DOMAIN}>{to_tag}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\n\
             Contact: <sip:{PLATFORM_ID}@127.0.0.1:{port}>\r\n\
             Max-Forwards: 70\r\n{extra}{ctype}Content-Length: {len}\r\n\r\n{text}",
            port = self.port,
            len = text.len()
        );
        self.send(to, &msg);
    }
}

/// 200 OK to a request (with a Date and Expires for REGISTER).
fn ok(req: &str) -> String {
    let mut to = header(req, "To").unwrap_or_default().to_string();
    if !to.contains(";tag=") {
        to.push_str(";tag=platform1");
    }
    let mut extra = String::new();
    if req.starts_with("REGISTER ") {
        extra.push_str("Date: 2026-12-06T18:00:00.000\r\nExpires: 3600\r\n");
    }
    format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: 0\r\n\r\n",
        header(req, "Via").unwrap_or_default(),
        header(req, "From").unwrap_or_default(),
        header(req, "Call-ID").unwrap_or_default(),
        header(req, "CSeq").unwrap_or_default(),
    )
}

/// The tag of a response's `To`.
fn to_tag(resp: &str) -> String {
    header(resp, "To")
        .and_then(|t| t.split(";tag=").nth(1))
        .map(|t| t.split(';').next().unwrap_or(t).to_string())
        .unwrap_or_else(|| panic!("no To tag: {resp}"))
}

fn status(resp: &str) -> u16 {
    resp.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A live offer as a platform sends it.
fn offer(port: u16, ssrc: &str) -> String {
    format!(
        "v=0\r\no={PLATFORM_ID} 0 0 IN IP4 127.0.0.1\r\ns=Play\r\nc=IN IP4 127.0.0.1\r\n\
         t=0 0\r\nm=video {port} RTP/AVP 96 98\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\n\
         a=rtpmap:98 H264/90000\r\ny={ssrc}\r\n"
    )
}

fn query(cmd: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Query>\r\n<CmdType>{cmd}</CmdType>\r\n\
         <SN>7</SN>\r\n<DeviceID>{OUR_ID}</DeviceID>\r\n</Query>\r\n"
    )
}

fn config(dir: &Path, cidr: &str, wsd: u16, platform: u16, http: &str) -> std::path::PathBuf {
    GatewayConfig::new(dir.join("data"))
        .camera_sweep(cidr, wsd)
        .auto_adopt()
        .fast_health()
        .section("[health]", "stall_secs = 3\nauth_backoff_secs = 2")
        .credential_group("admin", "pw-gb-calls", cidr)
        .http(http)
        .gb28181("max_relays = 1\nmedia_setup_timeout_secs = 10\ncamera_timeout_secs = 5")
        .gb_platform(
            &format!("127.0.0.1:{platform}"),
            "pw-platform",
            "keepalive_secs = 30",
        )
        .write(dir.join("gateway.toml"))
}

fn gb_status(http: &str, token: &str) -> Option<Value> {
    let (code, body) = http_get_as(http, "/api/v1/gb28181", Some(token))?;
    (code == 200).then_some(())?;
    serde_json::from_str(&body).ok()
}

/// Concatenated RTP payloads until 40 frames (marker bits); every SSRC seen.
fn receive(sock: &UdpSocket) -> (Vec<u32>, Vec<u8>) {
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let (mut ssrcs, mut ps, mut frames) = (Vec::new(), Vec::new(), 0);
    let mut buf = vec![0u8; 65536];
    while frames < 40 {
        let n = sock.recv(&mut buf).expect("RTP within 10 s");
        let p = &buf[..n];
        assert!(n >= 12 && p[0] >> 6 == 2, "not RTP");
        let ssrc = u32::from_be_bytes([p[8], p[9], p[10], p[11]]);
        if !ssrcs.contains(&ssrc) {
            ssrcs.push(ssrc);
        }
        if p[1] & 0x80 != 0 {
            frames += 1;
        }
        ps.extend_from_slice(&p[12..]);
    }
    (ssrcs, ps)
}

/// SIPp (`tests/sipp/gb_invite.xml`) INVITEs `channel`; the stream is
/// checked here; our INFO on its dialog makes it send BYE.
fn sipp_plays(dir: &Path, plat: &Platform, gw: SocketAddr, channel: &str, http: &str, token: &str) {
    let rtp = UdpSocket::bind("127.0.0.1:0").expect("rtp socket");
    let rtp_port = rtp.local_addr().expect("addr").port();
    let scenario = std::fs::read_to_string(workspace().join("tests/sipp/gb_invite.xml"))
        .expect("scenario")
        .replace("CHANNEL", channel)
        .replace("RTPPORT", &rtp_port.to_string());
    let sf = dir.join("invite.xml");
    std::fs::write(&sf, scenario).expect("write scenario");
    let port = free_udp_port();
    let trace = dir.join("sipp-invite.log");
    let mut sipp = Command::new("sipp")
        .arg("-sf")
        .arg(&sf)
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-m", "1"])
        .args(["-nostdin", "-timeout", "60s", "-timeout_error"])
        .args(["-trace_msg", "-message_file"])
        .arg(&trace)
        .arg(gw.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn_killed("sipp");
    let up = wait_for(
        Duration::from_secs(30),
        "SIPp's call up or SIPp ended",
        || {
            if let Some(code) = sipp.try_wait().ok().flatten() {
                return Some(Err(code));
            }
            gb_status(http, token)
                .filter(|s| s["relays"].as_array().is_some_and(|r| !r.is_empty()))
                .map(Ok)
        },
    );
    if let Err(code) = up {
        panic!(
            "SIPp ended ({code}) before its call was up: {}\n--- tgw:\n{}",
            std::fs::read_to_string(&trace).unwrap_or_default(),
            std::fs::read_to_string(dir.join("tgw.log")).unwrap_or_default()
        );
    }
    let (ssrcs, ps) = receive(&rtp);
    assert_eq!(ssrcs, vec![100_000_001], "SIPp's call: SSRC");
    let video = probe(&ps);
    assert_eq!(
        (video["codec_name"].as_str(), video["width"].as_u64()),
        (Some("h264"), Some(1280)),
        "{video}"
    );
    let relays = gb_status(http, token).expect("status")["relays"].clone();
    let call_id = relays[0]["call_id"]
        .as_str()
        .expect("SIPp's relay")
        .to_string();
    let to: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    plat.request(to, "INFO", channel, &call_id, 2, None, "", None);
    let code = wait_for(Duration::from_secs(30), "SIPp done", || {
        sipp.try_wait().ok().flatten()
    });
    let log = std::fs::read_to_string(&trace).unwrap_or_default();
    assert!(code.success(), "SIPp failed: {log}");
    assert!(
        log.contains("SIP/2.0 200 OK") && log.contains("BYE sip:"),
        "{log}"
    );
    wait_for(Duration::from_secs(10), "no relay after SIPp's BYE", || {
        gb_status(http, token).filter(|s| s["relays"].as_array().is_some_and(Vec::is_empty))
    });
}

/// The id of a camera item (type 131) with Status ON in a Catalog body.
fn on_camera(b: &str) -> Option<String> {
    if !b.contains("<CmdType>Catalog</CmdType>") {
        return None;
    }
    b.split("<Item>").skip(1).find_map(|item| {
        let id = item.split("<DeviceID>").nth(1)?.split('<').next()?;
        (id.get(10..13) == Some("131") && item.contains("<Status>ON</Status>"))
            .then(|| id.to_string())
    })
}

/// ffprobe's video stream in these PS bytes.
fn probe(ps: &[u8]) -> Value {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("out.ps");
    std::fs::write(&file, ps).expect("write");
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-f", "mpeg", "-show_streams", "-of", "json"])
        .arg(&file)
        .output()
        .expect("run ffprobe");
    let v: Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    v["streams"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["codec_type"] == "video").cloned())
        .unwrap_or_else(|| panic!("no video stream: {v}"))
}

#[test]
fn invite_plays_ps_and_offline_camera_notifies() {
    if !have("ffprobe") {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI is missing ffprobe (scripts/install-peers)"
        );
        eprintln!("SKIPPED: needs ffprobe (run scripts/install-peers)");
        return;
    }
    let base = test_net(87);
    let cidr = cidr24(base);
    let (wsd, control) = (free_udp_port(), format!("127.0.0.1:{}", free_tcp_port()));
    let sim = SimProc::cameras(1, base, wsd, "pw-gb-calls", &["--control", &control]);
    let cam_id = sim.devices("camera")[0]["id"]
        .as_str()
        .expect("sim camera id")
        .to_string();
    let plat = Platform::start();
    let dir = tempfile::tempdir().expect("tmp");
    let http = format!("127.0.0.1:{}", free_tcp_port());
    let cfg = config(dir.path(), &cidr, wsd, plat.port, &http);
    let token = api_token(&cfg);
    let _gw = GatewayStart::new(&cfg, &http)
        .log(dir.path().join("tgw.log"))
        .start();
    let st = wait_for(Duration::from_secs(30), "registered", || {
        gb_status(&http, &token).filter(|s| s["platforms"][0]["state"] == "registered")
    });
    let gw: SocketAddr = st["listen"]
        .as_str()
        .expect("listen")
        .parse()
        .expect("addr");

    // Subscriptions first, so that nothing is missed later.
    let sub = |call: &str, event: &str| {
        plat.request(
            gw,
            "SUBSCRIBE",
            OUR_ID,
            call,
            1,
            None,
            &format!("Event: {event}\r\nExpires: 3600\r\n"),
            Some(("Application/MANSCDP+xml", &query(event))),
        );
        assert_eq!(status(&plat.final_response(call, "SUBSCRIBE")), 200);
    };
    sub("sub-catalog", "Catalog");
    sub("sub-alarm", "Alarm");
    wait_for(Duration::from_secs(10), "subscriptions shown", || {
        gb_status(&http, &token).filter(|s| {
            s["platforms"][0]["catalog_subscribed"] == true
                && s["platforms"][0]["alarm_subscribed"] == true
        })
    });

    // An unknown channel: a clear 404.
    plat.request(
        gw,
        "INVITE",
        "34020000001310009999",
        "inv-unknown",
        1,
        None,
        "Subject: 34020000001310009999:0,34020000002000000001:0\r\n",
        Some(("application/sdp", &offer(9, "0100000009"))),
    );
    let r = plat.final_response("inv-unknown", "INVITE");
    assert_eq!(status(&r), 404, "{r}");

    // The camera in the catalog, polled ok.
    // The camera, adopted and polled ok, reaches the catalog subscription
    // (ADD, or ON after an OFF) with Status ON: its channel id.
    let channel = wait_for(Duration::from_secs(60), "the camera ON in a NOTIFY", || {
        plat.seen()
            .iter()
            .filter(|m| m.starts_with("NOTIFY "))
            .find_map(|m| on_camera(body(m)))
    });
    // A catalog query answers it too.
    plat.request(
        gw,
        "MESSAGE",
        OUR_ID,
        "query-catalog",
        1,
        None,
        "",
        Some(("Application/MANSCDP+xml", &query("Catalog"))),
    );
    wait_for(
        Duration::from_secs(20),
        "the camera in the Catalog answer",
        || {
            plat.seen().iter().find_map(|m| {
                let b = body(m);
                (m.starts_with("MESSAGE ") && b.contains("<Response>"))
                    .then(|| on_camera(b))
                    .flatten()
                    .filter(|c| *c == channel)
            })
        },
    );

    // INVITE the camera; RTP to a socket of ours.
    let rtp = UdpSocket::bind("127.0.0.1:0").expect("rtp socket");
    let rtp_port = rtp.local_addr().expect("addr").port();
    let subject = format!("Subject: {channel}:0100000001,{PLATFORM_ID}:0\r\n");
    plat.request(
        gw,
        "INVITE",
        &channel,
        "inv-live",
        1,
        None,
        &subject,
        Some(("application/sdp", &offer(rtp_port, "0100000001"))),
    );
    let r = plat.final_response("inv-live", "INVITE");
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(
        header(&r, "Content-Type").map(|c| c.to_ascii_lowercase()),
        Some("application/sdp".into())
    );
    let answer = body(&r);
    assert!(answer.contains("m=video "), "{answer}");
    assert!(answer.contains("c=IN IP4 127.0.0.1"), "{answer}");
    assert!(answer.contains("y=0100000001"), "{answer}");
    let tag = to_tag(&r);
    plat.request(gw, "ACK", &channel, "inv-live", 1, Some(&tag), "", None);
    let (ssrcs, ps) = receive(&rtp);
    assert_eq!(ssrcs, vec![100_000_001], "the SSRC is the offer's y=");
    assert_eq!(&ps[..4], &[0, 0, 1, 0xBA], "a PS pack header first");
    let video = probe(&ps);
    assert_eq!(video["codec_name"], "h264", "{video}");
    // The main stream (the one health DESCRIBEs): the sim's 1280x720 clip.
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(1280), Some(720)),
        "{video}"
    );
    let live = gb_status(&http, &token).expect("status");
    assert_eq!(live["relays"].as_array().map(Vec::len), Some(1), "{live}");
    assert_eq!(live["relays"][0]["channel_id"], channel.as_str(), "{live}");

    // A second INVITE over max_relays = 1: 486.
    plat.request(
        gw,
        "INVITE",
        &channel,
        "inv-busy",
        1,
        None,
        &subject,
        Some(("application/sdp", &offer(9, "0100000002"))),
    );
    let r = plat.final_response("inv-busy", "INVITE");
    assert_eq!(status(&r), 486, "{r}");

    // BYE: 200, the relay ends and the RTP stops.
    plat.request(gw, "BYE", &channel, "inv-live", 2, Some(&tag), "", None);
    let r = plat.final_response("inv-live", "BYE");
    assert_eq!(status(&r), 200, "{r}");
    wait_for(Duration::from_secs(10), "no relay after BYE", || {
        gb_status(&http, &token).filter(|s| s["relays"].as_array().is_some_and(Vec::is_empty))
    });
    rtp.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = vec![0u8; 65536];
    while rtp.recv(&mut buf).is_ok() {
        assert!(Instant::now() < deadline, "RTP goes on after BYE");
    }

    // The same through SIPp as the platform, from another port: the gateway
    // knows it by its From and answers where the INVITE came from.
    if have("sipp") {
        sipp_plays(dir.path(), &plat, gw, &channel, &http, &token);
    } else {
        eprintln!("sipp part skipped: sipp (sip-tester) not installed");
    }

    // The camera goes offline: a catalog NOTIFY with OFF, and an alarm.
    sim_fault(&control, &cam_id, "offline");
    let notifies = wait_for(Duration::from_secs(60), "offline NOTIFYs", || {
        let seen = plat.seen();
        let n: Vec<String> = seen
            .into_iter()
            .filter(|m| m.starts_with("NOTIFY "))
            .collect();
        // The OFF event itself: an earlier ADD may also say OFF when it was
        // built before the camera's first check was written (health is
        // saved in one transaction a second).
        let off = n.iter().any(|m| is_off_event(m, &channel));
        let alarm = n.iter().any(|m| {
            let b = body(m);
            b.contains("<CmdType>Alarm</CmdType>") && b.contains(&channel)
        });
        (off && alarm).then_some(n)
    });
    let catalog = notifies
        .iter()
        .find(|m| is_off_event(m, &channel))
        .expect("catalog NOTIFY");
    assert_eq!(header(catalog, "Call-ID"), Some("sub-catalog"), "{catalog}");
    assert!(body(catalog).contains("<Event>OFF</Event>"), "{catalog}");
    let alarm = notifies
        .iter()
        .find(|m| body(m).contains("<CmdType>Alarm</CmdType>"))
        .expect("alarm NOTIFY");
    assert_eq!(header(alarm, "Call-ID"), Some("sub-alarm"), "{alarm}");
    assert!(
        body(alarm).contains("<AlarmMethod>2</AlarmMethod>"),
        "{alarm}"
    );
}

/// A catalog NOTIFY saying `channel` went offline (`<Event>OFF</Event>`
/// with `<Status>OFF</Status>`).
fn is_off_event(m: &str, channel: &str) -> bool {
    let b = body(m);
    b.contains("<CmdType>Catalog</CmdType>")
        && b.contains(&format!("<DeviceID>{channel}</DeviceID>"))
        && b.contains("<Event>OFF</Event>")
        && b.contains("<Status>OFF</Status>")
}
