//! The route table: every route's method, path, access level and OpenAPI
//! metadata once in [`ROUTES`]; [`find_route`] for the access guard and
//! [`openapi_doc`], the OpenAPI document generated from the table.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use serde::Serialize;

use super::{AppState, AssignBody, BODY_LIMIT, SESSION_COOKIE};
use super::{alarms, gb28181 as gb, paging, places, recordings, trends};
use super::{
    audit::*, broadcasts as bc, camera_time::*, cameras::*, credentials::*, dashboard::*, inbox::*,
    inventory::*, live::*, logins::*, session::*, speakers::*, system::*, timetable as tt,
    timetable_view as ttv, unlock, users::*,
};
use crate::auth::{self, Role};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (operations endpoints, the dashboard shell, login).
    Public,
    /// A logged-in user with at least this role.
    Role(Role),
}

/// HTTP method of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum M {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

impl M {
    /// As an `http::Method`.
    pub fn method(self) -> Method {
        match self {
            M::Get => Method::GET,
            M::Post => Method::POST,
            M::Put => Method::PUT,
            M::Patch => Method::PATCH,
            M::Delete => Method::DELETE,
        }
    }
}

/// One route: the single place its method, path, access and docs live.
pub struct Route {
    /// Method.
    pub method: M,
    /// axum path (`{id}` parameters).
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// OpenAPI tag.
    pub tag: &'static str,
    /// One-line description.
    pub summary: &'static str,
    /// Request body schema, if it takes a JSON body.
    pub body: Option<fn() -> (String, serde_json::Value)>,
    /// Query parameters (name, description).
    pub query: &'static [(&'static str, &'static str)],
    /// The handler.
    pub handler: fn() -> MethodRouter<AppState>,
}

pub(super) fn schema<T: utoipa::ToSchema>() -> (String, serde_json::Value) {
    (
        T::name().to_string(),
        serde_json::to_value(T::schema()).unwrap_or_default(),
    )
}

const V: Access = Access::Role(Role::Viewer);
pub(super) const T: Access = Access::Role(Role::Technician);
pub(super) const A: Access = Access::Role(Role::Admin);
const O: Access = Access::Role(Role::Operator);

const PAGE: &[(&str, &str)] = &[
    ("page", "page number, 1-10000 (with per_page)"),
    ("per_page", "items per page, 1-1000; default: all"),
];
const CAM_Q: &[(&str, &str)] = &[
    ("village", "village code"),
    ("grid", "grid code"),
    ("verdict", "ok | degraded | offline | unknown"),
    ("vendor", "manufacturer (case-insensitive substring)"),
    ("q", "id, name or address substring"),
    ("page", "page number, 1-10000"),
    ("per_page", "items per page, 1-1000; default: all"),
];

macro_rules! r {
    ($m:ident $path:literal, $access:expr, $tag:literal, $summary:literal, $h:expr) => {
        Route {
            method: M::$m,
            path: $path,
            access: $access,
            tag: $tag,
            summary: $summary,
            body: None,
            query: &[],
            handler: || $h,
        }
    };
    ($m:ident $path:literal, $access:expr, $tag:literal, $summary:literal, $h:expr, query = $q:expr) => {
        Route {
            method: M::$m,
            path: $path,
            access: $access,
            tag: $tag,
            summary: $summary,
            body: None,
            query: $q,
            handler: || $h,
        }
    };
    ($m:ident $path:literal, $access:expr, $tag:literal, $summary:literal, $h:expr, body = $b:ty) => {
        Route {
            method: M::$m,
            path: $path,
            access: $access,
            tag: $tag,
            summary: $summary,
            body: Some(schema::<$b>),
            query: &[],
            handler: || $h,
        }
    };
}

