//! The broadcast runtime: one task owning the [`Engine`], the scheduler and
//! the early-warning desk. It resolves targets to horns, renders
//! programmes, carries out the engine's actions with the speaker drivers
//! (through a [`Player`]), and records and publishes every horn's report.
//!
//! ```text
//! API / MQTT / CAP / timetable ─► Cmd ─► runtime task ─► Engine ─► Action
//!     Start ─► executor task per start: segment by segment, one T0,
//!              per-horn cancellation ─► Finished ─► Engine
//!     Stop  ─► cancel those horns' tokens
//!     Report ─► store (broadcast_horn, broadcast_event), MQTT, live SSE
//! ```
//!
//! | module | owns |
//! |---|---|
//! | [`spec`] | the vocabulary: [`Settings`], [`Spec`], [`Submitted`], [`CapOutcome`] |
//! | [`handle`] | [`Broadcasts`], the handle the API, MQTT and CAP use; [`SignedRefusal`] |
//! | `task` | the task loop: commands in, engine ticks, batches of finishes, engine actions out |
//! | `submit` | a [`Spec`] → horns, volumes and driver URIs; rendering; the engine request |
//! | [`live`] | live pages: [`LiveFeed`] (a stream instead of rendered PCM), their playout, one live page per horn |
//! | [`playout`] | [`Player`], [`DriverPlayer`]; one engine Start carried out on the horns |
//! | `scheduler` | fired timetable occurrences, occurrences missed while down, restart recovery |
//! | `warning` | the early-warning desk glue (CAP documents and alerts, expiries) |
//! | `emergency` | the signed emergency command glue (`cmd/emergency`) |
//! | `report` | horn and broadcast reports: store, MQTT, live events |
//! | [`startup`] | [`start`], [`start_for_daemon`], [`load_timetable`] |

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use device_drivers::speaker::{PlayReport, SpeakerUri};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::base::error::Error;
use crate::base::live::LiveHub;
use crate::broadcast::Ms;
use crate::broadcast::audio::assets::AssetStore;
use crate::broadcast::engine::{Action, Engine, Outcome};
use crate::broadcast::record::Records;
use crate::broadcast::render::Rendered;
use crate::broadcast::signed::Verifier;
use crate::speakers::Speakers;
use tgw_core::schedule::Timetable;

mod emergency;
pub mod handle;
pub mod live;
pub mod playout;
mod report;
mod scheduler;
pub mod spec;
pub mod startup;
mod submit;
mod task;
mod warning;

pub use crate::base::clock::{Clock, SystemClock, TokioClock};
pub use handle::{Broadcasts, SignedRefusal};
pub use live::LiveFeed;
pub use playout::{DriverPlayer, Player};
pub use report::{NoReports, ReportSink};
pub use spec::{CapOutcome, Settings, Spec, Submitted};
pub use startup::{Parts, Started, load_timetable, start, start_for_daemon};

/// The timetable in force, replaced whole on every change (readers take a
/// snapshot without copying it).
type Shared = Arc<RwLock<Arc<Timetable>>>;

fn read(t: &Shared) -> Arc<Timetable> {
    match t.read() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

enum Cmd {
    Submit(Spec, oneshot::Sender<Result<Submitted, Error>>),
    /// A live page: `who` is named to a second page wanting its horns.
    SubmitLive {
        spec: Spec,
        feed: LiveFeed,
        who: String,
        reply: oneshot::Sender<Result<Submitted, Error>>,
    },
    Rendered(String, Result<Arc<Rendered>, Error>),
    Cancel(String, oneshot::Sender<bool>),
    StopAll(String, oneshot::Sender<usize>),
    Measured {
        broadcast: String,
        horn: String,
        report: Box<PlayReport>,
    },
    Finished {
        broadcast: String,
        horn: String,
        outcome: Outcome,
    },
    TimetableChanged,
    Cap(bytes::Bytes, String, oneshot::Sender<CapOutcome>),
    /// A document from the MQTT warnings topic: trusted only per `[warnings] mqtt_trust`.
    CapMqtt(bytes::Bytes, String, oneshot::Sender<CapOutcome>),
    CapParsed(Box<device_drivers::cap::Alert>, [u8; 32], String),
    Signed(bytes::Bytes, oneshot::Sender<Result<Value, SignedRefusal>>),
}

struct Pending {
    spec: Spec,
    horns: Vec<String>,
    uris: HashMap<String, SpeakerUri>,
    /// Gain volume per horn.
    volumes: HashMap<String, u8>,
    rendered: Option<Arc<Rendered>>,
    /// A live page's audio (then `rendered` stays `None`).
    live: Option<LiveFeed>,
}

struct Runtime {
    engine: Engine,
    records: Records,
    publisher: Arc<dyn ReportSink>,
    live: LiveHub,
    speakers: Speakers,
    assets: AssetStore,
    timetable: Shared,
    settings: Settings,
    clock: Arc<dyn Clock>,
    player: Arc<dyn Player>,
    tx: mpsc::Sender<Cmd>,
    pending: HashMap<String, Pending>,
    running: HashMap<(String, String), CancellationToken>,
    checked_until: Ms,
    desk: Option<tgw_core::warning::Desk>,
    verifier: Verifier,
    expiries: Vec<(Ms, String)>,
    /// Engine actions of a batch of finishes, applied together.
    deferred: Vec<Action>,
    /// The `now` of the batch being handled.
    batch_now: Option<Ms>,
    /// Horns held by live pages.
    live_horns: live::LiveHorns,
}

fn rfc3339(ms: Ms) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
