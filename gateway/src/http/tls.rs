//! TLS for the dashboard and API (`http.tls`): the operator's certificate
//! and key, or a self-signed certificate generated with rcgen on first
//! start and kept in the data directory (`https-self-signed.crt`, the key
//! `https-self-signed.key` with mode 0600, and `https-self-signed.meta`:
//! the names and expiry it was made for). The self-signed certificate is
//! reused across restarts and made again when it expires within
//! [`RENEW_BEFORE`] or when `http.tls_names` change.
//!
//! The SHA-256 fingerprint of the served leaf certificate is printed at
//! start (log, `tgw demo` banner) so a technician can compare it with the
//! one the browser shows. Served with tokio-rustls over the *ring*
//! provider, HTTP/1.1 only (`http/serve.rs`).

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::Digest as _;
use time::OffsetDateTime;

use crate::base::error::{Error, Result};
use crate::config::HttpSection;
use crate::config::http::TlsMode;

/// The self-signed certificate's file names in the data directory.
pub const CERT_FILE: &str = "https-self-signed.crt";
/// Its private key (0600).
pub const KEY_FILE: &str = "https-self-signed.key";
/// What it was made for: `names=a,b` and `not_after=<unix seconds>`.
const META_FILE: &str = "https-self-signed.meta";

/// Validity of a generated certificate.
const VALIDITY: time::Duration = time::Duration::days(825);
/// A self-signed certificate expiring within this is made again at start.
pub const RENEW_BEFORE: time::Duration = time::Duration::days(30);

/// What the server serves with TLS on.
#[derive(Clone)]
pub struct Tls {
    /// The acceptor for [`crate::http::serve_tls`].
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// SHA-256 of the leaf certificate, `AB:CD:…` (as `openssl x509
    /// -fingerprint -sha256` prints it).
    pub fingerprint: String,
    /// The PEM file of the served certificate (chain).
    pub cert_file: PathBuf,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("fingerprint", &self.fingerprint)
            .field("cert_file", &self.cert_file)
            .finish_non_exhaustive()
    }
}

/// The TLS of `[http]`: `None` when `tls = "off"`. `now` decides whether a
/// self-signed certificate in `data_dir` is still good.
pub fn load(h: &HttpSection, data_dir: &Path, now: OffsetDateTime) -> Result<Option<Tls>> {
    let (cert, key) = match h.tls {
        TlsMode::Off => return Ok(None),
        TlsMode::Files => {
            let (Some(c), Some(k)) = (&h.tls_cert_file, &h.tls_key_file) else {
                return Err(Error::invalid(
                    "http.tls = \"files\" needs http.tls_cert_file and http.tls_key_file",
                ));
            };
            (c.clone(), k.clone())
        }
        TlsMode::SelfSigned => {
            self_signed(data_dir, &h.self_signed_names(), now)?;
            (data_dir.join(CERT_FILE), data_dir.join(KEY_FILE))
        }
    };
    from_files(&cert, &key).map(Some)
}

/// The acceptor and fingerprint of a PEM certificate chain and key. Each
/// error names the file and what was wrong with it (never key bytes).
pub fn from_files(cert_file: &Path, key_file: &Path) -> Result<Tls> {
    let certs = read_certs(cert_file)?;
    let key = read_key(key_file)?;
    let fingerprint = fingerprint(&certs[0]);
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::invalid(format!("TLS: {e}")))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| {
        Error::invalid(format!(
            "http TLS: certificate {} and key {} do not go together: {e}",
            cert_file.display(),
            key_file.display()
        ))
    })?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(cfg)),
        fingerprint,
        cert_file: cert_file.to_path_buf(),
    })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let bad = |e: &dyn std::fmt::Display| {
        Error::invalid(format!("http.tls certificate file {}: {e}", path.display()))
    };
    let pem = std::fs::read(path).map_err(|e| bad(&e))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(&e))?;
    if certs.is_empty() {
        return Err(bad(&"no PEM certificate in it"));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let bad = |e: &dyn std::fmt::Display| {
        Error::invalid(format!("http.tls key file {}: {e}", path.display()))
    };
    let pem = std::fs::read(path).map_err(|e| bad(&e))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|_| bad(&"not a readable PEM private key"))?
        .ok_or_else(|| bad(&"no PEM private key in it"))
}

/// SHA-256 of a DER certificate as colon-separated upper-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Makes sure `dir` holds a self-signed certificate for `names` valid
/// beyond `now` + [`RENEW_BEFORE`]; generates one otherwise. Returns
/// whether one was generated.
pub fn self_signed(dir: &Path, names: &[String], now: OffsetDateTime) -> Result<bool> {
    let meta = std::fs::read_to_string(dir.join(META_FILE)).unwrap_or_default();
    let (old_names, not_after) = parse_meta(&meta);
    let usable = old_names.as_deref() == Some(&names.join(","))
        && not_after.is_some_and(|t| t > now + RENEW_BEFORE)
        && dir.join(CERT_FILE).is_file()
        && dir.join(KEY_FILE).is_file();
    if usable {
        return Ok(false);
    }
    let fail = |e: &dyn std::fmt::Display| Error::internal(format!("self-signed certificate: {e}"));
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(|e| fail(&e))?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("tgw {}", names.join(" ")),
    );
    params.not_before = now - time::Duration::hours(1);
    let not_after = now + VALIDITY;
    params.not_after = not_after;
    let key = rcgen::KeyPair::generate().map_err(|e| fail(&e))?;
    let cert = params.self_signed(&key).map_err(|e| fail(&e))?;
    write_private(&dir.join(KEY_FILE), key.serialize_pem().as_bytes())?;
    write_private(&dir.join(CERT_FILE), cert.pem().as_bytes())?;
    let meta = format!(
        "names={}\nnot_after={}\n",
        names.join(","),
        not_after.unix_timestamp()
    );
    write_private(&dir.join(META_FILE), meta.as_bytes())?;
    tracing::info!(names = %names.join(","), "generated a self-signed https certificate");
    Ok(true)
}

