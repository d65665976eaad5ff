//! Recorded clips from phones and browsers: Opus in WebM (as Chromium's
//! MediaRecorder writes it: no duration, clusters of unknown size) and Ogg,
//! AAC-LC in MP4/M4A and ADTS. Files are made at test time with ffmpeg
//! (skipped with a message when it is missing, unless `CI=true`); failure
//! cases first.

use std::path::Path;
use std::process::Command;

use super::tests::{dominant, have};
use super::*;

/// Encodes `secs` of a `freq` Hz sine (48 kHz, `ch` channels) with ffmpeg
/// and answers the file's bytes.
fn clip(dir: &Path, name: &str, freq: u32, secs: f64, ch: u32, args: &[&str]) -> Vec<u8> {
    let out = dir.join(name);
    let st = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"])
        .arg("-i")
        .arg(format!(
            "sine=frequency={freq}:sample_rate=48000:duration={secs}"
        ))
        .args(["-ac", &ch.to_string()])
        .args(args)
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success(), "ffmpeg failed for {name}");
    std::fs::read(out).unwrap()
}

fn webm(dir: &Path, secs: f64) -> Vec<u8> {
    clip(
        dir,
        "t.webm",
        1000,
        secs,
        1,
        &["-c:a", "libopus", "-b:a", "32k"],
    )
}

/// EBML element id and size at `i`: (id, id length, size, size length).
fn ebml(b: &[u8], i: usize) -> (u32, usize, u64, usize) {
    let len = |x: u8| x.leading_zeros() as usize + 1;
    let il = len(b[i]);
    let id = b[i..i + il]
        .iter()
        .fold(0u32, |a, x| (a << 8) | u32::from(*x));
    let sl = len(b[i + il]);
    let mut size = u64::from(b[i + il]) & ((1 << (8 - sl)) - 1);
    for x in &b[i + il + 1..i + il + sl] {
        size = (size << 8) | u64::from(*x);
    }
    (id, il, size, sl)
}

