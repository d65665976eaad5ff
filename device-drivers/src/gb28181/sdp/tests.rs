//! INVITE offers hand-written in the shapes WVP-GB28181-pro and county
//! platforms send (several `a=rtpmap` lines with PS first, `y=` SSRC whose
//! first digit is 0 for live and 1 for playback, `a=setup`/`a=connection`
//! for TCP, an optional `f=`); not captures. They are also the seeds of the
//! `gb_sdp_parse` fuzz target, so they live with the other targets' seeds
//! in `fuzz/seeds/gb_sdp_parse/`, where the CI fuzz smoke
//! (`scripts/test-all`) reads them.

use super::*;

const UDP: &str = include_str!("../../../../fuzz/seeds/gb_sdp_parse/platform_play_udp.sdp");
const TCP_PASSIVE: &str =
    include_str!("../../../../fuzz/seeds/gb_sdp_parse/platform_play_tcp_passive.sdp");
const TCP_ACTIVE: &str =
    include_str!("../../../../fuzz/seeds/gb_sdp_parse/platform_play_tcp_active.sdp");
const PLAYBACK: &str = include_str!("../../../../fuzz/seeds/gb_sdp_parse/platform_playback.sdp");

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

/// The UDP live offer with four rtpmaps: PS is 96, SSRC from y=.
#[test]
fn udp_offer() {
    let o = parse_offer(UDP).expect("offer");
    assert_eq!(o.address, ip("10.10.0.5"));
    assert_eq!(o.port, 30012);
    assert_eq!(o.transport, MediaTransport::Udp);
    assert_eq!(o.payload_type, 96);
    assert_eq!(o.ssrc_text, "0100000012");
    assert_eq!(o.ssrc, 100_000_012);
    assert_eq!(o.origin.as_deref(), Some("34020000002000000001"));
}

/// The platform listens (`a=setup:passive`): we connect (TCP active). The
/// platform connects (`a=setup:active`): we listen (TCP passive).
#[test]
fn tcp_roles() {
    let o = parse_offer(TCP_PASSIVE).expect("offer");
    assert_eq!(o.transport, MediaTransport::TcpActive);
    let o = parse_offer(TCP_ACTIVE).expect("offer");
    assert_eq!(o.transport, MediaTransport::TcpPassive);
    assert_eq!(o.format.as_deref(), Some("v/2/5/25/1/4000a///"));
}

/// Playback is refused clearly, naming the session.
#[test]
fn playback_is_refused() {
    let e = parse_offer(PLAYBACK).unwrap_err();
    assert_eq!(e, SdpError::Unsupported("Playback".into()));
    assert!(e.to_string().contains("s=Playback is not supported"));
    let e = parse_offer(&UDP.replace("s=Play", "s=Download")).unwrap_err();
    assert!(matches!(e, SdpError::Unsupported(_)), "{e}");
}

/// Every missing or wrong field is refused with the field named.
#[test]
fn bad_offers_name_the_field() {
    let cases: &[(&str, &str, &str)] = &[
        ("y=0100000012\r\n", "", "no y="),
        ("y=0100000012", "y=12345", "10 decimal digits"),
        ("y=0100000012", "y=9999999999", "SSRC over"),
        ("c=IN IP4 10.10.0.5\r\n", "", "no c="),
        (
            "c=IN IP4 10.10.0.5",
            "c=IN IP4 nowhere",
            "not an IP address",
        ),
        ("c=IN IP4 10.10.0.5", "c=IN IP6 10.10.0.5", "family"),
        ("c=IN IP4 10.10.0.5", "c=IN IP4 0.0.0.0", "unspecified"),
        ("m=video 30012", "m=video 0", "port"),
        ("m=video 30012", "m=video 70000", "port"),
        ("RTP/AVP 96", "RTP/SAVP 96", "transport must be"),
        ("a=rtpmap:96 PS/90000\r\n", "", "PS/90000"),
        ("a=recvonly", "a=sendonly", "recvonly"),
        ("RTP/AVP 96 97 98 99", "RTP/AVP 97 98 99", "not offered"),
        ("t=0 0", "garbage", "type=value"),
    ];
    for (from, to, want) in cases {
        assert!(UDP.contains(from), "fixture has {from:?}");
        let e = parse_offer(&UDP.replacen(from, to, 1)).unwrap_err();
        assert!(e.to_string().contains(want), "{from:?} -> {to:?}: {e}");
    }
    let e = parse_offer(&TCP_ACTIVE.replace("setup:active", "setup:holdconn")).unwrap_err();
    assert!(e.to_string().contains("a=setup"), "{e}");
    assert!(parse_offer("").is_err());
}

/// Size caps: bytes and lines.
#[test]
fn size_caps() {
    let big = format!("{UDP}a={}\r\n", "x".repeat(MAX_OFFER_BYTES));
    assert!(matches!(parse_offer(&big), Err(SdpError::TooLarge(_))));
    let many = format!("{UDP}{}", "a=x\r\n".repeat(MAX_LINES));
    assert!(matches!(parse_offer(&many), Err(SdpError::TooLarge(_))));
}

/// The answer: sendonly, our address and port, the offer's SSRC digits
/// and PS mapping, the TCP role opposite the platform's; and it parses
/// back with the same SSRC.
#[test]
fn answers() {
    let o = parse_offer(UDP).expect("offer");
    let a = answer(&o, "34020000001320000001", ip("203.0.113.9"), 40000);
    for want in [
        "o=34020000001320000001 0 0 IN IP4 203.0.113.9\r\n",
        "c=IN IP4 203.0.113.9\r\n",
        "m=video 40000 RTP/AVP 96\r\n",
        "a=sendonly\r\n",
        "a=rtpmap:96 PS/90000\r\n",
        "y=0100000012\r\n",
        "s=Play\r\n",
    ] {
        assert!(a.contains(want), "{want:?} in {a}");
    }
    assert!(!a.contains("a=setup"));
    let o = parse_offer(TCP_PASSIVE).expect("offer");
    let a = answer(&o, "x", ip("10.0.0.2"), 40002);
    assert!(
        a.contains("m=video 40002 TCP/RTP/AVP 96\r\na=sendonly"),
        "{a}"
    );
    assert!(a.contains("a=setup:active\r\na=connection:new\r\n"), "{a}");
    let o = parse_offer(TCP_ACTIVE).expect("offer");
    let a = answer(&o, "x\r\nm=evil", ip("::1"), 40004);
    assert!(a.contains("a=setup:passive\r\n"), "{a}");
    assert!(a.contains("c=IN IP6 ::1\r\n"), "{a}");
    assert!(
        !a.contains("evil\r\n") && a.contains("o=xmevil "),
        "id sanitised: {a}"
    );
    // Our answer is itself a well-formed offer shape (except the direction).
    let back = parse_offer(&a.replace("a=sendonly", "a=recvonly")).expect("parses");
    assert_eq!(back.ssrc_text, "0100000016");
}
