//! [`Broadcasts`]: the handle the API, MQTT and CAP use to talk to the
//! runtime task, and [`SignedRefusal`], the answer to a refused signed
//! command.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::spec::{CapOutcome, Spec, Submitted};
use super::{Cmd, Shared, read};
use crate::base::error::{Error, ErrorKind, Result};
use tgw_core::schedule::Timetable;

/// The handle the API, MQTT and CAP use.
#[derive(Clone)]
pub struct Broadcasts {
    pub(super) tx: mpsc::Sender<Cmd>,
    pub(super) timetable: Shared,
}

const STOPPED: &str = "the broadcast runtime has stopped";

/// A signed command refused: the reply code (`malformed`, `bad_signature`,
/// `refused`, `unavailable`, …) and the message, both sent back verbatim
/// on `cmd/emergency`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SignedRefusal {
    /// The reply code.
    pub code: String,
    /// Why, for people.
    pub message: String,
}

impl SignedRefusal {
    /// A refusal with `code`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> SignedRefusal {
        SignedRefusal {
            code: code.into(),
            message: message.into(),
        }
    }

    /// The kind: the runtime not running is `unavailable`, a broadcast the
    /// runtime would not start a `conflict`, anything about the command
    /// itself `invalid`.
    pub fn kind(&self) -> ErrorKind {
        match self.code.as_str() {
            "unavailable" => ErrorKind::Unavailable,
            "refused" => ErrorKind::Conflict,
            _ => ErrorKind::Invalid,
        }
    }
}

impl Broadcasts {
    /// Starts a broadcast; answers once the horns are known (rendering and
    /// playing go on in the background).
    pub async fn submit(&self, spec: Spec) -> Result<Submitted> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Submit(spec, tx))
            .await
            .map_err(|_| Error::unavailable(STOPPED))?;
        rx.await.map_err(|_| Error::unavailable(STOPPED))?
    }

    /// Starts a live page: `spec` (its recipe is not used) played from
    /// `feed` until [`LiveFeed::end`]; `who` is named to a second page that
    /// wants the same horns (refused with a `conflict`).
    pub async fn submit_live(
        &self,
        spec: Spec,
        feed: super::LiveFeed,
        who: &str,
    ) -> Result<Submitted> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::SubmitLive {
                spec,
                feed,
                who: who.to_string(),
                reply: tx,
            })
            .await
            .map_err(|_| Error::unavailable(STOPPED))?;
        rx.await.map_err(|_| Error::unavailable(STOPPED))?
    }

    /// Cancels a broadcast everywhere; false when unknown or finished.
    pub async fn cancel(&self, id: &str) -> bool {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Cmd::Cancel(id.into(), tx)).await.is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// Stops everything playing or queued (the local "stop all"). Returns
    /// how many broadcasts were stopped.
    pub async fn stop_all(&self, by: &str) -> usize {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Cmd::StopAll(by.into(), tx)).await.is_err() {
            return 0;
        }
        rx.await.unwrap_or(0)
    }

    /// The timetable in force.
    pub fn timetable(&self) -> Timetable {
        (*read(&self.timetable)).clone()
    }

    /// Hands a CAP 1.2 document a configured feed served to the
    /// early-warning desk; `via` is the feed URL.
    pub async fn cap(&self, doc: bytes::Bytes, via: &str) -> CapOutcome {
        self.cap_cmd(doc, via, false).await
    }

    /// Hands a document from the MQTT warnings topic to the desk: with
    /// `[warnings] mqtt_trust = "signed"` (the default) it must be a signed
    /// envelope (else `reject`, audited); with `broker` its CAP `sender`
    /// must be in `mqtt_senders`. `via` is `mqtt:<topic>`.
    pub async fn cap_mqtt(&self, doc: bytes::Bytes, via: &str) -> CapOutcome {
        self.cap_cmd(doc, via, true).await
    }

    async fn cap_cmd(&self, doc: bytes::Bytes, via: &str, mqtt: bool) -> CapOutcome {
        let (tx, rx) = oneshot::channel();
        let stopped = CapOutcome {
            decision: "reject".into(),
            reason: Some(STOPPED.into()),
            broadcast: None,
            identifier: None,
        };
        let cmd = if mqtt {
            Cmd::CapMqtt(doc, via.into(), tx)
        } else {
            Cmd::Cap(doc, via.into(), tx)
        };
        if self.tx.send(cmd).await.is_err() {
            return stopped;
        }
        rx.await.unwrap_or(stopped)
    }

    /// An alert a feed carried (already parsed); alerts already handled
    /// are skipped quietly, as feeds repeat them on every poll.
    pub async fn cap_parsed(&self, alert: device_drivers::cap::Alert, sha256: [u8; 32], via: &str) {
        let _ = self
            .tx
            .send(Cmd::CapParsed(Box::new(alert), sha256, via.into()))
            .await;
    }

    /// Verifies and carries out a signed emergency command (the body of
    /// `cmd/emergency`). A [`SignedRefusal`] when refused.
    pub async fn signed(&self, body: bytes::Bytes) -> Result<Value, SignedRefusal> {
        let (tx, rx) = oneshot::channel();
        let stopped = || SignedRefusal::new("unavailable", STOPPED);
        self.tx
            .send(Cmd::Signed(body, tx))
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Replaces the timetable (already validated and saved).
    pub async fn set_timetable(&self, tt: Timetable) {
        match self.timetable.write() {
            Ok(mut g) => *g = Arc::new(tt),
            Err(p) => *p.into_inner() = Arc::new(tt),
        }
        let _ = self.tx.send(Cmd::TimetableChanged).await;
    }
}
