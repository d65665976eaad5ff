//! Encryption at rest for device passwords.
//!
//! A 32-byte key lives in `DATA_DIR/secret.key`, created on first run with
//! mode 0600 (never group- or world-readable). Each password is sealed with
//! XChaCha20-Poly1305 under a random 24-byte nonce, and the row it belongs to
//! (`device:ID` or `group:NAME`) is bound in as associated data, so a sealed
//! password copied to another row does not decrypt.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const VERSION: u8 = 1;

/// Errors of the key file and of sealing/opening.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The key file could not be read or created.
    #[error("credential key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The key file has the wrong size or is readable by others.
    #[error("credential key file {path}: {problem}")]
    BadKeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A stored password did not decrypt (wrong key file or tampered row).
    #[error("a stored password for {aad} does not decrypt with this key file")]
    Decrypt {
        /// The row it belongs to.
        aad: String,
    },
}

/// A password in memory. Its `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(s: impl Into<String>) -> Self {
        Password(s.into())
    }
    /// The clear text, for the one place that must send it (a device login).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The credential key.
pub struct SecretKey {
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

impl SecretKey {
    /// Loads `dir/secret.key`, creating it (mode 0600) if it does not exist.
    pub fn load_or_create(dir: &Path) -> Result<Self, SecretError> {
        let path = dir.join("secret.key");
        let io = |source| SecretError::Io {
            path: path.clone(),
            source,
        };
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut f) => {
                let mut key = [0u8; KEY_LEN];
                rand::rngs::OsRng.fill_bytes(&mut key);
                f.write_all(&key).map_err(io)?;
                f.sync_all().map_err(io)?;
                Ok(Self::from_bytes(&key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let meta = std::fs::metadata(&path).map_err(io)?;
                if meta.permissions().mode() & 0o077 != 0 {
                    return Err(SecretError::BadKeyFile {
                        path,
                        problem: format!(
                            "mode is {:o}; it must not be readable by group or others (chmod 600)",
                            meta.permissions().mode() & 0o777
                        ),
                    });
                }
                let bytes = std::fs::read(&path).map_err(io)?;
                let key: [u8; KEY_LEN] =
                    bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| SecretError::BadKeyFile {
                            path: path.clone(),
                            problem: format!("expected {KEY_LEN} bytes, found {}", bytes.len()),
                        })?;
                Ok(Self::from_bytes(&key))
            }
            Err(e) => Err(io(e)),
        }
    }

    fn from_bytes(key: &[u8; KEY_LEN]) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(key.into()),
        }
    }

    /// Seals a password for the row named by `aad`.
    pub fn seal(&self, aad: &str, password: &Password) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: password.expose().as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            // Encryption only fails for messages over ~256 GiB.
            .unwrap_or_default();
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens a password sealed for the row named by `aad`.
    pub fn open(&self, aad: &str, sealed: &[u8]) -> Result<Password, SecretError> {
        let err = || SecretError::Decrypt {
            aad: aad.to_string(),
        };
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != VERSION {
            return Err(err());
        }
        let (nonce, ct) = sealed[1..].split_at(NONCE_LEN);
        let pt = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| err())?;
        String::from_utf8(pt).map(Password).map_err(|_| err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_created_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let k1 = SecretKey::load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join("secret.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let sealed = k1.seal("device:cam-1", &Password::new("hunter2"));
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        let k2 = SecretKey::load_or_create(dir.path()).unwrap();
        assert_eq!(
            k2.open("device:cam-1", &sealed).unwrap().expose(),
            "hunter2"
        );
    }

    #[test]
    fn sealed_password_is_bound_to_its_row() {
        let dir = tempfile::tempdir().unwrap();
        let k = SecretKey::load_or_create(dir.path()).unwrap();
        let sealed = k.seal("device:cam-1", &Password::new("hunter2"));
        assert!(matches!(
            k.open("device:cam-2", &sealed),
            Err(SecretError::Decrypt { .. })
        ));
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(k.open("device:cam-1", &tampered).is_err());
        assert!(k.open("device:cam-1", &[]).is_err());
    }

    #[test]
    fn world_readable_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        SecretKey::load_or_create(dir.path()).unwrap();
        let p = dir.path().join("secret.key");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = SecretKey::load_or_create(dir.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("chmod 600"), "{e}");
    }

    #[test]
    fn password_never_prints() {
        let p = Password::new("hunter2");
        assert_eq!(format!("{p} {p:?}"), "*** ***");
    }
}
