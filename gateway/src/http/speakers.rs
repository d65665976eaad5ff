//! Loudspeakers: the inventory as the API shows it (never passwords) and
//! the test tone with its last result.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;

use super::{ApiError, ApiResult, AppState, Body, Ctx, Q, Validate};
use crate::base::error::Error;

// --- speakers (issue 6) ---

/// Horns with a test running, and the last test result of each horn
/// (in memory; the audit log keeps the history).
#[derive(Clone, Default)]
pub(super) struct SpeakerTests {
    busy: Arc<Mutex<HashSet<String>>>,
    last: Arc<Mutex<HashMap<String, serde_json::Value>>>,
}

/// Holds a horn's test slot; frees it when dropped.
pub(super) struct BusySlot {
    busy: Arc<Mutex<HashSet<String>>>,
    id: String,
}

impl SpeakerTests {
    /// The horn's slot, or `None` while another test of it runs.
    pub(super) fn take(&self, id: &str) -> Option<BusySlot> {
        let mut b = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        b.insert(id.to_string()).then(|| BusySlot {
            busy: self.busy.clone(),
            id: id.to_string(),
        })
    }
    pub(super) fn last(&self, id: &str) -> Option<serde_json::Value> {
        self.last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }
    fn set_last(&self, id: &str, v: serde_json::Value) {
        self.last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), v);
    }
}

impl Drop for BusySlot {
    fn drop(&mut self) {
        self.busy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

pub(super) fn speaker_inventory(st: &AppState) -> Result<crate::speakers::Speakers, ApiError> {
    crate::speakers::Speakers::open(&st.store).map_err(speaker_store_err)
}

pub(super) fn speaker_store_err(e: anyhow::Error) -> ApiError {
    tracing::warn!(error = %e, "speaker inventory error in API");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "store",
        format!("speaker inventory: {e}"),
    )
}

/// A speaker as the API shows it: the inventory row (never the password)
/// plus `last_test`.
fn speaker_json(
    s: &crate::speakers::Speaker,
    last: Option<serde_json::Value>,
) -> serde_json::Value {
    let mut v = serde_json::to_value(s).unwrap_or_default();
    v["last_test"] = last.unwrap_or(serde_json::Value::Null);
    v
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct SpeakerQuery {
    village: Option<String>,
    kind: Option<String>,
}

impl Validate for SpeakerQuery {
    fn validate(&self) -> Result<(), Error> {
        if let Some(k) = &self.kind {
            crate::speakers::DriverKind::parse(k)?;
        }
        Ok(())
    }
}

pub(super) async fn speakers(State(st): State<AppState>, Q(q): Q<SpeakerQuery>) -> ApiResult {
    let inv = speaker_inventory(&st)?;
    let kind = q
        .kind
        .as_deref()
        .map(crate::speakers::DriverKind::parse)
        .transpose()
        .map_err(ApiError::from)?;
    let v: Vec<serde_json::Value> = inv
        .list()
        .map_err(speaker_store_err)?
        .into_iter()
        .filter(|s| {
            q.village
                .as_ref()
                .is_none_or(|v| s.village.as_ref() == Some(v))
        })
        .filter(|s| kind.is_none_or(|k| s.kind == k))
        .map(|s| {
            let last = st.speaker_tests.last(&s.id);
            speaker_json(&s, last)
        })
        .collect();
    Ok(Json(v).into_response())
}

pub(super) async fn speaker(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let s = speaker_inventory(&st)?
        .get(&id)
        .map_err(speaker_store_err)?
        .ok_or_else(|| ApiError::not_found("speaker", &id))?;
    Ok(Json(speaker_json(&s, st.speaker_tests.last(&id))).into_response())
}

/// `POST /api/v1/speakers/{id}/test`
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpeakerTestBody {
    /// Tone frequency, 400-3000 Hz (default 1000).
    #[serde(default = "default_tone_hz")]
    pub tone_hz: u32,
    /// Tone length, 1-10 seconds (default 2).
    #[serde(default = "default_tone_seconds")]
    pub seconds: u32,
}

fn default_tone_hz() -> u32 {
    1000
}
fn default_tone_seconds() -> u32 {
    2
}

impl Validate for SpeakerTestBody {
    fn validate(&self) -> Result<(), Error> {
        if !(400..=3000).contains(&self.tone_hz) {
            return Err(Error::invalid(format!(
                "tone_hz must be 400-3000, got {}",
                self.tone_hz
            )));
        }
        if !(1..=10).contains(&self.seconds) {
            return Err(Error::invalid(format!(
                "seconds must be 1-10, got {}",
                self.seconds
            )));
        }
        Ok(())
    }
}

/// Replaces a secret wherever it appears in a JSON value's strings.
fn scrub(v: &mut serde_json::Value, secret: &str) {
    match v {
        serde_json::Value::String(s) if !secret.is_empty() && s.contains(secret) => {
            *s = s.replace(secret, "***");
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| scrub(x, secret)),
        serde_json::Value::Object(o) => o.values_mut().for_each(|x| scrub(x, secret)),
        _ => {}
    }
}

/// Delay between the horn being ready and the tone's start (T0).
const TEST_PLAYOUT_DELAY: Duration = Duration::from_millis(200);

pub(super) async fn speaker_test(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Body(b): Body<SpeakerTestBody>,
) -> ApiResult {
    let inv = speaker_inventory(&st)?;
    let s = inv
        .get(&id)
        .map_err(speaker_store_err)?
        .ok_or_else(|| ApiError::not_found("speaker", &id))?;
    let login = inv.login_for(&id).map_err(speaker_store_err)?;
    let secret = login
        .as_ref()
        .map(|l| l.password.expose().to_string())
        .unwrap_or_default();
    let mut uri = crate::speakers::uri::speaker_uri(&s, login.as_ref())?;
    if let device_drivers::speaker::SpeakerUri::Rtp {
        dest, multicast_if, ..
    } = &mut uri
        && dest.ip().is_multicast()
    {
        *multicast_if = st.multicast_if;
    }
    drop(login);
    let Some(slot) = st.speaker_tests.take(&id) else {
        st.audit(&ctx, "speaker.test", Some(&id), None, None, "busy");
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "busy",
            format!("speaker `{id}` is already playing a test; wait for it to end"),
        ));
    };
    let pcm = device_drivers::g711::tone(f64::from(b.tone_hz), f64::from(b.seconds), 12_000);
    let cancel = st.shutdown.child_token();
    let at_wall = st.clock.now_utc();
    let at_mono = tokio::time::Instant::now();
    // Played in its own task: a client that goes away does not cut the
    // horn off mid-call (the SIP call is still hung up properly).
    let task = tokio::spawn(async move {
        let _slot = slot;
        let opts = device_drivers::speaker::DriverOptions::default();
        device_drivers::speaker::play(&uri, &opts, &pcm, TEST_PLAYOUT_DELAY, &cancel).await
    });
    let rep = task.await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("speaker `{id}`: the test task failed: {e}"),
        )
    })?;
    let rfc = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    // `ok` only when the horn answered: a one-way RTP horn that sent
    // nothing back is `result: "unknown"`, never ok.
    let result = rep.result();
    let ok = result == "ok";
    let mut v = serde_json::json!({
        "id": id,
        "kind": s.kind,
        "tone_hz": b.tone_hz,
        "seconds": b.seconds,
        "at": rfc(at_wall),
        "by": ctx.who.user,
        "ok": ok,
        "result": result,
        "answered": rep.answered,
        "answer_ms": rep.answer_ms,
        "codec": rep.codec,
        "started_at": rep.first_sent.map(|f| rfc(at_wall + (f - at_mono))),
        "skew_ms": rep.start_offset_ms,
        "packets": rep.packets,
        "octets": rep.octets,
        "skipped_frames": rep.skipped_frames,
        "completed": rep.completed,
        "error_kind": rep.error_kind,
        "errors": rep.errors,
    });
    scrub(&mut v, &secret);
    st.speaker_tests.set_last(&id, v.clone());
    let (label, audit_result) = test_verdict(&rep);
    st.metrics.broadcasts.speaker_test(label);
    if let Some(r) = rep.local {
        st.metrics.local_errors.report(r, "speaker-test");
    }
    let summary = serde_json::json!({
        "tone_hz": b.tone_hz, "seconds": b.seconds, "answered": v["answered"],
        "packets": v["packets"], "skew_ms": v["skew_ms"], "error_kind": v["error_kind"], "error": v["errors"].get(0),
    });
    st.audit(
        &ctx,
        "speaker.test",
        Some(&id),
        None,
        Some(summary),
        audit_result,
    );
    Ok(Json(v).into_response())
}

