//! The device inventory: cameras and speakers found by discovery (the
//! inbox), their ONVIF inventory and probe errors, adoption into a village
//! and grid, and listing (never with credentials).

use std::net::Ipv4Addr;

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{Result, Store, StoreError, parse_json};

/// A device's place in the adoption flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceState {
    /// Found by discovery, waiting in the inbox.
    Discovered,
    /// Adopted by a technician (or a rule).
    Adopted,
    /// Dismissed from the inbox.
    Ignored,
}

impl DeviceState {
    fn as_str(self) -> &'static str {
        match self {
            DeviceState::Discovered => "discovered",
            DeviceState::Adopted => "adopted",
            DeviceState::Ignored => "ignored",
        }
    }
    fn parse(s: &str) -> Self {
        match s {
            "adopted" => DeviceState::Adopted,
            "ignored" => DeviceState::Ignored,
            _ => DeviceState::Discovered,
        }
    }
}

/// What discovery saw of a camera.
#[derive(Debug, Clone, Default)]
pub struct Sighting {
    /// WS-Discovery EndpointReference (`urn:uuid:...`).
    pub endpoint_ref: String,
    /// Source IPv4 address of the answer.
    pub address: Option<Ipv4Addr>,
    /// Advertised service addresses.
    pub xaddrs: Vec<String>,
    /// Advertised scopes.
    pub scopes: Vec<String>,
    /// Advertised types.
    pub types: Vec<String>,
    /// `multicast`, `unicast` or `hello`.
    pub via: String,
    /// Name from the scopes, if any.
    pub name: Option<String>,
}

/// A device row as listed (never with credentials).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Device {
    /// Our id (`cam-…`).
    pub id: String,
    /// `camera` or `speaker`.
    pub kind: String,
    /// Adoption state.
    pub state: DeviceState,
    /// WS-Discovery EndpointReference.
    pub endpoint_ref: Option<String>,
    /// MAC, `aa:bb:cc:dd:ee:ff`.
    pub mac: Option<String>,
    /// Name (from scopes or set by a technician).
    pub name: Option<String>,
    /// Maker.
    pub manufacturer: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Firmware version.
    pub firmware: Option<String>,
    /// Serial number.
    pub serial: Option<String>,
    /// IPv4 address.
    pub address: Option<String>,
    /// Service addresses.
    pub xaddrs: Vec<String>,
    /// Scopes.
    pub scopes: Vec<String>,
    /// How it was last seen.
    pub via: Option<String>,
    /// Village code.
    pub village: Option<String>,
    /// Grid code.
    pub grid: Option<String>,
    /// Whether a login is known for it (device or group); never the login itself.
    pub has_credentials: bool,
    /// The last full ONVIF inventory (credential-free), as JSON.
    pub inventory: Option<serde_json::Value>,
    /// When the inventory was fetched.
    pub inventory_at: Option<String>,
    /// Kind of the last probe error (`auth`, `timeout`, …).
    pub probe_error_kind: Option<String>,
    /// The last probe error.
    pub probe_error: Option<String>,
    /// First discovery.
    pub first_seen: String,
    /// Last discovery or successful probe.
    pub last_seen: String,
    /// When the device last said Bye.
    pub last_bye: Option<String>,
    /// Speakers: the driver kind discovery inferred (`sip`, `rtp`, `axis`),
    /// if any; adopting the speaker puts it in the speaker inventory with it.
    #[serde(default)]
    pub driver: Option<String>,
    /// Speakers: the address for that driver (`sip:horn@IP:PORT`,
    /// `IP:PORT`), if discovery could tell.
    #[serde(default)]
    pub driver_address: Option<String>,
}

/// Fields of an inventory that the store indexes.
#[derive(Debug, Clone, Default)]
pub struct InventorySummary {
    /// MAC, normalised.
    pub mac: Option<String>,
    /// Maker.
    pub manufacturer: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Firmware.
    pub firmware: Option<String>,
    /// Serial.
    pub serial: Option<String>,
}

/// Result of recording a sighting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upserted {
    /// The device id.
    pub id: String,
    /// First time we see it.
    pub new: bool,
}

/// Our id for a camera: `cam-` and 10 hex digits of a hash of its
/// EndpointReference (stable across address changes).
pub fn camera_id(endpoint_ref: &str) -> String {
    format!("cam-{:010x}", fnv40(endpoint_ref))
}

