//! Partial dates, date-times and times with FHIRPath precision semantics.
//!
//! A value remembers the precision it was written with. Comparing two values compares
//! component by component down to the coarser precision; if all of those are equal and the
//! precisions differ, the answer is unknown (empty). Seconds and milliseconds count as one
//! precision (`@T10:30:00 = @T10:30:00.000` is true).

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use std::cmp::Ordering;
use std::fmt;

/// How much of a date/time value is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Precision {
    /// `2019`
    Year,
    /// `2019-01`
    Month,
    /// `2019-01-31`
    Day,
    /// `T10`
    Hour,
    /// `T10:30`
    Minute,
    /// `T10:30:00`
    Second,
    /// `T10:30:00.000`
    Millisecond,
}

/// A date/time value; dates and times are stored in the same shape (see [`Date`] and [`Time`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    /// Year.
    pub year: i32,
    /// Month (1-12; 1 when not known).
    pub month: u32,
    /// Day (1-31; 1 when not known).
    pub day: u32,
    /// Hour (0-23).
    pub hour: u32,
    /// Minute.
    pub minute: u32,
    /// Second.
    pub second: u32,
    /// Milliseconds.
    pub millis: u32,
    /// Precision.
    pub precision: Precision,
    /// Offset from UTC in minutes, when written.
    pub tz: Option<i32>,
}

/// A date (precision year, month or day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date(pub DateTime);

/// A time of day (precision hour to millisecond).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time {
    /// Hour.
    pub hour: u32,
    /// Minute.
    pub minute: u32,
    /// Second.
    pub second: u32,
    /// Milliseconds.
    pub millis: u32,
    /// Precision (hour or finer).
    pub precision: Precision,
}

fn num(s: &str, len: usize) -> Option<u32> {
    if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

pub(crate) fn days_in_month(year: i32, month: u32) -> u32 {
    let (ny, nm) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    NaiveDate::from_ymd_opt(ny, nm, 1)
        .and_then(|d| d.pred_opt())
        .map_or(28, |d| d.day())
}

/// Parses `hh[:mm[:ss[.fff]]]` into a time.
fn parse_time_part(s: &str) -> Option<Time> {
    let (main, frac) = match s.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (s, None),
    };
    let mut parts = main.split(':');
    let hour = num(parts.next()?, 2)?;
    let mut t = Time {
        hour,
        minute: 0,
        second: 0,
        millis: 0,
        precision: Precision::Hour,
    };
    if let Some(m) = parts.next() {
        t.minute = num(m, 2)?;
        t.precision = Precision::Minute;
        if let Some(sec) = parts.next() {
            t.second = num(sec, 2)?;
            t.precision = Precision::Second;
        }
    }
    if parts.next().is_some() || hour > 23 || t.minute > 59 || t.second > 60 {
        return None;
    }
    if let Some(f) = frac {
        if t.precision != Precision::Second
            || f.is_empty()
            || !f.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let mut ms = String::from(f);
        ms.truncate(3);
        while ms.len() < 3 {
            ms.push('0');
        }
        t.millis = ms.parse().ok()?;
        t.precision = Precision::Millisecond;
    }
    Some(t)
}

impl Time {
    /// Parses `hh:mm:ss.fff` (any prefix of it).
    pub fn parse(s: &str) -> Option<Time> {
        parse_time_part(s)
    }

    fn parts(&self) -> [u32; 4] {
        [self.hour, self.minute, self.second, self.millis]
    }
}

impl Date {
    /// Parses `YYYY[-MM[-DD]]`.
    pub fn parse(s: &str) -> Option<Date> {
        let dt = DateTime::parse(s)?;
        (dt.precision <= Precision::Day && dt.tz.is_none() && !s.contains('T')).then_some(Date(dt))
    }
}

