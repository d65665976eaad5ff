//! Real DESCRIBE responses and SDPs (retina's capture corpus, see
//! `testdata/rtsp/retina/PROVENANCE.md`) parsed into stream metadata, one test
//! per vendor quirk; plus bad input that must give errors, never panics.

use device_drivers::rtsp::{
    self, ParseError, StreamMetadata, Track, TrackKind, parse_describe, parse_sdp,
};

fn describe(bytes: &[u8]) -> StreamMetadata {
    match parse_describe(bytes) {
        Ok(m) => m,
        Err(e) => panic!("parse failed: {e}"),
    }
}

fn sdp(bytes: &[u8]) -> StreamMetadata {
    match parse_sdp(bytes) {
        Ok(m) => m,
        Err(e) => panic!("parse failed: {e}"),
    }
}

/// Asserts codec, resolution, profile, level and fps of a video track.
fn video(t: &Track, codec: &str, dims: (u32, u32), profile: &str, level: &str, fps: Option<f32>) {
    assert_eq!(t.kind, TrackKind::Video);
    assert_eq!(t.codec, codec);
    assert_eq!((t.width, t.height), (Some(dims.0), Some(dims.1)));
    assert_eq!(t.profile.as_deref(), Some(profile));
    assert_eq!(t.level.as_deref(), Some(level));
    assert_eq!(t.fps, fps);
    assert_eq!(t.clock_rate, Some(90_000));
}

/// Asserts an audio track's codec, rate and channels.
fn audio(t: &Track, codec: &str, rate: u32, channels: Option<u16>) {
    assert_eq!(t.kind, TrackKind::Audio);
    assert_eq!(t.codec, codec);
    assert_eq!(t.clock_rate, Some(rate));
    assert_eq!(t.channels, channels);
}

/// Hikvision: absolute `a=control` URLs with a query string, an ONVIF metadata
/// track, no `Server` header or `a=tool`; SPS VUI says 30 fps.
#[test]
fn hikvision() {
    let m = describe(include_bytes!(
        "../testdata/rtsp/retina/hikvision_describe.txt"
    ));
    assert_eq!(m.server, None);
    assert_eq!(m.tracks.len(), 2);
    video(
        &m.tracks[0],
        "H264",
        (1920, 1080),
        "Main",
        "4.1",
        Some(30.0),
    );
    assert_eq!(m.tracks[0].rfc6381.as_deref(), Some("avc1.4d0029"));
    assert_eq!(
        m.tracks[0].control.as_deref(),
        Some(
            "rtsp://192.168.5.106:554/Streaming/Channels/101/trackID=1?transportmode=unicast&profile=Profile_1"
        )
    );
    assert_eq!(m.tracks[1].kind, TrackKind::Application);
    assert_eq!(m.tracks[1].codec, "ONVIF-METADATA");
    assert_eq!(m.tracks[1].payload_type, 107);
    assert!(m.skipped.is_empty() && m.warnings.is_empty());
}

/// Dahua: H.264 High + AAC (`MPEG4-GENERIC`, channels only in `config=`) +
/// ONVIF metadata on one stream.
#[test]
fn dahua_h264_aac_onvif() {
    let m = describe(include_bytes!(
        "../testdata/rtsp/retina/dahua_describe_h264_aac_onvif.txt"
    ));
    assert_eq!(m.tracks.len(), 3);
    video(&m.tracks[0], "H264", (704, 480), "High", "3.0", Some(15.0));
    assert_eq!(m.tracks[0].rfc6381.as_deref(), Some("avc1.64001e"));
    audio(&m.tracks[1], "AAC", 48_000, Some(1));
    assert_eq!(m.tracks[1].rfc6381.as_deref(), Some("mp4a.40.2"));
    assert_eq!(m.tracks[2].codec, "ONVIF-METADATA");
    assert_eq!(m.tracks[2].control.as_deref(), Some("trackID=4"));
}

