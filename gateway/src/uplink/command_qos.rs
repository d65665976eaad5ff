//! Which QoS the command subscription asks for on each connection, and
//! when a QoS 1 subscription that strands the gateway falls back to QoS 0
//! (`docs/fleet.md`). Pure: the session reports what became of each
//! subscription and passes the time in.
//!
//! RabbitMQ 3.10 keeps a clean session's QoS 1 subscription in a durable
//! queue on the node the gateway was connected to; while that node is down
//! every other node closes the connection on our SUBSCRIBE at QoS 1 before
//! any SUBACK. Left alone, that cuts the whole uplink (health, events,
//! alarms), not only commands. So:
//!
//! - two QoS 1 connections in a row closed by the broker after their
//!   SUBSCRIBE and before its SUBACK ([`CLOSES_TO_DOWNGRADE`]), or a SUBACK
//!   refusing QoS 1 (0x80), is a *downgrade*: the following connections
//!   subscribe at QoS 0 (a transient queue, which moves freely between
//!   nodes), and a refused filter is subscribed again at QoS 0 at once on
//!   the same connection;
//! - one close alone is not: on a 4G uplink a connection also dies at
//!   random, and one that dies inside the SUBSCRIBE → SUBACK round trip
//!   (the SUBSCRIBE goes right after CONNACK) says nothing about the
//!   broker. A stranding RabbitMQ node closes every QoS 1 connection, so
//!   the second one in a row tells them apart; a granted subscription (a
//!   connection that got past its SUBACK) starts the count again. A SUBACK
//!   refusing QoS 1 is an answer, not a loss: it downgrades at once;
//! - the first connection made [`RETRY_AFTER`] or more after a downgrade
//!   tries QoS 1 again; granted, the gateway is back on QoS 1, failed the
//!   same way (two closes in a row, or a refusal), it is another downgrade
//!   for another [`RETRY_AFTER`]. So a dead node costs two lost connections
//!   per [`RETRY_AFTER`], not one per connection, and the gateway never
//!   flaps between the two;
//! - a SUBACK refusing QoS 0 is reported (commands cannot arrive) and
//!   changes nothing: there is no lower QoS to fall back to.
//!
//! With `mqtt.command_qos = 0` none of this happens.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use rumqttc::QoS;
use tokio::time::Instant;

/// How long the command subscription stays at QoS 0 after a downgrade
/// before a new connection tries QoS 1 again.
pub const RETRY_AFTER: Duration = Duration::from_secs(600);

/// How many QoS 1 connections in a row the broker must close before their
/// SUBACK for QoS 1 to be given up: one can be a flaky uplink's chance
/// loss, a stranding broker closes every one.
pub const CLOSES_TO_DOWNGRADE: u32 = 2;

/// Why QoS 1 was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Downgrade {
    /// The broker closed [`CLOSES_TO_DOWNGRADE`] connections in a row
    /// after our QoS 1 SUBSCRIBE, before its SUBACK (RabbitMQ: the home
    /// node of the QoS 1 queue is down).
    Closed,
    /// A SUBACK refused a QoS 1 filter (return code 0x80).
    Refused,
}

impl Downgrade {
    /// The metric label and log word.
    pub fn as_str(self) -> &'static str {
        match self {
            Downgrade::Closed => "closed",
            Downgrade::Refused => "refused",
        }
    }
}

/// What became of a connection's command subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every filter's SUBACK granted it.
    Granted,
    /// A SUBACK refused at least one filter (0x80).
    Refused,
    /// The broker closed the connection with a SUBSCRIBE unanswered.
    ClosedBeforeSuback,
}

/// What the session does about an [`Outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing to do or say.
    None,
    /// QoS 1 given up until `retry_at`: warn once, count it; after
    /// [`Downgrade::Refused`] subscribe the refused filters again at QoS 0
    /// on this connection.
    Downgraded {
        /// Why.
        reason: Downgrade,
        /// When a connection will try QoS 1 again.
        retry_at: Instant,
    },
    /// A retry of QoS 1 was granted: back to the configured QoS.
    Restored,
    /// The broker refused the subscription at QoS 0: commands cannot
    /// arrive on this connection. Report it; nothing lower to try.
    RefusedAtZero,
}

