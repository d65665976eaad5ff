//! The speaker inventory's types: driver kinds, codecs, multicast groups,
//! speakers as listed and as written, and the per-kind address check.

use std::fmt;
use std::net::SocketAddrV4;

use serde::Serialize;

use crate::base::error::{Error, Result};
use crate::config::Ident;
use crate::store::secrets::Password;

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
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "`{s}` is not a driver kind: use rtp, rtp-multicast, sip, axis or cloud"
                ))
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
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pcmu" | "ulaw" | "mulaw" => Ok(Codec::Pcmu),
            "pcma" | "alaw" => Ok(Codec::Pcma),
            _ => Err(Error::invalid(format!(
                "`{s}` is not a codec: use pcmu or pcma"
            ))),
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
pub fn check_address(kind: DriverKind, a: &str) -> Result<Option<SocketAddrV4>> {
    address_problem(kind, a).map_err(Error::invalid)
}

fn address_problem(kind: DriverKind, a: &str) -> std::result::Result<Option<SocketAddrV4>, String> {
    let a = a.trim();
    if a.is_empty() {
        return Err("the address is empty".into());
    }
    if a.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{a}` contains spaces or control characters"));
    }
    let sock = |a: &str| -> std::result::Result<SocketAddrV4, String> {
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
/// ([`super::Speakers::adopt_discovered`]).
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
