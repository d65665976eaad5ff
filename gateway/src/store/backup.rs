//! Backups of a data directory (`tgw backup`, `tgw restore`): one archive
//! holding an online copy of the SQLite store (`VACUUM INTO`, consistent
//! while the gateway runs), the secret key and optionally the
//! configuration file.
//!
//! Format: `TGWBAK1\n`, a flag byte (0 plain, 1 encrypted), then for an
//! encrypted archive a 16-byte salt and a 24-byte nonce, then the payload
//! (XChaCha20-Poly1305 under a key from argon2id(passphrase, salt) — the
//! crates the store already uses for sealed passwords). The payload is a
//! list of entries (`u16` name length, name, `u64` length, bytes) ending
//! with the name `END` and a SHA-256 of everything before it, so a
//! truncated plain archive is refused too.

use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

const MAGIC: &[u8] = b"TGWBAK1\n";
/// Largest archive `open` reads (the store of a township is far smaller).
pub const MAX_ARCHIVE: u64 = 4 << 30;

/// What a backup holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Contents {
    /// (name, bytes): `tgw.db`, `secret.key`, `gateway.toml`.
    pub files: Vec<(String, Vec<u8>)>,
}

/// A consistent copy of the store at `data_dir` (safe while it runs).
pub fn snapshot_db(data_dir: &Path, tmp: &Path) -> anyhow::Result<Vec<u8>> {
    let db = data_dir.join(super::data_dir::DB_FILE);
    anyhow::ensure!(db.exists(), "{}: no store here", db.display());
    let conn = rusqlite::Connection::open_with_flags(
        &db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let out = tmp.join("tgw.db");
    conn.execute("VACUUM INTO ?1", [out.display().to_string()])?;
    Ok(std::fs::read(&out)?)
}

fn encode(c: &Contents) -> Vec<u8> {
    let mut out = Vec::new();
    let entry = |name: &str, data: &[u8], out: &mut Vec<u8>| {
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(data.len() as u64).to_be_bytes());
        out.extend_from_slice(data);
    };
    for (n, d) in &c.files {
        entry(n, d, &mut out);
    }
    let sum = Sha256::digest(&out).to_vec();
    entry("END", &sum, &mut out);
    out
}

fn decode(mut b: &[u8]) -> anyhow::Result<Contents> {
    let all = b;
    let truncated = || anyhow::anyhow!("the backup archive is truncated or damaged");
    let mut files = Vec::new();
    loop {
        let start = all.len() - b.len();
        if b.len() < 2 {
            return Err(truncated());
        }
        let nl = u16::from_be_bytes([b[0], b[1]]) as usize;
        b = &b[2..];
        let name = b.get(..nl).ok_or_else(truncated)?;
        let name = std::str::from_utf8(name)
            .map_err(|_| truncated())?
            .to_string();
        b = &b[nl..];
        let len = b.get(..8).ok_or_else(truncated)?;
        let len = u64::from_be_bytes(len.try_into().map_err(|_| truncated())?);
        let len = usize::try_from(len).map_err(|_| truncated())?;
        b = &b[8..];
        let data = b.get(..len).ok_or_else(truncated)?.to_vec();
        b = &b[len..];
        if name == "END" {
            anyhow::ensure!(
                data == Sha256::digest(&all[..start]).to_vec() && b.is_empty(),
                "the backup archive is damaged (checksum mismatch)"
            );
            return Ok(Contents { files });
        }
        files.push((name, data));
    }
}

fn key(passphrase: &str, salt: &[u8]) -> anyhow::Result<[u8; 32]> {
    let mut k = [0u8; 32];
    argon2::Argon2::default()
        .hash_password_into(passphrase.as_bytes(), salt, &mut k)
        .map_err(|e| anyhow::anyhow!("deriving the backup key: {e}"))?;
    Ok(k)
}

