//! Tests of the pure SOAP core: every answer is parsed back with
//! `device_drivers::xml`, as the gateway would.

use std::net::Ipv4Addr;

use device_drivers::soap::{self, UsernameToken};
use device_drivers::{wsa, xml};
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;
use crate::digest::{DigestParams, expected_response};
use crate::flavour::ALL;

const NOW: OffsetDateTime = datetime!(2026-11-23 08:30:00 UTC);
const NS_M1: &str = "http://www.onvif.org/ver10/media/wsdl";
const NS_M2: &str = "http://www.onvif.org/ver20/media/wsdl";
const NS_DEV: &str = "http://www.onvif.org/ver10/device/wsdl";

fn cam(flavour: Flavour) -> Camera {
    let i = ALL.iter().position(|f| *f == flavour).unwrap();
    Camera::new(
        i,
        9,
        Ipv4Addr::new(127, 0, 1, 1 + i as u8),
        8080,
        "s3cret".into(),
        "qingshan-dongcun".into(),
        "qingshan-dongcun-01".into(),
    )
}

struct Harness {
    cam: Camera,
    fault: Option<Fault>,
    nonces: NonceCache,
    events: crate::events::EventState,
    now: OffsetDateTime,
    nonce_counter: u8,
    target: String,
    /// The last subscription's reference parameters.
    refs: Vec<wsa::Element>,
}

impl Harness {
    fn new(f: Flavour) -> Harness {
        Harness {
            cam: cam(f),
            fault: None,
            nonces: NonceCache::default(),
            events: Default::default(),
            now: NOW,
            nonce_counter: 0,
            target: "/onvif/device_service".into(),
            refs: Vec::new(),
        }
    }

    fn call(&mut self, body: &str, auth: Option<&str>) -> Reply {
        let mut ctx = Ctx {
            camera: &self.cam,
            fault: self.fault.as_ref(),
            now_utc: self.now,
            digest_secret: "k",
            nonces: &mut self.nonces,
            events: &mut self.events,
        };
        let req = Request {
            method: "POST",
            target: &self.target,
            authorization: auth,
            body: body.as_bytes(),
        };
        handle(&mut ctx, &req)
    }

    fn token(&mut self, password: &str, created: OffsetDateTime) -> UsernameToken {
        self.nonce_counter += 1;
        let user = self.cam.username.clone();
        UsernameToken::new(&user, password, [self.nonce_counter; 16], created)
    }

    /// A request authenticated with a fresh, correct UsernameToken.
    fn authed(&mut self, op_xml: &str) -> Reply {
        let t = self.token("s3cret", self.now);
        self.call(&soap::envelope(op_xml, Some(&t)), None)
    }

    /// [`authed`](Self::authed) with WS-Addressing, as the gateway sends
    /// event calls: `action`, `To` the target, `refs` echoed.
    fn addressed(&mut self, op_xml: &str, action: &str, refs: &[wsa::Element]) -> Reply {
        let t = self.token("s3cret", self.now);
        let to = format!("http://{}:8080{}", self.cam.ip, self.target);
        let id = wsa::message_id([self.nonce_counter; 16]);
        let a = wsa::Addressing {
            action,
            to: &to,
            message_id: &id,
            reference_parameters: refs,
        };
        self.call(&soap::envelope_with(op_xml, Some(&t), Some(&a)), None)
    }
}

fn op(ns: &str, name: &str, inner: &str) -> String {
    format!("<{name} xmlns=\"{ns}\">{inner}</{name}>")
}

fn body_text(r: &Reply, name: &str) -> Option<String> {
    let doc = xml::parse(&r.body).unwrap();
    xml::find_text(doc.root_element(), name)
}

fn fault_subcodes(r: &Reply) -> Vec<String> {
    soap::parse_fault(r.body.as_bytes(), 1 << 20)
        .map(|f| f.subcodes)
        .unwrap_or_default()
}

