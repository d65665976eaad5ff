//! The outbox writer: one thread that owns the SQLite connection, takes
//! publishers' messages in batches (one commit each: *accepted*), answers
//! the session's claims and records its acknowledgements. When the outbox
//! is full it says so with an `outbox_full` alarm (at most one a minute).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;
use time::format_description::well_known::Rfc3339;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::Metrics;
use super::outbox::{AcceptOutcome, Class, Depth, NewMessage, OutRow, Outbox};
use crate::base::clock::{Clock, utc_to_ms};
use crate::base::error::{Error, ErrorKind, Result};
use tgw_core::uplink::topics;

/// Most messages committed in one transaction.
pub const MAX_BATCH: usize = 500;
/// At most one `outbox_full` alarm per this interval.
pub const ALARM_INTERVAL: Duration = Duration::from_secs(60);
/// How often a failing outbox commit (e.g. a full disk) is logged.
const COMMIT_ERROR_LOG_EVERY: Duration = Duration::from_secs(10);

/// Requests from the session to the writer.
pub(crate) enum Ctl {
    Ack(Vec<i64>),
    Claim(usize, oneshot::Sender<Vec<OutRow>>),
    Resume(oneshot::Sender<Resume>),
}

/// What a new connection resends first.
pub(crate) struct Resume {
    /// Claimed, unacknowledged rows in seq order.
    pub(super) claimed: Vec<OutRow>,
    /// Rows with `id <= mark` were accepted before this connection: historical.
    pub(super) mark: i64,
    /// The last seq handed out.
    pub(super) last_seq: i64,
}

/// The session's end of the writer.
pub(crate) struct WriterHandle {
    pub(crate) pub_tx: mpsc::Sender<NewMessage>,
    pub(super) ctl_tx: mpsc::UnboundedSender<Ctl>,
    pub(super) unsent: watch::Receiver<u64>,
    pub(super) boot: i64,
}

/// Opens the outbox and starts its writer thread.
pub(crate) fn start_writer(
    db: &Path,
    max_bytes: u64,
    fsync: bool,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
) -> Result<(std::thread::JoinHandle<()>, WriterHandle)> {
    let store_err = |e: crate::store::StoreError| Error::new(ErrorKind::Internal, e.to_string());
    let mut outbox = Outbox::open(db, max_bytes, fsync).map_err(|e| {
        Error::new(
            ErrorKind::Unavailable,
            format!("mqtt outbox {}: {e}", db.display()),
        )
    })?;
    let boot = outbox.next_boot().map_err(store_err)?;
    let depth = outbox.depth().map_err(store_err)?;
    publish_depth(&metrics, &depth);
    let (pub_tx, pub_rx) = mpsc::channel(super::CHANNEL_CAPACITY);
    let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
    let (unsent_tx, unsent) = watch::channel(depth.unsent);
    let io_err = |e: std::io::Error| Error::new(ErrorKind::Internal, e.to_string());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(io_err)?;
    let mut w = Writer {
        outbox,
        max_bytes,
        metrics,
        clock,
        unsent_tx,
        acks: Vec::new(),
        last_alarm: None,
        last_commit_error: None,
        refused_since_log: 0,
        evicted_total: 0,
        refused_total: 0,
    };
    let writer = std::thread::Builder::new()
        .name("tgw-outbox".into())
        .spawn(move || rt.block_on(w.run(pub_rx, ctl_rx)))
        .map_err(io_err)?;
    Ok((
        writer,
        WriterHandle {
            pub_tx,
            ctl_tx,
            unsent,
            boot,
        },
    ))
}

/// Evictions of one commit: the total and per class.
fn count_evictions(m: &Metrics, out: &AcceptOutcome) {
    m.evicted.fetch_add(out.evicted_total(), Ordering::Relaxed);
    for (n, by_class) in out.evicted.iter().zip(&m.evicted_by_class) {
        by_class.fetch_add(*n, Ordering::Relaxed);
    }
}

fn publish_depth(m: &Metrics, d: &Depth) {
    m.depth.store(d.rows, Ordering::Relaxed);
    m.bytes.store(d.bytes, Ordering::Relaxed);
    m.oldest_ms
        .store(d.oldest_ms.unwrap_or(0), Ordering::Relaxed);
    for (g, n) in m.depth_by_class.iter().zip(d.by_class) {
        g.store(n, Ordering::Relaxed);
    }
}

