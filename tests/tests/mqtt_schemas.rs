//! Messages published by the gateway, and replies to good and bad commands,
//! validated against `docs/schemas/*.json` on a real Mosquitto.
//!
//! The validator below implements the subset of JSON Schema 2020-12 the
//! schemas use (`type`, `required`, `properties`, `additionalProperties`,
//! `enum`, `const`, `pattern`, `minimum`, `items`, boolean schemas and the
//! `date-time` format); an unknown keyword fails the test so the subset
//! cannot silently grow.
#![allow(clippy::disallowed_methods)]
// Test helpers outside #[test] fns: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tgw_e2e::{Mosquitto, MqttSub, SpawnKilled, mqtt_config, mqtt_pump_bin, wait_for, workspace};

fn schema(name: &str) -> Value {
    let p = workspace()
        .join("docs/schemas")
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn date_time() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
            .unwrap()
    })
}

fn validate(s: &Value, v: &Value, path: &str, errs: &mut Vec<String>) {
    let obj = match s {
        Value::Bool(true) => return,
        Value::Bool(false) => return errs.push(format!("{path}: not allowed")),
        Value::Object(o) => o,
        _ => return errs.push(format!("{path}: bad schema")),
    };
    for (k, kw) in obj {
        match k.as_str() {
            "$schema" | "$id" | "title" | "description" => {}
            "type" => {
                let types: Vec<&str> = match kw {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                    _ => vec![],
                };
                let ok = types.iter().any(|t| match *t {
                    "object" => v.is_object(),
                    "array" => v.is_array(),
                    "string" => v.is_string(),
                    "integer" => v.is_i64() || v.is_u64(),
                    "number" => v.is_number(),
                    "boolean" => v.is_boolean(),
                    "null" => v.is_null(),
                    _ => false,
                });
                if !ok {
                    errs.push(format!("{path}: {v} is not {types:?}"));
                }
            }
            "required" => {
                for r in kw
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if v.is_object() && v.get(r).is_none() {
                        errs.push(format!("{path}: `{r}` is required"));
                    }
                }
            }
            "properties" => {
                if let (Some(props), Some(o)) = (kw.as_object(), v.as_object()) {
                    for (name, sub) in props {
                        if let Some(x) = o.get(name) {
                            validate(sub, x, &format!("{path}.{name}"), errs);
                        }
                    }
                }
            }
            "additionalProperties" => {
                let props = obj.get("properties").and_then(Value::as_object);
                if let Some(o) = v.as_object() {
                    for (name, x) in o {
                        if props.is_none_or(|p| !p.contains_key(name)) {
                            validate(kw, x, &format!("{path}.{name}"), errs);
                        }
                    }
                }
            }
            "enum" => {
                if !kw.as_array().is_some_and(|a| a.contains(v)) {
                    errs.push(format!("{path}: {v} not in {kw}"));
                }
            }
            "const" => {
                if kw != v {
                    errs.push(format!("{path}: {v} != {kw}"));
                }
            }
            "pattern" => {
                if let (Some(p), Some(x)) = (kw.as_str(), v.as_str())
                    && !regex::Regex::new(p).unwrap().is_match(x)
                {
                    errs.push(format!("{path}: {x:?} does not match {p}"));
                }
            }
            "minimum" => {
                if let (Some(m), Some(x)) = (kw.as_f64(), v.as_f64())
                    && x < m
                {
                    errs.push(format!("{path}: {x} < {m}"));
                }
            }
            "items" => {
                for (i, x) in v.as_array().into_iter().flatten().enumerate() {
                    validate(kw, x, &format!("{path}[{i}]"), errs);
                }
            }
            "format" => {
                if kw == "date-time" && v.as_str().is_some_and(|x| !date_time().is_match(x)) {
                    errs.push(format!("{path}: {v} is not an RFC 3339 date-time"));
                }
            }
            other => errs.push(format!("{path}: validator does not know keyword `{other}`")),
        }
    }
}

fn check(name: &str, v: &Value) {
    let mut errs = Vec::new();
    validate(&schema(name), v, name, &mut errs);
    assert!(errs.is_empty(), "{v} against {name}.json: {errs:?}");
}

fn schema_for(topic: &str) -> Option<&'static str> {
    let rest = topic.splitn(5, '/').nth(4)?;
    Some(match rest {
        "status" => "status",
        "alarm" => "alarm",
        r if r.starts_with("reply/") => "reply",
        r if r.starts_with("cmd/") => "command",
        r if r.starts_with("broadcast/") && r.contains("/horn/") => "broadcast-horn",
        r if r.starts_with("broadcast/") => "broadcast",
        r if r.starts_with("speaker/") && r.ends_with("/state") => "speaker-state",
        r if r.ends_with("/state") => "camera-state",
        r if r.ends_with("/meta") => "camera-meta",
        r if r.ends_with("/event") => "camera-event",
        _ => return None,
    })
}

