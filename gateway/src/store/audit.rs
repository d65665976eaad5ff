//! The audit log: who did what to which thing, from where, with the state
//! before and after (secrets masked by the caller) and the outcome.
//!
//! Refused logins (action `login`, any outcome but `ok`) are counted, not
//! appended: one row per (user, address, outcome, minute) whose `count`
//! and `last_at` grow with each attempt, so a flood of wrong passwords
//! writes a handful of rows a minute. The log is size-bounded by
//! [`AuditRetention`]: rows older than `max_days` go, and when an insert
//! takes the log over `max_rows` the oldest rows go down to 95 % of the
//! cap, refused-login rows first (so anonymous noise cannot push out the
//! record of what logged-in users changed).

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Result, Store, fmt_time};
pub use crate::config::audit::AuditRetention;

/// One audit entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Sequence number.
    pub id: i64,
    /// When (RFC 3339, UTC); for counted refused logins, the first attempt.
    pub at: String,
    /// Who (`user` name, or `-` before login).
    pub actor: String,
    /// From where (client address).
    pub source: String,
    /// What, e.g. `device.adopt`.
    pub action: String,
    /// On what (device id, user name).
    pub target: Option<String>,
    /// State before (secrets masked).
    #[schema(value_type = Object)]
    pub before: Option<serde_json::Value>,
    /// State after (secrets masked).
    #[schema(value_type = Object)]
    pub after: Option<serde_json::Value>,
    /// `ok` or an error code.
    pub outcome: String,
    /// How many times it happened: 1, or for refused logins the attempts
    /// with this user, address and outcome within the minute of `at`.
    pub count: i64,
    /// For counted refused logins, the last attempt (RFC 3339, UTC).
    pub last_at: Option<String>,
}

/// An audit entry to write.
#[derive(Debug, Clone, Default)]
pub struct NewAudit<'a> {
    /// Who.
    pub actor: &'a str,
    /// From where.
    pub source: &'a str,
    /// What.
    pub action: &'a str,
    /// On what.
    pub target: Option<&'a str>,
    /// Before.
    pub before: Option<serde_json::Value>,
    /// After.
    pub after: Option<serde_json::Value>,
    /// `ok` or an error code.
    pub outcome: &'a str,
}

impl NewAudit<'_> {
    /// A refused login: counted per (user, address, outcome, minute).
    pub fn is_refused_login(&self) -> bool {
        self.action == "login" && self.outcome != "ok"
    }
}

/// `t` with seconds and below set to zero.
fn minute_of(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_second(0)
        .and_then(|t| t.replace_nanosecond(0))
        .unwrap_or(t)
}

