//! Fuzz MANSCDP bodies (GB/T 28181): charset detection and decoding, the
//! XML reader, and building an answer from whatever was read.
#![no_main]

use device_drivers::gb28181::manscdp::{self, Charset};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = manscdp::decode(data);
    let Ok(m) = manscdp::parse(data) else { return };
    // Echoing what was read into an answer must not panic either.
    let info = manscdp::DeviceInfo {
        name: m.field("Name").unwrap_or(""),
        manufacturer: "tgw",
        model: &m.cmd_type,
        firmware: "0",
        channels: m.items.len(),
    };
    let _ = manscdp::device_info(m.sn, &m.device_id, &info, Charset::Gb2312);
});
