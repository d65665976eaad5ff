//! Login rate limiting and lockout, in memory on tokio's clock (tests run
//! it on paused time).
//!
//! An attempt is *reserved* before its password is verified
//! ([`LoginLimiter::reserve`]): the reservation counts against every limit
//! at once, so N concurrent attempts beyond a limit are refused without
//! verifying, and the [`Attempt`] it returns records the outcome.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Entries kept before stale ones are swept (the verification pool bounds
/// how fast new ones can appear).
const SWEEP_AT: usize = 10_000;
/// Addresses remembered per user as having logged in successfully.
const KNOWN_PER_USER: usize = 8;
/// `Retry-After` of a refusal that only waits for attempts in flight.
const IN_FLIGHT_RETRY: Duration = Duration::from_secs(1);

/// Login rate limiting and lockout.
///
/// - per (user, address): after `user_max` consecutive failures (none
///   more than `lockout` apart) that user is locked *for that address* for
///   `lockout`; other addresses are not locked out (a success resets it);
/// - per address: at most `ip_max` failures within `window`, any user,
///   then refused until the oldest failure leaves the window;
/// - per user, all addresses: once `user_slow_after` failures within
///   `window` are counted, attempts at that user are spaced at least
///   `user_slow_interval` apart (a global slow-down that never locks out;
///   addresses that logged in as that user before are not slowed).
///
/// Attempts in flight count as failures until their outcome is known.
/// An admin can clear a user's locks and slow-down ([`LoginLimiter::unlock`]).
/// Uses `tokio::time::Instant`, so tests drive it on paused time.
#[derive(Clone)]
pub struct LoginLimiter {
    inner: Arc<Mutex<LimiterState>>,
    /// Failures per address within the window.
    pub ip_max: usize,
    /// Window for the per-address and per-user counts.
    pub window: Duration,
    /// Consecutive failures of one (user, address) before it is locked.
    pub user_max: u32,
    /// How long a (user, address) lockout lasts.
    pub lockout: Duration,
    /// Failures of one user (all addresses) within the window before its
    /// attempts are spaced.
    pub user_slow_after: usize,
    /// Spacing of a slowed user's attempts.
    pub user_slow_interval: Duration,
}

#[derive(Default)]
struct Pair {
    fails: u32,
    in_flight: u32,
    last: Option<Instant>,
    locked_until: Option<Instant>,
}

#[derive(Default)]
struct Counted {
    fails: VecDeque<Instant>,
    in_flight: u32,
}

#[derive(Default)]
struct PerUser {
    counted: Counted,
    next_slot: Option<Instant>,
}

#[derive(Default)]
struct LimiterState {
    pairs: HashMap<(String, IpAddr), Pair>,
    ip: HashMap<IpAddr, Counted>,
    user: HashMap<String, PerUser>,
    known: HashMap<String, VecDeque<IpAddr>>,
    /// Size above which the next sweep runs.
    sweep_at: usize,
}

/// Why a login attempt is refused before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Too many failures from this address; retry after.
    Address(Duration),
    /// The user is locked out for this address; retry after.
    Locked(Duration),
    /// Attempts of this user from this address are already being checked
    /// up to the limit; retry after.
    InFlight(Duration),
    /// Attempts at this user are slowed (failures from many addresses);
    /// retry after.
    Slowed(Duration),
}

impl Refusal {
    /// How long to wait before trying again.
    pub fn retry_after(self) -> Duration {
        match self {
            Refusal::Address(d)
            | Refusal::Locked(d)
            | Refusal::InFlight(d)
            | Refusal::Slowed(d) => d,
        }
    }

    /// The API error code: `locked` or `rate_limited`.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Locked(_) => "locked",
            _ => "rate_limited",
        }
    }

    /// The audit outcome (one per kind).
    pub fn outcome(self) -> &'static str {
        match self {
            Refusal::Address(_) => "rate_limited",
            Refusal::Locked(_) => "locked",
            Refusal::InFlight(_) => "in_flight",
            Refusal::Slowed(_) => "slowed",
        }
    }
}

/// What [`LoginLimiter::unlock`] cleared.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Unlocked {
    /// Addresses the user was locked for.
    pub addresses: Vec<IpAddr>,
    /// Whether the user's attempts were being slowed.
    pub slowed: bool,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        Self {
            inner: Arc::default(),
            ip_max: 10,
            window: Duration::from_secs(300),
            user_max: 5,
            lockout: Duration::from_secs(900),
            user_slow_after: 10,
            user_slow_interval: Duration::from_secs(5),
        }
    }
}

