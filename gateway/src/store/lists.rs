//! List queries for the API: which cameras a credential group's scope
//! reaches, and (see below) pages of cameras and devices selected, filtered
//! and counted in SQL.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::{Result, Store};

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
