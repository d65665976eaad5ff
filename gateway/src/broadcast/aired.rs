//! What aired is kept: every emergency broadcast and every live page is
//! recorded as it was sent to the horns — 8 kHz mono, G.711 µ-law in a WAV
//! file under `<data_dir>/recordings/` (directory 0700, files 0600) — with a
//! row in the store (component `recordings`, keyed by the broadcast's id, so
//! the broadcast's audit entry and record link to it).
//!
//! A write error (a full disk, an unwritable directory) never stops the
//! broadcast: it is logged, the recording is marked `failed` with the
//! reason, and later pushes are refused at once. Retention:
//! [`Aired::prune`] (`[broadcast] recordings_keep_days`,
//! `recordings_max_mb`), run hourly by [`prune_every`].
//!
//! ```text
//! Aired::start(id, kind) ─► AiredWriter::push(pcm 8 kHz)… ─► finish() ─► AiredInfo
//! ```

use std::fs::File;
use std::io::{BufWriter, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::base::clock::Clock;
use crate::base::error::Error;
use crate::store::Store;
use crate::store::recordings::Recording;

/// The folder under the data directory.
pub const DIR: &str = "recordings";
/// Longest recording: 4 hours of 8 kHz samples (about 115 MB).
pub const MAX_SAMPLES: u64 = 4 * 3600 * 8000;
/// Bytes of the WAV header written before the samples.
const HEADER_LEN: u64 = 58;

/// What is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AiredKind {
    /// An emergency broadcast, as rendered for the horns.
    Emergency,
    /// A live page (实时喊话), as sent to the horns.
    LivePage,
}

impl AiredKind {
    /// The name in the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            AiredKind::Emergency => "emergency",
            AiredKind::LivePage => "live-page",
        }
    }
}

/// A finished recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AiredInfo {
    /// The broadcast's id (also the recording's).
    pub id: String,
    /// The WAV file.
    pub path: PathBuf,
    /// Length in milliseconds.
    pub duration_ms: u64,
    /// File size.
    pub bytes: u64,
}

/// The recorder: a cloneable handle over the store and the folder.
#[derive(Clone)]
pub struct Aired {
    store: Store,
    dir: PathBuf,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Aired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aired").field("dir", &self.dir).finish()
    }
}

fn io_err(what: &Path, e: &std::io::Error) -> Error {
    Error::unavailable(format!("recording {}: {e}", what.display()))
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

impl Aired {
    /// The recorder over `<data_dir>/recordings` (created 0700).
    pub fn open(store: Store, data_dir: &Path, clock: Arc<dyn Clock>) -> Result<Aired, Error> {
        let dir = data_dir.join(DIR);
        std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, &e))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io_err(&dir, &e))?;
        Ok(Aired { store, dir, clock })
    }

    /// The file of a recording.
    pub fn path_of(&self, r: &Recording) -> PathBuf {
        self.dir.join(&r.file)
    }

    /// The store the rows are in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Starts recording `broadcast_id`. Refused (409) when it already has
    /// a recording; a file that cannot be created marks the row `failed`
    /// and is an error (the broadcast goes on).
    pub fn start(&self, broadcast_id: &str, kind: AiredKind) -> Result<AiredWriter, Error> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if broadcast_id.is_empty()
            || broadcast_id.len() > 128
            || broadcast_id.starts_with('.')
            || !broadcast_id.chars().all(ok_char)
        {
            return Err(Error::invalid(format!(
                "recording: broadcast id {broadcast_id:?} is not 1-128 of [A-Za-z0-9._-]"
            )));
        }
        let file = format!("{broadcast_id}.wav");
        let now = self.clock.now_ms();
        let fresh = self
            .store
            .recording_start(broadcast_id, kind.as_str(), &file, &rfc3339(now), now)
            .map_err(|e| Error::internal(format!("recording {broadcast_id}: {e}")))?;
        if !fresh {
            return Err(Error::conflict(format!(
                "broadcast {broadcast_id} is already recorded"
            )));
        }
        let mut w = AiredWriter {
            aired: self.clone(),
            id: broadcast_id.to_string(),
            part: self.dir.join(format!("{file}.part")),
            path: self.dir.join(&file),
            out: None,
            samples: 0,
            ended: false,
        };
        match w.open() {
            Ok(f) => {
                w.out = Some(f);
                Ok(w)
            }
            Err(e) => {
                w.fail(&e);
                Err(e)
            }
        }
    }

    /// Removes finished recordings older than `keep`, then the oldest
    /// until the rest fit in `max_bytes`; returns how many went.
    pub fn prune(&self, keep: Duration, max_bytes: u64) -> Result<usize, Error> {
        let before = self.clock.now_ms() - keep.as_millis() as i64;
        let files = self
            .store
            .recordings_prune(before, i64::try_from(max_bytes).unwrap_or(i64::MAX))
            .map_err(|e| Error::internal(format!("recordings prune: {e}")))?;
        for f in &files {
            for p in [self.dir.join(f), self.dir.join(format!("{f}.part"))] {
                match std::fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(file = %p.display(), error = %e, "recording not removed")
                    }
                }
            }
        }
        if !files.is_empty() {
            tracing::info!(removed = files.len(), "recordings pruned");
        }
        Ok(files.len())
    }
}

