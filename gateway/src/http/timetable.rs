//! The timetable API: the document in force, whole replacement and
//! per-entry edits (programmes, schedules, schemes, the active scheme).
//!
//! A timetable lives either in a file (`[broadcast] timetable`: the API only
//! reads it, every write answers 409 `managed_in_file`) or in the store,
//! one JSON `Parts` document per version. Every write reads the current
//! document, changes it, validates the whole with `Timetable::from_parts`
//! (422 naming the key path), saves a new version, hands it to the
//! runtime and writes an audit entry. Writes are serialised so two edits
//! never overwrite each other's change.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::broadcasts::{records, store_err};
use super::{ApiError, ApiResult, AppState, Body, Ctx, Validate, check_len, check_multiline};
use crate::base::error::Error;
use tgw_core::schedule::{Calendar, Parts, Programme, Schedule, Scheme, Timetable, TimetableError};

/// Serialises timetable writes (read, change, validate, save, apply).
static TIMETABLE_WRITES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Why `calendar` is refused in an API document.
pub(super) const CALENDAR_IN_CONFIG: &str = "calendar: a timetable kept by the gateway uses `[broadcast] calendar` \
     of the configuration; leave `calendar` out";

/// Longest range `POST /api/v1/timetable/check` expands.
pub(super) const MAX_CHECK_DAYS: u32 = 366;

/// The workday calendar a store-managed timetable is validated with: the
/// one the runtime loaded (`[broadcast] calendar`), else none (Monday to
/// Friday work, weekends rest).
pub(super) fn calendar_for(st: &AppState) -> Calendar {
    st.broadcasts
        .as_ref()
        .map(|b| b.timetable().calendar().clone())
        .unwrap_or_default()
}

/// The zone a document without `timezone` is written in: the one the
/// runtime's timetable uses when it names none itself (`[broadcast]
/// timezone`), else the gateway's.
pub(super) fn default_tz(st: &AppState) -> String {
    match &st.broadcasts {
        Some(b) => {
            let tt = b.timetable();
            if tt.parts().timezone.is_none() {
                tt.time_zone_name().to_string()
            } else {
                st.timezone.clone()
            }
        }
        None => st.timezone.clone(),
    }
}

/// The timetable in force and its stored version (`None` for a file or
/// before the first save). Without a runtime, the newest stored version.
pub(super) fn current(st: &AppState) -> Result<(Timetable, Option<i64>), ApiError> {
    let stored = if st.timetable_file.is_none() {
        records(st)?.timetable().map_err(store_err)?
    } else {
        None
    };
    let version = stored.as_ref().map(|(v, _)| *v);
    if let Some(rt) = &st.broadcasts {
        return Ok((rt.timetable(), version));
    }
    let parts = match stored {
        Some((v, doc)) => serde_json::from_str::<Parts>(&doc)
            .map_err(|e| store_err(anyhow::anyhow!("stored timetable version {v}: {e}")))?,
        None => Parts::default(),
    };
    let tt = Timetable::from_parts(parts, Calendar::default(), &st.timezone)
        .map_err(|e| store_err(anyhow::anyhow!("stored timetable: {e}")))?;
    Ok((tt, version))
}

/// 409 when the timetable is managed in a file.
fn writable(st: &AppState) -> Result<(), ApiError> {
    match &st.timetable_file {
        Some(f) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "managed_in_file",
            format!(
                "the timetable is managed in the file {}: edit it there and reload the gateway",
                f.display()
            ),
        )),
        None => Ok(()),
    }
}

/// A validation error as 422, its key path followed by the id of the
/// entry it is in (`schedule[2] (schedule `evening`).programme: …`), as
/// API users edit entries by id, not by index.
pub(super) fn invalid(e: &TimetableError, parts: &Parts) -> ApiError {
    let mut path = e.path.clone();
    let head = path.split('.').next().unwrap_or("").to_string();
    if let Some((kind, rest)) = head.split_once('[')
        && let Some(i) = rest.strip_suffix(']').and_then(|i| i.parse::<usize>().ok())
    {
        let id = match kind {
            "programme" => parts.programmes.get(i).map(|p| p.id.clone()),
            "schedule" => parts.schedules.get(i).map(|s| s.id.clone()),
            "scheme" => parts.schemes.get(i).map(|s| s.id.clone()),
            "group" => parts.groups.get(i).map(|g| g.name.clone()),
            _ => None,
        };
        if let Some(id) = id {
            path = format!("{head} ({kind} `{id}`){}", &path[head.len()..]);
        }
    }
    let message = if path.is_empty() {
        e.message.clone()
    } else {
        format!("{path}: {}", e.message)
    };
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_timetable",
        message,
    )
}

