//! Coalesced saves of the cameras' current health. Each check's health
//! goes into a buffer (the latest per camera wins, stamped with the time
//! of the check), which the poller's supervisor writes in one SQLite
//! transaction every [`FLUSH_EVERY`] and once more when the poller stops.
//! At 1,000 cameras (about 33 checks a second) that is one commit a second
//! instead of 33. Measured at 1,000 cameras (BENCHMARKS.md): 215 against
//! 242 KB/s written, no CPU difference the bench can tell; the rows saved
//! in a second still sit on as many pages.
//! Transitions and history points are not buffered: they are rare, and they
//! are the record. A check that changes the verdict or rung writes the
//! buffer at once ([`HealthSaves::save_changed`]), before the sinks hear of
//! the change: the GB/T 28181 catalog rebuilds from the store.
//!
//! A failed flush (the database busy or full) is logged and keeps its
//! entries for the next one, unless a newer save of the same camera came
//! meanwhile: never more than one entry per camera. A camera no longer
//! adopted (ignored, or its row merged away) is not written back: the
//! store's batch skips it ([`Store::save_health_batch`]), and the
//! supervisor forgets its entry when it stops the camera's task.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use time::OffsetDateTime;

use crate::store::{Store, StoreError};
use tgw_core::health::Health;

/// How often buffered health is written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// The buffer of current health not yet written, shared by the poller's
/// camera tasks and the event loops ([`crate::cameras::events::health`]).
pub struct HealthSaves {
    store: Store,
    pending: Mutex<HashMap<String, (Health, OffsetDateTime)>>,
    /// Held from taking the buffer to the end of its write, so two flushes
    /// (the supervisor's, and one before a transition) cannot write an
    /// older health over a newer one.
    flushing: Mutex<()>,
}

impl HealthSaves {
    /// An empty buffer over `store`.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            pending: Mutex::default(),
            flushing: Mutex::default(),
        }
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<String, (Health, OffsetDateTime)>> {
        // A panic while holding the lock left the map whole (inserts and
        // removes only).
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Buffers camera `id`'s current health, stamped now (the time of the
    /// check) by the store's clock; replaces any not yet written.
    pub fn save(&self, id: &str, health: &Health) {
        let at = self.store.clock().now_utc();
        self.pending().insert(id.to_string(), (health.clone(), at));
    }

    /// Camera `id`'s health as last saved: the buffered one, else the
    /// store's.
    pub fn latest(&self, id: &str) -> Result<Option<Health>, StoreError> {
        if let Some((h, _)) = self.pending().get(id) {
            return Ok(Some(h.clone()));
        }
        self.store.health(id)
    }

    /// Drops camera `id`'s buffered health (its task stopped: no longer
    /// adopted).
    pub fn forget(&self, id: &str) {
        self.pending().remove(id);
    }

    /// How many cameras have health not yet written.
    pub fn len(&self) -> usize {
        self.pending().len()
    }

    /// Whether everything saved is written.
    pub fn is_empty(&self) -> bool {
        self.pending().is_empty()
    }

    /// Writes every buffered health in one transaction; how many rows were
    /// written (cameras no longer adopted are skipped). Nothing buffered,
    /// no transaction. On failure the entries go back into the buffer,
    /// except those a newer save replaced meanwhile.
    pub fn flush(&self) -> Result<usize, StoreError> {
        let _one_at_a_time = self.flushing.lock().unwrap_or_else(|p| p.into_inner());
        let taken = {
            let mut p = self.pending();
            // Sized for the next second's saves (about as many cameras).
            let next = HashMap::with_capacity(p.len());
            std::mem::replace(&mut *p, next)
        };
        if taken.is_empty() {
            return Ok(0);
        }
        let batch: Vec<(String, Health, OffsetDateTime)> =
            taken.into_iter().map(|(id, (h, at))| (id, h, at)).collect();
        match self.store.save_health_batch(&batch) {
            Ok(n) => Ok(n),
            Err(e) => {
                let mut p = self.pending();
                for (id, h, at) in batch {
                    p.entry(id).or_insert((h, at));
                }
                Err(e)
            }
        }
    }

    /// Buffers camera `id`'s health and writes the buffer at once: for a
    /// verdict or rung change, which the sinks (MQTT, the GB/T 28181
    /// catalog) hear next and may answer from the store, so the store must
    /// already hold it. Changes are rare; the steady checks stay batched.
    pub fn save_changed(&self, id: &str, health: &Health) {
        self.save(id, health);
        self.flush_logged();
    }

    /// [`HealthSaves::flush`], a failure logged with its cause (the entries
    /// wait for the next flush).
    pub fn flush_logged(&self) {
        if let Err(e) = self.flush() {
            tracing::warn!(error = %e, cameras = self.len(), "saving health failed; kept for the next flush");
        }
    }
}
