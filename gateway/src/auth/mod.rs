//! Dashboard and API users: roles, argon2id password hashes, sessions,
//! bearer API tokens, login rate limiting and the audit log.
//!
//! Everything lives in the gateway's SQLite store under the `auth` component
//! ([`MIGRATIONS`]); the SQL is [`crate::store`]'s (users, sessions, audit),
//! the rules are here. Session times come from the store's injected clock.
//! Secrets are never stored or returned in the clear: passwords are argon2id
//! PHC strings; session ids and API tokens are random 256-bit values of
//! which only a SHA-256 digest is stored, so a copy of the database cannot
//! be replayed as a login. Every argon2 hash and verification runs in a
//! bounded [`HashPool`] (each takes 19 MiB). The rate limiter is in memory
//! and uses tokio's clock, so tests run it on paused time.
//!
//! | module | owns |
//! |---|---|
//! | `mod.rs` | [`Role`], [`Users`] (users, sessions, tokens, audit over the store), [`AuthError`] |
//! | [`password`] | argon2id hashing, the bounded [`HashPool`] it runs in, random secrets and digests, name and password checks |
//! | [`limiter`] | [`LoginLimiter`]: login attempts reserved before verifying; per (user, address) lockout, per-address limit, per-user slow-down, admin unlock |

pub mod limiter;
pub mod password;

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::base::clock::Clock;
use crate::base::error::{Error, ErrorKind};
use crate::store::audit::AuditRetention;
use crate::store::secrets::Password;
use crate::store::sessions::TokenRow;
use crate::store::{NewSession, Store, StoreError, UserRow};

pub use limiter::{Attempt, LoginLimiter, Refusal, Unlocked};
use password::DUMMY_HASH;
pub use password::{
    HashCost, HashPool, check_name, check_password, digest, hash_password, random_secret,
    verify_password,
};

/// Migrations of the `auth` component (the SQL lives in the store).
pub use crate::store::AUTH_MIGRATIONS as MIGRATIONS;
/// Audit entries, stored by [`crate::store`].
pub use crate::store::{AuditEntry, NewAudit};

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
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "technician" => Ok(Role::Technician),
            "admin" => Ok(Role::Admin),
            _ => Err(Error::invalid(format!(
                "unknown role `{s}` (viewer, operator, technician, admin)"
            ))),
        }
    }
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
    /// The password pool is full ([`HashPool`]); try again shortly.
    #[error("too many password checks in progress; try again in a moment")]
    Busy,
}

impl AuthError {
    /// The kind (HTTP status, MQTT code, metric label) of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            AuthError::Store(e) => e.kind(),
            AuthError::Hash(_) => ErrorKind::Internal,
            AuthError::Invalid(_) => ErrorKind::Invalid,
            AuthError::NoUser(_) => ErrorKind::NotFound,
            AuthError::Busy => ErrorKind::Busy,
        }
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

/// Session lifetime.
pub const SESSION_TTL: time::Duration = time::Duration::hours(12);

/// User, session, token and audit storage over the gateway's store.
#[derive(Clone)]
pub struct Users {
    store: Store,
    clock: Arc<dyn Clock>,
    /// How much audit log is kept; shared by every clone.
    audit_keep: Arc<Mutex<AuditRetention>>,
    pool: HashPool,
}

/// A token as issued: its id and the secret (shown once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// Id (to list and revoke it).
    pub id: i64,
    /// The secret, `tgw_` + 43 characters.
    pub token: String,
}

fn user_of(r: UserRow) -> User {
    User {
        name: r.name,
        role: r.role.parse().unwrap_or(Role::Viewer),
        created_at: r.created_at,
        disabled: r.disabled,
    }
}

impl Users {
    /// Applies the `auth` migrations and wraps the store; session times
    /// come from the store's clock.
    pub fn new(store: Store) -> Result<Self, AuthError> {
        store.migrate("auth", MIGRATIONS)?;
        let clock = store.clock().clone();
        Ok(Self {
            store,
            clock,
            audit_keep: Arc::default(),
            pool: HashPool::default(),
        })
    }

    /// Sets how much audit log is kept (every clone of this handle); the
    /// default is [`AuditRetention::default`].
    pub fn set_audit_retention(&self, keep: AuditRetention) {
        *self.audit_keep.lock().unwrap_or_else(|p| p.into_inner()) = keep;
    }

