//! Prometheus metrics of the gateway, served at `/metrics`.
//!
//! Every metric is listed with its unit and labels in `docs/metrics.md`.
//! Labels are bounded: error kinds, verdicts, rungs and village codes —
//! never an address, a URL or a device id.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use super::disk::{DiskLevel, DiskState};

/// `result` label: `ok` or an error kind. Borrowed when the label is a
/// constant, so counting a check's result allocates nothing (issue 18.3).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `ok` or a bounded error kind.
    pub result: std::borrow::Cow<'static, str>,
}

/// Labels of the camera gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CameraLabels {
    /// Village code (or `unassigned`).
    pub village: String,
    /// `ok`, `degraded`, `offline`.
    pub verdict: String,
}

/// Labels of the rung gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RungLabel {
    /// Ladder rung.
    pub rung: String,
}

/// `to` label of transitions.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToLabel {
    /// The verdict changed to.
    pub to: String,
}

/// `write` label of skipped optional writes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabel {
    /// `health_history`, `audit_refused_login`.
    pub write: String,
}

/// `kind` label of failed inventories.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// A bounded error kind (`auth`, `timeout`, `connect`, `no-credentials`, …).
    pub kind: String,
}

/// Labels of automatic camera clock syncs.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClockSyncLabels {
    /// `set` or `ntp` (`[health] clock_sync`).
    pub mode: &'static str,
    /// `ok`, `still_drifting`, `refused`, `auth`, `unreachable`, `error`.
    pub result: &'static str,
}

/// `class` label of the outbox gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassLabel {
    /// `urgent`, `state`, `metadata`, `history`.
    pub class: String,
}

/// The MQTT outbox as `/metrics` shows it, read from the uplink at scrape
/// time (`base` does not know the uplink: it hands over a
/// [`OutboxSource`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutboxStats {
    /// Rows (unsent and in flight) per class name.
    pub messages: Vec<(&'static str, u64)>,
    /// Bytes charged against `mqtt.outbox_max_bytes`.
    pub bytes: u64,
    /// Age of the oldest row in seconds, 0 when empty.
    pub oldest_age_secs: f64,
    /// Messages lost to failed commits (disk full, I/O) since start.
    pub commit_errors: u64,
    /// The uplink's connection and delivery counters (issue 16).
    pub uplink: super::metrics_ops::UplinkStats,
}

/// Reads the outbox figures at scrape time.
pub type OutboxSource = Arc<dyn Fn() -> OutboxStats + Send + Sync>;

/// The verdict recorded for an adopted camera before its first check.
pub const UNCHECKED: &str = "unchecked";

/// All metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    /// ONVIF cheap checks by result.
    pub checks: Family<ResultLabel, Counter>,
    /// Duration of cheap checks.
    pub check_seconds: Histogram,
    /// RTSP DESCRIBEs by result.
    pub describes: Family<ResultLabel, Counter>,
    /// RTSP samples by result.
    pub samples: Family<ResultLabel, Counter>,
    /// Verdict transitions.
    pub transitions: Family<ToLabel, Counter>,
    /// Cameras by village and verdict (set at scrape time).
    pub cameras: Family<CameraLabels, Gauge>,
    /// Cameras by rung (set at scrape time).
    pub rungs: Family<RungLabel, Gauge>,
    /// Discovery rounds by result.
    pub discovery_rounds: Family<ResultLabel, Counter>,
    /// ONVIF inventory fetches by result.
    pub inventories: Family<ResultLabel, Counter>,
    /// Optional writes skipped while the data volume is low on space.
    pub skipped_writes: Family<WriteLabel, Counter>,
    /// Current verdicts, for the gauges: device id → (village, verdict, rung).
    /// Verdict [`UNCHECKED`] counts in `tgw_cameras_unchecked` only.
    pub verdicts: Mutex<HashMap<String, (String, String, String)>>,
    /// Failed ONVIF inventories by error kind.
    pub inventory_failures: Family<KindLabel, Counter>,
    /// Adopted cameras not checked yet (set at scrape time).
    pub unchecked: Gauge,
    /// Automatic camera clock syncs by mode and result.
    pub clock_syncs: Family<ClockSyncLabels, Counter>,
    /// Camera calls and horns that failed on our side (`tgw_local_errors_total`).
    pub local_errors: super::local_errors::LocalErrors,
    outbox: Outbox,
    disk_gauges: DiskGauges,
    /// The disk watchdog's level and last reading (shared with the
    /// watchdog, `/readyz` and the writers that thin optional writes).
    disk: DiskState,
    /// Broadcasts, horn outcomes, start skew, speaker tests (issue 16).
    pub broadcasts: super::metrics_ops::BroadcastFamilies,
    uplink: super::metrics_ops::UplinkFamilies,
    process: super::metrics_ops::ProcessFamilies,
}