/// The validator itself rejects what it should (so the test can fail).
#[test]
fn validator_rejects_bad_messages() {
    let mut errs = Vec::new();
    validate(
        &schema("reply"),
        &json!({"seq": 0, "status": "maybe", "x": 1}),
        "r",
        &mut errs,
    );
    assert!(errs.len() >= 5, "{errs:?}");
    check(
        "command",
        &json!({"request_id": "r-1", "params": {"camera": "cam-1"}}),
    );
}

#[test]
fn published_messages_and_replies_match_the_schemas() {
    let _ = mqtt_pump_bin();
    let Some(broker) = Mosquitto::start() else {
        eprintln!("SKIPPED: mosquitto not installed (run scripts/install-peers)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gateway.toml");
    std::fs::write(
        &cfg,
        mqtt_config(
            &dir.path().join("data"),
            &broker.url(),
            "command_max_bytes = 1024\n",
        ),
    )
    .unwrap();
    let sub = MqttSub::start(broker.port, "tgw/v1/#", "schema-checker", dir.path());
    let mut pump = Command::new(mqtt_pump_bin())
        .arg(&cfg)
        .args([
            "--cameras",
            "3",
            "--interval-ms",
            "200",
            "--publish-secs",
            "600",
        ])
        .stdout(Stdio::null())
        .spawn_killed("mqtt_pump");
    let prefix = "tgw/v1/test-site/gw-t";
    wait_for(Duration::from_secs(30), "the birth", || {
        sub.lines()
            .iter()
            .any(|(t, p)| t.ends_with("/status") && p.contains("\"online\":true"))
            .then_some(())
    });
    let cmds: &[(&str, String)] = &[
        (
            "probe",
            r#"{"request_id":"ok-1","params":{"camera":"cam-0001"}}"#.into(),
        ),
        (
            "probe",
            r#"{"request_id":"rej-1","params":{"camera":"cam-missing"}}"#.into(),
        ),
        ("rediscover", r#"{"request_id":"acc-1"}"#.into()),
        ("reboot", r#"{"request_id":"unk-1"}"#.into()),
        ("probe", r#"{"request_id":"bad-1","params":{}}"#.into()),
        ("probe", "this is not json".into()),
        (
            "probe",
            format!(
                r#"{{"request_id":"big-1","params":{{"camera":"{}"}}}}"#,
                "x".repeat(2000)
            ),
        ),
    ];
    for (m, body) in cmds {
        let st = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &broker.port.to_string(), "-q", "1"])
            .args(["-t", &format!("{prefix}/cmd/{m}"), "-m", body])
            .status()
            .unwrap();
        assert!(st.success());
    }
    // A message on a topic below cmd/ that is not a method level is ignored.
    let _ = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &broker.port.to_string(),
            "-t",
            &format!("{prefix}/cmd/a/b"),
            "-m",
            "{}",
        ])
        .status();
    let expect = [
        ("reply/ok-1", "result"),
        ("reply/rej-1", "rejected"),
        ("reply/acc-1", "accepted"),
        ("reply/unk-1", "error"),
        ("reply/bad-1", "error"),
    ];
    wait_for(Duration::from_secs(20), "all replies", || {
        let lines = sub.lines();
        let n_invalid = lines
            .iter()
            .filter(|(t, _)| t.ends_with("reply/_invalid"))
            .count();
        (expect
            .iter()
            .all(|(t, _)| lines.iter().any(|(lt, _)| lt.ends_with(t)))
            && n_invalid >= 2)
            .then_some(())
    });
    pump.terminate(Duration::from_secs(30));
    // The offline status is published before the pump exits, but the
    // subscriber may not have printed it yet: wait for it, then read.
    wait_for(Duration::from_secs(10), "the shutdown status", || {
        sub.lines()
            .iter()
            .rev()
            .find(|(t, _)| t.ends_with("/status"))
            .filter(|(_, p)| p.contains("\"reason\":\"shutdown\""))
            .map(|_| ())
    });
    let lines = sub.lines();
    let mut counts = std::collections::BTreeMap::new();
    for (topic, payload) in &lines {
        if topic.contains("/cmd/") {
            continue; // the centre's own commands, good and bad, echoed by the wildcard
        }
        let v: Value =
            serde_json::from_str(payload).unwrap_or_else(|e| panic!("{topic}: {e}: {payload}"));
        let name = schema_for(topic).unwrap_or_else(|| panic!("no schema for topic {topic}"));
        check(name, &v);
        *counts.entry(name).or_insert(0) += 1;
        for (t, status) in &expect {
            if topic.ends_with(t) {
                assert_eq!(v["status"], *status, "{topic}: {v}");
            }
        }
    }
    // The well-formed commands sent above match the command schema.
    for (_, body) in &cmds[..3] {
        check("command", &serde_json::from_str(body).unwrap());
    }
    for name in [
        "status",
        "camera-state",
        "camera-meta",
        "camera-event",
        "reply",
    ] {
        assert!(
            counts.contains_key(name),
            "no {name} message seen: {counts:?}"
        );
    }
    // The clean stop left a retained offline status.
    let last_status = lines
        .iter()
        .rev()
        .find(|(t, _)| t.ends_with("/status"))
        .unwrap();
    assert!(
        last_status.1.contains("\"reason\":\"shutdown\""),
        "{}",
        last_status.1
    );
}

