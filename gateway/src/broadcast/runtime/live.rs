//! Live pages in the runtime: a broadcast of unknown length whose audio is
//! a stream. The engine treats it as one segment like any other broadcast
//! (priorities, preemption, resume of what it interrupted); only playout
//! differs: each horn subscribes to the page's [`LiveFeed`] and plays what
//! arrives until the page ends. One live page per horn at a time: a second
//! page naming a horn that is live is refused (`conflict`, naming who).

use std::collections::HashMap;
use std::sync::Arc;

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

/// The audio of one live page, fanned out to its horns: 20 ms frames of
/// i16 mono 8 kHz, sent by the page's playout clock. Cloning shares it.
#[derive(Clone)]
pub struct LiveFeed {
    tx: broadcast::Sender<Arc<[i16]>>,
    ended: CancellationToken,
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
        }
    }

    /// Sends one frame to every horn playing the page (none yet: dropped).
    pub fn send(&self, frame: Arc<[i16]>) {
        let _ = self.tx.send(frame);
    }

    /// Ends the page: every horn's stream ends (its horn reports `done`).
    pub fn end(&self) {
        self.ended.cancel();
    }

    /// Whether [`LiveFeed::end`] was called.
    pub fn ended(&self) -> bool {
        self.ended.is_cancelled()
    }

    /// The frames from now on at `volume` (0-100, as gain), ending with the
    /// page. A horn that falls behind skips to the newest frames.
    pub fn subscribe(&self, volume: u8) -> LiveFrames {
        let rx = self.tx.subscribe();
        let gain = volume_gain(volume) as f32;
        let ended = self.ended.clone();
        futures::stream::unfold((rx, ended), move |(mut rx, ended)| async move {
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
                        return Some((f, (rx, ended)));
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .boxed()
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
            let frames = feed.subscribe(vol);
            let (player, tx, feed) = (self.player.clone(), self.tx.clone(), feed.clone());
            let b = broadcast.to_string();
            tokio::spawn(async move {
                let outcome =
                    one_live_horn(&b, &h, uri, frames, &cancel, &feed, &*player, &tx).await;
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

#[allow(clippy::too_many_arguments)]
async fn one_live_horn(
    broadcast: &str,
    horn: &str,
    uri: SpeakerUri,
    frames: LiveFrames,
    cancel: &CancellationToken,
    feed: &LiveFeed,
    player: &dyn Player,
    tx: &mpsc::Sender<Cmd>,
) -> Outcome {
    let rep: PlayReport = player.play_live(uri, frames, cancel.clone()).await;
    let _ = tx
        .send(Cmd::Measured {
            broadcast: broadcast.to_string(),
            horn: horn.to_string(),
            report: Box::new(rep.clone()),
        })
        .await;
    if cancel.is_cancelled() {
        // The page ending cancels what is left of it: that horn played it all.
        let done = u32::from(feed.ended());
        return Outcome::Stopped {
            segments_done: done,
        };
    }
    if rep.error_kind.is_some() {
        return Outcome::Failed(if rep.errors.is_empty() {
            "the horn did not play the live page".to_string()
        } else {
            rep.errors.join("; ")
        });
    }
    Outcome::Done
}
