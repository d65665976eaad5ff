use super::*;
use crate::soap;

const AXIS_NS: &str = "http://www.axis.com/2009/event";

/// An endpoint reference document with `inner` inside `ReferenceParameters`.
fn epr(inner: &str) -> String {
    format!(
        r#"<wsa5:EndpointReference xmlns:wsa5="{NS_WSA}"><wsa5:Address>http://192.0.2.10/onvif/services</wsa5:Address><wsa5:ReferenceParameters>{inner}</wsa5:ReferenceParameters></wsa5:EndpointReference>"#
    )
}

fn params(doc: &str) -> Result<Vec<Element>, WsaError> {
    let d = xml::parse(doc).expect("well-formed test input");
    reference_parameters(d.root_element())
}

/// The parameters as a request carrying them would show them to the camera.
fn echoed(p: &[Element]) -> RequestHeaders {
    let a = Addressing {
        action: "urn:test:Action",
        to: "http://192.0.2.10/onvif/services",
        message_id: "urn:uuid:00000000-0000-4000-8000-000000000000",
        reference_parameters: p,
    };
    let env = soap::envelope_with("<Ping/>", None, Some(&a));
    let d = xml::parse(&env).unwrap_or_else(|e| panic!("{e}: {env}"));
    request_headers(d.root_element()).expect("our own headers read back")
}

fn axis_id(v: &str) -> Element {
    Element {
        namespace: Some(AXIS_NS.into()),
        name: "SubscriptionId".into(),
        attributes: Vec::new(),
        content: vec![Content::Text(v.into())],
    }
}

/// Axis: the subscription id is a reference parameter; read back from our
/// own request it is the same element, marked, and nothing else is.
#[test]
fn axis_subscription_id_round_trips() {
    let p = params(&epr(&format!(
        r#"<dom0:SubscriptionId xmlns:dom0="{AXIS_NS}">297</dom0:SubscriptionId>"#
    )))
    .unwrap();
    assert_eq!(p, vec![axis_id("297")]);
    assert_eq!(p[0].text(), "297");
    let h = echoed(&p);
    assert_eq!(h.reference_parameters, p);
    assert_eq!(h.action.as_deref(), Some("urn:test:Action"));
    assert_eq!(h.to.as_deref(), Some("http://192.0.2.10/onvif/services"));
    assert_eq!(h.reply_to.as_deref(), Some(ANONYMOUS));
    assert!(h.message_id.is_some_and(|m| m.starts_with("urn:uuid:")));
}

/// No `ReferenceParameters` (the address says it all) is no parameter,
/// not an error; neither is an empty one.
#[test]
fn none_or_empty_is_no_parameter() {
    let d = format!(
        r#"<EndpointReference xmlns="{NS_WSA}"><Address>http://192.0.2.10/pullpoint/1</Address></EndpointReference>"#
    );
    assert_eq!(params(&d), Ok(Vec::new()));
    assert_eq!(params(&epr("  ")), Ok(Vec::new()));
    assert!(echoed(&[]).reference_parameters.is_empty());
}

/// Nesting, attributes (unqualified, namespaced, `xml:lang`), mixed
/// content, CDATA and markup characters survive the trip; comments are
/// dropped; a camera's own `IsReferenceParameter` is not doubled.
#[test]
fn nested_attributes_and_escapes_round_trip() {
    let inner = concat!(
        r#"<v:Ref xmlns:v="urn:vendor" xmlns:x="urn:other" xmlns:wsa="http://www.w3.org/2005/08/addressing" wsa:IsReferenceParameter="true" kind="a&amp;b &quot;q&quot;" x:flag="1" xml:lang="zh">"#,
        "head<v:Id>42</v:Id><!-- dropped --><Plain>no ns</Plain>",
        "<![CDATA[<raw> & ]]>",
        r#"<x:Deep><x:Deeper attr="&lt;/wsa:To&gt;">&lt;/s:Header&gt;</x:Deeper></x:Deep>"#,
        "</v:Ref>",
        r#"<Second xmlns="urn:vendor"/>"#
    );
    let p = params(&epr(inner)).unwrap();
    assert_eq!(p.len(), 2);
    let r = &p[0];
    assert_eq!(
        (r.namespace.as_deref(), r.name.as_str()),
        (Some("urn:vendor"), "Ref")
    );
    assert_eq!(r.attributes.len(), 3, "{:?}", r.attributes);
    assert!(r.attributes.contains(&Attribute {
        namespace: None,
        name: "kind".into(),
        value: "a&b \"q\"".into()
    }));
    assert_eq!(r.text(), "head<raw> & ");
    let h = echoed(&p);
    assert_eq!(h.reference_parameters, p);
    // The markup-looking text stayed text: one `To`, the real one.
    assert_eq!(h.to.as_deref(), Some("http://192.0.2.10/onvif/services"));
}

