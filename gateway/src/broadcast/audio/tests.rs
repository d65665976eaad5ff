//! Pipeline tests on real encoder output: test files are made at test time
//! with ffmpeg (skipped with a message when it is missing, unless `CI=true`),
//! plus bad-input and mutation tests on WAVs generated here.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

pub(super) fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg(if tool == "ffmpeg" {
            "-version"
        } else {
            "--version"
        })
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{tool} is required in CI (scripts/install-peers)"
        );
        eprintln!("SKIPPED: {tool} is not installed (scripts/install-peers installs it)");
    }
    ok
}

/// Makes a 44.1 kHz stereo file of a `freq` Hz sine with ffmpeg.
fn ffmpeg_tone(dir: &Path, name: &str, freq: u32, secs: f64, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let st = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!(
            "sine=frequency={freq}:sample_rate=44100:duration={secs}"
        ))
        .args(["-ac", "2"])
        .args(extra)
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success(), "ffmpeg failed for {name}");
    out
}

/// Goertzel power of `freq` in `x` at 8 kHz.
fn goertzel(x: &[i16], freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / f64::from(RATE);
    let c = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for v in x {
        let s = f64::from(*v) + c * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    s1 * s1 + s2 * s2 - c * s1 * s2
}

pub(super) fn dominant(x: &[i16]) -> f64 {
    (1..32)
        .map(|k| f64::from(k) * 125.0)
        .max_by(|a, b| goertzel(x, *a).total_cmp(&goertzel(x, *b)))
        .unwrap()
}

fn lufs(pcm: &[i16]) -> f64 {
    let f: Vec<f32> = pcm.iter().map(|v| f32::from(*v) / 32767.0).collect();
    loudness::integrated_lufs(&f, RATE).unwrap()
}

/// MP3, WAV, OGG/Vorbis and FLAC of a 44.1 kHz stereo 1 kHz tone all come
/// out as 8 kHz mono 1 kHz at the loudness target (±1 LU), the right length.
#[test]
fn every_format_decodes_to_the_tone_at_the_target() {
    if !have("ffmpeg") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = AudioSettings::default();
    for (name, extra, fmt) in [
        ("t.mp3", &["-c:a", "libmp3lame", "-b:a", "64k"][..], "mp3"),
        ("t.wav", &[][..], "wav"),
        ("t.ogg", &["-c:a", "libvorbis"][..], "ogg/vorbis"),
        ("t.flac", &[][..], "flac"),
    ] {
        let path = ffmpeg_tone(dir.path(), name, 1000, 2.0, extra);
        let p = load_file_with(&path, &s).unwrap();
        assert_eq!(p.format, fmt, "{name}");
        assert_eq!((p.source_rate, p.source_channels), (44_100, 2), "{name}");
        let secs = p.pcm.len() as f64 / 8000.0;
        assert!((1.95..2.1).contains(&secs), "{name}: {secs} s");
        assert_eq!(dominant(&p.pcm), 1000.0, "{name}");
        let l = lufs(&p.pcm);
        assert!((l - s.loudness_lufs).abs() <= 1.0, "{name}: {l} LUFS");
        // The plain API returns the same PCM.
        assert_eq!(load_file(&path).unwrap(), p.pcm, "{name}");
    }
}

/// A different loudness target in the settings is honoured.
#[test]
fn loudness_target_is_configurable() {
    let tone: Vec<i16> = (0..16_000)
        .map(|i| {
            (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * f64::from(i) / 16_000.0).sin()) as i16
        })
        .collect();
    let wav = wav_bytes(&tone, 16_000);
    for target in [-23.0, -16.0, -10.0] {
        let s = AudioSettings {
            loudness_lufs: target,
            ..AudioSettings::default()
        };
        let p = prepare(&wav, Some("wav"), &s).unwrap();
        assert!((lufs(&p.pcm) - target).abs() <= 1.0);
        assert_eq!(p.pcm.len(), 8000);
    }
}

