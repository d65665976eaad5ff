//! ONVIF response parsers against real captures (`testdata/onvif/agsh-mockup/`)
//! and small synthetic vendor-quirk responses (`testdata/onvif/synthetic/`).
//! See `testdata/onvif/PROVENANCE.md`.

use device_drivers::onvif::{self, MediaVersion};
use device_drivers::soap::{self, SoapError};
use device_drivers::xml::{MAX_XML_BYTES, XmlError};
use time::macros::datetime;

const MAX: usize = MAX_XML_BYTES;

macro_rules! agsh {
    ($f:literal) => {
        include_bytes!(concat!("../testdata/onvif/agsh-mockup/", $f)).as_slice()
    };
}
macro_rules! synth {
    ($f:literal) => {
        include_bytes!(concat!("../testdata/onvif/synthetic/", $f)).as_slice()
    };
}

/// agsh-mockup (real PTZ camera): UTCDateTime with `SOAP-ENV:` prefix and the
/// Morocco TZ string; the UTC part wins.
#[test]
fn agsh_system_date_and_time_utc() {
    let t = onvif::parse_system_date_and_time(agsh!("GetSystemDateAndTime.xml"), MAX).unwrap();
    assert_eq!(t.utc, datetime!(2014-12-24 19:14:37 UTC));
    assert!(!t.from_local);
    assert_eq!(t.tz.as_deref(), Some("MoroccoStandardTime0"));
    assert_eq!(t.date_time_type.as_deref(), Some("Manual"));
    assert_eq!(t.daylight_savings, Some(true));
}

/// Cameras that send only LocalDateTime plus a POSIX TZ (`CST-8:00:00`, China).
#[test]
fn synthetic_local_time_only_uses_posix_tz() {
    let t =
        onvif::parse_system_date_and_time(synth!("localtime_only.GetSystemDateAndTime.xml"), MAX)
            .unwrap();
    assert!(t.from_local);
    assert_eq!(t.utc, datetime!(2025-12-31 23:05:09 UTC));
}

/// agsh-mockup GetServices: the response echoes a WS-Security header, all
/// services share one XAddr; deviceIO kept by namespace.
#[test]
fn agsh_services() {
    let s = onvif::parse_services(agsh!("GetServices.xml"), MAX).unwrap();
    assert_eq!(s.device(), Some("http://192.168.68.111/onvif/services"));
    assert_eq!(s.media(), Some("http://192.168.68.111/onvif/services"));
    assert_eq!(s.media2(), None);
    assert!(s.events().is_some() && s.imaging().is_some() && s.ptz().is_some());
    assert!(s.get(onvif::NS_DEVICE_IO).is_some());
    assert_eq!(s.xaddrs.len(), 6);
}

/// Axis serves every service at `/onvif/services` and has Media2.
#[test]
fn synthetic_axis_services_path_and_media2() {
    let s = onvif::parse_services(synth!("axis.GetServices.xml"), MAX).unwrap();
    assert_eq!(s.device(), Some("http://192.0.2.20/onvif/services"));
    assert_eq!(s.media2(), Some("http://192.0.2.20/onvif/services"));
    assert_eq!(s.ptz(), None);
}

/// Axis lists two XAddrs (and cameras in general mix https and IPv6
/// link-local ones): the plain, routable http one is picked.
#[test]
fn axis_two_xaddrs_pick() {
    let list = "http://192.0.2.20/onvif/services http://[fe80::240:8cff:fe12:3456]/onvif/services";
    assert_eq!(
        onvif::pick_xaddr(list).as_deref(),
        Some("http://192.0.2.20/onvif/services")
    );
}

/// agsh-mockup GetCapabilities (the fallback for cameras without GetServices):
/// Device/Media/Events/Imaging/PTZ plus Extension/DeviceIO.
#[test]
fn agsh_capabilities_fallback() {
    let s = onvif::parse_capabilities(agsh!("GetCapabilities.xml"), MAX).unwrap();
    for ns in [
        onvif::NS_DEVICE,
        onvif::NS_MEDIA,
        onvif::NS_EVENTS,
        onvif::NS_IMAGING,
        onvif::NS_PTZ,
        onvif::NS_DEVICE_IO,
    ] {
        assert_eq!(
            s.get(ns),
            Some("http://192.168.68.111/onvif/services"),
            "{ns}"
        );
    }
    assert_eq!(s.media2(), None);
}

