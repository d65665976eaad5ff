//! The disk-space watchdog of the data volume (`gateway.data_dir`).
//!
//! A full data volume used to be silent: logins answered 500, the outbox
//! refused messages and health could not be saved while `/readyz` said
//! ready. The watchdog reads the free space every `gateway.disk_check_secs`
//! and keeps a level in a shared [`DiskState`]:
//!
//! - **ok** → **low** when fewer than `gateway.disk_low_mb` are free;
//! - → **critical** when fewer than `gateway.disk_critical_mb` are free;
//! - a level is left only once its mark plus a quarter (at least 1 MiB) is
//!   free again ([`Marks::next`]): no flapping around a mark.
//!
//! Each change raises or clears the `disk_low` alarm (MQTT, through a
//! callback: `base` does not know the uplink), and while the level is not
//! ok `/readyz` answers 503 with the reason, `/metrics` shows it
//! (`tgw_disk_low`, `tgw_disk_critical`, `tgw_disk_free_bytes`) and optional
//! writes stop ([`DiskState::optional_writes`]; the list is in
//! `docs/metrics.md`). Accepted outbox messages and configuration are never
//! dropped.
//!
//! Free space is read with `statvfs(2)` through `rustix` (its safe
//! wrapper: the workspace forbids `unsafe`, so `libc` cannot be called).
//! `f_bavail` is used: what an unprivileged process (the daemon) may still
//! write, not the root reserve.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const MIB: u64 = 1 << 20;

/// How full the data volume is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DiskLevel {
    /// Above the low-water mark (or not measured yet).
    Ok = 0,
    /// Below `gateway.disk_low_mb`: optional writes stop, alarm raised.
    Low = 1,
    /// Below `gateway.disk_critical_mb`.
    Critical = 2,
}

impl DiskLevel {
    /// Stable name (alarm bodies, `/readyz`).
    pub fn as_str(self) -> &'static str {
        match self {
            DiskLevel::Ok => "ok",
            DiskLevel::Low => "low",
            DiskLevel::Critical => "critical",
        }
    }

    fn from_u8(v: u8) -> DiskLevel {
        match v {
            0 => DiskLevel::Ok,
            1 => DiskLevel::Low,
            _ => DiskLevel::Critical,
        }
    }
}

/// Free and total bytes of a volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Space {
    /// Bytes an unprivileged process may still write (`f_bavail × f_frsize`).
    pub free: u64,
    /// Size of the volume (`f_blocks × f_frsize`).
    pub total: u64,
}

/// The low-water and critical marks, in bytes. `low == 0` turns the levels
/// (and so the alarm, `/readyz` and thinning) off; space is still measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Marks {
    /// Below this many free bytes: low.
    pub low: u64,
    /// Below this many free bytes: critical.
    pub critical: u64,
}

impl Marks {
    /// Marks from `gateway.disk_low_mb` and `gateway.disk_critical_mb`.
    pub fn from_mb(low_mb: u64, critical_mb: u64) -> Marks {
        Marks {
            low: low_mb.saturating_mul(MIB),
            critical: critical_mb.saturating_mul(MIB),
        }
    }

    /// Free bytes at which a level entered below `mark` is left again: the
    /// mark plus a quarter, at least 1 MiB more.
    pub fn release(mark: u64) -> u64 {
        mark.saturating_add((mark / 4).max(MIB))
    }

    /// The level after a reading of `free` bytes at level `current`: worse
    /// at once, better only past the release mark ([`Marks::release`]).
    pub fn next(&self, current: DiskLevel, free: u64) -> DiskLevel {
        if self.low == 0 {
            return DiskLevel::Ok;
        }
        let raw = if free < self.critical {
            DiskLevel::Critical
        } else if free < self.low {
            DiskLevel::Low
        } else {
            DiskLevel::Ok
        };
        if raw >= current {
            return raw;
        }
        if free >= Self::release(self.low) {
            DiskLevel::Ok
        } else if current == DiskLevel::Critical && free >= Self::release(self.critical) {
            DiskLevel::Low
        } else {
            current
        }
    }
}