/// The outbox families and where their values come from.
struct Outbox {
    source: Mutex<Option<OutboxSource>>,
    messages: Family<ClassLabel, Gauge>,
    bytes: Gauge,
    oldest_age: Gauge<f64, AtomicU64>,
    commit_errors: Counter,
}

struct DiskGauges {
    free: Gauge,
    total: Gauge,
    low: Gauge,
    critical: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("tgw");
        let checks = Family::<ResultLabel, Counter>::default();
        r.register(
            "camera_checks",
            "Cheap ONVIF checks (GetSystemDateAndTime) by result",
            checks.clone(),
        );
        let check_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 12));
        r.register_with_unit(
            "camera_check_duration",
            "Duration of cheap ONVIF checks",
            prometheus_client::registry::Unit::Seconds,
            check_seconds.clone(),
        );
        let describes = Family::<ResultLabel, Counter>::default();
        r.register(
            "rtsp_describes",
            "RTSP DESCRIBEs by result",
            describes.clone(),
        );
        let samples = Family::<ResultLabel, Counter>::default();
        r.register(
            "rtsp_samples",
            "Timed RTSP stream samples by result",
            samples.clone(),
        );
        let transitions = Family::<ToLabel, Counter>::default();
        r.register(
            "camera_transitions",
            "Camera verdict changes by new verdict",
            transitions.clone(),
        );
        let cameras = Family::<CameraLabels, Gauge>::default();
        r.register("cameras", "Cameras by village and verdict", cameras.clone());
        let rungs = Family::<RungLabel, Gauge>::default();
        r.register(
            "camera_rungs",
            "Cameras by status-ladder rung",
            rungs.clone(),
        );
        let discovery_rounds = Family::<ResultLabel, Counter>::default();
        r.register(
            "discovery_rounds",
            "WS-Discovery rounds by result",
            discovery_rounds.clone(),
        );
        let inventories = Family::<ResultLabel, Counter>::default();
        r.register(
            "onvif_inventories",
            "ONVIF inventory fetches by result",
            inventories.clone(),
        );
        let skipped_writes = Family::<WriteLabel, Counter>::default();
        r.register(
            "disk_skipped_writes",
            "Optional writes skipped while the data volume is low on space",
            skipped_writes.clone(),
        );
        let inventory_failures = Family::<KindLabel, Counter>::default();
        r.register(
            "camera_inventory_failures",
            "Failed ONVIF inventories by error kind",
            inventory_failures.clone(),
        );
        let unchecked = Gauge::default();
        r.register(
            "cameras_unchecked",
            "Adopted cameras whose first health check has not finished",
            unchecked.clone(),
        );
        let clock_syncs = Family::<ClockSyncLabels, Counter>::default();
        r.register(
            "camera_clock_syncs",
            "Automatic camera clock syncs ([health] clock_sync) by mode and result",
            clock_syncs.clone(),
        );
        let local_errors = super::local_errors::LocalErrors::register(&mut r);
        let outbox = Outbox::register(&mut r);
        let disk_gauges = DiskGauges::register(&mut r);
        let broadcasts = super::metrics_ops::BroadcastFamilies::register(&mut r);
        let uplink = super::metrics_ops::UplinkFamilies::register(&mut r);
        let process = super::metrics_ops::ProcessFamilies::register(&mut r);
        Self {
            registry: Mutex::new(r),
            checks,
            check_seconds,
            describes,
            samples,
            transitions,
            cameras,
            rungs,
            discovery_rounds,
            inventories,
            skipped_writes,
            verdicts: Mutex::new(HashMap::new()),
            inventory_failures,
            unchecked,
            clock_syncs,
            local_errors,
            outbox,
            disk_gauges,
            disk: DiskState::default(),
            broadcasts,
            uplink,
            process,
        }
    }

    /// The disk watchdog's shared state (ok until the watchdog says
    /// otherwise).
    pub fn disk(&self) -> &DiskState {
        &self.disk
    }

    /// Whether an optional write (`write`: a bounded name such as
    /// `health_history`) may be made now; a refusal is counted in
    /// `tgw_disk_skipped_writes_total`.
    pub fn optional_write(&self, write: &str) -> bool {
        if self.disk.optional_writes() {
            return true;
        }
        self.skipped_writes
            .get_or_create(&WriteLabel {
                write: write.into(),
            })
            .inc();
        false
    }

    /// Where the outbox gauges are read from (the uplink, when `[mqtt]` is
    /// configured; without one they stay 0).
    pub fn set_outbox_source(&self, source: OutboxSource) {
        *self.outbox.source.lock().unwrap_or_else(|p| p.into_inner()) = Some(source);
    }

    /// Registers a family another module keeps (`name` without the `tgw_`
    /// prefix), e.g. the camera event loops' counters.
    pub fn register_extra(
        &self,
        name: &str,
        help: &str,
        metric: impl prometheus_client::registry::Metric,
    ) {
        self.registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .register(name, help, metric);
    }

    /// Counts one outcome (a constant label: no allocation per call).
    pub fn count(family: &Family<ResultLabel, Counter>, result: &'static str) {
        family
            .get_or_create(&ResultLabel {
                result: result.into(),
            })
            .inc();
    }

    /// Counts one inventory outcome (`ok` or an error kind) in
    /// `tgw_onvif_inventories_total`, and a failure also by kind.
    pub fn inventory_outcome(&self, result: &str) {
        self.inventories
            .get_or_create(&ResultLabel {
                result: result.to_string().into(),
            })
            .inc();
        // `local`: the gateway's own limit, no failure of the camera
        // (`tgw_local_errors_total`, counted by the caller).
        if result != "ok" && result != "local" {
            self.inventory_failures
                .get_or_create(&KindLabel {
                    kind: result.to_string(),
                })
                .inc();
        }
    }

    /// Records a camera's current verdict for the gauges.
    pub fn set_verdict(&self, id: &str, village: &str, verdict: &str, rung: &str) {
        let mut v = self.verdicts.lock().unwrap_or_else(|p| p.into_inner());
        // Called after every check: no allocation when nothing changed.
        if let Some(e) = v.get_mut(id) {
            if e.0 != village || e.1 != verdict || e.2 != rung {
                *e = (village.to_string(), verdict.to_string(), rung.to_string());
            }
            return;
        }
        v.insert(
            id.to_string(),
            (village.to_string(), verdict.to_string(), rung.to_string()),
        );
    }

    /// Forgets a camera (removed from the inventory).
    pub fn forget(&self, id: &str) {
        let mut v = self.verdicts.lock().unwrap_or_else(|p| p.into_inner());
        v.remove(id);
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        {
            let v = self.verdicts.lock().unwrap_or_else(|p| p.into_inner());
            self.cameras.clear();
            self.rungs.clear();
            for rung in [
                "unreachable",
                "tcp-reachable",
                "onvif-up",
                "authenticated",
                "streaming",
            ] {
                self.rungs
                    .get_or_create(&RungLabel { rung: rung.into() })
                    .set(0);
            }
            let mut unchecked = 0;
            for (village, verdict, rung) in v.values() {
                if verdict == UNCHECKED {
                    unchecked += 1;
                    continue;
                }
                self.cameras
                    .get_or_create(&CameraLabels {
                        village: village.clone(),
                        verdict: verdict.clone(),
                    })
                    .inc();
                self.rungs
                    .get_or_create(&RungLabel { rung: rung.clone() })
                    .inc();
            }
            self.unchecked.set(unchecked);
        }
        if let Some(s) = self.outbox.refresh() {
            self.uplink.refresh(&s.uplink);
        }
        self.process
            .refresh(super::metrics_ops::ProcessStats::read());
        self.disk_gauges.refresh(&self.disk);
        self.local_errors.refresh();
        let mut out = String::new();
        let r = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        let _ = prometheus_client::encoding::text::encode(&mut out, &r);
        out
    }
}

