//! `[gb28181]`, the media keys: how many live relays, what address SDP
//! answers carry, which local ports RTP uses. The signalling keys of the
//! same table are read by `config/gb28181.rs`; this view ignores them.

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

/// The media part of `[gb28181]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Gb28181Media {
    /// Most live relays at once; an INVITE beyond it is answered 486.
    /// 1-1024. Default: 32.
    #[serde(default = "default_max_relays")]
    pub max_relays: usize,
    /// The address SDP answers carry when the platform reaches us through
    /// NAT. Default: none (the local address the INVITE came to).
    #[serde(default)]
    pub public_address: Option<IpAddr>,
    /// Lowest local port for RTP (UDP source, TCP listen/connect). Default: 30000.
    #[serde(default = "default_port_min")]
    pub rtp_port_min: u16,
    /// Highest local port for RTP, at least `rtp_port_min`. Default: 30999.
    #[serde(default = "default_port_max")]
    pub rtp_port_max: u16,
    /// Seconds a relay waits for the ACK, and for the platform to connect
    /// (TCP passive) or to accept our connection (TCP active), before it
    /// ends. 1-300. Default: 10.
    #[serde(default = "default_setup_secs")]
    pub media_setup_timeout_secs: u64,
    /// Seconds without a frame from the camera before the relay ends as
    /// camera loss; also the limit of each RTSP exchange. 1-300. Default: 10.
    #[serde(default = "default_camera_secs")]
    pub camera_timeout_secs: u64,
}

fn default_max_relays() -> usize {
    32
}
fn default_port_min() -> u16 {
    30000
}
fn default_port_max() -> u16 {
    30999
}
fn default_setup_secs() -> u64 {
    10
}
fn default_camera_secs() -> u64 {
    10
}

impl Default for Gb28181Media {
    fn default() -> Self {
        Gb28181Media {
            max_relays: default_max_relays(),
            public_address: None,
            rtp_port_min: default_port_min(),
            rtp_port_max: default_port_max(),
            media_setup_timeout_secs: default_setup_secs(),
            camera_timeout_secs: default_camera_secs(),
        }
    }
}

impl Gb28181Media {
    /// Reads the media keys from a `[gb28181]` table (other keys are
    /// signalling's) and checks their ranges; errors name the key.
    pub fn from_table(table: &toml::Table) -> Result<Gb28181Media, String> {
        let m: Gb28181Media =
            serde_path_to_error::deserialize(toml::Value::Table(table.clone()))
                .map_err(|e| format!("gb28181.{}: {}", e.path(), e.inner().message()))?;
        m.check()?;
        Ok(m)
    }

    /// Range checks, naming the key.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=1024).contains(&self.max_relays) {
            return Err("gb28181.max_relays: must be 1-1024".into());
        }
        if self.rtp_port_min == 0 || self.rtp_port_max < self.rtp_port_min {
            return Err(
                "gb28181.rtp_port_min/rtp_port_max: need 1 <= rtp_port_min <= rtp_port_max".into(),
            );
        }
        for (key, v) in [
            ("media_setup_timeout_secs", self.media_setup_timeout_secs),
            ("camera_timeout_secs", self.camera_timeout_secs),
        ] {
            if !(1..=300).contains(&v) {
                return Err(format!("gb28181.{key}: must be 1-300"));
            }
        }
        if let Some(ip) = self.public_address
            && (ip.is_unspecified() || ip.is_multicast())
        {
            return Err("gb28181.public_address: must be a unicast address".into());
        }
        Ok(())
    }

    /// [`Self::media_setup_timeout_secs`] as a duration.
    pub fn setup_timeout(&self) -> Duration {
        Duration::from_secs(self.media_setup_timeout_secs)
    }

    /// [`Self::camera_timeout_secs`] as a duration.
    pub fn camera_timeout(&self) -> Duration {
        Duration::from_secs(self.camera_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Gb28181Media, String> {
        let t: toml::Table = s.parse().expect("toml");
        Gb28181Media::from_table(t["gb28181"].as_table().expect("table"))
    }

    /// Defaults with signalling keys beside ours; each bad value names its key.
    #[test]
    fn reads_media_keys_and_names_bad_ones() {
        let m = parse("[gb28181]\nid = \"34020000002000000099\"\n").expect("defaults");
        assert_eq!(m, Gb28181Media::default());
        assert_eq!(m.max_relays, 32);
        let m = parse("[gb28181]\nmax_relays = 4\npublic_address = \"1.2.3.4\"\nrtp_port_min = 40000\nrtp_port_max = 40010\n")
            .expect("set");
        assert_eq!(
            (m.max_relays, m.rtp_port_min, m.rtp_port_max),
            (4, 40000, 40010)
        );
        assert_eq!(m.public_address, Some("1.2.3.4".parse().expect("ip")));
        for (bad, key) in [
            ("max_relays = 0", "max_relays"),
            ("rtp_port_min = 5\nrtp_port_max = 4", "rtp_port_min"),
            ("public_address = \"0.0.0.0\"", "public_address"),
            ("public_address = \"nowhere\"", "public_address"),
            ("camera_timeout_secs = 0", "camera_timeout_secs"),
        ] {
            let e = parse(&format!("[gb28181]\n{bad}\n")).unwrap_err();
            assert!(e.contains(key), "{bad}: {e}");
        }
    }
}
