//! The scheduler glue: timetable occurrences due within the preroll are
//! submitted once (fired ones are remembered in the store), occurrences
//! missed while the gateway was down are handled by their policy, and
//! broadcasts a restart cut off are reported interrupted.

use serde_json::json;

use super::spec::Spec;
use super::{Runtime, read};
use crate::broadcast::Ms;
use tgw_core::schedule::Timetable;

impl Runtime {
    /// Broadcasts cut off by a restart: their horns were stopped when the
    /// process ended (RTP stops with the sender, SIP calls time out on the
    /// horn); they are reported interrupted, never resumed.
    pub(super) fn recover_after_restart(&mut self) {
        match self.records.unfinished() {
            Ok(list) => {
                for (id, horns) in list {
                    for h in horns {
                        let detail =
                            json!({ "state": "interrupted", "by": "restart", "resuming": false });
                        self.report(&id, &h, "interrupted", Some(detail));
                    }
                    self.finish_broadcast(&id, "interrupted");
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading unfinished broadcasts failed"),
        }
    }

    pub(super) fn next_occurrence(&self, now: Ms) -> Option<Ms> {
        let tt = read(&self.timetable);
        let from = jiff::Timestamp::from_millisecond(now.max(self.checked_until) - 1).ok()?;
        tt.next_after(from).map(|o| o.at.as_millisecond())
    }

    /// Submits every occurrence due within the preroll; handles the ones
    /// missed (gateway down, clock jumped forward) by their policy. A
    /// clock jumping back never fires an occurrence twice: fired ones are
    /// remembered in the store.
    pub(super) fn run_scheduler(&mut self, now: Ms) {
        // Occurrences up to and including now + preroll.
        let horizon = now + self.settings.preroll.as_millis() as Ms + 1;
        if horizon <= self.checked_until {
            if self.checked_until - horizon > 60_000 {
                tracing::warn!(
                    by_ms = self.checked_until - horizon,
                    "wall clock went back; occurrences already handled are not played again"
                );
                self.checked_until = horizon;
            }
            return;
        }
        let tt = read(&self.timetable);
        let (Ok(from), Ok(to)) = (
            jiff::Timestamp::from_millisecond(self.checked_until),
            jiff::Timestamp::from_millisecond(horizon),
        ) else {
            return;
        };
        let occs = tt.occurrences(from, to, None);
        self.checked_until = horizon;
        let _ = self
            .records
            .set_kv("scheduler_checked_until", &horizon.to_string());
        for o in occs {
            // [from, to): each instant is looked at once.
            let at = o.at.as_millisecond();
            let key = o.at.to_string();
            match self.records.fired(&o.schedule, &key) {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "reading fired occurrences failed");
                    continue;
                }
            }
            let missed = now - at > 2_000;
            let Ok(now_ts) = jiff::Timestamp::from_millisecond(now) else {
                continue;
            };
            if !o.missed.should_play(o.at, now_ts) {
                tracing::info!(schedule = %o.schedule, at = %key, "missed occurrence skipped by its policy");
                let _ = self.records.mark_fired(&o.schedule, &key, None, "missed");
                continue;
            }
            let Some(spec) = self.spec_for(&tt, &o, missed, now) else {
                let _ = self
                    .records
                    .mark_fired(&o.schedule, &key, None, "unknown programme");
                continue;
            };
            let id = spec.id.clone();
            match self.submit(spec, now) {
                Ok(s) => {
                    let _ = self
                        .records
                        .mark_fired(&o.schedule, &key, Some(&s.id), "submitted");
                }
                Err(e) => {
                    tracing::warn!(schedule = %o.schedule, at = %key, error = %e, "scheduled broadcast not started");
                    let _ =
                        self.records
                            .mark_fired(&o.schedule, &key, id.as_deref(), &e.to_string());
                }
            }
        }
    }

    pub(super) fn spec_for(
        &self,
        tt: &Timetable,
        o: &tgw_core::schedule::Occurrence,
        missed: bool,
        now: Ms,
    ) -> Option<Spec> {
        let p = tt.programme(&o.programme)?;
        let at = o.at.as_millisecond();
        Some(Spec {
            id: Some(format!(
                "s-{}-{}",
                o.schedule,
                o.local.strftime("%Y%m%dT%H%M%S")
            )),
            origin: format!("schedule:{}", o.schedule),
            title: if p.name.is_empty() {
                p.id.clone()
            } else {
                p.name.clone()
            },
            priority: o.priority,
            targets: o.targets.clone(),
            recipe: crate::broadcast::recipe_of(p),
            start_at: Some(if missed { now } else { at }),
            latest_start: None,
            on_preempt: p.on_preempt,
        })
    }
}
