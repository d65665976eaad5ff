//! Fuzz GB/T 28181 signalling: a SIP message from the platform fed to the
//! registration state machine in each state, and to the dialog helpers;
//! the same bytes as a TCP stream through `stream::Framer` (split in two
//! reads): every message it cuts is within the cap.
#![no_main]

use std::time::Duration;

use device_drivers::gb28181::dialog::{self, SubKind, Subscription};
use device_drivers::gb28181::manscdp::Charset;
use device_drivers::gb28181::register::{self, RegisterConfig, Registration};
use device_drivers::gb28181::stream::{Frame, Framer};
use device_drivers::sip;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = register::parse_date(s);
        let _ = dialog::user_of(s);
    }
    let mut framer = Framer::new(sip::MAX_MESSAGE);
    let (a, b) = data.split_at(data.len() / 2);
    for part in [a, b] {
        framer.push(part);
        while let Ok(Some(frame)) = framer.next_frame() {
            if let Frame::Message(m) = frame {
                assert!(m.len() <= sip::MAX_MESSAGE);
                let _ = sip::parse(&m);
            }
        }
    }
    let Ok(msg) = sip::parse(data) else { return };
    let cfg = RegisterConfig {
        our_id: "34020000002000000099".into(),
        server_id: "34020000002000000001".into(),
        domain: "3402000000".into(),
        server: "127.0.0.1:5060".parse().expect("addr"),
        local: "127.0.0.1:5070".parse().expect("addr"),
        tcp: false,
        password: "pw".into(),
        expires: 3600,
        keepalive: Duration::from_secs(60),
        charset: Charset::Gb2312,
        seed: 1,
    };
    let mut reg = Registration::new(cfg, Duration::ZERO);
    let _ = reg.on_tick(Duration::ZERO);
    // Twice: the second delivery hits the state the first one left.
    let _ = reg.on_message(&msg, Duration::from_millis(10));
    let _ = reg.on_message(&msg, Duration::from_millis(20));
    let _ = reg.on_tick(Duration::from_secs(3600));
    let _ = reg.unregister(Duration::from_secs(3601));
    if let sip::Message::Request(r) = &msg {
        let _ = dialog::answer(r, 200, "OK", "t", Some("<sip:a@b>"), None);
        if let Some(mut s) = Subscription::from_request(r, SubKind::Catalog, 1, "t", 0) {
            let _ = s.notify(
                Vec::new(),
                "x",
                "127.0.0.1:1".parse().expect("addr"),
                false,
                "b",
                10,
            );
        }
    }
});