/// The watchdog's shared result: the level, the last reading and the marks.
/// Cheap to clone; reading the level is one atomic load. The default is ok
/// with nothing measured.
#[derive(Debug, Clone, Default)]
pub struct DiskState(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    level: AtomicU8,
    free: AtomicU64,
    total: AtomicU64,
    low: AtomicU64,
    critical: AtomicU64,
}

impl DiskState {
    /// The current level.
    pub fn level(&self) -> DiskLevel {
        DiskLevel::from_u8(self.0.level.load(Ordering::Relaxed))
    }

    /// Whether optional writes (health history samples, audit rows of
    /// refused logins) should be made: only while the level is ok.
    pub fn optional_writes(&self) -> bool {
        self.level() == DiskLevel::Ok
    }

    /// The last reading (zero before the first).
    pub fn space(&self) -> Space {
        Space {
            free: self.0.free.load(Ordering::Relaxed),
            total: self.0.total.load(Ordering::Relaxed),
        }
    }

    /// The marks in force.
    pub fn marks(&self) -> Marks {
        Marks {
            low: self.0.low.load(Ordering::Relaxed),
            critical: self.0.critical.load(Ordering::Relaxed),
        }
    }

    /// Records a reading and the level it gave (the watchdog; tests).
    pub fn set(&self, level: DiskLevel, space: Space, marks: Marks) {
        let i = &self.0;
        i.free.store(space.free, Ordering::Relaxed);
        i.total.store(space.total, Ordering::Relaxed);
        i.low.store(marks.low, Ordering::Relaxed);
        i.critical.store(marks.critical, Ordering::Relaxed);
        i.level.store(level as u8, Ordering::Relaxed);
    }

    /// Why the gateway is not ready, when the level is not ok: free space
    /// and the mark crossed (no path: `/readyz` is public).
    pub fn reason(&self) -> Option<String> {
        let (level, space, marks) = (self.level(), self.space(), self.marks());
        let (key, mark) = match level {
            DiskLevel::Ok => return None,
            DiskLevel::Low => ("gateway.disk_low_mb", marks.low),
            DiskLevel::Critical => ("gateway.disk_critical_mb", marks.critical),
        };
        Some(format!(
            "data volume {}: {} free of {}, below {key} ({})",
            level.as_str(),
            mib(space.free),
            mib(space.total),
            mib(mark)
        ))
    }
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / MIB as f64)
}

/// A change of level, with the reading that caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// Level before.
    pub from: DiskLevel,
    /// Level after.
    pub to: DiskLevel,
    /// The reading.
    pub space: Space,
    /// The marks.
    pub marks: Marks,
}

impl Change {
    /// The `alarm` message body (`docs/mqtt.md`): `disk_low`, raised with
    /// severity `major` (low) or `critical`, or `cleared` back at ok.
    pub fn alarm_body(&self) -> Value {
        let mut body = json!({
            "alarm": "disk_low",
            "state": if self.to == DiskLevel::Ok { "cleared" } else { "raised" },
            "level": self.to.as_str(),
            "free_bytes": self.space.free,
            "total_bytes": self.space.total,
            "low_bytes": self.marks.low,
            "critical_bytes": self.marks.critical,
        });
        let severity = match self.to {
            DiskLevel::Ok => None,
            DiskLevel::Low => Some("major"),
            DiskLevel::Critical => Some("critical"),
        };
        if let (Some(s), Some(o)) = (severity, body.as_object_mut()) {
            o.insert("severity".into(), s.into());
        }
        body
    }
}

/// The watchdog's state machine: readings in, changes out. Pure.
#[derive(Debug, Clone)]
pub struct Watchdog {
    marks: Marks,
    level: DiskLevel,
}

impl Watchdog {
    /// At level ok.
    pub fn new(marks: Marks) -> Watchdog {
        Watchdog {
            marks,
            level: DiskLevel::Ok,
        }
    }