/// GetSystemDateAndTime needs no auth and reports the camera's own clock.
#[test]
fn gsdt_unauthenticated_and_skewed() {
    let mut h = Harness::new(Flavour::Hikvision);
    let r = h.call(
        &soap::envelope(&op(NS_DEV, "GetSystemDateAndTime", ""), None),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let doc = xml::parse(&r.body).unwrap();
    let utc = xml::find(doc.root_element(), "UTCDateTime").unwrap();
    assert_eq!(xml::path_text(utc, &["Time", "Hour"]).as_deref(), Some("8"));
    assert_eq!(
        xml::path_text(utc, &["Time", "Minute"]).as_deref(),
        Some("30")
    );
    assert_eq!(
        xml::path_text(utc, &["Date", "Year"]).as_deref(),
        Some("2026")
    );
    let local = xml::find(doc.root_element(), "LocalDateTime").unwrap();
    assert_eq!(
        xml::path_text(local, &["Time", "Hour"]).as_deref(),
        Some("16")
    );

    h.fault = Some(Fault::ClockSkew(-600));
    let r = h.call(
        &soap::envelope(&op(NS_DEV, "GetSystemDateAndTime", ""), None),
        None,
    );
    let doc = xml::parse(&r.body).unwrap();
    let utc = xml::find(doc.root_element(), "UTCDateTime").unwrap();
    assert_eq!(
        xml::path_text(utc, &["Time", "Minute"]).as_deref(),
        Some("20")
    );
}

/// Without credentials: 401 with a Digest challenge and a ter:NotAuthorized fault.
#[test]
fn unauthenticated_call_is_challenged() {
    let mut h = Harness::new(Flavour::Dahua);
    let r = h.call(
        &soap::envelope(&op(NS_DEV, "GetDeviceInformation", ""), None),
        None,
    );
    assert_eq!(r.status, 401);
    let www = r.www_authenticate.clone().unwrap();
    assert!(www.starts_with("Digest realm=\"Login to "), "{www}");
    assert!(www.contains("qop=\"auth\""));
    assert!(
        fault_subcodes(&r)
            .iter()
            .any(|s| s.ends_with("NotAuthorized")),
        "{}",
        r.body
    );
}

/// WS-UsernameToken with the right password and a fresh Created is accepted;
/// a wrong password is refused with HTTP 400 and ter:NotAuthorized.
#[test]
fn username_token_accept_and_reject() {
    let mut h = Harness::new(Flavour::Hikvision);
    let r = h.authed(&op(NS_DEV, "GetDeviceInformation", ""));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(body_text(&r, "Manufacturer").as_deref(), Some("HIKVISION"));
    assert_eq!(body_text(&r, "SerialNumber"), Some(h.cam.serial.clone()));

    let t = h.token("wrong", NOW);
    let r = h.call(
        &soap::envelope(&op(NS_DEV, "GetDeviceInformation", ""), Some(&t)),
        None,
    );
    assert_eq!(r.status, 400);
    assert!(
        fault_subcodes(&r)
            .iter()
            .any(|s| s.ends_with("NotAuthorized"))
    );
    assert!(r.www_authenticate.is_none());
}

/// A token is checked against the camera's clock: with the camera 10 minutes
/// ahead, a token stamped with real time fails; one stamped with the
/// camera's time (what a client using the measured offset sends) passes.
#[test]
fn clock_skew_decides_token_acceptance() {
    let mut h = Harness::new(Flavour::Uniview);
    h.fault = Some(Fault::ClockSkew(600));
    let t = h.token("s3cret", NOW);
    let r = h.call(
        &soap::envelope(&op(NS_DEV, "GetScopes", ""), Some(&t)),
        None,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("away from the server"), "{}", r.body);
    let t = h.token("s3cret", NOW + time::Duration::seconds(600));
    let r = h.call(
        &soap::envelope(&op(NS_DEV, "GetScopes", ""), Some(&t)),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // Within the ±5 s window, but not beyond it.
    h.fault = None;
    let t = h.token("s3cret", NOW + time::Duration::seconds(4));
    assert_eq!(
        h.call(
            &soap::envelope(&op(NS_DEV, "GetScopes", ""), Some(&t)),
            None
        )
        .status,
        200
    );
    let t = h.token("s3cret", NOW - time::Duration::seconds(7));
    assert_eq!(
        h.call(
            &soap::envelope(&op(NS_DEV, "GetScopes", ""), Some(&t)),
            None
        )
        .status,
        400
    );
}

/// The same token (same nonce) sent twice within the window is a replay.
#[test]
fn replayed_nonce_is_refused() {
    let mut h = Harness::new(Flavour::Generic);
    let t = h.token("s3cret", NOW);
    let env = soap::envelope(&op(NS_DEV, "GetScopes", ""), Some(&t));
    assert_eq!(h.call(&env, None).status, 200);
    let r = h.call(&env, None);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("replayed"));
}

fn digest_header(h: &Harness, challenge: &str, password: &str) -> String {
    let p = crate::digest::parse_authorization(challenge).unwrap();
    let params = DigestParams {
        username: h.cam.username.clone(),
        realm: p.realm.clone(),
        nonce: p.nonce.clone(),
        uri: "/onvif/device_service".into(),
        qop: Some("auth".into()),
        nc: Some("00000001".into()),
        cnonce: Some("c0ffee".into()),
        ..Default::default()
    };
    let resp = expected_response(&params, "POST", password);
    format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"/onvif/device_service\", response=\"{resp}\", qop=auth, nc=00000001, cnonce=\"c0ffee\"",
        params.username, params.realm, params.nonce
    )
}