/// Prunes `aired` every `every` until `shutdown` (and once at once).
pub async fn prune_every(
    aired: Aired,
    keep: Duration,
    max_bytes: u64,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {
                let a = aired.clone();
                let r = tokio::task::spawn_blocking(move || a.prune(keep, max_bytes)).await;
                if let Ok(Err(e)) = r {
                    tracing::warn!(error = %e, "recordings prune failed");
                }
            }
        }
    }
}

/// One recording being written.
pub struct AiredWriter {
    aired: Aired,
    id: String,
    part: PathBuf,
    path: PathBuf,
    /// `None` once failed.
    out: Option<BufWriter<File>>,
    samples: u64,
    ended: bool,
}

impl std::fmt::Debug for AiredWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AiredWriter")
            .field("id", &self.id)
            .field("samples", &self.samples)
            .finish_non_exhaustive()
    }
}

impl AiredWriter {
    fn open(&self) -> Result<BufWriter<File>, Error> {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&self.part)
            .map_err(|e| io_err(&self.part, &e))?;
        let mut w = BufWriter::new(f);
        w.write_all(&wav_header(0))
            .map_err(|e| io_err(&self.part, &e))?;
        Ok(w)
    }

    /// Marks the recording failed (logged), closes and removes the file.
    fn fail(&mut self, e: &Error) {
        self.ended = true;
        self.out = None;
        let _ = std::fs::remove_file(&self.part);
        tracing::warn!(broadcast = %self.id, error = %e, "recording failed; the broadcast goes on");
        let now = self.aired.clock.now_ms();
        let samples = i64::try_from(self.samples).unwrap_or(i64::MAX);
        if let Err(se) =
            self.aired
                .store
                .recording_end(&self.id, &rfc3339(now), samples, 0, Some(e.message()))
        {
            tracing::warn!(broadcast = %self.id, error = %se, "recording state not stored");
        }
    }

    /// Appends 8 kHz PCM. After a write error every push is refused.
    pub fn push(&mut self, pcm_8k: &[i16]) -> Result<(), Error> {
        let Some(out) = self.out.as_mut() else {
            return Err(Error::unavailable(format!(
                "recording {} has failed",
                self.id
            )));
        };
        if self.samples + pcm_8k.len() as u64 > MAX_SAMPLES {
            let e = Error::invalid(format!(
                "recording {} longer than {} s",
                self.id,
                MAX_SAMPLES / 8000
            ));
            self.fail(&e);
            return Err(e);
        }
        let bytes: Vec<u8> = pcm_8k
            .iter()
            .map(|s| device_drivers::g711::linear_to_ulaw(*s))
            .collect();
        if let Err(e) = out.write_all(&bytes) {
            let e = io_err(&self.part, &e);
            self.fail(&e);
            return Err(e);
        }
        self.samples += pcm_8k.len() as u64;
        Ok(())
    }

    /// Completes the file (header, sync, rename) and marks it `done`.
    pub fn finish(mut self) -> Result<AiredInfo, Error> {
        let Some(out) = self.out.take() else {
            return Err(Error::unavailable(format!(
                "recording {} has failed",
                self.id
            )));
        };
        match self.complete(out) {
            Ok(bytes) => {
                self.ended = true;
                let now = self.aired.clock.now_ms();
                let samples = i64::try_from(self.samples).unwrap_or(i64::MAX);
                self.aired
                    .store
                    .recording_end(&self.id, &rfc3339(now), samples, bytes as i64, None)
                    .map_err(|e| Error::internal(format!("recording {}: {e}", self.id)))?;
                Ok(AiredInfo {
                    id: self.id.clone(),
                    path: self.path.clone(),
                    duration_ms: self.samples / 8,
                    bytes,
                })
            }
            Err(e) => {
                self.fail(&e);
                Err(e)
            }
        }
    }

    fn complete(&self, out: BufWriter<File>) -> Result<u64, Error> {
        let err = |e: std::io::Error| io_err(&self.part, &e);
        let mut f = out.into_inner().map_err(|e| err(e.into_error()))?;
        f.seek(SeekFrom::Start(0)).map_err(err)?;
        f.write_all(&wav_header(self.samples)).map_err(err)?;
        f.sync_all().map_err(err)?;
        std::fs::rename(&self.part, &self.path).map_err(err)?;
        Ok(HEADER_LEN + self.samples)
    }
}

