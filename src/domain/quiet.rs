//! Quiet hours: the times of the week a person wants nothing on an external channel, in
//! their own time zone. A delivery that falls due inside them waits until they end; an
//! in-app notification still lands, marked so the inbox shows no toast.
//!
//! A window starts on each of its days at `start` and ends at `end` the same day, or the
//! next day when `end` is not after `start` (22:00-07:00 ends at 07:00 the next morning);
//! `start == end` is the whole day. Times are wall-clock times in the person's zone, looked
//! up in the zone database each time they are needed, so a daylight-saving change or a new
//! time zone moves them as the person would expect.

use std::fmt;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::event::{Content, Event, QuietHoursSet};
use super::values::{InputError, Priority, UserId};
use super::{Decide, DomainError};

/// A day of the week, as windows name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    pub const ALL: [Day; 7] = [
        Day::Mon,
        Day::Tue,
        Day::Wed,
        Day::Thu,
        Day::Fri,
        Day::Sat,
        Day::Sun,
    ];

    pub(super) fn of(date: NaiveDate) -> Day {
        Day::ALL[date.weekday().num_days_from_monday() as usize]
    }

    fn index(self) -> i64 {
        self as i64
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Day::Mon => "mon",
            Day::Tue => "tue",
            Day::Wed => "wed",
            Day::Thu => "thu",
            Day::Fri => "fri",
            Day::Sat => "sat",
            Day::Sun => "sun",
        }
    }
}

/// A wall-clock time to the minute, written `HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LocalTime(u16);

impl LocalTime {
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let bad = || InputError::new("quietHours", format!("{raw:?} is not a time like 22:00"));
        let (h, m) = raw.trim().split_once(':').ok_or_else(bad)?;
        if h.is_empty() || h.len() > 2 || m.len() != 2 {
            return Err(bad());
        }
        let h: u16 = h.parse().map_err(|_| bad())?;
        let m: u16 = m.parse().map_err(|_| bad())?;
        if h > 23 || m > 59 {
            return Err(bad());
        }
        Ok(LocalTime(h * 60 + m))
    }

    /// Minutes since midnight.
    pub fn minutes(self) -> u16 {
        self.0
    }

    pub(super) fn naive(self) -> NaiveTime {
        NaiveTime::from_hms_opt(u32::from(self.0 / 60), u32::from(self.0 % 60), 0)
            .unwrap_or(NaiveTime::MIN)
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl TryFrom<String> for LocalTime {
    type Error = InputError;
    fn try_from(raw: String) -> Result<Self, InputError> {
        Self::parse(&raw)
    }
}

impl From<LocalTime> for String {
    fn from(t: LocalTime) -> String {
        t.to_string()
    }
}

/// One window: from `start` on each of `days` until `end` (the next day when it is not after
/// `start`; the whole day when equal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietWindow {
    pub days: Vec<Day>,
    pub start: LocalTime,
    pub end: LocalTime,
}

impl QuietWindow {
    /// How long it lasts, in minutes of wall-clock time.
    fn length(&self) -> i64 {
        let (s, e) = (i64::from(self.start.0), i64::from(self.end.0));
        if e > s {
            e - s
        } else {
            e + 24 * 60 - s
        }
    }
}

/// The most windows a person may have.
pub const MAX_WINDOWS: usize = 28;

/// A person's quiet hours: none, or some windows that leave part of the week free.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietHours {
    pub windows: Vec<QuietWindow>,
}

