//! The loudspeaker inventory: speakers (村村响 horns) with their village,
//! grid and zone, driver kind and address, codec, volume and login; multicast
//! zones with group address, port and TTL; CSV import for technicians.
//!
//! Tables live in the gateway's database under the `speakers` migration
//! component. Passwords are sealed with the store's credential key (bound to
//! `speaker:ID`), never returned by listings; [`Speakers::login_for`] is the
//! one place a driver gets the clear text.
//!
//! # CSV format
//!
//! UTF-8, comma-separated, RFC 4180 quoting, a header row naming the columns
//! (any order; unknown columns are refused; `#` lines are comments):
//!
//! | column | required | meaning |
//! |---|---|---|
//! | `id` | yes | our id, 1-64 of `a-z 0-9 - _`; re-importing an id updates it |
//! | `name` | no | display name, e.g. `东村村委会广场` |
//! | `kind` | yes | `rtp`, `rtp-multicast`, `sip`, `axis` or `cloud` |
//! | `address` | yes | `rtp`: `HOST:PORT`; `rtp-multicast`: `GROUP:PORT` (224.0.0.0/4); `sip`: `sip:USER@HOST[:PORT]`; `axis`: `HOST[:PORT]` or `http(s)://HOST[:PORT]`; `cloud`: the horn's device id |
//! | `village`, `grid` | no | codes from `[township]`; the grid must belong to the village |
//! | `zone` | for `rtp-multicast` | broadcast zone name (same rules as `id`) |
//! | `codec` | no | `pcmu` (default) or `pcma` |
//! | `volume` | no | 0-100 |
//! | `ttl` | no | multicast TTL 1-255 (default 1); only for `rtp-multicast` |
//! | `username`, `password` | no | the horn's login; an empty password keeps the stored one |
//!
//! All speakers of one multicast zone must agree on group, port and TTL.
//! The import is all-or-nothing; errors name the line and column.

pub mod uri;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

use anyhow::Context;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::config::Ident;
use crate::store::secrets::Password;
use crate::store::{Login, Store, StoreError, apply_migrations, fmt_time};

/// Migrations of the `speakers` component.
pub const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE speaker_zone (
    name TEXT PRIMARY KEY,
    group_addr TEXT,
    port INTEGER,
    ttl INTEGER
);
CREATE TABLE speaker (
    id TEXT PRIMARY KEY,
    name TEXT,
    kind TEXT NOT NULL,
    address TEXT NOT NULL,
    village_code TEXT REFERENCES village(code) ON DELETE SET NULL,
    grid_code TEXT REFERENCES grid(code) ON DELETE SET NULL,
    zone TEXT REFERENCES speaker_zone(name) ON DELETE SET NULL,
    codec TEXT NOT NULL DEFAULT 'pcmu',
    volume INTEGER,
    username TEXT,
    password_sealed BLOB,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX speaker_village ON speaker(village_code, grid_code);
CREATE INDEX speaker_zone_idx ON speaker(zone);
"#];

/// How the gateway drives a horn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriverKind {
    /// Unicast RTP (G.711).
    Rtp,
    /// RTP to a multicast group shared by a zone.
    RtpMulticast,
    /// SIP paging with auto-answer.
    Sip,
    /// Axis VAPIX-style HTTP audio transmit.
    Axis,
    /// 4G/cloud horn commanded over MQTT, fetching audio by URL.
    Cloud,
}

impl DriverKind {
    /// Every kind, as written in CSV and the database.
    pub const ALL: [DriverKind; 5] = [
        DriverKind::Rtp,
        DriverKind::RtpMulticast,
        DriverKind::Sip,
        DriverKind::Axis,
        DriverKind::Cloud,
    ];

    /// The name used in CSV and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            DriverKind::Rtp => "rtp",
            DriverKind::RtpMulticast => "rtp-multicast",
            DriverKind::Sip => "sip",
            DriverKind::Axis => "axis",
            DriverKind::Cloud => "cloud",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                format!("`{s}` is not a driver kind: use rtp, rtp-multicast, sip, axis or cloud")
            })
    }
}

impl fmt::Display for DriverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// G.711 law a horn takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// µ-law (PT 0).
    Pcmu,
    /// A-law (PT 8).
    Pcma,
}

impl Codec {
    /// `pcmu` or `pcma`.
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::Pcmu => "pcmu",
            Codec::Pcma => "pcma",
        }
    }
    /// Parses `pcmu`/`pcma` (also `ulaw`, `alaw`).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pcmu" | "ulaw" | "mulaw" => Ok(Codec::Pcmu),
            "pcma" | "alaw" => Ok(Codec::Pcma),
            _ => Err(format!("`{s}` is not a codec: use pcmu or pcma")),
        }
    }
}

/// A multicast zone's group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Multicast {
    /// Group address and port.
    pub group: SocketAddrV4,
    /// IP TTL (1 = the local subnet only).
    pub ttl: u8,
}

/// A speaker as listed (never with its password).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Speaker {
    /// Our id.
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// Driver kind.
    pub kind: DriverKind,
    /// Address in the kind's form (see the module docs).
    pub address: String,
    /// Village code.
    pub village: Option<String>,
    /// Grid code.
    pub grid: Option<String>,
    /// Broadcast zone.
    pub zone: Option<String>,
    /// The zone's multicast group, when it has one.
    pub multicast: Option<Multicast>,
    /// Codec.
    pub codec: Codec,
    /// Volume 0-100, if set.
    pub volume: Option<u8>,
    /// Login user name, if any.
    pub username: Option<String>,
    /// Whether a password is stored (the password itself never is returned).
    pub has_password: bool,
}