impl DateTime {
    /// Parses `YYYY[-MM[-DD[Thh[:mm[:ss[.fff]]][Z|+hh:mm]]]]`, also `YYYY-MM-DDT` and `YYYYT`.
    pub fn parse(s: &str) -> Option<DateTime> {
        let (date, time) = match s.split_once('T') {
            Some((d, t)) => (d, Some(t)),
            None => (s, None),
        };
        let mut parts = date.split('-');
        let year = num(parts.next()?, 4)? as i32;
        let mut dt = DateTime {
            year,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
            millis: 0,
            precision: Precision::Year,
            tz: None,
        };
        if let Some(m) = parts.next() {
            dt.month = num(m, 2)?;
            if !(1..=12).contains(&dt.month) {
                return None;
            }
            dt.precision = Precision::Month;
            if let Some(d) = parts.next() {
                dt.day = num(d, 2)?;
                if dt.day < 1 || dt.day > days_in_month(year, dt.month) {
                    return None;
                }
                dt.precision = Precision::Day;
            }
        }
        if parts.next().is_some() {
            return None;
        }
        let Some(time) = time else {
            return Some(dt);
        };
        if time.is_empty() {
            return Some(dt);
        }
        if dt.precision != Precision::Day {
            return None;
        }
        let (tpart, tz) = if let Some(t) = time.strip_suffix('Z') {
            (t, Some(0))
        } else if let Some(pos) = time.rfind(['+', '-']) {
            let (t, z) = time.split_at(pos);
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let (h, m) = z[1..].split_once(':')?;
            let h = num(h, 2)? as i32;
            let m = num(m, 2)? as i32;
            if h > 14 || m > 59 {
                return None;
            }
            (t, Some(sign * (h * 60 + m)))
        } else {
            (time, None)
        };
        let t = parse_time_part(tpart)?;
        dt.hour = t.hour;
        dt.minute = t.minute;
        dt.second = t.second;
        dt.millis = t.millis;
        dt.precision = t.precision;
        dt.tz = tz;
        Some(dt)
    }

    fn parts(&self) -> [i64; 7] {
        [
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
            i64::from(self.hour),
            i64::from(self.minute),
            i64::from(self.second),
            i64::from(self.millis),
        ]
    }

    fn naive(&self) -> Option<NaiveDateTime> {
        NaiveDate::from_ymd_opt(self.year, self.month, self.day)?.and_hms_milli_opt(
            self.hour,
            self.minute,
            self.second.min(59),
            self.millis,
        )
    }

    fn from_naive(n: NaiveDateTime, precision: Precision, tz: Option<i32>) -> DateTime {
        DateTime {
            year: n.year(),
            month: n.month(),
            day: n.day(),
            hour: n.hour(),
            minute: n.minute(),
            second: n.second(),
            millis: n.nanosecond() / 1_000_000,
            precision,
            tz,
        }
    }

    /// The same instant expressed in UTC (only for values with a time and a zone).
    fn to_utc(self) -> DateTime {
        match (self.tz, self.precision >= Precision::Hour, self.naive()) {
            (Some(off), true, Some(n)) if off != 0 => {
                let shifted = n - chrono::Duration::minutes(i64::from(off));
                DateTime::from_naive(shifted, self.precision, Some(0))
            }
            _ => self,
        }
    }

    /// Compares two values: `Some(ordering)` or `None` when precision makes it unknown.
    pub fn compare(&self, other: &DateTime) -> Option<Ordering> {
        if self.tz.is_some() != other.tz.is_some()
            && self.precision >= Precision::Hour
            && other.precision >= Precision::Hour
        {
            return None;
        }
        let (a, b) = if self.tz.is_some() && other.tz.is_some() {
            (self.to_utc(), other.to_utc())
        } else {
            (*self, *other)
        };
        let rank = |p: Precision| match p {
            Precision::Millisecond => Precision::Second,
            p => p,
        };
        let (pa, pb) = (rank(a.precision), rank(b.precision));
        let common = pa.min(pb);
        let (xa, xb) = (a.parts(), b.parts());
        let last = common as usize;
        for i in 0..=last {
            let (va, vb) = if i == Precision::Second as usize {
                (xa[5] * 1000 + xa[6], xb[5] * 1000 + xb[6])
            } else {
                (xa[i], xb[i])
            };
            match va.cmp(&vb) {
                Ordering::Equal => {}
                o => return Some(o),
            }
        }
        if pa != pb {
            return None;
        }
        Some(Ordering::Equal)
    }

    /// Adds `amount` of a calendar unit (`year`, `month`, `week`, `day`, `hour`, `minute`,
    /// `second`, `millisecond`). Returns `None` on overflow or an unknown unit.
    pub fn add(&self, amount: i64, unit: &str) -> Option<DateTime> {
        let mut r = *self;
        match unit {
            "year" => {
                r.year = i32::try_from(i64::from(r.year).checked_add(amount)?).ok()?;
                r.day = r.day.min(days_in_month(r.year, r.month));
            }
            "month" => {
                let total =
                    (i64::from(r.year) * 12 + i64::from(r.month) - 1).checked_add(amount)?;
                r.year = i32::try_from(total.div_euclid(12)).ok()?;
                r.month = u32::try_from(total.rem_euclid(12)).ok()? + 1;
                r.day = r.day.min(days_in_month(r.year, r.month));
            }
            _ => {
                let ms: i64 = match unit {
                    "week" => 7 * 86_400_000,
                    "day" => 86_400_000,
                    "hour" => 3_600_000,
                    "minute" => 60_000,
                    "second" => 1000,
                    "millisecond" => 1,
                    _ => return None,
                };
                let n = self
                    .naive()?
                    .checked_add_signed(chrono::Duration::try_milliseconds(
                        amount.checked_mul(ms)?,
                    )?)?;
                r = DateTime::from_naive(n, self.precision, self.tz);
            }
        }
        (1..=9999).contains(&r.year).then_some(r)
    }
}

