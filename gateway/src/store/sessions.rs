//! Browser sessions and bearer API tokens. Only SHA-256 digests of session
//! ids and tokens are stored (computed by [`crate::auth`]), so a copy of the
//! database cannot be replayed as a login.

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

    /// Stores an API token's digest for a user, created now.
    pub fn insert_token(&self, token_hash: &str, user: &str, label: &str) -> Result<()> {
        let now = self.now_str();
        self.conn().execute(
            "INSERT INTO auth_token (token_hash, user_name, label, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![token_hash, user, label, now],
        )?;
        Ok(())
    }

    /// (user, role) of an enabled user's token.
    pub fn token_user(&self, token_hash: &str) -> Result<Option<(String, String)>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT u.name, u.role FROM auth_token t JOIN auth_user u ON u.name = t.user_name
                 WHERE t.token_hash = ?1 AND u.disabled = 0",
                [token_hash],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }
}
