//! What the timetable does: the week view, the check of a document over a
//! range, and which horns targets reach.

use axum::extract::State;
use axum::response::{IntoResponse, Json};
use jiff::civil::Date;
use serde::Deserialize;
use serde_json::{Value, json};

use super::broadcasts::store_err;
use super::timetable::*;
use super::{ApiError, ApiResult, AppState, Body, Q, Validate};
use crate::base::error::Error;
use crate::broadcast::Target;
use tgw_core::schedule::{HornInfo, Timetable, check};

/// The speaker inventory as the timetable sees it.
fn horn_infos(st: &AppState) -> Result<Vec<HornInfo>, ApiError> {
    crate::speakers::Speakers::open(&st.store)
        .and_then(|s| s.horn_infos())
        .map_err(store_err)
}

fn parse_date(key: &str, s: &str) -> Result<Date, Error> {
    s.parse::<Date>()
        .map_err(|e| Error::invalid(format!("{key}: `{s}` is not a date YYYY-MM-DD: {e}")))
}

/// Today in `tz`.
fn today(st: &AppState, tz: &jiff::tz::TimeZone) -> Date {
    now(st).to_zoned(tz.clone()).date()
}

/// Now, from the state's clock.
fn now(st: &AppState) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(st.clock.now_ms()).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// Midnight of `date` in the timetable's zone, and `days` later.
pub(super) fn range(
    tt: &Timetable,
    date: Date,
    days: u32,
) -> Result<(jiff::Timestamp, jiff::Timestamp), ApiError> {
    let bad = |e: jiff::Error| ApiError::bad(format!("from: {date}: {e}"));
    let from = date
        .to_zoned(tt.time_zone().clone())
        .map_err(bad)?
        .timestamp();
    let to = tt
        .add_days(from, i32::try_from(days).unwrap_or(i32::MAX))
        .ok_or_else(|| ApiError::bad(format!("from: {date} + {days} days is out of range")))?;
    Ok((from, to))
}

/// `?from=YYYY-MM-DD&scheme=ID` of the week view.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WeekQuery {
    from: Option<String>,
    scheme: Option<String>,
}

impl Validate for WeekQuery {
    fn validate(&self) -> Result<(), Error> {
        if let Some(f) = &self.from {
            parse_date("from", f)?;
        }
        Ok(())
    }
}

/// `GET /api/v1/timetable/week`: seven days from `from` (default: this
/// week's Monday in the timetable's zone), every occurrence with the horns
/// it reaches and how many of them are in quiet hours, and the warnings of
/// `schedule::check` over the week.
pub async fn week(State(st): State<AppState>, Q(q): Q<WeekQuery>) -> ApiResult {
    let (mut tt, _) = current(&st)?;
    if let Some(s) = &q.scheme
        && tt.active_scheme() != Some(s.as_str())
    {
        let mut parts = tt.parts().clone();
        if !parts.schemes.iter().any(|x| &x.id == s) {
            return Err(ApiError::not_found("scheme", s));
        }
        parts.active_scheme = Some(s.clone());
        tt = Timetable::from_parts(parts.clone(), tt.calendar().clone(), tt.time_zone_name())
            .map_err(|e| invalid(&e, &parts))?;
    }
    let from = match &q.from {
        Some(f) => parse_date("from", f)?,
        None => {
            let d = today(&st, tt.time_zone());
            let back = i64::from(d.weekday().to_monday_zero_offset());
            d.checked_sub(jiff::Span::new().days(back))
                .map_err(|e| ApiError::bad(e.to_string()))?
        }
    };
    let (a, b) = range(&tt, from, 7)?;
    let horns = horn_infos(&st)?;
    let report = check(&tt, a, b, &horns);
    let mut days = Vec::with_capacity(7);
    let mut d = from;
    for _ in 0..7 {
        let entries: Vec<Value> = report
            .occurrences
            .iter()
            .filter(|o| o.local.date() == d)
            .map(|o| {
                let name = tt
                    .programme(&o.programme)
                    .map(|p| p.name.clone())
                    .unwrap_or_default();
                json!({
                    "time": format!("{:02}:{:02}", o.local.hour(), o.local.minute()),
                    "at": o.at,
                    "schedule": o.schedule,
                    "programme": o.programme,
                    "programme_name": name,
                    "priority": o.priority,
                    "targets": o.targets,
                    "horns": o.horns,
                    "quiet": o.quiet,
                })
            })
            .collect();
        let entry = tt.calendar().entry(d);
        days.push(json!({
            "date": d.to_string(),
            "weekday": d.weekday().to_monday_one_offset(),
            "workday": tt.calendar().is_workday(d),
            "note": entry.map(|e| e.note.clone()).filter(|n| !n.is_empty()),
            "entries": entries,
        }));
        match d.tomorrow() {
            Ok(n) => d = n,
            Err(_) => break,
        }
    }
    Ok(Json(json!({
        "timezone": tt.time_zone_name(),
        "from": from.to_string(),
        "scheme": tt.active_scheme(),
        "schemes": tt.parts().schemes,
        "horns_known": horns.len(),
        "days": days,
        // A week is too short to say a schedule never fires (monthly ones).
        "warnings": report
            .warnings
            .iter()
            .filter(|w| w.kind != tgw_core::schedule::WarningKind::NeverFires)
            .collect::<Vec<_>>(),
    }))
    .into_response())
}

