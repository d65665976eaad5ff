//! The deploy kit (issue 16): the systemd unit passes `systemd-analyze
//! verify`; `tgw run` speaks systemd's notify protocol (READY=1 once HTTP
//! answers, WATCHDOG=1 while it runs, STOPPING=1 on SIGTERM); SIGHUP applies
//! a changed reloadable key and refuses a non-reloadable one by name.

use std::io::Read;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tgw_e2e::*;

/// Waits up to `limit` for a datagram on `sock` whose text satisfies `want`.
fn recv_until(sock: &UnixDatagram, limit: Duration, want: &str) -> Vec<String> {
    let start = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    while start.elapsed() < limit {
        if let Ok(n) = sock.recv(&mut buf) {
            let s = String::from_utf8_lossy(&buf[..n]).to_string();
            let done = s == want;
            seen.push(s);
            if done {
                return seen;
            }
        }
    }
    panic!("no {want} within {limit:?}; got {seen:?}");
}

fn config(dir: &std::path::Path, http: &str, level: &str) -> String {
    format!(
        r#"[gateway]
site = "deploy-test"
data_dir = "{data}"
[log]
level = "{level}"
[township]
code = "deploy-test"
name = "部署测试镇"
[[township.villages]]
code = "dongcun"
name = "东村"
[discovery]
enabled = false
[http]
listen = "{http}"
"#,
        data = dir.join("data").display()
    )
}

fn kill(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig} {pid}");
}

#[test]
fn systemd_unit_verifies() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "CI is missing systemd-analyze (scripts/install-peers)"
        );
        eprintln!("SKIPPED: needs systemd-analyze (run scripts/install-peers)");
        return;
    }
    let unit = std::fs::read_to_string(workspace().join("deploy/tgw.service")).expect("unit");
    for want in [
        "Type=notify",
        "WatchdogSec=",
        "ProtectSystem=strict",
        "StateDirectory=tgw",
        "ConfigurationDirectory=tgw",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(unit.contains(want), "unit lacks {want:?}");
    }
    // verify checks that ExecStart exists: point it at the built binary.
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("tgw.service");
    let bin = tgw_bin();
    std::fs::write(
        &path,
        unit.replace("/usr/bin/tgw", &bin.display().to_string()),
    )
    .expect("w");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify failed: {err}");
    // Unknown keys and bad values are only warnings: refuse them too.
    let own: Vec<&str> = err.lines().filter(|l| l.contains("tgw.service")).collect();
    assert!(
        own.is_empty(),
        "systemd-analyze warns about the unit: {err}"
    );
}

#[test]
fn run_notifies_systemd_and_reloads_on_sighup() {
    let dir = tempfile::tempdir().expect("tmp");
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind notify socket");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let http = format!("127.0.0.1:{}", free_tcp_port());
    let cfg = dir.path().join("gateway.toml");
    std::fs::write(&cfg, config(dir.path(), &http, "info")).expect("cfg");
    let log = dir.path().join("stderr.log");
    let mut child = tgw()
        .args(["run", "--config"])
        .arg(&cfg)
        .env("NOTIFY_SOCKET", &sock_path)
        // 400 ms: a ping every 200 ms.
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("tgw run");
    let pid = child.id();

    let seen = recv_until(&sock, Duration::from_secs(30), "READY=1");
    assert_eq!(seen, vec!["READY=1"], "READY=1 comes first");
    // READY means HTTP is up: it answers at once.
    let (code, _) = http_get(&http, "/healthz").expect("HTTP answers once READY=1 was sent");
    assert_eq!(code, 200);
    recv_until(&sock, Duration::from_secs(5), "WATCHDOG=1");
    recv_until(&sock, Duration::from_secs(5), "WATCHDOG=1");

    let read_log = || {
        let mut s = String::new();
        std::fs::File::open(&log)
            .expect("log")
            .read_to_string(&mut s)
            .expect("read log");
        s
    };
    assert!(
        !read_log().contains("watchdog ping"),
        "debug lines are off at level info"
    );

    // A reloadable key: log.level goes to debug, live.
    std::fs::write(&cfg, config(dir.path(), &http, "debug")).expect("cfg");
    kill(pid, "-HUP");
    wait_for(
        Duration::from_secs(10),
        "the reload to apply log.level",
        || {
            let l = read_log();
            (l.contains("configuration reloaded") && l.contains("applied=log.level")).then_some(())
        },
    );
    wait_for(
        Duration::from_secs(10),
        "debug lines after the reload",
        || read_log().contains("watchdog ping").then_some(()),
    );

    // A key that needs a restart: refused by name, the old port still serves.
    let other = format!("127.0.0.1:{}", free_tcp_port());
    std::fs::write(&cfg, config(dir.path(), &other, "debug")).expect("cfg");
    kill(pid, "-HUP");
    let refusal = wait_for(Duration::from_secs(10), "the refusal", || {
        read_log()
            .lines()
            .find(|l| l.contains("reload refused"))
            .map(str::to_string)
    });
    assert!(refusal.contains("http.listen"), "{refusal}");
    assert!(!refusal.contains("log.level"), "{refusal}");
    assert!(
        http_get(&http, "/healthz").is_some(),
        "still on the old port"
    );
    assert!(http_get(&other, "/healthz").is_none(), "not on the new one");

    // SIGTERM: STOPPING=1, then a clean exit.
    kill(pid, "-TERM");
    recv_until(&sock, Duration::from_secs(10), "STOPPING=1");
    let status = wait_for(Duration::from_secs(15), "tgw to exit", || {
        child.try_wait().expect("wait")
    });
    assert!(status.success(), "{status:?}\n{}", read_log());
}
