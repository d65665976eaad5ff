//! Text to speech through a configured command (espeak-ng with its Mandarin
//! voice `cmn` by default).
//!
//! The command is run directly, never through a shell: the text is one
//! argument (the `{text}` placeholder), with control characters replaced and
//! a leading `-` guarded so it cannot be read as an option. The command must
//! write a WAV file to stdout within the timeout; streamed WAV headers (size
//! fields of `0x7fff_f000` or `0xffff_ffff`, as espeak-ng writes to a pipe)
//! are fixed up to the real length.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;

use super::{AudioError, AudioSettings};

/// The placeholder in `tts_command` replaced by the text.
pub const PLACEHOLDER: &str = "{text}";

/// Checks and cleans announcement text: trimmed, non-empty, at most
/// `max_chars` characters, control characters turned into spaces, and a
/// leading `-` guarded.
pub fn clean_text(text: &str, max_chars: usize) -> Result<String, AudioError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(AudioError::Tts("the text is empty".into()));
    }
    let n = t.chars().count();
    if n > max_chars {
        return Err(AudioError::Tts(format!(
            "the text has {n} characters, more than the limit of {max_chars}"
        )));
    }
    let mut out: String = t
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if out.starts_with('-') {
        out.insert(0, ' ');
    }
    Ok(out)
}

/// The argv for `text` (placeholders substituted).
pub fn command_line(command: &[String], text: &str) -> Result<Vec<String>, AudioError> {
    if command.is_empty() {
        return Err(AudioError::Tts("tts_command is empty".into()));
    }
    if !command.iter().skip(1).any(|a| a.contains(PLACEHOLDER)) {
        return Err(AudioError::Tts(format!(
            "tts_command has no `{PLACEHOLDER}` argument"
        )));
    }
    Ok(command
        .iter()
        .enumerate()
        .map(|(i, a)| {
            if i == 0 {
                a.clone()
            } else {
                a.replace(PLACEHOLDER, text)
            }
        })
        .collect())
}

/// Runs the TTS command for `text` and returns the WAV it wrote.
pub fn synthesize(text: &str, s: &AudioSettings) -> Result<Vec<u8>, AudioError> {
    let text = clean_text(text, s.tts_max_chars)?;
    let argv = command_line(&s.tts_command, &text)?;
    let program = &argv[0];
    let mut child = Command::new(program)
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| AudioError::Tts(format!("cannot start `{program}`: {e}")))?;
    let cap = s.max_bytes;
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let r = stdout
            .map(|o| o.take(cap.saturating_add(1)).read_to_end(&mut out))
            .unwrap_or(Ok(0));
        let _ = tx.send(r.map(|_| out));
    });
    let err_reader = std::thread::spawn(move || {
        let mut e = Vec::new();
        if let Some(se) = stderr {
            let _ = se.take(4096).read_to_end(&mut e);
        }
        String::from_utf8_lossy(&e).trim().to_string()
    });
    let out = match rx.recv_timeout(s.tts_timeout) {
        Ok(r) => r,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(AudioError::Tts(format!(
                "`{program}` did not finish within {} s",
                s.tts_timeout.as_secs_f64()
            )));
        }
    };
    let status = child
        .wait()
        .map_err(|e| AudioError::Tts(format!("`{program}`: {e}")))?;
    let stderr = err_reader.join().unwrap_or_default();
    let mut out = out.map_err(|e| AudioError::Tts(format!("reading `{program}` output: {e}")))?;
    if !status.success() {
        return Err(AudioError::Tts(format!(
            "`{program}` failed ({status}): {stderr}"
        )));
    }
    if out.len() as u64 > cap {
        let _ = child.kill();
        return Err(AudioError::Tts(format!(
            "`{program}` wrote more than {cap} bytes"
        )));
    }
    if out.is_empty() {
        return Err(AudioError::Tts(format!(
            "`{program}` wrote nothing: {stderr}"
        )));
    }
    fix_streamed_wav(&mut out);
    Ok(out)
}

