//! The data directory (`gateway.data_dir`) before the store opens it: created
//! (or made) 0700 on first start (with a log line naming it), refused when it or the
//! files holding secrets are open to group or others, and refused when
//! `tgw.db` is empty or not SQLite while the directory holds other state —
//! never silently re-initialised.
//!
//! The files are private because `tgw.db` holds sessions, CSRF tokens,
//! password hashes, sealed device passwords, the audit log and the outbox;
//! `secret.key` unseals the passwords.

use std::io::Read as _;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use super::{Result, StoreError};

/// Setting this environment variable to `1` lets the gateway start with a
/// data directory or database that group or others can access (a warning is
/// logged instead). `secret.key` is refused regardless.
pub const ALLOW_OPEN_PERMISSIONS_ENV: &str = "TGW_ALLOW_OPEN_PERMISSIONS";

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "tgw.db";

/// Whether [`ALLOW_OPEN_PERMISSIONS_ENV`] is set to `1` (or `true`).
pub fn open_permissions_allowed() -> bool {
    std::env::var(ALLOW_OPEN_PERMISSIONS_ENV)
        .is_ok_and(|v| v.trim() == "1" || v.trim().eq_ignore_ascii_case("true"))
}

/// Creates `dir` (mode 0700, parents too) when it does not exist, logging
/// its path at info: a first start is visible in the log, so is a mistyped
/// `data_dir`. An existing directory that holds no state yet (no
/// `secret.key`, no `tgw.db`: a first start in a directory made by a
/// package or `mkdir`) is made 0700 the same way; one that holds state is
/// left for [`check_private`] to judge.
pub fn ensure(dir: &Path) -> Result<()> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {
            let mode = m.permissions().mode() & 0o777;
            let fresh = !dir.join("secret.key").exists() && !dir.join(DB_FILE).exists();
            if fresh && mode & 0o077 != 0 {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(
                    |e| {
                        StoreError::DataDir(format!(
                            "cannot make data directory {} private (chmod 700): {e}",
                            dir.display()
                        ))
                    },
                )?;
                tracing::info!(
                    path = %dir.display(),
                    was = %format!("{mode:o}"),
                    "data directory made private (0700) on first start"
                );
            }
            Ok(())
        }
        Ok(_) => Err(StoreError::DataDir(format!(
            "data directory {} is not a directory",
            dir.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| {
                    StoreError::DataDir(format!(
                        "cannot create data directory {}: {e}",
                        dir.display()
                    ))
                })?;
            tracing::info!(path = %dir.display(), "data directory created (first start)");
            Ok(())
        }
        Err(e) => Err(StoreError::DataDir(format!(
            "data directory {}: {e}",
            dir.display()
        ))),
    }
}

/// The paths the permission check looks at: the directory, the key and the
/// database with its WAL and shared-memory files.
fn private_paths(dir: &Path) -> [(PathBuf, bool); 5] {
    [
        (dir.to_path_buf(), true),
        (dir.join("secret.key"), false),
        (dir.join(DB_FILE), false),
        (dir.join(format!("{DB_FILE}-wal")), false),
        (dir.join(format!("{DB_FILE}-shm")), false),
    ]
}

/// Refuses a data directory, key or database that group or others can
/// access (any of the mode bits 0o077), naming each path, its mode and the
/// `chmod` that fixes it. With `allow_open` the directory and the database
/// are only warned about; an open `secret.key` is refused regardless.
pub fn check_private(dir: &Path, allow_open: bool) -> Result<()> {
    let mut open = Vec::new();
    let mut key_open = false;
    for (path, is_dir) in private_paths(dir) {
        let mode = match std::fs::metadata(&path) {
            Ok(m) => m.permissions().mode() & 0o777,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(StoreError::DataDir(format!("{}: {e}", path.display())));
            }
        };
        if mode & 0o077 != 0 {
            key_open |= path.ends_with("secret.key");
            let fix = if is_dir { "chmod 700" } else { "chmod 600" };
            open.push(format!(
                "{} has mode {mode:o} (fix: {fix} {})",
                path.display(),
                path.display()
            ));
        }
    }
    if open.is_empty() {
        return Ok(());
    }
    let list = open.join("; ");
    if allow_open && !key_open {
        tracing::warn!(
            files = %list,
            "data directory open to group or others; starting because {ALLOW_OPEN_PERMISSIONS_ENV}=1"
        );
        return Ok(());
    }
    Err(StoreError::DataDir(format!(
        "refusing to start: readable by group or others, and it holds sessions, password \
         hashes and device credentials: {list}{}",
        if key_open {
            String::new()
        } else {
            format!(" (or set {ALLOW_OPEN_PERMISSIONS_ENV}=1 to accept this)")
        }
    )))
}

