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

/// The gateway of these tests, its data in `data`, logging at `level`.
fn config(data: &std::path::Path, http: &str, level: &str) -> String {
    GatewayConfig::new(data)
        .site("deploy-test")
        .township("deploy-test", "部署测试镇")
        .village("dongcun", "东村", &[])
        .section("[log]", &format!("level = \"{level}\""))
        .no_discovery()
        .http(http)
        .render()
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
    std::fs::write(&cfg, config(&dir.path().join("data"), &http, "info")).expect("cfg");
    let log = dir.path().join("stderr.log");
    let mut child = tgw()
        .args(["run", "--config"])
        .arg(&cfg)
        .env("NOTIFY_SOCKET", &sock_path)
        // 400 ms: a ping every 200 ms.
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        // Not `start_gateway`, which polls HTTP first: READY=1 must come
        // before anyone asked.
        .spawn_killed("tgw run");
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
    std::fs::write(&cfg, config(&dir.path().join("data"), &http, "debug")).expect("cfg");
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
    std::fs::write(&cfg, config(&dir.path().join("data"), &other, "debug")).expect("cfg");
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

/// Runs a maintainer script against the throw-away root `root`, with
/// `adduser`, `deluser`, `getent`, `chown` and `systemctl` replaced by shims
/// that log their arguments to `calls` (and `getent` answering from it).
fn maint(script: &std::path::Path, args: &[&str], root: &std::path::Path, shims: &std::path::Path) {
    let path = format!(
        "{}:{}",
        shims.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .arg(script)
        .args(args)
        .env("DPKG_ROOT", root)
        .env("PATH", path)
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn debian_package_builds_and_its_scripts_install_upgrade_and_purge() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tmp");
    let out = Command::new("sh")
        .arg(workspace().join("deploy/build-deb.sh"))
        .arg(tgw_bin())
        .arg(dir.path())
        .env("TGW_DEB_FAST", "1")
        .output()
        .expect("build-deb.sh");
    assert!(
        out.status.success(),
        "build-deb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deb = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let info = Command::new("dpkg-deb")
        .args(["-I", &deb])
        .output()
        .expect("dpkg-deb -I");
    let info = String::from_utf8_lossy(&info.stdout);
    for want in [
        "Package: tgw",
        "Depends: adduser",
        "postinst",
        "prerm",
        "postrm",
        "conffiles",
    ] {
        assert!(info.contains(want), "{want} missing in\n{info}");
    }
    let list = Command::new("dpkg-deb")
        .args(["-c", &deb])
        .output()
        .expect("dpkg-deb -c");
    let list = String::from_utf8_lossy(&list.stdout);
    for want in [
        "-rwxr-xr-x root/root",
        "./usr/bin/tgw",
        "./lib/systemd/system/tgw.service",
        "-rw-r----- root/root",
        "./etc/tgw/gateway.toml",
        "./usr/share/doc/tgw/examples/gateway.example.toml",
    ] {
        assert!(list.contains(want), "{want} missing in\n{list}");
    }
    let root = dir.path().join("root");
    let ok = Command::new("dpkg-deb")
        .args(["-R", &deb])
        .arg(&root)
        .status()
        .expect("dpkg-deb -R")
        .success();
    assert!(ok);
    let conffiles = std::fs::read_to_string(root.join("DEBIAN/conffiles")).expect("conffiles");
    assert_eq!(conffiles.trim(), "/etc/tgw/gateway.toml");
    // The binary is stripped (smaller than the build's) and runs.
    let built = std::fs::metadata(tgw_bin()).expect("bin").len();
    let packed = std::fs::metadata(root.join("usr/bin/tgw"))
        .expect("packed")
        .len();
    assert!(packed < built, "stripped: {packed} < {built}");
    eprintln!("stripped binary in the .deb: {packed} bytes (from {built})");
    let v = Command::new(root.join("usr/bin/tgw"))
        .arg("--version")
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("tgw "));
    let check = Command::new(root.join("usr/bin/tgw"))
        .arg("check-config")
        .arg(root.join("etc/tgw/gateway.toml"))
        .output()
        .expect("check-config");
    assert!(check.status.success(), "the shipped config is valid");

    // Maintainer scripts against the throw-away root, with logging shims.
    let shims = dir.path().join("shims");
    std::fs::create_dir(&shims).expect("shims");
    let calls = dir.path().join("calls.log");
    let shim = |name: &str, body: &str| {
        let p = shims.join(name);
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\necho \"{name} $*\" >> '{}'\n{body}\n",
                calls.display()
            ),
        )
        .expect("shim");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    };
    let log_path = calls.display().to_string();
    shim(
        "getent",
        &format!("grep -q '^adduser' '{log_path}' && ! grep -q '^deluser' '{log_path}'"),
    );
    shim("adduser", "");
    shim("deluser", "");
    shim("chown", "");
    shim("systemctl", "");
    let script = |s: &str| root.join("DEBIAN").join(s);
    let calls_text = || std::fs::read_to_string(&calls).unwrap_or_default();
    // Fresh install.
    maint(&script("postinst"), &["configure", ""], &root, &shims);
    let data = root.join("var/lib/tgw");
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&root.join("etc/tgw/gateway.toml")), 0o640);
    let c = calls_text();
    assert_eq!(c.matches("adduser --system").count(), 1, "{c}");
    assert!(
        c.contains("chown tgw:tgw") && c.contains("chown root:tgw"),
        "{c}"
    );
    // Upgrade: the user exists, the data stays.
    std::fs::write(data.join("tgw.db"), b"data").expect("db");
    maint(&script("prerm"), &["upgrade", "0.1.1"], &root, &shims);
    maint(&script("postinst"), &["configure", "0.1.0"], &root, &shims);
    assert_eq!(calls_text().matches("adduser").count(), 1, "no second user");
    assert!(data.join("tgw.db").exists(), "upgrade keeps the data");
    // Remove keeps data and config; purge deletes them and the user.
    maint(&script("prerm"), &["remove"], &root, &shims);
    maint(&script("postrm"), &["remove"], &root, &shims);
    assert!(data.join("tgw.db").exists() && root.join("etc/tgw/gateway.toml").exists());
    maint(&script("postrm"), &["purge"], &root, &shims);
    assert!(!data.exists() && !root.join("etc/tgw").exists());
    assert!(
        calls_text().contains("deluser --system tgw"),
        "{}",
        calls_text()
    );
    // With systemd running: enable+start on install, try-restart on upgrade.
    let post = std::fs::read_to_string(script("postinst")).expect("postinst");
    assert!(
        post.contains("systemctl enable tgw.service")
            && post.contains("systemctl try-restart tgw.service")
    );
}

