//! Instants on the wire: microseconds since the Unix epoch, written as RFC 3339 in UTC
//! (`2026-11-28T01:15:39.123456Z`). Hand-written rather than taken from chrono so the browser
//! app does not carry a date library; the calendar maths is Howard Hinnant's `days_from_civil`.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// A UTC instant with microsecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_micros(micros: i64) -> Timestamp {
        Timestamp(micros)
    }

    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// Milliseconds since the epoch, as JavaScript's `Date` counts.
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.0.div_euclid(MICROS_PER_SECOND);
        let micros = self.0.rem_euclid(MICROS_PER_SECOND);
        let days = seconds.div_euclid(SECONDS_PER_DAY);
        let second_of_day = seconds.rem_euclid(SECONDS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            second_of_day / 3600,
            second_of_day % 3600 / 60,
            second_of_day % 60
        )
    }
}

/// Why a string is not an RFC 3339 timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampError(&'static str);

impl fmt::Display for TimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not an RFC 3339 timestamp ({}); expected e.g. 2026-11-28T09:30:00Z",
            self.0
        )
    }
}

impl std::error::Error for TimestampError {}

impl FromStr for Timestamp {
    type Err = TimestampError;

    /// Accepts `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; a fraction finer than a microsecond
    /// is truncated.
    fn from_str(text: &str) -> Result<Timestamp, TimestampError> {
        let bytes = text.as_bytes();
        if bytes.len() < 20 {
            return Err(TimestampError("too short"));
        }
        let number = |range: std::ops::Range<usize>| -> Result<i64, TimestampError> {
            let part = &bytes[range];
            if !part.iter().all(u8::is_ascii_digit) {
                return Err(TimestampError("a digit was expected"));
            }
            Ok(part
                .iter()
                .fold(0, |acc, digit| acc * 10 + i64::from(digit - b'0')))
        };
        let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
        if separators.iter().any(|&(at, want)| bytes[at] != want)
            || !matches!(bytes[10], b'T' | b't' | b' ')
        {
            return Err(TimestampError("misplaced separator"));
        }
        let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
        let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return Err(TimestampError("no such date"));
        }
        // 60 is a leap second; it is folded into the second before.
        if hour > 23 || minute > 59 || second > 60 {
            return Err(TimestampError("no such time of day"));
        }
        let mut at = 19;
        let mut micros = 0;
        if bytes[at] == b'.' {
            let digits = bytes[at + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits == 0 {
                return Err(TimestampError("empty fraction of a second"));
            }
            let kept = number(at + 1..at + 1 + digits.min(6))?;
            micros = kept * 10_i64.pow(6 - digits.min(6) as u32);
            at += 1 + digits;
        }
        let offset_seconds = match &bytes[at..] {
            b"Z" | b"z" => 0,
            [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
                let hours = number(at + 1..at + 3)?;
                let minutes = number(at + 4..at + 6)?;
                if hours > 23 || minutes > 59 {
                    return Err(TimestampError("no such offset"));
                }
                let magnitude = hours * 3600 + minutes * 60;
                if *sign == b'+' { magnitude } else { -magnitude }
            }
            _ => return Err(TimestampError("a zone (Z or ±HH:MM) was expected")),
        };
        let seconds = days_from_civil(year, month, day) * SECONDS_PER_DAY
            + hour * 3600
            + minute * 60
            + second.min(59)
            - offset_seconds;
        Ok(Timestamp(seconds * MICROS_PER_SECOND + micros))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// On the wire a timestamp is RFC 3339 text in UTC with microseconds.
#[cfg(feature = "openapi")]
impl schemars::JsonSchema for Timestamp {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 in UTC, e.g. 2026-12-01T03:43:53.123456Z",
        })
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn formats_in_utc_with_microseconds() {
        assert_eq!(
            Timestamp::from_micros(0).to_string(),
            "1970-01-01T00:00:00.000000Z"
        );
        assert_eq!(
            Timestamp::from_micros(1_795_828_539_123_456).to_string(),
            "2026-11-28T01:15:39.123456Z"
        );
        assert_eq!(
            Timestamp::from_micros(-1).to_string(),
            "1969-12-31T23:59:59.999999Z"
        );
    }

    #[test]
    fn round_trips_through_text() {
        for micros in [
            0,
            1,
            -1,
            951_782_400_000_000,
            1_795_828_539_123_456,
            4_107_542_399_999_999,
        ] {
            let stamp = Timestamp::from_micros(micros);
            assert_eq!(parse(&stamp.to_string()), stamp, "{stamp}");
        }
    }

    #[test]
    fn applies_offsets_and_truncates_fine_fractions() {
        assert_eq!(
            parse("2026-11-28T02:15:39+01:00"),
            parse("2026-11-28T01:15:39Z")
        );
        assert_eq!(
            parse("2026-11-27T20:45:39.5-04:30"),
            parse("2026-11-28T01:15:39.500000Z")
        );
        assert_eq!(
            parse("2026-11-28T01:15:39.123456789Z").as_micros() % 1_000_000,
            123_456
        );
    }

    #[test]
    fn knows_leap_years() {
        assert!("2024-02-29T00:00:00Z".parse::<Timestamp>().is_ok());
        assert!("2026-02-29T00:00:00Z".parse::<Timestamp>().is_err());
        assert!("2000-02-29T00:00:00Z".parse::<Timestamp>().is_ok());
        assert!("1900-02-29T00:00:00Z".parse::<Timestamp>().is_err());
    }

    #[test]
    fn rejects_what_is_not_rfc_3339() {
        for bad in [
            "",
            "yesterday",
            "2026-11-28",
            "2026-11-28T01:15:39",
            "2026-13-01T00:00:00Z",
            "2026-11-28T24:00:00Z",
            "2026-11-28T01:15:39.Z",
            "2026-11-28T01:15:39+0100",
            "2026/11/28T01:15:39Z",
            "2026-11-28T01:15:39Zjunk",
        ] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn serializes_as_a_string() {
        let stamp = parse("2026-11-28T01:15:39.000001Z");
        let json = serde_json::to_string(&stamp).unwrap();
        assert_eq!(json, "\"2026-11-28T01:15:39.000001Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), stamp);
    }
}
