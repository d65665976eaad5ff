//! What a valid timetable answers: occurrences in a range, the next one,
//! targets → horns, quiet horns.

use std::collections::BTreeSet;

use jiff::civil::{Date, DateTime, Time};
use jiff::{SignedDuration, Timestamp, ToSpan};

use super::Timetable;
use super::UnknownTarget;
use super::model::Schedule;
use super::values::Days;
use crate::broadcast::Target;
use crate::schedule::rrule;
use crate::schedule::{HornInfo, Occurrence};

impl Timetable {
    fn in_scheme(&self, s: &Schedule, scheme: Option<&str>) -> bool {
        match &s.scheme {
            None => true,
            Some(x) => scheme.or(self.active_scheme()) == Some(x.as_str()),
        }
    }

    /// Every time `s` fires with `from <= instant < to`, as (local, instant),
    /// in no particular order.
    pub fn schedule_between(
        &self,
        s: &Schedule,
        from: Timestamp,
        to: Timestamp,
    ) -> Vec<(DateTime, Timestamp)> {
        let mut out = Vec::new();
        if from >= to {
            return out;
        }
        let mut lo = self
            .tz
            .to_datetime(from)
            .date()
            .yesterday()
            .unwrap_or(Date::MIN);
        let mut hi = self
            .tz
            .to_datetime(to)
            .date()
            .tomorrow()
            .unwrap_or(Date::MAX);
        if let Some(f) = s.from {
            lo = lo.max(f);
        }
        if let Some(u) = s.until {
            hi = hi.min(u);
        }
        if lo > hi {
            return out;
        }
        if let Some(r) = &s.rrule {
            let start = s
                .from
                .unwrap_or_else(|| lo.yesterday().unwrap_or(lo))
                .to_datetime(Time::midnight());
            out.extend(
                r.between(start, &self.tz, from, to)
                    .into_iter()
                    .filter(|(dt, _)| dt.date() <= hi),
            );
            return out;
        }
        let days = s.days.as_ref().unwrap_or(&Days::Daily);
        let mut d = lo;
        loop {
            if days.matches(d, &self.calendar) {
                for t in &s.at {
                    let dt = d.to_datetime(t.0);
                    if let Some(ts) = rrule::resolve_local(&self.tz, dt)
                        && from <= ts
                        && ts < to
                    {
                        out.push((dt, ts));
                    }
                }
            }
            if d >= hi {
                break;
            }
            match d.tomorrow() {
                Ok(n) => d = n,
                Err(_) => break,
            }
        }
        out
    }