impl Store {
    /// Writes an audit entry, stamped now: a new row, or for a refused
    /// login one more on the row of its (user, address, outcome, minute).
    /// When the log is then over `keep.max_rows`, it is pruned.
    pub fn audit(&self, e: NewAudit<'_>, keep: AuditRetention) -> Result<()> {
        let j = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string());
        let now_t = self.clock.now_utc();
        let now = fmt_time(now_t);
        let conn = self.conn();
        if e.is_refused_login() {
            let from = fmt_time(minute_of(now_t));
            let to = fmt_time(minute_of(now_t) + time::Duration::minutes(1));
            let counted = conn.execute(
                "UPDATE audit_log SET count = count + 1, last_at = ?1
                 WHERE id = (SELECT id FROM audit_log
                   WHERE last_at IS NOT NULL AND actor = ?2 AND source = ?3 AND action = ?4
                     AND outcome = ?5 AND at >= ?6 AND at < ?7
                   ORDER BY id DESC LIMIT 1)",
                params![now, e.actor, e.source, e.action, e.outcome, from, to],
            )?;
            if counted > 0 {
                return Ok(());
            }
        }
        conn.execute(
            "INSERT INTO audit_log (at, actor, source, action, target, before, after, outcome, count, last_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9)",
            params![
                now,
                e.actor,
                e.source,
                e.action,
                e.target,
                j(&e.before),
                j(&e.after),
                e.outcome,
                e.is_refused_login().then_some(&now),
            ],
        )?;
        let rows: i64 = conn.query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))?;
        if rows > i64::from(keep.max_rows) {
            drop(conn);
            let n = self.prune_audit(keep)?;
            tracing::info!(rows = n, "pruned the audit log (over audit.max_rows)");
        }
        Ok(())
    }

    /// Removes audit rows older than `keep.max_days` and, when more than
    /// `keep.max_rows` are left, the oldest down to 95 % of the cap:
    /// counted refused logins first, then any. Returns the rows removed.
    pub fn prune_audit(&self, keep: AuditRetention) -> Result<usize> {
        let cutoff = self.clock.now_utc() - time::Duration::days(i64::from(keep.max_days));
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut n = tx.execute("DELETE FROM audit_log WHERE at < ?1", [fmt_time(cutoff)])?;
        let rows: i64 = tx.query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))?;
        let max = i64::from(keep.max_rows);
        if rows > max {
            let excess = rows - (max - max / 20);
            let refused = tx.execute(
                "DELETE FROM audit_log WHERE id IN
                   (SELECT id FROM audit_log WHERE last_at IS NOT NULL ORDER BY id LIMIT ?1)",
                [excess],
            )?;
            n += refused;
            let left = excess - refused as i64;
            if left > 0 {
                n += tx.execute(
                    "DELETE FROM audit_log WHERE id IN
                       (SELECT id FROM audit_log ORDER BY id LIMIT ?1)",
                    [left],
                )?;
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// Audit entries, newest first, with ids below `before` when given.
    pub fn audit_log(&self, limit: usize, before: Option<i64>) -> Result<Vec<AuditEntry>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, at, actor, source, action, target, before, after, outcome, count, last_at
             FROM audit_log WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        let v = st
            .query_map(params![before.unwrap_or(i64::MAX), limit as i64], |r| {
                Ok(AuditEntry {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    actor: r.get(2)?,
                    source: r.get(3)?,
                    action: r.get(4)?,
                    target: r.get(5)?,
                    before: parse(r.get(6)?),
                    after: parse(r.get(7)?),
                    outcome: r.get(8)?,
                    count: r.get(9)?,
                    last_at: r.get(10)?,
                })
            })?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(v)
    }

    /// Number of rows in the audit log.
    pub fn audit_rows(&self) -> Result<usize> {
        let n: Option<i64> = self
            .conn()
            .query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))
            .optional()?;
        Ok(n.unwrap_or(0) as usize)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::base::clock::ManualClock;

    /// 2026-07-15T01:00:00Z.
    const T0: i64 = 1_784_077_200_000;

    fn store() -> (tempfile::TempDir, Arc<ManualClock>, Store) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::at(T0));
        let s = Store::open_with_clock(dir.path(), clock.clone()).unwrap();
        (dir, clock, s)
    }

    fn refused<'a>(user: &'a str, source: &'a str, outcome: &'a str) -> NewAudit<'a> {
        NewAudit {
            actor: user,
            source,
            action: "login",
            target: Some(user),
            outcome,
            ..Default::default()
        }
    }

    fn change(n: usize) -> NewAudit<'static> {
        NewAudit {
            actor: "adm",
            source: "10.0.0.9",
            action: "device.adopt",
            target: Some("cam"),
            after: Some(serde_json::json!({ "n": n })),
            outcome: "ok",
            ..Default::default()
        }
    }

    /// A data directory where no user was ever made (nothing but the store
    /// opened it, as for `tgw camera sync-time` or the automatic clock
    /// sync on a fresh gateway): an audit row is written and read back,
    /// also after the store is opened again.
    #[test]
    fn a_fresh_store_without_users_takes_audit_rows() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.users().unwrap().len(), 0);
        assert_eq!(s.audit_rows().unwrap(), 0);
        s.audit(
            NewAudit {
                actor: "cli",
                source: "cli",
                action: "camera.sync_time",
                target: Some("cam-1"),
                outcome: "ok",
                ..Default::default()
            },
            AuditRetention::default(),
        )
        .unwrap();
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        let log = s.audit_log(10, None).unwrap();
        assert_eq!(log.len(), 1, "{log:?}");
        assert_eq!(
            (log[0].actor.as_str(), log[0].action.as_str()),
            ("cli", "camera.sync_time")
        );
        assert_eq!(log[0].target.as_deref(), Some("cam-1"));
    }

    /// 1,000 refused logins of one user from one address within a minute
    /// are one row with count 1000; another address, another outcome or
    /// the next minute start a new row; successful logins are not counted.
    #[test]
    fn refused_logins_are_counted_per_user_address_and_minute() {
        let (_d, clock, s) = store();
        let keep = AuditRetention::default();
        for _ in 0..1000 {
            s.audit(refused("admin", "192.168.10.23", "failed"), keep)
                .unwrap();
            clock.advance(50); // 1,000 attempts over 50 s
        }
        let log = s.audit_log(10, None).unwrap();
        assert_eq!(log.len(), 1, "{log:?}");
        assert_eq!(log[0].count, 1000);
        assert_eq!(log[0].outcome, "failed");
        assert_eq!(log[0].at, "2026-07-15T01:00:00Z");
        assert_eq!(log[0].last_at.as_deref(), Some("2026-07-15T01:00:49Z"));

        s.audit(refused("admin", "192.168.10.24", "failed"), keep)
            .unwrap();
        s.audit(refused("admin", "192.168.10.23", "rate_limited"), keep)
            .unwrap();
        clock.advance(11_000); // 01:01:00: the next minute
        s.audit(refused("admin", "192.168.10.23", "failed"), keep)
            .unwrap();
        s.audit(refused("admin", "192.168.10.23", "ok"), keep)
            .unwrap();
        s.audit(refused("admin", "192.168.10.23", "ok"), keep)
            .unwrap();
        let log = s.audit_log(10, None).unwrap();
        let counts: Vec<(&str, &str, i64)> = log
            .iter()
            .rev()
            .map(|e| (e.source.as_str(), e.outcome.as_str(), e.count))
            .collect();
        assert_eq!(
            counts,
            [
                ("192.168.10.23", "failed", 1000),
                ("192.168.10.24", "failed", 1),
                ("192.168.10.23", "rate_limited", 1),
                ("192.168.10.23", "failed", 1),
                ("192.168.10.23", "ok", 1),
                ("192.168.10.23", "ok", 1),
            ]
        );
        assert!(log[0].last_at.is_none(), "a successful login is one event");
    }

    /// An entry that takes the log over `max_rows` removes the oldest rows
    /// (down to 95 % of the cap), counted refused logins before anything
    /// else.
    #[test]
    fn the_row_cap_prunes_the_oldest_refused_logins_first() {
        let (_d, clock, s) = store();
        let keep = AuditRetention {
            max_rows: 100,
            max_days: 365,
        };
        for i in 0..100 {
            s.audit(change(i), keep).unwrap();
        }
        assert_eq!(s.audit_rows().unwrap(), 100);
        s.audit(change(100), keep).unwrap();
        let log = s.audit_log(1000, None).unwrap();
        assert_eq!(log.len(), 95, "pruned to 95 % of the cap");
        let ns: Vec<i64> = log
            .iter()
            .map(|e| e.after.as_ref().unwrap()["n"].as_i64().unwrap())
            .collect();
        assert_eq!(ns.last(), Some(&6), "the six oldest went: {ns:?}");
        assert_eq!(ns.first(), Some(&100));

        // Refused logins (one row per name) go before changes: 95
        // changes + 5 refused = the cap; one more change removes the 5
        // refused rows and then the oldest change.
        for i in 0..5 {
            s.audit(refused(&format!("ghost{i}"), "10.9.9.9", "failed"), keep)
                .unwrap();
            clock.advance(1_000);
        }
        assert_eq!(s.audit_rows().unwrap(), 100, "at the cap, not over it");
        s.audit(change(101), keep).unwrap();
        let log = s.audit_log(1000, None).unwrap();
        assert_eq!(log.len(), 95);
        assert!(log.iter().all(|e| e.action == "device.adopt"), "{log:?}");
        let ns: Vec<i64> = log
            .iter()
            .map(|e| e.after.as_ref().unwrap()["n"].as_i64().unwrap())
            .collect();
        assert_eq!((ns[0], ns[94]), (101, 7), "{ns:?}");
    }

    /// Rows older than `max_days` by the store's clock are pruned.
    #[test]
    fn rows_older_than_max_days_are_pruned() {
        let (_d, clock, s) = store();
        let keep = AuditRetention {
            max_rows: 1000,
            max_days: 30,
        };
        s.audit(change(1), keep).unwrap();
        clock.advance(20 * 86_400_000);
        s.audit(change(2), keep).unwrap();
        assert_eq!(s.prune_audit(keep).unwrap(), 0);
        clock.advance(11 * 86_400_000);
        assert_eq!(s.prune_audit(keep).unwrap(), 1);
        let log = s.audit_log(10, None).unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].after.as_ref().unwrap()["n"], 2);
    }
}