/// The writer thread's state between rounds.
struct Writer {
    outbox: Outbox,
    max_bytes: u64,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    unsent_tx: watch::Sender<u64>,
    /// Acknowledged ids not yet committed (a failed commit keeps them).
    acks: Vec<i64>,
    last_alarm: Option<Instant>,
    // A full disk fails every commit; log the first at once, then at most
    // one line per interval with the number of messages refused meanwhile.
    last_commit_error: Option<Instant>,
    refused_since_log: u64,
    evicted_total: u64,
    refused_total: u64,
}

impl Writer {
    /// Waits for work, takes whatever else is queued (up to [`MAX_BATCH`]
    /// messages), commits once, then answers claims. Returns when the
    /// session is gone, after committing what publishers still queued.
    async fn run(
        &mut self,
        mut pub_rx: mpsc::Receiver<NewMessage>,
        mut ctl_rx: mpsc::UnboundedReceiver<Ctl>,
    ) {
        let mut pub_open = true;
        loop {
            let mut msgs = Vec::new();
            let mut waiting = Vec::new();
            let mut last_round = false;
            tokio::select! {
                biased;
                c = ctl_rx.recv() => match c {
                    Some(c) => waiting.push(c),
                    None => last_round = true,
                },
                m = pub_rx.recv(), if pub_open => match m {
                    Some(m) => msgs.push(m),
                    None => pub_open = false,
                },
            }
            while msgs.len() < MAX_BATCH {
                match pub_rx.try_recv() {
                    Ok(m) => msgs.push(m),
                    Err(_) => break,
                }
            }
            while let Ok(c) = ctl_rx.try_recv() {
                waiting.push(c);
            }
            let mut answers = Vec::new();
            for c in waiting {
                match c {
                    Ctl::Ack(ids) => self.acks.extend(ids),
                    other => answers.push(other),
                }
            }
            if last_round {
                while let Ok(m) = pub_rx.try_recv() {
                    msgs.push(m);
                }
            }
            if !msgs.is_empty() || !self.acks.is_empty() {
                self.commit(&msgs);
            }
            for c in answers {
                self.answer(c);
            }
            if let Ok(d) = self.outbox.depth() {
                publish_depth(&self.metrics, &d);
                self.unsent_tx.send_if_modified(|u| {
                    let changed = *u != d.unsent;
                    *u = d.unsent;
                    changed
                });
            }
            if last_round {
                return;
            }
        }
    }

    /// Commits `msgs` and the pending acknowledgements in one transaction.
    fn commit(&mut self, msgs: &[NewMessage]) {
        let n = msgs.len() as u64;
        let n_acks = self.acks.len() as u64;
        let m = &self.metrics;
        match self.outbox.accept(msgs, &self.acks) {
            Ok(out) => {
                self.acks.clear();
                m.acked.fetch_add(n_acks, Ordering::Relaxed);
                m.accepted.fetch_add(out.accepted, Ordering::Relaxed);
                m.coalesced.fetch_add(out.coalesced, Ordering::Relaxed);
                count_evictions(m, &out);
                m.rejected_budget.fetch_add(out.refused, Ordering::Relaxed);
                if out.evicted_total() > 0 || out.refused > 0 {
                    self.evicted_total += out.evicted_total();
                    self.refused_total += out.refused;
                    self.outbox_full(&out);
                }
            }
            Err(e) => {
                m.commit_errors.fetch_add(n, Ordering::Relaxed);
                self.refused_since_log += n;
                if self
                    .last_commit_error
                    .is_none_or(|t| t.elapsed() >= COMMIT_ERROR_LOG_EVERY)
                {
                    tracing::error!(
                        error = %e,
                        messages = self.refused_since_log,
                        "mqtt outbox commit failed; messages not accepted"
                    );
                    self.last_commit_error = Some(Instant::now());
                    self.refused_since_log = 0;
                }
            }
        }
    }

