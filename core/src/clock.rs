//! Wall-clock time, injected (STYLE.md §4). Everything that decides by the
//! wall clock (schedules, clock drift, command expiry, timestamps in the
//! store) takes a [`Clock`]; the daemon's system clock lives in
//! `tgw::base::clock`, the only place allowed to read the OS clock
//! (`clippy.toml` bans `OffsetDateTime::now_utc`, `SystemTime::now` and
//! `std::time::Instant::now` elsewhere). Tests use [`ManualClock`].

use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;

use crate::broadcast::Ms;

/// A wall clock.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch (UTC).
    fn now_ms(&self) -> Ms;

    /// Now, as a UTC date-time (millisecond precision).
    fn now_utc(&self) -> OffsetDateTime {
        ms_to_utc(self.now_ms())
    }
}

/// `ms` since the Unix epoch as a UTC date-time; out-of-range values clamp
/// to the epoch rather than panic.
pub fn ms_to_utc(ms: Ms) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A UTC date-time as milliseconds since the Unix epoch.
pub fn utc_to_ms(t: OffsetDateTime) -> Ms {
    (t.unix_timestamp_nanos() / 1_000_000) as Ms
}

/// A clock that stands still until told to move: for tests of the pure
/// rules and of anything that takes a [`Clock`].
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock reading `ms`.
    pub fn at(ms: Ms) -> ManualClock {
        ManualClock(AtomicI64::new(ms))
    }

    /// Sets the time to `ms` (it may go back, as a real clock can).
    pub fn set(&self, ms: Ms) {
        self.0.store(ms, Ordering::SeqCst);
    }

    /// Moves the time by `ms` (negative goes back).
    pub fn advance(&self, ms: Ms) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Ms {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told_and_converts_both_ways() {
        let c = ManualClock::at(1_784_077_200_000);
        assert_eq!(c.now_ms(), 1_784_077_200_000);
        c.advance(1_500);
        assert_eq!(c.now_ms(), 1_784_077_201_500);
        assert_eq!(utc_to_ms(c.now_utc()), 1_784_077_201_500);
        c.set(0);
        assert_eq!(c.now_utc(), OffsetDateTime::UNIX_EPOCH);
        assert_eq!(ms_to_utc(i64::MAX), OffsetDateTime::UNIX_EPOCH);
    }
}
