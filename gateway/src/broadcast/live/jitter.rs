//! The adaptive jitter buffer of a live page. Pure: arrival and playout
//! times come in as milliseconds.
//!
//! Frames (20 ms of 8 kHz PCM) are pushed as they arrive and popped by the
//! playout clock every 20 ms. Playout starts once the buffer holds the
//! target delay. The target follows the measured inter-arrival jitter
//! (RFC 3550 estimator: target = 20 ms + 3 × jitter, rounded up to whole
//! frames) within 40–200 ms, growing at once and shrinking by a frame per
//! second of calm arrivals; an underrun adds a frame to it and re-buffers
//! (silence meanwhile, so the horns hear a gap, not a jump). A buffer more
//! than 100 ms over its target drops its oldest frames (a client sending
//! faster than real time never grows memory).

use std::collections::VecDeque;

/// One frame: 20 ms.
pub const FRAME_MS: i64 = 20;
/// Samples in one 8 kHz frame.
pub const FRAME_SAMPLES: usize = 160;
/// Smallest target delay.
pub const MIN_MS: i64 = 40;
/// Largest target delay.
pub const MAX_MS: i64 = 200;
/// How far over its target the buffer may grow before dropping frames.
const SLACK_MS: i64 = 100;
/// Calm arrivals (1 s) before the target shrinks by a frame.
const CALM_FRAMES: u32 = 50;

/// What the playout clock gets for one tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pop {
    /// Not started yet (or re-buffering before the first frame): send nothing.
    Waiting,
    /// A frame of audio.
    Frame(Vec<i16>),
    /// Underrun while playing: silence, re-buffering.
    Silence,
}

/// Counters, for the page's status and the benchmark.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Frames pushed.
    pub pushed: u64,
    /// Frames played.
    pub played: u64,
    /// Ticks with nothing to play while playing.
    pub underruns: u64,
    /// Frames dropped because the buffer ran over.
    pub dropped: u64,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    q: VecDeque<Vec<i16>>,
    target_ms: i64,
    playing: bool,
    started: bool,
    last_arrival: Option<i64>,
    /// Mean deviation of inter-arrival times from 20 ms, in ms.
    jitter: f64,
    /// Arrivals in a row that wanted a smaller target.
    calm: u32,
    stats: JitterStats,
}

impl Default for JitterBuffer {
    fn default() -> Self {
        JitterBuffer::new()
    }
}

fn round_up(ms: i64) -> i64 {
    (ms + FRAME_MS - 1) / FRAME_MS * FRAME_MS
}

impl JitterBuffer {
    /// An empty buffer with the smallest target.
    pub fn new() -> JitterBuffer {
        JitterBuffer {
            q: VecDeque::new(),
            target_ms: MIN_MS,
            playing: false,
            started: false,
            last_arrival: None,
            jitter: 0.0,
            calm: 0,
            stats: JitterStats::default(),
        }
    }

    /// The delay it aims for, in ms (40–200).
    pub fn target_ms(&self) -> i64 {
        self.target_ms
    }

    /// Audio held, in ms.
    pub fn depth_ms(&self) -> i64 {
        self.q.len() as i64 * FRAME_MS
    }

    /// Counters.
    pub fn stats(&self) -> &JitterStats {
        &self.stats
    }

