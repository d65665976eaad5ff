//! The GB/T 28181 uplink (`docs/gb28181.md`): the gateway as the township's
//! lower platform (下级平台) registered to county/city video platforms.
//!
//! | module | owns |
//! |---|---|
//! | `service` | the task: registration + keepalive per platform, answering Catalog/DeviceInfo/DeviceStatus, SUBSCRIBE/NOTIFY, INVITE/ACK/BYE/CANCEL into [`media_api::Media`], status |
//! | `transport` (in `service`) | UDP on `listen`, outbound TCP per `transport = "tcp"` platform (reconnect with backoff), inbound TCP |
//! | [`catalog`] | the tree: township business group → villages → grids → cameras, with ids from `store::gb_ids` |
//! | `voice` | horns as voice output channels: Broadcast MESSAGE → live page at `superior`, our INVITE to the platform, G.711 RTP in ([`VoiceDeps`]) |
//! | `sink` | health transitions and camera events into the task ([`GbSink`]) |
//! | [`media_api`] | the seam to the media relays (PS over RTP) |
//! | [`media`] | the relays: `Relays` implements `media_api::Media` |
//! | [`metrics`] | `tgw_gb_*` metrics: counters, and scrape-time gauges of the running service |

pub mod catalog;
pub mod media;
pub mod media_api;
pub mod metrics;
mod service;
mod sink;

pub use service::{Gb, GbStatus, PlatformStatus, VoiceDeps, spawn};
pub use sink::{Change, GbSink};
