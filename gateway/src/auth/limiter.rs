//! Login rate limiting and lockout, in memory on tokio's clock (tests run
//! it on paused time).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Login rate limiting and lockout.
///
/// - per client address: at most `ip_max` failures within `window`, then
///   refused until the oldest failure leaves the window;
/// - per user: after `user_max` consecutive failures the account is locked
///   for `lockout` (a success resets the count).
///
/// Uses `tokio::time::Instant`, so tests drive it on paused time.
#[derive(Clone)]
pub struct LoginLimiter {
    inner: Arc<Mutex<LimiterState>>,
    /// Failures per address within the window.
    pub ip_max: usize,
    /// Window for the per-address count.
    pub window: Duration,
    /// Consecutive failures before a user is locked.
    pub user_max: u32,
    /// How long a lockout lasts.
    pub lockout: Duration,
}

#[derive(Default)]
struct LimiterState {
    ip: HashMap<IpAddr, Vec<tokio::time::Instant>>,
    user: HashMap<String, (u32, Option<tokio::time::Instant>)>,
}

/// Why a login attempt is refused before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Too many failures from this address; retry after.
    Address(Duration),
    /// The user is locked out; retry after.
    Locked(Duration),
}

impl Default for LoginLimiter {
    fn default() -> Self {
        Self {
            inner: Arc::default(),
            ip_max: 10,
            window: Duration::from_secs(300),
            user_max: 5,
            lockout: Duration::from_secs(900),
        }
    }
}

impl LoginLimiter {
    fn state(&self) -> std::sync::MutexGuard<'_, LimiterState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether an attempt may proceed.
    pub fn check(&self, ip: IpAddr, user: &str) -> Result<(), Refusal> {
        let now = tokio::time::Instant::now();
        let mut s = self.state();
        if let Some((_, Some(until))) = s.user.get(user)
            && *until > now
        {
            return Err(Refusal::Locked(*until - now));
        }
        let window = self.window;
        let fails = s.ip.entry(ip).or_default();
        fails.retain(|t| now.duration_since(*t) < window);
        if fails.len() >= self.ip_max {
            let oldest = fails.first().copied().unwrap_or(now);
            return Err(Refusal::Address(
                window.saturating_sub(now.duration_since(oldest)),
            ));
        }
        Ok(())
    }

    /// Records a failure; returns true when it locked the user.
    pub fn failed(&self, ip: IpAddr, user: &str) -> bool {
        let now = tokio::time::Instant::now();
        let mut s = self.state();
        s.ip.entry(ip).or_default().push(now);
        // Bound memory: forget addresses with nothing in the window.
        if s.ip.len() > 10_000 {
            let w = self.window;
            s.ip.retain(|_, v| v.last().is_some_and(|t| now.duration_since(*t) < w));
        }
        let e = s.user.entry(user.to_string()).or_insert((0, None));
        if e.1.is_some_and(|u| u <= now) {
            *e = (0, None);
        }
        e.0 += 1;
        if e.0 >= self.user_max && e.1.is_none() {
            e.1 = Some(now + self.lockout);
            return true;
        }
        false
    }

    /// Records a success: the user's failure count resets.
    pub fn succeeded(&self, user: &str) {
        self.state().user.remove(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Per-user lockout after 5 failures, lifted after the lockout; per-address
    /// limit after 10 failures within the window. Paused tokio time.
    #[tokio::test(start_paused = true)]
    async fn limiter_locks_users_and_addresses() {
        let l = LoginLimiter::default();
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        for i in 0..4 {
            assert!(l.check(ip, "ana").is_ok());
            assert!(!l.failed(ip, "ana"), "attempt {i}");
        }
        assert!(l.failed(ip, "ana"));
        assert!(matches!(l.check(ip, "ana"), Err(Refusal::Locked(_))));
        // Other users from the same address still may try.
        assert!(l.check(ip, "bob").is_ok());
        tokio::time::advance(Duration::from_secs(901)).await;
        assert!(l.check(ip, "ana").is_ok());
        // 5 more failures (another user) reach the address limit of 10 in the window.
        for _ in 0..5 {
            l.failed(ip, "carl");
        }
        tokio::time::advance(Duration::from_secs(1)).await;
        // Only 5 in the window (the first 5 are 900 s old) -> allowed.
        assert!(l.check(ip, "dora").is_ok());
        for _ in 0..5 {
            l.failed(ip, "dora");
        }
        assert!(matches!(l.check(ip, "erin"), Err(Refusal::Address(_))));
        let other: IpAddr = "127.0.0.10".parse().unwrap();
        assert!(l.check(other, "erin").is_ok());
        tokio::time::advance(Duration::from_secs(301)).await;
        assert!(l.check(ip, "erin").is_ok());
        // Success resets the count.
        l.failed(ip, "fay");
        l.succeeded("fay");
        for _ in 0..4 {
            assert!(!l.failed(other, "fay"));
        }
    }
}
