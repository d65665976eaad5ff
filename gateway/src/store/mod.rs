//! The gateway's SQLite store: all SQL of the daemon's tables, by table
//! group. One database per gateway (`DATA_DIR/tgw.db`) in WAL mode. The
//! schema is versioned per component in the `schema_version` table: each
//! component (the inventory, the outbox, health history, …) owns an ordered
//! list of migrations applied by [`apply_migrations`], each in its own
//! transaction, so a crash mid-upgrade leaves the previous version intact and
//! components evolve without renumbering each other's migrations. Passwords
//! are sealed with [`crate::store::secrets::SecretKey`] before they reach SQL
//! and are never returned by listing queries. Every time the store writes
//! comes from its injected [`Clock`].
//!
//! | module | owns |
//! |---|---|
//! | `mod.rs` | [`Store`] (open in WAL mode, the clock), [`StoreError`], [`fmt_time`] |
//! | [`data_dir`] | the data directory: created 0700, permission check, empty/foreign `tgw.db` refused |
//! | [`migrations`] | every component's schema and [`apply_migrations`] |
//! | [`secrets`] | the credential key and sealed passwords |
//! | [`villages`] | township, villages and grids, synced from the configuration |
//! | [`devices`] | the device inventory: discovery inbox, ONVIF inventory, adoption |
//! | [`credentials`] | per-device logins and credential groups |
//! | `credential_groups` | the credential group list for the API, clearing a device login |
//! | `township` | the township row and the camera rows of the status list |
//! | [`history`] | camera health: current state, transitions, history, retention |
//! | [`speakers`] | the loudspeaker inventory's rows and multicast zones |
//! | [`users`] | dashboard and API users (argon2id hashes, roles) |
//! | [`sessions`] | browser sessions and bearer API tokens (digests only) |
//! | [`audit`] | the audit log (its table, component `auth`, made at open, so every writer has it) |
//! | [`places`] | devices' places on the map, acknowledged alarms (component `dashboard`) |
//! | [`gb_ids`] | GB/T 28181 ids of cameras, villages and grids (component `gb28181`) |
//! | [`clock_sync`] | camera clocks: the time reference's last reading, the automatic sync's last attempt per camera (component `clock_sync`) |
//! | `trends` | downsampled health history and broadcast outcomes for charts |
//! | [`changes`] | a watch bumped by every write to devices or logins (the poller's supervisor waits on it) |

pub mod audit;
pub mod backup;
pub mod backup_files;
pub mod changes;
pub mod clock_sync;
mod credential_groups;
pub mod credentials;
pub mod data_dir;
pub mod devices;
pub mod gb_ids;
pub mod history;
pub mod lists;
pub mod migrations;
pub mod places;
mod poll_targets;
pub mod recordings;
pub mod secrets;
pub mod sessions;
pub mod speakers;
#[cfg(test)]
pub(crate) mod testing;
pub mod township;
mod trends;
pub mod users;
pub mod villages;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::base::clock::{self, Clock};
use crate::base::error::ErrorKind;
use crate::store::secrets::{SecretError, SecretKey};

pub use audit::{AuditEntry, NewAudit};
pub use credentials::Login;
pub use devices::{
    Device, DeviceState, InventorySummary, Sighting, Upserted, camera_id, speaker_id,
};
pub use history::HealthEvent;
pub use migrations::{
    AUTH_MIGRATIONS, HEALTH_MIGRATIONS, MIGRATIONS, SPEAKER_MIGRATIONS, apply_migrations,
};
pub use sessions::{NewSession, SessionRow};
pub use speakers::{SpeakerBatch, SpeakerRow, SpeakerWrite, ZoneRow};
pub use users::UserRow;
pub use villages::VillageRow;

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A stored JSON column did not parse.
    #[error("database: column {column} of {id}: {source}")]
    Json {
        /// Row id.
        id: String,
        /// Column.
        column: &'static str,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The database is newer than this program.
    #[error(
        "database schema version {found} is newer than this tgw understands ({known}); upgrade tgw"
    )]
    TooNew {
        /// Version on disk.
        found: i64,
        /// Newest this binary knows.
        known: i64,
    },
    /// Key file or decryption problem.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The data directory is unsafe (open permissions) or holds a damaged
    /// database; the store refuses to open it.
    #[error("{0}")]
    DataDir(String),
    /// A referenced row does not exist.
    #[error("{what} `{id}` does not exist")]
    NotFound {
        /// Kind of row.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// A request that conflicts with the inventory (e.g. a grid outside its village).
    #[error("{0}")]
    Invalid(String),
}

