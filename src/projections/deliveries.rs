//! The `deliveries` projection: every external delivery of a notification, its status and its
//! due time. It is the delivery log the API shows and the schedule workers take due
//! deliveries from (`due_at` is set while a delivery is open, cleared once it is settled). A
//! rebuild writes rows, never sends: sending happens only from claimed due rows.

use anyhow::Context;
use chrono::{DateTime, Utc};

use crate::domain::digest::DigestId;
use crate::domain::event::{DeliveryEvent, Event};
use crate::domain::recipient::{ProfileField, RecipientEvent};
use crate::domain::{DeliveryId, NotificationId};
use crate::eventlog::{Db, RecordedEvent, WriteTx};
use crate::{on_reader, on_tx};

/// A delivery's status as the table stores it.
pub mod status {
    /// Waiting for its due time.
    pub const PLANNED: &str = "planned";
    /// A worker has begun an attempt (its outcome is not recorded yet).
    pub const SENDING: &str = "sending";
    /// An attempt failed; due again at `due_at`.
    pub const RETRYING: &str = "retrying";
    /// The provider accepted it.
    pub const SUCCEEDED: &str = "succeeded";
    /// Failed for good: no more attempts.
    pub const FAILED: &str = "failed";
    /// Not made, for the reason in `reason`.
    pub const SKIPPED: &str = "skipped";
    /// Waiting out the recipient's quiet hours (the reason in `reason`) until `due_at`.
    pub const DEFERRED: &str = "deferred";
    /// Joined the recipient's digest instead of going out: the digest's delivery sends it.
    pub const DIGESTED: &str = "digested";

    /// Every status, in the order a delivery may pass through them.
    pub const ALL: [&str; 8] = [
        PLANNED, DEFERRED, SENDING, RETRYING, SUCCEEDED, FAILED, SKIPPED, DIGESTED,
    ];

    /// Nothing more happens to a delivery in this status.
    pub fn is_settled(status: &str) -> bool {
        matches!(status, SUCCEEDED | FAILED | SKIPPED | DIGESTED)
    }
}

