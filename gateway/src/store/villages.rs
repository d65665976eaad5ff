//! The township's places: township, villages, grids and micro-grids
//! (微网格), kept in step with the `[township]` configuration. A
//! micro-grid is a `grid` row with a `parent_code` (component
//! `micro_grids`), so a device's `grid_code` may name either.

use rusqlite::params;
use serde::Serialize;

use super::{Result, Store};
use crate::config::TownshipSection;

/// A village with its grids.
#[derive(Debug, Clone, Serialize)]
pub struct VillageRow {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// `village` or `community`.
    pub kind: String,
    /// (code, name) of each grid.
    pub grids: Vec<(String, String)>,
    /// (code, name, grid code) of each micro-grid.
    pub micro_grids: Vec<(String, String, String)>,
}

/// Migrations of the `micro_grids` component: a grid row with a parent
/// grid is a micro-grid.
pub const MICRO_GRID_MIGRATIONS: &[&str] =
    &["ALTER TABLE grid ADD COLUMN parent_code TEXT REFERENCES grid(code) ON DELETE CASCADE;"];

/// Village codes, and (grid code, village code) pairs.
pub type PlaceCodes = (Vec<String>, Vec<(String, String)>);

impl Store {
    /// Makes the township, villages and grids match the configuration.
    /// Villages and grids no longer configured are removed; their devices
    /// keep existing, unassigned.
    pub fn sync_township(&self, t: &TownshipSection) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO township (id, code, name) VALUES (1, ?1, ?2)
             ON CONFLICT(id) DO UPDATE SET code = excluded.code, name = excluded.name",
            params![t.code.as_str(), t.name],
        )?;
        let mut keep_v = Vec::new();
        let mut keep_g = Vec::new();
        for v in &t.villages {
            tx.execute(
                "INSERT INTO village (code, name, kind) VALUES (?1, ?2, ?3)
                 ON CONFLICT(code) DO UPDATE SET name = excluded.name, kind = excluded.kind",
                params![v.code.as_str(), v.name, v.kind.as_str()],
            )?;
            keep_v.push(v.code.0.clone());
            for g in &v.grids {
                tx.execute(
                    "INSERT INTO grid (code, village_code, name) VALUES (?1, ?2, ?3)
                     ON CONFLICT(code) DO UPDATE SET village_code = excluded.village_code, name = excluded.name,
                       parent_code = NULL",
                    params![g.code.as_str(), v.code.as_str(), g.name],
                )?;
                keep_g.push(g.code.0.clone());
                for m in &g.micro_grids {
                    tx.execute(
                        "INSERT INTO grid (code, village_code, name, parent_code) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT(code) DO UPDATE SET village_code = excluded.village_code,
                           name = excluded.name, parent_code = excluded.parent_code",
                        params![m.code.as_str(), v.code.as_str(), m.name, g.code.as_str()],
                    )?;
                    keep_g.push(m.code.0.clone());
                }
            }
        }
        let kv = serde_json::to_string(&keep_v).unwrap_or_default();
        let kg = serde_json::to_string(&keep_g).unwrap_or_default();
        tx.execute(
            "DELETE FROM grid WHERE code NOT IN (SELECT value FROM json_each(?1))",
            [kg],
        )?;
        tx.execute(
            "DELETE FROM village WHERE code NOT IN (SELECT value FROM json_each(?1))",
            [kv],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Villages with their grids, in configuration order of codes.
    pub fn villages(&self) -> Result<Vec<VillageRow>> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT code, name, kind FROM village ORDER BY code")?;
        let mut out: Vec<VillageRow> = st
            .query_map([], |r| {
                Ok(VillageRow {
                    code: r.get(0)?,
                    name: r.get(1)?,
                    kind: r.get(2)?,
                    grids: Vec::new(),
                    micro_grids: Vec::new(),
                })
            })?
            .collect::<std::result::Result<_, _>>()?;
        let mut gs = conn.prepare(
            "SELECT code, name FROM grid WHERE village_code = ?1 AND parent_code IS NULL ORDER BY code",
        )?;
        let mut ms = conn.prepare(
            "SELECT code, name, parent_code FROM grid
             WHERE village_code = ?1 AND parent_code IS NOT NULL ORDER BY parent_code, code",
        )?;
        for v in &mut out {
            v.grids = gs
                .query_map([&v.code], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<std::result::Result<_, _>>()?;
            v.micro_grids = ms
                .query_map([&v.code], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<std::result::Result<_, _>>()?;
        }
        Ok(out)
    }

    /// Every village code, and every grid code with its village code (what a
    /// speaker CSV may name).
    pub fn place_codes(&self) -> Result<PlaceCodes> {
        let conn = self.conn();
        let v: Vec<String> = conn
            .prepare("SELECT code FROM village")?
            .query_map([], |r| r.get(0))?
            .collect::<std::result::Result<_, _>>()?;
        let g: Vec<(String, String)> = conn
            .prepare("SELECT code, village_code FROM grid")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<std::result::Result<_, _>>()?;
        Ok((v, g))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::store::DeviceState;
    use crate::store::testing::{sighting, store};

    #[test]
    fn sync_township_removes_unconfigured_villages_but_keeps_devices() {
        let (_d, s) = store();
        let a = s
            .record_sighting(&sighting("urn:uuid:1", [10, 21, 3, 5]))
            .unwrap();
        s.adopt(&a.id, Some("xinhe"), None).unwrap();
        let mut cfg =
            Config::parse(include_str!("../../../config/gateway.example.toml"), "x").unwrap();
        cfg.township.villages.retain(|v| v.code.as_str() != "xinhe");
        s.sync_township(&cfg.township).unwrap();
        assert_eq!(s.villages().unwrap().len(), 1);
        let d = s.device(&a.id).unwrap().unwrap();
        assert_eq!(d.village, None);
        assert_eq!(d.state, DeviceState::Adopted);
    }

    /// Micro-grids (the example's `dongcun-1-a`, `dongcun-1-b`) are kept
    /// apart from grids, take devices like a grid, and go when the
    /// configuration drops them (their devices stay, unassigned to them).
    #[test]
    fn micro_grids_sync_and_take_devices() {
        let (_d, s) = store();
        let mut cfg =
            Config::parse(include_str!("../../../config/gateway.example.toml"), "x").unwrap();
        s.sync_township(&cfg.township).unwrap();
        let v = s.villages().unwrap();
        let dong = v.iter().find(|v| v.code == "dongcun").unwrap();
        assert!(dong.grids.iter().all(|g| !g.0.starts_with("dongcun-1-")));
        assert_eq!(
            dong.micro_grids
                .iter()
                .map(|m| (m.0.as_str(), m.2.as_str()))
                .collect::<Vec<_>>(),
            [("dongcun-1-a", "dongcun-1"), ("dongcun-1-b", "dongcun-1")]
        );
        let a = s
            .record_sighting(&sighting("urn:uuid:m1", [10, 21, 3, 9]))
            .unwrap();
        s.adopt(&a.id, None, Some("dongcun-1-a")).unwrap();
        let d = s.device(&a.id).unwrap().unwrap();
        assert_eq!(
            d.village.as_deref(),
            Some("dongcun"),
            "village from the micro-grid"
        );
        assert_eq!(d.grid.as_deref(), Some("dongcun-1-a"));
        assert!(
            s.adopt(&a.id, Some("xinhe"), Some("dongcun-1-a")).is_err(),
            "a micro-grid of another village"
        );
        for v in &mut cfg.township.villages {
            for g in &mut v.grids {
                g.micro_grids.clear();
            }
        }
        s.sync_township(&cfg.township).unwrap();
        let dong = s
            .villages()
            .unwrap()
            .into_iter()
            .find(|v| v.code == "dongcun")
            .unwrap();
        assert!(dong.micro_grids.is_empty());
        assert_eq!(s.device(&a.id).unwrap().unwrap().grid, None);
    }
}
