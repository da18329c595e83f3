//! Domain events: past-tense facts with a stable type name and version, carrying what projections need.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::{to_raw_value, RawValue};

use super::digest::{digest_stream, DigestClosed, DigestId, DigestSet};
use super::endpoint::{endpoint_stream, EndpointEvent};
use super::quiet::QuietHours;
use super::recipient::{recipient_stream, RecipientEvent};
use super::schedule::{schedule_stream, ScheduleEvent};
use super::values::{
    Body, Category, Channel, DeliveryId, Link, NotificationId, Payload, Priority, SkipReason,
    SuppressReason, Title, Unless, UserId,
};

/// What a notification says; the same for every recipient of one send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Content {
    pub category: Category,
    pub priority: Priority,
    /// Critical notifications are delivered even when the recipient muted the category.
    pub critical: bool,
    pub title: Title,
    #[serde(default)]
    pub body: Body,
    #[serde(default)]
    pub data: Payload,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_url: Option<Link>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<Link>,
}

/// `notification.sent` / `notification.suppressed`: a notification was created for one recipient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "CreatedFields")]
pub struct NotificationCreated {
    pub notification_id: NotificationId,
    pub recipient: UserId,
    /// Shared by every recipient of one send: a broadcast holds one copy, not 100,000.
    #[serde(flatten)]
    pub content: Arc<Content>,
    pub at: DateTime<Utc>,
    /// Why a `notification.suppressed` was not shown; absent on `notification.sent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<SuppressReason>,
    /// It arrived during the recipient's quiet hours: it lands in the inbox without a toast.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub quiet: bool,
    /// When it leaves the inbox (a flash sale that means nothing tomorrow); none: it stays
    /// until the server's retention policy says otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl NotificationCreated {
    /// Why a suppressed notification was not shown: suppressions recorded before they named
    /// a reason were all mutes.
    pub fn suppressed_because(&self) -> SuppressReason {
        self.reason.unwrap_or(SuppressReason::Muted)
    }
}

/// [`NotificationCreated`] as stored, the content's fields beside the others. Decoded through
/// this flat form because serde's `flatten` first buffers every field of the object and then
/// decodes them again: replay and live delivery decode one of these per notification.
#[derive(Deserialize)]
struct CreatedFields {
    notification_id: NotificationId,
    recipient: UserId,
    category: Category,
    priority: Priority,
    critical: bool,
    title: Title,
    #[serde(default)]
    body: Body,
    #[serde(default)]
    data: Payload,
    #[serde(default)]
    action_url: Option<Link>,
    #[serde(default)]
    icon: Option<Link>,
    at: DateTime<Utc>,
    #[serde(default)]
    reason: Option<SuppressReason>,
    #[serde(default)]
    quiet: bool,
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
}

impl From<CreatedFields> for NotificationCreated {
    fn from(f: CreatedFields) -> Self {
        NotificationCreated {
            notification_id: f.notification_id,
            recipient: f.recipient,
            content: Arc::new(Content {
                category: f.category,
                priority: f.priority,
                critical: f.critical,
                title: f.title,
                body: f.body,
                data: f.data,
                action_url: f.action_url,
                icon: f.icon,
            }),
            at: f.at,
            reason: f.reason,
            quiet: f.quiet,
            expires_at: f.expires_at,
        }
    }
}

/// The read/seen/archived flags of one notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Flags {
    pub seen: bool,
    pub read: bool,
    pub archived: bool,
}

impl Flags {
    /// Counts toward the unread badge: unread and still in the inbox.
    pub fn counts_unread(&self) -> bool {
        !self.read && !self.archived
    }

    pub fn counts_unseen(&self) -> bool {
        !self.seen && !self.archived
    }

    /// The flags that count for nothing: an expired notification's, out of the inbox.
    pub const GONE: Flags = Flags {
        seen: true,
        read: true,
        archived: true,
    };

    /// How the unread and unseen counts move when a notification's flags go from `before`
    /// to `after`: `(unread, unseen)`, each -1, 0 or 1.
    pub fn delta(before: Flags, after: Flags) -> (i64, i64) {
        (
            i64::from(after.counts_unread()) - i64::from(before.counts_unread()),
            i64::from(after.counts_unseen()) - i64::from(before.counts_unseen()),
        )
    }
}

