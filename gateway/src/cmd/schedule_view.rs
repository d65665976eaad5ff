//! `tgw schedule list` and `tgw schedule show`: a loaded timetable as
//! tables (or JSON): its parts, when each schedule fires next, and one
//! schedule's or programme's occurrences with the horns they reach.

use std::process::ExitCode;

use jiff::civil::DateTime;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::output::{emit, out, outln, table, targets_text};
use super::schedule::{Loaded, MAX_DAYS};
use tgw_core::schedule::{Item, Occurrence, Programme, Schedule, Timetable};

/// The next time `s` fires at or after `after` (active scheme, enabled),
/// looking up to 50 years ahead.
fn next_of(tt: &Timetable, s: &Schedule, after: Timestamp) -> Option<(DateTime, Timestamp)> {
    if !tt.is_live(s, None) || tt.programme(&s.programme).is_none() {
        return None;
    }
    let limit = after
        .checked_add(SignedDuration::from_hours(24 * 366 * 50))
        .unwrap_or(Timestamp::MAX);
    let mut lo = after;
    let mut span = SignedDuration::from_hours(24);
    while lo < limit {
        let hi = lo.checked_add(span).unwrap_or(Timestamp::MAX).min(limit);
        if let Some(first) = tt
            .schedule_between(s, lo, hi)
            .into_iter()
            .min_by_key(|(_, t)| *t)
        {
            return Some(first);
        }
        lo = hi;
        span = span.checked_mul(4).unwrap_or(span);
    }
    None
}

/// `at 07:30, 18:00 workdays` or `rrule FREQ=…`, with the date range.
fn when(s: &Schedule) -> String {
    let mut out = match &s.rrule {
        Some(r) => format!("rrule {r}"),
        None => {
            let at: Vec<String> = s.at.iter().map(ToString::to_string).collect();
            let days = s
                .days
                .as_ref()
                .map_or_else(|| "daily".to_string(), ToString::to_string);
            format!("at {} {days}", at.join(","))
        }
    };
    match (s.from, s.until) {
        (Some(f), Some(u)) => out.push_str(&format!(" ({f}..{u})")),
        (Some(f), None) => out.push_str(&format!(" (from {f})")),
        (None, Some(u)) => out.push_str(&format!(" (until {u})")),
        (None, None) => {}
    }
    out
}

/// Why a schedule does not fire, if it does not.
fn not_live_reason(tt: &Timetable, s: &Schedule) -> Option<String> {
    if !s.enabled {
        return Some("disabled".into());
    }
    if !tt.is_live(s, None) {
        return Some(format!(
            "scheme {} is not active",
            s.scheme.as_deref().unwrap_or("-")
        ));
    }
    None
}

fn fmt_local(dt: DateTime) -> String {
    dt.strftime("%Y-%m-%d %a %H:%M").to_string()
}

/// `tgw schedule list`: the whole timetable and when each schedule fires next.
pub(super) fn list(l: &Loaded, json: bool, now: Timestamp) -> anyhow::Result<ExitCode> {
    let tt = &l.tt;
    let parts = tt.parts();
    let mut o = String::new();
    if json {
        outln!(o, "{}", serde_json::to_string_pretty(&list_json(l, now))?);
        emit(&o)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        o,
        "Timetable from {} ({}){}",
        l.source,
        tt.time_zone_name(),
        tt.active_scheme()
            .map(|s| format!(", active scheme {s}"))
            .unwrap_or_default()
    );
    list_sections(&mut o, tt);
    outln!(o, "\nprogrammes:");
    out!(o, "{}", programmes_table(tt));
    outln!(o, "\nschedules:");
    out!(o, "{}", schedules_table(tt, now));
    emit(&o)?;
    eprintln!(
        "{} programme(s), {} schedule(s); {}",
        parts.programmes.len(),
        parts.schedules.len(),
        l.horns_note
    );
    Ok(ExitCode::SUCCESS)
}

