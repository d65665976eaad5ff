//! Fuzz the ONVIF event-service parsers (PullPoint create, pull, renew,
//! unsubscribe, the clock setters' answers) and the topic classifier with
//! arbitrary bytes: errors, never a panic; caps hold. A subscription's
//! WS-Addressing reference parameters are within their caps, and echoed in
//! our own request they read back identical (what the camera sees is what
//! it sent); the request-header reader (the camera's side) never panics.
#![no_main]

use device_drivers::{onvif_events as ev, soap, wsa, xml};
use libfuzzer_sys::fuzz_target;

/// Count and depth of a parameter tree.
fn depth(e: &wsa::Element) -> usize {
    1 + e
        .content
        .iter()
        .filter_map(|c| match c {
            wsa::Content::Element(c) => Some(depth(c)),
            wsa::Content::Text(_) => None,
        })
        .max()
        .unwrap_or(0)
}

fuzz_target!(|data: &[u8]| {
    let max = xml::MAX_XML_BYTES;
    if let Ok(s) = ev::parse_create_pull_point_subscription(data, max) {
        let refs = &s.reference_parameters;
        assert!(refs.len() <= wsa::MAX_PARAMETERS);
        assert!(refs.iter().all(|e| depth(e) <= wsa::MAX_DEPTH));
        let a = wsa::Addressing {
            action: ev::ACTION_PULL_MESSAGES,
            to: &s.address,
            message_id: "urn:uuid:00000000-0000-4000-8000-000000000000",
            reference_parameters: refs,
        };
        let env = soap::envelope_with("<PullMessages/>", None, Some(&a));
        let doc = xml::parse(&env).expect("our own envelope is well-formed");
        let back = wsa::request_headers(doc.root_element()).expect("our own headers read back");
        assert_eq!(&back.reference_parameters, refs);
        assert_eq!(back.to.as_deref(), Some(s.address.as_str()));
    }
    if let Ok(text) = xml::check(data, max)
        && let Ok(doc) = xml::parse(text)
    {
        let _ = wsa::request_headers(doc.root_element());
    }
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
