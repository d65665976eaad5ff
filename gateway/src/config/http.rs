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
    /// TLS on `listen`: `"off"` (plain HTTP, for loopback and `tgw demo`),
    /// `"files"` (the operator's certificate chain and key, `tls_cert_file`
    /// and `tls_key_file`), or `"self-signed"` (generated on first start
    /// into the data directory, reused, regenerated when expired or when
    /// `tls_names` change). With TLS on, session cookies are `Secure` and
    /// responses carry `Strict-Transport-Security`. Default: `"off"`.
    #[serde(default)]
    pub tls: TlsMode,
    /// PEM certificate chain (leaf first) served when `tls = "files"`.
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `tls_cert_file`.
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
    /// DNS names and IP addresses the self-signed certificate is issued
    /// for (1-16 names). Default: `["localhost"]` plus the `listen` address
    /// when it is not a wildcard.
    #[serde(default)]
    pub tls_names: Vec<String>,
}

/// `http.tls`: how the dashboard and API are served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// Plain HTTP.
    #[default]
    Off,
    /// The operator's certificate and key (`tls_cert_file`, `tls_key_file`).
    Files,
    /// A self-signed certificate generated and kept in the data directory.
    SelfSigned,
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
            tls: TlsMode::Off,
            tls_cert_file: None,
            tls_key_file: None,
            tls_names: Vec::new(),
        }
    }
}

impl HttpSection {
    /// The longest wait for a password worker.
    pub fn password_hash_wait(&self) -> Duration {
        Duration::from_millis(self.password_hash_wait_ms)
    }

    /// Whether the endpoint is served over TLS.
    pub fn tls_on(&self) -> bool {
        self.tls != TlsMode::Off
    }

    /// The TLS keys checked together: `files` needs both files, the other
    /// modes none; names are 1-253 bytes, at most 16.
    pub fn validate_tls(&self) -> Result<(), String> {
        let files = self.tls_cert_file.is_some() || self.tls_key_file.is_some();
        match self.tls {
            TlsMode::Files if self.tls_cert_file.is_none() => {
                return Err("http.tls = \"files\" needs http.tls_cert_file".into());
            }
            TlsMode::Files if self.tls_key_file.is_none() => {
                return Err("http.tls = \"files\" needs http.tls_key_file".into());
            }
            TlsMode::Off | TlsMode::SelfSigned if files => {
                return Err(
                    "http.tls_cert_file / http.tls_key_file need http.tls = \"files\"".into(),
                );
            }
            _ => {}
        }
        if self.tls_names.len() > 16 {
            return Err("http.tls_names: at most 16 names".into());
        }
        if let Some(n) = self
            .tls_names
            .iter()
            .find(|n| n.is_empty() || n.len() > 253 || n.contains(char::is_whitespace))
        {
            return Err(format!("http.tls_names: invalid name {n:?}"));
        }
        Ok(())
    }

    /// The names of the self-signed certificate: `tls_names`, or
    /// `localhost` plus a non-wildcard `listen` address.
    pub fn self_signed_names(&self) -> Vec<String> {
        if !self.tls_names.is_empty() {
            return self.tls_names.clone();
        }
        let mut v = vec!["localhost".to_string()];
        if !self.listen.ip().is_unspecified() {
            v.push(self.listen.ip().to_string());
        }
        v
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
