//! The broadcast engine (issue 7): one timeline per horn, deciding which
//! broadcast drives each horn. Pure: no IO, no clock reads; time comes in as
//! `now: Ms` on every call.
//!
//! The runtime calls [`Engine::submit`], [`Engine::cancel`],
//! [`Engine::stop_all`], [`Engine::finished`] and [`Engine::tick`], carries
//! out the [`Action`]s each returns in order, and calls `tick` again no later
//! than [`Engine::next_deadline`].
//!
//! # Rules
//!
//! - Priorities: higher preempts lower (the engine emits [`Action::Stop`]);
//!   equal priority lets the playing broadcast finish; lower waits behind
//!   higher. Waiting broadcasts are ordered by priority, then submit order (a
//!   preempted broadcast waiting to resume keeps its original place).
//! - One broadcast per horn, always: after a `Stop` the horn stays reserved
//!   for the old broadcast until [`Engine::finished`] arrives for that pair or
//!   [`EngineConfig::stop_timeout_ms`] passes (then the old pair is reported
//!   `Failed { why: "did not stop" }` and the horn is given to the next).
//! - Synchronised start: every horn one call gives to a broadcast shares one
//!   T0 = max(`start_at`, now + [`EngineConfig::lead_ms`]), batched into one
//!   [`Action::Start`] per (broadcast, `from_segment`).
//! - A request whose `start_at` is in the future is queued and becomes
//!   eligible at `start_at − lead`, so a timely `tick` starts it with
//!   T0 = `start_at` exactly. Until then it does not hold its horns.
//! - A pair still queued (including waiting to resume) once `now >
//!   latest_start` is dropped with `Dropped { why: "expired" }`.
//! - A preempted pair ([`OnPreempt`]) with `Resume` is queued again from
//!   `segments_done`; with `Drop` (or if its `latest_start` has passed) it
//!   ends `Interrupted { by }`.
//! - Every (broadcast, horn) pair is reported `Queued` first and gets exactly
//!   one final [`HornState`]; once every pair is final the engine emits
//!   [`Action::BroadcastDone`] once and forgets the broadcast (its id may then
//!   be used again). Horns with nothing on them are forgotten too.
//! - Every call first runs the timers that are due at `now`, so a late `tick`
//!   loses nothing.
//!
//! Costs: a call touches only the horns of the broadcasts it concerns
//! (O(h log q)); only [`Engine::stop_all`] and [`Engine::active`] walk every
//! broadcast.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::{Ms, OnPreempt, Priority};

/// The `why` of a pair that was told to stop and did not confirm in time.
pub const DID_NOT_STOP: &str = "did not stop";
/// The `why` of a pair dropped because its `latest_start` passed while queued.
pub const EXPIRED: &str = "expired";

/// Engine parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// How long before T0 a start is decided, so the drivers can prepare
    /// (SIP INVITE, HTTP, MQTT). Default 150 ms; negative counts as 0.
    pub lead_ms: i64,
    /// How long a horn told to stop may take to confirm before the engine
    /// gives up on it and moves on. Default 3000 ms; negative counts as 0.
    pub stop_timeout_ms: i64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            lead_ms: 150,
            stop_timeout_ms: 3000,
        }
    }
}

/// One broadcast to play, already filtered by the runtime to the horns it may
/// reach (quiet hours etc. are not the engine's business).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Unique among active broadcasts.
    pub id: String,
    /// Decides preemption and queue order.
    pub priority: Priority,
    /// Horn ids; duplicates are ignored, empty means done at once.
    pub horns: Vec<String>,
    /// The wanted T0; never started earlier.
    pub start_at: Ms,
    /// Latest moment a queued pair may still start; `None` waits forever.
    pub latest_start: Option<Ms>,
    /// What happens on horns a higher priority takes.
    pub on_preempt: OnPreempt,
    /// Number of segments (items × repeats), at least 1; resumes count in these.
    pub segments: u32,
}

