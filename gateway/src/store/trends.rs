//! Charts' data, downsampled in SQL: a camera's health history in time
//! buckets, villages' daily availability, broadcast outcomes per week.

use rusqlite::params;
use serde::Serialize;

use super::{Result, Store, fmt_time};

/// One time bucket of a camera's history (averages over the points in it).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TrendPoint {
    /// Bucket start (RFC 3339, UTC).
    pub t: String,
    /// Frames per second.
    pub fps: Option<f64>,
    /// Bitrate, kbit/s.
    pub bitrate_kbps: Option<f64>,
    /// RTP loss, percent.
    pub loss_pct: Option<f64>,
    /// Clock offset, ms.
    pub clock_offset_ms: Option<f64>,
    /// Share of points not offline, 0..1.
    pub availability: f64,
    /// Points in the bucket.
    pub n: i64,
}

/// A village's availability on one day.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VillageDay {
    /// Village code (null: cameras not in a village).
    pub village: Option<String>,
    /// YYYY-MM-DD (UTC).
    pub day: String,
    /// Share of points not offline, 0..1.
    pub availability: f64,
}

/// Broadcasts of one week by final state.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WeekOutcome {
    /// Monday of the week, YYYY-MM-DD.
    pub week: String,
    /// Broadcast state (`done`, `failed`, …).
    pub state: String,
    /// How many.
    pub count: i64,
}

const AVAIL: &str = "avg(CASE WHEN verdict = 'offline' THEN 0.0 ELSE 1.0 END)";

impl Store {
    fn ago(&self, secs: i64) -> String {
        fmt_time(self.clock.now_utc() - time::Duration::seconds(secs))
    }

    /// A camera's history over the last `span_secs`, in buckets of `bucket_secs`.
    pub fn camera_trend(
        &self,
        id: &str,
        span_secs: i64,
        bucket_secs: i64,
    ) -> Result<Vec<TrendPoint>> {
        let b = bucket_secs.max(1);
        let conn = self.conn();
        let mut st = conn.prepare(&format!(
            "SELECT (CAST(strftime('%s', at) AS INTEGER) / ?3) * ?3 AS bk, avg(fps), avg(bitrate_kbps),
                    avg(loss_pct), avg(clock_offset_ms), {AVAIL}, count(*)
             FROM health_history WHERE device_id = ?1 AND at >= ?2 GROUP BY bk ORDER BY bk"
        ))?;
        let rows = st.query_map(params![id, self.ago(span_secs), b], |r| {
            let secs: i64 = r.get(0)?;
            Ok(TrendPoint {
                t: time::OffsetDateTime::from_unix_timestamp(secs)
                    .map(fmt_time)
                    .unwrap_or_default(),
                fps: r.get(1)?,
                bitrate_kbps: r.get(2)?,
                loss_pct: r.get(3)?,
                clock_offset_ms: r.get(4)?,
                availability: r.get::<_, Option<f64>>(5)?.unwrap_or(0.0),
                n: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every village's availability per day over the last `days`.
    pub fn village_availability(&self, days: i64) -> Result<Vec<VillageDay>> {
        let conn = self.conn();
        let mut st = conn.prepare(&format!(
            "SELECT d.village_code, substr(h.at, 1, 10) AS day, {AVAIL}
             FROM health_history h JOIN device d ON d.id = h.device_id
             WHERE h.at >= ?1 GROUP BY d.village_code, day ORDER BY d.village_code, day"
        ))?;
        let rows = st.query_map([self.ago(days * 86_400)], |r| {
            Ok(VillageDay {
                village: r.get(0)?,
                day: r.get(1)?,
                availability: r.get::<_, Option<f64>>(2)?.unwrap_or(0.0),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Broadcasts per week and state over the last `weeks` (none when the
    /// broadcast tables do not exist yet).
    pub fn broadcast_weeks(&self, weeks: i64) -> Result<Vec<WeekOutcome>> {
        let conn = self.conn();
        let sql = "SELECT date(created_at, '-6 days', 'weekday 1') AS wk, state, count(*)
                   FROM broadcast WHERE created_at >= ?1 GROUP BY wk, state ORDER BY wk, state";
        let mut st = match conn.prepare(sql) {
            Ok(st) => st,
            Err(e) if e.to_string().contains("no such table") => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let rows = st.query_map([self.ago(weeks * 7 * 86_400)], |r| {
            Ok(WeekOutcome {
                week: r.get(0)?,
                state: r.get(1)?,
                count: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
