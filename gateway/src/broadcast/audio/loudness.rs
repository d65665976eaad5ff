//! EBU R128 loudness normalisation to one target, and a look-ahead peak
//! limiter so the result never clips when encoded to G.711.
//!
//! The integrated loudness (ITU-R BS.1770 K-weighting, gated) is measured by
//! the `ebur128` crate. Clips shorter than the 400 ms gating block are
//! measured looped to 1 s. The gain is capped at [`MAX_GAIN_DB`] so room
//! noise is not blown up into a roar. The limiter bounds every sample by the
//! ceiling: the gain ramps down linearly over [`LOOKAHEAD_MS`] before a peak
//! and recovers over [`RELEASE_MS`], so it cannot overshoot.

use ebur128::{EbuR128, Mode};
use serde::Serialize;

use super::AudioError;

/// Most gain applied to a quiet recording, dB.
pub const MAX_GAIN_DB: f64 = 30.0;
/// Limiter look-ahead (attack ramp), ms.
pub const LOOKAHEAD_MS: u32 = 5;
/// Limiter release to unity gain, ms.
pub const RELEASE_MS: u32 = 80;

/// What normalisation did.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct LoudnessReport {
    /// Integrated loudness of the input, LUFS.
    pub input_lufs: f64,
    /// Gain applied before the limiter, dB.
    pub gain_db: f64,
    /// Samples the limiter reduced.
    pub limited_samples: usize,
    /// Peak of the output, dBFS.
    pub output_peak_dbfs: f64,
}

/// Integrated loudness of mono `x` at `rate`, LUFS (`-inf` for silence).
pub fn integrated_lufs(x: &[f32], rate: u32) -> Result<f64, AudioError> {
    let err = |e: ebur128::Error| AudioError::Corrupt(format!("loudness measurement: {e:?}"));
    let mut m = EbuR128::new(1, rate, Mode::I).map_err(err)?;
    let min_len = rate as usize; // 1 s
    if x.len() >= min_len || x.is_empty() {
        m.add_frames_f32(x).map_err(err)?;
    } else {
        let mut fed = 0;
        while fed < min_len {
            m.add_frames_f32(x).map_err(err)?;
            fed += x.len();
        }
    }
    m.loudness_global().map_err(err)
}

/// Brings mono `x` to `target_lufs`, limits peaks to `ceiling_dbfs` and
/// converts to i16.
pub fn normalise(
    x: &[f32],
    rate: u32,
    target_lufs: f64,
    ceiling_dbfs: f64,
) -> Result<(Vec<i16>, LoudnessReport), AudioError> {
    if x.is_empty() {
        return Err(AudioError::NoSamples);
    }
    let input_lufs = integrated_lufs(x, rate)?;
    if !input_lufs.is_finite() || input_lufs < -70.0 {
        return Err(AudioError::Silent);
    }
    let gain_db = (target_lufs - input_lufs).min(MAX_GAIN_DB);
    let gain = 10f64.powf(gain_db / 20.0) as f32;
    let ceiling = 10f64.powf(ceiling_dbfs.min(0.0) / 20.0) as f32;
    let mut y: Vec<f32> = x.iter().map(|v| v * gain).collect();
    let limited_samples = limit(&mut y, ceiling, rate);
    let mut peak = 0.0f32;
    let pcm = y
        .iter()
        .map(|v| {
            peak = peak.max(v.abs());
            (v * 32767.0).round().clamp(-32767.0, 32767.0) as i16
        })
        .collect();
    Ok((
        pcm,
        LoudnessReport {
            input_lufs,
            gain_db,
            limited_samples,
            output_peak_dbfs: 20.0 * f64::from(peak.max(1e-9)).log10(),
        },
    ))
}

/// Limits `y` in place so that `|y[n]| <= ceiling`; returns how many samples
/// were reduced.
pub fn limit(y: &mut [f32], ceiling: f32, rate: u32) -> usize {
    let n = y.len();
    if n == 0 {
        return 0;
    }
    // Required gain per sample.
    let mut g: Vec<f32> = y
        .iter()
        .map(|v| {
            let a = v.abs();
            if a > ceiling { ceiling / a } else { 1.0 }
        })
        .collect();
    if g.iter().all(|v| *v >= 1.0) {
        return 0;
    }
    let attack = 1.0 / (rate * LOOKAHEAD_MS / 1000).max(1) as f32;
    let release = 1.0 / (rate * RELEASE_MS / 1000).max(1) as f32;
    // Backward: ramp down ahead of each peak (never above the requirement).
    for i in (0..n - 1).rev() {
        g[i] = g[i].min(g[i + 1] + attack);
    }
    // Forward: recover slowly after it.
    for i in 1..n {
        g[i] = g[i].min(g[i - 1] + release);
    }
    let mut count = 0;
    for (v, k) in y.iter_mut().zip(&g) {
        if *k < 1.0 {
            count += 1;
        }
        // Guard against float rounding putting a sample a hair above.
        *v = (*v * k).clamp(-ceiling, ceiling);
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f64, secs: f64, amp: f32) -> Vec<f32> {
        (0..(8000.0 * secs) as usize)
            .map(|i| amp * (2.0 * std::f64::consts::PI * freq * i as f64 / 8000.0).sin() as f32)
            .collect()
    }

    #[test]
    fn quiet_and_loud_tones_reach_the_target() {
        for amp in [0.01, 0.1, 0.9] {
            let (pcm, r) = normalise(&tone(1000.0, 2.0, amp), 8000, -16.0, -1.0).unwrap();
            let f: Vec<f32> = pcm.iter().map(|v| f32::from(*v) / 32767.0).collect();
            let out = integrated_lufs(&f, 8000).unwrap();
            assert!((out + 16.0).abs() < 0.5, "amp {amp}: {out} LUFS ({r:?})");
        }
    }

    #[test]
    fn limiter_never_exceeds_the_ceiling() {
        // A quiet tone with loud clicks: the gain pushes the clicks over.
        let mut x = tone(500.0, 2.0, 0.02);
        for i in (0..x.len()).step_by(1000) {
            x[i] = 0.9;
        }
        let (pcm, r) = normalise(&x, 8000, -10.0, -1.0).unwrap();
        let ceiling = (10f64.powf(-1.0 / 20.0) * 32767.0).ceil() as i32;
        assert!(r.limited_samples > 0);
        assert!(pcm.iter().all(|v| i32::from(*v).abs() <= ceiling));
        assert!(r.output_peak_dbfs <= -0.99, "{r:?}");
    }

    #[test]
    fn silence_and_short_clips() {
        assert!(matches!(
            normalise(&vec![0.0; 8000], 8000, -16.0, -1.0),
            Err(AudioError::Silent)
        ));
        assert!(matches!(
            normalise(&[], 8000, -16.0, -1.0),
            Err(AudioError::NoSamples)
        ));
        // 100 ms beep: shorter than one gating block, still normalised.
        let (_, r) = normalise(&tone(1000.0, 0.1, 0.3), 8000, -16.0, -1.0).unwrap();
        assert!(r.input_lufs.is_finite());
    }

    #[test]
    fn gain_is_capped_for_near_silence() {
        let (_, r) = normalise(&tone(1000.0, 2.0, 0.0005), 8000, -16.0, -1.0).unwrap();
        assert_eq!(r.gain_db, MAX_GAIN_DB);
    }
}
