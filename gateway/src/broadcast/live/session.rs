//! One live page from its first frame to its end: the client's frames in
//! (through a channel, so the WebSocket stays in `http/paging.rs`),
//! decoded, conditioned to 8 kHz, through the jitter buffer, and out on the
//! page's [`LiveFeed`] every 20 ms by one playout clock; status out as
//! JSON (per-horn states while it lasts). The page ends on `{"end": true}`,
//! when the client goes (connection closed, or nothing heard for
//! [`IDLE`]), or at shutdown. A page that ended before any frame aired
//! fails its horns with why ([`LiveFeed::fail`]) instead of ending `done`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::dsp::{Conditioner, Decoder};
use super::jitter::{FRAME_MS, FRAME_SAMPLES, JitterBuffer, JitterStats, Pop};
use crate::broadcast::record::Records;
use crate::broadcast::runtime::LiveFeed;

/// A client silent this long is gone: its page ends (well within 2 s).
pub const IDLE: Duration = Duration::from_millis(1500);
/// Bad frames in a row after which the page ends.
const MAX_BAD: u32 = 50;
/// How often the horns' states are read for the client.
const HORN_POLL: Duration = Duration::from_millis(500);

/// Where the final 8 kHz frames leave for the horns: one call per 20 ms
/// frame, exactly what aired (a recorder of what aired plugs in here).
pub type AirTap = Box<dyn FnMut(&[i16]) + Send>;

/// From the client, after its first message.
#[derive(Debug)]
pub enum Inbound {
    /// One binary frame.
    Frame(Bytes),
    /// `{"end": true}`.
    End,
}

/// Why a page ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The client said `{"end": true}`.
    Ended,
    /// The connection closed, or nothing came for [`IDLE`].
    ClientGone,
    /// Too many bad frames in a row.
    BadFrames,
    /// The gateway is stopping.
    Shutdown,
}

impl EndReason {
    /// `ended`, `client-gone`, `bad-frames`, `shutdown`.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Ended => "ended",
            EndReason::ClientGone => "client-gone",
            EndReason::BadFrames => "bad-frames",
            EndReason::Shutdown => "shutdown",
        }
    }

    /// Why a page that ended this way before any frame aired failed: the
    /// horns' `failed` text.
    pub fn nothing_aired(self) -> String {
        let what = match self {
            EndReason::Ended => "the page ended before any audio",
            EndReason::ClientGone => "the client went away before any audio",
            EndReason::BadFrames => "the client sent only unusable frames",
            EndReason::Shutdown => "the gateway stopped before any audio",
        };
        format!("{what} ({}): nothing aired", self.as_str())
    }
}

/// What a page did.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Why it ended.
    pub reason: EndReason,
    /// From the first message to the end.
    pub duration: Duration,
    /// The jitter buffer's counters.
    pub jitter: JitterStats,
    /// From the first client frame to the first frame on the feed.
    pub first_frame_delay: Option<Duration>,
    /// Samples the limiter reduced.
    pub limited: u64,
    /// Why the page failed when no frame aired (its horns report it).
    pub failure: Option<String>,
}

/// A live page ready to run.
pub struct Session {
    /// The broadcast id.
    pub id: String,
    /// Where its frames go.
    pub feed: LiveFeed,
    /// The client's codec.
    pub decoder: Decoder,
    /// To 8 kHz.
    pub conditioner: Conditioner,
    /// The tap on what aired.
    pub tap: Option<AirTap>,
    /// For the per-horn states sent to the client.
    pub records: Option<Records>,
}