/// Which bulk mark: everything read (which makes it seen too) or everything seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Read,
    Seen,
}

impl Mark {
    /// The flags a notification ends with once marked.
    pub fn apply(self, before: Flags) -> Flags {
        Flags {
            seen: true,
            read: before.read || self == Mark::Read,
            ..before
        }
    }
}

/// `notification.seen|read|unread|archived|unarchived`: one notification's flags changed.
/// Carries the flags before and after so counters follow without reading any other table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationChanged {
    pub notification_id: NotificationId,
    pub recipient: UserId,
    pub category: Category,
    pub before: Flags,
    pub after: Flags,
    pub at: DateTime<Utc>,
}

/// One notification touched by a bulk inbox fact, with its flags before the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BulkItem {
    pub notification_id: NotificationId,
    pub category: Category,
    pub before: Flags,
}

/// `inbox.all_read` / `inbox.all_seen`: everything up to a position (optionally in one category)
/// was marked at once. Lists what it changed, so it replays to exactly the same rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxMarked {
    pub recipient: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_to_position: Option<i64>,
    pub items: Vec<BulkItem>,
    pub at: DateTime<Utc>,
}

/// `preference.changed`: a person switched a channel on or off for a category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreferenceChanged {
    pub user: UserId,
    pub category: Category,
    pub channel: Channel,
    pub enabled: bool,
    pub at: DateTime<Utc>,
}

/// Why a notification expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpireReason {
    /// Its send's `expiresAt` (or time to live) has passed.
    ExpiresAt,
    /// The server's retention for read notifications, counted from when it was read.
    ReadRetention,
    /// The server's retention for unread notifications, counted from when it was sent.
    UnreadRetention,
}

impl ExpireReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ExpireReason::ExpiresAt => "expires_at",
            ExpireReason::ReadRetention => "read_retention",
            ExpireReason::UnreadRetention => "unread_retention",
        }
    }
}

/// `notification.expired`: a notification left its recipient's inbox and counters for good
/// (the log keeps it); its flags before, for the counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationExpired {
    pub notification_id: NotificationId,
    pub recipient: UserId,
    pub category: Category,
    pub before: Flags,
    pub reason: ExpireReason,
    pub at: DateTime<Utc>,
}

/// `preference.quiet_hours_set`: a person's quiet hours, all of them (none when empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuietHoursSet {
    pub user: UserId,
    #[serde(flatten)]
    pub hours: QuietHours,
    pub at: DateTime<Utc>,
}

/// `delivery.planned`: a delivery on an external channel was scheduled for a notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryPlanned {
    pub delivery_id: DeliveryId,
    pub notification_id: NotificationId,
    pub recipient: UserId,
    pub category: Category,
    pub channel: Channel,
    /// When it falls due; a worker takes it up from then.
    pub due_at: DateTime<Utc>,
    /// Called off if the notification is read (or seen) before it falls due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unless: Option<Unless>,
    /// Set on a digest's delivery: `notification_id` is then the digest's own id, and its
    /// facts are in the digest's stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_id: Option<DigestId>,
    pub at: DateTime<Utc>,
}

/// `delivery.skipped`: a delivery was not made, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliverySkipped {
    pub delivery_id: DeliveryId,
    pub notification_id: NotificationId,
    pub recipient: UserId,
    pub category: Category,
    pub channel: Channel,
    pub reason: SkipReason,
    pub at: DateTime<Utc>,
}

/// What every later fact of one delivery names: which delivery, of which notification, for
/// whom, on which channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRef {
    pub delivery_id: DeliveryId,
    pub notification_id: NotificationId,
    pub recipient: UserId,
    pub channel: Channel,
    /// Set on a digest's delivery (see [`DeliveryPlanned::digest_id`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_id: Option<DigestId>,
}

impl DeliveryRef {
    /// The stream its facts are in: its notification's, or its digest's.
    pub fn stream_id(&self) -> String {
        match self.digest_id {
            Some(digest) => digest_stream(digest),
            None => notification_stream(self.notification_id),
        }
    }
}

/// `delivery.attempted`: a worker began attempt number `attempt` (from 1) of a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryAttempted {
    #[serde(flatten)]
    pub delivery: DeliveryRef,
    pub attempt: u32,
    pub at: DateTime<Utc>,
}

