//! Camera health: the current health per camera, verdict and rung
//! transitions, sampled history, and retention (pruned by the store's clock).

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{Result, Store, fmt_time};

/// A recorded verdict change.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HealthEvent {
    /// Device id.
    pub device_id: String,
    /// When.
    pub at: String,
    /// Verdict before (`ok`, `degraded`, `offline`).
    pub verdict_from: String,
    /// Verdict after.
    pub verdict_to: String,
    /// Degraded reasons after.
    pub reasons: Vec<String>,
    /// Rung before.
    pub rung_from: String,
    /// Rung after.
    pub rung_to: String,
}

impl Store {
    /// Saves a camera's current health (JSON of [`tgw_core::health::Health`]).
    pub fn save_health(&self, id: &str, health: &tgw_core::health::Health) -> Result<()> {
        let json = serde_json::to_string(health).unwrap_or_default();
        self.conn().prepare_cached(
            "INSERT INTO health_state (device_id, health, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(device_id) DO UPDATE SET health = excluded.health, updated_at = excluded.updated_at",
        )?
        .execute(params![id, json, self.now_str()])?;
        Ok(())
    }

    /// Saves the current health of many cameras (`(id, health, checked
    /// at)`) in one transaction (the poller's coalesced saves, once a
    /// second); how many rows were written. A
    /// camera no longer adopted is skipped: an ignored camera keeps the
    /// health it had, and a deleted one (its row cascaded away) gets no row
    /// back; the others are written all or none.
    pub fn save_health_batch(
        &self,
        batch: &[(String, tgw_core::health::Health, time::OffsetDateTime)],
    ) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut n = 0;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO health_state (device_id, health, updated_at)
                 SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM device WHERE id = ?1 AND state = 'adopted')
                 ON CONFLICT(device_id) DO UPDATE SET health = excluded.health, updated_at = excluded.updated_at",
            )?;
            for (id, health, at) in batch {
                let json = serde_json::to_string(health).unwrap_or_default();
                n += st.execute(params![id, json, fmt_time(*at)])?;
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// One camera's saved health; `None` without a row or with one that no
    /// longer parses (as [`Store::all_health`]).
    pub fn health(&self, id: &str) -> Result<Option<tgw_core::health::Health>> {
        let json: Option<String> = self
            .conn()
            .prepare_cached("SELECT health FROM health_state WHERE device_id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// The saved health of every camera.
    pub fn all_health(&self) -> Result<Vec<(String, tgw_core::health::Health)>> {
        let conn = self.conn();
        let mut st =
            conn.prepare("SELECT device_id, health FROM health_state ORDER BY device_id")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, json) = row?;
            // A row written by an older version that no longer parses is
            // skipped: the camera starts from scratch.
            if let Ok(h) = serde_json::from_str(&json) {
                out.push((id, h));
            }
        }
        Ok(out)
    }

    /// Records a verdict or rung change.
    pub fn record_transition(&self, id: &str, t: &tgw_core::health::Transition) -> Result<()> {
        let reasons: Vec<&str> = match &t.to {
            tgw_core::health::Verdict::Degraded(r) => r.iter().map(|r| r.as_str()).collect(),
            _ => Vec::new(),
        };
        self.conn().prepare_cached(
            "INSERT INTO health_event (device_id, at, verdict_from, verdict_to, reasons, rung_from, rung_to)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
                id,
                fmt_time(t.at),
                t.from.label(),
                t.to.label(),
                serde_json::to_string(&reasons).unwrap_or_default(),
                t.rung_from.as_str(),
                t.rung_to.as_str()
            ],
        )?;
        Ok(())
    }

    /// Appends a history point.
    pub fn record_history(&self, id: &str, h: &tgw_core::health::Health) -> Result<()> {
        let reasons: Vec<&str> = match &h.verdict {
            tgw_core::health::Verdict::Degraded(r) => r.iter().map(|r| r.as_str()).collect(),
            _ => Vec::new(),
        };
        let s = h.last_sample.as_ref();
        self.conn().prepare_cached(
            "INSERT INTO health_history (device_id, at, rung, verdict, reasons, clock_offset_ms, fps, bitrate_kbps, loss_pct)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
                id,
                self.now_str(),
                h.rung.as_str(),
                h.verdict.label(),
                serde_json::to_string(&reasons).unwrap_or_default(),
                h.clock_offset_ms,
                s.map(|s| s.fps),
                s.map(|s| s.bitrate_kbps),
                s.map(|s| s.loss_pct)
            ],
        )?;
        Ok(())
    }

    /// How many history points a camera has (tests of the disk watchdog's
    /// thinning).
    #[cfg(test)]
    pub(crate) fn history_points(&self, id: &str) -> Result<i64> {
        Ok(self.conn().query_row(
            "SELECT COUNT(*) FROM health_history WHERE device_id = ?1",
            [id],
            |r| r.get(0),
        )?)
    }

    /// Deletes history and events older than `days`; returns rows deleted.
    pub fn prune_health(&self, days: u32) -> Result<usize> {
        let cutoff = fmt_time(self.clock.now_utc() - time::Duration::days(i64::from(days)));
        let conn = self.conn();
        let a = conn.execute("DELETE FROM health_history WHERE at < ?1", [&cutoff])?;
        let b = conn.execute("DELETE FROM health_event WHERE at < ?1", [&cutoff])?;
        Ok(a + b)
    }

    /// Latest transitions, newest first; of one camera when `device` is given.
    pub fn health_events(&self, device: Option<&str>, limit: usize) -> Result<Vec<HealthEvent>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT device_id, at, verdict_from, verdict_to, reasons, rung_from, rung_to FROM health_event
             WHERE ?1 IS NULL OR device_id = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = st.query_map(params![device, limit as i64], |r| {
            Ok(HealthEvent {
                device_id: r.get(0)?,
                at: r.get(1)?,
                verdict_from: r.get(2)?,
                verdict_to: r.get(3)?,
                reasons: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or_default(),
                rung_from: r.get(5)?,
                rung_to: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tgw_core::health::{Health, Rung, Transition, Verdict};

    use crate::base::clock::{Clock, ManualClock};
    use crate::store::Store;
    use crate::store::testing::sighting;

    /// History points are stamped by the store's clock, and retention
    /// counts days on that clock.
    #[test]
    fn retention_prunes_by_the_injected_clock() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::at(1_784_077_200_000));
        let s = Store::open_with_clock(dir.path(), clock.clone()).unwrap();
        let id = s
            .record_sighting(&sighting("urn:uuid:1", [10, 21, 3, 5]))
            .unwrap()
            .id;
        let h = Health::new(clock.now_utc());
        s.record_history(&id, &h).unwrap();
        s.record_transition(
            &id,
            &Transition {
                from: Verdict::Offline,
                to: Verdict::Ok,
                rung_from: Rung::Unreachable,
                rung_to: Rung::OnvifUp,
                at: clock.now_utc(),
            },
        )
        .unwrap();
        s.save_health(&id, &h).unwrap();
        assert_eq!(
            s.health_events(Some(&id), 10).unwrap()[0].at,
            "2026-07-15T01:00:00Z"
        );
        let day = 86_400_000;
        clock.advance(14 * day - 1_000);
        assert_eq!(s.prune_health(14).unwrap(), 0, "not yet 14 days old");
        clock.advance(2_000);
        assert_eq!(
            s.prune_health(14).unwrap(),
            2,
            "one history point, one event"
        );
        assert!(s.health_events(None, 10).unwrap().is_empty());
        assert_eq!(s.all_health().unwrap().len(), 1, "the current health stays");
    }
}
