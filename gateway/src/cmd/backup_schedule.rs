//! The `[backup]` schedule of `tgw run`: every `backup.every_hours` the
//! archive `tgw backup` writes (`store::backup_files`) goes into
//! `backup.dir`, and all but the newest `backup.keep` are deleted.
//!
//! - The first backup is taken at start when the newest archive in the
//!   directory is older than the interval (or there is none); otherwise when
//!   it comes due.
//! - A failure (full or read-only destination, unreadable store) is logged
//!   with its reason, counted in `tgw_backup_runs_total{result}`, timed in
//!   `tgw_backup_last_failure_timestamp_seconds`, and raises the MQTT alarm
//!   `backup_failed` once; the next success clears it. A failed run is
//!   retried after an hour (or the interval, when shorter). No file carries
//!   an archive's name unless it is whole.
//! - `tgw_backup_last_success_timestamp_seconds` starts at the newest
//!   archive found, so a restart does not hide a stale backup from the
//!   `TgwBackupStale` alert (deploy/prometheus/tgw-rules.yml).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::base::clock::Clock;
use crate::base::metrics::{Metrics, ResultLabel};
use crate::config::{BackupSection, Config};
use crate::store::backup_files::{self, BackupError, FailKind, WriteFn};

/// The longest wait before a failed backup is tried again.
pub const RETRY_AFTER: Duration = Duration::from_secs(3600);

/// What one scheduled backup needs.
#[derive(Clone)]
pub struct Job {
    /// `gateway.data_dir`.
    pub data_dir: PathBuf,
    /// The configuration file put into each archive, if any.
    pub config: Option<PathBuf>,
    /// `backup.dir`.
    pub dir: PathBuf,
    /// `backup.every_hours`.
    pub every: Duration,
    /// `backup.keep`.
    pub keep: usize,
    /// From `backup.passphrase_env`.
    pub passphrase: Option<Arc<str>>,
    /// Writes the archive's bytes (the real one but in unit tests).
    pub write: Arc<WriteFn>,
}

impl Job {
    /// The job of a configuration; fails when `backup.passphrase_env`
    /// names an unset variable.
    pub fn new(b: &BackupSection, cfg: &Config) -> anyhow::Result<Job> {
        Ok(Job {
            data_dir: cfg.gateway.data_dir.clone(),
            config: cfg.source.clone().filter(|_| b.include_config),
            dir: b.dir.clone(),
            every: b.every(),
            keep: b.keep as usize,
            passphrase: b.resolve_passphrase()?.map(Arc::from),
            write: Arc::new(backup_files::write_all),
        })
    }

    /// One backup taken at `at`: the archive's path and size, and how many
    /// old archives were pruned. Blocking.
    fn once(&self, at: time::OffsetDateTime) -> Result<(PathBuf, usize, usize), BackupError> {
        let bytes = backup_files::build_archive(
            &self.data_dir,
            self.config.as_deref(),
            self.passphrase.as_deref(),
        )?;
        let name = backup_files::archive_name(at);
        let path = backup_files::write_archive(&self.dir, &name, &bytes, self.write.as_ref())?;
        let removed = backup_files::prune(&self.dir, self.keep);
        Ok((path, bytes.len(), removed))
    }
}

/// The backup families of `/metrics` (`docs/metrics.md`).
#[derive(Debug, Default)]
pub struct BackupMetrics {
    /// Runs by result: `ok`, `no_space`, `read_only`, `io`, `source`.
    pub runs: Family<ResultLabel, Counter>,
    /// Unix time of the newest whole archive (0: none).
    pub last_success: Gauge,
    /// Unix time of the last failed run (0: none since start).
    pub last_failure: Gauge,
    /// 1 while the last run failed.
    pub failing: Gauge,
    /// Size of the newest archive written.
    pub last_bytes: Gauge,
    /// `backup.every_hours` in seconds (for the staleness alert).
    pub interval: Gauge,
}

