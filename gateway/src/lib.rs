//! Township Gateway daemon and CLI (`tgw`): the IO around the pure rules
//! of [`tgw_core`]. Each folder is a domain; `ARCHITECTURE.md` draws the
//! pipelines and says where new code goes.
//!
//! | module | owns |
//! |---|---|
//! | [`base`] | what every domain shares: the clock, the live hub, metrics |
//! | [`config`] | the TOML configuration, strict validation with key and line in errors |
//! | [`store`] | SQLite (all SQL): inventory, credentials, history, migrations; the key file and sealing of secrets |
//! | [`cameras`] | discovery rounds, ONVIF inventory, the health poller |
//! | [`speakers`] | the loudspeaker inventory: speakers, multicast zones, CSV import |
//! | [`broadcast`] | the broadcast runtime: audio pipeline, render, records, CAP feeds |
//! | [`gb28181`] | the GB/T 28181 uplink; `media`: live video relays (camera → PS over RTP) |
//! | [`uplink`] | the MQTT uplink: durable outbox, session, commands from the centre, embedded broker |
//! | [`gb28181`] | the GB/T 28181 uplink: registration to video platforms, catalog, alarms, INVITE into media relays |
//! | [`auth`] | users, roles, argon2id, sessions, API tokens, login rate limiting, audit log |
//! | [`http`] | the `/api/v1` API, embedded dashboard, `/healthz`, `/readyz`, `/metrics` |
//! | [`cmd`] | the `tgw` command line: `run`, `demo` and the subcommand groups |

pub mod auth;
pub mod base;
pub mod broadcast;
pub mod cameras;
pub mod cmd;
pub mod config;
pub mod gb28181;
pub mod http;
pub mod speakers;
pub mod store;
pub mod uplink;
