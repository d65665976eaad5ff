//! `tgw schedule check|list|show` and `tgw broadcast keygen|sign|verify`:
//! the real binary on the shipped example timetable and calendar, invalid
//! timetables (exit 2 naming key and line), and signed emergency commands
//! that the gateway's own verifier accepts, while tampered ones fail.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use tgw_e2e::*;

const LIMIT: Duration = Duration::from_secs(30);

fn run(args: &[&str], dir: Option<&Path>) -> Output {
    let mut c = tgw();
    c.args(args);
    if let Some(d) = dir {
        c.current_dir(d);
    }
    run_with_timeout(c, LIMIT)
}

fn ok_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn check_json(file: &Path, from: &str, to: &str) -> Value {
    let f = file.to_str().expect("utf-8 path");
    ok_json(&run(
        &["schedule", "check", f, "--from", from, "--to", to, "--json"],
        None,
    ))
}

/// The local dates (`YYYY-MM-DD`) on which `schedule` fires in a report.
fn dates_of(report: &Value, schedule: &str) -> Vec<String> {
    let mut d: Vec<String> = report["occurrences"]
        .as_array()
        .expect("occurrences")
        .iter()
        .filter(|o| o["schedule"] == schedule)
        .map(|o| o["local"].as_str().expect("local")[..10].to_string())
        .collect();
    d.dedup();
    d
}

fn example() -> std::path::PathBuf {
    workspace().join("config/timetable.example.toml")
}

/// National Day 2026 in the example calendar: 1-7 October are holidays
/// (Thursday to Wednesday) and Saturday 10 October is a swapped working
/// day. The example's `rest-days` schedule plays on every holiday and on
/// Sunday 11th, never on the working days 8, 9, 10 and 12; its RRULE
/// schedule ignores the calendar (Mondays and Thursdays, holidays too).
#[test]
fn example_timetable_follows_the_national_day_calendar() {
    let r = check_json(&example(), "2026-10-01", "2026-10-12");
    assert_eq!(r["time_zone"], "Asia/Shanghai");
    assert_eq!(r["scheme"], "winter");
    // --to is inclusive: the range ends at midnight after 12 October, local.
    assert_eq!(r["from"], "2026-09-30T16:00:00Z");
    assert_eq!(r["to"], "2026-10-12T16:00:00Z");
    let rest = dates_of(&r, "rest-day-fire-safety");
    let want: Vec<String> = [1, 2, 3, 4, 5, 6, 7, 11]
        .iter()
        .map(|d| format!("2026-10-{d:02}"))
        .collect();
    assert_eq!(rest, want);
    assert_eq!(
        dates_of(&r, "evening-mon-thu"),
        ["2026-10-01", "2026-10-05", "2026-10-08", "2026-10-12"]
    );
    // Two occurrences a rest day (09:00 and 16:00).
    let n = r["occurrences"]
        .as_array()
        .expect("occurrences")
        .iter()
        .filter(|o| o["schedule"] == "rest-day-fire-safety")
        .count();
    assert_eq!(n, 16);
}

/// The example's own `workdays` schedule in its range (January-April):
/// plays on the swapped working Sunday 4 January and Saturdays 14 and 28
/// February, not on the New Year or Spring Festival holidays.
#[test]
fn example_workday_schedule_plays_on_swapped_days_not_holidays() {
    let r = check_json(&example(), "2026-01-01", "2026-02-28");
    let days = dates_of(&r, "workday-morning");
    for swapped in ["2026-01-04", "2026-02-14", "2026-02-28"] {
        assert!(days.contains(&swapped.to_string()), "{swapped}: {days:?}");
    }
    for holiday in [
        "2026-01-01",
        "2026-01-02",
        "2026-02-16",
        "2026-02-17",
        "2026-02-20",
        "2026-02-23",
    ] {
        assert!(!days.contains(&holiday.to_string()), "{holiday}: {days:?}");
    }
    // An ordinary weekend is still rest, an ordinary Monday still work.
    assert!(!days.contains(&"2026-01-10".to_string()));
    assert!(days.contains(&"2026-01-05".to_string()));
    let occ = r["occurrences"]
        .as_array()
        .expect("occurrences")
        .iter()
        .find(|o| o["schedule"] == "workday-morning")
        .expect("an occurrence");
    assert_eq!(occ["local"], "2026-01-04T07:30:00");
    assert_eq!(occ["at"], "2026-01-03T23:30:00Z");
}

