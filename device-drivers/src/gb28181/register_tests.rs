use super::*;
use crate::sip::{Message, parse};

fn cfg() -> RegisterConfig {
    RegisterConfig {
        our_id: "34020000002000000099".into(),
        server_id: "34020000002000000001".into(),
        domain: "3402000000".into(),
        server: "127.0.0.1:5060".parse().unwrap(),
        local: "127.0.0.1:5070".parse().unwrap(),
        tcp: false,
        password: "secret12".into(),
        expires: 3600,
        keepalive: Duration::from_secs(60),
        charset: Charset::Gb2312,
        seed: 42,
    }
}

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn sent(out: &[Out]) -> Vec<Request> {
    out.iter()
        .filter_map(|o| match o {
            Out::Send(b) => match parse(b).unwrap() {
                Message::Request(r) => Some(r),
                Message::Response(_) => None,
            },
            Out::Event(_) => None,
        })
        .collect()
}

fn reply(req: &Request, status: u16, extra: &[(&str, &str)]) -> Response {
    let mut r = Response::to_request(req, status, "X", Some("srv"));
    for (k, v) in extra {
        r.headers.push(k, *v);
    }
    r
}

const MD5_CHAL: &str = "Digest realm=\"3402000000\", nonce=\"abc123\", algorithm=MD5";

fn registered(reg: &mut Registration) -> Request {
    let out = reg.on_tick(s(0));
    let r1 = sent(&out).remove(0);
    let out = reg.on_response(&reply(&r1, 401, &[("WWW-Authenticate", MD5_CHAL)]), s(0));
    let r2 = sent(&out).remove(0);
    let out = reg.on_response(
        &reply(
            &r2,
            200,
            &[("Expires", "3600"), ("Date", "2026-12-06T18:00:00.123")],
        ),
        s(0),
    );
    assert!(out.contains(&Out::Event(Event::Registered {
        expires: 3600,
        date: Some("2026-12-06T18:00:00.123".into())
    })));
    r2
}

/// Wrong password: the second 401 rejects, and nothing is sent again until
/// REJECTED_RETRY has passed (no retry storm).
#[test]
fn wrong_password_is_rejected_without_storm() {
    let mut reg = Registration::new(cfg(), s(0));
    let r1 = sent(&reg.on_tick(s(0))).remove(0);
    let r2 =
        sent(&reg.on_response(&reply(&r1, 401, &[("WWW-Authenticate", MD5_CHAL)]), s(0))).remove(0);
    let out = reg.on_response(&reply(&r2, 401, &[("WWW-Authenticate", MD5_CHAL)]), s(0));
    assert_eq!(out, vec![Out::Event(Event::Rejected { status: 401 })]);
    assert_eq!(reg.state().label(), "rejected");
    for t in 1..REJECTED_RETRY.as_secs() {
        assert!(reg.on_tick(s(t)).is_empty(), "sent at {t}s");
    }
    assert_eq!(reg.next_deadline(), Some(REJECTED_RETRY));
    assert_eq!(sent(&reg.on_tick(REJECTED_RETRY)).len(), 1);
}

/// 403 rejects at once; a challenge without Digest is a rejection too.
#[test]
fn forbidden_and_unknown_scheme() {
    let mut reg = Registration::new(cfg(), s(0));
    let r1 = sent(&reg.on_tick(s(0))).remove(0);
    reg.on_response(&reply(&r1, 403, &[]), s(0));
    assert!(matches!(
        reg.state(),
        RegState::Rejected { status: 403, .. }
    ));
    let mut reg = Registration::new(cfg(), s(0));
    let r1 = sent(&reg.on_tick(s(0))).remove(0);
    reg.on_response(
        &reply(&r1, 401, &[("WWW-Authenticate", "Basic realm=\"x\"")]),
        s(0),
    );
    assert_eq!(reg.state().label(), "rejected");
}

/// Platform silent: retransmits with doubling gaps capped at 4 s, then
/// unreachable at 32 s and a retry after a backoff.
#[test]
fn silent_platform_is_unreachable() {
    let mut reg = Registration::new(cfg(), s(0));
    assert_eq!(sent(&reg.on_tick(s(0))).len(), 1);
    let mut times = Vec::new();
    let t = loop {
        let t = reg.next_deadline().unwrap();
        let out = reg.on_tick(t);
        if out.contains(&Out::Event(Event::Unreachable)) {
            break t;
        }
        times.push(t.as_millis());
        assert!(times.len() < 20);
    };
    assert_eq!(&times[..4], &[500, 1500, 3500, 7500]);
    assert_eq!(t, REGISTER_TIMEOUT);
    assert_eq!(reg.state(), &RegState::Unreachable);
    assert_eq!(reg.next_deadline(), Some(REGISTER_TIMEOUT + s(5)));
}