    /// The current level.
    pub fn level(&self) -> DiskLevel {
        self.level
    }

    /// Feeds one reading; the change, if the level changed.
    pub fn observe(&mut self, space: Space) -> Option<Change> {
        let to = self.marks.next(self.level, space.free);
        if to == self.level {
            return None;
        }
        let from = std::mem::replace(&mut self.level, to);
        Some(Change {
            from,
            to,
            space,
            marks: self.marks,
        })
    }
}

/// Reads free space (`statvfs`); a test passes its own.
pub type SpaceFn = Arc<dyn Fn(&Path) -> std::io::Result<Space> + Send + Sync>;

/// Free and total bytes of the volume holding `dir`.
pub fn statvfs_space(dir: &Path) -> std::io::Result<Space> {
    let s = rustix::fs::statvfs(dir).map_err(std::io::Error::from)?;
    Ok(Space {
        free: s.f_bavail.saturating_mul(s.f_frsize),
        total: s.f_blocks.saturating_mul(s.f_frsize),
    })
}

/// What [`run`] watches and how often.
#[derive(Clone)]
pub struct WatchOptions {
    /// The data directory.
    pub dir: PathBuf,
    /// The marks.
    pub marks: Marks,
    /// Time between readings (the first is at once).
    pub every: Duration,
    /// How space is read ([`statvfs_space`] in the daemon).
    pub read: SpaceFn,
}

