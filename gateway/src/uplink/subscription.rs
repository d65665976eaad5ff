//! The command subscription on one connection, around the pure decisions of
//! [`command_qos`](super::command_qos): the SUBSCRIBEs handed to rumqttc at
//! the QoS they say, their SUBACKs and a close before them followed, refused
//! filters subscribed again at QoS 0 after a QoS 1 refusal, and every change
//! logged once and counted in `/metrics` (`docs/fleet.md`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use rumqttc::{AsyncClient, ConnectionError, Event, Incoming, Outgoing, QoS, SubscribeReasonCode};
use tokio::time::Instant;

use super::Metrics;
use super::command_qos::{Change, CommandQos, Pending, RETRY_AFTER};

/// One connection's subscriptions (the command filter and any raw topics).
pub(super) struct Subscription {
    pending: Pending,
    metrics: Arc<Metrics>,
    /// `host:port`, for the log lines.
    broker: String,
}

impl Subscription {
    /// Hands every filter to rumqttc at `qos`, one SUBSCRIBE each.
    pub(super) fn start(
        client: &AsyncClient,
        filters: &[String],
        qos: QoS,
        metrics: &Arc<Metrics>,
        broker: String,
    ) -> Result<Subscription, String> {
        Ok(Subscription {
            pending: subscribe(client, filters, qos, metrics)?,
            metrics: metrics.clone(),
            broker,
        })
    }

    /// Follows SUBSCRIBEs and SUBACKs: a refused filter is counted and
    /// logged, and after a QoS 1 refusal the refused filters are subscribed
    /// again at QoS 0 on this connection. An error only when rumqttc would
    /// not take that SUBSCRIBE.
    pub(super) fn on_event(
        &mut self,
        ev: &Event,
        client: &AsyncClient,
        state: &mut CommandQos,
    ) -> Result<(), String> {
        let outcome = match ev {
            Event::Outgoing(Outgoing::Subscribe(pkid)) => {
                self.pending.sent(*pkid);
                return Ok(());
            }
            Event::Incoming(Incoming::SubAck(ack)) => {
                let refused = ack
                    .return_codes
                    .iter()
                    .any(|c| matches!(c, SubscribeReasonCode::Failure));
                if refused {
                    self.metrics
                        .command_subscriptions_refused
                        .fetch_add(1, Ordering::Relaxed);
                }
                self.pending.suback(ack.pkid, refused)
            }
            _ => None,
        };
        let Some(outcome) = outcome else {
            return Ok(());
        };
        let asked = self.pending.asked();
        let refused = self.pending.take_refused();
        for f in &refused {
            tracing::warn!(broker = %self.broker, filter = %f.escape_debug(), qos = qos_level(asked), "mqtt: the broker refused the subscription (SUBACK 0x80)");
        }
        let change = state.outcome(asked, outcome, Instant::now());
        self.on_change(change, "SUBACK 0x80");
        if matches!(change, Change::Downgraded { .. }) && !refused.is_empty() {
            self.pending = subscribe(client, &refused, QoS::AtMostOnce, &self.metrics)?;
        }
        Ok(())
    }

    /// The connection ended with `e`: closed by the broker with a
    /// SUBSCRIBE unanswered is what a RabbitMQ node does when the node
    /// holding the QoS 1 subscription's queue is down (on every
    /// connection; a flaky uplink does it once in a while, so
    /// [`CommandQos`] waits for the second in a row).
    pub(super) fn on_error(&mut self, e: &ConnectionError, state: &mut CommandQos) {
        if closed_by_broker(e)
            && let Some(o) = self.pending.closed()
        {
            let change = state.outcome(self.pending.asked(), o, Instant::now());
            self.on_change(change, &e.to_string());
        }
    }

    /// Logs and counts a change of the command subscription's QoS: one
    /// warning per downgrade, naming the reason and `error` (rumqttc's
    /// words, or the SUBACK).
    fn on_change(&self, change: Change, error: &str) {
        let m = &self.metrics;
        match change {
            Change::None => {}
            Change::Downgraded { reason, .. } => {
                m.command_qos.store(0, Ordering::Relaxed);
                m.command_qos_downgrades[reason as usize].fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    broker = %self.broker,
                    reason = reason.as_str(),
                    error = %error,
                    retry_in_secs = RETRY_AFTER.as_secs(),
                    "mqtt: the broker would not take the command subscription at QoS 1 \
                     (RabbitMQ: the node holding its queue is down); subscribing at QoS 0 \
                     so the uplink stays connected, QoS 1 tried again later"
                );
            }
            Change::Restored => {
                m.command_qos.store(1, Ordering::Relaxed);
                tracing::info!(broker = %self.broker, "mqtt: the command subscription is back at QoS 1");
            }
            Change::RefusedAtZero => {
                tracing::error!(
                    broker = %self.broker,
                    "mqtt: the broker refused the command subscription at QoS 0: no command \
                     can arrive on this connection (check the broker's ACL for cmd/#)"
                );
            }
        }
    }
}