    /// Every occurrence with `from <= at < to` of the enabled schedules in
    /// `scheme` (default: the active scheme; schedules without a scheme are
    /// in every scheme), sorted by time, then schedule id.
    pub fn occurrences(
        &self,
        from: Timestamp,
        to: Timestamp,
        scheme: Option<&str>,
    ) -> Vec<Occurrence> {
        let mut out = Vec::new();
        for s in &self.parts.schedules {
            if !s.enabled || !self.in_scheme(s, scheme) {
                continue;
            }
            let Some(p) = self.programme(&s.programme) else {
                continue;
            };
            for (local, at) in self.schedule_between(s, from, to) {
                out.push(Occurrence {
                    schedule: s.id.clone(),
                    programme: s.programme.clone(),
                    at,
                    local,
                    targets: s.targets.clone(),
                    priority: p.priority,
                    missed: s.missed,
                });
            }
        }
        out.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.schedule.cmp(&b.schedule)));
        out
    }

    /// The first occurrence strictly after `ts` in the active scheme, looking
    /// up to 50 years ahead.
    pub fn next_after(&self, ts: Timestamp) -> Option<Occurrence> {
        let mut lo = ts.checked_add(SignedDuration::from_nanos(1)).ok()?;
        let mut span = SignedDuration::from_hours(24);
        let limit = ts
            .checked_add(SignedDuration::from_hours(
                24 * 366 * i64::from(rrule::NEVER_FIRES_YEARS),
            ))
            .unwrap_or(Timestamp::MAX);
        while lo < limit {
            let hi = lo.checked_add(span).unwrap_or(Timestamp::MAX).min(limit);
            if let Some(o) = self.occurrences(lo, hi, None).into_iter().next() {
                return Some(o);
            }
            lo = hi;
            span = span.checked_mul(4).unwrap_or(span);
        }
        None
    }

    fn leaves<'t>(&'t self, targets: &'t [Target]) -> Vec<&'t Target> {
        let mut out = Vec::new();
        for t in targets {
            match t {
                Target::Group(g) => {
                    if let Some(members) = self.groups.get(g) {
                        out.extend(members.iter());
                    }
                }
                other => out.push(other),
            }
        }
        out
    }

    /// The ids of the horns `targets` reach. Groups are expanded; targets
    /// naming no horn (an unknown speaker id) simply add nothing — see
    /// [`Timetable::unknown_targets`].
    pub fn resolve(&self, targets: &[Target], horns: &[HornInfo]) -> BTreeSet<String> {
        let leaves = self.leaves(targets);
        horns
            .iter()
            .filter(|h| leaves.iter().any(|t| h.matches(t)))
            .map(|h| h.id.clone())
            .collect()
    }

    /// Targets written in the timetable (groups, quiet hours, schedules)
    /// that reach no horn of `horns`: a mistyped speaker id, a village
    /// without horns.
    pub fn unknown_targets(&self, horns: &[HornInfo]) -> Vec<UnknownTarget> {
        let mut out = Vec::new();
        let mut scan = |path: String, targets: &[Target]| {
            for (j, t) in targets.iter().enumerate() {
                if matches!(t, Target::Group(_) | Target::All) {
                    continue;
                }
                if !horns.iter().any(|h| h.matches(t)) {
                    out.push(UnknownTarget {
                        path: format!("{path}[{j}]"),
                        target: t.clone(),
                    });
                }
            }
        };
        for (i, g) in self.parts.groups.iter().enumerate() {
            scan(format!("group[{i}].targets"), &g.targets);
        }
        for (i, q) in self.parts.quiet_hours.iter().enumerate() {
            scan(format!("quiet_hours[{i}].targets"), &q.targets);
        }
        for (i, s) in self.parts.schedules.iter().enumerate() {
            scan(format!("schedule[{i}].targets"), &s.targets);
        }
        out
    }

    /// The horns in a quiet-hours window at local time `local`.
    pub fn quiet_horns(&self, local: DateTime, horns: &[HornInfo]) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for q in &self.parts.quiet_hours {
            if q.contains(local.time()) {
                out.extend(self.resolve(&q.targets, horns));
            }
        }
        out
    }

    /// Expanded targets of `targets` (groups replaced by their members),
    /// deduplicated and sorted.
    pub fn expand_targets(&self, targets: &[Target]) -> BTreeSet<Target> {
        self.leaves(targets).into_iter().cloned().collect()
    }

    /// The years, in local time, that `[from, to)` touches.
    pub fn years_between(&self, from: Timestamp, to: Timestamp) -> Vec<i16> {
        if from >= to {
            return Vec::new();
        }
        let a = self.tz.to_datetime(from).year();
        let b = self
            .tz
            .to_datetime(to.checked_sub(SignedDuration::from_nanos(1)).unwrap_or(to))
            .year();
        (a..=b).collect()
    }

    /// Whether an enabled schedule in `scheme` (default: active) uses the
    /// workday calendar.
    pub fn uses_calendar(&self, scheme: Option<&str>) -> bool {
        self.parts.schedules.iter().any(|s| {
            s.enabled
                && self.in_scheme(s, scheme)
                && s.rrule.is_none()
                && s.days.as_ref().is_some_and(Days::uses_calendar)
        })
    }

    /// Whether the schedule is enabled and in `scheme` (default: active).
    pub fn is_live(&self, s: &Schedule, scheme: Option<&str>) -> bool {
        s.enabled && self.in_scheme(s, scheme)
    }

    /// Shifts a timestamp by whole days in local time (for callers building
    /// ranges such as "the next 7 days").
    pub fn add_days(&self, ts: Timestamp, days: i32) -> Option<Timestamp> {
        ts.to_zoned(self.tz.clone())
            .checked_add(days.days())
            .ok()
            .map(|z| z.timestamp())
    }
}
