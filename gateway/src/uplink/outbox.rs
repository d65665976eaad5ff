//! The durable outbox: every message the gateway has *accepted* for the
//! centre, in SQLite (WAL), until the broker's PUBACK.
//!
//! This is the synchronous core: it takes times as arguments and does no
//! network IO, so tests drive it directly (reopen = crash, budgets, classes).
//! [`super::session`] runs it on one writer thread that batches commits.
//!
//! Lifecycle of a row (see `docs/mqtt.md`):
//! 1. [`Outbox::accept`]: inserted (committed = accepted). A newer retained
//!    message with the same coalesce key (`camera/{id}/state`, `…/meta`)
//!    deletes the older one if it was never sent (counted as coalesced).
//!    When the byte budget would be exceeded, unsent rows of the lowest class
//!    are evicted first (counted; the caller raises an alarm).
//! 2. [`Outbox::claim`]: the next unsent rows by class priority, then age,
//!    get their `seq` (per-gateway, persisted, gapless) and are handed to the
//!    uplink. A claimed row keeps its `seq` forever, so a resend after a
//!    reconnect or a restart carries the same `seq` and `msg_id`.
//! 3. [`Outbox::ack`]: deleted on PUBACK.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use crate::store::{StoreError, apply_migrations};

/// Migrations of the `outbox` component.
pub const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    class INTEGER NOT NULL,          -- 0 urgent (replies, alarms), 1 state, 2 metadata, 3 history
    topic TEXT NOT NULL,             -- below tgw/v1/{site}/{gateway}/
    retain INTEGER NOT NULL,
    coalesce_key TEXT,               -- newest unsent row per key wins
    msg_id TEXT NOT NULL,
    ts TEXT NOT NULL,                -- RFC 3339 time of acceptance
    accepted_ms INTEGER NOT NULL,    -- the same, unix milliseconds
    body TEXT NOT NULL,              -- JSON object, without the envelope
    bytes INTEGER NOT NULL,          -- budget accounting
    seq INTEGER                      -- assigned when first claimed for sending
);
CREATE INDEX outbox_unsent ON outbox(class, id) WHERE seq IS NULL;
CREATE INDEX outbox_claimed ON outbox(seq) WHERE seq IS NOT NULL;
CREATE INDEX outbox_coalesce ON outbox(coalesce_key) WHERE coalesce_key IS NOT NULL AND seq IS NULL;
CREATE TABLE outbox_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO outbox_meta (key, value) VALUES ('next_seq', 1), ('boot', 0);
"#];

/// Bytes charged per row on top of topic and body (row, index entries).
pub const ROW_OVERHEAD: u64 = 96;

/// Delivery class; a lower number is sent first and evicted last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// Command replies and alarms.
    Urgent = 0,
    /// Retained current state.
    State = 1,
    /// Retained device metadata.
    Metadata = 2,
    /// Events and other history.
    History = 3,
}

impl Class {
    /// All classes, highest priority first.
    pub const ALL: [Class; 4] = [Class::Urgent, Class::State, Class::Metadata, Class::History];

    fn from_i64(v: i64) -> Class {
        match v {
            0 => Class::Urgent,
            1 => Class::State,
            2 => Class::Metadata,
            _ => Class::History,
        }
    }

    /// Stable name (metrics, docs).
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Urgent => "urgent",
            Class::State => "state",
            Class::Metadata => "metadata",
            Class::History => "history",
        }
    }
}

/// A message offered to the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    /// Priority class.
    pub class: Class,
    /// Topic below `tgw/v1/{site}/{gateway}/`.
    pub topic: String,
    /// MQTT retain flag.
    pub retain: bool,
    /// Rows with the same key supersede each other while unsent.
    pub coalesce_key: Option<String>,
    /// Unique id (uuid v4).
    pub msg_id: String,
    /// RFC 3339 acceptance time.
    pub ts: String,
    /// The same as unix milliseconds.
    pub accepted_ms: i64,
    /// JSON object text, without the envelope.
    pub body: String,
}

