//! The HTTP API (`/api/v1`), the embedded dashboard, and the operations
//! endpoints (`/healthz`, `/readyz`, `/metrics`).
//!
//! Every route is declared once in [`ROUTES`] with its method, path, access
//! level and OpenAPI metadata; [`router`] builds the axum router from that
//! table and one guard middleware enforces the access level of the matched
//! route, so a route cannot exist without an access rule, and the access
//! test iterates the same table (STYLE.md §12).
//!
//! Access: browser sessions (HttpOnly, SameSite=Strict cookie; every
//! mutating request must carry the session's CSRF token in `X-CSRF-Token`)
//! or bearer API tokens (`Authorization: Bearer tgw_…`). Roles: viewer <
//! operator < technician < admin. Every change and every action that
//! reaches a device writes an audit entry. Passwords, tokens and session ids
//! are never part of a response body other than the one that creates a token,
//! and never logged. Errors are `{"error":{"code","message"}}` with stable
//! codes; request bodies are capped at [`BODY_LIMIT`] (413), unknown fields
//! and out-of-range values are refused (400).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Path, Request, State,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use axum::{Json, Router};
use futures::StreamExt as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::auth::{self, HashCost, LoginLimiter, NewAudit, Principal, Refusal, Role, Users, Via};
use crate::base::live::LiveHub;
use crate::base::metrics::Metrics;
use crate::store::secrets::Password;
use crate::store::{Device, DeviceState, Store, StoreError};
use tgw_core::health::Health;

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 64 * 1024;
/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "tgw_session";
/// Header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Changes the process's log filter (an `EnvFilter` directive string).
pub type LogLevelFn = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct AppState {
    store: Store,
    township: String,
    metrics: Arc<Metrics>,
    users: Users,
    limiter: LoginLimiter,
    live: LiveHub,
    probe_tx: Option<mpsc::Sender<String>>,
    log_level: Option<LogLevelFn>,
    current_level: Arc<Mutex<String>>,
    secure_cookies: bool,
    timezone: String,
    hash_cost: HashCost,
    http: reqwest::Client,
    shutdown: CancellationToken,
    speaker_tests: SpeakerTests,
    multicast_if: Option<std::net::Ipv4Addr>,
    broadcasts: Option<crate::broadcast::runtime::Broadcasts>,
    assets: Option<crate::broadcast::audio::assets::AssetStore>,
    default_volume: u8,
    timetable_file: Option<std::path::PathBuf>,
}

impl AppState {
    /// State over a store; `township` is the display name. Applies the
    /// `auth` migrations.
    pub fn new(
        store: Store,
        township: String,
        metrics: Arc<Metrics>,
    ) -> Result<Self, auth::AuthError> {
        let users = Users::new(store.clone())?;
        let http = device_drivers::onvif_client::http_client(&Default::default())
            .unwrap_or_else(|_| reqwest::Client::new());
        Ok(Self {
            store,
            township,
            metrics,
            users,
            limiter: LoginLimiter::default(),
            live: LiveHub::default(),
            probe_tx: None,
            log_level: None,
            current_level: Arc::new(Mutex::new(String::new())),
            secure_cookies: false,
            timezone: "Asia/Shanghai".into(),
            hash_cost: HashCost::DEFAULT,
            http,
            shutdown: CancellationToken::new(),
            speaker_tests: SpeakerTests::default(),
            multicast_if: None,
            broadcasts: None,
            assets: None,
            default_volume: 80,
            timetable_file: None,
        })
    }

    /// Enables the broadcast routes: the runtime, the asset store, the
    /// volume used when a programme sets none, and the timetable file when
    /// the timetable is managed in a file (then the API cannot edit it).
    pub fn with_broadcasts(
        mut self,
        b: crate::broadcast::runtime::Broadcasts,
        assets: crate::broadcast::audio::assets::AssetStore,
        default_volume: u8,
        timetable_file: Option<std::path::PathBuf>,
    ) -> Self {
        self.broadcasts = Some(b);
        self.assets = Some(assets);
        self.default_volume = default_volume;
        self.timetable_file = timetable_file;
        self
    }

    /// Where probe-now requests go (device ids; the daemon's inventory loop
    /// consumes them). Without it, probe-now answers 503.
    pub fn with_probe(mut self, tx: mpsc::Sender<String>) -> Self {
        self.probe_tx = Some(tx);
        self
    }

    /// The live hub whose events `/api/v1/events` streams; pass the same hub
    /// to the poller as its [`crate::cameras::poller::HealthSink`].
    pub fn with_live(mut self, hub: LiveHub) -> Self {
        self.live = hub;
        self
    }

    /// The live hub (to hand to the poller).
    pub fn live(&self) -> LiveHub {
        self.live.clone()
    }

    /// Enables `PUT /api/v1/log-level`; `current` is the filter in force.
    pub fn with_log_level(mut self, f: LogLevelFn, current: &str) -> Self {
        self.log_level = Some(f);
        self.current_level = Arc::new(Mutex::new(current.to_string()));
        self
    }

    /// Marks cookies `Secure` (the gateway is served behind TLS).
    pub fn with_secure_cookies(mut self, on: bool) -> Self {
        self.secure_cookies = on;
        self
    }

    /// Local address multicast horn audio leaves from (the first
    /// `discovery.interfaces` entry); `None` = the kernel's default route.
    pub fn with_multicast_if(mut self, addr: Option<std::net::Ipv4Addr>) -> Self {
        self.multicast_if = addr;
        self
    }

    /// IANA time zone the dashboard displays times in.
    pub fn with_timezone(mut self, tz: &str) -> Self {
        self.timezone = tz.to_string();
        self
    }

    /// Argon2 cost for passwords set through the API.
    pub fn with_hash_cost(mut self, c: HashCost) -> Self {
        self.hash_cost = c;
        self
    }

    /// Login limiter (tests tune it).
    pub fn with_limiter(mut self, l: LoginLimiter) -> Self {
        self.limiter = l;
        self
    }

    /// SSE streams end when this is cancelled (graceful shutdown).
    pub fn with_shutdown(mut self, t: CancellationToken) -> Self {
        self.shutdown = t;
        self
    }

    /// The user store.
    pub fn users(&self) -> &Users {
        &self.users
    }
}

// ---------------------------------------------------------------- routes

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

fn schema<T: utoipa::ToSchema>() -> (String, serde_json::Value) {
    (
        T::name().to_string(),
        serde_json::to_value(T::schema()).unwrap_or_default(),
    )
}

const V: Access = Access::Role(Role::Viewer);
const T: Access = Access::Role(Role::Technician);
const A: Access = Access::Role(Role::Admin);
const O: Access = Access::Role(Role::Operator);

mod broadcasts;
use broadcast_api as bc;
use broadcasts as broadcast_api;
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
    r!(Post "/api/v1/login", Access::Public, "auth", "Log in; sets the session cookie and returns the CSRF token", post(login), body = LoginBody),
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
    r!(Get "/api/v1/credential-groups", T, "inventory", "Credential groups (never their passwords)", get(list_groups)),
    r!(Put "/api/v1/credential-groups/{name}", T, "inventory", "Create or replace a credential group", put(set_group), body = GroupBody),
    r!(Get "/api/v1/inbox", V, "discovery", "Discovered devices waiting for adoption, with their probe result", get(inbox), query = PAGE),
    r!(Post "/api/v1/inbox/adopt", T, "discovery", "Adopt one or many devices into a village/grid, optionally with a login", post(adopt_many), body = AdoptBody),
    r!(Post "/api/v1/inbox/ignore", T, "discovery", "Dismiss devices from the inbox", post(ignore_many), body = IdsBody),
    r!(Get "/api/v1/overview", V, "cameras", "Counts by verdict per village, active alarms, recent transitions", get(overview)),
    r!(Get "/api/v1/cameras", V, "cameras", "Adopted cameras with their health (X-Total-Count header)", get(cameras), query = CAM_Q),
    r!(Get "/api/v1/cameras/{id}", V, "cameras", "One camera: device, inventory (profiles, stream metadata) and health", get(camera)),
    r!(Get "/api/v1/cameras/{id}/events", V, "cameras", "Verdict transitions of a camera, newest first", get(camera_events), query = &[("limit", "1-1000, default 200")]),
    r!(Get "/api/v1/cameras/{id}/snapshot", V, "cameras", "A JPEG snapshot fetched by the gateway with the camera's login", get(snapshot)),
    r!(Post "/api/v1/cameras/{id}/probe", T, "cameras", "Re-probe the camera now", post(probe_now)),
    r!(Get "/api/v1/transitions", V, "cameras", "Recent transitions of all cameras", get(transitions), query = &[("limit", "1-1000, default 50")]),
    r!(Get "/api/v1/events", V, "cameras", "Server-sent events: health states and transitions", get(events)),
    r!(Get "/api/v1/speakers", V, "speakers", "Loudspeakers (never their passwords) with their last test result", get(speakers), query = &[("village", "village code"), ("kind", "rtp | rtp-multicast | sip | axis | cloud")]),
    r!(Get "/api/v1/speakers/{id}", V, "speakers", "One loudspeaker with its last test result", get(speaker)),
    r!(Post "/api/v1/speakers/{id}/test", T, "speakers", "Play a test tone on one horn and report what happened (audited; 409 while a test of the horn runs)", post(speaker_test), body = SpeakerTestBody),
    r!(Get "/api/v1/broadcasts", V, "broadcasts", "Broadcasts, newest first, with per-state horn counts", get(bc::list), query = &[("limit", "1-1000, default 100")]),
    r!(Get "/api/v1/broadcasts/{id}", V, "broadcasts", "One broadcast: every horn's report and its history", get(bc::get_one)),
    r!(Post "/api/v1/broadcasts", O, "broadcasts", "Announce now: text (TTS), an asset or a programme, to targets (audited)", post(bc::announce), body = bc::AnnounceBody),
    r!(Post "/api/v1/broadcasts/{id}/cancel", O, "broadcasts", "Stop a broadcast everywhere (audited)", post(bc::cancel)),
    r!(Post "/api/v1/broadcasts/stop-all", O, "broadcasts", "Stop every broadcast playing or queued; always allowed to operators (audited)", post(bc::stop_all)),
    r!(Post "/api/v1/emergency", O, "broadcasts", "Emergency broadcast: interrupts everything, ignores quiet hours, forced volume; needs confirm: true (audited)", post(bc::emergency), body = bc::AnnounceBody),
    r!(Get "/api/v1/alerts", V, "broadcasts", "Early warnings (CAP) received and what they caused", get(bc::alerts), query = &[("limit", "1-1000, default 100")]),
    r!(Get "/api/v1/audio-assets", V, "broadcasts", "Stored audio assets", get(bc::assets)),
    r!(Post "/api/v1/audio-assets", O, "broadcasts", "Upload an audio file as the raw body (MP3, WAV, OGG/Vorbis, FLAC); checked and normalised (audited)", post(bc::upload).layer(DefaultBodyLimit::max(64 * 1024 * 1024)), query = &[("name", "file name, informational")]),
    r!(Get "/api/v1/targets/resolve", V, "broadcasts", "The horns targets reach (timetable groups expanded), for confirming a broadcast", get(bc::resolve_targets), query = &[("targets", "comma-separated: all, village:CODE, grid:CODE, zone:NAME, group:NAME, speaker:ID")]),
    r!(Get "/api/v1/timetable", V, "timetable", "The timetable in force: source (file | store), version, time zone, active scheme and the whole document", get(bc::timetable)),
    r!(Put "/api/v1/timetable", O, "timetable", "Replace the whole timetable document; validated (422 naming the key path), saved as a new version (audited; 409 when managed in a file)", put(bc::replace_timetable), body = bc::PartsBody),
    r!(Get "/api/v1/timetable/week", V, "timetable", "Seven days of occurrences: local time, schedule, programme, priority, targets, horns reached, horns in quiet hours; and the check warnings", get(bc::week), query = &[("from", "YYYY-MM-DD, default: this week's Monday in the timetable's zone"), ("scheme", "preview another scheme (default: the active one)")]),
    Route {
        method: M::Post,
        path: "/api/v1/timetable/check",
        access: V,
        tag: "timetable",
        summary: "What a timetable document would do over a range (the `tgw schedule check` report), without saving it",
        body: Some(schema::<bc::PartsBody>),
        query: &[
            ("from", "YYYY-MM-DD, default: today in the timetable's zone"),
            ("days", "1-366, default 7"),
        ],
        handler: || post(bc::check_timetable),
    },
    r!(Put "/api/v1/programmes/{id}", O, "timetable", "Create or replace a programme; the whole timetable is validated (audited)", put(bc::put_programme), body = bc::EntryBody),
    r!(Delete "/api/v1/programmes/{id}", O, "timetable", "Delete a programme no schedule plays (audited)", delete(bc::delete_programme)),
    r!(Put "/api/v1/schedules/{id}", O, "timetable", "Create or replace a schedule; the whole timetable is validated (audited)", put(bc::put_schedule), body = bc::EntryBody),
    r!(Delete "/api/v1/schedules/{id}", O, "timetable", "Delete a schedule (audited)", delete(bc::delete_schedule)),
    r!(Put "/api/v1/schemes/{id}", O, "timetable", "Create or replace a scheme; the first one becomes active (audited)", put(bc::put_scheme), body = bc::EntryBody),
    r!(Delete "/api/v1/schemes/{id}", O, "timetable", "Delete a scheme without schedules that is not in force (audited)", delete(bc::delete_scheme)),
    r!(Put "/api/v1/active-scheme", O, "timetable", "Switch the scheme in force (audited)", put(bc::set_active_scheme), body = bc::ActiveSchemeBody),
    r!(Get "/api/v1/users", A, "users", "Users", get(list_users)),
    r!(Post "/api/v1/users", A, "users", "Create a user", post(create_user), body = NewUserBody),
    r!(Patch "/api/v1/users/{name}", A, "users", "Change role, disabled flag or password", patch(update_user), body = UpdateUserBody),
    r!(Delete "/api/v1/users/{name}", A, "users", "Delete a user", delete(delete_user)),
    r!(Post "/api/v1/users/{name}/tokens", A, "users", "Issue an API token (returned once)", post(create_token), body = TokenBody),
    r!(Get "/api/v1/audit", A, "audit", "Audit log, newest first", get(audit_log), query = &[("limit", "1-1000, default 100"), ("before", "entries with a smaller id")]),
    r!(Get "/api/v1/log-level", A, "ops", "The log filter in force", get(get_log_level)),
    r!(Put "/api/v1/log-level", A, "ops", "Change the log filter at run time", put(set_log_level), body = LogLevelBody),
];

