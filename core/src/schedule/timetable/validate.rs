//! The checks [`Timetable`] runs once when it is built: ids, references,
//! group cycles, ranges, and schedules that can never fire.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;

use super::error::{Fault, fault};
use super::model::{Group, Parts, Schedule};
use super::values::{Item, check_asset, format_duration};
use super::{MAX_AT, MAX_INTERVAL, MAX_ITEMS, MAX_TTS_CHARS, Timetable};
use crate::broadcast::Target;
use crate::schedule::calendar::Calendar;
use crate::schedule::rrule;

fn valid_ident(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check_ident(path: &str, what: &str, s: &str) -> Result<(), Fault> {
    if valid_ident(s) {
        Ok(())
    } else {
        Err(fault(
            path,
            format!("{what} `{s}` must be 1-64 letters, digits, `-` or `_`"),
        ))
    }
}

/// An anchor for rules that do not depend on their start.
const ANCHOR: Date = Date::constant(2000, 1, 3);

impl Timetable {
    pub(super) fn build(
        parts: Parts,
        calendar: Calendar,
        default_tz: &str,
    ) -> Result<Timetable, Fault> {
        let tz_name = parts
            .timezone
            .clone()
            .unwrap_or_else(|| default_tz.to_string());
        let tz = TimeZone::get(&tz_name).map_err(|_| {
            fault(
                "timezone",
                format!("`{tz_name}` is not an IANA time zone (e.g. Asia/Shanghai)"),
            )
        })?;
        let schemes = check_schemes(&parts)?;
        let names = group_names(&parts.groups)?;
        for (i, g) in parts.groups.iter().enumerate() {
            check_targets(&names, &format!("group[{i}].targets"), &g.targets)?;
        }
        let groups = expand_groups(&parts.groups, &names)?;
        for (i, q) in parts.quiet_hours.iter().enumerate() {
            check_targets(&names, &format!("quiet_hours[{i}].targets"), &q.targets)?;
            if q.from == q.to {
                return Err(fault(
                    format!("quiet_hours[{i}].to"),
                    format!("`from` and `to` are both {}: the window is empty", q.from),
                ));
            }
        }
        let programmes = check_programmes(&parts)?;
        let mut ids = BTreeSet::new();
        for (i, s) in parts.schedules.iter().enumerate() {
            check_ident(&format!("schedule[{i}].id"), "schedule id", &s.id)?;
            if !ids.insert(s.id.as_str()) {
                return Err(fault(
                    format!("schedule[{i}].id"),
                    format!("schedule `{}` is defined twice", s.id),
                ));
            }
            check_schedule(i, s, &schemes, &programmes, &names)?;
        }

        let tt = Timetable {
            parts,
            tz_name,
            tz,
            calendar,
            groups,
        };
        for (i, s) in tt.parts.schedules.iter().enumerate() {
            tt.check_fires(s).map_err(|m| {
                fault(
                    format!(
                        "schedule[{i}].{}",
                        if s.rrule.is_some() { "rrule" } else { "at" }
                    ),
                    m,
                )
            })?;
        }
        Ok(tt)
    }

    /// Errors when a schedule can never fire.
    fn check_fires(&self, s: &Schedule) -> Result<(), String> {
        if let Some(r) = &s.rrule {
            let start = s.from.unwrap_or(ANCHOR).to_datetime(Time::midnight());
            let (first, _) = r.first(start, &self.tz).map_err(|e| e.to_string())?;
            if let Some(u) = s.until
                && first.date() > u
            {
                return Err(format!(
                    "never fires: the first time the rule gives is {first}, after `until` ({u})"
                ));
            }
            return Ok(());
        }
        let (Some(f), Some(u)) = (s.from, s.until) else {
            return Ok(());
        };
        let days = s.days.clone().unwrap_or_default();
        let mut d = f;
        while d <= u {
            if days.matches(d, &self.calendar)
                && s.at
                    .iter()
                    .any(|t| rrule::resolve_local(&self.tz, d.to_datetime(t.0)).is_some())
            {
                return Ok(());
            }
            match d.tomorrow() {
                Ok(n) => d = n,
                Err(_) => break,
            }
        }
        Err(format!(
            "never fires: no date from {f} to {u} is one of its days ({days})"
        ))
    }
}

/// Depth-first expansion of group `i` into `leaves`; `Err` holds the cycle.
fn expand_group(
    all: &[Group],
    names: &BTreeMap<&str, usize>,
    i: usize,
    stack: &mut Vec<String>,
    leaves: &mut BTreeSet<Target>,
) -> Result<(), Vec<String>> {
    let Some(g) = all.get(i) else { return Ok(()) };
    for t in &g.targets {
        match t {
            Target::Group(name) => {
                if let Some(pos) = stack.iter().position(|s| s == name) {
                    let mut cycle = stack[pos..].to_vec();
                    cycle.push(name.clone());
                    return Err(cycle);
                }
                let Some(&j) = names.get(name.as_str()) else {
                    continue;
                };
                stack.push(name.clone());
                expand_group(all, names, j, stack, leaves)?;
                stack.pop();
            }
            other => {
                leaves.insert(other.clone());
            }
        }
    }
    Ok(())
}

/// Scheme ids: well-formed, unique, and `active_scheme` one of them
/// (required when there are any).
fn check_schemes(parts: &Parts) -> Result<BTreeSet<&str>, Fault> {
    let mut schemes = BTreeSet::new();
    for (i, s) in parts.schemes.iter().enumerate() {
        let p = format!("scheme[{i}].id");
        check_ident(&p, "scheme id", &s.id)?;
        if !schemes.insert(s.id.as_str()) {
            return Err(fault(p, format!("scheme `{}` is defined twice", s.id)));
        }
    }
    match &parts.active_scheme {
        Some(a) if !schemes.contains(a.as_str()) => {
            let known: Vec<_> = schemes.iter().copied().collect();
            return Err(fault(
                "active_scheme",
                if known.is_empty() {
                    format!("`{a}` is not a scheme: there are no [[scheme]] entries")
                } else {
                    format!("`{a}` is not a scheme: use one of {}", known.join(", "))
                },
            ));
        }
        None if !schemes.is_empty() => {
            return Err(fault(
                "active_scheme",
                "is required when there are schemes: say which one is in force",
            ));
        }
        _ => {}
    }
    Ok(schemes)
}

/// Group names, well-formed and unique, with their index.
fn group_names(groups: &[Group]) -> Result<BTreeMap<&str, usize>, Fault> {
    let mut names = BTreeMap::new();
    for (i, g) in groups.iter().enumerate() {
        let p = format!("group[{i}].name");
        check_ident(&p, "group name", &g.name)?;
        if names.insert(g.name.as_str(), i).is_some() {
            return Err(fault(p, format!("group `{}` is defined twice", g.name)));
        }
    }
    Ok(names)
}

/// A target list is not empty and names only groups that exist.
fn check_targets(
    names: &BTreeMap<&str, usize>,
    path: &str,
    targets: &[Target],
) -> Result<(), Fault> {
    if targets.is_empty() {
        return Err(fault(
            path,
            "is empty: give at least one target, e.g. \"all\"",
        ));
    }
    for (j, t) in targets.iter().enumerate() {
        if let Target::Group(g) = t
            && !names.contains_key(g.as_str())
        {
            return Err(fault(
                format!("{path}[{j}]"),
                format!("`{t}`: there is no [[group]] named `{g}`"),
            ));
        }
    }
    Ok(())
}

/// Each group's members with nested groups expanded; a cycle is a fault.
fn expand_groups(
    all: &[Group],
    names: &BTreeMap<&str, usize>,
) -> Result<BTreeMap<String, Vec<Target>>, Fault> {
    let mut groups = BTreeMap::new();
    for (i, g) in all.iter().enumerate() {
        let mut leaves = BTreeSet::new();
        let mut stack = vec![g.name.clone()];
        expand_group(all, names, i, &mut stack, &mut leaves).map_err(|cycle| {
            fault(
                format!("group[{i}].targets"),
                format!("groups contain each other: {}", cycle.join(" → ")),
            )
        })?;
        groups.insert(g.name.clone(), leaves.into_iter().collect());
    }
    Ok(groups)
}

/// Programme ids unique and well-formed, items, repeat, interval, volume
/// in range. Returns the ids.
fn check_programmes(parts: &Parts) -> Result<BTreeSet<&str>, Fault> {
    let mut programmes = BTreeSet::new();
    for (i, p) in parts.programmes.iter().enumerate() {
        let at = |k: &str| format!("programme[{i}].{k}");
        check_ident(&at("id"), "programme id", &p.id)?;
        if !programmes.insert(p.id.as_str()) {
            return Err(fault(
                at("id"),
                format!("programme `{}` is defined twice", p.id),
            ));
        }
        if p.items.is_empty() {
            return Err(fault(
                at("items"),
                "is empty: give at least one { tts = \"…\" } or { asset = \"sha256:…\" }",
            ));
        }
        if p.items.len() > MAX_ITEMS {
            return Err(fault(
                at("items"),
                format!("has {} items; at most {MAX_ITEMS}", p.items.len()),
            ));
        }
        for (j, item) in p.items.iter().enumerate() {
            check_item(&format!("programme[{i}].items[{j}]"), item)?;
        }
        if !(1..=20).contains(&p.repeat) {
            return Err(fault(
                at("repeat"),
                format!("{} is out of range: play the items 1 to 20 times", p.repeat),
            ));
        }
        if p.interval > MAX_INTERVAL {
            return Err(fault(
                at("interval"),
                format!("{} is longer than 1h", format_duration(p.interval)),
            ));
        }
        if let Some(v) = p.volume
            && v > 100
        {
            return Err(fault(at("volume"), format!("{v} is out of range 0-100")));
        }
    }
    Ok(programmes)
}

/// A TTS text of 1-[`MAX_TTS_CHARS`] characters, or a well-formed asset.
fn check_item(ip: &str, item: &Item) -> Result<(), Fault> {
    match item {
        Item::Tts(t) => {
            let n = t.trim().chars().count();
            if n == 0 {
                return Err(fault(ip, "the text to speak is empty"));
            }
            if n > MAX_TTS_CHARS {
                return Err(fault(
                    ip,
                    format!(
                        "the text is {n} characters; at most {MAX_TTS_CHARS} (split it into several items)"
                    ),
                ));
            }
            Ok(())
        }
        Item::Asset(a) => check_asset(a).map_err(|m| fault(ip, m.to_string())),
    }
}

/// One schedule: references, targets, range, and either `at` or `rrule`.
fn check_schedule(
    i: usize,
    s: &Schedule,
    schemes: &BTreeSet<&str>,
    programmes: &BTreeSet<&str>,
    names: &BTreeMap<&str, usize>,
) -> Result<(), Fault> {
    let at = |k: &str| format!("schedule[{i}].{k}");
    if !programmes.contains(s.programme.as_str()) {
        return Err(fault(
            at("programme"),
            format!("there is no [[programme]] with id `{}`", s.programme),
        ));
    }
    if let Some(sc) = &s.scheme
        && !schemes.contains(sc.as_str())
    {
        return Err(fault(
            at("scheme"),
            format!("there is no [[scheme]] with id `{sc}`"),
        ));
    }
    check_targets(names, &at("targets"), &s.targets)?;
    if let (Some(f), Some(u)) = (s.from, s.until)
        && u < f
    {
        return Err(fault(at("until"), format!("{u} is before `from` ({f})")));
    }
    match (&s.rrule, s.at.is_empty()) {
        (Some(_), false) => Err(fault(
            at("rrule"),
            "give either `at` (with `days`) or `rrule`, not both",
        )),
        (None, true) => Err(fault(
            format!("schedule[{i}]"),
            "says no time: give `at = [\"07:30\"]` (with `days`) or `rrule = \"FREQ=…\"`",
        )),
        (Some(r), true) => {
            if s.days.is_some() {
                return Err(fault(
                    at("days"),
                    "`days` goes with `at`; with `rrule` say the days in the rule (BYDAY)",
                ));
            }
            if r.by_hour.is_empty() {
                return Err(fault(
                    at("rrule"),
                    "say the time of day with BYHOUR (and BYMINUTE), e.g. BYHOUR=18;BYMINUTE=0",
                ));
            }
            if s.from.is_none() && r.depends_on_start() {
                return Err(fault(
                    at("from"),
                    "is required: this rule counts from its start (COUNT, INTERVAL, or a day taken from the start date)",
                ));
            }
            Ok(())
        }
        (None, false) => {
            if s.at.len() > MAX_AT {
                return Err(fault(
                    at("at"),
                    format!("lists {} times; at most {MAX_AT}", s.at.len()),
                ));
            }
            let mut seen = BTreeSet::new();
            for (j, t) in s.at.iter().enumerate() {
                if !seen.insert(*t) {
                    return Err(fault(
                        format!("schedule[{i}].at[{j}]"),
                        format!("{t} is listed twice"),
                    ));
                }
            }
            Ok(())
        }
    }
}