impl StoreError {
    /// The kind (HTTP status, MQTT code, metric label) of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::NotFound { .. } => ErrorKind::NotFound,
            StoreError::Invalid(_) => ErrorKind::Invalid,
            StoreError::Sql(_)
            | StoreError::Json { .. }
            | StoreError::TooNew { .. }
            | StoreError::DataDir(_)
            | StoreError::Secret(_) => ErrorKind::Internal,
        }
    }
}

type Result<T> = std::result::Result<T, StoreError>;

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    key: Arc<SecretKey>,
    clock: Arc<dyn Clock>,
    changes: Arc<tokio::sync::watch::Sender<changes::StoreChanges>>,
}

/// RFC 3339 with second precision, UTC.
pub fn fmt_time(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

impl Store {
    /// Opens (creating if needed) `data_dir/tgw.db` and the key file, and
    /// applies migrations. Times come from the system clock. The directory
    /// is created 0700 when missing and refused when group or others can
    /// access it, its key or its database ([`data_dir::check_private`]); an
    /// empty or foreign `tgw.db` beside other state is refused
    /// ([`data_dir::check_db`]).
    pub fn open(data_dir: &Path) -> Result<Store> {
        Self::open_with_clock(data_dir, clock::system())
    }

    /// [`Store::open`] with times from `clock` (tests drive it by hand).
    pub fn open_with_clock(data_dir: &Path, clock: Arc<dyn Clock>) -> Result<Store> {
        data_dir::ensure(data_dir)?;
        data_dir::check_private(data_dir, data_dir::open_permissions_allowed())?;
        data_dir::check_db(data_dir)?;
        let key = SecretKey::load_or_create(data_dir)?;
        let db = data_dir.join(data_dir::DB_FILE);
        let fresh = !db.exists();
        let conn = Connection::open(&db)?;
        if fresh {
            // Before the first write creates the WAL, which takes this mode.
            data_dir::make_private(&db)?;
        }
        Self::with_connection(conn, key, clock)
    }

    /// Opens an in-memory store (tests).
    pub fn open_in_memory(key_dir: &Path) -> Result<Store> {
        let key = SecretKey::load_or_create(key_dir)?;
        Self::with_connection(Connection::open_in_memory()?, key, clock::system())
    }

    fn with_connection(
        mut conn: Connection,
        key: SecretKey,
        clock: Arc<dyn Clock>,
    ) -> Result<Store> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        apply_migrations(&mut conn, "inventory", MIGRATIONS)?;
        // The audit log's table (with users, sessions and tokens) for every
        // writer of audit rows, also on a data directory where no user was
        // ever made (`tgw camera sync-time`, the automatic clock sync).
        apply_migrations(&mut conn, "auth", AUTH_MIGRATIONS)?;
        apply_migrations(&mut conn, "health", HEALTH_MIGRATIONS)?;
        apply_migrations(&mut conn, "list_indexes", lists::LIST_INDEX_MIGRATIONS)?;
        apply_migrations(&mut conn, "dashboard", places::MIGRATIONS)?;
        apply_migrations(&mut conn, "gb28181", gb_ids::MIGRATIONS)?;
        apply_migrations(&mut conn, "recordings", recordings::MIGRATIONS)?;
        apply_migrations(&mut conn, "micro_grids", villages::MICRO_GRID_MIGRATIONS)?;
        apply_migrations(&mut conn, "clock_sync", clock_sync::MIGRATIONS)?;
        let changes = Arc::new(tokio::sync::watch::Sender::new(
            changes::StoreChanges::default(),
        ));
        changes::watch_writes(&mut conn, changes.clone());
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            key: Arc::new(key),
            clock,
            changes,
        })
    }

    /// Counters of writes to devices and logins, bumped as they happen in
    /// this process ([`changes`]).
    pub fn changes(&self) -> tokio::sync::watch::Receiver<changes::StoreChanges> {
        self.changes.subscribe()
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A poisoned lock means a panic mid-statement; SQLite rolled back, so
        // the connection itself is still consistent.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The clock the store stamps rows with.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Now by the store's clock, formatted as [`fmt_time`] does.
    fn now_str(&self) -> String {
        fmt_time(self.clock.now_utc())
    }

    /// Runs `f` with the connection (for components that keep their own
    /// tables in this database, e.g. broadcast records).
    pub fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        f(&mut self.conn())
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(
    id: &str,
    column: &'static str,
    s: &str,
) -> Result<T> {
    serde_json::from_str(s).map_err(|source| StoreError::Json {
        id: id.to_string(),
        column,
        source,
    })
}
