//! `tgw schedule check FILE`: what a timetable will do over a range, and
//! what looks wrong, for a person to review before it goes live.
//!
//! The report lists every occurrence (local time, schedule, programme,
//! targets, horns reached, horns in quiet hours) and warns about:
//! - overlap: two occurrences in the same minute reaching a common horn —
//!   which one wins (higher priority preempts) or which waits (equal);
//! - never-fires: a live schedule with no occurrence in the range;
//! - calendar-gap: a year of the range without calendar entries while some
//!   schedule uses `workdays`/`rest-days` (weekends are assumed);
//! - quiet-hours: an occurrence all of whose horns are in quiet hours;
//! - no-horns: an occurrence that reaches no horn of the inventory;
//! - unknown-target: a target naming no horn of the inventory.
//!
//! Repeated warnings (the same schedules, every day) are reported once with
//! a count and the first time. Without a horn inventory, overlaps and quiet
//! hours are judged on the targets as written.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use jiff::Timestamp;
use jiff::civil::DateTime;
use serde::Serialize;

use super::timetable::Timetable;
use super::{HornInfo, Occurrence};
use crate::broadcast::{OnPreempt, Priority, Target};

/// One occurrence, with what it reaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckedOccurrence {
    /// The instant.
    pub at: Timestamp,
    /// Local time in the timetable's zone.
    pub local: DateTime,
    /// Schedule id.
    pub schedule: String,
    /// Programme id.
    pub programme: String,
    /// Programme priority.
    pub priority: Priority,
    /// Targets as written.
    pub targets: Vec<Target>,
    /// Horns reached (0 without an inventory).
    pub horns: usize,
    /// Of those, horns in quiet hours at that time (0 for emergency
    /// programmes, which ignore quiet hours).
    pub quiet: usize,
}

/// What a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WarningKind {
    /// Two occurrences in the same minute share horns.
    Overlap,
    /// A live schedule has no occurrence in the range.
    NeverFires,
    /// The calendar has no entries for a year of the range.
    CalendarGap,
    /// Every horn of an occurrence is in quiet hours.
    QuietHours,
    /// An occurrence reaches no horn.
    NoHorns,
    /// A target names no horn of the inventory.
    UnknownTarget,
}

impl WarningKind {
    fn as_str(self) -> &'static str {
        match self {
            WarningKind::Overlap => "overlap",
            WarningKind::NeverFires => "never-fires",
            WarningKind::CalendarGap => "calendar-gap",
            WarningKind::QuietHours => "quiet-hours",
            WarningKind::NoHorns => "no-horns",
            WarningKind::UnknownTarget => "unknown-target",
        }
    }
}

/// One warning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// What it is about.
    pub kind: WarningKind,
    /// The schedules concerned (two for an overlap).
    pub schedules: Vec<String>,
    /// The first local time it happens, when it is about occurrences.
    pub first: Option<DateTime>,
    /// How many occurrences (or occurrence pairs) it covers.
    pub count: usize,
    /// A sentence for people.
    pub message: String,
}

/// The result of [`check`]: shown as a table, or as JSON for `--json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// IANA zone of the local times.
    pub time_zone: String,
    /// Start of the range (inclusive).
    pub from: Timestamp,
    /// End of the range (exclusive).
    pub to: Timestamp,
    /// The scheme checked (the active one).
    pub scheme: Option<String>,
    /// Horns in the inventory the check used.
    pub horns_known: usize,
    /// Every occurrence in the range, in order.
    pub occurrences: Vec<CheckedOccurrence>,
    /// What looks wrong.
    pub warnings: Vec<Warning>,
}

/// What an occurrence reaches: horn ids, or (without an inventory) its
/// expanded targets.
enum Reach {
    Horns(BTreeSet<String>),
    Targets(BTreeSet<Target>),
}

