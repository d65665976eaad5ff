//! Instances of a rule in a time zone: [`RRule::between`] and
//! [`RRule::first`], walking periods (day, week, month, year) from DTSTART.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use super::{Freq, NEVER_FIRES_YEARS, RRule, RRuleError, Until, never, resolve_local};

/// Scope of a `BYDAY` ordinal.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    Month,
    Year,
}

impl RRule {
    /// Whether the series depends on the DTSTART date: `COUNT`, `INTERVAL`
    /// above 1, or a part left to DTSTART (the weekday of a `WEEKLY` rule
    /// without `BYDAY`, the day of a `MONTHLY` or `YEARLY` rule without
    /// `BYMONTHDAY`/`BYDAY`). Such a rule needs an explicit start.
    pub fn depends_on_start(&self) -> bool {
        self.count.is_some()
            || self.interval > 1
            || match self.freq {
                Freq::Daily => false,
                Freq::Weekly => self.by_day.is_empty(),
                Freq::Monthly | Freq::Yearly => {
                    self.by_day.is_empty() && self.by_month_day.is_empty()
                }
            }
    }

    /// The instances with `from <= instant < to`, as (local time, instant),
    /// ascending, of the series starting at `dtstart` (local time in `tz`).
    pub fn between(
        &self,
        dtstart: DateTime,
        tz: &TimeZone,
        from: Timestamp,
        to: Timestamp,
    ) -> Vec<(DateTime, Timestamp)> {
        let mut out = Vec::new();
        if from >= to {
            return out;
        }
        let last_day = tz.to_datetime(to).date().tomorrow().unwrap_or(Date::MAX);
        let first_day = tz.to_datetime(from).date().yesterday().unwrap_or(Date::MIN);
        let skip_to = if self.count.is_some() {
            None
        } else {
            Some(first_day)
        };
        self.walk(
            dtstart,
            tz,
            skip_to,
            |dt, ts| {
                if dt.date() > last_day {
                    return Walk::Stop;
                }
                if ts >= to {
                    return Walk::Stop;
                }
                if ts >= from {
                    out.push((dt, ts));
                }
                Walk::Continue
            },
            |base| base > last_day,
        );
        out
    }

    /// The first instance at or after `dtstart`, or an error saying the rule
    /// never fires (nothing within [`NEVER_FIRES_YEARS`] years, or `UNTIL`
    /// before the start).
    pub fn first(
        &self,
        dtstart: DateTime,
        tz: &TimeZone,
    ) -> Result<(DateTime, Timestamp), RRuleError> {
        match self.until {
            Some(Until::Date(d)) if d < dtstart.date() => {
                return Err(never(format!("UNTIL {d} is before the start {dtstart}")));
            }
            Some(Until::Local(u)) if u < dtstart => {
                return Err(never(format!("UNTIL {u} is before the start {dtstart}")));
            }
            Some(Until::Utc(u)) => {
                if let Ok(start) = dtstart.to_zoned(tz.clone())
                    && u < start.timestamp()
                {
                    return Err(never(format!("UNTIL {u} is before the start {dtstart}")));
                }
            }
            _ => {}
        }
        let limit = dtstart
            .date()
            .checked_add(i64::from(NEVER_FIRES_YEARS).years())
            .unwrap_or(Date::MAX);
        let mut found = None;
        self.walk(
            dtstart,
            tz,
            None,
            |dt, ts| {
                found = Some((dt, ts));
                Walk::Stop
            },
            |base| base > limit,
        );
        found.ok_or_else(|| {
            if self.until.is_some() || self.count.is_some() {
                never(format!(
                    "no date from {} matches the rule before its UNTIL/COUNT ends it",
                    dtstart.date()
                ))
            } else {
                never(format!(
                    "no date in the {NEVER_FIRES_YEARS} years from {} matches the rule",
                    dtstart.date()
                ))
            }
        })
    }

    /// The period start for index `k` (0 = the period holding `dtstart`),
    /// or `None` past the end of time.
    fn period_base(&self, start: Date, k: i64) -> Option<Date> {
        let step = k.checked_mul(i64::from(self.interval))?;
        match self.freq {
            Freq::Daily => start.checked_add(step.days()).ok(),
            Freq::Weekly => {
                let back = i64::from(start.weekday().since(self.wkst));
                start.checked_add((step * 7 - back).days()).ok()
            }
            Freq::Monthly => {
                let months = i64::from(start.year()) * 12 + i64::from(start.month() - 1) + step;
                let y = i16::try_from(months.div_euclid(12)).ok()?;
                Date::new(y, (months.rem_euclid(12) + 1) as i8, 1).ok()
            }
            Freq::Yearly => {
                let y = i16::try_from(i64::from(start.year()) + step).ok()?;
                Date::new(y, 1, 1).ok()
            }
        }
    }

    /// The first period index whose period may contain `day`.
    fn period_index_near(&self, start: Date, day: Date) -> i64 {
        let interval = i64::from(self.interval);
        let units = match self.freq {
            Freq::Daily => start
                .until(day)
                .map(|s| i64::from(s.get_days()))
                .unwrap_or(0),
            Freq::Weekly => {
                let ws = self.period_base(start, 0).unwrap_or(start);
                start
                    .until(day)
                    .map(|_| {
                        ws.until(day)
                            .map(|s| i64::from(s.get_days()) / 7)
                            .unwrap_or(0)
                    })
                    .unwrap_or(0)
            }
            Freq::Monthly => {
                (i64::from(day.year()) - i64::from(start.year())) * 12
                    + i64::from(day.month() - start.month())
            }
            Freq::Yearly => i64::from(day.year()) - i64::from(start.year()),
        };
        (units / interval - 1).max(0)
    }

