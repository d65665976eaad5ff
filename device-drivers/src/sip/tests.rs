//! Unit tests of the pure SIP core; compiled only under `#[cfg(test)]` from
//! `sip.rs`.

use super::*;

fn cfg(creds: Option<(&str, &str)>) -> CallConfig {
    CallConfig {
        user: "horn".into(),
        remote: "127.0.0.1:5070".parse().unwrap(),
        local: "127.0.0.1:40000".parse().unwrap(),
        rtp: "127.0.0.1:40002".parse().unwrap(),
        codecs: vec![Codec::Pcmu, Codec::Pcma],
        auto_answer: AutoAnswer::All,
        credentials: creds.map(|(u, p)| (u.to_string(), p.to_string())),
        answer_timeout: Duration::from_secs(5),
        call_id: "abc@tgw".into(),
        from_tag: "ft".into(),
        branch_seed: "s".into(),
        session_id: 42,
    }
}

fn req(bytes: &[u8]) -> Request {
    match parse(bytes).unwrap() {
        Message::Request(r) => r,
        m => panic!("not a request: {m:?}"),
    }
}

fn sends(ev: &[Event]) -> Vec<Request> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Send(b) => Some(req(b)),
            _ => None,
        })
        .collect()
}

/// A response to our INVITE as a horn would build it.
fn answer(
    invite: &Request,
    status: u16,
    reason: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> Message {
    let mut r = Response::to_request(invite, status, reason, Some("horntag"));
    for (k, v) in extra {
        r.headers.push(k, *v);
    }
    r.body = body.as_bytes().to_vec();
    parse(&r.to_bytes()).unwrap()
}

const PCMA_ANSWER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7078 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";

/// The INVITE carries every auto-answer header, the SDP offer and a
/// consistent transaction head.
#[test]
fn invite_layout() {
    let (c, bytes) = InviteClient::new(cfg(None), Duration::ZERO);
    let r = req(&bytes);
    assert_eq!(r.method, "INVITE");
    assert_eq!(r.uri, "sip:horn@127.0.0.1:5070");
    assert_eq!(r.headers.get("Answer-Mode"), Some("Auto"));
    assert_eq!(
        r.headers.get("Call-Info"),
        Some("<sip:127.0.0.1>;answer-after=0")
    );
    assert_eq!(r.headers.get("Alert-Info"), Some("info=alert-autoanswer"));
    assert_eq!(r.cseq(), Some((1, "INVITE")));
    assert!(r.headers.get("Via").unwrap().contains("branch=z9hG4bK"));
    let sdp = parse_sdp(&r.body).unwrap();
    assert_eq!(sdp.socket_addr(), "127.0.0.1:40002".parse().unwrap());
    assert_eq!(sdp.payload_types, vec![0, 8]);
    assert_eq!(c.state(), CallState::Calling);
    assert_eq!(AutoAnswer::Rfc5373.headers("h").len(), 1);
    assert_eq!(AutoAnswer::AlertInfo.headers("h")[0].0, "Alert-Info");
}

/// 100, 180, then 200 with PCMA: ACK to the Contact, Answered with the
/// horn's RTP address; a retransmitted 200 is ACKed again; BYE closes.
#[test]
fn answered_call_and_hangup() {
    let (mut c, bytes) = InviteClient::new(cfg(None), Duration::ZERO);
    let inv = req(&bytes);
    let ev = c.on_message(
        &answer(&inv, 100, "Trying", "", &[]),
        Duration::from_millis(5),
    );
    assert_eq!(ev, vec![Event::Provisional(100)]);
    assert_eq!(
        c.on_tick(Duration::from_millis(600)),
        vec![],
        "no retransmission once proceeding"
    );
    let ok = answer(
        &inv,
        200,
        "OK",
        PCMA_ANSWER,
        &[("Contact", "<sip:horn@127.0.0.1:5070;transport=udp>")],
    );
    let ev = c.on_message(&ok, Duration::from_millis(30));
    let acks = sends(&ev);
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].method, "ACK");
    assert_eq!(acks[0].uri, "sip:horn@127.0.0.1:5070;transport=udp");
    assert_eq!(acks[0].cseq(), Some((1, "ACK")));
    assert!(acks[0].headers.get("To").unwrap().contains("tag=horntag"));
    assert!(ev.contains(&Event::Answered(Answered {
        rtp: "127.0.0.1:7078".parse().unwrap(),
        codec: Codec::Pcma,
        at: Duration::from_millis(30),
    })));
    assert_eq!(c.state(), CallState::Confirmed);
    assert_eq!(
        sends(&c.on_message(&ok, Duration::from_millis(40)))[0].method,
        "ACK"
    );

    let bye = req(&c.hangup(Duration::from_secs(3)).unwrap());
    assert_eq!(bye.method, "BYE");
    assert_eq!(bye.cseq(), Some((2, "BYE")));
    assert_eq!(c.state(), CallState::Terminating);
    assert_eq!(
        sends(&c.on_tick(Duration::from_millis(3500)))[0].method,
        "BYE"
    );
    let bye_ok = Response::to_request(&bye, 200, "OK", None);
    let ev = c.on_message(&Message::Response(bye_ok), Duration::from_secs(4));
    assert_eq!(ev, vec![Event::Ended]);
    assert_eq!(c.state(), CallState::Terminated);
}

