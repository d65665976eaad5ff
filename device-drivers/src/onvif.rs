//! ONVIF device and media requests (body builders) and response parsers.
//!
//! Pure and namespace-prefix-agnostic: every lookup goes by local name through
//! [`crate::xml`], because cameras disagree about prefixes (`tds:`, `MC1:`,
//! `tr2:`, none). Parsers are lenient: optional fields that are missing become
//! `None`, unknown encodings are kept as sent. Each parser takes the raw
//! response bytes and a size cap, refuses DTDs, and surfaces a SOAP fault as
//! [`SoapError::Fault`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use crate::soap::{self, SoapError};
use crate::xml::{self, XmlError};

/// Device management service namespace.
pub const NS_DEVICE: &str = "http://www.onvif.org/ver10/device/wsdl";
/// Media (Media1) service namespace.
pub const NS_MEDIA: &str = "http://www.onvif.org/ver10/media/wsdl";
/// Media2 service namespace.
pub const NS_MEDIA2: &str = "http://www.onvif.org/ver20/media/wsdl";
/// Events service namespace.
pub const NS_EVENTS: &str = "http://www.onvif.org/ver10/events/wsdl";
/// Imaging service namespace.
pub const NS_IMAGING: &str = "http://www.onvif.org/ver20/imaging/wsdl";
/// PTZ service namespace.
pub const NS_PTZ: &str = "http://www.onvif.org/ver20/ptz/wsdl";
/// DeviceIO service namespace.
pub const NS_DEVICE_IO: &str = "http://www.onvif.org/ver10/deviceIO/wsdl";
/// ONVIF schema namespace (`tt:`).
pub const NS_SCHEMA: &str = "http://www.onvif.org/ver10/schema";

// ---------------------------------------------------------------- builders

