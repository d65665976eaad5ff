//! The loudspeaker inventory's SQL: speaker rows (password sealed with the
//! store's key, bound to `speaker:ID`) and multicast zones. The types,
//! validation and CSV import are [`crate::speakers`]'s.

use std::net::SocketAddrV4;

use rusqlite::{OptionalExtension, params};

use super::credentials::Login;
use super::secrets::Password;
use super::{Result, Store};

/// A speaker row joined with its zone (never with the password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeakerRow {
    /// Our id.
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// Driver kind, as stored.
    pub kind: String,
    /// Address in the kind's form.
    pub address: String,
    /// Village code.
    pub village: Option<String>,
    /// Grid code.
    pub grid: Option<String>,
    /// Zone name.
    pub zone: Option<String>,
    /// The zone's group address, if it has one.
    pub group_addr: Option<String>,
    /// The zone's group port.
    pub port: Option<u16>,
    /// The zone's TTL.
    pub ttl: Option<u8>,
    /// Codec, as stored.
    pub codec: String,
    /// Volume 0-100.
    pub volume: Option<u8>,
    /// Login user name.
    pub username: Option<String>,
    /// Whether a password is stored.
    pub has_password: bool,
}

/// A zone row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneRow {
    /// Zone name.
    pub name: String,
    /// Group address, if the zone has a multicast group.
    pub group_addr: Option<String>,
    /// Group port.
    pub port: Option<u16>,
    /// TTL.
    pub ttl: Option<u8>,
}

/// A speaker to create or update, already validated.
#[derive(Debug, Clone)]
pub struct SpeakerWrite<'a> {
    /// Our id.
    pub id: &'a str,
    /// Display name.
    pub name: Option<&'a str>,
    /// Driver kind.
    pub kind: &'a str,
    /// Address.
    pub address: &'a str,
    /// Village code.
    pub village: Option<&'a str>,
    /// Grid code.
    pub grid: Option<&'a str>,
    /// Zone name.
    pub zone: Option<&'a str>,
    /// Codec.
    pub codec: &'a str,
    /// Volume.
    pub volume: Option<u8>,
    /// Login user name.
    pub username: Option<&'a str>,
    /// Password; `None` keeps a stored one.
    pub password: Option<&'a Password>,
}

/// What [`Store::upsert_speakers`] writes: zones without a group, zones with
/// one (name, group, TTL), then the speakers.
#[derive(Debug, Clone, Default)]
pub struct SpeakerBatch<'a> {
    /// Zones to create if missing, without a group.
    pub zones: Vec<&'a str>,
    /// Zones to create or update with their multicast group and TTL.
    pub groups: Vec<(&'a str, SocketAddrV4, u8)>,
    /// The speakers.
    pub speakers: Vec<SpeakerWrite<'a>>,
}

