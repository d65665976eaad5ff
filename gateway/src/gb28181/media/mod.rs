//! GB/T 28181 live video relays: [`Relays`] implements
//! [`Media`](super::media_api::Media).
//!
//! An INVITE's offer is checked (`device_drivers::gb28181::sdp`, 488 when
//! wrong), a slot is taken under `[gb28181] max_relays` (486 beyond it), the
//! camera is pulled with retina (500 when it cannot be: wrong login, offline,
//! no H.264/H.265), a local port of the configured range is bound, and the
//! SDP answer carries `public_address` or the INVITE's local address. A task
//! per relay (`relay`) then waits for the ACK and the media connection, and
//! sends the camera's frames as PS over RTP until BYE, camera loss, a failed
//! send or a setup timeout; whatever ends it frees its slot.

mod camera;
mod relay;
mod sink;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use device_drivers::gb28181::sdp;
use tgw_core::clock::Clock;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::media_api::{Media, MediaError, MediaFuture, MediaSource, RelayInfo};
use crate::config::gb28181_media::Gb28181Media;

/// One relay in the table.
struct Slot {
    /// Distinguishes a call id reused after its relay ended.
    generation: u64,
    info: RelayInfo,
    stats: Arc<relay::Stats>,
    ack: Option<watch::Sender<bool>>,
    cancel: CancellationToken,
}

struct Table {
    slots: HashMap<String, Slot>,
    generation: u64,
}

struct Inner {
    cfg: Gb28181Media,
    clock: Arc<dyn Clock>,
    ports: sink::Ports,
    table: Mutex<Table>,
}

impl Inner {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes `call_id`'s slot if it is still `generation`'s, and stops it.
    fn release(&self, call_id: &str, generation: u64) {
        let mut t = self.table();
        if t.slots
            .get(call_id)
            .is_some_and(|s| s.generation == generation)
            && let Some(s) = t.slots.remove(call_id)
        {
            s.cancel.cancel();
        }
    }
}

/// The live relays of this gateway.
#[derive(Clone)]
pub struct Relays {
    inner: Arc<Inner>,
}

impl Relays {
    /// Relays under `cfg` (the media keys of `[gb28181]`).
    pub fn new(cfg: Gb28181Media, clock: Arc<dyn Clock>) -> Relays {
        Relays {
            inner: Arc::new(Inner {
                ports: sink::Ports::new(cfg.rtp_port_min, cfg.rtp_port_max),
                cfg,
                clock,
                table: Mutex::new(Table {
                    slots: HashMap::new(),
                    generation: 0,
                }),
            }),
        }
    }

    /// Takes a slot for `call_id`, or says why not.
    fn reserve(
        &self,
        call_id: &str,
        source: &MediaSource,
        offer: &sdp::Offer,
    ) -> Result<u64, MediaError> {
        let mut t = self.inner.table();
        if t.slots.contains_key(call_id) {
            return Err(MediaError::BadOffer(format!(
                "call {call_id} already has a relay"
            )));
        }
        let limit = self.inner.cfg.max_relays;
        if t.slots.len() >= limit {
            return Err(MediaError::Busy {
                active: t.slots.len(),
                limit,
            });
        }
        t.generation += 1;
        let generation = t.generation;
        let info = RelayInfo {
            call_id: call_id.to_string(),
            channel_id: source.channel_id.clone(),
            transport: offer.transport.as_str().to_string(),
            destination: SocketAddr::new(offer.address, offer.port).to_string(),
            packets: 0,
            bytes: 0,
            started_unix: self.inner.clock.now_ms() / 1000,
        };
        t.slots.insert(
            call_id.to_string(),
            Slot {
                generation,
                info,
                stats: Arc::default(),
                ack: None,
                cancel: CancellationToken::new(),
            },
        );
        Ok(generation)
    }