/// Dahua: H.265 parameters in `sprop-sps` (emulation-prevention bytes inside)
/// and PCMA audio; fps only from `a=framerate:12.000000`.
#[test]
fn dahua_h265_pcma() {
    let m = describe(include_bytes!(
        "../testdata/rtsp/retina/dahua_describe_h265_pcma.txt"
    ));
    video(&m.tracks[0], "H265", (704, 480), "Main", "3.0", Some(12.0));
    assert_eq!(m.tracks[0].rfc6381.as_deref(), Some("hvc1.1.6.L90.B0"));
    audio(&m.tracks[1], "PCMA", 8000, None);
    assert_eq!(m.tracks[1].payload_type, 8);
}

/// Reolink: LIVE555 banner in `a=tool`, H.264 High 5.1 whose SPS has no VUI
/// timing (fps unknown, not guessed).
#[test]
fn reolink() {
    let m = describe(include_bytes!(
        "../testdata/rtsp/retina/reolink_describe.txt"
    ));
    assert_eq!(
        m.server.as_deref(),
        Some("LIVE555 Streaming Media v2013.04.08")
    );
    video(&m.tracks[0], "H264", (2560, 1440), "High", "5.1", None);
    audio(&m.tracks[1], "AAC", 16_000, Some(1));
}

/// Foscam: the audio `m=` line uses static payload type 0 with no
/// `a=rtpmap`, so the codec (PCMU/8000) comes from RFC 3551.
#[test]
fn foscam() {
    let m = describe(include_bytes!(
        "../testdata/rtsp/retina/foscam_describe.txt"
    ));
    video(&m.tracks[0], "H264", (1280, 720), "Main", "3.1", None);
    audio(&m.tracks[1], "PCMU", 8000, Some(1));
    assert_eq!(m.tracks[1].payload_type, 0);
}

/// GeoVision: payload type 105 and a metadata fmtp with odd keys; no session
/// `a=control` or `t=` line.
#[test]
fn geovision() {
    let m = sdp(include_bytes!("../testdata/rtsp/retina/geovision_sdp.txt"));
    video(
        &m.tracks[0],
        "H264",
        (2688, 1520),
        "Main",
        "5.0",
        Some(30.0),
    );
    assert_eq!(m.tracks[0].payload_type, 105);
    assert_eq!(m.tracks[1].codec, "ONVIF-METADATA");
}

/// TP-Link: the bogus `m=application/TP-LINK ... smart/1/90000` section is
/// skipped and listed, not fatal; H.265 resolution from `sprop-sps`.
#[test]
fn tplink_bogus_application() {
    let m = sdp(include_bytes!("../testdata/rtsp/retina/tplink_sdp.txt"));
    assert_eq!(m.tracks.len(), 2);
    video(&m.tracks[0], "H265", (2560, 1440), "Main", "5.0", None);
    audio(&m.tracks[1], "PCMA", 8000, None);
    assert_eq!(
        m.skipped,
        vec!["m=application/TP-LINK 0 RTP/AVP smart/1/90000".to_string()]
    );
}

/// Ubiquiti: two audio sections share payload type 96 (AAC, then Opus) and
/// the video comes last; each section's rtpmap is read in its own scope.
#[test]
fn ubiquiti() {
    let m = sdp(include_bytes!("../testdata/rtsp/retina/ubiquiti_sdp.txt"));
    assert_eq!(m.tracks.len(), 3);
    audio(&m.tracks[0], "AAC", 48_000, Some(1));
    audio(&m.tracks[1], "OPUS", 48_000, Some(2));
    video(
        &m.tracks[2],
        "H264",
        (1920, 1080),
        "Main",
        "4.2",
        Some(45.0),
    );
    assert_eq!(m.video().map(|t| t.payload_type), Some(97));
}

/// VStarcam: a tab after the `m=audio` format and a trailing blank line.
#[test]
fn vstarcam() {
    let m = describe(include_bytes!(
        "../testdata/rtsp/retina/vstarcam_describe.txt"
    ));
    video(&m.tracks[0], "H264", (1920, 1080), "Main", "4.2", Some(7.5));
    audio(&m.tracks[1], "PCMA", 8000, Some(1));
}

