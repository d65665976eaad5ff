//! The operational families of `/metrics` (issue 16): the uplink (beyond
//! the outbox gauges of `metrics.rs`), broadcasts and horn outcomes, speaker
//! tests and the process itself. Registered by [`super::metrics::Metrics`];
//! every family is listed in `docs/metrics.md`.
//!
//! Labels are bounded: states, priorities, classes and error kinds — never a
//! horn, a camera or a broadcast id.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// Broadcast priorities, lowest first (`tgw_core::broadcast::Priority`).
pub const PRIORITIES: [&str; 5] = ["background", "routine", "township", "superior", "emergency"];

/// A broadcast's states once it has ended.
pub const FINAL_STATES: [&str; 4] = ["done", "cancelled", "interrupted", "failed"];

/// `class` label (outbox evictions).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EvictClass {
    /// `urgent`, `state`, `metadata`, `history`.
    pub class: String,
}

/// `reason` label of messages never accepted into the outbox, and of
/// command subscription downgrades.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// `channel`, `invalid`, `budget`; `closed`, `refused`.
    pub reason: String,
}

/// Broadcast labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BroadcastLabels {
    /// `queued`, `playing` (gauge) or a final state (counter).
    pub state: String,
    /// `background` … `emergency`.
    pub priority: String,
}

/// Per-horn outcome labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HornOutcomeLabels {
    /// The broadcast's priority.
    pub priority: String,
    /// The horn's last state: `done`, `failed`, `cancelled`, …
    pub outcome: String,
}

/// `state` label of horn reports.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// A horn state (`queued`, `started`, `done`, `failed`, …).
    pub state: String,
}

