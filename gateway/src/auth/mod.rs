//! Dashboard and API users: roles, argon2id password hashes, sessions,
//! bearer API tokens, login rate limiting and the audit log.
//!
//! Everything lives in the gateway's SQLite store under the `auth` component
//! ([`MIGRATIONS`]). Secrets are never stored or returned in the clear:
//! passwords are argon2id PHC strings; session ids and API tokens are random
//! 256-bit values of which only a SHA-256 digest is stored, so a copy of the
//! database cannot be replayed as a login. The rate limiter is in memory and
//! uses tokio's clock, so tests run it on paused time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use rand::RngCore as _;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::store::secrets::Password;
use crate::store::{Store, StoreError, fmt_time};

/// Migrations of the `auth` component.
pub const MIGRATIONS: &[&str] = &[r#"
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
"#];

/// A user's role; each includes the rights of those before it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything except users and the audit log.
    Viewer,
    /// May start and stop broadcasts.
    Operator,
    /// May change devices (adopt, credentials, probe, snapshot).
    Technician,
    /// May manage users, read the audit log and change the log level.
    Admin,
}

impl Role {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Technician => "technician",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "technician" => Ok(Role::Technician),
            "admin" => Ok(Role::Admin),
            _ => Err(format!(
                "unknown role `{s}` (viewer, operator, technician, admin)"
            )),
        }
    }
}

/// Argon2id cost. [`HashCost::DEFAULT`] follows the OWASP minimum
/// (19 MiB, 2 passes); tests use [`HashCost::FAST`].
#[derive(Debug, Clone, Copy)]
pub struct HashCost {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
}

impl HashCost {
    /// Production cost.
    pub const DEFAULT: HashCost = HashCost {
        m_kib: 19_456,
        t: 2,
    };
    /// Cheap cost for tests (still argon2id).
    pub const FAST: HashCost = HashCost { m_kib: 64, t: 1 };
}

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing failed (bad parameters; never the password itself).
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// Invalid input, named.
    #[error("{0}")]
    Invalid(String),
    /// No such user.
    #[error("no user `{0}`")]
    NoUser(String),
}

/// Hashes a password with argon2id into a PHC string.
pub fn hash_password(pw: &Password, cost: HashCost) -> Result<String, AuthError> {
    let params =
        Params::new(cost.m_kib, cost.t, 1, None).map_err(|e| AuthError::Hash(e.to_string()))?;
    let a = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    a.hash_password(pw.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Checks a password against a PHC string (parameters come from the string).
pub fn verify_password(pw: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| Argon2::default().verify_password(pw.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

/// A fresh 256-bit random secret, base64url without padding.
pub fn random_secret() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// SHA-256 hex digest of a session id or token (what is stored).
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Checks a user name: 1-32 of `[A-Za-z0-9._-]`.
pub fn check_name(name: &str) -> Result<(), AuthError> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(AuthError::Invalid(format!(
            "user name `{}` must be 1-32 characters of A-Z a-z 0-9 . _ -",
            name.chars().take(40).collect::<String>()
        )))
    }
}

/// Checks a new password's length (8-256 characters).
pub fn check_password(pw: &Password) -> Result<(), AuthError> {
    let n = pw.expose().chars().count();
    if (8..=256).contains(&n) {
        Ok(())
    } else {
        Err(AuthError::Invalid(
            "password must be 8 to 256 characters".into(),
        ))
    }
}

/// A user as listed (never with its hash).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct User {
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// When created (RFC 3339, UTC).
    pub created_at: String,
    /// Disabled users cannot log in.
    pub disabled: bool,
}

/// Who is making a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// User name.
    pub user: String,
    /// Role.
    pub role: Role,
    /// Session (with its CSRF token) or API token.
    pub via: Via,
}

/// How a principal authenticated.
#[derive(Debug, Clone, PartialEq)]
pub enum Via {
    /// A browser session cookie; mutating requests must carry this CSRF token.
    Session {
        /// Digest of the session id (for logout).
        id_hash: String,
        /// The synchronizer token.
        csrf: String,
    },
    /// A bearer API token.
    Token,
}

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

