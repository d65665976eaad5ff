//! Camera clocks (component `clock_sync`): the last reading of the time
//! reference (校时 from a GB/T 28181 platform, `[gb28181] time_source`), so
//! that `tgw camera sync-time`, a process of its own, sends the time the
//! daemon's clock checks measure against; and when the automatic clock sync
//! last tried each camera, so its window (`clock_sync_min_interval_secs`)
//! outlives a restart.

use rusqlite::{OptionalExtension, params};

use super::{Result, Store};

/// Migrations of the `clock_sync` component.
pub const MIGRATIONS: &[&str] = &[
    // v1: the time reference's last reading (one row).
    r#"
CREATE TABLE time_reference (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    offset_ms INTEGER NOT NULL,          -- the reference minus our clock
    source TEXT NOT NULL,                -- who said so (a platform's name)
    read_at_ms INTEGER NOT NULL          -- when, by our clock (Unix ms)
);
"#,
    // v2: the automatic clock sync's last attempt per camera.
    r#"
CREATE TABLE clock_sync_attempt (
    device_id TEXT PRIMARY KEY REFERENCES device(id) ON DELETE CASCADE,
    at_ms INTEGER NOT NULL               -- when it started, by our clock (Unix ms)
);
"#,
];

/// A stored reading of the time reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReference {
    /// The reference minus our clock, ms.
    pub offset_ms: i64,
    /// Who said so.
    pub source: String,
    /// When it was read, Unix ms by our clock.
    pub read_at_ms: i64,
}

impl Store {
    /// Keeps the time reference's latest reading, stamped with the store's
    /// clock.
    pub fn save_time_reference(&self, offset_ms: i64, source: &str) -> Result<()> {
        let at = self.clock.now_ms();
        self.conn().execute(
            "INSERT INTO time_reference (id, offset_ms, source, read_at_ms) VALUES (1, ?1, ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET offset_ms = excluded.offset_ms,
                 source = excluded.source, read_at_ms = excluded.read_at_ms",
            params![offset_ms, source, at],
        )?;
        Ok(())
    }

    /// The time reference's latest reading, if any was kept.
    pub fn time_reference(&self) -> Result<Option<StoredReference>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT offset_ms, source, read_at_ms FROM time_reference WHERE id = 1",
                [],
                |r| {
                    Ok(StoredReference {
                        offset_ms: r.get(0)?,
                        source: r.get(1)?,
                        read_at_ms: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// The automatic clock sync started an attempt on camera `id` at
    /// `at_ms` (Unix ms, the sync's clock).
    pub fn record_clock_sync_attempt(&self, id: &str, at_ms: i64) -> Result<()> {
        self.conn().execute(
            "INSERT INTO clock_sync_attempt (device_id, at_ms) VALUES (?1, ?2)
             ON CONFLICT(device_id) DO UPDATE SET at_ms = excluded.at_ms",
            params![id, at_ms],
        )?;
        Ok(())
    }

    /// Every camera's last automatic clock sync attempt: (device id, Unix ms).
    pub fn clock_sync_attempts(&self) -> Result<Vec<(String, i64)>> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT device_id, at_ms FROM clock_sync_attempt")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}
