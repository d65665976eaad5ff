//! SSDP (UPnP 1.1 discovery), the pure core: M-SEARCH request builder,
//! search-response / NOTIFY parser, and the search-response builder the
//! simulator answers with. No sockets here; see `ssdp_io`.
//!
//! IP loudspeakers (SIP horns, Axis network speakers, DLNA renderers) answer
//! an M-SEARCH for `urn:schemas-upnp-org:device:MediaRenderer:1` (or
//! `ssdp:all`) with an HTTP-over-UDP response naming their description
//! document (`LOCATION`), their identity (`USN`) and a banner (`SERVER`).

/// The SSDP multicast group and port.
pub const GROUP: &str = "239.255.255.250:1900";
/// The search target of a UPnP media renderer (what network speakers are).
pub const MEDIA_RENDERER: &str = "urn:schemas-upnp-org:device:MediaRenderer:1";
/// Search target asking every device to answer.
pub const ALL: &str = "ssdp:all";
/// Largest datagram accepted by [`parse`].
pub const MAX_DATAGRAM: usize = 8 * 1024;
/// Largest header line accepted (name + value).
pub const MAX_LINE: usize = 1024;
/// Most header lines accepted.
pub const MAX_HEADERS: usize = 64;

/// Why a datagram is not a usable SSDP message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsdpError {
    /// Bigger than [`MAX_DATAGRAM`].
    #[error("SSDP datagram of {0} bytes exceeds the {MAX_DATAGRAM}-byte cap")]
    TooLarge(usize),
    /// Not UTF-8 text.
    #[error("SSDP datagram is not UTF-8 text")]
    NotText,
    /// A line longer than [`MAX_LINE`].
    #[error("SSDP header line of {0} bytes exceeds the {MAX_LINE}-byte cap")]
    LineTooLong(usize),
    /// More than [`MAX_HEADERS`] header lines.
    #[error("SSDP message has more than {MAX_HEADERS} header lines")]
    TooManyHeaders,
    /// The start line is neither a 200 response, NOTIFY nor M-SEARCH.
    #[error("not an SSDP message: start line `{0}`")]
    StartLine(String),
    /// A header line without a colon.
    #[error("malformed SSDP header line `{0}`")]
    Header(String),
    /// A required header is missing.
    #[error("SSDP {message} lacks required header {header}")]
    Missing {
        /// `response`, `NOTIFY` or `M-SEARCH`.
        message: &'static str,
        /// The header, e.g. `USN`.
        header: &'static str,
    },
}

/// A device's answer (search response or `ssdp:alive` / `ssdp:byebye` NOTIFY).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Announcement {
    /// Unique service name, e.g. `uuid:…::urn:schemas-upnp-org:device:MediaRenderer:1`.
    pub usn: String,
    /// `ST` of a response or `NT` of a NOTIFY.
    pub target: String,
    /// URL of the description document (absent in a byebye).
    pub location: Option<String>,
    /// `SERVER` banner (e.g. `Linux/4.9 UPnP/1.0 AXIS C1310-E/11.1`).
    pub server: Option<String>,
    /// `NTS` of a NOTIFY (`ssdp:alive`, `ssdp:byebye`); `None` for a response.
    pub nts: Option<String>,
}

impl Announcement {
    /// The device UUID part of the USN (`uuid:…` before `::`).
    pub fn uuid(&self) -> &str {
        self.usn.split("::").next().unwrap_or(&self.usn)
    }

    /// Whether this is an `ssdp:byebye` NOTIFY.
    pub fn is_byebye(&self) -> bool {
        self.nts.as_deref() == Some("ssdp:byebye")
    }
}

/// A parsed SSDP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SsdpMessage {
    /// `HTTP/1.1 200 OK` answer to an M-SEARCH.
    Response(Announcement),
    /// `NOTIFY * HTTP/1.1`.
    Notify(Announcement),
    /// `M-SEARCH * HTTP/1.1` (what a device receives).
    Search {
        /// `ST`.
        target: String,
        /// `MX` in seconds, if present and numeric.
        mx: Option<u32>,
    },
}

/// Builds an M-SEARCH for `target` with the given `MX` (seconds, clamped to
/// 1..=5 as UPnP 1.1 asks) sent to `host` (`239.255.255.250:1900`).
pub fn build_msearch(host: &str, target: &str, mx: u32) -> String {
    format!(
        "M-SEARCH * HTTP/1.1\r\nHOST: {host}\r\nMAN: \"ssdp:discover\"\r\nMX: {}\r\nST: {target}\r\nUSER-AGENT: tgw/0.1 UPnP/1.1\r\n\r\n",
        mx.clamp(1, 5)
    )
}