    fn audit_retention(&self) -> AuditRetention {
        *self.audit_keep.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The pool every hash and verification runs in (default:
    /// [`HashPool::DEFAULT_PERMITS`] permits).
    pub fn with_hash_pool(mut self, pool: HashPool) -> Self {
        self.pool = pool;
        self
    }

    /// The pool hashes and verifications run in.
    pub fn hash_pool(&self) -> &HashPool {
        &self.pool
    }

    /// Creates a user, or replaces the role and password of an existing one;
    /// the user's sessions end and its API tokens are revoked. Hashing takes
    /// a permit of the [`HashPool`] without waiting ([`AuthError::Busy`] when
    /// it is full).
    pub fn upsert(
        &self,
        name: &str,
        role: Role,
        pw: &Password,
        cost: HashCost,
    ) -> Result<(), AuthError> {
        check_name(name)?;
        check_password(pw)?;
        let permit = self.pool.try_acquire()?;
        let hash = hash_password(pw, cost)?;
        drop(permit);
        self.store.upsert_user(name, role.as_str(), &hash)?;
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
        let n = self
            .store
            .update_user(name, role.map(Role::as_str), disabled)?;
        match self.user(name)? {
            Some(u) if n > 0 || (role.is_none() && disabled.is_none()) => Ok(u),
            Some(u) => Ok(u),
            None => Err(AuthError::NoUser(name.into())),
        }
    }

    /// Deletes a user (sessions and tokens go with it: foreign keys cascade).
    pub fn delete(&self, name: &str) -> Result<(), AuthError> {
        if !self.store.delete_user(name)? {
            return Err(AuthError::NoUser(name.into()));
        }
        Ok(())
    }

    /// One user.
    pub fn user(&self, name: &str) -> Result<Option<User>, AuthError> {
        Ok(self.store.user(name)?.map(user_of))
    }

    /// All users by name.
    pub fn users(&self) -> Result<Vec<User>, AuthError> {
        Ok(self.store.users()?.into_iter().map(user_of).collect())
    }

    /// Number of enabled admins.
    pub fn admin_count(&self) -> Result<usize, AuthError> {
        Ok(self.store.admin_count()?)
    }

    /// [`Users::check`] in the [`HashPool`] (on a blocking thread; waits
    /// at most the pool's wait for a permit, else [`AuthError::Busy`]).
    pub async fn verify(&self, name: &str, pw: &str) -> Result<Option<Role>, AuthError> {
        let (me, name, pw) = (self.clone(), name.to_string(), pw.to_string());
        self.pool.run(move || me.check(&name, &pw)).await?
    }

    /// Checks a user's password; `Some(role)` when it matches an enabled user.
    /// Runs a dummy verification for unknown users so timing does not tell
    /// which names exist. Runs on the caller's thread, outside the pool:
    /// servers call [`Users::verify`].
    pub fn check(&self, name: &str, pw: &str) -> Result<Option<Role>, AuthError> {
        match self.store.user_secret(name)? {
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
        let now = self.clock.now_utc();
        self.store.start_session(&NewSession {
            id_hash: &digest(&id),
            user: name,
            csrf: &csrf,
            created_at: now,
            expires_at: now + SESSION_TTL,
            ip,
        })?;
        Ok((id, csrf))
    }

    /// The principal of a session cookie value, if valid and unexpired.
    pub fn session(&self, id: &str) -> Result<Option<Principal>, AuthError> {
        let h = digest(id);
        let row = self.store.session_user(&h, self.clock.now_utc())?;
        Ok(row.and_then(|r| {
            Some(Principal {
                user: r.user,
                role: r.role.parse().ok()?,
                via: Via::Session {
                    id_hash: h,
                    csrf: r.csrf,
                },
            })
        }))
    }

    /// Ends a session by the digest of its id.
    pub fn end_session(&self, id_hash: &str) -> Result<(), AuthError> {
        self.store.end_session(id_hash)?;
        Ok(())
    }

    /// Issues an API token for a user; the token is returned once
    /// (`tgw_` + 43 characters) and only its digest is kept.
    pub fn create_token(&self, name: &str, label: &str) -> Result<String, AuthError> {
        Ok(self.issue_token(name, label)?.token)
    }

    /// [`Users::create_token`] with the new token's id.
    pub fn issue_token(&self, name: &str, label: &str) -> Result<IssuedToken, AuthError> {
        if self.user(name)?.is_none() {
            return Err(AuthError::NoUser(name.into()));
        }
        let token = format!("tgw_{}", random_secret());
        let id = self.store.insert_token(&digest(&token), name, label)?;
        Ok(IssuedToken { id, token })
    }

    /// A user's API tokens, oldest first (id, label, created, last used;
    /// never the secret).
    pub fn tokens(&self, name: &str) -> Result<Vec<TokenRow>, AuthError> {
        if self.user(name)?.is_none() {
            return Err(AuthError::NoUser(name.into()));
        }
        Ok(self.store.tokens(name)?)
    }

    /// Revokes one of a user's tokens; the revoked token, or `None` when the
    /// user has no token with that id.
    pub fn revoke_token(&self, name: &str, id: i64) -> Result<Option<TokenRow>, AuthError> {
        if self.user(name)?.is_none() {
            return Err(AuthError::NoUser(name.into()));
        }
        Ok(self.store.revoke_token(name, id)?)
    }

    /// The principal of a bearer token.
    pub fn token(&self, token: &str) -> Result<Option<Principal>, AuthError> {
        let row = self.store.token_user(&digest(token))?;
        Ok(row.and_then(|(user, role)| {
            Some(Principal {
                user,
                role: role.parse().ok()?,
                via: Via::Token,
            })
        }))
    }

    /// Writes an audit entry (refused logins are counted per user,
    /// address, outcome and minute), pruning the log when it is over its
    /// [`AuditRetention`].
    pub fn audit(&self, e: NewAudit<'_>) -> Result<(), AuthError> {
        self.store.audit(e, self.audit_retention())?;
        Ok(())
    }

    /// Removes audit rows beyond the [`AuditRetention`]; returns how many.
    pub fn prune_audit(&self) -> Result<usize, AuthError> {
        Ok(self.store.prune_audit(self.audit_retention())?)
    }

    /// Audit entries, newest first, with ids below `before` when given.
    pub fn audit_log(
        &self,
        limit: usize,
        before: Option<i64>,
    ) -> Result<Vec<AuditEntry>, AuthError> {
        Ok(self.store.audit_log(limit, before)?)
    }
}

/// Prunes the audit log to its retention every `period` (the first time
/// at once) until `shutdown`; entries beyond the row cap are also pruned
/// as they are written.
pub async fn prune_audit_every(
    users: Users,
    period: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let u = users.clone();
        match tokio::task::spawn_blocking(move || u.prune_audit()).await {
            Ok(Ok(n)) if n > 0 => tracing::info!(rows = n, "pruned the audit log"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "pruning the audit log failed"),
            Err(e) => tracing::warn!(error = %e, "pruning the audit log failed"),
        }
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

    /// Sessions end after [`SESSION_TTL`] by the store's clock; expired
    /// rows are swept when the next session starts.
    #[test]
    fn sessions_expire_by_the_injected_clock() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(crate::base::clock::ManualClock::at(1_784_077_200_000));
        let s = Store::open_with_clock(dir.path(), clock.clone()).unwrap();
        let u = Users::new(s).unwrap();
        u.upsert(
            "ana",
            Role::Viewer,
            &Password::new("pw-ana-123"),
            HashCost::FAST,
        )
        .unwrap();
        assert_eq!(
            u.user("ana").unwrap().unwrap().created_at,
            "2026-07-15T01:00:00Z"
        );
        let (sid, _) = u.create_session("ana", "127.0.0.1").unwrap();
        clock.advance(SESSION_TTL.whole_milliseconds() as i64 - 1_000);
        assert!(u.session(&sid).unwrap().is_some());
        clock.advance(2_000);
        assert!(u.session(&sid).unwrap().is_none());
        let (sid2, _) = u.create_session("ana", "127.0.0.1").unwrap();
        assert!(u.session(&sid2).unwrap().is_some());
        let left: i64 = u
            .store
            .with_conn(|c| Ok(c.query_row("SELECT COUNT(*) FROM auth_session", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(left, 1, "the expired session was swept");
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
}
