//! Tests of parsing, defaults and error messages.

use std::time::Duration;

use super::*;

const MINIMAL: &str = r#"
[gateway]
site = "qingshan"
data_dir = "/tmp/x"

[township]
code = "qingshan"
name = "青山镇"
[[township.villages]]
code = "dongcun"
name = "东村"
grids = [{ code = "dongcun-1", name = "东村第一网格" }]
"#;

#[test]
fn minimal_config_gets_documented_defaults() {
    let c = Config::parse(MINIMAL, "t.toml").unwrap();
    assert_eq!(c.gateway.id.as_str(), "gw-01");
    assert_eq!(c.gateway.timezone, "Asia/Shanghai");
    assert_eq!(c.discovery.probe_repeats, 3);
    assert_eq!(c.discovery.interval_secs, Duration::from_secs(300));
    assert_eq!(c.inventory.concurrency, 64);
    assert!(c.http.is_none());
}

#[test]
fn the_example_config_is_valid() {
    let text = include_str!("../../../config/gateway.example.toml");
    // SAFETY of the test: the example names TGW_CRED_DONGCUN only as password_env.
    let c = Config::parse(text, "gateway.example.toml").unwrap();
    assert!(!c.township.villages.is_empty());
    assert!(!c.credential_groups.is_empty());
}

#[test]
fn unknown_key_names_key_and_line() {
    let text = MINIMAL.replace("[township]", "[township]\ncolour = \"red\"");
    let e = Config::parse(&text, "t.toml").unwrap_err().to_string();
    assert!(e.contains("colour"), "{e}");
    assert!(e.contains("line 7"), "{e}");
}

#[test]
fn bad_cidr_names_key_path_and_line() {
    let text = format!("{MINIMAL}\n[discovery]\ncidrs = [\"10.0.0.0/24\", \"10.0.0.0/33\"]\n");
    let e = Config::parse(&text, "t.toml").unwrap_err().to_string();
    assert!(e.contains("discovery.cidrs"), "{e}");
    assert!(e.contains("10.0.0.0/33"), "{e}");
    assert!(e.contains("line 15"), "{e}");
}

#[test]
fn too_large_sweep_is_refused() {
    let text = format!("{MINIMAL}\n[discovery]\ncidrs = [\"10.0.0.0/8\"]\n");
    let e = Config::parse(&text, "t.toml").unwrap_err().to_string();
    assert!(e.contains("larger than a /16"), "{e}");
}

#[test]
fn out_of_range_number_is_refused() {
    let text = format!("{MINIMAL}\n[discovery]\nprobe_repeats = 9\n");
    let e = Config::parse(&text, "t.toml").unwrap_err().to_string();
    assert!(e.contains("discovery.probe_repeats"), "{e}");
    assert!(e.contains("between 1 and 5"), "{e}");
}

#[test]
fn audio_section_defaults_and_errors() {
    let c = Config::parse(MINIMAL, "t.toml").unwrap();
    assert_eq!(c.audio.tts_command[0], "espeak-ng");
    assert_eq!(c.audio.loudness_lufs, -16.0);
    assert_eq!(c.audio.max_asset_secs, 900);
    for (bad, want) in [
        ("loudness_lufs = -3.0", "audio.loudness_lufs"),
        ("peak_ceiling_dbfs = 1.0", "between -12 and 0"),
        ("tts_max_chars = 0", "audio.tts_max_chars"),
        ("max_asset_bytes = 10", "audio.max_asset_bytes"),
        ("tts_command = [\"espeak-ng\", \"hello\"]", "`{text}`"),
        ("tts_command = []", "audio.tts_command"),
        ("voice = \"cmn\"", "voice"),
    ] {
        let text = format!("{MINIMAL}\n[audio]\n{bad}\n");
        let e = Config::parse(&text, "t.toml").unwrap_err().to_string();
        assert!(e.contains(want) && e.contains("line"), "{bad}: {e}");
    }
}

#[test]
fn duplicate_village_and_unknown_adopt_village_are_named() {
    let dup =
        MINIMAL.to_string() + "[[township.villages]]\ncode = \"dongcun\"\nname = \"又一个\"\n";
    let e = Config::parse(&dup, "t.toml").unwrap_err().to_string();
    assert!(e.contains("used twice"), "{e}");
    let rule = format!("{MINIMAL}\n[[discovery.auto_adopt]]\nvillage = \"xicun\"\n");
    let e = Config::parse(&rule, "t.toml").unwrap_err().to_string();
    assert!(
        e.contains("discovery.auto_adopt[0].village") && e.contains("line 15"),
        "{e}"
    );
}

