//! `tgw-core`: the Township Gateway's domain rules, with no IO (no tokio,
//! SQLite or HTTP). Bytes and values in, decisions out; time comes in as a
//! value. The daemon (`tgw`), the fuzz targets and the benches share it.
//!
//! | module | owns |
//! |---|---|
//! | [`clock`] | the injected wall clock trait and a manual clock for tests |
//! | [`error`] | [`error::ErrorKind`]: one HTTP status, reply code and metric label per kind of failure |
//! | [`health`] | the status ladder, reasons and verdicts with hysteresis |
//! | [`broadcast`] | priorities, targets, on-preempt policy; the per-horn engine and its horn/broadcast status names; signed emergency commands |
//! | [`schedule`] | timetables: workday calendar, RRULEs, validation, occurrences, targets → horns, `check` |
//! | [`warning`] | the early-warning desk: `[warnings]` config, CAP/Atom → play / cancel / ignore decisions |
//! | [`uplink`] | MQTT topic tree and the centre's command types |

pub mod broadcast;
pub mod clock;
pub mod error;
pub mod health;
pub mod schedule;
pub mod uplink;
pub mod warning;