impl Drop for AiredWriter {
    fn drop(&mut self) {
        if !self.ended {
            self.fail(&Error::internal("recording abandoned before its end"));
        }
    }
}

/// A WAV header for `samples` µ-law bytes at 8 kHz mono
/// (WAVE_FORMAT_MULAW with a `fact` chunk).
fn wav_header(samples: u64) -> [u8; HEADER_LEN as usize] {
    let n = u32::try_from(samples).unwrap_or(u32::MAX - HEADER_LEN as u32);
    let mut h = [0u8; HEADER_LEN as usize];
    let mut put = |at: usize, b: &[u8]| h[at..at + b.len()].copy_from_slice(b);
    put(0, b"RIFF");
    put(4, &(n + HEADER_LEN as u32 - 8).to_le_bytes());
    put(8, b"WAVE");
    put(12, b"fmt ");
    put(16, &18u32.to_le_bytes());
    put(20, &7u16.to_le_bytes()); // µ-law
    put(22, &1u16.to_le_bytes()); // mono
    put(24, &8000u32.to_le_bytes());
    put(28, &8000u32.to_le_bytes()); // bytes per second
    put(32, &1u16.to_le_bytes()); // block align
    put(34, &8u16.to_le_bytes()); // bits per sample
    put(36, &0u16.to_le_bytes()); // cbSize
    put(38, b"fact");
    put(42, &4u32.to_le_bytes());
    put(46, &n.to_le_bytes());
    put(50, b"data");
    put(54, &n.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::clock::ManualClock;

    const T0: i64 = 1_800_000_000_000;
    const DAY: i64 = 86_400_000;

    fn aired() -> (tempfile::TempDir, Aired, Arc<ManualClock>) {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("store");
        let clock = Arc::new(ManualClock::at(T0));
        let a = Aired::open(store, dir.path(), clock.clone()).expect("aired");
        (dir, a, clock)
    }

    fn row(a: &Aired, id: &str) -> Recording {
        a.store().recording(id).expect("row").expect("some")
    }

    /// A full disk (the file is /dev/full): the push that hits it fails,
    /// the recording is marked failed with the reason, later pushes and
    /// finish are refused without writing.
    #[test]
    fn a_full_disk_marks_the_recording_failed() {
        let (_d, a, _c) = aired();
        std::os::unix::fs::symlink("/dev/full", a.dir.join("b-full.wav.part")).expect("link");
        let mut w = a.start("b-full", AiredKind::Emergency).expect("start");
        let second = vec![1000i16; 8000];
        let mut failed = None;
        for _ in 0..4 {
            if let Err(e) = w.push(&second) {
                failed = Some(e);
                break;
            }
        }
        let e = failed.expect("a push fails on a full disk");
        assert!(e.message().contains("No space"), "{e}");
        assert!(w.push(&second).is_err());
        assert!(w.finish().is_err());
        let r = row(&a, "b-full");
        assert_eq!(r.state, "failed");
        assert!(
            r.error.as_deref().is_some_and(|m| m.contains("No space")),
            "{r:?}"
        );
    }

    /// A folder that cannot take the file: start fails, the row says why.
    #[test]
    fn an_unwritable_folder_fails_at_start_with_the_row_failed() {
        let (_d, a, _c) = aired();
        std::fs::remove_dir(&a.dir).expect("rmdir");
        std::fs::write(&a.dir, b"not a folder").expect("file");
        let e = a.start("b-1", AiredKind::LivePage).expect_err("no folder");
        assert!(e.message().contains("recordings"), "{e}");
        let r = row(&a, "b-1");
        assert_eq!((r.state.as_str(), r.kind.as_str()), ("failed", "live-page"));
    }

    /// Ids that would escape the folder are refused; a second recording of
    /// one broadcast is a conflict; a writer dropped unfinished is failed.
    #[test]
    fn bad_ids_twice_and_abandoned() {
        let (_d, a, _c) = aired();
        for id in ["", "../x", ".hidden", "a/b", &"x".repeat(129)] {
            assert!(a.start(id, AiredKind::Emergency).is_err(), "{id:?}");
        }
        let w = a.start("b-2", AiredKind::Emergency).expect("start");
        let e = a.start("b-2", AiredKind::Emergency).expect_err("twice");
        assert_eq!(e.kind(), crate::base::error::ErrorKind::Conflict);
        drop(w);
        assert_eq!(row(&a, "b-2").state, "failed");
        assert!(!a.dir.join("b-2.wav.part").exists());
    }

    /// 1.5 s of PCM → a 0600 µ-law WAV of 1.5 s that decodes back.
    #[test]
    fn a_recording_is_a_private_mulaw_wav_of_the_right_length() {
        let (_d, a, _c) = aired();
        let tone = device_drivers::g711::tone(1000.0, 1.5, 8000);
        let mut w = a.start("b-3", AiredKind::Emergency).expect("start");
        for chunk in tone.chunks(160) {
            w.push(chunk).expect("push");
        }
        let info = w.finish().expect("finish");
        assert_eq!(info.duration_ms, 1500);
        let bytes = std::fs::read(&info.path).expect("wav");
        assert_eq!(bytes.len() as u64, HEADER_LEN + 12_000);
        assert_eq!(info.bytes, bytes.len() as u64);
        assert_eq!(&bytes[0..4], b"RIFF");
        assert_eq!(u16::from_le_bytes([bytes[20], bytes[21]]), 7);
        assert_eq!(
            u32::from_le_bytes([bytes[54], bytes[55], bytes[56], bytes[57]]),
            12_000
        );
        let back = device_drivers::g711::ulaw_to_linear(bytes[HEADER_LEN as usize + 40]);
        assert!((i32::from(back) - i32::from(tone[40])).abs() < 400);
        let mode = std::fs::metadata(&info.path)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let r = row(&a, "b-3");
        assert_eq!(
            (r.state.as_str(), r.duration_ms, r.bytes),
            ("done", 1500, 12_058)
        );
    }

    /// Retention: older than the keep period goes, then the oldest beyond
    /// the size cap; a recording still being written stays.
    #[test]
    fn prune_keeps_days_and_size() {
        let (_d, a, c) = aired();
        let mut paths = Vec::new();
        for i in 0..4 {
            let mut w = a
                .start(&format!("b-{i}"), AiredKind::Emergency)
                .expect("start");
            w.push(&[0i16; 8000]).expect("push");
            paths.push(w.finish().expect("finish").path);
            c.advance(DAY);
        }
        let _live = a.start("b-live", AiredKind::LivePage).expect("live");
        // Now T0 + 4 days: keep 2.5 days drops b-0 and b-1.
        let gone = a
            .prune(Duration::from_secs(60 * 3600), u64::MAX)
            .expect("prune");
        assert_eq!(gone, 2);
        assert!(!paths[0].exists() && !paths[1].exists() && paths[2].exists());
        // A cap of one file keeps the newest.
        assert_eq!(
            a.prune(Duration::from_secs(3650 * 86_400), 9000)
                .expect("cap"),
            1
        );
        assert!(!paths[2].exists() && paths[3].exists());
        let (rows, total) = a.store().recordings(10, 0).expect("list");
        assert_eq!(total, 2);
        assert_eq!(rows[0].id, "b-live");
    }
}
