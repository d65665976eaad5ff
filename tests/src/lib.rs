//! Helpers for the end-to-end suites: the `tgw` binary, simulated townships
//! in child processes, unique loopback networks per test, and network
//! namespaces for peers that ignore loopback.
//!
//! - `gateway`: [`GatewayConfig`] (a `gateway.toml` from the sections a
//!   suite needs) and [`start_gateway`] / [`GatewayStart`] (`tgw run`,
//!   waited for until it serves HTTP);
//! - `process`: [`KillOnDrop`] and [`SpawnKilled::spawn_killed`], so that
//!   every child process dies with its test, passed or panicked;
//! - `rabbit`: a RabbitMQ cluster with MQTT for the fleet suite;
//! - `nets`: the check that no two suites give [`test_net`] the same tag
//!   (directly or through a helper taking `tag: u8`).
//!
//! Every test stays on 127.0.0.0/8 or inside namespaces it creates.
// These helpers drive child processes from synchronous tests; polling them
// needs a real sleep, which the library code's time-injection rule bans.
#![allow(clippy::disallowed_methods)]

mod gateway;
pub mod nets;
mod process;
pub mod rabbit;

pub use gateway::{
    GB_DOMAIN, GB_GATEWAY_ID, GB_PLATFORM_ID, Gateway, GatewayConfig, GatewayStart, start_gateway,
};
pub use process::{KillOnDrop, SpawnKilled};

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// Path of the `tgw` binary: `$TGW_BIN`, else the workspace's debug build
/// (built once here if missing).
pub fn tgw_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("TGW_BIN") {
            return PathBuf::from(p);
        }
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| workspace().join("target"));
        let bin = target.join("debug").join("tgw");
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "tgw", "--bin", "tgw"])
            .current_dir(workspace())
            .status()
            .expect("cargo build -p tgw");
        assert!(status.success(), "building tgw failed");
        bin
    })
    .clone()
}

/// A `tgw` command.
pub fn tgw() -> Command {
    let mut c = Command::new(tgw_bin());
    c.env_remove("TGW_LOG");
    c
}

