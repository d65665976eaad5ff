//! The gateway's SQLite store: township → village → grid → device inventory,
//! credential groups and per-device credentials.
//!
//! One database per gateway (`DATA_DIR/tgw.db`) in WAL mode. The schema is
//! versioned per component in the `schema_version` table: each component
//! (this module's inventory, the outbox, health history, …) owns an ordered
//! list of migrations applied by [`apply_migrations`], each in its own
//! transaction, so a crash mid-upgrade leaves the previous version intact and
//! components evolve without renumbering each other's migrations. Passwords are sealed with [`crate::store::secrets::SecretKey`]
//! before they reach SQL and are never returned by listing queries.

mod credential_groups;
pub mod secrets;
mod township;

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use ipnet::Ipv4Net;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::TownshipSection;
use crate::store::secrets::{Password, SecretError, SecretKey};

/// Migrations of the `inventory` component; index + 1 is its version after applying.
pub const MIGRATIONS: &[&str] = &[
    // v1: inventory and credentials.
    r#"
CREATE TABLE township (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    code TEXT NOT NULL,
    name TEXT NOT NULL
);
CREATE TABLE village (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'village'
);
CREATE TABLE grid (
    code TEXT PRIMARY KEY,
    village_code TEXT NOT NULL REFERENCES village(code) ON DELETE CASCADE,
    name TEXT NOT NULL
);
CREATE TABLE device (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,                  -- camera | speaker
    state TEXT NOT NULL,                 -- discovered | adopted | ignored
    endpoint_ref TEXT UNIQUE,
    mac TEXT,
    gb_id TEXT,
    name TEXT,
    manufacturer TEXT,
    model TEXT,
    firmware TEXT,
    serial TEXT,
    address TEXT,
    xaddrs TEXT NOT NULL DEFAULT '[]',
    scopes TEXT NOT NULL DEFAULT '[]',
    types TEXT NOT NULL DEFAULT '[]',
    via TEXT,
    village_code TEXT REFERENCES village(code) ON DELETE SET NULL,
    grid_code TEXT REFERENCES grid(code) ON DELETE SET NULL,
    location TEXT,
    notes TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    inventory TEXT,
    inventory_at TEXT,
    probe_error_kind TEXT,
    probe_error TEXT,
    probe_error_at TEXT,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    last_bye TEXT
);
CREATE UNIQUE INDEX device_mac ON device(mac) WHERE mac IS NOT NULL;
CREATE INDEX device_village ON device(village_code, grid_code);
CREATE TABLE credential_group (
    name TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    password_sealed BLOB NOT NULL,
    subnets TEXT NOT NULL DEFAULT '[]',
    mac_prefixes TEXT NOT NULL DEFAULT '[]',
    priority INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE device_credential (
    device_id TEXT PRIMARY KEY REFERENCES device(id) ON DELETE CASCADE,
    username TEXT NOT NULL,
    password_sealed BLOB NOT NULL
);
"#,
    // v2: how a discovered speaker would be driven (kind and address in the
    // speaker inventory's form), so adopting it needs no typing.
    r#"
ALTER TABLE device ADD COLUMN driver TEXT;
ALTER TABLE device ADD COLUMN driver_address TEXT;
"#,
];

/// Migrations of the `health` component: current health per camera,
/// transitions, and sampled history (pruned by retention).
pub const HEALTH_MIGRATIONS: &[&str] = &[r#"
CREATE TABLE health_state (
    device_id TEXT PRIMARY KEY REFERENCES device(id) ON DELETE CASCADE,
    health TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE health_event (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL REFERENCES device(id) ON DELETE CASCADE,
    at TEXT NOT NULL,
    verdict_from TEXT NOT NULL,
    verdict_to TEXT NOT NULL,
    reasons TEXT NOT NULL,
    rung_from TEXT NOT NULL,
    rung_to TEXT NOT NULL
);
CREATE INDEX health_event_device ON health_event(device_id, at);
CREATE INDEX health_event_at ON health_event(at);
CREATE TABLE health_history (
    device_id TEXT NOT NULL REFERENCES device(id) ON DELETE CASCADE,
    at TEXT NOT NULL,
    rung TEXT NOT NULL,
    verdict TEXT NOT NULL,
    reasons TEXT NOT NULL,
    clock_offset_ms INTEGER,
    fps REAL,
    bitrate_kbps REAL,
    loss_pct REAL
);
CREATE INDEX health_history_device ON health_history(device_id, at);
CREATE INDEX health_history_at ON health_history(at);
"#];

/// A recorded verdict change.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HealthEvent {
    /// Device id.
    pub device_id: String,
    /// When.
    pub at: String,
    /// Verdict before (`ok`, `degraded`, `offline`).
    pub verdict_from: String,
    /// Verdict after.
    pub verdict_to: String,
    /// Degraded reasons after.
    pub reasons: Vec<String>,
    /// Rung before.
    pub rung_from: String,
    /// Rung after.
    pub rung_to: String,
}

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

type Result<T> = std::result::Result<T, StoreError>;

/// A device's place in the adoption flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceState {
    /// Found by discovery, waiting in the inbox.
    Discovered,
    /// Adopted by a technician (or a rule).
    Adopted,
    /// Dismissed from the inbox.
    Ignored,
}

impl DeviceState {
    fn as_str(self) -> &'static str {
        match self {
            DeviceState::Discovered => "discovered",
            DeviceState::Adopted => "adopted",
            DeviceState::Ignored => "ignored",
        }
    }
    fn parse(s: &str) -> Self {
        match s {
            "adopted" => DeviceState::Adopted,
            "ignored" => DeviceState::Ignored,
            _ => DeviceState::Discovered,
        }
    }
}

