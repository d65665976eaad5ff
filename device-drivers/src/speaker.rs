//! Loudspeakers behind one interface. [`SpeakerUri`] parses the address
//! forms a technician types (`rtp://HOST:PORT?codec=pcmu|pcma`,
//! `rtp://GROUP:PORT?codec=pcma&ttl=N`, `sip:USER@HOST:PORT`,
//! `axis://USER:PASS@HOST:PORT`,
//! `cloud://HORN_ID@BROKER_HOST:PORT?serve=ADDR:PORT&volume=V`); with the `io` feature, the [`Speaker`]
//! trait (prepare, start at T0, stream, stop, health check), its four
//! drivers, [`play`] for one horn and [`broadcast`] for many with one T0.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use crate::g711::Codec;
use crate::sip::AutoAnswer;

/// A speaker address.
#[derive(Clone, PartialEq, Eq)]
pub enum SpeakerUri {
    /// Plain RTP, unicast or to a multicast group.
    Rtp {
        /// Destination address and port.
        dest: SocketAddr,
        /// G.711 variant (`codec=`, default pcmu).
        codec: Codec,
        /// Multicast TTL (`ttl=`, default 1).
        ttl: u32,
        /// Interface multicast leaves through (`if=`), default the kernel's.
        multicast_if: Option<Ipv4Addr>,
    },
    /// A SIP paging horn (auto-answer).
    Sip {
        /// User part.
        user: String,
        /// Digest password (`sip:USER:PASS@...`; better given separately).
        password: Option<String>,
        /// Horn address.
        addr: SocketAddr,
        /// Auto-answer header style (`?answer=rfc5373|call-info|alert-info|all`).
        auto_answer: AutoAnswer,
    },
    /// An Axis-style HTTP speaker.
    Axis {
        /// Digest user.
        user: Option<String>,
        /// Digest password.
        password: Option<String>,
        /// Speaker address.
        addr: SocketAddr,
    },
    /// A 4G / cloud horn commanded over MQTT; it fetches the audio by URL
    /// from a small HTTP server the driver runs.
    Cloud {
        /// The horn's id (topics `horn/{id}/cmd`, `horn/{id}/status`).
        horn_id: String,
        /// The MQTT broker.
        broker: SocketAddr,
        /// Where the audio is served (`serve=`, default 127.0.0.1:0).
        serve: SocketAddr,
        /// Volume 0..=100 (`volume=`, default 80).
        volume: u8,
    },
}

/// A speaker address that cannot be used, with the offending text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// Not one of the supported schemes.
    #[error(
        "{0:?}: unsupported scheme; use rtp://HOST:PORT, sip:USER@HOST:PORT, axis://USER:PASS@HOST:PORT or cloud://HORN_ID@BROKER:PORT"
    )]
    Scheme(String),
    /// No port after the host.
    #[error("{0:?}: missing port (HOST:PORT)")]
    MissingPort(String),
    /// A port that is not 1..=65535.
    #[error("{0:?}: bad port {1:?}")]
    Port(String, String),
    /// A host that is not an IP address.
    #[error("{0:?}: host {1:?} is not an IP address")]
    Host(String, String),
    /// A query parameter that is unknown or has a bad value.
    #[error("{0:?}: bad parameter {1:?}")]
    Param(String, String),
    /// `sip:` without a user part.
    #[error("{0:?}: missing user (sip:USER@HOST:PORT)")]
    MissingUser(String),
    /// `cloud://` without a horn id, or one with `/ + #`.
    #[error("{0:?}: missing or bad horn id (cloud://HORN_ID@BROKER_HOST:PORT)")]
    HornId(String),
}

fn host_port(uri: &str, hp: &str) -> Result<SocketAddr, UriError> {
    let (host, port) = if let Some(rest) = hp.strip_prefix('[') {
        let (h, p) = rest
            .split_once(']')
            .ok_or_else(|| UriError::Host(uri.into(), hp.into()))?;
        (h, p.strip_prefix(':'))
    } else {
        match hp.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hp, None),
        }
    };
    let port = port.ok_or_else(|| UriError::MissingPort(uri.into()))?;
    if port.is_empty() {
        return Err(UriError::MissingPort(uri.into()));
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| UriError::Port(uri.into(), port.into()))?;
    let ip: IpAddr = host
        .parse()
        .map_err(|_| UriError::Host(uri.into(), host.into()))?;
    Ok(SocketAddr::new(ip, port))
}

