//! `[http]`: the local HTTP endpoint.

use std::net::SocketAddr;

use serde::Deserialize;

use super::values::de_bounded;

/// `[http]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// Address to listen on. Default: `127.0.0.1:8080`.
    #[serde(default = "default_http")]
    pub listen: SocketAddr,
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
}

impl Default for HttpSection {
    fn default() -> Self {
        Self {
            listen: default_http(),
            header_read_timeout_secs: default_header_timeout(),
            idle_timeout_secs: default_idle_timeout(),
            max_connections: default_max_connections(),
        }
    }
}

fn default_http() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
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