/// A `workdays` schedule over National Day with the example calendar:
/// Sunday 20 September and Saturday 10 October (swapped) play; the
/// Mid-Autumn Friday and 1-7 October do not.
#[test]
fn workday_schedule_plays_on_national_day_swaps() {
    let dir = tempfile::tempdir().expect("tmp");
    let cal = workspace().join("config/workdays-cn-2026.example.txt");
    let f = dir.path().join("tt.toml");
    std::fs::write(
        &f,
        format!(
            r#"calendar = "{}"

[[programme]]
id = "news"
items = [{{ tts = "早上好" }}]

[[schedule]]
id = "workday-news"
programme = "news"
targets = ["all"]
at = ["07:30"]
days = "workdays"
"#,
            cal.display()
        ),
    )
    .expect("write");
    let r = check_json(&f, "2026-09-19", "2026-10-12");
    let days = dates_of(&r, "workday-news");
    assert_eq!(
        days,
        [
            "2026-09-20",
            "2026-09-21",
            "2026-09-22",
            "2026-09-23",
            "2026-09-24",
            "2026-09-28",
            "2026-09-29",
            "2026-09-30",
            "2026-10-08",
            "2026-10-09",
            "2026-10-10",
            "2026-10-12"
        ]
    );
    assert!(
        r["warnings"].as_array().expect("warnings").is_empty(),
        "{}",
        r["warnings"]
    );
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

/// Runs `schedule check FILE` on an invalid file: exit 2, the message
/// names the file, key path and line, on stderr; `--json` gives the same
/// fields on stdout.
fn assert_invalid(file: &Path, path: &str, line: usize, says: &str) {
    let f = file.to_str().expect("utf-8");
    let out = run(&["schedule", "check", f], None);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{path} (line {line})")) && err.contains(says),
        "{err}"
    );
    assert!(err.contains("bad.toml"), "{err}");
    let out = run(&["schedule", "check", f, "--json"], None);
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json error");
    assert_eq!(v["valid"], false);
    assert_eq!(v["error"]["path"], path);
    assert_eq!(v["error"]["line"], line);
}

const PROGRAMME: &str = r#"[[programme]]
id = "morning-news"
items = [{ tts = "早上好" }]

"#;

/// A schedule naming a programme that does not exist.
#[test]
fn unknown_programme_exits_2_naming_key_and_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let f = write(
        dir.path(),
        "bad.toml",
        &format!(
            "{PROGRAMME}[[schedule]]\nid = \"a\"\nprogramme = \"morning-nws\"\ntargets = [\"all\"]\nat = [\"07:30\"]\n"
        ),
    );
    assert_invalid(&f, "schedule[0].programme", 7, "morning-nws");
}

/// RRULEs that are malformed, unsupported or can never fire.
#[test]
fn bad_rrules_exit_2_naming_key_and_line() {
    let dir = tempfile::tempdir().expect("tmp");
    for (rule, says) in [
        ("FREQ=WEEKLY;BYDAY=XX;BYHOUR=8", "XX"),
        ("FREQ=HOURLY;BYHOUR=8", "HOURLY"),
        ("FREQ=DAILY;BYMINUTE=5", "BYHOUR"),
        (
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30;BYHOUR=8",
            "never fires",
        ),
    ] {
        let f = write(
            dir.path(),
            "bad.toml",
            &format!(
                "{PROGRAMME}[[schedule]]\nid = \"ok\"\nprogramme = \"morning-news\"\ntargets = [\"all\"]\nat = [\"07:30\"]\n\n[[schedule]]\nid = \"b\"\nprogramme = \"morning-news\"\ntargets = [\"all\"]\nrrule = \"{rule}\"\n"
            ),
        );
        assert_invalid(&f, "schedule[1].rrule", 15, says);
    }
}

/// A calendar error is reported through the timetable, naming the
/// calendar's own line.
#[test]
fn bad_calendar_line_exits_2() {
    let dir = tempfile::tempdir().expect("tmp");
    write(
        dir.path(),
        "cal.txt",
        "2026-01-01 rest 元旦\n2026-02-30 work 不存在\n",
    );
    let f = write(
        dir.path(),
        "bad.toml",
        &format!("calendar = \"cal.txt\"\n\n{PROGRAMME}"),
    );
    let out = run(&["schedule", "check", f.to_str().expect("utf-8")], None);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("calendar (line 1)"), "{err}");
    assert!(
        err.contains("line 2") && err.contains("2026-02-30"),
        "{err}"
    );
}