/// Builds the unicast answer a device sends to an M-SEARCH.
pub fn build_response(a: &Announcement, max_age: u32) -> String {
    let mut s = format!(
        "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age={max_age}\r\nEXT:\r\nST: {}\r\nUSN: {}\r\n",
        a.target, a.usn
    );
    if let Some(l) = &a.location {
        s.push_str(&format!("LOCATION: {l}\r\n"));
    }
    if let Some(v) = &a.server {
        s.push_str(&format!("SERVER: {v}\r\n"));
    }
    s.push_str("\r\n");
    s
}

/// Whether a device advertising `advertised` should answer a search for
/// `searched` (`ssdp:all`, equal, or a device UUID equal to the USN's).
pub fn matches(searched: &str, advertised: &str) -> bool {
    searched == ALL || searched.eq_ignore_ascii_case(advertised)
}

/// Parses one datagram. Header names are case-insensitive; values are
/// trimmed; a value may not contain control characters (they are refused as
/// a malformed line).
pub fn parse(data: &[u8]) -> Result<SsdpMessage, SsdpError> {
    if data.len() > MAX_DATAGRAM {
        return Err(SsdpError::TooLarge(data.len()));
    }
    let text = std::str::from_utf8(data).map_err(|_| SsdpError::NotText)?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start = lines.next().unwrap_or_default();
    if start.len() > MAX_LINE {
        return Err(SsdpError::LineTooLong(start.len()));
    }
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line.len() > MAX_LINE {
            return Err(SsdpError::LineTooLong(line.len()));
        }
        if headers.len() >= MAX_HEADERS {
            return Err(SsdpError::TooManyHeaders);
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(SsdpError::Header(line.chars().take(80).collect()));
        };
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(SsdpError::Header(line.chars().take(80).collect()));
        }
        headers.push((name.trim().to_ascii_uppercase(), value.trim().to_string()));
    }
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let mut words = start.split_whitespace();
    let first = words.next().unwrap_or_default();
    let second = words.next().unwrap_or_default();
    let need = |message: &'static str, header: &'static str| {
        get(header).ok_or(SsdpError::Missing { message, header })
    };
    if first.eq_ignore_ascii_case("HTTP/1.1") || first.eq_ignore_ascii_case("HTTP/1.0") {
        if second != "200" {
            return Err(SsdpError::StartLine(start.chars().take(80).collect()));
        }
        Ok(SsdpMessage::Response(Announcement {
            usn: need("response", "USN")?,
            target: need("response", "ST")?,
            location: get("LOCATION"),
            server: get("SERVER"),
            nts: None,
        }))
    } else if first.eq_ignore_ascii_case("NOTIFY") {
        let nts = need("NOTIFY", "NTS")?;
        Ok(SsdpMessage::Notify(Announcement {
            usn: need("NOTIFY", "USN")?,
            target: need("NOTIFY", "NT")?,
            location: get("LOCATION"),
            server: get("SERVER"),
            nts: Some(nts),
        }))
    } else if first.eq_ignore_ascii_case("M-SEARCH") {
        Ok(SsdpMessage::Search {
            target: need("M-SEARCH", "ST")?,
            mx: get("MX").and_then(|v| v.parse().ok()),
        })
    } else {
        Err(SsdpError::StartLine(start.chars().take(80).collect()))
    }
}