impl NewMessage {
    /// Bytes this message is charged against the budget.
    pub fn bytes(&self) -> u64 {
        (self.topic.len() + self.body.len() + self.msg_id.len() + self.ts.len()) as u64
            + ROW_OVERHEAD
    }
}

/// A claimed row, ready to be wrapped in the envelope and sent.
#[derive(Debug, Clone, PartialEq)]
pub struct OutRow {
    /// Row id (acceptance order).
    pub id: i64,
    /// Per-gateway sequence number.
    pub seq: i64,
    /// Class.
    pub class: Class,
    /// Topic below the gateway's prefix.
    pub topic: String,
    /// Retain flag.
    pub retain: bool,
    /// Unique id.
    pub msg_id: String,
    /// RFC 3339 acceptance time.
    pub ts: String,
    /// Acceptance time, unix ms.
    pub accepted_ms: i64,
    /// JSON object text.
    pub body: String,
}

/// What one [`Outbox::accept`] call did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcceptOutcome {
    /// Messages committed.
    pub accepted: u64,
    /// Older unsent rows superseded by a newer one with the same key.
    pub coalesced: u64,
    /// Unsent rows evicted to stay within the budget, per class.
    pub evicted: [u64; 4],
    /// Offered messages refused because the budget was full of higher classes.
    pub refused: u64,
}

impl AcceptOutcome {
    /// All evictions.
    pub fn evicted_total(&self) -> u64 {
        self.evicted.iter().sum()
    }
}

/// Depth and size, for gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depth {
    /// Rows in the outbox (unsent and in flight).
    pub rows: u64,
    /// Rows never sent.
    pub unsent: u64,
    /// Bytes charged.
    pub bytes: u64,
    /// Acceptance time of the oldest row, unix ms.
    pub oldest_ms: Option<i64>,
    /// Rows per class, indexed by `Class as usize`.
    pub by_class: [u64; 4],
}

type Result<T> = std::result::Result<T, StoreError>;

/// The outbox over one SQLite connection.
pub struct Outbox {
    conn: Connection,
    max_bytes: u64,
    bytes: u64,
    unsent: u64,
    /// Rows per class, indexed by `Class as usize`; their sum is the depth.
    by_class: [u64; 4],
}

