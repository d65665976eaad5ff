//! What the dashboard keeps for operators (component `dashboard`): where
//! a device sits on the township map, and acknowledged alarms.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Result, Store};

/// Migrations of the `dashboard` component.
pub const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE device_place (
    kind TEXT NOT NULL,                  -- camera | speaker
    id TEXT NOT NULL,
    x REAL,                              -- 0..1 across the map
    y REAL,                              -- 0..1 down the map
    lon REAL,
    lat REAL,
    updated_by TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE TABLE alarm_ack (
    device_id TEXT NOT NULL,
    since TEXT NOT NULL,                 -- the alarm: the verdict's start
    note TEXT NOT NULL,
    by TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (device_id, since)
);
CREATE INDEX alarm_ack_at ON alarm_ack(at);
"#];

/// A device's place on the map: a point on the drawing and/or lon/lat.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Place {
    /// `camera` or `speaker`.
    pub kind: String,
    /// Device or speaker id.
    pub id: String,
    /// 0..1 across the map.
    pub x: Option<f64>,
    /// 0..1 down the map.
    pub y: Option<f64>,
    /// Longitude.
    pub lon: Option<f64>,
    /// Latitude.
    pub lat: Option<f64>,
    /// Who placed it.
    pub updated_by: String,
    /// When.
    pub updated_at: String,
}

/// An acknowledged alarm.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlarmAck {
    /// Camera id.
    pub device_id: String,
    /// The alarm's start (the verdict's `since`).
    pub since: String,
    /// The operator's note.
    pub note: String,
    /// Who.
    pub by: String,
    /// When.
    pub at: String,
}

impl Store {
    /// Every placed device.
    pub fn places(&self) -> Result<Vec<Place>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT kind, id, x, y, lon, lat, updated_by, updated_at FROM device_place ORDER BY kind, id",
        )?;
        let rows = st.query_map([], |r| {
            Ok(Place {
                kind: r.get(0)?,
                id: r.get(1)?,
                x: r.get(2)?,
                y: r.get(3)?,
                lon: r.get(4)?,
                lat: r.get(5)?,
                updated_by: r.get(6)?,
                updated_at: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// One device's place.
    pub fn place(&self, kind: &str, id: &str) -> Result<Option<Place>> {
        Ok(self
            .places()?
            .into_iter()
            .find(|p| p.kind == kind && p.id == id))
    }

    /// Places (or moves) a device.
    pub fn set_place(&self, p: &Place) -> Result<()> {
        self.conn().execute(
            "INSERT INTO device_place (kind, id, x, y, lon, lat, updated_by, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT(kind, id) DO UPDATE SET x = excluded.x, y = excluded.y, lon = excluded.lon,
               lat = excluded.lat, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            params![p.kind, p.id, p.x, p.y, p.lon, p.lat, p.updated_by, self.now_str()],
        )?;
        Ok(())
    }

    /// Takes a device off the map; false when it was not on it.
    pub fn clear_place(&self, kind: &str, id: &str) -> Result<bool> {
        let n = self.conn().execute(
            "DELETE FROM device_place WHERE kind = ?1 AND id = ?2",
            params![kind, id],
        )?;
        Ok(n > 0)
    }

    /// Acknowledges the alarm of `device_id` that began at `since`; the
    /// first acknowledgement stands (returned as it is stored).
    pub fn ack_alarm(
        &self,
        device_id: &str,
        since: &str,
        note: &str,
        by: &str,
    ) -> Result<AlarmAck> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO alarm_ack (device_id, since, note, by, at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(device_id, since) DO NOTHING",
            params![device_id, since, note, by, self.now_str()],
        )?;
        let a = conn
            .query_row(
                "SELECT device_id, since, note, by, at FROM alarm_ack WHERE device_id = ?1 AND since = ?2",
                params![device_id, since],
                |r| {
                    Ok(AlarmAck {
                        device_id: r.get(0)?,
                        since: r.get(1)?,
                        note: r.get(2)?,
                        by: r.get(3)?,
                        at: r.get(4)?,
                    })
                },
            )
            .optional()?;
        a.ok_or_else(|| rusqlite::Error::QueryReturnedNoRows.into())
    }

    /// The newest `limit` acknowledgements.
    pub fn alarm_acks(&self, limit: usize) -> Result<Vec<AlarmAck>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT device_id, since, note, by, at FROM alarm_ack ORDER BY at DESC LIMIT ?1",
        )?;
        let rows = st.query_map([limit as i64], |r| {
            Ok(AlarmAck {
                device_id: r.get(0)?,
                since: r.get(1)?,
                note: r.get(2)?,
                by: r.get(3)?,
                at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_round_trip_and_first_ack_stands() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let mut p = Place {
            kind: "camera".into(),
            id: "cam-1".into(),
            x: Some(0.25),
            y: Some(0.5),
            lon: None,
            lat: None,
            updated_by: "adm".into(),
            updated_at: String::new(),
        };
        s.set_place(&p).unwrap();
        p.x = Some(0.75);
        s.set_place(&p).unwrap();
        let got = s.place("camera", "cam-1").unwrap().unwrap();
        assert_eq!((got.x, got.y), (Some(0.75), Some(0.5)));
        assert!(s.place("speaker", "cam-1").unwrap().is_none());
        assert!(s.clear_place("camera", "cam-1").unwrap());
        assert!(!s.clear_place("camera", "cam-1").unwrap());
        let a = s
            .ack_alarm("cam-1", "2026-01-01T00:00:00Z", "truck hit pole", "oper")
            .unwrap();
        let b = s
            .ack_alarm("cam-1", "2026-01-01T00:00:00Z", "second", "adm")
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(b.note, "truck hit pole");
        s.ack_alarm("cam-1", "2026-01-02T00:00:00Z", "again", "adm")
            .unwrap();
        assert_eq!(s.alarm_acks(10).unwrap().len(), 2);
    }
}