/// A reserved login attempt: it counts against the limits until its
/// outcome is recorded. Dropped without an outcome (the request went away
/// while its password was being checked) it counts as a failure.
#[must_use = "record the outcome: failed(), succeeded() or release()"]
pub struct Attempt {
    limiter: LoginLimiter,
    ip: IpAddr,
    user: String,
    done: bool,
}

enum Outcome {
    Failed,
    Succeeded,
    Released,
}

impl Attempt {
    /// The password was wrong (or the user unknown); returns true when
    /// this failure locked the user for this address.
    pub fn failed(mut self) -> bool {
        self.done = true;
        self.limiter.finish(self.ip, &self.user, Outcome::Failed)
    }

    /// The password was right: the (user, address) failures are cleared
    /// and the address is remembered for the user.
    pub fn succeeded(mut self) {
        self.done = true;
        self.limiter.finish(self.ip, &self.user, Outcome::Succeeded);
    }

    /// The password was not checked (e.g. the verification pool was full):
    /// the reservation is released without counting.
    pub fn release(mut self) {
        self.done = true;
        self.limiter.finish(self.ip, &self.user, Outcome::Released);
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.done {
            self.limiter.finish(self.ip, &self.user, Outcome::Failed);
        }
    }
}

fn retain_window(fails: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while fails
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        fails.pop_front();
    }
}

impl LoginLimiter {
    fn state(&self) -> std::sync::MutexGuard<'_, LimiterState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves an attempt at `user` from `ip`, or says why not. The
    /// reservation counts as a failure against every limit until the
    /// returned [`Attempt`] records its outcome, so concurrent attempts
    /// cannot pass a limit together.
    pub fn reserve(&self, ip: IpAddr, user: &str) -> Result<Attempt, Refusal> {
        let now = Instant::now();
        let mut guard = self.state();
        let s = &mut *guard;
        s.sweep(self, now);
        let key = (user.to_string(), ip);
        // Nothing is inserted until every check passed: refused attempts
        // leave no entries behind.
        // Per (user, address).
        if let Some(pair) = s.pairs.get_mut(&key) {
            if pair.locked_until.is_some_and(|u| u <= now)
                || (pair.locked_until.is_none()
                    && pair
                        .last
                        .is_some_and(|l| now.duration_since(l) >= self.lockout))
            {
                pair.fails = 0;
                pair.locked_until = None;
            }
            if let Some(until) = pair.locked_until {
                return Err(Refusal::Locked(until - now));
            }
            if pair.fails + pair.in_flight >= self.user_max {
                return Err(Refusal::InFlight(IN_FLIGHT_RETRY));
            }
        }
        // Per address.
        if let Some(addr) = s.ip.get_mut(&ip) {
            retain_window(&mut addr.fails, now, self.window);
            if addr.fails.len() + addr.in_flight as usize >= self.ip_max {
                return Err(match addr.fails.front() {
                    Some(oldest) if addr.fails.len() >= self.ip_max => {
                        Refusal::Address(self.window.saturating_sub(now.duration_since(*oldest)))
                    }
                    _ => Refusal::InFlight(IN_FLIGHT_RETRY),
                });
            }
        }
        // Per user, all addresses: the slow-down.
        let known = s.known.get(user).is_some_and(|k| k.contains(&ip));
        if let Some(per) = s.user.get_mut(user) {
            retain_window(&mut per.counted.fails, now, self.window);
            let slowed =
                per.counted.fails.len() + per.counted.in_flight as usize >= self.user_slow_after;
            if slowed && !known {
                if let Some(next) = per.next_slot.filter(|n| *n > now) {
                    return Err(Refusal::Slowed(next - now));
                }
                per.next_slot = Some(now + self.user_slow_interval);
            }
        }
        s.user.entry(key.0.clone()).or_default().counted.in_flight += 1;
        s.ip.entry(ip).or_default().in_flight += 1;
        s.pairs.entry(key.clone()).or_default().in_flight += 1;
        Ok(Attempt {
            limiter: self.clone(),
            ip,
            user: key.0,
            done: false,
        })
    }

    fn finish(&self, ip: IpAddr, user: &str, outcome: Outcome) -> bool {
        let now = Instant::now();
        let mut guard = self.state();
        let s = &mut *guard;
        let failed = matches!(outcome, Outcome::Failed);
        if let Some(a) = s.ip.get_mut(&ip) {
            a.in_flight = a.in_flight.saturating_sub(1);
            if failed {
                a.fails.push_back(now);
            }
        }
        if let Some(u) = s.user.get_mut(user) {
            u.counted.in_flight = u.counted.in_flight.saturating_sub(1);
            if failed {
                u.counted.fails.push_back(now);
            }
        }
        let mut locked = false;
        if let Some(p) = s.pairs.get_mut(&(user.to_string(), ip)) {
            p.in_flight = p.in_flight.saturating_sub(1);
            match outcome {
                Outcome::Failed => {
                    p.fails += 1;
                    p.last = Some(now);
                    if p.fails >= self.user_max && p.locked_until.is_none() {
                        p.locked_until = Some(now + self.lockout);
                        locked = true;
                    }
                }
                Outcome::Succeeded => {
                    p.fails = 0;
                    p.last = None;
                    p.locked_until = None;
                }
                Outcome::Released => {}
            }
        }
        if matches!(outcome, Outcome::Succeeded) {
            let k = s.known.entry(user.to_string()).or_default();
            k.retain(|a| *a != ip);
            k.push_back(ip);
            if k.len() > KNOWN_PER_USER {
                k.pop_front();
            }
        }
        locked
    }