/// Refuses a `tgw.db` that would silently become a new, empty database:
/// zero bytes long (with no WAL to recover from) while the directory holds
/// other state (`secret.key`, `assets/`), or not an SQLite file at all. A
/// missing database, or an empty one in an otherwise empty directory, is a
/// first start.
pub fn check_db(dir: &Path) -> Result<()> {
    let db = dir.join(DB_FILE);
    let meta = match std::fs::metadata(&db) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::DataDir(format!("{}: {e}", db.display()))),
    };
    if !meta.is_file() {
        return Err(StoreError::DataDir(format!(
            "{} is not a regular file",
            db.display()
        )));
    }
    if meta.len() == 0 {
        let wal = std::fs::metadata(dir.join(format!("{DB_FILE}-wal"))).map_or(0, |m| m.len());
        let state: Vec<String> = ["secret.key", "assets"]
            .iter()
            .map(|n| dir.join(n))
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if wal == 0 && !state.is_empty() {
            return Err(StoreError::DataDir(format!(
                "refusing to start: {} is empty (0 bytes) but the data directory holds {}; \
                 starting would create a new, empty database and lose its users, inventory \
                 and outbox. Restore tgw.db from a backup, or move the data directory aside \
                 to start afresh",
                db.display(),
                state.join(" and ")
            )));
        }
        return Ok(());
    }
    let mut head = [0u8; 16];
    let read = std::fs::File::open(&db).and_then(|mut f| f.read_exact(&mut head));
    if read.is_err() || &head != b"SQLite format 3\0" {
        return Err(StoreError::DataDir(format!(
            "refusing to start: {} is not an SQLite database ({} bytes, no SQLite header); \
             restore it from a backup, or move the data directory aside to start afresh",
            db.display(),
            meta.len()
        )));
    }
    Ok(())
}

/// Makes a database file the store just created private (0600) before
/// SQLite creates its WAL and shared-memory files, which take its mode.
pub fn make_private(path: &Path) -> Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| StoreError::DataDir(format!("cannot chmod 600 {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_world_readable_data_dir_is_refused_with_its_path() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("secret.key"), [0u8; 32]).unwrap();
        chmod(&dir.join("secret.key"), 0o600);
        chmod(&dir, 0o755);
        // It holds state: `ensure` leaves it for the check to refuse.
        ensure(&dir).unwrap();
        let e = check_private(&dir, false).unwrap_err().to_string();
        assert!(e.contains(&dir.display().to_string()), "{e}");
        assert!(e.contains("755") && e.contains("chmod 700"), "{e}");
        assert!(e.contains(ALLOW_OPEN_PERMISSIONS_ENV), "{e}");
        // The override starts anyway (a warning is logged).
        check_private(&dir, true).unwrap();
        chmod(&dir, 0o700);
        check_private(&dir, false).unwrap();
    }

    #[test]
    fn a_group_readable_database_or_wal_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        chmod(dir, 0o700);
        let wal = dir.join("tgw.db-wal");
        std::fs::write(&wal, b"").unwrap();
        chmod(&wal, 0o640);
        let e = check_private(dir, false).unwrap_err().to_string();
        assert!(e.contains("tgw.db-wal has mode 640"), "{e}");
        assert!(e.contains("chmod 600"), "{e}");
        chmod(&wal, 0o600);
        check_private(dir, false).unwrap();
    }

    #[test]
    fn an_open_key_is_refused_even_with_the_override() {
        let t = tempfile::tempdir().unwrap();
        let key = t.path().join("secret.key");
        std::fs::write(&key, [0u8; 32]).unwrap();
        chmod(&key, 0o644);
        let e = check_private(t.path(), true).unwrap_err().to_string();
        assert!(e.contains("secret.key has mode 644"), "{e}");
    }

    #[test]
    fn a_missing_data_dir_is_created_private() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("a/b");
        ensure(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let file = t.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert!(ensure(&file).is_err());
        // A directory without state yet (made by `mkdir`) is made private.
        let made = t.path().join("made");
        std::fs::create_dir(&made).unwrap();
        std::fs::write(made.join("gateway.toml"), b"").unwrap();
        chmod(&made, 0o755);
        ensure(&made).unwrap();
        check_private(&made, false).unwrap();
        assert_eq!(
            std::fs::metadata(&made).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }

    #[test]
    fn an_empty_database_beside_other_state_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        std::fs::write(dir.join("tgw.db"), b"").unwrap();
        // Alone, an empty file is a first start.
        check_db(dir).unwrap();
        std::fs::write(dir.join("secret.key"), [0u8; 32]).unwrap();
        let e = check_db(dir).unwrap_err().to_string();
        assert!(
            e.contains("tgw.db is empty") && e.contains("secret.key"),
            "{e}"
        );
    }

    /// Through `Store::open`, whatever the umask: private files, and a
    /// truncated database is refused rather than started afresh.
    #[test]
    fn the_store_keeps_its_files_private_and_refuses_a_truncated_db() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("data");
        let store = crate::store::Store::open(&dir).unwrap();
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        for f in ["tgw.db", "tgw.db-wal", "tgw.db-shm", "secret.key"] {
            let p = dir.join(f);
            if p.exists() {
                let m = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
                assert_eq!(m, 0o600, "{f}");
            }
        }
        drop(store);
        crate::store::Store::open(&dir).unwrap();
        for f in ["tgw.db-wal", "tgw.db-shm"] {
            let _ = std::fs::remove_file(dir.join(f));
        }
        std::fs::write(dir.join("tgw.db"), b"").unwrap();
        let e = crate::store::Store::open(&dir).err().unwrap().to_string();
        assert!(e.contains("is empty"), "{e}");
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_refused() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("tgw.db"), b"not a database at all, really").unwrap();
        let e = check_db(t.path()).unwrap_err().to_string();
        assert!(e.contains("not an SQLite database"), "{e}");
    }
}
