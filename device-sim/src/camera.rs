//! The identity of one simulated camera: addresses, vendor facts, MAC,
//! serial, EndpointReference, credentials, place in the township, scopes and
//! media profiles. Pure data, derived deterministically from the seed and the
//! camera's index (except a random password when none is configured).

use std::net::Ipv4Addr;

use device_drivers::wsd::{DEVICE_TYPE, NVT_TYPE, ProbeMatch};

use crate::fault::Fault;
use crate::flavour::Flavour;

/// One media profile of a simulated camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileSpec {
    /// Profile name.
    pub name: &'static str,
    /// Encoding (`H264`).
    pub encoding: &'static str,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frame rate limit.
    pub fps: u32,
    /// Bitrate limit in kbit/s.
    pub bitrate_kbps: u32,
    /// GOP length in frames.
    pub gov_length: u32,
    /// H.264 profile.
    pub h264_profile: &'static str,
    /// Quality setting.
    pub quality: u32,
}

/// The main and the sub profile every simulated camera has. They match the
/// committed clips the RTSP server loops (`testdata/PROVENANCE.md`), so a
/// health check comparing the stream with the ONVIF configuration finds them
/// consistent.
pub const PROFILES: [ProfileSpec; 2] = [
    ProfileSpec {
        name: "mainStream",
        encoding: "H264",
        width: 1280,
        height: 720,
        fps: 25,
        bitrate_kbps: 512,
        gov_length: 50,
        h264_profile: "Main",
        quality: 5,
    },
    ProfileSpec {
        name: "subStream",
        encoding: "H264",
        width: 640,
        height: 360,
        fps: 15,
        bitrate_kbps: 256,
        gov_length: 30,
        h264_profile: "Baseline",
        quality: 3,
    },
];

/// A simulated camera's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Camera {
    /// 0-based index among cameras.
    pub index: usize,
    /// `cam-0001` style id (1-based).
    pub id: String,
    /// Vendor flavour.
    pub flavour: Flavour,
    /// Its loopback address.
    pub ip: Ipv4Addr,
    /// Its HTTP (SOAP and snapshot) port.
    pub port: u16,
    /// Its RTSP port (554 unless [`crate::SimConfig::rtsp_port`] says otherwise
    /// or 554 could not be bound).
    pub rtsp_port: u16,
    /// MAC address.
    pub mac: [u8; 6],
    /// Serial number.
    pub serial: String,
    /// `urn:uuid:...` EndpointReference.
    pub endpoint_ref: String,
    /// User name.
    pub username: String,
    /// Password (the real one; [`crate::Fault::WrongPassword`] changes what is accepted).
    pub password: String,
    /// Village code.
    pub village: String,
    /// Grid code.
    pub grid: String,
}