impl Reach {
    /// How many horns (or targets) the two share; `None` if none.
    fn shared(&self, other: &Reach) -> Option<usize> {
        let n = match (self, other) {
            (Reach::Horns(a), Reach::Horns(b)) => a.intersection(b).count(),
            (Reach::Targets(a), Reach::Targets(b)) => {
                if a.contains(&Target::All) || b.contains(&Target::All) {
                    a.len().min(b.len()).max(1)
                } else {
                    a.intersection(b).count()
                }
            }
            _ => 0,
        };
        (n > 0).then_some(n)
    }
}

/// A warning's identity: kind, schedules, message.
type TallyKey = (WarningKind, Vec<String>, String);

/// Aggregates repeated warnings: count and first time per key.
#[derive(Default)]
struct Tally {
    map: BTreeMap<TallyKey, (usize, Option<DateTime>)>,
}

impl Tally {
    fn add(
        &mut self,
        kind: WarningKind,
        schedules: Vec<String>,
        what: String,
        at: Option<DateTime>,
    ) {
        let e = self.map.entry((kind, schedules, what)).or_insert((0, at));
        e.0 += 1;
    }
}

/// Lists the occurrences of `tt` (active scheme) with `from <= at < to` and
/// warns about what looks wrong. `horns` is the inventory (may be empty).
pub fn check(tt: &Timetable, from: Timestamp, to: Timestamp, horns: &[HornInfo]) -> CheckReport {
    let occs: Vec<Occurrence> = tt.occurrences(from, to, None);
    let mut tally = Tally::default();
    let (rows, reach) = tally_occurrences(tt, &occs, horns, &mut tally);
    tally_overlaps(tt, &occs, &reach, !horns.is_empty(), &mut tally);
    let mut warnings = tally_warnings(tally);
    range_warnings(tt, &occs, from, to, horns, &mut warnings);
    warnings.sort_by(|a, b| {
        a.first
            .is_none()
            .cmp(&b.first.is_none())
            .then(a.first.cmp(&b.first))
            .then(a.kind.cmp(&b.kind))
    });

    CheckReport {
        time_zone: tt.time_zone_name().to_string(),
        from,
        to,
        scheme: tt.active_scheme().map(str::to_string),
        horns_known: horns.len(),
        occurrences: rows,
        warnings,
    }
}

/// One row per occurrence, with what it reaches; quiet-hours and no-horn
/// warnings into `tally`.
fn tally_occurrences(
    tt: &Timetable,
    occs: &[Occurrence],
    horns: &[HornInfo],
    tally: &mut Tally,
) -> (Vec<CheckedOccurrence>, Vec<Reach>) {
    let with_horns = !horns.is_empty();
    let mut rows = Vec::with_capacity(occs.len());
    let mut reach = Vec::with_capacity(occs.len());
    let quiet_targets = |local: DateTime| -> BTreeSet<Target> {
        tt.parts()
            .quiet_hours
            .iter()
            .filter(|q| q.contains(local.time()))
            .flat_map(|q| tt.expand_targets(&q.targets))
            .collect()
    };

    for o in occs {
        let emergency = o.priority == Priority::Emergency;
        let (r, n_horns, n_quiet, swallowed) = if with_horns {
            let set = tt.resolve(&o.targets, horns);
            let quiet = if emergency {
                0
            } else {
                tt.quiet_horns(o.local, horns).intersection(&set).count()
            };
            let n = set.len();
            (Reach::Horns(set), n, quiet, n > 0 && quiet == n)
        } else {
            let set = tt.expand_targets(&o.targets);
            let q = quiet_targets(o.local);
            let swallowed = !emergency
                && !q.is_empty()
                && (q.contains(&Target::All) || set.iter().all(|t| q.contains(t)));
            (Reach::Targets(set), 0, 0, swallowed)
        };
        if swallowed {
            tally.add(
                WarningKind::QuietHours,
                vec![o.schedule.clone()],
                String::new(),
                Some(o.local),
            );
        }
        if with_horns && n_horns == 0 {
            tally.add(
                WarningKind::NoHorns,
                vec![o.schedule.clone()],
                String::new(),
                Some(o.local),
            );
        }
        rows.push(CheckedOccurrence {
            at: o.at,
            local: o.local,
            schedule: o.schedule.clone(),
            programme: o.programme.clone(),
            priority: o.priority,
            targets: o.targets.clone(),
            horns: n_horns,
            quiet: n_quiet,
        });
        reach.push(r);
    }
    (rows, reach)
}

