//! Real peer: GStreamer's RTSP server (gst-rtsp-server 1.22 through Debian's
//! python3-gi, `tests/peers/gst_rtsp_server.py`) must be described and
//! sampled correctly by `tgw probe rtsp`, and `ffprobe` must agree.
//!
//! The server serves `/live` (videotestsrc → x264enc, 640x480 at 15 fps,
//! Main profile, `key-int-max=30`) and `/file` (an MP4 that ffmpeg encodes at
//! run time: testsrc2 1280x720 at 25 fps, Main profile, yuv420p, `-g 50`,
//! 3 s), on a free port of 127.0.0.1.
//!
//! Needs `/usr/bin/python3` with the GStreamer RTSP server bindings and
//! x264enc, plus `ffmpeg` and `ffprobe` (all from `scripts/install-peers`).
//! Outside CI a missing prerequisite skips the test with a message; under CI
//! (`CI=true`) it fails.
// Waiting for a child process's output needs real time.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tgw_e2e::*;

/// Debian's interpreter: the GObject bindings are not installed for any other.
const PYTHON: &str = "/usr/bin/python3";

/// Imports the bindings and looks up every element the server's pipelines use.
const GST_CHECK: &str = "import gi; gi.require_version('Gst','1.0'); \
gi.require_version('GstRtspServer','1.0'); from gi.repository import Gst, GstRtspServer; \
Gst.init(None); import sys; sys.exit(0 if all(Gst.ElementFactory.find(e) for e in \
['videotestsrc','x264enc','rtph264pay','filesrc','qtdemux','h264parse']) else 1)";

fn ok(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn prerequisites() -> bool {
    let missing = if !ok(Command::new(PYTHON).args(["-c", GST_CHECK])) {
        Some(
            "/usr/bin/python3 with python3-gi, gir1.2-gst-rtsp-server-1.0 and \
             gstreamer1.0-plugins-{base,good,ugly,bad} (run scripts/install-peers)",
        )
    } else if !ok(Command::new("ffmpeg").arg("-version")) {
        Some("ffmpeg (run scripts/install-peers)")
    } else if !ok(Command::new("ffprobe").arg("-version")) {
        Some("ffprobe (run scripts/install-peers)")
    } else {
        None
    };
    match missing {
        None => true,
        Some(what) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI is missing a test prerequisite: {what}")
        }
        Some(what) => {
            eprintln!("SKIPPED: needs {what}");
            false
        }
    }
}

