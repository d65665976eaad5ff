//! What a session needs, resolved once at start from `[mqtt]`: the broker
//! address, credentials, limits, the topic tree and the TLS client
//! configuration (rustls with the ring provider).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use time::format_description::well_known::Rfc3339;

use crate::base::clock::Clock;
use crate::base::error::{Error, Result};
use crate::config::{BrokerUrl, Config, MqttSection};
use tgw_core::uplink::topics::Topics;

/// Everything a session needs, resolved once at start.
#[derive(Clone)]
pub(crate) struct Settings {
    /// Every broker of `mqtt.url`/`mqtt.urls`, in order.
    pub(super) brokers: Vec<BrokerUrl>,
    /// The TLS client configuration, when any broker is `mqtts://`.
    pub(super) tls_config: Option<Arc<rustls::ClientConfig>>,
    /// The broker this session uses (see [`Settings::for_broker`]).
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) tls: Option<Arc<rustls::ClientConfig>>,
    pub(super) client_id: String,
    pub(super) credentials: Option<(String, String)>,
    pub(super) keep_alive: Duration,
    /// QoS of the command subscription (`mqtt.command_qos`).
    pub(super) command_qos: rumqttc::QoS,
    pub(super) connect_timeout: Duration,
    pub(super) max_packet: usize,
    pub(super) command_max: usize,
    pub(super) window: usize,
    pub(super) drain_rate: u32,
    pub(super) reconnect_min: Duration,
    pub(super) reconnect_max: Duration,
    pub(super) topics: Topics,
    pub(super) site: String,
    pub(super) gateway: String,
    pub(super) started_at: String,
    /// Stamps `ts` of the status messages.
    pub(super) clock: Arc<dyn Clock>,
}

impl Settings {
    /// Resolves `[mqtt]` (TLS files read, password variable looked up);
    /// `clock` stamps `started_at` now and the status messages later.
    pub(crate) fn from_config(
        cfg: &Config,
        m: &MqttSection,
        clock: Arc<dyn Clock>,
    ) -> Result<Settings> {
        let brokers = m
            .brokers()
            .map_err(|e| Error::invalid(format!("mqtt.url: {e}")))?;
        let tls_config = if brokers.iter().any(|b| b.tls) {
            Some(tls_config(m)?)
        } else {
            None
        };
        let url = brokers[0].clone();
        let credentials = match &m.username {
            Some(u) => Some((
                u.clone(),
                m.resolve_password()
                    .map_err(|e| Error::invalid(e.to_string()))?
                    .unwrap_or_default(),
            )),
            None => None,
        };
        let site = cfg.gateway.site.as_str().to_string();
        let gateway = cfg.gateway.id.as_str().to_string();
        Ok(Settings {
            host: url.host,
            port: url.port,
            tls: tls_config.clone().filter(|_| url.tls),
            brokers,
            tls_config,
            client_id: m
                .client_id
                .clone()
                .unwrap_or_else(|| format!("tgw-{site}-{gateway}")),
            credentials,
            keep_alive: m.keep_alive_secs,
            command_qos: if m.command_qos == 0 {
                rumqttc::QoS::AtMostOnce
            } else {
                rumqttc::QoS::AtLeastOnce
            },
            connect_timeout: m.connect_timeout_secs,
            max_packet: m.max_packet_bytes,
            command_max: m.command_max_bytes,
            window: m.inflight,
            drain_rate: m.drain_rate,
            reconnect_min: m.reconnect_min_ms,
            reconnect_max: m.reconnect_max_secs,
            topics: Topics::new(&site, &gateway),
            site,
            gateway,
            started_at: clock.now_utc().format(&Rfc3339).unwrap_or_default(),
            clock,
        })
    }
}

impl Settings {
    /// These settings aimed at broker `i` of [`brokers`](Self::brokers)
    /// (wrapping round).
    pub(crate) fn for_broker(&self, i: usize) -> Settings {
        let mut s = self.clone();
        if let Some(b) = self.brokers.get(i % self.brokers.len().max(1)) {
            s.host = b.host.clone();
            s.port = b.port;
            s.tls = self.tls_config.clone().filter(|_| b.tls);
        }
        s
    }
}

/// A rustls client configuration (ring provider) from the CA file and the
/// optional client certificate and key.
pub fn tls_config(m: &MqttSection) -> Result<Arc<rustls::ClientConfig>> {
    let bad = |what: &str, p: &Path, e: &dyn std::fmt::Display| {
        Error::invalid(format!("mqtt.{what} {}: {e}", p.display()))
    };
    let read = |p: &Path, what: &str| std::fs::read(p).map_err(|e| bad(what, p, &e));
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = &m.ca_file {
        let pem = read(ca, "ca_file")?;
        let mut n = 0;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| bad("ca_file", ca, &e))?;
            roots.add(cert).map_err(|e| bad("ca_file", ca, &e))?;
            n += 1;
        }
        if n == 0 {
            return Err(bad("ca_file", ca, &"no PEM certificate in it"));
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::invalid(e.to_string()))?
    .with_root_certificates(roots);
    let cfg = match (&m.client_cert_file, &m.client_key_file) {
        (Some(c), Some(k)) => {
            let pem = read(c, "client_cert_file")?;
            let chain = rustls_pemfile::certs(&mut pem.as_slice())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad("client_cert_file", c, &e))?;
            if chain.is_empty() {
                return Err(bad("client_cert_file", c, &"no PEM certificate in it"));
            }
            let pem = read(k, "client_key_file")?;
            let key = rustls_pemfile::private_key(&mut pem.as_slice())
                .map_err(|e| bad("client_key_file", k, &e))?
                .ok_or_else(|| bad("client_key_file", k, &"no PEM private key in it"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::invalid(format!("mqtt client certificate: {e}")))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}