/// Body of GetSystemDateAndTime.
pub fn get_system_date_and_time() -> String {
    format!(r#"<GetSystemDateAndTime xmlns="{NS_DEVICE}"/>"#)
}

/// Body of GetServices.
pub fn get_services(include_capability: bool) -> String {
    format!(
        r#"<GetServices xmlns="{NS_DEVICE}"><IncludeCapability>{include_capability}</IncludeCapability></GetServices>"#
    )
}

/// Body of GetCapabilities (category All).
pub fn get_capabilities() -> String {
    format!(r#"<GetCapabilities xmlns="{NS_DEVICE}"><Category>All</Category></GetCapabilities>"#)
}

/// Body of GetDeviceInformation.
pub fn get_device_information() -> String {
    format!(r#"<GetDeviceInformation xmlns="{NS_DEVICE}"/>"#)
}

/// Body of GetNetworkInterfaces.
pub fn get_network_interfaces() -> String {
    format!(r#"<GetNetworkInterfaces xmlns="{NS_DEVICE}"/>"#)
}

/// Body of GetScopes.
pub fn get_scopes() -> String {
    format!(r#"<GetScopes xmlns="{NS_DEVICE}"/>"#)
}

/// Which media service a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MediaVersion {
    /// `http://www.onvif.org/ver10/media/wsdl`
    Media1,
    /// `http://www.onvif.org/ver20/media/wsdl`
    Media2,
}

impl MediaVersion {
    /// 1 or 2.
    pub fn number(self) -> u8 {
        match self {
            MediaVersion::Media1 => 1,
            MediaVersion::Media2 => 2,
        }
    }
    fn ns(self) -> &'static str {
        match self {
            MediaVersion::Media1 => NS_MEDIA,
            MediaVersion::Media2 => NS_MEDIA2,
        }
    }
}

/// Body of GetProfiles (Media2 asks for all configurations).
pub fn get_profiles(v: MediaVersion) -> String {
    match v {
        MediaVersion::Media1 => format!(r#"<GetProfiles xmlns="{NS_MEDIA}"/>"#),
        MediaVersion::Media2 => {
            format!(r#"<GetProfiles xmlns="{NS_MEDIA2}"><Type>All</Type></GetProfiles>"#)
        }
    }
}

/// Body of GetStreamUri for RTSP (Media1: RTP-Unicast over RTSP).
pub fn get_stream_uri(v: MediaVersion, profile_token: &str) -> String {
    let token = xml::escape(profile_token);
    match v {
        MediaVersion::Media1 => format!(
            concat!(
                r#"<GetStreamUri xmlns="{m}"><StreamSetup><Stream xmlns="{tt}">RTP-Unicast</Stream>"#,
                r#"<Transport xmlns="{tt}"><Protocol>RTSP</Protocol></Transport></StreamSetup>"#,
                r#"<ProfileToken>{token}</ProfileToken></GetStreamUri>"#
            ),
            m = NS_MEDIA,
            tt = NS_SCHEMA,
            token = token
        ),
        MediaVersion::Media2 => format!(
            r#"<GetStreamUri xmlns="{NS_MEDIA2}"><Protocol>RTSP</Protocol><ProfileToken>{token}</ProfileToken></GetStreamUri>"#
        ),
    }
}

/// Body of GetSnapshotUri.
pub fn get_snapshot_uri(v: MediaVersion, profile_token: &str) -> String {
    format!(
        r#"<GetSnapshotUri xmlns="{}"><ProfileToken>{}</ProfileToken></GetSnapshotUri>"#,
        v.ns(),
        xml::escape(profile_token)
    )
}

// ------------------------------------------------------------------ types

/// The camera's clock, from GetSystemDateAndTime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemDateTime {
    /// The camera's time in UTC.
    #[serde(with = "time::serde::rfc3339")]
    pub utc: OffsetDateTime,
    /// True when derived from LocalDateTime and the POSIX TZ (no UTCDateTime sent).
    pub from_local: bool,
    /// `Manual` or `NTP`, as sent.
    pub date_time_type: Option<String>,
    /// Whether daylight saving is on, as sent.
    pub daylight_savings: Option<bool>,
    /// The POSIX TZ string, as sent.
    pub tz: Option<String>,
}

/// Service namespace → XAddr, from GetServices or GetCapabilities.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Services {
    /// Namespace URI → service URL.
    pub xaddrs: BTreeMap<String, String>,
}

impl Services {
    /// XAddr of a service namespace.
    pub fn get(&self, ns: &str) -> Option<&str> {
        self.xaddrs.get(ns).map(String::as_str)
    }
    /// Device service XAddr.
    pub fn device(&self) -> Option<&str> {
        self.get(NS_DEVICE)
    }
    /// Media1 XAddr.
    pub fn media(&self) -> Option<&str> {
        self.get(NS_MEDIA)
    }
    /// Media2 XAddr.
    pub fn media2(&self) -> Option<&str> {
        self.get(NS_MEDIA2)
    }
    /// Events XAddr.
    pub fn events(&self) -> Option<&str> {
        self.get(NS_EVENTS)
    }
    /// Imaging XAddr.
    pub fn imaging(&self) -> Option<&str> {
        self.get(NS_IMAGING)
    }
    /// PTZ XAddr.
    pub fn ptz(&self) -> Option<&str> {
        self.get(NS_PTZ)
    }
}

/// GetDeviceInformation. Fields the camera leaves out are empty strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInformation {
    /// Maker, e.g. `HIKVISION`.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// Firmware version.
    pub firmware_version: String,
    /// Serial number.
    pub serial_number: String,
    /// Hardware id.
    pub hardware_id: String,
}

/// One IPv4 address of an interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipv4Address {
    /// Dotted quad, as sent.
    pub address: String,
    /// Prefix length, if sent and numeric.
    pub prefix_length: Option<u8>,
    /// `manual`, `dhcp` or `link_local`.
    pub origin: String,
}

/// One entry of GetNetworkInterfaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInterface {
    /// The interface token.
    pub token: String,
    /// `Enabled` (false when missing or unreadable).
    pub enabled: bool,
    /// `Info/Name`.
    pub name: Option<String>,
    /// `Info/HwAddress`, normalised to `aa:bb:cc:dd:ee:ff`.
    pub hw_address: Option<String>,
    /// Whether IPv4 DHCP is on.
    pub ipv4_dhcp: bool,
    /// Manual, DHCP-assigned and link-local IPv4 addresses.
    pub ipv4: Vec<Ipv4Address>,
}

