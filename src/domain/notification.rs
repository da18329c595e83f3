//! The `notification-{id}` stream: sending to recipients and changing one notification's flags.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::event::{
    Content, DeliveryEvent, DeliveryPlanned, DeliverySkipped, Event, ExpireReason, Flags,
    NotificationChanged, NotificationCreated, NotificationExpired,
};
use super::values::{
    Category, Channel, DeliveryId, IdempotencyKey, NotificationId, Route, SkipReason,
    SuppressReason, Throttle, UserId,
};
use super::{Decide, DomainError};

/// Send one notification to one or more people. Ids and the clock reading come from outside.
#[derive(Debug, Clone, PartialEq)]
pub struct SendNotification {
    /// One new notification per recipient, in the order given (duplicates removed).
    pub deliveries: Vec<(NotificationId, UserId)>,
    pub content: Content,
    /// The external deliveries each recipient gets besides the in-app one.
    pub routes: Vec<Route>,
    /// `routes` are the category's default routing, not the send's own.
    pub routes_by_default: bool,
    /// The most notifications of this category each recipient gets per window; `None`: no
    /// limit. Critical sends are never throttled.
    pub throttle: Option<Throttle>,
    /// `throttle` is the category's configured one (or its absence), not the send's own.
    pub throttle_by_default: bool,
    /// The recipients' quiet hours hold it: its in-app notification lands without a toast
    /// during them (its deliveries wait, decided when they fall due). False for what the
    /// server lets through (`urgent` and `critical`, by default).
    pub quiet_hours_hold: bool,
    /// When its notifications leave the inbox; none: the retention policy decides.
    pub expiry: Option<Expiry>,
    pub idempotency_key: Option<IdempotencyKey>,
    pub at: DateTime<Utc>,
}

/// The longest time to live a send may give.
pub const TTL_MAX_SECONDS: i64 = 365 * 86_400;

/// When a send's notifications expire: at a time, or a time after they are sent (a scheduled
/// send's, after it is published).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expiry {
    At(DateTime<Utc>),
    AfterSeconds(u32),
}

impl Expiry {
    /// The instant, for a send made at `at`.
    pub fn resolve(self, at: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Expiry::At(t) => t,
            Expiry::AfterSeconds(s) => at + chrono::Duration::seconds(i64::from(s)),
        }
    }
}

impl SendNotification {
    /// Builds a send, giving each distinct recipient a fresh notification id from `new_id`.
    pub fn new(
        recipients: impl IntoIterator<Item = UserId>,
        content: Content,
        routes: Vec<Route>,
        idempotency_key: Option<IdempotencyKey>,
        at: DateTime<Utc>,
        mut new_id: impl FnMut() -> NotificationId,
    ) -> Self {
        let mut seen = BTreeSet::new();
        let deliveries = recipients
            .into_iter()
            .filter(|r| seen.insert(r.clone()))
            .map(|r| (new_id(), r))
            .collect();
        Self {
            deliveries,
            content,
            routes,
            routes_by_default: false,
            throttle: None,
            throttle_by_default: true,
            quiet_hours_hold: true,
            expiry: None,
            idempotency_key,
            at,
        }
    }

