//! What the engine tells the runtime and the operators: actions, per-horn
//! states and their names, stop reasons, outcomes, refusals and views.

use serde::{Deserialize, Serialize};

use device_drivers::local_error::LocalResource;

use crate::broadcast::{Ms, Priority};
use crate::error::ErrorKind;

/// The `why` of a pair that was told to stop and did not confirm in time.
pub const DID_NOT_STOP: &str = "did not stop";

/// Why a pair never (re)started (`why` of [`HornState::Dropped`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DropReason {
    /// Its `latest_start` passed while it was queued (the engine's).
    #[serde(rename = "expired")]
    Expired,
    /// Every horn it reaches is in quiet hours (the runtime's).
    #[serde(rename = "quiet hours")]
    QuietHours,
}

impl DropReason {
    /// The text, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Expired => "expired",
            DropReason::QuietHours => "quiet hours",
        }
    }
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the runtime must do, in the order returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Play `broadcast` on `horns` from segment index `from_segment`
    /// (0-based), all starting at `t0`. Answer each horn with
    /// [`super::Engine::finished`].
    Start {
        broadcast: String,
        horns: Vec<String>,
        t0: Ms,
        from_segment: u32,
    },
    /// Stop `broadcast` on `horns`, then call [`super::Engine::finished`] for each
    /// (normally with [`Outcome::Stopped`]). Must be idempotent: `stop_all`
    /// may repeat it for horns already stopping.
    Stop {
        broadcast: String,
        horns: Vec<String>,
        reason: StopReason,
    },
    /// A pair changed state; publish to operators.
    Report {
        broadcast: String,
        horn: String,
        state: HornState,
        at: Ms,
    },
    /// Every horn of `broadcast` reached a final state; the engine forgot it.
    BroadcastDone { broadcast: String, at: Ms },
}

/// Why the engine stops a broadcast on a horn.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum StopReason {
    /// A higher-priority broadcast takes the horn.
    Preempted { by: String },
    /// [`super::Engine::cancel`].
    Cancelled,
    /// [`super::Engine::stop_all`].
    StopAll,
}

/// The state of one broadcast on one horn, as published to operators
/// (`{"state":"started","t0":…,"from_segment":0}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum HornState {
    /// Waiting for the horn or for its start time; `from_segment > 0` means
    /// waiting to resume after preemption.
    Queued { from_segment: u32 },
    /// Playing from `t0`; `resumed` once a preemption interrupted it before.
    Started {
        t0: Ms,
        from_segment: u32,
        #[serde(default)]
        resumed: bool,
    },
    /// Final: played to the end.
    Done,
    /// A higher priority (`by`) took the horn. Final when `resuming` is
    /// false; with `resuming` the pair waits to resume and a `Started` with
    /// `resumed: true` follows (or a final state if it never gets the horn
    /// back).
    Interrupted {
        by: String,
        #[serde(default)]
        resuming: bool,
    },
    /// Final: the driver failed, or the horn did not stop in time.
    /// `error_kind` `local` with its `errno` (`EMFILE` …): the gateway
    /// itself ran out of a resource and nothing aired; not the horn's
    /// fault ([`Outcome::GatewayLimit`]).
    Failed {
        why: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_kind: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        errno: Option<String>,
    },
    /// Final: cancelled or stopped by "stop all".
    Cancelled,
    /// Final: never (re)started.
    Dropped { why: DropReason },
}

impl HornState {
    /// `Failed` with `why` and no error kind.
    pub fn failed(why: impl Into<String>) -> Self {
        HornState::Failed {
            why: why.into(),
            error_kind: None,
            errno: None,
        }
    }

    /// `Failed` because the gateway ran out of `what`: error kind `local`,
    /// its errno, and a `why` that says so ([`gateway_limit_why`]).
    pub fn failed_locally(what: LocalResource) -> Self {
        HornState::Failed {
            why: gateway_limit_why(what),
            // The drivers' label for it (`speaker::ErrorKind::Local`).
            error_kind: Some("local".to_string()),
            errno: Some(what.errno().to_string()),
        }
    }

