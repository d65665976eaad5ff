//! Outbound HTTPS (CAP feeds, HTTPS device endpoints): reqwest over rustls
//! with the *ring* provider, trusting the system's roots
//! (`rustls-native-certs`: `/etc/ssl/certs` on Debian) plus an optional
//! extra CA file (`http.outbound_ca_file`, a county's private CA).
//!
//! A certificate problem is reported with rustls' reason (unknown issuer,
//! expired, name mismatch …) through [`describe`], not only "error sending
//! request".

use std::path::Path;
use std::sync::Arc;

use super::error::{Error, Result};

/// The rustls client configuration: system roots plus the PEM
/// certificates of `extra_ca`. An unreadable extra file, or one without
/// a certificate, is an error naming it; unreadable system roots are
/// skipped (logged once).
pub fn client_config(extra_ca: Option<&Path>) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    if !native.errors.is_empty() {
        tracing::warn!(
            errors = native.errors.len(),
            "some system CA certificates could not be read"
        );
    }
    let (_added, _ignored) = roots.add_parsable_certificates(native.certs);
    if let Some(path) = extra_ca {
        let bad = |e: &dyn std::fmt::Display| {
            Error::invalid(format!("http.outbound_ca_file {}: {e}", path.display()))
        };
        let pem = std::fs::read(path).map_err(|e| bad(&e))?;
        let mut n = 0;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
            n += 1;
        }
        if n == 0 {
            return Err(bad(&"no PEM certificate in it"));
        }
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::invalid(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// Makes HTTPS device endpoints (ONVIF, snapshots, event pulls through
/// `device_drivers::onvif_client::http_client`) trust the same roots as
/// [`client`]: the system's plus `extra_ca`. Called once by `tgw run`.
pub fn install_device_tls(extra_ca: Option<&Path>) -> Result<()> {
    device_drivers::onvif_client::set_tls(client_config(extra_ca)?);
    Ok(())
}

/// A reqwest client for outbound HTTP and HTTPS (no proxy from the
/// environment) with [`client_config`].
pub fn client(extra_ca: Option<&Path>) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .use_preconfigured_tls(client_config(extra_ca)?)
        .build()
        .map_err(|e| Error::invalid(format!("HTTPS client: {e}")))
}

/// A reqwest error with its causes (`error sending request: … invalid
/// peer certificate: UnknownIssuer`), each once.
pub fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const CAP: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>t-1</identifier></alert>"#;

    /// A CA and a server certificate for 127.0.0.1 signed by it (PEM).
    fn pki() -> (String, rustls::ServerConfig) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "tgw test county CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &ca_cert, &ca_key)
            .unwrap();
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
        (ca_cert.pem(), server)
    }

    /// Serves CAP over HTTPS on a loopback port, one request per connection.
    async fn serve(server: rustls::ServerConfig) -> u16 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        tokio::spawn(async move {
            while let Ok((tcp, _)) = l.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = [0u8; 2048];
                    let _ = tls.read(&mut buf).await;
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/cap+xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{CAP}",
                        CAP.len()
                    );
                    let _ = tls.write_all(resp.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        port
    }

    /// With the county CA configured the feed is fetched; without it the request is refused and the error names the
    /// certificate problem (unknown issuer).
    #[tokio::test]
    async fn https_feed_needs_the_configured_ca() {
        let (ca_pem, server) = pki();
        let port = serve(server).await;
        let url = format!("https://127.0.0.1:{port}/cap.xml");
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("county-ca.pem");
        std::fs::write(&ca, &ca_pem).unwrap();

        let body = client(Some(&ca))
            .unwrap()
            .get(&url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, CAP);

        let e = client(None).unwrap().get(&url).send().await.unwrap_err();
        let msg = describe(&e);
        assert!(
            msg.contains("certificate") && msg.contains("UnknownIssuer"),
            "{msg}"
        );
    }

    /// A missing or certificate-less extra CA file is refused naming it.
    #[test]
    fn a_bad_extra_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let e = client_config(Some(&missing)).unwrap_err().to_string();
        assert!(
            e.contains("outbound_ca_file") && e.contains("nope.pem"),
            "{e}"
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate").unwrap();
        let e = client_config(Some(&empty)).unwrap_err().to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
        assert!(client_config(None).is_ok());
    }
}
