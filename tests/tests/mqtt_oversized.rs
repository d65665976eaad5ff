//! Issue 12, item 7: a retained command larger than `mqtt.max_packet_bytes`
//! on the gateway's command topic must not put the uplink into a reconnect
//! loop. A real Mosquitto holds a 200 kB retained `cmd/reload` while the
//! gateway's limit is 64 KiB; the retained message is cleared, an
//! `oversized_message` alarm is sent, a normal `cmd/probe` still gets its
//! reply, and until then the gateway connected at most 3 times (counted from
//! its retained birth messages, one per connection).
//!
//! Before the fix: ~2.6 connections a second (106 in 40 s), no alarm.
//! Skipped with a message when mosquitto is not installed.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::Duration;

use tgw_e2e::{Mosquitto, MqttSub, SpawnKilled, mqtt_config, tgw, wait_for};

const PREFIX: &str = "tgw/v1/test-site/gw-t";

fn publish(
    port: u16,
    topic: &str,
    retain: bool,
    payload_file: Option<&std::path::Path>,
    msg: &str,
) {
    let mut c = Command::new("mosquitto_pub");
    c.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-q",
        "1",
        "-t",
        topic,
    ]);
    if retain {
        c.arg("-r");
    }
    match payload_file {
        Some(f) => c.arg("-f").arg(f),
        None => c.args(["-m", msg]),
    };
    let st = c.stdout(Stdio::null()).status().expect("mosquitto_pub");
    assert!(st.success(), "mosquitto_pub {topic}");
}

fn births(sub: &MqttSub) -> usize {
    sub.lines()
        .iter()
        .filter(|(t, p)| t == &format!("{PREFIX}/status") && p.contains("\"online\":true"))
        .count()
}

#[test]
fn oversized_retained_command_does_not_loop() {
    let Some(broker) = Mosquitto::start() else {
        eprintln!("mosquitto not installed; skipping");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // 200 kB retained on a command topic, three times the gateway's limit.
    let big = dir.path().join("big.json");
    let body = format!(
        "{{\"request_id\":\"big\",\"params\":{{\"x\":\"{}\"}}}}",
        "x".repeat(200_000)
    );
    std::fs::write(&big, body).unwrap();
    publish(
        broker.port,
        &format!("{PREFIX}/cmd/reload"),
        true,
        Some(&big),
        "",
    );

    let sub = MqttSub::start(broker.port, &format!("{PREFIX}/#"), "watch", dir.path());
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        mqtt_config(
            &data,
            &broker.url(),
            "max_packet_bytes = 65536\ncommand_max_bytes = 16384\n",
        ),
    )
    .unwrap();
    // No [http] to wait for: not `start_gateway`.
    let _gw = tgw()
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn_killed("tgw run");

    // No fixed window: wait for the alarm (raised once the scout found and
    // cleared the message; never without the fix), then count connections.
    // Without the fix the session reconnects ~12 times a second.
    wait_for(Duration::from_secs(15), "the first connection", || {
        (births(&sub) > 0).then_some(())
    });
    let alarm = wait_for(
        Duration::from_secs(20),
        "the oversized_message alarm",
        || {
            sub.lines()
                .into_iter()
                .find(|(t, p)| t == &format!("{PREFIX}/alarm") && p.contains("oversized_message"))
        },
    );
    assert!(
        alarm.1.contains("cmd/reload") && alarm.1.contains("\"cleared\":true"),
        "{alarm:?}"
    );

    // A normal command still gets its reply.
    publish(
        broker.port,
        &format!("{PREFIX}/cmd/probe"),
        false,
        None,
        r#"{"request_id":"r-1","params":{"camera":"cam-none"}}"#,
    );
    let reply = wait_for(Duration::from_secs(10), "the probe reply", || {
        sub.lines()
            .into_iter()
            .find(|(t, _)| t == &format!("{PREFIX}/reply/r-1"))
    });
    assert!(reply.1.contains("\"request_id\":\"r-1\""), "{reply:?}");
    // The first connection, and one after the scout cleared the message.
    let n = births(&sub);
    eprintln!("connections until the probe reply: {n}");
    assert!(n <= 3, "{n} connections with an oversized retained command");
    let alarms = sub
        .lines()
        .iter()
        .filter(|(t, p)| t == &format!("{PREFIX}/alarm") && p.contains("oversized_message"))
        .count();
    assert_eq!(alarms, 1, "one alarm");
}
