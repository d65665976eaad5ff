//! The schema: each component's ordered list of migrations and
//! [`apply_migrations`], which brings a component up to date one migration
//! per transaction and refuses a database newer than this binary.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Result, Store, StoreError};

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

/// Migrations of the `auth` component: users, sessions, API tokens and the
/// audit log.
pub const AUTH_MIGRATIONS: &[&str] = &[
    // v1: users, sessions, tokens, audit log.
    r#"
CREATE TABLE auth_user (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE auth_session (
    id_hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES auth_user(name) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    ip TEXT
);
CREATE TABLE auth_token (
    token_hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES auth_user(name) ON DELETE CASCADE,
    label TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    source TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    before TEXT,
    after TEXT,
    outcome TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log(at);
"#,
    // v2: refused logins counted per (user, address, outcome, minute) in
    // one row; API tokens get an id (list, revoke) and their last use.
    r#"
ALTER TABLE audit_log ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE audit_log ADD COLUMN last_at TEXT;
CREATE INDEX audit_log_counted ON audit_log(actor, source, outcome, at) WHERE last_at IS NOT NULL;
CREATE TABLE auth_token_v2 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash TEXT NOT NULL UNIQUE,
    user_name TEXT NOT NULL REFERENCES auth_user(name) ON DELETE CASCADE,
    label TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_used_at TEXT
);
INSERT INTO auth_token_v2 (token_hash, user_name, label, created_at)
    SELECT token_hash, user_name, label, created_at FROM auth_token ORDER BY created_at;
DROP TABLE auth_token;
ALTER TABLE auth_token_v2 RENAME TO auth_token;
CREATE INDEX auth_token_user ON auth_token(user_name);
"#,
];

/// Migrations of the `speakers` component.
pub const SPEAKER_MIGRATIONS: &[&str] = &[r#"
CREATE TABLE speaker_zone (
    name TEXT PRIMARY KEY,
    group_addr TEXT,
    port INTEGER,
    ttl INTEGER
);
CREATE TABLE speaker (
    id TEXT PRIMARY KEY,
    name TEXT,
    kind TEXT NOT NULL,
    address TEXT NOT NULL,
    village_code TEXT REFERENCES village(code) ON DELETE SET NULL,
    grid_code TEXT REFERENCES grid(code) ON DELETE SET NULL,
    zone TEXT REFERENCES speaker_zone(name) ON DELETE SET NULL,
    codec TEXT NOT NULL DEFAULT 'pcmu',
    volume INTEGER,
    username TEXT,
    password_sealed BLOB,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX speaker_village ON speaker(village_code, grid_code);
CREATE INDEX speaker_zone_idx ON speaker(zone);
"#];

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

impl Store {
    /// Applies a component's migrations (see [`apply_migrations`]) to this
    /// store's database.
    pub fn migrate(&self, component: &str, migrations: &[&str]) -> Result<()> {
        apply_migrations(&mut self.conn(), component, migrations)
    }

    /// The inventory schema version on disk.
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self.conn().query_row(
            "SELECT version FROM schema_version WHERE component = 'inventory'",
            [],
            |r| r.get(0),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::store;

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
}