/// Our id of a discovered speaker: `spk-` plus the same hash as
/// [`camera_id`] over its SSDP USN or WS-Discovery EndpointReference.
pub fn speaker_id(usn_or_epr: &str) -> String {
    format!("spk-{:010x}", fnv40(usn_or_epr))
}

fn fnv40(key: &str) -> u64 {
    // FNV-1a 64: stable across Rust versions, unlike DefaultHasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.trim().to_ascii_lowercase().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h & 0xff_ffff_ffff
}

impl Store {
    /// Records a WS-Discovery sighting: inserts a new camera into the inbox
    /// or refreshes the known one with the same EndpointReference.
    pub fn record_sighting(&self, s: &Sighting) -> Result<Upserted> {
        let now = self.now_str();
        let conn = self.conn();
        let xaddrs = serde_json::to_string(&s.xaddrs).unwrap_or_default();
        let scopes = serde_json::to_string(&s.scopes).unwrap_or_default();
        let types = serde_json::to_string(&s.types).unwrap_or_default();
        let address = s.address.map(|a| a.to_string());
        let existing: Option<String> = conn
            .query_row(
                "SELECT id FROM device WHERE endpoint_ref = ?1",
                [&s.endpoint_ref],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = existing {
            conn.execute(
                "UPDATE device SET address = COALESCE(?2, address), xaddrs = ?3, scopes = ?4, types = ?5,
                 via = ?6, name = COALESCE(name, ?7), last_seen = ?8 WHERE id = ?1",
                params![id, address, xaddrs, scopes, types, s.via, s.name, now],
            )?;
            return Ok(Upserted { id, new: false });
        }
        let id = camera_id(&s.endpoint_ref);
        conn.execute(
            "INSERT INTO device (id, kind, state, endpoint_ref, name, address, xaddrs, scopes, types, via, first_seen, last_seen)
             VALUES (?1, 'camera', 'discovered', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
            params![id, s.endpoint_ref, s.name, address, xaddrs, scopes, types, s.via, now],
        )?;
        Ok(Upserted { id, new: true })
    }

    /// Records a loudspeaker that answered discovery (SSDP, mDNS or
    /// WS-Discovery): a `kind = 'speaker'`, `state = 'discovered'` row keyed
    /// by its USN, mDNS instance name or EndpointReference (kept in
    /// `endpoint_ref`), its LOCATION / XAddr in `xaddrs`, its SERVER banner
    /// (or model) as `model` until someone names it, and `driver` — the
    /// driver kind and address discovery inferred — when known.
    /// A known key only refreshes address, location, via, driver (when
    /// given) and `last_seen`.
    pub fn record_speaker_sighting(
        &self,
        usn_or_epr: &str,
        address: Option<Ipv4Addr>,
        location: Option<&str>,
        server: Option<&str>,
        via: &str,
        driver: Option<(&str, &str)>,
    ) -> Result<Upserted> {
        let (driver, driver_address) = driver.unzip();
        let now = self.now_str();
        let conn = self.conn();
        let xaddrs =
            serde_json::to_string(&location.into_iter().collect::<Vec<_>>()).unwrap_or_default();
        let address = address.map(|a| a.to_string());
        let existing: Option<String> = conn
            .query_row(
                "SELECT id FROM device WHERE endpoint_ref = ?1",
                [usn_or_epr],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = existing {
            conn.execute(
                "UPDATE device SET address = COALESCE(?2, address), xaddrs = ?3, via = ?4,
                 model = COALESCE(model, ?5), last_seen = ?6,
                 driver = COALESCE(?7, driver),
                 driver_address = CASE WHEN ?7 IS NULL THEN driver_address ELSE ?8 END
                 WHERE id = ?1",
                params![
                    id,
                    address,
                    xaddrs,
                    via,
                    server,
                    now,
                    driver,
                    driver_address
                ],
            )?;
            return Ok(Upserted { id, new: false });
        }
        let id = speaker_id(usn_or_epr);
        conn.execute(
            "INSERT INTO device (id, kind, state, endpoint_ref, address, xaddrs, via, model, first_seen, last_seen,
                                 driver, driver_address)
             VALUES (?1, 'speaker', 'discovered', ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9)",
            params![id, usn_or_epr, address, xaddrs, via, server, now, driver, driver_address],
        )?;
        Ok(Upserted { id, new: true })
    }

    /// Notes that a camera said Bye.
    pub fn record_bye(&self, endpoint_ref: &str) -> Result<Option<String>> {
        let conn = self.conn();
        let id: Option<String> = conn
            .query_row(
                "UPDATE device SET last_bye = ?2 WHERE endpoint_ref = ?1 RETURNING id",
                params![endpoint_ref, self.now_str()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(id)
    }

    /// Stores a successful ONVIF inventory. When the camera's MAC already
    /// belongs to another row (the same camera re-announced under a new
    /// EndpointReference, e.g. after a factory reset), the two rows are merged
    /// into the older one, which keeps its village, grid and credentials.
    /// Returns the id the device now has.
    pub fn record_inventory(
        &self,
        id: &str,
        summary: &InventorySummary,
        inventory: &serde_json::Value,
    ) -> Result<String> {
        let now = self.now_str();
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut target = id.to_string();
        if let Some(mac) = &summary.mac {
            let other: Option<(String, Option<String>)> = tx
                .query_row(
                    "SELECT id, endpoint_ref FROM device WHERE mac = ?1 AND id <> ?2",
                    params![mac, id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if let Some((older, _)) = other {
                // Move the newer sighting's discovery facts onto the older row.
                let (epr, address, xaddrs, scopes, types, via): (
                    Option<String>,
                    Option<String>,
                    String,
                    String,
                    String,
                    Option<String>,
                ) = tx.query_row(
                    "SELECT endpoint_ref, address, xaddrs, scopes, types, via FROM device WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
                )?;
                tx.execute("DELETE FROM device WHERE id = ?1", [id])?;
                tx.execute(
                    "UPDATE device SET endpoint_ref = ?2, address = COALESCE(?3, address), xaddrs = ?4,
                     scopes = ?5, types = ?6, via = ?7 WHERE id = ?1",
                    params![older, epr, address, xaddrs, scopes, types, via],
                )?;
                target = older;
            }
        }
        let inv = serde_json::to_string(inventory).unwrap_or_default();
        let n = tx.execute(
            "UPDATE device SET mac = COALESCE(?2, mac), manufacturer = ?3, model = ?4, firmware = ?5, serial = ?6,
             inventory = ?7, inventory_at = ?8, last_seen = ?8,
             probe_error_kind = NULL, probe_error = NULL, probe_error_at = NULL WHERE id = ?1",
            params![
                target,
                summary.mac,
                summary.manufacturer,
                summary.model,
                summary.firmware,
                summary.serial,
                inv,
                now
            ],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "device",
                id: target,
            });
        }
        tx.commit()?;
        Ok(target)
    }

    /// Stores why the last probe failed (kind is a short label such as `auth`).
    pub fn record_probe_error(&self, id: &str, kind: &str, detail: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE device SET probe_error_kind = ?2, probe_error = ?3, probe_error_at = ?4 WHERE id = ?1",
            params![id, kind, detail, self.now_str()],
        )?;
        Ok(())
    }

    /// Adopts a device into a village (and optionally a grid of it).
    pub fn adopt(&self, id: &str, village: Option<&str>, grid: Option<&str>) -> Result<()> {
        let conn = self.conn();
        if let Some(g) = grid {
            let gv: Option<String> = conn
                .query_row("SELECT village_code FROM grid WHERE code = ?1", [g], |r| {
                    r.get(0)
                })
                .optional()?;
            match (gv, village) {
                (None, _) => {
                    return Err(StoreError::NotFound {
                        what: "grid",
                        id: g.into(),
                    });
                }
                (Some(gv), Some(v)) if gv != v => {
                    return Err(StoreError::Invalid(format!(
                        "grid `{g}` belongs to village `{gv}`, not `{v}`"
                    )));
                }
                _ => {}
            }
        }
        if let Some(v) = village {
            let exists: bool = conn.query_row(
                "SELECT EXISTS(SELECT 1 FROM village WHERE code = ?1)",
                [v],
                |r| r.get(0),
            )?;
            if !exists {
                return Err(StoreError::NotFound {
                    what: "village",
                    id: v.into(),
                });
            }
        }
        let village = match (village, grid) {
            (None, Some(g)) => conn
                .query_row("SELECT village_code FROM grid WHERE code = ?1", [g], |r| {
                    r.get(0)
                })
                .optional()?,
            (v, _) => v.map(str::to_string),
        };
        let n = conn.execute(
            "UPDATE device SET state = 'adopted', village_code = ?2, grid_code = ?3 WHERE id = ?1",
            params![id, village, grid],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "device",
                id: id.into(),
            });
        }
        Ok(())
    }

    /// Dismisses a device from the inbox.
    pub fn ignore(&self, id: &str) -> Result<()> {
        let n = self
            .conn()
            .execute("UPDATE device SET state = 'ignored' WHERE id = ?1", [id])?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "device",
                id: id.into(),
            });
        }
        Ok(())
    }

    /// One device by id.
    pub fn device(&self, id: &str) -> Result<Option<Device>> {
        let mut v = self.query_devices("WHERE d.id = ?1", &[&id])?;
        Ok(v.pop())
    }

    /// Devices, optionally only those in one state, ordered by village then id.
    pub fn devices(&self, state: Option<DeviceState>) -> Result<Vec<Device>> {
        match state {
            Some(s) => self.query_devices("WHERE d.state = ?1", &[&s.as_str()]),
            None => self.query_devices("", &[]),
        }
    }

    fn query_devices(&self, filter: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<Device>> {
        let conn = self.conn();
        let sql = format!(
            "SELECT d.id, d.kind, d.state, d.endpoint_ref, d.mac, d.name, d.manufacturer, d.model, d.firmware, d.serial,
                    d.address, d.xaddrs, d.scopes, d.via, d.village_code, d.grid_code,
                    EXISTS(SELECT 1 FROM device_credential c WHERE c.device_id = d.id),
                    d.inventory, d.inventory_at, d.probe_error_kind, d.probe_error, d.first_seen, d.last_seen, d.last_bye,
                    d.driver, d.driver_address
             FROM device d {filter} ORDER BY d.village_code IS NULL, d.village_code, d.id"
        );
        let mut st = conn.prepare(&sql)?;
        let rows = st.query_map(args, device_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(finish_device(row?)?);
        }
        drop(st);
        drop(conn);
        // has_credentials also counts credential groups.
        for d in &mut out {
            if !d.has_credentials {
                d.has_credentials = self.group_matches(d)?;
            }
        }
        Ok(out)
    }
}

