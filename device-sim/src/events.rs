//! A simulated camera's event service (PullPoint) and settable clock: pure
//! state, driven by the SOAP core ([`crate::onvif`]) with the camera's time
//! passed in.
//!
//! Conditions come from faults: [`Fault::Tamper`], [`Fault::VideoLoss`] and
//! [`Fault::Motion`] hold while set; setting or clearing one queues a
//! `Changed` message on every live subscription. A new subscription starts
//! with one `Initialized` message per condition (as real cameras send the
//! state of their properties), so a gateway that rebuilds its subscription
//! loses no state. [`Fault::ExpireSubscriptions`] ends every subscription
//! the moment it is set. Topics differ by flavour as the vendors' do;
//! TP-Link and generic cameras offer no event service.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use time::OffsetDateTime;

use crate::fault::Fault;
use crate::flavour::Flavour;

/// Most live subscriptions per camera; more are refused.
pub const MAX_SUBSCRIPTIONS: usize = 16;

/// Most queued messages per subscription (the oldest are dropped).
pub const MAX_QUEUE: usize = 1000;

/// Longest subscription granted.
pub const MAX_TERMINATION: Duration = Duration::from_secs(3600);

/// A condition a camera raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Lens covered or turned.
    Tamper,
    /// No video signal.
    VideoLoss,
    /// Motion.
    Motion,
}

const CONDITIONS: [Condition; 3] = [Condition::Tamper, Condition::VideoLoss, Condition::Motion];

impl Condition {
    fn from_fault(f: Option<&Fault>) -> Option<Condition> {
        match f? {
            Fault::Tamper => Some(Condition::Tamper),
            Fault::VideoLoss => Some(Condition::VideoLoss),
            Fault::Motion => Some(Condition::Motion),
            _ => None,
        }
    }

    /// Topic and data item name of this condition on a flavour's camera
    /// (`None` for flavours without events).
    pub fn topic(self, flavour: Flavour) -> Option<(&'static str, &'static str)> {
        if !flavour.has_events() {
            return None;
        }
        Some(match (self, flavour) {
            (Condition::Tamper, Flavour::Dahua) => {
                ("tns1:VideoSource/GlobalSceneChange/ImagingService", "State")
            }
            (Condition::Tamper, Flavour::Axis) => {
                ("tns1:VideoSource/tnsaxis:Tampering", "tampering")
            }
            (Condition::Tamper, _) => ("tns1:RuleEngine/TamperDetector/Tamper", "IsTamper"),
            (Condition::VideoLoss, _) => ("tns1:VideoSource/SignalLoss", "State"),
            (Condition::Motion, Flavour::Dahua | Flavour::Axis) => {
                ("tns1:VideoSource/MotionAlarm", "State")
            }
            (Condition::Motion, _) => ("tns1:RuleEngine/CellMotionDetector/Motion", "IsMotion"),
        })
    }
}

/// One queued notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Which condition.
    pub condition: Condition,
    /// Whether it holds.
    pub active: bool,
    /// Camera time of the event.
    pub at: OffsetDateTime,
    /// `Initialized` (state at subscription start) rather than `Changed`.
    pub initialized: bool,
}

#[derive(Debug)]
struct Sub {
    termination: OffsetDateTime,
    queue: VecDeque<Message>,
}

/// Why an event call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventError {
    /// The subscription does not exist (never did, expired, unsubscribed).
    NoSubscription,
    /// Too many live subscriptions.
    TooMany,
}

/// A camera's event and clock state.
#[derive(Debug, Default)]
pub struct EventState {
    /// Added to the camera's clock by SetSystemDateAndTime / NTP sync.
    pub clock_adjust: time::Duration,
    /// NTP server set with SetNTP.
    pub ntp_server: Option<String>,
    /// The clock follows NTP (DateTimeType NTP).
    pub ntp: bool,
    subs: HashMap<u64, Sub>,
    next_id: u64,
    active: [bool; 3],
    last_fault: Option<Fault>,
    /// Messages dropped because a queue was full.
    pub overflowed: u64,
}

fn idx(c: Condition) -> usize {
    match c {
        Condition::Tamper => 0,
        Condition::VideoLoss => 1,
        Condition::Motion => 2,
    }
}