/// Anpviz: AAC declared on static payload type 0 (the rtpmap wins over RFC
/// 3551), `a=x-dimensions: 704, 576` with spaces, a 1 KiB `config=` fmtp.
#[test]
fn anpviz() {
    let m = sdp(include_bytes!("../testdata/rtsp/retina/anpviz_sdp.txt"));
    video(&m.tracks[0], "H264", (704, 576), "Main", "3.1", Some(12.0));
    assert_eq!(m.tracks[0].rfc6381.as_deref(), Some("avc1.4d401f"));
    audio(&m.tracks[1], "AAC", 16_000, Some(2));
    assert_eq!(m.tracks[1].payload_type, 0);
}

/// Anjvision: H.265 with `sprop-vps/sps/pps` and a `Content-Base` without
/// scheme; fps from `a=x-framerate: 5`.
#[test]
fn anjvision_h265() {
    let m = describe(include_bytes!(
        "../testdata/rtsp/retina/anjvision_describe.txt"
    ));
    // The SPS codes 1280x704 (the SDP's a=x-dimensions claims 1280,720).
    video(&m.tracks[0], "H265", (1280, 704), "Main", "5.1", Some(5.0));
    assert_eq!(m.tracks[0].rfc6381.as_deref(), Some("hvc1.1.2.L153.B0"));
}

/// GW Security: the SPS in `sprop-parameter-sets` ends with an Annex B start
/// code, and `profile-level-id=5046314` is bogus (ignored).
#[test]
fn gw_security() {
    let main = describe(include_bytes!(
        "../testdata/rtsp/retina/gw_main_describe.txt"
    ));
    assert_eq!(main.server.as_deref(), Some("Rtsp Server/2.0"));
    video(&main.tracks[0], "H264", (1920, 1080), "Main", "4.2", None);
    audio(&main.tracks[1], "PCMU", 8000, Some(1));
    let sub = describe(include_bytes!(
        "../testdata/rtsp/retina/gw_sub_describe.txt"
    ));
    video(&sub.tracks[0], "H264", (720, 480), "Main", "3.0", None);
    assert!(main.warnings.is_empty() && sub.warnings.is_empty());
}

/// H264DVR: `a=framerate:0S` before `a=framerate:25`, a trailing space in
/// `a=rtpmap`; the SPS VUI (15 fps) wins over the attributes.
#[test]
fn h264dvr() {
    let m = describe(include_bytes!(
        "../testdata/rtsp/retina/h264dvr_describe.txt"
    ));
    assert_eq!(m.server.as_deref(), Some("H264DVR 1.0"));
    video(
        &m.tracks[0],
        "H264",
        (1920, 1080),
        "Baseline",
        "4.1",
        Some(15.0),
    );
    audio(&m.tracks[1], "PCMA", 8000, Some(1));
}

/// "IPCAM" C9F0: the SPS NAL header is 0x27 (nal_ref_idc 1, not 3).
#[test]
fn ipcam() {
    let m = describe(include_bytes!("../testdata/rtsp/retina/ipcam_describe.txt"));
    video(&m.tracks[0], "H264", (1280, 960), "Main", "3.2", Some(20.0));
}

/// Macrovideo: `profile-level-id=TeAo` is base64, not hex; the SPS decides.
#[test]
fn macrovideo() {
    let m = describe(include_bytes!(
        "../testdata/rtsp/retina/macrovideo_describe.txt"
    ));
    video(&m.tracks[0], "H264", (1280, 720), "Main", "4.0", Some(20.0));
    assert_eq!(m.tracks[0].rfc6381.as_deref(), Some("avc1.4de028"));
}

/// A libavformat server without `Content-Type`: still an SDP.
#[test]
fn missing_content_type() {
    let m = describe(include_bytes!(
        "../testdata/rtsp/retina/missing_content_type_describe.txt"
    ));
    assert_eq!(m.server.as_deref(), Some("libavformat 58.25.100"));
    video(&m.tracks[0], "H264", (320, 180), "High", "1.3", Some(30.0));
    audio(&m.tracks[1], "AAC", 48_000, Some(2));
}