/// Reads the space every `opts.every` (on tokio time) until `shutdown`,
/// updating `state` and calling `on_change` (the daemon publishes the
/// alarm) on each change of level. A failed reading is logged (once per
/// run of failures) and keeps the level.
pub async fn run(
    opts: WatchOptions,
    state: DiskState,
    on_change: impl Fn(&Change) + Send,
    shutdown: CancellationToken,
) {
    let mut wd = Watchdog::new(opts.marks);
    let mut tick = tokio::time::interval(opts.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let space = match (opts.read)(&opts.dir) {
            Ok(s) => s,
            Err(e) => {
                if !failing {
                    tracing::warn!(dir = %opts.dir.display(), error = %e, "reading free disk space failed");
                }
                failing = true;
                continue;
            }
        };
        failing = false;
        let change = wd.observe(space);
        state.set(wd.level(), space, opts.marks);
        let Some(c) = change else { continue };
        if c.to > c.from {
            tracing::warn!(
                level = c.to.as_str(),
                free_mib = space.free / MIB,
                low_mib = opts.marks.low / MIB,
                critical_mib = opts.marks.critical / MIB,
                "data volume is running out of space: optional writes stop, readiness fails"
            );
        } else {
            tracing::info!(
                level = c.to.as_str(),
                free_mib = space.free / MIB,
                "data volume has space again"
            );
        }
        on_change(&c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    const M: u64 = MIB;

    fn marks() -> Marks {
        Marks::from_mb(64, 16)
    }

    fn space(free_mib: u64) -> Space {
        Space {
            free: free_mib * M,
            total: 1024 * M,
        }
    }

    /// Worse at once, better only past mark + a quarter: readings hovering
    /// around a mark do not flap the alarm.
    #[test]
    fn levels_follow_free_space_with_hysteresis() {
        let mut wd = Watchdog::new(marks());
        let mut seen = Vec::new();
        for free in [
            100, 65, 63, 70, 79, 63, 15, 17, 19, 20, 63, 15, 79, 80, 80, 10, 200,
        ] {
            if let Some(c) = wd.observe(space(free)) {
                seen.push((free, c.from, c.to));
            }
        }
        use DiskLevel::*;
        assert_eq!(
            seen,
            vec![
                (63, Ok, Low),
                (15, Low, Critical),
                (20, Critical, Low),
                (15, Low, Critical),
                (79, Critical, Low),
                (80, Low, Ok),
                (10, Ok, Critical),
                (200, Critical, Ok),
            ]
        );
    }

    #[test]
    fn small_marks_release_at_least_one_mib_higher_and_zero_disables() {
        let m = Marks::from_mb(2, 1);
        assert_eq!(Marks::release(m.low), 3 * M);
        assert_eq!(m.next(DiskLevel::Low, 2 * M + 512 * 1024), DiskLevel::Low);
        assert_eq!(m.next(DiskLevel::Low, 3 * M), DiskLevel::Ok);
        let off = Marks::from_mb(0, 0);
        assert_eq!(off.next(DiskLevel::Ok, 0), DiskLevel::Ok);
    }

    #[test]
    fn alarm_bodies_and_readiness_reason() {
        let mut wd = Watchdog::new(marks());
        let raise = wd.observe(space(10)).unwrap();
        let b = raise.alarm_body();
        assert_eq!(b["alarm"], "disk_low");
        assert_eq!(b["state"], "raised");
        assert_eq!(b["level"], "critical");
        assert_eq!(b["severity"], "critical");
        assert_eq!(b["free_bytes"], 10 * M);
        let clear = wd.observe(space(500)).unwrap().alarm_body();
        assert_eq!(clear["state"], "cleared");
        assert_eq!(clear["level"], "ok");
        assert!(clear.get("severity").is_none());

        let st = DiskState::default();
        assert!(st.optional_writes() && st.reason().is_none());
        st.set(DiskLevel::Low, space(40), marks());
        assert!(!st.optional_writes());
        let r = st.reason().unwrap();
        assert!(
            r.contains("40.0 MiB free") && r.contains("gateway.disk_low_mb (64.0 MiB)"),
            "{r}"
        );
    }

    #[test]
    fn statvfs_reads_the_volume_of_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let s = statvfs_space(dir.path()).unwrap();
        assert!(s.total > 0 && s.free <= s.total, "{s:?}");
        assert!(statvfs_space(&dir.path().join("missing")).is_err());
    }

    /// The task: first reading at once, then every interval; the state and
    /// the callback follow; a failing read keeps the level.
    #[tokio::test(start_paused = true)]
    async fn the_task_updates_state_and_calls_back_on_changes() {
        let readings = Arc::new(Mutex::new(vec![
            Ok(space(100)),
            Ok(space(30)),
            Err(()),
            Ok(space(50)),
            Ok(space(90)),
        ]));
        let r2 = readings.clone();
        let read: SpaceFn = Arc::new(move |_: &Path| {
            let mut v = r2.lock().unwrap();
            let next = if v.is_empty() {
                Ok(space(90))
            } else {
                v.remove(0)
            };
            next.map_err(|()| std::io::Error::other("gone"))
        });
        let opts = WatchOptions {
            dir: "/data".into(),
            marks: marks(),
            every: Duration::from_secs(10),
            read,
        };
        let state = DiskState::default();
        let changes = Arc::new(Mutex::new(Vec::new()));
        let c2 = changes.clone();
        let sd = CancellationToken::new();
        let task = tokio::spawn(run(
            opts,
            state.clone(),
            move |c: &Change| c2.lock().unwrap().push((c.from, c.to)),
            sd.clone(),
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(state.level(), DiskLevel::Ok);
        assert_eq!(state.space().free, 100 * M);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(state.level(), DiskLevel::Low);
        tokio::time::sleep(Duration::from_secs(10)).await; // read fails
        assert_eq!(state.level(), DiskLevel::Low);
        tokio::time::sleep(Duration::from_secs(10)).await; // 50: still low
        assert_eq!(state.level(), DiskLevel::Low);
        tokio::time::sleep(Duration::from_secs(10)).await; // 90: cleared
        assert_eq!(state.level(), DiskLevel::Ok);
        assert_eq!(
            *changes.lock().unwrap(),
            vec![
                (DiskLevel::Ok, DiskLevel::Low),
                (DiskLevel::Low, DiskLevel::Ok)
            ]
        );
        sd.cancel();
        task.await.unwrap();
    }
}