/// One row of the device columns (`id, kind, state, … driver,
/// driver_address`, as [`Store::devices`] selects them), with its JSON
/// columns (`xaddrs`, `scopes`, `inventory`) still as text: parsing them is
/// [`finish_device`]'s, outside the SQLite row callback.
pub(super) type DeviceRow = (Device, String, String, Option<String>);

/// Reads one row of the device columns.
pub(super) fn device_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeviceRow> {
    Ok((
        Device {
            id: r.get(0)?,
            kind: r.get(1)?,
            state: DeviceState::parse(&r.get::<_, String>(2)?),
            endpoint_ref: r.get(3)?,
            mac: r.get(4)?,
            name: r.get(5)?,
            manufacturer: r.get(6)?,
            model: r.get(7)?,
            firmware: r.get(8)?,
            serial: r.get(9)?,
            address: r.get(10)?,
            xaddrs: Vec::new(),
            scopes: Vec::new(),
            via: r.get(13)?,
            village: r.get(14)?,
            grid: r.get(15)?,
            has_credentials: r.get(16)?,
            inventory: None,
            inventory_at: r.get(18)?,
            probe_error_kind: r.get(19)?,
            probe_error: r.get(20)?,
            first_seen: r.get(21)?,
            last_seen: r.get(22)?,
            last_bye: r.get(23)?,
            driver: r.get(24)?,
            driver_address: r.get(25)?,
        },
        r.get::<_, String>(11)?,
        r.get::<_, String>(12)?,
        r.get::<_, Option<String>>(17)?,
    ))
}

