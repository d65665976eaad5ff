//! Vendor flavours: who a simulated camera pretends to be and which of its
//! vendor's quirks it reproduces (see shared/fixtures/README.md).

use std::fmt;

/// The vendor a simulated camera imitates. Assigned round-robin by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavour {
    /// Media2; answers a unicast Probe only when it has no whitespace between tags.
    Hikvision,
    /// Media1 only; unusual namespace prefixes (`MC1:`, `MC2:`, `MC3:`).
    Dahua,
    /// Media2; several XAddrs (http, link-local IPv6, https).
    Uniview,
    /// Media1 only; ignores a Probe without `<Types>`.
    TpLink,
    /// Media2; serves `/onvif/services` and lists two XAddrs.
    Axis,
    /// A no-name OEM camera: Media1 only, plain behaviour.
    Generic,
}

/// Every flavour, in the round-robin order used to assign them.
pub const ALL: [Flavour; 6] = [
    Flavour::Hikvision,
    Flavour::Dahua,
    Flavour::Uniview,
    Flavour::TpLink,
    Flavour::Axis,
    Flavour::Generic,
];

/// Namespace prefixes a flavour writes in its SOAP answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefixes {
    /// SOAP envelope.
    pub env: &'static str,
    /// ONVIF device service (`ver10/device/wsdl`).
    pub tds: &'static str,
    /// ONVIF schema (`ver10/schema`).
    pub tt: &'static str,
    /// Media1 (`ver10/media/wsdl`).
    pub trt: &'static str,
    /// Media2 (`ver20/media/wsdl`).
    pub tr2: &'static str,
}

