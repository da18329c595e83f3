//! Queries on the read model for one person: their inbox, counts and preferences.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::Row;

use crate::domain::{Category, Channel, NotificationId, UserId};
use crate::eventlog::Db;
use crate::on_reader;

/// One notification in a person's inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxEntry {
    pub notification_id: NotificationId,
    pub recipient: String,
    pub category: String,
    pub priority: String,
    pub critical: bool,
    pub title: String,
    pub body: String,
    pub data: serde_json::Value,
    pub action_url: Option<String>,
    pub icon: Option<String>,
    pub sent_at: DateTime<Utc>,
    /// Log position of the `sent` event: the inbox's order and its cursor.
    pub sent_position: i64,
    pub seen_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
    pub archived_at: Option<DateTime<Utc>>,
    /// Log position of the last change to this notification.
    pub last_position: i64,
}

/// Which part of the inbox to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboxFilter {
    pub unread_only: bool,
    pub category: Option<Category>,
    /// `false` (the default) lists the inbox, `true` the archive.
    pub archived: bool,
}

const COLUMNS: &str = "notification_id, recipient, category, priority, critical, title, body, data, \
                       action_url, icon, sent_at, sent_position, seen_at, read_at, archived_at, last_position";

macro_rules! entry {
    ($r:expr) => {{
        let r = $r;
        anyhow::Ok(InboxEntry {
            notification_id: NotificationId::from_uuid(r.try_get("notification_id")?),
            recipient: r.try_get("recipient")?,
            category: r.try_get("category")?,
            priority: r.try_get("priority")?,
            critical: r.try_get("critical")?,
            title: r.try_get("title")?,
            body: r.try_get("body")?,
            data: r.try_get::<Json<serde_json::Value>, _>("data")?.0,
            action_url: r.try_get("action_url")?,
            icon: r.try_get("icon")?,
            sent_at: r.try_get("sent_at")?,
            sent_position: r.try_get("sent_position")?,
            seen_at: r.try_get("seen_at")?,
            read_at: r.try_get("read_at")?,
            archived_at: r.try_get("archived_at")?,
            last_position: r.try_get("last_position")?,
        })
    }};
}

/// A page of a person's inbox, newest first, sent before position `before` (exclusive).
pub async fn inbox(
    db: &Db,
    user: &UserId,
    filter: &InboxFilter,
    before: Option<i64>,
    limit: i64,
) -> anyhow::Result<Vec<InboxEntry>> {
    let archived = if filter.archived {
        "archived_at IS NOT NULL"
    } else {
        "archived_at IS NULL"
    };
    let unread = if filter.unread_only {
        "AND read_at IS NULL"
    } else {
        ""
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM inbox WHERE recipient = $1 AND sent_position < $2 AND {archived} {unread} \
         AND ($3 IS NULL OR category = $3) ORDER BY sent_position DESC LIMIT $4"
    );
    on_reader!(db, |p| {
        let rows = sqlx::query(&sql)
            .bind(user.as_str())
            .bind(before.unwrap_or(i64::MAX))
            .bind(filter.category.as_ref().map(|c| c.as_str()))
            .bind(limit)
            .fetch_all(p)
            .await?;
        rows.iter()
            .map(|r| entry!(r))
            .collect::<anyhow::Result<Vec<_>>>()
    })
    .with_context(|| format!("Failed to list the inbox of {user}"))
}

/// One of a person's notifications (`None` for someone else's: ids never leak).
pub async fn notification(
    db: &Db,
    user: &UserId,
    id: NotificationId,
) -> anyhow::Result<Option<InboxEntry>> {
    let sql = format!("SELECT {COLUMNS} FROM inbox WHERE notification_id = $1 AND recipient = $2");
    on_reader!(db, |p| {
        let row = sqlx::query(&sql)
            .bind(id.as_uuid())
            .bind(user.as_str())
            .fetch_optional(p)
            .await?;
        row.map(|r| entry!(&r)).transpose()
    })
    .with_context(|| format!("Failed to load notification {id}"))
}

/// Unread and unseen counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub unread: i64,
    pub unseen: i64,
    /// Per category, only categories with a non-zero count.
    pub by_category: Vec<(String, i64, i64)>,
}

pub async fn counts(db: &Db, user: &UserId) -> anyhow::Result<Counts> {
    let rows: Vec<(String, i64, i64)> = on_reader!(db, |p| sqlx::query_as(
        "SELECT category, unread, unseen FROM unread_counters \
         WHERE recipient = $1 AND (unread <> 0 OR unseen <> 0) ORDER BY category"
    )
    .bind(user.as_str())
    .fetch_all(p)
    .await)
    .with_context(|| format!("Failed to count the inbox of {user}"))?;
    Ok(Counts {
        unread: rows.iter().map(|r| r.1).sum(),
        unseen: rows.iter().map(|r| r.2).sum(),
        by_category: rows,
    })
}

/// The switches a person has set explicitly (everything else is on).
pub async fn preferences(db: &Db, user: &UserId) -> anyhow::Result<Vec<(Category, Channel, bool)>> {
    let rows: Vec<(String, String, bool)> = on_reader!(db, |p| sqlx::query_as(
        "SELECT category, channel, enabled FROM preferences WHERE user_id = $1 ORDER BY category, channel"
    )
    .bind(user.as_str())
    .fetch_all(p)
    .await)
    .with_context(|| format!("Failed to load the preferences of {user}"))?;
    rows.into_iter()
        .map(|(c, ch, on)| {
            let category = Category::parse(&c)
                .map_err(|e| anyhow::anyhow!("stored category is invalid: {e}"))?;
            let channel = Channel::parse(&ch)
                .map_err(|e| anyhow::anyhow!("stored channel is invalid: {e}"))?;
            Ok((category, channel, on))
        })
        .collect()
}
