//! Fuzz the SIP codec: message parsing, SDP answers, and the INVITE client
//! state machine fed with whatever arrives (it must never panic).
#![no_main]

use std::time::Duration;

use device_drivers::g711::Codec;
use device_drivers::sip::{self, AutoAnswer, CallConfig, InviteClient};
use device_drivers::speaker::SpeakerUri;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sip::parse_sdp(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = s.parse::<SpeakerUri>();
        let _ = sip::tag(s);
        let _ = sip::uri_socket_addr(s);
    }
    let Ok(msg) = sip::parse(data) else { return };
    let cfg = CallConfig {
        user: "horn".into(),
        remote: "127.0.0.1:5060".parse().expect("addr"),
        local: "127.0.0.1:5062".parse().expect("addr"),
        rtp: "127.0.0.1:4000".parse().expect("addr"),
        codecs: vec![Codec::Pcmu, Codec::Pcma],
        auto_answer: AutoAnswer::All,
        credentials: Some(("horn".into(), "pw".into())),
        answer_timeout: Duration::from_secs(5),
        call_id: "fuzz@tgw".into(),
        from_tag: "f".into(),
        branch_seed: "b".into(),
        session_id: 1,
    };
    let (mut c, _) = InviteClient::new(cfg, Duration::ZERO);
    // Twice: the second delivery hits the state the first one left.
    let _ = c.on_message(&msg, Duration::from_millis(10));
    let _ = c.on_message(&msg, Duration::from_millis(20));
    let _ = c.on_tick(Duration::from_secs(6));
    let _ = c.hangup(Duration::from_secs(7));
    if let sip::Message::Response(r) = &msg {
        let _ = r.to_bytes();
    }
});