impl BackupMetrics {
    /// New families, registered in `m` (when given).
    pub fn new(m: Option<&Metrics>) -> Arc<Self> {
        let me = Arc::new(Self::default());
        for r in ["ok", "no_space", "read_only", "io", "source"] {
            let _ = me.runs.get_or_create(&ResultLabel { result: r.into() });
        }
        if let Some(m) = m {
            m.register_extra(
                "backup_runs",
                "Scheduled backups by result",
                me.runs.clone(),
            );
            m.register_extra(
                "backup_last_success_timestamp_seconds",
                "Unix time of the newest whole backup archive (0: none)",
                me.last_success.clone(),
            );
            m.register_extra(
                "backup_last_failure_timestamp_seconds",
                "Unix time of the last failed scheduled backup (0: none since start)",
                me.last_failure.clone(),
            );
            m.register_extra(
                "backup_failing",
                "1 while the last scheduled backup failed",
                me.failing.clone(),
            );
            m.register_extra(
                "backup_last_size_bytes",
                "Size of the newest backup archive written",
                me.last_bytes.clone(),
            );
            m.register_extra(
                "backup_interval_seconds",
                "Time between scheduled backups (backup.every_hours)",
                me.interval.clone(),
            );
        }
        me
    }
}

/// The `backup_failed` alarm body.
fn alarm_body(raised: Option<&BackupError>, dir: &std::path::Path) -> Value {
    match raised {
        Some(e) => json!({
            "alarm": "backup_failed",
            "state": "raised",
            "severity": "major",
            "reason": e.kind.as_str(),
            "dir": dir.display().to_string(),
            "error": e.message,
        }),
        None => json!({
            "alarm": "backup_failed",
            "state": "cleared",
            "dir": dir.display().to_string(),
        }),
    }
}

/// How long until the first backup: none yet, or the newest is older than
/// the interval → now; otherwise when it comes due.
fn first_wait(job: &Job, now: time::OffsetDateTime, metrics: &BackupMetrics) -> Duration {
    let Some((newest, _)) = backup_files::list_archives(&job.dir).pop() else {
        return Duration::ZERO;
    };
    metrics.last_success.set(newest.unix_timestamp());
    let age = Duration::try_from(now - newest).unwrap_or(Duration::ZERO);
    job.every.saturating_sub(age)
}

/// Runs the schedule until `shutdown`; `alarm` publishes alarm bodies.
pub async fn run(
    job: Job,
    metrics: Arc<BackupMetrics>,
    clock: Arc<dyn Clock>,
    alarm: impl Fn(Value) + Send + 'static,
    shutdown: CancellationToken,
) {
    metrics
        .interval
        .set(i64::try_from(job.every.as_secs()).unwrap_or(i64::MAX));
    let mut wait = first_wait(&job, clock.now_utc(), &metrics);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let at = clock.now_utc();
        let j = job.clone();
        let result = tokio::task::spawn_blocking(move || j.once(at))
            .await
            .unwrap_or_else(|e| {
                Err(BackupError {
                    kind: FailKind::Source,
                    message: format!("the backup task failed: {e}"),
                })
            });
        match result {
            Ok((path, bytes, removed)) => {
                tracing::info!(archive = %path.display(), bytes, removed, "backup written");
                metrics.runs.get_or_create(&ok()).inc();
                metrics.last_success.set(at.unix_timestamp());
                metrics
                    .last_bytes
                    .set(i64::try_from(bytes).unwrap_or(i64::MAX));
                metrics.failing.set(0);
                if std::mem::take(&mut failing) {
                    alarm(alarm_body(None, &job.dir));
                }
                wait = job.every;
            }
            Err(e) => {
                tracing::warn!(error = %e, reason = e.kind.as_str(), dir = %job.dir.display(), "backup failed");
                let label = ResultLabel {
                    result: e.kind.as_str().into(),
                };
                metrics.runs.get_or_create(&label).inc();
                metrics.last_failure.set(at.unix_timestamp());
                metrics.failing.set(1);
                if !std::mem::replace(&mut failing, true) {
                    alarm(alarm_body(Some(&e), &job.dir));
                }
                wait = job.every.min(RETRY_AFTER);
            }
        }
    }
}

