//! `tgw run` whose stderr is a pipe with no reader left (a log collector
//! that died, `tgw … 2>&1 | head -1`): it keeps running, SIGTERM still stops
//! it gracefully, and what it wrote to its data directory is private (issue
//! 12: a closed stderr once made every log call panic, the signal task
//! died before cancelling, and only `kill -9` ended the process).

use std::os::unix::fs::PermissionsExt as _;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::time::timeout;

use tgw_e2e::*;

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_run_after_its_stderr_reader_is_gone() {
    let dir = tempfile::tempdir().expect("tmp");
    // Not there yet: the gateway creates it (0700) on first start.
    let data = dir.path().join("data");
    let http = format!("127.0.0.1:{}", free_tcp_port());
    let cfg = dir.path().join("gateway.toml");
    std::fs::write(
        &cfg,
        format!(
            "[gateway]\nsite = \"s\"\ndata_dir = \"{}\"\n[township]\ncode = \"s\"\nname = \"S\"\n\
             [discovery]\nenabled = false\n[http]\nlisten = \"{http}\"\n",
            data.display()
        ),
    )
    .expect("config");
    let mut child = tokio::process::Command::new(tgw_bin())
        .args(["run", "--config"])
        .arg(&cfg)
        .env_remove("TGW_LOG")
        .env_remove("TGW_ALLOW_OPEN_PERMISSIONS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("tgw run");
    let pid = child.id().expect("pid");

    // Read the log until the daemon is up, then close our end of the pipe.
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    let up = timeout(Duration::from_secs(30), async {
        while let Ok(Some(l)) = lines.next_line().await {
            let done = l.contains("http listening");
            seen.push(l);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(up, Ok(true)),
        "tgw run did not come up; its log:\n{}",
        seen.join("\n")
    );
    drop(lines);

    // Still serving with nobody reading its log.
    let health = tokio::task::spawn_blocking({
        let http = http.clone();
        move || http_get(&http, "/healthz")
    })
    .await
    .expect("join");
    assert_eq!(
        health.map(|(s, _)| s),
        Some(200),
        "/healthz after the close"
    );

    // Files in the data directory are for the gateway's user only.
    assert_eq!(mode(&data), 0o700, "data dir");
    for f in ["tgw.db", "secret.key"] {
        assert_eq!(mode(&data.join(f)), 0o600, "{f}");
    }
    let wal = data.join("tgw.db-wal");
    if wal.exists() {
        assert_eq!(mode(&wal), 0o600, "tgw.db-wal");
    }

    // SIGTERM: "shutting down" goes to the dead pipe; the process must end.
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .expect("kill");
    assert!(killed.success());
    match timeout(Duration::from_secs(15), child.wait()).await {
        Ok(status) => {
            let status = status.expect("wait");
            assert!(status.success(), "tgw run exited with {status}");
        }
        Err(_) => {
            let _ = child.start_kill();
            panic!("tgw run ignored SIGTERM with its stderr closed (killed after 15 s)");
        }
    }
}
