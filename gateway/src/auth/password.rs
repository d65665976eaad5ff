//! Password and secret handling: argon2id hashing and verification, random
//! session ids and tokens, their SHA-256 digests, and the checks on new
//! user names and passwords.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest, Sha256};

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
}
