//! Fuzz the SOAP/ONVIF response parsers and the UsernameToken verifier with
//! arbitrary bytes: they must return errors, never panic.
#![no_main]

use device_drivers::{onvif, soap, xml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let max = xml::MAX_XML_BYTES;
    let _ = soap::parse_fault(data, max);
    let _ = onvif::parse_system_date_and_time(data, max);
    let _ = onvif::parse_services(data, max);
    let _ = onvif::parse_capabilities(data, max);
    let _ = onvif::parse_device_information(data, max);
    let _ = onvif::parse_network_interfaces(data, max);
    let _ = onvif::parse_scopes(data, max);
    let _ = onvif::parse_profiles(data, max);
    let _ = onvif::parse_media_uri(data, max);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = onvif::strip_credentials(text);
        let _ = onvif::pick_xaddr(text);
        let _ = onvif::posix_tz_offset(text);
        let _ = onvif::normalize_mac(text);
        let _ = soap::verify_username_token(
            text,
            "admin",
            "pw",
            time::OffsetDateTime::UNIX_EPOCH,
            time::Duration::seconds(5),
        );
    }
});