/// Issue 14.5: a township notice plays on 23 simulated horns, an emergency
/// preempts it everywhere, then it resumes. Every per-horn change of both
/// broadcasts reaches a `mosquitto_sub` subscriber on
/// `broadcast/{id}/horn/{speaker}` (none coalesced away), each horn of the
/// notice says `interrupted {by, resuming}` then `started {resumed}`, the
/// API history says the same, and every broadcast and speaker message
/// matches its schema.
#[test]
fn every_horn_report_of_a_23_horn_emergency_reaches_mqtt() {
    use tgw_e2e::{GatewayConfig, GatewayStart, SimProc, api_token_as, free_tcp_port};
    use tgw_e2e::{http_get_as, http_post_as, http_post_raw, import_speakers, test_net, tone_wav};
    const N: usize = 23;
    let Some(broker) = Mosquitto::start() else {
        eprintln!("SKIPPED: mosquitto not installed (run scripts/install-peers)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let net = test_net(74).to_string();
    let sim = SimProc::start(&[
        "--cameras",
        "0",
        "--speakers",
        &N.to_string(),
        "--no-multicast",
        "--bind",
        &net,
        "--control",
        "127.0.0.1:0",
        "--speaker-kinds",
        "rtp",
    ]);
    let mut csv = String::from("id,kind,address,codec\n");
    let horns: Vec<String> = sim
        .devices("speaker")
        .iter()
        .map(|h| {
            let id = h["id"].as_str().unwrap().to_string();
            let uri = h["uri"].as_str().unwrap();
            let addr = uri.trim_start_matches("rtp://").split('?').next().unwrap();
            csv.push_str(&format!("{id},rtp,{addr},pcmu\n"));
            id
        })
        .collect();
    assert_eq!(horns.len(), N);
    std::fs::write(d.join("horns.csv"), &csv).unwrap();
    let http = format!("127.0.0.1:{}", free_tcp_port());
    let cfg = GatewayConfig::test_site(d.join("data"), &broker.url())
        .http(&http)
        .section("[broadcast]", "playout_delay_ms = 300")
        .write(d.join("gateway.toml"));
    import_speakers(&cfg, &d.join("horns.csv"));
    let token = api_token_as(&cfg, "op", "operator");
    let sub = MqttSub::start(broker.port, "tgw/v1/#", "horn-reports", d);
    let mut gw = GatewayStart::new(&cfg, &http).inherit_stderr().start();
    let (st, body) = http_post_raw(
        &http,
        "/api/v1/audio-assets?name=tone.wav",
        &token,
        "audio/wav",
        &tone_wav(1000.0, 2.0),
    );
    assert_eq!(st, 201, "{body}");
    let asset: Value = serde_json::from_str(&body).unwrap();
    let asset = format!("sha256:{}", asset["sha256"].as_str().unwrap());

    let prefix = "tgw/v1/test-site/gw-t";
    // Per broadcast and horn: the states seen on the per-horn topic (the
    // measured `started` left out) and their details.
    let reports = |bid: &str| {
        let mut m: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
        let head = format!("{prefix}/broadcast/{bid}/horn/");
        for (t, p) in sub.lines() {
            if let Some(h) = t.strip_prefix(&head) {
                let v: Value = serde_json::from_str(&p).unwrap();
                if v["detail"]["measured"] != true {
                    m.entry(h.to_string()).or_default().push(v);
                }
            }
        }
        m
    };
    let states = |v: &[Value]| -> Vec<String> {
        v.iter()
            .map(|x| x["state"].as_str().unwrap_or("?").to_string())
            .collect()
    };
    let body =
        format!(r#"{{"targets":["all"],"asset":"{asset}","repeat":2,"priority":"township"}}"#);
    let (st, out) = http_post_as(&http, "/api/v1/broadcasts", &token, &body).unwrap();
    assert_eq!(st, 202, "{out}");
    let notice = serde_json::from_str::<Value>(&out).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for(
        Duration::from_secs(20),
        "the notice started on every horn",
        || {
            let r = reports(&notice);
            (r.len() == N && r.values().all(|v| states(v).contains(&"started".into())))
                .then_some(())
        },
    );
    let body = format!(r#"{{"targets":["all"],"asset":"{asset}","confirm":true}}"#);
    let (st, out) = http_post_as(&http, "/api/v1/emergency", &token, &body).unwrap();
    assert_eq!(st, 202, "{out}");
    let em = serde_json::from_str::<Value>(&out).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let final_of = |bid: &str| {
        let r = reports(bid);
        (r.len() == N
            && r.values()
                .all(|v| v.last().is_some_and(|x| x["state"] == "done")))
        .then_some(r)
    };
    // "Now playing" lists both while the emergency plays.
    let active = |q: &str| -> Vec<String> {
        let (st, out) = http_get_as(
            &http,
            &format!("/api/v1/broadcasts?state={q}"),
            Some(&token),
        )
        .unwrap();
        assert_eq!(st, 200, "{out}");
        serde_json::from_str::<Vec<Value>>(&out)
            .unwrap()
            .iter()
            .map(|b| b["id"].as_str().unwrap().to_string())
            .collect()
    };
    let now = active("active");
    assert!(now.contains(&em) && now.contains(&notice), "{now:?}");
    let (st, out) = http_get_as(&http, "/api/v1/broadcasts?state=bogus", Some(&token)).unwrap();
    assert_eq!(st, 400, "{out}");
    assert!(out.contains("bogus"), "{out}");
    let em_reports = wait_for(Duration::from_secs(60), "every emergency horn done", || {
        final_of(&em)
    });
    for (h, v) in &em_reports {
        assert_eq!(states(v), ["queued", "started", "done"], "{h}");
    }
    let notice_reports = wait_for(Duration::from_secs(60), "every notice horn done", || {
        final_of(&notice)
    });
    for (h, v) in &notice_reports {
        assert_eq!(
            states(v),
            ["queued", "started", "interrupted", "started", "done"],
            "{h}: {v:?}"
        );
        assert_eq!(v[2]["detail"]["by"], em.as_str(), "{h}");
        assert_eq!(v[2]["detail"]["resuming"], true, "{h}");
        assert_eq!(v[3]["detail"]["resumed"], true, "{h}");
    }
    wait_for(Duration::from_secs(10), "nothing playing any more", || {
        active("active").is_empty().then_some(())
    });
    let fin = active("finished");
    assert!(fin.contains(&em) && fin.contains(&notice), "{fin:?}");
    // The record says the same.
    let (st, out) =
        http_get_as(&http, &format!("/api/v1/broadcasts/{notice}"), Some(&token)).unwrap();
    assert_eq!(st, 200, "{out}");
    let rec: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rec["broadcast"]["state"], "done", "{rec}");
    let interrupted = rec["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["state"] == "interrupted" && e["detail"]["by"] == em.as_str())
        .count();
    assert_eq!(interrupted, N, "{rec}");
    // The broadcast topic counted every horn done.
    wait_for(Duration::from_secs(10), "broadcast/{id} done", || {
        sub.lines()
            .into_iter()
            .filter(|(t, _)| *t == format!("{prefix}/broadcast/{em}"))
            .filter_map(|(_, p)| serde_json::from_str::<Value>(&p).ok())
            .find(|v| v["state"] == "done" && v["counts"]["done"] == N)
    });
    gw.terminate(Duration::from_secs(30));
    let mut seen = std::collections::BTreeMap::new();
    for (topic, payload) in sub.lines() {
        let Some(name) = schema_for(&topic) else {
            continue;
        };
        if !name.starts_with("broadcast") && name != "speaker-state" {
            continue;
        }
        let v: Value = serde_json::from_str(&payload).unwrap();
        check(name, &v);
        *seen.entry(name).or_insert(0) += 1;
    }
    for name in ["broadcast", "broadcast-horn", "speaker-state"] {
        assert!(seen.contains_key(name), "no {name} message: {seen:?}");
    }
}
