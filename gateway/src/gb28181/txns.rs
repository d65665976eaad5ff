//! Our requests to a UDP platform as client transactions
//! (`device_drivers::gb28181::txn`): resent until answered, windowed, given
//! up after Timer F with one log line.

use std::net::SocketAddr;

use device_drivers::gb28181::txn::{self, Added, TxnOut};
use device_drivers::sip::{self, Message};

use super::Svc;

impl Svc {
    /// Sends a request of ours to platform `i`'s `to`: over TCP at once, over
    /// UDP through its transaction table (resent until answered, windowed).
    /// `what` names it in the log if it is never answered.
    pub(super) async fn send_request(
        &mut self,
        i: usize,
        to: SocketAddr,
        bytes: Vec<u8>,
        what: String,
    ) {
        if self.platforms[i].reg.config().tcp {
            self.send(to, &bytes).await;
            return;
        }
        let key = match sip::parse(&bytes) {
            Ok(Message::Request(r)) => txn::key_of_request(&r),
            _ => None,
        };
        let Some(key) = key else {
            self.send(to, &bytes).await;
            return;
        };
        let now = self.now();
        match self.platforms[i]
            .txns
            .add(key, bytes, (to, what.clone()), now)
        {
            Added::Send(b) => self.send(to, &b).await,
            Added::Queued => {}
            Added::Full => {
                tracing::warn!(platform = %self.platforms[i].name, what = %what, "GB/T 28181: send queue full; request dropped");
            }
        }
    }

    pub(super) async fn txn_outs(&mut self, i: usize, outs: Vec<TxnOut<(SocketAddr, String)>>) {
        for o in outs {
            match o {
                TxnOut::Send(b) => {
                    let to = sip::parse(&b)
                        .ok()
                        .and_then(|m| match m {
                            Message::Request(r) => txn::key_of_request(&r),
                            Message::Response(_) => None,
                        })
                        .and_then(|k| self.platforms[i].txns.label_of(&k).map(|l| l.0))
                        .unwrap_or(self.platforms[i].addr);
                    self.send(to, &b).await;
                }
                TxnOut::TimedOut { label, .. } => {
                    tracing::warn!(platform = %self.platforms[i].name, what = %label.1, "GB/T 28181: request unanswered for 32 s; given up");
                }
            }
        }
    }
}
