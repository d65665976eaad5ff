//! WS-Discovery (2005/04, SOAP 1.2) as ONVIF uses it: pure builders and a
//! parser, no sockets and no clock. [`crate::wsd_io`] does the UDP around it.
//!
//! - [`build_probe`] writes the Probe we send: compact (Hikvision answers a
//!   unicast Probe only when there is no whitespace between tags) and carrying
//!   `<d:Types>dn:NetworkVideoTransmitter</d:Types>` by default (some TP-Link
//!   cameras ignore a Probe without Types).
//! - [`build_probe_matches`], [`build_hello`], [`build_bye`] write the other
//!   direction, for the simulator and tests.
//! - [`parse`] reads any of them from a datagram, namespace-prefix-agnostic,
//!   through [`crate::xml`] with a 64 KiB cap ([`MAX_DATAGRAM`]).
//! - [`scope_values`], [`is_nvt`] and [`preferred_xaddr`] interpret what a
//!   device advertised.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use crate::xml::{self, XmlError};

/// The IPv4 WS-Discovery multicast group.
pub const MULTICAST_V4: Ipv4Addr = Ipv4Addr::new(239, 255, 255, 250);
/// The WS-Discovery UDP port.
pub const PORT: u16 = 3702;
/// Largest datagram [`parse`] accepts (and the receive buffer size of the IO).
pub const MAX_DATAGRAM: usize = 64 * 1024;

/// SOAP 1.2 envelope namespace.
pub const NS_SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
/// WS-Addressing (2004/08) namespace used by WS-Discovery 2005/04.
pub const NS_ADDRESSING: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
/// WS-Discovery 2005/04 namespace.
pub const NS_DISCOVERY: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery";
/// ONVIF network namespace (prefix `dn`), home of `NetworkVideoTransmitter`.
pub const NS_ONVIF_NETWORK: &str = "http://www.onvif.org/ver10/network/wsdl";
/// ONVIF device namespace (prefix `tds`), home of `Device`.
pub const NS_ONVIF_DEVICE: &str = "http://www.onvif.org/ver10/device/wsdl";

/// The type an ONVIF camera advertises; the `dn` prefix is declared by our builders.
pub const NVT_TYPE: &str = "dn:NetworkVideoTransmitter";
/// The ONVIF device type; the `tds` prefix is declared by our builders.
pub const DEVICE_TYPE: &str = "tds:Device";

/// The ONVIF scope of a device with an audio output (network speakers such
/// as Axis C1310-E). The gateway's second, audio-only Probe asks for
/// [`DEVICE_TYPE`] with this scope, so cameras (which advertise
/// `type/video_encoder`) stay silent; see `docs/speakers.md`.
pub const AUDIO_OUTPUT_SCOPE: &str = "onvif://www.onvif.org/type/audio_output";

/// `To` of a multicast Probe, Hello and Bye.
pub const TO_DISCOVERY: &str = "urn:schemas-xmlsoap-org:ws:2005:04:discovery";
/// The anonymous WS-Addressing endpoint (`To` of a ProbeMatches).
pub const ANONYMOUS: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous";

/// Scope prefix of the ONVIF scope URIs handled by [`scope_values`].
pub const ONVIF_SCOPE_PREFIX: &str = "onvif://www.onvif.org/";

/// One matching service in a ProbeMatches, or the body of a Hello.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct ProbeMatch {
    /// `EndpointReference/Address`, usually `urn:uuid:...`: the device identity.
    pub endpoint_ref: String,
    /// The advertised types as QName text, e.g. `dn:NetworkVideoTransmitter`.
    pub types: Vec<String>,
    /// The advertised scope URIs.
    pub scopes: Vec<String>,
    /// The advertised transport addresses (device service URLs), as given.
    pub xaddrs: Vec<String>,
    /// `MetadataVersion`, when present and numeric.
    pub metadata_version: Option<u32>,
}

impl ProbeMatch {
    /// The `onvif://www.onvif.org/name/...` scope, percent-decoded.
    pub fn name(&self) -> Option<String> {
        scope_values(&self.scopes, "name").into_iter().next()
    }

    /// The `onvif://www.onvif.org/hardware/...` scope, percent-decoded.
    pub fn hardware(&self) -> Option<String> {
        scope_values(&self.scopes, "hardware").into_iter().next()
    }

    /// Whether this match advertises `NetworkVideoTransmitter`, see [`is_nvt`].
    pub fn is_nvt(&self) -> bool {
        is_nvt(&self.types)
    }