/// Wowza (Big Buck Bunny): the `Server` header wins as banner; audio comes
/// first; Constrained Baseline with VUI 24 fps.
#[test]
fn wowza_bunny() {
    let m = describe(include_bytes!("../testdata/rtsp/retina/bunny_describe.txt"));
    assert_eq!(
        m.server.as_deref(),
        Some("Wowza Streaming Engine 4.8.10 build20210217143515")
    );
    audio(&m.tracks[0], "AAC", 12_000, Some(2));
    video(
        &m.tracks[1],
        "H264",
        (240, 160),
        "Constrained Baseline",
        "3.0",
        Some(24.0),
    );
}

/// Longse: a 401 with a Digest challenge parses as a response, not as an SDP.
#[test]
fn longse_unauthorized() {
    let raw = include_bytes!("../testdata/rtsp/retina/longse_unauthorized.txt");
    let r = rtsp::parse_response(raw).expect("response");
    assert_eq!(r.status, 401);
    assert_eq!(r.header("server"), Some("Rtsp Server 1920*1080*20*2048"));
    assert!(
        r.header("WWW-Authenticate")
            .is_some_and(|v| v.starts_with("Digest"))
    );
    assert_eq!(
        parse_describe(raw),
        Err(ParseError::NotSdp("status 401".into()))
    );
}

// ---------------------------------------------------------------------------
// Bad input

const GOOD_SDP: &str = "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=x\r\nt=0 0\r\n\
m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z2QAM6zoAoALWQ==,aO48MA==\r\n";

