//! The topic tree `tgw/v1/{site}/{gateway}/…` (pure; see `docs/mqtt.md`).

/// Version segment of every topic.
pub const VERSION: &str = "v1";

/// Topics of one gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
}

impl Topics {
    /// Topics below `tgw/v1/{site}/{gateway}/`. Site and gateway are
    /// config identifiers (`[a-z0-9_-]`), so they are valid topic levels.
    pub fn new(site: &str, gateway: &str) -> Topics {
        Topics {
            prefix: format!("tgw/{VERSION}/{site}/{gateway}/"),
        }
    }

    /// `tgw/v1/{site}/{gateway}/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A full topic from a suffix such as `camera/c1/state`.
    pub fn full(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// The retained online/offline status (birth and last will).
    pub fn status(&self) -> String {
        self.full("status")
    }

    /// The command subscription filter `…/cmd/+`.
    pub fn command_filter(&self) -> String {
        self.full("cmd/+")
    }

    /// The method of a command topic `…/cmd/{method}`, if `topic` is one of ours.
    pub fn command_method<'a>(&self, topic: &'a str) -> Option<&'a str> {
        let rest = topic.strip_prefix(&self.prefix)?.strip_prefix("cmd/")?;
        (!rest.is_empty() && !rest.contains('/')).then_some(rest)
    }
}

/// Suffix `camera/{id}/state`.
pub fn camera_state(id: &str) -> String {
    format!("camera/{id}/state")
}
/// Suffix `camera/{id}/meta`.
pub fn camera_meta(id: &str) -> String {
    format!("camera/{id}/meta")
}
/// Suffix `camera/{id}/event`.
pub fn camera_event(id: &str) -> String {
    format!("camera/{id}/event")
}
/// Suffix `speaker/{id}/state`.
pub fn speaker_state(id: &str) -> String {
    format!("speaker/{id}/state")
}
/// Suffix `broadcast/{id}`.
pub fn broadcast(id: &str) -> String {
    format!("broadcast/{id}")
}
/// Suffix `broadcast/{id}/horn/{speaker}`: one horn's reports in one broadcast.
pub fn broadcast_horn(id: &str, speaker: &str) -> String {
    format!("broadcast/{id}/horn/{speaker}")
}
/// Suffix of gateway-level alarms.
pub const ALARM: &str = "alarm";
/// Suffix `reply/{request_id}`.
pub fn reply(request_id: &str) -> String {
    format!("reply/{request_id}")
}
/// Reply topic for commands whose request id could not be read.
pub const REPLY_INVALID: &str = "reply/_invalid";

/// Whether `s` can be one topic level naming a device or request:
/// 1-128 bytes of `[A-Za-z0-9._:-]` (no `/`, `+`, `#`, NUL or spaces).
pub fn valid_level(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_and_command_topics() {
        let t = Topics::new("qingshan", "gw-01");
        assert_eq!(t.status(), "tgw/v1/qingshan/gw-01/status");
        assert_eq!(t.command_filter(), "tgw/v1/qingshan/gw-01/cmd/+");
        assert_eq!(
            t.full(&camera_state("cam-1")),
            "tgw/v1/qingshan/gw-01/camera/cam-1/state"
        );
        assert_eq!(
            t.command_method("tgw/v1/qingshan/gw-01/cmd/probe"),
            Some("probe")
        );
        assert_eq!(t.command_method("tgw/v1/qingshan/gw-02/cmd/probe"), None);
        assert_eq!(t.command_method("tgw/v1/qingshan/gw-01/cmd/"), None);
        assert_eq!(t.command_method("tgw/v1/qingshan/gw-01/cmd/a/b"), None);
        assert_eq!(t.command_method("tgw/v1/qingshan/gw-01/status"), None);
    }

    #[test]
    fn levels_refuse_wildcards_and_separators() {
        assert!(valid_level("cam-0a:1.x_y"));
        for bad in ["", "a/b", "a+", "#", "a b", "é", &"x".repeat(129)] {
            assert!(!valid_level(bad), "{bad:?}");
        }
    }
}
