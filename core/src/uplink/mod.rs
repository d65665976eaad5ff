//! The MQTT vocabulary shared with the governance centre (`docs/mqtt.md`).
//!
//! | module | owns |
//! |---|---|
//! | [`topics`] | the topic tree `tgw/v1/{site}/{gateway}/…` |
//! | [`commands`] | the typed `Command`, its parser from `cmd/{method}`, reply codes and error replies |

pub mod commands;
pub mod topics;
