//! `/api/v1` routes of broadcasts (issue 7): live and past broadcasts,
//! starting and cancelling announcements, the emergency button, stop-all,
//! audio assets, the timetable and the CAP alerts received. A child module
//! of `http`, so it shares its extractors, errors and audit helper.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json};
use jiff::civil::Date;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiResult, AppState, Body, Ctx, Q, Validate};
use crate::broadcast::render::{Part, Recipe};
use crate::broadcast::runtime::{Broadcasts, Spec};
use crate::broadcast::{OnPreempt, Priority, Target};
use tgw_core::schedule::{
    Calendar, HornInfo, Parts, Programme, Schedule, Scheme, Timetable, TimetableError, check,
};

fn runtime(st: &AppState) -> Result<&Broadcasts, ApiError> {
    st.broadcasts.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "broadcasts are not running on this gateway",
        )
    })
}

fn records(st: &AppState) -> Result<crate::broadcast::record::Records, ApiError> {
    crate::broadcast::record::Records::open(&st.store).map_err(store_err)
}

fn store_err(e: anyhow::Error) -> ApiError {
    tracing::warn!(error = %e, "broadcast store error in API");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "store",
        format!("broadcast records: {e}"),
    )
}

/// `?limit=`
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LimitQuery {
    limit: Option<usize>,
}

impl Validate for LimitQuery {
    fn validate(&self) -> Result<(), String> {
        match self.limit {
            Some(l) if !(1..=1000).contains(&l) => Err(format!("limit must be 1-1000, got {l}")),
            _ => Ok(()),
        }
    }
}

/// `GET /api/v1/broadcasts`
pub async fn list(State(st): State<AppState>, Q(q): Q<LimitQuery>) -> ApiResult {
    let v = records(&st)?
        .list(q.limit.unwrap_or(100))
        .map_err(store_err)?;
    Ok(Json(v).into_response())
}

/// `GET /api/v1/broadcasts/{id}`
pub async fn get_one(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let r = records(&st)?;
    let (b, horns) = r
        .get(&id)
        .map_err(store_err)?
        .ok_or_else(|| ApiError::not_found("broadcast", &id))?;
    let events: Vec<_> = r
        .events(&id)
        .map_err(store_err)?
        .into_iter()
        .map(|(speaker, state, at, detail)| json!({"speaker": speaker, "state": state, "at": at, "detail": detail}))
        .collect();
    Ok(Json(json!({ "broadcast": b, "horns": horns, "events": events })).into_response())
}

/// What to say: exactly one of `text`, `asset` or `programme`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnnounceBody {
    /// Title shown to operators (default: the text's start or the programme name).
    #[serde(default)]
    pub title: Option<String>,
    /// Targets: `all`, `village:CODE`, `grid:CODE`, `zone:NAME`, `group:NAME`, `speaker:ID`.
    #[schema(value_type = Vec<String>)]
    pub targets: Vec<Target>,
    /// `background`, `routine`, `township` (default) or `superior`; emergencies go through `/api/v1/emergency`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub priority: Option<Priority>,
    /// Text spoken by TTS.
    #[serde(default)]
    pub text: Option<String>,
    /// A stored asset, `sha256:HEX`.
    #[serde(default)]
    pub asset: Option<String>,
    /// A programme of the timetable.
    #[serde(default)]
    pub programme: Option<String>,
    /// Times played, 1-20 (default 1; a programme's own count otherwise).
    #[serde(default)]
    pub repeat: Option<u32>,
    /// Volume 0-100.
    #[serde(default)]
    pub volume: Option<u8>,
    /// Chime before and after (default true for text and assets).
    #[serde(default)]
    pub chime: Option<bool>,
    /// `POST /api/v1/emergency` only, and there required `true`: the
    /// dashboard asks the operator to confirm first.
    #[serde(default)]
    pub confirm: Option<bool>,
}

