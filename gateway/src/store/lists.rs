//! List queries for the API: which cameras a credential group's scope
//! reaches, and (see below) pages of cameras and devices selected, filtered
//! and counted in SQL.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use rusqlite::ToSql;

use super::township::CameraRow;
use super::{Device, DeviceState, Result, Store};

/// Migrations of the `list_indexes` component: indexes the list queries'
/// plans use (see `EXPLAIN QUERY PLAN` in BENCHMARKS.md).
pub const LIST_INDEX_MIGRATIONS: &[&str] = &[r#"
CREATE INDEX device_list ON device(kind, state, village_code IS NULL, village_code, id);
CREATE INDEX device_state_list ON device(state, village_code IS NULL, village_code, id);
"#];

/// One page: `LIMIT`/`OFFSET`; `None` = everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Page {
    /// Rows to skip.
    pub offset: u64,
    /// Rows at most; `None` = all.
    pub limit: Option<u64>,
}

impl Page {
    fn sql(&self) -> String {
        match self.limit {
            Some(n) => format!(" LIMIT {n} OFFSET {}", self.offset),
            None => String::new(),
        }
    }
}

/// Filters of the camera list (all optional; strings as the API got them).
#[derive(Debug, Clone, Default)]
pub struct CameraFilter {
    /// Village code.
    pub village: Option<String>,
    /// Grid code.
    pub grid: Option<String>,
    /// `ok`, `degraded`, `offline` or `unknown` (not yet polled).
    pub verdict: Option<String>,
    /// Maker substring, case-insensitive (ASCII).
    pub vendor: Option<String>,
    /// Id, name or address substring, case-insensitive (ASCII).
    pub q: Option<String>,
}

/// Filters of the device list.
#[derive(Debug, Clone, Default)]
pub struct DeviceFilter {
    /// Adoption state.
    pub state: Option<DeviceState>,
    /// `camera` or `speaker`.
    pub kind: Option<String>,
    /// Village code.
    pub village: Option<String>,
    /// Grid code.
    pub grid: Option<String>,
}

/// The verdict of a health row in SQL (`unknown` when none or unreadable).
const VERDICT_SQL: &str = "COALESCE(CASE WHEN json_valid(h.health) THEN json_extract(h.health, '$.verdict') END, 'unknown')";

/// `WHERE` clause and its arguments.
#[derive(Default)]
struct Where {
    sql: Vec<String>,
    args: Vec<Box<dyn ToSql>>,
}

impl Where {
    fn push(&mut self, cond: &str, arg: Option<String>) {
        if let Some(a) = arg {
            self.args.push(Box::new(a));
            self.sql
                .push(cond.replace('?', &format!("?{}", self.args.len())));
        }
    }
    fn text(&self) -> String {
        if self.sql.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.sql.join(" AND "))
        }
    }
    fn params(&self) -> Vec<&dyn ToSql> {
        self.args.iter().map(|b| b.as_ref()).collect()
    }
}

fn state_str(s: DeviceState) -> &'static str {
    match s {
        DeviceState::Discovered => "discovered",
        DeviceState::Adopted => "adopted",
        DeviceState::Ignored => "ignored",
    }
}

fn camera_where(f: &CameraFilter) -> Where {
    let mut w = Where::default();
    w.sql
        .push("d.kind = 'camera' AND d.state = 'adopted'".into());
    w.push("d.village_code = ?", f.village.clone());
    w.push("d.grid_code = ?", f.grid.clone());
    w.push(&format!("{VERDICT_SQL} = ?"), f.verdict.clone());
    w.push(
        "instr(lower(COALESCE(d.manufacturer, '')), lower(?)) > 0",
        f.vendor.clone(),
    );
    if let Some(q) = &f.q {
        w.args.push(Box::new(q.clone()));
        let n = w.args.len();
        w.sql.push(format!(
            "(instr(lower(d.id), lower(?{n})) > 0 OR instr(lower(COALESCE(d.name, '')), lower(?{n})) > 0 OR instr(lower(COALESCE(d.address, '')), lower(?{n})) > 0)"
        ));
    }
    w
}

fn device_where(f: &DeviceFilter) -> Where {
    let mut w = Where::default();
    w.push("d.state = ?", f.state.map(|s| state_str(s).to_string()));
    w.push("d.kind = ?", f.kind.clone());
    w.push("d.village_code = ?", f.village.clone());
    w.push("d.grid_code = ?", f.grid.clone());
    w
}