pub(super) fn unprocessable(message: String) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_timetable",
        message,
    )
}

/// What `GET /api/v1/timetable` answers (and every write, after it).
fn timetable_doc(st: &AppState, tt: &Timetable, version: Option<i64>) -> Value {
    json!({
        "source": if st.timetable_file.is_some() { "file" } else { "store" },
        "file": st.timetable_file.as_ref().map(|f| f.display().to_string()),
        "editable": st.timetable_file.is_none(),
        "version": version,
        "timezone": tt.time_zone_name(),
        "active_scheme": tt.active_scheme(),
        "calendar_years": tt.calendar().years().collect::<Vec<_>>(),
        "parts": tt.parts(),
    })
}

/// Validates `parts`, saves it as a new version, hands it to the runtime
/// and audits the change; answers the new document. Call with
/// [`TIMETABLE_WRITES`] held.
async fn commit(
    st: &AppState,
    ctx: &Ctx,
    parts: Parts,
    action: &str,
    target: Option<&str>,
    before: Option<Value>,
    after: Option<Value>,
) -> ApiResult {
    let tt = match Timetable::from_parts(parts.clone(), calendar_for(st), &default_tz(st)) {
        Ok(tt) => tt,
        Err(e) => {
            let err = invalid(&e, &parts);
            st.audit(
                ctx,
                action,
                target,
                before,
                Some(json!({"error": e.to_string()})),
                "invalid",
            );
            return Err(err);
        }
    };
    let doc = serde_json::to_string(tt.parts())
        .map_err(|e| store_err(anyhow::anyhow!("encoding the timetable: {e}")))?;
    let version = records(st)?
        .save_timetable(&doc, &ctx.who.user)
        .map_err(store_err)?;
    if let Some(rt) = &st.broadcasts {
        rt.set_timetable(tt.clone()).await;
    }
    let mut after = after.unwrap_or_else(|| json!({}));
    if let Some(o) = after.as_object_mut() {
        o.insert("version".into(), json!(version));
    }
    st.audit(ctx, action, target, before, Some(after), "ok");
    Ok(Json(timetable_doc(st, &tt, Some(version))).into_response())
}

/// A whole timetable document (`docs/schedules.md`) as JSON: `timezone`,
/// `active_scheme`, `scheme`, `group`, `quiet_hours`, `programme`,
/// `schedule` — the keys of the file.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct PartsBody(pub(super) Parts);

impl Validate for PartsBody {
    fn validate(&self) -> Result<(), Error> {
        check_json_text("", &serde_json::to_value(&self.0).unwrap_or_default())
    }
}

/// One programme, schedule or scheme as JSON, with the keys of the file
/// (`docs/schedules.md`); `id` may be left out (the path's is used).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct EntryBody(serde_json::Map<String, Value>);

impl Validate for EntryBody {
    fn validate(&self) -> Result<(), Error> {
        check_json_text("", &Value::Object(self.0.clone()))
    }
}

/// Control characters in a timetable document: none in names, titles and
/// ids; tab and line breaks only in other text (announcement text).
fn check_json_text(path: &str, v: &Value) -> Result<(), Error> {
    match v {
        Value::String(s) => {
            let key = path.rsplit('.').next().unwrap_or("");
            if matches!(key, "name" | "title" | "id") {
                check_len(path, s, 0, usize::MAX)
            } else {
                check_multiline(path, s)
            }
        }
        Value::Array(a) => a
            .iter()
            .enumerate()
            .try_for_each(|(i, x)| check_json_text(&format!("{path}[{i}]"), x)),
        Value::Object(m) => m.iter().try_for_each(|(k, x)| {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            check_json_text(&p, x)
        }),
        _ => Ok(()),
    }
}

/// `{ "scheme": ID }`: the scheme in force.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActiveSchemeBody {
    /// A scheme id of the timetable; `null` only when it has no schemes.
    pub scheme: Option<String>,
}

impl Validate for ActiveSchemeBody {}