/// `tgw schedule list --json`.
fn list_json(l: &Loaded, now: Timestamp) -> Value {
    let tt = &l.tt;
    let parts = tt.parts();
    let schedules: Vec<Value> = parts
        .schedules
        .iter()
        .map(|s| {
            let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
            if let Some(o) = v.as_object_mut() {
                o.insert("enabled".into(), json!(s.enabled));
                o.insert("live".into(), json!(tt.is_live(s, None)));
                o.insert(
                    "next".into(),
                    match next_of(tt, s, now) {
                        Some((local, at)) => json!({"at": at, "local": local}),
                        None => Value::Null,
                    },
                );
            }
            v
        })
        .collect();
    json!({
        "source": l.source,
        "time_zone": tt.time_zone_name(),
        "active_scheme": tt.active_scheme(),
        "schemes": parts.schemes.iter().map(|s| json!({
            "id": s.id, "name": s.name, "active": tt.active_scheme() == Some(s.id.as_str()),
        })).collect::<Vec<_>>(),
        "groups": parts.groups,
        "quiet_hours": parts.quiet_hours,
        "programmes": parts.programmes,
        "schedules": schedules,
    })
}

/// The schemes, groups and quiet hours of `list`, each only when present.
fn list_sections(o: &mut String, tt: &Timetable) {
    let parts = tt.parts();
    if !parts.schemes.is_empty() {
        outln!(o, "\nschemes:");
        let rows: Vec<Vec<String>> = parts
            .schemes
            .iter()
            .map(|s| {
                let active = tt.active_scheme() == Some(s.id.as_str());
                vec![
                    if active { "*" } else { "" }.to_string(),
                    s.id.clone(),
                    s.name.clone(),
                ]
            })
            .collect();
        out!(o, "{}", table(&["", "id", "name"], &rows));
    }
    if !parts.groups.is_empty() {
        outln!(o, "\ngroups:");
        let rows: Vec<Vec<String>> = parts
            .groups
            .iter()
            .map(|g| vec![g.name.clone(), targets_text(&g.targets)])
            .collect();
        out!(o, "{}", table(&["name", "targets"], &rows));
    }
    if !parts.quiet_hours.is_empty() {
        outln!(o, "\nquiet hours:");
        let rows: Vec<Vec<String>> = parts
            .quiet_hours
            .iter()
            .map(|q| vec![format!("{}-{}", q.from, q.to), targets_text(&q.targets)])
            .collect();
        out!(o, "{}", table(&["time", "targets"], &rows));
    }
}

/// The programmes table of `list`.
fn programmes_table(tt: &Timetable) -> String {
    let rows: Vec<Vec<String>> = tt
        .parts()
        .programmes
        .iter()
        .map(|p| {
            vec![
                p.id.clone(),
                p.name.clone(),
                p.priority.to_string(),
                p.items.len().to_string(),
                format!(
                    "{}x{}",
                    p.repeat,
                    if p.interval.is_zero() {
                        String::new()
                    } else {
                        format!(
                            " every {}",
                            tgw_core::schedule::timetable::format_duration(p.interval)
                        )
                    }
                ),
                p.volume.map_or_else(|| "-".into(), |v| v.to_string()),
            ]
        })
        .collect();
    table(
        &["id", "name", "priority", "items", "repeat", "volume"],
        &rows,
    )
}

/// The schedules table of `list`, with the next time each fires.
fn schedules_table(tt: &Timetable, now: Timestamp) -> String {
    let rows: Vec<Vec<String>> = tt
        .parts()
        .schedules
        .iter()
        .map(|s| {
            let next = match (not_live_reason(tt, s), next_of(tt, s, now)) {
                (Some(why), _) => format!("- ({why})"),
                (None, Some((local, _))) => fmt_local(local),
                (None, None) => match s.until {
                    Some(u) if u < tt.time_zone().to_datetime(now).date() => {
                        format!("never (ended {u})")
                    }
                    _ => "never".into(),
                },
            };
            vec![
                s.id.clone(),
                s.programme.clone(),
                when(s),
                targets_text(&s.targets),
                s.scheme.clone().unwrap_or_else(|| "*".into()),
                if s.enabled { "yes" } else { "no" }.into(),
                next,
            ]
        })
        .collect();
    table(
        &[
            "id",
            "programme",
            "when",
            "targets",
            "scheme",
            "enabled",
            "next",
        ],
        &rows,
    )
}

