//! Fuzz the MQTT command parser (`gateway/src/mqtt/commands.rs`).
//!
//! The parser file depends only on `std` and `serde_json`, so it is
//! included directly instead of pulling the whole gateway into this crate.
//! First byte picks the method, the rest is the payload.
#![no_main]

#[path = "../../gateway/src/mqtt/commands.rs"]
#[allow(dead_code)]
mod commands;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, payload)) = data.split_first() else {
        return;
    };
    let methods = ["rediscover", "probe", "reload", "reboot", ""];
    let method = methods[sel as usize % methods.len()];
    match commands::parse_command(method, payload, 65536) {
        Ok(c) => {
            assert!(commands::valid_request_id(&c.request_id));
            assert!(c.params.is_object());
        }
        Err(e) => {
            let _ = commands::error_reply(&e);
        }
    }
});