/// Every route of the gateway.
pub const ROUTES: &[Route] = &[
    r!(Get "/", Access::Public, "dashboard", "Dashboard (single page; zh-CN, ?lang=en)", get(index)),
    r!(Get "/assets/{file}", Access::Public, "dashboard", "Dashboard assets", get(asset)),
    r!(Get "/healthz", Access::Public, "ops", "Liveness", get(|| async { "ok\n" })),
    r!(Get "/readyz", Access::Public, "ops", "Readiness (store reachable)", get(readyz)),
    r!(Get "/metrics", Access::Public, "ops", "Prometheus metrics (OpenMetrics text)", get(metrics)),
    r!(Get "/api/v1/openapi.json", Access::Public, "ops", "This document", get(openapi)),
    r!(Post "/api/v1/login", Access::Public, "auth", "Log in; sets the session cookie and returns the CSRF token (429 `locked`, `rate_limited` or `busy` with Retry-After)", post(login), body = LoginBody),
    r!(Post "/api/v1/logout", V, "auth", "End the session", post(logout)),
    r!(Get "/api/v1/session", V, "auth", "Who am I (user, role, CSRF token, township, time zone)", get(session)),
    r!(Get "/api/v1/townships", V, "inventory", "The township this gateway serves", get(townships)),
    r!(Get "/api/v1/villages", V, "inventory", "Villages with their grids", get(villages)),
    r!(Get "/api/v1/grids", V, "inventory", "Grids", get(grids), query = &[("village", "village code")]),
    r!(Get "/api/v1/devices", V, "inventory", "Devices (X-Total-Count header)", get(list_devices), query = &[
        ("state", "discovered | adopted | ignored"), ("kind", "camera | speaker"), ("village", "village code"), ("grid", "grid code"),
        ("page", "page number, 1-10000"), ("per_page", "items per page, 1-1000; default: all")]),
    r!(Get "/api/v1/devices/{id}", V, "inventory", "One device", get(get_device)),
    r!(Post "/api/v1/devices/{id}/assign", T, "inventory", "Adopt/move a device into a village and grid", post(assign), body = AssignBody),
    r!(Put "/api/v1/devices/{id}/credentials", T, "inventory", "Set the device's own login (write-only)", put(set_credentials), body = CredentialsBody),
    r!(Delete "/api/v1/devices/{id}/credentials", T, "inventory", "Remove the device's own login (its credential group applies)", delete(clear_credentials)),
    r!(Post "/api/v1/devices/{id}/credentials/test", T, "inventory", "Test a login on the camera now: the stored one, or {username, password} (audited; 409 while a test of the camera runs); result ok | credentials-rejected | unreachable | not-onvif | timeout | gateway-limit", post(test_credentials), body = LoginTestBody),
    r!(Post "/api/v1/devices/credentials", T, "inventory", "One login for many cameras, or clear: true (one audit entry per camera); answers {id, ok, error?} per id", post(bulk_credentials), body = BulkCredentialsBody),
    r!(Get "/api/v1/credential-groups", T, "inventory", "Credential groups (never their passwords)", get(list_groups)),
    r!(Put "/api/v1/credential-groups/{name}", T, "inventory", "Create or replace a credential group", put(set_group), body = GroupBody),
    r!(Delete "/api/v1/credential-groups/{name}", T, "inventory", "Delete a credential group (audited)", delete(delete_group)),
    r!(Get "/api/v1/inbox", V, "discovery", "Discovered devices waiting for adoption, with their probe result", get(inbox), query = PAGE),
    r!(Post "/api/v1/inbox/adopt", T, "discovery", "Adopt one or many devices into a village/grid, optionally with a login", post(adopt_many), body = AdoptBody),
    r!(Post "/api/v1/inbox/ignore", T, "discovery", "Dismiss devices from the inbox", post(ignore_many), body = IdsBody),
    r!(Get "/api/v1/overview", V, "cameras", "Counts by verdict per village, active alarms, recent transitions", get(overview)),
    r!(Get "/api/v1/cameras", V, "cameras", "Adopted cameras with their health (X-Total-Count header)", get(cameras), query = CAM_Q),
    r!(Get "/api/v1/cameras/{id}", V, "cameras", "One camera: device, inventory (profiles, stream metadata) and health", get(camera)),
    r!(Get "/api/v1/cameras/{id}/events", V, "cameras", "Verdict transitions of a camera, newest first", get(camera_events), query = &[("limit", "1-1000, default 200")]),
    r!(Get "/api/v1/cameras/{id}/snapshot", V, "cameras", "A JPEG snapshot fetched by the gateway with the camera's login", get(snapshot)),
    r!(Post "/api/v1/cameras/{id}/probe", T, "cameras", "Re-probe the camera now", post(probe_now)),
    r!(Post "/api/v1/cameras/{id}/sync-time", T, "cameras", "Set the camera's clock (our UTC time with the township's zone, or an NTP server) and re-measure its offset (audited)", post(sync_time), body = SyncTimeBody),
    r!(Get "/api/v1/transitions", V, "cameras", "Recent transitions of all cameras", get(transitions), query = &[("limit", "1-1000, default 50")]),
    r!(Get "/api/v1/events", V, "cameras", "Server-sent events: health states and transitions", get(events)),
    r!(Get "/api/v1/speakers", V, "speakers", "Loudspeakers (never their passwords) with their last test result", get(speakers), query = &[("village", "village code"), ("kind", "rtp | rtp-multicast | sip | axis | cloud")]),
    r!(Get "/api/v1/speakers/{id}", V, "speakers", "One loudspeaker with its last test result", get(speaker)),
    r!(Post "/api/v1/speakers/{id}/test", T, "speakers", "Play a test tone on one horn and report what happened (audited; 409 while a test of the horn runs)", post(speaker_test), body = SpeakerTestBody),
    r!(Get "/api/v1/broadcasts", V, "broadcasts", "Broadcasts, newest first, with per-state horn counts", get(bc::list), query = &[("limit", "1-1000, default 100"), ("state", "active (queued or playing: now playing), finished, or one state")]),
    r!(Get "/api/v1/recordings", V, "broadcasts", "Recordings of what aired (emergencies, live pages), newest first; id = the broadcast's id", get(recordings::list), query = &[("page", "1-10000, default 1"), ("per_page", "1-1000, default 50")]),
    r!(Get "/api/v1/recordings/{id}", V, "broadcasts", "Download a recording (audio/wav, 8 kHz G.711 µ-law; audited; 409 unless done)", get(recordings::download)),
    r!(Get "/api/v1/broadcasts/{id}", V, "broadcasts", "One broadcast: every horn's report and its history", get(bc::get_one)),
    r!(Post "/api/v1/broadcasts", O, "broadcasts", "Announce now: text (TTS), an asset or a programme, to targets (audited)", post(bc::announce), body = bc::AnnounceBody),
    r!(Post "/api/v1/broadcasts/{id}/cancel", O, "broadcasts", "Stop a broadcast everywhere (audited)", post(bc::cancel)),
    r!(Post "/api/v1/broadcasts/stop-all", O, "broadcasts", "Stop every broadcast playing or queued; always allowed to operators (audited)", post(bc::stop_all)),
    r!(Post "/api/v1/emergency", O, "broadcasts", "Emergency broadcast: interrupts everything, ignores quiet hours, forced volume; needs confirm: true (audited)", post(bc::emergency), body = bc::AnnounceBody),
    r!(Get "/api/v1/paging/live", O, "broadcasts", "Live paging (实时喊话) over a WebSocket: JSON start {targets, priority, codec, rate}, binary 20 ms frames, {\"end\": true}; a session also sends ?csrf= (docs/paging.md; audited)", get(paging::live), query = &[("csrf", "the session's CSRF token (cookie sessions only)")]),
    r!(Get "/api/v1/alerts", V, "broadcasts", "Early warnings (CAP) received and what they caused", get(bc::alerts), query = &[("limit", "1-1000, default 100")]),
    r!(Get "/api/v1/audio-assets", V, "broadcasts", "Stored audio assets", get(bc::assets)),
    r!(Post "/api/v1/audio-assets", O, "broadcasts", "Upload an audio file as the raw body (MP3, WAV, OGG/Vorbis, FLAC, Opus in WebM/Ogg, AAC in MP4/M4A/ADTS); checked and normalised (audited)", post(bc::upload).layer(DefaultBodyLimit::max(64 * 1024 * 1024)), query = &[("name", "file name, informational")]),
    r!(Get "/api/v1/targets/resolve", V, "broadcasts", "The horns targets reach (timetable groups expanded), for confirming a broadcast", get(ttv::resolve_targets), query = &[("targets", "comma-separated: all, village:CODE, grid:CODE, zone:NAME, group:NAME, speaker:ID")]),
    r!(Get "/api/v1/timetable", V, "timetable", "The timetable in force: source (file | store), version, time zone, active scheme and the whole document", get(tt::timetable)),
    r!(Put "/api/v1/timetable", O, "timetable", "Replace the whole timetable document; validated (422 naming the key path), saved as a new version (audited; 409 when managed in a file)", put(tt::replace_timetable), body = tt::PartsBody),
    r!(Get "/api/v1/timetable/week", V, "timetable", "Seven days of occurrences: local time, schedule, programme, priority, targets, horns reached, horns in quiet hours; and the check warnings", get(ttv::week), query = &[("from", "YYYY-MM-DD, default: this week's Monday in the timetable's zone"), ("scheme", "preview another scheme (default: the active one)")]),
    Route {
        method: M::Post,
        path: "/api/v1/timetable/check",
        access: V,
        tag: "timetable",
        summary: "What a timetable document would do over a range (the `tgw schedule check` report), without saving it",
        body: Some(schema::<tt::PartsBody>),
        query: &[
            ("from", "YYYY-MM-DD, default: today in the timetable's zone"),
            ("days", "1-366, default 7"),
        ],
        handler: || post(ttv::check_timetable),
    },
    r!(Put "/api/v1/programmes/{id}", O, "timetable", "Create or replace a programme; the whole timetable is validated (audited)", put(tt::put_programme), body = tt::EntryBody),
    r!(Delete "/api/v1/programmes/{id}", O, "timetable", "Delete a programme no schedule plays (audited)", delete(tt::delete_programme)),
    r!(Put "/api/v1/schedules/{id}", O, "timetable", "Create or replace a schedule; the whole timetable is validated (audited)", put(tt::put_schedule), body = tt::EntryBody),
    r!(Delete "/api/v1/schedules/{id}", O, "timetable", "Delete a schedule (audited)", delete(tt::delete_schedule)),
    r!(Put "/api/v1/schemes/{id}", O, "timetable", "Create or replace a scheme; the first one becomes active (audited)", put(tt::put_scheme), body = tt::EntryBody),
    r!(Delete "/api/v1/schemes/{id}", O, "timetable", "Delete a scheme without schedules that is not in force (audited)", delete(tt::delete_scheme)),
    r!(Put "/api/v1/active-scheme", O, "timetable", "Switch the scheme in force (audited)", put(tt::set_active_scheme), body = tt::ActiveSchemeBody),
    r!(Get "/api/v1/users", A, "users", "Users", get(list_users)),
    r!(Post "/api/v1/users", A, "users", "Create a user", post(create_user), body = NewUserBody),
    r!(Patch "/api/v1/users/{name}", A, "users", "Change role, disabled flag or password", patch(update_user), body = UpdateUserBody),
    r!(Delete "/api/v1/users/{name}", A, "users", "Delete a user", delete(delete_user)),
    r!(Post "/api/v1/users/{name}/tokens", A, "users", "Issue an API token (returned once)", post(create_token), body = TokenBody),
    r!(Get "/api/v1/users/{name}/tokens", V, "users", "A user's API tokens: id, label, created, last used; never the secret (admins, or the user for their own)", get(list_tokens)),
    r!(Delete "/api/v1/users/{name}/tokens/{id}", V, "users", "Revoke an API token (admins, or the user for their own; audited)", delete(revoke_token)),
    r!(Post "/api/v1/users/{name}/unlock", A, "users", "Lift the user's login lockouts (every address) and slow-down (audited)", post(unlock::unlock_user)),
    r!(Get "/api/v1/audit", A, "audit", "Audit log, newest first", get(audit_log), query = &[("limit", "1-1000, default 100"), ("before", "entries with a smaller id")]),
    r!(Get "/api/v1/log-level", A, "ops", "The log filter in force", get(get_log_level)),
    r!(Put "/api/v1/log-level", A, "ops", "Change the log filter at run time", put(set_log_level), body = LogLevelBody),
    r!(Get "/api/v1/places", V, "places", "Devices placed on the township map (kind, id, x/y on the drawing, lon/lat)", get(places::list)),
    r!(Put "/api/v1/places/{id}", T, "places", "Place a camera or speaker on the map by x/y (0..1) or lon/lat (audited)", put(places::put), body = places::PlaceBody),
    r!(Delete "/api/v1/places/{id}", T, "places", "Take a device off the map (audited)", delete(places::delete), query = &[("kind", "camera (default) | speaker")]),
    r!(Get "/api/v1/gb28181", V, "gb28181", "GB/T 28181 uplink: per platform registration state, last keepalive, catalog size, live relays", get(gb::status)),
    r!(Get "/api/v1/gb28181/cameras", V, "gb28181", "Every adopted camera with its 20-digit GB/T 28181 id (null until assigned)", get(gb::cameras)),
    r!(Put "/api/v1/gb28181/cameras/{id}", T, "gb28181", "Set a camera's 20-digit GB/T 28181 id (type 131/132, unique; audited)", put(gb::put_camera), body = gb::GbIdBody),
    r!(Get "/api/v1/alarm-acks", V, "cameras", "Acknowledged alarms, newest first", get(alarms::acks), query = &[("limit", "1-1000, default 500")]),
    r!(Post "/api/v1/alarms/{id}/ack", O, "cameras", "Acknowledge a camera's current alarm with a note (audited; the first acknowledgement stands)", post(alarms::ack), body = alarms::AckBody),
    r!(Get "/api/v1/cameras/{id}/trends", V, "cameras", "A camera's fps, bitrate, loss, clock offset and availability, downsampled", get(trends::camera), query = &[("range", "24h (default, 15 min buckets) | 7d (2 h buckets)")]),
    r!(Get "/api/v1/trends/villages", V, "cameras", "Each village's camera availability per day", get(trends::villages), query = &[("days", "1-90, default 30")]),
    r!(Get "/api/v1/trends/broadcasts", V, "broadcasts", "Broadcasts per week by final state", get(trends::broadcasts), query = &[("weeks", "1-52, default 12")]),
];