impl Validate for AnnounceBody {
    fn validate(&self) -> Result<(), String> {
        if self.targets.is_empty() {
            return Err("targets: name at least one target".into());
        }
        if self.targets.len() > 200 {
            return Err("targets: at most 200".into());
        }
        let n = [
            self.text.is_some(),
            self.asset.is_some(),
            self.programme.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if n != 1 {
            return Err("give exactly one of text, asset or programme".into());
        }
        if let Some(t) = &self.text
            && (t.trim().is_empty() || t.chars().count() > 2000)
        {
            return Err("text: 1-2000 characters".into());
        }
        if let Some(a) = &self.asset
            && !crate::broadcast::audio::assets::valid_id(a.strip_prefix("sha256:").unwrap_or(a))
        {
            return Err(format!("asset: `{a}` is not sha256:<64 hex digits>"));
        }
        if let Some(r) = self.repeat
            && !(1..=20).contains(&r)
        {
            return Err(format!("repeat must be 1-20, got {r}"));
        }
        if let Some(v) = self.volume
            && v > 100
        {
            return Err(format!("volume must be 0-100, got {v}"));
        }
        if self.confirm.is_some() && self.priority.is_some() {
            return Err("priority: an emergency broadcast is always `emergency`".into());
        }
        if self.priority == Some(Priority::Emergency) {
            return Err(
                "priority: emergencies go through POST /api/v1/emergency (with confirmation)"
                    .into(),
            );
        }
        if let Some(t) = &self.title
            && t.chars().count() > 200
        {
            return Err("title: at most 200 characters".into());
        }
        Ok(())
    }
}

fn spec_of(
    st: &AppState,
    b: &AnnounceBody,
    priority: Priority,
    origin: String,
) -> Result<Spec, ApiError> {
    let rt = runtime(st)?;
    let chime = b.chime.unwrap_or(true).then_some(Part::Chime);
    let (title, recipe, on_preempt) = if let Some(pid) = &b.programme {
        let tt = rt.timetable();
        let p = tt
            .programme(pid)
            .ok_or_else(|| ApiError::not_found("programme", pid))?;
        let mut r = crate::broadcast::recipe_of(p);
        if let Some(n) = b.repeat {
            r.repeat = n;
        }
        if let Some(v) = b.volume {
            r.volume = Some(v);
        }
        let title = if p.name.is_empty() {
            p.id.clone()
        } else {
            p.name.clone()
        };
        (title, r, p.on_preempt)
    } else {
        let item = match (&b.text, &b.asset) {
            (Some(t), _) => Part::Tts(t.clone()),
            (_, Some(a)) => Part::Asset(a.strip_prefix("sha256:").unwrap_or(a).to_string()),
            _ => {
                return Err(ApiError::bad(
                    "give exactly one of text, asset or programme",
                ));
            }
        };
        let title = match &item {
            Part::Tts(t) => t.chars().take(40).collect(),
            _ => "录音广播".to_string(),
        };
        (
            title,
            Recipe {
                pre: chime.clone(),
                items: vec![item],
                post: chime,
                repeat: b.repeat.unwrap_or(1),
                interval: Duration::from_secs(3),
                volume: b.volume,
            },
            OnPreempt::Resume,
        )
    };
    Ok(Spec {
        id: None,
        origin,
        title: b.title.clone().unwrap_or(title),
        priority,
        targets: b.targets.clone(),
        recipe,
        start_at: None,
        latest_start: None,
        on_preempt,
    })
}

fn submitted_response(s: crate::broadcast::runtime::Submitted) -> ApiResult {
    Ok((StatusCode::ACCEPTED, Json(s)).into_response())
}

/// `POST /api/v1/broadcasts`
pub async fn announce(
    State(st): State<AppState>,
    ctx: Ctx,
    Body(b): Body<AnnounceBody>,
) -> ApiResult {
    let priority = b.priority.unwrap_or(Priority::Township);
    let spec = spec_of(&st, &b, priority, format!("operator:{}", ctx.who.user))?;
    let summary = json!({"targets": b.targets, "priority": priority, "title": spec.title});
    match runtime(&st)?.submit(spec).await {
        Ok(s) => {
            st.audit(
                &ctx,
                "broadcast.start",
                Some(&s.id),
                None,
                Some(summary),
                "ok",
            );
            submitted_response(s)
        }
        Err(e) => {
            st.audit(
                &ctx,
                "broadcast.start",
                None,
                None,
                Some(summary),
                "refused",
            );
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "refused",
                e.to_string(),
            ))
        }
    }
}

