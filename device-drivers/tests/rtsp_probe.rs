//! `rtsp_probe` against a tiny in-test RTSP server on `127.0.0.1:0` that
//! serves `testdata/rtsp/tiny.h264` (320x240, 10 fps, keyframe every 10
//! frames) over interleaved TCP, with fault modes: silent, garbage, auth
//! required, PLAY without frames, and RTP sequence gaps.
#![cfg(feature = "io")]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use device_drivers::onvif_client::Credentials;
use device_drivers::rtsp::{self, RtpHeader, TrackKind};
use device_drivers::rtsp_probe::{self, RtspErrorKind, RtspOptions, Transport};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

const CLIP: &[u8] = include_bytes!("../testdata/rtsp/tiny.h264");
const SSRC: u32 = 0x1234_5678;
const PASSWORD: &str = "s3cret-pw";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Normal,
    /// Accepts, reads, never answers.
    Silent,
    /// Answers every request with bytes that are not RTSP.
    Garbage,
    /// Wants `Basic admin:s3cret-pw`, else 401.
    Auth,
    /// PLAY answers 200 and then no RTP arrives.
    NoFrames,
    /// Drops the packets of access units 3 and 6 (sequence gaps).
    Gaps,
    /// DESCRIBE answers with an SDP over the 64 KiB cap.
    HugeSdp,
    /// PLAY is followed by interleaved packets that are not RTP.
    GarbageRtp,
    /// DESCRIBE answers 404.
    NotFound,
}

fn sdp() -> String {
    let nals = rtsp::split_annexb(CLIP);
    let find = |ty: u8| {
        nals.iter()
            .find(|n| n.first().is_some_and(|b| b & 0x1f == ty))
            .map(|n| base64::engine::general_purpose::STANDARD.encode(n))
            .expect("parameter set in clip")
    };
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=tiny\r\nt=0 0\r\na=tool:tgw-test\r\na=control:*\r\n\
         m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
         a=fmtp:96 packetization-mode=1;profile-level-id=4d000c;sprop-parameter-sets={},{}\r\n\
         a=control:trackID=0\r\n",
        find(7),
        find(8)
    )
}

/// Reads one request head; `None` at EOF.
async fn read_request(r: &mut tokio::net::tcp::OwnedReadHalf) -> Option<String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if r.read(&mut byte).await.ok()? == 0 || buf.len() > 8192 {
            return None;
        }
        buf.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

fn header<'a>(req: &'a str, name: &str) -> Option<&'a str> {
    req.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

async fn send_frames(w: Arc<Mutex<tokio::net::tcp::OwnedWriteHalf>>, mode: Mode) {
    let aus = rtsp::h264_access_units(CLIP);
    let mut seq: u16 = 1;
    for i in 0..60usize {
        let au = aus[i % aus.len()];
        let payloads = rtsp::packetize_h264(au, 1400);
        let n = payloads.len();
        let mut out = Vec::new();
        for (j, p) in payloads.iter().enumerate() {
            let hdr = RtpHeader {
                payload_type: 96,
                marker: j + 1 == n,
                sequence: seq,
                timestamp: (i as u32) * 9000,
                ssrc: SSRC,
            };
            seq = seq.wrapping_add(1);
            if mode == Mode::Gaps && (i == 3 || i == 6) {
                continue;
            }
            out.extend(rtsp::interleaved(0, &hdr.packet(p)));
        }
        if w.lock().await.write_all(&out).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn handle(sock: TcpStream, mode: Mode, base: String) {
    let (mut r, w) = sock.into_split();
    let w = Arc::new(Mutex::new(w));
    while let Some(req) = read_request(&mut r).await {
        let cseq = header(&req, "CSeq").unwrap_or("0").to_string();
        let method = req.split_whitespace().next().unwrap_or("").to_string();
        let resp = match mode {
            Mode::Silent => continue,
            Mode::Garbage => "HELLO\x00\x01 this is not RTSP\r\n\r\n".to_string(),
            _ => {
                let want = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("admin:{PASSWORD}"))
                );
                if mode == Mode::NotFound {
                    format!("RTSP/1.0 404 Not Found\r\nCSeq: {cseq}\r\n\r\n")
                } else if mode == Mode::Auth && header(&req, "Authorization") != Some(want.as_str())
                {
                    format!(
                        "RTSP/1.0 401 Unauthorized\r\nCSeq: {cseq}\r\n\
                         WWW-Authenticate: Basic realm=\"cam\"\r\n\r\n"
                    )
                } else {
                    match method.as_str() {
                        "DESCRIBE" => {
                            let mut body = sdp();
                            if mode == Mode::HugeSdp {
                                body.push_str(&"a=x-pad:0123456789abcdef\r\n".repeat(3000));
                            }
                            format!(
                                "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nServer: TestCam/1.0\r\n\
                                 Content-Base: {base}/\r\nContent-Type: application/sdp\r\n\
                                 Content-Length: {}\r\n\r\n{body}",
                                body.len()
                            )
                        }
                        "SETUP" => format!(
                            "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n\
                             Transport: RTP/AVP/TCP;unicast;interleaved=0-1;ssrc={SSRC:08X}\r\n\
                             Session: 424242;timeout=60\r\n\r\n"
                        ),
                        "PLAY" => {
                            if mode == Mode::GarbageRtp {
                                let w2 = w.clone();
                                tokio::spawn(async move {
                                    tokio::time::sleep(Duration::from_millis(20)).await;
                                    let junk = rtsp::interleaved(0, &[0x13; 40]);
                                    let _ = w2.lock().await.write_all(&junk.repeat(5)).await;
                                });
                            }
                            if matches!(mode, Mode::Normal | Mode::Gaps | Mode::Auth) {
                                let w2 = w.clone();
                                tokio::spawn(async move {
                                    // Let the PLAY response go first.
                                    tokio::time::sleep(Duration::from_millis(20)).await;
                                    send_frames(w2, mode).await;
                                });
                            }
                            format!(
                                "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nSession: 424242\r\n\
                                 RTP-Info: url={base}/trackID=0;seq=1;rtptime=0\r\n\r\n"
                            )
                        }
                        _ => format!(
                            "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n\
                             Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n\r\n"
                        ),
                    }
                }
            }
        };
        if w.lock().await.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Starts a server; returns its URL (`rtsp://127.0.0.1:PORT/live`).
async fn server(mode: Mode) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let base = format!("rtsp://127.0.0.1:{port}/live");
    let b = base.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(handle(sock, mode, b.clone()));
        }
    });
    base
}