/// With a speaker CSV, targets resolve to horns: counts per occurrence,
/// quiet hours per horn, and unknown targets are warned about.
#[test]
fn check_resolves_targets_against_a_speaker_csv() {
    let dir = tempfile::tempdir().expect("tmp");
    let csv = write(
        dir.path(),
        "speakers.csv",
        "id,kind,address,village,grid,zone\n\
         dongcun-square,rtp,10.0.0.1:5004,dongcun,,dongcun-mc\n\
         xinhe-gate,rtp,10.0.0.2:5004,,,xinhe\n\
         dongcun-school,rtp,10.0.0.3:5004,,,\n",
    );
    let out = run(
        &[
            "schedule",
            "check",
            example().to_str().expect("utf-8"),
            "--from",
            "2026-10-03",
            "--days",
            "1",
            "--speakers",
            csv.to_str().expect("utf-8"),
            "--json",
        ],
        None,
    );
    let r = ok_json(&out);
    assert_eq!(r["horns_known"], 3);
    let occ = r["occurrences"].as_array().expect("occurrences");
    assert_eq!(occ.len(), 2, "{occ:?}");
    for o in occ {
        assert_eq!(o["schedule"], "rest-day-fire-safety");
        // river-villages: village dongcun and the schools group
        // (dongcun-school and zone xinhe).
        assert_eq!(o["horns"], 3);
    }
    // 09:00 and 16:00 are outside every quiet window.
    assert!(occ.iter().all(|o| o["quiet"] == 0));
    let unknown = |r: &Value| -> Vec<String> {
        r["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .filter(|w| w["kind"] == "unknown-target")
            .filter_map(|w| w["message"].as_str().map(str::to_string))
            .collect()
    };
    assert!(unknown(&r).is_empty(), "{:?}", unknown(&r));

    // Without dongcun-school the schools group names no horn.
    let csv = write(
        dir.path(),
        "speakers.csv",
        "id,kind,address,village
dongcun-square,rtp,10.0.0.1:5004,dongcun
",
    );
    let r = ok_json(&run(
        &[
            "schedule",
            "check",
            example().to_str().expect("utf-8"),
            "--from",
            "2026-10-03",
            "--days",
            "1",
            "--speakers",
            csv.to_str().expect("utf-8"),
            "--json",
        ],
        None,
    ));
    let u = unknown(&r);
    assert!(
        u.iter()
            .any(|m| m.starts_with("group[0].targets[0]") && m.contains("speaker:dongcun-school")),
        "{u:?}"
    );
    assert!(r["occurrences"][0]["horns"] == 1, "{}", r["occurrences"]);
}

fn gateway_config(dir: &Path, extra: &str) -> std::path::PathBuf {
    write(
        dir,
        "gateway.toml",
        &format!(
            r#"[gateway]
site = "t"
id = "gw-t"
data_dir = "{}"

[township]
code = "t"
name = "T"

[[township.villages]]
code = "320115101"
name = "石塘村"

[[township.villages]]
code = "dongcun"
name = "东村"

[discovery]
enabled = false

{extra}
"#,
            dir.join("data").display()
        ),
    )
}

/// `list` and `show` read the timetable a gateway is configured with, and
/// `show` resolves targets against the speakers in its store.
#[test]
fn list_and_show_the_configured_timetable() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = gateway_config(
        dir.path(),
        &format!("[broadcast]\ntimetable = \"{}\"\n", example().display()),
    );
    let c = cfg.to_str().expect("utf-8");
    let v = ok_json(&run(&["schedule", "list", "--config", c, "--json"], None));
    assert_eq!(v["active_scheme"], "winter");
    let schemes = v["schemes"].as_array().expect("schemes");
    assert!(
        schemes
            .iter()
            .any(|s| s["id"] == "winter" && s["active"] == true)
    );
    assert!(
        schemes
            .iter()
            .any(|s| s["id"] == "summer" && s["active"] == false)
    );
    let sch = v["schedules"].as_array().expect("schedules");
    assert_eq!(sch.len(), 5);
    let by_id = |id: &str| {
        sch.iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("{id}"))
    };
    assert!(by_id("evening-mon-thu")["next"]["local"].is_string());
    assert_eq!(by_id("workday-morning-summer")["live"], false);
    assert!(by_id("workday-morning-summer")["next"].is_null());
    assert_eq!(v["programmes"].as_array().expect("programmes").len(), 4);

    let text = run(&["schedule", "list", "--config", c], None);
    assert!(text.status.success());
    let t = String::from_utf8_lossy(&text.stdout);
    assert!(t.contains("*  winter"), "{t}");
    assert!(t.contains("scheme summer is not active"), "{t}");

    // Horns in the store: one in the village, one in zone east.
    let csv = write(
        dir.path(),
        "sp.csv",
        "id,kind,address,village,zone\nh1,rtp,10.0.0.1:5004,dongcun,\nh2,rtp,10.0.0.2:5004,,xinhe\nh3,rtp,10.0.0.3:5004,,\n",
    );
    let imp = run(
        &[
            "speakers",
            "import",
            csv.to_str().expect("utf-8"),
            "--config",
            c,
        ],
        None,
    );
    assert!(imp.status.success(), "{imp:?}");
    let v = ok_json(&run(
        &[
            "schedule",
            "show",
            "evening-mon-thu",
            "--config",
            c,
            "--days",
            "8",
            "--json",
        ],
        None,
    ));
    assert_eq!(v["schedule"]["id"], "evening-mon-thu");
    assert_eq!(v["programme"]["id"], "evening-reminder");
    assert_eq!(v["horns_known"], 3);
    let occ = v["occurrences"].as_array().expect("occurrences");
    // Mondays and Thursdays: 2 or 3 in any 8 days.
    assert!((2..=3).contains(&occ.len()), "{occ:?}");
    for o in occ {
        assert_eq!(o["horns"], serde_json::json!(["h1", "h2"]));
    }
    // A programme id lists the schedules playing it.
    let v = ok_json(&run(
        &["schedule", "show", "fire-safety", "--config", c, "--json"],
        None,
    ));
    assert_eq!(v["programme"]["priority"], "township");
    assert_eq!(v["schedules"][0]["id"], "rest-day-fire-safety");
    let out = run(&["schedule", "show", "nope", "--config", c], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`nope`"));
}