/// agsh-mockup GetDeviceInformation (anonymised maker).
#[test]
fn agsh_device_information() {
    let d = onvif::parse_device_information(agsh!("GetDeviceInformation.xml"), MAX).unwrap();
    assert_eq!(d.manufacturer, "Mockup Manufacturer");
    assert_eq!(d.model, "Mockup Model");
    assert_eq!(d.firmware_version, "Mockup_15_14_13");
    assert_eq!(d.serial_number, "00000000");
    assert_eq!(d.hardware_id, "MOCKUP");
}

/// Dahua-style `MC1:` prefix on device-service elements.
#[test]
fn synthetic_dahua_device_information_mc1_prefix() {
    let d =
        onvif::parse_device_information(synth!("dahua_mc_prefixes.GetDeviceInformation.xml"), MAX)
            .unwrap();
    assert_eq!(d.manufacturer, "Dahua");
    assert_eq!(d.model, "IPC-HFW2431S-S-S2");
    assert_eq!(
        d.firmware_version,
        "2.800.0000000.9.R, Build Date 2020-07-07"
    );
}

/// agsh-mockup GetNetworkInterfaces (Hikvision namespace set, `env:` prefix):
/// MAC, manual IPv4, DHCP off.
#[test]
fn agsh_network_interfaces() {
    let n = onvif::parse_network_interfaces(agsh!("device.GetNetworkInterfaces.xml"), MAX).unwrap();
    assert_eq!(n.len(), 1);
    let i = &n[0];
    assert_eq!(i.token, "eth0");
    assert!(i.enabled);
    assert_eq!(i.name.as_deref(), Some("eth0"));
    assert_eq!(i.hw_address.as_deref(), Some("28:57:be:65:7d:d5"));
    assert!(!i.ipv4_dhcp);
    assert_eq!(i.ipv4.len(), 1);
    assert_eq!(i.ipv4[0].address, "192.168.68.111");
    assert_eq!(i.ipv4[0].prefix_length, Some(24));
    assert_eq!(i.ipv4[0].origin, "manual");
}

/// agsh-mockup GetScopes still carries doT template markers between
/// elements; they are ignored and all seven scopes are read.
#[test]
fn agsh_scopes_with_template_text() {
    let s = onvif::parse_scopes(agsh!("GetScopes.xml"), MAX).unwrap();
    assert_eq!(s.len(), 7);
    assert_eq!(s[0], "onvif://www.onvif.org/Profile/Streaming");
    assert_eq!(onvif::scope_values(&s, "name"), vec!["PREDATOR"]);
    assert_eq!(onvif::scope_values(&s, "hardware"), vec!["HD_PREDATOR"]);
}

/// agsh-mockup Media1 GetProfiles: H264 1080p, 5 fps, 1000 kbit/s, GOP 30,
/// High profile, PTZ configuration ignored, no audio.
#[test]
fn agsh_media1_profiles() {
    let p = onvif::parse_profiles(agsh!("GetProfiles.xml"), MAX).unwrap();
    assert_eq!(p.len(), 1);
    let p = &p[0];
    assert_eq!(p.token, "main");
    assert_eq!(p.name, "main");
    let v = p.video.as_ref().unwrap();
    assert_eq!(v.encoding, "H264");
    assert_eq!((v.width, v.height), (1920, 1080));
    assert_eq!(v.fps, Some(5.0));
    assert_eq!(v.bitrate_kbps, Some(1000));
    assert_eq!(v.gov_length, Some(30));
    assert_eq!(v.profile.as_deref(), Some("High"));
    let vs = p.video_source.as_ref().unwrap();
    assert_eq!((vs.width, vs.height), (1920, 1080));
    assert_eq!(vs.source_token.as_deref(), Some("vidsrc0"));
    assert_eq!(p.audio, None);
}

/// Dahua `MC1:`/`MC2:` prefixes on Media1 profiles; G711 audio; fractional
/// frame rate; a JPEG sub-stream with no H264 block and no bitrate.
#[test]
fn synthetic_dahua_profiles_mc_prefixes() {
    let p = onvif::parse_profiles(synth!("dahua_mc_prefixes.GetProfiles.xml"), MAX).unwrap();
    assert_eq!(p.len(), 2);
    assert_eq!(p[0].token, "MediaProfile00000");
    assert_eq!(p[0].name, "MediaProfile_Channel1_MainStream");
    let v = p[0].video.as_ref().unwrap();
    assert_eq!(
        (v.encoding.as_str(), v.width, v.height),
        ("H264", 2688, 1520)
    );
    assert_eq!(
        (v.fps, v.bitrate_kbps, v.gov_length),
        (Some(25.0), Some(4096), Some(50))
    );
    assert_eq!(v.profile.as_deref(), Some("Main"));
    let a = p[0].audio.as_ref().unwrap();
    assert_eq!(
        (a.encoding.as_str(), a.bitrate_kbps, a.sample_rate_khz),
        ("G711", Some(64), Some(8))
    );
    let sub = p[1].video.as_ref().unwrap();
    assert_eq!(sub.encoding, "JPEG");
    assert_eq!(sub.fps, Some(12.5));
    assert_eq!(
        (sub.bitrate_kbps, sub.gov_length, sub.profile.clone()),
        (None, None, None)
    );
    assert_eq!(p[1].video_source, None);
}

