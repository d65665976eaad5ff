//! The checks, in the order of the module docs of [`super`], and the
//! memory of nonces against replays.

use std::collections::HashMap;

use base64::Engine as _;
use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};

use super::command::{EmergencyCommand, Refusal, malformed};
use super::envelope::{Envelope, Payload};
use super::keys::KeySet;
use super::{B64, DEFAULT_MAX_NONCES, MAX_AHEAD_MS, MAX_COMMAND_BYTES};
use crate::broadcast::{Ms, Target};

/// The remembered nonces, for saving across restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonceSnapshot {
    /// (nonce, its command's `not_after`).
    pub nonces: Vec<(String, Ms)>,
}

/// Verifies commands against a [`KeySet`] and remembers their nonces.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: KeySet,
    nonces: HashMap<String, Ms>,
    max_nonces: usize,
}

impl Verifier {
    /// A verifier with an empty nonce memory of [`DEFAULT_MAX_NONCES`].
    pub fn new(keys: KeySet) -> Verifier {
        Verifier::with_max_nonces(keys, DEFAULT_MAX_NONCES)
    }

    /// A verifier remembering at most `max` unexpired nonces (at least 1).
    pub fn with_max_nonces(keys: KeySet, max: usize) -> Verifier {
        Verifier {
            keys,
            nonces: HashMap::new(),
            max_nonces: max.max(1),
        }
    }

    /// A verifier whose nonce memory is `snapshot` (from [`Verifier::snapshot`]
    /// before a restart). Entries past their `not_after` are dropped lazily.
    pub fn restore(keys: KeySet, snapshot: NonceSnapshot) -> Verifier {
        let mut v = Verifier::new(keys);
        v.nonces = snapshot.nonces.into_iter().collect();
        v
    }

    /// The nonce memory, sorted by `not_after`, for saving.
    pub fn snapshot(&self) -> NonceSnapshot {
        let mut nonces: Vec<(String, Ms)> =
            self.nonces.iter().map(|(n, t)| (n.clone(), *t)).collect();
        nonces.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        NonceSnapshot { nonces }
    }

    /// Replaces the key set (config reload); the nonce memory is kept.
    pub fn set_keys(&mut self, keys: KeySet) {
        self.keys = keys;
    }

    /// Number of nonces remembered (expired ones included until purged).
    pub fn nonce_count(&self) -> usize {
        self.nonces.len()
    }

    /// Checks one command received at `now` and, when it passes, remembers
    /// its nonce. See the module docs for the order of checks.
    pub fn verify(&mut self, bytes: &[u8], now: Ms) -> Result<EmergencyCommand, Refusal> {
        if bytes.len() > MAX_COMMAND_BYTES {
            return Err(Refusal::TooLarge {
                len: bytes.len(),
                max: MAX_COMMAND_BYTES,
            });
        }
        let env = Envelope::parse(bytes)?;
        let (key_id, payload, scope) = self.check_signature(env)?;
        let p = Payload::parse(&payload)?;
        let id = p.id;
        if p.not_after <= now {
            return Err(Refusal::Expired {
                key_id,
                id,
                not_after: p.not_after_text,
            });
        }
        if p.not_after > now.saturating_add(MAX_AHEAD_MS) {
            return Err(Refusal::TooFarAhead {
                key_id,
                id,
                not_after: p.not_after_text,
            });
        }
        if self.is_replay(&p.nonce, now) {
            return Err(Refusal::Replayed { key_id, id });
        }
        let all = scope.contains(&Target::All);
        if let Some(t) = p.targets.iter().find(|t| !all && !scope.contains(t)) {
            return Err(Refusal::OutOfScope {
                key_id,
                target: t.to_string(),
            });
        }
        self.remember_nonce(&p.nonce, p.not_after, now)?;
        Ok(EmergencyCommand {
            key_id,
            id,
            action: p.action,
            not_after: p.not_after,
            nonce: p.nonce,
            targets: p.targets,
            priority: p.priority,
            content: p.content,
            volume: p.volume,
            repeat: p.repeat,
        })
    }

    /// The key's check: known key, base64, a valid Ed25519 signature over
    /// the payload bytes. Yields the key id, the payload and the key's scope.
    pub(super) fn check_signature(
        &self,
        env: Envelope,
    ) -> Result<(String, Vec<u8>, Vec<Target>), Refusal> {
        let Some(sig_b64) = env.sig else {
            return Err(Refusal::Unsigned { key_id: env.key_id });
        };
        let key = self
            .keys
            .keys
            .get(&env.key_id)
            .ok_or_else(|| Refusal::UnknownKey {
                key_id: env.key_id.clone(),
            })?;
        let payload = B64
            .decode(env.payload.as_bytes())
            .map_err(|_| malformed("payload", "not base64"))?;
        let sig = B64
            .decode(sig_b64.as_bytes())
            .map_err(|_| malformed("sig", "not base64"))?;
        let sig: [u8; 64] = sig.as_slice().try_into().map_err(|_| {
            malformed(
                "sig",
                format!("{} bytes, an Ed25519 signature is 64", sig.len()),
            )
        })?;
        key.verifying
            .verify_strict(&payload, &Signature::from_bytes(&sig))
            .map_err(|_| Refusal::BadSignature {
                key_id: env.key_id.clone(),
            })?;
        Ok((env.key_id, payload, key.scope.clone()))
    }

    /// Whether `nonce` was seen in an unexpired message.
    pub(super) fn is_replay(&self, nonce: &str, now: Ms) -> bool {
        self.nonces.get(nonce).is_some_and(|&t| t > now)
    }

    /// Remembers `nonce` until `not_after`; refuses when the memory is full
    /// of unexpired nonces rather than forget one.
    pub(super) fn remember_nonce(
        &mut self,
        nonce: &str,
        not_after: Ms,
        now: Ms,
    ) -> Result<(), Refusal> {
        if self.nonces.len() >= self.max_nonces && !self.nonces.contains_key(nonce) {
            self.nonces.retain(|_, t| *t > now);
            if self.nonces.len() >= self.max_nonces {
                return Err(Refusal::NonceMemoryFull {
                    max: self.max_nonces,
                });
            }
        }
        self.nonces.insert(nonce.to_string(), not_after);
        Ok(())
    }
}
