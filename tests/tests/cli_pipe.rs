//! Every listing command piped into a reader that goes away: `tgw … | head
//! -1` exits 0 without "Broken pipe" on stderr (before, `println!` panicked
//! with exit 101). Two readers: one that closes its end before the command
//! writes (the write must fail with EPIPE, deterministically), and one that
//! reads a line and closes, as `head -1` does.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use tgw_e2e::*;

/// Runs `tgw args` with stdout a pipe whose read end is closed at once;
/// returns (exit code, stderr).
fn closed_at_once(args: &[String]) -> (Option<i32>, String) {
    let mut c = tgw();
    c.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("TGW_TOKEN");
    let mut child = c.spawn_killed("tgw");
    drop(child.stdout.take());
    finish(child)
}

/// Runs `tgw args`, reads one line of its stdout and closes the pipe;
/// returns (exit code, stderr, the line).
fn head_1(args: &[String]) -> (Option<i32>, String, String) {
    let mut c = tgw();
    c.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("TGW_TOKEN");
    let mut child = c.spawn_killed("tgw");
    let mut line = String::new();
    let _ = BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line);
    let (code, err) = finish(child);
    (code, err, line)
}

fn finish(mut child: KillOnDrop) -> (Option<i32>, String) {
    wait_for(Duration::from_secs(30), "the command to finish", || {
        child.try_wait().expect("wait").map(|_| ())
    });
    let out = child.wait_with_output().expect("output");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_listing_command_survives_a_closed_pipe() {
    let demo = DemoProc::start(80);
    let dd = demo.dir.path().display().to_string();
    let cfg = demo.config().display().to_string();
    let example = workspace().join("config/timetable.example.toml");
    let ex = example.display().to_string();
    let cmds: Vec<Vec<String>> = [
        vec!["status", "--config", &cfg],
        vec!["status", "--config", &cfg, "--json"],
        vec!["devices", "list", "--data-dir", &dd],
        vec!["devices", "list", "--data-dir", &dd, "--json"],
        vec!["speakers", "list", "--data-dir", &dd],
        vec!["speakers", "list", "--data-dir", &dd, "--json"],
        vec!["user", "list", "--data-dir", &dd],
        vec!["user", "list", "--data-dir", &dd, "--json"],
        vec!["user", "token", "admin", "--list", "--data-dir", &dd],
        vec![
            "user",
            "token",
            "admin",
            "--list",
            "--json",
            "--data-dir",
            &dd,
        ],
        vec!["schedule", "list", "--config", &cfg],
        vec!["schedule", "check", &ex],
        vec!["schedule", "check", &ex, "--json"],
        vec!["check-config", &cfg],
    ]
    .iter()
    .map(|v| v.iter().map(|s| s.to_string()).collect())
    .collect();
    for args in &cmds {
        let what = args.join(" ");
        let (code, err) = closed_at_once(args);
        assert_eq!(code, Some(0), "tgw {what} (pipe closed at once): {err}");
        assert!(
            !err.contains("Broken pipe") && !err.contains("panicked"),
            "tgw {what}: {err}"
        );
        let (code, err, line) = head_1(args);
        assert_eq!(code, Some(0), "tgw {what} | head -1: {err}");
        assert!(
            !err.contains("Broken pipe") && !err.contains("panicked"),
            "tgw {what}: {err}"
        );
        assert!(!line.trim().is_empty(), "tgw {what} printed nothing");
    }
    // The same through a real shell pipeline, as the issue tried it.
    for sub in [
        "status --config",
        "devices list --config",
        "speakers list --config",
    ] {
        let sh = format!(
            "set -o pipefail; '{}' {sub} '{cfg}' | head -1",
            tgw_bin().display()
        );
        let out = Command::new("bash")
            .args(["-c", &sh])
            .output()
            .expect("bash");
        assert!(
            out.status.success(),
            "{sub} | head -1: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!String::from_utf8_lossy(&out.stderr).contains("Broken pipe"));
    }
}

/// Progress (`tgw discover`, `tgw backup`) is drawn on a terminal only:
/// with stdout and stderr pipes, and with `--json`, no escape code comes
/// out, and `--json` output is plain JSON.
#[test]
fn no_progress_codes_in_pipes_or_json() {
    let port = free_udp_port().to_string();
    let out = tgw()
        .args([
            "discover",
            "--json",
            "--no-multicast",
            "--cidr",
            "127.77.0.0/30",
            "--port",
            &port,
            "--timeout",
            "0.2",
        ])
        .output()
        .expect("tgw discover");
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{so}{se}");
    assert!(
        !so.contains('\x1b') && !se.contains('\x1b'),
        "{so:?} {se:?}"
    );
    let v: serde_json::Value = serde_json::from_str(&so).expect("plain JSON on stdout");
    assert!(v.is_array(), "{v}");

    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("gateway.toml");
    std::fs::write(
        &cfg,
        format!(
            "[gateway]\nsite = \"p\"\ndata_dir = \"{}\"\n[township]\ncode = \"p\"\nname = \"青山镇\"\n[discovery]\nenabled = false\n",
            dir.path().join("data").display()
        ),
    )
    .expect("config");
    let users = tgw()
        .args(["user", "list", "--config"])
        .arg(&cfg)
        .output()
        .expect("tgw user list");
    assert!(users.status.success(), "the data directory is created");
    let out = tgw()
        .args(["backup", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(dir.path().join("b.tgwb"))
        .output()
        .expect("tgw backup");
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{so}{se}");
    assert!(so.contains("backup written"), "{so}");
    assert!(
        !so.contains('\x1b') && !se.contains('\x1b'),
        "{so:?} {se:?}"
    );
}