/// The command subscription's QoS across connections.
#[derive(Debug, Clone)]
pub struct CommandQos {
    configured: QoS,
    /// Set while downgraded: when a connection may try QoS 1 again.
    retry_at: Option<Instant>,
    /// QoS 1 is being tried again after a downgrade (until granted or
    /// given up again).
    retrying: bool,
    /// QoS 1 connections closed before their SUBACK in a row.
    closes: u32,
}

impl CommandQos {
    /// `configured`: `mqtt.command_qos`.
    pub fn new(configured: QoS) -> Self {
        CommandQos {
            configured,
            retry_at: None,
            retrying: false,
            closes: 0,
        }
    }

    /// The QoS a connection made at `now` subscribes at.
    pub fn for_connection(&mut self, now: Instant) -> QoS {
        match self.retry_at {
            Some(t) if now >= t => {
                self.retry_at = None;
                self.retrying = true;
                self.configured
            }
            Some(_) => QoS::AtMostOnce,
            None => self.configured,
        }
    }

    /// The QoS the current (or next) connection subscribes at, for the
    /// `tgw_uplink_command_qos` gauge and the birth message.
    pub fn effective(&self) -> QoS {
        if self.retry_at.is_some() {
            QoS::AtMostOnce
        } else {
            self.configured
        }
    }

    /// Records what became of the subscription asked at `asked` on a
    /// connection, at `now`.
    pub fn outcome(&mut self, asked: QoS, outcome: Outcome, now: Instant) -> Change {
        if asked == QoS::AtMostOnce {
            return match outcome {
                Outcome::Refused => Change::RefusedAtZero,
                // Closed with a QoS 0 SUBSCRIBE unanswered: the queue is
                // transient, so it is no node's to miss; an ordinary loss.
                Outcome::Granted | Outcome::ClosedBeforeSuback => Change::None,
            };
        }
        let reason = match outcome {
            Outcome::Granted => {
                self.closes = 0;
                return if std::mem::take(&mut self.retrying) {
                    Change::Restored
                } else {
                    Change::None
                };
            }
            Outcome::Refused => Downgrade::Refused,
            Outcome::ClosedBeforeSuback => {
                self.closes += 1;
                if self.closes < CLOSES_TO_DOWNGRADE {
                    // Maybe the uplink, not the broker: the next
                    // connection asks QoS 1 again and tells.
                    return Change::None;
                }
                Downgrade::Closed
            }
        };
        self.closes = 0;
        self.retrying = false;
        let retry_at = now + RETRY_AFTER;
        self.retry_at = Some(retry_at);
        Change::Downgraded { reason, retry_at }
    }
}

/// One connection's SUBSCRIBEs at one QoS: which are unanswered, which
/// were refused. Fed the session's events in order.
#[derive(Debug, Clone)]
pub struct Pending {
    asked: QoS,
    /// Filters handed to rumqttc, not yet written (SUBSCRIBE events come
    /// in the order they were handed over).
    unsent: VecDeque<String>,
    /// Written, awaiting their SUBACK, by packet id.
    sent: HashMap<u16, String>,
    refused: Vec<String>,
}

impl Pending {
    /// `filters` handed to rumqttc at `asked`, one SUBSCRIBE each.
    pub fn new(asked: QoS, filters: &[String]) -> Self {
        Pending {
            asked,
            unsent: filters.iter().cloned().collect(),
            sent: HashMap::new(),
            refused: Vec::new(),
        }
    }

    /// The QoS these SUBSCRIBEs asked.
    pub fn asked(&self) -> QoS {
        self.asked
    }

    /// Whether every SUBSCRIBE has had its SUBACK.
    pub fn answered(&self) -> bool {
        self.unsent.is_empty() && self.sent.is_empty()
    }

