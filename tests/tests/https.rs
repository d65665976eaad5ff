//! HTTPS for the dashboard and API (`[http] tls`): a real `tgw run` served
//! over TLS, driven by curl (`--cacert` with the generated certificate) and
//! openssl (`s_client`: the served certificate's fingerprint).

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tgw_e2e::*;

/// Writes `dir/gateway.toml`: discovery and health off, `[http]` on
/// `http` with the `tls` keys.
fn config(dir: &Path, http: &str, tls: &str) -> std::path::PathBuf {
    GatewayConfig::new(dir)
        .no_discovery()
        .no_health()
        .http(http)
        .section("[http]", tls)
        .write(dir.join("gateway.toml"))
}

/// curl over HTTPS trusting only `ca`: (status line + headers, body).
fn curl(ca: &Path, args: &[&str]) -> Option<(String, String)> {
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "10", "--cacert"])
        .arg(ca)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.to_string(), body.to_string()))
}

/// A certificate file that does not exist stops `tgw run` at start with
/// an error naming the file.
#[test]
fn a_missing_certificate_file_is_a_startup_error_naming_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let http = format!("127.0.0.1:{}", free_tcp_port());
    let missing = dir.path().join("no-such-cert.pem");
    let cfg = config(
        dir.path(),
        &http,
        &format!(
            "tls = \"files\"\ntls_cert_file = \"{}\"\ntls_key_file = \"{}/key.pem\"",
            missing.display(),
            dir.path().display()
        ),
    );
    let mut cmd = tgw();
    cmd.args(["run", "--config"]).arg(&cfg);
    let out = run_with_timeout(cmd, Duration::from_secs(30));
    assert!(
        !out.status.success(),
        "tgw run started without its certificate"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-cert.pem") && err.contains("certificate file"),
        "{err}"
    );
}

/// Self-signed: garbage on the TLS port is dropped and the server keeps
/// serving; a login over HTTPS (curl trusting only the generated
/// certificate) sets a `Secure` cookie with HSTS, and the cookie works;
/// the fingerprint logged at start is the served certificate's; a restart
/// reuses the certificate.
#[test]
fn self_signed_https_login_garbage_and_fingerprint() {
    if !have("curl") || !have("openssl") {
        eprintln!("skipped: curl or openssl missing");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let port = free_tcp_port();
    let http = format!("127.0.0.1:{port}");
    let cfg = config(dir.path(), &http, "tls = \"self-signed\"");
    let _ = api_token_as(&cfg, "op", "operator");
    let log = dir.path().join("stderr.log");
    // Not `start_gateway`: it waits for plain HTTP, this one serves TLS.
    let start = || {
        tgw()
            .args(["run", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn_killed("tgw run")
    };
    let mut child = start();
    let ca = dir.path().join("https-self-signed.crt");
    let url = |p: &str| format!("https://{http}{p}");
    wait_for(Duration::from_secs(30), "https /readyz", || {
        curl(&ca, &[&url("/readyz")]).filter(|(h, _)| h.starts_with("HTTP/1.1 200"))
    });

    // Garbage on the TLS port: the connection is dropped, nothing answers.
    let mut s = std::net::TcpStream::connect(&http).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff garbage \x16\x03")
        .expect("write");
    let mut buf = Vec::new();
    let r = s.read_to_end(&mut buf);
    assert!(
        r.is_ok() || buf.is_empty(),
        "garbage connection not closed: {r:?}"
    );
    assert!(
        !String::from_utf8_lossy(&buf).contains("HTTP/1.1 200"),
        "{buf:?}"
    );

    // A login over HTTPS: Secure cookie, HSTS, and the cookie works.
    let (head, body) = curl(
        &ca,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"user":"op","password":"e2e-viewer-password"}"#,
            &url("/api/v1/login"),
        ],
    )
    .expect("login over https");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{body}");
    let lower = head.to_ascii_lowercase();
    let cookie_line = lower
        .lines()
        .find(|l| l.starts_with("set-cookie: tgw_session="))
        .expect("session cookie");
    assert!(cookie_line.contains("; secure"), "{cookie_line}");
    assert!(
        lower.contains("strict-transport-security: max-age="),
        "{head}"
    );
    let cookie = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or(l.strip_prefix("Set-Cookie: "))
        })
        .and_then(|c| c.split(';').next())
        .expect("cookie value")
        .to_string();
    let (head, body) = curl(
        &ca,
        &["-H", &format!("Cookie: {cookie}"), &url("/api/v1/session")],
    )
    .expect("session");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body.contains("\"op\""), "{body}");

    // The fingerprint in the log is the served certificate's.
    let served = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect {http} -servername localhost </dev/null 2>/dev/null \
             | openssl x509 -noout -fingerprint -sha256"
        ))
        .output()
        .expect("openssl");
    let served = String::from_utf8_lossy(&served.stdout);
    let fp = served
        .trim()
        .split_once('=')
        .map(|(_, f)| f.to_string())
        .expect("openssl fingerprint");
    assert_eq!(fp.len(), 95, "{served}");
    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(
        logged.contains(&fp),
        "fingerprint {fp} not in the log:\n{logged}"
    );

    // A restart reuses the certificate.
    child.stop();
    let mut child = start();
    wait_for(Duration::from_secs(30), "https /readyz again", || {
        curl(&ca, &[&url("/readyz")]).filter(|(h, _)| h.starts_with("HTTP/1.1 200"))
    });
    child.stop();
    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(logged.contains(&fp), "certificate changed on restart");
}
