//! GraphQL object types over the read model, and the opaque `Cursor` scalar.

use async_graphql::{
    ComplexObject, Context, Enum, InputValueError, InputValueResult, Object, Scalar, ScalarType,
    SimpleObject, Value, ID,
};
use base64::Engine as _;
use chrono::{DateTime, Utc};

use crate::domain::{Channel as DomainChannel, Priority as DomainPriority};
use crate::projections::deliveries::DeliveryRow;
use crate::projections::read::{self, InboxEntry};

/// A place in the log. Opaque to clients: pass it back as `after` or `upTo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(pub i64);

const CURSOR_TAG: &str = "belfry:";

impl Cursor {
    pub fn encode(self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{CURSOR_TAG}{}", self.0))
    }

    pub fn decode(raw: &str) -> Option<Cursor> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw)
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let position: i64 = text.strip_prefix(CURSOR_TAG)?.parse().ok()?;
        (position >= 0).then_some(Cursor(position))
    }
}

/// An opaque, stable position in a person's inbox history.
#[Scalar(name = "Cursor")]
impl ScalarType for Cursor {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => {
                Cursor::decode(s).ok_or_else(|| InputValueError::custom("malformed cursor"))
            }
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.encode())
    }
}

/// How loudly a notification asks for attention.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

impl From<Priority> for DomainPriority {
    fn from(p: Priority) -> Self {
        match p {
            Priority::Low => DomainPriority::Low,
            Priority::Normal => DomainPriority::Normal,
            Priority::High => DomainPriority::High,
            Priority::Urgent => DomainPriority::Urgent,
        }
    }
}

impl Priority {
    fn from_stored(s: &str) -> Priority {
        match DomainPriority::parse(s) {
            Ok(DomainPriority::Low) => Priority::Low,
            Ok(DomainPriority::High) => Priority::High,
            Ok(DomainPriority::Urgent) => Priority::Urgent,
            _ => Priority::Normal,
        }
    }
}

/// Where a notification can be delivered.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    InApp,
    Email,
    Sms,
    Push,
    Webhook,
}

impl From<Channel> for DomainChannel {
    fn from(c: Channel) -> Self {
        match c {
            Channel::InApp => DomainChannel::InApp,
            Channel::Email => DomainChannel::Email,
            Channel::Sms => DomainChannel::Sms,
            Channel::Push => DomainChannel::Push,
            Channel::Webhook => DomainChannel::Webhook,
        }
    }
}

impl From<DomainChannel> for Channel {
    fn from(c: DomainChannel) -> Self {
        match c {
            DomainChannel::InApp => Channel::InApp,
            DomainChannel::Email => Channel::Email,
            DomainChannel::Sms => Channel::Sms,
            DomainChannel::Push => Channel::Push,
            DomainChannel::Webhook => Channel::Webhook,
        }
    }
}

/// One notification in the viewer's inbox.
pub struct Notification(pub InboxEntry);

#[Object]
impl Notification {
    async fn id(&self) -> ID {
        ID(self.0.notification_id.to_string())
    }
    async fn category(&self) -> &str {
        &self.0.category
    }
    async fn priority(&self) -> Priority {
        Priority::from_stored(&self.0.priority)
    }
    /// Delivered even when the category is muted.
    async fn critical(&self) -> bool {
        self.0.critical
    }
    /// It arrived during the recipient's quiet hours: show it, but without a toast.
    async fn quiet(&self) -> bool {
        self.0.quiet
    }
    /// When it leaves the inbox, if its send said so.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn body(&self) -> &str {
        &self.0.body
    }
    /// The sender's structured payload (a JSON object).
    async fn data(&self) -> async_graphql::Json<&serde_json::Value> {
        async_graphql::Json(&self.0.data)
    }
    async fn action_url(&self) -> Option<&str> {
        self.0.action_url.as_deref()
    }
    async fn icon(&self) -> Option<&str> {
        self.0.icon.as_deref()
    }
    async fn sent_at(&self) -> DateTime<Utc> {
        self.0.sent_at
    }
    async fn seen(&self) -> bool {
        self.0.seen_at.is_some()
    }
    async fn read(&self) -> bool {
        self.0.read_at.is_some()
    }
    async fn archived(&self) -> bool {
        self.0.archived_at.is_some()
    }
    async fn seen_at(&self) -> Option<DateTime<Utc>> {
        self.0.seen_at
    }
    async fn read_at(&self) -> Option<DateTime<Utc>> {
        self.0.read_at
    }
    async fn archived_at(&self) -> Option<DateTime<Utc>> {
        self.0.archived_at
    }
    /// Where this notification sits in the inbox; pass it as `after` to page on, or as
    /// `upTo` to mark everything up to here.
    async fn cursor(&self) -> Cursor {
        Cursor(self.0.sent_position)
    }
}

