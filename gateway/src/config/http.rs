//! `[http]`: the local HTTP endpoint.

use std::net::SocketAddr;

use serde::Deserialize;

/// `[http]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// Address to listen on. Default: `127.0.0.1:8080`.
    #[serde(default = "default_http")]
    pub listen: SocketAddr,
}

fn default_http() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
