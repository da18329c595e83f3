//! Digests: a person asks for one message per hour, day or week instead of one per
//! notification, per category and external channel. A delivery that falls due while its
//! category and channel have a digest joins the digest that closes next (`delivery.digested`,
//! which settles it); when that time comes the digest closes (`digest.closed`, in a stream of
//! its own, naming the notifications it covers, newest first, and leaving out those read or
//! expired meanwhile) and, when anything is left, its one delivery is planned and made like
//! any other, quiet hours and retries included.
//!
//! Times are wall-clock times in the person's zone, read when a delivery joins, so a
//! daylight-saving change moves them as the person would expect (see [`super::quiet`]).

use std::fmt;

use chrono::{DateTime, Duration, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::event::{DeliveryPlanned, Event};
use super::quiet::{instant, Day, LocalTime};
use super::values::{
    derived_uuid, Category, Channel, DeliveryId, InputError, NotificationId, UserId,
};
use super::{Decide, DomainError};

/// When a person's digest closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "every", rename_all = "lowercase")]
pub enum DigestSchedule {
    /// On the hour, every hour of the person's wall clock.
    Hourly,
    /// Every day at `at`.
    Daily { at: LocalTime },
    /// Every week on `day` at `at`.
    Weekly { day: Day, at: LocalTime },
}

impl DigestSchedule {
    /// The first time after `now` this schedule closes a digest, in `zone`. A time the clocks
    /// skip closes at the jump, one they repeat at its first occurrence.
    pub fn closes_after(&self, zone: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
        let today = now.with_timezone(&zone).date_naive();
        let at_on = |date: NaiveDate, at: LocalTime| instant(zone, date.and_time(at.naive()));
        let found = match *self {
            DigestSchedule::Hourly => {
                // Every zone is a whole number of quarter hours off UTC: the first quarter
                // hour after `now` that is on the hour locally (the repeated hour of a clock
                // going back included).
                let quarter = now.timestamp().div_euclid(900) * 900;
                (1..=8)
                    .filter_map(|q| DateTime::from_timestamp(quarter + q * 900, 0))
                    .find(|t| t.with_timezone(&zone).minute() == 0)
            }
            DigestSchedule::Daily { at } => (0..=2)
                .filter_map(|d| today.checked_add_signed(Duration::days(d)))
                .map(|date| at_on(date, at))
                .find(|t| *t > now),
            DigestSchedule::Weekly { day, at } => (0..=8)
                .filter_map(|d| today.checked_add_signed(Duration::days(d)))
                .filter(|date| Day::of(*date) == day)
                .map(|date| at_on(date, at))
                .find(|t| *t > now),
        };
        // Every schedule closes within eight days; an hour on is the fallback for a zone
        // database that says otherwise.
        found.unwrap_or(now + Duration::hours(1))
    }

    /// The schedule as the `digest_settings` table keeps it (JSON, checked when it was set).
    pub fn from_stored(raw: &str) -> serde_json::Result<Self> {
        serde_json::from_str(raw)
    }
}

impl fmt::Display for DigestSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DigestSchedule::Hourly => write!(f, "hourly"),
            DigestSchedule::Daily { at } => write!(f, "daily at {at}"),
            DigestSchedule::Weekly { day, at } => write!(f, "weekly on {} at {at}", day.as_str()),
        }
    }
}

/// One digest: a person's, for one category on one channel, closing at one time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DigestId(Uuid);

impl DigestId {
    /// Derived, not drawn: every delivery that joins the same person's digest for the same
    /// category, channel and closing time names the same one, on any node.
    pub fn of(
        recipient: &UserId,
        category: &Category,
        channel: Channel,
        closes_at: DateTime<Utc>,
    ) -> Self {
        Self(derived_uuid(&[
            b"belfry digest\0",
            recipient.as_str().as_bytes(),
            &[0],
            category.as_str().as_bytes(),
            &[0],
            channel.as_str().as_bytes(),
            &[0],
            &closes_at.timestamp_micros().to_be_bytes(),
        ]))
    }

    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    /// The one delivery of this digest's message.
    pub fn delivery_id(&self) -> DeliveryId {
        DeliveryId::from_uuid(derived_uuid(&[
            b"belfry digest delivery\0",
            self.0.as_bytes(),
        ]))
    }

    /// The id the digest's delivery names in place of a notification's: the digest's own.
    pub fn as_notification(&self) -> NotificationId {
        NotificationId::from_uuid(self.0)
    }
}

impl fmt::Display for DigestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

pub fn digest_stream(id: DigestId) -> String {
    format!("digest-{id}")
}