fn opts(timeout_ms: u64, window_ms: u64) -> RtspOptions {
    RtspOptions {
        timeout: Duration::from_millis(timeout_ms),
        window: Duration::from_millis(window_ms),
        transport: Transport::Tcp,
    }
}

/// DESCRIBE: metadata from the SDP (SPS VUI fps, resolution, profile) and
/// the `a=tool` banner.
#[tokio::test]
async fn describe_metadata() {
    let url = server(Mode::Normal).await;
    let m = rtsp_probe::describe(&url, None, &opts(2000, 0))
        .await
        .expect("describe");
    assert_eq!(m.server.as_deref(), Some("tgw-test"));
    let v = m.video().expect("video");
    assert_eq!(v.kind, TrackKind::Video);
    assert_eq!(v.codec, "H264");
    assert_eq!((v.width, v.height), (Some(320), Some(240)));
    assert_eq!(v.profile.as_deref(), Some("Main"));
    assert_eq!(v.fps, Some(10.0));
    assert_eq!(v.control.as_deref(), Some("trackID=0"));
}

/// A 1.5 s sample: ~10 fps, a keyframe every 10 frames (1000 ms), no loss.
#[tokio::test]
async fn sample_measures_fps_and_gop() {
    let url = server(Mode::Normal).await;
    let r = rtsp_probe::sample(&url, None, &opts(2000, 1500))
        .await
        .expect("sample");
    assert_eq!(r.transport, Transport::Tcp);
    assert_eq!(r.codec, "H264");
    assert_eq!((r.width, r.height), (Some(320), Some(240)));
    assert!((11..=18).contains(&r.frames), "{r:?}");
    let fps = r.measured_fps.expect("fps");
    assert!((8.0..12.5).contains(&fps), "{r:?}");
    assert_eq!(r.keyframe_interval_frames, Some(10.0), "{r:?}");
    assert_eq!(r.keyframe_interval_ms, Some(1000.0), "{r:?}");
    assert_eq!(r.rtp_loss_packets, 0);
    assert!(r.bitrate_kbps > 10.0, "{r:?}");
    assert!(r.time_to_first_frame_ms < 1000, "{r:?}");
    assert!(r.last_frame_age_ms < 500, "{r:?}");
}

/// Sequence gaps (two dropped access units) show as RTP loss.
#[tokio::test]
async fn sample_counts_rtp_loss() {
    let url = server(Mode::Gaps).await;
    let r = rtsp_probe::sample(&url, None, &opts(2000, 1000))
        .await
        .expect("sample");
    assert!(r.rtp_loss_packets >= 2, "{r:?}");
}