/// The GStreamer RTSP server in a child process, killed on drop.
struct GstServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl GstServer {
    fn start() -> GstServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mp4 = dir.path().join("out.mp4");
        make_clip(&mp4);
        let port = free_tcp_port();
        let mut child = Command::new(PYTHON)
            .arg(workspace().join("tests/peers/gst_rtsp_server.py"))
            .arg(port.to_string())
            .arg(&mp4)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the GStreamer RTSP server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("server output");
        let server = GstServer {
            child,
            port,
            _dir: dir,
        };
        assert_eq!(line.trim(), "ready", "GStreamer RTSP server did not start");
        server
    }

    fn url(&self, path: &str) -> String {
        format!("rtsp://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for GstServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The clip the issue asks for: without `-pix_fmt yuv420p -profile:v main`
/// ffmpeg would emit High 4:4:4 Predictive, which no camera sends.
fn make_clip(out: &Path) {
    let mut c = Command::new("ffmpeg");
    c.args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=1280x720:rate=25")
        .args(["-t", "3", "-c:v", "libx264", "-profile:v", "main"])
        .args(["-pix_fmt", "yuv420p", "-g", "50"])
        .arg(out);
    let o = run_with_timeout(c, Duration::from_secs(60));
    assert!(
        o.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `tgw probe rtsp URL --json EXTRA...`, asserting success.
fn probe(url: &str, extra: &[&str]) -> Value {
    let mut c = tgw();
    c.args(["probe", "rtsp", url, "--json"]).args(extra);
    let out = run_with_timeout(c, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "tgw probe rtsp {url} {extra:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("probe JSON")
}

/// The one video track of a probe's metadata.
fn video(v: &Value) -> &Value {
    let tracks = v["metadata"]["tracks"].as_array().expect("tracks");
    assert_eq!(tracks.len(), 1, "one track expected: {v}");
    assert_eq!(tracks[0]["kind"], "video", "{v}");
    &tracks[0]
}

/// ffprobe's first stream of `url` (`-show_streams`, TCP interleaved).
fn ffprobe_stream(url: &str) -> Value {
    let mut c = Command::new("ffprobe");
    c.args(["-v", "error", "-rtsp_transport", "tcp", "-show_streams"])
        .args(["-of", "json", url]);
    let out = run_with_timeout(c, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "ffprobe {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("ffprobe JSON");
    v["streams"][0].clone()
}

/// ffprobe's mean frames between keyframes over the first `secs` of `url`
/// (decodes; `key_frame` per frame).
fn ffprobe_keyframe_interval(url: &str, secs: u32) -> f64 {
    let mut c = Command::new("ffprobe");
    c.args([
        "-v",
        "error",
        "-rtsp_transport",
        "tcp",
        "-select_streams",
        "v:0",
    ])
    .args(["-show_entries", "frame=key_frame", "-of", "csv=p=0"])
    .args(["-read_intervals", &format!("%+{secs}"), url]);
    let out = run_with_timeout(c, Duration::from_secs(30));
    assert!(out.status.success(), "ffprobe frames of {url}");
    // One line per frame; the first may carry side data after a comma.
    let flags: Vec<bool> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| match l.split(',').next().map(str::trim) {
            Some("1") => Some(true),
            Some("0") => Some(false),
            _ => None,
        })
        .collect();
    let keys: Vec<usize> = (0..flags.len()).filter(|&i| flags[i]).collect();
    assert!(
        keys.len() >= 2,
        "ffprobe saw {} keyframes in {} frames of {url}",
        keys.len(),
        flags.len()
    );
    (keys[keys.len() - 1] - keys[0]) as f64 / (keys.len() - 1) as f64
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// DESCRIBE metadata of one path, checked against the server's settings and
/// ffprobe. `fps` is the track's `fps` field, which `device_drivers::rtsp`
/// takes from the SPS VUI timing when present (x264 and libx264 both write
/// `timing_info_present_flag=1`: time_scale 30 / 50, num_units_in_tick 1, so
/// 15 and 25 exactly) and only otherwise from `a=framerate` (which GStreamer
/// also sends, with the same value). So equality is exact.
fn check_describe(server: &GstServer, path: &str, size: (u64, u64), fps: f64, level: &str) {
    let url = server.url(path);
    let v = probe(&url, &[]);
    assert_eq!(v["url"], url.as_str());
    assert!(v["sample"].is_null(), "{v}");
    let m = &v["metadata"];
    assert_eq!(m["server"], "GStreamer", "{v}");
    assert_eq!(m["skipped"], serde_json::json!([]), "{v}");
    assert_eq!(m["warnings"], serde_json::json!([]), "{v}");
    let t = video(&v);
    assert_eq!(t["codec"], "H264", "{path}: {t}");
    assert_eq!(t["profile"], "Main", "{path}: {t}");
    assert_eq!(t["level"], level, "{path}: {t}");
    // avc1.4d.. = profile_idc 77 (Main).
    assert!(
        t["rfc6381"]
            .as_str()
            .is_some_and(|s| s.starts_with("avc1.4d")),
        "{path}: {t}"
    );
    assert_eq!(
        (t["width"].as_u64(), t["height"].as_u64()),
        (Some(size.0), Some(size.1)),
        "{path}: {t}"
    );
    assert_eq!(f(&t["fps"]), fps, "{path}: {t}");
    assert_eq!(t["clock_rate"], 90000, "{path}: {t}");
    assert_eq!(t["payload_type"], 96, "{path}: {t}");

    // Cross-check with ffprobe on the same server.
    let s = ffprobe_stream(&url);
    assert_eq!(s["codec_name"], "h264", "{path}: {s}");
    assert_eq!(s["profile"], "Main", "{path}: {s}");
    assert_eq!(
        (s["width"].as_u64(), s["height"].as_u64()),
        (Some(size.0), Some(size.1)),
        "{path}: {s}"
    );
    assert_eq!(
        s["r_frame_rate"],
        format!("{fps}/1").as_str(),
        "{path}: {s}"
    );
}

/// A timed sample of one path: in-band codec and size, no RTP loss, measured
/// fps within 15 % of the nominal rate (arrival times on a loaded box; the
/// file's first frames also arrive in a small burst), and the keyframe
/// interval in frames.
fn check_sample(url: &str, extra: &[&str], size: (u64, u64), fps: f64) -> Value {
    let v = probe(url, extra);
    let s = &v["sample"];
    assert_eq!(s["codec"], "H264", "{url}: {s}");
    assert_eq!(
        (s["width"].as_u64(), s["height"].as_u64()),
        (Some(size.0), Some(size.1)),
        "{url}: {s}"
    );
    assert_eq!(s["rtp_loss_packets"], 0, "{url}: {s}");
    let measured = f(&s["measured_fps"]);
    assert!(
        (measured - fps).abs() <= fps * 0.15,
        "{url}: measured {measured} fps, want {fps}: {s}"
    );
    assert!(f(&s["frames"]) >= fps, "{url}: {s}");
    assert!(f(&s["bitrate_kbps"]) > 0.0, "{url}: {s}");
    assert!(f(&s["time_to_first_frame_ms"]) < 3000.0, "{url}: {s}");
    s.clone()
}

#[test]
fn gstreamer_live_and_file_streams_are_described_and_sampled() {
    if !prerequisites() {
        return;
    }
    let server = GstServer::start();

    check_describe(&server, "/live", (640, 480), 15.0, "2.2");
    check_describe(&server, "/file", (1280, 720), 25.0, "3.1");

    // Live: x264enc's scene-cut detection fires on videotestsrc's moving
    // snow, so IDRs come every 7-8 frames, well inside key-int-max=30. The
    // exact value is the encoder's business: check it against what ffprobe
    // decodes from the same stream.
    let live = server.url("/live");
    let theirs = ffprobe_keyframe_interval(&live, 4);
    for transport in ["tcp", "udp"] {
        let s = check_sample(
            &live,
            &["--sample", "2", "--transport", transport],
            (640, 480),
            15.0,
        );
        assert_eq!(s["transport"], transport, "{s}");
        let ours = f(&s["keyframe_interval_frames"]);
        assert!(
            ours <= 30.0,
            "live keyframe interval {ours} over key-int-max: {s}"
        );
        assert!(
            (ours - theirs).abs() <= 1.5,
            "live keyframe interval: ours {ours}, ffprobe {theirs}: {s}"
        );
    }

    // File: `-g 50` puts IDRs at frames 0 and 50 exactly (libx264's scene-cut
    // does not fire on testsrc2; the clip has no others). Frame 50 is due
    // 2.0 s after the first, so the window is 2.5 s to see it without racing.
    let s = check_sample(
        &server.url("/file"),
        &["--sample", "2.5"],
        (1280, 720),
        25.0,
    );
    assert_eq!(f(&s["keyframe_interval_frames"]), 50.0, "{s}");
    let ms = f(&s["keyframe_interval_ms"]);
    assert!(
        (ms - 2000.0).abs() < 1.0,
        "file keyframe interval {ms} ms: {s}"
    );
    // And a plain `--sample 2` of the file works too (maybe one keyframe only).
    check_sample(&server.url("/file"), &["--sample", "2"], (1280, 720), 25.0);
}

/// A path the server does not have gives RTSP 404 by name; a port where
/// nothing listens gives a connect error; both well before the 5 s timeout.
#[test]
fn gstreamer_missing_path_and_wrong_port_fail_clearly_and_fast() {
    if !prerequisites() {
        return;
    }
    let server = GstServer::start();
    // Build (or find) the binary before timing anything.
    tgw_bin();
    let cases: [(String, &str); 2] = [
        (server.url("/no-such-path"), "refused with RTSP status 404"),
        (
            format!("rtsp://127.0.0.1:{}/live", free_tcp_port()),
            "connect failed",
        ),
    ];
    for (url, want) in cases {
        let start = Instant::now();
        let mut c = tgw();
        c.args(["probe", "rtsp", &url, "--json"]);
        let out = run_with_timeout(c, Duration::from_secs(30));
        let took = start.elapsed();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{url}: should fail");
        assert!(out.stdout.is_empty(), "{url}: no JSON on failure");
        assert!(err.contains("DESCRIBE to 127.0.0.1:"), "{url}: {err}");
        assert!(err.contains(want), "{url}: want {want:?} in {err}");
        assert!(took < Duration::from_secs(3), "{url}: took {took:?}");
    }
}