/// A video encoder configuration (Media1 or Media2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoEncoder {
    /// `H264`, `H265`, `JPEG`, `MPEG4`, or whatever the camera sent.
    pub encoding: String,
    /// Width in pixels (0 when missing).
    pub width: u32,
    /// Height in pixels (0 when missing).
    pub height: u32,
    /// `RateControl/FrameRateLimit`.
    pub fps: Option<f32>,
    /// `RateControl/BitrateLimit` in kbit/s.
    pub bitrate_kbps: Option<u32>,
    /// GOP length (`H264/GovLength` in Media1, `GovLength` in Media2).
    pub gov_length: Option<u32>,
    /// Codec profile (`H264/H264Profile` in Media1, `Profile` in Media2).
    pub profile: Option<String>,
}

/// An audio encoder configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioEncoder {
    /// `G711`, `PCMU`, `PCMA`, `AAC`, `MP4A-LATM`, ... as sent.
    pub encoding: String,
    /// Bitrate in kbit/s.
    pub bitrate_kbps: Option<u32>,
    /// Sample rate in kHz.
    pub sample_rate_khz: Option<u32>,
}

/// Video source bounds of a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoSourceBounds {
    /// The source token (`SourceToken`), if sent.
    pub source_token: Option<String>,
    /// Bounds width.
    pub width: u32,
    /// Bounds height.
    pub height: u32,
}

/// A media profile (Media1 or Media2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Profile token.
    pub token: String,
    /// Profile name.
    pub name: String,
    /// Video source bounds, if configured.
    pub video_source: Option<VideoSourceBounds>,
    /// Video encoder, if configured.
    pub video: Option<VideoEncoder>,
    /// Audio encoder, if configured.
    pub audio: Option<AudioEncoder>,
}

// ---------------------------------------------------------------- parsers

fn response<'a, 'i>(
    body: roxmltree::Node<'a, 'i>,
    name: &'static str,
) -> Result<roxmltree::Node<'a, 'i>, SoapError> {
    xml::find(body, name).ok_or(SoapError::Xml(XmlError::Missing(name)))
}

fn num<T: std::str::FromStr>(s: Option<String>) -> Option<T> {
    s.and_then(|v| v.trim().parse().ok())
}

fn boolean(s: Option<String>) -> Option<bool> {
    match s?.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// Parses GetSystemDateAndTimeResponse. Uses `UTCDateTime`; without it,
/// `LocalDateTime` with the POSIX `TZ` (e.g. `CST-8`); anything else is an error.
pub fn parse_system_date_and_time(bytes: &[u8], max: usize) -> Result<SystemDateTime, SoapError> {
    soap::with_body(bytes, max, |body| {
        let sdt = response(body, "SystemDateAndTime")?;
        let date_time_type = xml::path_text(sdt, &["DateTimeType"]);
        let daylight_savings = boolean(xml::path_text(sdt, &["DaylightSavings"]));
        let tz = xml::path_text(sdt, &["TimeZone", "TZ"]);
        if let Some(u) = xml::child(sdt, "UTCDateTime") {
            let utc = date_time(u)?.assume_utc();
            return Ok(SystemDateTime {
                utc,
                from_local: false,
                date_time_type,
                daylight_savings,
                tz,
            });
        }
        let local = xml::child(sdt, "LocalDateTime")
            .ok_or(SoapError::Xml(XmlError::Missing("UTCDateTime")))?;
        let local = date_time(local)?;
        let offset = tz.as_deref().and_then(posix_tz_offset).ok_or_else(|| {
            SoapError::Protocol(format!(
                "only LocalDateTime sent and its TZ {tz:?} is not a POSIX time zone"
            ))
        })?;
        Ok(SystemDateTime {
            utc: local.assume_offset(offset).to_offset(UtcOffset::UTC),
            from_local: true,
            date_time_type,
            daylight_savings,
            tz,
        })
    })
}

fn date_time(node: roxmltree::Node<'_, '_>) -> Result<PrimitiveDateTime, SoapError> {
    let field = |path: &[&str]| -> Result<i64, SoapError> {
        num::<i64>(xml::path_text(node, path)).ok_or_else(|| {
            SoapError::Protocol(format!(
                "date/time field {} missing or not a number",
                path.join("/")
            ))
        })
    };
    let bad = |what: &str| SoapError::Protocol(format!("invalid {what} in date/time"));
    let year = i32::try_from(field(&["Date", "Year"])?).map_err(|_| bad("year"))?;
    let month = u8::try_from(field(&["Date", "Month"])?)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or_else(|| bad("month"))?;
    let day = u8::try_from(field(&["Date", "Day"])?).map_err(|_| bad("day"))?;
    let hour = u8::try_from(field(&["Time", "Hour"])?).map_err(|_| bad("hour"))?;
    let minute = u8::try_from(field(&["Time", "Minute"])?).map_err(|_| bad("minute"))?;
    let second = u8::try_from(field(&["Time", "Second"])?).map_err(|_| bad("second"))?;
    let date = Date::from_calendar_date(year, month, day).map_err(|e| bad(&e.to_string()))?;
    // Some cameras send second 60 on a leap second; clamp rather than fail.
    let time = Time::from_hms(hour, minute, second.min(59)).map_err(|e| bad(&e.to_string()))?;
    Ok(PrimitiveDateTime::new(date, time))
}

/// UTC offset of local time from a POSIX TZ string (`CST-8` → +08:00,
/// `EST5EDT` → −05:00, `<+08>-8` → +08:00). DST rules are ignored.
pub fn posix_tz_offset(tz: &str) -> Option<UtcOffset> {
    let tz = tz.trim();
    let rest = if let Some(r) = tz.strip_prefix('<') {
        &r[r.find('>')? + 1..]
    } else {
        let n = tz.find(|c: char| !c.is_ascii_alphabetic())?;
        if n < 3 {
            return None;
        }
        &tz[n..]
    };
    let (sign, rest) = match rest.as_bytes().first()? {
        b'-' => (-1i32, &rest[1..]),
        b'+' => (1, &rest[1..]),
        _ => (1, rest),
    };
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == ':'))
        .unwrap_or(rest.len());
    let mut parts = rest[..end].split(':');
    let h: i32 = parts.next()?.parse().ok()?;
    let m: i32 = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    let s: i32 = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    if h > 24 || m > 59 || s > 59 {
        return None;
    }
    // POSIX: the offset is what you add to local time to get UTC.
    UtcOffset::from_whole_seconds(-sign * (h * 3600 + m * 60 + s)).ok()
}