/// The HTTP routes, built from [`ROUTES`].
pub fn router(state: AppState) -> Router {
    let mut r: Router<AppState> = Router::new();
    for route in ROUTES {
        r = r.route(route.path, (route.handler)());
    }
    r.route_layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Finds the route for a method and matched path.
pub fn find_route(method: &Method, path: &str) -> Option<&'static Route> {
    ROUTES
        .iter()
        .find(|r| r.path == path && r.method.method() == *method)
}

// ---------------------------------------------------------------- errors

/// A JSON error with a stable code.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// An error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", message)
    }
    fn not_found(what: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no {what} `{id}`"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": { "code": self.code, "message": self.message } })),
        )
            .into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what, id } => ApiError::not_found(what, &id),
            StoreError::Invalid(m) => ApiError::bad(m),
            e => {
                tracing::warn!(error = %e, "store error in API");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string())
            }
        }
    }
}

impl From<auth::AuthError> for ApiError {
    fn from(e: auth::AuthError) -> Self {
        match e {
            auth::AuthError::Store(s) => s.into(),
            auth::AuthError::Invalid(m) => ApiError::bad(m),
            auth::AuthError::NoUser(u) => ApiError::not_found("user", &u),
            e => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
        }
    }
}

type ApiResult = Result<Response, ApiError>;

// ---------------------------------------------------------------- extractors

/// A JSON body: `application/json`, at most [`BODY_LIMIT`] bytes, unknown
/// fields refused, errors as [`ApiError`] naming the field.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned + Validate, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected Content-Type: application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too_large",
                        format!("request body over {BODY_LIMIT} bytes"),
                    )
                } else {
                    ApiError::bad(format!("cannot read body: {e}"))
                }
            })?;
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        let v: T = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let msg = if path == "." {
                inner.to_string()
            } else {
                format!("{path}: {inner}")
            };
            ApiError::new(StatusCode::BAD_REQUEST, "malformed", msg)
        })?;
        v.validate().map_err(ApiError::bad)?;
        Ok(Body(v))
    }
}

/// Range and shape checks beyond the JSON types.
pub trait Validate {
    /// `Err(message)` naming the field.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Query parameters with JSON errors (unknown parameters refused).
pub struct Q<T>(pub T);

impl<T: DeserializeOwned + Validate, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        let v: T = serde_urlencoded_from(q).map_err(|e| ApiError::bad(format!("query: {e}")))?;
        v.validate().map_err(ApiError::bad)?;
        Ok(Q(v))
    }
}

fn serde_urlencoded_from<T: DeserializeOwned>(q: &str) -> Result<T, String> {
    // axum's Query uses serde_urlencoded; go through it for identical parsing.
    let uri: axum::http::Uri = format!("/?{q}").parse().map_err(|e| format!("{e}"))?;
    axum::extract::Query::<T>::try_from_uri(&uri)
        .map(|q| q.0)
        .map_err(|e| e.body_text())
}

/// The caller: who, from where.
pub struct Ctx {
    /// Authenticated principal.
    pub who: Principal,
    /// Client address (text).
    pub source: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let who = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "log in first")
            })?;
        Ok(Ctx {
            who,
            source: client_ip(parts.extensions.get::<ConnectInfo<SocketAddr>>()).to_string(),
        })
    }
}

/// The client's address (unspecified when not served with connect info).
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(ClientIp(client_ip(
            parts.extensions.get::<ConnectInfo<SocketAddr>>(),
        )))
    }
}

fn client_ip(ci: Option<&ConnectInfo<SocketAddr>>) -> IpAddr {
    ci.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn ct_eq(a: &str, b: &str) -> bool {
    use subtle_eq::eq;
    eq(a.as_bytes(), b.as_bytes())
}

mod subtle_eq {
    /// Constant-time equality for equal-length inputs.
    pub fn eq(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// Authenticates a request: bearer token first, then the session cookie.
fn authenticate(st: &AppState, headers: &HeaderMap) -> Result<Option<Principal>, ApiError> {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let v = v.to_str().unwrap_or("");
        let Some(tok) = v.strip_prefix("Bearer ").map(str::trim) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authorization must be `Bearer TOKEN`",
            ));
        };
        return Ok(st.users.token(tok)?);
    }
    match cookie(headers, SESSION_COOKIE) {
        Some(id) if !id.is_empty() => Ok(st.users.session(id)?),
        _ => Ok(None),
    }
}

/// Enforces the matched route's access level (and CSRF for sessions).
async fn guard(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let Some(route) = find_route(req.method(), &path) else {
        // Not in the table (cannot happen for routes built from it): refuse.
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "route without an access rule",
        )
        .into_response();
    };
    let Access::Role(need) = route.access else {
        return next.run(req).await;
    };
    let who = match authenticate(&st, req.headers()) {
        Ok(Some(p)) => p,
        Ok(None) => {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "log in or send a bearer token",
            )
            .into_response();
        }
        Err(e) => return e.into_response(),
    };
    if who.role < need {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "needs role {} (you are {})",
                need.as_str(),
                who.role.as_str()
            ),
        )
        .into_response();
    }
    if route.method != M::Get
        && let Via::Session { csrf, .. } = &who.via
    {
        let sent = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct_eq(sent, csrf) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "missing or wrong X-CSRF-Token",
            )
            .into_response();
        }
    }
    req.extensions_mut().insert(who);
    next.run(req).await
}

// ---------------------------------------------------------------- helpers

impl AppState {
    fn audit(
        &self,
        ctx: &Ctx,
        action: &str,
        target: Option<&str>,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
        outcome: &str,
    ) {
        let e = NewAudit {
            actor: &ctx.who.user,
            source: &ctx.source,
            action,
            target,
            before,
            after,
            outcome,
        };
        if let Err(e) = self.users.audit(e) {
            tracing::warn!(error = %e, action, "writing the audit log failed");
        }
        tracing::info!(actor = %ctx.who.user, source = %ctx.source, action, target = target.unwrap_or("-"), outcome, "audit");
    }
}

fn device_brief(d: &Device) -> serde_json::Value {
    serde_json::json!({ "state": d.state, "village": d.village, "grid": d.grid, "has_credentials": d.has_credentials })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Paging {
    page: Option<u32>,
    per_page: Option<u32>,
}

impl Paging {
    fn check(&self) -> Result<(), String> {
        if let Some(p) = self.page
            && !(1..=10_000).contains(&p)
        {
            return Err(format!("page must be 1-10000, got {p}"));
        }
        if let Some(p) = self.per_page
            && !(1..=1000).contains(&p)
        {
            return Err(format!("per_page must be 1-1000, got {p}"));
        }
        Ok(())
    }
    fn apply<T: Serialize>(&self, v: Vec<T>) -> Response {
        let total = v.len();
        let items: Vec<T> = match self.per_page {
            None => v,
            Some(n) => {
                let page = self.page.unwrap_or(1) as usize;
                v.into_iter()
                    .skip((page - 1) * n as usize)
                    .take(n as usize)
                    .collect()
            }
        };
        let mut r = Json(items).into_response();
        if let Ok(h) = HeaderValue::from_str(&total.to_string()) {
            r.headers_mut().insert("x-total-count", h);
        }
        r
    }
}

fn limit(v: Option<u32>, default: u32, name: &str) -> Result<usize, String> {
    match v {
        None => Ok(default as usize),
        Some(n) if (1..=1000).contains(&n) => Ok(n as usize),
        Some(n) => Err(format!("{name} must be 1-1000, got {n}")),
    }
}

fn check_len(field: &str, v: &str, min: usize, max: usize) -> Result<(), String> {
    let n = v.chars().count();
    if n < min || n > max {
        return Err(format!("{field} must be {min}-{max} characters, got {n}"));
    }
    if v.chars().any(char::is_control) {
        return Err(format!("{field} must not contain control characters"));
    }
    Ok(())
}

fn check_ids(ids: &[String]) -> Result<(), String> {
    if ids.is_empty() || ids.len() > 1000 {
        return Err(format!("ids must list 1-1000 devices, got {}", ids.len()));
    }
    for id in ids {
        check_len("ids[]", id, 1, 100)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- dashboard and ops

const INDEX_HTML: &str = include_str!("../../web/index.html");
const APP_JS: &str = include_str!("../../web/app.js");
const APP_CSS: &str = include_str!("../../web/app.css");

async fn index(headers: HeaderMap, uri: axum::http::Uri) -> Response {
    let q_en = uri
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "lang=en"));
    let q_zh = uri
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "lang=zh-CN"));
    let lang = if q_en || (!q_zh && cookie(&headers, "tgw_lang") == Some("en")) {
        "en"
    } else {
        "zh-CN"
    };
    let mut r = Html(INDEX_HTML.replace("{{LANG}}", lang)).into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; img-src 'self' blob: data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    r
}

async fn asset(Path(file): Path<String>) -> Response {
    let (body, ct) = match file.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        _ => return ApiError::not_found("asset", &file).into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, ct),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn readyz(State(st): State<AppState>) -> Response {
    match st.store.schema_version() {
        Ok(_) => "ready\n".into_response(),
        Err(e) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            e.to_string(),
        )
        .into_response(),
    }
}

async fn metrics(State(st): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics.encode(),
    )
        .into_response()
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
                 "description": "Generated from the gateway's route table (gateway/src/http.rs ROUTES)."},
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
    /// too_large, unsupported_media_type, not_found, conflict, rate_limited,
    /// locked, unavailable, device, store, internal.
    code: String,
    /// Human-readable message.
    message: String,
}

async fn openapi() -> Response {
    Json(openapi_doc()).into_response()
}

// ---------------------------------------------------------------- auth

/// `POST /api/v1/login`
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
}

impl Validate for LoginBody {
    fn validate(&self) -> Result<(), String> {
        check_len("user", &self.user, 1, 64)?;
        if self.password.is_empty() || self.password.len() > 1024 {
            return Err("password must be 1-1024 bytes".into());
        }
        Ok(())
    }
}

fn session_cookie(st: &AppState, headers: &HeaderMap, value: &str, max_age: i64) -> HeaderValue {
    let tls = st.secure_cookies
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            == Some("https");
    let s = format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if tls { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&s)
        .unwrap_or_else(|_| HeaderValue::from_static("tgw_session=; Max-Age=0"))
}