/// Session lifetime.
pub const SESSION_TTL: time::Duration = time::Duration::hours(12);

/// User, session, token and audit storage over the gateway's store.
#[derive(Clone)]
pub struct Users {
    store: Store,
}

impl Users {
    /// Applies the `auth` migrations and wraps the store.
    pub fn new(store: Store) -> Result<Self, AuthError> {
        store.with_conn(|c| crate::store::apply_migrations(c, "auth", MIGRATIONS))?;
        Ok(Self { store })
    }

    /// Creates a user, or replaces the role and password of an existing one.
    pub fn upsert(
        &self,
        name: &str,
        role: Role,
        pw: &Password,
        cost: HashCost,
    ) -> Result<(), AuthError> {
        check_name(name)?;
        check_password(pw)?;
        let hash = hash_password(pw, cost)?;
        self.store.with_conn(|c| {
            c.execute(
                "INSERT INTO auth_user (name, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(name) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash, disabled = 0",
                params![name, role.as_str(), hash, fmt_time(OffsetDateTime::now_utc())],
            )?;
            // A new password ends the user's sessions.
            c.execute("DELETE FROM auth_session WHERE user_name = ?1", [name])?;
            Ok(())
        })?;
        Ok(())
    }

    /// Changes a user's role and/or disabled flag. Disabling ends sessions
    /// and revokes tokens.
    pub fn update(
        &self,
        name: &str,
        role: Option<Role>,
        disabled: Option<bool>,
    ) -> Result<User, AuthError> {
        let n = self.store.with_conn(|c| {
            let mut n = 0;
            if let Some(r) = role {
                n += c.execute(
                    "UPDATE auth_user SET role = ?2 WHERE name = ?1",
                    params![name, r.as_str()],
                )?;
            }
            if let Some(d) = disabled {
                n += c.execute(
                    "UPDATE auth_user SET disabled = ?2 WHERE name = ?1",
                    params![name, d],
                )?;
                if d {
                    c.execute("DELETE FROM auth_session WHERE user_name = ?1", [name])?;
                    c.execute("DELETE FROM auth_token WHERE user_name = ?1", [name])?;
                }
            }
            Ok(n)
        })?;
        match self.user(name)? {
            Some(u) if n > 0 || (role.is_none() && disabled.is_none()) => Ok(u),
            Some(u) => Ok(u),
            None => Err(AuthError::NoUser(name.into())),
        }
    }

    /// Deletes a user (sessions and tokens go with it).
    pub fn delete(&self, name: &str) -> Result<(), AuthError> {
        let n = self
            .store
            .with_conn(|c| Ok(c.execute("DELETE FROM auth_user WHERE name = ?1", [name])?))?;
        if n == 0 {
            return Err(AuthError::NoUser(name.into()));
        }
        Ok(())
    }

    /// One user.
    pub fn user(&self, name: &str) -> Result<Option<User>, AuthError> {
        Ok(self.store.with_conn(|c| {
            Ok(c.query_row(
                "SELECT name, role, created_at, disabled FROM auth_user WHERE name = ?1",
                [name],
                row_user,
            )
            .optional()?)
        })?)
    }

    /// All users by name.
    pub fn users(&self) -> Result<Vec<User>, AuthError> {
        Ok(self.store.with_conn(|c| {
            let mut st =
                c.prepare("SELECT name, role, created_at, disabled FROM auth_user ORDER BY name")?;
            let v = st.query_map([], row_user)?.collect::<Result<Vec<_>, _>>()?;
            Ok(v)
        })?)
    }