fn userinfo(s: &str) -> (Option<String>, Option<String>, &str) {
    match s.rsplit_once('@') {
        Some((ui, hp)) => match ui.split_once(':') {
            Some((u, p)) => (Some(u.to_string()), Some(p.to_string()), hp),
            None => (Some(ui.to_string()), None, hp),
        },
        None => (None, None, s),
    }
}

impl FromStr for SpeakerUri {
    type Err = UriError;

    fn from_str(uri: &str) -> Result<Self, UriError> {
        let uri = uri.trim();
        let (scheme, rest) = if let Some(r) = uri.strip_prefix("rtp://") {
            ("rtp", r)
        } else if let Some(r) = uri.strip_prefix("axis://") {
            ("axis", r)
        } else if let Some(r) = uri.strip_prefix("cloud://") {
            ("cloud", r)
        } else if let Some(r) = uri.strip_prefix("sip:") {
            ("sip", r.strip_prefix("//").unwrap_or(r))
        } else {
            return Err(UriError::Scheme(uri.to_string()));
        };
        let (main, query) = match rest.split_once('?') {
            Some((m, q)) => (m, Some(q)),
            None => (rest, None),
        };
        let main = main.trim_end_matches('/');
        let params: Vec<(&str, &str)> = query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap_or((p, "")))
            .collect();
        let bad = |k: &str, v: &str| UriError::Param(uri.to_string(), format!("{k}={v}"));
        match scheme {
            "rtp" => {
                let dest = host_port(uri, main)?;
                let (mut codec, mut ttl, mut multicast_if) = (Codec::Pcmu, 1, None);
                for (k, v) in params {
                    match k {
                        "codec" => codec = v.parse().map_err(|_| bad(k, v))?,
                        "ttl" => {
                            ttl = v
                                .parse()
                                .ok()
                                .filter(|t| *t <= 255)
                                .ok_or_else(|| bad(k, v))?
                        }
                        "if" => multicast_if = Some(v.parse().map_err(|_| bad(k, v))?),
                        _ => return Err(bad(k, v)),
                    }
                }
                Ok(SpeakerUri::Rtp {
                    dest,
                    codec,
                    ttl,
                    multicast_if,
                })
            }
            "sip" => {
                let (user, password, hp) = userinfo(main);
                let user = user
                    .filter(|u| !u.is_empty())
                    .ok_or_else(|| UriError::MissingUser(uri.to_string()))?;
                let addr = host_port(uri, hp.split(';').next().unwrap_or_default())?;
                let mut auto_answer = AutoAnswer::All;
                for (k, v) in params {
                    match k {
                        "answer" => auto_answer = v.parse().map_err(|_| bad(k, v))?,
                        _ => return Err(bad(k, v)),
                    }
                }
                Ok(SpeakerUri::Sip {
                    user,
                    password,
                    addr,
                    auto_answer,
                })
            }
            "cloud" => {
                let (horn_id, hp) = main
                    .rsplit_once('@')
                    .filter(|(h, _)| {
                        !h.is_empty() && h.len() <= 128 && !h.contains(['/', '+', '#', ':', ' '])
                    })
                    .ok_or_else(|| UriError::HornId(uri.to_string()))?;
                let broker = host_port(uri, hp)?;
                let mut serve = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
                let mut volume = 80;
                for (k, v) in params {
                    match k {
                        "serve" => {
                            serve = v.parse().map_err(|_| bad(k, v))?;
                        }
                        "volume" => {
                            volume = v
                                .parse()
                                .ok()
                                .filter(|v| *v <= 100)
                                .ok_or_else(|| bad(k, v))?
                        }
                        _ => return Err(bad(k, v)),
                    }
                }
                Ok(SpeakerUri::Cloud {
                    horn_id: horn_id.to_string(),
                    broker,
                    serve,
                    volume,
                })
            }
            _ => {
                let (user, password, hp) = userinfo(main);
                if let Some((k, v)) = params.first() {
                    return Err(bad(k, v));
                }
                Ok(SpeakerUri::Axis {
                    user,
                    password,
                    addr: host_port(uri, hp)?,
                })
            }
        }
    }
}