#[test]
fn credential_group_needs_one_password_source_and_a_matcher() {
    let g = format!(
        "{MINIMAL}\n[[credential_groups]]\nname = \"a\"\nusername = \"admin\"\nsubnets = [\"10.1.0.0/24\"]\n"
    );
    let e = Config::parse(&g, "t.toml").unwrap_err().to_string();
    assert!(e.contains("password"), "{e}");
    let g = format!(
        "{MINIMAL}\n[[credential_groups]]\nname = \"a\"\nusername = \"admin\"\npassword = \"s3cret-pw\"\n"
    );
    let e = Config::parse(&g, "t.toml").unwrap_err().to_string();
    assert!(e.contains("subnets"), "{e}");
    assert!(
        !e.contains("s3cret-pw"),
        "a secret leaked into an error: {e}"
    );
}

#[test]
fn debug_never_prints_the_password() {
    let g = format!(
        "{MINIMAL}\n[[credential_groups]]\nname = \"a\"\nusername = \"admin\"\npassword = \"s3cret-pw\"\nmac_prefixes = [\"44-19-B6\"]\n"
    );
    let c = Config::parse(&g, "t.toml").unwrap();
    assert_eq!(
        c.credential_groups[0].mac_prefixes,
        vec!["44:19:b6".to_string()]
    );
    assert!(!format!("{c:?}").contains("s3cret-pw"));
}

#[test]
fn syntax_error_names_line() {
    let e = Config::parse("[gateway\nsite=1", "t.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 1"), "{e}");
}

#[test]
fn value_errors_are_invalid_with_the_same_messages() {
    use crate::base::error::ErrorKind;
    let e = Ident::parse("Bad Id").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert_eq!(
        e.to_string(),
        "`Bad Id` is not a valid identifier: use 1-64 characters of a-z, 0-9, '-' and '_'"
    );
    assert_eq!(
        parse_cidr("10.0.0.0/8").unwrap_err().to_string(),
        "`10.0.0.0/8` is larger than a /16; split it into /16s or smaller"
    );
    assert_eq!(
        normalise_mac_prefix("xyz").unwrap_err().to_string(),
        "`xyz` is not a MAC prefix such as 44:19:b6"
    );
    assert_eq!(
        parse_broker_url("mqtt://h:x").unwrap_err().to_string(),
        "`mqtt://h:x`: bad port `x`"
    );
    assert_eq!(
        Config::parse("", "t.toml").unwrap_err().kind(),
        ErrorKind::Invalid
    );
}

#[test]
fn audit_retention_defaults_and_limits() {
    let c = Config::parse(MINIMAL, "t.toml").unwrap();
    assert_eq!((c.audit.max_rows, c.audit.max_days), (20_000, 365));
    assert_eq!(
        c.audit.retention(),
        crate::store::audit::AuditRetention::default()
    );
    let c = Config::parse(
        &format!("{MINIMAL}\n[audit]\nmax_rows = 500\nmax_days = 30\n"),
        "t.toml",
    )
    .unwrap();
    assert_eq!((c.audit.max_rows, c.audit.max_days), (500, 30));
    for (bad, want) in [
        ("max_rows = 10", "audit.max_rows"),
        ("max_days = 0", "audit.max_days"),
        ("keep = 1", "keep"),
    ] {
        let text = format!("{MINIMAL}\n[audit]\n{bad}\n");
        let e = Config::parse(&text, "t.toml").unwrap_err().to_string();
        assert!(e.contains(want) && e.contains("line"), "{bad}: {e}");
    }
}

/// `mqtt_trust = "broker"` trusts the broker to authenticate CAP
/// publishers: refused unless the broker is mqtts with a client certificate.
#[test]
fn broker_trust_for_cap_needs_mutual_tls() {
    let warnings = "\n[warnings]\nenabled = true\nmqtt_topic = \"county/cap\"\nmqtt_trust = \"broker\"\nmqtt_senders = [\"county@example.cn\"]\n";
    let plain = format!("{MINIMAL}\n[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\n{warnings}");
    let e = Config::parse(&plain, "t.toml").unwrap_err().to_string();
    assert!(
        e.contains("warnings.mqtt_trust") && e.contains("client_cert_file"),
        "{e}"
    );
    let no_mqtt = format!("{MINIMAL}{warnings}");
    assert!(Config::parse(&no_mqtt, "t.toml").is_err());
    let tls_only = format!(
        "{MINIMAL}\n[mqtt]\nurl = \"mqtts://broker:8883\"\nca_file = \"/etc/ca.pem\"\n{warnings}"
    );
    assert!(Config::parse(&tls_only, "t.toml").is_err());
    let mutual = format!(
        "{MINIMAL}\n[mqtt]\nurl = \"mqtts://broker:8883\"\nca_file = \"/etc/ca.pem\"\nclient_cert_file = \"/etc/c.pem\"\nclient_key_file = \"/etc/c.key\"\n{warnings}"
    );
    let c = Config::parse(&mutual, "t.toml").unwrap();
    assert_eq!(c.warnings.mqtt_trust, tgw_core::warning::MqttTrust::Broker);
    let signed = plain.replace("mqtt_trust = \"broker\"", "mqtt_trust = \"signed\"");
    assert!(Config::parse(&signed, "t.toml").is_ok());
}