impl Session {
    /// Runs the page until it ends; the feed is ended on return.
    pub async fn run(
        mut self,
        mut rx: mpsc::Receiver<Inbound>,
        out: mpsc::Sender<Value>,
        shutdown: CancellationToken,
    ) -> Summary {
        let start = Instant::now();
        let ms = |t: Instant| (t - start).as_millis() as i64;
        let mut jitter = JitterBuffer::new();
        let mut tick = tokio::time::interval(Duration::from_millis(FRAME_MS as u64));
        tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut polls = tokio::time::interval(HORN_POLL);
        polls.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut idle = start + IDLE;
        let (mut bad, mut first_in, mut first_out) = (0u32, None, None);
        let mut last_horns = Value::Null;
        let reason = loop {
            tokio::select! {
                _ = shutdown.cancelled() => break EndReason::Shutdown,
                _ = tokio::time::sleep_until(idle) => break EndReason::ClientGone,
                m = rx.recv() => match m {
                    None => break EndReason::ClientGone,
                    Some(Inbound::End) => break EndReason::Ended,
                    Some(Inbound::Frame(b)) => {
                        let now = Instant::now();
                        idle = now + IDLE;
                        match self.decoder.decode(&b) {
                            Ok(pcm) => {
                                bad = 0;
                                first_in.get_or_insert(now);
                                for f in self.conditioner.push(&pcm) {
                                    jitter.push(f, ms(now));
                                }
                            }
                            Err(e) => {
                                bad += 1;
                                let _ = out.try_send(json!({"type": "error", "code": e.code, "message": e.message}));
                                if bad >= MAX_BAD {
                                    break EndReason::BadFrames;
                                }
                            }
                        }
                    }
                },
                _ = tick.tick() => {
                    let f = match jitter.pop() {
                        Pop::Waiting => continue,
                        Pop::Frame(f) => f,
                        Pop::Silence => vec![0; FRAME_SAMPLES],
                    };
                    first_out.get_or_insert_with(Instant::now);
                    self.emit(&f);
                }
                _ = polls.tick() => {
                    let h = self.horns();
                    if h != last_horns && !h.is_null() {
                        let _ = out.try_send(json!({"type": "horns", "id": self.id, "horns": h}));
                        last_horns = h;
                    }
                }
            }
        };
        if reason == EndReason::Ended {
            // What is buffered still airs, at the playout pace.
            for f in jitter.drain() {
                tick.tick().await;
                first_out.get_or_insert_with(Instant::now);
                self.emit(&f);
            }
        }
        let failure = first_out.is_none().then(|| reason.nothing_aired());
        match &failure {
            Some(why) => self.feed.fail(why.clone()),
            None => self.feed.end(),
        }
        Summary {
            reason,
            failure,
            duration: start.elapsed(),
            jitter: jitter.stats().clone(),
            first_frame_delay: first_in
                .zip(first_out)
                .map(|(i, o)| o.saturating_duration_since(i)),
            limited: self.conditioner.limited,
        }
    }

    fn emit(&mut self, f: &[i16]) {
        if let Some(tap) = &mut self.tap {
            tap(f);
        }
        self.feed.send(Arc::from(f));
    }

