//! Where a camera's login may go: the pure rule the snapshot fetch and the
//! RTSP DESCRIBE / sample apply before they answer an authentication
//! challenge.
//!
//! A camera reports its own snapshot and stream URIs, and may name any host
//! in them. Its login (often a credential group's password shared by many
//! cameras) is sent only to the camera's own hosts — the host of its ONVIF
//! XAddr, the address it was adopted at, and hosts a technician allowed for
//! it — and never as HTTP `Basic` over plain `http://` unless the device is
//! opted in. Digest (the password never crosses the wire) is fine over
//! plain HTTP; Basic over `https://` is fine. A URI on another host is still
//! fetched, without credentials; a redirect is judged by where it lands.

use url::{Host, Url};

/// The authentication scheme a server's challenge asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Basic`: the password in (base64) clear text.
    Basic,
    /// `Digest`: a hash over the password and a server nonce.
    Digest,
    /// Anything else (or no usable challenge).
    Other,
}

impl Scheme {
    /// The scheme of a `WWW-Authenticate` value. With several challenges in
    /// one value, Digest wins when offered (it is what we answer).
    pub fn of_challenge(value: &str) -> Self {
        let lower = value.to_ascii_lowercase();
        let t = lower.trim_start();
        if t.starts_with("digest") || lower.contains(", digest ") {
            Scheme::Digest
        } else if t.starts_with("basic") {
            Scheme::Basic
        } else {
            Scheme::Other
        }
    }
}

/// Why credentials were not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withheld {
    /// The URI (or where a redirect landed) is not one of the camera's hosts.
    ForeignHost,
    /// The server asked for Basic over plain `http://` and the device is not
    /// opted in to that.
    PlainBasic,
}

impl Withheld {
    /// A short, stable label: `foreign-host` or `plain-basic`.
    pub fn as_str(self) -> &'static str {
        match self {
            Withheld::ForeignHost => "foreign-host",
            Withheld::PlainBasic => "plain-basic",
        }
    }
}

impl std::fmt::Display for Withheld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The hosts a camera's login may be sent to, and whether Basic over plain
/// HTTP is allowed for it. The default scope allows no host: credentials
/// are never sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialScope {
    hosts: Vec<Host<String>>,
    plain_basic: bool,
}

/// Parses a bare host (`192.168.1.64`, `[fe80::1]`, `cam.local`) or the host
/// of a URL (`http://192.168.1.64:8000/onvif/device_service`).
pub fn parse_host(s: &str) -> Option<Host<String>> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.contains("://") {
        return Url::parse(s).ok()?.host().map(|h| h.to_owned());
    }
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Some(match ip {
            std::net::IpAddr::V4(a) => Host::Ipv4(a),
            std::net::IpAddr::V6(a) => Host::Ipv6(a),
        });
    }
    Host::parse(s).ok()
}

impl CredentialScope {
    /// A scope allowing no host.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a host (bare, or the host of a URL such as an XAddr). Strings
    /// that name no host are ignored.
    pub fn allow_host(mut self, host_or_url: &str) -> Self {
        if let Some(h) = parse_host(host_or_url)
            && !self.hosts.contains(&h)
        {
            self.hosts.push(h);
        }
        self
    }

    /// Allows (or not) Basic over plain `http://` to the allowed hosts.
    pub fn allow_plain_basic(mut self, yes: bool) -> Self {
        self.plain_basic = yes;
        self
    }

    /// Whether `url`'s host is one of the camera's hosts (any port). The
    /// host is read from its text, so `rtsp://` URLs (whose host the `url`
    /// crate keeps opaque) compare like `http://` ones.
    pub fn host_allowed(&self, url: &Url) -> bool {
        let Some(text) = url.host_str() else {
            return false;
        };
        let bare = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(text);
        parse_host(bare).is_some_and(|h| self.hosts.contains(&h))
    }

    /// May credentials answer a `scheme` challenge from `url` (the URL the
    /// challenge came from, after any redirects)?
    pub fn check(&self, url: &Url, scheme: Scheme) -> Result<(), Withheld> {
        if !self.host_allowed(url) {
            return Err(Withheld::ForeignHost);
        }
        if scheme == Scheme::Basic && url.scheme() == "http" && !self.plain_basic {
            return Err(Withheld::PlainBasic);
        }
        Ok(())
    }

    /// May credentials go to `url` before any challenge is seen (RTSP, where
    /// the client library answers the challenge itself)? The host rule only.
    pub fn check_host(&self, url: &Url) -> Result<(), Withheld> {
        if self.host_allowed(url) {
            Ok(())
        } else {
            Err(Withheld::ForeignHost)
        }
    }

