//! Dashboard and API users: name, role, argon2id hash (never returned by
//! listings), created time and the disabled flag. The roles and the hashing
//! are [`crate::auth`]'s; this is only their SQL.

use rusqlite::{OptionalExtension, params};

use super::{Result, Store};

/// A user row as listed (never with its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// Name.
    pub name: String,
    /// Role, as stored (`viewer`, `operator`, `technician`, `admin`).
    pub role: String,
    /// When created (RFC 3339, UTC).
    pub created_at: String,
    /// Disabled users cannot log in.
    pub disabled: bool,
}

fn row_user(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        name: r.get(0)?,
        role: r.get(1)?,
        created_at: r.get(2)?,
        disabled: r.get(3)?,
    })
}

impl Store {
    /// Creates a user, or replaces the role and password hash of an existing
    /// one (and enables it); either way the user's sessions end and its API
    /// tokens are revoked (a new password shuts out whoever had the old one).
    pub fn upsert_user(&self, name: &str, role: &str, password_hash: &str) -> Result<()> {
        let now = self.now_str();
        let conn = self.conn();
        conn.execute(
            "INSERT INTO auth_user (name, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(name) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash, disabled = 0",
            params![name, role, password_hash, now],
        )?;
        // A new password ends the user's sessions and revokes its tokens.
        conn.execute("DELETE FROM auth_session WHERE user_name = ?1", [name])?;
        conn.execute("DELETE FROM auth_token WHERE user_name = ?1", [name])?;
        Ok(())
    }

    /// Changes a user's role and/or disabled flag; disabling ends its
    /// sessions and revokes its tokens. Returns the rows changed.
    pub fn update_user(
        &self,
        name: &str,
        role: Option<&str>,
        disabled: Option<bool>,
    ) -> Result<usize> {
        let conn = self.conn();
        let mut n = 0;
        if let Some(r) = role {
            n += conn.execute(
                "UPDATE auth_user SET role = ?2 WHERE name = ?1",
                params![name, r],
            )?;
        }
        if let Some(d) = disabled {
            n += conn.execute(
                "UPDATE auth_user SET disabled = ?2 WHERE name = ?1",
                params![name, d],
            )?;
            if d {
                conn.execute("DELETE FROM auth_session WHERE user_name = ?1", [name])?;
                conn.execute("DELETE FROM auth_token WHERE user_name = ?1", [name])?;
            }
        }
        Ok(n)
    }

    /// Deletes a user (sessions and tokens go with it); false if none.
    pub fn delete_user(&self, name: &str) -> Result<bool> {
        Ok(self
            .conn()
            .execute("DELETE FROM auth_user WHERE name = ?1", [name])?
            > 0)
    }

    /// One user.
    pub fn user(&self, name: &str) -> Result<Option<UserRow>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT name, role, created_at, disabled FROM auth_user WHERE name = ?1",
                [name],
                row_user,
            )
            .optional()?)
    }

    /// All users by name.
    pub fn users(&self) -> Result<Vec<UserRow>> {
        let conn = self.conn();
        let mut st =
            conn.prepare("SELECT name, role, created_at, disabled FROM auth_user ORDER BY name")?;
        let v = st
            .query_map([], row_user)?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(v)
    }

    /// Number of enabled admins.
    pub fn admin_count(&self) -> Result<usize> {
        Ok(self.conn().query_row(
            "SELECT COUNT(*) FROM auth_user WHERE role = 'admin' AND disabled = 0",
            [],
            |r| r.get::<_, i64>(0),
        )? as usize)
    }

    /// (role, password hash, disabled) of a user, to check a login.
    pub fn user_secret(&self, name: &str) -> Result<Option<(String, String, bool)>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT role, password_hash, disabled FROM auth_user WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?)
    }
}