    /// The state's name without its details.
    pub fn status(&self) -> HornStatus {
        match self {
            HornState::Queued { .. } => HornStatus::Queued,
            HornState::Started { .. } => HornStatus::Started,
            HornState::Done => HornStatus::Done,
            HornState::Interrupted { .. } => HornStatus::Interrupted,
            HornState::Failed { .. } => HornStatus::Failed,
            HornState::Cancelled => HornStatus::Cancelled,
            HornState::Dropped { .. } => HornStatus::Dropped,
        }
    }

    /// The state's name, as serialised in `state` (`queued`, `started`, …).
    pub fn name(&self) -> &'static str {
        self.status().as_str()
    }

    /// Whether no further state follows for this pair (an `Interrupted`
    /// that is `resuming` is not final).
    pub fn is_final(&self) -> bool {
        match self {
            HornState::Interrupted { resuming, .. } => !resuming,
            s => s.status().is_final(),
        }
    }
}

/// The name of a [`HornState`] (its `state` tag), as stored and published
/// for each (broadcast, horn) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HornStatus {
    /// Waiting for the horn or its start time.
    Queued,
    /// Playing.
    Started,
    /// Final: played to the end.
    Done,
    /// Final: a higher priority took the horn.
    Interrupted,
    /// Final: the driver failed, or the horn did not stop in time.
    Failed,
    /// Final: cancelled or stopped by "stop all".
    Cancelled,
    /// Final: never (re)started (expired, quiet hours).
    Dropped,
}

impl HornStatus {
    /// Every status, in the order a pair may go through them.
    pub const ALL: [HornStatus; 7] = [
        HornStatus::Queued,
        HornStatus::Started,
        HornStatus::Done,
        HornStatus::Interrupted,
        HornStatus::Failed,
        HornStatus::Cancelled,
        HornStatus::Dropped,
    ];

    /// The name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            HornStatus::Queued => "queued",
            HornStatus::Started => "started",
            HornStatus::Done => "done",
            HornStatus::Interrupted => "interrupted",
            HornStatus::Failed => "failed",
            HornStatus::Cancelled => "cancelled",
            HornStatus::Dropped => "dropped",
        }
    }

    /// The status of a name (`None` for anything else).
    pub fn parse(s: &str) -> Option<HornStatus> {
        HornStatus::ALL.into_iter().find(|h| h.as_str() == s)
    }

    /// Whether no further state follows (for `Interrupted`: unless the pair
    /// is resuming, see [`HornState::is_final`]).
    pub fn is_final(self) -> bool {
        !matches!(self, HornStatus::Queued | HornStatus::Started)
    }
}

impl std::fmt::Display for HornStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of a whole broadcast, as stored and published: `queued` until
/// a horn starts, `playing`, then one final state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BroadcastStatus {
    /// Submitted; no horn started yet.
    Queued,
    /// At least one horn started.
    Playing,
    /// Final: some horn played it to the end.
    Done,
    /// Final: every horn was cancelled.
    Cancelled,
    /// Final: a higher priority (or a restart) interrupted it.
    Interrupted,
    /// Final: nothing else.
    Failed,
}

impl BroadcastStatus {
    /// Every status.
    pub const ALL: [BroadcastStatus; 6] = [
        BroadcastStatus::Queued,
        BroadcastStatus::Playing,
        BroadcastStatus::Done,
        BroadcastStatus::Cancelled,
        BroadcastStatus::Interrupted,
        BroadcastStatus::Failed,
    ];