impl EventState {
    /// Applies the current fault at camera time `now`: condition changes are
    /// queued, expired subscriptions dropped, and every subscription ended
    /// when [`Fault::ExpireSubscriptions`] was just set.
    pub fn sync(&mut self, fault: Option<&Fault>, now: OffsetDateTime) {
        if fault != self.last_fault.as_ref() {
            if matches!(fault, Some(Fault::ExpireSubscriptions)) {
                self.subs.clear();
            }
            self.last_fault = fault.cloned();
        }
        let holding = Condition::from_fault(fault);
        for c in CONDITIONS {
            let active = holding == Some(c);
            if self.active[idx(c)] != active {
                self.active[idx(c)] = active;
                self.push_all(Message {
                    condition: c,
                    active,
                    at: now,
                    initialized: false,
                });
            }
        }
        self.subs.retain(|_, s| s.termination > now);
    }

    fn push_all(&mut self, m: Message) {
        for s in self.subs.values_mut() {
            if s.queue.len() >= MAX_QUEUE {
                s.queue.pop_front();
                self.overflowed += 1;
            }
            s.queue.push_back(m.clone());
        }
    }

    /// A new subscription ending `want` after `now` (capped), starting with
    /// the current state of every condition. Returns its id and end.
    pub fn create(
        &mut self,
        now: OffsetDateTime,
        want: Duration,
    ) -> Result<(u64, OffsetDateTime), EventError> {
        if self.subs.len() >= MAX_SUBSCRIPTIONS {
            return Err(EventError::TooMany);
        }
        self.next_id += 1;
        let termination = now + want.min(MAX_TERMINATION);
        let queue = CONDITIONS
            .iter()
            .map(|&c| Message {
                condition: c,
                active: self.active[idx(c)],
                at: now,
                initialized: true,
            })
            .collect();
        self.subs.insert(self.next_id, Sub { termination, queue });
        Ok((self.next_id, termination))
    }

    /// Takes up to `limit` queued messages of subscription `id`, and its end.
    pub fn pull(
        &mut self,
        id: u64,
        limit: usize,
    ) -> Result<(Vec<Message>, OffsetDateTime), EventError> {
        let s = self.subs.get_mut(&id).ok_or(EventError::NoSubscription)?;
        let n = limit.min(s.queue.len());
        Ok((s.queue.drain(..n).collect(), s.termination))
    }

    /// Whether subscription `id` has messages waiting.
    pub fn pending(&self, id: u64) -> bool {
        self.subs.get(&id).is_some_and(|s| !s.queue.is_empty())
    }

    /// Extends subscription `id` to `want` after `now`.
    pub fn renew(
        &mut self,
        id: u64,
        now: OffsetDateTime,
        want: Duration,
    ) -> Result<OffsetDateTime, EventError> {
        let s = self.subs.get_mut(&id).ok_or(EventError::NoSubscription)?;
        s.termination = now + want.min(MAX_TERMINATION);
        Ok(s.termination)
    }

    /// Ends subscription `id`.
    pub fn unsubscribe(&mut self, id: u64) -> Result<(), EventError> {
        self.subs
            .remove(&id)
            .map(|_| ())
            .ok_or(EventError::NoSubscription)
    }

    /// Ends every subscription now (the control endpoint does this when
    /// [`Fault::ExpireSubscriptions`] is set, so no request is needed to
    /// notice it).
    pub fn expire_all(&mut self) {
        self.subs.clear();
    }

    /// Live subscriptions.
    pub fn subscriptions(&self) -> usize {
        self.subs.len()
    }
}

