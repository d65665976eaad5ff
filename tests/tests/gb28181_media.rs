//! GB/T 28181 live video relays (`tgw::gb28181::media::Relays`) against
//! `tgw sim` cameras (real RTSP, H.264 sub stream 640x360), driven through the
//! `gb_relay` example with SDP offers as a platform sends them. The RTP is
//! received here on loopback over UDP, TCP with us connecting (offer
//! `a=setup:passive`) and TCP with the platform connecting (offer
//! `a=setup:active`); the payloads concatenated must be MPEG-PS in which
//! `ffprobe -f mpeg` finds H.264 at the camera's resolution, and every
//! packet's SSRC must be the offer's `y=`.
//!
//! Failure paths first: garbage SDP → 488, over the cap → 486, BYE frees the
//! slot, a wrong camera password → 500 without the password, a closed
//! platform port (ICMP) stops the relay and frees its slot, no ACK ends it.
// Waiting on child processes and sockets needs real time.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tgw_e2e::*;

const PASSWORD: &str = "Demo-pass-1";

fn relay_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("TGW_GB_RELAY_BIN") {
            return PathBuf::from(p);
        }
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| workspace().join("target"));
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "tgw", "--example", "gb_relay"])
            .current_dir(workspace())
            .status()
            .expect("cargo build --example gb_relay");
        assert!(status.success(), "building gb_relay failed");
        target.join("debug").join("examples").join("gb_relay")
    })
    .clone()
}

/// The `gb_relay` example in a child process (killed on drop).
struct Relay {
    _child: KillOnDrop,
    stdin: ChildStdin,
    lines: Receiver<Value>,
}

impl Relay {
    /// `max` relays, `setup` seconds for ACK/connect, camera timeout 3 s.
    fn start(max: usize, setup: u64) -> Relay {
        let port_min = free_tcp_port().max(20000);
        let mut child = Command::new(relay_bin())
            .args([
                max.to_string(),
                port_min.to_string(),
                (port_min + 200).to_string(),
                setup.to_string(),
                "3".to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn_killed("gb_relay");
        let stdin = child.stdin.take().expect("stdin");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line).expect("gb_relay prints JSON");
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Relay {
            _child: child,
            stdin,
            lines,
        }
    }

    fn send(&mut self, v: Value) {
        writeln!(self.stdin, "{v}").expect("write to gb_relay");
    }

    /// The next line for `call` (others are dropped: tests wait in order).
    fn reply(&self, call: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no reply for {call}"));
            if v["call"] == call {
                return v;
            }
        }
    }

    fn invite(&mut self, call: &str, cam: &Value, password: &str, offer: &str) -> Value {
        let url = cam["rtsp"][1].as_str().expect("sub stream uri");
        self.send(json!({"op": "invite", "call": call, "url": url,
            "user": cam["username"], "password": password, "offer": offer}));
        self.reply(call)
    }

    fn op(&mut self, op: &str, call: &str) {
        self.send(json!({"op": op, "call": call}));
        self.reply(call);
    }

