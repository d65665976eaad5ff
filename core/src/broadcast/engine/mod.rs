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
//! - A preempted pair ([`OnPreempt`]) with `Resume` is reported
//!   `Interrupted { by, resuming: true }` and queued again from
//!   `segments_done`; its next start is `Started { resumed: true }`. With
//!   `Drop` (or if its `latest_start` has passed) it ends
//!   `Interrupted { by, resuming: false }`.
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
//!
//! | module | owns |
//! |---|---|
//! | this file | [`Engine`] and its calls, [`EngineConfig`], [`Request`] |
//! | [`report`] | what the engine says: [`Action`], [`HornState`], [`StopReason`], [`Outcome`], [`Rejected`], the views |
//! | `timeline` | the per-horn timelines: pairs, queues, timers, and settling a horn |

use std::collections::HashMap;

use super::{Ms, OnPreempt, Priority};

pub mod report;
mod timeline;

pub use report::{
    Action, BroadcastStatus, BroadcastView, DID_NOT_STOP, DropReason, HornState, HornStatus,
    HornView, Outcome, PairView, PlayingView, Rejected, StopReason, WaitingView, gateway_limit_why,
};

use timeline::{Bcast, Lines, Out, Pair, Phase, Timer, stopping};

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
                resumed: false,
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
                    Some(HornState::failed(why))
                }
                (Phase::Playing | Phase::Stopping { .. }, Outcome::GatewayLimit(what)) => {
                    Some(HornState::failed_locally(what))
                }
                (Phase::Playing | Phase::Stopping { .. }, Outcome::Stopped { segments_done })
                    if done_all(segments_done) =>
                {
                    Some(HornState::Done)
                }
                (Phase::Playing, Outcome::Stopped { segments_done }) => {
                    Some(HornState::failed(format!(
                        "stopped unasked after {segments_done} of {} segments",
                        b.segments
                    )))
                }
                (Phase::Stopping { reason, deadline }, Outcome::Stopped { segments_done }) => {
                    match reason {
                        StopReason::Cancelled | StopReason::StopAll => Some(HornState::Cancelled),
                        StopReason::Preempted { by } => {
                            if b.on_preempt == OnPreempt::Drop || b.expired(now) {
                                Some(HornState::Interrupted {
                                    by: by.clone(),
                                    resuming: false,
                                })
                            } else {
                                // Resume: back into the queue from where it stopped.
                                let (deadline, by) = (*deadline, by.clone());
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
                                p.resumed = true;
                                p.last = HornState::Interrupted { by, resuming: true };
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
}

#[cfg(test)]
mod tests;
