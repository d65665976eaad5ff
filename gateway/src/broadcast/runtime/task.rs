//! The runtime task's loop: commands in, engine ticks and deadlines, the
//! scheduler and warning expiries, batches of finishes sharing one `now`,
//! and the engine's actions carried out (horns first, records after).

use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Cmd, Runtime};
use crate::broadcast::Ms;
use crate::broadcast::engine::{Action, BroadcastStatus, HornState, HornStatus, Outcome};

impl Runtime {
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Cmd>, shutdown: CancellationToken) {
        self.recover_after_restart();
        loop {
            let now = self.clock.now_ms();
            self.run_scheduler(now);
            let acts = self.engine.tick(now);
            self.apply(acts);
            let mut wake = now + 30_000;
            if let Some(d) = self.engine.next_deadline() {
                wake = wake.min(d);
            }
            self.run_expiries(now);
            if let Some(e) = self.expiries.iter().map(|(t, _)| *t).min() {
                wake = wake.min(e);
            }
            if let Some(n) = self.next_occurrence(now) {
                wake = wake.min(n - self.settings.preroll.as_millis() as Ms);
            }
            let sleep = Duration::from_millis(wake.saturating_sub(now).clamp(1, 30_000) as u64);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(sleep) => {}
                cmd = rx.recv() => match cmd {
                    Some(c) => {
                        // Take what else is waiting with the same `now`: the
                        // 200 horns a preemption frees finish within a few
                        // ms of each other and must get one shared T0.
                        self.handle(c);
                        let mut n = 0;
                        while n < 1000 && let Ok(c) = rx.try_recv() {
                            self.handle(c);
                            n += 1;
                        }
                        self.batch_now = None;
                        let acts = std::mem::take(&mut self.deferred);
                        self.apply(acts);
                    }
                    None => break,
                }
            }
        }
        let now = self.clock.now_ms();
        let acts = self.engine.stop_all(now);
        self.apply(acts);
        for t in self.running.values() {
            t.cancel();
        }
    }

    pub(super) fn handle(&mut self, c: Cmd) {
        let now = self.batch_now.unwrap_or_else(|| self.clock.now_ms());
        match c {
            Cmd::Submit(spec, reply) => {
                let _ = reply.send(self.submit(spec, now));
            }
            Cmd::SubmitLive {
                spec,
                feed,
                who,
                reply,
            } => {
                let _ = reply.send(self.submit_with(spec, Some((feed, who)), now));
            }
            Cmd::Rendered(id, res) => self.rendered(&id, res, now),
            Cmd::Cancel(id, reply) => {
                let _ = reply.send(self.cancel_now(&id, now));
            }
            Cmd::StopAll(by, reply) => {
                let n = self.pending.len();
                let acts = self.engine.stop_all(now);
                self.apply(acts);
                // What is still rendering never reached the engine.
                let rendering: Vec<String> = self
                    .pending
                    .iter()
                    .filter(|(_, p)| p.rendered.is_none() && p.live.is_none())
                    .map(|(k, _)| k.clone())
                    .collect();
                for id in rendering {
                    self.cancel_now(&id, now);
                }
                tracing::warn!(by = %by, broadcasts = n, "stop all");
                let _ = reply.send(n);
            }
            Cmd::Measured {
                broadcast,
                horn,
                report,
            } => {
                let detail = json!({
                    "measured": true,
                    "answered": report.answered,
                    "skew_ms": report.start_offset_ms,
                    "answer_ms": report.answer_ms,
                    "codec": report.codec,
                    "kind": report.kind,
                    "errors": report.errors,
                });
                if let Err(e) = self.records.horn_detail(&broadcast, &horn, &detail) {
                    tracing::warn!(error = %e, "recording a horn report failed");
                }
                self.publish_horn(&broadcast, &horn, "started", Some(&detail));
            }
            Cmd::Finished {
                broadcast,
                horn,
                outcome,
            } => {
                self.running.remove(&(broadcast.clone(), horn.clone()));
                if let Outcome::GatewayLimit(what) = outcome {
                    self.publisher.horn_failed_locally(what);
                }
                // Starts are carried out after the whole batch (see `run`),
                // all with the `now` of the first finish.
                let now = *self.batch_now.get_or_insert(now);
                let acts = self.engine.finished(&broadcast, &horn, outcome, now);
                self.deferred.extend(acts);
            }
            Cmd::TimetableChanged => {
                // The next loop iteration recomputes the next occurrence.
            }
            Cmd::Cap(doc, via, reply) => {
                let out = self.on_cap(&doc, &via, now);
                let _ = reply.send(out);
            }
            Cmd::CapMqtt(doc, via, reply) => {
                let out = self.on_cap_mqtt(&doc, &via, now);
                let _ = reply.send(out);
            }
            Cmd::CapParsed(alert, sha, via) => {
                if self
                    .desk
                    .as_ref()
                    .is_some_and(|d| d.has_seen(&alert.identifier))
                {
                    return;
                }
                self.on_alert(&alert, sha, &via, now);
            }
            Cmd::Signed(body, reply) => {
                let _ = reply.send(self.on_signed(&body, now));
            }
        }
    }

    pub(super) fn run_expiries(&mut self, now: Ms) {
        let due: Vec<String> = self
            .expiries
            .iter()
            .filter(|(t, _)| *t <= now)
            .map(|(_, id)| id.clone())
            .collect();
        self.expiries.retain(|(t, _)| *t > now);
        for id in due {
            tracing::info!(broadcast = %id, "warning expired; its broadcast stops");
            self.cancel_now(&id, now);
        }
    }

    /// Cancels a broadcast wherever it is (engine or still rendering).
    pub(super) fn cancel_now(&mut self, id: &str, now: Ms) -> bool {
        let known = self.pending.contains_key(id);
        let acts = self.engine.cancel(id, now);
        let any = known || !acts.is_empty();
        self.apply(acts);
        if let Some(p) = self.pending.get(id)
            && p.rendered.is_none()
            && p.live.is_none()
        {
            let horns = p.horns.clone();
            for h in &horns {
                self.report(id, h, "cancelled", None);
            }
            self.pending.remove(id);
            self.finish_broadcast(id, "cancelled");
        }
        any
    }

    pub(super) fn apply(&mut self, acts: Vec<Action>) {
        // Horns first (starts and stops), then the records: a report's
        // SQLite write never delays a horn.
        let (mut first, rest): (Vec<Action>, Vec<Action>) = acts
            .into_iter()
            .partition(|a| matches!(a, Action::Start { .. } | Action::Stop { .. }));
        first.extend(rest);
        let mut queue: std::collections::VecDeque<Action> = first.into();
        while let Some(a) = queue.pop_front() {
            match a {
                Action::Start {
                    broadcast,
                    horns,
                    t0,
                    from_segment,
                } => self.start(&broadcast, horns, t0, from_segment),
                Action::Stop {
                    broadcast, horns, ..
                } => {
                    for h in horns {
                        match self.running.get(&(broadcast.clone(), h.clone())) {
                            Some(t) => t.cancel(),
                            None => {
                                let now = self.clock.now_ms();
                                queue.extend(self.engine.finished(
                                    &broadcast,
                                    &h,
                                    Outcome::Stopped { segments_done: 0 },
                                    now,
                                ));
                            }
                        }
                    }
                }
                Action::Report {
                    state: HornState::Queued { from_segment: 0 },
                    ..
                } => {
                    // Already reported queued when it was submitted.
                }
                Action::Report {
                    broadcast,
                    horn,
                    state,
                    ..
                } => {
                    let name = state.name();
                    let detail = serde_json::to_value(&state).ok();
                    self.report(&broadcast, &horn, name, detail);
                }
                Action::BroadcastDone { broadcast, .. } => {
                    // One rule for every broadcast, live pages included: a
                    // page whose horns all aired nothing (`failed`) is failed.
                    let state = match self.records.get(&broadcast) {
                        Ok(Some((_, horns))) => {
                            let finals: Vec<HornStatus> = horns
                                .iter()
                                .filter_map(|h| HornStatus::parse(&h.state))
                                .collect();
                            BroadcastStatus::of_finals(&finals)
                        }
                        _ => BroadcastStatus::Failed,
                    }
                    .as_str();
                    self.pending.remove(&broadcast);
                    self.live_horns.release(&broadcast);
                    self.finish_broadcast(&broadcast, state);
                }
            }
        }
    }
}
