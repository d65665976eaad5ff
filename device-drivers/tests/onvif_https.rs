//! ONVIF over HTTPS (issue 16.4): a loopback camera whose certificate is
//! signed by a throw-away CA (rcgen) is refused without that CA, with an
//! error naming the camera, the call and the certificate problem, and
//! answers GetSystemDateAndTime once the CA is trusted.
#![cfg(feature = "io")]
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use device_drivers::onvif_client::{
    ClientOptions, OnvifClient, OnvifErrorKind, http_client_with_tls,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const ANSWER: &str = include_str!("../testdata/onvif/agsh-mockup/GetSystemDateAndTime.xml");

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A CA (its certificate) and a server configuration for 127.0.0.1 signed by it.
fn pki() -> (
    rustls::pki_types::CertificateDer<'static>,
    rustls::ServerConfig,
) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "tgw test camera CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca_cert, &ca_key)
        .unwrap();
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    (ca_cert.der().clone(), server)
}

/// A camera answering every request on HTTPS with GetSystemDateAndTime.
async fn camera(server: rustls::ServerConfig) -> u16 {
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
                // Read the whole request (head and body) before answering.
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let Ok(n) = tls.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    req.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&req);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if req.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{ANSWER}",
                    ANSWER.len()
                );
                let _ = tls.write_all(resp.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

fn client_config(roots: rustls::RootCertStore) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

#[tokio::test]
async fn https_camera_needs_its_ca_and_the_refusal_names_the_certificate_problem() {
    let (ca, server) = pki();
    let port = camera(server).await;
    let xaddr = format!("https://127.0.0.1:{port}/onvif/device_service");
    let opts = ClientOptions::default();

    // Without the CA (no roots, or only roots that did not sign it): refused.
    for (what, tls) in [
        ("no roots", None),
        (
            "other roots",
            Some(client_config(rustls::RootCertStore::empty())),
        ),
    ] {
        let http = http_client_with_tls(&opts, tls).unwrap();
        let cam = OnvifClient::with_http(http, &xaddr, None, opts).unwrap();
        let e = cam.system_date_and_time().await.unwrap_err();
        assert!(
            matches!(e.kind, OnvifErrorKind::Connect(_)),
            "{what}: {e:?}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("GetSystemDateAndTime")
                && msg.contains(&format!("127.0.0.1:{port}"))
                && msg.contains("certificate")
                && msg.contains("UnknownIssuer"),
            "{what}: {msg}"
        );
    }

    // With the CA: the call goes through.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let http = http_client_with_tls(&opts, Some(client_config(roots))).unwrap();
    let cam = OnvifClient::with_http(http, &xaddr, None, opts).unwrap();
    let t = cam
        .system_date_and_time()
        .await
        .expect("trusted https camera");
    assert!(t.utc.year() >= 2000, "{t:?}");
}
