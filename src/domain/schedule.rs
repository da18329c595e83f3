//! Scheduled sends: a send asked for later (`sendAt`) is a fact of its own stream,
//! `scheduled-{id}`, and nothing else until its time. Then the timekeeper publishes it: its
//! notifications are created as any send's, decided against the preferences, throttles and
//! quiet hours of that moment, with the ids the schedule gave them. Until then an admin may
//! cancel it.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::{to_raw_value, RawValue};
use uuid::Uuid;

use super::event::{Content, Event};
use super::notification::{Expiry, SendNotification};
use super::values::{IdempotencyKey, InputError, NotificationId, Route, Throttle, UserId};
use super::{Decide, DomainError};

/// How far ahead a send may be scheduled.
pub const AHEAD_MAX_DAYS: i64 = 365;

/// One scheduled send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ScheduleId(Uuid);

impl ScheduleId {
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    pub fn parse(raw: &str) -> Result<Self, InputError> {
        Uuid::parse_str(raw)
            .map(Self)
            .map_err(|_| InputError::new("id", "a scheduled send's id is a UUID"))
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for ScheduleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

pub fn schedule_stream(id: ScheduleId) -> String {
    format!("scheduled-{id}")
}

/// One recipient of a scheduled send and the id their notification will have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledRecipient {
    pub notification_id: NotificationId,
    pub recipient: UserId,
}

/// `send.scheduled`: a send to publish at `send_at`, as it was asked for (its routes and
/// throttle resolved then, as for a send made at once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendScheduled {
    pub schedule_id: ScheduleId,
    pub send_at: DateTime<Utc>,
    pub recipients: Vec<ScheduledRecipient>,
    pub content: Content,
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub routes_by_default: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<Throttle>,
    #[serde(default)]
    pub throttle_by_default: bool,
    pub quiet_hours_hold: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<Expiry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<IdempotencyKey>,
    /// The fingerprint of the request when it carried an idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_hash: Option<String>,
    pub at: DateTime<Utc>,
}

impl SendScheduled {
    /// The send to make at `at`, its publication: the scheduled ids, no idempotency key (the
    /// schedule holds it).
    pub fn send(&self, at: DateTime<Utc>) -> SendNotification {
        SendNotification {
            deliveries: self
                .recipients
                .iter()
                .map(|r| (r.notification_id, r.recipient.clone()))
                .collect(),
            content: self.content.clone(),
            routes: self.routes.clone(),
            routes_by_default: self.routes_by_default,
            throttle: self.throttle,
            throttle_by_default: self.throttle_by_default,
            quiet_hours_hold: self.quiet_hours_hold,
            expiry: self.expiry,
            idempotency_key: None,
            at,
        }
    }
}

/// `send.cancelled` or `send.published`: the end of a scheduled send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleClosed {
    pub schedule_id: ScheduleId,
    pub at: DateTime<Utc>,
}

/// The facts of a `scheduled-{id}` stream.
#[derive(Debug, Clone, PartialEq)]
pub enum ScheduleEvent {
    Scheduled(Box<SendScheduled>),
    Cancelled(ScheduleClosed),
    Published(ScheduleClosed),
}

impl ScheduleEvent {
    pub const SCHEDULED: &'static str = "send.scheduled";
    pub const CANCELLED: &'static str = "send.cancelled";
    pub const PUBLISHED: &'static str = "send.published";

    pub fn type_name(&self) -> &'static str {
        match self {
            ScheduleEvent::Scheduled(_) => Self::SCHEDULED,
            ScheduleEvent::Cancelled(_) => Self::CANCELLED,
            ScheduleEvent::Published(_) => Self::PUBLISHED,
        }
    }

    pub fn schedule_id(&self) -> ScheduleId {
        match self {
            ScheduleEvent::Scheduled(e) => e.schedule_id,
            ScheduleEvent::Cancelled(e) | ScheduleEvent::Published(e) => e.schedule_id,
        }
    }

    pub fn to_raw_value(&self) -> serde_json::Result<Box<RawValue>> {
        match self {
            ScheduleEvent::Scheduled(e) => to_raw_value(e),
            ScheduleEvent::Cancelled(e) | ScheduleEvent::Published(e) => to_raw_value(e),
        }
    }
}

/// Where a scheduled send stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleStatus {
    Pending,
    Published,
    Cancelled,
}

impl ScheduleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleStatus::Pending => "pending",
            ScheduleStatus::Published => "published",
            ScheduleStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        [Self::Pending, Self::Published, Self::Cancelled]
            .into_iter()
            .find(|s| s.as_str() == stored)
    }
}

/// A scheduled send as its stream tells it: `None` when it has no events.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub scheduled: SendScheduled,
    pub status: ScheduleStatus,
}

impl Schedule {
    pub fn of(events: &[Event]) -> Option<Schedule> {
        let mut schedule: Option<Schedule> = None;
        for event in events {
            match event {
                Event::Schedule(ScheduleEvent::Scheduled(e)) => {
                    schedule = Some(Schedule {
                        scheduled: (**e).clone(),
                        status: ScheduleStatus::Pending,
                    });
                }
                Event::Schedule(ScheduleEvent::Cancelled(_)) => {
                    if let Some(s) = schedule.as_mut() {
                        s.status = ScheduleStatus::Cancelled;
                    }
                }
                Event::Schedule(ScheduleEvent::Published(_)) => {
                    if let Some(s) = schedule.as_mut() {
                        s.status = ScheduleStatus::Published;
                    }
                }
                _ => {}
            }
        }
        schedule
    }
}

