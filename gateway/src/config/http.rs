//! `[http]`: the local HTTP endpoint.

use std::net::SocketAddr;
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
