//! Backup archives as files: building one from a data directory (shared by
//! `tgw backup` and the `[backup]` schedule), writing it so that a failure
//! never leaves a half-written archive under an archive's name, and the
//! scheduled directory's listing and pruning.
//!
//! A scheduled archive is written as `.tgw-STAMP.tgwbak.partial`, synced,
//! then renamed to `tgw-STAMP.tgwbak` and the directory synced: a name
//! matching `tgw-*.tgwbak` is always a whole archive. A `.partial` left by a
//! crash is removed by the next run. `STAMP` is `YYYYMMDDTHHMMSSZ` (UTC), so
//! names sort by age and the newest one's time is read from its name.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::backup::{self, Contents};

const PREFIX: &str = "tgw-";
const SUFFIX: &str = ".tgwbak";
const PARTIAL: &str = ".partial";

/// Why a backup failed, as a bounded metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailKind {
    /// The destination volume is full (ENOSPC, EDQUOT).
    NoSpace,
    /// The destination is read-only or not writable (EROFS, EACCES, EPERM).
    ReadOnly,
    /// Another I/O error at the destination (not a directory, EIO, …).
    Io,
    /// The store or key could not be read (the source side).
    Source,
}

impl FailKind {
    /// The label (`tgw_backup_runs_total{result}`, the alarm's `reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            FailKind::NoSpace => "no_space",
            FailKind::ReadOnly => "read_only",
            FailKind::Io => "io",
            FailKind::Source => "source",
        }
    }

    /// The kind of a destination I/O error.
    pub fn of_io(e: &std::io::Error) -> FailKind {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::StorageFull | K::QuotaExceeded => FailKind::NoSpace,
            K::ReadOnlyFilesystem | K::PermissionDenied => FailKind::ReadOnly,
            _ => FailKind::Io,
        }
    }
}

/// A failed backup: its kind and a message naming the path (no secret).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct BackupError {
    /// Why, as a label.
    pub kind: FailKind,
    /// What failed, with the path.
    pub message: String,
}

impl BackupError {
    fn io(path: &Path, what: &str, e: &std::io::Error) -> BackupError {
        BackupError {
            kind: FailKind::of_io(e),
            message: format!("{}: {what}: {e}", path.display()),
        }
    }
    fn source(e: impl std::fmt::Display) -> BackupError {
        BackupError {
            kind: FailKind::Source,
            message: e.to_string(),
        }
    }
}

