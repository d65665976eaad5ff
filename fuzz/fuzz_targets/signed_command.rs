//! Fuzzes the signed emergency command verifier
//! (`tgw_core::broadcast::signed`, in `core/src/broadcast/signed.rs`): any
//! bytes must be refused or accepted, never panic; accepted bytes are
//! refused when replayed.
//!
//! Random bytes almost never carry a valid signature, so inputs whose first
//! byte is odd are wrapped in an envelope signed with the harness's key:
//! that drives the payload parser and the expiry, nonce and scope checks.
#![no_main]

use tgw_core::broadcast::signed::{self, KeyConfig, KeySet, Verifier};
use tgw_core::broadcast;
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