/// `tgw camera sync-time ID --json --config CONFIG`: must succeed (its
/// stderr in the failure); its JSON report.
pub fn sync_time_json(id: &str, config: &std::path::Path) -> serde_json::Value {
    let mut cmd = tgw();
    cmd.args(["camera", "sync-time", id, "--json", "--config"])
        .arg(config);
    let out = run_with_timeout(cmd, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// Runs a command to completion, killing it after `limit`.
pub fn run_with_timeout(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn_killed("command");
    let start = Instant::now();
    loop {
        if let Some(_status) = child.try_wait().expect("wait") {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "command timed out after {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A free UDP port on 127.0.0.1 (bound then released).
pub fn free_udp_port() -> u16 {
    unused_port(|p| UdpSocket::bind(("127.0.0.1", p)).is_ok())
}

/// A free TCP port on 127.0.0.1.
pub fn free_tcp_port() -> u16 {
    unused_port(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
}

/// A port that `free` (a bind, released at once) finds free, picked at
/// random below the kernel's ephemeral range. A port the kernel hands out
/// (`bind` to port 0) is one it may also give, before the test binds it
/// again, to another test's outgoing connection as its source port: CI saw
/// `tgw run` refuse its `http.listen` with "Address already in use" that
/// way. Below the range only another test's pick can take it.
fn unused_port(free: impl Fn(u16) -> bool) -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    let from = 20_000u16;
    // A machine whose ephemeral range starts low leaves no such room: any
    // port above `from` then, with the old race.
    let to = if low > from + 1_000 { low } else { u16::MAX };
    let seed = std::collections::hash_map::RandomState::new();
    for i in 0..1_000u64 {
        let mut h = seed.build_hasher();
        h.write_u64(i);
        let p = from + (h.finish() % u64::from(to - from)) as u16;
        if free(p) {
            return p;
        }
    }
    panic!("no free port on 127.0.0.1 in {from}..{to} after 1,000 tries")
}

/// A /24 of loopback addresses for one test, distinct per `tag` and process
/// (127.T.P.0/24, never 127.0.x.x which the demo uses).
/// Each tag is given once in the crate (checked by `nets`'s unit test,
/// which lists the free ones when it fails).
pub fn test_net(tag: u8) -> Ipv4Addr {
    let p = (std::process::id() % 200) as u8 + 20;
    Ipv4Addr::new(127, tag.max(2), p, 1)
}

/// The /24 that `base` is in, as `A.B.C.0/24` (for a discovery sweep or a
/// credential group over [`test_net`]).
pub fn cidr24(base: Ipv4Addr) -> String {
    let o = base.octets();
    format!("{}.{}.{}.0/24", o[0], o[1], o[2])
}

/// A simulated township running in a child `tgw sim` process (killed on
/// drop).
pub struct SimProc {
    _child: KillOnDrop,
    /// The manifest printed on its first stdout line.
    pub manifest: serde_json::Value,
}

impl SimProc {
    /// Starts `tgw sim` with these arguments and reads its manifest.
    pub fn start(args: &[&str]) -> SimProc {
        let mut child = tgw()
            .arg("sim")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn_killed("tgw sim");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("manifest line");
        let manifest: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("manifest is not JSON ({e}): {line:?}"));
        SimProc {
            _child: child,
            manifest,
        }
    }

    /// `n` simulated ONVIF cameras from `base` up, answering unicast
    /// WS-Discovery Probes on UDP `wsd_port` (no multicast), login `admin`
    /// / `password`; `extra` arguments follow (`--control`, `--fault`).
    pub fn cameras(
        n: usize,
        base: Ipv4Addr,
        wsd_port: u16,
        password: &str,
        extra: &[&str],
    ) -> SimProc {
        let (n, base, wsd) = (n.to_string(), base.to_string(), wsd_port.to_string());
        let mut args = vec![
            "--cameras",
            &n,
            "--bind",
            &base,
            "--wsd-port",
            &wsd,
            "--no-multicast",
            "--password",
            password,
            "--username",
            "admin",
        ];
        args.extend_from_slice(extra);
        SimProc::start(&args)
    }

    /// The manifest's devices of a kind.
    pub fn devices(&self, kind: &str) -> Vec<serde_json::Value> {
        self.manifest["devices"]
            .as_array()
            .map(|a| a.iter().filter(|d| d["kind"] == kind).cloned().collect())
            .unwrap_or_default()
    }

    /// The simulated cameras as (simulator id, address), in manifest order.
    pub fn camera_addresses(&self) -> Vec<(String, String)> {
        self.devices("camera")
            .iter()
            .map(|d| {
                (
                    d["id"].as_str().expect("id").into(),
                    d["address"].as_str().expect("addr").into(),
                )
            })
            .collect()
    }
}

/// Injects `fault` (`offline`, `frozen`, `clear`, ...) into the simulated
/// device `device` through the simulator's control endpoint `control`.
pub fn sim_fault(control: &str, device: &str, fault: &str) {
    use std::io::{Read, Write};
    let path = format!("/devices/{device}/fault");
    let mut s = std::net::TcpStream::connect(control).expect("control endpoint");
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {control}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{fault}",
        fault.len()
    )
    .expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 200"), "{path} {fault}: {out}");
}

/// `n` simulated RTP horns on [`test_net`]`(tag)` (a `tgw sim` with a
/// control endpoint), written to `csv` as a speakers CSV in village `east`
/// with codec pcmu: the sim, its control address and the horn ids.
pub fn sim_rtp_horns(tag: u8, n: usize, csv: &std::path::Path) -> (SimProc, String, Vec<String>) {
    let net = test_net(tag).to_string();
    let sim = SimProc::start(&[
        "--cameras",
        "0",
        "--speakers",
        &n.to_string(),
        "--no-multicast",
        "--bind",
        &net,
        "--control",
        "127.0.0.1:0",
        "--speaker-kinds",
        "rtp",
    ]);
    let control = sim.manifest["control"]
        .as_str()
        .expect("control")
        .to_string();
    let mut text = String::from("id,kind,address,village,codec\n");
    let mut horns = Vec::new();
    for h in sim.devices("speaker") {
        let uri = h["uri"].as_str().expect("uri");
        let addr = uri
            .trim_start_matches("rtp://")
            .split('?')
            .next()
            .unwrap_or_default();
        let id = h["id"].as_str().unwrap_or_default().to_string();
        text.push_str(&format!("{id},rtp,{addr},east,pcmu\n"));
        horns.push(id);
    }
    std::fs::write(csv, &text).expect("csv");
    (sim, control, horns)
}

/// Whether we may create network namespaces (root with `ip`).
pub fn can_netns() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
        && Command::new("ip").arg("-V").output().is_ok()
}

/// A network namespace created for one test and deleted on drop.
pub struct NetNs {
    /// Its name.
    pub name: String,
}

impl NetNs {
    /// Creates a namespace with loopback up.
    pub fn new(name: &str) -> NetNs {
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        sh(&["ip", "netns", "add", name]);
        let ns = NetNs {
            name: name.to_string(),
        };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// Runs a command inside the namespace, asserting success.
    pub fn exec(&self, args: &[&str]) {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        sh(&full);
    }

    /// A command to run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Runs a command, asserting success.
pub fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls `f` every 50 ms until it returns `Some`, or panics after `limit`.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A plain HTTP/1.1 GET on loopback, returning (status, body).
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    http_get_as(addr, path, None)
}

/// A viewer API token for the gateway of `config`: creates user `e2e` with
/// `tgw user add` and issues a token with `tgw user token` (the API needs one).
pub fn api_token(config: &std::path::Path) -> String {
    api_token_as(config, "e2e", "viewer")
}

/// An API token for a new user `user` with `role` (`viewer`, `operator`,
/// `technician`, `admin`), made as [`api_token`] does.
pub fn api_token_as(config: &std::path::Path, user: &str, role: &str) -> String {
    add_user(config, user, role, "e2e-viewer-password");
    let out = tgw()
        .args(["user", "token", user, "--config"])
        .arg(config)
        .output()
        .expect("tgw user token");
    assert!(out.status.success(), "tgw user token");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `tgw speakers import CSV --config CONFIG` (at most 60 s), asserting it
/// succeeded.
pub fn import_speakers(config: &std::path::Path, csv: &std::path::Path) {
    let mut imp = tgw();
    imp.args(["speakers", "import"])
        .arg(csv)
        .arg("--config")
        .arg(config);
    let out = run_with_timeout(imp, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "tgw speakers import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `tgw user add USER --role ROLE` for the gateway of `config`, the
/// password on stdin.
pub fn add_user(config: &std::path::Path, user: &str, role: &str, password: &str) {
    use std::io::Write;
    let mut add = tgw()
        .args(["user", "add", user, "--role", role, "--config"])
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn_killed("tgw user add");
    if let Some(mut stdin) = add.stdin.take() {
        let _ = writeln!(stdin, "{password}");
    }
    assert!(add.wait().expect("tgw user add").success(), "tgw user add");
}

/// A JSON POST on loopback with a bearer token, returning (status, body).
pub fn http_post_as(addr: &str, path: &str, token: &str, json: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Some((status, body))
}

/// POSTs a raw `body` of type `ctype` with a bearer token on loopback;
/// returns the status and the body of the answer.
pub fn http_post_raw(
    addr: &str,
    path: &str,
    token: &str,
    ctype: &str,
    body: &[u8],
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write");
    s.write_all(body).expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_string();
    (status, body)
}

/// [`http_get`] with an optional bearer token.
pub fn http_get_as(addr: &str, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Some((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Path of the `mqtt_pump` example (a publisher loop driving the MQTT
/// uplink), built once here if missing.
pub fn mqtt_pump_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("TGW_PUMP_BIN") {
            return PathBuf::from(p);
        }
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| workspace().join("target"));
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "tgw", "--example", "mqtt_pump"])
            .current_dir(workspace())
            .status()
            .expect("cargo build --example mqtt_pump");
        assert!(status.success(), "building mqtt_pump failed");
        target.join("debug").join("examples").join("mqtt_pump")
    })
    .clone()
}

/// The Mosquitto broker binary (Debian puts it in /usr/sbin, which is not
/// always on PATH), if installed.
pub fn mosquitto_bin() -> Option<PathBuf> {
    for p in ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"] {
        if std::path::Path::new(p).exists() {
            return Some(PathBuf::from(p));
        }
    }
    Command::new("mosquitto")
        .arg("-h")
        .output()
        .ok()
        .map(|_| PathBuf::from("mosquitto"))
}

/// A Mosquitto broker on a free loopback port, a child process killed on
/// drop. Persistence goes to a private directory so that a persistent
/// subscriber's session and queue survive [`Mosquitto::restart`].
pub struct Mosquitto {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Starts a broker, or returns `None` when mosquitto is not installed
    /// (`scripts/install-peers` installs it). Under CI (`CI=true`) a missing
    /// mosquitto fails the test instead of letting it pass untested.
    pub fn start() -> Option<Mosquitto> {
        if mosquitto_bin().is_none() {
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true"),
                "CI is missing a test prerequisite: mosquitto"
            );
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        // Run as root, mosquitto drops to its own user: let it write here.
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777));
        }
        let port = free_tcp_port();
        let conf = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n\
             max_queued_messages 0\nmax_inflight_messages 0\nlog_dest stderr\nlog_type error\nlog_type warning\n",
            dir.path().display()
        );
        std::fs::write(dir.path().join("mosquitto.conf"), conf).expect("write conf");
        let mut m = Mosquitto {
            child: None,
            port,
            dir,
        };
        m.spawn();
        Some(m)
    }

    fn spawn(&mut self) {
        let bin = mosquitto_bin().expect("mosquitto");
        let child = Command::new(bin)
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn mosquitto");
        self.child = Some(child);
        let addr = format!("127.0.0.1:{}", self.port);
        wait_for(Duration::from_secs(10), "mosquitto to listen", || {
            std::net::TcpStream::connect(&addr).ok()
        });
    }

    /// `mqtt://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Stops the broker with SIGTERM (it saves its persistence file).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A `mosquitto_sub -v` writing every message to a file, with a persistent