/// A send to make at `send_at` rather than now.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleSend {
    pub id: ScheduleId,
    pub send_at: DateTime<Utc>,
    pub send: SendNotification,
}

impl ScheduleSend {
    /// `send` at `send_at`, which must be after the send's time and at most
    /// [`AHEAD_MAX_DAYS`] ahead. `None`: `send_at` is not in the future, so it is made at once.
    pub fn new(
        id: ScheduleId,
        send_at: DateTime<Utc>,
        send: SendNotification,
    ) -> Result<Option<Self>, InputError> {
        if send_at <= send.at {
            return Ok(None);
        }
        if send_at > send.at + Duration::days(AHEAD_MAX_DAYS) {
            return Err(InputError::new(
                "sendAt",
                format!("at most {AHEAD_MAX_DAYS} days ahead"),
            ));
        }
        if let Some(Expiry::At(t)) = send.expiry {
            if t <= send_at {
                return Err(InputError::new("expiresAt", "must be after sendAt"));
            }
        }
        Ok(Some(Self { id, send_at, send }))
    }

    /// The request's fingerprint: the send's, and its time (a retry must name the same).
    pub fn fingerprint(&self) -> String {
        format!("{}@{}", self.send.fingerprint(), self.send_at.to_rfc3339())
    }
}

/// What an earlier scheduled send under the same idempotency key was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedSchedule {
    pub id: ScheduleId,
    pub request_hash: String,
}

/// What scheduling is decided against: an earlier use of its idempotency key, by a
/// scheduled send or (`Err`, never the same request) by a send made at once.
pub type ScheduleState = Option<Result<KeyedSchedule, ()>>;

/// One `send.scheduled`; nothing for a retry of the same request under its key.
impl Decide for ScheduleSend {
    type State = ScheduleState;

    fn decide(&self, earlier: &ScheduleState) -> Result<Vec<Event>, DomainError> {
        let send = &self.send;
        if let (Some(earlier), Some(key)) = (earlier, &send.idempotency_key) {
            return match earlier {
                Ok(keyed) if keyed.request_hash == self.fingerprint() => Ok(Vec::new()),
                _ => Err(DomainError::IdempotencyConflict(key.clone())),
            };
        }
        let request_hash = send.idempotency_key.as_ref().map(|_| self.fingerprint());
        Ok(vec![Event::Schedule(ScheduleEvent::Scheduled(Box::new(
            SendScheduled {
                schedule_id: self.id,
                send_at: self.send_at,
                recipients: send
                    .deliveries
                    .iter()
                    .map(|(id, r)| ScheduledRecipient {
                        notification_id: *id,
                        recipient: r.clone(),
                    })
                    .collect(),
                content: send.content.clone(),
                routes: send.routes.clone(),
                routes_by_default: send.routes_by_default,
                throttle: send.throttle,
                throttle_by_default: send.throttle_by_default,
                quiet_hours_hold: send.quiet_hours_hold,
                expiry: send.expiry,
                idempotency_key: send.idempotency_key.clone(),
                request_hash,
                at: send.at,
            },
        )))])
    }
}

/// Which scheduled send an admin means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleTarget {
    Id(ScheduleId),
    Key(IdempotencyKey),
}

/// Call a scheduled send off before its time.
#[derive(Debug, Clone, PartialEq)]
pub struct CancelScheduled {
    pub target: ScheduleTarget,
    pub at: DateTime<Utc>,
}

/// `send.cancelled` for a pending send; nothing for one cancelled already; a refusal for one
/// published (its notifications exist) or unknown.
impl Decide for CancelScheduled {
    type State = Option<Schedule>;

    fn decide(&self, state: &Option<Schedule>) -> Result<Vec<Event>, DomainError> {
        let schedule = state
            .as_ref()
            .ok_or_else(|| DomainError::ScheduleNotFound(self.target.clone()))?;
        let id = schedule.scheduled.schedule_id;
        match schedule.status {
            ScheduleStatus::Pending => Ok(vec![Event::Schedule(ScheduleEvent::Cancelled(
                ScheduleClosed {
                    schedule_id: id,
                    at: self.at,
                },
            ))]),
            ScheduleStatus::Cancelled => Ok(Vec::new()),
            ScheduleStatus::Published => Err(DomainError::SchedulePublished(id)),
        }
    }
}

/// Publish a scheduled send whose time has come (the timekeeper's step).
#[derive(Debug, Clone, PartialEq)]
pub struct PublishScheduled {
    pub id: ScheduleId,
    pub at: DateTime<Utc>,
}

/// `send.published` for a pending send (the engine then makes the send itself, in the same
/// transaction); nothing for one cancelled or published already, or not yet due.
impl Decide for PublishScheduled {
    type State = Option<Schedule>;

    fn decide(&self, state: &Option<Schedule>) -> Result<Vec<Event>, DomainError> {
        match state {
            Some(s) if s.status == ScheduleStatus::Pending && s.scheduled.send_at <= self.at => Ok(
                vec![Event::Schedule(ScheduleEvent::Published(ScheduleClosed {
                    schedule_id: self.id,
                    at: self.at,
                }))],
            ),
            _ => Ok(Vec::new()),
        }
    }
}
