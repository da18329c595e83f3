//! The schedule: due deliveries, as the `deliveries` projection has them, claimed by a worker
//! under a lease (`delivery_leases`, outside the log). On Postgres a claim locks the rows it
//! takes with `FOR UPDATE SKIP LOCKED`, so workers on several nodes never take the same one
//! while its lease holds; on SQLite the one node's workers claim through the single writer.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::{Category, Channel, DeliveryId, NotificationId, Unless, UserId};
use crate::eventlog::{Backend, Db};
use crate::{on_reader, on_tx};

/// One claimed delivery, with what its worker needs to decide and perform it.
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    pub delivery_id: DeliveryId,
    pub notification_id: NotificationId,
    pub recipient: UserId,
    pub category: Category,
    pub channel: Channel,
    pub unless: Option<Unless>,
    /// Attempts begun so far.
    pub attempts: u32,
    pub due_at: DateTime<Utc>,
}

const CLAIM_POSTGRES: &str = "WITH due AS ( \
        SELECT d.delivery_id FROM deliveries d \
        WHERE d.due_at <= $1 AND NOT EXISTS ( \
            SELECT 1 FROM delivery_leases l WHERE l.delivery_id = d.delivery_id AND l.expires_at > $1) \
        ORDER BY d.due_at LIMIT $2 FOR UPDATE OF d SKIP LOCKED) \
    INSERT INTO delivery_leases (delivery_id, owner, expires_at) \
    SELECT delivery_id, $3, $4 FROM due \
    ON CONFLICT (delivery_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
        WHERE delivery_leases.expires_at <= $1 \
    RETURNING delivery_id";

const CLAIM_SQLITE: &str = "INSERT INTO delivery_leases (delivery_id, owner, expires_at) \
    SELECT d.delivery_id, $3, $4 FROM deliveries d \
    WHERE d.due_at <= $1 AND NOT EXISTS ( \
        SELECT 1 FROM delivery_leases l WHERE l.delivery_id = d.delivery_id AND l.expires_at > $1) \
    ORDER BY d.due_at LIMIT $2 \
    ON CONFLICT (delivery_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
        WHERE delivery_leases.expires_at <= $1 \
    RETURNING delivery_id";

/// Claims up to `limit` deliveries due at `now` for `owner`, each for `lease`, and returns
/// them oldest due first. A delivery whose lease has expired (its worker died) is due again.
pub async fn claim(
    db: &Db,
    owner: &str,
    now: DateTime<Utc>,
    lease: Duration,
    limit: usize,
) -> anyhow::Result<Vec<Due>> {
    let until = now + chrono::Duration::from_std(lease).context("lease out of range")?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let sql = match db.backend() {
        Backend::Postgres => CLAIM_POSTGRES,
        Backend::Sqlite => CLAIM_SQLITE,
    };
    let mut tx = db.begin_write().await?;
    let ids: Vec<(Uuid,)> = on_tx!(&mut tx, |c| sqlx::query_as(sql)
        .bind(now)
        .bind(limit)
        .bind(owner)
        .bind(until)
        .fetch_all(&mut **c)
        .await)
    .context("Failed to claim due deliveries")?;
    tx.commit().await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = ids.into_iter().map(|(id,)| id).collect();
    let mut due = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(row) = load(db, id).await? {
            due.push(row);
        }
    }
    due.sort_by_key(|d| d.due_at);
    Ok(due)
}

type DueRow = (
    Uuid,
    Uuid,
    String,
    String,
    String,
    Option<String>,
    i32,
    Option<DateTime<Utc>>,
);

async fn load(db: &Db, id: Uuid) -> anyhow::Result<Option<Due>> {
    let row: Option<DueRow> = on_reader!(db, |p| {
        sqlx::query_as(
        "SELECT delivery_id, notification_id, recipient, category, channel, unless_flag, attempts, \
         due_at FROM deliveries WHERE delivery_id = $1"
    )
    .bind(id)
    .fetch_optional(p)
    .await
    })
    .context("Failed to read a claimed delivery")?;
    let Some((
        delivery_id,
        notification_id,
        recipient,
        category,
        channel,
        unless,
        attempts,
        due_at,
    )) = row
    else {
        return Ok(None);
    };
    // Settled between the claim and now (by another worker whose lease had expired).
    let Some(due_at) = due_at else {
        return Ok(None);
    };
    let stored = |what: &str, e: crate::domain::InputError| {
        anyhow::anyhow!("stored delivery {delivery_id} has an invalid {what}: {e}")
    };
    Ok(Some(Due {
        delivery_id: DeliveryId::from_uuid(delivery_id),
        notification_id: NotificationId::from_uuid(notification_id),
        recipient: UserId::parse(&recipient).map_err(|e| stored("recipient", e))?,
        category: Category::parse(&category).map_err(|e| stored("category", e))?,
        channel: Channel::parse(&channel).map_err(|e| stored("channel", e))?,
        unless: unless
            .as_deref()
            .map(Unless::parse)
            .transpose()
            .map_err(|e| stored("unless", e))?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        due_at,
    }))
}

/// Gives a claim back once its outcome is recorded (a retry is due again at its own time).
pub async fn release(db: &Db, owner: &str, delivery: DeliveryId) -> anyhow::Result<()> {
    let mut tx = db.begin_write().await?;
    on_tx!(&mut tx, |c| sqlx::query(
        "DELETE FROM delivery_leases WHERE delivery_id = $1 AND owner = $2"
    )
    .bind(delivery.as_uuid())
    .bind(owner)
    .execute(&mut **c)
    .await
    .map(|r| r.rows_affected()))
    .context("Failed to release a delivery's lease")?;
    tx.commit().await?;
    Ok(())
}

/// When the next delivery falls due (a lease's expiry included), if any is open.
pub async fn next_due(db: &Db) -> anyhow::Result<Option<DateTime<Utc>>> {
    let row: (Option<DateTime<Utc>>,) = on_reader!(db, |p| sqlx::query_as(
        "SELECT MIN(CASE WHEN l.expires_at IS NOT NULL AND l.expires_at > d.due_at \
         THEN l.expires_at ELSE d.due_at END) \
         FROM deliveries d LEFT JOIN delivery_leases l ON l.delivery_id = d.delivery_id \
         WHERE d.due_at IS NOT NULL"
    )
    .fetch_one(p)
    .await)
    .context("Failed to read the next due time")?;
    Ok(row.0)
}

/// Open deliveries due at `now` and the oldest due time among them: the backlog.
pub async fn backlog(db: &Db, now: DateTime<Utc>) -> anyhow::Result<(i64, Option<DateTime<Utc>>)> {
    on_reader!(db, |p| sqlx::query_as(
        "SELECT COUNT(*), MIN(due_at) FROM deliveries WHERE due_at <= $1"
    )
    .bind(now)
    .fetch_one(p)
    .await)
    .context("Failed to measure the delivery backlog")
}