#[test]
fn compose_file_and_board_parse() {
    let compose = workspace().join("deploy/compose.yaml");
    let docker_ok = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let out = if docker_ok {
        Command::new("docker")
            .args(["compose", "-f"])
            .arg(&compose)
            .arg("config")
            .output()
            .expect("docker compose config")
    } else {
        // No compose plugin here: a YAML parse and the services it must have.
        Command::new("python3")
            .args([
                "-c",
                "import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); print(' '.join(sorted(d['services'])))",
            ])
            .arg(&compose)
            .output()
            .expect("python3")
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for svc in ["grafana", "mosquitto", "prometheus", "tgw"] {
        assert!(text.contains(svc), "{svc} missing: {text}");
    }
    let docker =
        std::fs::read_to_string(workspace().join("deploy/Dockerfile")).expect("Dockerfile");
    for want in [
        "USER tgw",
        "VOLUME [\"/var/lib/tgw\"]",
        "HEALTHCHECK",
        "/readyz",
        "AS build",
    ] {
        assert!(docker.contains(want), "Dockerfile lacks {want}");
    }
    let cfg = workspace().join("deploy/docker/gateway.toml");
    let check = tgw()
        .arg("check-config")
        .arg(&cfg)
        .output()
        .expect("check-config");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

/// `tgw` with `stdin_text` on stdin; returns (success, stdout + stderr).
fn tgw_stdin(args: &[&std::ffi::OsStr], stdin_text: &str) -> (bool, String) {
    use std::io::Write;
    let mut c = tgw()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn_killed("tgw");
    if let Some(mut s) = c.stdin.take() {
        let _ = s.write_all(stdin_text.as_bytes());
    }
    let out = c.wait_with_output().expect("wait");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn backup_of_a_running_gateway_restores_elsewhere() {
    use std::ffi::OsStr;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tmp");
    let http = format!("127.0.0.1:{}", free_tcp_port());
    let cfg = dir.path().join("gateway.toml");
    std::fs::write(&cfg, config(&dir.path().join("data"), &http, "info")).expect("cfg");
    let token = api_token_as(&cfg, "alice", "admin");
    let mut run = start_gateway(&cfg, &http);
    let (code, users) = http_get_as(&http, "/api/v1/users", Some(&token)).expect("users");
    assert_eq!(code, 200, "{users}");

    // Backup while it runs, encrypted.
    let archive = dir.path().join("tgw.bak");
    let (ok, text) = tgw_stdin(
        &[
            OsStr::new("backup"),
            OsStr::new("--config"),
            cfg.as_os_str(),
            OsStr::new("--out"),
            archive.as_os_str(),
            OsStr::new("--passphrase-stdin"),
        ],
        "backup-pass-1\n",
    );
    assert!(ok, "{text}");
    run.stop();
    let mode = std::fs::metadata(&archive)
        .expect("archive")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let bytes = std::fs::read(&archive).expect("read");
    assert!(
        !bytes.windows(5).any(|w| w == b"alice"),
        "the archive is encrypted"
    );

    let restore = |file: &std::path::Path, target: &std::path::Path, pass: &str, force: bool| {
        let mut args = vec![
            OsStr::new("restore"),
            file.as_os_str(),
            OsStr::new("--data-dir"),
            target.as_os_str(),
            OsStr::new("--passphrase-stdin"),
        ];
        if force {
            args.push(OsStr::new("--force"));
        }
        tgw_stdin(&args, &format!("{pass}\n"))
    };
    let new_dir = dir.path().join("elsewhere");
    let (ok, text) = restore(&archive, &new_dir, "not-it", false);
    assert!(!ok && text.contains("wrong passphrase"), "{text}");
    let cut = dir.path().join("cut.bak");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("cut");
    let (ok, text) = restore(&cut, &new_dir, "backup-pass-1", false);
    assert!(!ok && text.contains("truncated"), "{text}");
    assert!(!text.contains("backup-pass-1"), "no passphrase in errors");
    let (ok, text) = restore(&archive, &dir.path().join("data"), "backup-pass-1", false);
    assert!(!ok && text.contains("not empty"), "{text}");
    let (ok, text) = restore(&archive, &new_dir, "backup-pass-1", false);
    assert!(ok, "{text}");

    // A gateway on the restored directory knows the same users and tokens.
    let http2 = format!("127.0.0.1:{}", free_tcp_port());
    let cfg2 = dir.path().join("restored.toml");
    std::fs::write(&cfg2, config(&new_dir, &http2, "info")).expect("cfg2");
    let mut run2 = start_gateway(&cfg2, &http2);
    let (code, users2) = http_get_as(&http2, "/api/v1/users", Some(&token)).expect("users");
    run2.stop();
    assert_eq!(code, 200, "the old token works: {users2}");
    assert_eq!(users2, users);
}

/// The .deb under a real systemd (`deploy/test-systemd.sh`): systemd boots
/// as PID 1 in throw-away namespaces over an overlay of `/`; the package
/// installs, `systemctl start` returns on READY=1, WATCHDOG=1 pings arrive,
/// an admin logs in over HTTPS to the self-signed certificate, `systemctl
/// reload` applies log.level in place, a reinstall keeps the edited conffile
/// and restarts, `systemctl stop` ends cleanly and purge leaves nothing.
/// Runs as root where systemd can boot (CI); skipped with the reason
/// otherwise.
#[test]
fn deb_installs_and_runs_under_a_booted_systemd() {
    let uid = Command::new("id").arg("-u").output().expect("id -u");
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        eprintln!("SKIPPED: needs root to boot systemd in namespaces");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let out = Command::new("sh")
        .arg(workspace().join("deploy/build-deb.sh"))
        .arg(tgw_bin())
        .arg(dir.path())
        .env("TGW_DEB_FAST", "1")
        .output()
        .expect("build-deb.sh");
    assert!(
        out.status.success(),
        "build-deb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deb = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let run = Command::new("timeout")
        .arg("150")
        .arg(workspace().join("deploy/test-systemd.sh"))
        .arg(&deb)
        .arg(dir.path().join("box"))
        .output()
        .expect("test-systemd.sh");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    if run.status.code() == Some(77) {
        eprintln!("SKIPPED: {}", stdout.trim());
        return;
    }
    eprintln!("{stdout}");
    assert!(
        run.status.success() && stdout.trim_end().ends_with("PASS"),
        "deploy/test-systemd.sh: {:?}\n{stdout}\n{stderr}",
        run.status
    );
}