impl Outbox {
    /// Opens (creating) the outbox tables in the database at `path`.
    /// `fsync` selects `synchronous=FULL` (survives power loss) over `NORMAL`
    /// (survives a process crash).
    pub fn open(path: &Path, max_bytes: u64, fsync: bool) -> Result<Outbox> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Invalid(format!("cannot create directory {}: {e}", dir.display()))
            })?;
        }
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", if fsync { "FULL" } else { "NORMAL" })?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        apply_migrations(&mut conn, "outbox", MIGRATIONS)?;
        let bytes: i64 = conn.query_row("SELECT COALESCE(SUM(bytes), 0) FROM outbox", [], |r| {
            r.get(0)
        })?;
        let unsent: i64 =
            conn.query_row("SELECT COUNT(*) FROM outbox WHERE seq IS NULL", [], |r| {
                r.get(0)
            })?;
        let mut by_class = [0u64; 4];
        {
            let mut st = conn.prepare("SELECT class, COUNT(*) FROM outbox GROUP BY class")?;
            let counts = st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
            for c in counts {
                let (class, n) = c?;
                by_class[Class::from_i64(class) as usize] += n as u64;
            }
        }
        Ok(Outbox {
            conn,
            max_bytes,
            bytes: bytes as u64,
            unsent: unsent as u64,
            by_class,
        })
    }

    /// Increments and returns the boot counter (one per process start).
    pub fn next_boot(&mut self) -> Result<i64> {
        self.conn.execute(
            "UPDATE outbox_meta SET value = value + 1 WHERE key = 'boot'",
            [],
        )?;
        Ok(self.conn.query_row(
            "SELECT value FROM outbox_meta WHERE key = 'boot'",
            [],
            |r| r.get(0),
        )?)
    }

    /// The last `seq` handed out (0 if none).
    pub fn last_seq(&self) -> Result<i64> {
        let next: i64 = self.conn.query_row(
            "SELECT value FROM outbox_meta WHERE key = 'next_seq'",
            [],
            |r| r.get(0),
        )?;
        Ok(next - 1)
    }

    /// The newest row id ever accepted (0 if none).
    pub fn last_id(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'outbox'",
                [],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
    }

    /// Commits a batch of messages and acknowledgements in one transaction.
    pub fn accept(&mut self, msgs: &[NewMessage], acked: &[i64]) -> Result<AcceptOutcome> {
        let mut out = AcceptOutcome::default();
        let (mut bytes, mut unsent) = (self.bytes, self.unsent);
        let mut by_class = self.by_class;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut del =
                tx.prepare_cached("DELETE FROM outbox WHERE id = ?1 RETURNING bytes, class")?;
            for id in acked {
                if let Some((b, c)) = del
                    .query_row([id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
                    .optional()?
                {
                    bytes = bytes.saturating_sub(b as u64);
                    let c = Class::from_i64(c) as usize;
                    by_class[c] = by_class[c].saturating_sub(1);
                }
            }
            let mut coalesce = tx.prepare_cached(
                "DELETE FROM outbox WHERE coalesce_key = ?1 AND seq IS NULL RETURNING bytes, class",
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO outbox (class, topic, retain, coalesce_key, msg_id, ts, accepted_ms, body, bytes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            let mut victims = tx.prepare_cached(
                "SELECT id, bytes FROM outbox WHERE seq IS NULL AND class = ?1 ORDER BY id LIMIT 256",
            )?;
            let mut evict = tx.prepare_cached("DELETE FROM outbox WHERE id = ?1")?;
            for m in msgs {
                if let Some(key) = &m.coalesce_key {
                    let mut q = coalesce.query([key])?;
                    while let Some(r) = q.next()? {
                        let b: i64 = r.get(0)?;
                        let c = Class::from_i64(r.get(1)?) as usize;
                        bytes = bytes.saturating_sub(b as u64);
                        unsent = unsent.saturating_sub(1);
                        by_class[c] = by_class[c].saturating_sub(1);
                        out.coalesced += 1;
                    }
                }
                let need = m.bytes();
                // Evict the lowest class first, oldest first, never a class
                // above the newcomer's, never a row already in flight.
                let mut class_idx = Class::ALL.len();
                while bytes + need > self.max_bytes && class_idx > m.class as usize {
                    let c = Class::ALL[class_idx - 1];
                    let found: Vec<(i64, i64)> = victims
                        .query_map([c as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<std::result::Result<_, _>>()?;
                    if found.is_empty() {
                        class_idx -= 1;
                        continue;
                    }
                    for (id, b) in found {
                        if bytes + need <= self.max_bytes {
                            break;
                        }
                        evict.execute([id])?;
                        bytes = bytes.saturating_sub(b as u64);
                        unsent = unsent.saturating_sub(1);
                        by_class[c as usize] = by_class[c as usize].saturating_sub(1);
                        out.evicted[c as usize] += 1;
                    }
                }
                if bytes + need > self.max_bytes {
                    out.refused += 1;
                    continue;
                }
                insert.execute(params![
                    m.class as i64,
                    m.topic,
                    m.retain,
                    m.coalesce_key,
                    m.msg_id,
                    m.ts,
                    m.accepted_ms,
                    m.body,
                    need as i64
                ])?;
                bytes += need;
                unsent += 1;
                by_class[m.class as usize] += 1;
                out.accepted += 1;
            }
        }
        tx.commit()?;
        (self.bytes, self.unsent) = (bytes, unsent);
        self.by_class = by_class;
        Ok(out)
    }

    /// Claims up to `limit` unsent rows (highest class first, then oldest),
    /// giving each the next `seq`; committed before returning, so a claimed
    /// row is resent with the same `seq` after a crash.
    pub fn claim(&mut self, limit: usize) -> Result<Vec<OutRow>> {
        if limit == 0 || self.unsent == 0 {
            return Ok(Vec::new());
        }
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut rows = Vec::with_capacity(limit);
        {
            let mut next: i64 = tx.query_row(
                "SELECT value FROM outbox_meta WHERE key = 'next_seq'",
                [],
                |r| r.get(0),
            )?;
            let mut sel = tx.prepare_cached(
                "SELECT id, class, topic, retain, msg_id, ts, accepted_ms, body FROM outbox
                 WHERE seq IS NULL AND class = ?1 ORDER BY id LIMIT ?2",
            )?;
            for c in Class::ALL {
                if rows.len() >= limit {
                    break;
                }
                let want = (limit - rows.len()) as i64;
                let got = sel
                    .query_map(params![c as i64, want], |r| {
                        Ok(OutRow {
                            id: r.get(0)?,
                            seq: 0,
                            class: Class::from_i64(r.get(1)?),
                            topic: r.get(2)?,
                            retain: r.get(3)?,
                            msg_id: r.get(4)?,
                            ts: r.get(5)?,
                            accepted_ms: r.get(6)?,
                            body: r.get(7)?,
                        })
                    })?
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                rows.extend(got);
            }
            let mut upd = tx.prepare_cached("UPDATE outbox SET seq = ?1 WHERE id = ?2")?;
            for r in &mut rows {
                r.seq = next;
                next += 1;
                upd.execute(params![r.seq, r.id])?;
            }
            tx.execute(
                "UPDATE outbox_meta SET value = ?1 WHERE key = 'next_seq'",
                [next],
            )?;
        }
        tx.commit()?;
        self.unsent = self.unsent.saturating_sub(rows.len() as u64);
        Ok(rows)
    }

    /// Rows claimed earlier and not yet acknowledged, in `seq` order: they
    /// are resent first on every new connection.
    pub fn claimed(&self) -> Result<Vec<OutRow>> {
        let mut sel = self.conn.prepare_cached(
            "SELECT id, seq, class, topic, retain, msg_id, ts, accepted_ms, body FROM outbox
             WHERE seq IS NOT NULL ORDER BY seq",
        )?;
        let rows = sel
            .query_map([], |r| {
                Ok(OutRow {
                    id: r.get(0)?,
                    seq: r.get(1)?,
                    class: Class::from_i64(r.get(2)?),
                    topic: r.get(3)?,
                    retain: r.get(4)?,
                    msg_id: r.get(5)?,
                    ts: r.get(6)?,
                    accepted_ms: r.get(7)?,
                    body: r.get(8)?,
                })
            })?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Current depth, size and oldest row.
    pub fn depth(&self) -> Result<Depth> {
        let oldest = self
            .conn
            .query_row(
                "SELECT accepted_ms FROM outbox ORDER BY id LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        Ok(Depth {
            rows: self.by_class.iter().sum(),
            unsent: self.unsent,
            bytes: self.bytes,
            oldest_ms: oldest,
            by_class: self.by_class,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(class: Class, topic: &str, key: Option<&str>, n: u32) -> NewMessage {
        NewMessage {
            class,
            topic: topic.into(),
            retain: key.is_some(),
            coalesce_key: key.map(String::from),
            msg_id: format!("m-{topic}-{n}"),
            ts: "2026-01-01T00:00:00Z".into(),
            accepted_ms: 1_000 + n as i64,
            body: format!("{{\"n\":{n}}}"),
        }
    }

    fn open(dir: &tempfile::TempDir, max: u64) -> Outbox {
        Outbox::open(&dir.path().join("tgw.db"), max, false).unwrap()
    }

    /// Accepted = committed: everything survives a reopen (a crash), and a
    /// row claimed before the crash keeps its seq; seq continues after it.
    #[test]
    fn committed_messages_and_seq_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = open(&dir, 1 << 30);
        let batch: Vec<_> = (0..10)
            .map(|i| msg(Class::History, "camera/c1/event", None, i))
            .collect();
        assert_eq!(o.accept(&batch, &[]).unwrap().accepted, 10);
        let first = o.claim(3).unwrap();
        assert_eq!(
            first.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        o.accept(&[], &[first[0].id]).unwrap();
        drop(o);

        let mut o = open(&dir, 1 << 30);
        let d = o.depth().unwrap();
        assert_eq!((d.rows, d.unsent), (9, 7));
        let resend = o.claimed().unwrap();
        assert_eq!(resend.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(resend[0].msg_id, first[1].msg_id);
        let next = o.claim(100).unwrap();
        assert_eq!(next.first().map(|r| r.seq), Some(4));
        assert_eq!(next.last().map(|r| r.seq), Some(10));
        // Bodies come back in acceptance order.
        let ns: Vec<_> = next.iter().map(|r| r.body.clone()).collect();
        assert_eq!(ns[0], "{\"n\":3}");
        assert_eq!(ns[6], "{\"n\":9}");
        assert_eq!(o.last_seq().unwrap(), 10);
    }

    /// Urgent before state before metadata before history; per topic the
    /// acceptance order is kept.
    #[test]
    fn claims_follow_class_priority_then_age() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = open(&dir, 1 << 30);
        o.accept(
            &[
                msg(Class::History, "camera/a/event", None, 1),
                msg(Class::Metadata, "camera/a/meta", None, 2),
                msg(Class::History, "camera/a/event", None, 3),
                msg(Class::State, "camera/a/state", None, 4),
                msg(Class::Urgent, "alarm", None, 5),
            ],
            &[],
        )
        .unwrap();
        let order: Vec<_> = o.claim(10).unwrap().into_iter().map(|r| r.body).collect();
        assert_eq!(
            order,
            vec![
                "{\"n\":5}",
                "{\"n\":4}",
                "{\"n\":2}",
                "{\"n\":1}",
                "{\"n\":3}"
            ]
        );
    }

    /// Only the newest unsent state per device is kept; a state already in
    /// flight is never removed (its seq must still arrive).
    #[test]
    fn retained_state_is_coalesced_while_unsent() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = open(&dir, 1 << 30);
        let k = Some("camera/a/state");
        o.accept(&[msg(Class::State, "camera/a/state", k, 1)], &[])
            .unwrap();
        let inflight = o.claim(1).unwrap();
        let out = o
            .accept(
                &[
                    msg(Class::State, "camera/a/state", k, 2),
                    msg(Class::State, "camera/b/state", Some("camera/b/state"), 3),
                    msg(Class::State, "camera/a/state", k, 4),
                ],
                &[],
            )
            .unwrap();
        assert_eq!(out.coalesced, 1);
        assert_eq!(o.claimed().unwrap(), inflight);
        let bodies: Vec<_> = o.claim(10).unwrap().into_iter().map(|r| r.body).collect();
        assert_eq!(bodies, vec!["{\"n\":3}", "{\"n\":4}"]);
    }

    /// When the budget is full, history goes first (oldest first), then
    /// metadata; a newcomer never evicts a higher class and is refused instead.
    #[test]
    fn budget_evicts_lowest_class_first() {
        let dir = tempfile::tempdir().unwrap();
        let one = msg(Class::History, "camera/a/event", None, 1).bytes();
        let mut o = open(&dir, one * 4 + 10);
        o.accept(
            &[
                msg(Class::History, "camera/a/event", None, 1),
                msg(Class::Metadata, "camera/a/metx", None, 2),
                msg(Class::History, "camera/a/event", None, 3),
                msg(Class::State, "camera/a/stat", None, 4),
            ],
            &[],
        )
        .unwrap();
        let out = o
            .accept(&[msg(Class::Urgent, "alarm/outbox", None, 5)], &[])
            .unwrap();
        assert_eq!(out.evicted, [0, 0, 0, 1]);
        let out = o
            .accept(
                &[
                    msg(Class::Urgent, "alarm/outbox", None, 6),
                    msg(Class::Urgent, "alarm/outbox", None, 7),
                ],
                &[],
            )
            .unwrap();
        assert_eq!(out.evicted, [0, 0, 1, 1]);
        // Now only urgent + state remain: history cannot push them out.
        let out = o
            .accept(&[msg(Class::History, "camera/a/event", None, 8)], &[])
            .unwrap();
        assert_eq!((out.accepted, out.refused), (0, 1));
        let d = o.depth().unwrap();
        assert!(d.bytes <= one * 4 + 10, "{d:?}");
        let bodies: Vec<_> = o.claim(10).unwrap().into_iter().map(|r| r.body).collect();
        assert_eq!(
            bodies,
            vec!["{\"n\":5}", "{\"n\":6}", "{\"n\":7}", "{\"n\":4}"]
        );
    }

    /// Rows per class follow accepts, coalescing, evictions and acks, and
    /// are counted again on reopen (the `tgw_outbox_messages` gauge).
    #[test]
    fn rows_per_class_are_kept_through_every_change() {
        let dir = tempfile::tempdir().unwrap();
        let one = msg(Class::History, "camera/a/event", None, 1).bytes();
        let mut o = open(&dir, one * 4 + 10);
        o.accept(
            &[
                msg(Class::History, "camera/a/event", None, 1),
                msg(Class::History, "camera/a/event", None, 2),
                msg(Class::State, "camera/a/stat", Some("camera/a/stat"), 3),
                msg(Class::State, "camera/a/stat", Some("camera/a/stat"), 4),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(o.depth().unwrap().by_class, [0, 1, 0, 2]);
        o.accept(
            &[
                msg(Class::Urgent, "alarm/outbox", None, 5),
                msg(Class::Urgent, "alarm/outbox", None, 6),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(o.depth().unwrap().by_class, [2, 1, 0, 1]);
        let r = o.claim(1).unwrap();
        o.accept(&[], &[r[0].id]).unwrap();
        let d = o.depth().unwrap();
        assert_eq!(d.by_class, [1, 1, 0, 1]);
        assert_eq!(d.rows, 3);
        drop(o);
        assert_eq!(open(&dir, 1 << 30).depth().unwrap().by_class, [1, 1, 0, 1]);
    }

    /// Acks delete rows and free the budget; a duplicate ack is harmless.
    #[test]
    fn acks_free_bytes_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = open(&dir, 1 << 30);
        o.accept(&[msg(Class::History, "camera/a/event", None, 1)], &[])
            .unwrap();
        let r = o.claim(1).unwrap();
        o.accept(&[], &[r[0].id, r[0].id]).unwrap();
        assert_eq!(o.depth().unwrap(), Depth::default());
        drop(o);
        assert_eq!(open(&dir, 1 << 30).depth().unwrap(), Depth::default());
    }

    /// The boot counter and row ids only grow, also across reopen.
    #[test]
    fn boot_and_ids_are_monotonic_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = open(&dir, 1 << 30);
        assert_eq!(o.next_boot().unwrap(), 1);
        o.accept(&[msg(Class::History, "x", None, 1)], &[]).unwrap();
        let r = o.claim(1).unwrap();
        o.accept(&[], &[r[0].id]).unwrap();
        drop(o);
        let mut o = open(&dir, 1 << 30);
        assert_eq!(o.next_boot().unwrap(), 2);
        assert_eq!(o.last_id().unwrap(), r[0].id);
        o.accept(&[msg(Class::History, "x", None, 2)], &[]).unwrap();
        let r2 = o.claim(1).unwrap();
        assert!(r2[0].id > r[0].id && r2[0].seq == r[0].seq + 1);
    }
}