/// Garbage, truncated, non-UTF-8 and bad status lines give errors.
#[test]
fn garbage_and_truncated() {
    assert!(matches!(
        rtsp::parse_response(b"HTTP/1.1 200 OK\r\n\r\n"),
        Err(ParseError::BadStatusLine(_))
    ));
    assert!(matches!(
        rtsp::parse_response(b"\x00\x01\x02garbage\r\n\r\n"),
        Err(ParseError::BadStatusLine(_) | ParseError::NotUtf8 { .. })
    ));
    assert_eq!(
        rtsp::parse_response(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n"),
        Err(ParseError::Truncated("headers"))
    );
    assert_eq!(
        rtsp::parse_response(b"RTSP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nv=0\r\n"),
        Err(ParseError::Truncated("body"))
    );
    assert_eq!(
        rtsp::parse_response(b"RTSP/1.0 200 OK\r\nno colon here\r\n\r\n"),
        Err(ParseError::BadHeader { offset: 17 })
    );
    assert!(matches!(
        parse_sdp(b"hello world"),
        Err(ParseError::NotSdp(_))
    ));
    assert_eq!(
        parse_sdp(b"v=0\r\ns=\xff\xfe\r\n"),
        Err(ParseError::NotUtf8 {
            what: "sdp",
            offset: 7
        })
    );
    // LF-only line endings are fine.
    let lf = GOOD_SDP.replace("\r\n", "\n");
    assert_eq!(sdp(lf.as_bytes()).tracks[0].width, Some(2560));
}

/// Huge headers or SDPs are refused with `TooLarge`, before reading them.
#[test]
fn huge_input() {
    let mut big = b"v=0\r\n".to_vec();
    big.resize(rtsp::MAX_SDP_BYTES + 1, b'a');
    assert!(matches!(
        parse_sdp(&big),
        Err(ParseError::TooLarge { what: "sdp", .. })
    ));
    let resp = format!(
        "RTSP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n",
        rtsp::MAX_SDP_BYTES + 1
    );
    assert!(matches!(
        rtsp::parse_response(resp.as_bytes()),
        Err(ParseError::TooLarge { what: "sdp", .. })
    ));
    let mut head = b"RTSP/1.0 200 OK\r\nX: ".to_vec();
    head.resize(rtsp::MAX_HEADER_BYTES + 10, b'a');
    assert!(matches!(
        rtsp::parse_response(&head),
        Err(ParseError::TooLarge {
            what: "headers",
            ..
        })
    ));
    head.extend_from_slice(b"\r\n\r\n");
    assert!(matches!(
        rtsp::parse_response(&head),
        Err(ParseError::TooLarge {
            what: "headers",
            ..
        })
    ));
}

/// A bogus SPS or bad base64 costs that track its fields and adds a warning.
#[test]
fn bogus_sps_and_base64() {
    let bad_b64 = GOOD_SDP.replace("Z2QAM6zoAoALWQ==", "!!!notbase64");
    let m = sdp(bad_b64.as_bytes());
    assert_eq!(m.tracks[0].codec, "H264");
    assert_eq!(m.tracks[0].width, None);
    assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
    // A valid-looking SPS header with a truncated body.
    let truncated = GOOD_SDP.replace("Z2QAM6zoAoALWQ==", "Z2QAMw==");
    let m = sdp(truncated.as_bytes());
    assert_eq!(
        (m.tracks[0].width, m.tracks[0].profile.as_deref()),
        (None, None)
    );
    assert!(m.warnings[0].contains("H.264"), "{:?}", m.warnings);
    // An H.265 SPS that is all ones.
    let h265 = "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\n\
                a=fmtp:96 sprop-sps=Qv////////////8=\r\n";
    let m = sdp(h265.as_bytes());
    assert_eq!(m.tracks[0].codec, "H265");
    assert_eq!(m.tracks[0].width, None);
    // Emulation-prevention abuse in H.264: 00 00 00 inside the NAL.
    assert!(rtsp::parse_h264_sps(&[0x67, 0x64, 0, 0, 0, 0x33]).is_err());
}

/// Deterministic xorshift mutations of every fixture: no panics anywhere in
/// the response, SDP or SPS paths.
#[test]
fn mutations_never_panic() {
    let corpus: [&[u8]; 6] = [
        include_bytes!("../testdata/rtsp/retina/hikvision_describe.txt"),
        include_bytes!("../testdata/rtsp/retina/dahua_describe_h264_aac_onvif.txt"),
        include_bytes!("../testdata/rtsp/retina/dahua_describe_h265_pcma.txt"),
        include_bytes!("../testdata/rtsp/retina/tplink_sdp.txt"),
        include_bytes!("../testdata/rtsp/retina/anpviz_sdp.txt"),
        include_bytes!("../testdata/rtsp/retina/bunny_describe.txt"),
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut parsed = 0;
    for round in 0..3000 {
        let mut buf = corpus[round % corpus.len()].to_vec();
        for _ in 0..(1 + next() % 8) {
            let i = (next() as usize) % buf.len();
            match next() % 4 {
                0 => buf[i] = next() as u8,
                1 => buf[i] ^= 1 << (next() % 8),
                2 => buf.truncate(i.max(1)),
                _ => {
                    let b = next() as u8;
                    buf.insert(i, b);
                }
            }
        }
        let _ = rtsp::parse_response(&buf);
        if parse_describe(&buf).is_ok() {
            parsed += 1;
        }
        let _ = parse_sdp(&buf);
        let _ = rtsp::parse_h264_sps(&buf);
        let _ = rtsp::parse_h265_sps(&buf);
    }
    // Most single-byte mutations still leave a usable description.
    assert!(parsed > 100, "only {parsed} mutated inputs parsed");
}

/// The whole-SDP metadata round-trips through JSON (it is published as-is).
#[test]
fn metadata_json_round_trip() {
    let m = describe(include_bytes!(
        "../testdata/rtsp/retina/dahua_describe_h264_aac_onvif.txt"
    ));
    let json = serde_json::to_string(&m).expect("json");
    let back: StreamMetadata = serde_json::from_str(&json).expect("back");
    assert_eq!(back, m);
}

/// URLs are redacted before they are returned or logged.
#[test]
fn redact_url_drops_userinfo() {
    assert_eq!(
        rtsp::redact_url("rtsp://admin:hunter2@10.0.0.9:554/live?user=admin&password=x"),
        "rtsp://10.0.0.9:554/live"
    );
    let sdp_with_creds = "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
                          a=control:rtsp://admin:hunter2@cam/track1\r\n";
    let m = sdp(sdp_with_creds.as_bytes());
    assert_eq!(m.tracks[0].control.as_deref(), Some("rtsp://cam/track1"));
}