    fn active(&mut self) -> Vec<Value> {
        self.send(json!({"op": "active"}));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self.lines.recv_timeout(left).expect("active reply");
            if let Some(a) = v["active"].as_array() {
                return a.clone();
            }
        }
    }

    /// Waits until no relay is live (deadline 20 s).
    fn wait_idle(&mut self, why: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.active().is_empty() {
            assert!(Instant::now() < deadline, "relay still live: {why}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn sim(tag: u8) -> SimProc {
    sim_with_control(tag, &format!("127.0.0.1:{}", free_tcp_port()))
}

fn sim_with_control(tag: u8, control: &str) -> SimProc {
    SimProc::start(&[
        "--cameras",
        "1",
        "--bind",
        &test_net(tag).to_string(),
        "--wsd-port",
        &free_udp_port().to_string(),
        "--no-multicast",
        "--password",
        PASSWORD,
        "--control",
        control,
    ])
}

/// A live offer as a platform sends it.
fn offer(port: u16, proto: &str, setup: Option<&str>, ssrc: &str) -> String {
    let mut s = format!(
        "v=0\r\no=34020000002000000001 0 0 IN IP4 127.0.0.1\r\ns=Play\r\nc=IN IP4 127.0.0.1\r\n\
         t=0 0\r\nm=video {port} {proto} 96 98\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\n\
         a=rtpmap:98 H264/90000\r\n"
    );
    if let Some(role) = setup {
        s.push_str(&format!("a=setup:{role}\r\na=connection:new\r\n"));
    }
    s.push_str(&format!("y={ssrc}\r\n"));
    s
}

/// The port of an SDP answer's `m=video`.
fn answer_port(answer: &str) -> u16 {
    answer
        .lines()
        .find_map(|l| l.strip_prefix("m=video "))
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no m=video port in {answer}"))
}

/// What the platform received: SSRCs seen, frames (marker bits), PS bytes.
#[derive(Default)]
struct Received {
    ssrcs: Vec<u32>,
    payload_types: Vec<u8>,
    frames: usize,
    ps: Vec<u8>,
}

impl Received {
    fn packet(&mut self, p: &[u8]) {
        assert!(
            p.len() >= 12 && p[0] >> 6 == 2,
            "not RTP: {:?}",
            &p[..p.len().min(12)]
        );
        assert!(p.len() - 12 <= 1400, "payload over 1400 bytes");
        let ssrc = u32::from_be_bytes([p[8], p[9], p[10], p[11]]);
        if !self.ssrcs.contains(&ssrc) {
            self.ssrcs.push(ssrc);
        }
        if !self.payload_types.contains(&(p[1] & 0x7F)) {
            self.payload_types.push(p[1] & 0x7F);
        }
        if p[1] & 0x80 != 0 {
            self.frames += 1;
        }
        self.ps.extend_from_slice(&p[12..]);
    }

    fn done(&self) -> bool {
        self.frames >= 40
    }
}

fn receive_udp(sock: &UdpSocket) -> Received {
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut r = Received::default();
    let mut buf = vec![0u8; 65536];
    while !r.done() {
        let n = sock.recv(&mut buf).expect("RTP over UDP within 10 s");
        r.packet(&buf[..n]);
    }
    r
}

fn receive_tcp(mut s: TcpStream) -> Received {
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut r = Received::default();
    let mut buf = vec![0u8; 65536];
    while !r.done() {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).expect("RFC 4571 length within 10 s");
        let n = usize::from(u16::from_be_bytes(len));
        s.read_exact(&mut buf[..n]).expect("RTP packet");
        r.packet(&buf[..n]);
    }
    r
}

/// ffprobe must find H.264 640x360 in the PS, and the SSRC is `y=`.
fn check_stream(r: &Received, ssrc: u32, what: &str) {
    assert_eq!(r.ssrcs, vec![ssrc], "{what}: SSRC");
    assert_eq!(r.payload_types, vec![96], "{what}: payload type");
    assert_eq!(
        &r.ps[..4],
        &[0, 0, 1, 0xBA],
        "{what}: starts with a pack header"
    );
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("out.ps");
    std::fs::write(&file, &r.ps).expect("write");
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-f", "mpeg", "-show_streams", "-of", "json"])
        .arg(&file)
        .output()
        .expect("run ffprobe");
    let v: Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let video = v["streams"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["codec_type"] == "video").cloned())
        .unwrap_or_else(|| panic!("{what}: no video stream: {v}"));
    assert_eq!(video["codec_name"], "h264", "{what}: {video}");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(640), Some(360)),
        "{what}"
    );
}

fn prerequisites() -> bool {
    if have("ffprobe") {
        return true;
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "CI is missing ffprobe (scripts/install-peers)"
    );
    eprintln!("SKIPPED: needs ffprobe (run scripts/install-peers)");
    false
}

/// Garbage → 488; over the cap → 486; BYE frees the slot for the next call;
/// a wrong camera password → 500 naming the camera, not the password.
#[test]
fn refusals_and_cap() {
    let sim = sim(84);
    let cam = sim.devices("camera")[0].clone();
    let mut relay = Relay::start(1, 5);
    let sink = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = sink.local_addr().expect("addr").port();

    let r = relay.invite("g", &cam, PASSWORD, "v=0\r\nthis is not sdp\r\n");
    assert_eq!(r["status"], 488, "{r}");
    let r = relay.invite(
        "p",
        &cam,
        PASSWORD,
        &offer(port, "RTP/AVP", None, "0100000001").replace("s=Play", "s=Playback"),
    );
    assert_eq!(r["status"], 488, "{r}");
    assert!(
        r["error"].as_str().unwrap_or("").contains("Playback"),
        "{r}"
    );

    let r = relay.invite(
        "w",
        &cam,
        "not-the-password",
        &offer(port, "RTP/AVP", None, "0100000002"),
    );
    assert_eq!(r["status"], 500, "{r}");
    let e = r["error"].as_str().unwrap_or("");
    assert!(e.contains("credentials refused"), "{e}");
    assert!(!e.contains("not-the-password"), "{e}");

    let r = relay.invite(
        "a",
        &cam,
        PASSWORD,
        &offer(port, "RTP/AVP", None, "0100000003"),
    );
    assert_eq!(r["ok"], true, "{r}");
    let r = relay.invite(
        "b",
        &cam,
        PASSWORD,
        &offer(port, "RTP/AVP", None, "0100000004"),
    );
    assert_eq!(r["status"], 486, "{r}");
    assert!(r["error"].as_str().unwrap_or("").contains("1 of 1"), "{r}");
    relay.op("bye", "a");
    assert!(relay.active().is_empty(), "BYE frees the slot");
    let r = relay.invite(
        "c",
        &cam,
        PASSWORD,
        &offer(port, "RTP/AVP", None, "0100000005"),
    );
    assert_eq!(r["ok"], true, "the freed slot is taken again: {r}");
    relay.op("bye", "c");
}