/// `POST /api/v1/emergency`
pub async fn emergency(
    State(st): State<AppState>,
    ctx: Ctx,
    Body(b): Body<AnnounceBody>,
) -> ApiResult {
    if b.confirm != Some(true) {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "confirm",
            "an emergency broadcast must be confirmed: send confirm: true",
        ));
    }
    if b.priority.is_some() {
        return Err(ApiError::bad(
            "priority: an emergency broadcast is always `emergency`",
        ));
    }
    let mut spec = spec_of(
        &st,
        &b,
        Priority::Emergency,
        format!("emergency:{}", ctx.who.user),
    )?;
    spec.on_preempt = OnPreempt::Drop;
    let summary = json!({"targets": b.targets, "title": spec.title});
    match runtime(&st)?.submit(spec).await {
        Ok(s) => {
            st.audit(
                &ctx,
                "broadcast.emergency",
                Some(&s.id),
                None,
                Some(summary),
                "ok",
            );
            submitted_response(s)
        }
        Err(e) => {
            st.audit(
                &ctx,
                "broadcast.emergency",
                None,
                None,
                Some(summary),
                "refused",
            );
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "refused",
                e.to_string(),
            ))
        }
    }
}

/// `POST /api/v1/broadcasts/{id}/cancel`
pub async fn cancel(State(st): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    let ok = runtime(&st)?.cancel(&id).await;
    st.audit(
        &ctx,
        "broadcast.cancel",
        Some(&id),
        None,
        None,
        if ok { "ok" } else { "not_found" },
    );
    if ok {
        Ok(Json(json!({ "cancelled": id })).into_response())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no running broadcast `{id}`"),
        ))
    }
}

/// `POST /api/v1/broadcasts/stop-all`: always works for an operator.
pub async fn stop_all(State(st): State<AppState>, ctx: Ctx) -> ApiResult {
    let n = runtime(&st)?.stop_all(&ctx.who.user).await;
    st.audit(
        &ctx,
        "broadcast.stop_all",
        None,
        None,
        Some(json!({"stopped": n})),
        "ok",
    );
    Ok(Json(json!({ "stopped": n })).into_response())
}

/// `GET /api/v1/alerts`
pub async fn alerts(State(st): State<AppState>, Q(q): Q<LimitQuery>) -> ApiResult {
    let v = records(&st)?
        .caps(q.limit.unwrap_or(100))
        .map_err(store_err)?;
    Ok(Json(v).into_response())
}

/// `GET /api/v1/audio-assets`
pub async fn assets(State(st): State<AppState>) -> ApiResult {
    let a = st.assets.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "no asset store",
        )
    })?;
    let v = a.list().map_err(store_err)?;
    Ok(Json(v).into_response())
}

/// `?name=` of an upload.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    name: Option<String>,
}

impl Validate for UploadQuery {
    fn validate(&self) -> Result<(), String> {
        match &self.name {
            Some(n) if n.is_empty() || n.chars().count() > 200 || n.contains(['/', '\\']) => {
                Err("name: 1-200 characters without slashes".into())
            }
            _ => Ok(()),
        }
    }
}