/// What `show` shows: the schedule asked for (if it is one), the programme,
/// and the schedules that play it.
struct Selection<'a> {
    schedule: Option<&'a Schedule>,
    programme: Option<&'a Programme>,
    schedules: Vec<&'a Schedule>,
}

/// Looks `id` up as a schedule (unless `want_programme`), else as a programme.
fn select<'a>(l: &'a Loaded, id: &str, want_programme: bool) -> anyhow::Result<Selection<'a>> {
    let tt = &l.tt;
    let schedule = (!want_programme).then(|| tt.schedule(id)).flatten();
    let (programme, schedules): (_, Vec<&Schedule>) = match schedule {
        Some(s) => (tt.programme(&s.programme), vec![s]),
        None => match tt.programme(id) {
            Some(p) => (
                Some(p),
                tt.parts()
                    .schedules
                    .iter()
                    .filter(|s| s.programme == p.id)
                    .collect(),
            ),
            None => anyhow::bail!(
                "{}: no schedule or programme `{id}` (`tgw schedule list` shows them)",
                l.source
            ),
        },
    };
    Ok(Selection {
        schedule,
        programme,
        schedules,
    })
}

/// The horns an occurrence reaches and those of them in quiet hours (both
/// empty when no horns are known).
fn reach(l: &Loaded, o: &Occurrence) -> (Vec<String>, Vec<String>) {
    if l.horns.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let tt = &l.tt;
    let set = tt.resolve(&o.targets, &l.horns);
    let quiet = if o.priority == crate::broadcast::Priority::Emergency {
        Vec::new()
    } else {
        tt.quiet_horns(o.local, &l.horns)
            .intersection(&set)
            .cloned()
            .collect()
    };
    (set.into_iter().collect(), quiet)
}

/// `tgw schedule show`: one schedule or programme and its occurrences over
/// the next `days` days.
pub(super) fn show(
    l: &Loaded,
    id: &str,
    want_programme: bool,
    days: u32,
    json: bool,
    now: Timestamp,
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        (1..=MAX_DAYS).contains(&days),
        "--days {days}: use 1-{MAX_DAYS}"
    );
    let tt = &l.tt;
    let sel = select(l, id, want_programme)?;
    if sel.schedule.is_some() && !want_programme && tt.programme(id).is_some() && !json {
        eprintln!("(a programme `{id}` exists too: `--programme` shows it)");
    }
    let to = tt
        .add_days(now, days as i32)
        .ok_or_else(|| anyhow::anyhow!("--days {days}: out of range"))?;
    let ids: Vec<&str> = sel.schedules.iter().map(|s| s.id.as_str()).collect();
    let occs: Vec<_> = tt
        .occurrences(now, to, None)
        .into_iter()
        .filter(|o| ids.contains(&o.schedule.as_str()))
        .collect();
    let mut o = String::new();
    if json {
        let v = show_json(l, &sel, &occs, now, to);
        outln!(o, "{}", serde_json::to_string_pretty(&v)?);
        emit(&o)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(s) = sel.schedule {
        show_schedule(&mut o, tt, s);
    }
    if let Some(p) = sel.programme {
        show_programme(&mut o, p, sel.schedule.is_none().then_some(&ids[..]));
    }
    let tz = tt.time_zone();
    outln!(
        o,
        "{} occurrence(s) from {} to {} ({}); {}",
        occs.len(),
        fmt_local(tz.to_datetime(now)),
        fmt_local(tz.to_datetime(to)),
        tt.time_zone_name(),
        l.horns_note
    );
    out!(o, "{}", occurrences_table(l, &occs));
    emit(&o)?;
    Ok(ExitCode::SUCCESS)
}

