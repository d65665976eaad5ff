//! Fuzz the MQTT command parser (`tgw_core::uplink::commands`).
//! First byte picks the method, the rest is the payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tgw_core::uplink::commands::{self, Command};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, payload)) = data.split_first() else {
        return;
    };
    let methods = ["rediscover", "probe", "reload", "emergency", "reboot", ""];
    let method = methods[sel as usize % methods.len()];
    match commands::parse_command(method, payload, 65536) {
        Ok(r) => {
            assert!(commands::valid_request_id(&r.request_id));
            assert_eq!(r.command.method().as_str(), method);
            match &r.command {
                Command::Probe { camera } => {
                    assert!(commands::valid_request_id(camera.as_str()));
                }
                // The envelope is the received `params` object, verbatim.
                Command::Emergency { envelope } => {
                    let v: serde_json::Value =
                        serde_json::from_slice(envelope).expect("params parsed once already");
                    assert!(v.is_object());
                }
                Command::Rediscover | Command::Reload => {}
            }
        }
        Err(e) => {
            assert!(!e.message.is_empty());
            let _ = commands::error_reply(&e);
        }
    }
});