/// SplitMix64: a tiny, stable, deterministic mixer (so identities do not
/// change when a dependency's RNG changes).
pub(crate) fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Camera {
    /// Builds camera `index` (0-based).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        index: usize,
        seed: u64,
        ip: Ipv4Addr,
        port: u16,
        password: String,
        village: String,
        grid: String,
    ) -> Camera {
        let flavour = Flavour::for_index(index);
        let info = flavour.info();
        let h1 = splitmix64(seed ^ (index as u64).wrapping_mul(0x1000_0000_01b3));
        let h2 = splitmix64(h1);
        let mut uuid_bytes = [0u8; 16];
        uuid_bytes[..8].copy_from_slice(&h1.to_be_bytes());
        uuid_bytes[8..].copy_from_slice(&h2.to_be_bytes());
        let uuid = uuid::Builder::from_random_bytes(uuid_bytes).into_uuid();
        // Low 24 bits unique per index for up to 16M cameras, shifted by the seed.
        let low = ((index as u64).wrapping_add(seed.wrapping_mul(7919)) & 0xff_ffff) as u32;
        let [_, b3, b4, b5] = low.to_be_bytes();
        let mac = [info.oui[0], info.oui[1], info.oui[2], b3, b4, b5];
        let n = index + 1;
        let serial = match flavour {
            Flavour::Hikvision => format!("{}20220315AAWR{:09}", info.model, 100_000_000 + n),
            Flavour::Dahua => format!("6J0A{:05X}PAZ{:04}", h1 & 0xfffff, n % 10_000),
            Flavour::Uniview => format!("210235C3N3F21A{n:06}"),
            Flavour::TpLink => format!("{:08X}", h1 as u32),
            Flavour::Axis => hex::encode_upper(mac),
            Flavour::Generic => format!("{:016x}", h2),
        };
        Camera {
            index,
            id: format!("cam-{n:04}"),
            flavour,
            ip,
            port,
            rtsp_port: 554,
            mac,
            serial,
            endpoint_ref: format!("urn:uuid:{uuid}"),
            username: info.username.to_string(),
            password,
            village,
            grid,
        }
    }

    /// `aa:bb:cc:dd:ee:ff`.
    pub fn mac_string(&self) -> String {
        let m = self.mac;
        format!(
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }

    /// The IPv6 link-local address derived from the MAC (modified EUI-64).
    pub fn ipv6_link_local(&self) -> String {
        let m = self.mac;
        format!(
            "fe80::{:02x}{:02x}:{:02x}ff:fe{:02x}:{:02x}{:02x}",
            m[0] ^ 0x02,
            m[1],
            m[2],
            m[3],
            m[4],
            m[5]
        )
    }

    fn base(&self) -> String {
        format!("http://{}:{}", self.ip, self.port)
    }

    /// The primary device-service XAddr (the reachable one).
    pub fn xaddr(&self) -> String {
        format!("{}{}", self.base(), self.flavour.info().device_path)
    }

    /// Every XAddr advertised in WS-Discovery, primary first.
    pub fn xaddrs(&self) -> Vec<String> {
        let path = self.flavour.info().device_path;
        let mut v = vec![self.xaddr()];
        match self.flavour {
            Flavour::Uniview => {
                v.push(format!("http://[{}]{path}", self.ipv6_link_local()));
                v.push(format!("https://{}{path}", self.ip));
            }
            Flavour::Axis => v.push(format!("http://[{}]{path}", self.ipv6_link_local())),
            _ => {}
        }
        v
    }

    /// Service XAddr for a path on this camera.
    pub fn service_xaddr(&self, path: &str) -> String {
        format!("{}{}", self.base(), path)
    }

    /// ONVIF scopes.
    pub fn scopes(&self) -> Vec<String> {
        let model = self.flavour.info().model;
        vec![
            "onvif://www.onvif.org/type/video_encoder".to_string(),
            "onvif://www.onvif.org/Profile/Streaming".to_string(),
            format!("onvif://www.onvif.org/name/{model}"),
            format!("onvif://www.onvif.org/hardware/{model}"),
            "onvif://www.onvif.org/location/country/china".to_string(),
            format!("onvif://www.onvif.org/location/village/{}", self.village),
            format!("onvif://www.onvif.org/location/grid/{}", self.grid),
        ]
    }

    /// What this camera says in a ProbeMatch or Hello.
    pub fn probe_match(&self) -> ProbeMatch {
        ProbeMatch {
            endpoint_ref: self.endpoint_ref.clone(),
            types: vec![NVT_TYPE.to_string(), DEVICE_TYPE.to_string()],
            scopes: self.scopes(),
            xaddrs: self.xaddrs(),
            metadata_version: Some(1),
        }
    }

    /// RTSP URI of profile `p` (0 main, 1 sub).
    pub fn stream_uri(&self, p: usize) -> String {
        let paths = self.flavour.info().stream_paths;
        let path = paths.get(p).unwrap_or(&paths[0]);
        format!("rtsp://{}:{}{path}", self.ip, self.rtsp_port)
    }

    /// Snapshot URI of profile `p` (0 main, 1 sub), served on the SOAP port.
    pub fn snapshot_uri(&self, p: usize) -> String {
        let paths = self.flavour.info().snapshot_paths;
        let path = paths.get(p).unwrap_or(&paths[0]);
        format!("{}{path}", self.base())
    }

    /// Which profile's snapshot a request target (path and query) asks for.
    pub fn snapshot_index(&self, target: &str) -> Option<usize> {
        self.flavour
            .info()
            .snapshot_paths
            .iter()
            .position(|p| *p == target)
    }

    /// The password the camera currently accepts: under
    /// [`Fault::WrongPassword`] it was "changed" and the configured one fails.
    pub fn accepted_password(&self, fault: Option<&Fault>) -> String {
        match fault {
            Some(Fault::WrongPassword) => format!("{}#changed", self.password),
            _ => self.password.clone(),
        }
    }

    /// Which profile index a token names.
    pub fn profile_index(&self, token: &str) -> Option<usize> {
        self.flavour
            .info()
            .profile_tokens
            .iter()
            .position(|t| *t == token)
    }

    /// HTTP Digest realm.
    pub fn realm(&self) -> String {
        self.flavour.realm(&self.serial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cam(i: usize, seed: u64) -> Camera {
        Camera::new(
            i,
            seed,
            Ipv4Addr::new(127, 0, 1, 1),
            8000,
            "pw".into(),
            "v".into(),
            "g".into(),
        )
    }

    /// Identities are deterministic in (seed, index) and distinct across indices.
    #[test]
    fn deterministic_and_distinct() {
        assert_eq!(cam(3, 42), cam(3, 42));
        assert_ne!(cam(3, 42).endpoint_ref, cam(3, 43).endpoint_ref);
        assert_ne!(cam(3, 42).endpoint_ref, cam(4, 42).endpoint_ref);
        let macs: std::collections::HashSet<_> = (0..2000).map(|i| cam(i, 7).mac).collect();
        assert_eq!(macs.len(), 2000);
        assert!(cam(0, 1).endpoint_ref.starts_with("urn:uuid:"));
        assert_eq!(cam(0, 1).id, "cam-0001");
    }

    /// Uniview lists http, link-local IPv6 and https XAddrs; Axis lists two.
    #[test]
    fn multi_xaddr_flavours() {
        let uv = cam(2, 1);
        assert_eq!(uv.flavour, Flavour::Uniview);
        let x = uv.xaddrs();
        assert_eq!(x.len(), 3);
        assert!(x[1].starts_with("http://[fe80::"));
        assert!(x[2].starts_with("https://"));
        let ax = cam(4, 1);
        assert_eq!(ax.xaddrs().len(), 2);
        assert!(ax.xaddr().ends_with("/onvif/services"));
        assert_eq!(
            ax.ipv6_link_local().split(':').count(),
            6,
            "{}",
            ax.ipv6_link_local()
        );
    }
}
