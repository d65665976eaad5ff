//! Fuzzes the signed emergency command verifier
//! (`gateway/src/broadcast/signed.rs`): any bytes must be refused or
//! accepted, never panic; accepted bytes are refused when replayed.
//!
//! `signed.rs` depends only on `std`, serde, serde_json, base64, time,
//! thiserror, ed25519-dalek and three shared words of its parent module
//! (`Ms`, `Priority`, `Target`). The parent (`broadcast/mod.rs`) also
//! declares the IO runtime, so it cannot be included here; the module below
//! restates those three words as `gateway/src/broadcast/mod.rs` defines them
//! (keep in step) and includes the real `signed.rs` under it.
//!
//! Random bytes almost never carry a valid signature, so inputs whose first
//! byte is odd are wrapped in an envelope signed with the harness's key:
//! that drives the payload parser and the expiry, nonce and scope checks.
#![no_main]

// On an inline module, `path` names the directory of its file modules:
// `signed` below is gateway/src/broadcast/signed.rs.
#[path = "../../gateway/src/broadcast"]
#[allow(dead_code)]
mod broadcast {
    use std::fmt;
    use std::str::FromStr;

    use serde::{Deserialize, Serialize};

    pub mod signed;

    /// As in gateway/src/broadcast/mod.rs.
    pub type Ms = i64;

    /// As in gateway/src/broadcast/mod.rs (names only; order kept).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    pub enum Priority {
        Background,
        Routine,
        Township,
        Superior,
        Emergency,
    }

    /// As in gateway/src/broadcast/mod.rs.
    #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum Target {
        All,
        Village(String),
        Grid(String),
        Zone(String),
        Group(String),
        Speaker(String),
    }

    impl fmt::Display for Target {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Target::All => f.write_str("all"),
                Target::Village(v) => write!(f, "village:{v}"),
                Target::Grid(v) => write!(f, "grid:{v}"),
                Target::Zone(v) => write!(f, "zone:{v}"),
                Target::Group(v) => write!(f, "group:{v}"),
                Target::Speaker(v) => write!(f, "speaker:{v}"),
            }
        }
    }

    impl FromStr for Target {
        type Err = String;
        fn from_str(s: &str) -> Result<Self, String> {
            let s = s.trim();
            if s == "all" {
                return Ok(Target::All);
            }
            let (kind, name) = s
                .split_once(':')
                .ok_or_else(|| format!("`{s}` is not a target"))?;
            let name = name.trim();
            if name.is_empty()
                || name.len() > 64
                || name.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(format!("target `{s}`: bad name"));
            }
            let name = name.to_string();
            match kind {
                "village" => Ok(Target::Village(name)),
                "grid" => Ok(Target::Grid(name)),
                "zone" => Ok(Target::Zone(name)),
                "group" => Ok(Target::Group(name)),
                "speaker" => Ok(Target::Speaker(name)),
                _ => Err(format!("target `{s}`: bad kind")),
            }
        }
    }

    impl Serialize for Target {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(self)
        }
    }

    impl<'de> Deserialize<'de> for Target {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let s = String::deserialize(d)?;
            s.parse().map_err(serde::de::Error::custom)
        }
    }
}

use broadcast::signed::{self, KeyConfig, KeySet, Verifier};
use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;

/// 2026-07-15T09:00:00+08:00 in ms.
const NOW: i64 = 1_784_077_200_000;

fuzz_target!(|data: &[u8]| {
    let key = SigningKey::from_bytes(&[7; 32]);
    let Ok(keys) = KeySet::from_config(&[KeyConfig {
        id: "county-1".into(),
        public_key: signed::public_key_base64(&key.verifying_key()),
        scope: vec![broadcast::Target::Village("320115106201".into())],
    }]) else {
        return;
    };
    let mut v = Verifier::with_max_nonces(keys, 4);
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let input = if sel & 1 == 1 {
        signed::sign(&key, rest, "county-1").into_bytes()
    } else {
        rest.to_vec()
    };
    match v.verify(&input, NOW) {
        Ok(cmd) => {
            assert!(cmd.not_after > NOW && cmd.not_after <= NOW + signed::MAX_AHEAD_MS);
            assert!(!cmd.targets.is_empty());
            let again = v.verify(&input, NOW).map(|_| ()).unwrap_err();
            assert_eq!(again.code(), "replayed");
        }
        Err(e) => {
            let _ = (e.to_string(), e.code());
        }
    }
});