impl Speaker {
    /// What the timetable needs to resolve targets to this horn.
    pub fn horn_info(&self) -> tgw_core::schedule::HornInfo {
        tgw_core::schedule::HornInfo {
            id: self.id.clone(),
            village: self.village.clone(),
            grid: self.grid.clone(),
            zone: self.zone.clone(),
        }
    }
}

/// A speaker to create or update.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSpeaker {
    /// Our id.
    pub id: Ident,
    /// Display name.
    pub name: Option<String>,
    /// Driver kind.
    pub kind: DriverKind,
    /// Address (validated for the kind by [`check_address`]).
    pub address: String,
    /// Village code.
    pub village: Option<String>,
    /// Grid code.
    pub grid: Option<String>,
    /// Zone name.
    pub zone: Option<Ident>,
    /// Codec.
    pub codec: Codec,
    /// Volume 0-100.
    pub volume: Option<u8>,
    /// Multicast TTL (only `rtp-multicast`).
    pub ttl: Option<u8>,
    /// Login user name.
    pub username: Option<String>,
    /// Password; `None` keeps a stored one.
    pub password: Option<Password>,
}

/// Checks an address for a driver kind; returns the multicast group for
/// `rtp-multicast`.
pub fn check_address(kind: DriverKind, a: &str) -> Result<Option<SocketAddrV4>, String> {
    let a = a.trim();
    if a.is_empty() {
        return Err("the address is empty".into());
    }
    if a.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{a}` contains spaces or control characters"));
    }
    let sock = |a: &str| -> Result<SocketAddrV4, String> {
        let s: SocketAddrV4 = a
            .parse()
            .map_err(|_| format!("`{a}` is not IPv4 HOST:PORT such as 10.21.3.40:5004"))?;
        if s.port() == 0 {
            return Err(format!("`{a}`: port 0"));
        }
        Ok(s)
    };
    match kind {
        DriverKind::Rtp => {
            let s = sock(a)?;
            if s.ip().is_multicast() || s.ip().is_unspecified() || s.ip().is_broadcast() {
                return Err(format!(
                    "`{a}` is not a unicast address (use kind rtp-multicast for groups)"
                ));
            }
            Ok(None)
        }
        DriverKind::RtpMulticast => {
            let s = sock(a)?;
            if !s.ip().is_multicast() {
                return Err(format!("`{a}` is not a multicast group (224.0.0.0/4)"));
            }
            Ok(Some(s))
        }
        DriverKind::Sip => {
            let rest = a.strip_prefix("sip:").ok_or_else(|| {
                format!("`{a}` is not a SIP URI such as sip:horn@10.21.3.41:5060")
            })?;
            let (user, host) = rest
                .split_once('@')
                .ok_or_else(|| format!("`{a}`: a SIP URI needs USER@HOST"))?;
            if user.is_empty() || host.is_empty() {
                return Err(format!("`{a}`: a SIP URI needs USER@HOST"));
            }
            let url =
                url::Url::parse(&format!("sip://{host}")).map_err(|e| format!("`{a}`: {e}"))?;
            if url.host_str().is_none_or(str::is_empty) || url.path().len() > 1 {
                return Err(format!("`{a}`: bad host part `{host}`"));
            }
            Ok(None)
        }
        DriverKind::Axis => {
            let full = if a.contains("://") {
                a.to_string()
            } else {
                format!("http://{a}")
            };
            let url = url::Url::parse(&full).map_err(|e| format!("`{a}`: {e}"))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(format!("`{a}`: use http:// or https://"));
            }
            if url.host_str().is_none_or(str::is_empty) {
                return Err(format!("`{a}`: no host"));
            }
            if !url.username().is_empty() || url.password().is_some() {
                return Err(format!(
                    "`{a}`: put the login in the username/password columns, not the address"
                ));
            }
            Ok(None)
        }
        DriverKind::Cloud => {
            if a.len() > 128 || a.contains(['+', '#', '/']) {
                return Err(format!(
                    "`{a}` is not a cloud horn id (1-128 characters, no `+ # /`)"
                ));
            }
            Ok(None)
        }
    }
}

/// What a technician gives when adopting a discovered speaker
/// ([`Speakers::adopt_discovered`]).
#[derive(Debug, Clone, Default)]
pub struct AdoptSpeaker {
    /// Village code.
    pub village: Option<String>,
    /// Grid code (implies the village).
    pub grid: Option<String>,
    /// Broadcast zone.
    pub zone: Option<Ident>,
    /// Driver kind instead of the one discovery inferred.
    pub driver: Option<DriverKind>,
    /// Address instead of the one discovery inferred.
    pub address: Option<String>,
    /// The horn's login.
    pub login: Option<(String, Password)>,
}

/// The result of a CSV import.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImportReport {
    /// Speakers created.
    pub created: usize,
    /// Speakers updated.
    pub updated: usize,
    /// Multicast zones created or updated.
    pub zones: usize,
}

/// The speaker inventory, in the gateway's store.
#[derive(Clone)]
pub struct Speakers {
    store: Store,
}