fn expect_err(r: Result<Prepared, AudioError>, want: &str) -> String {
    let e = r.expect_err(want).to_string();
    assert!(e.contains(want), "wanted `{want}` in `{e}`");
    e
}

/// Zero-length, non-audio, huge, too long, silent, header-only,
/// truncated and corrupt inputs are refused with a clear error.
#[test]
fn bad_uploads_are_refused_clearly() {
    let s = AudioSettings::default();
    let tone: Vec<i16> = (0..16_000)
        .map(|i| ((i % 40) * 500 - 10_000) as i16)
        .collect();
    let wav = wav_bytes(&tone, 16_000);
    expect_err(prepare(&[], None, &s), "empty");
    expect_err(
        prepare(
            "各位村民请注意 this is a text file\n".as_bytes(),
            Some("mp3"),
            &s,
        ),
        "not a recognised audio file",
    );
    expect_err(
        prepare(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", None, &s),
        "not a recognised audio file",
    );
    let small = AudioSettings {
        max_bytes: 1024,
        ..AudioSettings::default()
    };
    expect_err(
        prepare(&wav, None, &small),
        "more than the limit of 1024 bytes",
    );
    let short = AudioSettings {
        max_duration: std::time::Duration::from_millis(500),
        ..AudioSettings::default()
    };
    expect_err(prepare(&wav, None, &short), "longer than the limit");
    expect_err(prepare(&wav_bytes(&[0; 16_000], 8000), None, &s), "silent");
    expect_err(prepare(&wav_bytes(&[], 8000), None, &s), "no audio samples");
    // Header says 1 s, the data stops after 0.25 s.
    let cut = &wav[..44 + 8000];
    expect_err(prepare(cut, Some("wav"), &s), "truncated");
    // A RIFF header and nothing else.
    expect_err(prepare(&wav[..20], Some("wav"), &s), "");
}

/// Real encoder files cut short or overwritten in the middle.
#[test]
fn truncated_and_corrupt_encoded_files() {
    if !have("ffmpeg") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = AudioSettings::default();
    let flac = std::fs::read(ffmpeg_tone(dir.path(), "t.flac", 1000, 2.0, &[])).unwrap();
    let e = expect_err(
        prepare(&flac[..flac.len() / 2], Some("flac"), &s),
        "truncated",
    );
    assert!(e.contains("announces 2.00 s"), "{e}");
    let mp3 = std::fs::read(ffmpeg_tone(
        dir.path(),
        "t.mp3",
        1000,
        2.0,
        &["-c:a", "libmp3lame"],
    ))
    .unwrap();
    // The Xing header gives the frame count, so a cut MP3 is noticed.
    expect_err(prepare(&mp3[..mp3.len() / 2], Some("mp3"), &s), "truncated");
    let mut wrecked = flac.clone();
    let n = wrecked.len();
    for b in &mut wrecked[n / 4..n / 2] {
        *b = 0x5a;
    }
    let r = prepare(&wrecked, Some("flac"), &s);
    assert!(
        matches!(r, Err(AudioError::Corrupt(_) | AudioError::Truncated(_))),
        "{r:?}"
    );
    // A codec we do not build in (ADPCM in WAV).
    let adpcm = ffmpeg_tone(dir.path(), "adpcm.wav", 1000, 0.5, &["-c:a", "adpcm_ms"]);
    let e = load_file(&adpcm).unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("adpcm.wav") && msg.contains("unsupported"),
        "{msg}"
    );
}

/// Errors from `load_file` name the file.
#[test]
fn load_file_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("notice.mp3");
    std::fs::write(&p, b"").unwrap();
    let e = format!("{:#}", load_file(&p).unwrap_err());
    assert!(e.contains("notice.mp3") && e.contains("empty"), "{e}");
    let e = format!(
        "{:#}",
        load_file(&dir.path().join("missing.wav")).unwrap_err()
    );
    assert!(
        e.contains("missing.wav") && e.contains("cannot read"),
        "{e}"
    );
}

