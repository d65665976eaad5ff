//! The daemon's clocks: the one place that reads the operating system's
//! wall clock (`clippy.toml` bans `OffsetDateTime::now_utc`,
//! `SystemTime::now` and `std::time::Instant::now` everywhere else).
//! Everything else takes an `Arc<dyn Clock>` ([`tgw_core::clock::Clock`]);
//! monotonic timers use `tokio::time` so tests run on paused time.

use std::sync::Arc;

use time::OffsetDateTime;
use tokio::time::Instant;

pub use tgw_core::clock::{Clock, ManualClock, ms_to_utc, utc_to_ms};

use tgw_core::broadcast::Ms;

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one reader of the OS clock
    fn now_ms(&self) -> Ms {
        utc_to_ms(OffsetDateTime::now_utc())
    }

    #[allow(clippy::disallowed_methods)] // the one reader of the OS clock
    fn now_utc(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// The system clock, shared.
pub fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// A wall clock that follows tokio's (possibly paused) clock from an anchor:
/// tests drive a whole day in paused time with it.
#[derive(Debug)]
pub struct TokioClock {
    wall0: Ms,
    inst0: Instant,
}

impl TokioClock {
    /// Wall time `wall0` is now.
    pub fn starting_at(wall0: Ms) -> TokioClock {
        TokioClock {
            wall0,
            inst0: Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> Ms {
        self.wall0 + Instant::now().duration_since(self.inst0).as_millis() as Ms
    }
}

/// Lets a `dyn Clock` stand where the ONVIF client wants its own trait.
#[derive(Clone)]
pub struct OnvifClock(pub Arc<dyn Clock>);

impl device_drivers::onvif_client::WallClock for OnvifClock {
    fn now_utc(&self) -> OffsetDateTime {
        self.0.now_utc()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let c = TokioClock::starting_at(1_000);
        tokio::time::advance(std::time::Duration::from_millis(2_500)).await;
        assert_eq!(c.now_ms(), 3_500);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now_ms() > 1_577_836_800_000);
    }
}