/// Static facts about a flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VendorInfo {
    /// `Manufacturer` in GetDeviceInformation.
    pub manufacturer: &'static str,
    /// `Model` in GetDeviceInformation (also the `name`/`hardware` scopes).
    pub model: &'static str,
    /// `FirmwareVersion`.
    pub firmware: &'static str,
    /// `HardwareId`.
    pub hardware_id: &'static str,
    /// First three MAC bytes (a real OUI of the vendor).
    pub oui: [u8; 3],
    /// Default user name.
    pub username: &'static str,
    /// Device service path.
    pub device_path: &'static str,
    /// Media1 service path.
    pub media_path: &'static str,
    /// Media2 service path, for flavours that have Media2.
    pub media2_path: Option<&'static str>,
    /// RTSP paths of the main and sub streams.
    pub stream_paths: [&'static str; 2],
    /// Snapshot URL paths (with query) of the main and sub profiles.
    pub snapshot_paths: [&'static str; 2],
    /// Profile tokens of the main and sub profiles.
    pub profile_tokens: [&'static str; 2],
    /// SOAP namespace prefixes.
    pub prefixes: Prefixes,
}

const STD_PREFIXES: Prefixes = Prefixes {
    env: "SOAP-ENV",
    tds: "tds",
    tt: "tt",
    trt: "trt",
    tr2: "tr2",
};

impl Flavour {
    /// The flavour of the camera with this 0-based index.
    pub fn for_index(i: usize) -> Flavour {
        ALL[i % ALL.len()]
    }

    /// Lower-case name used in manifests: `hikvision`, `dahua`, ...
    pub fn name(self) -> &'static str {
        match self {
            Flavour::Hikvision => "hikvision",
            Flavour::Dahua => "dahua",
            Flavour::Uniview => "uniview",
            Flavour::TpLink => "tplink",
            Flavour::Axis => "axis",
            Flavour::Generic => "generic",
        }
    }

    /// Whether the camera serves Media2 (`ver20/media/wsdl`).
    pub fn has_media2(self) -> bool {
        self.info().media2_path.is_some()
    }

    /// Whether the camera offers the ONVIF event service (PullPoint):
    /// TP-Link and no-name cameras here do not, as many cheap ones.
    pub fn has_events(self) -> bool {
        !matches!(self, Flavour::TpLink | Flavour::Generic)
    }

    /// Axis quirk (as the public kerberos-io/onvif report describes): event
    /// calls must be WS-Addressed. Every one needs `wsa:Action`, and a
    /// subscription is named by the `SubscriptionId` reference parameter
    /// echoed as a SOAP header (its address is the shared
    /// `/onvif/services`), not by its URL; a call without it is refused.
    /// Other flavours ignore WS-Addressing headers.
    pub fn requires_ws_addressing(self) -> bool {
        self == Flavour::Axis
    }

    /// Hikvision quirk: a unicast Probe with whitespace between tags is ignored.
    pub fn rejects_whitespace_unicast_probe(self) -> bool {
        self == Flavour::Hikvision
    }

    /// TP-Link quirk: a Probe without `<Types>` is ignored.
    pub fn requires_probe_types(self) -> bool {
        self == Flavour::TpLink
    }

    /// Vendor facts.
    pub fn info(self) -> VendorInfo {
        match self {
            Flavour::Hikvision => VendorInfo {
                manufacturer: "HIKVISION",
                model: "DS-2CD2143G2-I",
                firmware: "V5.7.3 build 220112",
                hardware_id: "88",
                oui: [0x44, 0x19, 0xb6],
                username: "admin",
                device_path: "/onvif/device_service",
                media_path: "/onvif/Media",
                media2_path: Some("/onvif/Media2"),
                stream_paths: ["/Streaming/Channels/101", "/Streaming/Channels/102"],
                snapshot_paths: [
                    "/onvif-http/snapshot?Profile_1",
                    "/onvif-http/snapshot?Profile_2",
                ],
                profile_tokens: ["Profile_1", "Profile_2"],
                prefixes: Prefixes {
                    env: "env",
                    ..STD_PREFIXES
                },
            },
            Flavour::Dahua => VendorInfo {
                manufacturer: "Dahua",
                model: "IPC-HFW2431S-S-S2",
                firmware: "2.800.0000000.16.R, Build Date 2021-07-21",
                hardware_id: "1.00",
                oui: [0x3c, 0xef, 0x8c],
                username: "admin",
                device_path: "/onvif/device_service",
                media_path: "/onvif/media_service",
                media2_path: None,
                stream_paths: [
                    "/cam/realmonitor?channel=1&subtype=0",
                    "/cam/realmonitor?channel=1&subtype=1",
                ],
                snapshot_paths: [
                    "/onvifsnapshot/media_service/snapshot?channel=1&subtype=0",
                    "/onvifsnapshot/media_service/snapshot?channel=1&subtype=1",
                ],
                profile_tokens: ["MediaProfile00000", "MediaProfile00001"],
                prefixes: Prefixes {
                    env: "s",
                    tds: "MC1",
                    tt: "MC3",
                    trt: "MC2",
                    tr2: "MC4",
                },
            },
            Flavour::Uniview => VendorInfo {
                manufacturer: "UNIVIEW",
                model: "IPC2124LB-SF28KM-G",
                firmware: "IPC_G6103-B0004P05D2111",
                hardware_id: "A",
                oui: [0x48, 0xea, 0x63],
                username: "admin",
                device_path: "/onvif/device_service",
                media_path: "/onvif/media_service",
                media2_path: Some("/onvif/media2_service"),
                stream_paths: ["/media/video1", "/media/video2"],
                snapshot_paths: ["/images/snapshot.jpg", "/images/snapshot.jpg?channel=2"],
                profile_tokens: ["media_profile1", "media_profile2"],
                prefixes: STD_PREFIXES,
            },
            Flavour::TpLink => VendorInfo {
                manufacturer: "TP-LINK",
                model: "TL-IPC44AN",
                firmware: "1.0.12 Build 220510 Rel.50478n",
                hardware_id: "1.0",
                oui: [0x50, 0xc7, 0xbf],
                username: "admin",
                device_path: "/onvif/device_service",
                media_path: "/onvif/service",
                media2_path: None,
                stream_paths: ["/stream1", "/stream2"],
                snapshot_paths: ["/stream/snapshot.jpg", "/stream/snapshot.jpg?stream=2"],
                profile_tokens: ["profile_1", "profile_2"],
                prefixes: STD_PREFIXES,
            },
            Flavour::Axis => VendorInfo {
                manufacturer: "AXIS",
                model: "P3245-LVE",
                firmware: "10.12.114",
                hardware_id: "7D3",
                oui: [0xac, 0xcc, 0x8e],
                username: "root",
                device_path: "/onvif/services",
                media_path: "/onvif/services",
                media2_path: Some("/onvif/services"),
                stream_paths: [
                    "/onvif-media/media.amp?profile=profile_1_h264&sessiontimeout=60&streamtype=unicast",
                    "/onvif-media/media.amp?profile=profile_2_h264&sessiontimeout=60&streamtype=unicast",
                ],
                snapshot_paths: [
                    "/onvif-cgi/jpg/image.cgi?resolution=1280x720&compression=30",
                    "/onvif-cgi/jpg/image.cgi?resolution=640x360&compression=30",
                ],
                profile_tokens: ["profile_1_h264", "profile_2_h264"],
                prefixes: STD_PREFIXES,
            },
            Flavour::Generic => VendorInfo {
                manufacturer: "IPCAM",
                model: "IPC-F22A",
                firmware: "V4.02.R12.00035520.10010.140400",
                hardware_id: "00001",
                oui: [0x00, 0x12, 0x41],
                username: "admin",
                device_path: "/onvif/device_service",
                media_path: "/onvif/media_service",
                media2_path: None,
                stream_paths: ["/h264/ch1/main/av_stream", "/h264/ch1/sub/av_stream"],
                snapshot_paths: [
                    "/webcapture.jpg?command=snap&channel=1",
                    "/webcapture.jpg?command=snap&channel=1&subtype=1",
                ],
                profile_tokens: ["000", "001"],
                prefixes: STD_PREFIXES,
            },
        }
    }

    /// The HTTP Digest realm the camera announces.
    pub fn realm(self, serial: &str) -> String {
        match self {
            Flavour::Hikvision => format!("IP Camera({})", tail(serial, 5)),
            Flavour::Dahua => format!("Login to {serial}"),
            Flavour::Axis => format!("AXIS_{serial}"),
            Flavour::Uniview => "UNV".to_string(),
            Flavour::TpLink => "TP-LINK IP-Camera".to_string(),
            Flavour::Generic => "IPCAM".to_string(),
        }
    }
}

fn tail(s: &str, n: usize) -> &str {
    let start = s.len().saturating_sub(n);
    s.get(start..).unwrap_or(s)
}

impl fmt::Display for Flavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flavours rotate deterministically and the quirks sit on the right vendors.
    #[test]
    fn round_robin_and_quirks() {
        assert_eq!(Flavour::for_index(0), Flavour::Hikvision);
        assert_eq!(Flavour::for_index(7), Flavour::Dahua);
        assert!(Flavour::Hikvision.rejects_whitespace_unicast_probe());
        assert!(Flavour::TpLink.requires_probe_types());
        assert!(Flavour::Axis.requires_ws_addressing());
        assert!(!Flavour::Hikvision.requires_ws_addressing());
        assert!(!Flavour::Dahua.has_media2());
        assert!(Flavour::Uniview.has_media2());
        assert_eq!(Flavour::Axis.info().device_path, "/onvif/services");
        assert_eq!(Flavour::Dahua.info().prefixes.tds, "MC1");
    }
}
