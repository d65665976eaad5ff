//! Camera logins: a device's own credential and credential groups matched
//! by subnet or MAC prefix, sealed with the store's [`SecretKey`] (bound to
//! `device:ID` / `group:NAME`) before they reach SQL.
//!
//! [`SecretKey`]: crate::store::secrets::SecretKey

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use rusqlite::{OptionalExtension, params};

use super::devices::Device;
use super::secrets::Password;
use super::{Result, Store, StoreError};

/// A login for one device.
#[derive(Debug, Clone)]
pub struct Login {
    /// Username.
    pub username: String,
    /// Password (prints as `***`).
    pub password: Password,
    /// Where it came from: `device` or `group:NAME`.
    pub source: String,
}

impl Store {
    /// Sets a device's own login (overrides any group).
    pub fn set_device_login(&self, id: &str, username: &str, password: &Password) -> Result<()> {
        let sealed = self.key.seal(&format!("device:{id}"), password);
        let conn = self.conn();
        let exists: bool = conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM device WHERE id = ?1)",
            [id],
            |r| r.get(0),
        )?;
        if !exists {
            return Err(StoreError::NotFound {
                what: "device",
                id: id.into(),
            });
        }
        conn.execute(
            "INSERT INTO device_credential (device_id, username, password_sealed) VALUES (?1, ?2, ?3)
             ON CONFLICT(device_id) DO UPDATE SET username = excluded.username, password_sealed = excluded.password_sealed",
            params![id, username, sealed],
        )?;
        Ok(())
    }

    /// Creates or replaces a credential group.
    pub fn set_group(
        &self,
        name: &str,
        username: &str,
        password: &Password,
        subnets: &[Ipv4Net],
        mac_prefixes: &[String],
        priority: i32,
    ) -> Result<()> {
        let sealed = self.key.seal(&format!("group:{name}"), password);
        let subnets: Vec<String> = subnets.iter().map(|n| n.to_string()).collect();
        self.conn().execute(
            "INSERT INTO credential_group (name, username, password_sealed, subnets, mac_prefixes, priority)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(name) DO UPDATE SET username = excluded.username, password_sealed = excluded.password_sealed,
               subnets = excluded.subnets, mac_prefixes = excluded.mac_prefixes, priority = excluded.priority",
            params![
                name,
                username,
                sealed,
                serde_json::to_string(&subnets).unwrap_or_default(),
                serde_json::to_string(mac_prefixes).unwrap_or_default(),
                priority
            ],
        )?;
        Ok(())
    }

    /// The login to use for a device: its own, else the highest-priority
    /// credential group whose subnet contains its address or whose MAC prefix
    /// matches its MAC.
    pub fn login_for(&self, id: &str) -> Result<Option<Login>> {
        let conn = self.conn();
        let own: Option<(String, Vec<u8>)> = conn
            .query_row(
                "SELECT username, password_sealed FROM device_credential WHERE device_id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((username, sealed)) = own {
            let password = self.key.open(&format!("device:{id}"), &sealed)?;
            return Ok(Some(Login {
                username,
                password,
                source: "device".into(),
            }));
        }
        let (address, mac): (Option<String>, Option<String>) = match conn
            .query_row("SELECT address, mac FROM device WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?
        {
            Some(x) => x,
            None => return Ok(None),
        };
        let address: Option<Ipv4Addr> = address.and_then(|a| a.parse().ok());
        let mut st = conn.prepare(
            "SELECT name, username, password_sealed, subnets, mac_prefixes FROM credential_group ORDER BY priority DESC, name",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        for row in rows {
            let (name, username, sealed, subnets, prefixes) = row?;
            let subnets: Vec<String> = serde_json::from_str(&subnets).unwrap_or_default();
            let prefixes: Vec<String> = serde_json::from_str(&prefixes).unwrap_or_default();
            let by_net = address.is_some_and(|a| {
                subnets
                    .iter()
                    .filter_map(|s| s.parse::<Ipv4Net>().ok())
                    .any(|n| n.contains(&a))
            });
            let by_mac = mac
                .as_deref()
                .is_some_and(|m| prefixes.iter().any(|p| m.starts_with(p.as_str())));
            if by_net || by_mac {
                let password = self.key.open(&format!("group:{name}"), &sealed)?;
                return Ok(Some(Login {
                    username,
                    password,
                    source: format!("group:{name}"),
                }));
            }
        }
        Ok(None)
    }

    pub(super) fn group_matches(&self, d: &Device) -> Result<bool> {
        let conn = self.conn();
        let mut st = conn.prepare_cached("SELECT subnets, mac_prefixes FROM credential_group")?;
        let address: Option<Ipv4Addr> = d.address.as_deref().and_then(|a| a.parse().ok());
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (subnets, prefixes) = row?;
            let subnets: Vec<String> = serde_json::from_str(&subnets).unwrap_or_default();
            let prefixes: Vec<String> = serde_json::from_str(&prefixes).unwrap_or_default();
            if address.is_some_and(|a| {
                subnets
                    .iter()
                    .filter_map(|s| s.parse::<Ipv4Net>().ok())
                    .any(|n| n.contains(&a))
            }) || d
                .mac
                .as_deref()
                .is_some_and(|m| prefixes.iter().any(|p| m.starts_with(p.as_str())))
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{sighting, store};

    #[test]
    fn logins_prefer_device_then_group_priority_and_are_encrypted() {
        let (dir, s) = store();
        let a = s
            .record_sighting(&sighting("urn:uuid:1", [10, 21, 3, 5]))
            .unwrap();
        assert!(s.login_for(&a.id).unwrap().is_none());
        let net: Ipv4Net = "10.21.3.0/24".parse().unwrap();
        s.set_group("low", "low", &Password::new("pw-low-123"), &[net], &[], 1)
            .unwrap();
        s.set_group(
            "high",
            "high",
            &Password::new("pw-high-456"),
            &[net],
            &[],
            5,
        )
        .unwrap();
        s.set_group(
            "mac",
            "mac",
            &Password::new("pw-mac-789"),
            &[],
            &["44:19:b6".into()],
            9,
        )
        .unwrap();
        let l = s.login_for(&a.id).unwrap().unwrap();
        assert_eq!(
            (l.username.as_str(), l.password.expose(), l.source.as_str()),
            ("high", "pw-high-456", "group:high")
        );
        assert!(s.device(&a.id).unwrap().unwrap().has_credentials);
        s.set_device_login(&a.id, "own", &Password::new("pw-own-000"))
            .unwrap();
        let l = s.login_for(&a.id).unwrap().unwrap();
        assert_eq!(
            (l.username.as_str(), l.password.expose()),
            ("own", "pw-own-000")
        );
        // Nothing readable on disk or in listings.
        drop(s);
        let raw = std::fs::read(dir.path().join("tgw.db")).unwrap_or_default();
        let wal = std::fs::read(dir.path().join("tgw.db-wal")).unwrap_or_default();
        for pw in ["pw-low-123", "pw-high-456", "pw-own-000"] {
            assert!(
                !raw.windows(pw.len()).any(|w| w == pw.as_bytes()),
                "{pw} in db"
            );
            assert!(
                !wal.windows(pw.len()).any(|w| w == pw.as_bytes()),
                "{pw} in wal"
            );
        }
    }
}
