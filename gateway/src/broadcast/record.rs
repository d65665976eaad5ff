//! What the gateway remembers about broadcasts, in its SQLite store: each
//! broadcast, each horn's report and its history, which schedule
//! occurrences fired, the timetable document and small state blobs (the
//! early-warning desk, the nonces of signed commands).

use std::sync::Arc;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;

use crate::base::clock::Clock;
use crate::store::{Store, apply_migrations, fmt_time};

const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE broadcast (
    id TEXT PRIMARY KEY,
    origin TEXT NOT NULL,
    title TEXT NOT NULL,
    priority TEXT NOT NULL,
    targets TEXT NOT NULL,
    horns INTEGER NOT NULL,
    t0 TEXT,
    state TEXT NOT NULL,
    created_at TEXT NOT NULL,
    ended_at TEXT,
    detail TEXT
);
CREATE INDEX broadcast_created ON broadcast(created_at);
CREATE TABLE broadcast_horn (
    broadcast_id TEXT NOT NULL,
    speaker_id TEXT NOT NULL,
    state TEXT NOT NULL,
    at TEXT NOT NULL,
    detail TEXT,
    PRIMARY KEY (broadcast_id, speaker_id)
);
CREATE TABLE broadcast_event (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    broadcast_id TEXT NOT NULL,
    speaker_id TEXT,
    state TEXT NOT NULL,
    at TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX broadcast_event_b ON broadcast_event(broadcast_id);
CREATE TABLE schedule_fired (
    schedule_id TEXT NOT NULL,
    occurrence TEXT NOT NULL,
    broadcast_id TEXT,
    outcome TEXT NOT NULL,
    PRIMARY KEY (schedule_id, occurrence)
);
CREATE TABLE timetable_doc (
    version INTEGER PRIMARY KEY AUTOINCREMENT,
    doc TEXT NOT NULL,
    saved_at TEXT NOT NULL,
    saved_by TEXT NOT NULL
);
CREATE TABLE cap_alert (
    identifier TEXT PRIMARY KEY,
    sender TEXT NOT NULL,
    sent TEXT NOT NULL,
    msg_type TEXT NOT NULL,
    status TEXT NOT NULL,
    headline TEXT,
    received_at TEXT NOT NULL,
    via TEXT NOT NULL,
    decision TEXT NOT NULL,
    reason TEXT,
    broadcast_id TEXT
);
CREATE TABLE broadcast_kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"#];

/// A broadcast as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BroadcastRow {
    /// Id.
    pub id: String,
    /// `schedule:ID`, `emergency:USER`, `mqtt:KEY`, `cap:IDENTIFIER`, `operator:USER`.
    pub origin: String,
    /// Programme name or headline.
    pub title: String,
    /// Priority.
    pub priority: String,
    /// Targets as written.
    pub targets: Vec<String>,
    /// Horns reached.
    pub horns: u32,
    /// Start time (RFC 3339).
    pub t0: Option<String>,
    /// `queued`, `playing`, `done`, `cancelled`, `interrupted`.
    pub state: String,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Ended (RFC 3339).
    pub ended_at: Option<String>,
    /// Per-state counts of its horns.
    pub counts: std::collections::BTreeMap<String, u32>,
}

/// One horn's report in a broadcast.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HornRow {
    /// Speaker id.
    pub speaker: String,
    /// Last state.
    pub state: String,
    /// When (RFC 3339).
    pub at: String,
    /// Details (skew, reason, by).
    pub detail: Option<Value>,
}

/// A received CAP alert and what it caused.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapRow {
    /// CAP identifier.
    pub identifier: String,
    /// Sender.
    pub sender: String,
    /// Sent (as in the alert).
    pub sent: String,
    /// Alert / Update / Cancel.
    pub msg_type: String,
    /// Actual / Exercise / Test ...
    pub status: String,
    /// First headline.
    pub headline: Option<String>,
    /// Received (RFC 3339).
    pub received_at: String,
    /// `mqtt` or the feed URL.
    pub via: String,
    /// `play`, `cancel`, `ignore`, `reject`.
    pub decision: String,
    /// Why.
    pub reason: Option<String>,
    /// The broadcast it started or stopped.
    pub broadcast_id: Option<String>,
}

/// One entry of a broadcast's history: speaker (none for the broadcast
/// itself), state, when (RFC 3339), detail.
pub type EventRow = (Option<String>, String, String, Option<Value>);

/// The broadcast records; their times come from the clock they were
/// given (the runtime's, see [`Records::with_clock`]).
#[derive(Clone)]
pub struct Records {
    store: Store,
    clock: Arc<dyn Clock>,
}