impl Outbox {
    fn register(r: &mut Registry) -> Outbox {
        let o = Outbox {
            source: Mutex::new(None),
            messages: Family::default(),
            bytes: Gauge::default(),
            oldest_age: Gauge::default(),
            commit_errors: Counter::default(),
        };
        r.register(
            "outbox_messages",
            "MQTT outbox rows (unsent and in flight) by class",
            o.messages.clone(),
        );
        r.register_with_unit(
            "outbox",
            "Bytes charged against mqtt.outbox_max_bytes",
            Unit::Bytes,
            o.bytes.clone(),
        );
        r.register_with_unit(
            "outbox_oldest_age",
            "Age of the oldest MQTT outbox row (0 when empty)",
            Unit::Seconds,
            o.oldest_age.clone(),
        );
        r.register(
            "outbox_commit_errors",
            "Messages not accepted because an outbox commit failed (disk full, I/O)",
            o.commit_errors.clone(),
        );
        for class in ["urgent", "state", "metadata", "history"] {
            let _ = o.messages.get_or_create(&ClassLabel {
                class: class.into(),
            });
        }
        o
    }

    fn refresh(&self) -> Option<OutboxStats> {
        let source = self
            .source
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let source = source?;
        let s = source();
        for (class, n) in &s.messages {
            self.messages
                .get_or_create(&ClassLabel {
                    class: (*class).into(),
                })
                .set(gauge_i64(*n));
        }
        self.bytes.set(gauge_i64(s.bytes));
        self.oldest_age.set(s.oldest_age_secs.max(0.0));
        // A counter only goes up: add what the uplink counted since.
        let seen = self.commit_errors.get();
        if s.commit_errors > seen {
            self.commit_errors.inc_by(s.commit_errors - seen);
        }
        Some(s)
    }
}

