//! Fuzz the ONVIF event-service parsers (PullPoint create, pull, renew,
//! unsubscribe, the clock setters' answers) and the topic classifier with
//! arbitrary bytes: errors, never a panic; caps hold.
#![no_main]

use device_drivers::{onvif_events as ev, xml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let max = xml::MAX_XML_BYTES;
    let _ = ev::parse_create_pull_point_subscription(data, max);
    let _ = ev::parse_renew(data, max);
    let _ = ev::parse_unsubscribe(data, max);
    let _ = ev::parse_set_system_date_and_time(data, max);
    let _ = ev::parse_set_ntp(data, max);
    if let Ok(p) = ev::parse_pull_messages_capped(data, max, 8) {
        assert!(p.messages.len() <= 8);
        for m in &p.messages {
            assert!(m.topic.len() <= ev::MAX_TOPIC_LEN);
            assert!(m.data.len() <= ev::MAX_ITEMS && m.source.len() <= ev::MAX_ITEMS);
            let _ = ev::classify(m);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ev::normalize_topic(text);
        let _ = ev::parse_date_time(text);
    }
});