#[test]
fn camera_access_defaults_strict_and_bad_hosts_are_named() {
    let c = Config::parse(MINIMAL, "t.toml").unwrap();
    assert!(c.health.camera_access.is_empty());
    let ok = format!(
        "{MINIMAL}\n[[health.camera_access]]\ndevice = \"urn:uuid:cam-1\"\nextra_hosts = [\"192.168.10.5\", \"nvr.local\"]\n"
    );
    let c = Config::parse(&ok, "t.toml").unwrap();
    let a = &c.health.camera_access[0];
    assert_eq!(a.extra_hosts, ["192.168.10.5", "nvr.local"]);
    assert!(!a.plain_basic);
    for bad in ["http://192.168.10.5", "192.168.10.5:80", ""] {
        let text = format!(
            "{MINIMAL}\n[[health.camera_access]]\ndevice = \"cam\"\nextra_hosts = [\"{bad}\"]\n"
        );
        let e = Config::parse(&text, "t.toml").unwrap_err().to_string();
        assert!(e.contains("extra_hosts"), "{e}");
        assert!(e.contains("camera_access"), "{e}");
    }
    let text = format!("{MINIMAL}\n[[health.camera_access]]\ndevice = \"\"\n");
    let e = Config::parse(&text, "t.toml").unwrap_err().to_string();
    assert!(e.contains("device"), "{e}");
}

#[test]
fn backup_section_defaults_bounds_and_a_relative_dir() {
    let c = Config::parse(
        &format!("{MINIMAL}\n[backup]\ndir = \"/var/backups/tgw\"\n"),
        "t.toml",
    )
    .unwrap();
    let b = c.backup.unwrap();
    assert_eq!((b.every_hours, b.keep, b.include_config), (24, 7, true));
    assert_eq!(b.every(), Duration::from_secs(86_400));
    assert_eq!(b.resolve_passphrase().unwrap(), None);
    let e = Config::parse(
        &format!("{MINIMAL}\n[backup]\ndir = \"backups\"\n"),
        "t.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("backup.dir") && e.contains("absolute"), "{e}");
    let e = Config::parse(
        &format!("{MINIMAL}\n[backup]\ndir = \"/b\"\nevery_hours = 0\n"),
        "t.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("every_hours must be between 1 and 720"), "{e}");
    let e = Config::parse(
        &format!(
            "{MINIMAL}\n[backup]\ndir = \"/b\"\npassphrase_env = \"TGW_TEST_UNSET_BACKUP_PASS\"\n"
        ),
        "t.toml",
    )
    .unwrap()
    .backup
    .unwrap()
    .resolve_passphrase()
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("TGW_TEST_UNSET_BACKUP_PASS") && e.contains("not set"),
        "{e}"
    );
}

#[test]
fn clock_sync_defaults_off_and_its_keys_are_checked_together() {
    let c = Config::parse(MINIMAL, "t.toml").unwrap();
    assert_eq!(c.health.clock_sync, ClockSync::Off);
    assert_eq!(c.health.clock_sync_after(), Duration::from_secs(60));
    assert_eq!(
        c.health.clock_sync_min_interval_secs,
        Duration::from_secs(6 * 3600)
    );
    // A larger allowed drift raises the default threshold with it.
    let t = format!("{MINIMAL}\n[health]\nmax_clock_drift_secs = 120\nclock_sync = \"set\"\n");
    let c = Config::parse(&t, "t.toml").unwrap();
    assert_eq!(c.health.clock_sync, ClockSync::Set);
    assert_eq!(c.health.clock_sync_after(), Duration::from_secs(120));
    let t = format!(
        "{MINIMAL}\n[health]\nclock_sync = \"ntp\"\nclock_sync_ntp_server = \"ntp.county.example\"\nclock_sync_after_secs = 30\nclock_sync_min_interval_secs = 3600\n"
    );
    let c = Config::parse(&t, "t.toml").unwrap();
    assert_eq!(c.health.clock_sync, ClockSync::Ntp);
    assert_eq!(c.health.clock_sync_after(), Duration::from_secs(30));
    assert_eq!(
        c.health.clock_sync_min_interval_secs,
        Duration::from_secs(3600)
    );

    for (extra, want) in [
        ("clock_sync = \"sometimes\"", "unknown variant `sometimes`"),
        (
            "clock_sync = \"ntp\"",
            "health.clock_sync_ntp_server: required",
        ),
        (
            "clock_sync = \"ntp\"\nclock_sync_ntp_server = \"ntp server;rm\"",
            "is not an IPv4 address or a DNS name",
        ),
        (
            "max_clock_drift_secs = 10\nclock_sync_after_secs = 5",
            "health.clock_sync_after_secs (line 16): must be at least health.max_clock_drift_secs (10 s), got 5 s",
        ),
        (
            "clock_sync_min_interval_secs = 60",
            "seconds must be between 600 and 604800, got 60",
        ),
    ] {
        let t = format!("{MINIMAL}\n[health]\n{extra}\n");
        let e = Config::parse(&t, "t.toml").unwrap_err().to_string();
        assert!(e.contains(want), "{extra}: {e}");
    }
}
