//! The driver address of an inventory speaker: what the broadcast runtime
//! and the API's test tone hand to `device_drivers::speaker`. Failures are
//! [`ErrorKind::Unsupported`] (the horn cannot be driven from here).

use std::net::{IpAddr, SocketAddr};

use crate::base::error::{Error, ErrorKind, Result};

/// The driver address of an inventory speaker, with its login. `Err` names
/// why the horn cannot be driven from here.
pub fn speaker_uri(
    s: &crate::speakers::Speaker,
    login: Option<&crate::store::Login>,
) -> Result<device_drivers::speaker::SpeakerUri> {
    let unsupported = |m: String| Error::new(ErrorKind::Unsupported, m);
    use crate::speakers::{Codec, DriverKind};
    use device_drivers::speaker::SpeakerUri;
    let codec = match s.codec {
        Codec::Pcmu => device_drivers::g711::Codec::Pcmu,
        Codec::Pcma => device_drivers::g711::Codec::Pcma,
    };
    let password = login.map(|l| l.password.expose().to_string());
    match s.kind {
        DriverKind::Rtp | DriverKind::RtpMulticast => {
            let dest: SocketAddr = s.address.parse().map_err(|_| {
                unsupported(format!(
                    "speaker `{}`: address `{}` is not HOST:PORT",
                    s.id, s.address
                ))
            })?;
            Ok(SpeakerUri::Rtp {
                dest,
                codec,
                ttl: s.multicast.map_or(1, |m| u32::from(m.ttl)),
                multicast_if: None,
            })
        }
        DriverKind::Sip => {
            let u: SpeakerUri = s
                .address
                .parse()
                .map_err(|e| unsupported(format!("speaker `{}`: {e}", s.id)))?;
            Ok(u.with_password(password))
        }
        DriverKind::Axis => {
            let full = if s.address.contains("://") {
                s.address.clone()
            } else {
                format!("http://{}", s.address)
            };
            let url = url::Url::parse(&full)
                .map_err(|e| unsupported(format!("speaker `{}`: {e}", s.id)))?;
            if url.scheme() != "http" {
                return Err(unsupported(format!(
                    "speaker `{}`: the HTTP speaker driver speaks plain http only",
                    s.id
                )));
            }
            let host: IpAddr = url.host_str().unwrap_or("").parse().map_err(|_| {
                unsupported(format!(
                    "speaker `{}`: `{}` is not an IP address",
                    s.id, s.address
                ))
            })?;
            let port = url.port_or_known_default().unwrap_or(80);
            Ok(SpeakerUri::Axis {
                user: login
                    .map(|l| l.username.clone())
                    .or_else(|| s.username.clone()),
                password,
                addr: SocketAddr::new(host, port),
            })
        }
        DriverKind::Cloud => Err(unsupported(format!(
            "speaker `{}`: cloud horns cannot be tested from the dashboard yet",
            s.id
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::secrets::Password;

    const SPK_PW: &str = "sp3aker-Secret-pw";

    /// Inventory rows map to driver addresses with the sealed login; cloud
    /// horns and https speakers are refused with a reason.
    #[test]
    fn speaker_uri_from_inventory() {
        use crate::speakers::{Codec, DriverKind, Speaker};
        use device_drivers::speaker::SpeakerUri;
        let mut s = Speaker {
            id: "s".into(),
            name: None,
            kind: DriverKind::Axis,
            address: "127.0.0.1:8080".into(),
            village: None,
            grid: None,
            zone: None,
            multicast: None,
            codec: Codec::Pcma,
            volume: None,
            username: Some("root".into()),
            has_password: true,
        };
        let login = crate::store::Login {
            username: "root".into(),
            password: Password::new(SPK_PW),
            source: "speaker".into(),
        };
        let u = speaker_uri(&s, Some(&login)).unwrap();
        assert!(
            matches!(&u, SpeakerUri::Axis { user: Some(n), password: Some(p), addr }
            if n == "root" && p == SPK_PW && addr.port() == 8080)
        );
        s.address = "https://127.0.0.1".into();
        assert!(speaker_uri(&s, Some(&login)).is_err());
        s.kind = DriverKind::Sip;
        s.address = "sip:horn@127.0.0.1:5070".into();
        let u = speaker_uri(&s, Some(&login)).unwrap();
        assert!(matches!(&u, SpeakerUri::Sip { password: Some(p), .. } if p == SPK_PW));
        s.kind = DriverKind::Rtp;
        s.address = "127.0.0.1:5004".into();
        let u = speaker_uri(&s, None).unwrap();
        assert!(matches!(
            &u,
            SpeakerUri::Rtp {
                codec: device_drivers::g711::Codec::Pcma,
                ..
            }
        ));
        s.kind = DriverKind::Cloud;
        assert!(speaker_uri(&s, None).is_err());
    }
}
