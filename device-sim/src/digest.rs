//! Server side of HTTP Digest authentication (RFC 7616 with MD5, `qop=auth`),
//! as IP cameras do it. Pure: the time is passed in.
//!
//! Nonces are stateless: `<unix time as 16 hex digits><first 16 hex digits of
//! MD5(secret:time)>`, accepted for [`NONCE_MAX_AGE_S`] seconds, so a thousand
//! cameras keep no per-client state.

use md5::{Digest as _, Md5};

/// How long a nonce stays valid.
pub const NONCE_MAX_AGE_S: i64 = 300;

/// Parameters of an `Authorization: Digest ...` header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestParams {
    /// `username`.
    pub username: String,
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `uri`.
    pub uri: String,
    /// `response`.
    pub response: String,
    /// `qop`, if sent.
    pub qop: Option<String>,
    /// `nc`, if sent.
    pub nc: Option<String>,
    /// `cnonce`, if sent.
    pub cnonce: Option<String>,
    /// `algorithm`, if sent.
    pub algorithm: Option<String>,
}

/// Why a digest response was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The header is not a readable `Digest` header.
    #[error("Authorization header is not a readable Digest header")]
    Unreadable,
    /// An algorithm other than MD5.
    #[error("unsupported digest algorithm {0}")]
    Algorithm(String),
    /// A realm other than ours.
    #[error("wrong realm {0:?}")]
    Realm(String),
    /// A nonce we did not issue.
    #[error("nonce not issued by this camera")]
    BadNonce,
    /// A nonce we issued, but too long ago.
    #[error("nonce expired")]
    Stale,
    /// `uri` differs from the request target.
    #[error("digest uri {0:?} does not match the request")]
    Uri(String),
    /// Wrong user or wrong password.
    #[error("wrong user name or password")]
    Credentials,
}

pub(crate) fn md5_hex(parts: &[&str]) -> String {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Issues a nonce at `now_unix` seconds.
pub fn make_nonce(secret: &str, now_unix: i64) -> String {
    let t = format!("{:016x}", now_unix);
    let mac = md5_hex(&[secret, &t]);
    format!("{t}{}", &mac[..16])
}

/// Checks a nonce we issued: `Ok` when genuine and fresh.
pub fn check_nonce(secret: &str, nonce: &str, now_unix: i64) -> Result<(), DigestError> {
    let (t, mac) = match (nonce.get(..16), nonce.get(16..)) {
        (Some(t), Some(m)) if m.len() == 16 => (t, m),
        _ => return Err(DigestError::BadNonce),
    };
    let expected = md5_hex(&[secret, t]);
    if expected.get(..16) != Some(mac) {
        return Err(DigestError::BadNonce);
    }
    let issued = i64::from_str_radix(t, 16).map_err(|_| DigestError::BadNonce)?;
    if now_unix - issued > NONCE_MAX_AGE_S || issued - now_unix > NONCE_MAX_AGE_S {
        return Err(DigestError::Stale);
    }
    Ok(())
}

/// The `WWW-Authenticate` value of a 401 answer.
pub fn challenge(realm: &str, nonce: &str, stale: bool) -> String {
    let stale = if stale { "TRUE" } else { "FALSE" };
    format!(
        "Digest realm=\"{realm}\", qop=\"auth\", nonce=\"{nonce}\", algorithm=MD5, stale=\"{stale}\""
    )
}

/// Parses `Digest k=v, k="v, with comma", ...`.
pub fn parse_authorization(h: &str) -> Option<DigestParams> {
    let h = h.trim();
    let scheme = h.get(..6)?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut rest = h.get(6..)?;
    let mut p = DigestParams::default();
    loop {
        rest = rest.trim_start_matches([' ', ',', '\t']);
        if rest.is_empty() {
            break;
        }
        let eq = rest.find('=')?;
        let key = rest[..eq].trim().to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(r) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = r.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            out.push(n);
                        }
                    }
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => out.push(c),
                }
            }
            let end = end?;
            value = out;
            rest = &r[end + 1..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        match key.as_str() {
            "username" => p.username = value,
            "realm" => p.realm = value,
            "nonce" => p.nonce = value,
            "uri" => p.uri = value,
            "response" => p.response = value.to_ascii_lowercase(),
            "qop" => p.qop = Some(value),
            "nc" => p.nc = Some(value),
            "cnonce" => p.cnonce = Some(value),
            "algorithm" => p.algorithm = Some(value),
            _ => {}
        }
    }
    Some(p)
}

