//! The MQTT vocabulary shared with the governance centre (`docs/mqtt.md`).
//!
//! | module | owns |
//! |---|---|
//! | [`topics`] | the topic tree `tgw/v1/{site}/{gateway}/…` |
//! | [`commands`] | the pure parser of `cmd/{method}` and error replies |

pub mod commands;
pub mod topics;