/// Hands `filters` to rumqttc at `qos`, one SUBSCRIBE each; the gauge
/// follows the QoS asked.
fn subscribe(
    client: &AsyncClient,
    filters: &[String],
    qos: QoS,
    metrics: &Metrics,
) -> Result<Pending, String> {
    metrics.command_qos.store(qos_level(qos), Ordering::Relaxed);
    for f in filters {
        client
            .try_subscribe(f.clone(), qos)
            .map_err(|e| format!("subscribe: {e}"))?;
    }
    Ok(Pending::new(qos, filters))
}

/// Whether the broker (or the network under it) closed the connection, as
/// opposed to a timeout or a protocol error.
fn closed_by_broker(e: &ConnectionError) -> bool {
    use std::io::ErrorKind as K;
    let io = |e: &std::io::Error| {
        matches!(
            e.kind(),
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof
        )
    };
    match e {
        ConnectionError::MqttState(rumqttc::StateError::ConnectionAborted) => true,
        ConnectionError::MqttState(rumqttc::StateError::Io(e)) => io(e),
        ConnectionError::Io(e) => io(e),
        _ => false,
    }
}

/// 0 or 1 (the gateway never subscribes at QoS 2).
pub(super) fn qos_level(q: QoS) -> u64 {
    match q {
        QoS::AtMostOnce => 0,
        QoS::AtLeastOnce => 1,
        QoS::ExactlyOnce => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the broker's side closing counts: a keep-alive or network
    /// timeout with a SUBSCRIBE unanswered is not taken for a stranding.
    #[test]
    fn only_a_close_counts_as_closed_by_the_broker() {
        use std::io::{Error, ErrorKind};
        let aborted = ConnectionError::MqttState(rumqttc::StateError::ConnectionAborted);
        assert!(closed_by_broker(&aborted));
        for k in [ErrorKind::ConnectionReset, ErrorKind::BrokenPipe] {
            assert!(closed_by_broker(&ConnectionError::Io(Error::from(k))));
            let state = ConnectionError::MqttState(rumqttc::StateError::Io(Error::from(k)));
            assert!(closed_by_broker(&state));
        }
        for e in [
            ConnectionError::NetworkTimeout,
            ConnectionError::FlushTimeout,
            ConnectionError::MqttState(rumqttc::StateError::AwaitPingResp),
            ConnectionError::Io(Error::from(ErrorKind::TimedOut)),
        ] {
            assert!(!closed_by_broker(&e), "{e}");
        }
    }

    /// A flaky uplink through the session's own path: a QoS 1 SUBSCRIBE
    /// written, the connection reset before its SUBACK, then the next
    /// connection's SUBSCRIBE granted. No downgrade is counted and the
    /// gauge stays at 1; only two resets in a row (after that grant)
    /// downgrade, counted once with reason `closed`.
    #[tokio::test(start_paused = true)]
    async fn one_reset_before_suback_then_a_grant_is_no_downgrade() {
        use rumqttc::{MqttOptions, SubAck};
        use std::io::{Error, ErrorKind};
        let m = Arc::new(Metrics::default());
        // The event loop is kept (never polled) so the requests queue.
        let (client, _el) = AsyncClient::new(MqttOptions::new("t", "127.0.0.1", 1), 64);
        let mut state = CommandQos::new(QoS::AtLeastOnce);
        let filters = vec!["tgw/v1/s/g/cmd/+".to_string()];
        let reset = ConnectionError::Io(Error::from(ErrorKind::ConnectionReset));
        let connect = |state: &mut CommandQos| {
            let asked = state.for_connection(Instant::now());
            assert_eq!(asked, QoS::AtLeastOnce);
            let mut sub =
                Subscription::start(&client, &filters, asked, &m, "127.0.0.1:1".into()).unwrap();
            sub.on_event(&Event::Outgoing(Outgoing::Subscribe(1)), &client, state)
                .unwrap();
            sub
        };
        let downgrades = |m: &Metrics| {
            m.command_qos_downgrades
                .each_ref()
                .map(|c| c.load(Ordering::Relaxed))
        };

        connect(&mut state).on_error(&reset, &mut state);
        assert_eq!(downgrades(&m), [0, 0]);
        assert_eq!(m.command_qos.load(Ordering::Relaxed), 1);

        let mut sub = connect(&mut state);
        let granted = SubAck::new(1, vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)]);
        sub.on_event(
            &Event::Incoming(Incoming::SubAck(granted)),
            &client,
            &mut state,
        )
        .unwrap();
        assert_eq!(downgrades(&m), [0, 0]);
        assert_eq!(m.command_qos.load(Ordering::Relaxed), 1);
        assert_eq!(state.effective(), QoS::AtLeastOnce);

        connect(&mut state).on_error(&reset, &mut state);
        assert_eq!(downgrades(&m), [0, 0], "the grant started the count again");
        connect(&mut state).on_error(&reset, &mut state);
        assert_eq!(downgrades(&m), [1, 0]);
        assert_eq!(m.command_qos.load(Ordering::Relaxed), 0);
        assert_eq!(state.effective(), QoS::AtMostOnce);
    }
}