/// Occurrences in the same minute on shared horns (or targets): who waits,
/// who preempts.
fn tally_overlaps(
    tt: &Timetable,
    occs: &[Occurrence],
    reach: &[Reach],
    with_horns: bool,
    tally: &mut Tally,
) {
    // Sorted, so the occurrences of one minute are adjacent.
    let minute = |t: Timestamp| t.as_second().div_euclid(60);
    let mut i = 0;
    while i < occs.len() {
        let mut j = i + 1;
        while j < occs.len() && minute(occs[j].at) == minute(occs[i].at) {
            j += 1;
        }
        for a in i..j {
            for b in a + 1..j {
                let (oa, ob) = (&occs[a], &occs[b]);
                let Some(n) = reach[a].shared(&reach[b]) else {
                    continue;
                };
                let on = if with_horns {
                    format!("{n} shared horn{}", if n == 1 { "" } else { "s" })
                } else {
                    "overlapping targets".to_string()
                };
                let what = if oa.priority == ob.priority {
                    format!(
                        "`{}` and `{}` start in the same minute on {on}, both {}: `{}` waits until `{}` has finished",
                        oa.schedule, ob.schedule, oa.priority, ob.schedule, oa.schedule
                    )
                } else {
                    let (hi, lo) = if oa.priority > ob.priority {
                        (oa, ob)
                    } else {
                        (ob, oa)
                    };
                    let after = match tt.programme(&lo.programme).map(|p| p.on_preempt) {
                        Some(OnPreempt::Drop) => "is dropped there",
                        _ => "resumes afterwards",
                    };
                    format!(
                        "`{}` ({}) preempts `{}` ({}) on {on}; `{}` {after}",
                        hi.schedule, hi.priority, lo.schedule, lo.priority, lo.schedule
                    )
                };
                tally.add(
                    WarningKind::Overlap,
                    vec![oa.schedule.clone(), ob.schedule.clone()],
                    what,
                    Some(oa.local),
                );
            }
        }
        i = j;
    }
}

