//! TLS and mutual TLS of the MQTT uplink against a real Mosquitto.
//!
//! Each test builds a throw-away PKI with the `openssl` CLI (a CA, a server
//! certificate for `IP:127.0.0.1`, a client certificate, and an unrelated
//! second CA), starts Mosquitto with a TLS listener that requires a client
//! certificate, and runs `tgw run` against it:
//! - the right CA and a client certificate: the retained birth arrives;
//! - the wrong CA, or no client certificate: no birth, a TLS error in the
//!   gateway's log, the gateway keeps retrying and exits only on SIGTERM.
//!
//! Outside CI a missing `openssl`/`mosquitto`/`mosquitto_sub` skips the
//! tests with a message; under CI (`CI=true`) it fails them.
// Polling child processes needs real sleeps.
#![allow(clippy::disallowed_methods)]
// Test helpers outside #[test] fns: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tgw_e2e::{free_tcp_port, mosquitto_bin, mqtt_config, tgw, wait_for};

const STATUS_TOPIC: &str = "tgw/v1/test-site/gw-t/status";

fn prerequisites() -> Option<PathBuf> {
    let has = |prog: &str, arg: &str| {
        Command::new(prog)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    let broker = mosquitto_bin();
    let missing = if !has("openssl", "version") {
        Some("the openssl CLI (run scripts/install-peers)")
    } else if broker.is_none() {
        Some("mosquitto (run scripts/install-peers)")
    } else if !has("mosquitto_sub", "--help") {
        Some("mosquitto_sub from mosquitto-clients (run scripts/install-peers)")
    } else {
        None
    };
    match missing {
        None => broker,
        Some(what) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI is missing a test prerequisite: {what}")
        }
        Some(what) => {
            eprintln!("SKIPPED: needs {what}");
            None
        }
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed P-256 CA `name.crt`/`name.key` in `dir`.
fn make_ca(dir: &Path, name: &str) {
    let (crt, key, subj) = (
        format!("{name}.crt"),
        format!("{name}.key"),
        format!("/CN=tgw test {name}"),
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-days",
            "2",
            "-subj",
            &subj,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// A leaf `name.crt`/`name.key` signed by CA `ca`, with the extensions `ext`.
fn make_leaf(dir: &Path, name: &str, ca: &str, cn: &str, ext: &str) {
    let ext_file = format!("{name}.ext");
    std::fs::write(dir.join(&ext_file), ext).unwrap();
    let (crt, key, csr, subj) = (
        format!("{name}.crt"),
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("/CN={cn}"),
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &subj,
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            &ext_file,
        ],
    );
}

/// The PKI, a TLS Mosquitto requiring client certificates, and a temp dir.
struct Rig {
    dir: tempfile::TempDir,
    broker: Child,
    port: u16,
}

impl Rig {
    fn start(mosquitto: &Path) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        make_ca(d, "ca");
        make_ca(d, "rogue-ca");
        make_leaf(
            d,
            "server",
            "ca",
            "127.0.0.1",
            "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        make_leaf(
            d,
            "client",
            "ca",
            "tgw-client",
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        );
        // Run as root, mosquitto drops to its own user: let it read here.
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let port = free_tcp_port();
        let p = |f: &str| d.join(f).display().to_string();
        let conf = format!(
            "listener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n\
             require_certificate true\nuse_identity_as_username true\nallow_anonymous true\n\
             persistence false\nlog_dest stderr\nlog_type all\n",
            p("ca.crt"),
            p("server.crt"),
            p("server.key"),
        );
        std::fs::write(d.join("mosquitto.conf"), conf).unwrap();
        let log = std::fs::File::create(d.join("mosquitto.log")).unwrap();
        let broker = Command::new(mosquitto)
            .arg("-c")
            .arg(d.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut rig = Rig { dir, broker, port };
        let addr = format!("127.0.0.1:{port}");
        wait_for(Duration::from_secs(10), "mosquitto to listen", || {
            if let Ok(Some(st)) = rig.broker.try_wait() {
                panic!("mosquitto exited ({st}):\n{}", rig.broker_log());
            }
            std::net::TcpStream::connect(&addr).ok()
        });
        rig
    }

    fn path(&self, f: &str) -> String {
        self.dir.path().join(f).display().to_string()
    }

    fn broker_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    /// Starts `tgw run` trusting `ca` (a file name in the rig's dir), with
    /// the client certificate when `client_cert`; stderr goes to `gw.log`.
    fn gateway(&self, ca: &str, client_cert: bool) -> Gateway {
        let d = self.dir.path();
        let mut extra = format!("ca_file = \"{}\"\n", self.path(ca));
        if client_cert {
            extra += &format!(
                "client_cert_file = \"{}\"\nclient_key_file = \"{}\"\n",
                self.path("client.crt"),
                self.path("client.key")
            );
        }
        extra += "\n[health]\nenabled = false\n";
        let data = d.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let url = format!("mqtts://127.0.0.1:{}", self.port);
        let cfg = d.join("gw.toml");
        std::fs::write(&cfg, mqtt_config(&data, &url, &extra)).unwrap();
        let log = d.join("gw.log");
        let child = tgw()
            .arg("run")
            .arg("--config")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Gateway { child, log }
    }

    /// The retained status seen by a mutual-TLS subscriber within `wait`
    /// seconds, if any.
    fn status(&self, wait: u32) -> Option<String> {
        let out = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["--cafile", &self.path("ca.crt")])
            .args(["--cert", &self.path("client.crt")])
            .args(["--key", &self.path("client.key")])
            .args(["-i", "tls-checker", "-t", STATUS_TOPIC, "-C", "1"])
            .args(["-W", &wait.to_string()])
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (!s.is_empty()).then_some(s)
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = self.broker.kill();
        let _ = self.broker.wait();
    }
}

/// A `tgw run` child, killed on drop.
struct Gateway {
    child: Child,
    log: PathBuf,
}

impl Gateway {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then asserts a clean exit within 10 s.
    fn terminate(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let st = wait_for(Duration::from_secs(10), "the gateway to exit", || {
            self.child.try_wait().unwrap()
        });
        assert!(st.success(), "gateway exited with {st}:\n{}", self.log());
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A refused TLS session: no birth, the gateway names a TLS/certificate
/// error, keeps retrying (several connections at the broker), keeps
/// running, and exits cleanly on SIGTERM.
fn assert_refused(rig: &Rig, gw: Gateway, expect_in_log: &[&str]) {
    let logs = || format!("gateway:\n{}\nbroker:\n{}", gw.log(), rig.broker_log());
    let start = std::time::Instant::now();
    let line = loop {
        let l = gw.log();
        if let Some(line) = l.lines().find(|l| l.contains("mqtt connect failed")) {
            break line.to_ascii_lowercase();
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no connect error in the log after 15 s\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("gateway log: {line}");
    assert!(
        expect_in_log.iter().any(|w| line.contains(w)),
        "the connect error should name {expect_in_log:?}: {line}"
    );
    // Backoff is 100 ms..1 s: within a few seconds the gateway retried.
    let start = std::time::Instant::now();
    while rig.broker_log().matches("New connection from").count() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the gateway did not retry within 15 s\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(rig.status(2), None, "no birth over a refused TLS session");
    let mut gw = gw;
    assert!(
        gw.child.try_wait().unwrap().is_none(),
        "the gateway must keep running:\n{}",
        gw.log()
    );
    gw.terminate();
}

#[test]
fn mutual_tls_with_the_right_ca_brings_up_the_session() {
    let Some(mosquitto) = prerequisites() else {
        return;
    };
    let rig = Rig::start(&mosquitto);
    let gw = rig.gateway("ca.crt", true);
    let birth = rig.status(20).unwrap_or_else(|| {
        panic!(
            "no birth over mutual TLS\ngateway:\n{}\nbroker:\n{}",
            gw.log(),
            rig.broker_log()
        )
    });
    let v: serde_json::Value = serde_json::from_str(&birth).unwrap();
    assert_eq!(v["online"], true, "{birth}");
    assert!(
        rig.broker_log().contains("tgw-client"),
        "the broker should see the client certificate's identity:\n{}",
        rig.broker_log()
    );
    gw.terminate();
}

#[test]
fn gateway_trusting_the_wrong_ca_refuses_the_broker() {
    let Some(mosquitto) = prerequisites() else {
        return;
    };
    let rig = Rig::start(&mosquitto);
    let gw = rig.gateway("rogue-ca.crt", true);
    assert_refused(&rig, gw, &["certificate", "unknownissuer", "tls"]);
}

#[test]
fn gateway_without_a_client_certificate_is_refused() {
    let Some(mosquitto) = prerequisites() else {
        return;
    };
    let rig = Rig::start(&mosquitto);
    let gw = rig.gateway("ca.crt", false);
    assert_refused(&rig, gw, &["certificate", "tls", "alert", "handshake"]);
}
