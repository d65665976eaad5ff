//! What every domain of the daemon shares.
//!
//! | module | owns |
//! |---|---|
//! | [`clock`] | the system and tokio-following wall clocks (the one reader of the OS clock) |
//! | [`disk`] | the disk-space watchdog of the data volume: levels with hysteresis, the shared [`disk::DiskState`] |
//! | [`error`] | [`error::Error`]: a kind (HTTP status, MQTT code, metric label) and a message |
//! | [`live`] | the live hub: health and broadcast events fanned out to dashboards over SSE |
//! | [`logging`] | tracing setup (stderr, plain or JSON, `TGW_LOG`) and the runtime log-level handle |
//! | [`metrics`] | the Prometheus registry and every metric family (`docs/metrics.md`) |
//! | [`shutdown`] | SIGINT/SIGTERM: the shutdown signal and a token cancelled by it |

pub mod clock;
pub mod disk;
pub mod error;
pub mod https;
pub mod live;
pub mod logging;
pub mod metrics;
pub mod shutdown;