/// Finds the route for a method and matched path.
pub fn find_route(method: &Method, path: &str) -> Option<&'static Route> {
    ROUTES
        .iter()
        .find(|r| r.path == path && r.method.method() == *method)
}
/// The OpenAPI 3.1 document, generated from [`ROUTES`] and the request types.
pub fn openapi_doc() -> serde_json::Value {
    let mut paths: BTreeMap<String, serde_json::Map<String, serde_json::Value>> = BTreeMap::new();
    let mut schemas = serde_json::Map::new();
    for name in [
        schema::<auth::User>(),
        schema::<auth::AuditEntry>(),
        schema::<ErrorBody>(),
    ] {
        schemas.insert(name.0, name.1);
    }
    for r in ROUTES {
        let oapath = r.path.to_string();
        let mut params: Vec<serde_json::Value> = r
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|p| serde_json::json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        params.extend(r.query.iter().map(|(n, d)| serde_json::json!({"name": n, "in": "query", "required": false, "description": d, "schema": {"type": "string"}})));
        let err = serde_json::json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}});
        let mut responses = serde_json::json!({"200": {"description": "ok"}, "default": err});
        if let Access::Role(role) = r.access {
            responses["401"] =
                serde_json::json!({"description": "not logged in (code `unauthenticated`)"});
            responses["403"] = serde_json::json!({"description": format!("role below {} (code `forbidden`) or, for sessions, missing CSRF token (code `csrf`)", role.as_str())});
        }
        let mut op = serde_json::json!({
            "tags": [r.tag],
            "summary": r.summary,
            "operationId": format!("{}_{}", r.method.method().as_str().to_lowercase(), r.path.trim_matches('/').replace(['/', '{', '}', '-', '.'], "_")),
            "parameters": params,
            "responses": responses,
        });
        match r.access {
            Access::Public => op["security"] = serde_json::json!([]),
            Access::Role(role) => op["x-min-role"] = serde_json::json!(role.as_str()),
        }
        if let Some(b) = r.body {
            let (name, s) = b();
            op["requestBody"] = serde_json::json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}}});
            op["responses"]["400"] = serde_json::json!({"description": "malformed JSON, unknown field or out-of-range value (codes `malformed`, `invalid`)"});
            op["responses"]["413"] = serde_json::json!({"description": format!("body over {BODY_LIMIT} bytes (code `too_large`)")});
            schemas.insert(name, s);
        }
        paths
            .entry(oapath)
            .or_default()
            .insert(r.method.method().as_str().to_lowercase(), op);
    }
    serde_json::json!({
        "openapi": "3.1.0",
        "info": {"title": "Township Gateway API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Generated from the gateway's route table (gateway/src/http/routes.rs ROUTES)."},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
                "bearer": {"type": "http", "scheme": "bearer"}
            }
        },
        "security": [{"session": []}, {"bearer": []}]
    })
}

/// The error envelope.
#[derive(Serialize, utoipa::ToSchema)]
struct ErrorBody {
    error: ErrorInner,
}

/// Error code and message.
#[derive(Serialize, utoipa::ToSchema)]
struct ErrorInner {
    /// Stable code: unauthenticated, forbidden, csrf, malformed, invalid,
    /// too_large, unsupported_media_type, not_found, method_not_allowed, conflict,
    /// rate_limited, locked, busy, unavailable, device, store, internal.
    code: String,
    /// Human-readable message.
    message: String,
}

async fn openapi() -> Response {
    Json(openapi_doc()).into_response()
}