    /// rumqttc wrote a SUBSCRIBE with packet id `pkid`.
    pub fn sent(&mut self, pkid: u16) {
        if let Some(f) = self.unsent.pop_front() {
            self.sent.insert(pkid, f);
        }
    }

    /// A SUBACK for `pkid` arrived, refusing (0x80) or not. Returns the
    /// outcome once the last one has.
    pub fn suback(&mut self, pkid: u16, refused: bool) -> Option<Outcome> {
        let filter = self.sent.remove(&pkid)?;
        if refused {
            self.refused.push(filter);
        }
        if !self.answered() {
            return None;
        }
        Some(if self.refused.is_empty() {
            Outcome::Granted
        } else {
            Outcome::Refused
        })
    }

    /// The connection was closed by the broker: [`Outcome::ClosedBeforeSuback`]
    /// when a written SUBSCRIBE is still unanswered.
    pub fn closed(&self) -> Option<Outcome> {
        (!self.sent.is_empty()).then_some(Outcome::ClosedBeforeSuback)
    }

    /// The filters SUBACKs refused (to subscribe again at QoS 0).
    pub fn take_refused(&mut self) -> Vec<String> {
        std::mem::take(&mut self.refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: QoS = QoS::AtLeastOnce;
    const ZERO: QoS = QoS::AtMostOnce;

    /// A connection asking QoS 1 at `now`, closed by the broker before its
    /// SUBACK (the stranding, or a chance loss on the uplink).
    fn closed(q: &mut CommandQos, now: Instant) -> Change {
        assert_eq!(q.for_connection(now), ONE);
        q.outcome(ONE, Outcome::ClosedBeforeSuback, now)
    }

    /// The stranding: the broker closes on every QoS 1 SUBSCRIBE; the
    /// second close in a row downgrades. The next connections ask QoS 0
    /// until RETRY_AFTER has passed, and QoS 0 connections that are lost
    /// do not change that.
    #[tokio::test(start_paused = true)]
    async fn two_closes_before_suback_in_a_row_downgrade_until_retry_after() {
        let mut q = CommandQos::new(ONE);
        let t0 = Instant::now();
        assert_eq!(closed(&mut q, t0), Change::None, "one close alone");
        assert_eq!(q.effective(), ONE);
        let t1 = t0 + Duration::from_millis(300);
        let change = closed(&mut q, t1);
        assert_eq!(
            change,
            Change::Downgraded {
                reason: Downgrade::Closed,
                retry_at: t1 + RETRY_AFTER
            }
        );
        assert_eq!(q.effective(), ZERO);
        for secs in [0, 1, 60, 599] {
            let now = t1 + Duration::from_secs(secs);
            assert_eq!(q.for_connection(now), ZERO, "at {secs} s");
            let lost = q.outcome(ZERO, Outcome::ClosedBeforeSuback, now);
            assert_eq!(lost, Change::None, "a lost QoS 0 connection at {secs} s");
        }
        assert_eq!(q.for_connection(t1 + RETRY_AFTER), ONE);
    }

    /// A flaky uplink: one connection lost inside the SUBSCRIBE → SUBACK
    /// round trip, the next one granted. QoS 1 is kept throughout.
    #[tokio::test(start_paused = true)]
    async fn one_close_then_a_granted_subscription_keeps_qos_1() {
        let mut q = CommandQos::new(ONE);
        let t0 = Instant::now();
        assert_eq!(closed(&mut q, t0), Change::None);
        assert_eq!(q.effective(), ONE);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(q.for_connection(t1), ONE, "the next connection asks QoS 1");
        assert_eq!(q.outcome(ONE, Outcome::Granted, t1), Change::None);
        assert_eq!(q.effective(), ONE);
    }

    /// Closes that a granted subscription separates are not in a row:
    /// close, grant, close (and so on) never downgrades.
    #[tokio::test(start_paused = true)]
    async fn close_grant_close_does_not_downgrade() {
        let mut q = CommandQos::new(ONE);
        let mut now = Instant::now();
        for round in 0..3 {
            assert_eq!(closed(&mut q, now), Change::None, "round {round}");
            now += Duration::from_secs(5);
            assert_eq!(q.for_connection(now), ONE);
            assert_eq!(q.outcome(ONE, Outcome::Granted, now), Change::None);
            now += Duration::from_secs(5);
        }
        assert_eq!(closed(&mut q, now), Change::None);
        assert_eq!(q.effective(), ONE);
    }

    /// A SUBACK refusing QoS 1 after one close: an answer, downgraded at
    /// once; and the count starts again afterwards.
    #[tokio::test(start_paused = true)]
    async fn a_refusal_after_one_close_downgrades_at_once() {
        let mut q = CommandQos::new(ONE);
        let t0 = Instant::now();
        assert_eq!(closed(&mut q, t0), Change::None);
        assert_eq!(q.for_connection(t0), ONE);
        assert!(matches!(
            q.outcome(ONE, Outcome::Refused, t0),
            Change::Downgraded {
                reason: Downgrade::Refused,
                ..
            }
        ));
        // The retry: one close is not enough to give QoS 1 up again.
        let t1 = t0 + RETRY_AFTER;
        assert_eq!(closed(&mut q, t1), Change::None);
        assert_eq!(q.effective(), ONE);
    }

    /// A SUBACK refusing QoS 1 is a downgrade too (the refused filters are
    /// subscribed again at QoS 0 on the same connection by the session).
    #[tokio::test(start_paused = true)]
    async fn a_suback_refusing_qos_1_downgrades() {
        let mut q = CommandQos::new(ONE);
        let t0 = Instant::now();
        q.for_connection(t0);
        let change = q.outcome(ONE, Outcome::Refused, t0);
        assert!(matches!(
            change,
            Change::Downgraded {
                reason: Downgrade::Refused,
                ..
            }
        ));
        assert_eq!(q.effective(), ZERO);
        // The same connection's QoS 0 subscription then granted: no change.
        assert_eq!(q.outcome(ZERO, Outcome::Granted, t0), Change::None);
        assert_eq!(q.effective(), ZERO);
    }

    /// QoS 0 refused has nothing to fall back to: reported, state kept.
    #[tokio::test(start_paused = true)]
    async fn a_suback_refusing_qos_0_is_reported_and_changes_nothing() {
        let mut q = CommandQos::new(ZERO);
        let t0 = Instant::now();
        assert_eq!(q.for_connection(t0), ZERO);
        assert_eq!(q.outcome(ZERO, Outcome::Refused, t0), Change::RefusedAtZero);
        assert_eq!(q.effective(), ZERO);
        assert_eq!(q.for_connection(t0), ZERO);
    }

    /// The retry after RETRY_AFTER fails the same way (two closes in a
    /// row): another downgrade for another RETRY_AFTER, counted from the
    /// failure — two lost connections per RETRY_AFTER, never one per
    /// connection.
    #[tokio::test(start_paused = true)]
    async fn a_failed_retry_downgrades_again_without_flapping() {
        let mut q = CommandQos::new(ONE);
        let t0 = Instant::now();
        closed(&mut q, t0);
        closed(&mut q, t0);
        let t1 = t0 + RETRY_AFTER + Duration::from_secs(30);
        assert_eq!(closed(&mut q, t1), Change::None);
        let again = closed(&mut q, t1);
        assert_eq!(
            again,
            Change::Downgraded {
                reason: Downgrade::Closed,
                retry_at: t1 + RETRY_AFTER
            }
        );
        // The hour after that downgrade, a connection every 10 s: QoS 1
        // is asked twice at 10, 20, 30, 40 and 50 minutes only.
        let mut asked_one = 0;
        let mut now = t1;
        while now < t1 + Duration::from_secs(3600) {
            let qos = q.for_connection(now);
            if qos == ONE {
                asked_one += 1;
                q.outcome(ONE, Outcome::ClosedBeforeSuback, now);
            }
            now += Duration::from_secs(10);
        }
        assert_eq!(asked_one, 10);
    }

    /// The retry granted: back on QoS 1, said once; later connections keep
    /// QoS 1 without a "restored" each time.
    #[tokio::test(start_paused = true)]
    async fn a_granted_retry_restores_qos_1_once() {
        let mut q = CommandQos::new(ONE);
        let t0 = Instant::now();
        q.for_connection(t0);
        q.outcome(ONE, Outcome::Refused, t0);
        let t1 = t0 + RETRY_AFTER;
        assert_eq!(q.for_connection(t1), ONE);
        assert_eq!(q.outcome(ONE, Outcome::Granted, t1), Change::Restored);
        assert_eq!(q.effective(), ONE);
        assert_eq!(q.for_connection(t1), ONE);
        assert_eq!(q.outcome(ONE, Outcome::Granted, t1), Change::None);
    }

    /// A retry connection lost before any outcome (connect failed, or lost
    /// for another reason), or closed once before its SUBACK: the next
    /// connection retries QoS 1 again, and its grant is the restoration.
    #[tokio::test(start_paused = true)]
    async fn a_retry_without_outcome_is_retried_on_the_next_connection() {
        let mut q = CommandQos::new(ONE);
        let t0 = Instant::now();
        closed(&mut q, t0);
        closed(&mut q, t0);
        let t1 = t0 + RETRY_AFTER;
        assert_eq!(q.for_connection(t1), ONE);
        assert_eq!(closed(&mut q, t1), Change::None);
        assert_eq!(q.for_connection(t1), ONE);
        assert_eq!(q.outcome(ONE, Outcome::Granted, t1), Change::Restored);
    }

    /// Configured QoS 0: always 0, never downgraded, nothing to say.
    #[tokio::test(start_paused = true)]
    async fn configured_qos_0_stays_0() {
        let mut q = CommandQos::new(ZERO);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(q.for_connection(t0), ZERO);
            assert_eq!(
                q.outcome(ZERO, Outcome::ClosedBeforeSuback, t0),
                Change::None
            );
            assert_eq!(q.outcome(ZERO, Outcome::Granted, t0), Change::None);
            assert_eq!(q.effective(), ZERO);
        }
    }

    fn filters() -> Vec<String> {
        vec!["tgw/v1/s/g/cmd/+".to_string(), "warn/cap".to_string()]
    }

    /// Closed with a SUBSCRIBE written and unanswered: the stranding. Closed
    /// before anything was written, or after every SUBACK: not ours.
    #[test]
    fn pending_says_closed_only_with_a_written_subscribe_unanswered() {
        let mut p = Pending::new(ONE, &filters());
        assert_eq!(p.closed(), None, "nothing written yet");
        p.sent(1);
        assert_eq!(p.closed(), Some(Outcome::ClosedBeforeSuback));
        p.sent(2);
        assert_eq!(p.suback(1, false), None);
        assert_eq!(p.closed(), Some(Outcome::ClosedBeforeSuback));
        assert_eq!(p.suback(2, false), Some(Outcome::Granted));
        assert!(p.answered());
        assert_eq!(p.closed(), None);
        assert_eq!(p.suback(2, false), None, "a stray SUBACK");
    }

    /// A refused filter makes the outcome Refused and is handed back for
    /// a QoS 0 subscription; granted ones are not.
    #[test]
    fn pending_collects_refused_filters() {
        let mut p = Pending::new(ONE, &filters());
        p.sent(7);
        p.sent(8);
        assert_eq!(p.suback(8, false), None);
        assert_eq!(p.suback(7, true), Some(Outcome::Refused));
        assert_eq!(p.take_refused(), vec!["tgw/v1/s/g/cmd/+".to_string()]);
        assert!(p.take_refused().is_empty());
        assert_eq!(p.asked(), ONE);
    }
}
