//! Faults that can be injected into a simulated device, and their string form
//! (`offline`, `slow:2s`, `clock-skew:-600`, ...) used by the CLI and the
//! control endpoint.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A fault injected into one simulated device.
///
/// Speakers honour [`Fault::Offline`], [`Fault::PacketLoss`] (received audio
/// dropped), and, SIP horns, [`Fault::Hang`] (INVITE never answered),
/// [`Fault::WrongCodec`] (answers G.729), [`Fault::Refuse`],
/// [`Fault::LateAnswer`] and [`Fault::HangUp`]; the other faults concern the
/// ONVIF SOAP service, the RTSP server and the snapshots of cameras. One
/// fault per device at a time (setting one replaces the previous).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Sockets closed: TCP connections are refused and probes go unanswered.
    Offline,
    /// Each SOAP answer is delayed by this long.
    Slow(Duration),
    /// The camera's password was changed: every authentication fails.
    WrongPassword,
    /// The camera's clock is off by this many seconds (may be negative).
    ClockSkew(i64),
    /// Even `GetSystemDateAndTime` demands authentication.
    AuthEverything,
    /// SOAP answers are truncated, malformed XML (WS-Discovery still answers
    /// well-formed, so the camera is found and then fails its inventory).
    MalformedXml,
    /// SOAP connections are accepted and requests read, but never answered
    /// (WS-Discovery still answers).
    Hang,
    /// The RTSP server answers every request but OPTIONS with `503 Service
    /// Unavailable` (ONVIF keeps working).
    StreamRefused,
    /// RTSP PLAY is answered, then no RTP at all; the connection stays open
    /// and keepalives are answered.
    Frozen,
    /// Only this many frames per second are sent (timestamps advance by
    /// 90000/N per frame, so they stay consistent with real time).
    LowFps(u32),
    /// This percentage (0..=100) of RTP packets is dropped after numbering,
    /// by a deterministic PRNG.
    PacketLoss(u8),
    /// The SDP announces `H265/90000` while the ONVIF profile says H264 (the
    /// payload stays H.264).
    WrongCodec,
    /// The whole camera (ONVIF, WS-Discovery, RTSP) is online for this long,
    /// then offline for this long, and so on, counted from when the fault
    /// was set.
    Flapping(Duration),
    /// SIP horn: every INVITE is refused with this status (486 Busy Here,
    /// 603 Decline, ...).
    Refuse(u16),
    /// SIP horn: answers (200 OK) only this long after the INVITE.
    LateAnswer(Duration),
    /// SIP horn: hangs up (sends BYE) this long after answering.
    HangUp(Duration),
    /// Camera: the lens is covered (a tamper event holds while set).
    Tamper,
    /// Camera: the video signal is lost (an event holds while set).
    VideoLoss,
    /// Camera: motion is detected (an event holds while set).
    Motion,
    /// Camera: every event subscription ends the moment this is set.
    ExpireSubscriptions,
}

/// A fault string that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown fault {0:?}: expected offline, slow:<N>ms|<N>s, wrong-password, clock-skew:<seconds>, auth-everything, malformed-xml, hang, stream-refused, frozen, low-fps:<N>, packet-loss:<percent>, wrong-codec, flapping:<seconds>|<N>ms, tamper, video-loss, motion or expire-subscriptions; horns also: refuse:<status>, late-answer:<N>s|<N>ms, hang-up:<N>s|<N>ms"
)]
pub struct BadFault(pub String);

impl FromStr for Fault {
    type Err = BadFault;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let bad = || BadFault(s.to_string());
        let (name, arg) = match t.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a.trim())),
            None => (t, None),
        };
        match (name.to_ascii_lowercase().as_str(), arg) {
            ("offline", None) => Ok(Fault::Offline),
            ("wrong-password", None) => Ok(Fault::WrongPassword),
            ("auth-everything", None) => Ok(Fault::AuthEverything),
            ("malformed-xml", None) => Ok(Fault::MalformedXml),
            ("hang", None) => Ok(Fault::Hang),
            ("stream-refused", None) => Ok(Fault::StreamRefused),
            ("frozen", None) => Ok(Fault::Frozen),
            ("wrong-codec", None) => Ok(Fault::WrongCodec),
            ("tamper", None) => Ok(Fault::Tamper),
            ("video-loss", None) => Ok(Fault::VideoLoss),
            ("motion", None) => Ok(Fault::Motion),
            ("expire-subscriptions", None) => Ok(Fault::ExpireSubscriptions),
            ("low-fps", Some(a)) => match a.parse::<u32>() {
                Ok(n) if n >= 1 => Ok(Fault::LowFps(n)),
                _ => Err(bad()),
            },
            ("packet-loss", Some(a)) => match a.strip_suffix('%').unwrap_or(a).trim().parse::<u8>()
            {
                Ok(p) if p <= 100 => Ok(Fault::PacketLoss(p)),
                _ => Err(bad()),
            },
            ("flapping", Some(a)) => {
                let d = if a.ends_with('s') {
                    parse_duration(a)
                } else {
                    a.parse().ok().map(Duration::from_secs)
                };
                d.filter(|d| !d.is_zero())
                    .map(Fault::Flapping)
                    .ok_or_else(bad)
            }
            ("slow", Some(a)) => parse_duration(a).map(Fault::Slow).ok_or_else(bad),
            ("refuse", Some(a)) => match a.parse::<u16>() {
                Ok(c) if (300..700).contains(&c) => Ok(Fault::Refuse(c)),
                _ => Err(bad()),
            },
            ("late-answer", Some(a)) => parse_duration(a).map(Fault::LateAnswer).ok_or_else(bad),
            ("hang-up", Some(a)) => parse_duration(a).map(Fault::HangUp).ok_or_else(bad),
            ("clock-skew", Some(a)) => {
                let a = a.strip_suffix('s').unwrap_or(a);
                a.parse::<i64>().map(Fault::ClockSkew).map_err(|_| bad())
            }
            _ => Err(bad()),
        }
    }
}

