//! Township-wide reads the API shows: the township row, and the adopted
//! cameras with their health in one lean query (the list never needs the
//! large inventory documents).

use super::{Result, Store};

/// An adopted camera with its stored health, as the camera list needs it.
#[derive(Debug, Clone)]
pub struct CameraRow {
    /// Device id.
    pub id: String,
    /// Name.
    pub name: Option<String>,
    /// Address.
    pub address: Option<String>,
    /// Village code.
    pub village: Option<String>,
    /// Grid code.
    pub grid: Option<String>,
    /// Maker.
    pub manufacturer: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Health, once polled.
    pub health: Option<tgw_core::health::Health>,
}

impl Store {
    /// The township's code and name (the row `sync_township` wrote).
    pub fn township_row(&self) -> Result<(String, String)> {
        self.with_conn(|c| {
            Ok(
                c.query_row("SELECT code, name FROM township WHERE id = 1", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?,
            )
        })
    }

    /// Adopted cameras with their health, by village (unassigned last),
    /// then id.
    pub fn camera_rows(&self) -> Result<Vec<CameraRow>> {
        // One lean query: the list never needs the (large) inventory documents,
        // and parsing them for 1,000 cameras dominated the list's latency.
        self.with_conn(|c| {
            let mut st = c.prepare_cached(
                "SELECT d.id, d.name, d.address, d.village_code, d.grid_code, d.manufacturer, d.model, h.health
                 FROM device d LEFT JOIN health_state h ON h.device_id = d.id
                 WHERE d.state = 'adopted' AND d.kind = 'camera'
                 ORDER BY d.village_code IS NULL, d.village_code, d.id",
            )?;
            let rows = st.query_map([], |r| {
                let health: Option<String> = r.get(7)?;
                Ok(CameraRow {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    address: r.get(2)?,
                    village: r.get(3)?,
                    grid: r.get(4)?,
                    manufacturer: r.get(5)?,
                    model: r.get(6)?,
                    // A row an older version wrote that no longer parses reads as
                    // not yet polled, as in `Store::all_health`.
                    health: health.and_then(|h| serde_json::from_str(&h).ok()),
                })
            })?;
            Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
        })
    }
}