/// Values come back exactly as the camera sent them, whitespace a parser
/// would normalise (a CR in text, tab and line feed in an attribute, all
/// given as character references) and text split by a comment included.
#[test]
fn values_survive_normalisation() {
    let inner = r#"<Id xmlns="urn:v" a="x&#9;y&#10;z&#13;" b="  two  spaces ">l1&#13;&#10;l2<!-- c -->tail  </Id>"#;
    let p = params(&epr(inner)).unwrap();
    assert_eq!(p[0].attributes[0].value, "x\ty\nz\r");
    assert_eq!(p[0].attributes[1].value, "  two  spaces ");
    assert_eq!(p[0].content, vec![Content::Text("l1\r\nl2tail  ".into())]);
    assert_eq!(echoed(&p).reference_parameters, p);
}

/// Every cap is a typed error naming what was over: count, depth, bytes
/// read, bytes written (escaping grows text), reserved namespaces.
#[test]
fn caps_and_reserved_namespaces_refuse() {
    let many: String = (0..=MAX_PARAMETERS)
        .map(|i| format!("<P{i} xmlns=\"urn:v\">{i}</P{i}>"))
        .collect();
    assert_eq!(
        params(&epr(&many)),
        Err(WsaError::TooMany {
            count: MAX_PARAMETERS + 1,
            max: MAX_PARAMETERS
        })
    );
    let exactly: String = (0..MAX_PARAMETERS)
        .map(|i| format!("<P{i} xmlns=\"urn:v\">{i}</P{i}>"))
        .collect();
    assert_eq!(params(&epr(&exactly)).unwrap().len(), MAX_PARAMETERS);

    let deep = format!(
        "<A xmlns=\"urn:v\">{}x{}</A>",
        "<B>".repeat(MAX_DEPTH),
        "</B>".repeat(MAX_DEPTH)
    );
    assert_eq!(
        params(&epr(&deep)),
        Err(WsaError::TooDeep {
            name: "A".into(),
            max: MAX_DEPTH
        })
    );
    let ok_deep = format!(
        "<A xmlns=\"urn:v\">{}x{}</A>",
        "<B>".repeat(MAX_DEPTH - 1),
        "</B>".repeat(MAX_DEPTH - 1)
    );
    assert!(params(&epr(&ok_deep)).is_ok());

    let big = format!("<A xmlns=\"urn:v\">{}</A>", "x".repeat(MAX_PARAMETER_BYTES));
    assert_eq!(
        params(&epr(&big)),
        Err(WsaError::TooLarge {
            max: MAX_PARAMETER_BYTES
        })
    );
    // Under the cap read, over it written: `&` is five bytes escaped.
    let grows = format!("<A xmlns=\"urn:v\">{}</A>", "&amp;".repeat(1000));
    assert_eq!(
        params(&epr(&grows)),
        Err(WsaError::TooLarge {
            max: MAX_PARAMETER_BYTES
        })
    );

    for (ns, name) in [
        (soap::WSSE_NS, "Security"),
        (soap::SOAP_ENV_NS, "Body"),
        (NS_WSA, "To"),
    ] {
        let e = params(&epr(&format!("<{name} xmlns=\"{ns}\">x</{name}>"))).unwrap_err();
        assert_eq!(
            e,
            WsaError::Reserved {
                name: name.into(),
                namespace: ns.into()
            }
        );
        assert!(e.to_string().contains(name), "{e}");
    }
}

/// A request without headers, or with only WS-Security, has no addressing;
/// an unmarked header block is not a reference parameter.
#[test]
fn requests_without_addressing() {
    let env = soap::envelope("<Ping/>", None);
    let d = xml::parse(&env).unwrap();
    assert_eq!(
        request_headers(d.root_element()),
        Ok(RequestHeaders::default())
    );
    let env = format!(
        r#"<s:Envelope xmlns:s="{}"><s:Header><Id xmlns="{AXIS_NS}">1</Id></s:Header><s:Body/></s:Envelope>"#,
        soap::SOAP_ENV_NS
    );
    let d = xml::parse(&env).unwrap();
    assert!(
        request_headers(d.root_element())
            .unwrap()
            .reference_parameters
            .is_empty()
    );
}

/// MessageIDs are version-4 UUID URNs made of the caller's bytes.
#[test]
fn message_ids_are_v4_uuid_urns() {
    let id = message_id([0xff; 16]);
    assert_eq!(id, "urn:uuid:ffffffff-ffff-4fff-bfff-ffffffffffff");
    let id = message_id([0; 16]);
    assert_eq!(id, "urn:uuid:00000000-0000-4000-8000-000000000000");
    assert_ne!(message_id([1; 16]), message_id([2; 16]));
}