fn parse_meta(meta: &str) -> (Option<String>, Option<OffsetDateTime>) {
    let mut names = None;
    let mut not_after = None;
    for line in meta.lines() {
        if let Some(v) = line.strip_prefix("names=") {
            names = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("not_after=") {
            not_after = v
                .parse::<i64>()
                .ok()
                .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok());
        }
    }
    (names, not_after)
}

/// Writes `path` with mode 0600 through a temporary file and a rename.
fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    let fail = |e: std::io::Error| Error::internal(format!("{}: {e}", path.display()));
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(fail)?;
    f.write_all(data).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time")
    }

    fn section(text: &str) -> HttpSection {
        toml::from_str(text).expect("http section")
    }

    /// A missing certificate file is refused naming it.
    #[test]
    fn a_missing_cert_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let h = section(&format!(
            "tls = \"files\"\ntls_cert_file = \"{0}/nope.crt\"\ntls_key_file = \"{0}/nope.key\"",
            dir.path().display()
        ));
        let e = load(&h, dir.path(), t0()).expect_err("missing file");
        assert!(e.message().contains("nope.crt"), "{e}");
        assert!(e.message().contains("certificate file"), "{e}");
    }

    /// Garbage in the key file, or a key of another certificate, is
    /// refused naming the file, without the key's bytes.
    #[test]
    fn a_bad_or_mismatched_key_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::create_dir(&a).expect("a");
        std::fs::create_dir(&b).expect("b");
        self_signed(&a, &["localhost".into()], t0()).expect("a");
        self_signed(&b, &["localhost".into()], t0()).expect("b");
        let junk = dir.path().join("junk.key");
        std::fs::write(&junk, "-----BEGIN PRIVATE KEY-----\nnot base64!\n").expect("junk");
        let e = from_files(&a.join(CERT_FILE), &junk).expect_err("junk key");
        assert!(e.message().contains("junk.key"), "{e}");
        let e = from_files(&a.join(CERT_FILE), &b.join(KEY_FILE)).expect_err("mismatch");
        assert!(e.message().contains("do not go together"), "{e}");
        let key = std::fs::read_to_string(b.join(KEY_FILE)).expect("key");
        let body = key.lines().nth(1).expect("line");
        assert!(!e.message().contains(body));
    }

    /// The TLS keys are checked together.
    #[test]
    fn tls_keys_are_validated_together() {
        for (text, needle) in [
            ("tls = \"files\"", "tls_cert_file"),
            ("tls = \"files\"\ntls_cert_file = \"/c\"", "tls_key_file"),
            ("tls_cert_file = \"/c\"\ntls_key_file = \"/k\"", "need"),
            ("tls = \"self-signed\"\ntls_names = [\"\"]", "invalid name"),
        ] {
            let e = section(text).validate_tls().expect_err(text);
            assert!(e.contains(needle), "{text}: {e}");
        }
        assert!(toml::from_str::<HttpSection>("tls = \"on\"").is_err());
        assert!(section("tls = \"self-signed\"").validate_tls().is_ok());
    }

    /// Generated once with a private key, reused across restarts, made
    /// again when the names change or it nears expiry; its fingerprint is
    /// the served certificate's.
    #[test]
    fn self_signed_is_kept_reused_and_renewed() {
        let dir = tempfile::tempdir().expect("tmp");
        let h = section("tls = \"self-signed\"\nlisten = \"127.0.0.1:8443\"");
        assert_eq!(h.self_signed_names(), ["localhost", "127.0.0.1"]);
        let first = load(&h, dir.path(), t0()).expect("load").expect("tls");
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let pem = std::fs::read(dir.path().join(CERT_FILE)).expect("pem");
        let der = rustls_pemfile::certs(&mut pem.as_slice())
            .next()
            .expect("cert")
            .expect("der");
        assert_eq!(first.fingerprint, fingerprint(&der));
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);

        let again = load(&h, dir.path(), t0() + time::Duration::days(300)).expect("again");
        assert_eq!(again.expect("tls").fingerprint, first.fingerprint);

        let late = t0() + VALIDITY - RENEW_BEFORE + time::Duration::days(1);
        let renewed = load(&h, dir.path(), late).expect("renew").expect("tls");
        assert_ne!(renewed.fingerprint, first.fingerprint);

        let other = section("tls = \"self-signed\"\ntls_names = [\"gw.example\"]");
        let renamed = load(&other, dir.path(), late).expect("names").expect("tls");
        assert_ne!(renamed.fingerprint, renewed.fingerprint);
    }
}