impl QuietHours {
    /// Checks and tidies windows as a person gives them: days sorted and each named once, at
    /// most [`MAX_WINDOWS`], and not the whole week (that is muting the channel, which the
    /// preferences do; quiet hours that never end would hold every delivery for ever).
    pub fn new(windows: Vec<QuietWindow>) -> Result<Self, InputError> {
        if windows.len() > MAX_WINDOWS {
            return Err(InputError::new(
                "quietHours",
                format!("at most {MAX_WINDOWS} windows"),
            ));
        }
        let mut tidy = Vec::with_capacity(windows.len());
        for mut w in windows {
            w.days.sort();
            w.days.dedup();
            if w.days.is_empty() {
                return Err(InputError::new(
                    "quietHours",
                    "each window names at least one day",
                ));
            }
            tidy.push(w);
        }
        let hours = QuietHours { windows: tidy };
        if hours.covers_the_week() {
            return Err(InputError::new(
                "quietHours",
                "the windows cover the whole week; switch the channel off in the preferences instead",
            ));
        }
        Ok(hours)
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// The windows as the `quiet_hours` table keeps them (JSON, checked when they were set).
    pub fn from_stored(windows: &str) -> serde_json::Result<Self> {
        Ok(QuietHours {
            windows: serde_json::from_str(windows)?,
        })
    }

    /// Whether the windows, in wall-clock minutes of the week, leave no minute free.
    fn covers_the_week(&self) -> bool {
        const WEEK: i64 = 7 * 24 * 60;
        let mut spans: Vec<(i64, i64)> = Vec::new();
        for w in &self.windows {
            for day in &w.days {
                let start = day.index() * 24 * 60 + i64::from(w.start.0);
                let end = start + w.length();
                // A window past Sunday midnight wraps to Monday.
                if end > WEEK {
                    spans.push((start, WEEK));
                    spans.push((0, end - WEEK));
                } else {
                    spans.push((start, end));
                }
            }
        }
        spans.sort();
        let mut covered = 0;
        for (start, end) in spans {
            if start > covered {
                return false;
            }
            covered = covered.max(end);
        }
        covered >= WEEK
    }

    /// When the quiet time around `now` ends in `zone`, if `now` is inside a window: the end
    /// of that window, or of the windows that follow on from it without a gap.
    pub fn quiet_until(&self, zone: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.windows.is_empty() {
            return None;
        }
        let today = now.with_timezone(&zone).date_naive();
        // Windows last a day at most and the week is never all quiet: a window that holds
        // `now` starts yesterday or today, and a run of them ends within eight days.
        let mut spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
        for offset in -1..=8 {
            let Some(date) = today.checked_add_signed(Duration::days(offset)) else {
                continue;
            };
            let day = Day::of(date);
            for w in self.windows.iter().filter(|w| w.days.contains(&day)) {
                let start = date.and_time(w.start.naive());
                let end = start + Duration::minutes(w.length());
                let (start, end) = (instant(zone, start), instant(zone, end));
                if end > start {
                    spans.push((start, end));
                }
            }
        }
        spans.sort();
        let mut until: Option<DateTime<Utc>> = None;
        for (start, end) in spans {
            match until {
                None if start <= now && now < end => until = Some(end),
                Some(u) if start <= u => until = Some(u.max(end)),
                Some(_) => break,
                None => {}
            }
        }
        until
    }
}

/// Which sends quiet hours hold back (`[quiet_hours]`): by default `urgent` priority and
/// `critical` sends go through them, on every channel and with their toast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietPolicy {
    pub urgent_goes_through: bool,
    pub critical_goes_through: bool,
}

impl Default for QuietPolicy {
    fn default() -> Self {
        Self {
            urgent_goes_through: true,
            critical_goes_through: true,
        }
    }
}

impl QuietPolicy {
    /// Whether a notification with this content waits out its recipient's quiet hours.
    pub fn holds(&self, content: &Content) -> bool {
        let urgent = content.priority == Priority::Urgent && self.urgent_goes_through;
        let critical = content.critical && self.critical_goes_through;
        !(urgent || critical)
    }
}

/// The zone a person's quiet hours are read in: their profile's, else UTC.
pub fn zone_of(time_zone: Option<&str>) -> Tz {
    time_zone.and_then(|z| z.parse().ok()).unwrap_or(Tz::UTC)
}

/// Set a person's quiet hours, all of them at once (none clears them).
#[derive(Debug, Clone, PartialEq)]
pub struct SetQuietHours {
    pub user: UserId,
    pub hours: QuietHours,
    pub at: DateTime<Utc>,
}

/// One `preference.quiet_hours_set` when they differ from the person's current ones.
impl Decide for SetQuietHours {
    type State = QuietHours;