/// The archive of `data_dir` (store copied online, the key, and `config`
/// when given), sealed to `passphrase` when given.
pub fn build_archive(
    data_dir: &Path,
    config: Option<&Path>,
    passphrase: Option<&str>,
) -> Result<Vec<u8>, BackupError> {
    let tmp = data_dir.join(format!(".backup-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| BackupError::io(&tmp, "temporary copy", &e))?;
    let db = backup::snapshot_db(data_dir, &tmp);
    let _ = std::fs::remove_dir_all(&tmp);
    let db = db.map_err(|e| BackupError::source(format!("copying the store: {e:#}")))?;
    let key_path = data_dir.join("secret.key");
    let key = std::fs::read(&key_path)
        .map_err(|e| BackupError::source(format!("{}: {e}", key_path.display())))?;
    let mut files = vec![("tgw.db".to_string(), db), ("secret.key".to_string(), key)];
    if let Some(c) = config {
        let text =
            std::fs::read(c).map_err(|e| BackupError::source(format!("{}: {e}", c.display())))?;
        files.push(("gateway.toml".into(), text));
    }
    backup::seal(&Contents { files }, passphrase).map_err(BackupError::source)
}

/// The file name of an archive taken at `at`.
pub fn archive_name(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{PREFIX}{:04}{:02}{:02}T{:02}{:02}{:02}Z{SUFFIX}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// When the archive called `name` was taken (None: not an archive name).
pub fn archive_time(name: &str) -> Option<OffsetDateTime> {
    let stamp = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(stamp, &fmt)
        .ok()
        .map(|t| t.assume_utc())
}

/// The archives in `dir`, oldest first (none when `dir` is missing).
pub fn list_archives(dir: &Path) -> Vec<(OffsetDateTime, PathBuf)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = rd
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let at = archive_time(&name)?;
            e.file_type().ok()?.is_file().then(|| (at, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// The function that writes an archive's bytes into its open file (a seam:
/// unit tests inject a full disk).
pub type WriteFn = dyn Fn(&mut std::fs::File, &[u8]) -> std::io::Result<()> + Send + Sync;

/// The real writer.
pub fn write_all(f: &mut std::fs::File, bytes: &[u8]) -> std::io::Result<()> {
    f.write_all(bytes)
}

/// Writes `bytes` as `dir/name` (0600) through a `.partial` file, synced and
/// renamed; on any failure the partial file is removed and nothing carries
/// the archive's name. Creates `dir` (0700) if missing.
pub fn write_archive(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    write: &WriteFn,
) -> Result<PathBuf, BackupError> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| BackupError::io(dir, "creating the backup directory", &e))?;
    }
    let partial = dir.join(format!(".{name}{PARTIAL}"));
    let done = dir.join(name);
    let attempt = || -> Result<(), BackupError> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .map_err(|e| BackupError::io(&partial, "creating", &e))?;
        write(&mut f, bytes).map_err(|e| BackupError::io(&partial, "writing", &e))?;
        f.sync_all()
            .map_err(|e| BackupError::io(&partial, "syncing", &e))?;
        std::fs::rename(&partial, &done).map_err(|e| BackupError::io(&done, "renaming", &e))?;
        Ok(())
    };
    if let Err(e) = attempt() {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    // The rename is durable once the directory is synced.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(done)
}

/// Removes `.partial` files left by an interrupted run and all but the
/// newest `keep` archives; returns how many archives were removed.
pub fn prune(dir: &Path, keep: usize) -> usize {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.filter_map(Result::ok) {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&format!(".{PREFIX}")) && name.ends_with(PARTIAL) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let all = list_archives(dir);
    let excess = all.len().saturating_sub(keep);
    all.into_iter()
        .take(excess)
        .filter(|(_, p)| std::fs::remove_file(p).is_ok())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(s).unwrap()
    }

    #[test]
    fn names_sort_by_time_and_parse_back() {
        let t = at(1_796_558_400); // 2026-12-06T12:00:00Z
        let n = archive_name(t);
        assert_eq!(n, "tgw-20261206T120000Z.tgwbak");
        assert_eq!(archive_time(&n), Some(t));
        for bad in [
            "tgw-2026.tgwbak",
            ".tgw-20261206T120000Z.tgwbak.partial",
            "tgw-20261206T120000Z.tgwbak.bak",
            "x",
        ] {
            assert_eq!(archive_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_full_disk_leaves_no_archive_and_no_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        let half: &WriteFn = &|f, b| {
            f.write_all(&b[..b.len() / 2])?;
            Err(std::io::Error::from(std::io::ErrorKind::StorageFull))
        };
        let e =
            write_archive(dir.path(), "tgw-20261206T120000Z.tgwbak", &[7; 4096], half).unwrap_err();
        assert_eq!(e.kind, FailKind::NoSpace, "{e}");
        assert!(e.message.contains("writing"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_destination_that_is_a_file_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let e =
            write_archive(&file, "tgw-20261206T120000Z.tgwbak", b"abc", &write_all).unwrap_err();
        assert_eq!(e.kind, FailKind::Io, "{e}");
        assert!(e.message.contains("not-a-dir"), "{e}");
    }

    #[test]
    fn archives_are_private_and_pruning_keeps_the_newest() {
        use std::os::unix::fs::PermissionsExt as _;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("backups");
        for h in 0..5 {
            let name = archive_name(at(1_796_558_400 + h * 3600));
            let p = write_archive(&dir, &name, b"whole", &write_all).unwrap();
            assert_eq!(p.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(dir.metadata().unwrap().permissions().mode() & 0o777, 0o700);
        std::fs::write(dir.join(".tgw-20261206T170000Z.tgwbak.partial"), b"half").unwrap();
        std::fs::write(dir.join("notes.txt"), b"kept").unwrap();
        assert_eq!(prune(&dir, 2), 3);
        let left: Vec<_> = list_archives(&dir)
            .into_iter()
            .map(|(t, _)| t.unix_timestamp())
            .collect();
        assert_eq!(
            left,
            vec![1_796_558_400 + 3 * 3600, 1_796_558_400 + 4 * 3600]
        );
        assert!(!dir.join(".tgw-20261206T170000Z.tgwbak.partial").exists());
        assert!(dir.join("notes.txt").exists());
    }

    #[test]
    fn a_built_archive_opens_with_its_passphrase_and_holds_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let _store = crate::store::Store::open(dir.path()).unwrap();
        let cfg = dir.path().join("gateway.toml");
        std::fs::write(&cfg, b"[gateway]\n").unwrap();
        let bytes = build_archive(dir.path(), Some(&cfg), Some("pass")).unwrap();
        let c = backup::open(&bytes, Some("pass")).unwrap();
        let names: Vec<_> = c.files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["tgw.db", "secret.key", "gateway.toml"]);
        let e = build_archive(&dir.path().join("missing"), None, None).unwrap_err();
        assert_eq!(e.kind, FailKind::Source, "{e}");
    }
}
