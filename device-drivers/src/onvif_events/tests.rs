use super::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/onvif/");

fn file(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The agsh captures are doT templates: fill the placeholders their server
/// fills (address, conditionals, times) the way it would; `UtcTime` of the
/// messages is left as the marker on purpose.
fn filled(name: &str) -> Vec<u8> {
    String::from_utf8(file(name))
        .unwrap()
        .replace("{{? Math.random() < 0.5 }}", "")
        .replace("{{?}}", "")
        .replace("{{=it.hostname}}", "192.0.2.10")
        .replace("{{=it.port}}", "80")
        .replace("{{=it.pullPointUrl}}", "/onvif/pullpoint/1")
        .replace(
            "<wsnt:CurrentTime>{{=new Date().toISOString()}}",
            "<wsnt:CurrentTime>2026-12-06T09:00:00.000Z",
        )
        .replace(
            "{{=new Date(Date.now()+5000).toISOString()}}",
            "2026-12-06T09:00:05.000Z",
        )
        .into_bytes()
}

fn t(s: &str) -> OffsetDateTime {
    parse_date_time(s).expect(s)
}

#[test]
fn agsh_capture_pull_messages_motion_without_a_usable_time() {
    let p = parse_pull_messages(&filled("agsh-mockup/PullMessages.xml"), MAX_EVENT_BODY).unwrap();
    assert_eq!(p.current_time, Some(t("2000-01-03T03:58:33Z")));
    assert_eq!(p.termination_time, Some(t("2000-01-03T04:04:02Z")));
    assert_eq!(p.messages.len(), 2);
    assert_eq!(p.dropped, 0);
    let m = &p.messages[0];
    assert_eq!(m.topic, "RuleEngine/CellMotionDetector/Motion");
    // The capture's UtcTime is a template marker: no time, not an error.
    assert_eq!(m.utc_time, None);
    assert_eq!(m.source.len(), 3);
    assert_eq!(m.data, vec![("IsMotion".into(), "true".into())]);
    assert_eq!(classify(m), Some((EventKind::Motion, Some(true))));
}

#[test]
fn agsh_capture_create_subscription_and_empty_answers() {
    let s = parse_create_pull_point_subscription(
        &filled("agsh-mockup/events.CreatePullPointSubscription.xml"),
        MAX_EVENT_BODY,
    )
    .unwrap();
    assert_eq!(s.address, "http://192.0.2.10:80/onvif/pullpoint/1");
    assert_eq!(s.current_time, Some(t("2026-12-06T09:00:00Z")));
    assert_eq!(s.termination_time, Some(t("2026-12-06T09:00:05Z")));
    // Unfilled, the capture's address is a template marker: a clear error.
    let e = parse_create_pull_point_subscription(
        &file("agsh-mockup/events.CreatePullPointSubscription.xml"),
        MAX_EVENT_BODY,
    )
    .unwrap_err();
    assert!(e.to_string().contains("subscription address"), "{e}");
    parse_unsubscribe(&file("agsh-mockup/Unsubscribe.xml"), MAX_EVENT_BODY).unwrap();
    parse_set_system_date_and_time(
        &file("agsh-mockup/SetSystemDateAndTime.xml"),
        MAX_EVENT_BODY,
    )
    .unwrap();
    parse_set_ntp(&file("agsh-mockup/device.SetNTP.xml"), MAX_EVENT_BODY).unwrap();
    // The wrong answer for the operation is an error naming what is missing.
    let e = parse_set_ntp(&file("agsh-mockup/Unsubscribe.xml"), MAX_EVENT_BODY).unwrap_err();
    assert_eq!(e, SoapError::Xml(XmlError::Missing("SetNTPResponse")));
}

#[test]
fn vendor_topics_map_to_kinds() {
    let hik = parse_pull_messages(
        &file("synthetic/hikvision.PullMessages.tamper.xml"),
        MAX_EVENT_BODY,
    )
    .unwrap();
    assert_eq!(
        classify(&hik.messages[0]),
        Some((EventKind::Tamper, Some(true)))
    );
    assert_eq!(hik.messages[0].operation, Some(PropertyOperation::Changed));
    assert_eq!(hik.messages[0].utc_time, Some(t("2026-12-06T09:00:04Z")));
    assert_eq!(
        classify(&hik.messages[1]),
        Some((EventKind::VideoLoss, Some(false)))
    );
    assert_eq!(
        hik.messages[1].operation,
        Some(PropertyOperation::Initialized)
    );

    let dahua = parse_pull_messages(
        &file("synthetic/dahua.PullMessages.scene.xml"),
        MAX_EVENT_BODY,
    )
    .unwrap();
    // +08:00 is converted to UTC.
    assert_eq!(dahua.current_time, Some(t("2026-12-06T09:00:05Z")));
    assert_eq!(
        dahua.messages[0].topic,
        "VideoSource/GlobalSceneChange/ImagingService"
    );
    assert_eq!(
        classify(&dahua.messages[0]),
        Some((EventKind::Tamper, Some(true)))
    );
    assert_eq!(
        classify(&dahua.messages[1]),
        Some((EventKind::Motion, Some(true)))
    );

    let axis = parse_pull_messages(
        &file("synthetic/axis.PullMessages.tampering.xml"),
        MAX_EVENT_BODY,
    )
    .unwrap();
    assert_eq!(axis.messages[0].topic, "VideoSource/Tampering");
    assert_eq!(
        classify(&axis.messages[0]),
        Some((EventKind::Tamper, Some(true)))
    );
    assert_eq!(
        classify(&axis.messages[1]),
        Some((EventKind::DigitalInput, Some(true)))
    );
    // Unknown topics parse but do not classify (the caller counts them).
    assert_eq!(classify(&axis.messages[2]), None);
}

#[test]
fn topic_matching_is_by_whole_segments() {
    let n = |topic: &str, v: &str| Notification {
        topic: topic.into(),
        operation: None,
        utc_time: None,
        source: vec![],
        data: vec![("State".into(), v.into())],
    };
    assert_eq!(classify(&n("VideoSource/SignalLossX", "true")), None);
    assert_eq!(
        classify(&n("videosource/signalloss", "false")),
        Some((EventKind::VideoLoss, Some(false)))
    );
    assert_eq!(
        classify(&n("VideoSource/ImageTooDark/AnalyticsService", "junk")),
        Some((EventKind::Tamper, None))
    );
    assert_eq!(
        normalize_topic(" tns1:A/tnsaxis:B ").as_deref(),
        Some("A/B")
    );
    assert_eq!(normalize_topic("   "), None);
    assert_eq!(normalize_topic(&"a".repeat(MAX_TOPIC_LEN + 1)), None);
}

fn pull_with(n: usize, topic: &str) -> Vec<u8> {
    let one = format!(
        r#"<wsnt:NotificationMessage><wsnt:Topic>{topic}</wsnt:Topic><wsnt:Message><tt:Message UtcTime="2026-12-06T09:00:04Z"><tt:Data><tt:SimpleItem Name="State" Value="true"/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage>"#
    );
    format!(
        r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsnt="{NS_WSNT}" xmlns:tt="{NS_SCHEMA}" xmlns:tev="{NS_EVENTS}"><s:Body><tev:PullMessagesResponse>{}</tev:PullMessagesResponse></s:Body></s:Envelope>"#,
        one.repeat(n)
    )
    .into_bytes()
}

#[test]
fn caps_on_messages_topic_length_and_size() {
    let many = pull_with(MAX_MESSAGES + 50, "tns1:VideoSource/SignalLoss");
    let p = parse_pull_messages(&many, xml::MAX_XML_BYTES).unwrap();
    assert_eq!(p.messages.len(), MAX_MESSAGES);
    assert_eq!(p.dropped, 50);
    let p = parse_pull_messages_capped(&many, xml::MAX_XML_BYTES, 10).unwrap();
    assert_eq!((p.messages.len(), p.dropped), (10, MAX_MESSAGES + 40));
    let long = pull_with(3, &"x/".repeat(MAX_TOPIC_LEN));
    let p = parse_pull_messages(&long, MAX_EVENT_BODY).unwrap();
    assert_eq!((p.messages.len(), p.dropped), (0, 3));
    // Over the body cap: refused before parsing.
    let e = parse_pull_messages(&many, 1000).unwrap_err();
    assert!(
        matches!(e, SoapError::Xml(XmlError::TooLarge { .. })),
        "{e:?}"
    );
    // Many items: only MAX_ITEMS kept.
    let items: String = (0..100)
        .map(|i| format!(r#"<tt:SimpleItem Name="n{i}" Value="v"/>"#))
        .collect();
    let body = String::from_utf8(pull_with(1, "tns1:A"))
        .unwrap()
        .replace(r#"<tt:SimpleItem Name="State" Value="true"/>"#, &items);
    let p = parse_pull_messages(body.as_bytes(), MAX_EVENT_BODY).unwrap();
    assert_eq!(p.messages[0].data.len(), MAX_ITEMS);
}

#[test]
fn faults_and_junk_are_errors() {
    let fault = file("synthetic/fault.NotAuthorized.xml");
    assert!(matches!(
        parse_pull_messages(&fault, MAX_EVENT_BODY),
        Err(SoapError::Fault(_))
    ));
    assert!(parse_renew(b"<a/>", MAX_EVENT_BODY).is_err());
    assert!(parse_create_pull_point_subscription(b"", MAX_EVENT_BODY).is_err());
    let bad_addr = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><CreatePullPointSubscriptionResponse><SubscriptionReference><Address>file:///etc/passwd</Address></SubscriptionReference></CreatePullPointSubscriptionResponse></s:Body></s:Envelope>"#;
    assert!(matches!(
        parse_create_pull_point_subscription(bad_addr.as_bytes(), MAX_EVENT_BODY),
        Err(SoapError::Protocol(_))
    ));
}

#[test]
fn builders_round_trip_through_the_parsers_shape() {
    assert_eq!(duration(Duration::from_secs(60)), "PT60S");
    assert_eq!(duration(Duration::ZERO), "PT1S");
    assert!(create_pull_point_subscription(Duration::from_secs(60)).contains("PT60S"));
    assert!(pull_messages(Duration::from_secs(10), 64).contains("<MessageLimit>64<"));
    assert!(renew(Duration::from_secs(120)).contains("PT120S"));
    let body = set_system_date_and_time(t("2026-12-06T09:08:07Z"), "CST-8");
    for want in [
        "<tt:Year>2026<",
        "<tt:Month>12<",
        "<tt:Hour>9<",
        "<tt:Second>7<",
        "<tt:TZ>CST-8<",
        ">Manual<",
    ] {
        assert!(body.contains(want), "{want} in {body}");
    }
    // The builder's output is well-formed and escapes its input.
    let env = soap::envelope(&set_ntp("ntp.example<cn>"), None);
    assert!(xml::parse(&env).is_ok());
    assert!(env.contains("<tt:DNSname>ntp.example&lt;cn&gt;<"));
    assert!(set_ntp("192.0.2.1").contains("<tt:IPv4Address>192.0.2.1<"));
    assert!(set_date_time_ntp("CST-8").contains(">NTP<"));
}

/// Every prefix of every event capture (a camera dropping the connection
/// mid-answer) gives a value or an error, never a panic: a cheap,
/// deterministic stand-in for the `onvif_events` fuzz target.
#[test]
fn truncated_event_answers_never_panic() {
    for name in [
        "synthetic/hikvision.PullMessages.tamper.xml",
        "synthetic/dahua.PullMessages.scene.xml",
        "synthetic/axis.PullMessages.tampering.xml",
        "synthetic/axis.CreatePullPointSubscription.xml",
    ] {
        let full = file(name);
        for end in (0..full.len()).step_by(7) {
            let part = &full[..end];
            let _ = parse_pull_messages(part, MAX_EVENT_BODY);
            let _ = parse_create_pull_point_subscription(part, MAX_EVENT_BODY);
            let _ = parse_renew(part, MAX_EVENT_BODY);
        }
    }
}

const AXIS_EVENT_NS: &str = "http://www.axis.com/2009/event";

/// Axis (after the public kerberos-io/onvif report): a generic
/// `/onvif/services` address and the subscription id as a reference
/// parameter, which is kept; a capture without one keeps none.
#[test]
fn axis_create_keeps_its_reference_parameters() {
    let s = parse_create_pull_point_subscription(
        &file("synthetic/axis.CreatePullPointSubscription.xml"),
        MAX_EVENT_BODY,
    )
    .unwrap();
    assert_eq!(s.address, "http://192.0.2.20/onvif/services");
    assert_eq!(s.reference_parameters.len(), 1);
    let id = &s.reference_parameters[0];
    assert_eq!(
        (
            id.namespace.as_deref(),
            id.name.as_str(),
            id.text().as_str()
        ),
        (Some(AXIS_EVENT_NS), "SubscriptionId", "297")
    );
    assert_eq!(s.termination_time, Some(t("2026-12-06T09:01:00Z")));
    let agsh = parse_create_pull_point_subscription(
        &filled("agsh-mockup/events.CreatePullPointSubscription.xml"),
        MAX_EVENT_BODY,
    )
    .unwrap();
    assert!(agsh.reference_parameters.is_empty());
}

fn create_answer(reference_parameters: &str) -> String {
    format!(
        concat!(
            r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://www.w3.org/2005/08/addressing">"#,
            "<s:Body><CreatePullPointSubscriptionResponse><SubscriptionReference>",
            "<a:Address>http://192.0.2.20/onvif/services</a:Address>{}",
            "</SubscriptionReference></CreatePullPointSubscriptionResponse></s:Body></s:Envelope>"
        ),
        reference_parameters
    )
}

/// Too many, too deep, too large or reserved reference parameters refuse
/// the subscription with an error that says so (a subscription we cannot
/// address is no subscription); a DTD or broken XML is refused as ever.
#[test]
fn hostile_reference_parameters_refuse_the_subscription() {
    let many: String = (0..=wsa::MAX_PARAMETERS)
        .map(|i| format!("<P xmlns=\"urn:v\">{i}</P>"))
        .collect();
    let big = format!("<P xmlns=\"urn:v\">{}</P>", "9".repeat(4096));
    let deep = format!(
        "<P xmlns=\"urn:v\">{}{}</P>",
        "<Q>".repeat(9),
        "</Q>".repeat(9)
    );
    let reserved = r#"<wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"/>"#;
    for (what, inner) in [
        ("many", many.as_str()),
        ("big", &big),
        ("deep", &deep),
        ("reserved", reserved),
    ] {
        let body = create_answer(&format!(
            "<a:ReferenceParameters>{inner}</a:ReferenceParameters>"
        ));
        match parse_create_pull_point_subscription(body.as_bytes(), MAX_EVENT_BODY) {
            Err(SoapError::Protocol(m)) => {
                assert!(m.contains("reference parameter"), "{what}: {m}")
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    let ok = create_answer(&format!(
        "<a:ReferenceParameters><Id xmlns=\"{AXIS_EVENT_NS}\">7</Id></a:ReferenceParameters>"
    ));
    let s = parse_create_pull_point_subscription(ok.as_bytes(), MAX_EVENT_BODY).unwrap();
    assert_eq!(s.reference_parameters[0].text(), "7");
    let dtd = format!(
        r#"<!DOCTYPE x [<!ENTITY e "eee">]>{}"#,
        create_answer("<a:ReferenceParameters><Id>&e;</Id></a:ReferenceParameters>")
    );
    assert_eq!(
        parse_create_pull_point_subscription(dtd.as_bytes(), MAX_EVENT_BODY),
        Err(SoapError::Xml(XmlError::Dtd))
    );
    let broken = create_answer("<a:ReferenceParameters><Id>");
    assert!(matches!(
        parse_create_pull_point_subscription(broken.as_bytes(), MAX_EVENT_BODY),
        Err(SoapError::Xml(_))
    ));
}

/// Each event call's envelope, as the client sends it, parses back with
/// its action, `To`, a MessageID, an anonymous ReplyTo, the echoed
/// subscription id, the operation in the body and a UsernameToken the
/// camera accepts.
#[test]
fn event_envelopes_carry_addressing_and_parse_back() {
    let sub = parse_create_pull_point_subscription(
        &file("synthetic/axis.CreatePullPointSubscription.xml"),
        MAX_EVENT_BODY,
    )
    .unwrap();
    let events_url = "http://192.0.2.20/onvif/services";
    let now = t("2026-12-06T09:00:00Z");
    let cases: [(&str, String, &str, &[wsa::Element]); 4] = [
        (
            ACTION_CREATE_PULL_POINT,
            create_pull_point_subscription(Duration::from_secs(60)),
            "CreatePullPointSubscription",
            &[],
        ),
        (
            ACTION_PULL_MESSAGES,
            pull_messages(Duration::from_secs(1), 64),
            "PullMessages",
            &sub.reference_parameters,
        ),
        (
            ACTION_RENEW,
            renew(Duration::from_secs(120)),
            "Renew",
            &sub.reference_parameters,
        ),
        (
            ACTION_UNSUBSCRIBE,
            unsubscribe(),
            "Unsubscribe",
            &sub.reference_parameters,
        ),
    ];
    for (action, body, op, refs) in cases {
        let token = soap::UsernameToken::new("root", "pw", [7; 16], now);
        let id = wsa::message_id([3; 16]);
        let a = wsa::Addressing {
            action,
            to: events_url,
            message_id: &id,
            reference_parameters: refs,
        };
        let env = soap::envelope_with(&body, Some(&token), Some(&a));
        let doc = xml::parse(&env).unwrap_or_else(|e| panic!("{op}: {e}: {env}"));
        let h = wsa::request_headers(doc.root_element()).unwrap();
        assert_eq!(h.action.as_deref(), Some(action), "{op}");
        assert_eq!(h.to.as_deref(), Some(events_url), "{op}");
        assert_eq!(h.message_id.as_deref(), Some(id.as_str()), "{op}");
        assert_eq!(h.reply_to.as_deref(), Some(wsa::ANONYMOUS), "{op}");
        assert_eq!(h.reference_parameters, refs, "{op}");
        let first = xml::child(doc.root_element(), "Body")
            .and_then(|b| b.children().find(|c| c.is_element()))
            .map(|n| n.tag_name().name().to_string());
        assert_eq!(first.as_deref(), Some(op));
        soap::verify_username_token(&env, "root", "pw", now, time::Duration::seconds(5))
            .unwrap_or_else(|e| panic!("{op}: {e}"));
        // Compact: no whitespace between tags.
        assert!(!env.contains(">\n") && !env.contains("> <"), "{op}");
    }
}