/// A speaker test's `/metrics` label (`ok`, `unknown`, else the error
/// kind) and audit result: `ok`, `unconfirmed` (played, the horn cannot or
/// did not confirm it), `gateway_limit` (the gateway's own EMFILE … made
/// it fail: not the horn's fault), else `device_error`.
fn test_verdict(rep: &device_drivers::speaker::PlayReport) -> (&str, &'static str) {
    match rep.result().as_str() {
        "ok" => ("ok", "ok"),
        "unknown" => ("unknown", "unconfirmed"),
        _ => (
            rep.error_kind.as_deref().unwrap_or("failed"),
            if rep.local.is_some() {
                "gateway_limit"
            } else {
                "device_error"
            },
        ),
    }
}
// --- end speakers (issue 6) ---

#[cfg(test)]
mod verdict_tests {
    use super::test_verdict;
    use device_drivers::local_error::LocalResource;
    use device_drivers::speaker::{Answered, PlayReport};

    fn failed(error_kind: &str, local: Option<LocalResource>) -> PlayReport {
        PlayReport {
            device: "rtp://127.0.0.1:5004".into(),
            kind: "rtp".into(),
            answered: Answered::Unknown,
            answer_ms: None,
            codec: None,
            start_offset_ms: None,
            packets: 0,
            octets: 0,
            skipped_frames: 0,
            completed: false,
            error_kind: Some(error_kind.into()),
            local,
            errors: vec!["prepare failed".into()],
            first_sent: None,
        }
    }

    /// The gateway's own EMFILE is audited as such, not as the horn's
    /// error; a horn that refused still is `device_error`.
    #[test]
    fn a_test_failed_by_the_gateways_limit_is_not_a_device_error() {
        let local = failed("local", Some(LocalResource::Emfile));
        assert_eq!(test_verdict(&local), ("local", "gateway_limit"));
        let refused = failed("unreachable", None);
        assert_eq!(test_verdict(&refused), ("unreachable", "device_error"));
        let played = PlayReport {
            completed: true,
            errors: vec![],
            error_kind: None,
            packets: 50,
            ..refused
        };
        assert_eq!(test_verdict(&played), ("unknown", "unconfirmed"));
        let answered = PlayReport {
            answered: Answered::Yes,
            ..played
        };
        assert_eq!(test_verdict(&answered), ("ok", "ok"));
    }
}
