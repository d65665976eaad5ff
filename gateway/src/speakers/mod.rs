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
//!
//! | module | owns |
//! |---|---|
//! | `mod.rs` | [`Speakers`]: the inventory over the store (list, upsert, zones, logins, CSV import) |
//! | [`types`] | driver kinds, codecs, multicast groups, speakers as listed and written, [`check_address`] |
//! | [`adopt`] | adopting a discovered speaker from the inbox |
//! | [`csv`] | the CSV reader and its validation against the township |
//!
//! The SQL is [`crate::store::speakers`]'s.

pub mod adopt;
pub mod csv;
#[cfg(test)]
mod tests;
pub mod types;

pub mod uri;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use anyhow::Context;

use crate::config::Ident;
use crate::store::{Login, SpeakerBatch, SpeakerRow, SpeakerWrite, Store, StoreError};

pub use csv::{CsvError, Township, csv_records, parse_csv};
pub use types::{
    AdoptSpeaker, Codec, DriverKind, ImportReport, Multicast, NewSpeaker, Speaker, check_address,
};

/// Migrations of the `speakers` component (the SQL lives in the store).
pub use crate::store::SPEAKER_MIGRATIONS as MIGRATIONS;

/// The speaker inventory, in the gateway's store.
#[derive(Clone)]
pub struct Speakers {
    store: Store,
}

impl Speakers {
    /// Applies the `speakers` migrations and returns the inventory.
    pub fn open(store: &Store) -> anyhow::Result<Self> {
        store.migrate("speakers", MIGRATIONS)?;
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

    fn upsert_rows(&self, list: &[NewSpeaker]) -> Result<ImportReport, StoreError> {
        let mut batch = SpeakerBatch::default();
        let mut groups = BTreeMap::new();
        for s in list {
            let group = check_address(s.kind, &s.address)
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
            if let (Some(g), Some(z)) = (group, &s.zone) {
                groups.insert(z.as_str(), (g, s.ttl.unwrap_or(1)));
            } else if let Some(z) = &s.zone {
                batch.zones.push(z.as_str());
            }
        }
        batch.groups = groups.iter().map(|(z, (g, t))| (*z, *g, *t)).collect();
        batch.speakers = list
            .iter()
            .map(|s| SpeakerWrite {
                id: s.id.as_str(),
                name: s.name.as_deref(),
                kind: s.kind.as_str(),
                address: &s.address,
                village: s.village.as_deref(),
                grid: s.grid.as_deref(),
                zone: s.zone.as_ref().map(Ident::as_str),
                codec: s.codec.as_str(),
                volume: s.volume,
                username: s.username.as_deref(),
                password: s.password.as_ref(),
            })
            .collect();
        let (created, updated) = self.store.upsert_speakers(&batch)?;
        Ok(ImportReport {
            created,
            updated,
            zones: groups.len(),
        })
    }

    /// Every speaker, by id.
    pub fn list(&self) -> anyhow::Result<Vec<Speaker>> {
        self.query(None)
    }

    /// One speaker.
    pub fn get(&self, id: &str) -> anyhow::Result<Option<Speaker>> {
        Ok(self.query(Some(id))?.pop())
    }

    /// Every zone with its multicast group, if it has one.
    pub fn zones(&self) -> anyhow::Result<Vec<(String, Option<Multicast>)>> {
        Ok(self
            .store
            .speaker_zones()?
            .into_iter()
            .map(|z| (z.name, multicast(z.group_addr, z.port, z.ttl)))
            .collect())
    }

    /// Removes a speaker; false if there was none.
    pub fn remove(&self, id: &str) -> anyhow::Result<bool> {
        Ok(self.store.remove_speaker(id)?)
    }

    /// The login a driver uses for a speaker (the only place the password
    /// is opened).
    pub fn login_for(&self, id: &str) -> anyhow::Result<Option<Login>> {
        self.store
            .speaker_login(id)?
            .with_context(|| format!("speaker {id}"))
    }

    fn query(&self, id: Option<&str>) -> anyhow::Result<Vec<Speaker>> {
        self.store
            .speaker_rows(id)?
            .into_iter()
            .map(speaker_of)
            .collect()
    }

    /// Parses and validates a CSV (see the module docs) against the
    /// township in the store, then upserts it all in one transaction.
    /// `origin` names the file in errors.
    pub fn import_csv(&self, text: &str, origin: &str) -> anyhow::Result<ImportReport> {
        let (villages, grids) = self.store.place_codes()?;
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

fn speaker_of(r: SpeakerRow) -> anyhow::Result<Speaker> {
    let kind = DriverKind::parse(&r.kind)
        .map_err(|e| anyhow::anyhow!("speaker {}: column kind: {e}", r.id))?;
    let codec = Codec::parse(&r.codec)
        .map_err(|e| anyhow::anyhow!("speaker {}: column codec: {e}", r.id))?;
    Ok(Speaker {
        multicast: multicast(r.group_addr, r.port, r.ttl),
        id: r.id,
        name: r.name,
        kind,
        address: r.address,
        village: r.village,
        grid: r.grid,
        zone: r.zone,
        codec,
        volume: r.volume,
        username: r.username,
        has_password: r.has_password,
    })
}