/// QoS 1 session (it reconnects by itself across broker restarts).
pub struct MqttSub {
    _child: KillOnDrop,
    /// The output file: one `topic payload` line per message.
    pub path: PathBuf,
}

impl MqttSub {
    /// Subscribes to `filter` on `127.0.0.1:port` as client `id`, and returns
    /// once the subscription is in place (a marker published on a private
    /// topic has come back), so nothing published afterwards is missed.
    pub fn start(port: u16, filter: &str, id: &str, dir: &std::path::Path) -> MqttSub {
        let path = dir.join(format!("{id}.log"));
        let out = std::fs::File::create(&path).expect("create sub log");
        let marker = format!("{}/{id}", Self::READY_PREFIX);
        let child = Command::new("mosquitto_sub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-q",
                "1",
                "-c",
                "-i",
                id,
            ])
            .args(["-k", "5", "-v", "-t", filter, "-t", &marker])
            .stdout(out)
            .stderr(Stdio::null())
            .spawn_killed("mosquitto_sub (mosquitto-clients)");
        let sub = MqttSub {
            _child: child,
            path,
        };
        let start = std::time::Instant::now();
        loop {
            let _ = Command::new("mosquitto_pub")
                .args(["-h", "127.0.0.1", "-p", &port.to_string()])
                .args(["-t", &marker, "-m", "ready"])
                .stderr(Stdio::null())
                .status();
            let seen = std::fs::read_to_string(&sub.path)
                .unwrap_or_default()
                .lines()
                .any(|l| l.starts_with(&marker));
            if seen {
                return sub;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "mosquitto_sub on port {port} did not subscribe within 15 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    const READY_PREFIX: &'static str = "tgw-test-ready";

    /// The lines received so far, as (topic, payload), without the
    /// subscription's own readiness markers.
    pub fn lines(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(t, _)| !t.starts_with(Self::READY_PREFIX))
            .map(|(t, p)| (t.to_string(), p.to_string()))
            .collect()
    }
}

/// A minimal gateway configuration for MQTT tests
/// ([`GatewayConfig::test_site`]); `extra` continues its `[mqtt]` table
/// (more keys, then any further tables).
pub fn mqtt_config(data_dir: &std::path::Path, url: &str, extra: &str) -> String {
    GatewayConfig::test_site(data_dir, url)
        .section("[mqtt]", extra)
        .render()
}

// --- speakers (issue 5) ---

/// Whether a peer program runs. Outside CI a missing peer skips its test
/// with a message; under CI (`CI=true`) it fails the test.
pub fn have(program: &str) -> bool {
    let ok = Command::new(program)
        .arg(if program == "baresip" {
            "-h"
        } else {
            "-version"
        })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "CI is missing a test prerequisite: {program}"
        );
        eprintln!("SKIPPED: needs {program} (run scripts/install-peers)");
    }
    ok
}