/// What the runtime must do, in the order returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Play `broadcast` on `horns` from segment index `from_segment`
    /// (0-based), all starting at `t0`. Answer each horn with
    /// [`Engine::finished`].
    Start {
        broadcast: String,
        horns: Vec<String>,
        t0: Ms,
        from_segment: u32,
    },
    /// Stop `broadcast` on `horns`, then call [`Engine::finished`] for each
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
    /// [`Engine::cancel`].
    Cancelled,
    /// [`Engine::stop_all`].
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
    /// Playing from `t0`.
    Started { t0: Ms, from_segment: u32 },
    /// Final: played to the end.
    Done,
    /// Final: a higher priority took the horn and this one gave it up.
    Interrupted { by: String },
    /// Final: the driver failed, or the horn did not stop in time.
    Failed { why: String },
    /// Final: cancelled or stopped by "stop all".
    Cancelled,
    /// Final: never (re)started; `why` is [`EXPIRED`].
    Dropped { why: String },
}

impl HornState {
    /// The state's name, as serialised in `state` (`queued`, `started`, …).
    pub fn name(&self) -> &'static str {
        match self {
            HornState::Queued { .. } => "queued",
            HornState::Started { .. } => "started",
            HornState::Done => "done",
            HornState::Interrupted { .. } => "interrupted",
            HornState::Failed { .. } => "failed",
            HornState::Cancelled => "cancelled",
            HornState::Dropped { .. } => "dropped",
        }
    }

    /// Whether no further state follows for this pair.
    pub fn is_final(&self) -> bool {
        !matches!(self, HornState::Queued { .. } | HornState::Started { .. })
    }
}

/// How a started pair ended, as the runtime saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Played to the end.
    Done,
    /// The driver failed (the text is published).
    Failed(String),
    /// Stopped before the end; `segments_done` is the absolute index of the
    /// first segment not played to its end (so a resume starts there).
    Stopped { segments_done: u32 },
}

/// Why [`Engine::submit`] refused a request; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// A broadcast with this id is still active.
    #[error("broadcast `{0}` is already active")]
    Duplicate(String),
    /// `segments` was 0: nothing to play.
    #[error("broadcast `{0}` has no segments")]
    NoSegments(String),
}

/// What a horn is doing (see [`Engine::horn`]).
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

/// An active broadcast (see [`Engine::broadcast`]).
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

/// Where a pair is on its horn's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Start time not yet near; not in the horn's queue.
    Later,
    /// In the horn's queue.
    Waiting,
    /// Holds the horn.
    Playing,
    /// Holds the horn; `Stop` sent, unconfirmed until `deadline`.
    Stopping { reason: StopReason, deadline: Ms },
    /// Reported final.
    Final,
}

#[derive(Debug)]
struct Pair {
    horn: String,
    phase: Phase,
    /// Segment the next or current run starts from.
    from: u32,
    /// T0 of the current or last run.
    t0: Ms,
    last: HornState,
}

#[derive(Debug)]
struct Bcast {
    id: String,
    priority: Priority,
    start_at: Ms,
    latest_start: Option<Ms>,
    on_preempt: OnPreempt,
    segments: u32,
    seq: u64,
    due_at: Ms,
    pairs: Vec<Pair>,
    index: HashMap<String, usize>,
    /// Pairs not yet final.
    open: usize,
}

impl Bcast {
    fn key(&self) -> QKey {
        (Reverse(self.priority), self.seq, self.id.clone())
    }

    fn expired(&self, now: Ms) -> bool {
        self.latest_start.is_some_and(|ls| now > ls)
    }
}

/// Queue order: priority descending, then submit order.
type QKey = (Reverse<Priority>, u64, String);

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    StopTimeout { horn: String, broadcast: String },
    Due(String),
    Expire(String),
}

