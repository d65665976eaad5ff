//! Fuzzes the mDNS / DNS-SD parser with arbitrary datagrams: it must never
//! panic or loop (compression pointers are bounded), resolving instances
//! from what it accepts must not panic either, and a message it accepts
//! that our builder can write again must parse back to the same records.
#![no_main]

use device_drivers::mdns;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = mdns::parse(data) else { return };
    for i in mdns::instances(m.records(), &[]) {
        let _ = i.driver_address(std::net::Ipv4Addr::LOCALHOST);
        let _ = mdns::first_label(&i.name);
    }
    let _ = mdns::instances(m.records(), &mdns::SERVICES);
    let known = |r: &mdns::Record| !matches!(r.data, mdns::RData::Other { .. });
    if m.authority.is_empty() && m.records().all(known) {
        let answers: Vec<_> = m.answers.clone();
        if let Ok(b) = mdns::build_response(m.id, &m.questions, &answers, &m.additional)
            && let Ok(again) = mdns::parse(&b)
        {
            assert_eq!(again.answers, m.answers);
            assert_eq!(again.additional, m.additional);
        }
    }
});
