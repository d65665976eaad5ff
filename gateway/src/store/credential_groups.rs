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
