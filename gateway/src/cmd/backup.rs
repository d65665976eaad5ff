//! `tgw backup` and `tgw restore` (`store::backup`, docs/deploy.md).

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;

use clap::Args;

use crate::config::Config;
use crate::store::backup;

// Flags of `tgw backup`.
#[derive(Args)]
pub struct BackupArgs {
    /// The gateway's configuration file (its data directory is backed up,
    /// and the file itself goes into the archive).
    #[arg(long)]
    config: PathBuf,
    /// The archive to write (mode 0600).
    #[arg(long)]
    out: PathBuf,
    /// Encrypt to a passphrase read from the first line of stdin.
    #[arg(long)]
    passphrase_stdin: bool,
}

// Flags of `tgw restore`.
#[derive(Args)]
pub struct RestoreArgs {
    /// The archive written by `tgw backup`.
    file: PathBuf,
    /// The data directory to restore into (must be empty unless --force).
    #[arg(long)]
    data_dir: PathBuf,
    /// Replace the store and key of a non-empty data directory.
    #[arg(long)]
    force: bool,
    /// Read the passphrase of an encrypted archive from stdin.
    #[arg(long)]
    passphrase_stdin: bool,
}

fn passphrase(yes: bool) -> anyhow::Result<Option<String>> {
    if !yes {
        return Ok(None);
    }
    Ok(Some(super::input::read_stdin_password()?))
}

/// `tgw backup`.
pub fn backup(a: BackupArgs) -> anyhow::Result<()> {
    let cfg = Config::load(&a.config)?;
    let pass = passphrase(a.passphrase_stdin)?;
    let bytes = super::progress::during("building the archive", false, || {
        crate::store::backup_files::build_archive(
            &cfg.gateway.data_dir,
            Some(&a.config),
            pass.as_deref(),
        )
    })?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&a.out)
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.out.display()))?;
    std::fs::set_permissions(&a.out, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    println!(
        "backup written: {} ({} bytes{})",
        a.out.display(),
        bytes.len(),
        if pass.is_some() { ", encrypted" } else { "" }
    );
    Ok(())
}

/// `tgw restore`.
pub fn restore(a: RestoreArgs) -> anyhow::Result<()> {
    let len = std::fs::metadata(&a.file)
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.file.display()))?
        .len();
    anyhow::ensure!(
        len <= backup::MAX_ARCHIVE,
        "{}: {len} bytes is larger than any backup",
        a.file.display()
    );
    let bytes = std::fs::read(&a.file)?;
    let contents = backup::open(&bytes, passphrase(a.passphrase_stdin)?.as_deref())
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.file.display()))?;
    let get = |n: &str| {
        contents
            .files
            .iter()
            .find(|(name, _)| name == n)
            .map(|(_, d)| d)
            .ok_or_else(|| anyhow::anyhow!("{}: no {n} in the archive", a.file.display()))
    };
    let (db, key) = (get("tgw.db")?, get("secret.key")?);
    let dir = &a.data_dir;
    let non_empty = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
    anyhow::ensure!(
        !non_empty || a.force,
        "{}: not empty; restore into an empty directory, or pass --force to replace its store and key",
        dir.display()
    );
    crate::store::data_dir::ensure(dir)?;
    for stale in ["tgw.db-wal", "tgw.db-shm"] {
        let _ = std::fs::remove_file(dir.join(stale));
    }
    let write = |name: &str, data: &[u8]| -> anyhow::Result<()> {
        let p = dir.join(name);
        let _ = std::fs::remove_file(&p);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
            .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
        f.write_all(data)?;
        f.sync_all()?;
        Ok(())
    };
    write("tgw.db", db)?;
    write("secret.key", key)?;
    if let Ok(cfg) = get("gateway.toml") {
        write("gateway.toml.restored", cfg)?;
    }
    // Opening runs the migrations of this (possibly newer) version.
    let store = crate::store::Store::open(dir)?;
    let devices = store.devices(None)?.len();
    println!(
        "restored into {}: {devices} devices; the backed-up configuration is {}",
        dir.display(),
        dir.join("gateway.toml.restored").display()
    );
    Ok(())
}
