//! What every domain of the daemon shares.
//!
//! | module | owns |
//! |---|---|
//! | [`live`] | the live hub: health and broadcast events fanned out to dashboards over SSE |
//! | [`metrics`] | the Prometheus registry and every metric family (`docs/metrics.md`) |

pub mod live;
pub mod metrics;