/// HTTP Digest: answering the challenge with the right password works,
/// with a wrong one yields another 401.
#[test]
fn http_digest_accept_and_reject() {
    let mut h = Harness::new(Flavour::Axis);
    let env = soap::envelope(&op(NS_DEV, "GetNetworkInterfaces", ""), None);
    let ch = h.call(&env, None).www_authenticate.unwrap();
    let good = digest_header(&h, &ch, "s3cret");
    let r = h.call(&env, Some(&good));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(body_text(&r, "HwAddress"), Some(h.cam.mac_string()));
    let bad = digest_header(&h, &ch, "guess");
    let r = h.call(&env, Some(&bad));
    assert_eq!(r.status, 401);
    assert!(r.www_authenticate.is_some());
}

/// WrongPassword: the configured password no longer works, by either method.
#[test]
fn wrong_password_fault_fails_every_auth() {
    let mut h = Harness::new(Flavour::TpLink);
    h.fault = Some(Fault::WrongPassword);
    assert_eq!(
        h.authed(&op(NS_DEV, "GetDeviceInformation", "")).status,
        400
    );
    let env = soap::envelope(&op(NS_DEV, "GetDeviceInformation", ""), None);
    let ch = h.call(&env, None).www_authenticate.unwrap();
    let good = digest_header(&h, &ch, "s3cret");
    assert_eq!(h.call(&env, Some(&good)).status, 401);
}

/// AuthEverything: even GetSystemDateAndTime is challenged, and works with auth.
#[test]
fn auth_everything_fault() {
    let mut h = Harness::new(Flavour::Generic);
    h.fault = Some(Fault::AuthEverything);
    let r = h.call(
        &soap::envelope(&op(NS_DEV, "GetSystemDateAndTime", ""), None),
        None,
    );
    assert_eq!(r.status, 401);
    assert_eq!(
        h.authed(&op(NS_DEV, "GetSystemDateAndTime", "")).status,
        200
    );
}

/// MalformedXml: the answer no longer parses.
#[test]
fn malformed_xml_fault() {
    let mut h = Harness::new(Flavour::Hikvision);
    h.fault = Some(Fault::MalformedXml);
    let r = h.call(
        &soap::envelope(&op(NS_DEV, "GetSystemDateAndTime", ""), None),
        None,
    );
    assert_eq!(r.status, 200);
    assert!(xml::parse(&r.body).is_err());
}