async fn login(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Body(b): Body<LoginBody>,
) -> ApiResult {
    let source = ip.to_string();
    let audit = |action: &str, outcome: &str| {
        let _ = st.users.audit(NewAudit {
            actor: &b.user,
            source: &source,
            action,
            target: Some(&b.user),
            outcome,
            ..Default::default()
        });
    };
    match st.limiter.check(ip, &b.user) {
        Ok(()) => {}
        Err(r) => {
            let (code, after) = match r {
                Refusal::Address(d) => ("rate_limited", d),
                Refusal::Locked(d) => ("locked", d),
            };
            audit("login", code);
            tracing::warn!(user = %b.user, source = %source, code, "login refused");
            let mut resp = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                code,
                format!("too many failed logins; retry in {} s", after.as_secs() + 1),
            )
            .into_response();
            if let Ok(h) = HeaderValue::from_str(&(after.as_secs() + 1).to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, h);
            }
            return Ok(resp);
        }
    }
    let users = st.users.clone();
    let (u, p) = (b.user.clone(), b.password.clone());
    let role = tokio::task::spawn_blocking(move || users.check(&u, &p))
        .await
        .map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        })??;
    let Some(role) = role else {
        let locked = st.limiter.failed(ip, &b.user);
        audit("login", if locked { "failed_locked" } else { "failed" });
        tracing::warn!(user = %b.user, source = %source, locked, "login failed");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "wrong user name or password",
        ));
    };
    st.limiter.succeeded(&b.user);
    let (sid, csrf) = st.users.create_session(&b.user, &source)?;
    audit("login", "ok");
    tracing::info!(user = %b.user, source = %source, "login");
    let mut r =
        Json(serde_json::json!({ "user": b.user, "role": role, "csrf": csrf })).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&st, &headers, &sid, auth::SESSION_TTL.whole_seconds()),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

async fn logout(State(st): State<AppState>, headers: HeaderMap, ctx: Ctx) -> ApiResult {
    if let Via::Session { id_hash, .. } = &ctx.who.via {
        st.users.end_session(id_hash)?;
    }
    st.audit(&ctx, "logout", Some(&ctx.who.user), None, None, "ok");
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&st, &headers, "", 0));
    Ok(r)
}