/// `delivery.succeeded`: the provider accepted the delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliverySucceeded {
    #[serde(flatten)]
    pub delivery: DeliveryRef,
    pub attempt: u32,
    /// The provider's id for the message, when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
    pub at: DateTime<Utc>,
}

/// `delivery.failed`: an attempt failed; it is tried again at `retry_at`, or never when that
/// is absent (failed for good).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryFailed {
    #[serde(flatten)]
    pub delivery: DeliveryRef,
    pub attempt: u32,
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
}

/// `delivery.retried`: an operator asked for one more attempt of a delivery that failed for
/// good; it is due at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRetried {
    #[serde(flatten)]
    pub delivery: DeliveryRef,
    pub at: DateTime<Utc>,
}

/// Why a delivery waits past its due time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeferReason {
    QuietHours,
}

impl DeferReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeferReason::QuietHours => "quiet_hours",
        }
    }
}

/// `delivery.deferred`: a delivery fell due when it should not go out (the recipient's quiet
/// hours); it is due again at `until`, when it is decided anew.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryDeferred {
    #[serde(flatten)]
    pub delivery: DeliveryRef,
    pub until: DateTime<Utc>,
    pub reason: DeferReason,
    pub at: DateTime<Utc>,
}

/// `delivery.digested`: a delivery fell due while its category and channel had a digest: it
/// joined the digest that closes at `closes_at` instead of going out, and is settled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryDigested {
    #[serde(flatten)]
    pub delivery: DeliveryRef,
    pub category: Category,
    pub digest_id: DigestId,
    pub closes_at: DateTime<Utc>,
    /// When its notification was sent, which orders the digest.
    pub sent_at: DateTime<Utc>,
    pub at: DateTime<Utc>,
}

/// A fact about one delivery on an external channel, in its notification's stream (a
/// digest's delivery in its digest's).
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryEvent {
    Planned(DeliveryPlanned),
    Skipped(DeliverySkipped),
    Attempted(DeliveryAttempted),
    Succeeded(DeliverySucceeded),
    Failed(DeliveryFailed),
    Retried(DeliveryRetried),
    Deferred(DeliveryDeferred),
    Digested(DeliveryDigested),
}

impl DeliveryEvent {
    pub const PLANNED: &'static str = "delivery.planned";
    pub const SKIPPED: &'static str = "delivery.skipped";
    pub const ATTEMPTED: &'static str = "delivery.attempted";
    pub const SUCCEEDED: &'static str = "delivery.succeeded";
    pub const FAILED: &'static str = "delivery.failed";
    pub const RETRIED: &'static str = "delivery.retried";
    pub const DEFERRED: &'static str = "delivery.deferred";
    pub const DIGESTED: &'static str = "delivery.digested";