/// Parses GetServicesResponse into namespace → XAddr.
pub fn parse_services(bytes: &[u8], max: usize) -> Result<Services, SoapError> {
    soap::with_body(bytes, max, |body| {
        let resp = response(body, "GetServicesResponse")?;
        let mut s = Services::default();
        for svc in xml::children(resp, "Service") {
            if let (Some(ns), Some(xaddr)) = (
                xml::path_text(svc, &["Namespace"]),
                xml::path_text(svc, &["XAddr"]).and_then(|x| pick_xaddr(&x)),
            ) {
                s.xaddrs.entry(ns).or_insert(xaddr);
            }
        }
        if s.xaddrs.is_empty() {
            return Err(SoapError::Protocol("GetServices listed no services".into()));
        }
        Ok(s)
    })
}

/// Parses GetCapabilitiesResponse into the same namespace → XAddr map
/// (Device, Media, Events, Imaging, PTZ, and from `Extension` DeviceIO and Media2).
pub fn parse_capabilities(bytes: &[u8], max: usize) -> Result<Services, SoapError> {
    soap::with_body(bytes, max, |body| {
        let caps = response(body, "Capabilities")?;
        let mut s = Services::default();
        let mut put = |node: Option<roxmltree::Node<'_, '_>>, ns: &str| {
            if let Some(x) = node
                .and_then(|n| xml::path_text(n, &["XAddr"]))
                .and_then(|x| pick_xaddr(&x))
            {
                s.xaddrs.entry(ns.to_string()).or_insert(x);
            }
        };
        put(xml::child(caps, "Device"), NS_DEVICE);
        put(xml::child(caps, "Media"), NS_MEDIA);
        put(xml::child(caps, "Events"), NS_EVENTS);
        put(xml::child(caps, "Imaging"), NS_IMAGING);
        put(xml::child(caps, "PTZ"), NS_PTZ);
        if let Some(ext) = xml::child(caps, "Extension") {
            put(xml::find(ext, "DeviceIO"), NS_DEVICE_IO);
            put(xml::find(ext, "Media2"), NS_MEDIA2);
        }
        if s.xaddrs.is_empty() {
            return Err(SoapError::Protocol(
                "GetCapabilities listed no XAddr".into(),
            ));
        }
        Ok(s)
    })
}

