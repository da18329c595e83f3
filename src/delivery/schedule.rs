//! The schedule: due deliveries, as the `deliveries` projection has them, claimed by a worker
//! under a lease (`delivery_leases`, outside the log). On Postgres a claim locks the rows it
//! takes with `FOR UPDATE SKIP LOCKED`, so workers on several nodes never take the same one
//! while its lease holds; on SQLite the one node's workers claim through the single writer.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::digest::DigestId;
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
    /// Set when it is a digest's delivery: its message is the digest's.
    pub digest_id: Option<DigestId>,
}

/// The columns a worker needs of a claimed delivery, in [`DueRow`]'s order.
const DUE_COLUMNS: &str = "delivery_id, notification_id, recipient, category, channel, \
    unless_flag, attempts, due_at, digest_id";

/// Locks the due rows it takes, leases them, and returns them, in one statement.
const CLAIM_POSTGRES: &str = "WITH due AS ( \
        SELECT d.delivery_id, d.notification_id, d.recipient, d.category, d.channel, \
            d.unless_flag, d.attempts, d.due_at, d.digest_id FROM deliveries d \
        WHERE d.due_at <= $1 AND NOT EXISTS ( \
            SELECT 1 FROM delivery_leases l WHERE l.delivery_id = d.delivery_id AND l.expires_at > $1) \
        ORDER BY d.due_at LIMIT $2 FOR UPDATE OF d SKIP LOCKED), \
    claimed AS ( \
        INSERT INTO delivery_leases (delivery_id, owner, expires_at) \
        SELECT delivery_id, $3, $4 FROM due \
        ON CONFLICT (delivery_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
            WHERE delivery_leases.expires_at <= $1 \
        RETURNING delivery_id) \
    SELECT due.delivery_id, due.notification_id, due.recipient, due.category, due.channel, \
        due.unless_flag, due.attempts, due.due_at, due.digest_id \
    FROM due JOIN claimed ON claimed.delivery_id = due.delivery_id";

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
/// One transaction: on SQLite the claimed rows are read back on the writer before it commits.
pub async fn claim(
    db: &Db,
    owner: &str,
    now: DateTime<Utc>,
    lease: Duration,
    limit: usize,
) -> anyhow::Result<Vec<Due>> {
    let until = now + chrono::Duration::from_std(lease).context("lease out of range")?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // No log lock: on Postgres row locks keep claims apart (the log lock would queue every
    // claim behind the appenders of every node); on SQLite any write takes its one writer.
    let mut tx = db.begin_plain().await?;
    let rows: Vec<DueRow> = on_tx!(&mut tx, |c| {
        if matches!(db.backend(), Backend::Postgres) {
            sqlx::query_as(CLAIM_POSTGRES)
                .bind(now)
                .bind(limit)
                .bind(owner)
                .bind(until)
                .fetch_all(&mut **c)
                .await
        } else {
            let ids: Vec<(Uuid,)> = sqlx::query_as(CLAIM_SQLITE)
                .bind(now)
                .bind(limit)
                .bind(owner)
                .bind(until)
                .fetch_all(&mut **c)
                .await?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let mut select = sqlx::QueryBuilder::new(format!(
                "SELECT {DUE_COLUMNS} FROM deliveries WHERE delivery_id IN ("
            ));
            let mut list = select.separated(", ");
            for (id,) in &ids {
                list.push_bind(*id);
            }
            select.push(")");
            select.build_query_as().fetch_all(&mut **c).await
        }
    })
    .context("Failed to claim due deliveries")?;
    tx.commit().await?;
    let mut due = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some(d) = parse(row)? {
            due.push(d);
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
    Option<Uuid>,
);

fn parse(row: DueRow) -> anyhow::Result<Option<Due>> {
    let (
        delivery_id,
        notification_id,
        recipient,
        category,
        channel,
        unless,
        attempts,
        due_at,
        digest_id,
    ) = row;
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
        // A digest's own delivery: a delivery that joined a digest is settled, never due.
        digest_id: digest_id
            .filter(|id| *id == notification_id)
            .map(DigestId::from_uuid),
        due_at,
    }))
}

/// When the next delivery falls due at or after `now`'s view of the leases, if any is open:
/// the earliest due time among deliveries no lease holds, or the earliest expiry of a lease
/// on an open one (its worker may have died). Both walk an index from the front, so a large
/// pending set costs no more than a small one.
pub async fn next_due(db: &Db, now: DateTime<Utc>) -> anyhow::Result<Option<DateTime<Utc>>> {
    let (free, leased): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) =
        on_reader!(db, |p| sqlx::query_as(
            "SELECT \
             (SELECT d.due_at FROM deliveries d WHERE d.due_at IS NOT NULL AND NOT EXISTS ( \
                 SELECT 1 FROM delivery_leases l \
                 WHERE l.delivery_id = d.delivery_id AND l.expires_at > $1) \
              ORDER BY d.due_at LIMIT 1), \
             (SELECT MIN(l.expires_at) FROM delivery_leases l \
              JOIN deliveries d ON d.delivery_id = l.delivery_id \
              WHERE d.due_at IS NOT NULL AND l.expires_at > $1)"
        )
        .bind(now)
        .fetch_one(p)
        .await)
        .context("Failed to read the next due time")?;
    Ok(match (free, leased) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
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
