//! Time, in one place: RFC 3339 timestamps read and written through the `time`
//! crate's calendar, epoch milliseconds (the unit GuardDuty's finding criteria
//! compare `updatedAt` in: a finding carries `"2024-01-02T03:04:05.678Z"`, a saved
//! filter `GreaterThanOrEqual: 1704164645678`; the ledger stores its times in it), and
//! the one clock the crates read "now in milliseconds" from.
//!
//! The grammar read is RFC 3339's `date-time`: `YYYY-MM-DD`, a `T`, `t` or space,
//! `HH:MM:SS`, an optional fraction of any length (kept to the millisecond, cut, not
//! rounded), then `Z`, `z` or `±HH:MM`. The date must exist (2026-02-30 does not; a
//! 29 February only in a leap year), hours, minutes and offsets stay in range, and a
//! second 60 is read only where a leap second can be (the last second of a month,
//! UTC), as the moment just before the next second.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcDateTime};

/// Milliseconds since the Unix epoch of an RFC 3339 timestamp, surrounding
/// whitespace ignored; `None` for anything else (see the module for the grammar).
pub fn epoch_millis(text: &str) -> Option<i64> {
    parse_millis(text.trim())
}

/// Milliseconds since the Unix epoch of exactly an RFC 3339 timestamp (no
/// surrounding whitespace); `None` for anything else.
pub fn parse_millis(text: &str) -> Option<i64> {
    // `time` takes any byte between the date and the time; RFC 3339 names `T`, `t`
    // and (in a note) a space, and nothing else is a timestamp here.
    if !matches!(text.as_bytes().get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

/// The fixed-width UTC form with milliseconds, `2026-11-29T09:20:12.345Z`: 24
/// characters whatever the time, so that texts sort as the times do. Times outside
/// the years 0000 to 9999 are written as the nearest end of that range.
pub fn format_millis(ms: i64) -> String {
    let first = UtcDateTime::new(time::Date::MIN, time::Time::MIDNIGHT);
    let t = UtcDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(if ms < 0 { first } else { UtcDateTime::MAX })
        .max(year_zero());
    let (year, month, day) = t.to_calendar_date();
    format!(
        "{year:04}-{:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        u8::from(month),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// 0000-01-01T00:00:00Z, the earliest time [`format_millis`] writes as itself.
fn year_zero() -> UtcDateTime {
    UtcDateTime::new(
        time::Date::from_ordinal_date(0, 1).unwrap_or(time::Date::MIN),
        time::Time::MIDNIGHT,
    )
}

/// Milliseconds since the Unix epoch of a system time (negative before it; the
/// nearest `i64` when out of its range).
pub fn millis_of(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// The system time `ms` milliseconds after the Unix epoch (before it when
/// negative); `None` when the platform's clock cannot hold it.
pub fn system_time(ms: i64) -> Option<SystemTime> {
    let d = Duration::from_millis(ms.unsigned_abs());
    if ms < 0 {
        UNIX_EPOCH.checked_sub(d)
    } else {
        UNIX_EPOCH.checked_add(d)
    }
}

/// Now, in milliseconds since the Unix epoch: the one clock of every "now in ms"
/// (claim owners, relative filter criteria, metric timestamps).
pub fn now_millis() -> i64 {
    millis_of(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(epoch_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            epoch_millis("2017-02-10T00:09:35Z"),
            Some(1_486_685_375_000)
        );
        assert_eq!(
            epoch_millis("2024-02-29T12:00:00.5Z"),
            Some(1_709_208_000_500)
        );
        assert_eq!(
            epoch_millis("2024-02-29T13:00:00.500123+01:00"),
            Some(1_709_208_000_500)
        );
    }

    #[test]
    fn not_timestamps() {
        for s in [
            "",
            "7",
            "2024-02-29",
            "2024-13-01T00:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00Zjunk",
            "２０２４-01-01T00:00:00Z",
        ] {
            assert_eq!(epoch_millis(s), None, "{s:?}");
        }
    }

    #[test]
    fn dates_that_do_not_exist_are_refused() {
        for s in [
            "2026-02-30T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-00-10T00:00:00Z",
            "2026-01-00T00:00:00Z",
            "2026-01-32T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T23:60:00Z",
        ] {
            assert_eq!(epoch_millis(s), None, "{s:?}");
        }
    }

    #[test]
    fn leap_years() {
        // 2024 and 2000 are leap years (divisible by 4, and by 400); 2100 is not.
        assert_eq!(
            epoch_millis("2024-02-29T00:00:00Z"),
            Some(1_709_164_800_000)
        );
        assert_eq!(
            epoch_millis("2000-02-29T12:34:56.789Z"),
            Some(951_827_696_789)
        );
        assert_eq!(
            epoch_millis("2024-03-01T00:00:00Z"),
            epoch_millis("2024-02-29T00:00:00Z").map(|ms| ms + 86_400_000)
        );
        assert_eq!(
            epoch_millis("2100-03-01T00:00:00Z"),
            epoch_millis("2100-02-28T00:00:00Z").map(|ms| ms + 86_400_000)
        );
    }

    #[test]
    fn fractions_and_offsets_read_as_before() {
        let base = Some(1_795_944_012_000); // 2026-11-29T09:20:12Z
        for (text, want) in [
            ("2026-11-29T09:20:12Z", base),
            ("2026-11-29T09:20:12z", base),
            ("2026-11-29t09:20:12Z", base),
            ("2026-11-29 09:20:12Z", base),
            ("2026-11-29T11:20:12+02:00", base),
            ("2026-11-29T04:50:12-04:30", base),
            ("2026-11-29T09:20:12+00:00", base),
            ("2026-11-29T09:20:12-00:00", base),
            // Fractions of any length, cut to the millisecond (never rounded up).
            ("2026-11-29T09:20:12.3Z", base.map(|ms| ms + 300)),
            ("2026-11-29T09:20:12.34Z", base.map(|ms| ms + 340)),
            ("2026-11-29T09:20:12.345Z", base.map(|ms| ms + 345)),
            (
                "2026-11-29T09:20:12.3459999999999Z",
                base.map(|ms| ms + 345),
            ),
            ("2026-11-29T11:20:12.999+02:00", base.map(|ms| ms + 999)),
            // Surrounding whitespace is not part of the value.
            ("  2026-11-29T09:20:12Z\n", base),
            // Before the epoch.
            ("1969-12-31T23:59:59.999Z", Some(-1)),
            // A leap second, where one can be: the moment before the next second.
            ("2016-12-31T23:59:60Z", Some(1_483_228_799_999)),
        ] {
            assert_eq!(epoch_millis(text), want, "{text:?}");
        }
        for text in [
            "2026-11-29T09:20:12+0200",
            "2026-11-29T09:20:12+02",
            "2026-11-29T09:20:12+24:00",
            "2026-11-29T09:20:12+02:60",
            "2026-11-29T09:20:12 Z",
            "2026-11-29X09:20:12Z",
            "2026-11-29T09:20:12,5Z",
            "2026-11-29T09:20:60Z",
            "2026-11-29T9:20:12Z",
            "+2026-11-29T09:20:12Z",
        ] {
            assert_eq!(epoch_millis(text), None, "{text:?}");
        }
        assert_eq!(parse_millis(" 2026-11-29T09:20:12Z"), None);
    }

    #[test]
    fn formatting_is_fixed_width_and_round_trips() {
        assert_eq!(format_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_millis(951_827_696_789), "2000-02-29T12:34:56.789Z");
        assert_eq!(format_millis(1_798_536_012_005), "2026-12-29T09:20:12.005Z");
        assert_eq!(format_millis(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(format_millis(i64::MIN), "0000-01-01T00:00:00.000Z");
        assert_eq!(format_millis(i64::MAX), "9999-12-31T23:59:59.999Z");
        for ms in [
            0,
            5,
            999,
            1000,
            951_827_696_789,
            1_798_536_012_005,
            -62_167_219_200_000,
        ] {
            let text = format_millis(ms);
            assert_eq!(text.len(), 24, "{text}");
            assert_eq!(parse_millis(&text), Some(ms), "{text}");
        }
    }

    #[test]
    fn system_times_convert_both_ways() {
        for ms in [0, 1, -1, 1_798_536_012_005, -86_400_000] {
            let t = system_time(ms).unwrap_or(UNIX_EPOCH);
            assert_eq!(millis_of(t), ms);
        }
        let now = now_millis();
        assert!(now > 1_700_000_000_000, "{now}");
    }
}