// ---------------------------------------------------------------------------
// Signed emergency commands.

/// `keygen` in `dir`: returns the `[[broadcast.keys]]` entry printed and
/// the public key.
fn keygen(dir: &Path, prefix: &str) -> (String, String) {
    let out = run(&["broadcast", "keygen", "--out", prefix], Some(dir));
    assert!(out.status.success(), "{out:?}");
    let entry = String::from_utf8_lossy(&out.stdout).to_string();
    let public = entry
        .lines()
        .find_map(|l| l.strip_prefix("public_key = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("public_key line")
        .to_string();
    (entry, public)
}

fn sign(dir: &Path, args: &[&str]) -> String {
    let mut a = vec!["broadcast", "sign", "--key", "county-1.key"];
    a.extend_from_slice(args);
    let out = run(&a, Some(dir));
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Verifies `body` with `tgw broadcast verify --json` and the extra args;
/// returns the exit code and the JSON answer.
fn verify(dir: &Path, body: &str, args: &[&str]) -> (Option<i32>, Value) {
    let f = dir.join("body.json");
    std::fs::write(&f, body).expect("write");
    let mut a = vec!["broadcast", "verify", f.to_str().expect("utf-8"), "--json"];
    a.extend_from_slice(args);
    let out = run(&a, Some(dir));
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    (out.status.code(), v)
}

/// `keygen` writes a 0600 PKCS#8 key and prints a `[[broadcast.keys]]`
/// entry; pasted into a configuration, the gateway's verifier accepts what
/// `sign` makes and refuses a tampered payload, a swapped signature and a
/// target outside the key's scope.
#[test]
fn keygen_sign_verify_and_tampering() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let (entry, public) = keygen(d, "county-1");
    let meta = std::fs::metadata(d.join("county-1.key")).expect("key file");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let pem = std::fs::read_to_string(d.join("county-1.key")).expect("key");
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
    assert_eq!(
        std::fs::read_to_string(d.join("county-1.pub"))
            .expect("pub")
            .trim(),
        public
    );
    // A second keygen over the same prefix is refused.
    let again = run(&["broadcast", "keygen", "--out", "county-1"], Some(d));
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));

    let env = sign(
        d,
        &[
            "--key-id",
            "county-1",
            "--targets",
            "village:320115101",
            "--text",
            "江宁区防汛指挥部紧急通知：请低洼地带居民立即转移。",
            "--repeat",
            "2",
            "--id",
            "flood-1",
        ],
    );
    let e: Value = serde_json::from_str(&env).expect("envelope json");
    assert_eq!(e["key_id"], "county-1");
    assert!(e["payload"].is_string() && e["sig"].is_string());

    // The printed entry pasted into a configuration, scoped to all.
    let cfg = gateway_config(d, &entry);
    let c = cfg.to_str().expect("utf-8");
    let (code, v) = verify(d, &env, &["--config", c]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["valid"], true);
    assert_eq!(v["id"], "flood-1");
    assert_eq!(v["action"], "start");
    assert_eq!(v["priority"], "emergency");
    assert_eq!(v["repeat"], 2);
    assert_eq!(v["targets"], serde_json::json!(["village:320115101"]));
    assert!(v["text"].as_str().expect("text").starts_with("江宁区"));
    assert_eq!(v["nonce"].as_str().expect("nonce").len(), 32);
    // Each signing draws a fresh nonce.
    let env2 = sign(
        d,
        &["--key-id", "county-1", "--targets", "all", "--text", "演练"],
    );
    let e2: Value = serde_json::from_str(&env2).expect("envelope json");
    let (_, v2) = verify(d, &env2, &["--public-key", &public, "--key-id", "county-1"]);
    assert_eq!(v2["valid"], true, "{v2}");
    assert_ne!(v2["nonce"], v["nonce"]);

    // Tampered payload: one base64 character changed.
    let mut p: Vec<char> = e["payload"].as_str().expect("payload").chars().collect();
    p[20] = if p[20] == 'A' { 'B' } else { 'A' };
    let mut t = e.clone();
    t["payload"] = Value::String(p.into_iter().collect());
    let (code, v) = verify(d, &t.to_string(), &["--config", c]);
    assert_eq!(code, Some(1));
    assert_eq!(v["code"], "bad_signature", "{v}");
    // Another command's payload under this signature.
    let mut t = e.clone();
    t["payload"] = e2["payload"].clone();
    let (_, v) = verify(d, &t.to_string(), &["--config", c]);
    assert_eq!(v["code"], "bad_signature", "{v}");
    // Unsigned.
    let mut t = e.clone();
    t["sig"] = Value::String(String::new());
    let (_, v) = verify(d, &t.to_string(), &["--config", c]);
    assert_eq!(v["code"], "unsigned", "{v}");
    // Another key does not verify it.
    let (_, other) = keygen(d, "other");
    let (_, v) = verify(d, &env, &["--public-key", &other, "--key-id", "county-1"]);
    assert_eq!(v["code"], "bad_signature", "{v}");
    // Out of the key's scope.
    let scoped = gateway_config(
        d,
        &entry.replace("scope = [\"all\"]", "scope = [\"village:320115102\"]"),
    );
    let (_, v) = verify(d, &env, &["--config", scoped.to_str().expect("utf-8")]);
    assert_eq!(v["code"], "out_of_scope", "{v}");
}

