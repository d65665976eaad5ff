//! Live pages in the runtime: a broadcast of unknown length whose audio is
//! a stream. The engine treats it as one segment like any other broadcast
//! (priorities, preemption, resume of what it interrupted); only playout
//! differs: each horn subscribes to the page's [`LiveFeed`] and plays what
//! arrives until the page ends. One live page per horn at a time: a second
//! page naming a horn that is live is refused (`conflict`, naming who).
//!
//! A page that ended is `done` on a horn only if audio reached it: the feed
//! counts what it carried and what each horn was given, and a page that
//! aired nothing there ends `failed` with why ([`LiveFeed::fail`]'s reason,
//! or [`NO_AUDIO`]), so the centre is never told a horn aired a page it
//! never heard.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use device_drivers::speaker::{LiveFrames, PlayReport, SpeakerUri};
use futures::StreamExt;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::{Cmd, Player, Runtime, rfc3339};
use crate::base::error::{Error, Result};
use crate::broadcast::engine::Outcome;
use crate::broadcast::render::volume_gain;

/// Frames a slow horn task may fall behind before it skips ahead (1.28 s).
const FEED_DEPTH: usize = 64;

/// Why a horn fails when the page ended without carrying any audio and
/// its producer gave no reason ([`LiveFeed::end`] with no frame sent).
pub const NO_AUDIO: &str = "the page carried no audio: nothing aired";

/// Why a horn fails when the page carried audio but none of it reached
/// that horn (it started after the audio, or was still connecting).
pub const NONE_HEARD: &str = "none of the page's audio reached this horn: nothing aired";

/// The audio of one live page, fanned out to its horns: 20 ms frames of
/// i16 mono 8 kHz, sent by the page's playout clock. Cloning shares it.
#[derive(Clone)]
pub struct LiveFeed {
    tx: broadcast::Sender<Arc<[i16]>>,
    ended: CancellationToken,
    /// Frames sent, whether or not a horn was listening.
    sent: Arc<AtomicU64>,
    /// Why the page aired nothing, when its producer said so.
    failure: Arc<OnceLock<String>>,
}

impl Default for LiveFeed {
    fn default() -> Self {
        LiveFeed::new()
    }
}

impl LiveFeed {
    /// A feed nobody listens to yet.
    pub fn new() -> LiveFeed {
        let (tx, _) = broadcast::channel(FEED_DEPTH);
        LiveFeed {
            tx,
            ended: CancellationToken::new(),
            sent: Arc::new(AtomicU64::new(0)),
            failure: Arc::new(OnceLock::new()),
        }
    }