/// The host part of an `http://HOST:PORT/...` LOCATION, if it is an IPv4
/// address.
pub fn location_ipv4(location: &str) -> Option<std::net::Ipv4Addr> {
    let rest = location
        .strip_prefix("http://")
        .or_else(|| location.strip_prefix("HTTP://"))?;
    let authority = rest.split('/').next()?;
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    host.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Axis C1310-E-style answer (banner names the model).
    const AXIS: &str = "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nEXT:\r\nLOCATION: http://10.21.3.40:49152/description.xml\r\nSERVER: Linux/4.9, UPnP/1.0, AXIS C1310-E/11.1.67\r\nST: urn:schemas-upnp-org:device:MediaRenderer:1\r\nUSN: uuid:Upnp-C1310-1_0-ACCC8E000001::urn:schemas-upnp-org:device:MediaRenderer:1\r\n\r\n";

    #[test]
    fn parses_a_search_response() {
        let SsdpMessage::Response(a) = parse(AXIS.as_bytes()).unwrap() else {
            panic!("not a response");
        };
        assert_eq!(a.target, MEDIA_RENDERER);
        assert_eq!(a.uuid(), "uuid:Upnp-C1310-1_0-ACCC8E000001");
        assert_eq!(
            a.location.as_deref(),
            Some("http://10.21.3.40:49152/description.xml")
        );
        assert!(a.server.as_deref().unwrap().contains("AXIS C1310-E"));
        assert_eq!(a.nts, None);
        assert_eq!(
            location_ipv4(a.location.as_deref().unwrap()),
            Some([10, 21, 3, 40].into())
        );
    }

    #[test]
    fn header_names_are_case_insensitive_and_lf_only_lines_accepted() {
        let m = "HTTP/1.1 200 OK\nusn: uuid:a\nst: ssdp:all\nLocation:http://1.2.3.4/x\n\n";
        let SsdpMessage::Response(a) = parse(m.as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(a.usn, "uuid:a");
        assert_eq!(a.location.as_deref(), Some("http://1.2.3.4/x"));
    }

    #[test]
    fn parses_notify_alive_and_byebye() {
        let m = "NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nNT: urn:schemas-upnp-org:device:MediaRenderer:1\r\nNTS: ssdp:byebye\r\nUSN: uuid:x::urn:schemas-upnp-org:device:MediaRenderer:1\r\n\r\n";
        let SsdpMessage::Notify(a) = parse(m.as_bytes()).unwrap() else {
            panic!()
        };
        assert!(a.is_byebye());
        assert_eq!(a.location, None);
        let missing = m.replace("NTS: ssdp:byebye\r\n", "");
        assert_eq!(
            parse(missing.as_bytes()),
            Err(SsdpError::Missing {
                message: "NOTIFY",
                header: "NTS"
            })
        );
    }

    #[test]
    fn msearch_roundtrips() {
        let s = build_msearch(GROUP, MEDIA_RENDERER, 9);
        assert!(s.contains("MX: 5\r\n"));
        assert!(s.contains("MAN: \"ssdp:discover\"\r\n"));
        assert_eq!(
            parse(s.as_bytes()).unwrap(),
            SsdpMessage::Search {
                target: MEDIA_RENDERER.into(),
                mx: Some(5)
            }
        );
    }

    #[test]
    fn response_builder_roundtrips() {
        let a = Announcement {
            usn: "uuid:1::urn:x".into(),
            target: MEDIA_RENDERER.into(),
            location: Some("http://127.0.1.3:80/description.xml".into()),
            server: Some("Linux UPnP/1.0 AXIS C1310-E/11.1".into()),
            nts: None,
        };
        assert_eq!(
            parse(build_response(&a, 1800).as_bytes()).unwrap(),
            SsdpMessage::Response(a)
        );
    }

    #[test]
    fn missing_usn_is_named() {
        let m = "HTTP/1.1 200 OK\r\nST: ssdp:all\r\n\r\n";
        let e = parse(m.as_bytes()).unwrap_err();
        assert_eq!(
            e,
            SsdpError::Missing {
                message: "response",
                header: "USN"
            }
        );
        assert!(e.to_string().contains("USN"));
    }

    #[test]
    fn garbage_is_refused() {
        assert!(matches!(parse(b""), Err(SsdpError::StartLine(_))));
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\n\r\n"),
            Err(SsdpError::StartLine(_))
        ));
        assert!(matches!(
            parse(b"HTTP/1.1 404 Not Found\r\nUSN: a\r\nST: b\r\n\r\n"),
            Err(SsdpError::StartLine(_))
        ));
        assert_eq!(parse(&[0xff, 0xfe, 0x00]), Err(SsdpError::NotText));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"),
            Err(SsdpError::Header(_))
        ));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\nUSN: a\x00b\r\nST: x\r\n\r\n"),
            Err(SsdpError::Header(_))
        ));
    }

    #[test]
    fn oversize_input_is_refused() {
        let big = vec![b'a'; MAX_DATAGRAM + 1];
        assert_eq!(parse(&big), Err(SsdpError::TooLarge(MAX_DATAGRAM + 1)));
        let long = format!("HTTP/1.1 200 OK\r\nUSN: {}\r\n\r\n", "u".repeat(MAX_LINE));
        assert!(matches!(
            parse(long.as_bytes()),
            Err(SsdpError::LineTooLong(_))
        ));
        let many = format!(
            "HTTP/1.1 200 OK\r\n{}\r\n",
            "X: y\r\n".repeat(MAX_HEADERS + 1)
        );
        assert_eq!(parse(many.as_bytes()), Err(SsdpError::TooManyHeaders));
    }

    #[test]
    fn search_matching() {
        assert!(matches(ALL, MEDIA_RENDERER));
        assert!(matches(MEDIA_RENDERER, MEDIA_RENDERER));
        assert!(!matches("upnp:rootdevice", MEDIA_RENDERER));
    }
}
