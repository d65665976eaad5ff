//! The audit log: who did what to which thing, from where, with the state
//! before and after (secrets masked by the caller) and the outcome.

use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::{Result, Store};

/// One audit entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Sequence number.
    pub id: i64,
    /// When (RFC 3339, UTC).
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

impl Store {
    /// Appends an audit entry, stamped now.
    pub fn audit(&self, e: NewAudit<'_>) -> Result<()> {
        let j = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string());
        let now = self.now_str();
        self.conn().execute(
            "INSERT INTO audit_log (at, actor, source, action, target, before, after, outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                now,
                e.actor,
                e.source,
                e.action,
                e.target,
                j(&e.before),
                j(&e.after),
                e.outcome
            ],
        )?;
        Ok(())
    }

    /// Audit entries, newest first, with ids below `before` when given.
    pub fn audit_log(&self, limit: usize, before: Option<i64>) -> Result<Vec<AuditEntry>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, at, actor, source, action, target, before, after, outcome FROM audit_log
             WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
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
                })
            })?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(v)
    }
}
