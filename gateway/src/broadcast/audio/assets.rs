//! The asset store: uploaded and synthesised announcements, content-addressed
//! by the sha256 of the original bytes, in `DATA_DIR/assets/`.
//!
//! Each asset is three files named by its hash: `HASH.orig` (the upload as
//! received), `HASH.8k.wav` (normalised 8 kHz mono 16-bit PCM, what horns
//! play) and `HASH.json` ([`Asset`] metadata, written last, so an asset
//! exists only once it is complete). Files are written to a temporary name
//! and renamed. Importing the same bytes again returns the stored asset.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{AudioSettings, RATE, prepare, wav_bytes};

/// One stored asset.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Asset {
    /// Lower-case hex sha256 of the original bytes: the asset's id.
    pub sha256: String,
    /// The name it was uploaded under (informational), or `tts`.
    pub name: String,
    /// Detected format: `mp3`, `wav`, `ogg/vorbis`, `flac`, `webm/opus`,
    /// `ogg/opus`, `mp4/aac`, `aac`.
    pub format: String,
    /// Size of the original, bytes.
    pub bytes: u64,
    /// Source sample rate, Hz.
    pub source_rate: u32,
    /// Source channels.
    pub source_channels: usize,
    /// Duration of the normalised audio, ms.
    pub duration_ms: u64,
    /// Loudness of the original, LUFS.
    pub input_lufs: f64,
    /// Gain applied, dB.
    pub gain_db: f64,
}

/// The asset directory.
#[derive(Debug, Clone)]
pub struct AssetStore {
    dir: PathBuf,
    settings: AudioSettings,
}

/// Whether `id` looks like an asset id (64 lower-case hex digits), so it is
/// safe to use in a path.
pub fn valid_id(id: &str) -> bool {
    crate::broadcast::valid_asset_id(id)
}

impl AssetStore {
    /// Opens (creating, mode 0700) `data_dir/assets`.
    pub fn open(data_dir: &Path, settings: AudioSettings) -> anyhow::Result<Self> {
        let dir = data_dir.join("assets");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("cannot create asset directory {}", dir.display()))?;
        Ok(Self { dir, settings })
    }

    fn path(&self, id: &str, suffix: &str) -> PathBuf {
        self.dir.join(format!("{id}.{suffix}"))
    }

    /// Imports uploaded bytes: validated, decoded, normalised and stored;
    /// the same bytes again return the existing asset. `name` is the
    /// uploaded file name (its extension helps the decoder).
    pub fn import(&self, bytes: &[u8], name: &str) -> anyhow::Result<Asset> {
        let id = hex::encode(Sha256::digest(bytes));
        if let Some(a) = self.get(&id)? {
            return Ok(a);
        }
        let ext = Path::new(name).extension().and_then(|e| e.to_str());
        let p = prepare(bytes, ext, &self.settings).with_context(|| format!("asset `{name}`"))?;
        let asset = Asset {
            sha256: id.clone(),
            name: name.to_string(),
            format: p.format.clone(),
            bytes: bytes.len() as u64,
            source_rate: p.source_rate,
            source_channels: p.source_channels,
            duration_ms: (p.pcm.len() as u64 * 1000) / u64::from(RATE),
            input_lufs: p.loudness.input_lufs,
            gain_db: p.loudness.gain_db,
        };
        self.write(&id, "orig", bytes)?;
        self.write(&id, "8k.wav", &wav_bytes(&p.pcm, RATE))?;
        self.write(&id, "json", &serde_json::to_vec_pretty(&asset)?)?;
        Ok(asset)
    }

    /// Imports a file from disk (size checked before reading).
    pub fn import_file(&self, path: &Path) -> anyhow::Result<Asset> {
        let len = std::fs::metadata(path)
            .with_context(|| format!("{}: cannot read", path.display()))?
            .len();
        if len > self.settings.max_bytes {
            anyhow::bail!(
                "{}: {}",
                path.display(),
                super::AudioError::TooLarge {
                    size: len,
                    limit: self.settings.max_bytes
                }
            );
        }
        let bytes =
            std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("upload");
        self.import(&bytes, name)
    }

    /// Synthesises `text` and stores the result (keyed by the WAV the TTS
    /// command wrote).
    pub fn import_tts(&self, text: &str) -> anyhow::Result<Asset> {
        let wav = super::tts::synthesize(text, &self.settings)?;
        self.import(&wav, "tts.wav").map(|mut a| {
            a.name = "tts".into();
            a
        })
    }

    /// Writes one file of an asset (mode 0600, through a temporary file).
    fn write(&self, id: &str, suffix: &str, data: &[u8]) -> anyhow::Result<()> {
        let path = self.path(id, suffix);
        let tmp = self.path(id, &format!("{suffix}.tmp"));
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(data))
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }

    /// An asset's metadata, if stored.
    pub fn get(&self, id: &str) -> anyhow::Result<Option<Asset>> {
        if !valid_id(id) {
            anyhow::bail!("`{id}` is not an asset id (64 hex digits)");
        }
        let path = self.path(id, "json");
        match std::fs::read(&path) {
            Ok(b) => {
                Ok(Some(serde_json::from_slice(&b).with_context(|| {
                    format!("{}: bad metadata", path.display())
                })?))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Path of an asset's normalised 8 kHz WAV (for serving to cloud horns).
    pub fn wav_path(&self, id: &str) -> anyhow::Result<PathBuf> {
        anyhow::ensure!(valid_id(id), "`{id}` is not an asset id (64 hex digits)");
        Ok(self.path(id, "8k.wav"))
    }

    /// An asset's normalised PCM (8 kHz mono).
    pub fn pcm(&self, id: &str) -> anyhow::Result<Vec<i16>> {
        let path = self.wav_path(id)?;
        let b = std::fs::read(&path)
            .with_context(|| format!("asset {id}: cannot read {}", path.display()))?;
        // Our own canonical 44-byte header, written by `wav_bytes`.
        anyhow::ensure!(
            b.len() >= 44 && &b[0..4] == b"RIFF" && &b[36..40] == b"data",
            "asset {id}: {} is not a WAV written by tgw",
            path.display()
        );
        Ok(b[44..]
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect())
    }

    /// Every stored asset, by id.
    pub fn list(&self) -> anyhow::Result<Vec<Asset>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir)
            .with_context(|| format!("cannot list {}", self.dir.display()))?
        {
            let name = e?.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if let Some(a) = self.get(id).ok().flatten() {
                out.push(a);
            }
        }
        out.sort_by(|a, b| a.sha256.cmp(&b.sha256));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    /// Uploaded audio is for the gateway's user only, whatever the umask.
    #[test]
    fn asset_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = AssetStore::open(dir.path(), AudioSettings::default()).unwrap();
        let tone: Vec<i16> = (0..8000).map(|i| ((i % 8) * 1000) as i16).collect();
        let a = store.import(&wav_bytes(&tone, RATE), "t.wav").unwrap();
        let d = dir.path().join("assets");
        assert_eq!(mode(&d), 0o700);
        for suffix in ["orig", "8k.wav", "json"] {
            assert_eq!(
                mode(&d.join(format!("{}.{suffix}", a.sha256))),
                0o600,
                "{suffix}"
            );
        }
    }
}