pub(super) async fn apply(
    tx: &mut WriteTx,
    table: &str,
    recorded: &RecordedEvent,
    event: &Event,
) -> anyhow::Result<()> {
    let position = recorded.position;
    let result = match event {
        Event::Delivery(DeliveryEvent::Planned(e)) => {
            let sql = format!(
                "INSERT INTO {table} (delivery_id, notification_id, recipient, category, channel, \
                 status, due_at, unless_flag, attempts, planned_at, planned_position, updated_at, \
                 position, digest_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $9, $10, $11)"
            );
            on_tx!(tx, |c| sqlx::query(&sql)
                .bind(e.delivery_id.as_uuid())
                .bind(e.notification_id.as_uuid())
                .bind(e.recipient.as_str())
                .bind(e.category.as_str())
                .bind(e.channel.as_str())
                .bind(status::PLANNED)
                .bind(e.due_at)
                .bind(e.unless.map(|u| u.as_str()))
                .bind(e.at)
                .bind(position)
                .bind(e.digest_id.map(|d| d.as_uuid()))
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected()))
        }
        // Skipped at once (never planned), or a planned one called off: either way it is
        // settled, with its reason, and no longer due.
        Event::Delivery(DeliveryEvent::Skipped(e)) => {
            let sql = format!(
                "INSERT INTO {table} (delivery_id, notification_id, recipient, category, channel, \
                 status, reason, attempts, planned_at, planned_position, updated_at, position) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9, $8, $9) \
                 ON CONFLICT (delivery_id) DO UPDATE SET status = excluded.status, \
                 reason = excluded.reason, due_at = NULL, updated_at = excluded.updated_at, \
                 position = excluded.position"
            );
            on_tx!(tx, |c| sqlx::query(&sql)
                .bind(e.delivery_id.as_uuid())
                .bind(e.notification_id.as_uuid())
                .bind(e.recipient.as_str())
                .bind(e.category.as_str())
                .bind(e.channel.as_str())
                .bind(status::SKIPPED)
                .bind(e.reason.as_str())
                .bind(e.at)
                .bind(position)
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected()))
        }
        Event::Delivery(DeliveryEvent::Attempted(e)) => {
            Update {
                delivery: e.delivery.delivery_id,
                status: status::SENDING,
                set: &[Set::Attempts(e.attempt)],
                at: e.at,
            }
            .apply(tx, table, position)
            .await
        }
        Event::Delivery(DeliveryEvent::Succeeded(e)) => {
            Update {
                delivery: e.delivery.delivery_id,
                status: status::SUCCEEDED,
                set: &[
                    Set::Attempts(e.attempt),
                    Set::ProviderId(e.provider_id.as_deref()),
                    Set::DueAt(None),
                ],
                at: e.at,
            }
            .apply(tx, table, position)
            .await
        }
        // Retrying: due again at its retry time; failed for good: settled.
        Event::Delivery(DeliveryEvent::Failed(e)) => {
            Update {
                delivery: e.delivery.delivery_id,
                status: if e.retry_at.is_some() {
                    status::RETRYING
                } else {
                    status::FAILED
                },
                set: &[
                    Set::Attempts(e.attempt),
                    Set::LastError(&e.error),
                    Set::DueAt(e.retry_at),
                ],
                at: e.at,
            }
            .apply(tx, table, position)
            .await
        }
        // One more attempt, asked for by an operator: due at once.
        Event::Delivery(DeliveryEvent::Retried(e)) => {
            Update {
                delivery: e.delivery.delivery_id,
                status: status::RETRYING,
                set: &[Set::DueAt(Some(e.at))],
                at: e.at,
            }
            .apply(tx, table, position)
            .await
        }
        // Waits until the end of the recipient's quiet hours.
        Event::Delivery(DeliveryEvent::Deferred(e)) => {
            Update {
                delivery: e.delivery.delivery_id,
                status: status::DEFERRED,
                set: &[
                    Set::DueAt(Some(e.until)),
                    Set::Reason(Some(e.reason.as_str())),
                ],
                at: e.at,
            }
            .apply(tx, table, position)
            .await
        }
        // In a digest now: settled, the digest's own delivery sends it.
        Event::Delivery(DeliveryEvent::Digested(e)) => {
            Update {
                delivery: e.delivery.delivery_id,
                status: status::DIGESTED,
                set: &[Set::DueAt(None), Set::DigestId(e.digest_id)],
                at: e.at,
            }
            .apply(tx, table, position)
            .await
        }
        // New quiet hours, or a new time zone to read them in: what waits for the old ones is
        // due at once, and decided again against the new.
        Event::QuietHoursSet(e) => redue_deferred(tx, table, e.user.as_str(), e.at).await,
        Event::Recipient(RecipientEvent::ProfileChanged(e))
            if e.fields.contains(&ProfileField::TimeZone) =>
        {
            redue_deferred(tx, table, e.user.as_str(), e.at).await
        }
        _ => return Ok(()),
    };
    result.with_context(|| format!("Failed to project event {position} into {table}"))?;
    Ok(())
}

/// Makes `user`'s deferred deliveries due at `at` (their row otherwise as it was: the fact
/// that changed is the person's, not the delivery's).
async fn redue_deferred(
    tx: &mut WriteTx,
    table: &str,
    user: &str,
    at: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let sql = format!(
        "UPDATE {table} SET due_at = $1 WHERE recipient = $2 AND status = $3 AND due_at > $1"
    );
    on_tx!(tx, |c| sqlx::query(&sql)
        .bind(at)
        .bind(user)
        .bind(status::DEFERRED)
        .execute(&mut **c)
        .await
        .map(|r| r.rows_affected()))
}

/// What a later fact of a delivery changes in its row: its status, time and position, and
/// the columns in `set`. Every other column keeps its value: an attempt leaves the due time
/// as it was, a retry the attempts and the last error.
struct Update<'a> {
    delivery: DeliveryId,
    status: &'static str,
    set: &'a [Set<'a>],
    at: DateTime<Utc>,
}