    /// The name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            BroadcastStatus::Queued => "queued",
            BroadcastStatus::Playing => "playing",
            BroadcastStatus::Done => "done",
            BroadcastStatus::Cancelled => "cancelled",
            BroadcastStatus::Interrupted => "interrupted",
            BroadcastStatus::Failed => "failed",
        }
    }

    /// The status of a name (`None` for anything else).
    pub fn parse(s: &str) -> Option<BroadcastStatus> {
        BroadcastStatus::ALL.into_iter().find(|b| b.as_str() == s)
    }

    /// The final state of a broadcast whose horns all ended in `horns`:
    /// `done` if any horn played it to the end, `cancelled` if every horn
    /// was cancelled, else `interrupted` if any was, else `failed`.
    pub fn of_finals(horns: &[HornStatus]) -> BroadcastStatus {
        if horns.contains(&HornStatus::Done) {
            BroadcastStatus::Done
        } else if horns.iter().all(|h| *h == HornStatus::Cancelled) {
            BroadcastStatus::Cancelled
        } else if horns.contains(&HornStatus::Interrupted) {
            BroadcastStatus::Interrupted
        } else {
            BroadcastStatus::Failed
        }
    }
}

impl std::fmt::Display for BroadcastStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `why` of a horn that failed because the gateway ran out of `what`,
/// e.g. `the gateway's own limit (EMFILE: too many open files): nothing
/// aired; not the horn's fault` (the dashboard translates it).
pub fn gateway_limit_why(what: LocalResource) -> String {
    format!(
        "the gateway's own limit ({}: {}): nothing aired; not the horn's fault",
        what.errno(),
        what.what()
    )
}

/// How a started pair ended, as the runtime saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Played to the end.
    Done,
    /// The driver failed (the text is published).
    Failed(String),
    /// Nothing aired because the gateway itself ran out of a resource
    /// (file descriptors, socket buffers, memory, local ports) for the
    /// horn's socket: failed, with error kind `local`; not the horn's fault.
    GatewayLimit(LocalResource),
    /// Stopped before the end; `segments_done` is the absolute index of the
    /// first segment not played to its end (so a resume starts there).
    Stopped { segments_done: u32 },
}

/// Why [`super::Engine::submit`] refused a request; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// A broadcast with this id is still active.
    #[error("broadcast `{0}` is already active")]
    Duplicate(String),
    /// `segments` was 0: nothing to play.
    #[error("broadcast `{0}` has no segments")]
    NoSegments(String),
}

impl Rejected {
    /// [`ErrorKind::Conflict`] for a duplicate id, else [`ErrorKind::Invalid`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            Rejected::Duplicate(_) => ErrorKind::Conflict,
            Rejected::NoSegments(_) => ErrorKind::Invalid,
        }
    }
}

/// What a horn is doing (see [`super::Engine::horn`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HornView {
    /// The broadcast holding the horn (playing or being stopped).
    pub playing: Option<PlayingView>,
    /// Eligible broadcasts waiting for the horn, next first.
    pub waiting: Vec<WaitingView>,
    /// Broadcasts whose start time has not come yet, in submit order.
    pub later: Vec<String>,
}

/// The broadcast holding a horn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayingView {
    /// Broadcast id.
    pub broadcast: String,
    /// Its priority.
    pub priority: Priority,
    /// T0 of the current run.
    pub since: Ms,
    /// Segment the current run started from.
    pub from_segment: u32,
    /// Set once a `Stop` was sent and not yet confirmed.
    pub stopping: Option<StopReason>,
}

/// A broadcast waiting for a horn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingView {
    /// Broadcast id.
    pub broadcast: String,
    /// Its priority.
    pub priority: Priority,
    /// Segment it will start from (> 0: resuming).
    pub from_segment: u32,
}

/// An active broadcast (see [`super::Engine::broadcast`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastView {
    /// Broadcast id.
    pub id: String,
    /// Its priority.
    pub priority: Priority,
    /// Per horn, in request order.
    pub horns: Vec<PairView>,
}

/// One horn of a broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairView {
    /// Horn id.
    pub horn: String,
    /// The last state reported.
    pub state: HornState,
    /// Set while a `Stop` is unconfirmed.
    pub stopping: Option<StopReason>,
}