impl Speakers {
    /// Applies the `speakers` migrations and returns the inventory.
    pub fn open(store: &Store) -> anyhow::Result<Self> {
        store.with_conn(|c| apply_migrations(c, "speakers", MIGRATIONS))?;
        Ok(Self {
            store: store.clone(),
        })
    }

    /// Every speaker as the timetable sees it (id, village, grid, zone), to
    /// resolve broadcast targets.
    pub fn horn_infos(&self) -> anyhow::Result<Vec<tgw_core::schedule::HornInfo>> {
        Ok(self.list()?.iter().map(Speaker::horn_info).collect())
    }

    /// Creates or updates speakers and their zones in one transaction.
    /// Returns (created, updated, zones touched).
    pub fn upsert(&self, list: &[NewSpeaker]) -> anyhow::Result<ImportReport> {
        Ok(self.upsert_rows(list)?)
    }

    /// Adopts a speaker waiting in the discovery inbox: the device row is
    /// adopted into `a.village` / `a.grid` (checked as for cameras) and an
    /// entry with the same id is created in (or updated in) the speaker
    /// inventory, with the driver kind and address discovery recorded (or
    /// `a.driver` / `a.address` when given), the zone if given, and the
    /// login if given. An existing entry keeps its name, codec, volume and
    /// login unless new ones are given. Nothing changes when the driver or
    /// address is unknown or invalid: the error says which.
    pub fn adopt_discovered(&self, id: &str, a: &AdoptSpeaker) -> Result<Speaker, StoreError> {
        let dev = self.store.device(id)?.ok_or_else(|| StoreError::NotFound {
            what: "device",
            id: id.into(),
        })?;
        if dev.kind != "speaker" {
            return Err(StoreError::Invalid(format!(
                "`{id}` is a {}, not a speaker",
                dev.kind
            )));
        }
        let discovered = dev
            .driver
            .as_deref()
            .map(DriverKind::parse)
            .transpose()
            .map_err(StoreError::Invalid)?;
        let via = dev.via.as_deref().unwrap_or("discovery");
        let kind = a.driver.or(discovered).ok_or_else(|| {
            StoreError::Invalid(format!(
                "speaker `{id}`: {via} did not tell how to drive it; give `driver` and `address`"
            ))
        })?;
        let address = match (&a.address, discovered == Some(kind)) {
            (Some(addr), _) => addr.clone(),
            (None, true) => dev.driver_address.clone().unwrap_or_default(),
            (None, false) => String::new(),
        };
        if address.is_empty() {
            return Err(StoreError::Invalid(format!(
                "speaker `{id}`: no {kind} address known from {via}; give `address`"
            )));
        }
        check_address(kind, &address)
            .map_err(|e| StoreError::Invalid(format!("speaker `{id}`: address {e}")))?;
        if kind == DriverKind::RtpMulticast && a.zone.is_none() {
            return Err(StoreError::Invalid(format!(
                "speaker `{id}`: an rtp-multicast speaker needs a zone"
            )));
        }
        let ident = Ident::parse(id).map_err(StoreError::Invalid)?;
        self.store
            .adopt(id, a.village.as_deref(), a.grid.as_deref())?;
        let placed = self.store.device(id)?;
        let old = self
            .get(id)
            .map_err(|e| StoreError::Invalid(format!("{e:#}")))?;
        let (username, password) = match &a.login {
            Some((u, p)) => (Some(u.clone()), Some(p.clone())),
            None => (old.as_ref().and_then(|o| o.username.clone()), None),
        };
        let new = NewSpeaker {
            id: ident,
            name: old
                .as_ref()
                .and_then(|o| o.name.clone())
                .or_else(|| dev.name.clone())
                .or_else(|| dev.model.clone()),
            kind,
            address,
            village: placed.as_ref().and_then(|d| d.village.clone()),
            grid: placed.as_ref().and_then(|d| d.grid.clone()),
            zone: a.zone.clone().or_else(|| {
                old.as_ref()
                    .and_then(|o| o.zone.as_deref())
                    .and_then(|z| Ident::parse(z).ok())
            }),
            codec: old.as_ref().map_or(Codec::Pcmu, |o| o.codec),
            volume: old.as_ref().and_then(|o| o.volume),
            ttl: old.as_ref().and_then(|o| o.multicast).map(|m| m.ttl),
            username,
            password,
        };
        self.upsert_rows(std::slice::from_ref(&new))?;
        self.get(id)
            .map_err(|e| StoreError::Invalid(format!("{e:#}")))?
            .ok_or_else(|| StoreError::NotFound {
                what: "speaker",
                id: id.into(),
            })
    }