/// One category's counts.
#[derive(SimpleObject, Debug, Clone, PartialEq, Eq)]
pub struct CategoryCount {
    pub category: String,
    pub unread: i64,
    pub unseen: i64,
}

/// Unread and unseen counts of the viewer's inbox (archived notifications do not count).
#[derive(SimpleObject, Debug, Clone, PartialEq, Eq)]
pub struct Counts {
    pub unread: i64,
    pub unseen: i64,
    /// Categories with a non-zero count, by name.
    pub by_category: Vec<CategoryCount>,
}

impl From<read::Counts> for Counts {
    fn from(c: read::Counts) -> Self {
        Counts {
            unread: c.unread,
            unseen: c.unseen,
            by_category: c
                .by_category
                .into_iter()
                .map(|(category, unread, unseen)| CategoryCount {
                    category,
                    unread,
                    unseen,
                })
                .collect(),
        }
    }
}

/// A person's switch for one category and channel. Anything not listed is on.
#[derive(SimpleObject, Debug, Clone, PartialEq, Eq)]
pub struct Preference {
    pub category: String,
    pub channel: Channel,
    pub enabled: bool,
}

#[derive(SimpleObject)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<Cursor>,
    pub end_cursor: Option<Cursor>,
}

#[derive(SimpleObject)]
pub struct NotificationEdge {
    pub cursor: Cursor,
    pub node: Notification,
}

/// A page of the viewer's inbox, newest first.
#[derive(SimpleObject)]
pub struct NotificationConnection {
    pub edges: Vec<NotificationEdge>,
    pub page_info: PageInfo,
    /// The log position this page was read at: subscribe to `inbox(after: liveCursor)` to
    /// receive every later change, with nothing missed in between.
    pub live_cursor: Cursor,
}

/// The state of one notification after a change.
#[derive(SimpleObject, Debug, Clone)]
pub struct NotificationState {
    pub id: ID,
    pub category: String,
    pub seen: bool,
    pub read: bool,
    pub archived: bool,
}

/// One change to the viewer's inbox. Every change has its own cursor; resuming with
/// `inbox(after: cursor)` continues with the next one.
#[derive(SimpleObject)]
pub struct InboxChange {
    pub cursor: Cursor,
    /// Notifications that arrived (live: at most one).
    pub added: Vec<Notification>,
    /// Notifications whose seen/read/archived flags changed (several for "mark all").
    pub changed: Vec<NotificationState>,
    /// Notifications that left the inbox for good: expired, by their send's `expiresAt` or
    /// the server's retention. Drop them from the list.
    pub removed: Vec<ID>,
    /// The counts after this change. While catching up after a cursor, every change carries
    /// the counts as of the resume.
    pub counts: Counts,
}

/// One recipient's notification created by a send.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Delivery {
    pub recipient: String,
    pub notification_id: ID,
    /// Recorded, never shown: muted by the recipient's preferences, or throttled.
    pub suppressed: bool,
    /// Over the category's throttle for the recipient: recorded, never shown, its external
    /// deliveries skipped (`suppressed` is true too).
    pub throttled: bool,
    pub cursor: Cursor,
}

#[ComplexObject]
impl Delivery {
    /// The notification as the recipient sees it (null when suppressed).
    async fn notification(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Notification>> {
        if self.suppressed {
            return Ok(None);
        }
        let api = super::api(ctx);
        let (Ok(user), Ok(id)) = (
            crate::domain::UserId::parse(&self.recipient),
            crate::domain::NotificationId::parse(&self.notification_id),
        ) else {
            return Ok(None);
        };
        let entry = read::notification(api.engine.db(), &user, id)
            .await
            .map_err(super::ApiError::internal)?;
        Ok(entry.map(Notification))
    }
}

/// What a send did.
#[derive(SimpleObject)]
pub struct SendResult {
    /// This was a retry with an idempotency key already used: the deliveries are the first
    /// send's, and nothing new was created.
    pub replayed: bool,
    pub deliveries: Vec<Delivery>,
    /// The scheduled send, for one with a `sendAt` in the future (`deliveries` is empty).
    pub scheduled: Option<super::scheduled::ScheduledSend>,
}

/// What a "mark all" did.
#[derive(SimpleObject)]
pub struct MarkAllResult {
    /// How many notifications it changed.
    pub changed: i64,
    pub counts: Counts,
}

/// What calls a delayed delivery off.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unless {
    /// The notification was read in the app.
    Read,
    /// The notification was seen in the app (the bell opened on it).
    Seen,
}

