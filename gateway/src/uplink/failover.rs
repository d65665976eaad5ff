//! Which broker of `mqtt.urls` the next session tries, and how long it
//! waits first (`docs/fleet.md`). Pure: the caller passes how long the
//! lost connection was up and a jitter draw.
//!
//! A failed connect or a lost connection moves on to the next broker in
//! the list (wrapping round). Inside one round the next broker is tried
//! after the shortest delay, so a dead node costs one connect timeout and
//! not a growing backoff; once every broker has failed in a row the delay
//! doubles per round up to `reconnect_max_secs`. A connection that stayed
//! up for [`STABLE_AFTER`](super::session::STABLE_AFTER) starts the
//! backoff again from `reconnect_min_ms`; one lost sooner does not, so a
//! cluster that accepts and then drops us cannot make us reconnect in a
//! tight loop. With one broker this is the plain backoff of before.

use std::time::Duration;

use super::session::{STABLE_AFTER, backoff};

/// The rotation state of one uplink.
#[derive(Debug, Clone)]
pub(crate) struct Rotation {
    len: usize,
    current: usize,
    /// Failures in a row since the last stable connection.
    failures: u32,
    min: Duration,
    max: Duration,
}

impl Rotation {
    /// `len` brokers (at least one), first reconnect delay `min`, longest `max`.
    pub(crate) fn new(len: usize, min: Duration, max: Duration) -> Self {
        Rotation {
            len: len.max(1),
            current: 0,
            failures: 0,
            min,
            max,
        }
    }

    /// The index of the broker the next session connects to.
    pub(crate) fn current(&self) -> usize {
        self.current
    }

    /// Failures in a row since the last stable connection.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// The session on [`current`](Self::current) ended: `up` is how long
    /// it was connected (`None`: the connect failed). Moves to the next
    /// broker and returns the delay before trying it; `jitter` in [0, 1).
    pub(crate) fn failed(&mut self, up: Option<Duration>, jitter: f64) -> Duration {
        if up.is_some_and(|u| u >= STABLE_AFTER) {
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        self.current = (self.current + 1) % self.len;
        // Rounds completed without a stable connection, minus one: 0 while
        // the first round is still trying the other brokers.
        let round = (self.failures - 1) / self.len as u32;
        backoff(round, self.min, self.max, jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_millis(500);
    const MAX: Duration = Duration::from_secs(60);

    /// Every failure goes to the next broker, wrapping; the shortest delay
    /// inside a round, doubling per round of failures, capped.
    #[test]
    fn failed_connects_rotate_and_back_off_per_round() {
        let mut r = Rotation::new(3, MIN, MAX);
        assert_eq!(r.current(), 0);
        let mut seen = Vec::new();
        let mut delays = Vec::new();
        for _ in 0..9 {
            delays.push(r.failed(None, 0.0));
            seen.push(r.current());
        }
        assert_eq!(seen, [1, 2, 0, 1, 2, 0, 1, 2, 0]);
        let ms: Vec<u128> = delays.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, [250, 250, 250, 500, 500, 500, 1000, 1000, 1000]);
        for _ in 0..300 {
            assert!(r.failed(None, 0.999) <= MAX);
        }
        assert_eq!(r.failed(None, 0.0), MAX / 2);
    }

    /// A connection that stayed up long enough resets the backoff; one
    /// lost at once does not, and the rotation goes on either way.
    #[test]
    fn a_stable_connection_resets_the_backoff_a_short_one_does_not() {
        let mut r = Rotation::new(2, MIN, MAX);
        for _ in 0..6 {
            r.failed(None, 0.0);
        }
        assert_eq!(r.current(), 0);
        let short = r.failed(Some(Duration::from_secs(1)), 0.0);
        assert_eq!(short, Duration::from_secs(2), "round 3: 500 ms x 8 / 2");
        assert_eq!(r.current(), 1);
        let after_stable = r.failed(Some(STABLE_AFTER), 0.0);
        assert_eq!(after_stable, MIN / 2);
        assert_eq!((r.current(), r.failures()), (0, 1));
    }

    /// One broker: the plain exponential backoff, always the same broker.
    #[test]
    fn a_single_broker_keeps_the_plain_backoff() {
        let mut r = Rotation::new(1, MIN, MAX);
        for attempt in 0..12 {
            assert_eq!(r.failed(None, 0.0), backoff(attempt, MIN, MAX, 0.0));
            assert_eq!(r.current(), 0);
        }
        assert_eq!(Rotation::new(0, MIN, MAX).failed(None, 0.0), MIN / 2);
    }

    /// Jitter only ever adds up to half of the step, never more than max.
    #[test]
    fn jitter_stays_in_the_upper_half() {
        let mut a = Rotation::new(3, MIN, MAX);
        let mut b = Rotation::new(3, MIN, MAX);
        for _ in 0..40 {
            let lo = a.failed(None, 0.0);
            let hi = b.failed(None, 0.999_999);
            assert!(lo <= hi && hi <= lo * 2 && hi <= MAX, "{lo:?} {hi:?}");
        }
    }
}