/// `--mqtt-json` prints the whole `cmd/emergency` message body, which the
/// gateway's MQTT command parser accepts and whose params verify; `stop`
/// needs an id and no content.
#[test]
fn mqtt_command_body_passes_the_gateway_parser() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let (_, public) = keygen(d, "county-1");
    let body = sign(
        d,
        &[
            "--key-id",
            "county-1",
            "--targets",
            "all",
            "--action",
            "stop",
            "--id",
            "flood-1",
            "--mqtt-json",
            "--request-id",
            "r-17",
            "--valid-for",
            "2m",
            "--priority",
            "superior",
        ],
    );
    let b: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(b["request_id"], "r-17");
    assert_eq!(b["params"]["key_id"], "county-1");
    let (code, v) = verify(d, &body, &["--public-key", &public, "--key-id", "county-1"]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["action"], "stop");
    assert_eq!(v["id"], "flood-1");
    assert_eq!(v["priority"], "superior");
    assert!(v["text"].is_null());

    // Refusals before anything is signed.
    for (args, says) in [
        (vec!["--action", "stop"], "--id"),
        (vec!["--text", "x", "--valid-for", "25h"], "24h"),
        (vec![], "--text"),
    ] {
        let mut a = vec![
            "broadcast",
            "sign",
            "--key",
            "county-1.key",
            "--key-id",
            "county-1",
            "--targets",
            "all",
        ];
        a.extend(args);
        let out = run(&a, Some(d));
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
    }
}