/// Random byte mutations and truncations of a small WAV never panic.
#[test]
fn mutated_wavs_do_not_panic() {
    let s = AudioSettings::default();
    let tone: Vec<i16> = (0..1600)
        .map(|i| ((i % 20) * 1000 - 10_000) as i16)
        .collect();
    let mut base = wav_bytes(&tone, 16_000);
    // Stereo at 16 kHz, to exercise downmix and resampling.
    base[22] = 2;
    base[28..32].copy_from_slice(&64_000u32.to_le_bytes());
    base[32] = 4;
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..400 {
        let mut b = base.clone();
        let n = 1 + (next() % 6) as usize;
        for _ in 0..n {
            // Mostly the header, where parsers are fragile.
            let r = next();
            let pos = if r % 3 == 0 {
                (r >> 8) as usize % b.len()
            } else {
                (r >> 8) as usize % 48
            };
            b[pos] = (r >> 40) as u8;
        }
        if i % 4 == 0 {
            let len = (next() as usize) % b.len();
            b.truncate(len);
        }
        let _ = prepare(&b, Some("wav"), &s);
    }
}

/// The asset store keeps the original and the 8 kHz WAV under the sha256,
/// de-duplicates, and stores nothing for a refused upload.
#[test]
fn asset_store_is_content_addressed() {
    let dir = tempfile::tempdir().unwrap();
    let store = assets::AssetStore::open(dir.path(), AudioSettings::default()).unwrap();
    let tone: Vec<i16> = (0..22_050)
        .map(|i| {
            (6000.0 * (2.0 * std::f64::consts::PI * 1000.0 * f64::from(i) / 22_050.0).sin()) as i16
        })
        .collect();
    let wav = wav_bytes(&tone, 22_050);
    let a = store.import(&wav, "notice.wav").unwrap();
    assert_eq!(a.sha256.len(), 64);
    assert_eq!(a.duration_ms, 1000);
    let d = dir.path().join("assets");
    assert_eq!(
        std::fs::read(d.join(format!("{}.orig", a.sha256))).unwrap(),
        wav
    );
    let pcm = store.pcm(&a.sha256).unwrap();
    assert_eq!(pcm.len(), 8000);
    assert_eq!(dominant(&pcm), 1000.0);
    let again = store.import(&wav, "other-name.wav").unwrap();
    assert_eq!(again, a, "same bytes, same asset");
    assert_eq!(store.list().unwrap(), vec![a.clone()]);
    assert!(store.import(b"not audio at all", "x.mp3").is_err());
    assert_eq!(
        std::fs::read_dir(&d).unwrap().count(),
        3,
        "nothing stored for a refused upload"
    );
    assert!(store.get("../../etc/passwd").is_err());
    assert!(store.get(&"0".repeat(64)).unwrap().is_none());
}

/// espeak-ng's Mandarin voice speaks a village notice: audible, plausible
/// length, at the loudness target.
#[test]
fn mandarin_tts_with_espeak_ng() {
    if !have("espeak-ng") {
        return;
    }
    let text = "各位村民请注意，今晚有大风，请关好门窗。";
    let p = tts_with(text, &AudioSettings::default()).unwrap();
    let secs = p.pcm.len() as f64 / 8000.0;
    assert!(
        (1.5..15.0).contains(&secs),
        "{secs} s for {} characters",
        text.chars().count()
    );
    assert!((lufs(&p.pcm) + 16.0).abs() <= 1.0, "{} LUFS", lufs(&p.pcm));
    let e = tts(&"很".repeat(501)).unwrap_err().to_string();
    assert!(e.contains("501 characters"), "{e}");
}

/// A WAV header declaring `rate` Hz × `secs` s × `channels` of 16-bit PCM,
/// followed by only 4 KiB of data: what matters is that it is refused on
/// the declaration, without decoding.
fn declared_wav(rate: u32, channels: u16, secs: u32) -> Vec<u8> {
    let block = 2 * u32::from(channels);
    let data_len = rate * secs * block;
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36u32.wrapping_add(data_len)).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * block).to_le_bytes());
    out.extend_from_slice(&(block as u16).to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(&[0u8; 4096]);
    out
}