impl Records {
    /// Applies the `broadcast` migrations; records are stamped with the
    /// system clock.
    pub fn open(store: &Store) -> anyhow::Result<Self> {
        Records::open_with_clock(store, crate::base::clock::system())
    }

    /// Applies the `broadcast` migrations; records are stamped with `clock`.
    pub fn open_with_clock(store: &Store, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        store.with_conn(|c| apply_migrations(c, "broadcast", MIGRATIONS))?;
        Ok(Records {
            store: store.clone(),
            clock,
        })
    }

    /// The same records, stamped with `clock` from now on.
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Records {
        Records { clock, ..self }
    }

    fn now(&self) -> String {
        fmt_time(self.clock.now_utc())
    }

    /// Records a new broadcast.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        &self,
        id: &str,
        origin: &str,
        title: &str,
        priority: &str,
        targets: &[String],
        horns: usize,
        detail: Option<&Value>,
    ) -> anyhow::Result<()> {
        self.store.with_conn(|c| {
            c.execute(
                "INSERT INTO broadcast (id, origin, title, priority, targets, horns, state, created_at, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?8)
                 ON CONFLICT(id) DO NOTHING",
                params![
                    id,
                    origin,
                    title,
                    priority,
                    serde_json::to_string(targets).unwrap_or_default(),
                    horns as i64,
                    self.now(),
                    detail.map(|d| d.to_string())
                ],
            )?;
            Ok(())
        })?;
        Ok(())
    }

    /// Sets a broadcast's state (and T0 / end time when given).
    pub fn set_state(
        &self,
        id: &str,
        state: &str,
        t0: Option<&str>,
        ended: bool,
    ) -> anyhow::Result<()> {
        self.store.with_conn(|c| {
            c.execute(
                "UPDATE broadcast SET state = ?2, t0 = COALESCE(t0, ?3),
                   ended_at = CASE WHEN ?4 THEN ?5 ELSE ended_at END WHERE id = ?1",
                params![id, state, t0, ended, self.now()],
            )?;
            Ok(())
        })?;
        Ok(())
    }

    /// Records a horn's state in a broadcast (latest + history).
    pub fn horn(
        &self,
        broadcast: &str,
        speaker: &str,
        state: &str,
        detail: Option<&Value>,
    ) -> anyhow::Result<()> {
        let at = self.now();
        let d = detail.map(|d| d.to_string());
        self.store.with_conn(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO broadcast_horn (broadcast_id, speaker_id, state, at, detail) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(broadcast_id, speaker_id) DO UPDATE SET state = excluded.state, at = excluded.at,
                   detail = CASE WHEN excluded.detail IS NULL THEN broadcast_horn.detail
                                 WHEN broadcast_horn.detail IS NULL THEN excluded.detail
                                 ELSE json_patch(broadcast_horn.detail, excluded.detail) END",
                params![broadcast, speaker, state, at, d],
            )?;
            tx.execute(
                "INSERT INTO broadcast_event (broadcast_id, speaker_id, state, at, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![broadcast, speaker, state, at, d],
            )?;
            tx.commit()?;
            Ok(())
        })?;
        Ok(())
    }

    /// Adds measured details (skew, answer time) to a horn's current state
    /// without a new history entry.
    pub fn horn_detail(
        &self,
        broadcast: &str,
        speaker: &str,
        detail: &Value,
    ) -> anyhow::Result<()> {
        self.store.with_conn(|c| {
            c.execute(
                "UPDATE broadcast_horn SET detail = json_patch(COALESCE(detail, '{}'), ?3)
                 WHERE broadcast_id = ?1 AND speaker_id = ?2",
                params![broadcast, speaker, detail.to_string()],
            )?;
            Ok(())
        })?;
        Ok(())
    }

    /// Appends to the gateway's audit log (signed commands and warnings make
    /// horns speak: they are audited like people's actions).
    pub fn audit(
        &self,
        actor: &str,
        source: &str,
        action: &str,
        target: Option<&str>,
        after: Option<Value>,
        outcome: &str,
    ) {
        let r = crate::auth::Users::new(self.store.clone()).and_then(|u| {
            u.audit(crate::auth::NewAudit {
                actor,
                source,
                action,
                target,
                before: None,
                after,
                outcome,
            })
        });
        if let Err(e) = r {
            tracing::warn!(error = %e, action, "writing the audit log failed");
        }
    }

    /// Broadcasts, newest first.
    pub fn list(&self, limit: usize) -> anyhow::Result<Vec<BroadcastRow>> {
        self.rows(None, limit, None)
    }

    /// Broadcasts in one of `states` (`queued`, `playing`, `done` ...),
    /// newest first: `["queued", "playing"]` is what is on the air or about
    /// to be ("now playing"), the final states are the recent ones.
    pub fn list_in(&self, limit: usize, states: &[&str]) -> anyhow::Result<Vec<BroadcastRow>> {
        self.rows(None, limit, Some(states))
    }

    fn rows(
        &self,
        id: Option<&str>,
        limit: usize,
        states: Option<&[&str]>,
    ) -> anyhow::Result<Vec<BroadcastRow>> {
        let states = states.map(|s| serde_json::to_string(s).unwrap_or_default());
        self.store
            .with_conn(|c| {
                let mut st = c.prepare(
                "SELECT id, origin, title, priority, targets, horns, t0, state, created_at, ended_at
                 FROM broadcast WHERE (?2 IS NULL OR id = ?2)
                   AND (?3 IS NULL OR state IN (SELECT value FROM json_each(?3)))
                 ORDER BY created_at DESC, rowid DESC LIMIT ?1",
            )?;
                let rows = st
                    .query_map(params![limit as i64, id, states], |r| {
                        Ok(BroadcastRow {
                            id: r.get(0)?,
                            origin: r.get(1)?,
                            title: r.get(2)?,
                            priority: r.get(3)?,
                            targets: serde_json::from_str(&r.get::<_, String>(4)?)
                                .unwrap_or_default(),
                            horns: r.get::<_, i64>(5)? as u32,
                            t0: r.get(6)?,
                            state: r.get(7)?,
                            created_at: r.get(8)?,
                            ended_at: r.get(9)?,
                            counts: Default::default(),
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                let mut out = Vec::with_capacity(rows.len());
                let mut cs = c.prepare(
                "SELECT state, COUNT(*) FROM broadcast_horn WHERE broadcast_id = ?1 GROUP BY state",
            )?;
                for mut b in rows {
                    for kv in cs.query_map([&b.id], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                    })? {
                        let (k, v) = kv?;
                        b.counts.insert(k, v as u32);
                    }
                    out.push(b);
                }
                Ok(out)
            })
            .map_err(Into::into)
    }

    /// One broadcast.
    pub fn get(&self, id: &str) -> anyhow::Result<Option<(BroadcastRow, Vec<HornRow>)>> {
        let Some(b) = self.rows(Some(id), 1, None)?.into_iter().next() else {
            return Ok(None);
        };
        let horns = self.store.with_conn(|c| {
            let mut st = c.prepare(
                "SELECT speaker_id, state, at, detail FROM broadcast_horn WHERE broadcast_id = ?1 ORDER BY speaker_id",
            )?;
            let v = st
                .query_map([id], |r| {
                    Ok(HornRow {
                        speaker: r.get(0)?,
                        state: r.get(1)?,
                        at: r.get(2)?,
                        detail: r
                            .get::<_, Option<String>>(3)?
                            .and_then(|s| serde_json::from_str(&s).ok()),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(v)
        })?;
        Ok(Some((b, horns)))
    }

    /// A broadcast's history (horn, state, at, detail), oldest first.
    pub fn events(&self, broadcast: &str) -> anyhow::Result<Vec<EventRow>> {
        self.store
            .with_conn(|c| {
                let mut st = c.prepare(
                    "SELECT speaker_id, state, at, detail FROM broadcast_event WHERE broadcast_id = ?1 ORDER BY id",
                )?;
                let v = st
                    .query_map([broadcast], |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get::<_, Option<String>>(3)?
                                .and_then(|s| serde_json::from_str(&s).ok()),
                        ))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(v)
            })
            .map_err(Into::into)
    }

    /// Broadcasts still `queued` or `playing` (after a restart these were
    /// cut off), with their horns not yet final (queued, started, or
    /// interrupted and waiting to resume).
    pub fn unfinished(&self) -> anyhow::Result<Vec<(String, Vec<String>)>> {
        self.store
            .with_conn(|c| {
                let ids: Vec<String> = c
                    .prepare("SELECT id FROM broadcast WHERE state IN ('queued', 'playing')")?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                let mut out = Vec::new();
                for id in ids {
                    let horns: Vec<String> = c
                        .prepare(
                            "SELECT speaker_id FROM broadcast_horn WHERE broadcast_id = ?1
                             AND (state IN ('queued', 'started') OR (state = 'interrupted'
                               AND json_extract(detail, '$.resuming') = 1))",
                        )?
                        .query_map([&id], |r| r.get(0))?
                        .collect::<Result<_, _>>()?;
                    out.push((id, horns));
                }
                Ok(out)
            })
            .map_err(Into::into)
    }

    /// Marks a schedule occurrence as handled; false if it already was
    /// (a restart or a clock jumping back never fires it twice).
    pub fn mark_fired(
        &self,
        schedule: &str,
        occurrence: &str,
        broadcast: Option<&str>,
        outcome: &str,
    ) -> anyhow::Result<bool> {
        self.store
            .with_conn(|c| {
                let n = c.execute(
                    "INSERT INTO schedule_fired (schedule_id, occurrence, broadcast_id, outcome) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT DO NOTHING",
                    params![schedule, occurrence, broadcast, outcome],
                )?;
                Ok(n == 1)
            })
            .map_err(Into::into)
    }

    /// Whether an occurrence was handled.
    pub fn fired(&self, schedule: &str, occurrence: &str) -> anyhow::Result<bool> {
        self.store
            .with_conn(|c| {
                Ok(c.query_row(
                    "SELECT 1 FROM schedule_fired WHERE schedule_id = ?1 AND occurrence = ?2",
                    params![schedule, occurrence],
                    |_| Ok(()),
                )
                .optional()?
                .is_some())
            })
            .map_err(Into::into)
    }

    /// The current timetable document (JSON) and its version.
    pub fn timetable(&self) -> anyhow::Result<Option<(i64, String)>> {
        self.store
            .with_conn(|c| {
                Ok(c.query_row(
                    "SELECT version, doc FROM timetable_doc ORDER BY version DESC LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?)
            })
            .map_err(Into::into)
    }

    /// Saves a new timetable version; returns it.
    pub fn save_timetable(&self, doc: &str, by: &str) -> anyhow::Result<i64> {
        self.store
            .with_conn(|c| {
                c.execute(
                    "INSERT INTO timetable_doc (doc, saved_at, saved_by) VALUES (?1, ?2, ?3)",
                    params![doc, self.now(), by],
                )?;
                Ok(c.last_insert_rowid())
            })
            .map_err(Into::into)
    }

    /// Records a CAP alert and the decision (replaces an earlier row with
    /// the same identifier only when it was rejected).
    pub fn cap(&self, r: &CapRow) -> anyhow::Result<()> {
        self.store.with_conn(|c| {
            c.execute(
                "INSERT INTO cap_alert (identifier, sender, sent, msg_type, status, headline, received_at, via, decision, reason, broadcast_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT(identifier) DO UPDATE SET decision = excluded.decision, reason = excluded.reason,
                    broadcast_id = excluded.broadcast_id, received_at = excluded.received_at
                 WHERE cap_alert.decision = 'reject'",
                params![r.identifier, r.sender, r.sent, r.msg_type, r.status, r.headline, r.received_at, r.via, r.decision, r.reason, r.broadcast_id],
            )?;
            Ok(())
        })?;
        Ok(())
    }

    /// CAP alerts, newest first.
    pub fn caps(&self, limit: usize) -> anyhow::Result<Vec<CapRow>> {
        self.store
            .with_conn(|c| {
                let mut st = c.prepare(
                    "SELECT identifier, sender, sent, msg_type, status, headline, received_at, via, decision, reason, broadcast_id
                     FROM cap_alert ORDER BY received_at DESC, rowid DESC LIMIT ?1",
                )?;
                let v = st
                    .query_map([limit as i64], |r| {
                        Ok(CapRow {
                            identifier: r.get(0)?,
                            sender: r.get(1)?,
                            sent: r.get(2)?,
                            msg_type: r.get(3)?,
                            status: r.get(4)?,
                            headline: r.get(5)?,
                            received_at: r.get(6)?,
                            via: r.get(7)?,
                            decision: r.get(8)?,
                            reason: r.get(9)?,
                            broadcast_id: r.get(10)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(v)
            })
            .map_err(Into::into)
    }

    /// A small state blob.
    pub fn kv(&self, key: &str) -> anyhow::Result<Option<String>> {
        self.store
            .with_conn(|c| {
                Ok(c.query_row(
                    "SELECT value FROM broadcast_kv WHERE key = ?1",
                    [key],
                    |r| r.get(0),
                )
                .optional()?)
            })
            .map_err(Into::into)
    }

    /// Stores a small state blob.
    pub fn set_kv(&self, key: &str, value: &str) -> anyhow::Result<()> {
        self.store.with_conn(|c| {
            c.execute(
                "INSERT INTO broadcast_kv (key, value, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                params![key, value, self.now()],
            )?;
            Ok(())
        })?;
        Ok(())
    }
}