/// Without the password.
impl fmt::Display for SpeakerUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpeakerUri::Rtp {
                dest,
                codec,
                ttl,
                multicast_if,
            } => {
                write!(f, "rtp://{dest}?codec={codec}")?;
                if dest.ip().is_multicast() {
                    write!(f, "&ttl={ttl}")?;
                    if let Some(i) = multicast_if {
                        write!(f, "&if={i}")?;
                    }
                }
                Ok(())
            }
            SpeakerUri::Sip { user, addr, .. } => write!(f, "sip:{user}@{addr}"),
            SpeakerUri::Axis { user, addr, .. } => match user {
                Some(u) => write!(f, "axis://{u}@{addr}"),
                None => write!(f, "axis://{addr}"),
            },
            SpeakerUri::Cloud {
                horn_id,
                broker,
                serve,
                volume,
            } => {
                write!(f, "cloud://{horn_id}@{broker}")?;
                let mut sep = '?';
                if *serve != SocketAddr::from((Ipv4Addr::LOCALHOST, 0)) {
                    write!(f, "{sep}serve={serve}")?;
                    sep = '&';
                }
                if *volume != 80 {
                    write!(f, "{sep}volume={volume}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for SpeakerUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpeakerUri({self})")
    }
}

impl SpeakerUri {
    /// `rtp`, `rtp-multicast`, `sip`, `axis` or `cloud`.
    pub fn kind(&self) -> &'static str {
        match self {
            SpeakerUri::Rtp { dest, .. } if dest.ip().is_multicast() => "rtp-multicast",
            SpeakerUri::Rtp { .. } => "rtp",
            SpeakerUri::Sip { .. } => "sip",
            SpeakerUri::Axis { .. } => "axis",
            SpeakerUri::Cloud { .. } => "cloud",
        }
    }

    /// Sets the password (from a prompt or the environment) if the URI has none.
    pub fn with_password(mut self, pass: Option<String>) -> SpeakerUri {
        match &mut self {
            SpeakerUri::Sip { password, .. } | SpeakerUri::Axis { password, .. }
                if password.is_none() =>
            {
                *password = pass;
            }
            _ => {}
        }
        self
    }
}

/// Options shared by the drivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverOptions {
    /// How long a SIP horn may take to answer, and the HTTP timeouts.
    pub answer_timeout: Duration,
    /// RTCP sender report interval (`None` = no RTCP).
    pub rtcp_interval: Option<Duration>,
    /// Mark RTP with DSCP EF.
    pub dscp_ef: bool,
}

impl Default for DriverOptions {
    fn default() -> Self {
        DriverOptions {
            answer_timeout: Duration::from_secs(5),
            rtcp_interval: Some(Duration::from_secs(5)),
            dscp_ef: true,
        }
    }
}

