//! Helpers for the end-to-end suites: the `tgw` binary, simulated townships
//! in child processes, unique loopback networks per test, and network
//! namespaces for peers that ignore loopback.
//!
//! Every test stays on 127.0.0.0/8 or inside namespaces it creates.
// These helpers drive child processes from synchronous tests; polling them
// needs a real sleep, which the library code's time-injection rule bans.
#![allow(clippy::disallowed_methods)]

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

/// Runs a command to completion, killing it after `limit`.
pub fn run_with_timeout(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
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
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A free TCP port on 127.0.0.1.
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A /24 of loopback addresses for one test, distinct per `tag` and process
/// (127.T.P.0/24, never 127.0.x.x which the demo uses).
pub fn test_net(tag: u8) -> Ipv4Addr {
    let p = (std::process::id() % 200) as u8 + 20;
    Ipv4Addr::new(127, tag.max(2), p, 1)
}

/// A simulated township running in a child `tgw sim` process.
pub struct SimProc {
    child: Child,
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
            .spawn()
            .expect("spawn tgw sim");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("manifest line");
        let manifest: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("manifest is not JSON ({e}): {line:?}"));
        SimProc { child, manifest }
    }

    /// The manifest's devices of a kind.
    pub fn devices(&self, kind: &str) -> Vec<serde_json::Value> {
        self.manifest["devices"]
            .as_array()
            .map(|a| a.iter().filter(|d| d["kind"] == kind).cloned().collect())
            .unwrap_or_default()
    }
}

impl Drop for SimProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
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