/// The digest answers the challenge for our id and the server URI, SHA-256
/// is chosen when offered besides MD5, and the Date is handed up.
#[test]
fn digest_and_sha256_choice() {
    let mut reg = Registration::new(cfg(), s(0));
    let r2 = registered(&mut reg);
    let auth = r2.headers.get("Authorization").unwrap();
    assert!(auth.contains("username=\"34020000002000000099\""), "{auth}");
    assert!(
        auth.contains("uri=\"sip:34020000002000000001@3402000000\""),
        "{auth}"
    );
    assert_eq!(r2.cseq(), Some((2, "REGISTER")));
    let mut reg = Registration::new(cfg(), s(0));
    let r1 = sent(&reg.on_tick(s(0))).remove(0);
    let mut resp = reply(&r1, 401, &[]);
    resp.headers.push("WWW-Authenticate", MD5_CHAL);
    resp.headers.push(
        "WWW-Authenticate",
        "Digest realm=\"3402000000\", nonce=\"n2\", algorithm=SHA-256",
    );
    let r2 = sent(&reg.on_response(&resp, s(0))).remove(0);
    assert!(r2.headers.get("Authorization").unwrap().contains("SHA-256"));
    assert_eq!(parse_date("2026-12-06T18:00:00.123"), Some(1_796_551_200));
    assert_eq!(parse_date("garbage"), None);
}

/// Three unanswered keepalives → a fresh REGISTER; an answered one resets.
#[test]
fn missed_keepalives_reregister() {
    let mut reg = Registration::new(cfg(), s(0));
    registered(&mut reg);
    let k1 = sent(&reg.on_tick(s(0))).remove(0);
    assert_eq!(k1.method, "MESSAGE");
    assert!(String::from_utf8_lossy(&k1.body).contains("<CmdType>Keepalive</CmdType>"));
    assert_eq!(
        reg.on_response(&reply(&k1, 200, &[]), s(1)),
        vec![Out::Event(Event::KeepaliveAnswered)]
    );
    // Unanswered from here on.
    for n in 1..=2 {
        let out = reg.on_tick(s(60 * n));
        assert_eq!(sent(&out)[0].method, "MESSAGE");
    }
    assert_eq!(reg.missed(), 1);
    assert_eq!(sent(&reg.on_tick(s(180)))[0].method, "MESSAGE");
    assert_eq!(reg.missed(), 2);
    // The third unanswered one (sent at 180 s) is counted at 240 s.
    let out = reg.on_tick(s(240));
    assert!(out.contains(&Out::Event(Event::Reregister { missed: 3 })));
    assert_eq!(sent(&out)[0].method, "REGISTER");
    assert_eq!(reg.state().label(), "registering");
}

/// A keepalive answered 4xx (the platform forgot us) registers again at once.
#[test]
fn keepalive_refused_reregisters() {
    let mut reg = Registration::new(cfg(), s(0));
    registered(&mut reg);
    let k1 = sent(&reg.on_tick(s(0))).remove(0);
    let out = reg.on_response(&reply(&k1, 403, &[]), s(1));
    assert_eq!(sent(&out)[0].method, "REGISTER");
}

/// Refresh at 80 % of the granted expiry (Contact's expires wins); unregister sends Expires 0.
#[test]
fn refresh_and_unregister() {
    let mut reg = Registration::new(cfg(), s(0));
    let r1 = sent(&reg.on_tick(s(0))).remove(0);
    reg.on_response(
        &reply(&r1, 200, &[("Contact", "<sip:x@y>;expires=100")]),
        s(0),
    );
    reg.on_tick(s(0));
    let _ = reg.on_tick(s(60));
    let out = reg.on_tick(s(80));
    assert!(sent(&out).iter().any(|r| r.method == "REGISTER"));
    assert_eq!(
        reg.state().label(),
        "registered",
        "a refresh keeps the registration"
    );
    let b = reg.unregister(s(81));
    let r = match parse(&b).unwrap() {
        Message::Request(r) => r,
        _ => panic!(),
    };
    assert_eq!(r.headers.get("Expires"), Some("0"));
}

/// Responses of other transactions and stray requests change nothing.
#[test]
fn strays_are_ignored() {
    let mut reg = Registration::new(cfg(), s(0));
    let r1 = sent(&reg.on_tick(s(0))).remove(0);
    let mut other = reply(&r1, 200, &[]);
    other.headers.set("Call-ID", "someone-else");
    assert!(reg.on_response(&other, s(0)).is_empty());
    let mut old = reply(&r1, 200, &[]);
    old.headers.set("CSeq", "99 REGISTER");
    assert!(reg.on_response(&old, s(0)).is_empty());
    assert_eq!(reg.state().label(), "registering");
}