/// Waits until something on this machine has UDP port `port` bound (read
/// from /proc/net/udp), e.g. a receiver started in the background.
pub fn wait_udp_bound(port: u16, limit: Duration) {
    let hex = format!(":{port:04X} ");
    wait_for(limit, &format!("UDP port {port} to be bound"), || {
        std::fs::read_to_string("/proc/net/udp")
            .unwrap_or_default()
            .lines()
            .skip(1)
            .any(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|a| format!("{a} ").contains(&hex))
            })
            .then_some(())
    });
}

/// ffmpeg receiving `codec` RTP on 127.0.0.1:`port` for `seconds`, into
/// `dir/out.wav` (killed when dropped).
pub fn ffmpeg_rtp_receiver(
    dir: &std::path::Path,
    port: u16,
    codec: &str,
    seconds: u32,
) -> KillOnDrop {
    let (pt, name) = if codec == "pcma" {
        (8, "PCMA")
    } else {
        (0, "PCMU")
    };
    let sdp = dir.join("recv.sdp");
    std::fs::write(
        &sdp,
        format!(
            "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=horn\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP {pt}\r\na=rtpmap:{pt} {name}/8000\r\n"
        ),
    )
    .expect("write recv.sdp");
    Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-protocol_whitelist",
            "file,udp,rtp",
        ])
        .arg("-i")
        .arg(&sdp)
        .args([
            "-t",
            &seconds.to_string(),
            "-ac",
            "1",
            "-ar",
            "8000",
            "-c:a",
            "pcm_s16le",
            "-y",
        ])
        .arg(dir.join("out.wav"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn_killed("ffmpeg")
}

/// An even free UDP port whose odd neighbour (RTCP) is free too.
pub fn rtp_port_pair() -> u16 {
    for _ in 0..50 {
        let p = free_udp_port() & !1;
        if std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.1", p + 1)).is_ok()
        {
            return p;
        }
    }
    panic!("no free RTP port pair");
}

/// Waits (up to 10 s) until `path` has stopped growing for 300 ms: a
/// recorder has finished writing what it heard.
pub fn wait_stable(path: &std::path::Path) {
    let size = || std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut last = (size(), std::time::Instant::now());
    wait_for(
        Duration::from_secs(10),
        "the recording to stop growing",
        || {
            let n = size();
            if n != last.0 {
                last = (n, std::time::Instant::now());
            }
            (last.1.elapsed() >= Duration::from_millis(300)).then_some(())
        },
    );
}

/// A 16-bit PCM WAV file's sample rate and first channel's samples (a data
/// chunk whose length is still 0, as a recorder writes it until it closes
/// the file, runs to the end of the file).
pub fn read_wav_i16(path: &std::path::Path) -> Option<(u32, Vec<i16>)> {
    let b = std::fs::read(path).ok()?;
    if b.get(0..4)? != b"RIFF" || b.get(8..12)? != b"WAVE" {
        return None;
    }
    let (mut off, mut rate, mut channels, mut bits) = (12usize, 0u32, 1usize, 16u16);
    while off + 8 <= b.len() {
        let id = &b[off..off + 4];
        let len = u32::from_le_bytes(b[off + 4..off + 8].try_into().ok()?) as usize;
        let body = b.get(off + 8..(off + 8 + len).min(b.len()))?;
        if id == b"fmt " && body.len() >= 16 {
            channels = usize::from(u16::from_le_bytes([body[2], body[3]])).max(1);
            rate = u32::from_le_bytes(body[4..8].try_into().ok()?);
            bits = u16::from_le_bytes([body[14], body[15]]);
        } else if id == b"data" {
            if bits != 16 {
                return None;
            }
            // A recorder killed or still writing has not filled in the
            // data length yet (0): the samples run to the end of the file.
            let body = if len == 0 { &b[off + 8..] } else { body };
            let samples = body
                .chunks_exact(2 * channels)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect();
            return Some((rate, samples));
        }
        off += 8 + len + (len & 1);
    }
    None
}

/// A 16-bit mono 8 kHz WAV file of a `freq` tone lasting `seconds`.
pub fn tone_wav(freq: f64, seconds: f64) -> Vec<u8> {
    let n = (8000.0 * seconds) as usize;
    let data = (n * 2) as u32;
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&16000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data.to_le_bytes());
    for i in 0..n {
        let s = (2.0 * std::f64::consts::PI * freq * i as f64 / 8000.0).sin() * 12_000.0;
        out.extend_from_slice(&(s as i16).to_le_bytes());
    }
    out
}