#[cfg(feature = "io")]
mod cloud_io;
#[cfg(feature = "io")]
mod drivers;
#[cfg(feature = "io")]
pub use cloud_io::CloudSpeaker;
#[cfg(feature = "io")]
pub use drivers::*;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every documented form parses; Display hides passwords.
    #[test]
    fn parses_documented_forms() {
        let u: SpeakerUri = "rtp://127.0.0.1:5004?codec=pcma".parse().unwrap();
        assert_eq!(u.kind(), "rtp");
        assert_eq!(u.to_string(), "rtp://127.0.0.1:5004?codec=pcma");
        let u: SpeakerUri = "rtp://239.1.2.3:5004?codec=pcma&ttl=0&if=127.0.0.1"
            .parse()
            .unwrap();
        assert_eq!(u.kind(), "rtp-multicast");
        assert!(matches!(
            u,
            SpeakerUri::Rtp {
                ttl: 0,
                multicast_if: Some(_),
                codec: Codec::Pcma,
                ..
            }
        ));
        let u: SpeakerUri = "sip:horn@127.0.0.1:5070".parse().unwrap();
        assert!(matches!(&u, SpeakerUri::Sip { user, password: None, .. } if user == "horn"));
        let u: SpeakerUri = "sip:horn:s3cret@127.0.0.1:5070?answer=call-info"
            .parse()
            .unwrap();
        assert_eq!(u.to_string(), "sip:horn@127.0.0.1:5070");
        assert!(
            matches!(&u, SpeakerUri::Sip { password: Some(p), auto_answer: AutoAnswer::CallInfo, .. } if p == "s3cret")
        );
        let u: SpeakerUri = "axis://root:pass@127.0.0.1:8080".parse().unwrap();
        assert_eq!(u.to_string(), "axis://root@127.0.0.1:8080");
        assert_eq!(u.kind(), "axis");
        let u = "axis://127.0.0.1:80"
            .parse::<SpeakerUri>()
            .unwrap()
            .with_password(Some("x".into()));
        assert!(matches!(
            u,
            SpeakerUri::Axis {
                user: None,
                password: Some(_),
                ..
            }
        ));
    }

    /// Bad scheme, missing port and the other mistakes name what is wrong.
    #[test]
    fn clear_errors() {
        let e = |s: &str| s.parse::<SpeakerUri>().unwrap_err();
        assert!(matches!(e("http://1.2.3.4:80"), UriError::Scheme(_)));
        assert!(matches!(e("rtsp://1.2.3.4:554"), UriError::Scheme(_)));
        assert!(matches!(e("rtp://127.0.0.1"), UriError::MissingPort(_)));
        assert!(matches!(e("rtp://127.0.0.1:"), UriError::MissingPort(_)));
        assert!(matches!(e("sip:horn@127.0.0.1"), UriError::MissingPort(_)));
        assert!(matches!(
            e("axis://u:p@127.0.0.1"),
            UriError::MissingPort(_)
        ));
        assert!(matches!(e("rtp://127.0.0.1:0"), UriError::Port(..)));
        assert!(matches!(e("rtp://127.0.0.1:99999"), UriError::Port(..)));
        assert!(matches!(e("rtp://horn.local:5004"), UriError::Host(..)));
        assert!(matches!(
            e("rtp://127.0.0.1:5004?codec=g729"),
            UriError::Param(..)
        ));
        assert!(matches!(
            e("rtp://127.0.0.1:5004?ttl=300"),
            UriError::Param(..)
        ));
        assert!(matches!(
            e("rtp://127.0.0.1:5004?volume=3"),
            UriError::Param(..)
        ));
        assert!(matches!(e("sip:127.0.0.1:5060"), UriError::MissingUser(_)));
        let msg = e("ftp://x").to_string();
        assert!(
            msg.contains("ftp://x") && msg.contains("unsupported scheme"),
            "{msg}"
        );
        assert!(e("rtp://127.0.0.1").to_string().contains("missing port"));
        assert!(matches!(e("cloud://127.0.0.1:1883"), UriError::HornId(_)));
        assert!(matches!(e("cloud://@127.0.0.1:1883"), UriError::HornId(_)));
        assert!(matches!(
            e("cloud://a/b@127.0.0.1:1883"),
            UriError::HornId(_)
        ));
        assert!(matches!(e("cloud://h@127.0.0.1"), UriError::MissingPort(_)));
        assert!(matches!(
            e("cloud://h@127.0.0.1:1883?serve=x"),
            UriError::Param(..)
        ));
        assert!(matches!(
            e("cloud://h@127.0.0.1:1883?volume=101"),
            UriError::Param(..)
        ));
    }

    /// `cloud://HORN_ID@BROKER:PORT?serve=ADDR:PORT&volume=V`.
    #[test]
    fn parses_cloud() {
        let u: SpeakerUri = "cloud://horn-1@127.0.0.1:1883".parse().unwrap();
        assert_eq!(u.kind(), "cloud");
        assert_eq!(u.to_string(), "cloud://horn-1@127.0.0.1:1883");
        let u: SpeakerUri = "cloud://horn-1@127.0.0.1:1883?serve=127.0.0.2:8088&volume=50"
            .parse()
            .unwrap();
        assert_eq!(
            u.to_string(),
            "cloud://horn-1@127.0.0.1:1883?serve=127.0.0.2:8088&volume=50"
        );
        assert!(matches!(u, SpeakerUri::Cloud { volume: 50, .. }));
    }
}