impl Store {
    /// Writes a batch of zones and speakers in one transaction; returns
    /// (created, updated) speakers. Created and updated times are now.
    pub fn upsert_speakers(&self, b: &SpeakerBatch<'_>) -> Result<(usize, usize)> {
        let now = self.now_str();
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for z in &b.zones {
            tx.execute("INSERT OR IGNORE INTO speaker_zone (name) VALUES (?1)", [z])?;
        }
        for (name, group, ttl) in &b.groups {
            tx.execute(
                "INSERT INTO speaker_zone (name, group_addr, port, ttl) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(name) DO UPDATE SET group_addr = excluded.group_addr, port = excluded.port, ttl = excluded.ttl",
                params![name, group.ip().to_string(), group.port(), ttl],
            )?;
        }
        let (mut created, mut updated) = (0, 0);
        for s in &b.speakers {
            let id = s.id;
            let exists: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM speaker WHERE id = ?1)",
                [id],
                |r| r.get(0),
            )?;
            tx.execute(
                "INSERT INTO speaker (id, name, kind, address, village_code, grid_code, zone, codec, volume, username, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name, kind = excluded.kind, address = excluded.address,
                   village_code = excluded.village_code, grid_code = excluded.grid_code, zone = excluded.zone,
                   codec = excluded.codec, volume = excluded.volume, username = excluded.username,
                   updated_at = excluded.updated_at",
                params![
                    id,
                    s.name,
                    s.kind,
                    s.address.trim(),
                    s.village,
                    s.grid,
                    s.zone,
                    s.codec,
                    s.volume,
                    s.username,
                    now
                ],
            )?;
            if let Some(pw) = s.password {
                let sealed = self.key.seal(&format!("speaker:{id}"), pw);
                tx.execute(
                    "UPDATE speaker SET password_sealed = ?2 WHERE id = ?1",
                    params![id, sealed],
                )?;
            }
            if exists {
                updated += 1;
            } else {
                created += 1;
            }
        }
        tx.commit()?;
        Ok((created, updated))
    }

    /// Speaker rows by id; only `id` when given.
    pub fn speaker_rows(&self, id: Option<&str>) -> Result<Vec<SpeakerRow>> {
        let filter = if id.is_some() { "WHERE s.id = ?1" } else { "" };
        let sql = format!(
            "SELECT s.id, s.name, s.kind, s.address, s.village_code, s.grid_code, s.zone, z.group_addr, z.port, z.ttl,
                    s.codec, s.volume, s.username, s.password_sealed IS NOT NULL
             FROM speaker s LEFT JOIN speaker_zone z ON z.name = s.zone {filter} ORDER BY s.id"
        );
        let args: Vec<&dyn rusqlite::ToSql> = match &id {
            Some(id) => vec![id],
            None => Vec::new(),
        };
        let conn = self.conn();
        let mut st = conn.prepare(&sql)?;
        let rows = st.query_map(args.as_slice(), |r| {
            Ok(SpeakerRow {
                id: r.get(0)?,
                name: r.get(1)?,
                kind: r.get(2)?,
                address: r.get(3)?,
                village: r.get(4)?,
                grid: r.get(5)?,
                zone: r.get(6)?,
                group_addr: r.get(7)?,
                port: r.get(8)?,
                ttl: r.get(9)?,
                codec: r.get(10)?,
                volume: r.get(11)?,
                username: r.get(12)?,
                has_password: r.get(13)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
    }

    /// Every zone by name.
    pub fn speaker_zones(&self) -> Result<Vec<ZoneRow>> {
        let conn = self.conn();
        let mut st =
            conn.prepare("SELECT name, group_addr, port, ttl FROM speaker_zone ORDER BY name")?;
        let rows = st.query_map([], |r| {
            Ok(ZoneRow {
                name: r.get(0)?,
                group_addr: r.get(1)?,
                port: r.get(2)?,
                ttl: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
    }

    /// Removes a speaker; false if there was none.
    pub fn remove_speaker(&self, id: &str) -> Result<bool> {
        Ok(self
            .conn()
            .execute("DELETE FROM speaker WHERE id = ?1", [id])?
            > 0)
    }

    /// A speaker's username and sealed password, when it has both.
    fn speaker_sealed(&self, id: &str) -> Result<Option<(String, Vec<u8>)>> {
        let row: Option<(Option<String>, Option<Vec<u8>>)> = self
            .conn()
            .query_row(
                "SELECT username, password_sealed FROM speaker WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(match row {
            Some((Some(u), Some(s))) => Some((u, s)),
            _ => None,
        })
    }

    /// The login a driver uses for a speaker (the only place its password
    /// is opened). The outer error is the database's; the inner one the
    /// key's, so the caller can name the speaker in it.
    pub fn speaker_login(
        &self,
        id: &str,
    ) -> Result<std::result::Result<Option<Login>, super::SecretError>> {
        let Some((username, sealed)) = self.speaker_sealed(id)? else {
            return Ok(Ok(None));
        };
        Ok(self
            .key
            .open(&format!("speaker:{id}"), &sealed)
            .map(|password| {
                Some(Login {
                    username,
                    password,
                    source: "speaker".into(),
                })
            }))
    }
}
