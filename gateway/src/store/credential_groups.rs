//! Credential groups as the API lists them (never their passwords), and
//! removing a device's own login.

use super::{Result, Store};

/// A credential group without its password; `subnets` and `mac_prefixes`
/// are the stored JSON arrays.
#[derive(Debug, Clone)]
pub struct GroupRow {
    /// Group name.
    pub name: String,
    /// Login name.
    pub username: String,
    /// JSON array of IPv4 subnets.
    pub subnets: String,
    /// JSON array of MAC prefixes.
    pub mac_prefixes: String,
    /// Higher wins.
    pub priority: i64,
}

impl Store {
    /// Credential groups, highest priority first, then by name.
    pub fn credential_groups(&self) -> Result<Vec<GroupRow>> {
        self.with_conn(|c| {
            let mut s = c.prepare(
                "SELECT name, username, subnets, mac_prefixes, priority FROM credential_group ORDER BY priority DESC, name",
            )?;
            let v = s
                .query_map([], |r| {
                    Ok(GroupRow {
                        name: r.get(0)?,
                        username: r.get(1)?,
                        subnets: r.get(2)?,
                        mac_prefixes: r.get(3)?,
                        priority: r.get(4)?,
                    })
                })?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(v)
        })
    }

    /// Removes a device's own login (its credential group applies again).
    pub fn clear_device_login(&self, id: &str) -> Result<()> {
        self.with_conn(|c| {
            c.execute("DELETE FROM device_credential WHERE device_id = ?1", [id])?;
            Ok(())
        })
    }
}

/// Whether two MAC prefixes can match the same MAC (one starts the other).
fn macs_overlap(a: &str, b: &str) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

impl Store {
    /// Another group (not `name`) of the same `priority` whose scope
    /// overlaps the given subnets or MAC prefixes: which of two such groups
    /// a camera gets would depend on their names alone.
    pub fn overlapping_group(
        &self,
        name: &str,
        subnets: &[ipnet::Ipv4Net],
        mac_prefixes: &[String],
        priority: i32,
    ) -> Result<Option<String>> {
        for g in self.credential_groups()? {
            if g.name == name || g.priority != i64::from(priority) {
                continue;
            }
            let nets: Vec<String> = serde_json::from_str(&g.subnets).unwrap_or_default();
            let by_net = nets
                .iter()
                .filter_map(|s| s.parse::<ipnet::Ipv4Net>().ok())
                .any(|n| {
                    subnets
                        .iter()
                        .any(|s| n.contains(&s.network()) || s.contains(&n.network()))
                });
            let macs: Vec<String> = serde_json::from_str(&g.mac_prefixes).unwrap_or_default();
            let by_mac = macs
                .iter()
                .any(|m| mac_prefixes.iter().any(|p| macs_overlap(m, p)));
            if by_net || by_mac {
                return Ok(Some(g.name));
            }
        }
        Ok(None)
    }

    /// Deletes a credential group; `NotFound` when there is none.
    pub fn delete_group(&self, name: &str) -> Result<()> {
        self.with_conn(|c| {
            let n = c.execute("DELETE FROM credential_group WHERE name = ?1", [name])?;
            if n == 0 {
                return Err(super::StoreError::NotFound {
                    what: "credential group",
                    id: name.to_string(),
                });
            }
            Ok(())
        })
    }
}
