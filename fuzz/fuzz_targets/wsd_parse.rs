//! Fuzzes the WS-Discovery parser with arbitrary datagrams: it must never
//! panic, and the matches it accepts must survive a rebuild and re-parse.
#![no_main]

use device_drivers::wsd::{self, ProbeMatch, WsdMessage};
use libfuzzer_sys::fuzz_target;

/// What we accept, our builders can write back, and the result parses to the
/// same matches. Skipped when escaping grew the document past the datagram
/// cap, or when a `&#13;` put a CR in a value (XML normalises a raw CR away,
/// so it cannot round-trip by design).
fn check_roundtrip(matches: &[ProbeMatch]) {
    let rebuilt = wsd::build_probe_matches("urn:uuid:r", "urn:uuid:m", matches);
    if rebuilt.len() > wsd::MAX_DATAGRAM || rebuilt.contains('\r') {
        return;
    }
    match wsd::parse(rebuilt.as_bytes()) {
        Ok(WsdMessage::ProbeMatches { matches: again, .. }) => assert_eq!(again, matches),
        other => panic!("rebuilt ProbeMatches did not parse back: {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let matches = match wsd::parse(data) {
        Ok(WsdMessage::ProbeMatches { matches, .. }) => matches,
        Ok(WsdMessage::Hello(m)) => vec![m],
        _ => return,
    };
    check_roundtrip(&matches);
    for m in &matches {
        let _ = m.name();
        let _ = m.hardware();
        let _ = wsd::scope_values(&m.scopes, "location/village");
        let _ = wsd::preferred_xaddr(&m.xaddrs, None);
        let _ = wsd::is_nvt(&m.types);
    }
});