#[derive(Debug, Default)]
struct Horn {
    /// The broadcast playing or being stopped here.
    occupant: Option<String>,
    queue: BTreeSet<QKey>,
    /// Non-final pairs on this horn; the horn is forgotten at 0.
    refs: usize,
}

/// Horns and timers: what pair bookkeeping touches besides the broadcast.
#[derive(Debug, Default)]
struct Lines {
    horns: HashMap<String, Horn>,
    timers: BTreeSet<(Ms, Timer)>,
}

impl Lines {
    /// Makes pair `i` of `b` final with `state`: leaves its queue or horn,
    /// clears its stop timer and reports it.
    fn finalize(&mut self, b: &mut Bcast, i: usize, state: HornState, out: &mut Out) {
        let key = b.key();
        let p = &mut b.pairs[i];
        let phase = std::mem::replace(&mut p.phase, Phase::Final);
        if phase == Phase::Final {
            return;
        }
        if let Phase::Stopping { deadline, .. } = phase {
            self.timers.remove(&(
                deadline,
                Timer::StopTimeout {
                    horn: p.horn.clone(),
                    broadcast: b.id.clone(),
                },
            ));
        }
        p.last = state.clone();
        out.report(&b.id, &p.horn, state);
        b.open = b.open.saturating_sub(1);
        if b.open == 0 {
            out.maybe_done.push(b.id.clone());
        }
        if let Some(h) = self.horns.get_mut(&p.horn) {
            if phase == Phase::Waiting {
                h.queue.remove(&key);
            }
            if h.occupant.as_deref() == Some(b.id.as_str()) {
                h.occupant = None;
                out.dirty.push(p.horn.clone());
            }
            h.refs = h.refs.saturating_sub(1);
            if h.refs == 0 {
                self.horns.remove(&p.horn);
            }
        }
    }

    /// Sends `Stop` for pair `i` of `b` (which holds its horn).
    fn stop(&mut self, b: &mut Bcast, i: usize, reason: StopReason, deadline: Ms, out: &mut Out) {
        let p = &mut b.pairs[i];
        p.phase = Phase::Stopping {
            reason: reason.clone(),
            deadline,
        };
        self.timers.insert((
            deadline,
            Timer::StopTimeout {
                horn: p.horn.clone(),
                broadcast: b.id.clone(),
            },
        ));
        out.stop(&b.id, &p.horn, reason);
    }
}

/// The actions of one call being built.
struct Out {
    now: Ms,
    actions: Vec<Action>,
    /// Horns whose occupant or queue changed.
    dirty: Vec<String>,
    /// Broadcasts that may have no open pair left.
    maybe_done: Vec<String>,
    starts: HashMap<(String, u32), usize>,
    stops: HashMap<(String, StopReason), usize>,
}

impl Out {
    fn new(now: Ms) -> Self {
        Out {
            now,
            actions: Vec::new(),
            dirty: Vec::new(),
            maybe_done: Vec::new(),
            starts: HashMap::new(),
            stops: HashMap::new(),
        }
    }

    fn report(&mut self, broadcast: &str, horn: &str, state: HornState) {
        self.actions.push(Action::Report {
            broadcast: broadcast.to_string(),
            horn: horn.to_string(),
            state,
            at: self.now,
        });
    }

    fn start(&mut self, broadcast: &str, horn: &str, t0: Ms, from_segment: u32) {
        let key = (broadcast.to_string(), from_segment);
        if let Some(&i) = self.starts.get(&key)
            && let Some(Action::Start { horns, .. }) = self.actions.get_mut(i)
        {
            horns.push(horn.to_string());
            return;
        }
        self.starts.insert(key, self.actions.len());
        self.actions.push(Action::Start {
            broadcast: broadcast.to_string(),
            horns: vec![horn.to_string()],
            t0,
            from_segment,
        });
    }

