//! The `scheduled_sends` projection: every send scheduled for later, its time and where it
//! stands (`pending`, `published`, `cancelled`). The timekeeper publishes the pending ones
//! whose time has come; admins list and cancel them; a retry under an idempotency key finds
//! its earlier schedule here.

use anyhow::Context;
use chrono::{DateTime, Utc};

use crate::domain::event::Event;
use crate::domain::schedule::{ScheduleEvent, ScheduleId, ScheduleStatus};
use crate::domain::IdempotencyKey;
use crate::eventlog::{Db, RecordedEvent, WriteTx};
use crate::{on_reader, on_tx};

pub(super) async fn apply(
    tx: &mut WriteTx,
    table: &str,
    recorded: &RecordedEvent,
    event: &Event,
) -> anyhow::Result<()> {
    let Event::Schedule(event) = event else {
        return Ok(());
    };
    let position = recorded.position;
    let result = match event {
        ScheduleEvent::Scheduled(e) => {
            let sql = format!(
                "INSERT INTO {table} (schedule_id, send_at, status, idempotency_key, request_hash, \
                 category, title, recipients, created_at, updated_at, position) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10)"
            );
            on_tx!(tx, |c| sqlx::query(&sql)
                .bind(e.schedule_id.as_uuid())
                .bind(e.send_at)
                .bind(ScheduleStatus::Pending.as_str())
                .bind(e.idempotency_key.as_ref().map(|k| k.as_str()))
                .bind(e.request_hash.as_deref())
                .bind(e.content.category.as_str())
                .bind(e.content.title.as_str())
                .bind(i32::try_from(e.recipients.len()).unwrap_or(i32::MAX))
                .bind(e.at)
                .bind(position)
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected()))
        }
        ScheduleEvent::Cancelled(e) | ScheduleEvent::Published(e) => {
            let status = match event {
                ScheduleEvent::Cancelled(_) => ScheduleStatus::Cancelled,
                _ => ScheduleStatus::Published,
            };
            let sql = format!(
                "UPDATE {table} SET status = $1, updated_at = $2, position = $3 \
                 WHERE schedule_id = $4"
            );
            on_tx!(tx, |c| sqlx::query(&sql)
                .bind(status.as_str())
                .bind(e.at)
                .bind(position)
                .bind(e.schedule_id.as_uuid())
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected()))
        }
    };
    result.with_context(|| format!("Failed to project event {position} into {table}"))?;
    Ok(())
}

/// One scheduled send as admins see it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ScheduledRow {
    pub schedule_id: uuid::Uuid,
    pub send_at: DateTime<Utc>,
    pub status: String,
    pub idempotency_key: Option<String>,
    pub category: String,
    pub title: String,
    pub recipients: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "schedule_id, send_at, status, idempotency_key, category, title, recipients, created_at, updated_at";

/// One scheduled send, if there is such.
pub async fn by_id(db: &Db, id: ScheduleId) -> anyhow::Result<Option<ScheduledRow>> {
    let sql = format!("SELECT {COLUMNS} FROM scheduled_sends WHERE schedule_id = $1");
    on_reader!(db, |p| sqlx::query_as(&sql)
        .bind(id.as_uuid())
        .fetch_optional(p)
        .await)
    .with_context(|| format!("Failed to load scheduled send {id}"))
}

/// The scheduled send made under an idempotency key, if any.
pub async fn by_key(db: &Db, key: &IdempotencyKey) -> anyhow::Result<Option<ScheduledRow>> {
    let sql = format!("SELECT {COLUMNS} FROM scheduled_sends WHERE idempotency_key = $1");
    on_reader!(db, |p| sqlx::query_as(&sql)
        .bind(key.as_str())
        .fetch_optional(p)
        .await)
    .with_context(|| {
        format!(
            "Failed to load the scheduled send of key {:?}",
            key.as_str()
        )
    })
}

/// Up to `limit` scheduled sends in `status` (any without one), soonest first, after the
/// one at `after` (its send time and id) when given.
pub async fn list(
    db: &Db,
    status: Option<ScheduleStatus>,
    after: Option<(DateTime<Utc>, ScheduleId)>,
    limit: i64,
) -> anyhow::Result<Vec<ScheduledRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM scheduled_sends WHERE ($1 IS NULL OR status = $1) \
         AND ($2 IS NULL OR send_at > $2 OR (send_at = $2 AND schedule_id > $3)) \
         ORDER BY send_at, schedule_id LIMIT $4"
    );
    let (after_at, after_id) =
        after.map_or((None, None), |(at, id)| (Some(at), Some(id.as_uuid())));
    on_reader!(db, |p| sqlx::query_as(&sql)
        .bind(status.map(ScheduleStatus::as_str))
        .bind(after_at)
        .bind(after_id)
        .bind(limit)
        .fetch_all(p)
        .await)
    .context("Failed to list the scheduled sends")
}

/// The pending sends due at `now`, soonest first, at most `limit`; and when the next one
/// after those falls due.
pub async fn due(
    db: &Db,
    now: DateTime<Utc>,
    limit: i64,
) -> anyhow::Result<(Vec<ScheduleId>, Option<DateTime<Utc>>)> {
    let due: Vec<(uuid::Uuid,)> = on_reader!(db, |p| sqlx::query_as(
        "SELECT schedule_id FROM scheduled_sends WHERE status = 'pending' AND send_at <= $1 \
         ORDER BY send_at LIMIT $2"
    )
    .bind(now)
    .bind(limit)
    .fetch_all(p)
    .await)
    .context("Failed to read the due scheduled sends")?;
    let next: Option<(DateTime<Utc>,)> = on_reader!(db, |p| sqlx::query_as(
        "SELECT send_at FROM scheduled_sends WHERE status = 'pending' AND send_at > $1 \
         ORDER BY send_at LIMIT 1"
    )
    .bind(now)
    .fetch_optional(p)
    .await)
    .context("Failed to read the next scheduled send")?;
    Ok((
        due.into_iter()
            .map(|(id,)| ScheduleId::from_uuid(id))
            .collect(),
        next.map(|(at,)| at),
    ))
}
