//! The `deliveries` projection: every external delivery of a notification, its status and its
//! due time. It is the delivery log the API shows and the schedule workers take due
//! deliveries from (`due_at` is set while a delivery is open, cleared once it is settled). A
//! rebuild writes rows, never sends: sending happens only from claimed due rows.

use anyhow::Context;
use chrono::{DateTime, Utc};

use crate::domain::event::{DeliveryEvent, Event};
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

    /// Nothing more happens to a delivery in this status.
    pub fn is_settled(status: &str) -> bool {
        matches!(status, SUCCEEDED | FAILED | SKIPPED)
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
                 position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $9, $10)"
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
            let sql = format!(
                "UPDATE {table} SET status = $1, attempts = $2, updated_at = $3, position = $4 \
                 WHERE delivery_id = $5"
            );
            on_tx!(tx, |c| sqlx::query(&sql)
                .bind(status::SENDING)
                .bind(i32::try_from(e.attempt).unwrap_or(i32::MAX))
                .bind(e.at)
                .bind(position)
                .bind(e.delivery.delivery_id.as_uuid())
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected()))
        }
        Event::Delivery(DeliveryEvent::Succeeded(e)) => {
            let sql = format!(
                "UPDATE {table} SET status = $1, attempts = $2, provider_id = $3, due_at = NULL, \
                 updated_at = $4, position = $5 WHERE delivery_id = $6"
            );
            on_tx!(tx, |c| sqlx::query(&sql)
                .bind(status::SUCCEEDED)
                .bind(i32::try_from(e.attempt).unwrap_or(i32::MAX))
                .bind(e.provider_id.as_deref())
                .bind(e.at)
                .bind(position)
                .bind(e.delivery.delivery_id.as_uuid())
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected()))
        }
        // Retrying: due again at its retry time; failed for good: settled.
        Event::Delivery(DeliveryEvent::Failed(e)) => {
            let sql = format!(
                "UPDATE {table} SET status = $1, attempts = $2, last_error = $3, due_at = $4, \
                 updated_at = $5, position = $6 WHERE delivery_id = $7"
            );
            let settled_as = if e.retry_at.is_some() {
                status::RETRYING
            } else {
                status::FAILED
            };
            on_tx!(tx, |c| sqlx::query(&sql)
                .bind(settled_as)
                .bind(i32::try_from(e.attempt).unwrap_or(i32::MAX))
                .bind(e.error.as_str())
                .bind(e.retry_at)
                .bind(e.at)
                .bind(position)
                .bind(e.delivery.delivery_id.as_uuid())
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected()))
        }
        // One more attempt, asked for by an operator: due at once.
        Event::Delivery(DeliveryEvent::Retried(e)) => {
            let sql = format!(
                "UPDATE {table} SET status = $1, due_at = $2, updated_at = $2, position = $3 \
                 WHERE delivery_id = $4"
            );
            on_tx!(tx, |c| sqlx::query(&sql)
                .bind(status::RETRYING)
                .bind(e.at)
                .bind(position)
                .bind(e.delivery.delivery_id.as_uuid())
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected()))
        }
        _ => return Ok(()),
    };
    result.with_context(|| format!("Failed to project event {position} into {table}"))?;
    Ok(())
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
    unless_flag, reason, attempts, last_error, provider_id, planned_at, updated_at";

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
        })
    }
}
