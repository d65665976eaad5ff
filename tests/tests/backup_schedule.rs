//! The `[backup]` schedule of `tgw run` (issue 16.3): a destination that
//! cannot be written is counted and reported in `/metrics` with no archive
//! left; a writable one gets an encrypted archive at start that
//! `tgw restore` reads back; an unset `passphrase_env` stops the start.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tgw_e2e::*;

/// Writes `dir/gateway.toml`: discovery off, backups into
/// `backup_dir` every hour (2 kept), encrypted with `$TGW_TEST_BACKUP_PASS`.
fn config(dir: &Path, http: &str, backup_dir: &Path) -> PathBuf {
    GatewayConfig::new(dir.join("data"))
        .site("backup-test")
        .township("backup-test", "备份测试镇")
        .no_discovery()
        .http(http)
        .section(
            "[backup]",
            &format!(
                "dir = \"{}\"\nevery_hours = 1\nkeep = 2\n\
                 passphrase_env = \"TGW_TEST_BACKUP_PASS\"",
                backup_dir.display()
            ),
        )
        .write(dir.join("gateway.toml"))
}

fn start(cfg: &Path, http: &str, log: &Path) -> Gateway {
    GatewayStart::new(cfg, http)
        .env("TGW_TEST_BACKUP_PASS", "sched-pass-1")
        .log(log)
        .start()
}

fn metrics_with(http: &str, want: &[&str]) -> String {
    wait_for(
        Duration::from_secs(30),
        &format!("/metrics with {want:?}"),
        || {
            http_get(http, "/metrics").and_then(|(c, b)| {
                (c == 200 && want.iter().all(|w| b.lines().any(|l| l == *w))).then_some(b)
            })
        },
    )
}

#[test]
fn an_unwritable_destination_is_reported_and_leaves_no_archive() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let http = format!("127.0.0.1:{}", free_tcp_port());
    let cfg = config(dir.path(), &http, &blocker.join("backups"));
    let log = dir.path().join("run.log");
    let _run = start(&cfg, &http, &log);
    metrics_with(
        &http,
        &[
            "tgw_backup_runs_total{result=\"io\"} 1",
            "tgw_backup_failing 1",
            "tgw_backup_last_success_timestamp_seconds 0",
            "tgw_backup_interval_seconds 3600",
        ],
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("backup failed") && text.contains("a-file"),
        "{text}"
    );
    assert!(!text.contains("sched-pass-1"), "passphrase in the log");
    assert_eq!(std::fs::read(&blocker).unwrap(), b"not a directory");
}

#[test]
fn an_unset_passphrase_variable_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let http = format!("127.0.0.1:{}", free_tcp_port());
    let cfg = config(dir.path(), &http, &dir.path().join("b"));
    let mut cmd = tgw();
    cmd.args(["run", "--config"])
        .arg(&cfg)
        .env_remove("TGW_TEST_BACKUP_PASS");
    let out = run_with_timeout(cmd, Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("TGW_TEST_BACKUP_PASS"), "{err}");
    assert!(!dir.path().join("b").exists());
}

#[test]
fn a_scheduled_archive_is_whole_private_and_restores_elsewhere() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    let http = format!("127.0.0.1:{}", free_tcp_port());
    let cfg = config(dir.path(), &http, &backups);
    let mut run = start(&cfg, &http, &dir.path().join("run.log"));
    let m = metrics_with(
        &http,
        &[
            "tgw_backup_runs_total{result=\"ok\"} 1",
            "tgw_backup_failing 0",
        ],
    );
    assert!(
        !m.contains("tgw_backup_last_success_timestamp_seconds 0\n"),
        "{m}"
    );
    run.stop();
    let names: Vec<String> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(
        names[0].starts_with("tgw-") && names[0].ends_with("Z.tgwbak"),
        "{names:?}"
    );
    let archive = backups.join(&names[0]);
    assert_eq!(
        std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let restore = |pass: &str| {
        let mut c = tgw()
            .arg("restore")
            .arg(&archive)
            .arg("--data-dir")
            .arg(dir.path().join("elsewhere"))
            .arg("--passphrase-stdin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn_killed("tgw restore");
        use std::io::Write;
        c.stdin
            .take()
            .unwrap()
            .write_all(format!("{pass}\n").as_bytes())
            .unwrap();
        let out = c.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (ok, text) = restore("not-it");
    assert!(!ok && text.contains("wrong passphrase"), "{text}");
    let (ok, text) = restore("sched-pass-1");
    assert!(ok, "{text}");
    assert!(dir.path().join("elsewhere/gateway.toml.restored").exists());
}
