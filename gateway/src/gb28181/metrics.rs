//! The GB/T 28181 uplink's metrics (`docs/metrics.md`, "GB/T 28181"):
//! platforms by registration state and live relays (both read from the
//! running service at scrape time), and counters of registrations,
//! keepalives, catalog messages, relays started and failed, and PS sent.
//!
//! The counters are process-wide ([`counters`]): the service, its calls and
//! the media relays count into them without a handle passed through every
//! constructor; [`register`] puts them (and the scrape-time gauges of one
//! running service) into the daemon's registry. Labels are bounded: a
//! registration state, a result, a failure reason; never a platform
//! address, a camera or a call id.

use std::sync::LazyLock;

use device_drivers::gb28181::register::Event;
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use super::Gb;
use super::media_api::MediaError;
use crate::base::metrics::Metrics;

/// Registration states of a platform, as `state` labels (every one present).
pub const STATES: [&str; 5] = [
    "idle",
    "registering",
    "registered",
    "rejected",
    "unreachable",
];

/// `state` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// One of [`STATES`].
    pub state: String,
}

/// `result` label of registrations.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `ok`, `rejected`, `unreachable`, `keepalive_lost`.
    pub result: String,
}

/// `kind` label of catalog messages.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// `response` (a page answering a Catalog query) or `notify`.
    pub kind: String,
}

/// `reason` label of failed relays.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// See [`FAIL_REASONS`].
    pub reason: String,
}

/// Why a relay failed: refused at INVITE (`not_found`, `no_source`, `busy`,
/// `bad_offer`, `camera`), or ended other than by BYE (`no_ack`,
/// `no_connection`, `camera_lost`, `send`).
pub const FAIL_REASONS: [&str; 9] = [
    "not_found",
    "no_source",
    "busy",
    "bad_offer",
    "camera",
    "no_ack",
    "no_connection",
    "camera_lost",
    "send",
];

/// The counters, shared by the whole process.
#[derive(Default)]
pub struct GbCounters {
    /// Registration outcomes.
    pub registrations: Family<ResultLabel, Counter>,
    /// Keepalive MESSAGEs sent.
    pub keepalives_sent: Counter,
    /// Keepalives answered 200 by the platform.
    pub keepalives_answered: Counter,
    /// Catalog MESSAGEs (pages) and NOTIFYs sent.
    pub catalog_messages: Family<KindLabel, Counter>,
    /// Relays that started (INVITE answered 200).
    pub relays_started: Counter,
    /// Relays refused or ended by a failure.
    pub relays_failed: Family<ReasonLabel, Counter>,
    /// RTP packets of PS sent to platforms.
    pub ps_packets: Counter,
    /// Bytes of those packets (RTP header included).
    pub ps_bytes: Counter,
}

static COUNTERS: LazyLock<GbCounters> = LazyLock::new(|| {
    let c = GbCounters::default();
    for r in ["ok", "rejected", "unreachable", "keepalive_lost"] {
        let _ = c
            .registrations
            .get_or_create(&ResultLabel { result: r.into() });
    }
    for k in ["response", "notify"] {
        let _ = c
            .catalog_messages
            .get_or_create(&KindLabel { kind: k.into() });
    }
    for r in FAIL_REASONS {
        let _ = c
            .relays_failed
            .get_or_create(&ReasonLabel { reason: r.into() });
    }
    c
});

/// The process-wide counters.
pub fn counters() -> &'static GbCounters {
    &COUNTERS
}

impl GbCounters {
    /// Counts a registration outcome.
    pub fn registration(&self, result: &str) {
        self.registrations
            .get_or_create(&ResultLabel {
                result: result.into(),
            })
            .inc();
    }

    /// Counts a request the registration sends (REGISTER or keepalive).
    pub fn sent(&self, bytes: &[u8]) {
        if is_keepalive(bytes) {
            self.keepalives_sent.inc();
        }
    }

    /// Counts a registration event.
    pub fn event(&self, e: &Event) {
        match e {
            Event::Registered { .. } => self.registration("ok"),
            Event::Rejected { .. } => self.registration("rejected"),
            Event::Unreachable => self.registration("unreachable"),
            Event::Reregister { .. } => self.registration("keepalive_lost"),
            Event::KeepaliveAnswered => {
                self.keepalives_answered.inc();
            }
        }
    }

    /// Counts `n` catalog messages of `kind` (`response`, `notify`).
    pub fn catalog(&self, kind: &str, n: u64) {
        self.catalog_messages
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc_by(n);
    }

