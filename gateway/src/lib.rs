//! Township Gateway daemon and CLI (`tgw`).
//!
//! | module | owns |
//! |---|---|
//! | [`config`] | the TOML configuration, strict validation with key and line in errors |
//! | [`secrets`] | the credential key file and encryption of device passwords at rest |
//! | [`store`] | SQLite: township → village → grid → device inventory, credentials, migrations |
//! | [`discovery`] | discovery rounds: WS-Discovery into the inbox, auto-adoption |
//! | [`inventory`] | fetching each camera's ONVIF inventory with bounded concurrency |
//! | [`daemon`] | `tgw run`: the long-lived loops and their shutdown |
//! | [`http`] | `/healthz`, `/readyz`, the read-only inventory API and overview page |
//! | [`demo`] | `tgw demo`: simulator and gateway together |
//! | [`cli`] | the `tgw` command line |

pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod discovery;
pub mod health;
pub mod http;
pub mod inventory;
pub mod metrics;
pub mod poller;
pub mod secrets;
pub mod store;