/// 401 with a digest challenge: ACK, then a new INVITE (CSeq 2) whose
/// Authorization verifies against the device-side digest computation; a
/// second 401 fails the call as an authentication error.
#[test]
fn digest_challenge() {
    let (mut c, bytes) = InviteClient::new(cfg(Some(("horn", "pw"))), Duration::ZERO);
    let inv = req(&bytes);
    let ch = answer(
        &inv,
        401,
        "Unauthorized",
        "",
        &[(
            "WWW-Authenticate",
            "Digest realm=\"horn\", nonce=\"abc123\", qop=\"auth\", algorithm=MD5",
        )],
    );
    let out = sends(&c.on_message(&ch, Duration::from_millis(10)));
    assert_eq!(out[0].method, "ACK");
    assert_eq!(out[1].method, "INVITE");
    assert_eq!(out[1].cseq(), Some((2, "INVITE")));
    let auth = out[1].headers.get("Authorization").unwrap();
    assert!(auth.starts_with("Digest "), "{auth}");
    assert!(
        auth.contains("username=\"horn\"") && auth.contains("uri=\"sip:horn@127.0.0.1:5070\""),
        "{auth}"
    );
    let ch2 = answer(
        &out[1],
        401,
        "Unauthorized",
        "",
        &[("WWW-Authenticate", "Digest realm=\"horn\", nonce=\"n2\"")],
    );
    let ev = c.on_message(&ch2, Duration::from_millis(20));
    assert!(
        matches!(
            ev.last(),
            Some(Event::Failed(CallError::Auth { status: 401, .. }))
        ),
        "{ev:?}"
    );

    let (mut c, bytes) = InviteClient::new(cfg(None), Duration::ZERO);
    let ch = answer(
        &req(&bytes),
        407,
        "Proxy Authentication Required",
        "",
        &[("Proxy-Authenticate", "Digest realm=\"x\", nonce=\"y\"")],
    );
    let ev = c.on_message(&ch, Duration::from_millis(10));
    assert!(
        matches!(&ev[1], Event::Failed(CallError::Auth { status: 407, reason }) if reason.contains("no credentials"))
    );
}

/// Busy Here and Decline end the call with the status and reason, after an ACK.
#[test]
fn refusals() {
    for (status, reason) in [(486, "Busy Here"), (603, "Decline")] {
        let (mut c, bytes) = InviteClient::new(cfg(None), Duration::ZERO);
        let ev = c.on_message(
            &answer(&req(&bytes), status, reason, "", &[]),
            Duration::from_millis(5),
        );
        assert_eq!(sends(&ev)[0].method, "ACK");
        assert_eq!(
            ev.last(),
            Some(&Event::Failed(CallError::Refused {
                status,
                reason: reason.into()
            }))
        );
        assert_eq!(c.state(), CallState::Terminated);
    }
}

/// A 200 OK choosing G.729 (payload 18), which we never offered: the call
/// is ACKed and hung up at once, and the error names both payload lists.
#[test]
fn answer_with_codec_not_offered() {
    let (mut c, bytes) = InviteClient::new(cfg(None), Duration::ZERO);
    let g729 = PCMA_ANSWER
        .replace("RTP/AVP 8", "RTP/AVP 18")
        .replace("8 PCMA", "18 G729");
    let ev = c.on_message(
        &answer(&req(&bytes), 200, "OK", &g729, &[]),
        Duration::from_millis(5),
    );
    let out = sends(&ev);
    assert_eq!(
        out.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(),
        ["ACK", "BYE"]
    );
    let Some(Event::Failed(CallError::Answer(e))) = ev.last() else {
        panic!("{ev:?}")
    };
    assert_eq!(
        e,
        &SipError::CodecNotOffered {
            answered: vec![18],
            offered: vec![0, 8]
        }
    );
    assert!(e.to_string().contains("[18]"));
}

