//! Signed emergency commands over MQTT (pure): Ed25519 signatures, a key set
//! with per-key scopes, expiry, and nonce memory against replays.
//!
//! The wire format (`docs/warnings.md`) is a JSON envelope
//!
//! ```json
//! {"key_id": "county-1", "payload": "<base64 of the payload bytes>", "sig": "<base64 Ed25519 signature over exactly those bytes>"}
//! ```
//!
//! whose payload is itself JSON: `id`, `action` (`start` | `stop`),
//! `not_after` (RFC 3339), `nonce` (16-64 characters), `targets`, optional
//! `priority` (`emergency` | `superior`, default `emergency`), for `start`
//! exactly one of `text` or `asset` (`sha256:<64 hex>`), optional `volume`
//! (0-100) and `repeat` (1-10).
//!
//! [`Verifier::verify`] checks, in this order: size, envelope, presence of a
//! signature, key, signature (before the payload is even parsed), payload
//! fields, `not_after` (must be after `now` and at most 24 h ahead), nonce
//! (not seen before; remembered until its `not_after`; when the memory is full
//! the command is refused rather than an unexpired nonce forgotten), scope.
//! A [`Refusal`] never carries the signature or key material, only the key id.
//!
//! The folder depends on `std`, `serde`, `serde_json`, `base64`, `time`,
//! `thiserror`, `ed25519-dalek` and the shared words of [`super`]; the fuzz
//! target `fuzz/fuzz_targets/signed_command.rs` drives it through
//! `tgw_core::broadcast::signed`.
//!
//! | module | owns |
//! |---|---|
//! | this file | the limits, [`sign`] and [`public_key_base64`] (the sender's side) |
//! | [`keys`] | [`KeyConfig`], [`KeySet`], [`KeyError`]: the trusted keys and their scopes |
//! | [`cap`] | [`SignedCap`], [`Verifier::verify_cap`]: CAP documents in the same envelope |
//! | [`command`] | [`EmergencyCommand`], [`Action`], [`Content`], [`Refusal`]: what a check yields |
//! | [`envelope`] | the envelope and payload JSON, field by field |
//! | [`verifier`] | [`Verifier`]: the checks in order, and the nonce memory |

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

use super::Ms;

pub mod cap;
pub mod command;
pub mod envelope;
pub mod keys;
pub mod verifier;

pub use cap::{MAX_SIGNED_CAP_BYTES, SignedCap, cap_payload};
pub use command::{Action, Content, EmergencyCommand, Refusal};
pub use keys::{KeyConfig, KeyError, KeySet};
pub use verifier::{NonceSnapshot, Verifier};

/// Largest command envelope accepted: 16 KiB.
pub const MAX_COMMAND_BYTES: usize = 16 * 1024;
/// How far ahead `not_after` may be: 24 h.
pub const MAX_AHEAD_MS: Ms = 24 * 3600 * 1000;
/// Default number of unexpired nonces remembered.
pub const DEFAULT_MAX_NONCES: usize = 10_000;
/// Most targets in one command.
pub const MAX_TARGETS: usize = 256;
/// Most characters of a command's TTS text.
pub const MAX_TEXT_CHARS: usize = 2000;

/// Standard base64; padding optional on input, written on output.
pub(crate) const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Signs `payload` (the payload JSON bytes, exactly as they will be verified)
/// and returns the envelope JSON. Used by tests, the CLI and the benches.
pub fn sign(signing_key: &SigningKey, payload: &[u8], key_id: &str) -> String {
    let sig = signing_key.sign(payload);
    serde_json::json!({
        "key_id": key_id,
        "payload": B64.encode(payload),
        "sig": B64.encode(sig.to_bytes()),
    })
    .to_string()
}

/// The base64 of a public key, as `KeyConfig::public_key` wants it.
pub fn public_key_base64(key: &VerifyingKey) -> String {
    B64.encode(key.as_bytes())
}

/// 1-`max` characters of `[A-Za-z0-9._:-]`.
pub(crate) fn valid_token(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

#[cfg(test)]
mod tests;
