//! Cameras: from discovery to a health verdict.
//!
//! | module | owns |
//! |---|---|
//! | [`clock_sync`] | setting a camera's clock (SetSystemDateAndTime / SetNTP) and re-measuring its offset |
//! | [`device`] | how a camera is reached: the [`device::CameraIo`] trait (ONVIF, DESCRIBE, sample, snapshot) and its real implementation |
//! | `fake` | (tests) scripted cameras behind [`device::CameraIo`], and a store seeded with them |
//! | [`events`] | ONVIF events: a PullPoint subscription per camera, tamper / video loss into health, events to MQTT and SSE |
//! | [`discovery`] | discovery rounds: WS-Discovery into the inbox, auto-adoption |
//! | [`live`] | the dashboards' live hub as a health sink: camera states and transitions over SSE |
//! | [`login_test`] | testing a login at once: clock, then one authenticated GetDeviceInformation |
//! | [`inventory`] | fetching each camera's ONVIF inventory with bounded concurrency |
//! | [`poller`] | the health poller: bounded concurrency, ladder checks, stream samples |
//!
//! The ladder and verdict rules are pure and live in `tgw_core::health`.

pub mod clock_sync;
pub mod device;
pub mod discovery;
pub mod events;
#[cfg(test)]
pub(crate) mod fake;
pub mod inventory;
pub mod live;
pub mod login_test;
pub mod poller;
