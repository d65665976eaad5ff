//! Fuzzes the GB/T 28181 INVITE offer parser (`device_drivers::gb28181::sdp`)
//! and the PS path of what a camera sends (`ps::to_annexb`, the avcC/hvcC
//! readers): any bytes give a value or an error, never a panic.
//! Seeds: `fuzz/seeds/gb_sdp_parse/` (platforms' offers, also read by the
//! unit tests in `device-drivers/src/gb28181/sdp/tests.rs`):
//! `cargo fuzz run gb_sdp_parse corpus/gb_sdp_parse seeds/gb_sdp_parse`.
#![no_main]

use device_drivers::gb28181::{ps, sdp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(offer) = sdp::parse_offer(text)
    {
        assert!(offer.port != 0 && offer.payload_type < 128);
        assert_eq!(offer.ssrc_text.len(), 10);
        // Our answer to any accepted offer parses back with the same SSRC.
        let a = sdp::answer(&offer, "34020000001320000001", offer.address, 40000);
        let back = sdp::parse_offer(&a.replace("a=sendonly", "a=recvonly")).expect("answer parses");
        assert_eq!(back.ssrc, offer.ssrc);
    }
    let params = ps::ParameterSets::from_avcc(data).unwrap_or_default();
    let _ = ps::ParameterSets::from_hvcc(data);
    if let Ok(au) = ps::to_annexb(ps::VideoCodec::H264, data, true, &params) {
        let mut out = Vec::new();
        ps::PsMuxer::new(ps::VideoCodec::H264).mux(&au, 0, 0, true, &mut out);
        assert!(out.len() > au.len());
    }
});
