//! `[mqtt]`: the uplink to the governance centre's broker (`docs/mqtt.md`),
//! its URL parsing and checks.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::base::error::{Error, Result};

use super::values::{de_bounded, env_override, yes};
use super::{Config, ConfigError};

/// `[mqtt]`: the uplink to the governance centre's broker. See `docs/mqtt.md`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSection {
    /// Broker URL: `mqtt://HOST:PORT` (plain TCP, default port 1883) or
    /// `mqtts://HOST:PORT` (TLS, default port 8883). This or `urls` is
    /// required.
    #[serde(default)]
    pub url: Option<String>,
    /// Several brokers (the nodes of a cluster, or a standby), tried in
    /// turn: the next one after a failed connect or a lost connection
    /// (`docs/fleet.md`). Instead of `url`; 1-16 entries. Default: none.
    #[serde(default)]
    pub urls: Vec<String>,
    /// MQTT client id. Default: `tgw-{site}-{gateway id}`.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Username. Default: none (anonymous).
    #[serde(default)]
    pub username: Option<String>,
    /// Name of an environment variable holding the password (only with
    /// `username`). Default: none.
    #[serde(default)]
    pub password_env: Option<String>,
    /// PEM file of the CA certificates that sign the broker's certificate
    /// (`mqtts://` only). Default: none, which is an error with `mqtts://`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain for mutual TLS. Default: none.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate. Default: none.
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    /// MQTT keep-alive in seconds (5-3600): a dead 4G link is noticed after
    /// about 1.5 times this. Default: `30`.
    #[serde(default = "default_keep_alive", deserialize_with = "de_keep_alive")]
    pub keep_alive_secs: Duration,
    /// Seconds to wait for the TCP/TLS/MQTT connect to finish (1-300). Default: `10`.
    #[serde(
        default = "default_connect_timeout",
        deserialize_with = "de_connect_timeout"
    )]
    pub connect_timeout_secs: Duration,
    /// Largest MQTT packet sent or accepted, bytes (16384-268435455). Default: `1048576`.
    #[serde(default = "default_max_packet", deserialize_with = "de_max_packet")]
    pub max_packet_bytes: usize,
    /// Largest command payload accepted, bytes (256-1048576). Default: `65536`.
    #[serde(default = "default_command_max", deserialize_with = "de_command_max")]
    pub command_max_bytes: usize,
    /// QoS 1 messages sent and not yet acknowledged (1-1000). Default: `100`.
    #[serde(default = "default_inflight", deserialize_with = "de_inflight")]
    pub inflight: usize,
    /// Disk budget of the outbox in bytes (min 65536); when full, the lowest
    /// class is evicted first. Default: `268435456` (256 MiB).
    #[serde(default = "default_outbox_max", deserialize_with = "de_outbox_max")]
    pub outbox_max_bytes: u64,
    /// Messages per second sent from the backlog after an outage (0 =
    /// unlimited). Live messages are not limited. Default: `1000`.
    #[serde(default = "default_drain_rate")]
    pub drain_rate: u32,
    /// First reconnect delay in milliseconds (10-60000); doubled per failed
    /// attempt, with full jitter. Default: `500`.
    #[serde(
        default = "default_reconnect_min",
        deserialize_with = "de_reconnect_min"
    )]
    pub reconnect_min_ms: Duration,
    /// Longest reconnect delay in seconds (1-3600). Default: `60`.
    #[serde(
        default = "default_reconnect_max",
        deserialize_with = "de_reconnect_max"
    )]
    pub reconnect_max_secs: Duration,
    /// QoS of the command subscription (`cmd/+`), 0 or 1. RabbitMQ keeps a
    /// clean session's QoS 1 subscription in a durable queue on the node the
    /// gateway was connected to: when that node dies, every other node
    /// closes the connection on the QoS 1 SUBSCRIBE until it is back. The
    /// uplink then subscribes at QoS 0 for 10 minutes and tries QoS 1 again
    /// (`uplink/command_qos.rs`), so it stays connected; `0` avoids the lost
    /// connection (a transient queue; the centre repeats a command that got
    /// no reply), see `docs/fleet.md`. Default: `1`.
    #[serde(default = "default_command_qos", deserialize_with = "de_command_qos")]
    pub command_qos: u8,
    /// fsync every outbox commit (SQLite `synchronous=FULL`), so accepted
    /// messages survive a power cut and not only a crash. Default: `true`.
    #[serde(default = "yes")]
    pub outbox_fsync: bool,
}

