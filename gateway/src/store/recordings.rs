//! Recordings of what aired (component `recordings`): one row per recorded
//! emergency broadcast or live page, keyed by the broadcast's id, with the
//! file's name under `<data_dir>/recordings/`, its state and size.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Result, Store};

/// Migrations of the `recordings` component.
pub const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE recording (
    id TEXT PRIMARY KEY,                 -- the broadcast's (or live page's) id
    kind TEXT NOT NULL,                  -- emergency | live-page
    state TEXT NOT NULL,                 -- recording | done | failed
    file TEXT NOT NULL,                  -- name under <data_dir>/recordings
    format TEXT NOT NULL,                -- wav-mulaw-8k
    started_at TEXT NOT NULL,
    started_ms INTEGER NOT NULL,
    finished_at TEXT,
    samples INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    error TEXT
);
CREATE INDEX recording_started ON recording(started_ms);
"#];

/// One recording.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Recording {
    /// The broadcast's id.
    pub id: String,
    /// `emergency` or `live-page`.
    pub kind: String,
    /// `recording`, `done` or `failed`.
    pub state: String,
    /// File name under `<data_dir>/recordings`.
    #[serde(skip)]
    pub file: String,
    /// `wav-mulaw-8k`.
    pub format: String,
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// When it ended.
    pub finished_at: Option<String>,
    /// Length in milliseconds (8 kHz samples / 8).
    pub duration_ms: i64,
    /// File size.
    pub bytes: i64,
    /// Why it failed.
    pub error: Option<String>,
}

const COLS: &str = "id, kind, state, file, format, started_at, finished_at, samples, bytes, error";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Recording> {
    Ok(Recording {
        id: r.get(0)?,
        kind: r.get(1)?,
        state: r.get(2)?,
        file: r.get(3)?,
        format: r.get(4)?,
        started_at: r.get(5)?,
        finished_at: r.get(6)?,
        duration_ms: r.get::<_, i64>(7)? / 8,
        bytes: r.get(8)?,
        error: r.get(9)?,
    })
}

impl Store {
    /// A new recording in state `recording`; false when `id` already has one.
    pub fn recording_start(
        &self,
        id: &str,
        kind: &str,
        file: &str,
        started_at: &str,
        started_ms: i64,
    ) -> Result<bool> {
        let n = self.conn().execute(
            "INSERT INTO recording (id, kind, state, file, format, started_at, started_ms)
             VALUES (?1, ?2, 'recording', ?3, 'wav-mulaw-8k', ?4, ?5)
             ON CONFLICT(id) DO NOTHING",
            params![id, kind, file, started_at, started_ms],
        )?;
        Ok(n == 1)
    }

    /// Ends a recording: `done`, or `failed` with `error`.
    pub fn recording_end(
        &self,
        id: &str,
        finished_at: &str,
        samples: i64,
        bytes: i64,
        error: Option<&str>,
    ) -> Result<()> {
        self.conn().execute(
            "UPDATE recording SET state = ?2, finished_at = ?3, samples = ?4, bytes = ?5, error = ?6
             WHERE id = ?1",
            params![
                id,
                if error.is_some() { "failed" } else { "done" },
                finished_at,
                samples,
                bytes,
                error
            ],
        )?;
        Ok(())
    }

    /// One recording.
    pub fn recording(&self, id: &str) -> Result<Option<Recording>> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {COLS} FROM recording WHERE id = ?1"),
                [id],
                row,
            )
            .optional()?)
    }

    /// A page of recordings, newest first, and the total count.
    pub fn recordings(&self, limit: u32, offset: u32) -> Result<(Vec<Recording>, u64)> {
        let conn = self.conn();
        let total: i64 = conn.query_row("SELECT COUNT(*) FROM recording", [], |r| r.get(0))?;
        let mut st = conn.prepare(&format!(
            "SELECT {COLS} FROM recording ORDER BY started_ms DESC, id LIMIT ?1 OFFSET ?2"
        ))?;
        let rows = st
            .query_map(params![limit, offset], row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((rows, total.max(0) as u64))
    }

    /// Finished recordings to remove: those started before `before_ms`,
    /// then the oldest until the rest fit in `max_bytes`. Removes their
    /// rows and returns their files.
    pub fn recordings_prune(&self, before_ms: i64, max_bytes: i64) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, file, bytes, started_ms FROM recording WHERE state != 'recording'
             ORDER BY started_ms DESC, id",
        )?;
        let all = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut kept = 0i64;
        let mut gone = Vec::new();
        for (id, file, bytes, started) in all {
            if started < before_ms || kept + bytes > max_bytes {
                conn.execute("DELETE FROM recording WHERE id = ?1", [&id])?;
                gone.push(file);
            } else {
                kept += bytes;
            }
        }
        Ok(gone)
    }
}
