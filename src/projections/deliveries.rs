//! The `deliveries` projection: every external delivery of a notification, its status and its
//! due time. It is the delivery log the API shows and the schedule workers take due
//! deliveries from (`due_at` is set while a delivery is open, cleared once it is settled). A
//! rebuild writes rows, never sends: sending happens only from claimed due rows.

use anyhow::Context;
use chrono::{DateTime, Utc};

use crate::domain::event::Event;
use crate::domain::NotificationId;
use crate::eventlog::{Db, RecordedEvent, WriteTx};
use crate::{on_reader, on_tx};

/// A delivery's status as the table stores it.
pub mod status {
    /// Waiting for its due time.
    pub const PLANNED: &str = "planned";
    /// Not made, for the reason in `reason`.
    pub const SKIPPED: &str = "skipped";
}

pub(super) async fn apply(
    tx: &mut WriteTx,
    table: &str,
    recorded: &RecordedEvent,
    event: &Event,
) -> anyhow::Result<()> {
    let position = recorded.position;
    let result = match event {
        Event::DeliveryPlanned(e) => {
            let sql = format!(
                "INSERT INTO {table} (delivery_id, notification_id, recipient, category, channel, \
                 status, due_at, unless_flag, attempts, planned_at, updated_at, position) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $9, $10)"
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
        Event::DeliverySkipped(e) => {
            let sql = format!(
                "INSERT INTO {table} (delivery_id, notification_id, recipient, category, channel, \
                 status, reason, attempts, planned_at, updated_at, position) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $8, $9) \
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
        _ => return Ok(()),
    };
    result.with_context(|| format!("Failed to project event {position} into {table}"))?;
    Ok(())
}

/// One delivery as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DeliveryRow {
    pub delivery_id: uuid::Uuid,
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
    on_reader!(db, |p| sqlx::query_as(
        "SELECT delivery_id, channel, status, due_at, unless_flag, reason, attempts, last_error, \
         provider_id, planned_at, updated_at FROM deliveries WHERE notification_id = $1 \
         ORDER BY position"
    )
    .bind(notification.as_uuid())
    .fetch_all(p)
    .await)
    .with_context(|| format!("Failed to read the deliveries of notification {notification}"))
}