impl fmt::Debug for MqttSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttSection")
            .field("url", &self.url.as_deref().map(redact_url))
            .field(
                "urls",
                &self.urls.iter().map(|u| redact_url(u)).collect::<Vec<_>>(),
            )
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password_env", &self.password_env)
            .field("ca_file", &self.ca_file)
            .field("client_cert_file", &self.client_cert_file)
            .field("client_key_file", &self.client_key_file)
            .field("keep_alive_secs", &self.keep_alive_secs)
            .field("max_packet_bytes", &self.max_packet_bytes)
            .field("inflight", &self.inflight)
            .field("outbox_max_bytes", &self.outbox_max_bytes)
            .field("drain_rate", &self.drain_rate)
            .finish_non_exhaustive()
    }
}

/// A URL with any `user:password@` removed, for logs.
pub fn redact_url(u: &str) -> String {
    match (u.find("://"), u.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***@{}", &u[..s + 3], &u[at + 1..]),
        _ => u.to_string(),
    }
}

/// Where and how to reach the broker, parsed from `mqtt.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// `mqtts://`.
    pub tls: bool,
}

/// Most brokers in `mqtt.urls`.
pub const MAX_BROKERS: usize = 16;

impl MqttSection {
    /// The first broker of [`brokers`](Self::brokers).
    pub fn broker(&self) -> Result<BrokerUrl> {
        self.brokers()?
            .into_iter()
            .next()
            .ok_or_else(|| Error::invalid("give `url` or `urls`"))
    }

    /// Parses `url`, or every entry of `urls`, in order; refuses both,
    /// neither, more than [`MAX_BROKERS`] and the same broker twice.
    pub fn brokers(&self) -> Result<Vec<BrokerUrl>> {
        let list: Vec<&str> = match (&self.url, self.urls.is_empty()) {
            (Some(u), true) => vec![u.as_str()],
            (None, false) => self.urls.iter().map(String::as_str).collect(),
            (Some(_), false) => {
                return Err(Error::invalid("give `url` or `urls`, not both"));
            }
            (None, true) => return Err(Error::invalid("give `url` or `urls`")),
        };
        if list.len() > MAX_BROKERS {
            return Err(Error::invalid(format!(
                "{} brokers in `urls`; at most {MAX_BROKERS}",
                list.len()
            )));
        }
        let mut out: Vec<BrokerUrl> = Vec::with_capacity(list.len());
        for u in list {
            let b = parse_broker_url(u)?;
            if out.iter().any(|o| o.host == b.host && o.port == b.port) {
                return Err(Error::invalid(format!(
                    "`{}` is in `urls` twice",
                    redact_url(u)
                )));
            }
            out.push(b);
        }
        Ok(out)
    }

    /// Resolves the password from `password_env`, if any.
    pub fn resolve_password(&self) -> Result<Option<String>, ConfigError> {
        let Some(var) = &self.password_env else {
            return Ok(None);
        };
        if let Some(v) = env_override(var) {
            return Ok(Some(v));
        }
        std::env::var(var).map(Some).map_err(|_| {
            ConfigError(format!(
                "mqtt: environment variable `{var}` (password_env) is not set"
            ))
        })
    }
}

/// Parses `mqtt://HOST[:PORT]` or `mqtts://HOST[:PORT]`.
pub fn parse_broker_url(s: &str) -> Result<BrokerUrl> {
    broker_url(s).map_err(Error::invalid)
}

fn broker_url(s: &str) -> std::result::Result<BrokerUrl, String> {
    let (tls, rest) = if let Some(r) = s.strip_prefix("mqtt://") {
        (false, r)
    } else if let Some(r) = s.strip_prefix("mqtts://") {
        (true, r)
    } else {
        return Err(format!(
            "`{}` is not an MQTT URL such as mqtt://127.0.0.1:1883 or mqtts://broker:8883",
            redact_url(s)
        ));
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains('@') || rest.contains('/') || rest.is_empty() {
        return Err(format!(
            "`{}`: give only HOST:PORT (credentials go in username/password_env)",
            redact_url(s)
        ));
    }
    let default_port = if tls { 8883 } else { 1883 };
    let (host, port) = if let Some(h) = rest.strip_prefix('[') {
        let (h, p) = h
            .split_once(']')
            .ok_or_else(|| format!("`{s}`: unclosed IPv6 bracket"))?;
        let port = match p.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| format!("`{s}`: bad port `{p}`"))?,
            None => default_port,
        };
        (h.to_string(), port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse().map_err(|_| format!("`{s}`: bad port `{p}`"))?,
            ),
            None => (rest.to_string(), default_port),
        }
    };
    if host.is_empty() || port == 0 {
        return Err(format!("`{s}`: missing host or port"));
    }
    Ok(BrokerUrl { host, port, tls })
}