/// Parses a row's JSON columns into its device.
pub(super) fn finish_device((mut d, xaddrs, scopes, inv): DeviceRow) -> Result<Device> {
    d.xaddrs = parse_json(&d.id, "xaddrs", &xaddrs)?;
    d.scopes = parse_json(&d.id, "scopes", &scopes)?;
    d.inventory = match inv {
        Some(s) => Some(parse_json(&d.id, "inventory", &s)?),
        None => None,
    };
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{sighting, store};

    #[test]
    fn sightings_dedupe_by_endpoint_reference() {
        let (_d, s) = store();
        let a = s
            .record_sighting(&sighting("urn:uuid:1", [10, 21, 3, 5]))
            .unwrap();
        assert!(a.new);
        let b = s
            .record_sighting(&sighting("urn:uuid:1", [10, 21, 3, 6]))
            .unwrap();
        assert_eq!(a.id, b.id);
        assert!(!b.new);
        let devs = s.devices(None).unwrap();
        assert_eq!(devs.len(), 1);
        assert_eq!(devs[0].address.as_deref(), Some("10.21.3.6"));
        assert_eq!(devs[0].state, DeviceState::Discovered);
    }

    #[test]
    fn same_mac_under_new_endpoint_reference_merges_into_the_older_row() {
        let (_d, s) = store();
        let a = s
            .record_sighting(&sighting("urn:uuid:old", [10, 21, 3, 5]))
            .unwrap();
        s.adopt(&a.id, Some("dongcun"), Some("dongcun-2")).unwrap();
        let inv = InventorySummary {
            mac: Some("44:19:b6:00:00:01".into()),
            ..Default::default()
        };
        s.record_inventory(&a.id, &inv, &serde_json::json!({}))
            .unwrap();
        // Factory reset: new EPR, same MAC.
        let b = s
            .record_sighting(&sighting("urn:uuid:new", [10, 21, 3, 7]))
            .unwrap();
        assert!(b.new);
        let kept = s
            .record_inventory(&b.id, &inv, &serde_json::json!({"x": 1}))
            .unwrap();
        assert_eq!(kept, a.id);
        let devs = s.devices(None).unwrap();
        assert_eq!(devs.len(), 1);
        assert_eq!(devs[0].endpoint_ref.as_deref(), Some("urn:uuid:new"));
        assert_eq!(devs[0].grid.as_deref(), Some("dongcun-2"));
        assert_eq!(devs[0].address.as_deref(), Some("10.21.3.7"));
    }

    #[test]
    fn adopt_checks_village_and_grid() {
        let (_d, s) = store();
        let a = s
            .record_sighting(&sighting("urn:uuid:1", [10, 21, 3, 5]))
            .unwrap();
        assert!(matches!(
            s.adopt(&a.id, Some("nowhere"), None),
            Err(StoreError::NotFound {
                what: "village",
                ..
            })
        ));
        assert!(matches!(
            s.adopt(&a.id, Some("xinhe"), Some("dongcun-1")),
            Err(StoreError::Invalid(_))
        ));
        s.adopt(&a.id, None, Some("dongcun-1")).unwrap();
        let d = s.device(&a.id).unwrap().unwrap();
        assert_eq!(
            (d.village.as_deref(), d.grid.as_deref()),
            (Some("dongcun"), Some("dongcun-1"))
        );
        assert!(matches!(
            s.adopt("cam-none", None, None),
            Err(StoreError::NotFound { .. })
        ));
    }

    #[test]
    fn speaker_sightings_are_kind_speaker_and_dedup_by_usn() {
        let (_d, s) = store();
        let usn = "uuid:spk-1::urn:schemas-upnp-org:device:MediaRenderer:1";
        let a = s
            .record_speaker_sighting(
                usn,
                Some([10, 21, 3, 40].into()),
                Some("http://10.21.3.40/d.xml"),
                Some("AXIS C1310-E"),
                "ssdp",
                Some(("axis", "10.21.3.40:80")),
            )
            .unwrap();
        assert!(a.new);
        assert!(a.id.starts_with("spk-"), "{}", a.id);
        let b = s
            .record_speaker_sighting(usn, Some([10, 21, 3, 41].into()), None, None, "ssdp", None)
            .unwrap();
        assert_eq!(a.id, b.id);
        assert!(!b.new);
        let devs = s.devices(None).unwrap();
        assert_eq!(devs.len(), 1);
        assert_eq!(devs[0].kind, "speaker");
        assert_eq!(devs[0].state, DeviceState::Discovered);
        assert_eq!(devs[0].address.as_deref(), Some("10.21.3.41"));
        assert_eq!(devs[0].model.as_deref(), Some("AXIS C1310-E"));
        // A sighting without a driver keeps the one recorded before.
        assert_eq!(devs[0].driver.as_deref(), Some("axis"));
        assert_eq!(devs[0].driver_address.as_deref(), Some("10.21.3.40:80"));
        s.record_speaker_sighting(
            usn,
            None,
            None,
            None,
            "mdns",
            Some(("sip", "sip:horn@10.21.3.41:5060")),
        )
        .unwrap();
        let d = s.device(&a.id).unwrap().unwrap();
        assert_eq!(d.driver.as_deref(), Some("sip"));
        assert_eq!(
            d.driver_address.as_deref(),
            Some("sip:horn@10.21.3.41:5060")
        );
        assert_ne!(speaker_id(usn), camera_id(usn));
    }

    #[test]
    fn camera_ids_are_stable() {
        assert_eq!(camera_id("urn:uuid:ABC"), camera_id(" urn:uuid:abc "));
        assert_ne!(camera_id("urn:uuid:1"), camera_id("urn:uuid:2"));
        assert_eq!(camera_id("urn:uuid:1").len(), 14);
    }
}