async fn session(State(st): State<AppState>, ctx: Ctx) -> ApiResult {
    let csrf = match &ctx.who.via {
        Via::Session { csrf, .. } => Some(csrf.clone()),
        Via::Token => None,
    };
    let mut r = Json(serde_json::json!({
        "user": ctx.who.user, "role": ctx.who.role, "csrf": csrf,
        "township": st.township, "timezone": st.timezone,
    }))
    .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

// ---------------------------------------------------------------- inventory

impl Validate for () {}

async fn townships(State(st): State<AppState>) -> ApiResult {
    let (code, name): (String, String) = st
        .store
        .with_conn(|c| {
            Ok(
                c.query_row("SELECT code, name FROM township WHERE id = 1", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?,
            )
        })
        .unwrap_or_else(|_| (String::new(), st.township.clone()));
    let villages = st.store.villages()?;
    Ok(Json(
        serde_json::json!([{ "code": code, "name": name, "villages": villages.len(),
        "grids": villages.iter().map(|v| v.grids.len()).sum::<usize>() }]),
    )
    .into_response())
}

async fn villages(State(st): State<AppState>) -> ApiResult {
    Ok(Json(st.store.villages()?).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct GridQuery {
    village: Option<String>,
}
impl Validate for GridQuery {}

async fn grids(State(st): State<AppState>, Q(q): Q<GridQuery>) -> ApiResult {
    let v: Vec<serde_json::Value> = st
        .store
        .villages()?
        .into_iter()
        .filter(|v| q.village.as_ref().is_none_or(|c| *c == v.code))
        .flat_map(|v| {
            let code = v.code.clone();
            v.grids
                .into_iter()
                .map(move |(g, n)| serde_json::json!({"code": g, "name": n, "village": code}))
        })
        .collect();
    Ok(Json(v).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DeviceQuery {
    state: Option<DeviceState>,
    kind: Option<String>,
    village: Option<String>,
    grid: Option<String>,
    page: Option<u32>,
    per_page: Option<u32>,
}
impl Validate for DeviceQuery {
    fn validate(&self) -> Result<(), String> {
        Paging {
            page: self.page,
            per_page: self.per_page,
        }
        .check()
    }
}

async fn list_devices(State(st): State<AppState>, Q(q): Q<DeviceQuery>) -> ApiResult {
    let mut v = st.store.devices(q.state)?;
    v.retain(|d| {
        q.village
            .as_ref()
            .is_none_or(|x| d.village.as_ref() == Some(x))
            && q.grid.as_ref().is_none_or(|x| d.grid.as_ref() == Some(x))
            && q.kind.as_ref().is_none_or(|x| d.kind == *x)
    });
    Ok(Paging {
        page: q.page,
        per_page: q.per_page,
    }
    .apply(v))
}

async fn get_device(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult {
    match st.store.device(&id)? {
        Some(d) => Ok(Json(d).into_response()),
        None => Err(ApiError::not_found("device", &id)),
    }
}

/// `POST /api/v1/devices/{id}/assign`
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    /// Village code (or null for unassigned).
    pub village: Option<String>,
    /// Grid code within the village.
    pub grid: Option<String>,
}
impl Validate for AssignBody {
    fn validate(&self) -> Result<(), String> {
        if let Some(v) = &self.village {
            check_len("village", v, 1, 64)?;
        }
        if let Some(g) = &self.grid {
            check_len("grid", g, 1, 64)?;
        }
        Ok(())
    }
}

async fn assign(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Body(b): Body<AssignBody>,
) -> ApiResult {
    let before = st
        .store
        .device(&id)?
        .ok_or_else(|| ApiError::not_found("device", &id))?;
    let r = st.store.adopt(&id, b.village.as_deref(), b.grid.as_deref());
    let after = st.store.device(&id)?;
    st.audit(
        &ctx,
        "device.assign",
        Some(&id),
        Some(device_brief(&before)),
        after.as_ref().map(device_brief),
        if r.is_ok() { "ok" } else { "error" },
    );
    r?;
    Ok(Json(after).into_response())
}

/// `PUT /api/v1/devices/{id}/credentials` (write-only).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialsBody {
    /// Login name on the device.
    pub username: String,
    /// Password (never returned).
    pub password: String,
}
impl Validate for CredentialsBody {
    fn validate(&self) -> Result<(), String> {
        check_len("username", &self.username, 1, 64)?;
        check_len("password", &self.password, 1, 128)
    }
}

async fn set_credentials(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Body(b): Body<CredentialsBody>,
) -> ApiResult {
    let before = st
        .store
        .device(&id)?
        .ok_or_else(|| ApiError::not_found("device", &id))?;
    st.store
        .set_device_login(&id, &b.username, &Password::new(b.password))?;
    st.audit(
        &ctx,
        "device.credentials",
        Some(&id),
        Some(serde_json::json!({"has_credentials": before.has_credentials})),
        Some(
            serde_json::json!({"has_credentials": true, "username": b.username, "password": "***"}),
        ),
        "ok",
    );
    if let Some(tx) = &st.probe_tx {
        let _ = tx.try_send(id.clone());
    }
    Ok(Json(serde_json::json!({"id": id, "has_credentials": true})).into_response())
}

async fn clear_credentials(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult {
    let before = st
        .store
        .device(&id)?
        .ok_or_else(|| ApiError::not_found("device", &id))?;
    st.store.with_conn(|c| {
        c.execute("DELETE FROM device_credential WHERE device_id = ?1", [&id])?;
        Ok(())
    })?;
    st.audit(
        &ctx,
        "device.credentials.clear",
        Some(&id),
        Some(serde_json::json!({"has_credentials": before.has_credentials})),
        Some(serde_json::json!({"has_credentials": false})),
        "ok",
    );
    Ok(Json(serde_json::json!({"id": id, "has_credentials": false})).into_response())
}

async fn list_groups(State(st): State<AppState>) -> ApiResult {
    let v: Vec<serde_json::Value> = st.store.with_conn(|c| {
        let mut s = c.prepare("SELECT name, username, subnets, mac_prefixes, priority FROM credential_group ORDER BY priority DESC, name")?;
        let v = s
            .query_map([], |r| {
                let j = |s: String| serde_json::from_str::<serde_json::Value>(&s).unwrap_or_default();
                Ok(serde_json::json!({"name": r.get::<_, String>(0)?, "username": r.get::<_, String>(1)?,
                    "subnets": j(r.get(2)?), "mac_prefixes": j(r.get(3)?), "priority": r.get::<_, i64>(4)?}))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(v)
    })?;
    Ok(Json(v).into_response())
}

/// `PUT /api/v1/credential-groups/{name}`
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupBody {
    /// Login name.
    pub username: String,
    /// Password (never returned).
    pub password: String,
    /// IPv4 subnets the group applies to, e.g. `10.1.0.0/16`.
    #[serde(default)]
    pub subnets: Vec<String>,
    /// MAC prefixes, e.g. `44:19:b6`.
    #[serde(default)]
    pub mac_prefixes: Vec<String>,
    /// Higher wins, -1000..=1000.
    #[serde(default)]
    pub priority: i32,
}
impl Validate for GroupBody {
    fn validate(&self) -> Result<(), String> {
        check_len("username", &self.username, 1, 64)?;
        check_len("password", &self.password, 1, 128)?;
        if !(-1000..=1000).contains(&self.priority) {
            return Err(format!(
                "priority must be -1000..=1000, got {}",
                self.priority
            ));
        }
        if self.subnets.len() > 256 || self.mac_prefixes.len() > 256 {
            return Err("at most 256 subnets and 256 MAC prefixes".into());
        }
        for s in &self.subnets {
            s.parse::<ipnet::Ipv4Net>()
                .map_err(|e| format!("subnets: `{s}`: {e}"))?;
        }
        for m in &self.mac_prefixes {
            check_len("mac_prefixes[]", m, 2, 17)?;
        }
        Ok(())
    }
}

async fn set_group(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
    Body(b): Body<GroupBody>,
) -> ApiResult {
    check_len("name", &name, 1, 64).map_err(ApiError::bad)?;
    let nets: Vec<ipnet::Ipv4Net> = b.subnets.iter().filter_map(|s| s.parse().ok()).collect();
    let macs: Vec<String> = b
        .mac_prefixes
        .iter()
        .map(|m| m.to_ascii_lowercase())
        .collect();
    st.store.set_group(
        &name,
        &b.username,
        &Password::new(b.password),
        &nets,
        &macs,
        b.priority,
    )?;
    st.audit(&ctx, "credential_group.set", Some(&name), None,
        Some(serde_json::json!({"username": b.username, "password": "***", "subnets": b.subnets, "mac_prefixes": macs, "priority": b.priority})), "ok");
    Ok(Json(serde_json::json!({"name": name})).into_response())
}

// ---------------------------------------------------------------- discovery inbox

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    page: Option<u32>,
    per_page: Option<u32>,
}
impl Validate for PageQuery {
    fn validate(&self) -> Result<(), String> {
        Paging {
            page: self.page,
            per_page: self.per_page,
        }
        .check()
    }
}

async fn inbox(State(st): State<AppState>, Q(q): Q<PageQuery>) -> ApiResult {
    let v = st.store.devices(Some(DeviceState::Discovered))?;
    Ok(Paging {
        page: q.page,
        per_page: q.per_page,
    }
    .apply(v))
}

/// `POST /api/v1/inbox/adopt`
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdoptBody {
    /// Devices to adopt (1-1000).
    pub ids: Vec<String>,
    /// Village code.
    pub village: Option<String>,
    /// Grid code.
    pub grid: Option<String>,
    /// Optional login to set on every adopted device (for a speaker: the
    /// horn's login in the speaker inventory).
    pub username: Option<String>,
    /// Its password (write-only).
    pub password: Option<String>,
    /// Speakers only: broadcast zone of the inventory entry.
    #[serde(default)]
    pub zone: Option<String>,
    /// Speakers only: driver kind (`rtp`, `rtp-multicast`, `sip`, `axis`,
    /// `cloud`) instead of the one discovery inferred.
    #[serde(default)]
    pub driver: Option<String>,
    /// Speakers only: driver address instead of the one discovery inferred
    /// (same forms as the speaker CSV `address` column).
    #[serde(default)]
    pub address: Option<String>,
}
impl Validate for AdoptBody {
    fn validate(&self) -> Result<(), String> {
        check_ids(&self.ids)?;
        AssignBody {
            village: self.village.clone(),
            grid: self.grid.clone(),
        }
        .validate()?;
        if let Some(z) = &self.zone {
            crate::config::Ident::parse(z).map_err(|e| format!("zone: {e}"))?;
        }
        if let Some(d) = &self.driver {
            crate::speakers::DriverKind::parse(d).map_err(|e| format!("driver: {e}"))?;
        }
        if let Some(a) = &self.address {
            check_len("address", a, 1, 256)?;
        }
        if self.ids.len() > 1 && self.address.is_some() {
            return Err("address applies to one speaker at a time".into());
        }
        match (&self.username, &self.password) {
            (None, None) => Ok(()),
            (Some(u), Some(p)) => {
                check_len("username", u, 1, 64)?;
                check_len("password", p, 1, 128)
            }
            _ => Err("username and password go together".into()),
        }
    }
}

/// `POST /api/v1/inbox/ignore`
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdsBody {
    /// Device ids (1-1000).
    pub ids: Vec<String>,
}
impl Validate for IdsBody {
    fn validate(&self) -> Result<(), String> {
        check_ids(&self.ids)
    }
}

async fn adopt_many(State(st): State<AppState>, ctx: Ctx, Body(b): Body<AdoptBody>) -> ApiResult {
    let mut done = Vec::new();
    let mut errors = Vec::new();
    for id in &b.ids {
        let Some(before) = st.store.device(id)? else {
            errors.push(serde_json::json!({"id": id, "code": "not_found", "message": format!("no device `{id}`")}));
            continue;
        };
        let is_speaker = before.kind == "speaker";
        let mut speaker = None;
        let r = if is_speaker {
            adopt_speaker(&st, id, &b).map(|s| speaker = Some(s))
        } else if b.zone.is_some() || b.driver.is_some() || b.address.is_some() {
            Err(crate::store::StoreError::Invalid(format!(
                "`{id}` is a {}: zone, driver and address apply to speakers",
                before.kind
            )))
        } else {
            st.store
                .adopt(id, b.village.as_deref(), b.grid.as_deref())
                .and_then(|()| match (&b.username, &b.password) {
                    (Some(u), Some(p)) => {
                        st.store.set_device_login(id, u, &Password::new(p.clone()))
                    }
                    _ => Ok(()),
                })
        };
        let after = st.store.device(id)?;
        let mut after_j = after.as_ref().map(device_brief);
        if let (Some(a), Some(u)) = (after_j.as_mut(), &b.username) {
            a["username"] = serde_json::json!(u);
            a["password"] = serde_json::json!("***");
        }
        if let (Some(a), Some(s)) = (after_j.as_mut(), &speaker) {
            a["speaker"] =
                serde_json::json!({"kind": s.kind, "address": s.address, "zone": s.zone});
        }
        match r {
            Ok(()) => {
                st.audit(
                    &ctx,
                    "device.adopt",
                    Some(id),
                    Some(device_brief(&before)),
                    after_j,
                    "ok",
                );
                if !is_speaker && let Some(tx) = &st.probe_tx {
                    let _ = tx.try_send(id.clone());
                }
                done.push(id.clone());
            }
            Err(e) => {
                let e = ApiError::from(e);
                st.audit(
                    &ctx,
                    "device.adopt",
                    Some(id),
                    Some(device_brief(&before)),
                    None,
                    e.code,
                );
                errors.push(serde_json::json!({"id": id, "code": e.code, "message": e.message}));
            }
        }
    }
    let status = if done.is_empty() && !errors.is_empty() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(serde_json::json!({"adopted": done, "errors": errors})),
    )
        .into_response())
}

/// Adopts one discovered speaker into the speaker inventory (see
/// [`crate::speakers::Speakers::adopt_discovered`]); the body was validated.
fn adopt_speaker(
    st: &AppState,
    id: &str,
    b: &AdoptBody,
) -> Result<crate::speakers::Speaker, crate::store::StoreError> {
    use crate::store::StoreError;
    let inv = crate::speakers::Speakers::open(&st.store)
        .map_err(|e| StoreError::Invalid(format!("speaker inventory: {e:#}")))?;
    let a = crate::speakers::AdoptSpeaker {
        village: b.village.clone(),
        grid: b.grid.clone(),
        zone: b
            .zone
            .as_deref()
            .map(crate::config::Ident::parse)
            .transpose()
            .map_err(|e| StoreError::Invalid(e.to_string()))?,
        driver: b
            .driver
            .as_deref()
            .map(crate::speakers::DriverKind::parse)
            .transpose()
            .map_err(|e| StoreError::Invalid(e.to_string()))?,
        address: b.address.clone(),
        login: match (&b.username, &b.password) {
            (Some(u), Some(p)) => Some((u.clone(), Password::new(p.clone()))),
            _ => None,
        },
    };
    inv.adopt_discovered(id, &a)
}

async fn ignore_many(State(st): State<AppState>, ctx: Ctx, Body(b): Body<IdsBody>) -> ApiResult {
    let mut done = Vec::new();
    let mut errors = Vec::new();
    for id in &b.ids {
        let before = st.store.device(id)?;
        match st.store.ignore(id) {
            Ok(()) => {
                st.audit(
                    &ctx,
                    "device.ignore",
                    Some(id),
                    before.as_ref().map(device_brief),
                    Some(serde_json::json!({"state": "ignored"})),
                    "ok",
                );
                done.push(id.clone());
            }
            Err(e) => {
                let e = ApiError::from(e);
                errors.push(serde_json::json!({"id": id, "code": e.code, "message": e.message}));
            }
        }
    }
    Ok(Json(serde_json::json!({"ignored": done, "errors": errors})).into_response())
}

// ---------------------------------------------------------------- cameras

/// A camera with its health, as listed by `/api/v1/cameras` and `tgw status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CameraStatus {
    /// Device id.
    pub id: String,
    /// Name.
    pub name: Option<String>,
    /// Address.
    pub address: Option<String>,
    /// Village code.
    pub village: Option<String>,
    /// Grid code.
    pub grid: Option<String>,
    /// Maker.
    pub manufacturer: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Health, once polled.
    pub health: Option<Health>,
}

/// Cameras with their health.
pub fn camera_statuses(store: &Store) -> Result<Vec<CameraStatus>, StoreError> {
    // One lean query: the list never needs the (large) inventory documents,
    // and parsing them for 1,000 cameras dominated the list's latency.
    store.with_conn(|c| {
        let mut st = c.prepare_cached(
            "SELECT d.id, d.name, d.address, d.village_code, d.grid_code, d.manufacturer, d.model, h.health
             FROM device d LEFT JOIN health_state h ON h.device_id = d.id
             WHERE d.state = 'adopted' AND d.kind = 'camera'
             ORDER BY d.village_code IS NULL, d.village_code, d.id",
        )?;
        let rows = st.query_map([], |r| {
            let health: Option<String> = r.get(7)?;
            Ok(CameraStatus {
                id: r.get(0)?,
                name: r.get(1)?,
                address: r.get(2)?,
                village: r.get(3)?,
                grid: r.get(4)?,
                manufacturer: r.get(5)?,
                model: r.get(6)?,
                // A row an older version wrote that no longer parses reads as
                // not yet polled, as in `Store::all_health`.
                health: health.and_then(|h| serde_json::from_str(&h).ok()),
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CameraQuery {
    village: Option<String>,
    grid: Option<String>,
    verdict: Option<String>,
    vendor: Option<String>,
    q: Option<String>,
    page: Option<u32>,
    per_page: Option<u32>,
}
impl Validate for CameraQuery {
    fn validate(&self) -> Result<(), String> {
        if let Some(v) = &self.verdict
            && !matches!(v.as_str(), "ok" | "degraded" | "offline" | "unknown")
        {
            return Err(format!(
                "verdict must be ok, degraded, offline or unknown, got `{v}`"
            ));
        }
        Paging {
            page: self.page,
            per_page: self.per_page,
        }
        .check()
    }
}

fn verdict_of(c: &CameraStatus) -> &'static str {
    c.health.as_ref().map_or("unknown", |h| h.verdict.label())
}

async fn cameras(State(st): State<AppState>, Q(q): Q<CameraQuery>) -> ApiResult {
    let mut v = camera_statuses(&st.store)?;
    let vendor = q.vendor.as_ref().map(|s| s.to_lowercase());
    let text = q.q.as_ref().map(|s| s.to_lowercase());
    v.retain(|c| {
        q.village
            .as_ref()
            .is_none_or(|x| c.village.as_ref() == Some(x))
            && q.grid.as_ref().is_none_or(|x| c.grid.as_ref() == Some(x))
            && q.verdict.as_ref().is_none_or(|x| verdict_of(c) == x)
            && vendor.as_ref().is_none_or(|x| {
                c.manufacturer
                    .as_ref()
                    .is_some_and(|m| m.to_lowercase().contains(x))
            })
            && text.as_ref().is_none_or(|x| {
                [&Some(c.id.clone()), &c.name, &c.address]
                    .iter()
                    .any(|f| f.as_ref().is_some_and(|f| f.to_lowercase().contains(x)))
            })
    });
    Ok(Paging {
        page: q.page,
        per_page: q.per_page,
    }
    .apply(v))
}

async fn camera(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let d = st
        .store
        .device(&id)?
        .ok_or_else(|| ApiError::not_found("camera", &id))?;
    let health = st
        .store
        .all_health()?
        .into_iter()
        .find(|(i, _)| *i == id)
        .map(|(_, h)| h);
    Ok(Json(serde_json::json!({ "device": d, "health": health })).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LimitQuery {
    limit: Option<u32>,
}
impl Validate for LimitQuery {
    fn validate(&self) -> Result<(), String> {
        limit(self.limit, 1, "limit").map(|_| ())
    }
}

async fn camera_events(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<LimitQuery>,
) -> ApiResult {
    let n = limit(q.limit, 200, "limit").map_err(ApiError::bad)?;
    Ok(Json(st.store.health_events(Some(&id), n)?).into_response())
}

async fn transitions(State(st): State<AppState>, Q(q): Q<LimitQuery>) -> ApiResult {
    let n = limit(q.limit, 50, "limit").map_err(ApiError::bad)?;
    Ok(Json(st.store.health_events(None, n)?).into_response())
}

async fn overview(State(st): State<AppState>) -> ApiResult {
    let cams = camera_statuses(&st.store)?;
    let villages = st.store.villages()?;
    let mut by: BTreeMap<String, [usize; 4]> = BTreeMap::new();
    for v in &villages {
        by.insert(v.code.clone(), [0; 4]);
    }
    let mut alarms = Vec::new();
    for c in &cams {
        let k = c.village.clone().unwrap_or_default();
        let i = match verdict_of(c) {
            "ok" => 0,
            "degraded" => 1,
            "offline" => 2,
            _ => 3,
        };
        by.entry(k).or_insert([0; 4])[i] += 1;
        if let Some(h) = &c.health
            && i != 0
        {
            alarms.push(serde_json::json!({
                "id": c.id, "name": c.name, "village": c.village, "grid": c.grid, "address": c.address,
                "verdict": h.verdict.label(), "reasons": crate::base::live::reasons_of(h), "since": crate::store::fmt_time(h.verdict_since),
                "last_error": h.last_error_kind,
            }));
        }
    }
    let name_of = |code: &str| {
        villages
            .iter()
            .find(|v| v.code == code)
            .map(|v| v.name.clone())
    };
    let rows: Vec<serde_json::Value> = by
        .iter()
        .map(|(code, n)| serde_json::json!({"code": code, "name": name_of(code), "ok": n[0], "degraded": n[1], "offline": n[2], "unknown": n[3]}))
        .collect();
    let total = |i: usize| by.values().map(|n| n[i]).sum::<usize>();
    let inbox = st.store.devices(Some(DeviceState::Discovered))?.len();
    Ok(Json(serde_json::json!({
        "township": st.township,
        "cameras": cams.len(),
        "totals": {"ok": total(0), "degraded": total(1), "offline": total(2), "unknown": total(3)},
        "villages": rows,
        "alarms": alarms,
        "transitions": st.store.health_events(None, 20)?,
        "inbox": inbox,
        "speakers": speaker_inventory(&st)?.list().map_err(speaker_store_err)?.len(),
    }))
    .into_response())
}

async fn events(State(st): State<AppState>) -> Response {
    let rx = st.live.subscribe();
    let hello = futures::stream::once(async {
        Ok::<_, Infallible>(Event::default().event("hello").data("{}"))
    });
    let live = futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    if let Ok(e) = Event::default().event("health").json_data(&ev) {
                        return Some((Ok::<_, Infallible>(e), rx));
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    return Some((Ok(Event::default().event("lagged").data(n.to_string())), rx));
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    let sd = st.shutdown.clone();
    let stream = hello
        .chain(live)
        .take_until(async move { sd.cancelled().await });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

async fn snapshot(State(st): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    if st.store.device(&id)?.is_none() {
        return Err(ApiError::not_found("camera", &id));
    }
    let t = crate::cameras::poller::target(&st.store, &id, false).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "not_adopted",
            format!("camera `{id}` is not adopted or has no ONVIF address"),
        )
    })?;
    let Some(uri) = t.snapshot_uri else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_snapshot",
            format!("camera `{id}` has no snapshot URI (inventory pending or unsupported)"),
        ));
    };
    let r = device_drivers::onvif_client::fetch_snapshot(
        &st.http,
        &uri,
        t.creds.as_ref(),
        Duration::from_secs(5),
    )
    .await;
    st.audit(
        &ctx,
        "camera.snapshot",
        Some(&id),
        None,
        None,
        if r.is_ok() { "ok" } else { "device_error" },
    );
    let bytes = r.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "device",
            format!("camera `{id}`: {e}"),
        )
    })?;
    let ct = if bytes.starts_with(&[0xff, 0xd8]) {
        "image/jpeg"
    } else if bytes.starts_with(b"\x89PNG") {
        "image/png"
    } else {
        "application/octet-stream"
    };
    Ok((
        [
            (header::CONTENT_TYPE, ct),
            (header::CACHE_CONTROL, "no-store"),
        ],
        bytes,
    )
        .into_response())
}

async fn probe_now(State(st): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    if st.store.device(&id)?.is_none() {
        return Err(ApiError::not_found("device", &id));
    }
    let Some(tx) = &st.probe_tx else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "probing is not running in this process",
        ));
    };
    let r = tx.try_send(id.clone());
    st.audit(
        &ctx,
        "camera.probe",
        Some(&id),
        None,
        None,
        if r.is_ok() { "ok" } else { "busy" },
    );
    r.map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "probe queue full; retry shortly",
        )
    })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"id": id, "queued": true})),
    )
        .into_response())
}