/// Picks one URL from a space-separated XAddrs list: plain `http` before
/// `https` (we speak no TLS to cameras), routable before IPv6 link-local.
pub fn pick_xaddr(list: &str) -> Option<String> {
    let all: Vec<&str> = list.split_whitespace().collect();
    let score = |u: &&&str| {
        let lower = u.to_ascii_lowercase();
        let mut s = 0;
        if !lower.starts_with("http://") {
            s += 2;
        }
        if lower.contains("[fe80") || lower.contains("169.254.") {
            s += 1;
        }
        s
    };
    all.iter().min_by_key(score).map(|s| s.to_string())
}

/// Parses GetDeviceInformationResponse.
pub fn parse_device_information(bytes: &[u8], max: usize) -> Result<DeviceInformation, SoapError> {
    soap::with_body(bytes, max, |body| {
        let r = response(body, "GetDeviceInformationResponse")?;
        let t = |n: &str| xml::path_text(r, &[n]).unwrap_or_default();
        Ok(DeviceInformation {
            manufacturer: t("Manufacturer"),
            model: t("Model"),
            firmware_version: t("FirmwareVersion"),
            serial_number: t("SerialNumber"),
            hardware_id: t("HardwareId"),
        })
    })
}

/// Normalises a MAC address to lowercase `aa:bb:cc:dd:ee:ff`, accepting
/// `:`/`-`/`.` separators or none; `None` when it is not 6 bytes of hex.
pub fn normalize_mac(raw: &str) -> Option<String> {
    let hex: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.' | ' '))
        .collect();
    if hex.len() != 12 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    let parts: Vec<&str> = (0..6).map(|i| &hex[i * 2..i * 2 + 2]).collect();
    Some(parts.join(":"))
}

/// Parses GetNetworkInterfacesResponse.
pub fn parse_network_interfaces(
    bytes: &[u8],
    max: usize,
) -> Result<Vec<NetworkInterface>, SoapError> {
    soap::with_body(bytes, max, |body| {
        let r = response(body, "GetNetworkInterfacesResponse")?;
        let mut out = Vec::new();
        for ni in xml::children(r, "NetworkInterfaces") {
            let info = xml::child(ni, "Info");
            let mut ipv4 = Vec::new();
            let mut ipv4_dhcp = false;
            if let Some(cfg) = xml::child(ni, "IPv4").and_then(|v| xml::child(v, "Config")) {
                ipv4_dhcp = boolean(xml::path_text(cfg, &["DHCP"])).unwrap_or(false);
                for (name, origin) in [
                    ("Manual", "manual"),
                    ("FromDHCP", "dhcp"),
                    ("LinkLocal", "link_local"),
                ] {
                    for a in xml::children(cfg, name) {
                        if let Some(address) = xml::path_text(a, &["Address"]) {
                            ipv4.push(Ipv4Address {
                                address,
                                prefix_length: num(xml::path_text(a, &["PrefixLength"])),
                                origin: origin.to_string(),
                            });
                        }
                    }
                }
            }
            out.push(NetworkInterface {
                token: xml::attr(ni, "token").unwrap_or_default().to_string(),
                enabled: boolean(xml::path_text(ni, &["Enabled"])).unwrap_or(false),
                name: info.and_then(|i| xml::path_text(i, &["Name"])),
                hw_address: info
                    .and_then(|i| xml::path_text(i, &["HwAddress"]))
                    .and_then(|m| normalize_mac(&m)),
                ipv4_dhcp,
                ipv4,
            });
        }
        Ok(out)
    })
}

/// Parses GetScopesResponse into the list of scope URIs.
pub fn parse_scopes(bytes: &[u8], max: usize) -> Result<Vec<String>, SoapError> {
    soap::with_body(bytes, max, |body| {
        let r = response(body, "GetScopesResponse")?;
        Ok(xml::children(r, "Scopes")
            .filter_map(|s| xml::path_text(s, &["ScopeItem"]))
            .collect())
    })
}

