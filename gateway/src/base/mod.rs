//! What every domain of the daemon shares.
//!
//! | module | owns |
//! |---|---|
//! | [`clock`] | the system and tokio-following wall clocks (the one reader of the OS clock) |
//! | [`disk`] | the disk-space watchdog of the data volume: levels with hysteresis, the shared [`disk::DiskState`] |
//! | [`error`] | [`error::Error`]: a kind (HTTP status, MQTT code, metric label) and a message |
//! | [`fd_limit`] | the open-file limit of the long-running commands, raised at start to the hard one |
//! | [`live`] | the live hub: health and broadcast events fanned out to dashboards over SSE |
//! | [`local_alarm`] | the `local_limit` alarm: raised on the first local error, cleared after a quiet minute (pure rule + the task that publishes it) |
//! | [`local_errors`] | camera calls that failed on the gateway's side (EMFILE, …): counted and logged once a minute, never held against the camera |
//! | [`logging`] | tracing setup (stderr, plain or JSON, `TGW_LOG`) and the runtime log-level handle |
//! | [`metrics`] | the Prometheus registry and every metric family (`docs/metrics.md`) |
//! | [`metrics_ops`] | the uplink, broadcast, speaker-test and process families |
//! | [`notify`] | systemd's `sd_notify`: `READY=1`, `WATCHDOG=1`, `RELOADING=1`, `STOPPING=1` |
//! | [`shutdown`] | SIGINT/SIGTERM: the shutdown signal and a token cancelled by it; SIGHUP: reload |

pub mod clock;
pub mod disk;
pub mod error;
pub mod fd_limit;
pub mod https;
pub mod live;
pub mod local_alarm;
pub mod local_errors;
pub mod logging;
pub mod metrics;
pub mod metrics_ops;
pub mod notify;
pub mod shutdown;