    /// A stable digest of what was asked for (recipients, content, the send's own routes and
    /// throttle, not ids, time, or a category's default routing and throttle, which the
    /// server's configuration may change between a send and its retry): a retry with the same
    /// idempotency key must carry the same fingerprint. A send without routes or a throttle of
    /// its own digests as sends did before either existed.
    pub fn fingerprint(&self) -> String {
        let mut recipients: Vec<&str> = self.deliveries.iter().map(|(_, r)| r.as_str()).collect();
        recipients.sort_unstable();
        // serde_json maps are sorted by key, so this text is canonical.
        let mut canonical =
            serde_json::json!({ "recipients": recipients, "content": self.content });
        if !self.routes.is_empty() && !self.routes_by_default {
            canonical["routes"] = serde_json::json!(self.routes);
        }
        if !self.throttle_by_default {
            canonical["throttle"] = match self.throttle {
                Some(throttle) => serde_json::json!(throttle),
                None => serde_json::json!("off"),
            };
        }
        if let Some(expiry) = self.expiry {
            canonical["expiry"] = serde_json::json!(expiry);
        }
        let digest = Sha256::digest(canonical.to_string().as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What a send is decided against.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SendState {
    /// The fingerprint of an earlier send under the same idempotency key, if any.
    pub previous_fingerprint: Option<String>,
    /// Recipients who switched off in-app delivery for this category.
    pub muted: BTreeSet<UserId>,
    /// The external channels recipients switched off for this category.
    pub muted_channels: BTreeSet<(UserId, Channel)>,
    /// How many notifications of this category reached each recipient (entered their inbox)
    /// in the send's throttle window, ending at the send's time; read only when the send is
    /// throttled and not critical, and absent for someone who got none.
    pub recent: BTreeMap<UserId, u32>,
    /// Recipients inside their quiet hours now; read only when quiet hours hold the send.
    pub quiet: BTreeSet<UserId>,
}

impl SendNotification {
    /// When its notifications expire, if they do.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.expiry.map(|e| e.resolve(self.at))
    }

    /// Whether `recipient` already had as many notifications of this category in the window
    /// as the throttle allows.
    fn throttles(&self, state: &SendState, recipient: &UserId) -> bool {
        match self.throttle {
            Some(throttle) if !self.content.critical => {
                state.recent.get(recipient).copied().unwrap_or(0) >= throttle.max
            }
            _ => false,
        }
    }
}

/// Decides a send: one `sent` per recipient, each followed by a `delivery.planned` per route.
/// Unless the send is critical: a recipient over the throttle gets a `suppressed` (reason
/// `throttled`) with every delivery skipped as `throttled`; one who muted the category in the
/// app a `suppressed` (reason `muted`); a channel muted for the category is skipped as
/// `muted`. A retry of an earlier keyed send decides nothing new; a different request under
/// the same key is a conflict.
impl Decide for SendNotification {
    type State = SendState;

    fn decide(&self, state: &SendState) -> Result<Vec<Event>, DomainError> {
        let cmd = self;
        if let Some(previous) = &state.previous_fingerprint {
            return match &cmd.idempotency_key {
                Some(key) if *previous != cmd.fingerprint() => {
                    Err(DomainError::IdempotencyConflict(key.clone()))
                }
                _ => Ok(Vec::new()),
            };
        }
        let content = Arc::new(cmd.content.clone());
        let critical = cmd.content.critical;
        let mut events = Vec::with_capacity(cmd.deliveries.len() * (1 + cmd.routes.len()));
        for (id, recipient) in &cmd.deliveries {
            let throttled = cmd.throttles(state, recipient);
            let suppressed = if throttled {
                Some(SuppressReason::Throttled)
            } else {
                (state.muted.contains(recipient) && !critical).then_some(SuppressReason::Muted)
            };
            let created = NotificationCreated {
                notification_id: *id,
                recipient: recipient.clone(),
                content: Arc::clone(&content),
                at: cmd.at,
                reason: suppressed,
                quiet: suppressed.is_none() && state.quiet.contains(recipient),
                expires_at: cmd.expires_at(),
            };
            events.push(match suppressed {
                Some(_) => Event::NotificationSuppressed(created),
                None => Event::NotificationSent(created),
            });
            for (index, route) in cmd.routes.iter().enumerate() {
                let delivery_id = DeliveryId::of(*id, index);
                let muted = state
                    .muted_channels
                    .contains(&(recipient.clone(), route.channel));
                let skipped = if throttled {
                    Some(SkipReason::Throttled)
                } else {
                    (muted && !critical).then_some(SkipReason::Muted)
                };
                events.push(Event::Delivery(if let Some(reason) = skipped {
                    DeliveryEvent::Skipped(DeliverySkipped {
                        delivery_id,
                        notification_id: *id,
                        recipient: recipient.clone(),
                        category: cmd.content.category.clone(),
                        channel: route.channel,
                        reason,
                        at: cmd.at,
                    })
                } else {
                    DeliveryEvent::Planned(DeliveryPlanned {
                        delivery_id,
                        notification_id: *id,
                        recipient: recipient.clone(),
                        category: cmd.content.category.clone(),
                        channel: route.channel,
                        due_at: cmd.at + chrono::Duration::seconds(i64::from(route.delay_secs)),
                        unless: route.unless,
                        digest_id: None,
                        at: cmd.at,
                    })
                }));
            }
        }
        Ok(events)
    }
}

/// One delivered notification as commands see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: NotificationId,
    pub recipient: UserId,
    pub category: Category,
    pub flags: Flags,
}

/// The changes a person can make to one of their notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    MarkSeen,
    MarkRead,
    MarkUnread,
    Archive,
    Unarchive,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChangeNotification {
    pub id: NotificationId,
    /// The person asking; only the recipient may change a notification.
    pub actor: UserId,
    pub change: Change,
    pub at: DateTime<Utc>,
}

/// Decides a change. Someone else's notification is reported as not found, so ids never
/// leak; a change that is already in effect decides nothing (retries are harmless).
impl Decide for ChangeNotification {
    type State = Option<Notification>;

