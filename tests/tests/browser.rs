//! The dashboard in a real browser: Debian's Chromium driven by
//! `playwright-core` (tests/browser/suite.mjs) against `tgw run` and a
//! simulated township (`tgw sim`) on loopback. The suite logs in, sees the
//! overview, adopts a discovered camera into a village from the inbox,
//! watches it go offline live (SSE, no reload) when the simulator stops it,
//! and switches language. Screenshots go to `target/browser-artifacts/`.
//!
//! Prerequisites (scripts/install-peers): `/usr/bin/chromium`, `node`, and
//! `tests/browser/node_modules/playwright-core`. Without them the test is
//! skipped with a message, except under `CI=true`, where it fails.

use std::process::{Command, Stdio};
use std::time::Duration;

use tgw_e2e::*;

fn prerequisites() -> Result<(), String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !std::path::Path::new(&chromium).exists() {
        return Err(format!("{chromium} missing (apt install chromium)"));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Err("node missing (apt install nodejs)".into());
    }
    let pw = workspace().join("tests/browser/node_modules/playwright-core");
    if !pw.exists() {
        return Err(format!("{} missing (scripts/install-peers)", pw.display()));
    }
    Ok(())
}

#[test]
fn dashboard_in_chromium() {
    if let Err(why) = prerequisites() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "browser suite prerequisites missing under CI: {why}"
        );
        eprintln!("SKIPPED dashboard_in_chromium: {why}");
        return;
    }
    let base = test_net(66);
    let o = base.octets();
    let cidr = format!("{}.{}.{}.0/24", o[0], o[1], o[2]);
    let (wsd, control, http) = (free_udp_port(), free_tcp_port(), free_tcp_port());
    let control = format!("127.0.0.1:{control}");
    let http = format!("127.0.0.1:{http}");
    let sim = SimProc::start(&[
        "--cameras",
        "3",
        "--bind",
        &base.to_string(),
        "--wsd-port",
        &wsd.to_string(),
        "--no-multicast",
        "--password",
        "pw-browser",
        "--username",
        "admin",
        "--control",
        &control,
    ]);
    let cam = sim.devices("camera").into_iter().next().expect("a camera");
    let (sim_id, sim_addr) = (
        cam["id"].as_str().expect("id").to_string(),
        cam["address"].as_str().expect("address").to_string(),
    );
    let dir = tempfile::tempdir().expect("tmp");
    // No auto_adopt rule: discovered cameras wait in the inbox.
    let cfg = format!(
        r#"
[gateway]
site = "qingshan"
data_dir = "{data}"
[township]
code = "qingshan"
name = "青山镇"
[[township.villages]]
code = "dongcun"
name = "东村"
grids = [{{ code = "dongcun-1", name = "东村第一网格" }}]
[discovery]
interval_secs = 10
multicast = false
cidrs = ["{cidr}"]
unicast_port = {wsd}
wait_ms = 500
[health]
check_interval_secs = 1
describe_interval_secs = 5
sample_interval_secs = 30
sample_ms = 500
call_timeout_ms = 1000
[[credential_groups]]
name = "batch"
username = "admin"
password = "pw-browser"
subnets = ["{cidr}"]
[http]
listen = "{http}"
"#,
        data = dir.path().display()
    );
    let cfg_path = dir.path().join("gateway.toml");
    std::fs::write(&cfg_path, cfg).expect("config");
    let password = "browser-Admin-pw";
    let mut add = tgw()
        .args(["user", "add", "admin", "--role", "admin", "--config"])
        .arg(&cfg_path)
        .stdin(Stdio::piped())
        .spawn()
        .expect("tgw user add");
    {
        use std::io::Write;
        let mut stdin = add.stdin.take().expect("stdin");
        writeln!(stdin, "{password}").expect("write password");
    }
    assert!(
        add.wait().expect("tgw user add").success(),
        "tgw user add failed"
    );
    // A loudspeaker: an RTP "horn" that is a UDP socket held by this test.
    let horn = std::net::UdpSocket::bind("127.0.0.1:0").expect("horn socket");
    let horn_addr = horn.local_addr().expect("horn addr");
    let csv = dir.path().join("speakers.csv");
    std::fs::write(
        &csv,
        format!("id,name,kind,address,village,username,password\nspk-browser,东村广场,rtp,{horn_addr},dongcun,horn,spk-browser-Secret\n"),
    )
    .expect("speakers csv");
    let imported = tgw()
        .args(["speakers", "import"])
        .arg(&csv)
        .arg("--config")
        .arg(&cfg_path)
        .status()
        .expect("tgw speakers import");
    assert!(imported.success(), "tgw speakers import failed");
    let log = std::fs::File::create(dir.path().join("gateway.log")).expect("log");
    let mut gw = tgw()
        .args(["run", "--config"])
        .arg(&cfg_path)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("tgw run");
    wait_for(Duration::from_secs(20), "gateway ready", || {
        http_get(&http, "/readyz").filter(|(s, _)| *s == 200)
    });
    let artifacts = workspace().join("target/browser-artifacts");
    let mut node = Command::new("node");
    node.arg(workspace().join("tests/browser/suite.mjs"))
        .env("BASE", format!("http://{http}"))
        .env("CONTROL", &control)
        .env("USER_NAME", "admin")
        .env("PASS", password)
        .env("SIM_ID", &sim_id)
        .env("SIM_ADDR", &sim_addr)
        .env("ARTIFACTS", &artifacts);
    let out = run_with_timeout(node, Duration::from_secs(120));
    let _ = gw.kill();
    let _ = gw.wait();
    drop(sim);
    drop(horn);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{stderr}");
    let logs = std::fs::read_to_string(dir.path().join("gateway.log")).unwrap_or_default();
    assert!(
        !logs.contains(password)
            && !logs.contains("pw-browser")
            && !logs.contains("spk-browser-Secret"),
        "a password reached the gateway log"
    );
    assert!(
        out.status.success(),
        "browser suite failed (screenshots in {}); gateway log tail:\n{}",
        artifacts.display(),
        logs.lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