impl Time {
    /// Compares two times: `Some(ordering)` or `None` when precision makes it unknown.
    pub fn compare(&self, other: &Time) -> Option<Ordering> {
        let to_dt = |t: &Time| DateTime {
            year: 2000,
            month: 1,
            day: 1,
            hour: t.hour,
            minute: t.minute,
            second: t.second,
            millis: t.millis,
            precision: t.precision,
            tz: None,
        };
        to_dt(self).compare(&to_dt(other))
    }

    /// Adds an amount of a time unit, wrapping around midnight.
    pub fn add(&self, amount: i64, unit: &str) -> Option<Time> {
        let ms: i64 = match unit {
            "hour" => 3_600_000,
            "minute" => 60_000,
            "second" => 1000,
            "millisecond" => 1,
            _ => return None,
        };
        let [h, m, s, f] = self.parts().map(i64::from);
        let total = (((h * 60 + m) * 60 + s) * 1000 + f)
            .checked_add(amount.checked_mul(ms)?)?
            .rem_euclid(86_400_000);
        Some(Time {
            hour: u32::try_from(total / 3_600_000).ok()?,
            minute: u32::try_from(total / 60_000 % 60).ok()?,
            second: u32::try_from(total / 1000 % 60).ok()?,
            millis: u32::try_from(total % 1000).ok()?,
            precision: self.precision,
        })
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}", self.hour)?;
        if self.precision >= Precision::Minute {
            write!(f, ":{:02}", self.minute)?;
        }
        if self.precision >= Precision::Second {
            write!(f, ":{:02}", self.second)?;
        }
        if self.precision >= Precision::Millisecond {
            write!(f, ".{:03}", self.millis)?;
        }
        Ok(())
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.year)?;
        if self.precision >= Precision::Month {
            write!(f, "-{:02}", self.month)?;
        }
        if self.precision >= Precision::Day {
            write!(f, "-{:02}", self.day)?;
        }
        if self.precision >= Precision::Hour {
            let t = Time {
                hour: self.hour,
                minute: self.minute,
                second: self.second,
                millis: self.millis,
                precision: self.precision,
            };
            write!(f, "T{t}")?;
            match self.tz {
                Some(0) => f.write_str("Z")?,
                Some(off) => {
                    let sign = if off < 0 { '-' } else { '+' };
                    let off = off.abs();
                    write!(f, "{sign}{:02}:{:02}", off / 60, off % 60)?;
                }
                None => {}
            }
        }
        Ok(())
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The current date and time (UTC, millisecond precision).
pub fn now() -> DateTime {
    let n = chrono::Utc::now().naive_utc();
    DateTime::from_naive(n, Precision::Millisecond, Some(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for s in [
            "2019",
            "2019-02",
            "2019-02-03",
            "2019-02-03T10:00:00.123+02:00",
            "2019-02-03T10Z",
        ] {
            let d = DateTime::parse(s).expect(s);
            assert_eq!(d.to_string(), s);
        }
        assert!(DateTime::parse("2019-02-30").is_none());
        assert!(DateTime::parse("2019-13").is_none());
        assert!(Time::parse("25:00").is_none());
    }

    #[test]
    fn precision_rules() {
        let a = DateTime::parse("2012-04-15").expect("a");
        let b = DateTime::parse("2012-04-15T10:00").expect("b");
        assert_eq!(a.compare(&b), None);
        let c = DateTime::parse("2012-04-14T10:00").expect("c");
        assert_eq!(a.compare(&c), Some(Ordering::Greater));
        let x = Time::parse("10:30:00").expect("x");
        let y = Time::parse("10:30:00.000").expect("y");
        assert_eq!(x.compare(&y), Some(Ordering::Equal));
        let z1 = DateTime::parse("2017-11-05T01:30:00.0-04:00").expect("z1");
        let z2 = DateTime::parse("2017-11-05T01:15:00.0-05:00").expect("z2");
        assert_eq!(z1.compare(&z2), Some(Ordering::Less));
    }
}