/// What discovery saw of a camera.
#[derive(Debug, Clone, Default)]
pub struct Sighting {
    /// WS-Discovery EndpointReference (`urn:uuid:...`).
    pub endpoint_ref: String,
    /// Source IPv4 address of the answer.
    pub address: Option<Ipv4Addr>,
    /// Advertised service addresses.
    pub xaddrs: Vec<String>,
    /// Advertised scopes.
    pub scopes: Vec<String>,
    /// Advertised types.
    pub types: Vec<String>,
    /// `multicast`, `unicast` or `hello`.
    pub via: String,
    /// Name from the scopes, if any.
    pub name: Option<String>,
}

/// A device row as listed (never with credentials).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Device {
    /// Our id (`cam-…`).
    pub id: String,
    /// `camera` or `speaker`.
    pub kind: String,
    /// Adoption state.
    pub state: DeviceState,
    /// WS-Discovery EndpointReference.
    pub endpoint_ref: Option<String>,
    /// MAC, `aa:bb:cc:dd:ee:ff`.
    pub mac: Option<String>,
    /// Name (from scopes or set by a technician).
    pub name: Option<String>,
    /// Maker.
    pub manufacturer: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Firmware version.
    pub firmware: Option<String>,
    /// Serial number.
    pub serial: Option<String>,
    /// IPv4 address.
    pub address: Option<String>,
    /// Service addresses.
    pub xaddrs: Vec<String>,
    /// Scopes.
    pub scopes: Vec<String>,
    /// How it was last seen.
    pub via: Option<String>,
    /// Village code.
    pub village: Option<String>,
    /// Grid code.
    pub grid: Option<String>,
    /// Whether a login is known for it (device or group); never the login itself.
    pub has_credentials: bool,
    /// The last full ONVIF inventory (credential-free), as JSON.
    pub inventory: Option<serde_json::Value>,
    /// When the inventory was fetched.
    pub inventory_at: Option<String>,
    /// Kind of the last probe error (`auth`, `timeout`, …).
    pub probe_error_kind: Option<String>,
    /// The last probe error.
    pub probe_error: Option<String>,
    /// First discovery.
    pub first_seen: String,
    /// Last discovery or successful probe.
    pub last_seen: String,
    /// When the device last said Bye.
    pub last_bye: Option<String>,
    /// Speakers: the driver kind discovery inferred (`sip`, `rtp`, `axis`),
    /// if any; adopting the speaker puts it in the speaker inventory with it.
    #[serde(default)]
    pub driver: Option<String>,
    /// Speakers: the address for that driver (`sip:horn@IP:PORT`,
    /// `IP:PORT`), if discovery could tell.
    #[serde(default)]
    pub driver_address: Option<String>,
}

/// Fields of an inventory that the store indexes.
#[derive(Debug, Clone, Default)]
pub struct InventorySummary {
    /// MAC, normalised.
    pub mac: Option<String>,
    /// Maker.
    pub manufacturer: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Firmware.
    pub firmware: Option<String>,
    /// Serial.
    pub serial: Option<String>,
}

/// A login for one device.
#[derive(Debug, Clone)]
pub struct Login {
    /// Username.
    pub username: String,
    /// Password (prints as `***`).
    pub password: Password,
    /// Where it came from: `device` or `group:NAME`.
    pub source: String,
}

/// Result of recording a sighting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upserted {
    /// The device id.
    pub id: String,
    /// First time we see it.
    pub new: bool,
}

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    key: Arc<SecretKey>,
}

fn now_str() -> String {
    fmt_time(OffsetDateTime::now_utc())
}

