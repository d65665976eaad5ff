//! `/api/v1` routes of broadcasts (issue 7): live and past broadcasts,
//! starting and cancelling announcements, the emergency button, stop-all,
//! audio assets and the CAP alerts received.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiResult, AppState, Body, Ctx, Q, Validate, check_len, check_multiline};
use crate::base::error::Error;
use crate::broadcast::render::{Part, Recipe};
use crate::broadcast::runtime::{Broadcasts, Spec};
use crate::broadcast::{OnPreempt, Priority, Target};

pub(super) fn runtime(st: &AppState) -> Result<&Broadcasts, ApiError> {
    st.broadcasts.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "broadcasts are not running on this gateway",
        )
    })
}

pub(super) fn records(st: &AppState) -> Result<crate::broadcast::record::Records, ApiError> {
    crate::broadcast::record::Records::open(&st.store).map_err(store_err)
}

pub(super) fn store_err(e: anyhow::Error) -> ApiError {
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
    fn validate(&self) -> Result<(), Error> {
        match self.limit {
            Some(l) if !(1..=1000).contains(&l) => {
                Err(Error::invalid(format!("limit must be 1-1000, got {l}")))
            }
            _ => Ok(()),
        }
    }
}

/// `?limit=&state=` of the broadcast list.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<usize>,
    state: Option<String>,
}

/// The states `?state=` names: `active` (queued or playing: "now
/// playing"), `finished` (every final state), or one state.
fn states_of(q: &str) -> Option<Vec<&'static str>> {
    use crate::broadcast::engine::BroadcastStatus as B;
    match q {
        "active" => Some(vec!["queued", "playing"]),
        "finished" => Some(vec!["done", "cancelled", "interrupted", "failed"]),
        s => B::parse(s).map(|b| vec![b.as_str()]),
    }
}

impl Validate for ListQuery {
    fn validate(&self) -> Result<(), Error> {
        LimitQuery { limit: self.limit }.validate()?;
        match self.state.as_deref() {
            Some(s) if states_of(s).is_none() => Err(Error::invalid(format!(
                "state must be active, finished, queued, playing, done, cancelled, interrupted or failed, got `{}`",
                s.escape_debug()
            ))),
            _ => Ok(()),
        }
    }
}

/// `GET /api/v1/broadcasts`
pub async fn list(State(st): State<AppState>, Q(q): Q<ListQuery>) -> ApiResult {
    let limit = q.limit.unwrap_or(100);
    let r = records(&st)?;
    let v = match q.state.as_deref().and_then(states_of) {
        Some(states) => r.list_in(limit, &states),
        None => r.list(limit),
    }
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
    fn validate(&self) -> Result<(), Error> {
        if self.targets.is_empty() {
            return Err(Error::invalid("targets: name at least one target"));
        }
        if self.targets.len() > 200 {
            return Err(Error::invalid("targets: at most 200"));
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
            return Err(Error::invalid(
                "give exactly one of text, asset or programme",
            ));
        }
        if let Some(t) = &self.text {
            if t.trim().is_empty() || t.chars().count() > 2000 {
                return Err(Error::invalid("text: 1-2000 characters"));
            }
            check_multiline("text", t)?;
        }
        if let Some(a) = &self.asset
            && !crate::broadcast::audio::assets::valid_id(a.strip_prefix("sha256:").unwrap_or(a))
        {
            return Err(Error::invalid(format!(
                "asset: `{a}` is not sha256:<64 hex digits>"
            )));
        }
        if let Some(r) = self.repeat
            && !(1..=20).contains(&r)
        {
            return Err(Error::invalid(format!("repeat must be 1-20, got {r}")));
        }
        if let Some(v) = self.volume
            && v > 100
        {
            return Err(Error::invalid(format!("volume must be 0-100, got {v}")));
        }
        if self.confirm.is_some() && self.priority.is_some() {
            return Err(Error::invalid(
                "priority: an emergency broadcast is always `emergency`",
            ));
        }
        if self.priority == Some(Priority::Emergency) {
            return Err(Error::invalid(
                "priority: emergencies go through POST /api/v1/emergency (with confirmation)",
            ));
        }
        if let Some(t) = &self.title {
            check_len("title", t, 0, 200)?;
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
    fn validate(&self) -> Result<(), Error> {
        match &self.name {
            Some(n) if n.is_empty() || n.chars().count() > 200 || n.contains(['/', '\\']) => {
                Err(Error::invalid("name: 1-200 characters without slashes"))
            }
            Some(n) => check_len("name", n, 1, 200),
            None => Ok(()),
        }
    }
}

/// The file extension a `Content-Type` stands for, when the upload's name
/// has none (a MediaRecorder blob: `audio/webm;codecs=opus`). Only a hint
/// to the probe, which reads the bytes.
pub fn ext_for_content_type(ct: &str) -> Option<&'static str> {
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Some(match mime.as_str() {
        "audio/webm" | "video/webm" => "webm",
        "audio/ogg" | "audio/opus" | "application/ogg" => "ogg",
        "audio/mp4" | "audio/m4a" | "audio/x-m4a" | "video/mp4" => "m4a",
        "audio/aac" | "audio/aacp" => "aac",
        "audio/mpeg" | "audio/mp3" => "mp3",
        "audio/wav" | "audio/x-wav" | "audio/wave" => "wav",
        "audio/flac" | "audio/x-flac" => "flac",
        _ => return None,
    })
}

/// `POST /api/v1/audio-assets?name=FILE`: the raw file as the body (MP3,
/// WAV, OGG/Vorbis, FLAC, Opus in WebM/Ogg, AAC in MP4/M4A/ADTS); checked,
/// normalised and stored. A name without an extension gets one from the
/// `Content-Type` (a hint only: the bytes decide).
pub async fn upload(
    State(st): State<AppState>,
    ctx: Ctx,
    Q(q): Q<UploadQuery>,
    headers: HeaderMap,
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
    let ct_ext = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(ext_for_content_type);
    let n2 = match ct_ext {
        Some(ext) if std::path::Path::new(&name).extension().is_none() => format!("{name}.{ext}"),
        _ => name.clone(),
    };
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

#[cfg(test)]
mod clip_upload_tests {
    use super::ext_for_content_type;

    /// MediaRecorder and phone content types map to the extension the probe
    /// is hinted with; unknown or non-audio types give no hint.
    #[test]
    fn content_types_hint_the_extension() {
        for (ct, ext) in [
            ("audio/webm;codecs=opus", Some("webm")),
            ("Audio/WebM; codecs=\"opus\"", Some("webm")),
            ("audio/ogg; codecs=opus", Some("ogg")),
            ("audio/mp4;codecs=mp4a.40.2", Some("m4a")),
            ("audio/x-m4a", Some("m4a")),
            ("audio/aac", Some("aac")),
            ("application/octet-stream", None),
            ("text/html", None),
            ("", None),
        ] {
            assert_eq!(ext_for_content_type(ct), ext, "{ct}");
        }
    }
}