/// A column a fact sets besides the status, time and position.
enum Set<'a> {
    Attempts(u32),
    ProviderId(Option<&'a str>),
    LastError(&'a str),
    /// `None` clears it: a settled delivery is no longer due.
    DueAt(Option<DateTime<Utc>>),
    Reason(Option<&'a str>),
    DigestId(DigestId),
}

impl Update<'_> {
    /// How many rows it changed: none for a delivery the table does not hold.
    async fn apply(
        &self,
        tx: &mut WriteTx,
        table: &str,
        position: i64,
    ) -> Result<u64, sqlx::Error> {
        on_tx!(tx, |c| {
            let mut update = sqlx::QueryBuilder::new(format!("UPDATE {table} SET status = "));
            update.push_bind(self.status);
            for set in self.set {
                match *set {
                    Set::Attempts(n) => update
                        .push(", attempts = ")
                        .push_bind(i32::try_from(n).unwrap_or(i32::MAX)),
                    Set::ProviderId(id) => update.push(", provider_id = ").push_bind(id),
                    Set::LastError(error) => update.push(", last_error = ").push_bind(error),
                    Set::DueAt(due) => update.push(", due_at = ").push_bind(due),
                    Set::Reason(reason) => update.push(", reason = ").push_bind(reason),
                    Set::DigestId(id) => update.push(", digest_id = ").push_bind(id.as_uuid()),
                };
            }
            update
                .push(", updated_at = ")
                .push_bind(self.at)
                .push(", position = ")
                .push_bind(position)
                .push(" WHERE delivery_id = ")
                .push_bind(self.delivery.as_uuid());
            update
                .build()
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected())
        })
    }
}

/// One delivery as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DeliveryRow {
    pub delivery_id: uuid::Uuid,
    pub notification_id: uuid::Uuid,
    pub recipient: String,
    pub category: String,
    pub channel: String,
    pub status: String,
    pub due_at: Option<DateTime<Utc>>,
    pub unless_flag: Option<String>,
    pub reason: Option<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub provider_id: Option<String>,
    pub planned_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The digest it joined (status `digested`), or, on a digest's own delivery (whose
    /// `notification_id` is the digest's id), the digest it sends.
    pub digest_id: Option<uuid::Uuid>,
}

/// Every external delivery of one notification, in the order its send planned them.
pub async fn of_notification(
    db: &Db,
    notification: NotificationId,
) -> anyhow::Result<Vec<DeliveryRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM deliveries WHERE notification_id = $1 ORDER BY planned_position"
    );
    on_reader!(db, |p| sqlx::query_as(&sql)
        .bind(notification.as_uuid())
        .fetch_all(p)
        .await)
    .with_context(|| format!("Failed to read the deliveries of notification {notification}"))
}

const COLUMNS: &str =
    "delivery_id, notification_id, recipient, category, channel, status, due_at, \
    unless_flag, reason, attempts, last_error, provider_id, planned_at, updated_at, digest_id";

/// One delivery by its id.
pub async fn by_id(db: &Db, delivery: DeliveryId) -> anyhow::Result<Option<DeliveryRow>> {
    let sql = format!("SELECT {COLUMNS} FROM deliveries WHERE delivery_id = $1");
    on_reader!(db, |p| sqlx::query_as(&sql)
        .bind(delivery.as_uuid())
        .fetch_optional(p)
        .await)
    .with_context(|| format!("Failed to read delivery {delivery}"))
}

/// Deliveries in `status` whose last change was at or after `since`, most recent first: e.g.
/// every failure of the last hour.
pub async fn in_status(
    db: &Db,
    status: &str,
    since: DateTime<Utc>,
    limit: usize,
) -> anyhow::Result<Vec<DeliveryRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM deliveries WHERE status = $1 AND updated_at >= $2 \
         ORDER BY updated_at DESC, position DESC LIMIT $3"
    );
    on_reader!(db, |p| sqlx::query_as(&sql)
        .bind(status)
        .bind(since)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(p)
        .await)
    .with_context(|| format!("Failed to list the {status} deliveries"))
}

impl DeliveryRow {
    /// What the log's facts about this delivery name.
    pub fn reference(&self) -> anyhow::Result<crate::domain::event::DeliveryRef> {
        let bad = |what: &str, e: crate::domain::InputError| {
            anyhow::anyhow!(
                "stored delivery {} has an invalid {what}: {e}",
                self.delivery_id
            )
        };
        Ok(crate::domain::event::DeliveryRef {
            delivery_id: DeliveryId::from_uuid(self.delivery_id),
            notification_id: NotificationId::from_uuid(self.notification_id),
            recipient: crate::domain::UserId::parse(&self.recipient)
                .map_err(|e| bad("recipient", e))?,
            channel: crate::domain::Channel::parse(&self.channel).map_err(|e| bad("channel", e))?,
            digest_id: self
                .digest_id
                .filter(|id| *id == self.notification_id)
                .map(DigestId::from_uuid),
        })
    }
}