    /// A frame arrived at `now` (ms).
    pub fn push(&mut self, frame: Vec<i16>, now: i64) {
        if let Some(last) = self.last_arrival {
            let d = ((now - last) - FRAME_MS).abs() as f64;
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last_arrival = Some(now);
        self.stats.pushed += 1;
        let want = round_up(FRAME_MS + (3.0 * self.jitter).ceil() as i64).clamp(MIN_MS, MAX_MS);
        // Grow at once; shrink by one frame per second of calm arrivals.
        if want >= self.target_ms {
            self.target_ms = want.max(self.target_ms);
            self.calm = 0;
        } else {
            self.calm += 1;
            if self.calm >= CALM_FRAMES {
                self.target_ms -= FRAME_MS;
                self.calm = 0;
            }
        }
        self.q.push_back(frame);
        while self.depth_ms() > self.target_ms + SLACK_MS {
            self.q.pop_front();
            self.stats.dropped += 1;
        }
    }

    /// The playout clock's tick.
    pub fn pop(&mut self) -> Pop {
        if !self.playing {
            if self.depth_ms() < self.target_ms {
                return if self.started {
                    Pop::Silence
                } else {
                    Pop::Waiting
                };
            }
            self.playing = true;
            self.started = true;
        }
        match self.q.pop_front() {
            Some(f) => {
                self.stats.played += 1;
                Pop::Frame(f)
            }
            None => {
                self.playing = false;
                self.stats.underruns += 1;
                self.target_ms = (self.target_ms + FRAME_MS).min(MAX_MS);
                Pop::Silence
            }
        }
    }

    /// The rest, at the end of the page (played out without waiting).
    pub fn drain(&mut self) -> Vec<Vec<i16>> {
        self.stats.played += self.q.len() as u64;
        self.q.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: i16) -> Vec<i16> {
        vec![v; FRAME_SAMPLES]
    }

    /// Nothing plays before the target delay is buffered; then frames come
    /// out in order.
    #[test]
    fn waits_for_the_target_then_plays_in_order() {
        let mut j = JitterBuffer::new();
        assert_eq!(j.pop(), Pop::Waiting);
        j.push(f(1), 0);
        assert_eq!(j.pop(), Pop::Waiting, "20 ms buffered, target 40");
        j.push(f(2), 20);
        assert_eq!(j.pop(), Pop::Frame(f(1)));
        j.push(f(3), 40);
        assert_eq!(j.pop(), Pop::Frame(f(2)));
        assert_eq!(j.pop(), Pop::Frame(f(3)));
        assert_eq!(j.target_ms(), MIN_MS);
    }

    /// An underrun gives silence (not a jump), raises the target by a frame
    /// and re-buffers before playing again.
    #[test]
    fn underrun_is_silence_and_grows_the_target() {
        let mut j = JitterBuffer::new();
        j.push(f(1), 0);
        j.push(f(2), 20);
        assert_eq!(j.pop(), Pop::Frame(f(1)));
        assert_eq!(j.pop(), Pop::Frame(f(2)));
        assert_eq!(j.pop(), Pop::Silence);
        assert_eq!(j.stats().underruns, 1);
        assert_eq!(j.target_ms(), 60);
        j.push(f(3), 100);
        j.push(f(4), 120);
        assert_eq!(j.pop(), Pop::Silence, "re-buffering to 60 ms");
        j.push(f(5), 140);
        assert_eq!(j.pop(), Pop::Frame(f(3)));
    }

    /// Bursty arrivals (frames in pairs every 40 ms, then in fives every
    /// 100 ms) raise the target, never above 200 ms.
    #[test]
    fn jitter_raises_the_target_within_bounds() {
        let mut j = JitterBuffer::new();
        let mut t = 0;
        for _ in 0..50 {
            t += 40;
            j.push(f(0), t);
            j.push(f(0), t);
            let _ = j.pop();
            let _ = j.pop();
        }
        let mid = j.target_ms();
        assert!(mid > MIN_MS, "target {mid}");
        for _ in 0..100 {
            t += 300;
            for _ in 0..15 {
                j.push(f(0), t);
            }
            for _ in 0..15 {
                let _ = j.pop();
            }
        }
        assert!(j.target_ms() <= MAX_MS);
        assert!(j.target_ms() >= mid, "{} < {mid}", j.target_ms());
    }

    /// A client sending far faster than real time: the buffer stays bounded,
    /// the oldest frames are dropped and counted.
    #[test]
    fn flood_is_bounded() {
        let mut j = JitterBuffer::new();
        for i in 0..10_000 {
            j.push(f(i as i16), 0);
        }
        assert!(j.depth_ms() <= MAX_MS + SLACK_MS, "{}", j.depth_ms());
        assert!(j.stats().dropped > 9_000);
        // The newest survive.
        let last = j.drain().pop().expect("frames");
        assert_eq!(last[0], 9_999);
    }
}