    fn decide(&self, current: &QuietHours) -> Result<Vec<Event>, DomainError> {
        if *current == self.hours {
            return Ok(Vec::new());
        }
        Ok(vec![Event::QuietHoursSet(QuietHoursSet {
            user: self.user.clone(),
            hours: self.hours.clone(),
            at: self.at,
        })])
    }
}

/// The instant a wall-clock time names in `zone`: the first of two when the clock goes back
/// (the time happens twice), and the moment the clock jumps forward when the time is skipped.
pub(super) fn instant(zone: Tz, local: chrono::NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => {
            // In a gap: the first wall-clock minute after it is the jump itself.
            for minutes in 1..=24 * 60 {
                if let Some(t) = zone
                    .from_local_datetime(&(local + Duration::minutes(minutes)))
                    .earliest()
                {
                    return t.with_timezone(&Utc);
                }
            }
            Utc.from_utc_datetime(&local)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(days: &[Day], start: &str, end: &str) -> QuietWindow {
        QuietWindow {
            days: days.to_vec(),
            start: LocalTime::parse(start).expect("start"),
            end: LocalTime::parse(end).expect("end"),
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("an RFC 3339 time")
    }

    const WEEKDAYS: [Day; 5] = [Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri];

    #[test]
    fn times_are_written_hh_mm() {
        assert_eq!(LocalTime::parse("22:00").expect("t").minutes(), 1_320);
        assert_eq!(LocalTime::parse("7:05").expect("t").to_string(), "07:05");
        for bad in [
            "24:00", "12:60", "noon", "12", "12:5", "", "-1:00", "123:00",
        ] {
            assert!(LocalTime::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_night_window_ends_the_next_morning() {
        let hours = QuietHours::new(vec![window(&WEEKDAYS, "22:00", "07:00")]).expect("valid");
        let berlin: Tz = "Europe/Berlin".parse().expect("zone");
        // Tuesday 2026-01-13 23:30 in Berlin (UTC+1).
        assert_eq!(
            hours.quiet_until(berlin, at("2026-01-13T22:30:00Z")),
            Some(at("2026-01-14T06:00:00Z"))
        );
        // Saturday 06:00: Friday's window holds it.
        assert_eq!(
            hours.quiet_until(berlin, at("2026-01-17T05:00:00Z")),
            Some(at("2026-01-17T06:00:00Z"))
        );
        // Saturday 23:00: no window starts on Saturday.
        assert_eq!(hours.quiet_until(berlin, at("2026-01-17T22:00:00Z")), None);
        // Tuesday noon.
        assert_eq!(hours.quiet_until(berlin, at("2026-01-13T11:00:00Z")), None);
        // The end itself is no longer quiet.
        assert_eq!(hours.quiet_until(berlin, at("2026-01-14T06:00:00Z")), None);
    }

    #[test]
    fn windows_that_follow_on_are_one_quiet_time() {
        let hours = QuietHours::new(vec![
            window(&[Day::Sat], "22:00", "00:00"),
            window(&[Day::Sun], "00:00", "00:00"),
            window(&[Day::Mon], "00:00", "08:00"),
        ])
        .expect("valid");
        let utc: Tz = "UTC".parse().expect("zone");
        assert_eq!(
            hours.quiet_until(utc, at("2026-01-17T23:00:00Z")),
            Some(at("2026-01-19T08:00:00Z")),
            "Saturday night runs through Sunday into Monday morning"
        );
    }

    #[test]
    fn daylight_saving_changes_move_the_end_with_the_wall_clock() {
        let hours = QuietHours::new(vec![window(&Day::ALL, "22:00", "07:00")]).expect("valid");
        let berlin: Tz = "Europe/Berlin".parse().expect("zone");
        // The night of 2026-03-28/29 Berlin goes from UTC+1 to UTC+2 at 02:00: 07:00 local
        // is 05:00 UTC, one hour earlier than the night before.
        assert_eq!(
            hours.quiet_until(berlin, at("2026-03-28T22:00:00Z")),
            Some(at("2026-03-29T05:00:00Z"))
        );
        assert_eq!(
            hours.quiet_until(berlin, at("2026-03-27T22:00:00Z")),
            Some(at("2026-03-28T06:00:00Z"))
        );
        // Back in the autumn: 2026-10-25 03:00 local becomes 02:00 again.
        assert_eq!(
            hours.quiet_until(berlin, at("2026-10-24T22:00:00Z")),
            Some(at("2026-10-25T06:00:00Z"))
        );
    }

    #[test]
    fn a_window_ending_in_the_skipped_hour_ends_when_the_clock_jumps() {
        let hours = QuietHours::new(vec![window(&[Day::Sun], "01:00", "02:30")]).expect("valid");
        let berlin: Tz = "Europe/Berlin".parse().expect("zone");
        // 2026-03-29 02:30 does not happen in Berlin; 02:00 UTC+1 is 01:00 UTC.
        assert_eq!(
            hours.quiet_until(berlin, at("2026-03-29T00:30:00Z")),
            Some(at("2026-03-29T01:00:00Z"))
        );
    }

    #[test]
    fn the_zone_decides_the_instant() {
        let hours = QuietHours::new(vec![window(&Day::ALL, "22:00", "07:00")]).expect("valid");
        let tokyo: Tz = "Asia/Tokyo".parse().expect("zone");
        let new_york: Tz = "America/New_York".parse().expect("zone");
        let now = at("2026-01-14T03:00:00Z"); // 12:00 in Tokyo, 22:00 in New York
        assert_eq!(hours.quiet_until(tokyo, now), None);
        assert_eq!(
            hours.quiet_until(new_york, now),
            Some(at("2026-01-14T12:00:00Z"))
        );
    }

    #[test]
    fn windows_are_checked_and_tidied() {
        let tidy = QuietHours::new(vec![window(
            &[Day::Fri, Day::Mon, Day::Fri],
            "1:00",
            "2:00",
        )])
        .expect("valid");
        assert_eq!(tidy.windows[0].days, vec![Day::Mon, Day::Fri]);
        assert!(QuietHours::new(vec![window(&[], "22:00", "07:00")]).is_err());
        assert!(QuietHours::new(vec![window(&Day::ALL, "00:00", "00:00")]).is_err());
        assert!(QuietHours::new(vec![
            window(&Day::ALL, "12:00", "00:00"),
            window(&Day::ALL, "00:00", "12:00"),
        ])
        .is_err());
        assert!(QuietHours::new(vec![window(&Day::ALL, "12:00", "11:59")]).is_ok());
        assert!(QuietHours::new(vec![window(&[Day::Mon], "1:00", "2:00"); 29]).is_err());
        let json = serde_json::to_value(&tidy).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"windows": [{"days": ["mon", "fri"], "start": "01:00", "end": "02:00"}]})
        );
    }

    #[test]
    fn setting_the_same_quiet_hours_again_records_nothing() {
        let hours = QuietHours::new(vec![window(&WEEKDAYS, "22:00", "07:00")]).expect("valid");
        let set = SetQuietHours {
            user: UserId::parse("ann").expect("user"),
            hours: hours.clone(),
            at: at("2026-01-13T12:00:00Z"),
        };
        let events = set.decide(&QuietHours::default()).expect("decided");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].type_name(), "preference.quiet_hours_set");
        assert!(set.decide(&hours).expect("decided").is_empty());
        let cleared = SetQuietHours {
            hours: QuietHours::default(),
            ..set
        };
        assert_eq!(cleared.decide(&hours).expect("decided").len(), 1);
        assert!(cleared
            .decide(&QuietHours::default())
            .expect("decided")
            .is_empty());
    }

    #[test]
    fn urgent_and_critical_go_through_as_configured() {
        let content = |priority, critical| Content {
            priority,
            critical,
            ..serde_json::from_value(serde_json::json!({
                "category": "general", "priority": "normal", "critical": false, "title": "Hi"
            }))
            .expect("content")
        };
        let by_default = QuietPolicy::default();
        assert!(by_default.holds(&content(Priority::High, false)));
        assert!(!by_default.holds(&content(Priority::Urgent, false)));
        assert!(!by_default.holds(&content(Priority::Low, true)));
        let strict = QuietPolicy {
            urgent_goes_through: false,
            critical_goes_through: false,
        };
        assert!(strict.holds(&content(Priority::Urgent, true)));
    }
}