/// `?from=YYYY-MM-DD&days=N` of a check.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CheckQuery {
    from: Option<String>,
    days: Option<u32>,
}

impl Validate for CheckQuery {
    fn validate(&self) -> Result<(), Error> {
        if let Some(f) = &self.from {
            parse_date("from", f)?;
        }
        match self.days {
            Some(d) if !(1..=MAX_CHECK_DAYS).contains(&d) => Err(Error::invalid(format!(
                "days must be 1-{MAX_CHECK_DAYS}, got {d}"
            ))),
            _ => Ok(()),
        }
    }
}

/// `POST /api/v1/timetable/check`: what a timetable document would do
/// (the `tgw schedule check --json` report), without saving it.
pub async fn check_timetable(
    State(st): State<AppState>,
    Q(q): Q<CheckQuery>,
    Body(b): Body<PartsBody>,
) -> ApiResult {
    let parts = b.0;
    if parts.calendar.is_some() {
        return Err(unprocessable(CALENDAR_IN_CONFIG.into()));
    }
    let tt = Timetable::from_parts(parts.clone(), calendar_for(&st), &default_tz(&st))
        .map_err(|e| invalid(&e, &parts))?;
    let from = match &q.from {
        Some(f) => parse_date("from", f)?,
        None => today(&st, tt.time_zone()),
    };
    let (a, b) = range(&tt, from, q.days.unwrap_or(7))?;
    let horns = horn_infos(&st)?;
    Ok(Json(check(&tt, a, b, &horns)).into_response())
}

/// `?targets=all,village:CODE,…`
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ResolveQuery {
    targets: String,
}

impl Validate for ResolveQuery {
    fn validate(&self) -> Result<(), Error> {
        let n = self
            .targets
            .split(',')
            .filter(|t| !t.trim().is_empty())
            .count();
        if n == 0 || n > 200 {
            return Err(Error::invalid("targets: 1-200 targets, comma-separated"));
        }
        Ok(())
    }
}

/// `GET /api/v1/targets/resolve`: the horns targets reach now (groups of
/// the timetable expanded), for confirming a broadcast before it starts.
pub async fn resolve_targets(State(st): State<AppState>, Q(q): Q<ResolveQuery>) -> ApiResult {
    let targets = q
        .targets
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<Target>()
                .map_err(|e| ApiError::bad(format!("targets: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (tt, _) = current(&st)?;
    let horns = horn_infos(&st)?;
    let reached = tt.resolve(&targets, &horns);
    let unknown: Vec<String> = targets
        .iter()
        .filter(|t| !matches!(t, Target::Group(_) | Target::All))
        .filter(|t| !horns.iter().any(|h| h.matches(t)))
        .map(|t| t.to_string())
        .collect();
    let local = now(&st).to_zoned(tt.time_zone().clone()).datetime();
    let quiet = tt.quiet_horns(local, &horns).intersection(&reached).count();
    Ok(Json(json!({
        "targets": targets,
        "horns": reached.len(),
        "speakers": reached,
        "quiet_now": quiet,
        "unknown": unknown,
    }))
    .into_response())
}