    pub fn type_name(&self) -> &'static str {
        match self {
            DeliveryEvent::Planned(_) => Self::PLANNED,
            DeliveryEvent::Skipped(_) => Self::SKIPPED,
            DeliveryEvent::Attempted(_) => Self::ATTEMPTED,
            DeliveryEvent::Succeeded(_) => Self::SUCCEEDED,
            DeliveryEvent::Failed(_) => Self::FAILED,
            DeliveryEvent::Retried(_) => Self::RETRIED,
            DeliveryEvent::Deferred(_) => Self::DEFERRED,
            DeliveryEvent::Digested(_) => Self::DIGESTED,
        }
    }

    pub fn notification_id(&self) -> NotificationId {
        match self {
            DeliveryEvent::Planned(e) => e.notification_id,
            DeliveryEvent::Skipped(e) => e.notification_id,
            DeliveryEvent::Attempted(e) => e.delivery.notification_id,
            DeliveryEvent::Succeeded(e) => e.delivery.notification_id,
            DeliveryEvent::Failed(e) => e.delivery.notification_id,
            DeliveryEvent::Retried(e) => e.delivery.notification_id,
            DeliveryEvent::Deferred(e) => e.delivery.notification_id,
            DeliveryEvent::Digested(e) => e.delivery.notification_id,
        }
    }

    /// The stream its facts are in: its notification's, or its digest's.
    pub fn stream_id(&self) -> String {
        let delivery = match self {
            DeliveryEvent::Planned(e) => {
                return match e.digest_id {
                    Some(digest) => digest_stream(digest),
                    None => notification_stream(e.notification_id),
                }
            }
            DeliveryEvent::Skipped(e) => return notification_stream(e.notification_id),
            DeliveryEvent::Attempted(e) => &e.delivery,
            DeliveryEvent::Succeeded(e) => &e.delivery,
            DeliveryEvent::Failed(e) => &e.delivery,
            DeliveryEvent::Retried(e) => &e.delivery,
            DeliveryEvent::Deferred(e) => &e.delivery,
            DeliveryEvent::Digested(e) => &e.delivery,
        };
        delivery.stream_id()
    }

    pub fn recipient(&self) -> &UserId {
        match self {
            DeliveryEvent::Planned(e) => &e.recipient,
            DeliveryEvent::Skipped(e) => &e.recipient,
            DeliveryEvent::Attempted(e) => &e.delivery.recipient,
            DeliveryEvent::Succeeded(e) => &e.delivery.recipient,
            DeliveryEvent::Failed(e) => &e.delivery.recipient,
            DeliveryEvent::Retried(e) => &e.delivery.recipient,
            DeliveryEvent::Deferred(e) => &e.delivery.recipient,
            DeliveryEvent::Digested(e) => &e.delivery.recipient,
        }
    }

    pub fn to_raw_value(&self) -> serde_json::Result<Box<RawValue>> {
        match self {
            DeliveryEvent::Planned(e) => to_raw_value(e),
            DeliveryEvent::Skipped(e) => to_raw_value(e),
            DeliveryEvent::Attempted(e) => to_raw_value(e),
            DeliveryEvent::Succeeded(e) => to_raw_value(e),
            DeliveryEvent::Failed(e) => to_raw_value(e),
            DeliveryEvent::Retried(e) => to_raw_value(e),
            DeliveryEvent::Deferred(e) => to_raw_value(e),
            DeliveryEvent::Digested(e) => to_raw_value(e),
        }
    }
}

/// Every fact the engine records.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    NotificationSent(NotificationCreated),
    NotificationSuppressed(NotificationCreated),
    NotificationSeen(NotificationChanged),
    NotificationRead(NotificationChanged),
    NotificationUnread(NotificationChanged),
    NotificationArchived(NotificationChanged),
    NotificationUnarchived(NotificationChanged),
    NotificationExpired(NotificationExpired),
    /// `inbox.all_read` or `inbox.all_seen`, as its mark says.
    InboxMarked(Mark, InboxMarked),
    PreferenceChanged(PreferenceChanged),
    /// `preference.quiet_hours_set`.
    QuietHoursSet(QuietHoursSet),
    /// `preference.digest_set`.
    DigestSet(DigestSet),
    /// `digest.closed`.
    DigestClosed(DigestClosed),
    /// `recipient.profile_changed` or `recipient.erased`, as the inner event says.
    Recipient(RecipientEvent),
    /// `send.scheduled`, `send.cancelled` or `send.published`: a send made later.
    Schedule(ScheduleEvent),
    /// `delivery.planned|skipped|attempted|succeeded|failed|retried`, as the inner event says.
    Delivery(DeliveryEvent),
    /// `webhook.disabled` or `webhook.enabled`: a webhook endpoint's state.
    Endpoint(EndpointEvent),
}

/// A stored event's type could not be turned back into a domain event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown event type {0:?} version {1}")]
    Unknown(String, i32),
    #[error("event {0:?} has malformed data: {1}")]
    Malformed(String, serde_json::Error),
}

impl Event {
    /// The version every event type is written at today; reading older versions upcasts here.
    pub const VERSION: i32 = 1;