/// The uplink's counters as the uplink keeps them (plain atomics read at
/// scrape time; see `uplink::Metrics`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UplinkStats {
    /// 1 while connected to the broker.
    pub connected: u64,
    /// Successful connections (the first one included).
    pub connections: u64,
    /// Failed connection attempts and lost connections.
    pub connection_errors: u64,
    /// Messages committed to the outbox.
    pub accepted: u64,
    /// Never accepted, by reason (`channel`, `invalid`, `budget`).
    pub rejected: Vec<(&'static str, u64)>,
    /// Publishes written to the broker (resends included).
    pub published: u64,
    /// Of which resends after a reconnect or restart.
    pub resent: u64,
    /// PUBACKs received.
    pub acked: u64,
    /// Accepted and later evicted unsent, per class name.
    pub evicted: Vec<(&'static str, u64)>,
    /// Commands received from the centre.
    pub commands: u64,
    /// The QoS the command subscription asks now (0 or 1).
    pub command_qos: u64,
    /// QoS 1 given up for QoS 0, by reason (`closed`, `refused`).
    pub command_qos_downgrades: Vec<(&'static str, u64)>,
    /// SUBACKs refusing a subscription.
    pub command_subscriptions_refused: u64,
}

/// The uplink families.
pub(super) struct UplinkFamilies {
    configured: Gauge,
    connected: Gauge,
    connections: Counter,
    connection_errors: Counter,
    accepted: Counter,
    rejected: Family<ReasonLabel, Counter>,
    published: Counter,
    resent: Counter,
    acked: Counter,
    evicted: Family<EvictClass, Counter>,
    commands: Counter,
    command_qos: Gauge,
    command_qos_downgrades: Family<ReasonLabel, Counter>,
    command_subscriptions_refused: Counter,
}

/// Broadcast, horn and speaker-test families.
pub struct BroadcastFamilies {
    active: Family<BroadcastLabels, Gauge>,
    finished: Family<BroadcastLabels, Counter>,
    horn_outcomes: Family<HornOutcomeLabels, Counter>,
    horn_reports: Family<StateLabel, Counter>,
    skew: Histogram,
    speaker_tests: Family<super::metrics::ResultLabel, Counter>,
    open: Mutex<Open>,
}

/// Process families, read from `/proc/self` at scrape time.
pub(super) struct ProcessFamilies {
    rss: Gauge,
    fds: Gauge,
    threads: Gauge,
    max_fds: Gauge,
}

/// A counter that follows a total kept elsewhere (it only goes up).
fn follow(c: &Counter, total: u64) {
    let seen = c.get();
    if total > seen {
        c.inc_by(total - seen);
    }
}

fn gauge_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl UplinkFamilies {
    pub(super) fn register(r: &mut Registry) -> Self {
        let f = UplinkFamilies {
            configured: Gauge::default(),
            connected: Gauge::default(),
            connections: Counter::default(),
            connection_errors: Counter::default(),
            accepted: Counter::default(),
            rejected: Family::default(),
            published: Counter::default(),
            resent: Counter::default(),
            acked: Counter::default(),
            evicted: Family::default(),
            commands: Counter::default(),
            command_qos: Gauge::default(),
            command_qos_downgrades: Family::default(),
            command_subscriptions_refused: Counter::default(),
        };
        r.register(
            "uplink_configured",
            "1 when an [mqtt] uplink is configured",
            f.configured.clone(),
        );
        r.register(
            "uplink_connected",
            "1 while connected to the MQTT broker",
            f.connected.clone(),
        );
        r.register(
            "uplink_connections",
            "Successful MQTT connections (CONNACK accepted); more than one means reconnects",
            f.connections.clone(),
        );
        r.register(
            "uplink_connection_errors",
            "Failed MQTT connection attempts and lost connections",
            f.connection_errors.clone(),
        );
        r.register(
            "uplink_accepted",
            "Messages committed to the MQTT outbox",
            f.accepted.clone(),
        );
        r.register(
            "uplink_rejected",
            "Messages never accepted into the outbox, by reason",
            f.rejected.clone(),
        );
        r.register(
            "uplink_published",
            "MQTT publishes written to the broker (resends included)",
            f.published.clone(),
        );
        r.register(
            "uplink_resent",
            "MQTT publishes resent after a reconnect or restart",
            f.resent.clone(),
        );
        r.register(
            "uplink_acked",
            "PUBACKs received for outbox messages",
            f.acked.clone(),
        );
        r.register(
            "outbox_evicted",
            "Accepted messages evicted unsent to stay within mqtt.outbox_max_bytes, by class",
            f.evicted.clone(),
        );
        r.register(
            "uplink_commands",
            "Commands received from the centre",
            f.commands.clone(),
        );
        r.register(
            "uplink_command_qos",
            "QoS the command subscription asks now: 0 after a broker stranded QoS 1, until it is retried",
            f.command_qos.clone(),
        );
        r.register(
            "uplink_command_qos_downgrades",
            "Command subscriptions moved from QoS 1 to QoS 0, by reason (closed, refused)",
            f.command_qos_downgrades.clone(),
        );
        r.register(
            "uplink_command_subscriptions_refused",
            "SUBACKs refusing a subscription (0x80)",
            f.command_subscriptions_refused.clone(),
        );
        for reason in ["closed", "refused"] {
            let _ = f.command_qos_downgrades.get_or_create(&ReasonLabel {
                reason: reason.into(),
            });
        }
        for class in ["urgent", "state", "metadata", "history"] {
            let _ = f.evicted.get_or_create(&EvictClass {
                class: class.into(),
            });
        }
        for reason in ["channel", "invalid", "budget"] {
            let _ = f.rejected.get_or_create(&ReasonLabel {
                reason: reason.into(),
            });
        }
        f
    }

    pub(super) fn refresh(&self, s: &UplinkStats) {
        self.configured.set(1);
        self.connected.set(gauge_i64(s.connected));
        follow(&self.connections, s.connections);
        follow(&self.connection_errors, s.connection_errors);
        follow(&self.accepted, s.accepted);
        follow(&self.published, s.published);
        follow(&self.resent, s.resent);
        follow(&self.acked, s.acked);
        follow(&self.commands, s.commands);
        self.command_qos.set(gauge_i64(s.command_qos));
        follow(
            &self.command_subscriptions_refused,
            s.command_subscriptions_refused,
        );
        for (reason, n) in &s.command_qos_downgrades {
            follow(
                &self.command_qos_downgrades.get_or_create(&ReasonLabel {
                    reason: (*reason).into(),
                }),
                *n,
            );
        }
        for (reason, n) in &s.rejected {
            follow(
                &self.rejected.get_or_create(&ReasonLabel {
                    reason: (*reason).into(),
                }),
                *n,
            );
        }
        for (class, n) in &s.evicted {
            follow(
                &self.evicted.get_or_create(&EvictClass {
                    class: (*class).into(),
                }),
                *n,
            );
        }
    }
}

impl BroadcastFamilies {
    pub(super) fn register(r: &mut Registry) -> Self {
        let f = BroadcastFamilies {
            active: Family::default(),
            finished: Family::default(),
            horn_outcomes: Family::default(),
            horn_reports: Family::default(),
            // 1 ms … ~4 s.
            skew: Histogram::new(exponential_buckets(0.001, 2.0, 13)),
            speaker_tests: Family::default(),
            open: Mutex::new(Open::default()),
        };
        r.register(
            "broadcasts",
            "Broadcasts not yet ended, by state (queued, playing) and priority",
            f.active.clone(),
        );
        r.register(
            "broadcasts_finished",
            "Broadcasts ended, by final state and priority",
            f.finished.clone(),
        );
        r.register(
            "broadcast_horn_outcomes",
            "Horns of ended broadcasts by the broadcast's priority and the horn's last state",
            f.horn_outcomes.clone(),
        );
        r.register(
            "horn_reports",
            "Horn state reports (queued, started, done, failed, ...)",
            f.horn_reports.clone(),
        );
        r.register_with_unit(
            "broadcast_start_skew",
            "How far after T0 a horn's first packet went out",
            Unit::Seconds,
            f.skew.clone(),
        );
        r.register(
            "speaker_tests",
            "Test tones played on one horn (dashboard/API), by result",
            f.speaker_tests.clone(),
        );
        // Every priority present, so a query on any of them has a series.
        for p in PRIORITIES {
            for state in ["queued", "playing"] {
                f.active.get_or_create(&labels(state, p)).set(0);
            }
            for state in FINAL_STATES {
                let _ = f.finished.get_or_create(&labels(state, p));
            }
            for outcome in ["done", "failed"] {
                let _ = f.horn_outcomes.get_or_create(&HornOutcomeLabels {
                    priority: p.into(),
                    outcome: outcome.into(),
                });
            }
        }
        let _ = f.speaker_tests.get_or_create(&super::metrics::ResultLabel {
            result: "ok".into(),
        });
        f
    }

    /// A broadcast's row was published (`state`, `priority` and, once it
    /// ended, the per-state `counts` of its horns). A final state is
    /// counted once per broadcast; a row republished after its end changes
    /// nothing.
    pub fn broadcast(&self, id: &str, state: &str, priority: &str, counts: &[(String, u64)]) {
        let priority = bounded(priority, &PRIORITIES);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let before = open.open.get(id).cloned();
        if FINAL_STATES.contains(&state) {
            if let Some((s, p)) = open.open.remove(id) {
                self.active.get_or_create(&labels(&s, &p)).dec();
            } else if open.ended.contains(id) {
                return;
            }
            open.remember_ended(id);
            self.finished.get_or_create(&labels(state, priority)).inc();
            for (outcome, n) in counts {
                self.horn_outcomes
                    .get_or_create(&HornOutcomeLabels {
                        priority: priority.into(),
                        outcome: bounded(outcome, &HORN_STATES).into(),
                    })
                    .inc_by(*n);
            }
            return;
        }
        let state = bounded(state, &["queued", "playing"]);
        if let Some((s, p)) = &before {
            if s == state {
                return;
            }
            self.active.get_or_create(&labels(s, p)).dec();
        } else if open.open.len() >= MAX_OPEN {
            // Bounded: a runaway of never-ending broadcasts cannot grow it.
            return;
        }
        self.active.get_or_create(&labels(state, priority)).inc();
        open.open
            .insert(id.to_string(), (state.to_string(), priority.to_string()));
    }

    /// A horn reported a state.
    pub fn horn(&self, state: &str) {
        self.horn_reports
            .get_or_create(&StateLabel {
                state: bounded(state, &HORN_STATES).into(),
            })
            .inc();
    }

    /// A horn's measured start: `skew_ms` after T0 (none when it never
    /// sent a packet).
    pub fn horn_skew(&self, skew_ms: Option<f64>) {
        if let Some(ms) = skew_ms.filter(|m| m.is_finite()) {
            self.skew.observe(ms.abs() / 1000.0);
        }
    }

    /// A speaker test ended: `ok` or a bounded error kind.
    pub fn speaker_test(&self, result: &str) {
        self.speaker_tests
            .get_or_create(&super::metrics::ResultLabel {
                result: result.to_string().into(),
            })
            .inc();
    }
}

fn labels(state: &str, priority: &str) -> BroadcastLabels {
    BroadcastLabels {
        state: state.into(),
        priority: priority.into(),
    }
}

/// Horn states a label may take (`HornStatus`); anything else is `other`.
const HORN_STATES: [&str; 7] = [
    "queued",
    "started",
    "done",
    "interrupted",
    "failed",
    "cancelled",
    "dropped",
];

/// At most this many broadcasts are followed at once, and remembered as
/// ended (so a republished row is not counted twice).
const MAX_OPEN: usize = 10_000;

/// Broadcasts not yet ended (id → state, priority) and the ids of the
/// last ones that ended.
#[derive(Default)]
struct Open {
    open: HashMap<String, (String, String)>,
    ended: HashSet<String>,
    ended_order: VecDeque<String>,
}

impl Open {
    fn remember_ended(&mut self, id: &str) {
        if self.ended.insert(id.to_string()) {
            self.ended_order.push_back(id.to_string());
        }
        while self.ended_order.len() > MAX_OPEN {
            if let Some(old) = self.ended_order.pop_front() {
                self.ended.remove(&old);
            }
        }
    }
}

fn bounded<'a>(v: &'a str, allowed: &[&str]) -> &'a str {
    if allowed.contains(&v) { v } else { "other" }
}