/// Garbage, DTDs and non-POST requests get SOAP faults, never a panic.
#[test]
fn bad_requests() {
    let mut h = Harness::new(Flavour::Hikvision);
    assert_eq!(h.call("<not closed", None).status, 400);
    let dtd = "<!DOCTYPE x [<!ENTITY a \"b\">]><x>&a;</x>";
    assert_eq!(h.call(dtd, None).status, 400);
    assert_eq!(h.call("<Envelope><Body/></Envelope>", None).status, 400);
    let r = h.authed(&op(NS_DEV, "SystemReboot", ""));
    assert_eq!(r.status, 500);
    assert!(
        fault_subcodes(&r)
            .iter()
            .any(|s| s.ends_with("ActionNotSupported"))
    );
}

/// Every flavour: device info, services, scopes, MAC, both media profiles
/// with stream and snapshot URIs; Media2 only where the vendor has it.
#[test]
fn every_flavour_answers_the_inventory_calls() {
    for f in ALL {
        let mut h = Harness::new(f);
        let info = f.info();
        let r = h.authed(&op(NS_DEV, "GetDeviceInformation", ""));
        assert_eq!(body_text(&r, "Model").as_deref(), Some(info.model), "{f}");
        assert_eq!(
            body_text(&r, "FirmwareVersion").as_deref(),
            Some(info.firmware)
        );

        let r = h.authed(&op(
            NS_DEV,
            "GetServices",
            "<IncludeCapability>false</IncludeCapability>",
        ));
        let doc = xml::parse(&r.body).unwrap();
        let nss: Vec<String> = xml::find_all(doc.root_element(), "Namespace")
            .filter_map(xml::text)
            .collect();
        assert!(nss.iter().any(|n| n == NS_M1), "{f}");
        assert_eq!(nss.iter().any(|n| n == NS_M2), f.has_media2(), "{f}");
        let dev_xaddr = xml::find_all(doc.root_element(), "Service")
            .find(|s| xml::find_text(*s, "Namespace").as_deref() == Some(NS_DEV))
            .and_then(|s| xml::find_text(s, "XAddr"));
        assert_eq!(dev_xaddr, Some(h.cam.xaddr()));

        let r = h.authed(&op(NS_DEV, "GetCapabilities", "<Category>All</Category>"));
        let doc = xml::parse(&r.body).unwrap();
        let media = xml::find(doc.root_element(), "Media").and_then(|m| xml::find_text(m, "XAddr"));
        assert_eq!(media, Some(h.cam.service_xaddr(info.media_path)));

        let r = h.authed(&op(NS_DEV, "GetScopes", ""));
        let doc = xml::parse(&r.body).unwrap();
        let items: Vec<String> = xml::find_all(doc.root_element(), "ScopeItem")
            .filter_map(xml::text)
            .collect();
        assert!(
            items.contains(&"onvif://www.onvif.org/location/village/qingshan-dongcun".to_string())
        );
        assert!(items.contains(&format!("onvif://www.onvif.org/hardware/{}", info.model)));

        let r = h.authed(&op(NS_DEV, "GetNetworkInterfaces", ""));
        assert_eq!(body_text(&r, "HwAddress"), Some(h.cam.mac_string()));

        for (ns, media2) in [(NS_M1, false), (NS_M2, true)] {
            let r = h.authed(&op(ns, "GetProfiles", ""));
            if media2 && !f.has_media2() {
                assert_eq!(r.status, 500, "{f} has no Media2");
                continue;
            }
            assert_eq!(r.status, 200, "{f} {ns}: {}", r.body);
            let doc = xml::parse(&r.body).unwrap();
            let profiles: Vec<_> = xml::find_all(doc.root_element(), "Profiles").collect();
            assert_eq!(profiles.len(), 2, "{f}");
            let tokens: Vec<&str> = profiles
                .iter()
                .filter_map(|p| xml::attr(*p, "token"))
                .collect();
            assert_eq!(tokens, info.profile_tokens.to_vec());
            let main = profiles[0];
            assert_eq!(xml::find_text(main, "Width").as_deref(), Some("1280"));
            assert_eq!(
                xml::find_text(main, "FrameRateLimit").as_deref(),
                Some("25")
            );
            assert_eq!(xml::find_text(main, "BitrateLimit").as_deref(), Some("512"));
            assert_eq!(
                xml::find_text(profiles[1], "Height").as_deref(),
                Some("360")
            );

            for (i, token) in info.profile_tokens.iter().enumerate() {
                let inner = format!(
                    "<StreamSetup><Stream xmlns=\"http://www.onvif.org/ver10/schema\">RTP-Unicast</Stream></StreamSetup><ProfileToken>{token}</ProfileToken>"
                );
                let r = h.authed(&op(ns, "GetStreamUri", &inner));
                assert_eq!(r.status, 200, "{f}: {}", r.body);
                let uri = body_text(&r, "Uri").unwrap();
                assert_eq!(uri, h.cam.stream_uri(i));
                assert!(uri.contains(info.stream_paths[i]), "{f}: {uri}");
                let inner = format!("<ProfileToken>{token}</ProfileToken>");
                let r = h.authed(&op(ns, "GetSnapshotUri", &inner));
                let snap = body_text(&r, "Uri").unwrap();
                assert_eq!(snap, h.cam.snapshot_uri(i), "{f}");
                assert!(snap.ends_with(info.snapshot_paths[i]), "{f}: {snap}");
            }
            let r = h.authed(&op(ns, "GetStreamUri", "<ProfileToken>nope</ProfileToken>"));
            assert_eq!(r.status, 400);
        }
    }
}