/// The expected `response` for these parameters (what a client computes).
pub fn expected_response(p: &DigestParams, method: &str, password: &str) -> String {
    let ha1 = md5_hex(&[&p.username, &p.realm, password]);
    let ha2 = md5_hex(&[method, &p.uri]);
    match (&p.qop, &p.nc, &p.cnonce) {
        (Some(qop), Some(nc), Some(cnonce)) => md5_hex(&[&ha1, &p.nonce, nc, cnonce, qop, &ha2]),
        _ => md5_hex(&[&ha1, &p.nonce, &ha2]),
    }
}

/// Verifies a Digest `Authorization` header for `method` on `request_uri`.
#[allow(clippy::too_many_arguments)]
pub fn verify(
    header: &str,
    method: &str,
    request_uri: &str,
    username: &str,
    password: &str,
    realm: &str,
    secret: &str,
    now_unix: i64,
) -> Result<(), DigestError> {
    let p = parse_authorization(header).ok_or(DigestError::Unreadable)?;
    if let Some(a) = &p.algorithm
        && !a.eq_ignore_ascii_case("md5")
    {
        return Err(DigestError::Algorithm(a.clone()));
    }
    if p.realm != realm {
        return Err(DigestError::Realm(p.realm));
    }
    if p.uri != request_uri {
        return Err(DigestError::Uri(p.uri));
    }
    check_nonce(secret, &p.nonce, now_unix)?;
    if p.username != username || expected_response(&p, method, password) != p.response {
        return Err(DigestError::Credentials);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5 example: the known response for Mufasa / "Circle Of Life".
    #[test]
    fn rfc2617_vector() {
        let p = DigestParams {
            username: "Mufasa".into(),
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            uri: "/dir/index.html".into(),
            qop: Some("auth".into()),
            nc: Some("00000001".into()),
            cnonce: Some("0a4f113b".into()),
            ..Default::default()
        };
        assert_eq!(
            expected_response(&p, "GET", "Circle Of Life"),
            "6629fae49393a05397450978507c4ef1"
        );
    }

    fn header(user: &str, pw: &str, nonce: &str, uri: &str) -> String {
        let p = DigestParams {
            username: user.into(),
            realm: "IP Camera(12345)".into(),
            nonce: nonce.into(),
            uri: uri.into(),
            qop: Some("auth".into()),
            nc: Some("00000001".into()),
            cnonce: Some("abc".into()),
            ..Default::default()
        };
        let r = expected_response(&p, "POST", pw);
        format!(
            "Digest username=\"{user}\", realm=\"IP Camera(12345)\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{r}\", qop=auth, nc=00000001, cnonce=\"abc\", algorithm=MD5"
        )
    }

    /// Right password accepted; wrong password, user, uri, forged or old nonce refused.
    #[test]
    fn accept_and_reject() {
        let now = 1_800_000_000;
        let n = make_nonce("s3", now);
        let realm = "IP Camera(12345)";
        let uri = "/onvif/device_service";
        let ok = header("admin", "pw", &n, uri);
        assert_eq!(
            verify(&ok, "POST", uri, "admin", "pw", realm, "s3", now + 5),
            Ok(())
        );
        let bad = header("admin", "nope", &n, uri);
        assert_eq!(
            verify(&bad, "POST", uri, "admin", "pw", realm, "s3", now),
            Err(DigestError::Credentials)
        );
        let other = header("root", "pw", &n, uri);
        assert_eq!(
            verify(&other, "POST", uri, "admin", "pw", realm, "s3", now),
            Err(DigestError::Credentials)
        );
        assert!(matches!(
            verify(&ok, "POST", "/other", "admin", "pw", realm, "s3", now),
            Err(DigestError::Uri(_))
        ));
        assert_eq!(
            verify(&ok, "POST", uri, "admin", "pw", realm, "other-secret", now),
            Err(DigestError::BadNonce)
        );
        assert_eq!(
            verify(&ok, "POST", uri, "admin", "pw", realm, "s3", now + 301),
            Err(DigestError::Stale)
        );
        assert_eq!(
            verify(
                "Basic YWRtaW46cHc=",
                "POST",
                uri,
                "admin",
                "pw",
                realm,
                "s3",
                now
            ),
            Err(DigestError::Unreadable)
        );
    }

    /// Quoted values may contain commas and escaped quotes.
    #[test]
    fn parses_quoted_values() {
        let p = parse_authorization(r#"Digest realm="a, \"b\"", username=x,nonce="n""#).unwrap();
        assert_eq!(p.realm, "a, \"b\"");
        assert_eq!(p.username, "x");
        assert_eq!(p.nonce, "n");
        assert!(parse_authorization(r#"Digest realm="unterminated"#).is_none());
    }
}