impl From<Unless> for crate::domain::Unless {
    fn from(u: Unless) -> Self {
        match u {
            Unless::Read => crate::domain::Unless::Read,
            Unless::Seen => crate::domain::Unless::Seen,
        }
    }
}

/// Where a delivery stands.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Planned,
    Sending,
    Retrying,
    Succeeded,
    Failed,
    Skipped,
    Deferred,
    /// Joined the recipient's digest instead of going out on its own.
    Digested,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        use crate::projections::deliveries::status;
        match self {
            DeliveryStatus::Planned => status::PLANNED,
            DeliveryStatus::Sending => status::SENDING,
            DeliveryStatus::Retrying => status::RETRYING,
            DeliveryStatus::Succeeded => status::SUCCEEDED,
            DeliveryStatus::Failed => status::FAILED,
            DeliveryStatus::Skipped => status::SKIPPED,
            DeliveryStatus::Deferred => status::DEFERRED,
            DeliveryStatus::Digested => status::DIGESTED,
        }
    }
}

/// One delivery as the delivery log stores it, shown to operators.
pub struct ChannelDelivery(pub DeliveryRow);

/// One delivery of a notification on an external channel, for operators: the delivery log.
#[Object]
impl ChannelDelivery {
    /// The same on every attempt: the email's `Message-ID`, the webhook's `webhook-id`.
    async fn id(&self) -> ID {
        ID(self.0.delivery_id.to_string())
    }
    async fn notification_id(&self) -> ID {
        ID(self.0.notification_id.to_string())
    }
    async fn recipient(&self) -> &str {
        &self.0.recipient
    }
    async fn category(&self) -> &str {
        &self.0.category
    }
    async fn channel(&self) -> &str {
        &self.0.channel
    }
    /// `planned` (waiting for its due time), `sending` (an attempt begun), `retrying` (due
    /// again at `dueAt`), `deferred` (waiting out the recipient's quiet hours until `dueAt`),
    /// `succeeded`, `failed` (for good), `skipped` (see `reason`) or `digested` (it joined
    /// the recipient's digest, whose own delivery sends it).
    async fn status(&self) -> &str {
        &self.0.status
    }
    /// The digest it joined (status `digested`), or, on a digest's own delivery (whose
    /// `notificationId` is the digest's id), the digest it sends. See `digest(id)`.
    async fn digest_id(&self) -> Option<ID> {
        self.0.digest_id.map(|id| ID(id.to_string()))
    }
    /// When it falls due; null once it is settled.
    async fn due_at(&self) -> Option<DateTime<Utc>> {
        self.0.due_at
    }
    /// `read` or `seen`: what calls it off before it falls due.
    async fn unless(&self) -> Option<&str> {
        self.0.unless_flag.as_deref()
    }
    /// Why it was skipped (`muted`, `read`, `seen`, `no_address`, `expired`, `throttled`), or deferred
    /// (`quiet_hours`).
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    /// The provider's id for the message, once accepted.
    async fn provider_id(&self) -> Option<&str> {
        self.0.provider_id.as_deref()
    }
    async fn planned_at(&self) -> DateTime<Utc> {
        self.0.planned_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A projection's state, for operators.
#[derive(SimpleObject)]
pub struct ProjectionStatus {
    pub name: String,
    /// The version this build of Belfry expects.
    pub version: i32,
    /// The version its tables were built at (null when never built).
    pub built_version: Option<i32>,
    /// The log position it has applied up to.
    pub position: i64,
    /// Log events not yet applied (inline projections stay at 0).
    pub lag: i64,
}

/// One event of a notification's history, as recorded.
#[derive(SimpleObject)]
pub struct AuditEvent {
    pub position: i64,
    #[graphql(name = "type")]
    pub event_type: String,
    pub version: i32,
    pub stream_id: String,
    pub stream_version: i64,
    pub data: async_graphql::Json<serde_json::Value>,
    pub metadata: async_graphql::Json<serde_json::Value>,
    pub recorded_at: DateTime<Utc>,
}

impl From<crate::eventlog::RecordedEvent> for AuditEvent {
    fn from(e: crate::eventlog::RecordedEvent) -> Self {
        AuditEvent {
            position: e.position,
            event_type: e.event_type,
            version: e.event_version,
            stream_id: e.stream_id,
            stream_version: e.stream_version,
            data: async_graphql::Json(e.data.to_value()),
            metadata: async_graphql::Json(
                serde_json::to_value(&e.metadata).unwrap_or(serde_json::Value::Null),
            ),
            recorded_at: e.recorded_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = Cursor(12_345);
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("12345"), None);
        assert_eq!(Cursor::decode(&Cursor(0).encode()), Some(Cursor(0)));
        let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("belfry:-4");
        assert_eq!(Cursor::decode(&forged), None);
    }
}