/// Rewrites a WebM the way MediaRecorder streams it: the Segment and every
/// Cluster of unknown size (all ones), the Info's Duration removed (Void).
fn as_media_recorder(b: &[u8]) -> Vec<u8> {
    const SEGMENT: u32 = 0x1853_8067;
    const CLUSTER: u32 = 0x1F43_B675;
    const INFO: u32 = 0x1549_A966;
    const DURATION: u32 = 0x4489;
    let unknown = [0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    let mut out = Vec::new();
    let (_, il, size, sl) = ebml(b, 0);
    let mut i = il + sl + size as usize;
    out.extend_from_slice(&b[..i]);
    let (id, il, _, sl) = ebml(b, i);
    assert_eq!(id, SEGMENT);
    out.extend_from_slice(&b[i..i + il]);
    out.extend_from_slice(&unknown);
    i += il + sl;
    while i < b.len() {
        let (id, il, size, sl) = ebml(b, i);
        let body = &b[i + il + sl..i + il + sl + size as usize];
        match id {
            CLUSTER => {
                out.extend_from_slice(&b[i..i + il]);
                out.extend_from_slice(&unknown);
                out.extend_from_slice(body);
            }
            INFO => {
                let mut info = body.to_vec();
                let mut j = 0;
                while j < info.len() {
                    let (cid, cil, csize, csl) = ebml(&info, j);
                    let end = j + cil + csl + csize as usize;
                    if cid == DURATION {
                        // A Void element of the same length (2-byte id,
                        // 1-byte size as ffmpeg writes it).
                        assert_eq!((cil, csl), (2, 1));
                        info[j] = 0xEC;
                        info[j + 1] = 0x80 | (csize as u8 + 1);
                        info[j + 2..end].fill(0);
                    }
                    j = end;
                }
                out.extend_from_slice(&b[i..i + il + sl]);
                out.extend_from_slice(&info);
            }
            _ => out.extend_from_slice(&b[i..i + il + sl + size as usize]),
        }
        i += il + sl + size as usize;
    }
    out
}

fn expect_err(r: Result<Prepared, AudioError>, want: &str) -> String {
    let e = r.expect_err(want).to_string();
    assert!(e.contains(want), "wanted `{want}` in `{e}`");
    e
}

/// Truncated, cut-in-the-header, overlong, surround and garbage-filled
/// clips are refused with an error naming what was wrong, never a panic.
#[test]
fn bad_clips_are_refused_clearly() {
    if !have("ffmpeg") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = AudioSettings::default();
    let w = webm(dir.path(), 2.0);
    // WebM declares 2 s in its Info; half the file is "truncated".
    expect_err(prepare(&w[..w.len() / 2], Some("webm"), &s), "truncated");
    // The header alone: no Tracks yet, or no packets.
    for cut in [8, 40, 200] {
        let e = prepare(&w[..cut], Some("webm"), &s).unwrap_err();
        assert!(
            matches!(
                e,
                AudioError::NotAudio(_) | AudioError::Corrupt(_) | AudioError::NoSamples
            ),
            "{cut}: {e}"
        );
    }
    // Over the duration limit.
    let short = AudioSettings {
        max_duration: std::time::Duration::from_secs(1),
        ..AudioSettings::default()
    };
    expect_err(prepare(&w, Some("webm"), &short), "longer than the limit");
    let m4a = clip(dir.path(), "t.m4a", 1000, 2.0, 1, &["-c:a", "aac"]);
    expect_err(prepare(&m4a, Some("m4a"), &short), "longer than the limit");
    let ogg = clip(dir.path(), "t.opus", 1000, 2.0, 1, &["-c:a", "libopus"]);
    expect_err(prepare(&ogg, Some("opus"), &short), "longer than the limit");
    // Over the byte limit.
    let tiny = AudioSettings {
        max_bytes: 1000,
        ..AudioSettings::default()
    };
    expect_err(prepare(&w, Some("webm"), &tiny), "more than the limit");
    // 5.1 Opus (a multistream): named as unsupported.
    let surround = clip(
        dir.path(),
        "s.webm",
        1000,
        0.5,
        6,
        &["-c:a", "libopus", "-mapping_family", "1"],
    );
    expect_err(prepare(&surround, None, &s), "6 channels");
    // MP4 with its sample table cut off.
    expect_err(prepare(&m4a[..m4a.len() / 3], Some("m4a"), &s), "");
    // A WebM whose TimestampScale is 0 (symphonia's demuxer panics on it).
    let mut zero = w.clone();
    let at = zero
        .windows(4)
        .position(|x| x == [0x2a, 0xd7, 0xb1, 0x83])
        .expect("TimestampScale");
    zero[at + 4..at + 7].copy_from_slice(&[0, 0, 0]);
    let e = prepare(&zero, None, &s).unwrap_err().to_string();
    assert!(e.contains("corrupt") || e.contains("recognised"), "{e}");
    // Each file overwritten with garbage after its header, and cut at many
    // points: errors or audio, never a panic or a hang.
    for (name, f) in [("webm", &w), ("m4a", &m4a), ("opus", &ogg)] {
        let mut g = f.to_vec();
        let mut seed = 0x9e37_79b9u32;
        for b in g.iter_mut().skip(300).step_by(7) {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            *b = seed as u8;
        }
        let _ = prepare(&g, Some(name), &s);
        for cut in (1..f.len()).step_by(f.len() / 23 + 1) {
            let _ = prepare(&f[..cut], Some(name), &s);
        }
    }
}

/// Opus in WebM (as ffmpeg writes it and as MediaRecorder streams it) and
/// in Ogg, AAC-LC in M4A and ADTS, stereo and mono, all come out as 8 kHz
/// mono 1 kHz, 2 s long, named by container and codec.
#[test]
fn every_clip_format_decodes_to_the_tone() {
    if !have("ffmpeg") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = AudioSettings::default();
    let w = webm(dir.path(), 2.0);
    let recorder = as_media_recorder(&w);
    assert_ne!(recorder, w);
    let cases = [
        ("webm", w.clone(), "webm/opus", 1),
        ("webm", recorder, "webm/opus", 1),
        (
            "ogg",
            clip(dir.path(), "t.ogg", 1000, 2.0, 2, &["-c:a", "libopus"]),
            "ogg/opus",
            2,
        ),
        (
            "m4a",
            clip(dir.path(), "t.m4a", 1000, 2.0, 2, &["-c:a", "aac"]),
            "mp4/aac",
            2,
        ),
        (
            "aac",
            clip(dir.path(), "t.aac", 1000, 2.0, 1, &["-c:a", "aac"]),
            "aac",
            1,
        ),
    ];
    for (i, (ext, bytes, fmt, ch)) in cases.into_iter().enumerate() {
        // The extension is only a hint: without it the probe finds the same.
        for hint in [Some(ext), None] {
            let p = prepare(&bytes, hint, &s).unwrap_or_else(|e| panic!("{i} {ext}: {e}"));
            assert_eq!(p.format, fmt, "{i} {ext}");
            assert_eq!(p.source_channels, ch, "{i} {ext}");
            let secs = p.pcm.len() as f64 / 8000.0;
            assert!((1.95..2.1).contains(&secs), "{i} {ext}: {secs} s");
            assert_eq!(dominant(&p.pcm), 1000.0, "{i} {ext}");
        }
    }
}

/// Another tone and rate: a 16 kHz mono Opus voice clip (what a phone
/// records) keeps its frequency.
#[test]
fn opus_at_16_khz_keeps_its_frequency() {
    if !have("ffmpeg") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let b = clip(
        dir.path(),
        "v.ogg",
        750,
        1.0,
        1,
        &["-ar", "16000", "-c:a", "libopus", "-application", "voip"],
    );
    let p = prepare(&b, None, &AudioSettings::default()).unwrap();
    assert_eq!(p.format, "ogg/opus");
    assert_eq!(dominant(&p.pcm), 750.0);
}

/// A real recording: Chromium's MediaRecorder (`audio/webm;codecs=opus`,
/// the fake microphone playing 700 Hz for 3 s, made by the browser e2e
/// test). Segment and Cluster sizes are the 8-byte unknown value
/// `01 ff ff ff ff ff ff ff` and there is no Duration: symphonia alone
/// reads no packet of it.
#[test]
fn chromium_media_recorder_clip() {
    let b = include_bytes!("../../../testdata/chromium_mediarecorder_opus.webm");
    assert_eq!(&b[..4], &[0x1a, 0x45, 0xdf, 0xa3]);
    let p = prepare(b, None, &AudioSettings::default()).unwrap();
    assert_eq!(p.format, "webm/opus");
    assert_eq!((p.source_rate, p.source_channels), (48_000, 1));
    let secs = p.pcm.len() as f64 / 8000.0;
    assert!((2.8..3.3).contains(&secs), "{secs} s");
    // 700 Hz is between the 125 Hz bins of `dominant`: 625 or 750.
    let f = dominant(&p.pcm[4000..]);
    assert!((625.0..=750.0).contains(&f), "{f} Hz");
    // Cut in the middle of a block: the part before decodes, no panic.
    let cut = prepare(&b[..b.len() / 2], None, &AudioSettings::default()).unwrap();
    assert!(cut.pcm.len() < p.pcm.len());
}