/// Media2 (`tr2:`) profiles: Configurations, H265 with GovLength/Profile as
/// attributes, H264 with them as elements, an unknown encoding kept as sent.
#[test]
fn synthetic_media2_profiles() {
    let p = onvif::parse_profiles(synth!("media2.GetProfiles.xml"), MAX).unwrap();
    assert_eq!(p.len(), 3);
    let v = p[0].video.as_ref().unwrap();
    assert_eq!(
        (v.encoding.as_str(), v.width, v.height),
        ("H265", 2560, 1440)
    );
    assert_eq!((v.fps, v.bitrate_kbps), (Some(25.0), Some(4096)));
    assert_eq!(
        (v.gov_length, v.profile.as_deref()),
        (Some(50), Some("Main"))
    );
    assert_eq!(p[0].audio.as_ref().unwrap().encoding, "PCMU");
    assert_eq!(p[0].video_source.as_ref().unwrap().width, 2560);
    let s = p[1].video.as_ref().unwrap();
    assert_eq!(
        (s.encoding.as_str(), s.gov_length, s.profile.as_deref()),
        ("H264", Some(30), Some("High"))
    );
    let odd = p[2].video.as_ref().unwrap();
    assert_eq!(odd.encoding, "SmartH265+");
    assert_eq!((odd.width, odd.fps), (0, None));
}

/// agsh-mockup GetStreamUri (Media1 `MediaUri/Uri`).
#[test]
fn agsh_stream_uri() {
    let u = onvif::parse_media_uri(agsh!("GetStreamUri.xml"), MAX).unwrap();
    assert_eq!(u, "rtsp://192.168.68.111/h264main");
}

/// agsh-mockup GetSnapshotUri: the `SOAP-ENV:` prefix is never declared
/// (repaired), `&amp;` in the query is unescaped; nothing to strip.
#[test]
fn agsh_snapshot_uri() {
    let u = onvif::parse_media_uri(agsh!("GetSnapshotUri.xml"), MAX).unwrap();
    assert_eq!(
        u,
        "http://192.168.68.111/onvif-cgi/jpg/image.cgi?resolution=800x600&compression=20&camera=1"
    );
    assert_eq!(onvif::strip_credentials(&u), u);
}

/// Media2 `tr2:Uri` with credentials embedded: stripped before storing.
#[test]
fn synthetic_media2_stream_uri_with_credentials() {
    let u = onvif::parse_media_uri(synth!("media2.GetStreamUri.xml"), MAX).unwrap();
    assert!(u.contains("hunter2"));
    assert_eq!(
        onvif::strip_credentials(&u),
        "rtsp://192.0.2.10:554/Streaming/Channels/101?transportmode=unicast&profile=Profile_1"
    );
}

/// agsh-mockup Error.xml is not well-formed (typographic quotes in the XML
/// declaration, undeclared `SOAP-ENV:` prefix). The repairs in
/// `soap::repair` recover it, and the fault comes out with its nested
/// subcodes.
#[test]
fn agsh_error_fault_repaired_and_surfaced() {
    let e = onvif::parse_device_information(agsh!("Error.xml"), MAX).unwrap_err();
    let SoapError::Fault(f) = e else {
        panic!("expected a fault, got {e:?}")
    };
    assert_eq!(f.code, "fault code");
    assert_eq!(f.subcodes, vec!["ter:fault subcode", "ter:fault subcode"]);
    assert_eq!(f.reason, "fault reason");
    assert!(!f.is_auth());
    assert_eq!(soap::parse_fault(agsh!("Error.xml"), MAX), Some(f));
}

/// agsh-mockup GetSnapshotUri uses `SOAP-ENV:` without declaring it: the
/// placeholder declaration makes it readable (covered by `agsh_snapshot_uri`);
/// a document that is broken in other ways still fails with its position.
#[test]
fn unrepairable_is_a_clear_error() {
    let e = onvif::parse_device_information(b"<s:Envelope xmlns:s='x'><s:Body></s:Envelope>", MAX);
    assert!(
        matches!(&e, Err(SoapError::Xml(XmlError::Malformed(m))) if m.contains("1:")),
        "{e:?}"
    );
}

