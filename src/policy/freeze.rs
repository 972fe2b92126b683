//! `freeze = [{ from = "Fri 16:00", to = "Mon 08:00", tz = "Europe/Berlin" }]` (design §17):
//! weekly windows in which nothing deploys automatically and `/deploy` needs `--force`.
//!
//! A window runs from its `from` up to (not including) its `to`, both read in `tz`; a `to`
//! earlier in the week than `from` wraps over the weekend. Local times a clock change skips
//! start at the first instant after the gap, so a window never silently vanishes.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, de};

/// A time of the week: a weekday and a minute of that day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeekTime {
    pub day: Weekday,
    pub time: NaiveTime,
}

impl WeekTime {
    fn minute_of_week(self) -> u32 {
        self.day.num_days_from_monday() * 24 * 60 + self.time.hour() * 60 + self.time.minute()
    }
}

impl FromStr for WeekTime {
    type Err = String;

    /// `Fri 16:00`: an English weekday (three letters or in full, any case) and a 24-hour
    /// `HH:MM`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a weekday and a time like \"Fri 16:00\"");
        let mut parts = s.split_whitespace();
        let (Some(day), Some(time), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let day = day.parse::<Weekday>().map_err(|_| bad())?;
        let ok_shape = time.len() == 5 && time.as_bytes()[2] == b':';
        let time = NaiveTime::parse_from_str(time, "%H:%M")
            .ok()
            .filter(|_| ok_shape)
            .ok_or_else(bad)?;
        Ok(WeekTime { day, time })
    }
}

impl fmt::Display for WeekTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.day, self.time.format("%H:%M"))
    }
}

/// One weekly freeze window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreezeWindow {
    pub from: WeekTime,
    pub to: WeekTime,
    pub tz: Tz,
}

impl FreezeWindow {
    /// Whether `now` falls inside the window.
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        let local = now.with_timezone(&self.tz);
        let t = local.weekday().num_days_from_monday() * 24 * 60 + local.hour() * 60 + local.minute();
        let (from, to) = (self.from.minute_of_week(), self.to.minute_of_week());
        if from < to {
            from <= t && t < to
        } else {
            t >= from || t < to
        }
    }

    /// The first end of the window after `now`, as an instant.
    pub fn end_after(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let local = now.with_timezone(&self.tz).naive_local();
        let ahead = (7 + self.to.day.num_days_from_monday() - local.weekday().num_days_from_monday()) % 7;
        let mut at = NaiveDateTime::new(local.date(), self.to.time) + Duration::days(i64::from(ahead));
        if at <= local {
            at += Duration::days(7);
        }
        instant(self.tz, at)
    }

    /// Whether the window is in force at `now`, and until when.
    pub fn active_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.contains(now).then(|| self.end_after(now))
    }
}

/// A local time as an instant: the earlier of two in a repeated hour, the first instant after
/// a skipped one.
fn instant(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut probe = local;
    // A gap lasts at most a few hours; step through it by minutes.
    for _ in 0..=24 * 60 {
        if let Some(t) = tz.from_local_datetime(&probe).earliest() {
            return t.with_timezone(&Utc);
        }
        probe += Duration::minutes(1);
    }
    Utc.from_utc_datetime(&local)
}

/// The windows of `windows` in force at `now`, and the latest of their ends: when the freeze
/// they make lifts (a later pass looks again, in case another window starts then).
pub fn frozen_until(windows: &[FreezeWindow], now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    windows.iter().filter_map(|w| w.active_until(now)).max()
}