/// 384 kHz × 890 s (the upload), 192 kHz × 890 s (over the decode
/// budget) and 16 channels are refused from the header, naming the limit,
/// before a single packet is decoded.
#[test]
fn declared_parameters_over_the_limits_are_refused_before_decoding() {
    let limits = decode::DecodeLimits::for_duration(std::time::Duration::from_secs(900));
    for (wav, want) in [
        (declared_wav(384_000, 1, 890), "sample rate 384000 Hz"),
        (declared_wav(192_000, 1, 890), "decode budget"),
        (declared_wav(8000, 16, 10), "16 channels"),
    ] {
        let mut packets = 0;
        let e = decode::decode(&wav, Some("wav"), &limits, RATE, &mut packets)
            .expect_err(want)
            .to_string();
        assert!(
            e.contains(want) && e.contains("limit"),
            "wanted `{want}` in `{e}`"
        );
        assert_eq!(packets, 0, "{want}: decoded {packets} packets first");
    }
    // Through the pipeline too.
    let e = prepare(
        &declared_wav(384_000, 1, 890),
        None,
        &AudioSettings::default(),
    )
    .expect_err("384 kHz")
    .to_string();
    assert!(e.contains("sample rate"), "{e}");
}

/// The case itself: a FLAC of 890 s of silence at 384 kHz (made by
/// `ffmpeg -f lavfi -i anullsrc=r=384000:cl=mono -t 890 -c:a flac`, 159 KiB)
/// is refused from its header, before a single packet is decoded.
#[test]
fn a_flac_declaring_384_khz_for_890_s_is_refused_before_decoding() {
    let limits = decode::DecodeLimits::for_duration(std::time::Duration::from_secs(900));
    let mut packets = 0;
    let e = decode::decode(
        include_bytes!("../../../testdata/flac_384khz_890s_silence.flac"),
        Some("flac"),
        &limits,
        RATE,
        &mut packets,
    )
    .expect_err("384 kHz FLAC")
    .to_string();
    assert!(
        e.contains("sample rate 384000 Hz") && e.contains("limit"),
        "{e}"
    );
    assert_eq!(packets, 0, "decoded {packets} packets first");
}

/// A FLAC written to a pipe declares no length: the budget is enforced
/// while decoding, stopping within a few packets of it.
#[test]
fn budget_is_enforced_while_decoding() {
    if !have("ffmpeg") {
        return;
    }
    let out = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "anullsrc=r=96000:cl=mono",
            "-t",
            "30",
        ])
        .args(["-c:a", "flac", "-f", "flac", "pipe:1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let limits = decode::DecodeLimits {
        sample_budget: 96_000 * 5,
        ..decode::DecodeLimits::for_duration(std::time::Duration::from_secs(900))
    };
    let mut packets = 0;
    let e = decode::decode(&out.stdout, Some("flac"), &limits, RATE, &mut packets)
        .expect_err("budget")
        .to_string();
    assert!(e.contains("decode budget"), "{e}");
    // 5 s of 96 kHz in FLAC blocks of at least 1152 frames, plus one.
    let bound = 96_000 * 5 / 1152 + 2;
    assert!(
        packets > 0 && packets <= bound,
        "{packets} packets (bound {bound})"
    );
    // Within the budget the same file decodes, at 8 kHz.
    let mut packets = 0;
    let d = decode::decode(
        &out.stdout,
        Some("flac"),
        &decode::DecodeLimits::for_duration(std::time::Duration::from_secs(900)),
        RATE,
        &mut packets,
    )
    .unwrap();
    assert!(
        (d.samples.len() as i64 - 30 * 8000).abs() < 100,
        "{}",
        d.samples.len()
    );
}