    fn decide(&self, state: &Option<Notification>) -> Result<Vec<Event>, DomainError> {
        let cmd = self;
        let n = state
            .as_ref()
            .filter(|n| n.recipient == cmd.actor)
            .ok_or(DomainError::NotificationNotFound(cmd.id))?;
        let before = n.flags;
        let after = match cmd.change {
            // Reading implies having seen it.
            Change::MarkRead => Flags {
                seen: true,
                read: true,
                ..before
            },
            Change::MarkSeen => Flags {
                seen: true,
                ..before
            },
            Change::MarkUnread => Flags {
                read: false,
                ..before
            },
            Change::Archive => Flags {
                archived: true,
                ..before
            },
            Change::Unarchive => Flags {
                archived: false,
                ..before
            },
        };
        if after == before {
            return Ok(Vec::new());
        }
        let changed = NotificationChanged {
            notification_id: n.id,
            recipient: n.recipient.clone(),
            category: n.category.clone(),
            before,
            after,
            at: cmd.at,
        };
        Ok(vec![match cmd.change {
            Change::MarkSeen => Event::NotificationSeen(changed),
            Change::MarkRead => Event::NotificationRead(changed),
            Change::MarkUnread => Event::NotificationUnread(changed),
            Change::Archive => Event::NotificationArchived(changed),
            Change::Unarchive => Event::NotificationUnarchived(changed),
        }])
    }
}

/// Folds one event into a notification's state. Suppressed notifications never exist for
/// commands: they are kept for the audit trail only.
pub fn evolve(state: Option<Notification>, event: &Event) -> Option<Notification> {
    match event {
        Event::NotificationSent(e) => Some(Notification {
            id: e.notification_id,
            recipient: e.recipient.clone(),
            category: e.content.category.clone(),
            flags: Flags::default(),
        }),
        // Out of the inbox for good: nothing can change it any more.
        Event::NotificationSuppressed(_) | Event::NotificationExpired(_) => None,
        Event::NotificationSeen(e)
        | Event::NotificationRead(e)
        | Event::NotificationUnread(e)
        | Event::NotificationArchived(e)
        | Event::NotificationUnarchived(e) => state.map(|n| Notification {
            flags: if n.id == e.notification_id {
                e.after
            } else {
                n.flags
            },
            ..n
        }),
        Event::Recipient(_) => state,
        Event::InboxMarked(mark, e) => state.map(|mut n| {
            if e.items.iter().any(|i| i.notification_id == n.id) {
                n.flags = mark.apply(n.flags);
            }
            n
        }),
        Event::PreferenceChanged(_)
        | Event::QuietHoursSet(_)
        | Event::DigestSet(_)
        | Event::DigestClosed(_)
        | Event::Schedule(_)
        | Event::Delivery(_)
        | Event::Endpoint(_) => state,
    }
}

/// Take a notification out of its recipient's inbox and counters for good: its send's
/// `expiresAt` has passed, or the server's retention says so.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpireNotification {
    pub id: NotificationId,
    pub reason: ExpireReason,
    pub at: DateTime<Utc>,
}

/// What expiring is decided against: the notification (none when it is not in an inbox:
/// expired already, suppressed, unknown) and its deliveries still waiting (not settled and
/// not being attempted).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExpireState {
    pub notification: Option<Notification>,
    pub waiting: Vec<(DeliveryId, Channel)>,
}

/// `notification.expired`, and `delivery.skipped` (`expired`) for each delivery still
/// waiting; nothing for one already gone.
impl Decide for ExpireNotification {
    type State = ExpireState;

    fn decide(&self, state: &ExpireState) -> Result<Vec<Event>, DomainError> {
        let Some(n) = &state.notification else {
            return Ok(Vec::new());
        };
        let mut events = vec![Event::NotificationExpired(NotificationExpired {
            notification_id: n.id,
            recipient: n.recipient.clone(),
            category: n.category.clone(),
            before: n.flags,
            reason: self.reason,
            at: self.at,
        })];
        events.extend(state.waiting.iter().map(|(delivery_id, channel)| {
            Event::Delivery(DeliveryEvent::Skipped(DeliverySkipped {
                delivery_id: *delivery_id,
                notification_id: n.id,
                recipient: n.recipient.clone(),
                category: n.category.clone(),
                channel: *channel,
                reason: SkipReason::Expired,
                at: self.at,
            }))
        }));
        Ok(events)
    }
}
