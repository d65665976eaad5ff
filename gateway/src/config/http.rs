//! `[http]`: the local HTTP endpoint.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::values::de_bounded;

/// `[http]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// Address to listen on. Default: `127.0.0.1:8080`.
    #[serde(default = "default_http")]
    pub listen: SocketAddr,
    /// Password hashes/verifications (argon2id, 19 MiB each) that may run
    /// at once (1-16). Default: `2`.
    #[serde(
        default = "default_hash_concurrency",
        deserialize_with = "de_hash_concurrency"
    )]
    pub password_hash_concurrency: usize,
    /// Longest wait for a free password worker before a login is refused
    /// with 429 `busy`, milliseconds (0-5000). Default: `500`.
    #[serde(default = "default_hash_wait_ms", deserialize_with = "de_hash_wait_ms")]
    pub password_hash_wait_ms: u64,
    /// Seconds a client has to send a request's whole header once the
    /// connection is open or the previous response was sent; then the
    /// connection is closed. 1-300, default 10.
    #[serde(
        default = "default_header_timeout",
        deserialize_with = "de_header_timeout"
    )]
    pub header_read_timeout_secs: u64,
    /// Seconds a keep-alive connection may stay without a request in flight
    /// and without traffic before it is closed. 1-3600, default 60.
    #[serde(default = "default_idle_timeout", deserialize_with = "de_idle_timeout")]
    pub idle_timeout_secs: u64,
    /// Connections served at once; a connection beyond it is closed as soon
    /// as it is accepted. 1-100000, default 512.
    #[serde(default = "default_max_connections", deserialize_with = "de_max_conns")]
    pub max_connections: usize,
    /// PEM file of extra CA certificates trusted, besides the system's, by
    /// outbound HTTPS (CAP feeds, HTTPS device endpoints): a county's
    /// private CA. Default: none (system roots only).
    #[serde(default)]
    pub outbound_ca_file: Option<PathBuf>,
}

impl Default for HttpSection {
    fn default() -> Self {
        Self {
            listen: default_http(),
            header_read_timeout_secs: default_header_timeout(),
            idle_timeout_secs: default_idle_timeout(),
            max_connections: default_max_connections(),
            password_hash_concurrency: default_hash_concurrency(),
            password_hash_wait_ms: default_hash_wait_ms(),
            outbound_ca_file: None,
        }
    }
}

impl HttpSection {
    /// The longest wait for a password worker.
    pub fn password_hash_wait(&self) -> Duration {
        Duration::from_millis(self.password_hash_wait_ms)
    }
}

fn default_http() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_hash_concurrency() -> usize {
    2
}
fn default_hash_wait_ms() -> u64 {
    500
}
fn de_hash_concurrency<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    de_bounded(d, 1, 16, "password_hash_concurrency").map(|v| v as usize)
}
fn de_hash_wait_ms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    de_bounded(d, 0, 5000, "password_hash_wait_ms")
}

fn default_header_timeout() -> u64 {
    10
}
fn default_idle_timeout() -> u64 {
    60
}
fn default_max_connections() -> usize {
    512
}
fn de_header_timeout<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    de_bounded(d, 1, 300, "header_read_timeout_secs")
}
fn de_idle_timeout<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    de_bounded(d, 1, 3600, "idle_timeout_secs")
}
fn de_max_conns<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    de_bounded(d, 1, 100_000, "max_connections").map(|v| v as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Defaults, and out-of-range values refused naming the key.
    #[test]
    fn password_pool_keys_default_and_are_bounded() {
        let h: HttpSection = toml::from_str("").unwrap();
        assert_eq!(h.password_hash_concurrency, 2);
        assert_eq!(h.password_hash_wait(), Duration::from_millis(500));
        let h: HttpSection =
            toml::from_str("password_hash_concurrency = 4\npassword_hash_wait_ms = 0").unwrap();
        assert_eq!(
            (h.password_hash_concurrency, h.password_hash_wait_ms),
            (4, 0)
        );
        for (text, key) in [
            ("password_hash_concurrency = 0", "password_hash_concurrency"),
            (
                "password_hash_concurrency = 17",
                "password_hash_concurrency",
            ),
            ("password_hash_wait_ms = 5001", "password_hash_wait_ms"),
        ] {
            let e = toml::from_str::<HttpSection>(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }
}
