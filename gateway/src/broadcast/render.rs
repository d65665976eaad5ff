//! Turns a programme into what horns play: segments of 8 kHz PCM, one per
//! repeat, with the chime before the first and after the last, and the
//! silence between repeats kept as a gap (not streamed).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::broadcast::audio::RATE;
use crate::broadcast::audio::assets::AssetStore;

/// One part of a programme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// A stored asset (sha256 hex).
    Asset(String),
    /// Text spoken by the TTS command.
    Tts(String),
    /// The built-in two-tone chime.
    Chime,
}

/// What to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// Played once before the first repeat.
    pub pre: Option<Part>,
    /// The items of each repeat, in order.
    pub items: Vec<Part>,
    /// Played once after the last repeat.
    pub post: Option<Part>,
    /// Times the items are played (≥ 1).
    pub repeat: u32,
    /// Silence between repeats.
    pub interval: Duration,
    /// Volume 0-100 for every horn (emergencies, an operator's choice);
    /// `None`: each horn's own volume. Applied per horn as gain
    /// ([`Rendered::at_volume`]); 100 is the normalised level.
    pub volume: Option<u8>,
}

/// Shared PCM segments of a programme.
pub type Segments = Arc<Vec<Arc<Vec<i16>>>>;

/// The rendered programme.
#[derive(Debug)]
pub struct Rendered {
    /// One PCM buffer per repeat, at the normalised level (volume 100).
    pub segments: Vec<Arc<Vec<i16>>>,
    /// Silence between segments.
    pub gap: Duration,
    /// The segments at other volumes, made once per volume in use.
    scaled: std::sync::Mutex<std::collections::HashMap<u8, Segments>>,
}

impl Rendered {
    /// The segments at `volume` (0-100): shared by every horn at that volume.
    pub fn at_volume(&self, volume: u8) -> Segments {
        let v = volume.min(100);
        let mut cache = match self.scaled.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        cache
            .entry(v)
            .or_insert_with(|| {
                let gain = volume_gain(v);
                Arc::new(
                    self.segments
                        .iter()
                        .map(|seg| {
                            if v == 100 {
                                seg.clone()
                            } else {
                                Arc::new(
                                    seg.iter()
                                        .map(|s| (f64::from(*s) * gain).round() as i16)
                                        .collect(),
                                )
                            }
                        })
                        .collect(),
                )
            })
            .clone()
    }

    /// Length of a segment.
    pub fn segment_len(&self, i: usize) -> Duration {
        self.segments
            .get(i)
            .map(|s| Duration::from_secs_f64(s.len() as f64 / f64::from(RATE)))
            .unwrap_or_default()
    }

    /// Total length from the first sample to the last, gaps included.
    pub fn total(&self) -> Duration {
        let n = self.segments.len();
        (0..n).map(|i| self.segment_len(i)).sum::<Duration>()
            + self.gap * n.saturating_sub(1) as u32
    }
}

/// Gap between items of one repeat.
const ITEM_GAP: Duration = Duration::from_millis(400);

/// The built-in chime: a soft two-tone "ding-dong" (G5 then E5), 1.2 s.
pub fn chime() -> Vec<i16> {
    let mut out = Vec::with_capacity(RATE as usize * 6 / 5);
    for (freq, len_ms) in [(784.0f64, 550u32), (659.25, 650)] {
        let n = (RATE * len_ms / 1000) as usize;
        for i in 0..n {
            let t = i as f64 / f64::from(RATE);
            let attack = (i as f64 / 80.0).min(1.0);
            let decay = (-3.5 * t).exp();
            let s = (2.0 * std::f64::consts::PI * freq * t).sin() * attack * decay;
            out.push((s * 0.45 * f64::from(i16::MAX)) as i16);
        }
    }
    out
}

fn part_pcm(p: &Part, assets: &AssetStore) -> anyhow::Result<Vec<i16>> {
    match p {
        Part::Chime => Ok(chime()),
        Part::Asset(id) => {
            let id = id.strip_prefix("sha256:").unwrap_or(id);
            assets.pcm(id).with_context(|| format!("asset sha256:{id}"))
        }
        Part::Tts(text) => {
            let a = assets
                .import_tts(text)
                .context("text to speech for the programme")?;
            assets.pcm(&a.sha256).context("text to speech result")
        }
    }
}

fn silence(d: Duration) -> impl Iterator<Item = i16> {
    std::iter::repeat_n(0i16, (d.as_secs_f64() * f64::from(RATE)) as usize)
}

/// Linear gain for a volume 0-100: 100 is unity, every 10 steps down is
/// 3 dB quieter (0 is silent).
pub fn volume_gain(volume: u8) -> f64 {
    match volume.min(100) {
        0 => 0.0,
        v => 10f64.powf(-0.3 * f64::from(100 - v) / 20.0),
    }
}