/// Hikvision stream paths are /Streaming/Channels/101 and 102; Dahua's are
/// realmonitor with `&` escaped in XML.
#[test]
fn vendor_stream_paths() {
    let hik = cam(Flavour::Hikvision);
    assert_eq!(
        hik.stream_uri(0),
        format!("rtsp://{}:554/Streaming/Channels/101", hik.ip)
    );
    let mut h = Harness::new(Flavour::Dahua);
    let r = h.authed(&op(
        NS_M1,
        "GetStreamUri",
        "<ProfileToken>MediaProfile00001</ProfileToken>",
    ));
    assert!(r.body.contains("channel=1&amp;subtype=1"), "{}", r.body);
    assert!(
        body_text(&r, "Uri")
            .unwrap()
            .ends_with("channel=1&subtype=1")
    );
}

/// Dahua-style answers use `MC1:`/`MC2:`/`MC3:` prefixes and still parse by local name.
#[test]
fn dahua_unusual_prefixes() {
    let mut h = Harness::new(Flavour::Dahua);
    let r = h.authed(&op(NS_DEV, "GetDeviceInformation", ""));
    assert!(
        r.body.contains("<MC1:GetDeviceInformationResponse>"),
        "{}",
        r.body
    );
    let r = h.authed(&op(NS_M1, "GetProfiles", ""));
    assert!(r.body.contains("<MC2:Profiles") && r.body.contains("<MC3:Resolution>"));
    let doc = xml::parse(&r.body).unwrap();
    assert_eq!(
        xml::find(doc.root_element(), "GetProfilesResponse").and_then(|n| n.tag_name().namespace()),
        Some(NS_M1)
    );
}

/// Templates have no placeholder left unfilled.
#[test]
fn no_unrendered_placeholders() {
    for f in ALL {
        let mut h = Harness::new(f);
        for (ns, name) in [
            (NS_DEV, "GetSystemDateAndTime"),
            (NS_DEV, "GetDeviceInformation"),
            (NS_DEV, "GetServices"),
            (NS_DEV, "GetCapabilities"),
            (NS_DEV, "GetScopes"),
            (NS_DEV, "GetNetworkInterfaces"),
            (NS_M1, "GetProfiles"),
            (NS_M2, "GetProfiles"),
            (NS_DEV, "Nope"),
        ] {
            let r = h.authed(&op(ns, name, ""));
            assert!(
                !r.body.contains("{{") && !r.body.contains("}}"),
                "{f} {name}"
            );
            assert!(xml::parse(&r.body).is_ok(), "{f} {name}");
        }
    }
}

/// The renderer fills known keys, drops unknown ones, keeps unterminated text.
#[test]
fn render_placeholders() {
    assert_eq!(render("a{{x}}b{{y}}c", &[("x", "1")]), "a1bc");
    assert_eq!(render("a{{x", &[("x", "1")]), "a{{x");
}