// --- speakers (issue 6) ---

/// Horns with a test running, and the last test result of each horn
/// (in memory; the audit log keeps the history).
#[derive(Clone, Default)]
struct SpeakerTests {
    busy: Arc<Mutex<HashSet<String>>>,
    last: Arc<Mutex<HashMap<String, serde_json::Value>>>,
}

/// Holds a horn's test slot; frees it when dropped.
struct BusySlot {
    busy: Arc<Mutex<HashSet<String>>>,
    id: String,
}

impl SpeakerTests {
    /// The horn's slot, or `None` while another test of it runs.
    fn take(&self, id: &str) -> Option<BusySlot> {
        let mut b = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        b.insert(id.to_string()).then(|| BusySlot {
            busy: self.busy.clone(),
            id: id.to_string(),
        })
    }
    fn last(&self, id: &str) -> Option<serde_json::Value> {
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

fn speaker_inventory(st: &AppState) -> Result<crate::speakers::Speakers, ApiError> {
    crate::speakers::Speakers::open(&st.store).map_err(speaker_store_err)
}

fn speaker_store_err(e: anyhow::Error) -> ApiError {
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
struct SpeakerQuery {
    village: Option<String>,
    kind: Option<String>,
}

impl Validate for SpeakerQuery {
    fn validate(&self) -> Result<(), String> {
        if let Some(k) = &self.kind {
            crate::speakers::DriverKind::parse(k).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

async fn speakers(State(st): State<AppState>, Q(q): Q<SpeakerQuery>) -> ApiResult {
    let inv = speaker_inventory(&st)?;
    let kind = q
        .kind
        .as_deref()
        .map(crate::speakers::DriverKind::parse)
        .transpose()
        .map_err(|e| ApiError::bad(e.to_string()))?;
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

async fn speaker(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult {
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
    fn validate(&self) -> Result<(), String> {
        if !(400..=3000).contains(&self.tone_hz) {
            return Err(format!("tone_hz must be 400-3000, got {}", self.tone_hz));
        }
        if !(1..=10).contains(&self.seconds) {
            return Err(format!("seconds must be 1-10, got {}", self.seconds));
        }
        Ok(())
    }
}

/// The driver address of an inventory speaker, with its login. `Err` names
/// why the horn cannot be driven from here.
pub fn speaker_uri(
    s: &crate::speakers::Speaker,
    login: Option<&crate::store::Login>,
) -> Result<device_drivers::speaker::SpeakerUri, String> {
    use crate::speakers::{Codec, DriverKind};
    use device_drivers::speaker::SpeakerUri;
    let codec = match s.codec {
        Codec::Pcmu => device_drivers::g711::Codec::Pcmu,
        Codec::Pcma => device_drivers::g711::Codec::Pcma,
    };
    let password = login.map(|l| l.password.expose().to_string());
    match s.kind {
        DriverKind::Rtp | DriverKind::RtpMulticast => {
            let dest: SocketAddr = s.address.parse().map_err(|_| {
                format!(
                    "speaker `{}`: address `{}` is not HOST:PORT",
                    s.id, s.address
                )
            })?;
            Ok(SpeakerUri::Rtp {
                dest,
                codec,
                ttl: s.multicast.map_or(1, |m| u32::from(m.ttl)),
                multicast_if: None,
            })
        }
        DriverKind::Sip => {
            let u: SpeakerUri = s
                .address
                .parse()
                .map_err(|e| format!("speaker `{}`: {e}", s.id))?;
            Ok(u.with_password(password))
        }
        DriverKind::Axis => {
            let full = if s.address.contains("://") {
                s.address.clone()
            } else {
                format!("http://{}", s.address)
            };
            let url = url::Url::parse(&full).map_err(|e| format!("speaker `{}`: {e}", s.id))?;
            if url.scheme() != "http" {
                return Err(format!(
                    "speaker `{}`: the HTTP speaker driver speaks plain http only",
                    s.id
                ));
            }
            let host: IpAddr =
                url.host_str().unwrap_or("").parse().map_err(|_| {
                    format!("speaker `{}`: `{}` is not an IP address", s.id, s.address)
                })?;
            let port = url.port_or_known_default().unwrap_or(80);
            Ok(SpeakerUri::Axis {
                user: login
                    .map(|l| l.username.clone())
                    .or_else(|| s.username.clone()),
                password,
                addr: SocketAddr::new(host, port),
            })
        }
        DriverKind::Cloud => Err(format!(
            "speaker `{}`: cloud horns cannot be tested from the dashboard yet",
            s.id
        )),
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

async fn speaker_test(
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
    let mut uri = speaker_uri(&s, login.as_ref())
        .map_err(|m| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unsupported", m))?;
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
    let at_wall = time::OffsetDateTime::now_utc();
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
    let ok = rep.errors.is_empty() && rep.completed;
    let mut v = serde_json::json!({
        "id": id,
        "kind": s.kind,
        "tone_hz": b.tone_hz,
        "seconds": b.seconds,
        "at": rfc(at_wall),
        "by": ctx.who.user,
        "ok": ok,
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
        if ok { "ok" } else { "device_error" },
    );
    Ok(Json(v).into_response())
}
// --- end speakers (issue 6) ---

// ---------------------------------------------------------------- users, audit, log level

/// `POST /api/v1/users`
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    /// 1-32 of `A-Z a-z 0-9 . _ -`.
    pub name: String,
    /// Role.
    pub role: Role,
    /// 8-256 characters.
    pub password: String,
}
impl Validate for NewUserBody {
    fn validate(&self) -> Result<(), String> {
        auth::check_name(&self.name).map_err(|e| e.to_string())?;
        auth::check_password(&Password::new(self.password.clone())).map_err(|e| e.to_string())
    }
}

/// `PATCH /api/v1/users/{name}`
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserBody {
    /// New role.
    pub role: Option<Role>,
    /// Disable (ends sessions, revokes tokens) or enable.
    pub disabled: Option<bool>,
    /// New password, 8-256 characters.
    pub password: Option<String>,
}
impl Validate for UpdateUserBody {
    fn validate(&self) -> Result<(), String> {
        if let Some(p) = &self.password {
            auth::check_password(&Password::new(p.clone())).map_err(|e| e.to_string())?;
        }
        if self.role.is_none() && self.disabled.is_none() && self.password.is_none() {
            return Err("nothing to change: give role, disabled or password".into());
        }
        Ok(())
    }
}

/// `POST /api/v1/users/{name}/tokens`
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    /// What the token is for (1-64 characters).
    pub label: String,
}
impl Validate for TokenBody {
    fn validate(&self) -> Result<(), String> {
        check_len("label", &self.label, 1, 64)
    }
}

/// `PUT /api/v1/log-level`
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogLevelBody {
    /// An EnvFilter directive, e.g. `info` or `info,tgw::poller=debug`.
    pub filter: String,
}
impl Validate for LogLevelBody {
    fn validate(&self) -> Result<(), String> {
        check_len("filter", &self.filter, 1, 200)?;
        if !self
            .filter
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ",=_:.-".contains(c))
        {
            return Err("filter may contain only A-Z a-z 0-9 , = _ : . -".into());
        }
        Ok(())
    }
}

async fn list_users(State(st): State<AppState>) -> ApiResult {
    Ok(Json(st.users.users()?).into_response())
}

async fn create_user(
    State(st): State<AppState>,
    ctx: Ctx,
    Body(b): Body<NewUserBody>,
) -> ApiResult {
    if st.users.user(&b.name)?.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("user `{}` exists", b.name),
        ));
    }
    st.users
        .upsert(&b.name, b.role, &Password::new(b.password), st.hash_cost)?;
    let u = st.users.user(&b.name)?;
    st.audit(
        &ctx,
        "user.create",
        Some(&b.name),
        None,
        Some(serde_json::json!({"role": b.role})),
        "ok",
    );
    Ok((StatusCode::CREATED, Json(u)).into_response())
}

fn last_admin_guard(st: &AppState, name: &str, losing_admin: bool) -> Result<(), ApiError> {
    if losing_admin
        && st
            .users
            .user(name)?
            .is_some_and(|u| u.role == Role::Admin && !u.disabled)
        && st.users.admin_count()? <= 1
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "last_admin",
            "the last enabled admin cannot be removed, disabled or demoted",
        ));
    }
    Ok(())
}

async fn update_user(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
    Body(b): Body<UpdateUserBody>,
) -> ApiResult {
    let before = st
        .users
        .user(&name)?
        .ok_or_else(|| ApiError::not_found("user", &name))?;
    last_admin_guard(
        &st,
        &name,
        b.disabled == Some(true) || b.role.is_some_and(|r| r != Role::Admin),
    )?;
    if let Some(p) = &b.password {
        st.users.upsert(
            &name,
            b.role.unwrap_or(before.role),
            &Password::new(p.clone()),
            st.hash_cost,
        )?;
    }
    let after = st.users.update(&name, b.role, b.disabled)?;
    let mut a = serde_json::json!({"role": after.role, "disabled": after.disabled});
    if b.password.is_some() {
        a["password"] = serde_json::json!("***");
    }
    st.audit(
        &ctx,
        "user.update",
        Some(&name),
        Some(serde_json::json!({"role": before.role, "disabled": before.disabled})),
        Some(a),
        "ok",
    );
    Ok(Json(after).into_response())
}

async fn delete_user(State(st): State<AppState>, ctx: Ctx, Path(name): Path<String>) -> ApiResult {
    let before = st
        .users
        .user(&name)?
        .ok_or_else(|| ApiError::not_found("user", &name))?;
    last_admin_guard(&st, &name, true)?;
    st.users.delete(&name)?;
    st.audit(
        &ctx,
        "user.delete",
        Some(&name),
        Some(serde_json::json!({"role": before.role})),
        None,
        "ok",
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn create_token(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
    Body(b): Body<TokenBody>,
) -> ApiResult {
    let tok = st.users.create_token(&name, &b.label)?;
    st.audit(
        &ctx,
        "user.token",
        Some(&name),
        None,
        Some(serde_json::json!({"label": b.label})),
        "ok",
    );
    let mut r = (
        StatusCode::CREATED,
        Json(serde_json::json!({"user": name, "label": b.label, "token": tok})),
    )
        .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    limit: Option<u32>,
    before: Option<i64>,
}
impl Validate for AuditQuery {
    fn validate(&self) -> Result<(), String> {
        limit(self.limit, 1, "limit").map(|_| ())
    }
}

async fn audit_log(State(st): State<AppState>, Q(q): Q<AuditQuery>) -> ApiResult {
    let n = limit(q.limit, 100, "limit").map_err(ApiError::bad)?;
    Ok(Json(st.users.audit_log(n, q.before)?).into_response())
}

async fn get_log_level(State(st): State<AppState>) -> ApiResult {
    let cur = st
        .current_level
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    Ok(
        Json(serde_json::json!({"filter": cur, "changeable": st.log_level.is_some()}))
            .into_response(),
    )
}

async fn set_log_level(
    State(st): State<AppState>,
    ctx: Ctx,
    Body(b): Body<LogLevelBody>,
) -> ApiResult {
    let Some(f) = &st.log_level else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "log level cannot be changed in this process",
        ));
    };
    let before = st
        .current_level
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if let Err(e) = f(&b.filter) {
        st.audit(
            &ctx,
            "log_level.set",
            None,
            Some(serde_json::json!({"filter": before})),
            Some(serde_json::json!({"filter": b.filter})),
            "invalid",
        );
        return Err(ApiError::bad(format!("filter: {e}")));
    }
    *st.current_level.lock().unwrap_or_else(|p| p.into_inner()) = b.filter.clone();
    st.audit(
        &ctx,
        "log_level.set",
        None,
        Some(serde_json::json!({"filter": before})),
        Some(serde_json::json!({"filter": b.filter})),
        "ok",
    );
    Ok(Json(serde_json::json!({"filter": b.filter})).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::store::Sighting;
    use axum::body::Body as AxBody;
    use std::collections::HashMap;
    use tower::ServiceExt as _;

    const ADMIN_PW: &str = "adm1n-Secret-pw";
    const TECH_PW: &str = "t3ch-Secret-pw";
    const VIEW_PW: &str = "v1ew-Secret-pw";
    const OPER_PW: &str = "0per-Secret-pw";
    const DEVICE_PW: &str = "dev1ce-Secret-pw";

    struct Fx {
        _dir: tempfile::TempDir,
        st: AppState,
        app: Router,
        cam: String,
        tokens: HashMap<Role, String>,
        _probe_rx: mpsc::Receiver<String>,
    }

    fn fixture() -> Fx {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let cfg = Config::parse(include_str!("../../../config/gateway.example.toml"), "x").unwrap();
        store.sync_township(&cfg.township).unwrap();
        let mut cam = String::new();
        for i in 1..=3u8 {
            let up = store
                .record_sighting(&Sighting {
                    endpoint_ref: format!("urn:uuid:cam-{i}"),
                    address: Some(Ipv4Addr::new(127, 0, 9, i)),
                    xaddrs: vec![format!("http://127.0.9.{i}/onvif/device_service")],
                    via: "unicast".into(),
                    ..Default::default()
                })
                .unwrap();
            if i == 1 {
                store
                    .adopt(&up.id, Some("dongcun"), Some("dongcun-1"))
                    .unwrap();
                store
                    .set_device_login(&up.id, "admin", &Password::new(DEVICE_PW))
                    .unwrap();
                cam = up.id;
            }
        }
        let (tx, rx) = mpsc::channel(16);
        let st = AppState::new(store, "青山镇".into(), Arc::new(Metrics::new()))
            .unwrap()
            .with_hash_cost(HashCost::FAST)
            .with_probe(tx);
        let mut tokens = HashMap::new();
        for (name, role, pw) in [
            ("view", Role::Viewer, VIEW_PW),
            ("oper", Role::Operator, OPER_PW),
            ("tech", Role::Technician, TECH_PW),
            ("adm", Role::Admin, ADMIN_PW),
        ] {
            st.users()
                .upsert(name, role, &Password::new(pw), HashCost::FAST)
                .unwrap();
            tokens.insert(role, st.users().create_token(name, "test").unwrap());
        }
        let app = router(st.clone());
        Fx {
            _dir: dir,
            st,
            app,
            cam,
            tokens,
            _probe_rx: rx,
        }
    }

    #[derive(Clone)]
    enum Auth<'a> {
        None,
        Bearer(&'a str),
        Cookie { sid: &'a str, csrf: Option<&'a str> },
    }

    struct Resp {
        status: StatusCode,
        headers: HeaderMap,
        body: String,
    }

    impl Resp {
        fn code(&self) -> String {
            serde_json::from_str::<serde_json::Value>(&self.body)
                .ok()
                .and_then(|v| v["error"]["code"].as_str().map(str::to_string))
                .unwrap_or_default()
        }
    }

    async fn call(
        app: &Router,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<&[u8]>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        match auth {
            Auth::None => {}
            Auth::Bearer(t) => b = b.header(header::AUTHORIZATION, format!("Bearer {t}")),
            Auth::Cookie { sid, csrf } => {
                b = b.header(
                    header::COOKIE,
                    format!("tgw_lang=en; {SESSION_COOKIE}={sid}"),
                );
                if let Some(c) = csrf {
                    b = b.header(CSRF_HEADER, c);
                }
            }
        }
        if body.is_some() {
            b = b.header(header::CONTENT_TYPE, "application/json");
        }
        let req = b
            .body(AxBody::from(body.map(<[u8]>::to_vec).unwrap_or_default()))
            .unwrap();
        let r = app.clone().oneshot(req).await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 22)
            .await
            .unwrap_or_default();
        Resp {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    fn concrete(path: &str, cam: &str) -> String {
        path.replace("{id}", cam)
            .replace("{name}", "view")
            .replace("{file}", "app.js")
    }

    async fn login(app: &Router, user: &str, pw: &str) -> (String, String) {
        let body = serde_json::json!({"user": user, "password": pw}).to_string();
        let r = call(
            app,
            Method::POST,
            "/api/v1/login",
            Auth::None,
            Some(body.as_bytes()),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let cookie = r
            .headers
            .get(header::SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        let sid = cookie
            .split(';')
            .next()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
            .to_string();
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        (sid, v["csrf"].as_str().unwrap().to_string())
    }

    const ROLES: [Role; 4] = [Role::Viewer, Role::Operator, Role::Technician, Role::Admin];

    /// Every route in [`ROUTES`] (the table the router is built from):
    /// unauthenticated → 401, each lower role → 403, a cookie session
    /// without the CSRF token on a mutating route → 403 `csrf`, and on
    /// routes with a body: malformed JSON, an unknown field and a wrong type
    /// → 400 with a message, an oversized body → 413.
    #[tokio::test]
    async fn access_table_covers_every_route() {
        let fx = fixture();
        let (sid, _csrf) = login(&fx.app, "adm", ADMIN_PW).await;
        let mut checked = 0;
        for route in ROUTES {
            let path = concrete(route.path, &fx.cam);
            let m = route.method.method();
            let what = format!("{} {}", m, route.path);
            let body_ok = route.body.map(|_| b"{}".as_slice());
            match route.access {
                Access::Public => {
                    let r = call(&fx.app, m.clone(), &path, Auth::None, body_ok).await;
                    assert_ne!(r.status, StatusCode::UNAUTHORIZED, "{what}");
                    assert_ne!(r.status, StatusCode::FORBIDDEN, "{what}");
                }
                Access::Role(need) => {
                    let r = call(&fx.app, m.clone(), &path, Auth::None, body_ok).await;
                    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {}", r.body);
                    assert_eq!(r.code(), "unauthenticated", "{what}");
                    let r = call(
                        &fx.app,
                        m.clone(),
                        &path,
                        Auth::Bearer("tgw_forged"),
                        body_ok,
                    )
                    .await;
                    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what} forged token");
                    let r = call(
                        &fx.app,
                        m.clone(),
                        &path,
                        Auth::Cookie {
                            sid: "forged",
                            csrf: None,
                        },
                        body_ok,
                    )
                    .await;
                    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what} forged cookie");
                    for role in ROLES.iter().filter(|r| **r < need) {
                        let r = call(
                            &fx.app,
                            m.clone(),
                            &path,
                            Auth::Bearer(&fx.tokens[role]),
                            body_ok,
                        )
                        .await;
                        assert_eq!(
                            r.status,
                            StatusCode::FORBIDDEN,
                            "{what} as {role:?}: {}",
                            r.body
                        );
                        assert_eq!(r.code(), "forbidden");
                    }
                    if route.method != M::Get {
                        let r = call(
                            &fx.app,
                            m.clone(),
                            &path,
                            Auth::Cookie {
                                sid: &sid,
                                csrf: None,
                            },
                            body_ok,
                        )
                        .await;
                        assert_eq!(
                            r.status,
                            StatusCode::FORBIDDEN,
                            "{what} without CSRF: {}",
                            r.body
                        );
                        assert_eq!(r.code(), "csrf", "{what}");
                        let r = call(
                            &fx.app,
                            m.clone(),
                            &path,
                            Auth::Cookie {
                                sid: &sid,
                                csrf: Some("wrong"),
                            },
                            body_ok,
                        )
                        .await;
                        assert_eq!(r.code(), "csrf", "{what} wrong CSRF");
                    }
                }
            }
            if route.body.is_some() {
                let admin = match route.access {
                    Access::Public => Auth::None,
                    Access::Role(_) => Auth::Bearer(&fx.tokens[&Role::Admin]),
                };
                for bad in [&b"{"[..], b"[1,2", b"{\"zzz_unknown\": 1}", b"{\"user\": 5, \"ids\": 5, \"label\": 5, \"filter\": 5, \"username\": 5, \"name\": 5, \"role\": 5, \"village\": 5}"] {
                    let r = call(&fx.app, m.clone(), &path, admin.clone(), Some(bad)).await;
                    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what} {:?}: {}", String::from_utf8_lossy(bad), r.body);
                    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
                    assert!(!v["error"]["message"].as_str().unwrap_or("").is_empty(), "{what}: no message");
                }
                let big = format!("{{\"x\": \"{}\"}}", "a".repeat(BODY_LIMIT + 10));
                let r = call(
                    &fx.app,
                    m.clone(),
                    &path,
                    admin.clone(),
                    Some(big.as_bytes()),
                )
                .await;
                assert_eq!(
                    r.status,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "{what}: {}",
                    r.body
                );
                assert_eq!(r.code(), "too_large");
            }
            checked += 1;
        }
        assert_eq!(checked, ROUTES.len());
        // Every route is in the OpenAPI document.
        let doc = openapi_doc();
        for r in ROUTES {
            assert!(
                doc["paths"][r.path][r.method.method().as_str().to_lowercase()].is_object(),
                "{} missing in OpenAPI",
                r.path
            );
        }
    }

    /// Out-of-range values → 400 naming the field, for queries and bodies.
    #[tokio::test]
    async fn out_of_range_values_are_refused_with_a_message() {
        let fx = fixture();
        let adm = Auth::Bearer(&fx.tokens[&Role::Admin]);
        let cases: &[(Method, &str, Option<&str>, &str)] = &[
            (Method::GET, "/api/v1/cameras?per_page=0", None, "per_page"),
            (
                Method::GET,
                "/api/v1/cameras?per_page=5000",
                None,
                "per_page",
            ),
            (
                Method::GET,
                "/api/v1/cameras?page=0&per_page=10",
                None,
                "page",
            ),
            (
                Method::GET,
                "/api/v1/cameras?verdict=bogus",
                None,
                "verdict",
            ),
            (Method::GET, "/api/v1/cameras?nope=1", None, "nope"),
            (Method::GET, "/api/v1/devices?state=lost", None, "state"),
            (Method::GET, "/api/v1/audit?limit=100000", None, "limit"),
            (Method::GET, "/api/v1/transitions?limit=0", None, "limit"),
            (
                Method::POST,
                "/api/v1/users",
                Some(r#"{"name":"x","role":"admin","password":"short"}"#),
                "password",
            ),
            (
                Method::POST,
                "/api/v1/users",
                Some(r#"{"name":"a b","role":"admin","password":"long enough"}"#),
                "user name",
            ),
            (
                Method::POST,
                "/api/v1/users",
                Some(r#"{"name":"ab","role":"root","password":"long enough"}"#),
                "role",
            ),
            (
                Method::POST,
                "/api/v1/inbox/adopt",
                Some(r#"{"ids":[]}"#),
                "ids",
            ),
            (
                Method::POST,
                "/api/v1/inbox/adopt",
                Some(r#"{"ids":["a"],"username":"u"}"#),
                "together",
            ),
            (
                Method::PUT,
                "/api/v1/credential-groups/g",
                Some(r#"{"username":"u","password":"p","priority":5000}"#),
                "priority",
            ),
            (
                Method::PUT,
                "/api/v1/credential-groups/g",
                Some(r#"{"username":"u","password":"p","subnets":["10.0.0.0/33"]}"#),
                "subnets",
            ),
            (
                Method::PUT,
                "/api/v1/log-level",
                Some(r#"{"filter":"info;rm -rf"}"#),
                "filter",
            ),
            (
                Method::PATCH,
                "/api/v1/users/view",
                Some(r#"{}"#),
                "nothing to change",
            ),
        ];
        for (m, path, body, needle) in cases {
            let r = call(
                &fx.app,
                m.clone(),
                path,
                adm.clone(),
                body.map(str::as_bytes),
            )
            .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{m} {path}: {}", r.body);
            assert!(
                r.body.contains(needle),
                "{m} {path}: message should name `{needle}`: {}",
                r.body
            );
        }
        // Wrong content type → 415.
        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/login")
            .header(header::CONTENT_TYPE, "text/plain")
            .body(AxBody::from("{}"))
            .unwrap();
        assert_eq!(
            fx.app.clone().oneshot(req).await.unwrap().status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }

    /// A capture of log lines for the duration of a test.
    #[derive(Clone, Default)]
    struct LogBuf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for LogBuf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuf {
        type Writer = LogBuf;
        fn make_writer(&'a self) -> LogBuf {
            self.clone()
        }
    }

    /// Drives every change through the API (login, device and group
    /// credentials, users, tokens, adoption), then reads every GET route and
    /// the audit log, and searches every response, page and log line for the
    /// passwords and tokens used.
    #[tokio::test]
    async fn secrets_never_appear_in_responses_pages_or_logs() {
        let logs = LogBuf::default();
        let sub = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_max_level(tracing::Level::TRACE)
            .finish();
        let _g = tracing::subscriber::set_default(sub);
        let fx = fixture();
        let (sid, csrf) = login(&fx.app, "adm", ADMIN_PW).await;
        let s = Auth::Cookie {
            sid: &sid,
            csrf: Some(&csrf),
        };
        let new_dev_pw = "n3w-dev1ce-pw";
        let group_pw = "gr0up-Secret-pw";
        let user_pw = "n3w-user-Secret";
        let mut seen = Vec::new();
        let mut token = String::new();
        let others: Vec<String> = fx
            .st
            .store
            .devices(Some(DeviceState::Discovered))
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        let steps: Vec<(Method, String, String)> = vec![
            (Method::PUT, format!("/api/v1/devices/{}/credentials", fx.cam), serde_json::json!({"username": "admin", "password": new_dev_pw}).to_string()),
            (Method::PUT, "/api/v1/credential-groups/batch".into(), serde_json::json!({"username": "admin", "password": group_pw, "subnets": ["127.0.9.0/24"]}).to_string()),
            (Method::POST, "/api/v1/users".into(), serde_json::json!({"name": "newbie", "role": "viewer", "password": user_pw}).to_string()),
            (Method::PATCH, "/api/v1/users/newbie".into(), serde_json::json!({"password": format!("{user_pw}2")}).to_string()),
            (Method::POST, "/api/v1/inbox/adopt".into(), serde_json::json!({"ids": [others[0]], "village": "xinhe", "username": "root", "password": new_dev_pw}).to_string()),
            (Method::POST, "/api/v1/users/newbie/tokens".into(), serde_json::json!({"label": "ci"}).to_string()),
        ];
        for (m, path, body) in steps {
            let r = call(&fx.app, m.clone(), &path, s.clone(), Some(body.as_bytes())).await;
            assert!(r.status.is_success(), "{m} {path}: {}", r.body);
            if path.ends_with("/tokens") {
                // The one response that carries a secret: the new token, once.
                let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
                token = v["token"].as_str().unwrap().to_string();
            } else {
                seen.push((format!("{m} {path}"), r.body));
            }
        }
        // Failed logins must not log the attempted password either.
        let bad = serde_json::json!({"user": "adm", "password": "typo-of-the-Secret"}).to_string();
        let r = call(
            &fx.app,
            Method::POST,
            "/api/v1/login",
            Auth::None,
            Some(bad.as_bytes()),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        seen.push(("failed login".into(), r.body));
        let r = call(
            &fx.app,
            Method::POST,
            "/api/v1/cameras/".to_string().as_str(),
            Auth::None,
            None,
        )
        .await;
        seen.push(("404".into(), r.body));
        for route in ROUTES
            .iter()
            .filter(|r| r.method == M::Get && r.path != "/api/v1/events")
        {
            let path = concrete(route.path, &fx.cam);
            let r = call(&fx.app, Method::GET, &path, s.clone(), None).await;
            seen.push((
                format!("GET {path} ({})", r.status),
                format!("{:?}\n{}", r.headers, r.body),
            ));
        }
        let dashboard = call(&fx.app, Method::GET, "/", s.clone(), None).await;
        assert!(dashboard.body.contains("app.js"));
        let audit = call(&fx.app, Method::GET, "/api/v1/audit", s.clone(), None).await;
        assert!(
            audit.body.contains("device.credentials")
                && audit.body.contains("user.token")
                && audit.body.contains("device.adopt"),
            "{}",
            audit.body
        );
        let log_text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
        assert!(log_text.contains("audit"), "logs were captured");
        seen.push(("logs".into(), log_text));
        let secrets = [
            ADMIN_PW,
            TECH_PW,
            VIEW_PW,
            OPER_PW,
            DEVICE_PW,
            new_dev_pw,
            group_pw,
            user_pw,
            "typo-of-the-Secret",
            &token,
            &sid,
            &fx.tokens[&Role::Admin],
            &fx.tokens[&Role::Viewer],
        ];
        for (what, text) in &seen {
            for sec in secrets {
                assert!(
                    !text.contains(sec),
                    "secret `{}…` found in {what}",
                    &sec[..4]
                );
            }
        }
    }

    /// Five wrong passwords lock the account (429 `locked`, even with the
    /// right password) for the lockout period; paused tokio time.
    #[tokio::test(start_paused = true)]
    async fn login_is_rate_limited_and_locks_out() {
        let fx = fixture();
        let body = |pw: &str| serde_json::json!({"user": "tech", "password": pw}).to_string();
        for i in 0..5 {
            let r = call(
                &fx.app,
                Method::POST,
                "/api/v1/login",
                Auth::None,
                Some(body("wrong-pass").as_bytes()),
            )
            .await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {i}");
        }
        let r = call(
            &fx.app,
            Method::POST,
            "/api/v1/login",
            Auth::None,
            Some(body(TECH_PW).as_bytes()),
        )
        .await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
        assert_eq!(r.code(), "locked");
        assert!(r.headers.contains_key(header::RETRY_AFTER));
        tokio::time::advance(Duration::from_secs(901)).await;
        let r = call(
            &fx.app,
            Method::POST,
            "/api/v1/login",
            Auth::None,
            Some(body(TECH_PW).as_bytes()),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        // The per-address limit: 10 failures within 5 minutes, across names,
        // from one address (the first 5 left the window 900 s ago).
        for i in 0..10 {
            call(
                &fx.app,
                Method::POST,
                "/api/v1/login",
                Auth::None,
                Some(
                    serde_json::json!({"user": format!("ghost{i}"), "password": "x"})
                        .to_string()
                        .as_bytes(),
                ),
            )
            .await;
        }
        let r = call(
            &fx.app,
            Method::POST,
            "/api/v1/login",
            Auth::None,
            Some(body(TECH_PW).as_bytes()),
        )
        .await;
        assert_eq!(r.code(), "rate_limited", "{}", r.body);
        let audit = fx.st.users().audit_log(100, None).unwrap();
        assert!(
            audit
                .iter()
                .any(|e| e.action == "login" && e.outcome == "locked")
        );
        assert!(
            audit
                .iter()
                .any(|e| e.action == "login" && e.outcome == "failed_locked")
        );
    }

    /// Adopting a discovered speaker (an mDNS-found SIP horn) creates its
    /// speaker inventory entry with the request's village/grid/zone, the
    /// driver kind and address from the sighting and the login (sealed, not
    /// listed); it then shows in `GET /api/v1/speakers`, no camera probe is
    /// queued, and the audit entry names the speaker. A speaker whose driver
    /// discovery could not tell is refused unless `driver`/`address` come
    /// with the request; zone/driver on a camera are refused.
    #[tokio::test]
    async fn adopting_a_discovered_speaker_fills_the_speaker_inventory() {
        let mut fx = fixture();
        let tech = Auth::Bearer(&fx.tokens[&Role::Technician]);
        let sip = fx
            .st
            .store
            .record_speaker_sighting(
                "mdns:Horn 1._sip._udp.local",
                Some([10, 21, 3, 41].into()),
                None,
                Some("Horn 1"),
                "mdns",
                Some(("sip", "sip:horn@10.21.3.41:5062")),
            )
            .unwrap()
            .id;
        let bare = fx
            .st
            .store
            .record_speaker_sighting(
                "uuid:x::urn:y",
                Some([10, 21, 3, 42].into()),
                None,
                Some("SPON"),
                "ssdp",
                None,
            )
            .unwrap()
            .id;
        let adopt = |body: serde_json::Value| {
            let app = fx.app.clone();
            let tech = tech.clone();
            async move {
                let b = body.to_string();
                call(
                    &app,
                    Method::POST,
                    "/api/v1/inbox/adopt",
                    tech,
                    Some(b.as_bytes()),
                )
                .await
            }
        };
        let r = adopt(
            serde_json::json!({"ids": [sip], "village": "dongcun", "grid": "dongcun-1",
            "zone": "dongcun-square", "username": "horn", "password": "horn-pw"}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["adopted"][0], sip.as_str(), "{v}");
        assert!(
            fx._probe_rx.try_recv().is_err(),
            "no ONVIF probe for a speaker"
        );
        let list = call(
            &fx.app,
            Method::GET,
            "/api/v1/speakers?village=dongcun",
            tech.clone(),
            None,
        )
        .await;
        assert_eq!(list.status, StatusCode::OK);
        let list: serde_json::Value = serde_json::from_str(&list.body).unwrap();
        let e = list
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == sip.as_str())
            .unwrap_or_else(|| panic!("{list}"));
        assert_eq!(e["kind"], "sip");
        assert_eq!(e["address"], "sip:horn@10.21.3.41:5062");
        assert_eq!(
            (&e["village"], &e["grid"], &e["zone"]),
            (
                &"dongcun".into(),
                &"dongcun-1".into(),
                &"dongcun-square".into()
            )
        );
        assert_eq!(e["name"], "Horn 1");
        assert_eq!(e["has_password"], true);
        assert!(!list.to_string().contains("horn-pw"));
        let dev = fx.st.store.device(&sip).unwrap().unwrap();
        assert_eq!(dev.state, DeviceState::Adopted);
        assert!(
            !dev.has_credentials,
            "the login belongs to the speaker inventory"
        );
        let log = fx.st.users().audit_log(100, None).unwrap();
        let a = log
            .iter()
            .find(|e| e.action == "device.adopt" && e.target.as_deref() == Some(sip.as_str()))
            .unwrap();
        assert_eq!(a.after.as_ref().unwrap()["speaker"]["kind"], "sip");
        assert!(!serde_json::to_string(&a.after).unwrap().contains("horn-pw"));

        // No driver known: refused, nothing changes; with one, adopted.
        let r = adopt(serde_json::json!({"ids": [bare], "village": "dongcun"})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert!(r.body.contains("give `driver` and `address`"), "{}", r.body);
        assert_eq!(
            fx.st.store.device(&bare).unwrap().unwrap().state,
            DeviceState::Discovered
        );
        let r = adopt(serde_json::json!({"ids": [bare], "village": "dongcun", "driver": "rtp", "address": "10.21.3.42:0"})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        let r = adopt(serde_json::json!({"ids": [bare], "village": "dongcun", "driver": "rtp", "address": "10.21.3.42:5004"})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let one = call(
            &fx.app,
            Method::GET,
            &format!("/api/v1/speakers/{bare}"),
            tech.clone(),
            None,
        )
        .await;
        assert!(one.body.contains("\"kind\":\"rtp\""), "{}", one.body);

        // Speaker-only fields on a camera.
        let cam = fx
            .st
            .store
            .devices(Some(DeviceState::Discovered))
            .unwrap()
            .into_iter()
            .find(|d| d.kind == "camera")
            .unwrap()
            .id;
        let r = adopt(serde_json::json!({"ids": [cam], "zone": "z1"})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert!(r.body.contains("apply to speakers"), "{}", r.body);
    }

    /// Adoption, credentials and probe-now reach the store and the probe
    /// channel, and each writes an audit entry with before/after.
    #[tokio::test]
    async fn adopt_probe_and_audit() {
        let mut fx = fixture();
        let tech = Auth::Bearer(&fx.tokens[&Role::Technician]);
        let ids: Vec<String> = fx
            .st
            .store
            .devices(Some(DeviceState::Discovered))
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(ids.len(), 2);
        let inbox = call(&fx.app, Method::GET, "/api/v1/inbox", tech.clone(), None).await;
        assert!(inbox.body.contains(&ids[0]));
        let body = serde_json::json!({"ids": [ids[0], ids[1], "cam-nope"], "village": "dongcun", "grid": "dongcun-2"}).to_string();
        let r = call(
            &fx.app,
            Method::POST,
            "/api/v1/inbox/adopt",
            tech.clone(),
            Some(body.as_bytes()),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["adopted"].as_array().unwrap().len(), 2);
        assert_eq!(v["errors"][0]["code"], "not_found");
        assert_eq!(
            fx.st
                .store
                .device(&ids[0])
                .unwrap()
                .unwrap()
                .grid
                .as_deref(),
            Some("dongcun-2")
        );
        assert_eq!(fx._probe_rx.try_recv().unwrap(), ids[0]);
        let r = call(
            &fx.app,
            Method::POST,
            &format!("/api/v1/cameras/{}/probe", fx.cam),
            tech.clone(),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        let cams = call(
            &fx.app,
            Method::GET,
            "/api/v1/cameras?village=dongcun&per_page=2&page=1",
            tech.clone(),
            None,
        )
        .await;
        assert_eq!(cams.headers["x-total-count"], "3");
        assert_eq!(
            serde_json::from_str::<Vec<CameraStatus>>(&cams.body)
                .unwrap()
                .len(),
            2
        );
        let cams = call(
            &fx.app,
            Method::GET,
            "/api/v1/cameras?grid=dongcun-2",
            tech.clone(),
            None,
        )
        .await;
        assert_eq!(cams.headers["x-total-count"], "2");
        let log = fx.st.users().audit_log(100, None).unwrap();
        let adopt = log
            .iter()
            .find(|e| e.action == "device.adopt" && e.target.as_deref() == Some(ids[0].as_str()))
            .unwrap();
        assert_eq!(adopt.actor, "tech");
        assert_eq!(adopt.before.as_ref().unwrap()["state"], "discovered");
        assert_eq!(adopt.after.as_ref().unwrap()["state"], "adopted");
        assert!(log.iter().any(|e| e.action == "camera.probe"));
        // The last admin cannot demote itself away.
        let adm = Auth::Bearer(&fx.tokens[&Role::Admin]);
        let r = call(
            &fx.app,
            Method::PATCH,
            "/api/v1/users/adm",
            adm.clone(),
            Some(br#"{"role":"viewer"}"#),
        )
        .await;
        assert_eq!(r.code(), "last_admin");
        // Overview counts.
        let o = call(&fx.app, Method::GET, "/api/v1/overview", adm, None).await;
        let o: serde_json::Value = serde_json::from_str(&o.body).unwrap();
        assert_eq!(o["cameras"], 3);
        assert_eq!(o["totals"]["unknown"], 3);
    }

    /// SSE: the live hub's events reach a subscriber of /api/v1/events.
    #[tokio::test]
    async fn live_events_stream_to_subscribers() {
        let fx = fixture();
        let req = Request::builder()
            .uri("/api/v1/events")
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", fx.tokens[&Role::Viewer]),
            )
            .body(AxBody::empty())
            .unwrap();
        let r = fx.app.clone().oneshot(req).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(fx.st.live().subscribers(), 1);
        fx.st
            .live()
            .publish(crate::base::live::LiveEvent::Transition {
                id: fx.cam.clone(),
                village: None,
                from: "ok".into(),
                to: "offline".into(),
                reasons: vec![],
                rung: "unreachable".into(),
                at: "t".into(),
            });
        let mut body = r.into_body().into_data_stream();
        let mut text = String::new();
        while !text.contains("offline") {
            let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(
            text.contains("event: hello") && text.contains("event: health"),
            "{text}"
        );
    }

    /// The runtime log-level change calls the installed reload function,
    /// reports the new filter, refuses what the function rejects, and is audited.
    #[tokio::test]
    async fn log_level_changes_through_the_reload_function() {
        let fx = fixture();
        let got = Arc::new(Mutex::new(Vec::<String>::new()));
        let g = got.clone();
        let f: LogLevelFn = Arc::new(move |s: &str| {
            if s == "bogus" {
                return Err("unknown level".into());
            }
            g.lock().unwrap().push(s.to_string());
            Ok(())
        });
        let app = router(fx.st.clone().with_log_level(f, "info"));
        let adm = Auth::Bearer(&fx.tokens[&Role::Admin]);
        let r = call(
            &app,
            Method::PUT,
            "/api/v1/log-level",
            adm.clone(),
            Some(br#"{"filter":"info,tgw::poller=debug"}"#),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(
            *got.lock().unwrap(),
            vec!["info,tgw::poller=debug".to_string()]
        );
        let r = call(&app, Method::GET, "/api/v1/log-level", adm.clone(), None).await;
        assert!(
            r.body.contains("tgw::poller=debug") && r.body.contains(r#""changeable":true"#),
            "{}",
            r.body
        );
        let r = call(
            &app,
            Method::PUT,
            "/api/v1/log-level",
            adm.clone(),
            Some(br#"{"filter":"bogus"}"#),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let log = fx.st.users().audit_log(10, None).unwrap();
        assert!(
            log.iter()
                .any(|e| e.action == "log_level.set" && e.outcome == "ok")
        );
        assert!(
            log.iter()
                .any(|e| e.action == "log_level.set" && e.outcome == "invalid")
        );
        // Without a reload function: 503.
        let r = call(
            &fx.app,
            Method::PUT,
            "/api/v1/log-level",
            adm,
            Some(br#"{"filter":"info"}"#),
        )
        .await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    }

    /// `?lang=en` and the language cookie pick the page language; zh-CN by default.
    #[tokio::test]
    async fn dashboard_language() {
        let fx = fixture();
        let zh = call(&fx.app, Method::GET, "/", Auth::None, None).await;
        assert!(zh.body.contains(r#"lang="zh-CN""#));
        let en = call(&fx.app, Method::GET, "/?lang=en", Auth::None, None).await;
        assert!(en.body.contains(r#"lang="en""#));
        let c = call(
            &fx.app,
            Method::GET,
            "/",
            Auth::Cookie {
                sid: "",
                csrf: None,
            },
            None,
        )
        .await;
        assert!(c.body.contains(r#"lang="en""#), "cookie tgw_lang=en");
        assert!(zh.headers.contains_key(header::CONTENT_SECURITY_POLICY));
    }

    // --- speakers (issue 6) ---
    const SPK_PW: &str = "sp3aker-Secret-pw";

    fn add_speaker(fx: &Fx, id: &str, kind: crate::speakers::DriverKind, address: &str) {
        use crate::speakers::{Codec, NewSpeaker, Speakers};
        Speakers::open(&fx.st.store)
            .unwrap()
            .upsert(&[NewSpeaker {
                id: crate::config::Ident::parse(id).unwrap(),
                name: Some("东村广场".into()),
                kind,
                address: address.into(),
                village: Some("dongcun".into()),
                grid: None,
                zone: None,
                codec: Codec::Pcmu,
                volume: Some(70),
                ttl: None,
                username: Some("horn".into()),
                password: Some(Password::new(SPK_PW)),
            }])
            .unwrap();
    }

    /// A technician tests a simulated RTP horn (a UDP socket here): the tone
    /// arrives as RTP, the answer reports answered/packets, the listing shows
    /// the last test, an audit entry names who/what/from where/result, and
    /// neither the answers nor the audit log contain the horn's password.
    #[tokio::test]
    async fn speaker_test_plays_a_tone_and_is_audited() {
        let fx = fixture();
        let horn = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = horn.local_addr().unwrap();
        add_speaker(
            &fx,
            "spk-1",
            crate::speakers::DriverKind::Rtp,
            &addr.to_string(),
        );
        let rx = tokio::spawn(async move {
            let mut n = 0u32;
            let mut buf = [0u8; 2048];
            while let Ok(Ok((len, _))) =
                tokio::time::timeout(Duration::from_secs(3), horn.recv_from(&mut buf)).await
            {
                // RTP version 2, payload type 0 (PCMU).
                if len > 12 && buf[0] >> 6 == 2 && buf[1] & 0x7f == 0 {
                    n += 1;
                }
            }
            n
        });
        let tech = Auth::Bearer(&fx.tokens[&Role::Technician]);
        let path = "/api/v1/speakers/spk-1/test";
        let body = br#"{"tone_hz": 1000, "seconds": 1}"#;
        let r = call(&fx.app, Method::POST, path, tech.clone(), Some(body)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["answered"], true, "{v}");
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["packets"], 50, "1 s of 20 ms packets: {v}");
        assert!(
            v["started_at"].is_string() && v["skew_ms"].is_number(),
            "{v}"
        );
        assert!(rx.await.unwrap() >= 50, "the horn received the tone");
        let list = call(
            &fx.app,
            Method::GET,
            "/api/v1/speakers?village=dongcun",
            Auth::Bearer(&fx.tokens[&Role::Viewer]),
            None,
        )
        .await;
        let l: serde_json::Value = serde_json::from_str(&list.body).unwrap();
        assert_eq!(l[0]["id"], "spk-1");
        assert_eq!(l[0]["has_password"], true);
        assert_eq!(l[0]["last_test"]["packets"], 50);
        let one = call(
            &fx.app,
            Method::GET,
            "/api/v1/speakers/spk-1",
            tech.clone(),
            None,
        )
        .await;
        let other = call(
            &fx.app,
            Method::GET,
            "/api/v1/speakers?village=xinhe",
            tech.clone(),
            None,
        )
        .await;
        assert_eq!(other.body, "[]");
        let audit = fx.st.users().audit_log(10, None).unwrap();
        let e = audit
            .iter()
            .find(|e| e.action == "speaker.test")
            .expect("audit entry");
        assert_eq!(e.actor, "tech");
        assert_eq!(e.target.as_deref(), Some("spk-1"));
        assert_eq!(e.outcome, "ok");
        assert_eq!(e.after.as_ref().unwrap()["packets"], 50);
        let audit_text =
            serde_json::to_string(&fx.st.users().audit_log(100, None).unwrap()).unwrap();
        for text in [&r.body, &list.body, &one.body, &audit_text] {
            assert!(!text.contains(SPK_PW), "speaker password leaked: {text}");
        }
    }

    /// Out-of-range tones → 400; unknown horn → 404; a horn already under
    /// test → 409 (audited as busy); a cloud horn → 422.
    #[tokio::test]
    async fn speaker_test_refusals() {
        let fx = fixture();
        add_speaker(
            &fx,
            "spk-1",
            crate::speakers::DriverKind::Rtp,
            "127.0.0.1:9",
        );
        add_speaker(
            &fx,
            "spk-c",
            crate::speakers::DriverKind::Cloud,
            "horn-0001",
        );
        let tech = Auth::Bearer(&fx.tokens[&Role::Technician]);
        let path = "/api/v1/speakers/spk-1/test";
        for bad in [
            &br#"{"tone_hz": 399, "seconds": 1}"#[..],
            br#"{"tone_hz": 3001, "seconds": 1}"#,
            br#"{"tone_hz": 1000, "seconds": 0}"#,
            br#"{"tone_hz": 1000, "seconds": 11}"#,
            br#"{"tone_hz": -5}"#,
        ] {
            let r = call(&fx.app, Method::POST, path, tech.clone(), Some(bad)).await;
            assert_eq!(
                r.status,
                StatusCode::BAD_REQUEST,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let ok = br#"{"tone_hz": 1000, "seconds": 1}"#;
        let r = call(
            &fx.app,
            Method::POST,
            "/api/v1/speakers/nope/test",
            tech.clone(),
            Some(ok),
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = call(
            &fx.app,
            Method::GET,
            "/api/v1/speakers/nope",
            tech.clone(),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = call(
            &fx.app,
            Method::POST,
            "/api/v1/speakers/spk-c/test",
            tech.clone(),
            Some(ok),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        let slot = fx.st.speaker_tests.take("spk-1").unwrap();
        let r = call(&fx.app, Method::POST, path, tech.clone(), Some(ok)).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
        assert_eq!(r.code(), "busy");
        drop(slot);
        assert!(
            fx.st.speaker_tests.take("spk-1").is_some(),
            "slot freed on drop"
        );
        let audit = fx.st.users().audit_log(10, None).unwrap();
        assert!(
            audit
                .iter()
                .any(|e| e.action == "speaker.test" && e.outcome == "busy")
        );
    }

    /// Inventory rows map to driver addresses with the sealed login; cloud
    /// horns and https speakers are refused with a reason.
    #[test]
    fn speaker_uri_from_inventory() {
        use crate::speakers::{Codec, DriverKind, Speaker};
        use device_drivers::speaker::SpeakerUri;
        let mut s = Speaker {
            id: "s".into(),
            name: None,
            kind: DriverKind::Axis,
            address: "127.0.0.1:8080".into(),
            village: None,
            grid: None,
            zone: None,
            multicast: None,
            codec: Codec::Pcma,
            volume: None,
            username: Some("root".into()),
            has_password: true,
        };
        let login = crate::store::Login {
            username: "root".into(),
            password: Password::new(SPK_PW),
            source: "speaker".into(),
        };
        let u = speaker_uri(&s, Some(&login)).unwrap();
        assert!(
            matches!(&u, SpeakerUri::Axis { user: Some(n), password: Some(p), addr }
            if n == "root" && p == SPK_PW && addr.port() == 8080)
        );
        s.address = "https://127.0.0.1".into();
        assert!(speaker_uri(&s, Some(&login)).is_err());
        s.kind = DriverKind::Sip;
        s.address = "sip:horn@127.0.0.1:5070".into();
        let u = speaker_uri(&s, Some(&login)).unwrap();
        assert!(matches!(&u, SpeakerUri::Sip { password: Some(p), .. } if p == SPK_PW));
        s.kind = DriverKind::Rtp;
        s.address = "127.0.0.1:5004".into();
        let u = speaker_uri(&s, None).unwrap();
        assert!(matches!(
            &u,
            SpeakerUri::Rtp {
                codec: device_drivers::g711::Codec::Pcma,
                ..
            }
        ));
        s.kind = DriverKind::Cloud;
        assert!(speaker_uri(&s, None).is_err());
    }
}