    /// Merges another sighting of the same endpoint into this one: types,
    /// scopes and XAddrs become the union (first-seen order kept) and the
    /// metadata version the highest seen.
    pub fn merge(&mut self, other: ProbeMatch) {
        union_into(&mut self.types, other.types);
        union_into(&mut self.scopes, other.scopes);
        union_into(&mut self.xaddrs, other.xaddrs);
        self.metadata_version = match (self.metadata_version, other.metadata_version) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

/// Appends the items of `more` not already in `into`, keeping order.
pub fn union_into(into: &mut Vec<String>, more: Vec<String>) {
    for m in more {
        if !into.contains(&m) {
            into.push(m);
        }
    }
}

/// A parsed WS-Discovery message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsdMessage {
    /// Someone looking for services.
    Probe {
        /// `MessageID` of the Probe; a ProbeMatches quotes it in `RelatesTo`.
        message_id: String,
        /// Requested types as QName text; empty means "any".
        types: Vec<String>,
        /// The raw `Scopes` text, if any.
        scopes: Option<String>,
    },
    /// An answer to a Probe (a ResolveMatches is reported the same way).
    ProbeMatches {
        /// The answer's own `MessageID` (some devices omit it).
        message_id: Option<String>,
        /// `RelatesTo`: the `MessageID` of the Probe being answered.
        relates_to: Option<String>,
        /// The matches, one per endpoint (duplicates in one message merged).
        matches: Vec<ProbeMatch>,
        /// Matches dropped because they had no `EndpointReference/Address`.
        skipped: usize,
    },
    /// A device announcing itself.
    Hello(ProbeMatch),
    /// A device leaving.
    Bye {
        /// `EndpointReference/Address` of the device leaving.
        endpoint_ref: String,
    },
}

/// Why a datagram is not a usable WS-Discovery message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsdError {
    /// Refused by the XML layer (size, encoding, DTD, malformed).
    #[error("WS-Discovery datagram refused: {0}")]
    Xml(#[from] XmlError),
    /// The root element is not a SOAP `Envelope`.
    #[error("not a SOAP envelope: root element is <{0}>")]
    NotEnvelope(String),
    /// The envelope has no `Body` or an empty one.
    #[error("SOAP envelope has no Body content")]
    NoBody,
    /// The body holds something other than Probe/ProbeMatches/ResolveMatches/Hello/Bye.
    #[error("unsupported WS-Discovery message <{0}>")]
    Unsupported(String),
    /// A required element is missing.
    #[error("WS-Discovery {message} lacks required {what}")]
    Missing {
        /// The message kind, e.g. `Probe`.
        message: &'static str,
        /// The missing element path, e.g. `Header/MessageID`.
        what: &'static str,
    },
}

const ENVELOPE_OPEN: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope""#,
    r#" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing""#,
    r#" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery""#,
    r#" xmlns:dn="http://www.onvif.org/ver10/network/wsdl""#,
    r#" xmlns:tds="http://www.onvif.org/ver10/device/wsdl">"#,
);

fn header(out: &mut String, message_id: &str, relates_to: Option<&str>, to: &str, action: &str) {
    let _ = write!(
        out,
        "<s:Header><a:MessageID>{}</a:MessageID>",
        xml::escape(message_id)
    );
    if let Some(r) = relates_to {
        let _ = write!(out, "<a:RelatesTo>{}</a:RelatesTo>", xml::escape(r));
    }
    let _ = write!(
        out,
        "<a:To s:mustUnderstand=\"1\">{}</a:To><a:Action s:mustUnderstand=\"1\">{NS_DISCOVERY}/{action}</a:Action></s:Header>",
        xml::escape(to)
    );
}

/// Builds a compact Probe (no whitespace between tags).
///
/// `types`: `None` asks for [`NVT_TYPE`]; `Some("")` omits `<d:Types>`
/// (matches anything); any other text is sent as given (prefixes `dn` and
/// `tds` are declared). `message_id` is a `urn:uuid:...`.
pub fn build_probe(message_id: &str, types: Option<&str>) -> String {
    build_probe_scoped(message_id, types, None)
}

/// [`build_probe`] plus `<d:Scopes>` (space-separated scope URIs, matched
/// by the device with the default RFC 3986 prefix rule) when `scopes` is
/// given and not empty. The audio-output Probe is
/// `build_probe_scoped(id, Some(DEVICE_TYPE), Some(AUDIO_OUTPUT_SCOPE))`.
pub fn build_probe_scoped(message_id: &str, types: Option<&str>, scopes: Option<&str>) -> String {
    let mut out = String::with_capacity(900);
    out.push_str(ENVELOPE_OPEN);
    let _ = write!(
        out,
        "<s:Header><a:MessageID>{}</a:MessageID><a:ReplyTo><a:Address>{ANONYMOUS}</a:Address></a:ReplyTo>\
         <a:To s:mustUnderstand=\"1\">{TO_DISCOVERY}</a:To><a:Action s:mustUnderstand=\"1\">{NS_DISCOVERY}/Probe</a:Action></s:Header>",
        xml::escape(message_id)
    );
    out.push_str("<s:Body><d:Probe>");
    let types = types.unwrap_or(NVT_TYPE).trim();
    if !types.is_empty() {
        let _ = write!(out, "<d:Types>{}</d:Types>", xml::escape(types));
    }
    if let Some(sc) = scopes.map(str::trim).filter(|s| !s.is_empty()) {
        let _ = write!(out, "<d:Scopes>{}</d:Scopes>", xml::escape(sc));
    }
    out.push_str("</d:Probe></s:Body></s:Envelope>");
    out
}