impl<'de> Deserialize<'de> for FreezeWindow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            from: String,
            to: String,
            tz: String,
        }
        let raw = Raw::deserialize(d)?;
        let from: WeekTime = raw
            .from
            .parse()
            .map_err(|e| de::Error::custom(format!("from: {e}")))?;
        let to: WeekTime = raw
            .to
            .parse()
            .map_err(|e| de::Error::custom(format!("to: {e}")))?;
        let tz: Tz = raw.tz.parse().map_err(|_| {
            de::Error::custom(format!(
                "tz: {:?} is not an IANA time zone name like \"Europe/Berlin\" or \"UTC\"",
                raw.tz
            ))
        })?;
        if from.minute_of_week() == to.minute_of_week() {
            return Err(de::Error::custom(format!(
                "from and to are both {from}: a window must have a length"
            )));
        }
        Ok(FreezeWindow { from, to, tz })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(from: &str, to: &str, tz: &str) -> FreezeWindow {
        FreezeWindow {
            from: from.parse().unwrap(),
            to: to.parse().unwrap(),
            tz: tz.parse().unwrap(),
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_weekend_window_in_berlin_wraps_over_the_week_end() {
        // 2026-12-04 is a Friday; Berlin is UTC+1 in December.
        let w = window("Fri 16:00", "Mon 08:00", "Europe/Berlin");
        assert!(!w.contains(utc("2026-12-04T14:59:00Z")));
        assert!(w.contains(utc("2026-12-04T15:00:00Z")));
        assert!(w.contains(utc("2026-12-06T12:00:00Z")));
        assert!(w.contains(utc("2026-12-07T06:59:00Z")));
        assert!(!w.contains(utc("2026-12-07T07:00:00Z")));
        assert!(!w.contains(utc("2026-12-09T12:00:00Z")));
        assert_eq!(
            w.active_until(utc("2026-12-05T10:00:00Z")),
            Some(utc("2026-12-07T07:00:00Z"))
        );
        assert_eq!(w.active_until(utc("2026-12-08T10:00:00Z")), None);
    }

    #[test]
    fn a_window_within_one_day_ends_the_same_day() {
        let w = window("Wed 09:00", "Wed 17:30", "UTC");
        assert!(w.contains(utc("2026-12-09T09:00:00Z")));
        assert_eq!(
            w.end_after(utc("2026-12-09T12:00:00Z")),
            utc("2026-12-09T17:30:00Z")
        );
        assert!(!w.contains(utc("2026-12-09T17:30:00Z")));
        // Past the end this week: next week's end.
        assert_eq!(
            w.end_after(utc("2026-12-09T18:00:00Z")),
            utc("2026-12-16T17:30:00Z")
        );
    }

    #[test]
    fn an_end_in_the_hour_a_clock_change_skips_is_the_first_instant_after_it() {
        // 2027-03-28: Berlin jumps from 02:00 to 03:00.
        let w = window("Sat 12:00", "Sun 02:30", "Europe/Berlin");
        assert_eq!(
            w.end_after(utc("2027-03-27T20:00:00Z")),
            utc("2027-03-28T01:00:00Z")
        );
    }

    #[test]
    fn the_latest_end_of_the_windows_in_force_counts() {
        let a = window("Fri 16:00", "Sat 08:00", "UTC");
        let b = window("Fri 18:00", "Mon 08:00", "UTC");
        let now = utc("2026-12-04T19:00:00Z");
        assert_eq!(
            frozen_until(&[a.clone(), b], now),
            Some(utc("2026-12-07T08:00:00Z"))
        );
        assert_eq!(frozen_until(&[a], utc("2026-12-02T00:00:00Z")), None);
    }

    #[test]
    fn windows_are_read_strictly() {
        let parse = |s: &str| toml::from_str::<FreezeWindow>(s).map_err(|e| e.message().to_owned());
        assert!(parse("from = \"friday 16:00\"\nto = \"MON 08:00\"\ntz = \"UTC\"").is_ok());
        for (text, want) in [
            (
                "from = \"Fri 4pm\"\nto = \"Mon 08:00\"\ntz = \"UTC\"",
                "from: \"Fri 4pm\" is not a weekday",
            ),
            (
                "from = \"Fri 16:00\"\nto = \"Mon 25:00\"\ntz = \"UTC\"",
                "to: \"Mon 25:00\" is not",
            ),
            (
                "from = \"Fri 16:00\"\nto = \"Mon 8:00\"\ntz = \"UTC\"",
                "to: \"Mon 8:00\" is not",
            ),
            (
                "from = \"Fri 16:00\"\nto = \"Mon 08:00\"\ntz = \"Mars/Olympus\"",
                "tz: \"Mars/Olympus\"",
            ),
            (
                "from = \"Fri 16:00\"\nto = \"Fri 16:00\"\ntz = \"UTC\"",
                "must have a length",
            ),
            ("from = \"Fri 16:00\"\nto = \"Mon 08:00\"", "missing field `tz`"),
            (
                "from = \"Fri 16:00\"\nto = \"Mon 08:00\"\ntz = \"UTC\"\nuntil = 1",
                "unknown field",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
