//! The JSON body of a delivery (its shape is in the [module's documentation](super)).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::delivery::Message;
use crate::domain::digest::DigestId;
use crate::domain::{Body, Category, Link, NotificationId, Payload, Priority, Title, UserId};

/// The body of one attempt's request.
#[derive(Serialize)]
pub(super) struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: String,
    data: Data<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Data<'a> {
    delivery_id: uuid::Uuid,
    /// A digest's delivery names its digest instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    notification_id: Option<NotificationId>,
    recipient: Recipient<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notification: Option<Notification<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<Digest<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferences_url: Option<&'a str>,
}

/// A digest's notifications, newest first.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Digest<'a> {
    id: DigestId,
    category: &'a Category,
    closes_at: String,
    count: usize,
    notifications: Vec<Listed<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Listed<'a> {
    id: NotificationId,
    #[serde(flatten)]
    notification: Notification<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Recipient<'a> {
    id: &'a UserId,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    locale: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_zone: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Notification<'a> {
    category: &'a Category,
    priority: Priority,
    critical: bool,
    title: &'a Title,
    body: &'a Body,
    data: &'a Payload,
    #[serde(skip_serializing_if = "Option::is_none")]
    action_url: Option<&'a Link>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icon: Option<&'a Link>,
    sent_at: String,
}

impl<'a> Envelope<'a> {
    pub(super) fn of(m: &'a Message<'a>) -> Self {
        let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        let (content, contact) = (m.content, m.contact);
        let notification = |content: &'a crate::domain::Content, sent_at| Notification {
            category: &content.category,
            priority: content.priority,
            critical: content.critical,
            title: &content.title,
            body: &content.body,
            data: &content.data,
            action_url: content.action_url.as_ref(),
            icon: content.icon.as_ref(),
            sent_at: time(sent_at),
        };
        let digest = m.digest.map(|d| Digest {
            id: d.digest_id,
            category: &d.category,
            closes_at: time(d.closes_at),
            count: d.items.len(),
            notifications: d
                .items
                .iter()
                .map(|item| Listed {
                    id: item.notification_id,
                    notification: notification(&item.content, item.sent_at),
                })
                .collect(),
        });
        Envelope {
            kind: if digest.is_some() {
                "digest.delivery"
            } else {
                "notification.delivery"
            },
            timestamp: time(m.attempt_at),
            data: Data {
                delivery_id: m.delivery_id,
                notification_id: digest.is_none().then_some(m.notification_id),
                recipient: Recipient {
                    id: m.recipient,
                    display_name: contact.display_name.as_deref(),
                    email: contact.email.as_deref(),
                    phone: contact.phone.as_deref(),
                    locale: contact.locale.as_deref(),
                    time_zone: contact.time_zone.as_deref(),
                },
                notification: digest.is_none().then(|| notification(content, m.sent_at)),
                digest,
                preferences_url: m.preferences_url,
            },
        }
    }
}
