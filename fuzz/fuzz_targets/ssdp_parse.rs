//! Fuzzes the SSDP parser with arbitrary datagrams: it must never panic, and
//! the search responses it accepts must survive a rebuild and re-parse.
#![no_main]

use device_drivers::ssdp::{self, SsdpMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = ssdp::parse(data) else { return };
    if let SsdpMessage::Response(a) | SsdpMessage::Notify(a) = &msg {
        let _ = a.uuid();
        let _ = a.location.as_deref().map(ssdp::location_ipv4);
        if let SsdpMessage::Response(a) = &msg {
            let rebuilt = ssdp::build_response(a, 1800);
            if rebuilt.len() <= ssdp::MAX_DATAGRAM {
                assert_eq!(ssdp::parse(rebuilt.as_bytes()).ok(), Some(msg.clone()));
            }
        }
    }
});