/// A server that accepts and never answers: `Timeout`, not a hang.
#[tokio::test]
async fn silent_server_times_out() {
    let url = server(Mode::Silent).await;
    let e = rtsp_probe::describe(&url, None, &opts(300, 0))
        .await
        .expect_err("must fail");
    assert_eq!(e.kind, RtspErrorKind::Timeout);
    assert_eq!(e.operation, "DESCRIBE");
    assert_eq!(e.kind_label(), "timeout");
    assert!(e.peer.starts_with("127.0.0.1:"));
}

/// Garbage instead of an RTSP response: `Protocol`.
#[tokio::test]
async fn garbage_is_protocol_error() {
    let url = server(Mode::Garbage).await;
    let e = rtsp_probe::describe(&url, None, &opts(1000, 0))
        .await
        .expect_err("must fail");
    assert!(matches!(e.kind, RtspErrorKind::Protocol(_)), "{e:?}");
    assert_eq!(e.kind_label(), "protocol");
}

/// Wrong credentials (from the URL): `AuthRejected`, and neither the
/// password nor the user name appears in the error's Display or Debug.
#[tokio::test]
async fn wrong_credentials_rejected_and_never_shown() {
    let url = server(Mode::Auth).await;
    let with_creds = url.replace("rtsp://", "rtsp://admin:wrong-pw-123@");
    let e = rtsp_probe::describe(&with_creds, None, &opts(1000, 0))
        .await
        .expect_err("must fail");
    assert_eq!(e.kind, RtspErrorKind::AuthRejected, "{e:?}");
    let shown = format!("{e} {e:?}");
    assert!(
        !shown.contains("wrong-pw-123") && !shown.contains("admin"),
        "{shown}"
    );
    // No credentials at all: also AuthRejected.
    let e = rtsp_probe::describe(&url, None, &opts(1000, 0))
        .await
        .expect_err("must fail");
    assert_eq!(e.kind_label(), "auth");
    // Right credentials passed as an argument win over the URL's.
    let creds = Credentials::new("admin", PASSWORD);
    let m = rtsp_probe::describe(&with_creds, Some(&creds), &opts(1000, 0))
        .await
        .expect("describe with creds");
    assert_eq!(m.tracks.len(), 1);
    assert!(!format!("{creds:?}").contains(PASSWORD));
}

/// PLAY succeeds but no frame comes: `NoFrames` (the frozen camera).
#[tokio::test]
async fn play_without_frames_is_no_frames() {
    let url = server(Mode::NoFrames).await;
    let e = rtsp_probe::sample(&url, None, &opts(500, 1000))
        .await
        .expect_err("must fail");
    assert_eq!(e.kind, RtspErrorKind::NoFrames, "{e:?}");
    assert_eq!(e.kind_label(), "no_frames");
}

/// Nothing listening: `Connect`, naming only host:port.
#[tokio::test]
async fn refused_connection() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("addr").port()
    };
    let url = format!("rtsp://user:pw-xyz@127.0.0.1:{port}/x");
    let e = rtsp_probe::describe(&url, None, &opts(1000, 0))
        .await
        .expect_err("must fail");
    assert!(matches!(e.kind, RtspErrorKind::Connect(_)), "{e:?}");
    assert_eq!(e.peer, format!("127.0.0.1:{port}"));
    assert!(!format!("{e:?}").contains("pw-xyz"));
}

/// An SDP over the 64 KiB cap: `TooLarge`, not an unbounded parse.
#[tokio::test]
async fn huge_sdp_is_too_large() {
    let url = server(Mode::HugeSdp).await;
    let e = rtsp_probe::describe(&url, None, &opts(2000, 0))
        .await
        .expect_err("must fail");
    assert!(matches!(e.kind, RtspErrorKind::TooLarge), "{e:?}");
}

/// Interleaved packets that are not RTP (version bits wrong): a `Protocol`
/// error for this camera, no panic.
#[tokio::test]
async fn garbage_rtp_is_protocol_error() {
    let url = server(Mode::GarbageRtp).await;
    let e = rtsp_probe::sample(&url, None, &opts(1000, 1000))
        .await
        .expect_err("must fail");
    assert!(matches!(e.kind, RtspErrorKind::Protocol(_)), "{e:?}");
}

/// A 404 on DESCRIBE: `Refused { status: 404 }`.
#[tokio::test]
async fn not_found_is_refused() {
    let url = server(Mode::NotFound).await;
    let e = rtsp_probe::describe(&url, None, &opts(1000, 0))
        .await
        .expect_err("must fail");
    assert_eq!(e.kind, RtspErrorKind::Refused { status: 404 });
    assert_eq!(e.kind_label(), "refused");
}
