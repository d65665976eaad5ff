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
//!
//! | module | owns |
//! |---|---|
//! | `mod.rs` | [`AppState`], [`router`], the module table |
//! | `routes` | [`ROUTES`] (the route table), [`find_route`], [`openapi_doc`] |
//! | `error` | [`ApiError`], its JSON body and the conversions into it |
//! | `extract` | [`Body`], [`Q`], [`Ctx`], [`ClientIp`], [`Validate`], paging and range checks |
//! | `access` | the guard: bearer token / session cookie, role, CSRF |
//! | `serve` | [`serve`]: the TCP server with header-read and idle timeouts and a connection cap |
//! | `etag` | JSON lists with `X-Total-Count`, `ETag` and 304 on `If-None-Match` |
//! | `audited` | audit entries: [`AppState`]`::audit` and the audited-mutation helper |
//! | `session` | login, logout, who-am-i |
//! | `inventory` | township, villages, grids, devices, assign |
//! | `credentials` | device logins and credential groups |
//! | `inbox` | the discovery inbox: adopt, ignore |
//! | `logins` | testing a camera's login, one login for many cameras, re-probing after a login change |
//! | `cameras` | camera list, overview, one camera, transitions, snapshot, probe |
//! | `live` | `/api/v1/events` (server-sent events) |
//! | `speakers` | loudspeakers and the test tone |
//! | `broadcasts` | broadcasts, emergency, stop-all, alerts, audio assets |
//! | `timetable` | the timetable document and its per-entry edits |
//! | `timetable_view` | the week view, the check, target resolution |
//! | `users` | users and API tokens |
//! | `unlock` | an admin lifts a user's login lockout and slow-down |
//! | `audit` | the audit log |
//! | `system` | `/readyz`, `/metrics`, the log level |
//! | `gb28181` | the GB/T 28181 uplink status and a camera's GB id |
//! | `dashboard` | the embedded single-page dashboard and its assets |
//! | `tests` | router-level tests, one module per concern, and their fixture |

mod access;
mod alarms;
mod audit;
mod audited;
mod broadcasts;
mod camera_time;
mod cameras;
mod credentials;
mod dashboard;
mod error;
mod etag;
mod extract;
mod gb28181;
mod inbox;
mod inventory;
mod live;
mod logins;
mod paging;
mod places;
mod recordings;
mod routes;
mod serve;
mod session;
mod speakers;
mod system;
#[cfg(test)]
mod tests;
mod timetable;
mod timetable_view;
pub mod tls;
mod trends;
mod unlock;
mod users;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::auth::{self, HashCost, LoginLimiter, Users};
use crate::base::clock::Clock;
use crate::base::live::LiveHub;
use crate::base::metrics::Metrics;
use crate::store::Store;

use audited::device_brief;
pub use cameras::{CameraStatus, camera_statuses};
pub use credentials::{CredentialsBody, GroupBody};
pub use error::ApiError;
use error::ApiResult;
pub use extract::{Body, ClientIp, Ctx, Q, Validate};
use extract::{Paging, check_ids, check_len, check_multiline, cookie, limit};
pub use inbox::{AdoptBody, IdsBody};
pub use inventory::AssignBody;
pub use logins::{BulkCredentialsBody, LOGIN_TEST_DEADLINE, LoginTestBody};
pub use routes::{Access, M, ROUTES, Route, find_route, openapi_doc};
pub use serve::{ServeLimits, serve, serve_tls};
pub use session::LoginBody;
pub use speakers::SpeakerTestBody;
use speakers::{SpeakerTests, speaker_inventory, speaker_store_err};
pub use system::LogLevelBody;
pub use users::{NewUserBody, TokenBody, UpdateUserBody};

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 64 * 1024;
/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "tgw_session";
/// Header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Changes the process's log filter (an `EnvFilter` directive string).
pub type LogLevelFn = Arc<dyn Fn(&str) -> crate::base::error::Result<()> + Send + Sync>;

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
    clock: Arc<dyn Clock>,
    camera_access: Arc<[crate::config::CameraAccess]>,
    login_tests: logins::LoginTests,
    gb: Option<crate::gb28181::Gb>,
    aired: Option<crate::broadcast::aired::Aired>,
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
            clock: crate::base::clock::system(),
            camera_access: Arc::from(Vec::new()),
            login_tests: logins::LoginTests::default(),
            gb: None,
            aired: None,
        })
    }

    /// `[[health.camera_access]]`: where a camera's login may go when the
    /// snapshot route fetches a snapshot (as for the poller). Default: only
    /// the camera's own host, never Basic over plain HTTP.
    pub fn with_camera_access(mut self, access: Vec<crate::config::CameraAccess>) -> Self {
        self.camera_access = Arc::from(access);
        self
    }

    /// Enables `GET /api/v1/gb28181` with the running GB/T 28181 uplink.
    pub fn with_gb(mut self, gb: Option<crate::gb28181::Gb>) -> Self {
        self.gb = gb;
        self
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

    /// The recordings of what aired (`/api/v1/recordings`).
    pub fn with_aired(mut self, aired: crate::broadcast::aired::Aired) -> Self {
        self.aired = Some(aired);
        self
    }

    /// Marks cookies `Secure` and sends `Strict-Transport-Security` (the
    /// gateway is served over TLS: `http.tls`).
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

    /// The bounded pool password hashes and verifications run in
    /// (`[http] password_hash_concurrency`, `password_hash_wait_ms`).
    pub fn with_hash_pool(mut self, pool: auth::HashPool) -> Self {
        self.users = self.users.clone().with_hash_pool(pool);
        self
    }

    /// SSE streams end when this is cancelled (graceful shutdown).
    pub fn with_shutdown(mut self, t: CancellationToken) -> Self {
        self.shutdown = t;
        self
    }

    /// The wall clock (login sessions' test times, "today" of the
    /// timetable views); the system clock unless a test sets another.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The user store.
    pub fn users(&self) -> &Users {
        &self.users
    }
}

/// The HTTP routes, built from [`ROUTES`].
pub fn router(state: AppState) -> Router {
    let hsts = state.secure_cookies;
    let mut r: Router<AppState> = Router::new();
    for route in ROUTES {
        r = r.route(route.path, (route.handler)());
    }
    r.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        access::guard,
    ))
    .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
    .layer(DefaultBodyLimit::max(BODY_LIMIT))
    .layer(axum::middleware::map_response(access::harden))
    // gzip when the client accepts it; the default predicate leaves out
    // server-sent events (`/api/v1/events`), images and tiny bodies.
    .layer(tower_http::compression::CompressionLayer::new())
    .layer(axum::middleware::map_response(move |resp| {
        access::hsts(resp, hsts)
    }))
    .with_state(state)
}