/// An entry body → the model type; the path's id fills a missing `id`,
/// and a different one is refused. Shape errors are 400 naming the key.
fn entry_of<T: serde::de::DeserializeOwned>(
    what: &str,
    id: &str,
    body: EntryBody,
) -> Result<T, ApiError> {
    let mut m = body.0;
    match m.get("id") {
        None => {
            m.insert("id".into(), Value::String(id.to_string()));
        }
        Some(Value::String(s)) if s == id => {}
        Some(other) => {
            return Err(ApiError::bad(format!(
                "id: the body names {other} but the path `{id}`; an id cannot be changed (delete and create instead)"
            )));
        }
    }
    serde_path_to_error::deserialize::<_, T>(Value::Object(m)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = if path == "." {
            format!("{what}: {inner}")
        } else {
            format!("{what}.{path}: {inner}")
        };
        ApiError::new(StatusCode::BAD_REQUEST, "malformed", msg)
    })
}

/// `GET /api/v1/timetable`
pub async fn timetable(State(st): State<AppState>) -> ApiResult {
    let (tt, version) = current(&st)?;
    Ok(Json(timetable_doc(&st, &tt, version)).into_response())
}

/// `PUT /api/v1/timetable`: replaces the whole document.
pub async fn replace_timetable(
    State(st): State<AppState>,
    ctx: Ctx,
    Body(b): Body<PartsBody>,
) -> ApiResult {
    let _w = TIMETABLE_WRITES.lock().await;
    writable(&st)?;
    let parts = b.0;
    if parts.calendar.is_some() {
        return Err(unprocessable(CALENDAR_IN_CONFIG.into()));
    }
    let (_, version) = current(&st)?;
    let after = json!({
        "programmes": parts.programmes.len(),
        "schedules": parts.schedules.len(),
        "schemes": parts.schemes.len(),
        "active_scheme": parts.active_scheme,
    });
    commit(
        &st,
        &ctx,
        parts,
        "timetable.replace",
        None,
        Some(json!({"version": version})),
        Some(after),
    )
    .await
}

/// Which part of the document an entry route edits.
#[derive(Clone, Copy)]
enum Kind {
    Programme,
    Schedule,
    Scheme,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Programme => "programme",
            Kind::Schedule => "schedule",
            Kind::Scheme => "scheme",
        }
    }
}

/// Replaces the entry with `id` in `list` (keeping its place) or appends
/// it; answers the entry it replaced.
pub(super) fn upsert<T: Clone>(
    list: &mut Vec<T>,
    id_of: impl Fn(&T) -> &str,
    id: &str,
    v: T,
) -> Option<T> {
    match list.iter_mut().find(|x| id_of(x) == id) {
        Some(slot) => Some(std::mem::replace(slot, v)),
        None => {
            list.push(v);
            None
        }
    }
}

async fn put_entry(st: AppState, ctx: Ctx, kind: Kind, id: String, body: EntryBody) -> ApiResult {
    // Parse first: a malformed body is 400 whatever the timetable's state.
    enum New {
        P(Programme),
        S(Box<Schedule>),
        C(Scheme),
    }
    let new = match kind {
        Kind::Programme => New::P(entry_of(kind.name(), &id, body)?),
        Kind::Schedule => New::S(Box::new(entry_of(kind.name(), &id, body)?)),
        Kind::Scheme => New::C(entry_of(kind.name(), &id, body)?),
    };
    let _w = TIMETABLE_WRITES.lock().await;
    writable(&st)?;
    let (tt, _) = current(&st)?;
    let mut parts = tt.into_parts();
    let (before, after) = match new {
        New::P(p) => {
            let after = to_json(&p);
            (
                upsert(&mut parts.programmes, |x| &x.id, &id, p).map(|o| to_json(&o)),
                after,
            )
        }
        New::S(s) => {
            let after = to_json(&s);
            (
                upsert(&mut parts.schedules, |x| &x.id, &id, *s).map(|o| to_json(&o)),
                after,
            )
        }
        New::C(c) => {
            let after = to_json(&c);
            let old = upsert(&mut parts.schemes, |x| &x.id, &id, c).map(|o| to_json(&o));
            if parts.active_scheme.is_none() && parts.schemes.len() == 1 {
                // The first scheme is the one in force.
                parts.active_scheme = Some(id.clone());
            }
            (old, after)
        }
    };
    let action = format!("timetable.{}.put", kind.name());
    commit(&st, &ctx, parts, &action, Some(&id), before, Some(after)).await
}