    /// `[{speaker, state}]` of the page's horns, or null.
    fn horns(&self) -> Value {
        let Some(r) = &self.records else {
            return Value::Null;
        };
        match r.get(&self.id) {
            Ok(Some((_, horns))) => horns
                .iter()
                .map(|h| json!({"speaker": h.speaker, "state": h.state}))
                .collect(),
            _ => Value::Null,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broadcast::live::dsp::Codec;
    use futures::StreamExt;

    fn session(feed: &LiveFeed, tap: Option<AirTap>) -> Session {
        Session {
            id: "p-1".into(),
            feed: feed.clone(),
            decoder: Decoder::new(Codec::Pcm16, 16_000).unwrap(),
            conditioner: Conditioner::new(16_000),
            tap,
            records: None,
        }
    }

    fn frame16k(v: i16) -> Bytes {
        Bytes::from((0..320).flat_map(|_| v.to_le_bytes()).collect::<Vec<u8>>())
    }

    /// A client that stops sending without closing: the page ends
    /// `client-gone` after IDLE (under 2 s), and the feed ends with it.
    #[tokio::test(start_paused = true)]
    async fn silent_client_ends_within_two_seconds() {
        let feed = LiveFeed::new();
        let mut horn = feed.subscribe(100);
        let (tx, rx) = mpsc::channel(8);
        let (otx, _orx) = mpsc::channel(8);
        let t = Instant::now();
        let run = tokio::spawn(session(&feed, None).run(rx, otx, CancellationToken::new()));
        tx.send(Inbound::Frame(frame16k(1000))).await.unwrap();
        let s = run.await.unwrap();
        assert_eq!(s.reason, EndReason::ClientGone);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert!(feed.ended());
        while horn.next().await.is_some() {}
        drop(tx);
    }

    /// A client that goes away before any frame aired: the page fails
    /// (`client-gone`, nothing aired) instead of ending as if it played.
    #[tokio::test(start_paused = true)]
    async fn a_client_gone_before_any_audio_fails_the_page() {
        let feed = LiveFeed::new();
        let (tx, rx) = mpsc::channel(8);
        let (otx, _orx) = mpsc::channel(8);
        drop(tx);
        let s = session(&feed, None)
            .run(rx, otx, CancellationToken::new())
            .await;
        assert_eq!(s.reason, EndReason::ClientGone);
        let why = "the client went away before any audio (client-gone): nothing aired";
        assert_eq!(s.failure.as_deref(), Some(why));
        assert_eq!(feed.failure(), Some(why));
    }

    /// Garbage frames get an error with a code each and end the page after
    /// MAX_BAD in a row; nothing airs.
    #[tokio::test(start_paused = true)]
    async fn garbage_frames_end_the_page() {
        let feed = LiveFeed::new();
        let (tx, rx) = mpsc::channel(64);
        let (otx, mut orx) = mpsc::channel(64);
        let run = tokio::spawn(session(&feed, None).run(rx, otx, CancellationToken::new()));
        for _ in 0..MAX_BAD {
            tx.send(Inbound::Frame(Bytes::from_static(&[1, 2, 3])))
                .await
                .unwrap();
        }
        let s = run.await.unwrap();
        assert_eq!(s.reason, EndReason::BadFrames);
        assert_eq!(s.jitter.played, 0);
        // The page failed, saying why: its horns report it, not `done`.
        let why = "the client sent only unusable frames (bad-frames): nothing aired";
        assert_eq!(s.failure.as_deref(), Some(why));
        assert!(feed.ended());
        assert_eq!(feed.failure(), Some(why));
        assert_eq!(feed.frames(), 0);
        let e = orx.recv().await.unwrap();
        assert_eq!(e["code"], "bad-frame", "{e}");
    }

    /// Frames sent in real time air through the tap, every one of them
    /// 160 samples, in order, once `{"end": true}` drains the buffer; the
    /// first airs within the jitter target plus the resampler's delay.
    #[tokio::test(start_paused = true)]
    async fn frames_air_through_the_tap_in_order() {
        let feed = LiveFeed::new();
        let aired = Arc::new(std::sync::Mutex::new(Vec::<Vec<i16>>::new()));
        let a2 = aired.clone();
        let tap: AirTap = Box::new(move |f| a2.lock().unwrap().push(f.to_vec()));
        let (tx, rx) = mpsc::channel(8);
        let (otx, _orx) = mpsc::channel(8);
        let run = tokio::spawn(session(&feed, Some(tap)).run(rx, otx, CancellationToken::new()));
        for _ in 0..50 {
            tx.send(Inbound::Frame(frame16k(4000))).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tx.send(Inbound::End).await.unwrap();
        let s = run.await.unwrap();
        assert_eq!(s.reason, EndReason::Ended);
        assert_eq!(s.failure, None);
        assert_eq!(feed.failure(), None);
        let aired = aired.lock().unwrap();
        assert_eq!(feed.frames(), aired.len() as u64);
        assert!(aired.len() >= 48, "{} frames aired", aired.len());
        assert!(aired.iter().all(|f| f.len() == FRAME_SAMPLES));
        assert_eq!(s.jitter.underruns, 0, "{:?}", s.jitter);
        let d = s.first_frame_delay.expect("a frame aired");
        assert!(d <= Duration::from_millis(100), "{d:?}");
    }
}