/// `2000ms`, `2s` or a bare number of milliseconds.
fn parse_duration(a: &str) -> Option<Duration> {
    if let Some(ms) = a.strip_suffix("ms") {
        ms.trim().parse().ok().map(Duration::from_millis)
    } else if let Some(s) = a.strip_suffix('s') {
        s.trim().parse().ok().map(Duration::from_secs)
    } else {
        a.parse().ok().map(Duration::from_millis)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Offline => f.write_str("offline"),
            Fault::Slow(d) => write!(f, "slow:{}ms", d.as_millis()),
            Fault::WrongPassword => f.write_str("wrong-password"),
            Fault::ClockSkew(s) => write!(f, "clock-skew:{s}"),
            Fault::AuthEverything => f.write_str("auth-everything"),
            Fault::MalformedXml => f.write_str("malformed-xml"),
            Fault::Hang => f.write_str("hang"),
            Fault::StreamRefused => f.write_str("stream-refused"),
            Fault::Frozen => f.write_str("frozen"),
            Fault::LowFps(n) => write!(f, "low-fps:{n}"),
            Fault::PacketLoss(p) => write!(f, "packet-loss:{p}"),
            Fault::WrongCodec => f.write_str("wrong-codec"),
            Fault::Flapping(d) if d.subsec_millis() == 0 => write!(f, "flapping:{}", d.as_secs()),
            Fault::Flapping(d) => write!(f, "flapping:{}ms", d.as_millis()),
            Fault::Refuse(c) => write!(f, "refuse:{c}"),
            Fault::LateAnswer(d) => write!(f, "late-answer:{}ms", d.as_millis()),
            Fault::HangUp(d) => write!(f, "hang-up:{}ms", d.as_millis()),
            Fault::Tamper => f.write_str("tamper"),
            Fault::VideoLoss => f.write_str("video-loss"),
            Fault::Motion => f.write_str("motion"),
            Fault::ExpireSubscriptions => f.write_str("expire-subscriptions"),
        }
    }
}

impl serde::Serialize for Fault {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Fault {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every fault survives a Display → FromStr round trip.
    #[test]
    fn round_trip() {
        let all = [
            Fault::Offline,
            Fault::Slow(Duration::from_millis(2500)),
            Fault::WrongPassword,
            Fault::ClockSkew(-600),
            Fault::ClockSkew(600),
            Fault::AuthEverything,
            Fault::MalformedXml,
            Fault::Hang,
            Fault::StreamRefused,
            Fault::Frozen,
            Fault::LowFps(5),
            Fault::PacketLoss(10),
            Fault::WrongCodec,
            Fault::Flapping(Duration::from_secs(30)),
            Fault::Flapping(Duration::from_millis(1500)),
            Fault::Refuse(486),
            Fault::LateAnswer(Duration::from_secs(2)),
            Fault::HangUp(Duration::from_millis(300)),
            Fault::Tamper,
            Fault::VideoLoss,
            Fault::Motion,
            Fault::ExpireSubscriptions,
        ];
        for f in all {
            assert_eq!(f.to_string().parse::<Fault>(), Ok(f.clone()), "{f}");
        }
    }

    /// The spellings the CLI documents are all accepted.
    #[test]
    fn accepts_documented_spellings() {
        assert_eq!("slow:2s".parse(), Ok(Fault::Slow(Duration::from_secs(2))));
        assert_eq!(
            "slow:2000ms".parse(),
            Ok(Fault::Slow(Duration::from_millis(2000)))
        );
        assert_eq!("clock-skew:-600".parse(), Ok(Fault::ClockSkew(-600)));
        assert_eq!(" Offline ".parse(), Ok(Fault::Offline));
        assert_eq!("low-fps:3".parse(), Ok(Fault::LowFps(3)));
        assert_eq!("packet-loss:5%".parse(), Ok(Fault::PacketLoss(5)));
        assert_eq!(
            "flapping:10".parse(),
            Ok(Fault::Flapping(Duration::from_secs(10)))
        );
        assert_eq!(
            "flapping:500ms".parse(),
            Ok(Fault::Flapping(Duration::from_millis(500)))
        );
    }

    /// Junk is refused with the offending text in the message.
    #[test]
    fn refuses_junk() {
        for s in [
            "",
            "slow",
            "slow:fast",
            "offline:1",
            "clock-skew:ten",
            "reboot",
            "low-fps:0",
            "low-fps",
            "packet-loss:101",
            "packet-loss:-1",
            "flapping:0",
            "flapping:soon",
            "frozen:1",
            "refuse:200",
            "refuse",
            "late-answer:soon",
            "tamper:1",
            "expire",
        ] {
            let e = s.parse::<Fault>().unwrap_err();
            assert_eq!(e.0, s);
        }
    }
}