/// `tgw schedule show --json`.
fn show_json(
    l: &Loaded,
    sel: &Selection<'_>,
    occs: &[Occurrence],
    now: Timestamp,
    to: Timestamp,
) -> Value {
    let tt = &l.tt;
    let known = !l.horns.is_empty();
    json!({
        "source": l.source,
        "time_zone": tt.time_zone_name(),
        "active_scheme": tt.active_scheme(),
        "from": now,
        "to": to,
        "horns_known": l.horns.len(),
        "schedule": sel.schedule,
        "programme": sel.programme,
        "schedules": sel.schedules.iter().map(|s| json!({
            "id": s.id,
            "live": tt.is_live(s, None),
            "not_live": not_live_reason(tt, s),
        })).collect::<Vec<_>>(),
        "occurrences": occs.iter().map(|o| {
            let (horns, quiet) = reach(l, o);
            json!({
                "at": o.at, "local": o.local, "schedule": o.schedule,
                "priority": o.priority, "targets": o.targets,
                "expanded_targets": tt.expand_targets(&o.targets),
                "horns": known.then_some(horns),
                "quiet": known.then_some(quiet),
            })
        }).collect::<Vec<_>>(),
    })
}

/// The schedule block of `show`.
fn show_schedule(o: &mut String, tt: &Timetable, s: &Schedule) {
    outln!(o, "schedule   {}", s.id);
    outln!(o, "programme  {}", s.programme);
    outln!(o, "when       {}", when(s));
    outln!(o, "targets    {}", targets_text(&s.targets));
    outln!(
        o,
        "scheme     {}",
        s.scheme.as_deref().unwrap_or("(every scheme)")
    );
    outln!(o, "missed     {}", s.missed);
    outln!(
        o,
        "enabled    {}{}",
        if s.enabled { "yes" } else { "no" },
        not_live_reason(tt, s)
            .map(|w| format!(" — does not fire: {w}"))
            .unwrap_or_default()
    );
    outln!(o);
}

/// The programme block of `show`; `schedules` (the ids playing it) when a
/// programme was asked for.
fn show_programme(o: &mut String, p: &Programme, schedules: Option<&[&str]>) {
    outln!(
        o,
        "programme  {}{}",
        p.id,
        if p.name.is_empty() {
            String::new()
        } else {
            format!(" ({})", p.name)
        }
    );
    outln!(
        o,
        "priority   {} (when preempted: {})",
        p.priority,
        match p.on_preempt {
            crate::broadcast::OnPreempt::Resume => "resume",
            crate::broadcast::OnPreempt::Drop => "drop",
        }
    );
    outln!(
        o,
        "repeat     {} time(s), {} apart",
        p.repeat,
        tgw_core::schedule::timetable::format_duration(p.interval)
    );
    outln!(
        o,
        "volume     {}",
        p.volume
            .map_or_else(|| "each horn's own".into(), |v| v.to_string())
    );
    if let Some(c) = &p.pre_chime {
        outln!(o, "pre-chime  {c}");
    }
    for (i, item) in p.items.iter().enumerate() {
        match item {
            Item::Tts(t) => outln!(o, "item {:<5} tts: {t}", i + 1),
            Item::Asset(a) => outln!(o, "item {:<5} asset: {a}", i + 1),
        }
    }
    if let Some(c) = &p.post_chime {
        outln!(o, "post-chime {c}");
    }
    if let Some(ids) = schedules {
        outln!(
            o,
            "schedules  {}",
            if ids.is_empty() {
                "(none)".into()
            } else {
                ids.join(", ")
            }
        );
    }
    outln!(o);
}

/// The occurrences table of `show` (empty without occurrences).
fn occurrences_table(l: &Loaded, occs: &[Occurrence]) -> String {
    let tt = &l.tt;
    let known = !l.horns.is_empty();
    let rows: Vec<Vec<String>> = occs
        .iter()
        .map(|o| {
            let (horns, quiet) = reach(l, o);
            let reached = if known {
                format!("{}: {}", horns.len(), horns.join(","))
            } else {
                targets_text(
                    &tt.expand_targets(&o.targets)
                        .into_iter()
                        .collect::<Vec<_>>(),
                )
            };
            let quiet = if known {
                if quiet.is_empty() {
                    "-".into()
                } else {
                    quiet.join(",")
                }
            } else {
                "?".into()
            };
            vec![fmt_local(o.local), o.schedule.clone(), reached, quiet]
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    table(
        &[
            "time",
            "schedule",
            if known { "horns" } else { "targets" },
            "quiet",
        ],
        &rows,
    )
}
