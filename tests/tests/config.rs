//! `tgw check-config`: the annotated example passes; errors name key and line.

use std::time::Duration;

use tgw_e2e::*;

/// The shipped example is valid.
#[test]
fn example_config_checks() {
    let mut c = tgw();
    c.args(["check-config"])
        .arg(workspace().join("config/gateway.example.toml"));
    let out = run_with_timeout(c, Duration::from_secs(20));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(": ok"));
}

/// A typo'd key fails with exit 2, naming the key and its line.
#[test]
fn typo_names_key_and_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let text = std::fs::read_to_string(workspace().join("config/gateway.example.toml"))
        .expect("example")
        .replace("probe_repeats = 3", "probe_repeat = 3");
    let line = text
        .lines()
        .position(|l| l.starts_with("probe_repeat "))
        .expect("line")
        + 1;
    let f = dir.path().join("bad.toml");
    std::fs::write(&f, text).expect("write");
    let mut c = tgw();
    c.arg("check-config").arg(&f);
    let out = run_with_timeout(c, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("probe_repeat"), "{err}");
    assert!(err.contains(&format!("line {line}")), "{err}");
}