/// A platform port that is closed (ICMP port unreachable) stops the relay
/// and frees its slot; an INVITE never ACKed ends after the setup timeout.
#[test]
fn closed_port_and_missing_ack_end_the_relay() {
    let sim = sim(85);
    let cam = sim.devices("camera")[0].clone();
    let mut relay = Relay::start(2, 2);
    let closed = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let r = relay.invite(
        "icmp",
        &cam,
        PASSWORD,
        &offer(port, "RTP/AVP", None, "0100000010"),
    );
    assert_eq!(r["ok"], true, "{r}");
    relay.op("ack", "icmp");
    relay.wait_idle("sending to a closed port");

    let r = relay.invite(
        "noack",
        &cam,
        PASSWORD,
        &offer(port, "RTP/AVP", None, "0100000011"),
    );
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(relay.active().len(), 1);
    relay.wait_idle("no ACK within 2 s");
}

/// A camera that stops sending (frozen) mid-relay: the relay ends as
/// camera loss after the camera timeout (3 s) and frees its slot.
#[test]
fn camera_loss_ends_the_relay() {
    let control = format!("127.0.0.1:{}", free_tcp_port());
    let sim = sim_with_control(89, &control);
    let cam = sim.devices("camera")[0].clone();
    let mut relay = Relay::start(2, 10);
    let sink = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = sink.local_addr().expect("addr").port();
    let r = relay.invite(
        "lost",
        &cam,
        PASSWORD,
        &offer(port, "RTP/AVP", None, "0100000051"),
    );
    assert_eq!(r["ok"], true, "{r}");
    relay.op("ack", "lost");
    sink.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = [0u8; 2048];
    sink.recv(&mut buf).expect("media flows before the fault");
    sim_fault(&control, cam["id"].as_str().expect("id"), "frozen");
    relay.wait_idle("camera frozen for longer than the camera timeout");
}

/// UDP: the PS over RTP is H.264 640x360 with the offer's SSRC.
#[test]
fn udp_relay_plays() {
    if !prerequisites() {
        return;
    }
    let sim = sim(86);
    let cam = sim.devices("camera")[0].clone();
    let mut relay = Relay::start(4, 10);
    let sink = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = sink.local_addr().expect("addr").port();
    let r = relay.invite(
        "u",
        &cam,
        PASSWORD,
        &offer(port, "RTP/AVP", None, "0100000021"),
    );
    assert_eq!(r["ok"], true, "{r}");
    let answer = r["answer"].as_str().expect("answer");
    assert!(
        answer.contains("y=0100000021\r\n") && answer.contains("a=sendonly"),
        "{answer}"
    );
    assert!(answer.contains("c=IN IP4 127.0.0.1"), "{answer}");
    relay.op("ack", "u");
    let got = receive_udp(&sink);
    check_stream(&got, 100_000_021, "udp");
    let live = relay.active();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0]["transport"], "udp");
    assert!(live[0]["packets"].as_u64().unwrap_or(0) > 0, "{live:?}");
    relay.op("bye", "u");
    assert!(relay.active().is_empty());
}

/// TCP, the platform listening (`a=setup:passive`): we connect.
#[test]
fn tcp_active_relay_plays() {
    if !prerequisites() {
        return;
    }
    let sim = sim(90);
    let cam = sim.devices("camera")[0].clone();
    let mut relay = Relay::start(4, 10);
    let platform = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = platform.local_addr().expect("addr").port();
    let r = relay.invite(
        "ta",
        &cam,
        PASSWORD,
        &offer(port, "TCP/RTP/AVP", Some("passive"), "0100000031"),
    );
    assert_eq!(r["ok"], true, "{r}");
    let answer = r["answer"].as_str().expect("answer");
    assert!(
        answer.contains("TCP/RTP/AVP 96") && answer.contains("a=setup:active"),
        "{answer}"
    );
    relay.op("ack", "ta");
    let (conn, _) = platform.accept().expect("the relay connects");
    let got = receive_tcp(conn);
    check_stream(&got, 100_000_031, "tcp active");
    relay.op("bye", "ta");
}

/// TCP, the platform connecting (`a=setup:active`) to the answer's port.
#[test]
fn tcp_passive_relay_plays() {
    if !prerequisites() {
        return;
    }
    let sim = sim(88);
    let cam = sim.devices("camera")[0].clone();
    let mut relay = Relay::start(4, 10);
    let r = relay.invite(
        "tp",
        &cam,
        PASSWORD,
        &offer(9, "TCP/RTP/AVP", Some("active"), "0100000041"),
    );
    assert_eq!(r["ok"], true, "{r}");
    let answer = r["answer"].as_str().expect("answer");
    assert!(answer.contains("a=setup:passive"), "{answer}");
    relay.op("ack", "tp");
    let conn =
        TcpStream::connect(("127.0.0.1", answer_port(answer))).expect("connect to the relay");
    let got = receive_tcp(conn);
    check_stream(&got, 100_000_041, "tcp passive");
    relay.op("bye", "tp");
}