    fn period_len(&self, base: Date) -> i16 {
        match self.freq {
            Freq::Daily => 1,
            Freq::Weekly => 7,
            Freq::Monthly => i16::from(base.days_in_month()),
            Freq::Yearly => base.days_in_year(),
        }
    }

    fn month_day_matches(&self, d: Date) -> bool {
        let dim = d.days_in_month();
        self.by_month_day.iter().any(|&md| {
            if md > 0 {
                d.day() == md
            } else {
                d.day() == dim + md + 1
            }
        })
    }

    fn by_day_matches(&self, d: Date, scope: Scope) -> bool {
        let wd = d.weekday();
        self.by_day.iter().any(|b| {
            if b.weekday != wd {
                return false;
            }
            let Some(n) = b.nth else { return true };
            let (pos, len) = match scope {
                Scope::Month => (i16::from(d.day()), i16::from(d.days_in_month())),
                Scope::Year => (d.day_of_year(), d.days_in_year()),
            };
            if n > 0 {
                (pos - 1) / 7 + 1 == i16::from(n)
            } else {
                (len - pos) / 7 + 1 == -i16::from(n)
            }
        })
    }

    fn day_matches(&self, d: Date, start: Date) -> bool {
        if !self.by_month.is_empty() && !self.by_month.contains(&d.month()) {
            return false;
        }
        if !self.by_month_day.is_empty() && !self.month_day_matches(d) {
            return false;
        }
        if !self.by_day.is_empty() {
            let scope = if self.freq == Freq::Yearly && self.by_month.is_empty() {
                Scope::Year
            } else {
                Scope::Month
            };
            if !self.by_day_matches(d, scope) {
                return false;
            }
        }
        match self.freq {
            Freq::Daily => true,
            Freq::Weekly => !self.by_day.is_empty() || d.weekday() == start.weekday(),
            Freq::Monthly => {
                !self.by_day.is_empty() || !self.by_month_day.is_empty() || d.day() == start.day()
            }
            Freq::Yearly => {
                !self.by_day.is_empty()
                    || !self.by_month_day.is_empty()
                    || (d.day() == start.day()
                        && (!self.by_month.is_empty() || d.month() == start.month()))
            }
        }
    }

    fn times(&self, dtstart: DateTime) -> Vec<Time> {
        let hours = if self.by_hour.is_empty() {
            vec![dtstart.hour()]
        } else {
            self.by_hour.clone()
        };
        let minutes = if self.by_minute.is_empty() {
            vec![dtstart.minute()]
        } else {
            self.by_minute.clone()
        };
        let mut out: Vec<Time> = hours
            .iter()
            .flat_map(|&h| {
                minutes
                    .iter()
                    .filter_map(move |&m| Time::new(h, m, dtstart.second(), 0).ok())
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Walks the series in order: `emit` sees every instance at or after
    /// `dtstart` within UNTIL/COUNT; `past` says when a period start is
    /// beyond what the caller wants. `skip_to` jumps over whole periods
    /// ending before that day (only valid without COUNT).
    fn walk(
        &self,
        dtstart: DateTime,
        tz: &TimeZone,
        skip_to: Option<Date>,
        mut emit: impl FnMut(DateTime, Timestamp) -> Walk,
        past: impl Fn(Date) -> bool,
    ) {
        let start = dtstart.date();
        let times = self.times(dtstart);
        let mut emitted: u32 = 0;
        let mut k = match skip_to {
            Some(day) if day > start => self.period_index_near(start, day),
            _ => 0,
        };
        let mut set: Vec<DateTime> = Vec::new();
        loop {
            let Some(base) = self.period_base(start, k) else {
                return;
            };
            if past(base) {
                return;
            }
            k += 1;
            set.clear();
            let mut d = base;
            for _ in 0..self.period_len(base) {
                if self.day_matches(d, start) {
                    set.extend(times.iter().map(|t| d.to_datetime(*t)));
                }
                match d.tomorrow() {
                    Ok(n) => d = n,
                    Err(_) => break,
                }
            }
            if set.is_empty() {
                continue;
            }
            if !self.by_set_pos.is_empty() {
                let n = set.len() as i64;
                let mut picked: Vec<DateTime> = self
                    .by_set_pos
                    .iter()
                    .filter_map(|&p| {
                        let i = if p > 0 {
                            i64::from(p) - 1
                        } else {
                            n + i64::from(p)
                        };
                        usize::try_from(i).ok().and_then(|i| set.get(i).copied())
                    })
                    .collect();
                picked.sort();
                picked.dedup();
                set = picked;
            }
            for &dt in &set {
                if dt < dtstart {
                    continue;
                }
                match self.until {
                    Some(Until::Date(u)) if dt.date() > u => return,
                    Some(Until::Local(u)) if dt > u => return,
                    _ => {}
                }
                let Some(ts) = resolve_local(tz, dt) else {
                    continue;
                };
                if let Some(Until::Utc(u)) = self.until
                    && ts > u
                {
                    return;
                }
                if emit(dt, ts) == Walk::Stop {
                    return;
                }
                emitted += 1;
                if self.count.is_some_and(|c| emitted >= c) {
                    return;
                }
            }
        }
    }
}

#[derive(PartialEq, Eq)]
enum Walk {
    Continue,
    Stop,
}