fn ok() -> ResultLabel {
    ResultLabel {
        result: "ok".into(),
    }
}

/// The schedule of `cfg.backup` for `tgw run`, as a task (None when there
/// is no `[backup]`); fails at once on an unset `backup.passphrase_env`.
pub fn task(
    cfg: &Config,
    metrics: &Metrics,
    clock: Arc<dyn Clock>,
    alarm: impl Fn(Value) + Send + 'static,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<impl std::future::Future<Output = ()> + Send + 'static>> {
    let Some(b) = &cfg.backup else {
        return Ok(None);
    };
    let job = Job::new(b, cfg)?;
    tracing::info!(dir = %job.dir.display(), every_hours = b.every_hours, keep = b.keep, encrypted = job.passphrase.is_some(), "scheduled backups on");
    let m = BackupMetrics::new(Some(metrics));
    Ok(Some(run(job, m, clock, alarm, shutdown)))
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::base::clock::TokioClock;
    use crate::store::backup;

    const HOUR: Duration = Duration::from_secs(3600);
    /// 2026-12-06T12:00:00Z.
    const T0_MS: i64 = 1_796_558_400_000;

    struct World {
        _data: tempfile::TempDir,
        dest: tempfile::TempDir,
        job: Job,
        full: Arc<AtomicBool>,
        alarms: Arc<Mutex<Vec<Value>>>,
        metrics: Arc<BackupMetrics>,
        shutdown: CancellationToken,
    }

    /// A store, a destination whose disk can be made full, every hour,
    /// keep 2, encrypted.
    fn world() -> World {
        let data = tempfile::tempdir().unwrap();
        drop(crate::store::Store::open(data.path()).unwrap());
        let dest = tempfile::tempdir().unwrap();
        let full = Arc::new(AtomicBool::new(false));
        let f = full.clone();
        let write: Arc<WriteFn> = Arc::new(move |file: &mut std::fs::File, b: &[u8]| {
            if f.load(Ordering::SeqCst) {
                file.write_all(&b[..b.len() / 2])?;
                return Err(std::io::Error::from(std::io::ErrorKind::StorageFull));
            }
            file.write_all(b)
        });
        let job = Job {
            data_dir: data.path().to_path_buf(),
            config: None,
            dir: dest.path().join("tgw"),
            every: HOUR,
            keep: 2,
            passphrase: Some(Arc::from("correct horse")),
            write,
        };
        World {
            _data: data,
            dest,
            job,
            full,
            alarms: Arc::default(),
            metrics: BackupMetrics::new(None),
            shutdown: CancellationToken::new(),
        }
    }

    impl World {
        fn start(&self) -> tokio::task::JoinHandle<()> {
            let a = self.alarms.clone();
            tokio::spawn(run(
                self.job.clone(),
                self.metrics.clone(),
                Arc::new(TokioClock::starting_at(T0_MS)),
                move |v| a.lock().unwrap().push(v),
                self.shutdown.clone(),
            ))
        }
        fn archives(&self) -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(&self.job.dir)
                .map(|rd| {
                    rd.filter_map(Result::ok)
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            v.sort();
            v
        }
        fn runs(&self, r: &str) -> u64 {
            self.metrics
                .runs
                .get_or_create(&ResultLabel {
                    result: r.to_string().into(),
                })
                .get()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_destination_is_counted_alarmed_once_retried_and_cleared() {
        let w = world();
        w.full.store(true, Ordering::SeqCst);
        let h = w.start();
        tokio::time::sleep(Duration::from_secs(60)).await;
        // Failed at start: nothing that looks like an archive, no partial file.
        assert_eq!(w.archives(), Vec::<String>::new());
        assert_eq!(w.runs("no_space"), 1);
        assert_eq!(w.metrics.failing.get(), 1);
        assert_eq!(w.metrics.last_success.get(), 0);
        assert_eq!(w.metrics.last_failure.get(), T0_MS / 1000);
        {
            let alarms = w.alarms.lock().unwrap();
            assert_eq!(alarms.len(), 1, "{alarms:?}");
            assert_eq!(alarms[0]["alarm"], "backup_failed");
            assert_eq!(alarms[0]["state"], "raised");
            assert_eq!(alarms[0]["reason"], "no_space");
            assert!(!alarms[0].to_string().contains("correct horse"));
        }
        // Still full an hour later: counted again, not alarmed again.
        tokio::time::sleep(HOUR).await;
        assert_eq!(w.runs("no_space"), 2);
        assert_eq!(w.alarms.lock().unwrap().len(), 1);
        // Space again: the next retry succeeds and clears the alarm.
        w.full.store(false, Ordering::SeqCst);
        tokio::time::sleep(HOUR).await;
        assert_eq!(w.runs("ok"), 1);
        assert_eq!(w.metrics.failing.get(), 0);
        assert_eq!(w.metrics.last_success.get(), T0_MS / 1000 + 7200);
        assert_eq!(w.archives(), vec!["tgw-20261206T140000Z.tgwbak"]);
        assert_eq!(w.alarms.lock().unwrap()[1]["state"], "cleared");
        w.shutdown.cancel();
        h.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_destination_that_cannot_be_a_directory_fails_as_io() {
        let mut w = world();
        let file = w.dest.path().join("a-file");
        std::fs::write(&file, b"x").unwrap();
        w.job.dir = file.join("tgw");
        let h = w.start();
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(w.runs("io"), 1);
        let alarms = w.alarms.lock().unwrap().clone();
        assert!(
            alarms[0]["error"].as_str().unwrap().contains("a-file"),
            "{alarms:?}"
        );
        w.shutdown.cancel();
        h.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn every_interval_a_whole_archive_and_only_the_newest_kept() {
        let w = world();
        let h = w.start();
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(w.archives(), vec!["tgw-20261206T120000Z.tgwbak"]);
        tokio::time::sleep(3 * HOUR).await;
        assert_eq!(w.runs("ok"), 4);
        assert_eq!(
            w.archives(),
            vec!["tgw-20261206T140000Z.tgwbak", "tgw-20261206T150000Z.tgwbak"]
        );
        assert_eq!(w.metrics.last_success.get(), T0_MS / 1000 + 3 * 3600);
        assert_eq!(w.metrics.interval.get(), 3600);
        assert!(w.alarms.lock().unwrap().is_empty());
        // The archive is the one `tgw restore` reads, with its passphrase.
        let bytes = std::fs::read(w.job.dir.join("tgw-20261206T150000Z.tgwbak")).unwrap();
        assert!(backup::open(&bytes, None).is_err());
        let c = backup::open(&bytes, Some("correct horse")).unwrap();
        assert!(
            c.files
                .iter()
                .any(|(n, d)| n == "tgw.db" && d.starts_with(b"SQLite format 3\0"))
        );
        w.shutdown.cancel();
        h.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_restart_a_recent_archive_is_not_repeated_until_due() {
        let w = world();
        // Taken 20 minutes before this start.
        let earlier = backup_files::archive_name(
            time::OffsetDateTime::from_unix_timestamp(T0_MS / 1000 - 1200).unwrap(),
        );
        backup_files::write_archive(&w.job.dir, &earlier, b"whole", &backup_files::write_all)
            .unwrap();
        let h = w.start();
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(w.runs("ok"), 0);
        assert_eq!(w.metrics.last_success.get(), T0_MS / 1000 - 1200);
        tokio::time::sleep(Duration::from_secs(40 * 60)).await;
        assert_eq!(w.runs("ok"), 1);
        assert_eq!(
            w.archives(),
            vec![earlier, "tgw-20261206T124000Z.tgwbak".to_string()]
        );
        w.shutdown.cancel();
        h.await.unwrap();
    }
}