    /// Warns and queues an `outbox_full` alarm, at most once per
    /// [`ALARM_INTERVAL`].
    fn outbox_full(&mut self, out: &AcceptOutcome) {
        let now = Instant::now();
        if self.last_alarm.is_some_and(|t| now - t < ALARM_INTERVAL) {
            return;
        }
        self.last_alarm = Some(now);
        let d = self.outbox.depth().unwrap_or_default();
        let (evicted_total, refused_total, max_bytes) =
            (self.evicted_total, self.refused_total, self.max_bytes);
        tracing::warn!(
            evicted_total,
            refused_total,
            bytes = d.bytes,
            max_bytes,
            "mqtt outbox full: evicting the lowest class"
        );
        let body = json!({
            "alarm": "outbox_full",
            "severity": "major",
            "evicted": {
                "urgent": out.evicted[0], "state": out.evicted[1],
                "metadata": out.evicted[2], "history": out.evicted[3],
            },
            "evicted_total": evicted_total,
            "refused_total": refused_total,
            "bytes": d.bytes,
            "max_bytes": max_bytes,
        });
        let alarm = new_message(
            self.clock.as_ref(),
            topics::ALARM.into(),
            Class::Urgent,
            false,
            None,
            body.to_string(),
        );
        if let Ok(o) = self.outbox.accept(&[alarm], &[]) {
            self.metrics
                .accepted
                .fetch_add(o.accepted, Ordering::Relaxed);
            count_evictions(&self.metrics, &o);
        }
    }

    /// Answers a claim or a resume request.
    fn answer(&mut self, c: Ctl) {
        match c {
            Ctl::Claim(limit, reply) => {
                let rows = self.outbox.claim(limit).unwrap_or_else(|e| {
                    tracing::error!(error = %e, "mqtt outbox claim failed");
                    Vec::new()
                });
                let _ = reply.send(rows);
            }
            Ctl::Resume(reply) => {
                let o = &self.outbox;
                let r = (|| {
                    Ok::<_, crate::store::StoreError>(Resume {
                        claimed: o.claimed()?,
                        mark: o.last_id()?,
                        last_seq: o.last_seq()?,
                    })
                })();
                match r {
                    Ok(r) => {
                        let _ = reply.send(r);
                    }
                    Err(e) => tracing::error!(error = %e, "mqtt outbox read failed"),
                }
            }
            Ctl::Ack(_) => {}
        }
    }
}

/// A message stamped now (a fresh `msg_id`, `ts` and acceptance time).
pub(crate) fn new_message(
    clock: &dyn Clock,
    topic: String,
    class: Class,
    retain: bool,
    coalesce_key: Option<String>,
    body: String,
) -> NewMessage {
    let now = clock.now_utc();
    NewMessage {
        class,
        topic,
        retain,
        coalesce_key,
        msg_id: uuid::Uuid::new_v4().to_string(),
        ts: now.format(&Rfc3339).unwrap_or_default(),
        accepted_ms: utc_to_ms(now),
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evictions are counted per class where the writer commits them
    /// (`tgw_outbox_evicted_total{class}`), summing to the total.
    #[test]
    fn evictions_are_counted_by_class() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::default());
        let clock = crate::base::clock::system();
        let body = format!("{{\"pad\":\"{}\"}}", "x".repeat(200));
        let (thread, handle) = start_writer(
            &dir.path().join("outbox.db"),
            2_000,
            false,
            metrics.clone(),
            clock.clone(),
        )
        .unwrap();
        for i in 0..30 {
            let m = new_message(
                clock.as_ref(),
                format!("camera/c{i}/event"),
                Class::History,
                false,
                None,
                body.clone(),
            );
            handle.pub_tx.try_send(m).unwrap();
        }
        drop(handle);
        thread.join().unwrap();
        let by_class: Vec<u64> = metrics
            .evicted_by_class
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .collect();
        let history = by_class[Class::History as usize];
        assert!(history > 0, "history rows were evicted: {by_class:?}");
        assert_eq!(
            by_class.iter().sum::<u64>(),
            metrics.evicted.load(Ordering::Relaxed)
        );
        let stats = metrics.outbox_stats(clock.as_ref());
        assert!(
            stats.uplink.evicted.contains(&("history", history)),
            "{:?}",
            stats.uplink.evicted
        );
    }
}