/// What `/proc/self` says about this process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessStats {
    /// Resident set size in bytes (`VmRSS`).
    pub rss_bytes: u64,
    /// Threads.
    pub threads: u64,
    /// Open file descriptors (entries of `/proc/self/fd`).
    pub open_fds: u64,
    /// The soft limit on open files.
    pub max_fds: u64,
}

impl ProcessStats {
    /// Reads `/proc/self`; a figure that cannot be read stays 0.
    pub fn read() -> ProcessStats {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count() as u64)
            .unwrap_or(0);
        let mut s = ProcessStats::parse(&status, &limits);
        s.open_fds = open_fds;
        s
    }

    /// The figures in `/proc/self/status` and `/proc/self/limits` text.
    pub fn parse(status: &str, limits: &str) -> ProcessStats {
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        };
        let max_fds = limits
            .lines()
            .find_map(|l| l.strip_prefix("Max open files"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        ProcessStats {
            rss_bytes: field("VmRSS:").unwrap_or(0).saturating_mul(1024),
            threads: field("Threads:").unwrap_or(0),
            open_fds: 0,
            max_fds,
        }
    }
}

impl ProcessFamilies {
    pub(super) fn register(r: &mut Registry) -> Self {
        let f = ProcessFamilies {
            rss: Gauge::default(),
            fds: Gauge::default(),
            threads: Gauge::default(),
            max_fds: Gauge::default(),
        };
        r.register_with_unit(
            "process_resident_memory",
            "Resident memory of the gateway process (VmRSS)",
            Unit::Bytes,
            f.rss.clone(),
        );
        r.register(
            "process_open_fds",
            "Open file descriptors of the gateway process",
            f.fds.clone(),
        );
        r.register(
            "process_max_fds",
            "Soft limit on open file descriptors",
            f.max_fds.clone(),
        );
        r.register(
            "process_threads",
            "Threads of the gateway process",
            f.threads.clone(),
        );
        f
    }