mod events {
    //! The event service and clock setters, read back with the gateway's
    //! own parsers (`device_drivers::onvif_events`).
    use std::time::Duration;

    use device_drivers::onvif_events as ev;

    use super::*;

    const NS_EV: &str = "http://www.onvif.org/ver10/events/wsdl";

    /// Subscribes as the gateway does (WS-Addressed); later calls go to
    /// the subscription's address, with `h.refs` its reference parameters.
    fn subscribe(h: &mut Harness) -> ev::Subscription {
        let r = h.addressed(
            &ev::create_pull_point_subscription(Duration::from_secs(60)),
            ev::ACTION_CREATE_PULL_POINT,
            &[],
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let s = ev::parse_create_pull_point_subscription(r.body.as_bytes(), 1 << 20).unwrap();
        h.target = format!("/{}", s.address.splitn(4, '/').nth(3).unwrap());
        h.refs = s.reference_parameters.clone();
        s
    }

    fn pull(h: &mut Harness) -> (Reply, ev::Pulled) {
        let refs = h.refs.clone();
        let r = h.addressed(
            &ev::pull_messages(Duration::from_secs(5), 50),
            ev::ACTION_PULL_MESSAGES,
            &refs,
        );
        let p = ev::parse_pull_messages(r.body.as_bytes(), 1 << 20)
            .unwrap_or_else(|e| panic!("{e}: {}", r.body));
        (r, p)
    }

    /// Each flavour with events raises tamper under its vendor's topic,
    /// which the gateway's table maps to `tamper`; new subscriptions start
    /// with the state; an empty pull asks the server to wait.
    #[test]
    fn tamper_under_vendor_topics() {
        for (f, topic) in [
            (Flavour::Hikvision, "RuleEngine/TamperDetector/Tamper"),
            (
                Flavour::Dahua,
                "VideoSource/GlobalSceneChange/ImagingService",
            ),
            (Flavour::Uniview, "RuleEngine/TamperDetector/Tamper"),
            (Flavour::Axis, "VideoSource/Tampering"),
        ] {
            let mut h = Harness::new(f);
            let s = subscribe(&mut h);
            assert_eq!(s.termination_time, Some(NOW + Duration::from_secs(60)));
            let (_, init) = pull(&mut h);
            assert_eq!(init.messages.len(), 3, "{f:?}");
            assert!(
                init.messages
                    .iter()
                    .all(|m| m.operation == Some(ev::PropertyOperation::Initialized))
            );
            let (r, empty) = pull(&mut h);
            assert!(empty.messages.is_empty());
            assert_eq!(r.pull.map(|p| p.wait), Some(Duration::from_secs(5)));
            h.fault = Some(Fault::Tamper);
            let (r, p) = pull(&mut h);
            assert_eq!(r.pull, None);
            assert_eq!(p.messages.len(), 1, "{f:?}");
            assert_eq!(p.messages[0].topic, topic);
            assert_eq!(
                ev::classify(&p.messages[0]),
                Some((ev::EventKind::Tamper, Some(true)))
            );
            h.fault = Some(Fault::VideoLoss);
            let (_, p) = pull(&mut h);
            let got: Vec<_> = p.messages.iter().filter_map(ev::classify).collect();
            assert_eq!(
                got,
                vec![
                    (ev::EventKind::Tamper, Some(false)),
                    (ev::EventKind::VideoLoss, Some(true))
                ],
                "{f:?}"
            );
        }
    }

    #[test]
    fn cameras_without_events_say_so() {
        for f in [Flavour::TpLink, Flavour::Generic] {
            let mut h = Harness::new(f);
            let r = h.authed(&ev::create_pull_point_subscription(Duration::from_secs(60)));
            assert_eq!(r.status, 500, "{f:?}");
            assert_eq!(fault_subcodes(&r), vec!["ter:ActionNotSupported"]);
            let r = h.authed(&op(
                NS_DEV,
                "GetServices",
                "<IncludeCapability>false</IncludeCapability>",
            ));
            let svc = device_drivers::onvif::parse_services(r.body.as_bytes(), 1 << 20).unwrap();
            assert_eq!(svc.events(), None, "{f:?}");
        }
        let mut h = Harness::new(Flavour::Hikvision);
        let r = h.authed(&op(
            NS_DEV,
            "GetServices",
            "<IncludeCapability>false</IncludeCapability>",
        ));
        let svc = device_drivers::onvif::parse_services(r.body.as_bytes(), 1 << 20).unwrap();
        assert!(svc.events().is_some());
        let _ = NS_EV;
    }

    #[test]
    fn expiry_renew_and_unsubscribe() {
        let mut h = Harness::new(Flavour::Hikvision);
        subscribe(&mut h);
        let r = h.authed(&ev::renew(Duration::from_secs(120)));
        let renewed = ev::parse_renew(r.body.as_bytes(), 1 << 20).unwrap();
        assert_eq!(
            renewed.termination_time,
            Some(NOW + Duration::from_secs(120))
        );
        h.fault = Some(Fault::ExpireSubscriptions);
        let r = h.authed(&ev::pull_messages(Duration::from_secs(5), 50));
        assert_eq!(r.status, 400);
        assert!(r.body.contains("does not exist"), "{}", r.body);
        h.fault = None;
        subscribe(&mut h);
        let r = h.authed(&ev::unsubscribe());
        ev::parse_unsubscribe(r.body.as_bytes(), 1 << 20).unwrap();
        let r = h.authed(&ev::renew(Duration::from_secs(120)));
        assert_eq!(r.status, 400);
        // Time passes on the camera's clock: the subscription ends.
        subscribe(&mut h);
        h.now += Duration::from_secs(61);
        let r = h.authed(&ev::pull_messages(Duration::from_secs(5), 50));
        assert_eq!(r.status, 400);
    }

    /// Axis is strict about WS-Addressing, failure paths first: a create
    /// without or with the wrong `wsa:Action`, then calls on the
    /// subscription without the action (what the gateway sent before it
    /// spoke WS-Addressing), without the `SubscriptionId` reference
    /// parameter, or with another one, are refused and change nothing; the
    /// properly addressed calls work. Other flavours take either.
    #[test]
    fn axis_refuses_event_calls_without_ws_addressing() {
        let mut h = Harness::new(Flavour::Axis);
        h.target = "/onvif/services".into();
        let create = ev::create_pull_point_subscription(Duration::from_secs(60));
        let r = h.authed(&create);
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(fault_subcodes(&r), ["wsa5:MessageAddressingHeaderRequired"]);
        let r = h.addressed(&create, ev::ACTION_PULL_MESSAGES, &[]);
        assert_eq!(fault_subcodes(&r), ["wsa5:ActionNotSupported"]);
        assert_eq!(h.events.subscriptions(), 0);

        let s = subscribe(&mut h);
        assert_eq!(
            s.address,
            format!("http://{}:8080/onvif/services", h.cam.ip)
        );
        assert_eq!(s.reference_parameters.len(), 1);
        let pull_body = ev::pull_messages(Duration::from_secs(5), 50);
        let r = h.authed(&pull_body);
        assert_eq!(fault_subcodes(&r), ["wsa5:MessageAddressingHeaderRequired"]);
        assert!(matches!(
            ev::parse_pull_messages(r.body.as_bytes(), 1 << 20),
            Err(soap::SoapError::Fault(_))
        ));
        let r = h.addressed(&pull_body, ev::ACTION_PULL_MESSAGES, &[]);
        assert_eq!(fault_subcodes(&r), ["wsa5:InvalidAddressingHeader"]);
        assert!(r.body.contains("SubscriptionId"), "{}", r.body);
        let mut other = s.reference_parameters.clone();
        other[0].content = vec![wsa::Content::Text("99".into())];
        let r = h.addressed(&pull_body, ev::ACTION_PULL_MESSAGES, &other);
        assert_eq!(r.status, 400);
        assert!(r.body.contains("does not exist"), "{}", r.body);
        let renew_body = ev::renew(Duration::from_secs(120));
        for (body, action) in [
            (renew_body.as_str(), ev::ACTION_RENEW),
            (&ev::unsubscribe(), ev::ACTION_UNSUBSCRIBE),
        ] {
            let r = h.authed(body);
            assert_eq!(fault_subcodes(&r), ["wsa5:MessageAddressingHeaderRequired"]);
            let r = h.addressed(body, action, &[]);
            assert_eq!(fault_subcodes(&r), ["wsa5:InvalidAddressingHeader"]);
        }
        assert_eq!(h.events.subscriptions(), 1, "nothing was ended");

        let (_, init) = pull(&mut h);
        assert_eq!(init.messages.len(), 3);
        let refs = h.refs.clone();
        let r = h.addressed(&renew_body, ev::ACTION_RENEW, &refs);
        let renewed = ev::parse_renew(r.body.as_bytes(), 1 << 20).unwrap();
        assert_eq!(
            renewed.termination_time,
            Some(NOW + Duration::from_secs(120))
        );
        let r = h.addressed(&ev::unsubscribe(), ev::ACTION_UNSUBSCRIBE, &refs);
        ev::parse_unsubscribe(r.body.as_bytes(), 1 << 20).unwrap();
        assert_eq!(h.events.subscriptions(), 0);

        // Lenient flavours: by URL, with or without WS-Addressing.
        let mut h = Harness::new(Flavour::Hikvision);
        let s = subscribe(&mut h);
        assert!(s.reference_parameters.is_empty());
        let r = h.authed(&pull_body);
        assert_eq!(r.status, 200, "{}", r.body);
        let r = h.authed(&create);
        assert_eq!(r.status, 200, "{}", r.body);
    }

    #[test]
    fn set_date_time_and_ntp_move_the_clock() {
        let mut h = Harness::new(Flavour::Dahua);
        h.fault = Some(Fault::ClockSkew(600));
        let gsdt = |h: &mut Harness| {
            let r = h.call(
                &soap::envelope(&op(NS_DEV, "GetSystemDateAndTime", ""), None),
                None,
            );
            device_drivers::onvif::parse_system_date_and_time(r.body.as_bytes(), 1 << 20).unwrap()
        };
        assert_eq!(gsdt(&mut h).utc, NOW + Duration::from_secs(600));
        // The token must match the skewed clock to be accepted.
        let t = h.token("s3cret", NOW + Duration::from_secs(600));
        let r = h.call(
            &soap::envelope(&ev::set_system_date_and_time(NOW, "CST-8"), Some(&t)),
            None,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        ev::parse_set_system_date_and_time(r.body.as_bytes(), 1 << 20).unwrap();
        assert_eq!(gsdt(&mut h).utc, NOW);
        assert_eq!(gsdt(&mut h).date_time_type.as_deref(), Some("Manual"));
        // Off by an hour again, then NTP brings it back to real time.
        let r = h.authed(&ev::set_system_date_and_time(
            NOW + Duration::from_secs(3600),
            "CST-8",
        ));
        assert_eq!(r.status, 200);
        assert_eq!(gsdt(&mut h).utc, NOW + Duration::from_secs(3600));
        let t = h.token("s3cret", NOW + Duration::from_secs(3600));
        let r = h.call(&soap::envelope(&ev::set_ntp("192.0.2.1"), Some(&t)), None);
        ev::parse_set_ntp(r.body.as_bytes(), 1 << 20).unwrap();
        let t = h.token("s3cret", NOW + Duration::from_secs(3600));
        let r = h.call(
            &soap::envelope(&ev::set_date_time_ntp("CST-8"), Some(&t)),
            None,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(gsdt(&mut h).utc, NOW);
        assert_eq!(gsdt(&mut h).date_time_type.as_deref(), Some("NTP"));
        // A refusal names what was wrong.
        let r = h.authed(&ev::set_system_date_and_time(NOW, "not a zone"));
        assert_eq!(r.status, 400);
        assert!(r.body.contains("POSIX"), "{}", r.body);
    }
}