/// Rewrites the RIFF and `data` sizes of a WAV written to a pipe (where the
/// writer could not seek back) to match the bytes present. Non-WAV input is
/// left alone.
pub fn fix_streamed_wav(wav: &mut [u8]) {
    if wav.len() < 12 || &wav[0..4] != b"RIFF" || &wav[8..12] != b"WAVE" {
        return;
    }
    let riff = (wav.len() - 8) as u32;
    wav[4..8].copy_from_slice(&riff.to_le_bytes());
    let mut pos = 12usize;
    while pos + 8 <= wav.len() {
        let id = [wav[pos], wav[pos + 1], wav[pos + 2], wav[pos + 3]];
        let size = u32::from_le_bytes([wav[pos + 4], wav[pos + 5], wav[pos + 6], wav[pos + 7]]);
        let body = pos + 8;
        if &id == b"data" {
            let avail = (wav.len() - body) as u32;
            if size > avail {
                let fixed = avail & !1;
                wav[pos + 4..pos + 8].copy_from_slice(&fixed.to_le_bytes());
            }
            return;
        }
        pos = body.saturating_add(size as usize + (size as usize & 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_checked_and_guarded() {
        assert!(clean_text("  ", 10).is_err());
        let e = clean_text("一二三四五六", 5).unwrap_err().to_string();
        assert!(
            e.contains("6 characters") && e.contains("limit of 5"),
            "{e}"
        );
        assert_eq!(clean_text("-v en", 10).unwrap(), " -v en");
        assert_eq!(clean_text("a\u{0}b\nc", 10).unwrap(), "a b c");
    }

    #[test]
    fn placeholder_is_one_argument() {
        let cmd: Vec<String> = ["espeak-ng", "-v", "cmn", "--stdout", "{text}"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let argv = command_line(&cmd, "a; rm -rf / `x` $(y)").unwrap();
        assert_eq!(argv.len(), 5);
        assert_eq!(argv[4], "a; rm -rf / `x` $(y)");
        assert!(command_line(&cmd[..4], "x").is_err());
        assert!(command_line(&[], "x").is_err());
    }

    #[test]
    fn streamed_header_is_fixed() {
        let mut w = crate::broadcast::audio::wav_bytes(&[1, 2, 3], 8000);
        w[40..44].copy_from_slice(&0x7fff_f000u32.to_le_bytes());
        w[4..8].copy_from_slice(&0xffff_ffffu32.to_le_bytes());
        fix_streamed_wav(&mut w);
        assert_eq!(w, crate::broadcast::audio::wav_bytes(&[1, 2, 3], 8000));
        let mut junk = b"hello".to_vec();
        fix_streamed_wav(&mut junk);
        assert_eq!(junk, b"hello");
    }

    #[test]
    fn a_missing_or_failing_command_is_a_clear_error() {
        let mut s = AudioSettings {
            tts_command: vec!["/nonexistent/tts".into(), "{text}".into()],
            ..AudioSettings::default()
        };
        let e = synthesize("你好", &s).unwrap_err().to_string();
        assert!(e.contains("cannot start `/nonexistent/tts`"), "{e}");
        s.tts_command = vec![
            "sh".into(),
            "-c".into(),
            "echo bad >&2; exit 3".into(),
            "{text}".into(),
        ];
        let e = synthesize("你好", &s).unwrap_err().to_string();
        assert!(e.contains("failed") && e.contains("bad"), "{e}");
    }

    #[test]
    fn a_hanging_command_is_killed_at_the_timeout() {
        let s = AudioSettings {
            tts_command: vec!["sh".into(), "-c".into(), "sleep 30".into(), "{text}".into()],
            tts_timeout: std::time::Duration::from_millis(200),
            ..AudioSettings::default()
        };
        let e = synthesize("x", &s).unwrap_err().to_string();
        assert!(e.contains("did not finish"), "{e}");
    }
}
