//! Prometheus metrics of the gateway, served at `/metrics`.
//!
//! Every metric is listed with its unit and labels in `docs/metrics.md`.
//! Labels are bounded: error kinds, verdicts, rungs and village codes —
//! never an address, a URL or a device id.

use std::collections::HashMap;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// `result` label: `ok` or an error kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `ok` or a bounded error kind.
    pub result: String,
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
    /// Current verdicts, for the gauges: device id → (village, verdict, rung).
    pub verdicts: Mutex<HashMap<String, (String, String, String)>>,
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
            verdicts: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one outcome.
    pub fn count(family: &Family<ResultLabel, Counter>, result: &str) {
        family
            .get_or_create(&ResultLabel {
                result: result.to_string(),
            })
            .inc();
    }

    /// Records a camera's current verdict for the gauges.
    pub fn set_verdict(&self, id: &str, village: &str, verdict: &str, rung: &str) {
        let mut v = self.verdicts.lock().unwrap_or_else(|p| p.into_inner());
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
            for (village, verdict, rung) in v.values() {
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
        }
        let mut out = String::new();
        let r = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        let _ = prometheus_client::encoding::text::encode(&mut out, &r);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
