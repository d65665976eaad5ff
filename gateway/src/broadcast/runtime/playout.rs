//! Playout: the [`Player`] that plays PCM on one horn at a T0, and an
//! engine Start carried out: one task per horn, segment after segment,
//! every horn of a segment at the same T0, each with its own cancellation.

use std::sync::Arc;
use std::time::Duration;

use device_drivers::speaker::{DriverOptions, LiveFrames, PlayReport, SpeakerUri};
use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Cmd, Runtime, rfc3339};
use crate::broadcast::Ms;
use crate::broadcast::engine::Outcome;
use crate::broadcast::render::{Rendered, Segments};

/// Plays PCM on one horn from T0 until the end or `cancel`. Every horn of a
/// broadcast is given the same T0 per segment, which is what makes their
/// starts synchronous. [`DriverPlayer`] is the real one; the paused-time
/// day test records calls.
pub trait Player: Send + Sync + 'static {
    /// What happened on the horn.
    fn play(
        &self,
        horn: SpeakerUri,
        pcm: Arc<Vec<i16>>,
        t0: Instant,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, PlayReport>;

    /// Plays a live page's frames on one horn until they end or `cancel`.
    /// Default: the speaker drivers with default options.
    fn play_live(
        &self,
        horn: SpeakerUri,
        frames: LiveFrames,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, PlayReport> {
        Box::pin(async move {
            device_drivers::speaker::play_live(&horn, &DriverOptions::default(), frames, &cancel)
                .await
        })
    }
}

/// The speaker drivers.
pub struct DriverPlayer(pub DriverOptions);

impl Player for DriverPlayer {
    fn play(
        &self,
        horn: SpeakerUri,
        pcm: Arc<Vec<i16>>,
        t0: Instant,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, PlayReport> {
        let opts = self.0.clone();
        Box::pin(
            async move { device_drivers::speaker::play_at(&horn, &opts, &pcm, t0, &cancel).await },
        )
    }

    fn play_live(
        &self,
        horn: SpeakerUri,
        frames: LiveFrames,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, PlayReport> {
        let opts = self.0.clone();
        Box::pin(
            async move { device_drivers::speaker::play_live(&horn, &opts, frames, &cancel).await },
        )
    }
}

impl Runtime {
    pub(super) fn start(&mut self, broadcast: &str, horns: Vec<String>, t0: Ms, from: u32) {
        let Some(p) = self.pending.get(broadcast) else {
            tracing::warn!(broadcast, "engine started an unknown broadcast");
            return;
        };
        if p.live.is_some() {
            return self.start_live(broadcast, horns, t0);
        }
        let Some(rendered) = p.rendered.clone() else {
            return;
        };
        let mut uris = Vec::with_capacity(horns.len());
        let mut cancels = Vec::with_capacity(horns.len());
        let mut ids = Vec::with_capacity(horns.len());
        let mut segs = Vec::with_capacity(horns.len());
        for h in horns {
            let Some(u) = p.uris.get(&h) else { continue };
            let t = CancellationToken::new();
            self.running
                .insert((broadcast.to_string(), h.clone()), t.clone());
            segs.push(rendered.at_volume(p.volumes.get(&h).copied().unwrap_or(100)));
            uris.push(u.clone());
            cancels.push(t);
            ids.push(h);
        }
        if from == 0 && p.spec.priority == crate::broadcast::Priority::Emergency {
            let volume = p.volumes.values().next().copied().unwrap_or(100);
            let inline = self.settings.inline_render;
            record_aired(
                self.settings.aired.as_ref(),
                broadcast,
                &rendered,
                volume,
                inline,
            );
        }
        let _ = self
            .records
            .set_state(broadcast, "playing", Some(&rfc3339(t0)), false);
        self.publish_broadcast(broadcast);
        let now = self.clock.now_ms();
        let t0_inst = if t0 >= now {
            Instant::now() + Duration::from_millis((t0 - now) as u64)
        } else {
            Instant::now()
                .checked_sub(Duration::from_millis((now - t0) as u64))
                .unwrap_or_else(Instant::now)
        };
        let ctx = Exec {
            broadcast: broadcast.to_string(),
            ids,
            segs,
            uris,
            cancels,
            rendered,
            t0: t0_inst,
            from,
            lead: self.settings.lead,
            player: self.player.clone(),
            tx: self.tx.clone(),
        };
        ctx.run();
    }
}

/// Records an emergency as rendered for its horns (segments at `volume`,
/// the gaps as silence) on a blocking thread (in the task with `inline`,
/// as rendering: paused-time tests): once per broadcast (a later
/// Start of more horns finds it recorded), and a failure is logged and
/// marked on the recording, never on the broadcast.
fn record_aired(
    aired: Option<&crate::broadcast::aired::Aired>,
    broadcast: &str,
    rendered: &Arc<Rendered>,
    volume: u8,
    inline: bool,
) {
    let Some(aired) = aired.cloned() else { return };
    let (id, rendered) = (broadcast.to_string(), rendered.clone());
    let record = move || {
        let mut w = match aired.start(&id, crate::broadcast::aired::AiredKind::Emergency) {
            Ok(w) => w,
            Err(e) if e.kind() == crate::base::error::ErrorKind::Conflict => return,
            Err(_) => return, // logged and marked failed by the recorder
        };
        let segs = rendered.at_volume(volume);
        let gap = vec![0i16; (rendered.gap.as_millis() as usize).saturating_mul(8)];
        for (i, seg) in segs.iter().enumerate() {
            if i > 0 && w.push(&gap).is_err() {
                return;
            }
            if w.push(seg).is_err() {
                return;
            }
        }
        if let Ok(info) = w.finish() {
            tracing::info!(broadcast = %id, duration_ms = info.duration_ms, "emergency recorded");
        } // else: logged and marked failed by the recorder
    };
    if inline {
        record();
    } else {
        tokio::task::spawn_blocking(record);
    }
}

/// One Start action carried out: every horn runs its own task, segment
/// after segment, each segment at the same T0 on every horn; a horn taken
/// away (cancelled) is released at once, whatever the others do.
struct Exec {
    broadcast: String,
    ids: Vec<String>,
    /// Per horn: the segments at its volume.
    segs: Vec<Segments>,
    uris: Vec<SpeakerUri>,
    cancels: Vec<CancellationToken>,
    rendered: Arc<Rendered>,
    t0: Instant,
    from: u32,
    lead: Duration,
    player: Arc<dyn Player>,
    tx: mpsc::Sender<Cmd>,
}

impl Exec {
    fn run(self) {
        let n = self.rendered.segments.len() as u32;
        for (((id, uri), cancel), segs) in self
            .ids
            .into_iter()
            .zip(self.uris)
            .zip(self.cancels)
            .zip(self.segs)
        {
            let (rendered, player, tx) =
                (self.rendered.clone(), self.player.clone(), self.tx.clone());
            let (broadcast, t0, from, lead) =
                (self.broadcast.clone(), self.t0, self.from, self.lead);
            tokio::spawn(async move {
                let outcome = one_horn(
                    &broadcast, &id, uri, &cancel, &rendered, &segs, t0, from, n, lead, &*player,
                    &tx,
                )
                .await;
                let _ = tx
                    .send(Cmd::Finished {
                        broadcast,
                        horn: id,
                        outcome,
                    })
                    .await;
            });
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn one_horn(
    broadcast: &str,
    id: &str,
    uri: SpeakerUri,
    cancel: &CancellationToken,
    rendered: &Rendered,
    segs: &[Arc<Vec<i16>>],
    t0: Instant,
    from: u32,
    n: u32,
    lead: Duration,
    player: &dyn Player,
    tx: &mpsc::Sender<Cmd>,
) -> Outcome {
    let mut seg_t0 = t0;
    for seg in from..n {
        let Some(pcm) = segs.get(seg as usize).cloned() else {
            return Outcome::Failed(format!("segment {seg} missing"));
        };
        let rep = player.play(uri.clone(), pcm, seg_t0, cancel.clone()).await;
        if seg == from {
            let _ = tx
                .send(Cmd::Measured {
                    broadcast: broadcast.to_string(),
                    horn: id.to_string(),
                    report: Box::new(rep.clone()),
                })
                .await;
        }
        if cancel.is_cancelled() {
            return Outcome::Stopped { segments_done: seg };
        }
        if let Some(what) = rep.local {
            // The gateway's own exhaustion: failed, but not the horn's.
            return Outcome::GatewayLimit(what);
        }
        if rep.error_kind.is_some() || !rep.completed {
            return Outcome::Failed(if rep.errors.is_empty() {
                "the horn did not play to the end".to_string()
            } else {
                rep.errors.join("; ")
            });
        }
        if seg + 1 < n {
            seg_t0 += rendered.segment_len(seg as usize) + rendered.gap;
            // Wait for the next repeat; a horn taken away meanwhile is
            // released at once.
            let ready = seg_t0.checked_sub(lead).unwrap_or(seg_t0);
            tokio::select! {
                _ = tokio::time::sleep_until(ready) => {}
                _ = cancel.cancelled() => return Outcome::Stopped { segments_done: seg + 1 },
            }
        }
    }
    Outcome::Done
}