/// `PT60S`, `PT1M30S`, `PT2H`, `P1D` → duration (xs:duration subset without
/// years and months); an absolute dateTime is not handled (`None`).
pub fn parse_xs_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let rest = s.strip_prefix('P')?;
    let (days, time) = match rest.split_once('T') {
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    let mut secs = 0f64;
    let mut any = false;
    if !days.is_empty() {
        secs += days.strip_suffix('D')?.parse::<f64>().ok()? * 86_400.0;
        any = true;
    }
    let mut num = String::new();
    for ch in time.chars() {
        match ch {
            '0'..='9' | '.' => num.push(ch),
            'H' | 'M' | 'S' => {
                let v: f64 = num.parse().ok()?;
                num.clear();
                any = true;
                secs += v * match ch {
                    'H' => 3600.0,
                    'M' => 60.0,
                    _ => 1.0,
                };
            }
            _ => return None,
        }
    }
    (any && num.is_empty() && (0.0..1e9).contains(&secs)).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-12-06 09:00:00 UTC);

    #[test]
    fn conditions_follow_faults_and_new_subscriptions_get_the_state() {
        let mut e = EventState::default();
        let (a, _) = e.create(T0, Duration::from_secs(60)).unwrap();
        let (init, _) = e.pull(a, 10).unwrap();
        assert_eq!(init.len(), 3);
        assert!(init.iter().all(|m| m.initialized && !m.active));
        e.sync(Some(&Fault::Tamper), T0);
        e.sync(Some(&Fault::Tamper), T0);
        let (m, _) = e.pull(a, 10).unwrap();
        assert_eq!(m.len(), 1, "one change, not one per sync");
        assert_eq!((m[0].condition, m[0].active), (Condition::Tamper, true));
        // Expiry ends every subscription at once; a new one still knows
        // the tamper holds (nothing is lost across the rebuild).
        e.sync(Some(&Fault::ExpireSubscriptions), T0);
        assert_eq!(e.pull(a, 10), Err(EventError::NoSubscription));
        let (b, _) = e.create(T0, Duration::from_secs(60)).unwrap();
        let (m, _) = e.pull(b, 10).unwrap();
        // ExpireSubscriptions replaced Tamper, so the tamper ended.
        assert!(m.iter().all(|m| !m.active));
        e.sync(Some(&Fault::Tamper), T0);
        let (c, _) = e.create(T0, Duration::from_secs(60)).unwrap();
        let (m, _) = e.pull(c, 10).unwrap();
        assert!(
            m.iter()
                .any(|m| m.condition == Condition::Tamper && m.active)
        );
    }

    #[test]
    fn subscriptions_expire_renew_and_are_capped() {
        let mut e = EventState::default();
        let (a, end) = e.create(T0, Duration::from_secs(10)).unwrap();
        assert_eq!(end, T0 + Duration::from_secs(10));
        e.renew(a, T0 + Duration::from_secs(9), Duration::from_secs(10))
            .unwrap();
        e.sync(None, T0 + Duration::from_secs(15));
        assert!(e.pull(a, 1).is_ok(), "renewed past 15 s");
        e.sync(None, T0 + Duration::from_secs(20));
        assert_eq!(e.pull(a, 1), Err(EventError::NoSubscription));
        for _ in 0..MAX_SUBSCRIPTIONS {
            e.create(T0, Duration::from_secs(60)).unwrap();
        }
        assert_eq!(
            e.create(T0, Duration::from_secs(60)),
            Err(EventError::TooMany)
        );
        let (_, end) = {
            let mut f = EventState::default();
            f.create(T0, Duration::from_secs(999_999)).unwrap()
        };
        assert_eq!(end, T0 + MAX_TERMINATION);
    }

    #[test]
    fn queues_are_capped() {
        let mut e = EventState::default();
        let (a, _) = e.create(T0, Duration::from_secs(60)).unwrap();
        for i in 0..MAX_QUEUE {
            let f = if i % 2 == 0 {
                Some(Fault::Motion)
            } else {
                None
            };
            e.sync(f.as_ref(), T0);
        }
        let (m, _) = e.pull(a, usize::MAX).unwrap();
        assert_eq!(m.len(), MAX_QUEUE);
        assert_eq!(e.overflowed, 3);
    }

    #[test]
    fn xs_durations() {
        assert_eq!(parse_xs_duration("PT60S"), Some(Duration::from_secs(60)));
        assert_eq!(parse_xs_duration("PT1M30S"), Some(Duration::from_secs(90)));
        assert_eq!(
            parse_xs_duration("P1DT1H"),
            Some(Duration::from_secs(90_000))
        );
        assert_eq!(
            parse_xs_duration("PT0.5S"),
            Some(Duration::from_millis(500))
        );
        for bad in [
            "",
            "60",
            "PT",
            "PTS",
            "PT5X",
            "2026-12-06T09:00:00Z",
            "PT1e99S",
        ] {
            assert_eq!(parse_xs_duration(bad), None, "{bad}");
        }
    }
}