/// `POST /api/v1/audio-assets?name=FILE`: the raw file as the body (MP3,
/// WAV, OGG/Vorbis, FLAC); checked, normalised and stored.
pub async fn upload(
    State(st): State<AppState>,
    ctx: Ctx,
    Q(q): Q<UploadQuery>,
    _headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult {
    let a = st.assets.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "no asset store",
        )
    })?;
    let name = q.name.unwrap_or_else(|| "upload".into());
    let n2 = name.clone();
    let res = tokio::task::spawn_blocking(move || a.import(&body, &n2))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    match res {
        Ok(asset) => {
            st.audit(
                &ctx,
                "asset.upload",
                Some(&asset.sha256),
                None,
                Some(json!({"name": name})),
                "ok",
            );
            Ok((StatusCode::CREATED, Json(asset)).into_response())
        }
        Err(e) => {
            st.audit(
                &ctx,
                "asset.upload",
                None,
                None,
                Some(json!({"name": name})),
                "refused",
            );
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not_audio",
                format!("{name}: {e:#}"),
            ))
        }
    }
}

// ---------------------------------------------------------------- timetable
//
// A timetable lives either in a file (`[broadcast] timetable`: the API only
// reads it, every write answers 409 `managed_in_file`) or in the store,
// one JSON `Parts` document per version. Every write reads the current
// document, changes it, validates the whole with `Timetable::from_parts`
// (422 naming the key path), saves a new version, hands it to the
// runtime and writes an audit entry. Writes are serialised so two edits
// never overwrite each other's change.

/// Serialises timetable writes (read, change, validate, save, apply).
static TIMETABLE_WRITES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Why `calendar` is refused in an API document.
const CALENDAR_IN_CONFIG: &str = "calendar: a timetable kept by the gateway uses `[broadcast] calendar` \
     of the configuration; leave `calendar` out";

/// Longest range `POST /api/v1/timetable/check` expands.
const MAX_CHECK_DAYS: u32 = 366;

/// The workday calendar a store-managed timetable is validated with: the
/// one the runtime loaded (`[broadcast] calendar`), else none (Monday to
/// Friday work, weekends rest).
fn calendar_for(st: &AppState) -> Calendar {
    st.broadcasts
        .as_ref()
        .map(|b| b.timetable().calendar().clone())
        .unwrap_or_default()
}