    /// Clears `user`'s locks (every address) and its slow-down; attempts
    /// in flight still finish. Returns what was cleared.
    pub fn unlock(&self, user: &str) -> Unlocked {
        let now = Instant::now();
        let mut s = self.state();
        let mut out = Unlocked::default();
        for ((u, ip), p) in s.pairs.iter_mut() {
            if u != user {
                continue;
            }
            if p.locked_until.is_some_and(|t| t > now) {
                out.addresses.push(*ip);
            }
            p.fails = 0;
            p.last = None;
            p.locked_until = None;
        }
        out.addresses.sort();
        if let Some(per) = s.user.get_mut(user) {
            retain_window(&mut per.counted.fails, now, self.window);
            out.slowed = per.counted.fails.len() >= self.user_slow_after;
            per.counted.fails.clear();
            per.next_slot = None;
        }
        out
    }
}

impl LimiterState {
    /// Bounds memory: forgets entries with nothing in flight and nothing
    /// that still limits, once there are many (then not again before the
    /// maps have doubled, so a sweep costs O(1) per attempt amortised).
    fn sweep(&mut self, l: &LoginLimiter, now: Instant) {
        let len = |s: &Self| s.pairs.len().max(s.ip.len()).max(s.user.len());
        if len(self) <= self.sweep_at.max(SWEEP_AT) {
            return;
        }
        self.pairs.retain(|_, p| {
            p.in_flight > 0
                || p.locked_until.is_some_and(|u| u > now)
                || p.last.is_some_and(|t| now.duration_since(t) < l.lockout)
        });
        let live = |fails: &VecDeque<Instant>| {
            fails
                .back()
                .is_some_and(|t| now.duration_since(*t) < l.window)
        };
        self.ip.retain(|_, c| c.in_flight > 0 || live(&c.fails));
        self.user.retain(|_, u| {
            u.counted.in_flight > 0
                || u.next_slot.is_some_and(|t| t > now)
                || live(&u.counted.fails)
        });
        self.sweep_at = 2 * len(self);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Fails `n` attempts at `user` from `from`, one after another.
    fn fail(l: &LoginLimiter, from: IpAddr, user: &str, n: usize) {
        for i in 0..n {
            let a = l
                .reserve(from, user)
                .unwrap_or_else(|r| panic!("attempt {i}: {r:?}"));
            a.failed();
        }
    }

    /// 40 (then 200) concurrent logins from one address: the attempts are
    /// reserved before the (slow, fake) verification, so only the allowed
    /// number are verified and the rest are refused at once.
    #[tokio::test(start_paused = true)]
    async fn concurrent_attempts_beyond_the_limit_are_not_verified() {
        let l = LoginLimiter::default();
        let verified = Arc::new(AtomicUsize::new(0));
        let from = ip("192.0.2.7");
        let run = |user: fn(usize) -> String, n: usize| {
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..n {
                let (l, verified) = (l.clone(), verified.clone());
                tasks.spawn(async move {
                    let a = l.reserve(from, &user(i))?;
                    verified.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    a.failed();
                    Ok::<(), Refusal>(())
                });
            }
            tasks
        };
        let refused = run(|_| "admin".into(), 40).join_all().await;
        assert_eq!(
            verified.load(Ordering::SeqCst),
            5,
            "user_max per (user, address)"
        );
        assert_eq!(
            refused
                .iter()
                .filter(|r| matches!(r, Err(Refusal::InFlight(_))))
                .count(),
            35
        );
        assert!(matches!(l.reserve(from, "admin"), Err(Refusal::Locked(_))));
        // 200 at as many names from one address: the per-address limit
        // (10 failures, the 5 above included) bounds them.
        verified.store(0, Ordering::SeqCst);
        let r = run(|i| format!("u{i}"), 200).join_all().await;
        assert_eq!(verified.load(Ordering::SeqCst), 5);
        assert_eq!(r.iter().filter(|r| r.is_ok()).count(), 5);
        assert!(matches!(l.reserve(from, "zed"), Err(Refusal::Address(_))));
    }

    /// Five failures lock the user for that address only; other
    /// addresses may still log in; the lock lifts after `lockout`; a
    /// success resets the count; the per-address limit still holds.
    #[tokio::test(start_paused = true)]
    async fn lock_is_per_user_and_address() {
        let l = LoginLimiter::default();
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        fail(&l, a, "admin", 4);
        assert!(l.reserve(a, "admin").unwrap().failed(), "the 5th locks");
        match l.reserve(a, "admin") {
            Err(Refusal::Locked(d)) => assert_eq!(d, Duration::from_secs(900)),
            r => panic!("{:?}", r.err()),
        }
        // Another address is not locked out, and its success does not
        // lift the lock of the first.
        l.reserve(b, "admin").unwrap().succeeded();
        assert!(matches!(l.reserve(a, "admin"), Err(Refusal::Locked(_))));
        // Other users from the locked address still may try.
        l.reserve(a, "bob").unwrap().release();
        tokio::time::advance(Duration::from_secs(901)).await;
        fail(&l, a, "admin", 4);
        l.reserve(a, "admin").unwrap().succeeded();
        fail(&l, a, "admin", 4);
        // 8 failures from `a` in the window (the first 5 left it): two more
        // are allowed, then the address is refused for any user.
        tokio::time::advance(Duration::from_secs(1)).await;
        fail(&l, a, "carl", 2);
        assert!(matches!(l.reserve(a, "dora"), Err(Refusal::Address(_))));
        assert!(l.reserve(b, "dora").is_ok_and(|x| {
            x.release();
            true
        }));
    }

    /// Memory stays bounded: refused attempts leave no entries, and stale
    /// entries are swept once there are many.
    #[tokio::test(start_paused = true)]
    async fn entries_stay_bounded() {
        let l = LoginLimiter::default();
        let a = ip("192.0.2.4");
        for i in 0..10 {
            fail(&l, a, &format!("x{i}"), 1);
        }
        let before = l.state().pairs.len();
        for i in 0..1000 {
            assert!(l.reserve(a, &format!("y{i}")).is_err());
        }
        assert_eq!(l.state().pairs.len(), before);
        let b = ip("192.0.2.44");
        for i in 0..(SWEEP_AT + 500) {
            l.reserve(b, &format!("z{i}")).unwrap().release();
        }
        let s = l.state();
        assert!(s.pairs.len() <= SWEEP_AT + 1 && s.user.len() <= SWEEP_AT + 1);
    }

    /// A reservation dropped without an outcome counts as a failure; a
    /// released one does not count.
    #[tokio::test(start_paused = true)]
    async fn dropped_attempts_count_released_ones_do_not() {
        let l = LoginLimiter::default();
        let a = ip("192.0.2.3");
        for _ in 0..10 {
            l.reserve(a, "ana").unwrap().release();
        }
        for _ in 0..5 {
            drop(l.reserve(a, "ana").unwrap());
        }
        assert!(matches!(l.reserve(a, "ana"), Err(Refusal::Locked(_))));
    }

    /// Failures at one user from many addresses slow that user's attempts
    /// down (one per `user_slow_interval`) without locking anyone out;
    /// an address that logged in as the user before is not slowed; an
    /// admin's unlock clears the locks and the slow-down.
    #[tokio::test(start_paused = true)]
    async fn many_addresses_slow_a_user_down_and_unlock_clears() {
        let l = LoginLimiter::default();
        let home = ip("192.0.2.200");
        l.reserve(home, "admin").unwrap().succeeded();
        for i in 0..2 {
            fail(&l, ip(&format!("192.0.2.{}", 10 + i)), "admin", 5);
        }
        let (c, d) = (ip("192.0.2.30"), ip("192.0.2.31"));
        l.reserve(c, "admin").unwrap().failed();
        match l.reserve(d, "admin") {
            Err(Refusal::Slowed(w)) => assert_eq!(w, Duration::from_secs(5)),
            r => panic!("{:?}", r.err()),
        }
        l.reserve(home, "admin").unwrap().succeeded();
        // Other users are not slowed.
        l.reserve(d, "bob").unwrap().release();
        tokio::time::advance(Duration::from_secs(5)).await;
        l.reserve(d, "admin").unwrap().release();
        assert!(matches!(l.reserve(c, "admin"), Err(Refusal::Slowed(_))));
        let u = l.unlock("admin");
        assert_eq!(u.addresses, vec![ip("192.0.2.10"), ip("192.0.2.11")]);
        assert!(u.slowed);
        l.reserve(c, "admin").unwrap().release();
        l.reserve(ip("192.0.2.10"), "admin").unwrap().release();
        assert_eq!(l.unlock("admin"), Unlocked::default());
    }
}