/// Share of the signal's energy at `freq` (0..1, Goertzel over the whole
/// signal): about 1 for a clean tone at `freq`, about 0 elsewhere.
pub fn tone_share(samples: &[i16], freq: f64, rate: u32) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let mut total = 0.0;
    let mut energy = 0.0;
    // Blocks of 1/10 s keep the filter's bandwidth tolerant of ±5 Hz.
    let block = (rate as usize / 10).max(1);
    for chunk in samples.chunks(block) {
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &x in chunk {
            let x = f64::from(x);
            let s0 = x + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
            energy += x * x;
        }
        let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
        total += 2.0 * power / chunk.len() as f64;
    }
    if energy > 0.0 {
        (total / energy).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// The baresip configuration of BRIEF §5 (an auto-answering SIP horn that
/// records what it decodes into `dir/rec`), listening on 127.0.0.1:`port`;
/// `net_interface 127.0.0.1` keeps its SDP (and so our RTP) on loopback.
pub fn baresip_config(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    let rec = dir.join("rec");
    std::fs::create_dir_all(&rec).expect("mkdir rec");
    std::fs::write(
        dir.join("config"),
        format!(
            "sip_listen 127.0.0.1:{port}\nnet_interface 127.0.0.1\naudio_player aubridge,horn\n\
             audio_source aubridge,horn\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\n\
             module aubridge.so\nmodule sndfile.so\nmodule_app account.so\nmodule_app menu.so\n\
             snd_path {}\n",
            rec.display()
        ),
    )
    .expect("write baresip config");
    std::fs::write(
        dir.join("accounts"),
        format!("<sip:horn@127.0.0.1:{port}>;regint=0;answermode=auto\n"),
    )
    .expect("write baresip accounts");
    rec
}

/// Starts baresip as an auto-answering SIP horn on a free loopback port
/// and waits for its SIP port: `(child, port, recordings dir)`. A baresip
/// that exits or has not bound its port within 10 s (a port taken between
/// picking and binding, a slow start on a loaded machine) is killed and
/// started again on another port, at most 3 times; then the test fails with
/// baresip's own log.
pub fn start_baresip(dir: &std::path::Path) -> (KillOnDrop, u16, std::path::PathBuf) {
    let mut logs = String::new();
    for attempt in 1..=3 {
        let port = free_udp_port();
        let rec = baresip_config(dir, port);
        let log_path = dir.join(format!("baresip-{attempt}.log"));
        let log = std::fs::File::create(&log_path).expect("baresip log");
        let mut child = Command::new("baresip")
            .arg("-f")
            .arg(dir)
            .stdin(Stdio::piped()) // its menu reads stdin: keep it open, quiet
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn_killed("baresip");
        let hex = format!(":{port:04X} ");
        let start = Instant::now();
        let bound = loop {
            let up = std::fs::read_to_string("/proc/net/udp")
                .unwrap_or_default()
                .lines()
                .skip(1)
                .any(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .is_some_and(|a| format!("{a} ").contains(&hex))
                });
            if up {
                break true;
            }
            if child.try_wait().ok().flatten().is_some()
                || start.elapsed() > Duration::from_secs(10)
            {
                break false;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if bound {
            return (child, port, rec);
        }
        child.stop();
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        eprintln!("baresip attempt {attempt} did not bind UDP {port}: {text}");
        logs.push_str(&format!("attempt {attempt} (port {port}):\n{text}\n"));
    }
    panic!("baresip never bound its SIP port in 3 attempts:\n{logs}");
}

/// `tgw demo` in a child process on free ports, its own loopback /24 and
/// no multicast (so demos in parallel tests never see each other), with
/// its stderr collected; killed on drop.
pub struct DemoProc {
    child: KillOnDrop,
    /// The gateway's HTTP address (`127.0.0.1:PORT`).
    pub http: String,
    /// The data directory (gateway.toml, cli-token, the store).
    pub dir: tempfile::TempDir,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl DemoProc {
    /// Starts `tgw demo --cameras 12 --speakers 10` on `test_net(tag)` with
    /// admin password `demo-admin-pw` and waits (at most 90 s) for its
    /// banner.
    pub fn start(tag: u8) -> DemoProc {
        let dir = tempfile::tempdir().expect("tempdir");
        let http = format!("127.0.0.1:{}", free_tcp_port());
        let mut child = tgw()
            .args([
                "demo",
                "--cameras",
                "12",
                "--speakers",
                "10",
                "--seconds",
                "600",
            ])
            .args(["--http", &http, "--no-multicast"])
            .args(["--bind", &test_net(tag).to_string()])
            .args(["--wsd-port", &free_udp_port().to_string()])
            .arg("--data-dir")
            .arg(dir.path())
            .env("TGW_DEMO_ADMIN_PASSWORD", "demo-admin-pw")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn_killed("tgw demo");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (pipe, sink) = (child.stderr.take().expect("stderr"), stderr.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });
        let d = DemoProc {
            child,
            http,
            dir,
            stderr,
        };
        d.wait_banners(1);
        d
    }

    /// Everything the demo wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits (at most 90 s) until the banner has been printed `n` times.
    pub fn wait_banners(&self, n: usize) {
        wait_for(Duration::from_secs(90), "the demo's banner", || {
            (self.stderr().matches("Ctrl-C stops.").count() >= n).then_some(())
        });
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `gateway.toml` in the data directory.
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("gateway.toml")
    }

    /// The admin API token the demo wrote.
    pub fn token(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("cli-token"))
            .expect("cli-token")
            .trim()
            .to_string()
    }

    /// GET `path` with the admin token; the JSON answer (panics unless 200).
    pub fn get(&self, path: &str) -> serde_json::Value {
        let (status, body) =
            http_get_as(&self.http, path, Some(&self.token())).expect("demo HTTP answer");
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
    }
}