    fn stop(&mut self, broadcast: &str, horn: &str, reason: StopReason) {
        let key = (broadcast.to_string(), reason);
        if let Some(&i) = self.stops.get(&key)
            && let Some(Action::Stop { horns, .. }) = self.actions.get_mut(i)
        {
            horns.push(horn.to_string());
            return;
        }
        self.stops.insert(key.clone(), self.actions.len());
        self.actions.push(Action::Stop {
            broadcast: key.0,
            horns: vec![horn.to_string()],
            reason: key.1,
        });
    }
}

/// The per-horn broadcast engine. See the module docs for its rules.
#[derive(Debug, Default)]
pub struct Engine {
    cfg: EngineConfig,
    seq: u64,
    bcasts: HashMap<String, Bcast>,
    lines: Lines,
}

impl Engine {
    /// An idle engine.
    pub fn new(cfg: EngineConfig) -> Self {
        let cfg = EngineConfig {
            lead_ms: cfg.lead_ms.max(0),
            stop_timeout_ms: cfg.stop_timeout_ms.max(0),
        };
        Engine {
            cfg,
            ..Engine::default()
        }
    }

    /// Queues `req` on its horns (each reported `Queued`), preempting lower
    /// priorities and starting where the horn is free and the start is near.
    /// An id that is still active is refused, as is `segments == 0`.
    pub fn submit(&mut self, req: Request, now: Ms) -> Result<Vec<Action>, Rejected> {
        if self.bcasts.contains_key(&req.id) {
            return Err(Rejected::Duplicate(req.id));
        }
        if req.segments == 0 {
            return Err(Rejected::NoSegments(req.id));
        }
        let mut out = Out::new(now);
        self.run_timers(&mut out);
        let seq = self.seq;
        self.seq += 1;
        let due_at = req.start_at.saturating_sub(self.cfg.lead_ms);
        let ready = now >= due_at;
        let mut b = Bcast {
            id: req.id,
            priority: req.priority,
            start_at: req.start_at,
            latest_start: req.latest_start,
            on_preempt: req.on_preempt,
            segments: req.segments,
            seq,
            due_at,
            pairs: Vec::with_capacity(req.horns.len()),
            index: HashMap::with_capacity(req.horns.len()),
            open: 0,
        };
        let key = b.key();
        for horn in req.horns {
            if b.index.contains_key(&horn) {
                continue;
            }
            let h = self.lines.horns.entry(horn.clone()).or_default();
            h.refs += 1;
            if ready {
                h.queue.insert(key.clone());
                out.dirty.push(horn.clone());
            }
            out.report(&b.id, &horn, HornState::Queued { from_segment: 0 });
            b.index.insert(horn.clone(), b.pairs.len());
            b.pairs.push(Pair {
                horn,
                phase: if ready { Phase::Waiting } else { Phase::Later },
                from: 0,
                t0: req.start_at,
                last: HornState::Queued { from_segment: 0 },
            });
        }
        b.open = b.pairs.len();
        if b.open == 0 {
            out.maybe_done.push(b.id.clone());
        } else if !ready {
            self.lines.timers.insert((due_at, Timer::Due(b.id.clone())));
        }
        let id = b.id.clone();
        let latest = b.latest_start;
        self.bcasts.insert(id.clone(), b);
        if let Some(ls) = latest {
            if now > ls {
                self.expire(&id, &mut out);
            } else {
                self.lines
                    .timers
                    .insert((ls.saturating_add(1), Timer::Expire(id)));
            }
        }
        Ok(self.finish(out))
    }

    /// Cancels `broadcast`: queued horns end `Cancelled` now, playing horns
    /// get `Stop` and end `Cancelled` when confirmed. Unknown or finished
    /// ids: nothing happens.
    pub fn cancel(&mut self, broadcast: &str, now: Ms) -> Vec<Action> {
        let mut out = Out::new(now);
        self.run_timers(&mut out);
        self.cancel_one(broadcast, StopReason::Cancelled, &mut out);
        self.finish(out)
    }

