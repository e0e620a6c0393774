//! Wall-clock instants and calendar dates, with their text forms.
//!
//! The domain never reads the clock: the api stamps a [`Timestamp`] on each
//! command before it is proposed, and every node applies that same value.
//! Timestamps are milliseconds since the Unix epoch, written as RFC 3339 in
//! UTC with milliseconds (`2026-11-24T10:00:00.000Z`), which sorts as text.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Test builds only (`failpoints`): `TASKRAFT_TEST_CLOCK_OFFSET_MS` shifts
/// this node's [`Timestamp::now`], so a test can make cards that are days
/// old (auto-archive) without waiting days.
#[cfg(feature = "failpoints")]
fn test_clock_offset() -> i64 {
    static OFFSET: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *OFFSET.get_or_init(|| {
        std::env::var("TASKRAFT_TEST_CLOCK_OFFSET_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    })
}

#[cfg(not(feature = "failpoints"))]
fn test_clock_offset() -> i64 {
    0
}

/// An instant, in milliseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current time. Only the api calls this, when it stamps a command.
    pub fn now() -> Timestamp {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(since.as_millis() as i64 + test_clock_offset())
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    /// Splits into (date, hour, minute, second, millisecond), in UTC.
    pub fn to_parts(self) -> (Date, u32, u32, u32, u32) {
        let days = self.0.div_euclid(86_400_000);
        let ms_of_day = self.0.rem_euclid(86_400_000);
        let date = Date::from_days(days);
        let secs = (ms_of_day / 1000) as u32;
        (
            date,
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            (ms_of_day % 1000) as u32,
        )
    }

    /// Builds a timestamp from UTC parts, as MySQL's `DATETIME(3)` returns them.
    pub fn from_parts(date: Date, hour: u32, minute: u32, second: u32, micros: u32) -> Timestamp {
        let secs = i64::from(hour * 3600 + minute * 60 + second);
        Timestamp(date.days() * 86_400_000 + secs * 1000 + i64::from(micros / 1000))
    }

    /// The `YYYY-MM-DD HH:MM:SS.mmm` form MySQL takes for a `DATETIME(3)` column.
    pub fn to_sql(self) -> String {
        let (d, h, m, s, ms) = self.to_parts();
        format!("{d} {h:02}:{m:02}:{s:02}.{ms:03}")
    }

    /// Parses the RFC 3339 form this type writes (UTC, `Z`, optional millis).
    pub fn parse(text: &str) -> Option<Timestamp> {
        let text = text.strip_suffix('Z')?;
        let (date, time) = text.split_once('T')?;
        let date = Date::parse(date)?;
        let (hms, frac) = match time.split_once('.') {
            Some((hms, frac)) => (hms, frac),
            None => (time, "0"),
        };
        let mut parts = hms.split(':');
        let hour: u32 = parts.next()?.parse().ok()?;
        let minute: u32 = parts.next()?.parse().ok()?;
        let second: u32 = parts.next()?.parse().ok()?;
        if parts.next().is_some() || hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        if frac.is_empty() || frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let millis: u32 = format!("{frac:0<3}").parse().ok()?;
        Some(Timestamp::from_parts(
            date,
            hour,
            minute,
            second,
            millis * 1000,
        ))
    }
}

impl Timestamp {
    /// Parses any RFC 3339 date-time a person or a client may give
    /// (`2026-11-24T10:00:00Z`, `2026-11-24T11:00:00.5+01:00`, a lower-case
    /// `t` or `z`), to the millisecond (finer digits are dropped).
    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        let text = text.trim();
        if text.len() < 20 || !text.is_ascii() {
            return None;
        }
        let (date, rest) = text.split_at(10);
        let rest = rest.strip_prefix(['T', 't'])?;
        let (clock, offset_minutes) = if let Some(clock) = rest.strip_suffix(['Z', 'z']) {
            (clock, 0i64)
        } else {
            let (clock, offset) = rest.split_at(rest.len().checked_sub(6)?);
            let sign = match offset.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (h, m) = offset[1..].split_once(':')?;
            if h.len() != 2 || m.len() != 2 {
                return None;
            }
            let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
            if h > 23 || m > 59 {
                return None;
            }
            (clock, sign * (h * 60 + m))
        };
        let (hms, frac) = clock.split_once('.').unwrap_or((clock, "0"));
        if hms.len() != 8 || frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let millis = &format!("{frac:0<3}")[..3];
        let utc = Timestamp::parse(&format!("{date}T{hms}.{millis}Z"))?;
        Some(Timestamp(utc.0 - offset_minutes * 60_000))
    }
}

impl Timestamp {
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`, digit by digit, for years 0 to 9999:
    /// every event and every response carries timestamps, and `write!` is
    /// several times slower at this.
    fn iso(self) -> Option<[u8; 24]> {
        let (d, h, m, s, ms) = self.to_parts();
        let year = u32::try_from(d.year).ok().filter(|y| *y <= 9999)?;
        let mut out = *b"0000-00-00T00:00:00.000Z";
        for (at, width, mut value) in [
            (0, 4, year),
            (5, 2, d.month),
            (8, 2, d.day),
            (11, 2, h),
            (14, 2, m),
            (17, 2, s),
            (20, 3, ms),
        ] {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        }
        Some(out)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.iso() {
            // Only ASCII digits and separators were written.
            Some(iso) => f.write_str(std::str::from_utf8(&iso).map_err(|_| fmt::Error)?),
            None => {
                let (d, h, m, s, ms) = self.to_parts();
                write!(f, "{d}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
            }
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.iso() {
            Some(iso) => {
                s.serialize_str(std::str::from_utf8(&iso).map_err(serde::ser::Error::custom)?)
            }
            None => s.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid timestamp `{text}`")))
    }
}

/// A calendar date (proleptic Gregorian), such as a task's due date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

impl Date {
    /// Parses `YYYY-MM-DD`, rejecting dates that do not exist (2026-02-30).
    pub fn parse(text: &str) -> Option<Date> {
        let bytes = text.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return None;
        }
        let digits = |r: std::ops::Range<usize>| -> Option<u32> {
            let part = &text[r];
            if part.bytes().all(|b| b.is_ascii_digit()) {
                part.parse().ok()
            } else {
                None
            }
        };
        let year = digits(0..4)? as i32;
        let month = digits(5..7)?;
        let day = digits(8..10)?;
        Date::new(year, month, day)
    }

    pub fn new(year: i32, month: u32, day: u32) -> Option<Date> {
        let valid = (1..=9999).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month);
        valid.then_some(Date { year, month, day })
    }

    /// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
    pub fn days(self) -> i64 {
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The inverse of [`Date::days`] (`civil_from_days`).
    pub fn from_days(days: i64) -> Date {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Date { year, month, day }
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Date::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("`{text}` is not a date of the form YYYY-MM-DD"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_as_rfc3339_utc_with_millis() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp(1_795_774_512_345).to_string(),
            "2026-11-27T10:15:12.345Z"
        );
        assert_eq!(Timestamp(-1).to_string(), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn the_fast_form_matches_the_formatted_one_and_json() {
        for ms in (-62_000_000_000_000i64..253_402_300_800_000).step_by(987_654_321_987) {
            let t = Timestamp(ms);
            let (d, h, m, s, milli) = t.to_parts();
            let slow = format!("{d}T{h:02}:{m:02}:{s:02}.{milli:03}Z");
            assert_eq!(t.to_string(), slow);
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{slow}\""));
        }
        // Outside years 0-9999 the slow path still answers.
        let far = Timestamp(300_000_000_000_000);
        assert!(far.to_string().ends_with('Z'));
    }

    #[test]
    fn timestamps_parse_back_to_the_same_instant() {
        for ms in [0, 1, 999, 86_399_999, 951_782_400_000, 1_795_774_512_345] {
            let t = Timestamp(ms);
            assert_eq!(Timestamp::parse(&t.to_string()), Some(t), "{t}");
        }
        assert_eq!(
            Timestamp::parse("2026-11-24T10:00:00Z").map(|t| t.to_string()),
            Some("2026-11-24T10:00:00.000Z".to_string())
        );
        assert_eq!(Timestamp::parse("2026-11-24 10:00:00"), None);
        assert_eq!(Timestamp::parse("2026-11-24T24:00:00Z"), None);
    }

    #[test]
    fn any_rfc3339_time_parses_to_its_instant() {
        let utc = Timestamp::parse("2026-11-24T10:00:00.500Z").unwrap();
        for text in [
            "2026-11-24T10:00:00.500Z",
            "2026-11-24t10:00:00.5z",
            "2026-11-24T11:00:00.500+01:00",
            "2026-11-24T07:30:00.500123-02:30",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(text), Some(utc), "{text}");
        }
        for ms in (1_795_000_000_000i64..1_795_000_000_000 + 86_400_000).step_by(997) {
            let t = Timestamp(ms);
            assert_eq!(Timestamp::parse_rfc3339(&t.to_string()), Some(t), "{t}");
        }
        for bad in [
            "",
            "yesterday",
            "2026-11-24",
            "2026-11-24 10:00:00Z",
            "2026-11-24T10:00:00",
            "2026-11-24T10:00:00+0100",
            "2026-11-24T10:00:00.Z",
            "2026-11-24T25:00:00Z",
            "2026-02-30T10:00:00Z",
            "2026-11-24T10:00:00+24:00",
            "2026-11-24T10:00:00.5é",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn sql_form_matches_mysql_datetime3() {
        assert_eq!(
            Timestamp(1_795_774_512_345).to_sql(),
            "2026-11-27 10:15:12.345"
        );
    }

    #[test]
    fn dates_round_trip_through_day_numbers() {
        for days in (-800_000..800_000).step_by(997) {
            let d = Date::from_days(days);
            assert_eq!(d.days(), days, "{d}");
        }
        assert_eq!(Date::from_days(0).to_string(), "1970-01-01");
    }

    #[test]
    fn only_real_dates_parse() {
        assert!(Date::parse("2024-02-29").is_some());
        assert!(Date::parse("2026-02-29").is_none());
        assert!(Date::parse("2026-04-31").is_none());
        assert!(Date::parse("2026-13-01").is_none());
        assert!(Date::parse("2026-1-01").is_none());
        assert!(Date::parse("+026-01-01").is_none());
        assert!(Date::parse("0000-01-01").is_none());
        assert_eq!(Date::parse("2026-12-01").unwrap().to_string(), "2026-12-01");
    }
}
