//! The monitoring kit (issue 16): `promtool check rules` and `promtool test
//! rules` on deploy/prometheus; then a real Prometheus scrapes `tgw demo`
//! on loopback until every expression of the Grafana board and of the alert
//! rules (with its threshold taken off) returns data, and every rule
//! evaluates without error. A rule whose selector matches nothing could
//! never fire: that is a defect this test catches.

// Polling child processes with a deadline needs a real sleep between polls.
#![allow(clippy::disallowed_methods)]

use std::process::{Command, Stdio};
use std::time::Duration;

use tgw_e2e::*;

fn have_prometheus() -> bool {
    let ok = Command::new("promtool").arg("--version").output().is_ok()
        && Command::new("prometheus").arg("--version").output().is_ok();
    if !ok {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "CI is missing prometheus/promtool (scripts/install-peers)"
        );
        eprintln!("SKIPPED: needs prometheus and promtool (run scripts/install-peers)");
    }
    ok
}

#[test]
fn alert_rules_check_and_pass_their_unit_tests() {
    if !have_prometheus() {
        return;
    }
    let dir = workspace().join("deploy/prometheus");
    for args in [
        vec!["check", "rules", "tgw-rules.yml"],
        vec!["test", "rules", "tgw-rules.test.yml"],
    ] {
        let out = Command::new("promtool")
            .args(&args)
            .current_dir(&dir)
            .output()
            .expect("promtool");
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every `expr` of the board, `$instance` matching all.
fn board_exprs() -> Vec<String> {
    let text = std::fs::read_to_string(workspace().join("deploy/grafana/tgw-township.json"))
        .expect("board");
    let board: serde_json::Value = serde_json::from_str(&text).expect("board is JSON");
    let mut out = Vec::new();
    for p in board["panels"].as_array().expect("panels") {
        let title = p["title"].as_str().expect("title");
        assert!(
            title
                .chars()
                .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
            "panel title has Chinese: {title}"
        );
        for t in p["targets"].as_array().expect("targets") {
            out.push(t["expr"].as_str().expect("expr").replace("$instance", ".*"));
        }
    }
    out
}

/// Every alert rule's expression with its numeric comparisons taken off
/// (`x > 0.3` → `x`): what must return data for the rule to be able to fire.
fn rule_exprs() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(workspace().join("deploy/prometheus/tgw-rules.yml"))
        .expect("rules");
    let cmp = regex::Regex::new(r"\s*(==|!=|>=|<=|>|<)\s*[0-9.]+").expect("re");
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("expr: "))
        .map(|e| (e.to_string(), cmp.replace_all(e, "").to_string()))
        .collect()
}

fn query(prom: &str, expr: &str) -> Option<serde_json::Value> {
    let mut q = String::new();
    for b in expr.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            q.push(b as char);
        } else {
            q.push_str(&format!("%{b:02X}"));
        }
    }
    let (code, body) = http_get(prom, &format!("/api/v1/query?query={q}"))?;
    assert_eq!(code, 200, "{expr}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    Some(v["data"]["result"].clone())
}

#[test]
fn prometheus_scraping_the_demo_feeds_every_board_and_rule_expression() {
    if !have_prometheus() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let http = format!("127.0.0.1:{}", free_tcp_port());
    let demo = tgw()
        .args([
            "demo",
            "--cameras",
            "12",
            "--speakers",
            "3",
            "--http",
            &http,
        ])
        .args(["--seconds", "120", "--data-dir"])
        .arg(dir.path().join("data"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("demo.log")).expect("log"))
        .spawn_killed("tgw demo");
    wait_for(Duration::from_secs(60), "the demo's /metrics", || {
        http_get(&http, "/metrics").filter(|(c, b)| *c == 200 && b.contains("tgw_cameras{"))
    });
    let rules = dir.path().join("tgw-rules.yml");
    std::fs::copy(workspace().join("deploy/prometheus/tgw-rules.yml"), &rules).expect("copy");
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: tgw\n    static_configs:\n      - targets: ['{http}']\n",
            rules.display()
        ),
    )
    .expect("cfg");
    let prom = format!("127.0.0.1:{}", free_tcp_port());
    let _prom = Command::new("prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={prom}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("prom.log")).expect("log"))
        .spawn_killed("prometheus");
    let mut exprs: Vec<(String, String)> =
        board_exprs().into_iter().map(|e| (e.clone(), e)).collect();
    exprs.extend(rule_exprs());
    assert!(exprs.len() > 15, "{exprs:?}");
    // Until every expression returns a series (rates need two scrapes).
    let missing = |exprs: &[(String, String)]| -> Vec<String> {
        exprs
            .iter()
            .filter(|(_, q)| {
                query(&prom, q).is_none_or(|r| r.as_array().is_none_or(|a| a.is_empty()))
            })
            .map(|(e, _)| e.clone())
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut left = exprs.clone();
    loop {
        let m = missing(&left);
        left.retain(|(e, _)| m.contains(e));
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expressions without data after 60 s of scraping: {left:#?}\ndemo log: {}",
            std::fs::read_to_string(dir.path().join("demo.log")).unwrap_or_default()
        );
        // Poll again after about one scrape.
        std::thread::sleep(Duration::from_millis(500));
    }
    // Every rule evaluates without error.
    let (_, body) = http_get(&prom, "/api/v1/rules").expect("rules api");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    let rules: Vec<serde_json::Value> = v["data"]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(rules.len(), rule_exprs().len(), "{body}");
    for r in rules {
        assert_eq!(r["health"], "ok", "rule {} failed: {r}", r["name"]);
    }
    drop(demo);
}