    /// Number of enabled admins.
    pub fn admin_count(&self) -> Result<usize, AuthError> {
        Ok(self.store.with_conn(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM auth_user WHERE role = 'admin' AND disabled = 0",
                [],
                |r| r.get::<_, i64>(0),
            )?)
        })? as usize)
    }

    /// Checks a user's password; `Some(role)` when it matches an enabled user.
    /// Runs a dummy verification for unknown users so timing does not tell
    /// which names exist.
    pub fn check(&self, name: &str, pw: &str) -> Result<Option<Role>, AuthError> {
        let row: Option<(String, String, bool)> = self.store.with_conn(|c| {
            Ok(c.query_row(
                "SELECT role, password_hash, disabled FROM auth_user WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?)
        })?;
        match row {
            Some((role, hash, disabled)) => {
                let ok = verify_password(pw, &hash);
                Ok((ok && !disabled).then(|| role.parse().ok()).flatten())
            }
            None => {
                let _ = verify_password(pw, DUMMY_HASH);
                Ok(None)
            }
        }
    }

    /// Starts a session; returns (session id, CSRF token). Only the digest of
    /// the id is stored.
    pub fn create_session(&self, name: &str, ip: &str) -> Result<(String, String), AuthError> {
        let id = random_secret();
        let csrf = random_secret();
        let now = OffsetDateTime::now_utc();
        self.store.with_conn(|c| {
            c.execute(
                "DELETE FROM auth_session WHERE expires_at < ?1",
                [fmt_time(now)],
            )?;
            c.execute(
                "INSERT INTO auth_session (id_hash, user_name, csrf, created_at, expires_at, ip) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![digest(&id), name, csrf, fmt_time(now), fmt_time(now + SESSION_TTL), ip],
            )?;
            Ok(())
        })?;
        Ok((id, csrf))
    }

    /// The principal of a session cookie value, if valid and unexpired.
    pub fn session(&self, id: &str) -> Result<Option<Principal>, AuthError> {
        let h = digest(id);
        let now = fmt_time(OffsetDateTime::now_utc());
        let row: Option<(String, String, String)> = self.store.with_conn(|c| {
            Ok(c.query_row(
                "SELECT u.name, u.role, s.csrf FROM auth_session s JOIN auth_user u ON u.name = s.user_name
                 WHERE s.id_hash = ?1 AND s.expires_at > ?2 AND u.disabled = 0",
                params![h, now],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?)
        })?;
        Ok(row.and_then(|(user, role, csrf)| {
            Some(Principal {
                user,
                role: role.parse().ok()?,
                via: Via::Session { id_hash: h, csrf },
            })
        }))
    }

    /// Ends a session by the digest of its id.
    pub fn end_session(&self, id_hash: &str) -> Result<(), AuthError> {
        self.store.with_conn(|c| {
            c.execute("DELETE FROM auth_session WHERE id_hash = ?1", [id_hash])?;
            Ok(())
        })?;
        Ok(())
    }

    /// Issues an API token for a user; the token is returned once
    /// (`tgw_` + 43 characters) and only its digest is kept.
    pub fn create_token(&self, name: &str, label: &str) -> Result<String, AuthError> {
        if self.user(name)?.is_none() {
            return Err(AuthError::NoUser(name.into()));
        }
        let token = format!("tgw_{}", random_secret());
        self.store.with_conn(|c| {
            c.execute(
                "INSERT INTO auth_token (token_hash, user_name, label, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![digest(&token), name, label, fmt_time(OffsetDateTime::now_utc())],
            )?;
            Ok(())
        })?;
        Ok(token)
    }

    /// The principal of a bearer token.
    pub fn token(&self, token: &str) -> Result<Option<Principal>, AuthError> {
        let row: Option<(String, String)> = self.store.with_conn(|c| {
            Ok(c.query_row(
                "SELECT u.name, u.role FROM auth_token t JOIN auth_user u ON u.name = t.user_name
                 WHERE t.token_hash = ?1 AND u.disabled = 0",
                [digest(token)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
        })?;
        Ok(row.and_then(|(user, role)| {
            Some(Principal {
                user,
                role: role.parse().ok()?,
                via: Via::Token,
            })
        }))
    }

    /// Appends an audit entry.
    pub fn audit(&self, e: NewAudit<'_>) -> Result<(), AuthError> {
        let j = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string());
        self.store.with_conn(|c| {
            c.execute(
                "INSERT INTO audit_log (at, actor, source, action, target, before, after, outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    fmt_time(OffsetDateTime::now_utc()),
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
        })?;
        Ok(())
    }

    /// Audit entries, newest first, with ids below `before` when given.
    pub fn audit_log(
        &self,
        limit: usize,
        before: Option<i64>,
    ) -> Result<Vec<AuditEntry>, AuthError> {
        Ok(self.store.with_conn(|c| {
            let mut st = c.prepare(
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
                .collect::<Result<Vec<_>, _>>()?;
            Ok(v)
        })?)
    }
}

fn row_user(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        name: r.get(0)?,
        role: r.get::<_, String>(1)?.parse().unwrap_or(Role::Viewer),
        created_at: r.get(2)?,
        disabled: r.get(3)?,
    })
}

/// A PHC string used to spend the same time on unknown user names.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$8dY0Ygq4fQZq0Q3L5M9XyK2D2sN6cJ9b3Xr8dQ5n1oU";

/// Login rate limiting and lockout.
///
/// - per client address: at most `ip_max` failures within `window`, then
///   refused until the oldest failure leaves the window;
/// - per user: after `user_max` consecutive failures the account is locked
///   for `lockout` (a success resets the count).
///
/// Uses `tokio::time::Instant`, so tests drive it on paused time.
#[derive(Clone)]
pub struct LoginLimiter {
    inner: Arc<Mutex<LimiterState>>,
    /// Failures per address within the window.
    pub ip_max: usize,
    /// Window for the per-address count.
    pub window: Duration,
    /// Consecutive failures before a user is locked.
    pub user_max: u32,
    /// How long a lockout lasts.
    pub lockout: Duration,
}

#[derive(Default)]
struct LimiterState {
    ip: HashMap<IpAddr, Vec<tokio::time::Instant>>,
    user: HashMap<String, (u32, Option<tokio::time::Instant>)>,
}

/// Why a login attempt is refused before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Too many failures from this address; retry after.
    Address(Duration),
    /// The user is locked out; retry after.
    Locked(Duration),
}

impl Default for LoginLimiter {
    fn default() -> Self {
        Self {
            inner: Arc::default(),
            ip_max: 10,
            window: Duration::from_secs(300),
            user_max: 5,
            lockout: Duration::from_secs(900),
        }
    }
}

impl LoginLimiter {
    fn state(&self) -> std::sync::MutexGuard<'_, LimiterState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether an attempt may proceed.
    pub fn check(&self, ip: IpAddr, user: &str) -> Result<(), Refusal> {
        let now = tokio::time::Instant::now();
        let mut s = self.state();
        if let Some((_, Some(until))) = s.user.get(user)
            && *until > now
        {
            return Err(Refusal::Locked(*until - now));
        }
        let window = self.window;
        let fails = s.ip.entry(ip).or_default();
        fails.retain(|t| now.duration_since(*t) < window);
        if fails.len() >= self.ip_max {
            let oldest = fails.first().copied().unwrap_or(now);
            return Err(Refusal::Address(
                window.saturating_sub(now.duration_since(oldest)),
            ));
        }
        Ok(())
    }

    /// Records a failure; returns true when it locked the user.
    pub fn failed(&self, ip: IpAddr, user: &str) -> bool {
        let now = tokio::time::Instant::now();
        let mut s = self.state();
        s.ip.entry(ip).or_default().push(now);
        // Bound memory: forget addresses with nothing in the window.
        if s.ip.len() > 10_000 {
            let w = self.window;
            s.ip.retain(|_, v| v.last().is_some_and(|t| now.duration_since(*t) < w));
        }
        let e = s.user.entry(user.to_string()).or_insert((0, None));
        if e.1.is_some_and(|u| u <= now) {
            *e = (0, None);
        }
        e.0 += 1;
        if e.0 >= self.user_max && e.1.is_none() {
            e.1 = Some(now + self.lockout);
            return true;
        }
        false
    }

    /// Records a success: the user's failure count resets.
    pub fn succeeded(&self, user: &str) {
        self.state().user.remove(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> (tempfile::TempDir, Users) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        (dir, Users::new(s).unwrap())
    }

    #[test]
    fn password_is_argon2id_and_verifies() {
        let h = hash_password(&Password::new("correct horse"), HashCost::FAST).unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(!h.contains("correct horse"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("x", "not a phc string"));
    }

    #[test]
    fn users_sessions_tokens_roundtrip() {
        let (_d, u) = users();
        u.upsert(
            "ana",
            Role::Technician,
            &Password::new("pw-ana-123"),
            HashCost::FAST,
        )
        .unwrap();
        assert_eq!(
            u.check("ana", "pw-ana-123").unwrap(),
            Some(Role::Technician)
        );
        assert_eq!(u.check("ana", "nope-nope").unwrap(), None);
        assert_eq!(u.check("bob", "pw-ana-123").unwrap(), None);
        let (sid, csrf) = u.create_session("ana", "127.0.0.1").unwrap();
        let p = u.session(&sid).unwrap().unwrap();
        assert_eq!(p.role, Role::Technician);
        assert!(matches!(&p.via, Via::Session { csrf: c, .. } if *c == csrf));
        assert!(u.session("forged").unwrap().is_none());
        let tok = u.create_token("ana", "ci").unwrap();
        assert!(tok.starts_with("tgw_"));
        assert_eq!(u.token(&tok).unwrap().unwrap().user, "ana");
        // Nothing secret is stored in the clear.
        let dump: Vec<String> = u
            .store
            .with_conn(|c| {
                let mut st = c.prepare("SELECT id_hash || csrf FROM auth_session UNION ALL SELECT token_hash FROM auth_token UNION ALL SELECT password_hash FROM auth_user")?;
                Ok(st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?)
            })
            .unwrap();
        assert!(
            dump.iter()
                .all(|s| !s.contains(&sid) && !s.contains(&tok) && !s.contains("pw-ana-123"))
        );
        // Disabling ends sessions and tokens.
        u.update("ana", None, Some(true)).unwrap();
        assert!(u.session(&sid).unwrap().is_none());
        assert!(u.token(&tok).unwrap().is_none());
        assert_eq!(u.check("ana", "pw-ana-123").unwrap(), None);
    }

    #[test]
    fn names_and_passwords_are_checked() {
        let (_d, u) = users();
        assert!(
            u.upsert(
                "",
                Role::Admin,
                &Password::new("long enough"),
                HashCost::FAST
            )
            .is_err()
        );
        assert!(
            u.upsert(
                "a b",
                Role::Admin,
                &Password::new("long enough"),
                HashCost::FAST
            )
            .is_err()
        );
        assert!(
            u.upsert("ok", Role::Admin, &Password::new("short"), HashCost::FAST)
                .is_err()
        );
        assert!("root".parse::<Role>().is_err());
        assert!(
            Role::Viewer < Role::Operator
                && Role::Operator < Role::Technician
                && Role::Technician < Role::Admin
        );
    }

    /// Per-user lockout after 5 failures, lifted after the lockout; per-address
    /// limit after 10 failures within the window. Paused tokio time.
    #[tokio::test(start_paused = true)]
    async fn limiter_locks_users_and_addresses() {
        let l = LoginLimiter::default();
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        for i in 0..4 {
            assert!(l.check(ip, "ana").is_ok());
            assert!(!l.failed(ip, "ana"), "attempt {i}");
        }
        assert!(l.failed(ip, "ana"));
        assert!(matches!(l.check(ip, "ana"), Err(Refusal::Locked(_))));
        // Other users from the same address still may try.
        assert!(l.check(ip, "bob").is_ok());
        tokio::time::advance(Duration::from_secs(901)).await;
        assert!(l.check(ip, "ana").is_ok());
        // 5 more failures (another user) reach the address limit of 10 in the window.
        for _ in 0..5 {
            l.failed(ip, "carl");
        }
        tokio::time::advance(Duration::from_secs(1)).await;
        // Only 5 in the window (the first 5 are 900 s old) -> allowed.
        assert!(l.check(ip, "dora").is_ok());
        for _ in 0..5 {
            l.failed(ip, "dora");
        }
        assert!(matches!(l.check(ip, "erin"), Err(Refusal::Address(_))));
        let other: IpAddr = "127.0.0.10".parse().unwrap();
        assert!(l.check(other, "erin").is_ok());
        tokio::time::advance(Duration::from_secs(301)).await;
        assert!(l.check(ip, "erin").is_ok());
        // Success resets the count.
        l.failed(ip, "fay");
        l.succeeded("fay");
        for _ in 0..4 {
            assert!(!l.failed(other, "fay"));
        }
    }
}