fn match_body(out: &mut String, m: &ProbeMatch) {
    let _ = write!(
        out,
        "<a:EndpointReference><a:Address>{}</a:Address></a:EndpointReference>",
        xml::escape(&m.endpoint_ref)
    );
    if !m.types.is_empty() {
        let _ = write!(
            out,
            "<d:Types>{}</d:Types>",
            xml::escape(&m.types.join(" "))
        );
    }
    if !m.scopes.is_empty() {
        let _ = write!(
            out,
            "<d:Scopes>{}</d:Scopes>",
            xml::escape(&m.scopes.join(" "))
        );
    }
    if !m.xaddrs.is_empty() {
        let _ = write!(
            out,
            "<d:XAddrs>{}</d:XAddrs>",
            xml::escape(&m.xaddrs.join(" "))
        );
    }
    if let Some(v) = m.metadata_version {
        let _ = write!(out, "<d:MetadataVersion>{v}</d:MetadataVersion>");
    }
}

/// Builds a ProbeMatches answering the Probe whose `MessageID` was `relates_to`.
pub fn build_probe_matches(relates_to: &str, message_id: &str, matches: &[ProbeMatch]) -> String {
    let mut out = String::with_capacity(1200 + 400 * matches.len());
    out.push_str(ENVELOPE_OPEN);
    header(
        &mut out,
        message_id,
        Some(relates_to),
        ANONYMOUS,
        "ProbeMatches",
    );
    out.push_str("<s:Body><d:ProbeMatches>");
    for m in matches {
        out.push_str("<d:ProbeMatch>");
        match_body(&mut out, m);
        out.push_str("</d:ProbeMatch>");
    }
    out.push_str("</d:ProbeMatches></s:Body></s:Envelope>");
    out
}

/// Builds a Hello announcing `m`.
pub fn build_hello(message_id: &str, m: &ProbeMatch) -> String {
    let mut out = String::with_capacity(1200);
    out.push_str(ENVELOPE_OPEN);
    header(&mut out, message_id, None, TO_DISCOVERY, "Hello");
    out.push_str("<s:Body><d:Hello>");
    match_body(&mut out, m);
    out.push_str("</d:Hello></s:Body></s:Envelope>");
    out
}

/// Builds a Bye for the endpoint `endpoint_ref`.
pub fn build_bye(message_id: &str, endpoint_ref: &str) -> String {
    let mut out = String::with_capacity(800);
    out.push_str(ENVELOPE_OPEN);
    header(&mut out, message_id, None, TO_DISCOVERY, "Bye");
    let _ = write!(
        out,
        "<s:Body><d:Bye><a:EndpointReference><a:Address>{}</a:Address></a:EndpointReference></d:Bye></s:Body></s:Envelope>",
        xml::escape(endpoint_ref)
    );
    out
}

