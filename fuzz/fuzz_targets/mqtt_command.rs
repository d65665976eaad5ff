//! Fuzz the MQTT command parser (`tgw_core::uplink::commands`).
//! First byte picks the method, the rest is the payload.
#![no_main]

use tgw_core::uplink::commands;
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