/// Silence: INVITE retransmitted at T1, 2·T1, 4·T1..., then CANCEL and a
/// timeout at the answer deadline.
#[test]
fn no_answer_times_out() {
    let (mut c, _) = InviteClient::new(cfg(None), Duration::ZERO);
    let mut retransmits = Vec::new();
    let mut now = Duration::ZERO;
    let mut failed = None;
    while let Some(d) = c.next_deadline() {
        now = d;
        for e in c.on_tick(now) {
            match e {
                Event::Send(b) if req(&b).method == "INVITE" => retransmits.push(now.as_millis()),
                Event::Send(b) => assert_eq!(req(&b).method, "CANCEL"),
                Event::Failed(f) => failed = Some(f),
                e => panic!("{e:?}"),
            }
        }
    }
    assert_eq!(retransmits, [500, 1500, 3500]);
    assert_eq!(now, Duration::from_secs(5));
    assert_eq!(failed, Some(CallError::Timeout(Duration::from_secs(5))));
}

/// The horn hangs up mid-broadcast: its BYE is answered 200 and the call
/// reports HungUp; messages of other calls are ignored.
#[test]
fn horn_hangs_up() {
    let (mut c, bytes) = InviteClient::new(cfg(None), Duration::ZERO);
    let inv = req(&bytes);
    c.on_message(
        &answer(&inv, 200, "OK", PCMA_ANSWER, &[]),
        Duration::from_millis(5),
    );
    let bye = "BYE sip:tgw@127.0.0.1:40000 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKx\r\nFrom: <sip:horn@127.0.0.1:5070>;tag=horntag\r\nTo: <sip:tgw@127.0.0.1>;tag=ft\r\nCall-ID: abc@tgw\r\nCSeq: 7 BYE\r\nContent-Length: 0\r\n\r\n";
    let other = bye.replace("abc@tgw", "other@x");
    assert!(
        c.on_message(&parse(other.as_bytes()).unwrap(), Duration::from_secs(1))
            .is_empty()
    );
    let ev = c.on_message(&parse(bye.as_bytes()).unwrap(), Duration::from_secs(1));
    let Event::Send(ok) = &ev[0] else { panic!() };
    let Message::Response(ok) = parse(ok).unwrap() else {
        panic!()
    };
    assert_eq!((ok.status, ok.cseq()), (200, Some((7, "BYE"))));
    assert_eq!(ev[1], Event::Failed(CallError::HungUp));
    assert_eq!(c.hangup(Duration::from_secs(2)), None);
}

/// Compact header names, folded lines and Content-Length are understood;
/// junk is refused with a readable error, never a panic.
#[test]
fn parsing_edge_cases() {
    let m = parse(b"SIP/2.0 180 Ringing\r\nv: SIP/2.0/UDP a;branch=z9hG4bK1\r\ni: x@y\r\nf: <sip:a@b>;tag=1\r\nt: <sip:c@d>\r\n ;tag=2\r\nCSeq: 1 INVITE\r\nl: 3\r\n\r\nabcdef").unwrap();
    let Message::Response(r) = m else { panic!() };
    assert_eq!(r.headers.get("call-id"), Some("x@y"));
    assert_eq!(tag(r.headers.get("To").unwrap()), Some("2"));
    assert_eq!(r.body, b"abc");
    for (bytes, want) in [
        (&b""[..], "empty"),
        (b"SIP/2.0 200 OK\r\n", "end of headers"),
        (b"HELLO\r\n\r\n", "start line"),
        (b"SIP/2.0 999 X\r\n\r\n", "start line"),
        (b"SIP/2.0 200 OK\r\nno colon\r\n\r\n", "header"),
        (
            b"SIP/2.0 200 OK\r\nContent-Length: 10\r\n\r\nabc",
            "Content-Length",
        ),
        (
            b"SIP/2.0 200 OK\r\nContent-Length: -1\r\n\r\n",
            "Content-Length",
        ),
        (b"invite sip:a SIP/2.0\r\n\r\n", "start line"),
    ] {
        let e = parse(bytes).unwrap_err().to_string();
        assert!(e.contains(want), "{e} / {want}");
    }
    assert!(parse_sdp(b"v=0\r\nm=video 1 RTP/AVP 96\r\n").is_err());
    assert!(
        parse_sdp(b"v=0\r\nm=audio 1 RTP/AVP 0\r\n")
            .unwrap_err()
            .to_string()
            .contains("connection")
    );
    assert!(parse_sdp(b"v=0\r\nc=IN IP4 nope\r\n").is_err());
    assert_eq!(
        uri_socket_addr("sip:horn@127.0.0.1:5070;transport=udp"),
        Some("127.0.0.1:5070".parse().unwrap())
    );
    assert_eq!(
        uri_socket_addr("sip:10.0.0.1"),
        Some("10.0.0.1:5060".parse().unwrap())
    );
}

