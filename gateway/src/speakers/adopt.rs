//! Adopting a speaker from the discovery inbox into the speaker inventory.

use crate::config::Ident;
use crate::store::StoreError;

use super::{AdoptSpeaker, Codec, DriverKind, NewSpeaker, Speaker, Speakers, check_address};

impl Speakers {
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
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
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
        let ident = Ident::parse(id).map_err(|e| StoreError::Invalid(e.to_string()))?;
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
}
