//! Fuzz the GB/T 28181 voice broadcast inputs: a Broadcast notify (through
//! the MANSCDP reader) and the platform's RTP packets (G.711 decoding).
#![no_main]

use device_drivers::gb28181::{manscdp, voice};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = manscdp::parse(data)
        && let Ok(b) = voice::broadcast(&m)
    {
        let _ = voice::broadcast_response(b.sn, &b.target_id, Err(&b.source_id), manscdp::Charset::Gb2312);
    }
    if let Ok(p) = voice::parse_rtp(data) {
        let _ = voice::decode_g711(&p);
    }
});