impl Store {
    /// Adopted cameras without their own login whose address lies in one of
    /// `subnets` or whose MAC starts with one of `mac_prefixes`: the cameras
    /// a credential group with that scope logs in to.
    pub fn cameras_in_scope(
        &self,
        subnets: &[Ipv4Net],
        mac_prefixes: &[String],
    ) -> Result<Vec<String>> {
        if subnets.is_empty() && mac_prefixes.is_empty() {
            return Ok(Vec::new());
        }
        self.with_conn(|c| {
            let mut st = c.prepare_cached(
                "SELECT d.id, d.address, d.mac FROM device d
                 WHERE d.kind = 'camera' AND d.state = 'adopted'
                   AND NOT EXISTS (SELECT 1 FROM device_credential c WHERE c.device_id = d.id)
                 ORDER BY d.id",
            )?;
            let rows = st.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, address, mac) = row?;
                let by_net = address
                    .and_then(|a| a.parse::<Ipv4Addr>().ok())
                    .is_some_and(|a| subnets.iter().any(|n| n.contains(&a)));
                let by_mac = mac.is_some_and(|m| {
                    let m = m.to_ascii_lowercase();
                    mac_prefixes
                        .iter()
                        .any(|p| m.starts_with(&p.to_ascii_lowercase()))
                });
                if by_net || by_mac {
                    out.push(id);
                }
            }
            Ok(out)
        })
    }
}

impl Store {
    /// SQL behind [`Store::camera_page`] (for `EXPLAIN QUERY PLAN`).
    pub fn camera_page_sql(f: &CameraFilter, page: Page) -> String {
        let w = camera_where(f);
        format!(
            "SELECT d.id, d.name, d.address, d.village_code, d.grid_code, d.manufacturer, d.model, h.health
             FROM device d LEFT JOIN health_state h ON h.device_id = d.id {}
             ORDER BY d.kind, d.state, d.village_code IS NULL, d.village_code, d.id{}",
            w.text(),
            page.sql()
        )
    }

    /// Adopted cameras with their health, filtered, ordered (village, then
    /// id) and paged in SQL, and how many match in all. Only the returned
    /// rows' health documents are parsed; no inventory is read.
    pub fn camera_page(&self, f: &CameraFilter, page: Page) -> Result<(Vec<CameraRow>, u64)> {
        let w = camera_where(f);
        let sql = Self::camera_page_sql(f, page);
        let count = format!(
            "SELECT COUNT(*) FROM device d {} {}",
            if f.verdict.is_some() {
                "LEFT JOIN health_state h ON h.device_id = d.id"
            } else {
                ""
            },
            w.text()
        );
        self.with_conn(|c| {
            let total: i64 = c
                .prepare_cached(&count)?
                .query_row(w.params().as_slice(), |r| r.get(0))?;
            let mut st = c.prepare_cached(&sql)?;
            let rows = st.query_map(w.params().as_slice(), |r| {
                let health: Option<String> = r.get(7)?;
                Ok(CameraRow {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    address: r.get(2)?,
                    village: r.get(3)?,
                    grid: r.get(4)?,
                    manufacturer: r.get(5)?,
                    model: r.get(6)?,
                    // Unreadable rows read as not yet polled (as `all_health`).
                    health: health.and_then(|h| serde_json::from_str(&h).ok()),
                })
            })?;
            let v = rows.collect::<std::result::Result<Vec<_>, _>>()?;
            Ok((v, u64::try_from(total).unwrap_or(0)))
        })
    }

    /// SQL behind [`Store::device_page`] (for `EXPLAIN QUERY PLAN`).
    pub fn device_page_sql(f: &DeviceFilter, page: Page) -> String {
        let w = device_where(f);
        format!(
            "SELECT d.id, d.kind, d.state, d.endpoint_ref, d.mac, d.name, d.manufacturer, d.model, d.firmware, d.serial,
                    d.address, d.xaddrs, d.scopes, d.via, d.village_code, d.grid_code,
                    EXISTS(SELECT 1 FROM device_credential c WHERE c.device_id = d.id),
                    d.inventory, d.inventory_at, d.probe_error_kind, d.probe_error, d.first_seen, d.last_seen, d.last_bye,
                    d.driver, d.driver_address
             FROM device d {} ORDER BY d.village_code IS NULL, d.village_code, d.id{}",
            w.text(),
            page.sql()
        )
    }

    /// Devices as [`Store::devices`] lists them, filtered and paged in SQL,
    /// and how many match in all; JSON columns are parsed for the returned
    /// rows only.
    pub fn device_page(&self, f: &DeviceFilter, page: Page) -> Result<(Vec<Device>, u64)> {
        let w = device_where(f);
        let sql = Self::device_page_sql(f, page);
        let count = format!("SELECT COUNT(*) FROM device d {}", w.text());
        let (mut out, total) = self.with_conn(|c| {
            let total: i64 = c
                .prepare_cached(&count)?
                .query_row(w.params().as_slice(), |r| r.get(0))?;
            let mut st = c.prepare_cached(&sql)?;
            let rows = st.query_map(w.params().as_slice(), super::devices::device_row)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(super::devices::finish_device(row?)?);
            }
            Ok((out, u64::try_from(total).unwrap_or(0)))
        })?;
        // has_credentials also counts credential groups.
        for d in &mut out {
            if !d.has_credentials {
                d.has_credentials = self.group_matches(d)?;
            }
        }
        Ok((out, total))
    }
}
