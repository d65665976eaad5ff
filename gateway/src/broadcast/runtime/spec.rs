//! The runtime's vocabulary: its settings, a broadcast to make, and what a
//! submit or a CAP document answers.

use std::time::Duration;

use device_drivers::speaker::DriverOptions;
use serde::Serialize;

use crate::broadcast::render::Recipe;
use crate::broadcast::{Ms, OnPreempt, Priority, Target};

/// Runtime settings (from `[broadcast]`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Time from deciding to start to T0 (horns get ready meanwhile).
    pub lead: Duration,
    /// Scheduled broadcasts are submitted this long before their time.
    pub preroll: Duration,
    /// How long a scheduled broadcast may wait behind another on a horn.
    pub queue_window: Duration,
    /// How long a horn may take to stop before it is reported stuck.
    pub stop_timeout: Duration,
    /// Volume of emergency broadcasts (forced on every horn).
    pub emergency_volume: u8,
    /// Volume when the programme sets none.
    pub default_volume: u8,
    /// Time zone of timetables and quiet hours.
    pub tz: jiff::tz::TimeZone,
    /// Cloud horns: the broker they listen on and where their audio is served.
    pub cloud: Option<(std::net::SocketAddr, std::net::SocketAddr)>,
    /// Furthest back a restart looks for missed occurrences.
    pub max_catch_up: Duration,
    /// Interface for multicast zones (loopback in tests and the demo).
    pub multicast_if: Option<std::net::Ipv4Addr>,
    /// Driver timeouts and RTP options.
    pub driver: DriverOptions,
    /// Render programmes inside the runtime task instead of a blocking
    /// thread (tests on paused time, where a blocking thread lets the
    /// clock run ahead).
    pub inline_render: bool,
    /// The recorder of what aired: every emergency is recorded as rendered
    /// for the horns (`None`: not recorded).
    pub aired: Option<crate::broadcast::aired::Aired>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            lead: Duration::from_millis(150),
            preroll: Duration::from_secs(5),
            queue_window: Duration::from_secs(600),
            stop_timeout: Duration::from_secs(3),
            emergency_volume: 100,
            default_volume: 100,
            tz: jiff::tz::TimeZone::get("Asia/Shanghai").unwrap_or(jiff::tz::TimeZone::UTC),
            cloud: None,
            max_catch_up: Duration::from_secs(24 * 3600),
            multicast_if: None,
            driver: DriverOptions::default(),
            inline_render: false,
            aired: None,
        }
    }
}

/// A broadcast to make.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Id; generated when `None`.
    pub id: Option<String>,
    /// Who or what asked: `schedule:ID`, `operator:USER`, `mqtt:KEY`, `cap:IDENTIFIER`.
    pub origin: String,
    /// Programme name or headline.
    pub title: String,
    /// Priority.
    pub priority: Priority,
    /// Where.
    pub targets: Vec<Target>,
    /// What.
    pub recipe: Recipe,
    /// T0 (`None`: as soon as possible).
    pub start_at: Option<Ms>,
    /// Latest start on a busy horn (`None`: the queue window, or for
    /// emergencies: no limit).
    pub latest_start: Option<Ms>,
    /// What a preemption does to it.
    pub on_preempt: OnPreempt,
}

/// What a submit answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Submitted {
    /// The broadcast id.
    pub id: String,
    /// Horns it goes to.
    pub horns: usize,
    /// Horns skipped for quiet hours.
    pub quiet: usize,
}

/// What became of a CAP document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapOutcome {
    /// `play`, `cancel`, `ignore` or `reject`.
    pub decision: String,
    /// Why (for ignore/reject), or the alert's event.
    pub reason: Option<String>,
    /// The broadcast started or stopped.
    pub broadcast: Option<String>,
    /// The CAP identifier, when the document parsed.
    pub identifier: Option<String>,
}