/// RFC 3339 with second precision, UTC.
pub fn fmt_time(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Our id for a camera: `cam-` and 10 hex digits of a hash of its
/// EndpointReference (stable across address changes).
pub fn camera_id(endpoint_ref: &str) -> String {
    format!("cam-{:010x}", fnv40(endpoint_ref))
}

/// Our id of a discovered speaker: `spk-` plus the same hash as
/// [`camera_id`] over its SSDP USN or WS-Discovery EndpointReference.
pub fn speaker_id(usn_or_epr: &str) -> String {
    format!("spk-{:010x}", fnv40(usn_or_epr))
}

fn fnv40(key: &str) -> u64 {
    // FNV-1a 64: stable across Rust versions, unlike DefaultHasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.trim().to_ascii_lowercase().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h & 0xff_ffff_ffff
}

impl Store {
    /// Opens (creating if needed) `data_dir/tgw.db` and the key file, and
    /// applies migrations.
    pub fn open(data_dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Invalid(format!(
                "cannot create data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        let key = SecretKey::load_or_create(data_dir)?;
        let conn = Connection::open(data_dir.join("tgw.db"))?;
        Self::with_connection(conn, key)
    }

    /// Opens an in-memory store (tests).
    pub fn open_in_memory(key_dir: &Path) -> Result<Store> {
        let key = SecretKey::load_or_create(key_dir)?;
        Self::with_connection(Connection::open_in_memory()?, key)
    }

    fn with_connection(mut conn: Connection, key: SecretKey) -> Result<Store> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        apply_migrations(&mut conn, "inventory", MIGRATIONS)?;
        apply_migrations(&mut conn, "health", HEALTH_MIGRATIONS)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            key: Arc::new(key),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A poisoned lock means a panic mid-statement; SQLite rolled back, so
        // the connection itself is still consistent.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The inventory schema version on disk.
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self.conn().query_row(
            "SELECT version FROM schema_version WHERE component = 'inventory'",
            [],
            |r| r.get(0),
        )?)
    }

    /// Runs `f` with the connection (for components that keep their own
    /// tables in this database, e.g. health history).
    pub fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        f(&mut self.conn())
    }

    /// The credential key, for components that seal their own secrets in
    /// their own tables (e.g. speaker logins in [`crate::speakers`]).
    pub(crate) fn secret_key(&self) -> &SecretKey {
        &self.key
    }

    /// Makes the township, villages and grids match the configuration.
    /// Villages and grids no longer configured are removed; their devices
    /// keep existing, unassigned.
    pub fn sync_township(&self, t: &TownshipSection) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO township (id, code, name) VALUES (1, ?1, ?2)
             ON CONFLICT(id) DO UPDATE SET code = excluded.code, name = excluded.name",
            params![t.code.as_str(), t.name],
        )?;
        let mut keep_v = Vec::new();
        let mut keep_g = Vec::new();
        for v in &t.villages {
            tx.execute(
                "INSERT INTO village (code, name, kind) VALUES (?1, ?2, ?3)
                 ON CONFLICT(code) DO UPDATE SET name = excluded.name, kind = excluded.kind",
                params![v.code.as_str(), v.name, v.kind.as_str()],
            )?;
            keep_v.push(v.code.0.clone());
            for g in &v.grids {
                tx.execute(
                    "INSERT INTO grid (code, village_code, name) VALUES (?1, ?2, ?3)
                     ON CONFLICT(code) DO UPDATE SET village_code = excluded.village_code, name = excluded.name",
                    params![g.code.as_str(), v.code.as_str(), g.name],
                )?;
                keep_g.push(g.code.0.clone());
            }
        }
        let kv = serde_json::to_string(&keep_v).unwrap_or_default();
        let kg = serde_json::to_string(&keep_g).unwrap_or_default();
        tx.execute(
            "DELETE FROM grid WHERE code NOT IN (SELECT value FROM json_each(?1))",
            [kg],
        )?;
        tx.execute(
            "DELETE FROM village WHERE code NOT IN (SELECT value FROM json_each(?1))",
            [kv],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Villages with their grids, in configuration order of codes.
    pub fn villages(&self) -> Result<Vec<VillageRow>> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT code, name, kind FROM village ORDER BY code")?;
        let mut out: Vec<VillageRow> = st
            .query_map([], |r| {
                Ok(VillageRow {
                    code: r.get(0)?,
                    name: r.get(1)?,
                    kind: r.get(2)?,
                    grids: Vec::new(),
                })
            })?
            .collect::<std::result::Result<_, _>>()?;
        let mut gs =
            conn.prepare("SELECT code, name FROM grid WHERE village_code = ?1 ORDER BY code")?;
        for v in &mut out {
            v.grids = gs
                .query_map([&v.code], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<std::result::Result<_, _>>()?;
        }
        Ok(out)
    }

    /// Records a WS-Discovery sighting: inserts a new camera into the inbox
    /// or refreshes the known one with the same EndpointReference.
    pub fn record_sighting(&self, s: &Sighting) -> Result<Upserted> {
        let now = now_str();
        let conn = self.conn();
        let xaddrs = serde_json::to_string(&s.xaddrs).unwrap_or_default();
        let scopes = serde_json::to_string(&s.scopes).unwrap_or_default();
        let types = serde_json::to_string(&s.types).unwrap_or_default();
        let address = s.address.map(|a| a.to_string());
        let existing: Option<String> = conn
            .query_row(
                "SELECT id FROM device WHERE endpoint_ref = ?1",
                [&s.endpoint_ref],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = existing {
            conn.execute(
                "UPDATE device SET address = COALESCE(?2, address), xaddrs = ?3, scopes = ?4, types = ?5,
                 via = ?6, name = COALESCE(name, ?7), last_seen = ?8 WHERE id = ?1",
                params![id, address, xaddrs, scopes, types, s.via, s.name, now],
            )?;
            return Ok(Upserted { id, new: false });
        }
        let id = camera_id(&s.endpoint_ref);
        conn.execute(
            "INSERT INTO device (id, kind, state, endpoint_ref, name, address, xaddrs, scopes, types, via, first_seen, last_seen)
             VALUES (?1, 'camera', 'discovered', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
            params![id, s.endpoint_ref, s.name, address, xaddrs, scopes, types, s.via, now],
        )?;
        Ok(Upserted { id, new: true })
    }

    /// Records a loudspeaker that answered discovery (SSDP, mDNS or
    /// WS-Discovery): a `kind = 'speaker'`, `state = 'discovered'` row keyed
    /// by its USN, mDNS instance name or EndpointReference (kept in
    /// `endpoint_ref`), its LOCATION / XAddr in `xaddrs`, its SERVER banner
    /// (or model) as `model` until someone names it, and `driver` — the
    /// driver kind and address discovery inferred — when known.
    /// A known key only refreshes address, location, via, driver (when
    /// given) and `last_seen`.
    pub fn record_speaker_sighting(
        &self,
        usn_or_epr: &str,
        address: Option<Ipv4Addr>,
        location: Option<&str>,
        server: Option<&str>,
        via: &str,
        driver: Option<(&str, &str)>,
    ) -> Result<Upserted> {
        let (driver, driver_address) = driver.unzip();
        let now = now_str();
        let conn = self.conn();
        let xaddrs =
            serde_json::to_string(&location.into_iter().collect::<Vec<_>>()).unwrap_or_default();
        let address = address.map(|a| a.to_string());
        let existing: Option<String> = conn
            .query_row(
                "SELECT id FROM device WHERE endpoint_ref = ?1",
                [usn_or_epr],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = existing {
            conn.execute(
                "UPDATE device SET address = COALESCE(?2, address), xaddrs = ?3, via = ?4,
                 model = COALESCE(model, ?5), last_seen = ?6,
                 driver = COALESCE(?7, driver),
                 driver_address = CASE WHEN ?7 IS NULL THEN driver_address ELSE ?8 END
                 WHERE id = ?1",
                params![
                    id,
                    address,
                    xaddrs,
                    via,
                    server,
                    now,
                    driver,
                    driver_address
                ],
            )?;
            return Ok(Upserted { id, new: false });
        }
        let id = speaker_id(usn_or_epr);
        conn.execute(
            "INSERT INTO device (id, kind, state, endpoint_ref, address, xaddrs, via, model, first_seen, last_seen,
                                 driver, driver_address)
             VALUES (?1, 'speaker', 'discovered', ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9)",
            params![id, usn_or_epr, address, xaddrs, via, server, now, driver, driver_address],
        )?;
        Ok(Upserted { id, new: true })
    }

    /// Notes that a camera said Bye.
    pub fn record_bye(&self, endpoint_ref: &str) -> Result<Option<String>> {
        let conn = self.conn();
        let id: Option<String> = conn
            .query_row(
                "UPDATE device SET last_bye = ?2 WHERE endpoint_ref = ?1 RETURNING id",
                params![endpoint_ref, now_str()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(id)
    }

    /// Stores a successful ONVIF inventory. When the camera's MAC already
    /// belongs to another row (the same camera re-announced under a new
    /// EndpointReference, e.g. after a factory reset), the two rows are merged
    /// into the older one, which keeps its village, grid and credentials.
    /// Returns the id the device now has.
    pub fn record_inventory(
        &self,
        id: &str,
        summary: &InventorySummary,
        inventory: &serde_json::Value,
    ) -> Result<String> {
        let now = now_str();
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut target = id.to_string();
        if let Some(mac) = &summary.mac {
            let other: Option<(String, Option<String>)> = tx
                .query_row(
                    "SELECT id, endpoint_ref FROM device WHERE mac = ?1 AND id <> ?2",
                    params![mac, id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if let Some((older, _)) = other {
                // Move the newer sighting's discovery facts onto the older row.
                let (epr, address, xaddrs, scopes, types, via): (
                    Option<String>,
                    Option<String>,
                    String,
                    String,
                    String,
                    Option<String>,
                ) = tx.query_row(
                    "SELECT endpoint_ref, address, xaddrs, scopes, types, via FROM device WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
                )?;
                tx.execute("DELETE FROM device WHERE id = ?1", [id])?;
                tx.execute(
                    "UPDATE device SET endpoint_ref = ?2, address = COALESCE(?3, address), xaddrs = ?4,
                     scopes = ?5, types = ?6, via = ?7 WHERE id = ?1",
                    params![older, epr, address, xaddrs, scopes, types, via],
                )?;
                target = older;
            }
        }
        let inv = serde_json::to_string(inventory).unwrap_or_default();
        let n = tx.execute(
            "UPDATE device SET mac = COALESCE(?2, mac), manufacturer = ?3, model = ?4, firmware = ?5, serial = ?6,
             inventory = ?7, inventory_at = ?8, last_seen = ?8,
             probe_error_kind = NULL, probe_error = NULL, probe_error_at = NULL WHERE id = ?1",
            params![
                target,
                summary.mac,
                summary.manufacturer,
                summary.model,
                summary.firmware,
                summary.serial,
                inv,
                now
            ],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "device",
                id: target,
            });
        }
        tx.commit()?;
        Ok(target)
    }

    /// Stores why the last probe failed (kind is a short label such as `auth`).
    pub fn record_probe_error(&self, id: &str, kind: &str, detail: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE device SET probe_error_kind = ?2, probe_error = ?3, probe_error_at = ?4 WHERE id = ?1",
            params![id, kind, detail, now_str()],
        )?;
        Ok(())
    }

    /// Adopts a device into a village (and optionally a grid of it).
    pub fn adopt(&self, id: &str, village: Option<&str>, grid: Option<&str>) -> Result<()> {
        let conn = self.conn();
        if let Some(g) = grid {
            let gv: Option<String> = conn
                .query_row("SELECT village_code FROM grid WHERE code = ?1", [g], |r| {
                    r.get(0)
                })
                .optional()?;
            match (gv, village) {
                (None, _) => {
                    return Err(StoreError::NotFound {
                        what: "grid",
                        id: g.into(),
                    });
                }
                (Some(gv), Some(v)) if gv != v => {
                    return Err(StoreError::Invalid(format!(
                        "grid `{g}` belongs to village `{gv}`, not `{v}`"
                    )));
                }
                _ => {}
            }
        }
        if let Some(v) = village {
            let exists: bool = conn.query_row(
                "SELECT EXISTS(SELECT 1 FROM village WHERE code = ?1)",
                [v],
                |r| r.get(0),
            )?;
            if !exists {
                return Err(StoreError::NotFound {
                    what: "village",
                    id: v.into(),
                });
            }
        }
        let village = match (village, grid) {
            (None, Some(g)) => conn
                .query_row("SELECT village_code FROM grid WHERE code = ?1", [g], |r| {
                    r.get(0)
                })
                .optional()?,
            (v, _) => v.map(str::to_string),
        };
        let n = conn.execute(
            "UPDATE device SET state = 'adopted', village_code = ?2, grid_code = ?3 WHERE id = ?1",
            params![id, village, grid],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "device",
                id: id.into(),
            });
        }
        Ok(())
    }

    /// Dismisses a device from the inbox.
    pub fn ignore(&self, id: &str) -> Result<()> {
        let n = self
            .conn()
            .execute("UPDATE device SET state = 'ignored' WHERE id = ?1", [id])?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "device",
                id: id.into(),
            });
        }
        Ok(())
    }

    /// Sets a device's own login (overrides any group).
    pub fn set_device_login(&self, id: &str, username: &str, password: &Password) -> Result<()> {
        let sealed = self.key.seal(&format!("device:{id}"), password);
        let conn = self.conn();
        let exists: bool = conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM device WHERE id = ?1)",
            [id],
            |r| r.get(0),
        )?;
        if !exists {
            return Err(StoreError::NotFound {
                what: "device",
                id: id.into(),
            });
        }
        conn.execute(
            "INSERT INTO device_credential (device_id, username, password_sealed) VALUES (?1, ?2, ?3)
             ON CONFLICT(device_id) DO UPDATE SET username = excluded.username, password_sealed = excluded.password_sealed",
            params![id, username, sealed],
        )?;
        Ok(())
    }

    /// Creates or replaces a credential group.
    pub fn set_group(
        &self,
        name: &str,
        username: &str,
        password: &Password,
        subnets: &[Ipv4Net],
        mac_prefixes: &[String],
        priority: i32,
    ) -> Result<()> {
        let sealed = self.key.seal(&format!("group:{name}"), password);
        let subnets: Vec<String> = subnets.iter().map(|n| n.to_string()).collect();
        self.conn().execute(
            "INSERT INTO credential_group (name, username, password_sealed, subnets, mac_prefixes, priority)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(name) DO UPDATE SET username = excluded.username, password_sealed = excluded.password_sealed,
               subnets = excluded.subnets, mac_prefixes = excluded.mac_prefixes, priority = excluded.priority",
            params![
                name,
                username,
                sealed,
                serde_json::to_string(&subnets).unwrap_or_default(),
                serde_json::to_string(mac_prefixes).unwrap_or_default(),
                priority
            ],
        )?;
        Ok(())
    }

    /// The login to use for a device: its own, else the highest-priority
    /// credential group whose subnet contains its address or whose MAC prefix
    /// matches its MAC.
    pub fn login_for(&self, id: &str) -> Result<Option<Login>> {
        let conn = self.conn();
        let own: Option<(String, Vec<u8>)> = conn
            .query_row(
                "SELECT username, password_sealed FROM device_credential WHERE device_id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((username, sealed)) = own {
            let password = self.key.open(&format!("device:{id}"), &sealed)?;
            return Ok(Some(Login {
                username,
                password,
                source: "device".into(),
            }));
        }
        let (address, mac): (Option<String>, Option<String>) = match conn
            .query_row("SELECT address, mac FROM device WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?
        {
            Some(x) => x,
            None => return Ok(None),
        };
        let address: Option<Ipv4Addr> = address.and_then(|a| a.parse().ok());
        let mut st = conn.prepare(
            "SELECT name, username, password_sealed, subnets, mac_prefixes FROM credential_group ORDER BY priority DESC, name",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        for row in rows {
            let (name, username, sealed, subnets, prefixes) = row?;
            let subnets: Vec<String> = serde_json::from_str(&subnets).unwrap_or_default();
            let prefixes: Vec<String> = serde_json::from_str(&prefixes).unwrap_or_default();
            let by_net = address.is_some_and(|a| {
                subnets
                    .iter()
                    .filter_map(|s| s.parse::<Ipv4Net>().ok())
                    .any(|n| n.contains(&a))
            });
            let by_mac = mac
                .as_deref()
                .is_some_and(|m| prefixes.iter().any(|p| m.starts_with(p.as_str())));
            if by_net || by_mac {
                let password = self.key.open(&format!("group:{name}"), &sealed)?;
                return Ok(Some(Login {
                    username,
                    password,
                    source: format!("group:{name}"),
                }));
            }
        }
        Ok(None)
    }

    /// One device by id.
    pub fn device(&self, id: &str) -> Result<Option<Device>> {
        let mut v = self.query_devices("WHERE d.id = ?1", &[&id])?;
        Ok(v.pop())
    }

    /// Devices, optionally only those in one state, ordered by village then id.
    pub fn devices(&self, state: Option<DeviceState>) -> Result<Vec<Device>> {
        match state {
            Some(s) => self.query_devices("WHERE d.state = ?1", &[&s.as_str()]),
            None => self.query_devices("", &[]),
        }
    }

    fn query_devices(&self, filter: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<Device>> {
        let conn = self.conn();
        let sql = format!(
            "SELECT d.id, d.kind, d.state, d.endpoint_ref, d.mac, d.name, d.manufacturer, d.model, d.firmware, d.serial,
                    d.address, d.xaddrs, d.scopes, d.via, d.village_code, d.grid_code,
                    EXISTS(SELECT 1 FROM device_credential c WHERE c.device_id = d.id),
                    d.inventory, d.inventory_at, d.probe_error_kind, d.probe_error, d.first_seen, d.last_seen, d.last_bye,
                    d.driver, d.driver_address
             FROM device d {filter} ORDER BY d.village_code IS NULL, d.village_code, d.id"
        );
        let mut st = conn.prepare(&sql)?;
        let rows = st.query_map(args, |r| {
            Ok((
                Device {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    state: DeviceState::parse(&r.get::<_, String>(2)?),
                    endpoint_ref: r.get(3)?,
                    mac: r.get(4)?,
                    name: r.get(5)?,
                    manufacturer: r.get(6)?,
                    model: r.get(7)?,
                    firmware: r.get(8)?,
                    serial: r.get(9)?,
                    address: r.get(10)?,
                    xaddrs: Vec::new(),
                    scopes: Vec::new(),
                    via: r.get(13)?,
                    village: r.get(14)?,
                    grid: r.get(15)?,
                    has_credentials: r.get(16)?,
                    inventory: None,
                    inventory_at: r.get(18)?,
                    probe_error_kind: r.get(19)?,
                    probe_error: r.get(20)?,
                    first_seen: r.get(21)?,
                    last_seen: r.get(22)?,
                    last_bye: r.get(23)?,
                    driver: r.get(24)?,
                    driver_address: r.get(25)?,
                },
                r.get::<_, String>(11)?,
                r.get::<_, String>(12)?,
                r.get::<_, Option<String>>(17)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mut d, xaddrs, scopes, inv) = row?;
            d.xaddrs = parse_json(&d.id, "xaddrs", &xaddrs)?;
            d.scopes = parse_json(&d.id, "scopes", &scopes)?;
            d.inventory = match inv {
                Some(s) => Some(parse_json(&d.id, "inventory", &s)?),
                None => None,
            };
            out.push(d);
        }
        drop(st);
        drop(conn);
        // has_credentials also counts credential groups.
        for d in &mut out {
            if !d.has_credentials {
                d.has_credentials = self.group_matches(d)?;
            }
        }
        Ok(out)
    }

    fn group_matches(&self, d: &Device) -> Result<bool> {
        let conn = self.conn();
        let mut st = conn.prepare_cached("SELECT subnets, mac_prefixes FROM credential_group")?;
        let address: Option<Ipv4Addr> = d.address.as_deref().and_then(|a| a.parse().ok());
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (subnets, prefixes) = row?;
            let subnets: Vec<String> = serde_json::from_str(&subnets).unwrap_or_default();
            let prefixes: Vec<String> = serde_json::from_str(&prefixes).unwrap_or_default();
            if address.is_some_and(|a| {
                subnets
                    .iter()
                    .filter_map(|s| s.parse::<Ipv4Net>().ok())
                    .any(|n| n.contains(&a))
            }) || d
                .mac
                .as_deref()
                .is_some_and(|m| prefixes.iter().any(|p| m.starts_with(p.as_str())))
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

impl Store {
    /// Saves a camera's current health (JSON of [`tgw_core::health::Health`]).
    pub fn save_health(&self, id: &str, health: &tgw_core::health::Health) -> Result<()> {
        let json = serde_json::to_string(health).unwrap_or_default();
        self.conn().execute(
            "INSERT INTO health_state (device_id, health, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(device_id) DO UPDATE SET health = excluded.health, updated_at = excluded.updated_at",
            params![id, json, now_str()],
        )?;
        Ok(())
    }

    /// The saved health of every camera.
    pub fn all_health(&self) -> Result<Vec<(String, tgw_core::health::Health)>> {
        let conn = self.conn();
        let mut st =
            conn.prepare("SELECT device_id, health FROM health_state ORDER BY device_id")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, json) = row?;
            // A row written by an older version that no longer parses is
            // skipped: the camera starts from scratch.
            if let Ok(h) = serde_json::from_str(&json) {
                out.push((id, h));
            }
        }
        Ok(out)
    }

    /// Records a verdict or rung change.
    pub fn record_transition(&self, id: &str, t: &tgw_core::health::Transition) -> Result<()> {
        let reasons: Vec<&str> = match &t.to {
            tgw_core::health::Verdict::Degraded(r) => r.iter().map(|r| r.as_str()).collect(),
            _ => Vec::new(),
        };
        self.conn().execute(
            "INSERT INTO health_event (device_id, at, verdict_from, verdict_to, reasons, rung_from, rung_to)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id,
                fmt_time(t.at),
                t.from.label(),
                t.to.label(),
                serde_json::to_string(&reasons).unwrap_or_default(),
                t.rung_from.as_str(),
                t.rung_to.as_str()
            ],
        )?;
        Ok(())
    }

    /// Appends a history point.
    pub fn record_history(&self, id: &str, h: &tgw_core::health::Health) -> Result<()> {
        let reasons: Vec<&str> = match &h.verdict {
            tgw_core::health::Verdict::Degraded(r) => r.iter().map(|r| r.as_str()).collect(),
            _ => Vec::new(),
        };
        let s = h.last_sample.as_ref();
        self.conn().execute(
            "INSERT INTO health_history (device_id, at, rung, verdict, reasons, clock_offset_ms, fps, bitrate_kbps, loss_pct)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                id,
                now_str(),
                h.rung.as_str(),
                h.verdict.label(),
                serde_json::to_string(&reasons).unwrap_or_default(),
                h.clock_offset_ms,
                s.map(|s| s.fps),
                s.map(|s| s.bitrate_kbps),
                s.map(|s| s.loss_pct)
            ],
        )?;
        Ok(())
    }

    /// Deletes history and events older than `days`; returns rows deleted.
    pub fn prune_health(&self, days: u32) -> Result<usize> {
        let cutoff = fmt_time(OffsetDateTime::now_utc() - time::Duration::days(i64::from(days)));
        let conn = self.conn();
        let a = conn.execute("DELETE FROM health_history WHERE at < ?1", [&cutoff])?;
        let b = conn.execute("DELETE FROM health_event WHERE at < ?1", [&cutoff])?;
        Ok(a + b)
    }

    /// Latest transitions, newest first; of one camera when `device` is given.
    pub fn health_events(&self, device: Option<&str>, limit: usize) -> Result<Vec<HealthEvent>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT device_id, at, verdict_from, verdict_to, reasons, rung_from, rung_to FROM health_event
             WHERE ?1 IS NULL OR device_id = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = st.query_map(params![device, limit as i64], |r| {
            Ok(HealthEvent {
                device_id: r.get(0)?,
                at: r.get(1)?,
                verdict_from: r.get(2)?,
                verdict_to: r.get(3)?,
                reasons: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or_default(),
                rung_from: r.get(5)?,
                rung_to: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }
}

/// A village with its grids.
#[derive(Debug, Clone, Serialize)]
pub struct VillageRow {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// `village` or `community`.
    pub kind: String,
    /// (code, name) of each grid.
    pub grids: Vec<(String, String)>,
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

/// Applies a component's migrations that are not yet applied. `migrations[i]`
/// brings the component to version `i + 1`. A database whose version of the
/// component is newer than this binary knows is refused.
pub fn apply_migrations(conn: &mut Connection, component: &str, migrations: &[&str]) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL)",
    )?;
    let current: i64 = conn
        .query_row(
            "SELECT version FROM schema_version WHERE component = ?1",
            [component],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let known = migrations.len() as i64;
    if current > known {
        return Err(StoreError::TooNew {
            found: current,
            known,
        });
    }
    for (i, sql) in migrations.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_version (component, version) VALUES (?1, ?2)
             ON CONFLICT(component) DO UPDATE SET version = excluded.version",
            params![component, (i + 1) as i64],
        )?;
        tx.commit()?;
        tracing::info!(component, version = i + 1, "database migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let cfg = Config::parse(include_str!("../../../config/gateway.example.toml"), "x").unwrap();
        s.sync_township(&cfg.township).unwrap();
        (dir, s)
    }

    fn sighting(epr: &str, ip: [u8; 4]) -> Sighting {
        Sighting {
            endpoint_ref: epr.into(),
            address: Some(Ipv4Addr::from(ip)),
            xaddrs: vec![format!(
                "http://{}.{}.{}.{}/onvif/device_service",
                ip[0], ip[1], ip[2], ip[3]
            )],
            via: "unicast".into(),
            ..Default::default()
        }
    }

    #[test]
    fn migrations_apply_once_and_reopen_is_idempotent() {
        let (dir, s) = store();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
        let mode: String = s
            .conn()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn newer_schema_is_refused() {
        let (dir, s) = store();
        s.conn()
            .execute(
                "UPDATE schema_version SET version = 99 WHERE component = 'inventory'",
                [],
            )
            .unwrap();
        drop(s);
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::TooNew { found: 99, .. })
        ));
    }

    #[test]
    fn sightings_dedupe_by_endpoint_reference() {
        let (_d, s) = store();
        let a = s
            .record_sighting(&sighting("urn:uuid:1", [10, 21, 3, 5]))
            .unwrap();
        assert!(a.new);
        let b = s
            .record_sighting(&sighting("urn:uuid:1", [10, 21, 3, 6]))
            .unwrap();
        assert_eq!(a.id, b.id);
        assert!(!b.new);
        let devs = s.devices(None).unwrap();
        assert_eq!(devs.len(), 1);
        assert_eq!(devs[0].address.as_deref(), Some("10.21.3.6"));
        assert_eq!(devs[0].state, DeviceState::Discovered);
    }

    #[test]
    fn same_mac_under_new_endpoint_reference_merges_into_the_older_row() {
        let (_d, s) = store();
        let a = s
            .record_sighting(&sighting("urn:uuid:old", [10, 21, 3, 5]))
            .unwrap();
        s.adopt(&a.id, Some("dongcun"), Some("dongcun-2")).unwrap();
        let inv = InventorySummary {
            mac: Some("44:19:b6:00:00:01".into()),
            ..Default::default()
        };
        s.record_inventory(&a.id, &inv, &serde_json::json!({}))
            .unwrap();
        // Factory reset: new EPR, same MAC.
        let b = s
            .record_sighting(&sighting("urn:uuid:new", [10, 21, 3, 7]))
            .unwrap();
        assert!(b.new);
        let kept = s
            .record_inventory(&b.id, &inv, &serde_json::json!({"x": 1}))
            .unwrap();
        assert_eq!(kept, a.id);
        let devs = s.devices(None).unwrap();
        assert_eq!(devs.len(), 1);
        assert_eq!(devs[0].endpoint_ref.as_deref(), Some("urn:uuid:new"));
        assert_eq!(devs[0].grid.as_deref(), Some("dongcun-2"));
        assert_eq!(devs[0].address.as_deref(), Some("10.21.3.7"));
    }

    #[test]
    fn adopt_checks_village_and_grid() {
        let (_d, s) = store();
        let a = s
            .record_sighting(&sighting("urn:uuid:1", [10, 21, 3, 5]))
            .unwrap();
        assert!(matches!(
            s.adopt(&a.id, Some("nowhere"), None),
            Err(StoreError::NotFound {
                what: "village",
                ..
            })
        ));
        assert!(matches!(
            s.adopt(&a.id, Some("xinhe"), Some("dongcun-1")),
            Err(StoreError::Invalid(_))
        ));
        s.adopt(&a.id, None, Some("dongcun-1")).unwrap();
        let d = s.device(&a.id).unwrap().unwrap();
        assert_eq!(
            (d.village.as_deref(), d.grid.as_deref()),
            (Some("dongcun"), Some("dongcun-1"))
        );
        assert!(matches!(
            s.adopt("cam-none", None, None),
            Err(StoreError::NotFound { .. })
        ));
    }

    #[test]
    fn logins_prefer_device_then_group_priority_and_are_encrypted() {
        let (dir, s) = store();
        let a = s
            .record_sighting(&sighting("urn:uuid:1", [10, 21, 3, 5]))
            .unwrap();
        assert!(s.login_for(&a.id).unwrap().is_none());
        let net: Ipv4Net = "10.21.3.0/24".parse().unwrap();
        s.set_group("low", "low", &Password::new("pw-low-123"), &[net], &[], 1)
            .unwrap();
        s.set_group(
            "high",
            "high",
            &Password::new("pw-high-456"),
            &[net],
            &[],
            5,
        )
        .unwrap();
        s.set_group(
            "mac",
            "mac",
            &Password::new("pw-mac-789"),
            &[],
            &["44:19:b6".into()],
            9,
        )
        .unwrap();
        let l = s.login_for(&a.id).unwrap().unwrap();
        assert_eq!(
            (l.username.as_str(), l.password.expose(), l.source.as_str()),
            ("high", "pw-high-456", "group:high")
        );
        assert!(s.device(&a.id).unwrap().unwrap().has_credentials);
        s.set_device_login(&a.id, "own", &Password::new("pw-own-000"))
            .unwrap();
        let l = s.login_for(&a.id).unwrap().unwrap();
        assert_eq!(
            (l.username.as_str(), l.password.expose()),
            ("own", "pw-own-000")
        );
        // Nothing readable on disk or in listings.
        drop(s);
        let raw = std::fs::read(dir.path().join("tgw.db")).unwrap_or_default();
        let wal = std::fs::read(dir.path().join("tgw.db-wal")).unwrap_or_default();
        for pw in ["pw-low-123", "pw-high-456", "pw-own-000"] {
            assert!(
                !raw.windows(pw.len()).any(|w| w == pw.as_bytes()),
                "{pw} in db"
            );
            assert!(
                !wal.windows(pw.len()).any(|w| w == pw.as_bytes()),
                "{pw} in wal"
            );
        }
    }

    #[test]
    fn sync_township_removes_unconfigured_villages_but_keeps_devices() {
        let (_d, s) = store();
        let a = s
            .record_sighting(&sighting("urn:uuid:1", [10, 21, 3, 5]))
            .unwrap();
        s.adopt(&a.id, Some("xinhe"), None).unwrap();
        let mut cfg =
            Config::parse(include_str!("../../../config/gateway.example.toml"), "x").unwrap();
        cfg.township.villages.retain(|v| v.code.as_str() != "xinhe");
        s.sync_township(&cfg.township).unwrap();
        assert_eq!(s.villages().unwrap().len(), 1);
        let d = s.device(&a.id).unwrap().unwrap();
        assert_eq!(d.village, None);
        assert_eq!(d.state, DeviceState::Adopted);
    }

    #[test]
    fn speaker_sightings_are_kind_speaker_and_dedup_by_usn() {
        let (_d, s) = store();
        let usn = "uuid:spk-1::urn:schemas-upnp-org:device:MediaRenderer:1";
        let a = s
            .record_speaker_sighting(
                usn,
                Some([10, 21, 3, 40].into()),
                Some("http://10.21.3.40/d.xml"),
                Some("AXIS C1310-E"),
                "ssdp",
                Some(("axis", "10.21.3.40:80")),
            )
            .unwrap();
        assert!(a.new);
        assert!(a.id.starts_with("spk-"), "{}", a.id);
        let b = s
            .record_speaker_sighting(usn, Some([10, 21, 3, 41].into()), None, None, "ssdp", None)
            .unwrap();
        assert_eq!(a.id, b.id);
        assert!(!b.new);
        let devs = s.devices(None).unwrap();
        assert_eq!(devs.len(), 1);
        assert_eq!(devs[0].kind, "speaker");
        assert_eq!(devs[0].state, DeviceState::Discovered);
        assert_eq!(devs[0].address.as_deref(), Some("10.21.3.41"));
        assert_eq!(devs[0].model.as_deref(), Some("AXIS C1310-E"));
        // A sighting without a driver keeps the one recorded before.
        assert_eq!(devs[0].driver.as_deref(), Some("axis"));
        assert_eq!(devs[0].driver_address.as_deref(), Some("10.21.3.40:80"));
        s.record_speaker_sighting(
            usn,
            None,
            None,
            None,
            "mdns",
            Some(("sip", "sip:horn@10.21.3.41:5060")),
        )
        .unwrap();
        let d = s.device(&a.id).unwrap().unwrap();
        assert_eq!(d.driver.as_deref(), Some("sip"));
        assert_eq!(
            d.driver_address.as_deref(),
            Some("sip:horn@10.21.3.41:5060")
        );
        assert_ne!(speaker_id(usn), camera_id(usn));
    }

    #[test]
    fn camera_ids_are_stable() {
        assert_eq!(camera_id("urn:uuid:ABC"), camera_id(" urn:uuid:abc "));
        assert_ne!(camera_id("urn:uuid:1"), camera_id("urn:uuid:2"));
        assert_eq!(camera_id("urn:uuid:1").len(), 14);
    }
}
