//! The dashboard's JavaScript, checked without a browser in a second or
//! two: tests/browser/check-dashboard.mjs parses every module as an ES
//! module, checks named imports against exports, both languages' keys,
//! every literal `t('key')`, and that every health reason, rung, error code
//! and audit action of the Rust side has words in zh-CN and English.
//! Needs only `node` (skipped without it, except under `CI=true`).

use std::process::Command;

use tgw_e2e::workspace;

#[test]
fn dashboard_modules_and_translations_check() {
    if Command::new("node").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "node missing under CI"
        );
        eprintln!("SKIPPED dashboard_modules_and_translations_check: node missing");
        return;
    }
    let out = Command::new("node")
        .arg(workspace().join("tests/browser/check-dashboard.mjs"))
        .output()
        .expect("node");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "check-dashboard failed:\n{text}");
    assert!(
        text.contains("check-dashboard:") && text.contains(": ok"),
        "{text}"
    );
}