    pub(super) fn refresh(&self, s: ProcessStats) {
        self.rss.set(gauge_i64(s.rss_bytes));
        self.fds.set(gauge_i64(s.open_fds));
        self.threads.set(gauge_i64(s.threads));
        self.max_fds.set(gauge_i64(s.max_fds));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::base::metrics::{Metrics, OutboxStats};

    fn has(text: &str, want: &str) {
        assert!(text.contains(want), "{want} missing in\n{text}");
    }

    #[test]
    fn process_figures_parse_from_proc_text() {
        let status = "Name:\ttgw\nVmRSS:\t   20480 kB\nThreads:\t7\n";
        let limits = "Limit Soft Limit Hard Limit Units\nMax open files            1024                 524288               files\n";
        let s = ProcessStats::parse(status, limits);
        assert_eq!(s.rss_bytes, 20480 * 1024);
        assert_eq!(s.threads, 7);
        assert_eq!(s.max_fds, 1024);
        // Garbage reads as 0, never a panic.
        assert_eq!(
            ProcessStats::parse("VmRSS: lots", ""),
            ProcessStats::default()
        );
    }

    /// The real process: RSS, threads and fds are read at scrape time.
    #[test]
    fn process_gauges_come_from_proc_self() {
        let m = Metrics::new();
        let before = ProcessStats::read().open_fds;
        let t = m.encode();
        assert!(before > 0, "this test process has open fds");
        for name in [
            "tgw_process_resident_memory_bytes ",
            "tgw_process_threads ",
            "tgw_process_open_fds ",
        ] {
            let line = t.lines().find(|l| l.starts_with(name)).expect(name);
            let v: f64 = line[name.len()..].trim().parse().expect(line);
            assert!(v > 0.0, "{line}");
        }
    }

    /// Uplink counters follow the uplink's totals (connections, acks,
    /// evictions by class) and never go down; without [mqtt] the uplink
    /// reads as not configured.
    #[test]
    fn uplink_counters_follow_the_uplink() {
        let m = Metrics::new();
        let t = m.encode();
        has(&t, "tgw_uplink_configured 0");
        has(&t, r#"tgw_outbox_evicted_total{class="history"} 0"#);
        let acked = Arc::new(AtomicU64::new(5));
        let a2 = acked.clone();
        m.set_outbox_source(Arc::new(move || OutboxStats {
            uplink: UplinkStats {
                connected: 1,
                connections: 3,
                connection_errors: 2,
                accepted: 10,
                rejected: vec![("budget", 4)],
                published: 9,
                resent: 1,
                acked: a2.load(Ordering::Relaxed),
                evicted: vec![("history", 6), ("urgent", 0)],
                commands: 2,
                command_qos: 0,
                command_qos_downgrades: vec![("closed", 3)],
                command_subscriptions_refused: 1,
            },
            ..Default::default()
        }));
        let t = m.encode();
        for want in [
            "tgw_uplink_configured 1",
            "tgw_uplink_connected 1",
            "tgw_uplink_connections_total 3",
            "tgw_uplink_connection_errors_total 2",
            "tgw_uplink_published_total 9",
            "tgw_uplink_acked_total 5",
            r#"tgw_uplink_rejected_total{reason="budget"} 4"#,
            r#"tgw_outbox_evicted_total{class="history"} 6"#,
            "tgw_uplink_command_qos 0",
            r#"tgw_uplink_command_qos_downgrades_total{reason="closed"} 3"#,
            r#"tgw_uplink_command_qos_downgrades_total{reason="refused"} 0"#,
            "tgw_uplink_command_subscriptions_refused_total 1",
        ] {
            has(&t, want);
        }
        acked.store(8, Ordering::Relaxed);
        has(&m.encode(), "tgw_uplink_acked_total 8");
        acked.store(2, Ordering::Relaxed);
        has(&m.encode(), "tgw_uplink_acked_total 8");
    }

    #[test]
    fn speaker_tests_are_counted_by_result() {
        let m = Metrics::new();
        m.broadcasts.speaker_test("ok");
        m.broadcasts.speaker_test("timeout");
        m.broadcasts.speaker_test("timeout");
        let t = m.encode();
        has(&t, r#"tgw_speaker_tests_total{result="ok"} 1"#);
        has(&t, r#"tgw_speaker_tests_total{result="timeout"} 2"#);
    }
}