/// Values of `onvif://www.onvif.org/<kind>/<value>` scopes, percent-decoded
/// (e.g. kind `name` or `hardware`).
pub fn scope_values(scopes: &[String], kind: &str) -> Vec<String> {
    let prefix = format!("onvif://www.onvif.org/{kind}/");
    scopes
        .iter()
        .filter_map(|s| s.strip_prefix(&prefix))
        .filter(|v| !v.is_empty())
        .map(percent_decode)
        .collect()
}

fn percent_decode(s: &str) -> String {
    fn hex(c: u8) -> Option<u8> {
        (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses GetProfilesResponse of Media1 (`trt:`) or Media2 (`tr2:`, with
/// `Configurations`).
pub fn parse_profiles(bytes: &[u8], max: usize) -> Result<Vec<Profile>, SoapError> {
    soap::with_body(bytes, max, |body| {
        let r = response(body, "GetProfilesResponse")?;
        Ok(xml::children(r, "Profiles").map(profile).collect())
    })
}

fn profile(p: roxmltree::Node<'_, '_>) -> Profile {
    // Media2 nests configurations under <Configurations>; Media1 has them directly.
    let cfg = xml::child(p, "Configurations");
    let pick =
        |m1: &str, m2: &str| xml::child(p, m1).or_else(|| cfg.and_then(|c| xml::child(c, m2)));
    let video_source = pick("VideoSourceConfiguration", "VideoSource").map(|vs| {
        let bounds = xml::child(vs, "Bounds");
        let dim = |n: &str| {
            bounds
                .and_then(|b| xml::attr(b, n))
                .and_then(|v| v.trim().parse().ok())
        };
        VideoSourceBounds {
            source_token: xml::path_text(vs, &["SourceToken"]),
            width: dim("width").unwrap_or(0),
            height: dim("height").unwrap_or(0),
        }
    });
    let video = pick("VideoEncoderConfiguration", "VideoEncoder").map(video_encoder);
    let audio = pick("AudioEncoderConfiguration", "AudioEncoder").map(|a| AudioEncoder {
        encoding: xml::path_text(a, &["Encoding"]).unwrap_or_default(),
        bitrate_kbps: num(xml::path_text(a, &["Bitrate"])),
        sample_rate_khz: num(xml::path_text(a, &["SampleRate"])),
    });
    Profile {
        token: xml::attr(p, "token").unwrap_or_default().to_string(),
        name: xml::path_text(p, &["Name"]).unwrap_or_default(),
        video_source,
        video,
        audio,
    }
}

fn video_encoder(v: roxmltree::Node<'_, '_>) -> VideoEncoder {
    let encoding = xml::path_text(v, &["Encoding"]).unwrap_or_default();
    // Media1 keeps GOP and profile in a codec-specific child.
    let codec = xml::child(v, "H264")
        .or_else(|| xml::child(v, "H265"))
        .or_else(|| xml::child(v, "MPEG4"));
    let gov_length = codec
        .and_then(|c| xml::path_text(c, &["GovLength"]))
        .or_else(|| xml::attr(v, "GovLength").map(str::to_string))
        .or_else(|| xml::path_text(v, &["GovLength"]));
    let profile = codec
        .and_then(|c| {
            xml::path_text(c, &["H264Profile"])
                .or_else(|| xml::path_text(c, &["H265Profile"]))
                .or_else(|| xml::path_text(c, &["Mpeg4Profile"]))
        })
        .or_else(|| xml::attr(v, "Profile").map(|s| s.trim().to_string()))
        .or_else(|| xml::path_text(v, &["Profile"]))
        .filter(|s| !s.is_empty());
    let rc = xml::child(v, "RateControl");
    VideoEncoder {
        encoding,
        width: num(xml::path_text(v, &["Resolution", "Width"])).unwrap_or(0),
        height: num(xml::path_text(v, &["Resolution", "Height"])).unwrap_or(0),
        fps: rc
            .and_then(|r| num::<f32>(xml::path_text(r, &["FrameRateLimit"])))
            .filter(|f| f.is_finite()),
        bitrate_kbps: rc.and_then(|r| num(xml::path_text(r, &["BitrateLimit"]))),
        gov_length: num(gov_length),
        profile,
    }
}

/// Parses GetStreamUriResponse or GetSnapshotUriResponse (Media1 `MediaUri/Uri`
/// or Media2 `Uri`) and returns the URI as sent (credentials included, if any:
/// see [`strip_credentials`]).
pub fn parse_media_uri(bytes: &[u8], max: usize) -> Result<String, SoapError> {
    soap::with_body(bytes, max, |body| {
        xml::find_text(body, "Uri").ok_or(SoapError::Xml(XmlError::Missing("Uri")))
    })
}

/// Removes credentials from a URL: the userinfo (`rtsp://user:pw@host/`), and
/// query parameters some vendors embed (`user=`, `username=`, `password=`,
/// `pwd=`, `passwd=`). Other text is left as sent.
pub fn strip_credentials(uri: &str) -> String {
    let uri = uri.trim();
    let (scheme, rest) = match uri.find("://") {
        Some(i) => (&uri[..i + 3], &uri[i + 3..]),
        None => ("", uri),
    };
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    let host = match authority.rfind('@') {
        Some(i) => &authority[i + 1..],
        None => authority,
    };
    let (path, query_and_frag) = match tail.find('?') {
        Some(i) => (&tail[..i], Some(&tail[i + 1..])),
        None => (tail, None),
    };
    let mut out = format!("{scheme}{host}{path}");
    if let Some(qf) = query_and_frag {
        let (query, frag) = match qf.find('#') {
            Some(i) => (&qf[..i], Some(&qf[i..])),
            None => (qf, None),
        };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|kv| {
                let key = kv.split('=').next().unwrap_or("").to_ascii_lowercase();
                !matches!(
                    key.as_str(),
                    "user" | "username" | "password" | "pwd" | "passwd" | "pass"
                )
            })
            .collect();
        if !kept.is_empty() {
            out.push('?');
            out.push_str(&kept.join("&"));
        }
        if let Some(f) = frag {
            out.push_str(f);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = xml::MAX_XML_BYTES;

    fn env(body: &str) -> Vec<u8> {
        soap::envelope(body, None).into_bytes()
    }

    #[test]
    fn builders_are_well_formed() {
        for b in [
            get_system_date_and_time(),
            get_services(false),
            get_capabilities(),
            get_device_information(),
            get_network_interfaces(),
            get_scopes(),
            get_profiles(MediaVersion::Media1),
            get_profiles(MediaVersion::Media2),
            get_stream_uri(MediaVersion::Media1, "a&b"),
            get_stream_uri(MediaVersion::Media2, "p"),
            get_snapshot_uri(MediaVersion::Media2, "p"),
        ] {
            let e = soap::envelope(&b, None);
            let doc = xml::parse(&e).unwrap();
            assert!(xml::find(doc.root_element(), "Body").is_some(), "{b}");
        }
        let m1 = get_stream_uri(MediaVersion::Media1, "a&b");
        assert!(m1.contains("RTP-Unicast") && m1.contains("<ProfileToken>a&amp;b</ProfileToken>"));
        assert!(get_profiles(MediaVersion::Media2).contains("<Type>All</Type>"));
        assert!(get_services(false).contains("<IncludeCapability>false</IncludeCapability>"));
    }

    #[test]
    fn posix_tz() {
        assert_eq!(
            posix_tz_offset("CST-8"),
            Some(UtcOffset::from_hms(8, 0, 0).unwrap())
        );
        assert_eq!(
            posix_tz_offset("EST5EDT,M3.2.0,M11.1.0"),
            Some(UtcOffset::from_hms(-5, 0, 0).unwrap())
        );
        assert_eq!(
            posix_tz_offset("<+0530>-5:30"),
            Some(UtcOffset::from_hms(5, 30, 0).unwrap())
        );
        assert_eq!(posix_tz_offset("GMT0"), Some(UtcOffset::UTC));
        assert_eq!(posix_tz_offset("garbage"), None);
        assert_eq!(posix_tz_offset("X-8"), None);
        assert_eq!(posix_tz_offset("CST-99"), None);
    }

    #[test]
    fn system_date_garbage_is_an_error() {
        let b = env(
            r#"<GetSystemDateAndTimeResponse><SystemDateAndTime><UTCDateTime><Time><Hour>25</Hour><Minute>0</Minute><Second>0</Second></Time><Date><Year>2026</Year><Month>1</Month><Day>1</Day></Date></UTCDateTime></SystemDateAndTime></GetSystemDateAndTimeResponse>"#,
        );
        assert!(matches!(
            parse_system_date_and_time(&b, MAX),
            Err(SoapError::Protocol(_))
        ));
        let b = env(
            r#"<GetSystemDateAndTimeResponse><SystemDateAndTime><UTCDateTime><Time><Hour>x</Hour></Time></UTCDateTime></SystemDateAndTime></GetSystemDateAndTimeResponse>"#,
        );
        assert!(matches!(
            parse_system_date_and_time(&b, MAX),
            Err(SoapError::Protocol(_))
        ));
        let b = env(
            r#"<GetSystemDateAndTimeResponse><SystemDateAndTime><DateTimeType>NTP</DateTimeType></SystemDateAndTime></GetSystemDateAndTimeResponse>"#,
        );
        assert_eq!(
            parse_system_date_and_time(&b, MAX),
            Err(SoapError::Xml(XmlError::Missing("UTCDateTime")))
        );
        let b = env("<Other/>");
        assert_eq!(
            parse_system_date_and_time(&b, MAX),
            Err(SoapError::Xml(XmlError::Missing("SystemDateAndTime")))
        );
    }

    #[test]
    fn mac_normalisation() {
        assert_eq!(
            normalize_mac("28:57:BE:65:7D:D5").as_deref(),
            Some("28:57:be:65:7d:d5")
        );
        assert_eq!(
            normalize_mac("28-57-be-65-7d-d5").as_deref(),
            Some("28:57:be:65:7d:d5")
        );
        assert_eq!(
            normalize_mac("2857.be65.7dd5").as_deref(),
            Some("28:57:be:65:7d:d5")
        );
        assert_eq!(
            normalize_mac("2857BE657DD5").as_deref(),
            Some("28:57:be:65:7d:d5")
        );
        assert_eq!(normalize_mac("28:57:be:65:7d"), None);
        assert_eq!(normalize_mac("zz:57:be:65:7d:d5"), None);
    }

    #[test]
    fn strip_credentials_cases() {
        assert_eq!(
            strip_credentials("rtsp://admin:p%40ss@10.0.0.5:554/Streaming/Channels/101"),
            "rtsp://10.0.0.5:554/Streaming/Channels/101"
        );
        assert_eq!(
            strip_credentials("rtsp://a:b@c@10.0.0.5/x"),
            "rtsp://10.0.0.5/x"
        );
        assert_eq!(
            strip_credentials(
                "http://10.0.0.5/cgi-bin/snapshot.cgi?channel=1&user=admin&Password=x&pwd=y"
            ),
            "http://10.0.0.5/cgi-bin/snapshot.cgi?channel=1"
        );
        assert_eq!(
            strip_credentials("http://10.0.0.5/snap.jpg?user=a&password=b"),
            "http://10.0.0.5/snap.jpg"
        );
        assert_eq!(
            strip_credentials("rtsp://10.0.0.5/live?channel=1&subtype=0#frag"),
            "rtsp://10.0.0.5/live?channel=1&subtype=0#frag"
        );
        assert_eq!(strip_credentials("rtsp://10.0.0.5"), "rtsp://10.0.0.5");
    }

    #[test]
    fn xaddr_choice_prefers_plain_routable_http() {
        assert_eq!(
            pick_xaddr("https://10.0.0.5/onvif/device_service http://[fe80::1]/onvif/device_service http://10.0.0.5/onvif/device_service").as_deref(),
            Some("http://10.0.0.5/onvif/device_service")
        );
        assert_eq!(pick_xaddr("  "), None);
    }

    #[test]
    fn scope_values_decode() {
        let s = vec![
            "onvif://www.onvif.org/name/Gate%20Camera".to_string(),
            "onvif://www.onvif.org/hardware/DS-2CD2143G2-I".to_string(),
            "onvif://www.onvif.org/location/".to_string(),
        ];
        assert_eq!(scope_values(&s, "name"), vec!["Gate Camera"]);
        assert_eq!(scope_values(&s, "hardware"), vec!["DS-2CD2143G2-I"]);
        assert!(scope_values(&s, "location").is_empty());
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%e4%b8%ad"), "中");
    }
}