/// `preference.digest_set`: a person's digest for one category on one channel, or none
/// (`schedule` absent: each notification goes out on its own again).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DigestSet {
    pub user: UserId,
    pub category: Category,
    pub channel: Channel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<DigestSchedule>,
    pub at: DateTime<Utc>,
}

/// `digest.closed`: a digest's time came. `notifications` are those it covers, newest
/// first; `left_out` those that joined it but were read or expired meanwhile. When none are
/// left, no message is sent and `delivery_id` is absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DigestClosed {
    pub digest_id: DigestId,
    pub recipient: UserId,
    pub category: Category,
    pub channel: Channel,
    pub closes_at: DateTime<Utc>,
    pub notifications: Vec<NotificationId>,
    pub left_out: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<DeliveryId>,
    pub at: DateTime<Utc>,
}

/// Set (or clear) a person's digest for one category on one external channel.
#[derive(Debug, Clone, PartialEq)]
pub struct SetDigest {
    pub user: UserId,
    pub category: Category,
    pub channel: Channel,
    pub schedule: Option<DigestSchedule>,
    pub at: DateTime<Utc>,
}

impl SetDigest {
    /// Checks what a person asks for: digests are for the external channels, the inbox is
    /// its own summary.
    pub fn new(
        user: UserId,
        category: Category,
        channel: Channel,
        schedule: Option<DigestSchedule>,
        at: DateTime<Utc>,
    ) -> Result<Self, InputError> {
        if channel == Channel::InApp {
            return Err(InputError::new(
                "channel",
                "digests are for external channels (EMAIL, WEBHOOK); the inbox gathers in-app notifications already",
            ));
        }
        Ok(Self {
            user,
            category,
            channel,
            schedule,
            at,
        })
    }
}

/// One `preference.digest_set` when it differs from the current setting.
impl Decide for SetDigest {
    type State = Option<DigestSchedule>;

    fn decide(&self, current: &Option<DigestSchedule>) -> Result<Vec<Event>, DomainError> {
        if *current == self.schedule {
            return Ok(Vec::new());
        }
        Ok(vec![Event::DigestSet(DigestSet {
            user: self.user.clone(),
            category: self.category.clone(),
            channel: self.channel,
            schedule: self.schedule,
            at: self.at,
        })])
    }
}

/// A notification that joined a digest, and what became of it since.
#[derive(Debug, Clone, PartialEq)]
pub struct DigestItem {
    pub notification_id: NotificationId,
    pub sent_at: DateTime<Utc>,
    /// Where it joined, which orders items sent at the same instant.
    pub position: i64,
    pub read: bool,
    pub expired: bool,
}

/// An open digest as the `digests` projection holds it: who, what, when, and its items.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenDigest {
    pub recipient: UserId,
    pub category: Category,
    pub channel: Channel,
    pub closes_at: DateTime<Utc>,
    pub items: Vec<DigestItem>,
}

/// Close a digest whose time has come.
#[derive(Debug, Clone, PartialEq)]
pub struct CloseDigest {
    pub digest_id: DigestId,
    pub at: DateTime<Utc>,
}

/// `digest.closed`, and the digest's delivery when anything is left; nothing for a digest
/// closed already (or that nothing joined).
impl Decide for CloseDigest {
    type State = Option<OpenDigest>;