    /// Counts a failed relay.
    pub fn relay_failed(&self, reason: &str) {
        self.relays_failed
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc();
    }

    /// Counts the outcome of an INVITE handed to media.
    pub fn invite_result<T>(&self, r: &Result<T, MediaError>) {
        match r {
            Ok(_) => {
                self.relays_started.inc();
            }
            Err(e) => self.relay_failed(match e {
                MediaError::Busy { .. } => "busy",
                MediaError::BadOffer(_) => "bad_offer",
                MediaError::Camera(_) => "camera",
            }),
        }
    }
}

/// Whether `bytes` (a request the registration sends) is a keepalive: the
/// registration sends only REGISTERs and keepalive MESSAGEs.
pub fn is_keepalive(bytes: &[u8]) -> bool {
    bytes.starts_with(b"MESSAGE ")
}

/// A gauge family filled from the running service at scrape time.
struct Live {
    gb: Gb,
    what: Gauges,
}

#[derive(Debug, Clone, Copy)]
enum Gauges {
    Platforms,
    Relays,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").field("what", &self.what).finish()
    }
}

impl EncodeMetric for Live {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        match self.what {
            Gauges::Platforms => {
                let fam = Family::<StateLabel, Gauge>::default();
                for s in STATES {
                    let _ = fam.get_or_create(&StateLabel { state: s.into() });
                }
                for p in self.gb.status().platforms {
                    fam.get_or_create(&StateLabel {
                        state: p.state.into(),
                    })
                    .inc();
                }
                fam.encode(encoder)
            }
            Gauges::Relays => {
                let g: Gauge = Gauge::default();
                g.set(i64::try_from(self.gb.status().relays.len()).unwrap_or(i64::MAX));
                g.encode(encoder)
            }
        }
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

/// Registers the GB/T 28181 families in `m`, the gauges reading `gb`.
pub fn register(m: &Metrics, gb: Gb) {
    let c = counters();
    m.register_extra(
        "gb_platforms",
        "GB/T 28181 platforms by registration state",
        Live {
            gb: gb.clone(),
            what: Gauges::Platforms,
        },
    );
    m.register_extra(
        "gb_relays",
        "GB/T 28181 live media relays",
        Live {
            gb,
            what: Gauges::Relays,
        },
    );
    m.register_extra(
        "gb_registrations",
        "GB/T 28181 registration outcomes by result",
        c.registrations.clone(),
    );
    m.register_extra(
        "gb_keepalives_sent",
        "GB/T 28181 keepalive MESSAGEs sent",
        c.keepalives_sent.clone(),
    );
    m.register_extra(
        "gb_keepalives_answered",
        "GB/T 28181 keepalives answered by the platform",
        c.keepalives_answered.clone(),
    );
    m.register_extra(
        "gb_catalog_messages",
        "GB/T 28181 catalog MESSAGE pages and NOTIFYs sent",
        c.catalog_messages.clone(),
    );
    m.register_extra(
        "gb_relays_started",
        "GB/T 28181 relays started (INVITE answered 200)",
        c.relays_started.clone(),
    );
    m.register_extra(
        "gb_relays_failed",
        "GB/T 28181 relays refused at INVITE or ended by a failure, by reason",
        c.relays_failed.clone(),
    );
    m.register_extra(
        "gb_ps_packets",
        "RTP packets of MPEG-PS sent to platforms",
        c.ps_packets.clone(),
    );
    m.register_extra(
        "gb_ps_bytes",
        "Bytes of RTP packets of MPEG-PS sent to platforms",
        c.ps_bytes.clone(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keepalives are told from REGISTERs by the request line; INVITE
    /// outcomes land on their reason.
    #[test]
    fn keepalive_and_invite_outcomes() {
        assert!(is_keepalive(b"MESSAGE sip:3402@3402000000 SIP/2.0\r\n"));
        assert!(!is_keepalive(b"REGISTER sip:3402@3402000000 SIP/2.0\r\n"));
        let c = GbCounters::default();
        c.invite_result::<()>(&Err(MediaError::Busy {
            active: 2,
            limit: 2,
        }));
        c.invite_result(&Ok(()));
        let busy = c
            .relays_failed
            .get_or_create(&ReasonLabel {
                reason: "busy".into(),
            })
            .get();
        assert_eq!((busy, c.relays_started.get()), (1, 1));
    }
}