    /// The stable type name stored in the log.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::NotificationSent(_) => "notification.sent",
            Event::NotificationSuppressed(_) => "notification.suppressed",
            Event::NotificationSeen(_) => "notification.seen",
            Event::NotificationRead(_) => "notification.read",
            Event::NotificationUnread(_) => "notification.unread",
            Event::NotificationArchived(_) => "notification.archived",
            Event::NotificationUnarchived(_) => "notification.unarchived",
            Event::NotificationExpired(_) => "notification.expired",
            Event::InboxMarked(Mark::Read, _) => "inbox.all_read",
            Event::InboxMarked(Mark::Seen, _) => "inbox.all_seen",
            Event::PreferenceChanged(_) => "preference.changed",
            Event::QuietHoursSet(_) => "preference.quiet_hours_set",
            Event::DigestSet(_) => "preference.digest_set",
            Event::DigestClosed(_) => "digest.closed",
            Event::Recipient(e) => e.type_name(),
            Event::Schedule(e) => e.type_name(),
            Event::Delivery(e) => e.type_name(),
            Event::Endpoint(e) => e.type_name(),
        }
    }

    /// The stream this event belongs to.
    pub fn stream_id(&self) -> String {
        match self {
            Event::NotificationSent(e) | Event::NotificationSuppressed(e) => {
                notification_stream(e.notification_id)
            }
            Event::NotificationSeen(e)
            | Event::NotificationRead(e)
            | Event::NotificationUnread(e)
            | Event::NotificationArchived(e)
            | Event::NotificationUnarchived(e) => notification_stream(e.notification_id),
            Event::NotificationExpired(e) => notification_stream(e.notification_id),
            Event::InboxMarked(_, e) => inbox_stream(&e.recipient),
            Event::PreferenceChanged(e) => preferences_stream(&e.user),
            Event::QuietHoursSet(e) => preferences_stream(&e.user),
            Event::DigestSet(e) => preferences_stream(&e.user),
            Event::DigestClosed(e) => digest_stream(e.digest_id),
            Event::Recipient(e) => recipient_stream(e.user()),
            // A notification's deliveries are part of its story: its stream, its history (a
            // digest's delivery, the digest's).
            Event::Delivery(e) => e.stream_id(),
            Event::Endpoint(e) => endpoint_stream(e.endpoint()),
            Event::Schedule(e) => schedule_stream(e.schedule_id()),
        }
    }

    /// The person whose inbox or settings this event touches; none for a webhook endpoint's.
    pub fn user(&self) -> Option<&UserId> {
        Some(match self {
            Event::NotificationSent(e) | Event::NotificationSuppressed(e) => &e.recipient,
            Event::NotificationSeen(e)
            | Event::NotificationRead(e)
            | Event::NotificationUnread(e)
            | Event::NotificationArchived(e)
            | Event::NotificationUnarchived(e) => &e.recipient,
            Event::NotificationExpired(e) => &e.recipient,
            Event::InboxMarked(_, e) => &e.recipient,
            Event::PreferenceChanged(e) => &e.user,
            Event::QuietHoursSet(e) => &e.user,
            Event::DigestSet(e) => &e.user,
            Event::DigestClosed(e) => &e.recipient,
            Event::Recipient(e) => e.user(),
            Event::Delivery(e) => e.recipient(),
            Event::Endpoint(_) | Event::Schedule(_) => return None,
        })
    }

    /// The event's data as JSON text, serialized straight from the event: what the log stores.
    pub fn to_raw_json(&self) -> Box<RawValue> {
        let raw = match self {
            Event::NotificationSent(e) | Event::NotificationSuppressed(e) => to_raw_value(e),
            Event::NotificationSeen(e)
            | Event::NotificationRead(e)
            | Event::NotificationUnread(e)
            | Event::NotificationArchived(e)
            | Event::NotificationUnarchived(e) => to_raw_value(e),
            Event::NotificationExpired(e) => to_raw_value(e),
            Event::InboxMarked(_, e) => to_raw_value(e),
            Event::PreferenceChanged(e) => to_raw_value(e),
            Event::QuietHoursSet(e) => to_raw_value(e),
            Event::DigestSet(e) => to_raw_value(e),
            Event::DigestClosed(e) => to_raw_value(e),
            Event::Recipient(e) => e.to_raw_value(),
            Event::Delivery(e) => e.to_raw_value(),
            Event::Endpoint(e) => e.to_raw_value(),
            Event::Schedule(e) => e.to_raw_value(),
        };
        // Serializing these plain structs cannot fail: every field is a string, number, bool or map.
        raw.unwrap_or_else(|_| RawValue::NULL.to_owned())
    }

    /// Turns a stored event back into a domain event. Events of unknown types are `Ok(None)`:
    /// the log may hold events written by other tools, and projections skip them.
    pub fn decode(
        event_type: &str,
        version: i32,
        data: &str,
    ) -> Result<Option<Event>, DecodeError> {
        fn de<T: serde::de::DeserializeOwned>(t: &str, data: &str) -> Result<T, DecodeError> {
            serde_json::from_str(data).map_err(|e| DecodeError::Malformed(t.to_owned(), e))
        }
        if !event_type.starts_with("notification.")
            && !event_type.starts_with("inbox.")
            && !event_type.starts_with("preference.")
            && !event_type.starts_with("recipient.")
            && !event_type.starts_with("delivery.")
            && !event_type.starts_with("webhook.")
            && !event_type.starts_with("send.")
            && !event_type.starts_with("digest.")
        {
            return Ok(None);
        }
        if version != Self::VERSION {
            return Err(DecodeError::Unknown(event_type.to_owned(), version));
        }
        let t = event_type;
        Ok(Some(match t {
            "notification.sent" => Event::NotificationSent(de(t, data)?),
            "notification.suppressed" => Event::NotificationSuppressed(de(t, data)?),
            "notification.seen" => Event::NotificationSeen(de(t, data)?),
            "notification.read" => Event::NotificationRead(de(t, data)?),
            "notification.unread" => Event::NotificationUnread(de(t, data)?),
            "notification.archived" => Event::NotificationArchived(de(t, data)?),
            "notification.unarchived" => Event::NotificationUnarchived(de(t, data)?),
            "notification.expired" => Event::NotificationExpired(de(t, data)?),
            "inbox.all_read" => Event::InboxMarked(Mark::Read, de(t, data)?),
            "inbox.all_seen" => Event::InboxMarked(Mark::Seen, de(t, data)?),
            "preference.changed" => Event::PreferenceChanged(de(t, data)?),
            "preference.quiet_hours_set" => Event::QuietHoursSet(de(t, data)?),
            "preference.digest_set" => Event::DigestSet(de(t, data)?),
            "digest.closed" => Event::DigestClosed(de(t, data)?),
            RecipientEvent::PROFILE_CHANGED => {
                Event::Recipient(RecipientEvent::ProfileChanged(de(t, data)?))
            }
            RecipientEvent::ERASED => Event::Recipient(RecipientEvent::Erased(de(t, data)?)),
            DeliveryEvent::PLANNED => Event::Delivery(DeliveryEvent::Planned(de(t, data)?)),
            DeliveryEvent::SKIPPED => Event::Delivery(DeliveryEvent::Skipped(de(t, data)?)),
            DeliveryEvent::ATTEMPTED => Event::Delivery(DeliveryEvent::Attempted(de(t, data)?)),
            DeliveryEvent::SUCCEEDED => Event::Delivery(DeliveryEvent::Succeeded(de(t, data)?)),
            DeliveryEvent::FAILED => Event::Delivery(DeliveryEvent::Failed(de(t, data)?)),
            DeliveryEvent::RETRIED => Event::Delivery(DeliveryEvent::Retried(de(t, data)?)),
            DeliveryEvent::DEFERRED => Event::Delivery(DeliveryEvent::Deferred(de(t, data)?)),
            DeliveryEvent::DIGESTED => Event::Delivery(DeliveryEvent::Digested(de(t, data)?)),
            EndpointEvent::DISABLED => Event::Endpoint(EndpointEvent::Disabled(de(t, data)?)),
            EndpointEvent::ENABLED => Event::Endpoint(EndpointEvent::Enabled(de(t, data)?)),
            ScheduleEvent::SCHEDULED => Event::Schedule(ScheduleEvent::Scheduled(de(t, data)?)),
            ScheduleEvent::CANCELLED => Event::Schedule(ScheduleEvent::Cancelled(de(t, data)?)),
            ScheduleEvent::PUBLISHED => Event::Schedule(ScheduleEvent::Published(de(t, data)?)),
            other => return Err(DecodeError::Unknown(other.to_owned(), version)),
        }))
    }
}

pub fn notification_stream(id: NotificationId) -> String {
    format!("notification-{id}")
}

/// The stream of one person's bulk inbox facts.
pub fn inbox_stream(user: &UserId) -> String {
    format!("inbox-{user}")
}

/// The stream of one person's preference changes.
pub fn preferences_stream(user: &UserId) -> String {
    format!("preferences-{user}")
}
