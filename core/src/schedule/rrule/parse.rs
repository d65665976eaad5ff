//! The text of a rule (`FREQ=WEEKLY;BYDAY=MO;BYHOUR=8`) → [`RRule`], part
//! by part, then the checks that keep evaluation bounded.

use std::fmt;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;

use super::{
    ByDay, Freq, MAX_COUNT, MAX_TIMES_PER_DAY, RRule, RRuleError, Until, parse_weekday, perr,
    weekday_code,
};

fn parse_int_list<T: std::str::FromStr + PartialOrd + Copy + fmt::Display>(
    part: &str,
    value: &str,
    ok: impl Fn(T) -> bool,
    range: &str,
) -> Result<Vec<T>, RRuleError> {
    let mut out = Vec::new();
    for v in value.split(',') {
        let n: T = v
            .trim()
            .strip_prefix('+')
            .unwrap_or(v.trim())
            .parse()
            .map_err(|_| perr(part, format!("`{v}` is not a number")))?;
        if !ok(n) {
            return Err(perr(part, format!("{n} is out of range ({range})")));
        }
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

fn parse_until(v: &str) -> Result<Until, RRuleError> {
    let bad = || {
        perr(
            "UNTIL",
            format!("`{v}` is not a date (20261114) or date-time (20261114T180000, or …Z for UTC)"),
        )
    };
    let digits = |s: &str| -> Option<i32> {
        if s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    let compact: String = v.chars().filter(|c| *c != '-' && *c != ':').collect();
    let (date_part, rest) = compact.split_at(compact.len().min(8));
    if date_part.len() != 8 {
        return Err(bad());
    }
    let (Some(y), Some(m), Some(d)) = (
        digits(&date_part[0..4]),
        digits(&date_part[4..6]),
        digits(&date_part[6..8]),
    ) else {
        return Err(bad());
    };
    let date = Date::new(y as i16, m as i8, d as i8).map_err(|_| bad())?;
    if rest.is_empty() {
        return Ok(Until::Date(date));
    }
    let Some(time) = rest.strip_prefix('T') else {
        return Err(bad());
    };
    let (time, utc) = match time.strip_suffix('Z') {
        Some(t) => (t, true),
        None => (time, false),
    };
    if time.len() != 6 {
        return Err(bad());
    }
    let (Some(h), Some(mi), Some(s)) = (
        digits(&time[0..2]),
        digits(&time[2..4]),
        digits(&time[4..6]),
    ) else {
        return Err(bad());
    };
    let t = Time::new(h as i8, mi as i8, s as i8, 0).map_err(|_| bad())?;
    let dt = date.to_datetime(t);
    if utc {
        let ts = dt.to_zoned(TimeZone::UTC).map_err(|_| bad())?.timestamp();
        Ok(Until::Utc(ts))
    } else {
        Ok(Until::Local(dt))
    }
}

impl RRule {
    /// Parses `FREQ=...;...` (an optional `RRULE:` prefix is allowed). Part
    /// names are case-insensitive; each may appear once.
    pub fn parse(s: &str) -> Result<RRule, RRuleError> {
        let text = s.trim();
        let body = text
            .strip_prefix("RRULE:")
            .or_else(|| text.strip_prefix("rrule:"))
            .unwrap_or(text);
        if body.is_empty() {
            return Err(perr("FREQ", "the rule is empty; start with FREQ=..."));
        }
        let mut seen: Vec<String> = Vec::new();
        let mut freq = None;
        let mut rule = RRule {
            freq: Freq::Daily,
            interval: 1,
            by_day: Vec::new(),
            by_month_day: Vec::new(),
            by_month: Vec::new(),
            by_hour: Vec::new(),
            by_minute: Vec::new(),
            by_set_pos: Vec::new(),
            count: None,
            until: None,
            wkst: Weekday::Monday,
            text: body.to_string(),
        };
        for piece in body.split(';') {
            let piece = piece.trim();
            if piece.is_empty() {
                continue;
            }
            let Some((name, value)) = piece.split_once('=') else {
                return Err(perr(piece, "expected NAME=VALUE"));
            };
            let name = name.trim().to_ascii_uppercase();
            let value = value.trim().to_ascii_uppercase();
            if seen.contains(&name) {
                return Err(perr(&name, "given twice"));
            }
            seen.push(name.clone());
            if value.is_empty() {
                return Err(perr(&name, "has no value"));
            }
            if name == "FREQ" {
                freq = Some(parse_freq(&value)?);
            } else {
                rule.set_part(&name, &value)?;
            }
        }
        rule.freq =
            freq.ok_or_else(|| perr("FREQ", "is required (DAILY, WEEKLY, MONTHLY or YEARLY)"))?;
        rule.check()?;
        Ok(rule)
    }

    /// Sets one part other than `FREQ` from its (upper-case) value.
    fn set_part(&mut self, name: &str, value: &str) -> Result<(), RRuleError> {
        match name {
            "INTERVAL" => {
                self.interval =
                    value.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        perr("INTERVAL", format!("`{value}` is not a number ≥ 1"))
                    })?;
            }
            "COUNT" => {
                self.count = Some(
                    value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_COUNT).contains(n))
                        .ok_or_else(|| {
                            perr(
                                "COUNT",
                                format!("`{value}` is not a number 1..={MAX_COUNT}"),
                            )
                        })?,
                );
            }
            "UNTIL" => self.until = Some(parse_until(value)?),
            "WKST" => {
                self.wkst = parse_weekday(value).ok_or_else(|| {
                    perr(
                        "WKST",
                        format!("`{value}` is not MO, TU, WE, TH, FR, SA or SU"),
                    )
                })?;
            }
            "BYDAY" => {
                for v in value.split(',') {
                    let v = v.trim();
                    let split = v.len().saturating_sub(2);
                    let (n, wd) = v.split_at(split);
                    let weekday = parse_weekday(wd).ok_or_else(|| {
                    perr(
                        "BYDAY",
                        format!("`{v}` is not a weekday (MO..SU, optionally with an ordinal such as 1MO or -1FR)"),
                    )
                })?;
                    let nth = if n.is_empty() {
                        None
                    } else {
                        let k: i8 = n.strip_prefix('+').unwrap_or(n).parse().map_err(|_| {
                            perr("BYDAY", format!("`{v}`: `{n}` is not an ordinal"))
                        })?;
                        if k == 0 || !(-53..=53).contains(&k) {
                            return Err(perr(
                                "BYDAY",
                                format!("`{v}`: the ordinal must be ±1..=53"),
                            ));
                        }
                        Some(k)
                    };
                    let bd = ByDay { nth, weekday };
                    if !self.by_day.contains(&bd) {
                        self.by_day.push(bd);
                    }
                }
            }
            "BYMONTHDAY" => {
                self.by_month_day = parse_int_list(
                    "BYMONTHDAY",
                    value,
                    |n: i8| n != 0 && (-31..=31).contains(&n),
                    "1..=31 or -31..=-1",
                )?
            }
            "BYMONTH" => {
                self.by_month =
                    parse_int_list("BYMONTH", value, |n: i8| (1..=12).contains(&n), "1..=12")?
            }
            "BYHOUR" => {
                self.by_hour =
                    parse_int_list("BYHOUR", value, |n: i8| (0..=23).contains(&n), "0..=23")?
            }
            "BYMINUTE" => {
                self.by_minute =
                    parse_int_list("BYMINUTE", value, |n: i8| (0..=59).contains(&n), "0..=59")?
            }
            "BYSETPOS" => {
                self.by_set_pos = parse_int_list(
                    "BYSETPOS",
                    value,
                    |n: i16| n != 0 && (-366..=366).contains(&n),
                    "1..=366 or -366..=-1",
                )?
            }
            "BYSECOND" | "BYYEARDAY" | "BYWEEKNO" | "RSCALE" | "SKIP" => {
                return Err(perr(name, "is not supported by the gateway"));
            }
            other => {
                return Err(perr(other, "is not a recurrence rule part"));
            }
        }
        Ok(())
    }

    fn check(&self) -> Result<(), RRuleError> {
        let f = self.freq.as_str();
        if self.interval > self.freq.max_interval() {
            return Err(perr(
                "INTERVAL",
                format!(
                    "{} is too large for FREQ={f}: a rule must repeat within ten years (at most {})",
                    self.interval,
                    self.freq.max_interval()
                ),
            ));
        }
        if self.count.is_some() && self.until.is_some() {
            return Err(perr("COUNT", "COUNT and UNTIL may not both be given"));
        }
        if matches!(self.freq, Freq::Daily | Freq::Weekly)
            && let Some(bd) = self.by_day.iter().find(|b| b.nth.is_some())
        {
            return Err(perr(
                "BYDAY",
                format!(
                    "`{}{}`: ordinals are only allowed with FREQ=MONTHLY or YEARLY",
                    bd.nth.unwrap_or_default(),
                    weekday_code(bd.weekday)
                ),
            ));
        }
        let month_scope =
            self.freq == Freq::Monthly || (self.freq == Freq::Yearly && !self.by_month.is_empty());
        if month_scope
            && let Some(bd) = self
                .by_day
                .iter()
                .find(|b| b.nth.is_some_and(|n| !(-5..=5).contains(&n)))
        {
            return Err(perr(
                "BYDAY",
                format!(
                    "`{}{}`: a month has at most 5 of each weekday",
                    bd.nth.unwrap_or_default(),
                    weekday_code(bd.weekday)
                ),
            ));
        }
        if self.freq == Freq::Weekly && !self.by_month_day.is_empty() {
            return Err(perr("BYMONTHDAY", "cannot be used with FREQ=WEEKLY"));
        }
        if !self.by_set_pos.is_empty()
            && self.by_day.is_empty()
            && self.by_month_day.is_empty()
            && self.by_month.is_empty()
            && self.by_hour.is_empty()
            && self.by_minute.is_empty()
        {
            return Err(perr("BYSETPOS", "needs another BY… part to choose from"));
        }
        let times = self.by_hour.len().max(1) * self.by_minute.len().max(1);
        if times > MAX_TIMES_PER_DAY {
            return Err(perr(
                "BYMINUTE",
                format!("BYHOUR × BYMINUTE gives {times} times a day; at most {MAX_TIMES_PER_DAY}"),
            ));
        }
        Ok(())
    }
}

/// `FREQ`: the four supported frequencies.
fn parse_freq(value: &str) -> Result<Freq, RRuleError> {
    Ok(match value {
        "DAILY" => Freq::Daily,
        "WEEKLY" => Freq::Weekly,
        "MONTHLY" => Freq::Monthly,
        "YEARLY" => Freq::Yearly,
        "SECONDLY" | "MINUTELY" | "HOURLY" => {
            return Err(perr(
                "FREQ",
                format!("{value} is not supported: use DAILY with BYHOUR/BYMINUTE"),
            ));
        }
        other => {
            return Err(perr(
                "FREQ",
                format!("`{other}` is not DAILY, WEEKLY, MONTHLY or YEARLY"),
            ));
        }
    })
}
