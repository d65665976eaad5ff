//! The per-horn timelines: each (broadcast, horn) pair's phase, the horn
//! queues ordered by priority then submit order, the timers, and how a
//! free horn is settled. Private to the engine.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, HashSet};

use super::Engine;
use super::report::{Action, DID_NOT_STOP, DropReason, HornState, StopReason};
use crate::broadcast::{Ms, OnPreempt, Priority};

/// Where a pair is on its horn's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Phase {
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
pub(super) struct Pair {
    pub(super) horn: String,
    pub(super) phase: Phase,
    /// Segment the next or current run starts from.
    pub(super) from: u32,
    /// T0 of the current or last run.
    pub(super) t0: Ms,
    /// A preemption interrupted it and it waits (or waited) to resume.
    pub(super) resumed: bool,
    pub(super) last: HornState,
}

#[derive(Debug)]
pub(super) struct Bcast {
    pub(super) id: String,
    pub(super) priority: Priority,
    pub(super) start_at: Ms,
    pub(super) latest_start: Option<Ms>,
    pub(super) on_preempt: OnPreempt,
    pub(super) segments: u32,
    pub(super) seq: u64,
    pub(super) due_at: Ms,
    pub(super) pairs: Vec<Pair>,
    pub(super) index: HashMap<String, usize>,
    /// Pairs not yet final.
    pub(super) open: usize,
}

impl Bcast {
    pub(super) fn key(&self) -> QKey {
        (Reverse(self.priority), self.seq, self.id.clone())
    }

    pub(super) fn expired(&self, now: Ms) -> bool {
        self.latest_start.is_some_and(|ls| now > ls)
    }
}

/// Queue order: priority descending, then submit order.
pub(super) type QKey = (Reverse<Priority>, u64, String);

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    StopTimeout { horn: String, broadcast: String },
    Due(String),
    Expire(String),
}

#[derive(Debug, Default)]
pub(super) struct Horn {
    /// The broadcast playing or being stopped here.
    pub(super) occupant: Option<String>,
    pub(super) queue: BTreeSet<QKey>,
    /// Non-final pairs on this horn; the horn is forgotten at 0.
    pub(super) refs: usize,
}

/// Horns and timers: what pair bookkeeping touches besides the broadcast.
#[derive(Debug, Default)]
pub(super) struct Lines {
    pub(super) horns: HashMap<String, Horn>,
    pub(super) timers: BTreeSet<(Ms, Timer)>,
}

impl Lines {
    /// Makes pair `i` of `b` final with `state`: leaves its queue or horn,
    /// clears its stop timer and reports it.
    pub(super) fn finalize(&mut self, b: &mut Bcast, i: usize, state: HornState, out: &mut Out) {
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
    pub(super) fn stop(
        &mut self,
        b: &mut Bcast,
        i: usize,
        reason: StopReason,
        deadline: Ms,
        out: &mut Out,
    ) {
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
pub(super) struct Out {
    pub(super) now: Ms,
    pub(super) actions: Vec<Action>,
    /// Horns whose occupant or queue changed.
    pub(super) dirty: Vec<String>,
    /// Broadcasts that may have no open pair left.
    pub(super) maybe_done: Vec<String>,
    pub(super) starts: HashMap<(String, u32), usize>,
    pub(super) stops: HashMap<(String, StopReason), usize>,
}

impl Out {
    pub(super) fn new(now: Ms) -> Self {
        Out {
            now,
            actions: Vec::new(),
            dirty: Vec::new(),
            maybe_done: Vec::new(),
            starts: HashMap::new(),
            stops: HashMap::new(),
        }
    }

    pub(super) fn report(&mut self, broadcast: &str, horn: &str, state: HornState) {
        self.actions.push(Action::Report {
            broadcast: broadcast.to_string(),
            horn: horn.to_string(),
            state,
            at: self.now,
        });
    }

    pub(super) fn start(&mut self, broadcast: &str, horn: &str, t0: Ms, from_segment: u32) {
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

    pub(super) fn stop(&mut self, broadcast: &str, horn: &str, reason: StopReason) {
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

impl Engine {
    pub(super) fn cancel_one(&mut self, id: &str, reason: StopReason, out: &mut Out) {
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

    pub(super) fn run_timers(&mut self, out: &mut Out) {
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
                        let state = HornState::failed(DID_NOT_STOP);
                        self.lines.finalize(b, i, state, out);
                    }
                }
            }
        }
    }

    /// The start of `id` is near: its `Later` pairs join their horns' queues.
    pub(super) fn make_due(&mut self, id: &str, out: &mut Out) {
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
    pub(super) fn expire(&mut self, id: &str, out: &mut Out) {
        let Some(b) = self.bcasts.get_mut(id) else {
            return;
        };
        for i in 0..b.pairs.len() {
            if matches!(b.pairs[i].phase, Phase::Later | Phase::Waiting) {
                let why = DropReason::Expired;
                self.lines.finalize(b, i, HornState::Dropped { why }, out);
            }
        }
    }

    /// Gives a free horn to its best waiting broadcast, or stops a playing
    /// one that a higher priority waits behind.
    pub(super) fn settle(&mut self, hid: &str, out: &mut Out) {
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
                let why = DropReason::Expired;
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
                resumed: p.resumed,
            };
            out.start(&b.id, hid, t0, p.from);
            out.report(&b.id, hid, p.last.clone());
            h.occupant = Some(key.2);
            return;
        }
    }

    /// Settles the horns this call touched, then closes finished broadcasts.
    pub(super) fn finish(&mut self, mut out: Out) -> Vec<Action> {
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

pub(super) fn stopping(phase: &Phase) -> Option<StopReason> {
    match phase {
        Phase::Stopping { reason, .. } => Some(reason.clone()),
        _ => None,
    }
}