    async fn start(
        &self,
        call_id: &str,
        source: MediaSource,
        offer_sdp: &str,
        local_ip: IpAddr,
    ) -> Result<String, MediaError> {
        let offer = sdp::parse_offer(offer_sdp).map_err(|e| MediaError::BadOffer(e.to_string()))?;
        let generation = self.reserve(call_id, &source, &offer)?;
        let guard = Release {
            inner: &self.inner,
            call_id,
            generation,
            armed: true,
        };
        let cfg = &self.inner.cfg;
        let camera = camera::Camera::open(&source, cfg.camera_timeout()).await?;
        let (pending, port) = self
            .inner
            .ports
            .bind(offer.transport, local_ip)
            .ok_or_else(|| MediaError::Busy {
                active: self.inner.table().slots.len(),
                limit: cfg.max_relays,
            })?;
        let public = cfg.public_address.unwrap_or(local_ip);
        let answer = sdp::answer(&offer, &source.channel_id, public, port);
        let (ack_tx, ack_rx) = watch::channel(false);
        let (cancel, stats) = {
            let mut t = self.inner.table();
            let Some(slot) = t
                .slots
                .get_mut(call_id)
                .filter(|s| s.generation == generation)
            else {
                // BYE or CANCEL came while the camera was being pulled.
                return Err(MediaError::Camera(
                    "the call ended before the camera answered".into(),
                ));
            };
            slot.ack = Some(ack_tx);
            (slot.cancel.clone(), slot.stats.clone())
        };
        let job = relay::Job {
            pending: Some(pending),
            dest: SocketAddr::new(offer.address, offer.port),
            ssrc: offer.ssrc,
            payload_type: offer.payload_type,
            setup_timeout: cfg.setup_timeout(),
            ack: ack_rx,
            cancel,
            stats,
            camera,
        };
        let inner = self.inner.clone();
        let call = call_id.to_string();
        let span = tracing::info_span!("gb_relay", call_id = %call, channel = %source.channel_id);
        tracing::info!(parent: &span, camera = %job.camera.peer(), transport = offer.transport.as_str(),
            destination = %job.dest, ssrc = %offer.ssrc_text, local_port = port, "relay ready");
        guard.disarm();
        tokio::spawn(async move {
            let end = job.run().await;
            if let Some(r) = end.failure() {
                crate::gb28181::metrics::counters().relay_failed(r);
            }
            match end {
                relay::End::Bye => tracing::info!(parent: &span, "relay ended: {end}"),
                _ => tracing::warn!(parent: &span, "relay ended: {end}"),
            }
            inner.release(&call, generation);
        });
        Ok(answer)
    }
}

/// Frees a reserved slot when `invite` fails half-way (or is dropped).
struct Release<'a> {
    inner: &'a Inner,
    call_id: &'a str,
    generation: u64,
    armed: bool,
}

impl Release<'_> {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.inner.release(self.call_id, self.generation);
        }
    }
}

impl Media for Relays {
    fn invite<'a>(
        &'a self,
        call_id: &'a str,
        source: MediaSource,
        offer_sdp: &'a str,
        local_ip: IpAddr,
    ) -> MediaFuture<'a, Result<String, MediaError>> {
        Box::pin(self.start(call_id, source, offer_sdp, local_ip))
    }

    fn ack(&self, call_id: &str) {
        if let Some(tx) = self
            .inner
            .table()
            .slots
            .get(call_id)
            .and_then(|s| s.ack.as_ref())
        {
            let _ = tx.send(true);
        }
    }

    fn bye(&self, call_id: &str) {
        if let Some(s) = self.inner.table().slots.remove(call_id) {
            s.cancel.cancel();
            tracing::info!(call_id, channel = %s.info.channel_id, "relay stopped by BYE");
        }
    }

    fn active(&self) -> Vec<RelayInfo> {
        let t = self.inner.table();
        let mut v: Vec<RelayInfo> = t
            .slots
            .values()
            .map(|s| RelayInfo {
                packets: s.stats.packets.load(Ordering::Relaxed),
                bytes: s.stats.bytes.load(Ordering::Relaxed),
                ..s.info.clone()
            })
            .collect();
        v.sort_by(|a, b| a.call_id.cmp(&b.call_id));
        v
    }
}

#[cfg(test)]
mod tests;