    /// The local "stop all": cancels every active broadcast like
    /// [`Engine::cancel`], including ones waiting to resume, and repeats
    /// `Stop` for horns already stopping.
    pub fn stop_all(&mut self, now: Ms) -> Vec<Action> {
        let mut out = Out::new(now);
        self.run_timers(&mut out);
        for id in self.active() {
            self.cancel_one(&id, StopReason::StopAll, &mut out);
        }
        self.finish(out)
    }

    /// The runtime's answer for one started pair. Frees the horn and starts
    /// whatever comes next there. Pairs that are unknown, not started or
    /// already final (late duplicates, answers after a stop timeout) are
    /// ignored.
    pub fn finished(
        &mut self,
        broadcast: &str,
        horn: &str,
        outcome: Outcome,
        now: Ms,
    ) -> Vec<Action> {
        let mut out = Out::new(now);
        self.run_timers(&mut out);
        if let Some(b) = self.bcasts.get_mut(broadcast)
            && let Some(&i) = b.index.get(horn)
        {
            let done_all = |n: u32| n >= b.segments;
            let state = match (&b.pairs[i].phase, outcome) {
                (Phase::Playing | Phase::Stopping { .. }, Outcome::Done) => Some(HornState::Done),
                (Phase::Playing | Phase::Stopping { .. }, Outcome::Failed(why)) => {
                    Some(HornState::Failed { why })
                }
                (Phase::Playing | Phase::Stopping { .. }, Outcome::Stopped { segments_done })
                    if done_all(segments_done) =>
                {
                    Some(HornState::Done)
                }
                (Phase::Playing, Outcome::Stopped { segments_done }) => Some(HornState::Failed {
                    why: format!(
                        "stopped unasked after {segments_done} of {} segments",
                        b.segments
                    ),
                }),
                (Phase::Stopping { reason, deadline }, Outcome::Stopped { segments_done }) => {
                    match reason {
                        StopReason::Cancelled | StopReason::StopAll => Some(HornState::Cancelled),
                        StopReason::Preempted { by } => {
                            if b.on_preempt == OnPreempt::Drop || b.expired(now) {
                                Some(HornState::Interrupted { by: by.clone() })
                            } else {
                                // Resume: back into the queue from where it stopped.
                                let deadline = *deadline;
                                let from = segments_done.max(b.pairs[i].from);
                                let key = b.key();
                                let p = &mut b.pairs[i];
                                self.lines.timers.remove(&(
                                    deadline,
                                    Timer::StopTimeout {
                                        horn: p.horn.clone(),
                                        broadcast: b.id.clone(),
                                    },
                                ));
                                p.phase = Phase::Waiting;
                                p.from = from;
                                p.last = HornState::Queued { from_segment: from };
                                out.report(&b.id, &p.horn, p.last.clone());
                                if let Some(h) = self.lines.horns.get_mut(horn) {
                                    h.occupant = None;
                                    h.queue.insert(key);
                                }
                                out.dirty.push(p.horn.clone());
                                None
                            }
                        }
                    }
                }
                _ => None,
            };
            if let Some(state) = state {
                self.lines.finalize(b, i, state, &mut out);
            }
        }
        self.finish(out)
    }

    /// Runs what is due at `now`: starts whose time came, expiry of queued
    /// pairs, stop timeouts.
    pub fn tick(&mut self, now: Ms) -> Vec<Action> {
        let mut out = Out::new(now);
        self.run_timers(&mut out);
        self.finish(out)
    }

    /// When [`Engine::tick`] must be called next (`None`: only on events).
    pub fn next_deadline(&self) -> Option<Ms> {
        self.lines.timers.first().map(|(at, _)| *at)
    }

