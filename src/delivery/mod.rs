//! The delivery layer: notifications leave the app. Channels are small adapters behind one
//! trait ([`Channel`]): each builds its message from the notification and the person's contact
//! point, sends it, and says how it went ([`Outcome`]). Retries, backoff, the schedule and the
//! record of every attempt live once, in the layer, not in each channel.

pub mod email;
pub mod endpoints;
pub mod links;
pub mod schedule;
pub mod webhook;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use uuid::Uuid;

use crate::domain::digest::DigestId;
use crate::domain::{Category, Content, NotificationId, UserId};

/// Where a person can be reached, from the recipient directory (never from the log).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contact {
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// E.164, e.g. `+4915112345678`.
    pub phone: Option<String>,
    /// BCP 47, e.g. `de-DE`.
    pub locale: Option<String>,
    /// IANA, e.g. `Europe/Berlin`.
    pub time_zone: Option<String>,
}

/// One attempt at one delivery: what a channel needs to send it.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    /// The delivery's id, the same on every attempt: the idempotency key a receiver can drop
    /// duplicates by (the email's `Message-ID`, the webhook's `webhook-id`).
    pub delivery_id: Uuid,
    pub notification_id: NotificationId,
    pub recipient: &'a UserId,
    pub content: &'a Content,
    pub contact: &'a Contact,
    /// When the notification was sent.
    pub sent_at: DateTime<Utc>,
    /// When this attempt is made (from the injected clock).
    pub attempt_at: DateTime<Utc>,
    /// Where the person manages their notification preferences in the product's app
    /// (`preferences_url`), when it is configured.
    pub preferences_url: Option<&'a str>,
    /// A signed URL that turns this category's email off for this person (RFC 8058 one-click).
    pub unsubscribe_url: Option<&'a str>,
    /// Set when this is a digest's message: `content` is then the digest's heading and
    /// `notification_id` the digest's id.
    pub digest: Option<&'a DigestBody>,
}

/// What a digest's message lists: the notifications it covers, newest first.
#[derive(Debug, Clone)]
pub struct DigestBody {
    pub digest_id: DigestId,
    pub category: Category,
    pub closes_at: DateTime<Utc>,
    pub items: Vec<DigestEntry>,
}

/// One notification of a digest.
#[derive(Debug, Clone)]
pub struct DigestEntry {
    pub notification_id: NotificationId,
    pub content: Arc<Content>,
    pub sent_at: DateTime<Utc>,
}

/// How an attempt went, as the layer needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The provider took it; its id for the message when it gave one.
    Accepted { provider_id: Option<String> },
    /// Worth another try: SMTP 4xx, HTTP 5xx, 408, 429, a timeout, a refused connection.
    /// `retry_after` is the provider's own wish (`Retry-After`), when it said one.
    Transient {
        error: String,
        retry_after: Option<Duration>,
    },
    /// Trying again would fail the same way: SMTP 5xx, HTTP 4xx, a message that cannot be built.
    Permanent { error: String },
    /// The endpoint says it is gone for good (HTTP 410): disable it.
    Gone { error: String },
}

/// One external channel (email, webhook, later push and SMS).
pub trait Channel: Send + Sync {
    /// Attempts one delivery. Never panics and never retries by itself: every failure is an
    /// [`Outcome`] the layer records and schedules.
    fn deliver<'a>(&'a self, message: &'a Message<'a>) -> BoxFuture<'a, Outcome>;
}