/// baresip 1.0.0 (the Debian SIP horn the e2e suite calls): 180 then
/// `200 Answering`, a Contact user unlike the one called (`horn-0x…`), and
/// an SDP answer keeping both offered payload types. The call must go up
/// on PCMU (the first), with ACK and BYE sent to the Contact.
#[test]
fn baresip_answer_capture() {
    let ringing = parse(include_bytes!("../../testdata/baresip/180_ringing.sip")).unwrap();
    let ok = parse(include_bytes!("../../testdata/baresip/200_answering.sip")).unwrap();
    let mut c = cfg(None);
    c.call_id = "capture@tgw".into();
    c.remote = "127.0.0.1:25072".parse().unwrap();
    let (mut c, _) = InviteClient::new(c, Duration::ZERO);
    assert_eq!(
        c.on_message(&ringing, Duration::from_millis(2)),
        vec![Event::Provisional(180)]
    );
    let ev = c.on_message(&ok, Duration::from_millis(3));
    let ack = &sends(&ev)[0];
    assert_eq!(ack.method, "ACK");
    assert!(
        ack.uri.starts_with("sip:horn-0x") && ack.uri.ends_with("@127.0.0.1:25072"),
        "{}",
        ack.uri
    );
    assert!(
        ack.headers
            .get("To")
            .unwrap()
            .contains("tag=27780c588cbd1498")
    );
    let Some(Event::Answered(a)) = ev.last() else {
        panic!("{ev:?}")
    };
    assert_eq!(a.codec, Codec::Pcmu);
    assert_eq!(a.rtp, "127.0.0.1:23550".parse().unwrap());
    let bye = req(&c.hangup(Duration::from_secs(1)).unwrap());
    assert_eq!(bye.uri, ack.uri);
}

/// A call made as a GB/T 28181 channel (voice broadcast): From and Contact
/// name the channel, the Subject and our own offer are sent, no auto-answer
/// headers; the platform's 200 is acknowledged and its BYE ends the call.
#[test]
fn invite_as_a_gb_channel() {
    let a = InviteAs {
        from_user: "34020000001370000001".into(),
        from_host: "3402000000".into(),
        headers: vec![("Subject".into(), "p:0,c:0".into())],
        sdp: "v=0\r\nm=audio 40002 RTP/AVP 8 0\r\na=recvonly\r\n".into(),
    };
    let (mut c, bytes) = InviteClient::new_as(cfg(None), Some(a), Duration::ZERO);
    let inv = req(&bytes);
    assert!(
        inv.headers
            .get("From")
            .unwrap()
            .starts_with("<sip:34020000001370000001@3402000000>;tag=ft")
    );
    assert!(
        inv.headers
            .get("Contact")
            .unwrap()
            .contains("34020000001370000001@")
    );
    assert_eq!(inv.headers.get("Subject"), Some("p:0,c:0"));
    assert!(inv.headers.get("Answer-Mode").is_none() && inv.headers.get("Call-Info").is_none());
    assert!(String::from_utf8_lossy(&inv.body).contains("a=recvonly"));
    let ev = c.on_message(
        &answer(&inv, 200, "OK", PCMA_ANSWER, &[]),
        Duration::from_millis(10),
    );
    assert!(
        matches!(ev.last(), Some(Event::Answered(x)) if x.codec == Codec::Pcma),
        "{ev:?}"
    );
    assert_eq!(sends(&ev)[0].method, "ACK");
    let mut bye = inv.clone();
    bye.method = "BYE".into();
    bye.headers.set("CSeq", "2 BYE");
    let ev = c.on_message(&Message::Request(bye), Duration::from_millis(20));
    assert!(
        matches!(ev.last(), Some(Event::Failed(CallError::HungUp))),
        "{ev:?}"
    );
}

/// A challenge with a multi-byte character is refused with an error, not
/// a panic in `digest_auth` (the `gb_sip` fuzz target's crash: a 401 with
/// `Digest\u{5cd}...`).
#[test]
fn a_non_ascii_digest_challenge_is_an_error_not_a_panic() {
    let challenge = "Digest\u{5cd}eal m=\"3&402000000\", nonce=\"abc\", algorithm=MD5";
    let e = digest_authorization(challenge, "REGISTER", "sip:3402000000", "u", "p")
        .expect_err("refused");
    assert!(e.to_string().contains("not ASCII"), "{e}");
    assert!(
        digest_authorization(
            "Digest realm=\"3402000000\", nonce=\"abc\", algorithm=MD5",
            "REGISTER",
            "sip:3402000000",
            "u",
            "p"
        )
        .is_ok()
    );
}