/// The tallied warnings, each with its count and first time in the message.
fn tally_warnings(tally: Tally) -> Vec<Warning> {
    let mut warnings = Vec::new();
    for ((kind, schedules, what), (count, first)) in tally.map {
        let when = first
            .map(|f| f.strftime("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        let times = if count == 1 {
            format!("at {when}")
        } else {
            format!("{count} times, first at {when}")
        };
        let s0 = schedules.first().cloned().unwrap_or_default();
        let message = match kind {
            WarningKind::Overlap => format!("{what} ({times})"),
            WarningKind::QuietHours => {
                format!("`{s0}` plays only to horns in quiet hours ({times}): it will not be heard")
            }
            WarningKind::NoHorns => format!("`{s0}` reaches no horn ({times})"),
            _ => what,
        };
        warnings.push(Warning {
            kind,
            schedules,
            first,
            count,
            message,
        });
    }
    warnings
}

/// Warnings about the range as a whole: schedules that never fire in it,
/// years the calendar does not cover, targets naming no known horn.
fn range_warnings(
    tt: &Timetable,
    occs: &[Occurrence],
    from: Timestamp,
    to: Timestamp,
    horns: &[HornInfo],
    warnings: &mut Vec<Warning>,
) {
    for s in &tt.parts().schedules {
        if tt.is_live(s, None) && !occs.iter().any(|o| o.schedule == s.id) {
            warnings.push(Warning {
                kind: WarningKind::NeverFires,
                schedules: vec![s.id.clone()],
                first: None,
                count: 0,
                message: format!("`{}` does not fire in this range", s.id),
            });
        }
    }

    if tt.uses_calendar(None) {
        for y in tt.years_between(from, to) {
            if !tt.calendar().covers(y) {
                warnings.push(Warning {
                    kind: WarningKind::CalendarGap,
                    schedules: Vec::new(),
                    first: None,
                    count: 0,
                    message: format!(
                        "the calendar does not cover {y}; weekends assumed for `workdays`/`rest-days`"
                    ),
                });
            }
        }
    }

    if !horns.is_empty() {
        for u in tt.unknown_targets(horns) {
            warnings.push(Warning {
                kind: WarningKind::UnknownTarget,
                schedules: Vec::new(),
                first: None,
                count: 0,
                message: format!("{}: `{}` names no known horn", u.path, u.target),
            });
        }
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tz = jiff::tz::TimeZone::get(&self.time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
        let local = |t: Timestamp| tz.to_datetime(t).strftime("%Y-%m-%d %H:%M").to_string();
        write!(
            f,
            "Timetable check, {} to {} ({})",
            local(self.from),
            local(self.to),
            self.time_zone
        )?;
        if let Some(s) = &self.scheme {
            write!(f, ", scheme {s}")?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "{} occurrence{}, {} warning{}; {}",
            self.occurrences.len(),
            if self.occurrences.len() == 1 { "" } else { "s" },
            self.warnings.len(),
            if self.warnings.len() == 1 { "" } else { "s" },
            if self.horns_known == 0 {
                "no horn inventory: horns not counted, overlaps judged on targets".to_string()
            } else {
                format!("{} horns known", self.horns_known)
            }
        )?;
        if !self.occurrences.is_empty() {
            let header = [
                format!("time ({})", self.time_zone),
                "schedule".into(),
                "programme".into(),
                "priority".into(),
                "horns".into(),
                "quiet".into(),
                "targets".into(),
            ];
            let rows: Vec<[String; 7]> = self
                .occurrences
                .iter()
                .map(|o| {
                    let count = |n: usize| {
                        if self.horns_known == 0 {
                            "-".to_string()
                        } else {
                            n.to_string()
                        }
                    };
                    [
                        o.local.strftime("%Y-%m-%d %a %H:%M").to_string(),
                        o.schedule.clone(),
                        o.programme.clone(),
                        o.priority.to_string(),
                        count(o.horns),
                        count(o.quiet),
                        o.targets
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                    ]
                })
                .collect();
            let mut width = [0usize; 7];
            for r in std::iter::once(&header).chain(rows.iter()) {
                for (w, c) in width.iter_mut().zip(r.iter()) {
                    *w = (*w).max(c.chars().count());
                }
            }
            writeln!(f)?;
            for r in std::iter::once(&header).chain(rows.iter()) {
                let mut line = String::new();
                for (k, (c, w)) in r.iter().zip(width).enumerate() {
                    let pad = w.saturating_sub(c.chars().count());
                    if k == 4 || k == 5 {
                        line.push_str(&" ".repeat(pad));
                        line.push_str(c);
                    } else {
                        line.push_str(c);
                        if k < 6 {
                            line.push_str(&" ".repeat(pad));
                        }
                    }
                    if k < 6 {
                        line.push_str("  ");
                    }
                }
                writeln!(f, "{}", line.trim_end())?;
            }
        }
        if !self.warnings.is_empty() {
            writeln!(f)?;
            writeln!(f, "warnings:")?;
            for w in &self.warnings {
                writeln!(f, "  {:<14} {}", w.kind.as_str(), w.message)?;
            }
        }
        Ok(())
    }
}