    /// Sends one frame to every horn playing the page (none yet: dropped).
    pub fn send(&self, frame: Arc<[i16]>) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let _ = self.tx.send(frame);
    }

    /// Frames sent so far.
    pub fn frames(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Ends the page: every horn's stream ends. A horn that was given
    /// audio reports `done`; one that was given none reports `failed`
    /// ([`NO_AUDIO`], or [`NONE_HEARD`] when others heard some).
    pub fn end(&self) {
        self.ended.cancel();
    }

    /// Ends a page that aired nothing, for `reason` (for people: what went
    /// wrong, then "nothing aired"): its horns report `failed` with it
    /// instead of [`NO_AUDIO`]. Audio already sent still counts: a horn
    /// that was given some reports `done`. The first reason stays.
    pub fn fail(&self, reason: impl Into<String>) {
        let _ = self.failure.set(reason.into());
        self.ended.cancel();
    }

    /// Whether [`LiveFeed::end`] or [`LiveFeed::fail`] was called.
    pub fn ended(&self) -> bool {
        self.ended.is_cancelled()
    }

    /// The reason given to [`LiveFeed::fail`].
    pub fn failure(&self) -> Option<&str> {
        self.failure.get().map(String::as_str)
    }

    /// Why a horn that was given no audio of this ended page failed.
    fn nothing_aired(&self) -> String {
        if self.frames() > 0 {
            NONE_HEARD.to_string()
        } else {
            self.failure().unwrap_or(NO_AUDIO).to_string()
        }
    }

    /// The frames from now on at `volume` (0-100, as gain), ending with the
    /// page. A horn that falls behind skips to the newest frames.
    pub fn subscribe(&self, volume: u8) -> LiveFrames {
        self.subscribe_counted(volume).0
    }

    /// [`LiveFeed::subscribe`], and how many frames the stream has yielded
    /// (what this horn was given).
    fn subscribe_counted(&self, volume: u8) -> (LiveFrames, Arc<AtomicU64>) {
        let rx = self.tx.subscribe();
        let gain = volume_gain(volume) as f32;
        let ended = self.ended.clone();
        let given = Arc::new(AtomicU64::new(0));
        let count = given.clone();
        let frames = futures::stream::unfold((rx, ended), move |(mut rx, ended)| {
            let count = count.clone();
            async move {
                loop {
                    let r = tokio::select! {
                        biased;
                        r = rx.recv() => r,
                        _ = ended.cancelled() => return None,
                    };
                    match r {
                        Ok(f) => {
                            let f: Arc<[i16]> = if gain >= 1.0 {
                                f
                            } else {
                                f.iter().map(|s| (f32::from(*s) * gain) as i16).collect()
                            };
                            count.fetch_add(1, Ordering::Relaxed);
                            return Some((f, (rx, ended)));
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        })
        .boxed();
        (frames, given)
    }
}

/// Horn id → (live page, who asked) for every horn a live page holds.
#[derive(Default)]
pub(super) struct LiveHorns(HashMap<String, (String, String)>);

impl LiveHorns {
    /// Refuses when one of `horns` is held by another live page.
    pub(super) fn check(&self, horns: &[String]) -> Result<()> {
        let mut busy: Vec<String> = horns
            .iter()
            .filter_map(|h| {
                self.0
                    .get(h)
                    .map(|(page, who)| format!("{h} (page {page} by {who})"))
            })
            .collect();
        if busy.is_empty() {
            return Ok(());
        }
        let n = busy.len();
        busy.truncate(5);
        Err(Error::conflict(format!(
            "{n} horn(s) already live: {}{}",
            busy.join(", "),
            if n > 5 { ", …" } else { "" }
        )))
    }

    pub(super) fn hold(&mut self, horns: &[String], page: &str, who: &str) {
        for h in horns {
            self.0
                .insert(h.clone(), (page.to_string(), who.to_string()));
        }
    }

    pub(super) fn release(&mut self, page: &str) {
        self.0.retain(|_, (p, _)| p != page);
    }
}

impl Runtime {
    /// An engine Start of a live page: one task per horn playing the feed
    /// until the page ends or the horn is taken away.
    pub(super) fn start_live(&mut self, broadcast: &str, horns: Vec<String>, t0: i64) {
        let Some(p) = self.pending.get(broadcast) else {
            return;
        };
        let Some(feed) = p.live.clone() else { return };
        let mut jobs = Vec::with_capacity(horns.len());
        for h in horns {
            let Some(u) = p.uris.get(&h) else { continue };
            let t = CancellationToken::new();
            self.running
                .insert((broadcast.to_string(), h.clone()), t.clone());
            let vol = p.volumes.get(&h).copied().unwrap_or(100);
            jobs.push((h, u.clone(), t, vol));
        }
        let _ = self
            .records
            .set_state(broadcast, "playing", Some(&rfc3339(t0)), false);
        self.publish_broadcast(broadcast);
        for (h, uri, cancel, vol) in jobs {
            let (frames, given) = feed.subscribe_counted(vol);
            let (player, tx, feed) = (self.player.clone(), self.tx.clone(), feed.clone());
            let b = broadcast.to_string();
            tokio::spawn(async move {
                let horn = LiveHorn {
                    frames,
                    given,
                    cancel: &cancel,
                    feed: &feed,
                };
                let outcome = one_live_horn(&b, &h, uri, horn, &*player, &tx).await;
                let _ = tx
                    .send(Cmd::Finished {
                        broadcast: b,
                        horn: h,
                        outcome,
                    })
                    .await;
            });
        }
    }
}

/// One horn's share of a live page.
struct LiveHorn<'a> {
    frames: LiveFrames,
    /// Frames `frames` has yielded.
    given: Arc<AtomicU64>,
    cancel: &'a CancellationToken,
    feed: &'a LiveFeed,
}

/// Plays the page on one horn. Taken away before the page ended: stopped
/// (interrupted or cancelled, as the engine asked). The page ended: `done`
/// if the horn was given audio, else `failed` with why nothing aired; a
/// driver error before that: `failed` with the driver's words.
async fn one_live_horn(
    broadcast: &str,
    horn: &str,
    uri: SpeakerUri,
    live: LiveHorn<'_>,
    player: &dyn Player,
    tx: &mpsc::Sender<Cmd>,
) -> Outcome {
    let LiveHorn {
        frames,
        given,
        cancel,
        feed,
    } = live;
    let rep: PlayReport = player.play_live(uri, frames, cancel.clone()).await;
    let _ = tx
        .send(Cmd::Measured {
            broadcast: broadcast.to_string(),
            horn: horn.to_string(),
            report: Box::new(rep.clone()),
        })
        .await;
    let ended = feed.ended();
    if cancel.is_cancelled() && !ended {
        return Outcome::Stopped { segments_done: 0 };
    }
    if let Some(what) = rep.local
        && !cancel.is_cancelled()
    {
        // The gateway's own exhaustion: failed, but not the horn's.
        return Outcome::GatewayLimit(what);
    }
    if rep.error_kind.is_some() && !cancel.is_cancelled() {
        return Outcome::Failed(if rep.errors.is_empty() {
            "the horn did not play the live page".to_string()
        } else {
            rep.errors.join("; ")
        });
    }
    if ended && given.load(Ordering::Relaxed) == 0 {
        return Outcome::Failed(feed.nothing_aired());
    }
    if cancel.is_cancelled() {
        // The page ending cancels what is left of it: that horn played it all.
        return Outcome::Stopped { segments_done: 1 };
    }
    Outcome::Done
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use device_drivers::speaker::PlayReport;
    use futures::future::BoxFuture;

    use super::*;

    /// A horn still connecting: it never takes a frame, and reports what a
    /// driver cancelled before the horn was ready reports.
    struct Connecting;

    impl Player for Connecting {
        fn play(
            &self,
            _: SpeakerUri,
            _: Arc<Vec<i16>>,
            _: tokio::time::Instant,
            _: CancellationToken,
        ) -> BoxFuture<'static, PlayReport> {
            unreachable!("live pages only")
        }

        fn play_live(
            &self,
            horn: SpeakerUri,
            _frames: LiveFrames,
            cancel: CancellationToken,
        ) -> BoxFuture<'static, PlayReport> {
            Box::pin(async move {
                cancel.cancelled().await;
                PlayReport {
                    device: horn.to_string(),
                    kind: horn.kind().into(),
                    answered: device_drivers::speaker::Answered::No,
                    answer_ms: None,
                    codec: None,
                    start_offset_ms: None,
                    packets: 0,
                    octets: 0,
                    skipped_frames: 0,
                    completed: false,
                    error_kind: Some("usage".into()),
                    local: None,
                    errors: vec!["cancelled before the horn was ready".into()],
                    first_sent: None,
                }
            })
        }
    }

    /// The page carried 1 s of audio, but the horn was still connecting
    /// when it ended: that horn aired none of it and fails saying so (the
    /// page itself did carry audio, so not the feed's reason).
    #[tokio::test(start_paused = true)]
    async fn a_horn_given_none_of_the_audio_fails() {
        let feed = LiveFeed::new();
        let (frames, given) = feed.subscribe_counted(100);
        let cancel = CancellationToken::new();
        let (tx, _rx) = mpsc::channel(4);
        let (f2, c2) = (feed.clone(), cancel.clone());
        tokio::spawn(async move {
            for _ in 0..50 {
                f2.send(Arc::from(vec![1000i16; 160]));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            f2.end();
            c2.cancel();
        });
        let uri: SpeakerUri = "rtp://127.0.0.1:40001".parse().unwrap();
        let horn = LiveHorn {
            frames,
            given,
            cancel: &cancel,
            feed: &feed,
        };
        let out = one_live_horn("p-1", "h1", uri, horn, &Connecting, &tx).await;
        assert_eq!(out, Outcome::Failed(NONE_HEARD.to_string()));
        assert_eq!(feed.frames(), 50);
    }

    /// `fail` keeps the first reason and ends the page; `end` after it
    /// changes nothing.
    #[test]
    fn fail_keeps_the_first_reason() {
        let feed = LiveFeed::new();
        assert!(!feed.ended());
        feed.fail("first: nothing aired");
        feed.fail("second");
        feed.end();
        assert!(feed.ended());
        assert_eq!(feed.failure(), Some("first: nothing aired"));
        assert_eq!(feed.nothing_aired(), "first: nothing aired");
    }
}
