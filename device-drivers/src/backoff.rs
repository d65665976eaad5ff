//! Authentication backoff, so polling never locks a camera account.
//!
//! A pure state machine, one per device: it counts consecutive authentication
//! failures and says when the next authenticated attempt is allowed. Delays
//! grow exponentially from [`BackoffPolicy::initial`] to [`BackoffPolicy::max`].
//! No clock is read inside: every method takes `now`. Jitter is zero unless the
//! caller passes a jitter fraction and a random sample.

use std::time::Duration;

use tokio::time::Instant;

/// How fast the backoff grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// Delay after the first failure. Default 30 s.
    pub initial: Duration,
    /// Upper bound on the delay. Default 1 h.
    pub max: Duration,
    /// Growth factor per further failure. Default 2.
    pub multiplier: u32,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial: Duration::from_secs(30),
            max: Duration::from_secs(3600),
            multiplier: 2,
        }
    }
}

impl BackoffPolicy {
    /// Delay after `failures` consecutive failures (0 → no delay).
    pub fn delay(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let factor = u64::from(self.multiplier.max(1)).saturating_pow(failures - 1);
        let ms = u64::try_from(self.initial.as_millis())
            .unwrap_or(u64::MAX)
            .saturating_mul(factor);
        Duration::from_millis(ms).min(self.max)
    }
}

/// Consecutive auth failures of one device and when it may be tried again.
#[derive(Debug, Clone)]
pub struct AuthBackoff {
    policy: BackoffPolicy,
    failures: u32,
    next_allowed: Option<Instant>,
}

impl Default for AuthBackoff {
    fn default() -> Self {
        Self::new(BackoffPolicy::default())
    }
}

impl AuthBackoff {
    /// A fresh state: attempts allowed now.
    pub fn new(policy: BackoffPolicy) -> Self {
        AuthBackoff {
            policy,
            failures: 0,
            next_allowed: None,
        }
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// `Ok` if an authenticated attempt is allowed at `now`, else how long to wait.
    pub fn allowed(&self, now: Instant) -> Result<(), Duration> {
        match self.next_allowed {
            Some(t) if t > now => Err(t - now),
            _ => Ok(()),
        }
    }

    /// Credentials worked: reset.
    pub fn on_success(&mut self) {
        self.failures = 0;
        self.next_allowed = None;
    }

    /// Credentials were refused at `now`: returns the delay before the next try.
    pub fn on_auth_failure(&mut self, now: Instant) -> Duration {
        self.on_auth_failure_with_jitter(now, 0.0, 0.0)
    }

    /// Like [`on_auth_failure`](Self::on_auth_failure) with jitter: the delay is
    /// scaled by `1 + fraction * (2 * sample - 1)`, with `sample` in `[0, 1)`
    /// from the caller's RNG and `fraction` in `[0, 1]` (both clamped), and
    /// still capped at the policy maximum.
    pub fn on_auth_failure_with_jitter(
        &mut self,
        now: Instant,
        fraction: f64,
        sample: f64,
    ) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let base = self.policy.delay(self.failures);
        let fraction = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let sample = if sample.is_finite() {
            sample.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let scale = 1.0 + fraction * (2.0 * sample - 1.0);
        let delay = base.mul_f64(scale).min(self.policy.max);
        self.next_allowed = Some(now + delay);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn grows_exponentially_to_cap_and_resets() {
        let mut b = AuthBackoff::default();
        let t0 = Instant::now();
        assert_eq!(b.allowed(t0), Ok(()));
        assert_eq!(b.on_auth_failure(t0), Duration::from_secs(30));
        assert_eq!(b.allowed(t0), Err(Duration::from_secs(30)));
        assert_eq!(
            b.allowed(t0 + Duration::from_secs(10)),
            Err(Duration::from_secs(20))
        );
        assert_eq!(b.allowed(t0 + Duration::from_secs(30)), Ok(()));
        let t1 = t0 + Duration::from_secs(30);
        assert_eq!(b.on_auth_failure(t1), Duration::from_secs(60));
        assert_eq!(b.on_auth_failure(t1), Duration::from_secs(120));
        for _ in 0..20 {
            b.on_auth_failure(t1);
        }
        assert_eq!(b.on_auth_failure(t1), Duration::from_secs(3600));
        assert_eq!(b.failures(), 24);
        b.on_success();
        assert_eq!(b.failures(), 0);
        assert_eq!(b.allowed(t1), Ok(()));
        // Huge failure counts do not overflow.
        assert_eq!(
            BackoffPolicy::default().delay(u32::MAX),
            Duration::from_secs(3600)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn jitter_is_bounded_and_zero_by_default() {
        let now = Instant::now();
        let p = BackoffPolicy {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(100),
            multiplier: 3,
        };
        let mut b = AuthBackoff::new(p);
        assert_eq!(
            b.on_auth_failure_with_jitter(now, 0.5, 0.0),
            Duration::from_secs(5)
        );
        assert_eq!(
            b.on_auth_failure_with_jitter(now, 0.5, 1.0),
            Duration::from_secs(45)
        );
        assert_eq!(
            b.on_auth_failure_with_jitter(now, 0.5, 1.0),
            Duration::from_secs(100)
        );
        assert_eq!(
            b.on_auth_failure_with_jitter(now, f64::NAN, 0.2),
            Duration::from_secs(100)
        );
        assert_eq!(p.delay(2), Duration::from_secs(30));
    }
}