impl DiskGauges {
    fn register(r: &mut Registry) -> DiskGauges {
        let g = DiskGauges {
            free: Gauge::default(),
            total: Gauge::default(),
            low: Gauge::default(),
            critical: Gauge::default(),
        };
        r.register_with_unit(
            "disk_free",
            "Free bytes on the data volume for the gateway (statvfs f_bavail)",
            Unit::Bytes,
            g.free.clone(),
        );
        r.register_with_unit(
            "disk_total",
            "Size of the data volume",
            Unit::Bytes,
            g.total.clone(),
        );
        r.register(
            "disk_low",
            "1 while free space on the data volume is below gateway.disk_low_mb (or critical)",
            g.low.clone(),
        );
        r.register(
            "disk_critical",
            "1 while free space on the data volume is below gateway.disk_critical_mb",
            g.critical.clone(),
        );
        g
    }

    fn refresh(&self, d: &DiskState) {
        let (space, level) = (d.space(), d.level());
        self.free.set(gauge_i64(space.free));
        self.total.set(gauge_i64(space.total));
        self.low.set(i64::from(level >= DiskLevel::Low));
        self.critical.set(i64::from(level == DiskLevel::Critical));
    }
}

fn gauge_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchecked_cameras_and_inventory_failures_by_kind_are_exposed() {
        let m = Metrics::new();
        m.set_verdict("cam-1", "dongcun", UNCHECKED, "unreachable");
        m.set_verdict("cam-2", "dongcun", "ok", "streaming");
        let text = m.encode();
        assert!(text.contains("tgw_cameras_unchecked 1"), "{text}");
        assert!(!text.contains(r#"verdict="unchecked""#), "{text}");
        m.set_verdict("cam-1", "dongcun", "degraded", "onvif-up");
        let text = m.encode();
        assert!(text.contains("tgw_cameras_unchecked 0"), "{text}");
        assert!(text.contains(r#"tgw_cameras{village="dongcun",verdict="degraded"} 1"#));
        m.inventory_outcome("auth");
        m.inventory_outcome("auth");
        m.inventory_outcome("ok");
        let text = m.encode();
        assert!(
            text.contains(r#"tgw_camera_inventory_failures_total{kind="auth"} 2"#),
            "{text}"
        );
        assert!(!text.contains(r#"tgw_camera_inventory_failures_total{kind="ok"}"#));
        assert!(text.contains(r#"tgw_onvif_inventories_total{result="ok"} 1"#));
    }

    #[test]
    fn gauges_follow_verdicts_and_labels_are_bounded() {
        let m = Metrics::new();
        m.set_verdict("cam-1", "dongcun", "ok", "streaming");
        m.set_verdict("cam-2", "dongcun", "offline", "unreachable");
        m.set_verdict("cam-3", "xicun", "ok", "onvif-up");
        Metrics::count(&m.checks, "ok");
        Metrics::count(&m.checks, "timeout");
        let text = m.encode();
        assert!(
            text.contains(r#"tgw_cameras{village="dongcun",verdict="ok"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"tgw_cameras{village="dongcun",verdict="offline"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"tgw_camera_rungs{rung="tcp-reachable"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"tgw_camera_checks_total{result="timeout"} 1"#),
            "{text}"
        );
        assert!(!text.contains("cam-1"), "device ids are not labels");
        m.set_verdict("cam-2", "dongcun", "ok", "streaming");
        let text = m.encode();
        assert!(!text.contains(r#"verdict="offline""#), "{text}");
    }

    /// The outbox figures come from the source at scrape time; the commit
    /// error counter follows the uplink's total.
    #[test]
    fn outbox_gauges_and_commit_errors_follow_the_source() {
        let m = Metrics::new();
        let text = m.encode();
        assert!(
            text.contains(r#"tgw_outbox_messages{class="history"} 0"#),
            "{text}"
        );
        assert!(text.contains("tgw_outbox_commit_errors_total 0"), "{text}");
        let errors = Arc::new(std::sync::atomic::AtomicU64::new(7));
        let e2 = errors.clone();
        m.set_outbox_source(Arc::new(move || OutboxStats {
            messages: vec![
                ("urgent", 1),
                ("state", 40),
                ("metadata", 0),
                ("history", 1200),
            ],
            bytes: 123_456,
            oldest_age_secs: 42.5,
            commit_errors: e2.load(std::sync::atomic::Ordering::Relaxed),
            ..Default::default()
        }));
        let text = m.encode();
        for want in [
            r#"tgw_outbox_messages{class="state"} 40"#,
            r#"tgw_outbox_messages{class="history"} 1200"#,
            "tgw_outbox_bytes 123456",
            "tgw_outbox_oldest_age_seconds 42.5",
            "tgw_outbox_commit_errors_total 7",
            "# TYPE tgw_outbox_commit_errors counter",
        ] {
            assert!(text.contains(want), "{want} missing in\n{text}");
        }
        errors.store(9, std::sync::atomic::Ordering::Relaxed);
        assert!(m.encode().contains("tgw_outbox_commit_errors_total 9"));
    }

    #[test]
    fn disk_gauges_follow_the_watchdog_state() {
        use crate::base::disk::{Marks, Space};
        let m = Metrics::new();
        let text = m.encode();
        assert!(text.contains("tgw_disk_low 0"), "{text}");
        let space = Space {
            free: 5 << 20,
            total: 1 << 30,
        };
        m.disk()
            .set(DiskLevel::Critical, space, Marks::from_mb(64, 16));
        let text = m.encode();
        for want in [
            "tgw_disk_free_bytes 5242880",
            "tgw_disk_total_bytes 1073741824",
            "tgw_disk_low 1",
            "tgw_disk_critical 1",
        ] {
            assert!(text.contains(want), "{want} missing in\n{text}");
        }
    }
}
