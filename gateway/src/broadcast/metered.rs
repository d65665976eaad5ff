//! [`Metered`]: a [`ReportSink`] that counts horn and broadcast reports in
//! `/metrics` (`tgw_horn_reports_total`, `tgw_broadcast_start_skew_seconds`,
//! `tgw_broadcasts`, `tgw_broadcasts_finished_total`,
//! `tgw_broadcast_horn_outcomes_total`; horns that failed on the gateway's
//! side in `tgw_local_errors_total{task="horn"}`) before handing them on.

use std::sync::Arc;

use device_drivers::local_error::LocalResource;
use serde_json::Value;

use super::runtime::ReportSink;
use crate::base::metrics::Metrics;

/// Counts every report, then passes it to `inner`.
pub struct Metered {
    /// Where the reports go next (the uplink's publisher).
    pub inner: Arc<dyn ReportSink>,
    /// Where they are counted.
    pub metrics: Arc<Metrics>,
}

impl ReportSink for Metered {
    fn speaker_state(&self, id: &str, body: Value) {
        let state = body.get("state").and_then(Value::as_str).unwrap_or("");
        match body.get("detail").and_then(|d| d.get("skew_ms")) {
            // The measured start of a horn already reported `started`.
            Some(skew) => self.metrics.broadcasts.horn_skew(skew.as_f64()),
            None => self.metrics.broadcasts.horn(state),
        }
        self.inner.speaker_state(id, body);
    }

    fn broadcast_state(&self, id: &str, body: Value) {
        let s = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("");
        let counts: Vec<(String, u64)> = body
            .get("counts")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        self.metrics
            .broadcasts
            .broadcast(id, s("state"), s("priority"), &counts);
        self.inner.broadcast_state(id, body);
    }

    fn broadcast_horn(&self, id: &str, speaker: &str, body: Value) {
        // Counted once, on `speaker_state`, which every report also takes.
        self.inner.broadcast_horn(id, speaker, body);
    }

    /// `tgw_local_errors_total{kind, task="horn"}`, the rate-limited
    /// warning and the `local_limit` alarm.
    fn horn_failed_locally(&self, what: LocalResource) {
        self.metrics.local_errors.report(what, "horn");
        self.inner.horn_failed_locally(what);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broadcast::runtime::NoReports;
    use serde_json::json;

    fn metered() -> (Metered, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::new());
        let m = Metered {
            inner: Arc::new(NoReports),
            metrics: metrics.clone(),
        };
        (m, metrics)
    }

    fn has(text: &str, want: &str) {
        assert!(text.contains(want), "{want} missing in\n{text}");
    }

    /// A broadcast goes queued → playing → done: the gauge follows it, the
    /// end is counted once (a republished row does not count again), and
    /// its horns' outcomes are counted by priority.
    #[test]
    fn broadcast_states_and_horn_outcomes_are_counted_once() {
        let (m, metrics) = metered();
        let row = |state: &str, counts: Value| json!({"id": "b1", "state": state, "priority": "emergency", "counts": counts});
        m.broadcast_state("b1", row("queued", json!({"queued": 3})));
        has(
            &metrics.encode(),
            r#"tgw_broadcasts{state="queued",priority="emergency"} 1"#,
        );
        m.broadcast_state("b1", row("playing", json!({"started": 3})));
        let t = metrics.encode();
        has(
            &t,
            r#"tgw_broadcasts{state="queued",priority="emergency"} 0"#,
        );
        has(
            &t,
            r#"tgw_broadcasts{state="playing",priority="emergency"} 1"#,
        );
        let end = row("done", json!({"done": 2, "failed": 1}));
        m.broadcast_state("b1", end.clone());
        m.broadcast_state("b1", end);
        let t = metrics.encode();
        has(
            &t,
            r#"tgw_broadcasts{state="playing",priority="emergency"} 0"#,
        );
        has(
            &t,
            r#"tgw_broadcasts_finished_total{state="done",priority="emergency"} 1"#,
        );
        has(
            &t,
            r#"tgw_broadcast_horn_outcomes_total{priority="emergency",outcome="failed"} 1"#,
        );
        has(
            &t,
            r#"tgw_broadcast_horn_outcomes_total{priority="emergency",outcome="done"} 2"#,
        );
        assert!(!t.contains("b1"), "broadcast ids are not labels");
    }

    /// Horn reports are counted by state; the measured start feeds the skew
    /// histogram without counting `started` twice; odd values stay bounded.
    #[test]
    fn horn_reports_and_skew_are_counted() {
        let (m, metrics) = metered();
        m.speaker_state("h1", json!({"state": "started", "detail": {"t0": 5}}));
        m.speaker_state(
            "h1",
            json!({"state": "started", "detail": {"skew_ms": 3.0, "answered": true}}),
        );
        m.speaker_state("h1", json!({"state": "failed", "detail": {"why": "x"}}));
        m.speaker_state("h1", json!({"state": "made-up"}));
        m.broadcast_state(
            "b2",
            json!({"state": "weird", "priority": "<script>", "counts": {}}),
        );
        let t = metrics.encode();
        has(&t, r#"tgw_horn_reports_total{state="started"} 1"#);
        has(&t, r#"tgw_horn_reports_total{state="failed"} 1"#);
        has(&t, r#"tgw_horn_reports_total{state="other"} 1"#);
        has(&t, "tgw_broadcast_start_skew_seconds_count 1");
        has(
            &t,
            r#"tgw_broadcast_start_skew_seconds_bucket{le="0.004"} 1"#,
        );
        has(&t, r#"tgw_broadcasts{state="other",priority="other"} 1"#);
        assert!(!t.contains("\"h1\"") && !t.contains("<script>"), "{t}");
    }
}