    /// What `id` is doing; `None` when nothing active involves it.
    pub fn horn(&self, id: &str) -> Option<HornView> {
        let h = self.lines.horns.get(id)?;
        let pair = |bid: &str| {
            let b = self.bcasts.get(bid)?;
            let p = &b.pairs[*b.index.get(id)?];
            Some((b, p))
        };
        let playing = h
            .occupant
            .as_deref()
            .and_then(pair)
            .map(|(b, p)| PlayingView {
                broadcast: b.id.clone(),
                priority: b.priority,
                since: p.t0,
                from_segment: p.from,
                stopping: stopping(&p.phase),
            });
        let waiting = h
            .queue
            .iter()
            .filter_map(|(_, _, bid)| pair(bid))
            .map(|(b, p)| WaitingView {
                broadcast: b.id.clone(),
                priority: b.priority,
                from_segment: p.from,
            })
            .collect();
        let mut later: Vec<&Bcast> = self
            .bcasts
            .values()
            .filter(|b| {
                b.index
                    .get(id)
                    .is_some_and(|&i| b.pairs[i].phase == Phase::Later)
            })
            .collect();
        later.sort_by_key(|b| b.seq);
        Some(HornView {
            playing,
            waiting,
            later: later.into_iter().map(|b| b.id.clone()).collect(),
        })
    }

    /// The per-horn states of an active broadcast; `None` once done.
    pub fn broadcast(&self, id: &str) -> Option<BroadcastView> {
        let b = self.bcasts.get(id)?;
        Some(BroadcastView {
            id: b.id.clone(),
            priority: b.priority,
            horns: b
                .pairs
                .iter()
                .map(|p| PairView {
                    horn: p.horn.clone(),
                    state: p.last.clone(),
                    stopping: stopping(&p.phase),
                })
                .collect(),
        })
    }

    /// Ids of the active broadcasts, in submit order.
    pub fn active(&self) -> Vec<String> {
        let mut v: Vec<&Bcast> = self.bcasts.values().collect();
        v.sort_by_key(|b| b.seq);
        v.into_iter().map(|b| b.id.clone()).collect()
    }

    fn cancel_one(&mut self, id: &str, reason: StopReason, out: &mut Out) {
        let Some(b) = self.bcasts.get_mut(id) else {
            return;
        };
        let deadline = out.now.saturating_add(self.cfg.stop_timeout_ms);
        for i in 0..b.pairs.len() {
            match &mut b.pairs[i].phase {
                Phase::Later | Phase::Waiting => {
                    self.lines.finalize(b, i, HornState::Cancelled, out);
                }
                Phase::Playing => self.lines.stop(b, i, reason.clone(), deadline, out),
                Phase::Stopping { reason: r, .. } => {
                    if reason == StopReason::StopAll {
                        *r = StopReason::StopAll;
                        out.stop(id, &b.pairs[i].horn, StopReason::StopAll);
                    } else if matches!(r, StopReason::Preempted { .. }) {
                        *r = reason.clone();
                    }
                }
                Phase::Final => {}
            }
        }
    }

    fn run_timers(&mut self, out: &mut Out) {
        while let Some((at, _)) = self.lines.timers.first()
            && *at <= out.now
            && let Some((_, t)) = self.lines.timers.pop_first()
        {
            match t {
                Timer::Due(id) => self.make_due(&id, out),
                Timer::Expire(id) => self.expire(&id, out),
                Timer::StopTimeout { horn, broadcast } => {
                    if let Some(b) = self.bcasts.get_mut(&broadcast)
                        && let Some(&i) = b.index.get(&horn)
                        && matches!(b.pairs[i].phase, Phase::Stopping { .. })
                    {
                        let why = DID_NOT_STOP.to_string();
                        self.lines.finalize(b, i, HornState::Failed { why }, out);
                    }
                }
            }
        }
    }