/// The zone a document without `timezone` is written in: the one the
/// runtime's timetable uses when it names none itself (`[broadcast]
/// timezone`), else the gateway's.
fn default_tz(st: &AppState) -> String {
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
fn current(st: &AppState) -> Result<(Timetable, Option<i64>), ApiError> {
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
fn invalid(e: &TimetableError, parts: &Parts) -> ApiError {
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

fn unprocessable(message: String) -> ApiError {
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
pub struct PartsBody(Parts);

impl Validate for PartsBody {}

/// One programme, schedule or scheme as JSON, with the keys of the file
/// (`docs/schedules.md`); `id` may be left out (the path's is used).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct EntryBody(serde_json::Map<String, Value>);

impl Validate for EntryBody {}

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
fn upsert<T: Clone>(list: &mut Vec<T>, id_of: impl Fn(&T) -> &str, id: &str, v: T) -> Option<T> {
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

/// The speaker inventory as the timetable sees it.
fn horn_infos(st: &AppState) -> Result<Vec<HornInfo>, ApiError> {
    crate::speakers::Speakers::open(&st.store)
        .and_then(|s| s.horn_infos())
        .map_err(store_err)
}

fn parse_date(key: &str, s: &str) -> Result<Date, String> {
    s.parse::<Date>()
        .map_err(|e| format!("{key}: `{s}` is not a date YYYY-MM-DD: {e}"))
}

/// Today in `tz`.
fn today(tz: &jiff::tz::TimeZone) -> Date {
    jiff::Timestamp::now().to_zoned(tz.clone()).date()
}

/// Midnight of `date` in the timetable's zone, and `days` later.
fn range(
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
    fn validate(&self) -> Result<(), String> {
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
        Some(f) => parse_date("from", f).map_err(ApiError::bad)?,
        None => {
            let d = today(tt.time_zone());
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
    fn validate(&self) -> Result<(), String> {
        if let Some(f) = &self.from {
            parse_date("from", f)?;
        }
        match self.days {
            Some(d) if !(1..=MAX_CHECK_DAYS).contains(&d) => {
                Err(format!("days must be 1-{MAX_CHECK_DAYS}, got {d}"))
            }
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
        Some(f) => parse_date("from", f).map_err(ApiError::bad)?,
        None => today(tt.time_zone()),
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
    fn validate(&self) -> Result<(), String> {
        let n = self
            .targets
            .split(',')
            .filter(|t| !t.trim().is_empty())
            .count();
        if n == 0 || n > 200 {
            return Err("targets: 1-200 targets, comma-separated".into());
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
    let local = jiff::Timestamp::now()
        .to_zoned(tt.time_zone().clone())
        .datetime();
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

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body as AxBody;
    use axum::http::{Method, Request, header};
    use serde_json::{Value, json};
    use tower::ServiceExt as _;

    use super::super::{AppState, router};
    use crate::auth::{HashCost, Role};
    use crate::base::metrics::Metrics;
    use crate::config::Ident;
    use crate::speakers::{Codec, DriverKind, NewSpeaker, Speakers};
    use crate::store::Store;
    use crate::store::secrets::Password;

    struct Fx {
        _dir: tempfile::TempDir,
        st: AppState,
        oper: String,
        view: String,
    }

    /// A gateway without a broadcast runtime (the timetable is the stored
    /// one) and three horns: two in village `dongcun` (one in zone `school`),
    /// one in `xinhe`.
    fn fixture() -> Fx {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let cfg =
            crate::config::Config::parse(include_str!("../../../config/gateway.example.toml"), "x")
                .unwrap();
        store.sync_township(&cfg.township).unwrap();
        let st = AppState::new(
            store.clone(),
            "青山镇".into(),
            std::sync::Arc::new(Metrics::new()),
        )
        .unwrap()
        .with_hash_cost(HashCost::FAST);
        let mut tokens = Vec::new();
        for (name, role) in [("oper", Role::Operator), ("view", Role::Viewer)] {
            st.users()
                .upsert(
                    name,
                    role,
                    &Password::new("pw-Secret-123456"),
                    HashCost::FAST,
                )
                .unwrap();
            tokens.push(st.users().create_token(name, "test").unwrap());
        }
        let horn = |id: &str, village: &str, zone: Option<&str>, port: u16| NewSpeaker {
            id: Ident::parse(id).unwrap(),
            name: None,
            kind: DriverKind::Rtp,
            address: format!("127.0.0.1:{port}"),
            village: Some(village.into()),
            grid: None,
            zone: zone.map(|z| Ident::parse(z).unwrap()),
            codec: Codec::Pcmu,
            volume: None,
            ttl: None,
            username: None,
            password: None,
        };
        Speakers::open(&store)
            .unwrap()
            .upsert(&[
                horn("h1", "dongcun", None, 5001),
                horn("h2", "dongcun", Some("school"), 5002),
                horn("h3", "xinhe", None, 5003),
            ])
            .unwrap();
        let view = tokens.pop().unwrap();
        let oper = tokens.pop().unwrap();
        Fx {
            _dir: dir,
            st,
            oper,
            view,
        }
    }

    async fn call(
        app: &Router,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        if body.is_some() {
            b = b.header(header::CONTENT_TYPE, "application/json");
        }
        let req = b
            .body(AxBody::from(
                body.map(|v| v.to_string()).unwrap_or_default(),
            ))
            .unwrap();
        let r = app.clone().oneshot(req).await.unwrap();
        let status = r.status().as_u16();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 22).await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A timetable: a workday morning programme for everyone (07:30), a
    /// school notice at 12:30 in the school zone's quiet hours, two schemes.
    fn doc() -> Value {
        json!({
            "timezone": "Asia/Shanghai",
            "active_scheme": "winter",
            "scheme": [{"id": "winter", "name": "冬季作息"}, {"id": "summer", "name": "夏季作息"}],
            "quiet_hours": [{"targets": ["zone:school"], "from": "12:00", "to": "13:30"}],
            "programme": [
                {"id": "morning", "name": "早间政策广播", "items": [{"tts": "各位村民早上好"}]},
                {"id": "notice", "name": "通知", "items": [{"tts": "请注意"}], "priority": "township"}
            ],
            "schedule": [
                {"id": "workday-morning", "programme": "morning", "targets": ["all"], "at": ["07:30"], "days": "workdays", "scheme": "winter"},
                {"id": "noon-v1", "programme": "notice", "targets": ["village:dongcun"], "at": ["12:30"], "days": ["mon"]}
            ]
        })
    }

    fn message(v: &Value) -> String {
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The whole document goes in, comes back with its version, and is
    /// what the week view expands: 5 workday mornings to 3 horns, one
    /// Monday noon to 2 horns of which 1 is in quiet hours.
    #[tokio::test]
    async fn timetable_round_trip_and_week_view() {
        let fx = fixture();
        let app = router(fx.st.clone());
        let (s, v) = call(&app, Method::GET, "/api/v1/timetable", &fx.view, None).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["source"], "store");
        assert_eq!(v["version"], Value::Null);
        let (s, v) = call(
            &app,
            Method::PUT,
            "/api/v1/timetable",
            &fx.view,
            Some(doc()),
        )
        .await;
        assert_eq!(s, 403, "{v}");
        let (s, v) = call(
            &app,
            Method::PUT,
            "/api/v1/timetable",
            &fx.oper,
            Some(doc()),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["version"], 1);
        assert_eq!(v["active_scheme"], "winter");
        assert_eq!(v["parts"]["programme"][0]["name"], "早间政策广播");
        let (s, v) = call(
            &app,
            Method::GET,
            "/api/v1/timetable/week?from=2026-03-02",
            &fx.view,
            None,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["timezone"], "Asia/Shanghai");
        assert_eq!(v["horns_known"], 3);
        let days = v["days"].as_array().unwrap();
        assert_eq!(days.len(), 7);
        assert_eq!(days[0]["date"], "2026-03-02");
        let mon = days[0]["entries"].as_array().unwrap();
        assert_eq!(mon.len(), 2, "{mon:?}");
        assert_eq!(mon[0]["time"], "07:30");
        assert_eq!(mon[0]["programme_name"], "早间政策广播");
        assert_eq!(mon[0]["horns"], 3);
        assert_eq!(mon[1]["time"], "12:30");
        assert_eq!(
            (mon[1]["horns"].as_u64(), mon[1]["quiet"].as_u64()),
            (Some(2), Some(1))
        );
        let total: usize = days
            .iter()
            .map(|d| d["entries"].as_array().unwrap().len())
            .sum();
        assert_eq!(total, 6);
        assert_eq!(days[5]["workday"], false);
        // Another scheme, previewed: the winter-only mornings are gone.
        let (s, v) = call(
            &app,
            Method::GET,
            "/api/v1/timetable/week?from=2026-03-02&scheme=summer",
            &fx.view,
            None,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        let total: usize = v["days"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["entries"].as_array().unwrap().len())
            .sum();
        assert_eq!(total, 1);
        let (s, _) = call(
            &app,
            Method::GET,
            "/api/v1/timetable/week?from=2026-02-30",
            &fx.view,
            None,
        )
        .await;
        assert_eq!(s, 400);
        // Default: a Monday.
        let (s, v) = call(&app, Method::GET, "/api/v1/timetable/week", &fx.view, None).await;
        assert_eq!(s, 200);
        assert_eq!(v["days"][0]["weekday"], 1);
    }

    /// Entries are edited one at a time, the whole validated: an unknown
    /// programme is 422 naming the schedule, a programme still played
    /// cannot be deleted, ids cannot change, and every change is audited.
    #[tokio::test]
    async fn entries_are_edited_and_validated_whole() {
        let fx = fixture();
        let app = router(fx.st.clone());
        let (s, _) = call(
            &app,
            Method::PUT,
            "/api/v1/timetable",
            &fx.oper,
            Some(doc()),
        )
        .await;
        assert_eq!(s, 200);
        let (s, v) = call(
            &app,
            Method::PUT,
            "/api/v1/schedules/evening",
            &fx.oper,
            Some(json!({"programme": "nope", "targets": ["all"], "at": ["19:00"]})),
        )
        .await;
        assert_eq!(s, 422, "{v}");
        assert_eq!(v["error"]["code"], "invalid_timetable");
        assert!(
            message(&v).contains("schedule[2] (schedule `evening`).programme"),
            "{v}"
        );
        let (s, v) = call(
            &app,
            Method::PUT,
            "/api/v1/schedules/evening",
            &fx.oper,
            Some(json!({"programme": "notice", "targets": ["all"], "at": ["25:00"]})),
        )
        .await;
        assert_eq!(s, 400, "{v}");
        assert!(message(&v).starts_with("schedule.at"), "{v}");
        let (s, v) = call(
            &app,
            Method::PUT,
            "/api/v1/schedules/evening",
            &fx.oper,
            Some(
                json!({"id": "other", "programme": "notice", "targets": ["all"], "at": ["19:00"]}),
            ),
        )
        .await;
        assert_eq!(s, 400, "{v}");
        let (s, v) = call(
            &app,
            Method::PUT,
            "/api/v1/schedules/evening",
            &fx.oper,
            Some(json!({"programme": "notice", "targets": ["all"], "at": ["19:00"]})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["version"], 2);
        assert_eq!(v["parts"]["schedule"][2]["id"], "evening");
        let (s, v) = call(
            &app,
            Method::DELETE,
            "/api/v1/programmes/notice",
            &fx.oper,
            None,
        )
        .await;
        assert_eq!(s, 422, "{v}");
        assert!(
            message(&v).contains("`noon-v1`") && message(&v).contains("`evening`"),
            "{v}"
        );
        let (s, _) = call(
            &app,
            Method::DELETE,
            "/api/v1/programmes/ghost",
            &fx.oper,
            None,
        )
        .await;
        assert_eq!(s, 404);
        let (s, v) = call(
            &app,
            Method::PUT,
            "/api/v1/programmes/weather",
            &fx.oper,
            Some(json!({"name": "天气", "items": [{"tts": "今天晴"}], "repeat": 2})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = call(
            &app,
            Method::PUT,
            "/api/v1/programmes/weather",
            &fx.oper,
            Some(json!({"items": [], "repeat": 2})),
        )
        .await;
        assert_eq!(s, 422, "{v}");
        assert!(
            message(&v).contains("programme[2] (programme `weather`).items"),
            "{v}"
        );
        let (s, _) = call(
            &app,
            Method::DELETE,
            "/api/v1/programmes/weather",
            &fx.oper,
            None,
        )
        .await;
        assert_eq!(s, 200);
        // Schemes: the active one cannot go, a scheme with schedules neither.
        let (s, v) = call(
            &app,
            Method::DELETE,
            "/api/v1/schemes/winter",
            &fx.oper,
            None,
        )
        .await;
        assert_eq!(s, 422, "{v}");
        let (s, v) = call(
            &app,
            Method::PUT,
            "/api/v1/active-scheme",
            &fx.oper,
            Some(json!({"scheme": "summer"})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["active_scheme"], "summer");
        let (s, _) = call(
            &app,
            Method::PUT,
            "/api/v1/active-scheme",
            &fx.oper,
            Some(json!({"scheme": "autumn"})),
        )
        .await;
        assert_eq!(s, 404);
        let (s, v) = call(
            &app,
            Method::PUT,
            "/api/v1/active-scheme",
            &fx.oper,
            Some(json!({"scheme": null})),
        )
        .await;
        assert_eq!(s, 422, "{v}");
        let (s, v) = call(
            &app,
            Method::PUT,
            "/api/v1/schemes/spring",
            &fx.oper,
            Some(json!({"name": "春季"})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = call(
            &app,
            Method::DELETE,
            "/api/v1/schemes/spring",
            &fx.oper,
            None,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        let audit = fx.st.users().audit_log(100, None).unwrap();
        let actions: Vec<String> = audit
            .iter()
            .map(|e| format!("{} {}", e.action, e.outcome))
            .collect();
        for want in [
            "timetable.replace ok",
            "timetable.schedule.put invalid",
            "timetable.schedule.put ok",
            "timetable.programme.delete ok",
            "timetable.active_scheme ok",
            "timetable.scheme.delete ok",
        ] {
            assert!(
                actions.iter().any(|a| a == want),
                "{want} not in {actions:?}"
            );
        }
    }

    /// A check reports without saving; a file-managed timetable refuses
    /// every write with 409 naming the file, but still reads and checks.
    #[tokio::test]
    async fn check_does_not_save_and_files_are_read_only() {
        let mut fx = fixture();
        let app = router(fx.st.clone());
        let (s, v) = call(
            &app,
            Method::POST,
            "/api/v1/timetable/check?from=2026-03-02&days=7",
            &fx.view,
            Some(doc()),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["occurrences"].as_array().unwrap().len(), 6);
        assert_eq!(v["horns_known"], 3);
        let (_, v) = call(&app, Method::GET, "/api/v1/timetable", &fx.view, None).await;
        assert_eq!(v["version"], Value::Null);
        let mut bad = doc();
        bad["schedule"][0]["programme"] = json!("ghost");
        let (s, v) = call(
            &app,
            Method::POST,
            "/api/v1/timetable/check",
            &fx.view,
            Some(bad),
        )
        .await;
        assert_eq!(s, 422, "{v}");
        assert!(
            message(&v).contains("schedule[0] (schedule `workday-morning`).programme"),
            "{v}"
        );
        let mut bad = doc();
        bad["schedule"][0]["rrule"] = json!("FREQ=HOURLY");
        let (s, v) = call(
            &app,
            Method::POST,
            "/api/v1/timetable/check",
            &fx.view,
            Some(bad),
        )
        .await;
        assert_eq!(s, 400, "{v}");
        assert!(message(&v).contains("schedule[0].rrule"), "{v}");
        let (s, _) = call(
            &app,
            Method::POST,
            "/api/v1/timetable/check?days=0",
            &fx.view,
            Some(doc()),
        )
        .await;
        assert_eq!(s, 400);

        fx.st.timetable_file = Some("/etc/tgw/timetable.toml".into());
        let app = router(fx.st.clone());
        for (m, path, body) in [
            (Method::PUT, "/api/v1/timetable", Some(doc())),
            (
                Method::PUT,
                "/api/v1/programmes/x",
                Some(json!({"items": [{"tts": "x"}]})),
            ),
            (Method::DELETE, "/api/v1/schedules/x", None),
            (
                Method::PUT,
                "/api/v1/active-scheme",
                Some(json!({"scheme": "x"})),
            ),
        ] {
            let (s, v) = call(&app, m, path, &fx.oper, body).await;
            assert_eq!(s, 409, "{path}: {v}");
            assert_eq!(v["error"]["code"], "managed_in_file");
            assert!(message(&v).contains("/etc/tgw/timetable.toml"), "{v}");
        }
        let (s, v) = call(&app, Method::GET, "/api/v1/timetable", &fx.view, None).await;
        assert_eq!(s, 200);
        assert_eq!(v["source"], "file");
        assert_eq!(v["editable"], false);
    }

    /// Targets resolve to horns (for the emergency confirmation).
    #[tokio::test]
    async fn targets_resolve_to_horns() {
        let fx = fixture();
        let app = router(fx.st.clone());
        let (s, v) = call(
            &app,
            Method::GET,
            "/api/v1/targets/resolve?targets=village:dongcun,speaker:h3,speaker:ghost",
            &fx.view,
            None,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["horns"], 3);
        assert_eq!(v["unknown"], json!(["speaker:ghost"]));
        let (s, _) = call(
            &app,
            Method::GET,
            "/api/v1/targets/resolve?targets=planet:mars",
            &fx.view,
            None,
        )
        .await;
        assert_eq!(s, 400);
    }
}