/// The archive bytes, encrypted when a passphrase is given.
pub fn seal(c: &Contents, passphrase: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let payload = encode(c);
    let mut out = MAGIC.to_vec();
    match passphrase {
        None => {
            out.push(0);
            out.extend_from_slice(&payload);
        }
        Some(p) => {
            anyhow::ensure!(!p.is_empty(), "an empty passphrase protects nothing");
            let mut salt = [0u8; 16];
            let mut nonce = [0u8; 24];
            rand::rngs::OsRng.fill_bytes(&mut salt);
            rand::rngs::OsRng.fill_bytes(&mut nonce);
            let cipher = XChaCha20Poly1305::new(&key(p, &salt)?.into());
            let ct = cipher
                .encrypt(XNonce::from_slice(&nonce), payload.as_slice())
                .map_err(|_| anyhow::anyhow!("encrypting the backup failed"))?;
            out.push(1);
            out.extend_from_slice(&salt);
            out.extend_from_slice(&nonce);
            out.extend_from_slice(&ct);
        }
    }
    Ok(out)
}

/// Reads an archive; an encrypted one needs its passphrase.
pub fn open(bytes: &[u8], passphrase: Option<&str>) -> anyhow::Result<Contents> {
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| anyhow::anyhow!("not a tgw backup archive (bad header)"))?;
    match rest.first() {
        Some(0) => decode(&rest[1..]),
        Some(1) => {
            let p = passphrase.ok_or_else(|| {
                anyhow::anyhow!(
                    "this backup is encrypted: give its passphrase (--passphrase-stdin)"
                )
            })?;
            let body = &rest[1..];
            anyhow::ensure!(
                body.len() > 40 + 16,
                "the backup archive is truncated or damaged"
            );
            let (salt, body) = body.split_at(16);
            let (nonce, ct) = body.split_at(24);
            let cipher = XChaCha20Poly1305::new(&key(p, salt)?.into());
            let plain = cipher.decrypt(XNonce::from_slice(nonce), ct).map_err(|_| {
                anyhow::anyhow!("wrong passphrase, or the backup archive is truncated or damaged")
            })?;
            decode(&plain)
        }
        _ => Err(anyhow::anyhow!(
            "the backup archive is truncated or damaged"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Contents {
        Contents {
            files: vec![
                ("tgw.db".into(), vec![7u8; 5000]),
                ("secret.key".into(), vec![1u8; 32]),
            ],
        }
    }

    #[test]
    fn plain_and_encrypted_round_trip() {
        let c = sample();
        assert_eq!(open(&seal(&c, None).unwrap(), None).unwrap(), c);
        let sealed = seal(&c, Some("correct horse")).unwrap();
        assert!(
            !sealed.windows(32).any(|w| w == [1u8; 32]),
            "key not in clear"
        );
        assert_eq!(open(&sealed, Some("correct horse")).unwrap(), c);
    }

    #[test]
    fn wrong_passphrase_truncation_and_garbage_are_clear_errors() {
        let c = sample();
        let sealed = seal(&c, Some("right")).unwrap();
        let e = open(&sealed, Some("wrong")).unwrap_err().to_string();
        assert!(e.contains("wrong passphrase"), "{e}");
        let e = open(&sealed, None).unwrap_err().to_string();
        assert!(e.contains("encrypted"), "{e}");
        let e = open(&sealed[..sealed.len() - 10], Some("right"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("truncated"), "{e}");
        let plain = seal(&c, None).unwrap();
        for cut in [plain.len() - 1, plain.len() - 40, 100, 12, 9] {
            let e = open(&plain[..cut], None).unwrap_err().to_string();
            assert!(
                e.contains("truncated") || e.contains("damaged"),
                "{cut}: {e}"
            );
        }
        let e = open(b"hello", None).unwrap_err().to_string();
        assert!(e.contains("not a tgw backup"), "{e}");
    }

    #[test]
    fn snapshot_of_a_live_store_opens() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let _store = crate::store::Store::open(dir.path()).unwrap();
        let db = snapshot_db(dir.path(), tmp.path()).unwrap();
        assert!(db.starts_with(b"SQLite format 3\0"));
    }
}