/// The ONVIF NotAuthorized fault: surfaced with its subcode, recognised as auth.
#[test]
fn synthetic_not_authorized_fault() {
    let e = onvif::parse_profiles(synth!("fault.NotAuthorized.xml"), MAX).unwrap_err();
    let SoapError::Fault(f) = e else {
        panic!("expected a fault, got {e:?}")
    };
    assert_eq!(f.code, "env:Sender");
    assert_eq!(f.subcodes, vec!["ter:NotAuthorized"]);
    assert_eq!(f.reason, "Sender not Authorized");
    assert!(f.is_auth());
}

/// Entity expansion is refused before parsing.
#[test]
fn synthetic_dtd_refused() {
    assert_eq!(
        onvif::parse_device_information(synth!("hostile.dtd.xml"), MAX),
        Err(SoapError::Xml(XmlError::Dtd))
    );
}

/// Oversized, truncated and non-UTF-8 documents give errors.
#[test]
fn oversized_and_truncated() {
    let big = agsh!("GetProfiles.xml");
    assert!(matches!(
        onvif::parse_profiles(big, 100),
        Err(SoapError::Xml(XmlError::TooLarge { max: 100, .. }))
    ));
    let cut = &big[..big.len() / 2];
    assert!(matches!(
        onvif::parse_profiles(cut, MAX),
        Err(SoapError::Xml(XmlError::Malformed(_)))
    ));
    let mut bad = big.to_vec();
    bad[300] = 0xff;
    assert!(matches!(
        onvif::parse_profiles(&bad, MAX),
        Err(SoapError::Xml(XmlError::NotUtf8 { .. }))
    ));
}

/// Requests we build parse with the same lenient reader (round-trip sanity for
/// the simulator, which reads them).
#[test]
fn built_requests_name_their_operation() {
    for (body, op) in [
        (onvif::get_profiles(MediaVersion::Media2), "GetProfiles"),
        (
            onvif::get_stream_uri(MediaVersion::Media1, "main"),
            "GetStreamUri",
        ),
        (
            onvif::get_snapshot_uri(MediaVersion::Media1, "main"),
            "GetSnapshotUri",
        ),
    ] {
        let env = soap::envelope(&body, None);
        let doc = device_drivers::xml::parse(&env).unwrap();
        let b = device_drivers::xml::find(doc.root_element(), "Body").unwrap();
        let first = b.children().find(|c| c.is_element()).unwrap();
        assert_eq!(first.tag_name().name(), op);
    }
}

/// Every prefix of every capture (truncated answers, as from a camera that
/// drops the connection) gives a value or an error from every parser, never a
/// panic: a cheap, deterministic stand-in for the `soap_parse` fuzz target.
#[test]
fn truncated_captures_never_panic() {
    let all: [&[u8]; 18] = [
        agsh!("GetSystemDateAndTime.xml"),
        agsh!("GetServices.xml"),
        agsh!("GetCapabilities.xml"),
        agsh!("GetDeviceInformation.xml"),
        agsh!("device.GetNetworkInterfaces.xml"),
        agsh!("GetScopes.xml"),
        agsh!("GetProfiles.xml"),
        agsh!("GetStreamUri.xml"),
        agsh!("GetSnapshotUri.xml"),
        agsh!("Error.xml"),
        synth!("dahua_mc_prefixes.GetProfiles.xml"),
        synth!("dahua_mc_prefixes.GetDeviceInformation.xml"),
        synth!("media2.GetProfiles.xml"),
        synth!("media2.GetStreamUri.xml"),
        synth!("axis.GetServices.xml"),
        synth!("localtime_only.GetSystemDateAndTime.xml"),
        synth!("fault.NotAuthorized.xml"),
        synth!("hostile.dtd.xml"),
    ];
    let mut parsed = 0;
    for doc in all {
        for cut in (0..=doc.len()).step_by(37).chain([doc.len()]) {
            let d = &doc[..cut];
            let results = [
                onvif::parse_system_date_and_time(d, MAX).is_ok(),
                onvif::parse_services(d, MAX).is_ok(),
                onvif::parse_capabilities(d, MAX).is_ok(),
                onvif::parse_device_information(d, MAX).is_ok(),
                onvif::parse_network_interfaces(d, MAX).is_ok(),
                onvif::parse_scopes(d, MAX).is_ok(),
                onvif::parse_profiles(d, MAX).is_ok(),
                onvif::parse_media_uri(d, MAX).is_ok(),
            ];
            parsed += results.iter().filter(|ok| **ok).count();
            let _ = soap::parse_fault(d, MAX);
        }
    }
    // The complete documents parse (at least one parser each, 16 of 18 files).
    assert!(parsed >= 16, "{parsed}");
}