    /// [`Self::check`] on a URL string; an unparsable URL is foreign.
    pub fn check_str(&self, url: &str, scheme: Scheme) -> Result<(), Withheld> {
        match Url::parse(url.trim()) {
            Ok(u) => self.check(&u, scheme),
            Err(_) => Err(Withheld::ForeignHost),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cam() -> CredentialScope {
        CredentialScope::new().allow_host("http://192.168.1.64:8000/onvif/device_service")
    }
    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn same_host_any_port_gets_digest() {
        let s = cam();
        assert_eq!(
            s.check(&u("http://192.168.1.64/snap.jpg"), Scheme::Digest),
            Ok(())
        );
        assert_eq!(
            s.check(&u("rtsp://192.168.1.64:554/main"), Scheme::Digest),
            Ok(())
        );
        assert_eq!(s.check_host(&u("rtsp://192.168.1.64/main")), Ok(()));
        let named = CredentialScope::new().allow_host("http://Cam-7.local/onvif");
        assert_eq!(named.check_host(&u("rtsp://CAM-7.local:554/main")), Ok(()));
        let v6 = CredentialScope::new().allow_host("http://[fe80::1]/onvif");
        assert_eq!(v6.check_host(&u("rtsp://[fe80::1]:554/main")), Ok(()));
    }

    #[test]
    fn other_host_gets_nothing() {
        let s = cam();
        for scheme in [Scheme::Digest, Scheme::Basic, Scheme::Other] {
            assert_eq!(
                s.check(&u("http://192.168.1.65/snap.jpg"), scheme),
                Err(Withheld::ForeignHost)
            );
            assert_eq!(
                s.check(&u("https://evil.example/snap.jpg"), scheme),
                Err(Withheld::ForeignHost)
            );
        }
        assert_eq!(
            s.check_host(&u("rtsp://10.0.0.1/main")),
            Err(Withheld::ForeignHost)
        );
        assert_eq!(
            s.check_str("not a url", Scheme::Digest),
            Err(Withheld::ForeignHost)
        );
        // No host at all: nothing goes anywhere.
        assert_eq!(
            CredentialScope::new().check(&u("http://192.168.1.64/"), Scheme::Digest),
            Err(Withheld::ForeignHost)
        );
    }

    #[test]
    fn plain_http_basic_refused_unless_opted_in() {
        let url = u("http://192.168.1.64/snap.jpg");
        assert_eq!(cam().check(&url, Scheme::Basic), Err(Withheld::PlainBasic));
        assert_eq!(
            cam().allow_plain_basic(true).check(&url, Scheme::Basic),
            Ok(())
        );
        // Opting in never opens another host.
        assert_eq!(
            cam()
                .allow_plain_basic(true)
                .check(&u("http://192.168.1.65/snap.jpg"), Scheme::Basic),
            Err(Withheld::ForeignHost)
        );
    }

    #[test]
    fn https_basic_and_digest_are_fine() {
        let s = cam();
        assert_eq!(
            s.check(&u("https://192.168.1.64/snap.jpg"), Scheme::Basic),
            Ok(())
        );
        assert_eq!(
            s.check(&u("http://192.168.1.64/snap.jpg"), Scheme::Digest),
            Ok(())
        );
    }

    #[test]
    fn redirect_to_another_host_gets_nothing() {
        // The fetch judges where the redirect landed, not where it started.
        let s = cam();
        let started = u("http://192.168.1.64/snap.jpg");
        let landed = u("http://203.0.113.9/collect");
        assert!(s.host_allowed(&started));
        assert_eq!(s.check(&landed, Scheme::Digest), Err(Withheld::ForeignHost));
    }

    #[test]
    fn allowed_hosts_and_forms() {
        let s = cam()
            .allow_host("10.0.0.9")
            .allow_host("[fe80::1]")
            .allow_host("NVR.local")
            .allow_host("");
        assert!(s.host_allowed(&u("http://10.0.0.9/x")));
        assert!(s.host_allowed(&u("http://[fe80::1]:8080/x")));
        assert!(s.host_allowed(&u("http://nvr.local/x")));
        assert!(!s.host_allowed(&u("http://10.0.0.90/x")));
        assert!(parse_host("").is_none());
    }

    #[test]
    fn challenge_schemes() {
        assert_eq!(Scheme::of_challenge("Basic realm=\"cam\""), Scheme::Basic);
        assert_eq!(
            Scheme::of_challenge(" digest realm=\"cam\", nonce=\"1\""),
            Scheme::Digest
        );
        assert_eq!(Scheme::of_challenge("Bearer x"), Scheme::Other);
        assert_eq!(Scheme::of_challenge(""), Scheme::Other);
    }
}