    /// The start of `id` is near: its `Later` pairs join their horns' queues.
    fn make_due(&mut self, id: &str, out: &mut Out) {
        let Some(b) = self.bcasts.get_mut(id) else {
            return;
        };
        let key = b.key();
        for p in &mut b.pairs {
            if p.phase == Phase::Later {
                p.phase = Phase::Waiting;
                if let Some(h) = self.lines.horns.get_mut(&p.horn) {
                    h.queue.insert(key.clone());
                }
                out.dirty.push(p.horn.clone());
            }
        }
    }

    /// `latest_start` of `id` passed: its queued pairs are dropped.
    fn expire(&mut self, id: &str, out: &mut Out) {
        let Some(b) = self.bcasts.get_mut(id) else {
            return;
        };
        for i in 0..b.pairs.len() {
            if matches!(b.pairs[i].phase, Phase::Later | Phase::Waiting) {
                let why = EXPIRED.to_string();
                self.lines.finalize(b, i, HornState::Dropped { why }, out);
            }
        }
    }

    /// Gives a free horn to its best waiting broadcast, or stops a playing
    /// one that a higher priority waits behind.
    fn settle(&mut self, hid: &str, out: &mut Out) {
        loop {
            let Some(h) = self.lines.horns.get_mut(hid) else {
                return;
            };
            let Some((Reverse(head_prio), _, head_id)) = h.queue.first() else {
                return;
            };
            if let Some(occ) = &h.occupant {
                let (head_prio, by, occ) = (*head_prio, head_id.clone(), occ.clone());
                if let Some(b) = self.bcasts.get_mut(&occ)
                    && head_prio > b.priority
                    && let Some(&i) = b.index.get(hid)
                    && b.pairs[i].phase == Phase::Playing
                {
                    let deadline = out.now.saturating_add(self.cfg.stop_timeout_ms);
                    self.lines
                        .stop(b, i, StopReason::Preempted { by }, deadline, out);
                }
                return;
            }
            let Some(key) = h.queue.pop_first() else {
                return;
            };
            let Some(b) = self.bcasts.get_mut(&key.2) else {
                continue;
            };
            let Some(&i) = b.index.get(hid) else {
                continue;
            };
            if b.pairs[i].phase != Phase::Waiting {
                continue;
            }
            if b.expired(out.now) {
                let why = EXPIRED.to_string();
                self.lines.finalize(b, i, HornState::Dropped { why }, out);
                continue;
            }
            let t0 = b.start_at.max(out.now.saturating_add(self.cfg.lead_ms));
            let p = &mut b.pairs[i];
            p.phase = Phase::Playing;
            p.t0 = t0;
            p.last = HornState::Started {
                t0,
                from_segment: p.from,
            };
            out.start(&b.id, hid, t0, p.from);
            out.report(&b.id, hid, p.last.clone());
            h.occupant = Some(key.2);
            return;
        }
    }

    /// Settles the horns this call touched, then closes finished broadcasts.
    fn finish(&mut self, mut out: Out) -> Vec<Action> {
        let mut seen = HashSet::new();
        let mut k = 0;
        while k < out.dirty.len() {
            let hid = out.dirty[k].clone();
            k += 1;
            if seen.insert(hid.clone()) {
                self.settle(&hid, &mut out);
            }
        }
        for id in std::mem::take(&mut out.maybe_done) {
            if self.bcasts.get(&id).is_some_and(|b| b.open == 0)
                && let Some(b) = self.bcasts.remove(&id)
            {
                self.lines
                    .timers
                    .remove(&(b.due_at, Timer::Due(id.clone())));
                if let Some(ls) = b.latest_start {
                    self.lines
                        .timers
                        .remove(&(ls.saturating_add(1), Timer::Expire(id.clone())));
                }
                out.actions.push(Action::BroadcastDone {
                    broadcast: id,
                    at: out.now,
                });
            }
        }
        out.actions
    }
}

fn stopping(phase: &Phase) -> Option<StopReason> {
    match phase {
        Phase::Stopping { reason, .. } => Some(reason.clone()),
        _ => None,
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
