//! Fuzzes the RTSP response, SDP and SPS paths of `device_drivers::rtsp`:
//! any bytes must give a value or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = device_drivers::rtsp::parse_response(data);
    let _ = device_drivers::rtsp::parse_describe(data);
    if let Ok(meta) = device_drivers::rtsp::parse_sdp(data) {
        // Every kept track has a payload type that fits RTP's 7 bits.
        assert!(meta.tracks.iter().all(|t| t.payload_type <= 127));
    }
    let _ = device_drivers::rtsp::parse_h264_sps(data);
    let _ = device_drivers::rtsp::parse_h265_sps(data);
    let _ = device_drivers::rtsp::h264_access_units(data);
    let _ = device_drivers::rtsp::packetize_h264(data, 1400);
});