fn default_command_qos() -> u8 {
    1
}
fn de_command_qos<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<u8, D::Error> {
    de_bounded(d, 0, 1, "command_qos").map(|v| v as u8)
}
fn default_keep_alive() -> Duration {
    Duration::from_secs(30)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_max_packet() -> usize {
    1 << 20
}
fn default_command_max() -> usize {
    64 * 1024
}
fn default_inflight() -> usize {
    100
}
fn default_outbox_max() -> u64 {
    256 << 20
}
fn default_drain_rate() -> u32 {
    1000
}
fn default_reconnect_min() -> Duration {
    Duration::from_millis(500)
}
fn default_reconnect_max() -> Duration {
    Duration::from_secs(60)
}
fn de_keep_alive<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Duration, D::Error> {
    de_bounded(d, 5, 3600, "keep_alive_secs").map(Duration::from_secs)
}
fn de_connect_timeout<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Duration, D::Error> {
    de_bounded(d, 1, 300, "connect_timeout_secs").map(Duration::from_secs)
}
fn de_max_packet<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<usize, D::Error> {
    de_bounded(d, 16384, 268_435_455, "max_packet_bytes").map(|v| v as usize)
}
fn de_command_max<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<usize, D::Error> {
    de_bounded(d, 256, 1 << 20, "command_max_bytes").map(|v| v as usize)
}
fn de_inflight<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<usize, D::Error> {
    de_bounded(d, 1, 1000, "inflight").map(|v| v as usize)
}
fn de_outbox_max<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    de_bounded(d, 65536, u64::MAX, "outbox_max_bytes")
}
fn de_reconnect_min<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Duration, D::Error> {
    de_bounded(d, 10, 60_000, "reconnect_min_ms").map(Duration::from_millis)
}
fn de_reconnect_max<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Duration, D::Error> {
    de_bounded(d, 1, 3600, "reconnect_max_secs").map(Duration::from_secs)
}

impl Config {
    pub(super) fn validate_mqtt(&self, origin: &str, text: &str) -> Result<(), ConfigError> {
        let Some(m) = &self.mqtt else { return Ok(()) };
        let at = |key: &str, msg: String| {
            let line = text
                .lines()
                .position(|l| l.trim_start().starts_with(key))
                .map(|i| i + 1);
            ConfigError(match line {
                Some(l) => format!("{origin}: mqtt.{key} (line {l}): {msg}"),
                None => format!("{origin}: mqtt.{key}: {msg}"),
            })
        };
        let key = if m.url.is_some() { "url" } else { "urls" };
        let brokers = m.brokers().map_err(|e| at(key, e.to_string()))?;
        let tls = brokers.iter().any(|b| b.tls);
        if tls && m.ca_file.is_none() {
            return Err(at(key, "mqtts:// needs `ca_file`".into()));
        }
        if !tls && (m.ca_file.is_some() || m.client_cert_file.is_some()) {
            return Err(at(
                "ca_file",
                "TLS files are given but no broker url is mqtts://".into(),
            ));
        }
        if m.client_cert_file.is_some() != m.client_key_file.is_some() {
            return Err(at(
                "client_cert_file",
                "give both `client_cert_file` and `client_key_file`, or neither".into(),
            ));
        }
        if m.password_env.is_some() && m.username.is_none() {
            return Err(at("password_env", "a password needs `username`".into()));
        }
        if m.reconnect_max_secs < m.reconnect_min_ms {
            return Err(at(
                "reconnect_max_secs",
                "must not be shorter than reconnect_min_ms".into(),
            ));
        }
        if let Some(c) = &m.client_id
            && (c.is_empty() || c.len() > 64 || c.contains(['+', '#', '/']))
        {
            return Err(at(
                "client_id",
                "1-64 characters, without '+', '#' or '/'".into(),
            ));
        }
        Ok(())
    }
}
