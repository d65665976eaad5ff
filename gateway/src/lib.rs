//! Township Gateway daemon and CLI (`tgw`).
//!
//! | module | owns |
//! |---|---|
//! | [`config`] | the TOML configuration, strict validation with key and line in errors |
//! | [`secrets`] | the credential key file and encryption of device passwords at rest |
//! | [`store`] | SQLite: township → village → grid → device inventory, credentials, migrations |
//! | [`discovery`] | discovery rounds: WS-Discovery into the inbox, auto-adoption |
//! | [`inventory`] | fetching each camera's ONVIF inventory with bounded concurrency |
//! | [`centre`] | what the daemon publishes to the centre and how it carries out its commands |
//! | [`mqtt`] | the MQTT uplink: durable outbox, topics, commands |
//! | [`daemon`] | `tgw run`: the long-lived loops and their shutdown |
//! | [`http`] | the `/api/v1` API (route table, access guard, OpenAPI), embedded dashboard, `/healthz`, `/readyz`, `/metrics` |
//! | [`auth`] | users, roles, argon2id, sessions, API tokens, login rate limiting, audit log |
//! | [`live`] | the live hub: health events fanned out to dashboards over SSE |
//! | [`demo`] | `tgw demo`: simulator and gateway together |
//! | [`audio`] | the audio pipeline: decode, resample to 8 kHz, loudness, TTS, the asset store |
//! | [`speakers`] | the loudspeaker inventory: speakers, multicast zones, CSV import |
//! | [`broadcast`] | broadcasts to the horns: the per-horn engine, signed emergency commands, the runtime, records |
//! | [`schedule`] | broadcast timetables: workday calendar, RRULEs, occurrences, targets → horns, `check` |
//! | [`warning`] | the early-warning desk: `[warnings]` config, CAP/Atom feeds → play / cancel / ignore decisions (pure) |
//! | [`cli`] | the `tgw` command line |

pub mod audio;
pub mod auth;
pub mod broadcast;
pub mod centre;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod discovery;
pub mod health;
pub mod http;
pub mod inventory;
pub mod live;
pub mod metrics;
pub mod mqtt;
pub mod poller;
pub mod schedule;
pub mod secrets;
pub mod speakers;
pub mod store;
pub mod warning;