/// Keys interoperate with OpenSSL (skipped without `openssl`): the public
/// key OpenSSL derives from `keygen`'s file is the one printed, and `sign`
/// takes a key made by `openssl genpkey`.
#[test]
fn keys_interoperate_with_openssl() {
    let has = std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has {
        eprintln!("skipped: no openssl");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let (_, public) = keygen(d, "county-1");
    let derive = |key: &str| -> String {
        let o = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "openssl pkey -in {key} -pubout -outform DER | tail -c 32 | base64"
            ))
            .current_dir(d)
            .output()
            .expect("sh");
        assert!(o.status.success(), "{o:?}");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(derive("county-1.key"), public);

    let g = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out", "ossl.pem"])
        .current_dir(d)
        .output()
        .expect("openssl");
    assert!(g.status.success(), "{g:?}");
    let ossl_pub = derive("ossl.pem");
    let out = run(
        &[
            "broadcast",
            "sign",
            "--key",
            "ossl.pem",
            "--key-id",
            "county-2",
            "--targets",
            "all",
            "--asset",
            &format!("sha256:{}", "ab".repeat(32)),
        ],
        Some(d),
    );
    assert!(out.status.success(), "{out:?}");
    let env = String::from_utf8_lossy(&out.stdout).to_string();
    let (code, v) = verify(
        d,
        &env,
        &["--public-key", &ossl_pub, "--key-id", "county-2"],
    );
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["asset"], format!("sha256:{}", "ab".repeat(32)));
}

/// The shipped examples agree: the timetable checked against the example
/// speaker CSV and gateway configuration over the whole of 2026 (the year
/// the example calendar covers) prints no warning at all: every target
/// names a horn, every schedule fires, no calendar gap. And the calendar
/// carries the State Council's 2026 dates (a sample of them).
#[test]
fn examples_check_clean_against_each_other() {
    let cfg = workspace().join("config");
    let path = |f: &str| cfg.join(f).to_str().expect("utf-8").to_string();
    let (tt, csv, gw) = (
        path("timetable.example.toml"),
        path("speakers.example.csv"),
        path("gateway.example.toml"),
    );
    let args = [
        "schedule",
        "check",
        &tt,
        "--speakers",
        &csv,
        "--config",
        &gw,
        "--from",
        "2026-01-01",
        "--to",
        "2026-12-31",
    ];
    // A year's report is larger than a pipe holds: read while it runs.
    let full = |a: &[&str]| tgw().args(a).output().expect("tgw schedule check");
    let out = full(&args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains(", 0 warnings; 6 horns known"), "{text}");
    assert!(!text.contains("warnings:"), "{text}");
    let mut json = args.to_vec();
    json.push("--json");
    let r = ok_json(&full(&json));
    assert_eq!(r["warnings"], serde_json::json!([]), "{}", r["warnings"]);
    assert_eq!(r["scheme"], "winter");
    // Every schedule of the active scheme reaches horns.
    let occ = r["occurrences"].as_array().expect("occurrences");
    assert!(occ.iter().all(|o| o["horns"].as_u64().unwrap_or(0) > 0));
    // The active scheme's morning notice runs through 2027.
    let r27 = check_json(
        &cfg.join("timetable.example.toml"),
        "2027-12-27",
        "2027-12-31",
    );
    assert!(!dates_of(&r27, "workday-morning").is_empty(), "{r27}");
    let cal = std::fs::read_to_string(cfg.join("workdays-cn-2026.example.txt")).expect("calendar");
    for line in [
        "2026-02-15..2026-02-23 rest",
        "2026-02-14 work",
        "2026-02-28 work",
        "2026-05-09 work",
        "2026-09-20 work",
        "2026-10-10 work",
    ] {
        assert!(cal.contains(line), "{line} missing from the calendar");
    }
    assert!(cal.contains("国务院办公厅关于2026年部分节假日安排的通知"));
}
