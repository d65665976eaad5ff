//! Browser sessions and bearer API tokens. Only SHA-256 digests of session
//! ids and tokens are stored (computed by [`crate::auth`]), so a copy of the
//! database cannot be replayed as a login. Tokens have a numeric id (to list
//! and revoke them without their secret) and the time they were last used
//! (updated at most once a minute).

use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

use super::{Result, Store, fmt_time};

/// The user behind a valid session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// User name.
    pub user: String,
    /// The user's role, as stored.
    pub role: String,
    /// The session's CSRF token.
    pub csrf: String,
}

/// A new session to store.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    /// Digest of the session id.
    pub id_hash: &'a str,
    /// User name.
    pub user: &'a str,
    /// The synchronizer token.
    pub csrf: &'a str,
    /// When it starts (sessions that expired before are removed).
    pub created_at: OffsetDateTime,
    /// When it ends.
    pub expires_at: OffsetDateTime,
    /// Client address.
    pub ip: &'a str,
}

/// An API token as listed: never its secret or digest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct TokenRow {
    /// Id (for revoking).
    pub id: i64,
    /// What it is for.
    pub label: String,
    /// When issued (RFC 3339, UTC).
    pub created_at: String,
    /// When last used (RFC 3339, UTC, to the minute); `null` if never.
    pub last_used_at: Option<String>,
}

impl Store {
    /// Removes expired sessions and stores a new one.
    pub fn start_session(&self, s: &NewSession<'_>) -> Result<()> {
        let conn = self.conn();
        conn.execute(
            "DELETE FROM auth_session WHERE expires_at < ?1",
            [fmt_time(s.created_at)],
        )?;
        conn.execute(
            "INSERT INTO auth_session (id_hash, user_name, csrf, created_at, expires_at, ip) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                s.id_hash,
                s.user,
                s.csrf,
                fmt_time(s.created_at),
                fmt_time(s.expires_at),
                s.ip
            ],
        )?;
        Ok(())
    }

    /// The enabled user of a session unexpired at `now`.
    pub fn session_user(&self, id_hash: &str, now: OffsetDateTime) -> Result<Option<SessionRow>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT u.name, u.role, s.csrf FROM auth_session s JOIN auth_user u ON u.name = s.user_name
                 WHERE s.id_hash = ?1 AND s.expires_at > ?2 AND u.disabled = 0",
                params![id_hash, fmt_time(now)],
                |r| {
                    Ok(SessionRow {
                        user: r.get(0)?,
                        role: r.get(1)?,
                        csrf: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Ends a session by the digest of its id.
    pub fn end_session(&self, id_hash: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM auth_session WHERE id_hash = ?1", [id_hash])?;
        Ok(())
    }

    /// Ends every session of a user; returns how many.
    pub fn end_user_sessions(&self, user: &str) -> Result<usize> {
        Ok(self
            .conn()
            .execute("DELETE FROM auth_session WHERE user_name = ?1", [user])?)
    }

    /// Stores an API token's digest for a user, created now; returns its id.
    pub fn insert_token(&self, token_hash: &str, user: &str, label: &str) -> Result<i64> {
        let now = self.now_str();
        let conn = self.conn();
        conn.execute(
            "INSERT INTO auth_token (token_hash, user_name, label, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![token_hash, user, label, now],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// (user, role) of an enabled user's token; marks the token used now
    /// (at most one write a minute per token).
    pub fn token_user(&self, token_hash: &str) -> Result<Option<(String, String)>> {
        let conn = self.conn();
        let found: Option<(String, String, Option<String>)> = conn
            .query_row(
                "SELECT u.name, u.role, t.last_used_at FROM auth_token t
                 JOIN auth_user u ON u.name = t.user_name
                 WHERE t.token_hash = ?1 AND u.disabled = 0",
                [token_hash],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((name, role, last_used)) = found else {
            return Ok(None);
        };
        let now = self.clock.now_utc();
        let stale = fmt_time(now - time::Duration::minutes(1));
        // Written only when a minute old, so most requests make no write;
        // best effort: a full disk must not turn into refused tokens.
        if last_used.is_none_or(|t| t < stale)
            && let Err(e) = conn.execute(
                "UPDATE auth_token SET last_used_at = ?2 WHERE token_hash = ?1",
                params![token_hash, fmt_time(now)],
            )
        {
            tracing::debug!(error = %e, "recording a token's last use failed");
        }
        let found = Some((name, role));
        Ok(found)
    }

    /// A user's tokens, oldest first.
    pub fn tokens(&self, user: &str) -> Result<Vec<TokenRow>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, label, created_at, last_used_at FROM auth_token WHERE user_name = ?1 ORDER BY id",
        )?;
        let v = st
            .query_map([user], |r| {
                Ok(TokenRow {
                    id: r.get(0)?,
                    label: r.get(1)?,
                    created_at: r.get(2)?,
                    last_used_at: r.get(3)?,
                })
            })?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(v)
    }

    /// Revokes one of a user's tokens; the revoked row, or `None` if the
    /// user has no token with that id.
    pub fn revoke_token(&self, user: &str, id: i64) -> Result<Option<TokenRow>> {
        let row = self.tokens(user)?.into_iter().find(|t| t.id == id);
        if row.is_some() {
            self.conn().execute(
                "DELETE FROM auth_token WHERE id = ?1 AND user_name = ?2",
                params![id, user],
            )?;
        }
        Ok(row)
    }

    /// Revokes every token of a user; returns how many.
    pub fn revoke_user_tokens(&self, user: &str) -> Result<usize> {
        Ok(self
            .conn()
            .execute("DELETE FROM auth_token WHERE user_name = ?1", [user])?)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use crate::store::{AUTH_MIGRATIONS, Store, apply_migrations, data_dir};

    /// Tokens issued before tokens had ids keep working after the
    /// migration (run when the store opens) and get ids in issue order.
    #[test]
    fn tokens_survive_the_migration_that_gives_them_ids() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(data_dir::DB_FILE);
        {
            // A database of a gateway from before the migration.
            let mut c = rusqlite::Connection::open(&db).unwrap();
            apply_migrations(&mut c, "auth", &AUTH_MIGRATIONS[..1]).unwrap();
            c.execute_batch(
                "INSERT INTO auth_user (name, role, password_hash, created_at) VALUES ('ana', 'viewer', 'x', '2026-01-01T00:00:00Z');
                 INSERT INTO auth_token (token_hash, user_name, label, created_at) VALUES ('h2', 'ana', 'second', '2026-01-03T00:00:00Z');
                 INSERT INTO auth_token (token_hash, user_name, label, created_at) VALUES ('h1', 'ana', 'first', '2026-01-02T00:00:00Z');",
            )
            .unwrap();
        }
        for (p, mode) in [(dir.path(), 0o700), (db.as_path(), 0o600)] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.token_user("h1").unwrap().unwrap().0, "ana");
        let t = s.tokens("ana").unwrap();
        let labels: Vec<(i64, &str)> = t.iter().map(|t| (t.id, t.label.as_str())).collect();
        assert_eq!(labels, [(1, "first"), (2, "second")]);
        assert!(t[0].last_used_at.is_some() && t[1].last_used_at.is_none());
        // Deleting the user still takes its tokens along.
        assert!(s.delete_user("ana").unwrap());
        assert!(s.tokens("ana").unwrap().is_empty());
    }
}