    fn upsert_rows(&self, list: &[NewSpeaker]) -> Result<ImportReport, StoreError> {
        let key = self.store.secret_key();
        let now = fmt_time(time::OffsetDateTime::now_utc());
        let mut report = ImportReport::default();
        self.store.with_conn(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut zones = BTreeMap::new();
            for s in list {
                let group = check_address(s.kind, &s.address).map_err(crate::store::StoreError::Invalid)?;
                if let (Some(g), Some(z)) = (group, &s.zone) {
                    zones.insert(z.as_str().to_string(), Multicast { group: g, ttl: s.ttl.unwrap_or(1) });
                } else if let Some(z) = &s.zone {
                    tx.execute("INSERT OR IGNORE INTO speaker_zone (name) VALUES (?1)", [z.as_str()])?;
                }
            }
            for (name, m) in &zones {
                tx.execute(
                    "INSERT INTO speaker_zone (name, group_addr, port, ttl) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(name) DO UPDATE SET group_addr = excluded.group_addr, port = excluded.port, ttl = excluded.ttl",
                    params![name, m.group.ip().to_string(), m.group.port(), m.ttl],
                )?;
            }
            report.zones = zones.len();
            for s in list {
                let id = s.id.as_str();
                let exists: bool = tx.query_row("SELECT EXISTS(SELECT 1 FROM speaker WHERE id = ?1)", [id], |r| r.get(0))?;
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
                        s.kind.as_str(),
                        s.address.trim(),
                        s.village,
                        s.grid,
                        s.zone.as_ref().map(Ident::as_str),
                        s.codec.as_str(),
                        s.volume,
                        s.username,
                        now
                    ],
                )?;
                if let Some(pw) = &s.password {
                    let sealed = key.seal(&format!("speaker:{id}"), pw);
                    tx.execute("UPDATE speaker SET password_sealed = ?2 WHERE id = ?1", params![id, sealed])?;
                }
                if exists {
                    report.updated += 1;
                } else {
                    report.created += 1;
                }
            }
            tx.commit()?;
            Ok(())
        })?;
        Ok(report)
    }

    /// Every speaker, by id.
    pub fn list(&self) -> anyhow::Result<Vec<Speaker>> {
        self.query("", &[])
    }

    /// One speaker.
    pub fn get(&self, id: &str) -> anyhow::Result<Option<Speaker>> {
        Ok(self.query("WHERE s.id = ?1", &[&id])?.pop())
    }

    /// Every zone with its multicast group, if it has one.
    pub fn zones(&self) -> anyhow::Result<Vec<(String, Option<Multicast>)>> {
        Ok(self.store.with_conn(|c| {
            let mut st =
                c.prepare("SELECT name, group_addr, port, ttl FROM speaker_zone ORDER BY name")?;
            let rows = st.query_map([], |r| {
                Ok((r.get(0)?, multicast(r.get(1)?, r.get(2)?, r.get(3)?)))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?)
    }

    /// Removes a speaker; false if there was none.
    pub fn remove(&self, id: &str) -> anyhow::Result<bool> {
        Ok(self
            .store
            .with_conn(|c| Ok(c.execute("DELETE FROM speaker WHERE id = ?1", [id])? > 0))?)
    }

    /// The login a driver uses for a speaker (the only place the password
    /// is opened).
    pub fn login_for(&self, id: &str) -> anyhow::Result<Option<Login>> {
        let row: Option<(Option<String>, Option<Vec<u8>>)> = self.store.with_conn(|c| {
            Ok(c.query_row(
                "SELECT username, password_sealed FROM speaker WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
        })?;
        let Some((Some(username), Some(sealed))) = row else {
            return Ok(None);
        };
        let password = self
            .store
            .secret_key()
            .open(&format!("speaker:{id}"), &sealed)
            .with_context(|| format!("speaker {id}"))?;
        Ok(Some(Login {
            username,
            password,
            source: "speaker".into(),
        }))
    }

    fn query(&self, filter: &str, args: &[&dyn rusqlite::ToSql]) -> anyhow::Result<Vec<Speaker>> {
        let sql = format!(
            "SELECT s.id, s.name, s.kind, s.address, s.village_code, s.grid_code, s.zone, z.group_addr, z.port, z.ttl,
                    s.codec, s.volume, s.username, s.password_sealed IS NOT NULL
             FROM speaker s LEFT JOIN speaker_zone z ON z.name = s.zone {filter} ORDER BY s.id"
        );
        let rows: Vec<(Speaker, String, String)> = self.store.with_conn(|c| {
            let mut st = c.prepare(&sql)?;
            let rows = st.query_map(args, |r| {
                let kind: String = r.get(2)?;
                let codec: String = r.get(10)?;
                Ok((
                    Speaker {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        kind: DriverKind::Rtp,
                        address: r.get(3)?,
                        village: r.get(4)?,
                        grid: r.get(5)?,
                        zone: r.get(6)?,
                        multicast: multicast(r.get(7)?, r.get(8)?, r.get(9)?),
                        codec: Codec::Pcmu,
                        volume: r.get(11)?,
                        username: r.get(12)?,
                        has_password: r.get(13)?,
                    },
                    kind,
                    codec,
                ))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        rows.into_iter()
            .map(|(mut s, kind, codec)| {
                s.kind = DriverKind::parse(&kind)
                    .map_err(|e| anyhow::anyhow!("speaker {}: column kind: {e}", s.id))?;
                s.codec = Codec::parse(&codec)
                    .map_err(|e| anyhow::anyhow!("speaker {}: column codec: {e}", s.id))?;
                Ok(s)
            })
            .collect()
    }

    /// Parses and validates a CSV (see the module docs) against the
    /// township in the store, then upserts it all in one transaction.
    /// `origin` names the file in errors.
    pub fn import_csv(&self, text: &str, origin: &str) -> anyhow::Result<ImportReport> {
        let (villages, grids) = self.store.with_conn(|c| {
            let v: Vec<String> = c
                .prepare("SELECT code FROM village")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let g: Vec<(String, String)> = c
                .prepare("SELECT code, village_code FROM grid")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            Ok((v, g))
        })?;
        let township = Township {
            villages,
            grids: grids.into_iter().collect(),
        };
        let list = parse_csv(text, &township).map_err(|errs| {
            let n = errs.len();
            let shown: Vec<String> = errs
                .iter()
                .take(20)
                .map(|e| format!("{origin}: {e}"))
                .collect();
            anyhow::anyhow!(
                "{}{}",
                shown.join("\n"),
                if n > 20 {
                    format!("\n… and {} more", n - 20)
                } else {
                    String::new()
                }
            )
        })?;
        self.upsert(&list)
    }
}

fn multicast(addr: Option<String>, port: Option<u16>, ttl: Option<u8>) -> Option<Multicast> {
    let ip: Ipv4Addr = addr?.parse().ok()?;
    Some(Multicast {
        group: SocketAddrV4::new(ip, port?),
        ttl: ttl.unwrap_or(1),
    })
}

/// The villages and grids a CSV may name.
#[derive(Debug, Clone, Default)]
pub struct Township {
    /// Village codes.
    pub villages: Vec<String>,
    /// Grid code → its village code.
    pub grids: BTreeMap<String, String>,
}

/// One CSV error: where and what.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvError {
    /// 1-based line of the record (its first line, for quoted newlines).
    pub line: usize,
    /// The column, if the error is about one field.
    pub column: Option<String>,
    /// What is wrong.
    pub msg: String,
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(c) => write!(f, "line {}, column `{c}`: {}", self.line, self.msg),
            None => write!(f, "line {}: {}", self.line, self.msg),
        }
    }
}

/// Splits CSV text into records (RFC 4180: `"` quoting with `""` escapes,
/// CRLF or LF), each with the line it starts on. Blank lines and lines
/// starting with `#` are skipped.
pub fn csv_records(text: &str) -> Result<Vec<(usize, Vec<String>)>, CsvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let mut line = 1usize;
    let mut chars = text.chars().peekable();
    while chars.peek().is_some() {
        let start = line;
        // Comments and blank lines.
        if matches!(chars.peek(), Some('#' | '\n' | '\r')) {
            for c in chars.by_ref() {
                if c == '\n' {
                    line += 1;
                    break;
                }
            }
            continue;
        }
        let mut rec = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut was_quoted = false;
        loop {
            let Some(c) = chars.next() else {
                if quoted {
                    return Err(CsvError {
                        line: start,
                        column: None,
                        msg: "a quoted field is not closed".into(),
                    });
                }
                rec.push(std::mem::take(&mut field));
                break;
            };
            if quoted {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => quoted = false,
                    '\n' => {
                        line += 1;
                        field.push('\n');
                    }
                    c => field.push(c),
                }
                continue;
            }
            match c {
                '"' if field.trim().is_empty() && !was_quoted => {
                    field.clear();
                    quoted = true;
                    was_quoted = true;
                }
                '"' => {
                    return Err(CsvError {
                        line,
                        column: None,
                        msg: format!(
                            "stray `\"` in field {} (quote the whole field)",
                            rec.len() + 1
                        ),
                    });
                }
                ',' => {
                    rec.push(std::mem::take(&mut field));
                    was_quoted = false;
                }
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' => {
                    line += 1;
                    rec.push(std::mem::take(&mut field));
                    break;
                }
                c => field.push(c),
            }
        }
        out.push((start, rec));
    }
    Ok(out)
}

const COLUMNS: &[&str] = &[
    "id", "name", "kind", "address", "village", "grid", "zone", "codec", "volume", "ttl",
    "username", "password",
];

/// Parses and validates speaker CSV. Returns every error found (not just
/// the first), each naming its line and column.
pub fn parse_csv(text: &str, township: &Township) -> Result<Vec<NewSpeaker>, Vec<CsvError>> {
    let records = csv_records(text).map_err(|e| vec![e])?;
    let mut it = records.into_iter();
    let Some((hline, header)) = it.next() else {
        return Err(vec![CsvError {
            line: 1,
            column: None,
            msg: format!("no header row; expected columns: {}", COLUMNS.join(",")),
        }]);
    };
    let header: Vec<String> = header
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let mut errs = Vec::new();
    for (i, h) in header.iter().enumerate() {
        if !COLUMNS.contains(&h.as_str()) {
            errs.push(CsvError {
                line: hline,
                column: Some(h.clone()),
                msg: format!("unknown column (known: {})", COLUMNS.join(",")),
            });
        } else if header[..i].contains(h) {
            errs.push(CsvError {
                line: hline,
                column: Some(h.clone()),
                msg: "column given twice".into(),
            });
        }
    }
    for req in ["id", "kind", "address"] {
        if !header.iter().any(|h| h == req) {
            errs.push(CsvError {
                line: hline,
                column: Some(req.into()),
                msg: "required column missing from the header".into(),
            });
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    let mut out = Vec::new();
    let mut ids: BTreeMap<String, usize> = BTreeMap::new();
    let mut zones: BTreeMap<String, (usize, Multicast)> = BTreeMap::new();
    for (line, rec) in it {
        if rec.len() != header.len() {
            errs.push(CsvError {
                line,
                column: None,
                msg: format!("{} fields, the header has {}", rec.len(), header.len()),
            });
            continue;
        }
        let get = |name: &str| -> Option<&str> {
            header
                .iter()
                .position(|h| h == name)
                .map(|i| rec[i].trim())
                .filter(|v| !v.is_empty())
        };
        let mut bad = |column: &str, msg: String| {
            errs.push(CsvError {
                line,
                column: Some(column.into()),
                msg,
            })
        };
        let id = match get("id").map(Ident::parse) {
            Some(Ok(id)) => Some(id),
            Some(Err(e)) => {
                bad("id", e);
                None
            }
            None => {
                bad("id", "required".into());
                None
            }
        };
        if let Some(id) = &id
            && let Some(first) = ids.insert(id.as_str().to_string(), line)
        {
            bad("id", format!("`{id}` is already used on line {first}"));
        }
        let kind = match get("kind").map(DriverKind::parse) {
            Some(Ok(k)) => Some(k),
            Some(Err(e)) => {
                bad("kind", e);
                None
            }
            None => {
                bad("kind", "required".into());
                None
            }
        };
        let address = get("address").unwrap_or_default().to_string();
        let mut group = None;
        if let Some(k) = kind {
            match check_address(k, &address) {
                Ok(g) => group = g,
                Err(e) => bad("address", e),
            }
        }
        let village = get("village").map(str::to_string);
        if let Some(v) = &village
            && !township.villages.contains(v)
        {
            bad("village", format!("no village `{v}` in [township]"));
        }
        let grid = get("grid").map(str::to_string);
        if let Some(g) = &grid {
            match township.grids.get(g) {
                None => bad("grid", format!("no grid `{g}` in [township]")),
                Some(gv) if village.as_ref().is_some_and(|v| v != gv) => bad(
                    "grid",
                    format!(
                        "grid `{g}` belongs to village `{gv}`, not `{}`",
                        village.as_deref().unwrap_or_default()
                    ),
                ),
                Some(_) => {}
            }
        }
        // A grid implies its village.
        let village =
            village.or_else(|| grid.as_ref().and_then(|g| township.grids.get(g).cloned()));
        let zone = match get("zone").map(Ident::parse) {
            Some(Ok(z)) => Some(z),
            Some(Err(e)) => {
                bad("zone", e);
                None
            }
            None => None,
        };
        let codec = match get("codec").map(Codec::parse) {
            Some(Ok(c)) => c,
            Some(Err(e)) => {
                bad("codec", e);
                Codec::Pcmu
            }
            None => Codec::Pcmu,
        };
        let volume = match get("volume").map(|v| v.parse::<u8>().ok().filter(|v| *v <= 100)) {
            Some(Some(v)) => Some(v),
            Some(None) => {
                bad(
                    "volume",
                    format!(
                        "`{}` is not a volume 0-100",
                        get("volume").unwrap_or_default()
                    ),
                );
                None
            }
            None => None,
        };
        let ttl = match get("ttl").map(|v| v.parse::<u8>().ok().filter(|v| *v >= 1)) {
            Some(Some(v)) => Some(v),
            Some(None) => {
                bad(
                    "ttl",
                    format!("`{}` is not a TTL 1-255", get("ttl").unwrap_or_default()),
                );
                None
            }
            None => None,
        };
        if ttl.is_some() && kind.is_some_and(|k| k != DriverKind::RtpMulticast) {
            bad("ttl", "only rtp-multicast speakers have a TTL".into());
        }
        if kind == Some(DriverKind::RtpMulticast) {
            match (&zone, group) {
                (None, _) => bad("zone", "an rtp-multicast speaker needs a zone".into()),
                (Some(z), Some(g)) => {
                    let m = Multicast {
                        group: g,
                        ttl: ttl.unwrap_or(1),
                    };
                    match zones.get(z.as_str()) {
                        Some((first, prev)) if *prev != m => bad(
                            "address",
                            format!(
                                "zone `{z}` is {} ttl {} on line {first}, here {} ttl {}",
                                prev.group, prev.ttl, m.group, m.ttl
                            ),
                        ),
                        Some(_) => {}
                        None => {
                            zones.insert(z.as_str().to_string(), (line, m));
                        }
                    }
                }
                _ => {}
            }
        }
        let username = get("username").map(str::to_string);
        let password = get("password").map(Password::new);
        if password.is_some() && username.is_none() {
            bad("password", "a password needs a username".into());
        }
        if let (Some(id), Some(kind)) = (id, kind) {
            out.push(NewSpeaker {
                id,
                name: get("name").map(str::to_string),
                kind,
                address: address.trim().to_string(),
                village,
                grid,
                zone,
                codec,
                volume,
                ttl,
                username,
                password,
            });
        }
    }
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn store() -> (tempfile::TempDir, Speakers) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let cfg = Config::parse(include_str!("../../../config/gateway.example.toml"), "x").unwrap();
        s.sync_township(&cfg.township).unwrap();
        let sp = Speakers::open(&s).unwrap();
        (dir, sp)
    }

    const EXAMPLE: &str = include_str!("../../../config/speakers.example.csv");

    /// The example CSV imports; passwords are sealed, not listed, and
    /// re-import updates instead of duplicating.
    #[test]
    fn example_csv_imports_and_reimports() {
        let (dir, sp) = store();
        let r = sp.import_csv(EXAMPLE, "speakers.example.csv").unwrap();
        assert!(r.created >= 5 && r.updated == 0 && r.zones >= 1, "{r:?}");
        let list = sp.list().unwrap();
        assert_eq!(list.len(), r.created);
        let kinds: std::collections::BTreeSet<_> = list.iter().map(|s| s.kind).collect();
        assert_eq!(kinds.len(), 5, "every driver kind in the example");
        let m = list
            .iter()
            .find(|s| s.kind == DriverKind::RtpMulticast)
            .unwrap();
        assert!(m.multicast.unwrap().group.ip().is_multicast());
        let json = serde_json::to_string(&list).unwrap();
        assert!(!json.contains("horn-secret"), "{json}");
        let sip = list.iter().find(|s| s.kind == DriverKind::Sip).unwrap();
        assert!(sip.has_password);
        assert_eq!(
            sp.login_for(&sip.id).unwrap().unwrap().password.expose(),
            "horn-secret"
        );
        // The sealed password is not in the database file in clear.
        drop(sp);
        let db = std::fs::read(dir.path().join("tgw.db")).unwrap();
        let wal = std::fs::read(dir.path().join("tgw.db-wal")).unwrap_or_default();
        assert!(
            !db.windows(11)
                .chain(wal.windows(11))
                .any(|w| w == b"horn-secret")
        );
        let s = Store::open(dir.path()).unwrap();
        let sp = Speakers::open(&s).unwrap();
        let r2 = sp.import_csv(EXAMPLE, "x").unwrap();
        assert_eq!((r2.created, r2.updated), (0, r.created));
        // An empty password keeps the stored one.
        let csv = format!(
            "id,kind,address,username\n{},sip,{},admin\n",
            sip.id, sip.address
        );
        sp.import_csv(&csv, "x").unwrap();
        assert_eq!(
            sp.login_for(&sip.id).unwrap().unwrap().password.expose(),
            "horn-secret"
        );
        assert!(sp.remove(&sip.id).unwrap());
        assert!(sp.get(&sip.id).unwrap().is_none());
    }

    /// Errors name the line and the column; all of them are reported and
    /// nothing is imported.
    #[test]
    fn bad_rows_name_line_and_column() {
        let (_d, sp) = store();
        let csv = "id,kind,address,village,grid,zone,volume,ttl,username,password\n\
                   h1,rtp,10.0.0.1:5004,,,,,,,\n\
                   # a comment\n\
                   H 2,rtp,10.0.0.2:5004,,,,,,,\n\
                   h3,rtp,10.0.0.3,,,,,,,\n\
                   h4,horn,10.0.0.4:1,,,,,,,\n\
                   h5,rtp,10.0.0.5:1,nowhere,,,,,,\n\
                   h6,rtp,10.0.0.6:1,,,,101,,,\n\
                   h7,rtp-multicast,239.1.1.1:5004,,,,,2,,\n\
                   h8,rtp-multicast,239.1.1.1:5004,,,z1,,2,,\n\
                   h9,rtp-multicast,239.1.1.2:5004,,,z1,,2,,\n\
                   h1,rtp,10.0.0.9:5004,,,,,,,\n\
                   h10,rtp,10.0.0.10:5004,,,,,,,pw\n\
                   h11,sip,10.0.0.11,,,,,,,\n\
                   h12,rtp,224.0.0.1:5004,,,,,,,\n";
        let e = sp.import_csv(csv, "s.csv").unwrap_err().to_string();
        for want in [
            "s.csv: line 4, column `id`",
            "s.csv: line 5, column `address`",
            "line 6, column `kind`: `horn` is not a driver kind",
            "line 7, column `village`: no village `nowhere`",
            "line 8, column `volume`",
            "line 9, column `zone`: an rtp-multicast speaker needs a zone",
            "line 11, column `address`: zone `z1` is 239.1.1.1:5004 ttl 2 on line 10",
            "line 12, column `id`: `h1` is already used on line 2",
            "line 13, column `password`: a password needs a username",
            "line 14, column `address`",
            "line 15, column `address`",
        ] {
            assert!(e.contains(want), "missing `{want}` in:\n{e}");
        }
        assert!(sp.list().unwrap().is_empty(), "all-or-nothing");
    }

    /// Adopting a discovered speaker creates its inventory entry from the
    /// sighting's driver; adopting it again (moved, new zone) updates the
    /// entry and keeps what the CSV set (volume, codec, login). Unknown
    /// places and bad override addresses change nothing.
    #[test]
    fn adopting_a_discovered_speaker_creates_then_updates() {
        let (_d, sp) = store();
        let st = &sp.store;
        let id = st
            .record_speaker_sighting(
                "mdns:H._rtp-horn._udp.local",
                Some([10, 21, 3, 60].into()),
                None,
                Some("H"),
                "mdns",
                Some(("rtp", "10.21.3.60:5004")),
            )
            .unwrap()
            .id;
        let a = AdoptSpeaker {
            village: Some("dongcun".into()),
            ..AdoptSpeaker::default()
        };
        let s = sp.adopt_discovered(&id, &a).unwrap();
        assert_eq!(
            (s.kind, s.address.as_str()),
            (DriverKind::Rtp, "10.21.3.60:5004")
        );
        assert_eq!(
            (s.village.as_deref(), s.grid.as_deref(), s.zone.as_deref()),
            (Some("dongcun"), None, None)
        );
        assert_eq!(s.name.as_deref(), Some("H"));
        // The CSV sets volume and codec; a second adoption moves it.
        sp.import_csv(
            &format!("id,kind,address,codec,volume\n{id},rtp,10.21.3.60:5004,pcma,70\n"),
            "x",
        )
        .unwrap();
        let grid = st
            .villages()
            .unwrap()
            .into_iter()
            .find(|v| v.code == "dongcun")
            .unwrap()
            .grids[0]
            .0
            .clone();
        let again = AdoptSpeaker {
            grid: Some(grid.clone()),
            zone: Some(Ident::parse("square").unwrap()),
            ..AdoptSpeaker::default()
        };
        let s = sp.adopt_discovered(&id, &again).unwrap();
        assert_eq!((s.codec, s.volume), (Codec::Pcma, Some(70)));
        assert_eq!(s.grid.as_deref(), Some(grid.as_str()));
        assert_eq!(s.village.as_deref(), Some("dongcun"), "implied by the grid");
        assert_eq!(s.zone.as_deref(), Some("square"));
        assert_eq!(sp.list().unwrap().len(), 1);
        let bad = AdoptSpeaker {
            village: Some("nowhere".into()),
            ..AdoptSpeaker::default()
        };
        assert!(matches!(
            sp.adopt_discovered(&id, &bad),
            Err(StoreError::NotFound {
                what: "village",
                ..
            })
        ));
        let bad = AdoptSpeaker {
            address: Some("239.1.1.1:5004".into()),
            ..AdoptSpeaker::default()
        };
        let e = sp.adopt_discovered(&id, &bad).unwrap_err().to_string();
        assert!(e.contains("not a unicast address"), "{e}");
        assert_eq!(sp.get(&id).unwrap().unwrap().address, "10.21.3.60:5004");
        assert!(matches!(
            sp.adopt_discovered("spk-none", &a),
            Err(StoreError::NotFound { .. })
        ));
    }

    #[test]
    fn header_problems() {
        let t = Township::default();
        let e = parse_csv("", &t).unwrap_err();
        assert!(e[0].msg.contains("no header"));
        let e = parse_csv("id,kind,adress\n", &t).unwrap_err();
        assert!(e.iter().any(|e| e.column.as_deref() == Some("adress")));
        assert!(e.iter().any(|e| e.column.as_deref() == Some("address")));
        let e = parse_csv("id,kind,address\nh1,rtp\n", &t).unwrap_err();
        assert_eq!(e[0].to_string(), "line 2: 2 fields, the header has 3");
    }

    #[test]
    fn grid_must_belong_to_its_village_and_implies_it() {
        let mut t = Township {
            villages: vec!["a".into(), "b".into()],
            ..Default::default()
        };
        t.grids.insert("a-1".into(), "a".into());
        let ok = parse_csv("id,kind,address,grid\nh,rtp,10.0.0.1:9,a-1\n", &t).unwrap();
        assert_eq!(ok[0].village.as_deref(), Some("a"));
        let e =
            parse_csv("id,kind,address,village,grid\nh,rtp,10.0.0.1:9,b,a-1\n", &t).unwrap_err();
        assert!(e[0].to_string().contains("belongs to village `a`"), "{e:?}");
    }

    #[test]
    fn csv_quoting() {
        let r = csv_records("a,\"b,\"\"c\"\"\",d\r\n\"x\ny\",z\n\n# c\nlast").unwrap();
        assert_eq!(r[0], (1, vec!["a".into(), "b,\"c\"".into(), "d".into()]));
        assert_eq!(r[1], (2, vec!["x\ny".into(), "z".into()]));
        assert_eq!(r[2], (6, vec!["last".into()]));
        assert!(csv_records("a,\"open").is_err());
        assert!(csv_records("a,b\"c").is_err());
    }

    #[test]
    fn addresses_per_kind() {
        use DriverKind::*;
        assert!(check_address(Rtp, "10.1.2.3:5004").is_ok());
        assert!(check_address(Rtp, "10.1.2.3:0").is_err());
        assert!(check_address(Rtp, "239.1.1.1:5004").is_err());
        assert!(check_address(RtpMulticast, "10.1.2.3:5004").is_err());
        assert!(check_address(Sip, "sip:horn@10.1.2.3:5060").is_ok());
        assert!(check_address(Sip, "sip:@10.1.2.3").is_err());
        assert!(check_address(Sip, "http://x").is_err());
        assert!(check_address(Axis, "10.1.2.3").is_ok());
        assert!(check_address(Axis, "https://10.1.2.3:8443").is_ok());
        assert!(check_address(Axis, "http://root:pw@10.1.2.3").is_err());
        assert!(check_address(Axis, "ftp://10.1.2.3").is_err());
        assert!(check_address(Cloud, "4g-horn-0012").is_ok());
        assert!(check_address(Cloud, "a/+/#").is_err());
        assert!(check_address(Cloud, "a b").is_err());
    }

    /// Arbitrary bytes never panic the CSV parser.
    #[test]
    fn csv_mutations_do_not_panic() {
        let t = Township::default();
        let base = EXAMPLE.as_bytes();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..500 {
            let mut b = base.to_vec();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x as usize) % b.len();
                b[i] = (x >> 32) as u8;
            }
            let _ = parse_csv(&String::from_utf8_lossy(&b), &t);
        }
    }
}