fn split_ws(node: roxmltree::Node<'_, '_>, name: &str) -> Vec<String> {
    xml::child(node, name)
        .and_then(xml::text)
        .map(|t| t.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

fn endpoint_ref(node: roxmltree::Node<'_, '_>) -> Option<String> {
    xml::path_text(node, &["EndpointReference", "Address"])
}

fn read_match(node: roxmltree::Node<'_, '_>) -> Option<ProbeMatch> {
    let mut xaddrs = Vec::new();
    union_into(&mut xaddrs, split_ws(node, "XAddrs"));
    let mut scopes = Vec::new();
    union_into(&mut scopes, split_ws(node, "Scopes"));
    let mut types = Vec::new();
    union_into(&mut types, split_ws(node, "Types"));
    Some(ProbeMatch {
        endpoint_ref: endpoint_ref(node)?,
        types,
        scopes,
        xaddrs,
        metadata_version: xml::child(node, "MetadataVersion")
            .and_then(xml::text)
            .and_then(|t| t.parse().ok()),
    })
}

/// Parses one WS-Discovery datagram (at most [`MAX_DATAGRAM`] bytes).
///
/// Lenient where devices differ (any namespace prefixes, missing optional
/// parts); strict where input is hostile (DTD, size, malformed XML). Never panics.
pub fn parse(bytes: &[u8]) -> Result<WsdMessage, WsdError> {
    let text = xml::check(bytes, MAX_DATAGRAM)?;
    let doc = xml::parse(text)?;
    let root = doc.root_element();
    if xml::local(root) != "Envelope" {
        return Err(WsdError::NotEnvelope(xml::local(root).to_string()));
    }
    let header = xml::child(root, "Header");
    let header_text = |name: &str| header.and_then(|h| xml::child(h, name)).and_then(xml::text);
    let body = xml::child(root, "Body")
        .and_then(|b| b.children().find(|c| c.is_element()))
        .ok_or(WsdError::NoBody)?;
    match xml::local(body) {
        "Probe" => Ok(WsdMessage::Probe {
            message_id: header_text("MessageID").ok_or(WsdError::Missing {
                message: "Probe",
                what: "Header/MessageID",
            })?,
            types: split_ws(body, "Types"),
            scopes: xml::child(body, "Scopes").and_then(xml::text),
        }),
        kind @ ("ProbeMatches" | "ResolveMatches") => {
            let item = if kind == "ProbeMatches" {
                "ProbeMatch"
            } else {
                "ResolveMatch"
            };
            let mut matches: Vec<ProbeMatch> = Vec::new();
            let mut skipped = 0;
            for node in xml::children(body, item) {
                let Some(m) = read_match(node) else {
                    skipped += 1;
                    continue;
                };
                match matches
                    .iter_mut()
                    .find(|e| e.endpoint_ref == m.endpoint_ref)
                {
                    Some(existing) => existing.merge(m),
                    None => matches.push(m),
                }
            }
            Ok(WsdMessage::ProbeMatches {
                message_id: header_text("MessageID"),
                relates_to: header_text("RelatesTo"),
                matches,
                skipped,
            })
        }
        "Hello" => read_match(body)
            .map(WsdMessage::Hello)
            .ok_or(WsdError::Missing {
                message: "Hello",
                what: "EndpointReference/Address",
            }),
        "Bye" => Ok(WsdMessage::Bye {
            endpoint_ref: endpoint_ref(body).ok_or(WsdError::Missing {
                message: "Bye",
                what: "EndpointReference/Address",
            })?,
        }),
        other => Err(WsdError::Unsupported(other.to_string())),
    }
}

/// Values of the ONVIF scopes `onvif://www.onvif.org/<key>/<value>`, percent-decoded.
///
/// `key` may be nested (`location/village`). For `location`, the value of
/// `onvif://www.onvif.org/location/village/Xiaowan` is `village/Xiaowan`.
/// Scheme, host and key compare case-insensitively; empty values are skipped.
pub fn scope_values(scopes: &[String], key: &str) -> Vec<String> {
    let key = key.trim_matches('/');
    let mut out = Vec::new();
    for s in scopes {
        let Some(rest) = strip_prefix_ci(s, ONVIF_SCOPE_PREFIX) else {
            continue;
        };
        let Some(rest) = strip_prefix_ci(rest, key) else {
            continue;
        };
        let Some(value) = rest.strip_prefix('/') else {
            continue;
        };
        let value = percent_decode(value.trim_end_matches('/'));
        if !value.is_empty() && !out.contains(&value) {
            out.push(value);
        }
    }
    out
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Decodes `%XX` escapes (as UTF-8, lossy); malformed escapes stay as they are.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// True when any type's local part is `NetworkVideoTransmitter`, whatever its
/// prefix (`dn:`, `tdn:`, none, or `{namespace}` Clark notation).
pub fn is_nvt(types: &[String]) -> bool {
    types.iter().any(|t| {
        t.rsplit([':', '}', '/'])
            .next()
            .is_some_and(|l| l == "NetworkVideoTransmitter")
    })
}

/// Picks the XAddr to talk to from those a device advertised.
///
/// Entries that do not parse as an http(s) URL with a host are skipped.
/// Preference, strongest first: the host equals `from` (the datagram's
/// source, known to be reachable); not link-local (`169.254.x.x`,
/// `[fe80::...]`); IPv4; `http` over `https`; then advertised order.
pub fn preferred_xaddr(xaddrs: &[String], from: Option<IpAddr>) -> Option<String> {
    xaddrs
        .iter()
        .enumerate()
        .filter_map(|(i, x)| Some((xaddr_rank(x, from)?, std::cmp::Reverse(i), x)))
        .max()
        .map(|(_, _, x)| x.trim().to_string())
}

/// Preference of one XAddr (higher is better), or `None` when unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct XAddrRank {
    same_as_source: bool,
    not_link_local: bool,
    ipv4: bool,
    http: bool,
}

fn xaddr_rank(x: &str, from: Option<IpAddr>) -> Option<XAddrRank> {
    let u = url::Url::parse(x.trim()).ok()?;
    let http = match u.scheme() {
        "http" => true,
        "https" => false,
        _ => return None,
    };
    let ip: Option<IpAddr> = match u.host()? {
        url::Host::Ipv4(a) => Some(IpAddr::V4(a)),
        url::Host::Ipv6(a) => Some(IpAddr::V6(a)),
        url::Host::Domain(d) if !d.is_empty() => None,
        url::Host::Domain(_) => return None,
    };
    let link_local = match ip {
        Some(IpAddr::V4(a)) => a.is_link_local(),
        Some(IpAddr::V6(a)) => (a.segments()[0] & 0xffc0) == 0xfe80,
        None => false,
    };
    Some(XAddrRank {
        same_as_source: ip.is_some() && ip == from,
        not_link_local: !link_local,
        ipv4: matches!(ip, Some(IpAddr::V4(_))),
        http,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real ProbeMatches from a PTZ camera (agsh/onvif server mockup); the
    /// recording has placeholders RELATES_TO and SERVICE_URI that whoever
    /// serves it fills in.
    const AGSH_PROBE: &str = include_str!("../testdata/agsh-mockup/Probe.xml");

    fn agsh_filled() -> String {
        AGSH_PROBE
            .replace(
                "RELATES_TO",
                "urn:uuid:11111111-2222-3333-4444-555555555555",
            )
            .replace(
                "SERVICE_URI",
                "http://192.168.0.64/onvif/device_service http://[fe80::1]/onvif/device_service",
            )
    }

    fn sample() -> ProbeMatch {
        ProbeMatch {
            endpoint_ref: "urn:uuid:c9790c3a-701b-464d-a189-0060351c8ada".into(),
            types: vec![NVT_TYPE.into(), DEVICE_TYPE.into()],
            scopes: vec![
                "onvif://www.onvif.org/name/Cam%20One".into(),
                "onvif://www.onvif.org/hardware/DS-2CD2042".into(),
                "onvif://www.onvif.org/location/village/%E5%B0%8F%E6%B9%BE".into(),
            ],
            xaddrs: vec!["http://10.0.0.5/onvif/device_service".into()],
            metadata_version: Some(3),
        }
    }

    /// Hikvision answers a unicast Probe only when the XML has no whitespace
    /// between tags; some TP-Link ignore a Probe without Types.
    #[test]
    fn probe_is_compact_and_has_nvt_type() {
        let p = build_probe("urn:uuid:abc", None);
        assert!(!p.contains(">\n") && !p.contains("> <") && !p.contains(">\t"));
        assert!(!p.contains('\n'));
        assert!(p.contains("<d:Types>dn:NetworkVideoTransmitter</d:Types>"));
        assert!(p.contains(r#"xmlns:dn="http://www.onvif.org/ver10/network/wsdl""#));
        match parse(p.as_bytes()).unwrap() {
            WsdMessage::Probe {
                message_id,
                types,
                scopes,
            } => {
                assert_eq!(message_id, "urn:uuid:abc");
                assert_eq!(types, vec![NVT_TYPE.to_string()]);
                assert_eq!(scopes, None);
            }
            other => panic!("{other:?}"),
        }
        let any = build_probe("urn:uuid:x", Some(""));
        assert!(!any.contains("Types"));
        let both = build_probe("urn:uuid:x", Some("dn:NetworkVideoTransmitter tds:Device"));
        assert!(matches!(parse(both.as_bytes()).unwrap(),
            WsdMessage::Probe { types, .. } if types.len() == 2));
    }

    /// The audio-output Probe: `tds:Device` with the `type/audio_output`
    /// scope, still compact; the camera Probe carries no Scopes.
    #[test]
    fn audio_probe_carries_the_scope() {
        let p = build_probe_scoped("urn:uuid:a", Some(DEVICE_TYPE), Some(AUDIO_OUTPUT_SCOPE));
        assert!(!p.contains("> <") && !p.contains(">\n"));
        match parse(p.as_bytes()).unwrap() {
            WsdMessage::Probe { types, scopes, .. } => {
                assert_eq!(types, vec![DEVICE_TYPE]);
                assert_eq!(scopes.as_deref(), Some(AUDIO_OUTPUT_SCOPE));
            }
            other => panic!("{other:?}"),
        }
        assert!(!build_probe("urn:uuid:a", None).contains("Scopes"));
        assert!(!build_probe_scoped("urn:uuid:a", None, Some(" ")).contains("Scopes"));
    }

    #[test]
    fn probe_matches_roundtrip() {
        let a = sample();
        let mut b = sample();
        b.endpoint_ref = "urn:uuid:other".into();
        b.metadata_version = None;
        let text =
            build_probe_matches("urn:uuid:probe", "urn:uuid:answer", &[a.clone(), b.clone()]);
        assert_eq!(
            parse(text.as_bytes()).unwrap(),
            WsdMessage::ProbeMatches {
                message_id: Some("urn:uuid:answer".into()),
                relates_to: Some("urn:uuid:probe".into()),
                matches: vec![a, b],
                skipped: 0,
            }
        );
    }

    #[test]
    fn hello_and_bye_roundtrip() {
        let m = sample();
        assert_eq!(
            parse(build_hello("urn:uuid:h", &m).as_bytes()).unwrap(),
            WsdMessage::Hello(m.clone())
        );
        assert_eq!(
            parse(build_bye("urn:uuid:b", &m.endpoint_ref).as_bytes()).unwrap(),
            WsdMessage::Bye {
                endpoint_ref: m.endpoint_ref
            }
        );
    }

    /// Builders escape what they are given (a hostile name cannot inject XML).
    #[test]
    fn builders_escape() {
        let mut m = sample();
        m.endpoint_ref = "urn:uuid:<x>&".into();
        let text = build_probe_matches("a<b", "c", &[m.clone()]);
        match parse(text.as_bytes()).unwrap() {
            WsdMessage::ProbeMatches {
                relates_to,
                matches,
                ..
            } => {
                assert_eq!(relates_to.as_deref(), Some("a<b"));
                assert_eq!(matches[0].endpoint_ref, "urn:uuid:<x>&");
            }
            other => panic!("{other:?}"),
        }
    }

    /// agsh mockup (real PTZ camera): SOAP-ENV/wsdd/wsa prefixes, indented
    /// XML, an empty `location/` scope, AppSequence header.
    #[test]
    fn agsh_mockup_probe_matches() {
        let text = agsh_filled();
        let WsdMessage::ProbeMatches {
            message_id,
            relates_to,
            matches,
            skipped,
        } = parse(text.as_bytes()).unwrap()
        else {
            panic!("not ProbeMatches")
        };
        assert_eq!(
            message_id.as_deref(),
            Some("urn:uuid:01234567-dead-beef-baad-abcdeffedcba")
        );
        assert_eq!(
            relates_to.as_deref(),
            Some("urn:uuid:11111111-2222-3333-4444-555555555555")
        );
        assert_eq!(skipped, 0);
        assert_eq!(matches.len(), 1);
        let m = &matches[0];
        assert_eq!(m.endpoint_ref, "uuid:c9790c3a-701b-464d-a189-0060351c8ada");
        assert_eq!(m.types, vec!["dn:NetworkVideoTransmitter", "tds:Device"]);
        assert!(m.is_nvt());
        assert_eq!(m.scopes.len(), 7);
        assert_eq!(m.name().as_deref(), Some("PREDATOR"));
        assert_eq!(m.hardware().as_deref(), Some("HD_PREDATOR"));
        assert!(scope_values(&m.scopes, "location").is_empty());
        assert_eq!(
            scope_values(&m.scopes, "type"),
            vec!["video_encoder", "audio_encoder", "ptz"]
        );
        assert_eq!(m.xaddrs.len(), 2);
        assert_eq!(m.metadata_version, Some(1));
        assert_eq!(
            preferred_xaddr(&m.xaddrs, None).as_deref(),
            Some("http://192.168.0.64/onvif/device_service")
        );
    }

    /// The unfilled recording (XAddrs = "SERVICE_URI") still parses; the junk
    /// XAddr is kept as given but never chosen.
    #[test]
    fn agsh_mockup_placeholders_are_not_urls() {
        let WsdMessage::ProbeMatches { matches, .. } = parse(AGSH_PROBE.as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(matches[0].xaddrs, vec!["SERVICE_URI"]);
        assert_eq!(preferred_xaddr(&matches[0].xaddrs, None), None);
    }

    /// Dahua and others use unusual prefixes (`MC1:`), or default namespaces.
    #[test]
    fn odd_prefixes() {
        let text = r#"<?xml version="1.0"?>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:MC1="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:MC2="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:tdn="http://www.onvif.org/ver10/network/wsdl">
 <env:Header><MC1:MessageID>uuid:m</MC1:MessageID><MC1:RelatesTo>urn:uuid:p</MC1:RelatesTo></env:Header>
 <env:Body><ProbeMatches xmlns="http://schemas.xmlsoap.org/ws/2005/04/discovery"><ProbeMatch>
  <MC1:EndpointReference><MC1:Address> urn:uuid:dahua </MC1:Address></MC1:EndpointReference>
  <Types>tdn:NetworkVideoTransmitter</Types>
  <Scopes>onvif://www.onvif.org/name/Dahua%20Cam onvif://www.onvif.org/location/country/china</Scopes>
  <XAddrs>http://10.1.1.9/onvif/device_service</XAddrs>
  <MetadataVersion>not-a-number</MetadataVersion>
 </ProbeMatch></ProbeMatches></env:Body></env:Envelope>"#;
        let WsdMessage::ProbeMatches {
            relates_to,
            matches,
            ..
        } = parse(text.as_bytes()).unwrap()
        else {
            panic!()
        };
        assert_eq!(relates_to.as_deref(), Some("urn:uuid:p"));
        assert_eq!(matches[0].endpoint_ref, "urn:uuid:dahua");
        assert!(matches[0].is_nvt());
        assert_eq!(matches[0].name().as_deref(), Some("Dahua Cam"));
        assert_eq!(
            scope_values(&matches[0].scopes, "location"),
            vec!["country/china"]
        );
        assert_eq!(matches[0].metadata_version, None);
    }

    /// XAddrs may list several URLs including link-local and https ones
    /// (Axis lists its 169.254 zero-conf address next to the real one).
    #[test]
    fn preferred_xaddr_rules() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let x = v(&[
            "https://10.0.0.5/onvif/device_service",
            "http://[fe80::1]/onvif/device_service",
            "http://169.254.3.4/onvif/services",
            "http://10.0.0.5/onvif/device_service",
        ]);
        assert_eq!(
            preferred_xaddr(&x, None).as_deref(),
            Some("http://10.0.0.5/onvif/device_service")
        );
        let x = v(&[
            "http://10.0.0.5/onvif/device_service",
            "https://10.0.0.6/onvif/device_service",
        ]);
        assert_eq!(
            preferred_xaddr(&x, Some("10.0.0.6".parse().unwrap())).as_deref(),
            Some("https://10.0.0.6/onvif/device_service")
        );
        let x = v(&[
            "junk",
            "ftp://10.0.0.1/",
            "http://",
            "http://[fe80::2]:8080/onvif/device_service",
        ]);
        assert_eq!(
            preferred_xaddr(&x, None).as_deref(),
            Some("http://[fe80::2]:8080/onvif/device_service")
        );
        assert_eq!(preferred_xaddr(&v(&["junk", " "]), None), None);
        assert_eq!(preferred_xaddr(&[], None), None);
        // Advertised order breaks ties.
        let x = v(&["http://10.0.0.7/a", "http://10.0.0.8/b"]);
        assert_eq!(
            preferred_xaddr(&x, None).as_deref(),
            Some("http://10.0.0.7/a")
        );
    }

    #[test]
    fn scope_helpers() {
        let m = sample();
        assert_eq!(m.name().as_deref(), Some("Cam One"));
        assert_eq!(m.hardware().as_deref(), Some("DS-2CD2042"));
        assert_eq!(scope_values(&m.scopes, "location/village"), vec!["小湾"]);
        assert_eq!(scope_values(&m.scopes, "location"), vec!["village/小湾"]);
        assert!(scope_values(&m.scopes, "loc").is_empty());
        let odd = vec![
            "ONVIF://www.onvif.org/Name/Upper".to_string(),
            "onvif://www.onvif.org/name/bad%zzescape%".to_string(),
            "http://example/name/x".to_string(),
            "onvif://www.onvif.org/name/Upper".to_string(),
        ];
        assert_eq!(scope_values(&odd, "name"), vec!["Upper", "bad%zzescape%"]);
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%41%4a"), "AJ");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
    }

    #[test]
    fn nvt_type_is_prefix_agnostic() {
        let t = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(is_nvt(&t(&["tds:Device", "dn:NetworkVideoTransmitter"])));
        assert!(is_nvt(&t(&["NetworkVideoTransmitter"])));
        assert!(is_nvt(&t(&[
            "{http://www.onvif.org/ver10/network/wsdl}NetworkVideoTransmitter"
        ])));
        assert!(!is_nvt(&t(&["tds:Device", "ns:Speaker"])));
        assert!(!is_nvt(&t(&["dn:NetworkVideoTransmitterX"])));
        assert!(!is_nvt(&[]));
    }

    /// Duplicate matches for one endpoint in one message are merged; a match
    /// without an EndpointReference is skipped and counted.
    #[test]
    fn duplicate_and_incomplete_matches() {
        let mut a = sample();
        let mut a2 = sample();
        a2.xaddrs = vec!["http://10.0.0.6/onvif/device_service".into()];
        a2.metadata_version = Some(7);
        let mut nameless = sample();
        nameless.endpoint_ref = String::new();
        let text = build_probe_matches("r", "m", &[a.clone(), a2, nameless]);
        let WsdMessage::ProbeMatches {
            matches, skipped, ..
        } = parse(text.as_bytes()).unwrap()
        else {
            panic!()
        };
        assert_eq!(skipped, 1);
        assert_eq!(matches.len(), 1);
        a.xaddrs.push("http://10.0.0.6/onvif/device_service".into());
        a.metadata_version = Some(7);
        assert_eq!(matches[0], a);
    }

    #[test]
    fn refuses_hostile_and_broken_input() {
        let dtd = r#"<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x "y">]><e/>"#;
        assert_eq!(parse(dtd.as_bytes()), Err(WsdError::Xml(XmlError::Dtd)));
        let big = format!("{}{}", build_probe("m", None), " ".repeat(MAX_DATAGRAM));
        assert!(matches!(
            parse(big.as_bytes()),
            Err(WsdError::Xml(XmlError::TooLarge { .. }))
        ));
        let full = build_probe_matches("r", "m", &[sample()]);
        for cut in [10, full.len() / 2, full.len() - 1] {
            assert!(matches!(
                parse(&full.as_bytes()[..cut]),
                Err(WsdError::Xml(XmlError::Malformed(_)))
            ));
        }
        assert_eq!(parse(b""), Err(WsdError::Xml(XmlError::Empty)));
        assert_eq!(parse(b"<html/>"), Err(WsdError::NotEnvelope("html".into())));
        assert_eq!(
            parse(format!("<s:Envelope xmlns:s=\"{NS_SOAP12}\"><s:Body/></s:Envelope>").as_bytes()),
            Err(WsdError::NoBody)
        );
        assert_eq!(
            parse(b"<Envelope><Body><Resolve/></Body></Envelope>"),
            Err(WsdError::Unsupported("Resolve".into()))
        );
        assert_eq!(
            parse(b"<Envelope><Body><Probe/></Body></Envelope>"),
            Err(WsdError::Missing {
                message: "Probe",
                what: "Header/MessageID"
            })
        );
        assert_eq!(
            parse(b"<Envelope><Body><Hello><Types>x</Types></Hello></Body></Envelope>"),
            Err(WsdError::Missing {
                message: "Hello",
                what: "EndpointReference/Address"
            })
        );
        assert!(matches!(
            parse(b"<Envelope><Body><Bye/></Body></Envelope>"),
            Err(WsdError::Missing { message: "Bye", .. })
        ));
    }

    /// A ResolveMatches is read like a ProbeMatches.
    #[test]
    fn resolve_matches() {
        let text = build_probe_matches("r", "m", &[sample()]).replace("ProbeMatch", "ResolveMatch");
        assert!(matches!(parse(text.as_bytes()).unwrap(),
            WsdMessage::ProbeMatches { matches, .. } if matches.len() == 1));
    }

    /// A few thousand deterministic mutations of a valid ProbeMatches (byte
    /// flips, truncations, splices, insertions of XML metacharacters) never
    /// panic. The fuzz target `fuzz/fuzz_targets/wsd_parse.rs` goes further.
    #[test]
    fn mutations_never_panic() {
        let base = agsh_filled().into_bytes();
        let compact = build_probe_matches("r", "m", &[sample(), sample()]).into_bytes();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let specials = b"<>&;:/\"'=! \x00\xff\xc3%?[]";
        let mut parsed_ok = 0;
        for i in 0..4000 {
            let mut v = if i % 2 == 0 {
                base.clone()
            } else {
                compact.clone()
            };
            let n = 1 + (next() % 8) as usize;
            for _ in 0..n {
                let len = v.len().max(1);
                let pos = (next() as usize) % len;
                match next() % 5 {
                    0 if !v.is_empty() => v[pos] = next() as u8,
                    1 if !v.is_empty() => v[pos] = specials[(next() as usize) % specials.len()],
                    2 => v.truncate(pos),
                    3 if !v.is_empty() => {
                        let end = (pos + (next() as usize) % 64).min(v.len());
                        v.drain(pos..end);
                    }
                    _ => {
                        let at = pos.min(v.len());
                        let src = (next() as usize) % base.len();
                        let end = (src + (next() as usize) % 64).min(base.len());
                        v.splice(at..at, base[src..end].iter().copied());
                    }
                }
            }
            if let Ok(msg) = parse(&v) {
                parsed_ok += 1;
                // Whatever matches we accept, our builder writes back intact
                // (the fuzz target checks the same property).
                if let WsdMessage::ProbeMatches { matches, .. } = msg {
                    let again = build_probe_matches("r", "m", &matches);
                    if !again.contains('\r') && again.len() <= MAX_DATAGRAM {
                        assert!(matches!(parse(again.as_bytes()),
                            Ok(WsdMessage::ProbeMatches { matches: m2, .. }) if m2 == matches));
                    }
                }
            }
        }
        // Many mutations land in text content and still parse: the test
        // exercises the accepting paths too, not only the XML error path.
        assert!(parsed_ok > 100, "only {parsed_ok} mutants parsed");
    }
}