/// Renders `r` (TTS runs here; assets are read from disk). Errors name the
/// part that failed.
pub fn render(r: &Recipe, assets: &AssetStore) -> anyhow::Result<Rendered> {
    if r.items.is_empty() {
        anyhow::bail!("the programme has no items");
    }
    let mut items = Vec::with_capacity(r.items.len());
    for p in &r.items {
        items.push(part_pcm(p, assets)?);
    }
    let pre = r.pre.as_ref().map(|p| part_pcm(p, assets)).transpose()?;
    let post = r.post.as_ref().map(|p| part_pcm(p, assets)).transpose()?;
    let repeat = r.repeat.clamp(1, 20) as usize;
    let mut segments = Vec::with_capacity(repeat);
    for k in 0..repeat {
        let mut seg: Vec<i16> = Vec::new();
        if k == 0
            && let Some(p) = &pre
        {
            seg.extend_from_slice(p);
            seg.extend(silence(ITEM_GAP));
        }
        for (i, it) in items.iter().enumerate() {
            if i > 0 {
                seg.extend(silence(ITEM_GAP));
            }
            seg.extend_from_slice(it);
        }
        if k + 1 == repeat
            && let Some(p) = &post
        {
            seg.extend(silence(ITEM_GAP));
            seg.extend_from_slice(p);
        }
        segments.push(Arc::new(seg));
    }
    Ok(Rendered {
        segments,
        gap: r.interval,
        scaled: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, AssetStore) {
        let d = tempfile::tempdir().unwrap();
        let s =
            AssetStore::open(d.path(), crate::broadcast::audio::AudioSettings::default()).unwrap();
        (d, s)
    }

    #[test]
    fn chime_before_first_and_after_last_repeat_only() {
        let (_d, s) = store();
        let r = Recipe {
            pre: Some(Part::Chime),
            items: vec![Part::Chime, Part::Chime],
            post: Some(Part::Chime),
            repeat: 3,
            interval: Duration::from_secs(5),
            volume: None,
        };
        let out = render(&r, &s).unwrap();
        let c = chime().len();
        let gap = (ITEM_GAP.as_secs_f64() * 8000.0) as usize;
        assert_eq!(out.segments.len(), 3);
        assert_eq!(out.segments[0].len(), 3 * c + 2 * gap);
        assert_eq!(out.segments[1].len(), 2 * c + gap);
        assert_eq!(out.segments[2].len(), 3 * c + 2 * gap);
        assert_eq!(out.gap, Duration::from_secs(5));
        let total = out.total().as_secs_f64();
        let expect = (8 * c + 5 * gap) as f64 / 8000.0 + 10.0;
        assert!((total - expect).abs() < 1e-3, "{total} vs {expect}");
    }

    #[test]
    fn volume_scales_and_zero_is_silent() {
        assert_eq!(volume_gain(100), 1.0);
        assert!((volume_gain(90) - 10f64.powf(-3.0 / 20.0)).abs() < 1e-9);
        assert_eq!(volume_gain(0), 0.0);
        let (_d, s) = store();
        let r = Recipe {
            pre: None,
            items: vec![Part::Chime],
            post: None,
            repeat: 1,
            interval: Duration::ZERO,
            volume: None,
        };
        let loud = chime().iter().map(|x| i32::from(*x).abs()).max().unwrap();
        let quiet = render(&r, &s).unwrap().at_volume(50)[0]
            .iter()
            .map(|x| i32::from(*x).abs())
            .max()
            .unwrap();
        assert!(quiet < loud / 4 && quiet > loud / 8, "{quiet} vs {loud}");
        let out = render(&r, &s).unwrap();
        assert!(out.at_volume(0)[0].iter().all(|x| *x == 0));
        assert!(
            Arc::ptr_eq(&out.at_volume(100)[0], &out.segments[0]),
            "volume 100 shares the rendered PCM"
        );
        assert!(
            Arc::ptr_eq(&out.at_volume(50), &out.at_volume(50)),
            "one copy per volume"
        );
    }

    #[test]
    fn unknown_asset_and_empty_programme_are_named() {
        let (_d, s) = store();
        let mut r = Recipe {
            pre: None,
            items: vec![Part::Asset(format!("sha256:{}", "ab".repeat(32)))],
            post: None,
            repeat: 1,
            interval: Duration::ZERO,
            volume: None,
        };
        let e = format!("{:#}", render(&r, &s).unwrap_err());
        assert!(e.contains(&"ab".repeat(32)), "{e}");
        r.items.clear();
        assert!(render(&r, &s).unwrap_err().to_string().contains("no items"));
    }
}