async fn delete_entry(st: AppState, ctx: Ctx, kind: Kind, id: String) -> ApiResult {
    let _w = TIMETABLE_WRITES.lock().await;
    writable(&st)?;
    let (tt, _) = current(&st)?;
    let mut parts = tt.into_parts();
    let users = |f: &dyn Fn(&Schedule) -> bool| -> Vec<String> {
        parts
            .schedules
            .iter()
            .filter(|s| f(s))
            .map(|s| format!("`{}`", s.id))
            .collect()
    };
    let before = match kind {
        Kind::Programme => {
            let used = users(&|s| s.programme == id);
            if !used.is_empty() {
                return Err(unprocessable(format!(
                    "programme `{id}` is played by schedule {}: change or delete {} first",
                    used.join(", "),
                    if used.len() == 1 { "it" } else { "them" }
                )));
            }
            let i = parts.programmes.iter().position(|p| p.id == id);
            i.map(|i| to_json(&parts.programmes.remove(i)))
        }
        Kind::Schedule => {
            let i = parts.schedules.iter().position(|s| s.id == id);
            i.map(|i| to_json(&parts.schedules.remove(i)))
        }
        Kind::Scheme => {
            let used = users(&|s| s.scheme.as_deref() == Some(id.as_str()));
            if !used.is_empty() {
                return Err(unprocessable(format!(
                    "scheme `{id}` has schedule {}: move or delete {} first",
                    used.join(", "),
                    if used.len() == 1 { "it" } else { "them" }
                )));
            }
            let i = parts.schemes.iter().position(|s| s.id == id);
            if i.is_some() && parts.active_scheme.as_deref() == Some(id.as_str()) {
                if parts.schemes.len() > 1 {
                    return Err(unprocessable(format!(
                        "scheme `{id}` is in force: make another scheme active first"
                    )));
                }
                parts.active_scheme = None;
            }
            i.map(|i| to_json(&parts.schemes.remove(i)))
        }
    };
    let Some(before) = before else {
        return Err(ApiError::not_found(kind.name(), &id));
    };
    let action = format!("timetable.{}.delete", kind.name());
    commit(&st, &ctx, parts, &action, Some(&id), Some(before), None).await
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// `PUT /api/v1/programmes/{id}`
pub async fn put_programme(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Body(b): Body<EntryBody>,
) -> ApiResult {
    put_entry(st, ctx, Kind::Programme, id, b).await
}

/// `DELETE /api/v1/programmes/{id}`
pub async fn delete_programme(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult {
    delete_entry(st, ctx, Kind::Programme, id).await
}

/// `PUT /api/v1/schedules/{id}`
pub async fn put_schedule(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Body(b): Body<EntryBody>,
) -> ApiResult {
    put_entry(st, ctx, Kind::Schedule, id, b).await
}

/// `DELETE /api/v1/schedules/{id}`
pub async fn delete_schedule(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult {
    delete_entry(st, ctx, Kind::Schedule, id).await
}

/// `PUT /api/v1/schemes/{id}`
pub async fn put_scheme(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Body(b): Body<EntryBody>,
) -> ApiResult {
    put_entry(st, ctx, Kind::Scheme, id, b).await
}

/// `DELETE /api/v1/schemes/{id}`
pub async fn delete_scheme(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult {
    delete_entry(st, ctx, Kind::Scheme, id).await
}

/// `PUT /api/v1/active-scheme`
pub async fn set_active_scheme(
    State(st): State<AppState>,
    ctx: Ctx,
    Body(b): Body<ActiveSchemeBody>,
) -> ApiResult {
    let _w = TIMETABLE_WRITES.lock().await;
    writable(&st)?;
    let (tt, _) = current(&st)?;
    let mut parts = tt.into_parts();
    if let Some(s) = &b.scheme
        && !parts.schemes.iter().any(|x| &x.id == s)
    {
        return Err(ApiError::not_found("scheme", s));
    }
    let before = json!({"active_scheme": parts.active_scheme});
    parts.active_scheme = b.scheme.clone();
    let after = json!({"active_scheme": b.scheme});
    commit(
        &st,
        &ctx,
        parts,
        "timetable.active_scheme",
        b.scheme.as_deref(),
        Some(before),
        Some(after),
    )
    .await
}
