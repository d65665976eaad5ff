//! Password and secret handling: argon2id hashing and verification, the
//! bounded [`HashPool`] they run in, random session ids and tokens, their
//! SHA-256 digests, and the checks on new user names and passwords.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::AuthError;
use crate::store::secrets::Password;

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

/// The bounded pool argon2 work runs in: each hash or verification takes
/// [`HashCost::DEFAULT`]'s 19 MiB, so at most `permits` run at once (on
/// blocking threads). A request that finds the pool full waits at most
/// `wait` for a permit, then fails with [`AuthError::Busy`] (the API
/// answers 429 with `Retry-After`); nothing queues without bound.
#[derive(Clone)]
pub struct HashPool {
    sem: Arc<Semaphore>,
    wait: Duration,
}

impl Default for HashPool {
    fn default() -> Self {
        Self::new(Self::DEFAULT_PERMITS, Self::DEFAULT_WAIT)
    }
}

impl HashPool {
    /// Default number of concurrent hashes/verifications.
    pub const DEFAULT_PERMITS: usize = 2;
    /// Default longest wait for a permit.
    pub const DEFAULT_WAIT: Duration = Duration::from_millis(500);

    /// A pool of `permits` (at least 1) that waits at most `wait`.
    pub fn new(permits: usize, wait: Duration) -> Self {
        Self {
            sem: Arc::new(Semaphore::new(permits.max(1))),
            wait,
        }
    }

    /// A permit, waiting at most the pool's `wait`.
    pub async fn acquire(&self) -> Result<OwnedSemaphorePermit, AuthError> {
        if let Ok(p) = self.try_acquire() {
            return Ok(p);
        }
        match tokio::time::timeout(self.wait, self.sem.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            _ => Err(AuthError::Busy),
        }
    }

    /// A permit now, or [`AuthError::Busy`] (for synchronous callers).
    pub fn try_acquire(&self) -> Result<OwnedSemaphorePermit, AuthError> {
        self.sem
            .clone()
            .try_acquire_owned()
            .map_err(|_| AuthError::Busy)
    }

    /// Runs `f` (a hash or a verification) on a blocking thread once a
    /// permit is free. The permit is held until `f` returns, even when the
    /// caller goes away meanwhile.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let permit = self.acquire().await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await
        .map_err(|e| AuthError::Hash(format!("password worker: {e}")))
    }
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

/// A PHC string used to spend the same time on unknown user names.
pub(super) const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$8dY0Ygq4fQZq0Q3L5M9XyK2D2sN6cJ9b3Xr8dQ5n1oU";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_argon2id_and_verifies() {
        let h = hash_password(&Password::new("correct horse"), HashCost::FAST).unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(!h.contains("correct horse"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("x", "not a phc string"));
    }

    /// At most `permits` jobs run at once; one more waits at most `wait`
    /// and then fails `Busy` instead of queueing; a freed permit is reused.
    #[tokio::test(start_paused = true)]
    async fn pool_bounds_concurrent_work_and_refuses_when_full() {
        let pool = HashPool::new(2, Duration::from_millis(500));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let mut running = Vec::new();
        for _ in 0..2 {
            let rx = rx.clone();
            let p = pool.clone();
            running.push(tokio::spawn(async move {
                p.run(move || rx.lock().unwrap().recv().is_ok()).await
            }));
        }
        tokio::task::yield_now().await;
        while pool.sem.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let third = tokio::spawn({
            let p = pool.clone();
            async move { p.run(|| ()).await }
        });
        tokio::task::yield_now().await;
        tokio::time::advance(Duration::from_millis(501)).await;
        assert!(matches!(third.await.unwrap(), Err(AuthError::Busy)));
        assert!(matches!(pool.try_acquire(), Err(AuthError::Busy)));
        tx.send(()).unwrap();
        tx.send(()).unwrap();
        for r in running {
            assert!(r.await.unwrap().unwrap());
        }
        assert!(pool.run(|| 7).await.is_ok_and(|v| v == 7));
    }
}
