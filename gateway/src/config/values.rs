//! What the sections share: [`Ident`], range-checked deserialisers, IPv4
//! networks, MAC prefixes and the in-process `password_env` overrides.

use std::fmt;
use std::time::Duration;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};

/// An identifier: 1-64 of `[a-z0-9_-]`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Ident(pub String);

impl Ident {
    /// Validates an identifier.
    pub fn parse(s: &str) -> Result<Self> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            && s.as_bytes()[0].is_ascii_alphanumeric();
        if ok {
            Ok(Ident(s.to_string()))
        } else {
            Err(Error::invalid(format!(
                "`{s}` is not a valid identifier: use 1-64 characters of a-z, 0-9, '-' and '_'"
            )))
        }
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Ident {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ident::parse(&s).map_err(serde::de::Error::custom)
    }
}

pub(super) fn de_bounded<'de, D: serde::Deserializer<'de>>(
    d: D,
    min: u64,
    max: u64,
    what: &str,
) -> std::result::Result<u64, D::Error> {
    let v = u64::deserialize(d)?;
    if v < min || v > max {
        return Err(serde::de::Error::custom(format!(
            "{what} must be between {min} and {max}, got {v}"
        )));
    }
    Ok(v)
}

pub(super) fn de_secs_min10<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Duration, D::Error> {
    de_bounded(d, 10, 30 * 86_400, "seconds").map(Duration::from_secs)
}
pub(super) fn de_wait_ms<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Duration, D::Error> {
    de_bounded(d, 100, 60_000, "milliseconds").map(Duration::from_millis)
}
pub(super) fn de_repeats<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<u8, D::Error> {
    de_bounded(d, 1, 5, "probe_repeats").map(|v| v as u8)
}
pub(super) fn de_sweep_rate<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<u32, D::Error> {
    de_bounded(d, 100, 200_000, "sweep_rate").map(|v| v as u32)
}
pub(super) fn de_concurrency<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<usize, D::Error> {
    de_bounded(d, 1, 1024, "concurrency").map(|v| v as usize)
}

pub(super) fn de_cidrs<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<Ipv4Net>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    v.iter()
        .map(|s| parse_cidr(s).map_err(serde::de::Error::custom))
        .collect()
}

/// Parses an IPv4 network of at most a /16 (a sweep of more would take minutes).
pub fn parse_cidr(s: &str) -> Result<Ipv4Net> {
    let net: Ipv4Net = s.parse().map_err(|_| {
        Error::invalid(format!("`{s}` is not an IPv4 network such as 10.20.0.0/24"))
    })?;
    if net.prefix_len() < 16 {
        return Err(Error::invalid(format!(
            "`{s}` is larger than a /16; split it into /16s or smaller"
        )));
    }
    Ok(net.trunc())
}

pub(super) fn de_mac_prefixes<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    v.iter()
        .map(|s| normalise_mac_prefix(s).map_err(serde::de::Error::custom))
        .collect()
}

/// Normalises a MAC prefix (`44-19-B6`, `4419b6`) to `44:19:b6`.
pub fn normalise_mac_prefix(s: &str) -> Result<String> {
    let hex: String = s
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .collect();
    if hex.is_empty()
        || hex.len() > 12
        || !hex.len().is_multiple_of(2)
        || !hex.chars().all(|c| c.is_ascii_hexdigit())
    {
        return Err(Error::invalid(format!(
            "`{s}` is not a MAC prefix such as 44:19:b6"
        )));
    }
    let lower = hex.to_ascii_lowercase();
    Ok(lower
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(":"))
}

pub(super) fn yes() -> bool {
    true
}

static ENV_OVERRIDES: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// Supplies a value for a `password_env` variable inside this process
/// (used by `tgw demo`, which may not modify its own environment: the
/// workspace forbids `unsafe`, and `std::env::set_var` is unsafe).
pub fn set_env_override(key: &str, value: &str) {
    let mut v = ENV_OVERRIDES.lock().unwrap_or_else(|p| p.into_inner());
    v.retain(|(k, _)| k != key);
    v.push((key.to_string(), value.to_string()));
}

pub(super) fn env_override(key: &str) -> Option<String> {
    let v = ENV_OVERRIDES.lock().unwrap_or_else(|p| p.into_inner());
    v.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}
