//! The trusted keys: each an Ed25519 public key with the targets it may
//! address, checked once when the configuration is read.

use std::collections::BTreeMap;

use base64::Engine as _;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use super::{B64, valid_token};
use crate::broadcast::Target;
use crate::error::ErrorKind;

/// One trusted key, as written in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// The key id senders put in `key_id` (1-64 of `[A-Za-z0-9._:-]`). Required.
    pub id: String,
    /// The Ed25519 public key: base64 of its 32 bytes. Required.
    pub public_key: String,
    /// The targets this key may address; `["all"]` allows every target.
    /// Required, not empty.
    pub scope: Vec<Target>,
}

#[derive(Debug, Clone)]
pub(super) struct Key {
    pub(super) verifying: VerifyingKey,
    pub(super) scope: Vec<Target>,
}

/// The trusted keys, checked and indexed by id.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    pub(super) keys: BTreeMap<String, Key>,
}

impl KeySet {
    /// Builds the key set from configuration. Errors name the entry and the
    /// field (`keys[1].public_key: …`) and never echo key material.
    pub fn from_config(keys: &[KeyConfig]) -> Result<KeySet, KeyError> {
        let mut out = BTreeMap::new();
        for (index, k) in keys.iter().enumerate() {
            if !valid_token(&k.id, 64) {
                return Err(KeyError::BadId { index });
            }
            let id = || k.id.clone();
            let bytes = B64
                .decode(k.public_key.trim())
                .map_err(|_| KeyError::NotBase64 { index, id: id() })?;
            let arr: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| KeyError::WrongLength {
                    index,
                    id: id(),
                    len: bytes.len(),
                })?;
            let verifying = VerifyingKey::from_bytes(&arr)
                .map_err(|_| KeyError::NotEd25519 { index, id: id() })?;
            if k.scope.is_empty() {
                return Err(KeyError::EmptyScope { index, id: id() });
            }
            let key = Key {
                verifying,
                scope: k.scope.clone(),
            };
            if out.insert(k.id.clone(), key).is_some() {
                return Err(KeyError::Duplicate { index, id: id() });
            }
        }
        Ok(KeySet { keys: out })
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is configured (every command is then refused).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The configured key ids.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

/// Why [`KeySet::from_config`] refused the configured keys. The message
/// names the entry and the field (`keys[1].public_key: …`) and never echoes
/// key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The id is not 1-64 characters of `[A-Za-z0-9._:-]`.
    #[error("keys[{index}].id: must be 1-64 characters of A-Z a-z 0-9 . _ : -")]
    BadId {
        /// The entry.
        index: usize,
    },
    /// The public key is not base64.
    #[error("keys[{index}].public_key (key `{id}`): not base64")]
    NotBase64 {
        /// The entry.
        index: usize,
        /// Its key id.
        id: String,
    },
    /// The public key is not 32 bytes.
    #[error("keys[{index}].public_key (key `{id}`): {len} bytes, an Ed25519 public key is 32")]
    WrongLength {
        /// The entry.
        index: usize,
        /// Its key id.
        id: String,
        /// The bytes it has.
        len: usize,
    },
    /// The 32 bytes are not an Ed25519 point.
    #[error("keys[{index}].public_key (key `{id}`): not a valid Ed25519 public key")]
    NotEd25519 {
        /// The entry.
        index: usize,
        /// Its key id.
        id: String,
    },
    /// The scope lists no target.
    #[error(
        "keys[{index}].scope (key `{id}`): must list at least one target (`all` for every target)"
    )]
    EmptyScope {
        /// The entry.
        index: usize,
        /// Its key id.
        id: String,
    },
    /// Two entries have this id.
    #[error("keys[{index}].id: key `{id}` is listed twice")]
    Duplicate {
        /// The second entry.
        index: usize,
        /// The key id.
        id: String,
    },
}

impl KeyError {
    /// Always [`ErrorKind::Invalid`]: the configuration is wrong.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
}