    fn decide(&self, open: &Option<OpenDigest>) -> Result<Vec<Event>, DomainError> {
        let Some(open) = open else {
            return Ok(Vec::new());
        };
        let mut kept: Vec<&DigestItem> = open
            .items
            .iter()
            .filter(|i| !i.read && !i.expired)
            .collect();
        kept.sort_by_key(|i| std::cmp::Reverse((i.sent_at, i.position)));
        let left_out = u32::try_from(open.items.len() - kept.len()).unwrap_or(u32::MAX);
        let delivery_id = (!kept.is_empty()).then(|| self.digest_id.delivery_id());
        let mut events = vec![Event::DigestClosed(DigestClosed {
            digest_id: self.digest_id,
            recipient: open.recipient.clone(),
            category: open.category.clone(),
            channel: open.channel,
            closes_at: open.closes_at,
            notifications: kept.iter().map(|i| i.notification_id).collect(),
            left_out,
            delivery_id,
            at: self.at,
        })];
        if let Some(delivery_id) = delivery_id {
            events.push(Event::Delivery(super::event::DeliveryEvent::Planned(
                DeliveryPlanned {
                    delivery_id,
                    notification_id: self.digest_id.as_notification(),
                    recipient: open.recipient.clone(),
                    category: open.category.clone(),
                    channel: open.channel,
                    due_at: self.at,
                    unless: None,
                    digest_id: Some(self.digest_id),
                    at: self.at,
                },
            )));
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("a time")
            .with_timezone(&Utc)
    }

    fn at(raw: &str) -> LocalTime {
        LocalTime::parse(raw).expect("a time")
    }

    #[test]
    fn hourly_closes_on_the_next_hour_of_the_wall_clock() {
        let hourly = DigestSchedule::Hourly;
        assert_eq!(
            hourly.closes_after(Tz::Europe__Berlin, utc("2026-03-02T10:20:00Z")),
            utc("2026-03-02T11:00:00Z")
        );
        assert_eq!(
            hourly.closes_after(Tz::UTC, utc("2026-03-02T11:00:00Z")),
            utc("2026-03-02T12:00:00Z"),
            "on the hour: the next one"
        );
        // Half an hour off UTC: the local hour, not the UTC one.
        assert_eq!(
            hourly.closes_after(Tz::Asia__Kolkata, utc("2026-03-02T10:20:00Z")),
            utc("2026-03-02T10:30:00Z")
        );
    }

    #[test]
    fn daily_closes_at_the_local_time_across_daylight_saving() {
        let nine = DigestSchedule::Daily { at: at("09:00") };
        let ny = Tz::America__New_York;
        // Saturday 7 March 2026, 10:00 in New York (EST): tomorrow 09:00 is EDT.
        let now = ny
            .with_ymd_and_hms(2026, 3, 7, 10, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(nine.closes_after(ny, now), utc("2026-03-08T13:00:00Z"));
        assert_eq!(
            nine.closes_after(ny, utc("2026-03-07T13:59:00Z")),
            utc("2026-03-07T14:00:00Z"),
            "before nine: today"
        );
        // 02:30 does not happen in New York on 8 March: it closes at the jump.
        let skipped = DigestSchedule::Daily { at: at("02:30") };
        assert_eq!(
            skipped.closes_after(ny, utc("2026-03-08T05:00:00Z")),
            utc("2026-03-08T07:00:00Z")
        );
    }

    #[test]
    fn weekly_closes_on_its_day() {
        let monday = DigestSchedule::Weekly {
            day: Day::Mon,
            at: at("08:30"),
        };
        // Wednesday 4 March 2026 in Tokyo (UTC+9).
        assert_eq!(
            monday.closes_after(Tz::Asia__Tokyo, utc("2026-03-04T03:00:00Z")),
            utc("2026-03-08T23:30:00Z")
        );
        // Monday 08:30 itself: a week on.
        assert_eq!(
            monday.closes_after(Tz::UTC, utc("2026-03-09T08:30:00Z")),
            utc("2026-03-16T08:30:00Z")
        );
    }

    #[test]
    fn a_digest_names_its_unread_notifications_newest_first() {
        let id = DigestId::of(
            &UserId::parse("ada").expect("a user"),
            &Category::parse("comments").expect("a category"),
            Channel::Email,
            utc("2026-03-02T09:00:00Z"),
        );
        let n = |i: u128| NotificationId::from_uuid(Uuid::from_u128(i));
        let item = |i, minute, read| DigestItem {
            notification_id: n(i),
            sent_at: utc("2026-03-02T08:00:00Z") + Duration::minutes(minute),
            position: i64::try_from(i).unwrap_or(0),
            read,
            expired: false,
        };
        let open = |items| OpenDigest {
            recipient: UserId::parse("ada").expect("a user"),
            category: Category::parse("comments").expect("a category"),
            channel: Channel::Email,
            closes_at: utc("2026-03-02T09:00:00Z"),
            items,
        };
        let close = CloseDigest {
            digest_id: id,
            at: utc("2026-03-02T09:00:01Z"),
        };
        let events = close
            .decide(&Some(open(vec![
                item(1, 5, false),
                item(2, 30, true),
                item(3, 20, false),
            ])))
            .expect("closed");
        let Some(Event::DigestClosed(closed)) = events.first() else {
            panic!("not a digest.closed: {events:?}");
        };
        assert_eq!(closed.notifications, vec![n(3), n(1)]);
        assert_eq!(closed.left_out, 1);
        assert_eq!(closed.delivery_id, Some(id.delivery_id()));
        assert_eq!(events.len(), 2, "and its delivery planned");

        let all_read = close
            .decide(&Some(open(vec![item(1, 5, true)])))
            .expect("closed");
        assert_eq!(all_read.len(), 1, "nothing to send: no delivery");
        let Some(Event::DigestClosed(closed)) = all_read.first() else {
            panic!("not a digest.closed");
        };
        assert!(closed.notifications.is_empty() && closed.delivery_id.is_none());
        assert!(close.decide(&None).expect("nothing").is_empty());
    }
}
