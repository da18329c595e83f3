//! Queries on the read model for one person: their inbox, counts and preferences.

use anyhow::Context;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sqlx::types::Json;
use sqlx::Row;

use crate::domain::digest::{DigestId, DigestSchedule};
use crate::domain::event::{ExpireReason, NotificationCreated};
use crate::domain::quiet::{self, QuietHours};
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
    /// It arrived during the recipient's quiet hours: no toast.
    pub quiet: bool,
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
    /// When it leaves the inbox, if its send said.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it left the inbox: set only on the rows a resumed subscription is told of.
    pub expired_at: Option<DateTime<Utc>>,
}

impl InboxEntry {
    /// The row a send makes: what the inbox holds for it until its flags change.
    pub fn sent(e: &NotificationCreated, position: i64) -> InboxEntry {
        let c = &e.content;
        InboxEntry {
            notification_id: e.notification_id,
            recipient: e.recipient.as_str().to_owned(),
            category: c.category.as_str().to_owned(),
            priority: c.priority.as_str().to_owned(),
            critical: c.critical,
            quiet: e.quiet,
            title: c.title.as_str().to_owned(),
            body: c.body.as_str().to_owned(),
            data: c.data.as_json().clone(),
            action_url: c.action_url.as_ref().map(|l| l.as_str().to_owned()),
            icon: c.icon.as_ref().map(|l| l.as_str().to_owned()),
            sent_at: e.at,
            sent_position: position,
            seen_at: None,
            read_at: None,
            archived_at: None,
            last_position: position,
            expires_at: e.expires_at,
            expired_at: None,
        }
    }
}

/// Which part of the inbox to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboxFilter {
    pub unread_only: bool,
    pub category: Option<Category>,
    /// `false` (the default) lists the inbox, `true` the archive.
    pub archived: bool,
}

const COLUMNS: &str = super::inbox::SELECTED;

macro_rules! entry {
    ($r:expr) => {{
        let r = $r;
        anyhow::Ok(InboxEntry {
            notification_id: NotificationId::from_uuid(r.try_get("notification_id")?),
            recipient: r.try_get("recipient")?,
            category: r.try_get("category")?,
            priority: r.try_get("priority")?,
            critical: r.try_get("critical")?,
            quiet: r.try_get("quiet")?,
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
            expires_at: r.try_get("expires_at")?,
            expired_at: r.try_get("expired_at")?,
        })
    }};
}

fn page_sql(filter: &InboxFilter) -> String {
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
    format!(
        "SELECT {COLUMNS} FROM inbox WHERE recipient = $1 AND sent_position < $2 AND {archived} {unread} \
         AND expired_at IS NULL AND ($3 IS NULL OR category = $3) ORDER BY sent_position DESC LIMIT $4"
    )
}

/// A page of a person's inbox, newest first, sent before position `before` (exclusive).
pub async fn inbox(
    db: &Db,
    user: &UserId,
    filter: &InboxFilter,
    before: Option<i64>,
    limit: i64,
) -> anyhow::Result<Vec<InboxEntry>> {
    let sql = page_sql(filter);
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
    let sql = format!(
        "SELECT {COLUMNS} FROM inbox WHERE notification_id = $1 AND recipient = $2 \
         AND expired_at IS NULL"
    );
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

/// How long notifications stay in the inbox by the server's policy; `None`: for ever.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// After they were read.
    pub read: Option<chrono::Duration>,
    /// After they were sent, while unread.
    pub unread: Option<chrono::Duration>,
}

/// Notifications due to expire at `now`, at most `limit` of each kind: by their send's
/// `expiresAt`, then by `retention` (read, unread); and when the next `expiresAt` after those
/// falls due. Each is a range scan of a partial index of the inbox that holds only the rows
/// it may find.
pub async fn due_expiries(
    db: &Db,
    now: DateTime<Utc>,
    retention: Retention,
    limit: i64,
) -> anyhow::Result<(Vec<(NotificationId, ExpireReason)>, Option<DateTime<Utc>>)> {
    const LIVE: &str = "expired_at IS NULL";
    let mut due = Vec::new();
    let mut scan = |rows: Vec<(uuid::Uuid,)>, reason| {
        due.extend(
            rows.into_iter()
                .map(|(id,)| (NotificationId::from_uuid(id), reason)),
        );
    };
    let at_sql = format!(
        "SELECT notification_id FROM inbox WHERE expires_at IS NOT NULL AND {LIVE} \
         AND expires_at <= $1 ORDER BY expires_at LIMIT $2"
    );
    let rows = on_reader!(db, |p| sqlx::query_as(&at_sql)
        .bind(now)
        .bind(limit)
        .fetch_all(p)
        .await)
    .context("Failed to read the notifications due to expire")?;
    scan(rows, ExpireReason::ExpiresAt);
    if let Some(read) = retention.read {
        let sql = format!(
            "SELECT notification_id FROM inbox WHERE read_at IS NOT NULL AND {LIVE} \
             AND read_at <= $1 ORDER BY read_at LIMIT $2"
        );
        let rows = on_reader!(db, |p| sqlx::query_as(&sql)
            .bind(now - read)
            .bind(limit)
            .fetch_all(p)
            .await)
        .context("Failed to read the read notifications past their retention")?;
        scan(rows, ExpireReason::ReadRetention);
    }
    if let Some(unread) = retention.unread {
        let sql = format!(
            "SELECT notification_id FROM inbox WHERE read_at IS NULL AND {LIVE} \
             AND sent_at <= $1 ORDER BY sent_at LIMIT $2"
        );
        let rows = on_reader!(db, |p| sqlx::query_as(&sql)
            .bind(now - unread)
            .bind(limit)
            .fetch_all(p)
            .await)
        .context("Failed to read the unread notifications past their retention")?;
        scan(rows, ExpireReason::UnreadRetention);
    }
    let next_sql = format!(
        "SELECT expires_at FROM inbox WHERE expires_at IS NOT NULL AND {LIVE} \
         AND expires_at > $1 ORDER BY expires_at LIMIT 1"
    );
    let next: Option<(DateTime<Utc>,)> = on_reader!(db, |p| sqlx::query_as(&next_sql)
        .bind(now)
        .fetch_optional(p)
        .await)
    .context("Failed to read the next expiry")?;
    Ok((due, next.map(|(t,)| t)))
}

/// A person's quiet hours and the zone they are read in (their profile's, else UTC); `None`
/// for someone who has none.
pub async fn quiet_hours(db: &Db, user: &UserId) -> anyhow::Result<Option<(QuietHours, Tz)>> {
    let row: Option<(String, Option<String>)> = on_reader!(db, |p| sqlx::query_as(
        "SELECT q.windows, r.time_zone FROM quiet_hours q \
         LEFT JOIN recipients r ON r.user_id = q.user_id WHERE q.user_id = $1"
    )
    .bind(user.as_str())
    .fetch_optional(p)
    .await)
    .with_context(|| format!("Failed to load the quiet hours of {user}"))?;
    row.map(|(windows, zone)| {
        let hours = QuietHours::from_stored(&windows)
            .map_err(|e| anyhow::anyhow!("stored quiet hours are invalid: {e}"))?;
        Ok((hours, quiet::zone_of(zone.as_deref())))
    })
    .transpose()
}

/// A person's digest for one category on one channel and the zone it is read in (their
/// profile's, else UTC); `None` when it is off.
pub async fn digest_setting(
    db: &Db,
    user: &UserId,
    category: &Category,
    channel: Channel,
) -> anyhow::Result<Option<(DigestSchedule, Tz)>> {
    let row: Option<(String, Option<String>)> = on_reader!(db, |p| sqlx::query_as(
        "SELECT d.schedule, r.time_zone FROM digest_settings d \
         LEFT JOIN recipients r ON r.user_id = d.user_id \
         WHERE d.user_id = $1 AND d.category = $2 AND d.channel = $3"
    )
    .bind(user.as_str())
    .bind(category.as_str())
    .bind(channel.as_str())
    .fetch_optional(p)
    .await)
    .with_context(|| format!("Failed to load the digest of {user} for {category}"))?;
    row.map(|(schedule, zone)| {
        let schedule = DigestSchedule::from_stored(&schedule)
            .map_err(|e| anyhow::anyhow!("a stored digest is invalid: {e}"))?;
        Ok((schedule, quiet::zone_of(zone.as_deref())))
    })
    .transpose()
}

/// A person's digests: each category and channel that has one, and its schedule.
pub async fn digest_settings(
    db: &Db,
    user: &UserId,
) -> anyhow::Result<Vec<(Category, Channel, DigestSchedule)>> {
    let rows: Vec<(String, String, String)> = on_reader!(db, |p| sqlx::query_as(
        "SELECT category, channel, schedule FROM digest_settings WHERE user_id = $1 \
         ORDER BY category, channel"
    )
    .bind(user.as_str())
    .fetch_all(p)
    .await)
    .with_context(|| format!("Failed to load the digests of {user}"))?;
    rows.into_iter()
        .map(|(category, channel, schedule)| {
            let bad =
                |e: crate::domain::InputError| anyhow::anyhow!("a stored digest is invalid: {e}");
            Ok((
                Category::parse(&category).map_err(bad)?,
                Channel::parse(&channel).map_err(bad)?,
                DigestSchedule::from_stored(&schedule)
                    .map_err(|e| anyhow::anyhow!("a stored digest is invalid: {e}"))?,
            ))
        })
        .collect()
}

/// Open digests whose time has come at `now`, the earliest first (read from the first
/// `limit` of their items along the index, so each digest at most once and at least one),
/// when the next one after those closes, and whether more may be due.
pub async fn due_digests(
    db: &Db,
    now: DateTime<Utc>,
    limit: usize,
) -> anyhow::Result<(Vec<DigestId>, Option<DateTime<Utc>>, bool)> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let due: Vec<(uuid::Uuid,)> = on_reader!(db, |p| sqlx::query_as(
        "SELECT digest_id FROM digests WHERE closed_at IS NULL AND closes_at <= $1 \
         ORDER BY closes_at LIMIT $2"
    )
    .bind(now)
    .bind(limit)
    .fetch_all(p)
    .await)
    .context("Failed to read the digests due")?;
    let next: Option<(DateTime<Utc>,)> = on_reader!(db, |p| sqlx::query_as(
        "SELECT closes_at FROM digests WHERE closed_at IS NULL AND closes_at > $1 \
         ORDER BY closes_at LIMIT 1"
    )
    .bind(now)
    .fetch_optional(p)
    .await)
    .context("Failed to read when the next digest closes")?;
    let more = due.len() as i64 >= limit;
    let mut ids: Vec<DigestId> = Vec::with_capacity(due.len());
    for (id,) in due {
        let id = DigestId::from_uuid(id);
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok((ids, next.map(|(t,)| t), more))
}

/// Runs `$body` with `$c` bound to a read transaction that sees one consistent snapshot
/// (SQLite: a read transaction in WAL mode; Postgres: REPEATABLE READ). Use `&mut *$c`.
macro_rules! in_snapshot {
    ($db:expr, |$c:ident| $body:expr) => {
        match $db {
            Db::Sqlite { reader, .. } => {
                let mut $c = reader.begin().await?;
                let out = $body;
                $c.commit().await?;
                out
            }
            Db::Postgres(pool) => {
                let mut $c = pool.begin().await?;
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *$c)
                    .await?;
                let out = $body;
                $c.commit().await?;
                out
            }
        }
    };
}

const HEAD_SQL: &str = "SELECT COALESCE(MAX(position), 0) FROM events";

/// What a live subscriber starts from: one consistent view of a person's inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveSnapshot {
    /// The log head the view is at; live changes at or below it are already in the view.
    pub head: i64,
    pub counts: Counts,
    /// With a cursor: every notification changed after it, oldest change first.
    pub changed: Vec<InboxEntry>,
}

/// Reads the snapshot a live subscription starts from.
pub async fn live_snapshot(
    db: &Db,
    user: &UserId,
    after: Option<i64>,
) -> anyhow::Result<LiveSnapshot> {
    let changed_sql = format!(
        "SELECT {COLUMNS} FROM inbox WHERE recipient = $1 AND last_position > $2 ORDER BY last_position, sent_position"
    );
    let counts_sql = "SELECT category, unread, unseen FROM unread_counters \
                      WHERE recipient = $1 AND (unread <> 0 OR unseen <> 0) ORDER BY category";
    let read = async {
        in_snapshot!(db, |c| {
            let head: i64 = sqlx::query_scalar(HEAD_SQL).fetch_one(&mut *c).await?;
            let rows: Vec<(String, i64, i64)> = sqlx::query_as(counts_sql)
                .bind(user.as_str())
                .fetch_all(&mut *c)
                .await?;
            let changed = match after {
                Some(after) => sqlx::query(&changed_sql)
                    .bind(user.as_str())
                    .bind(after)
                    .fetch_all(&mut *c)
                    .await?
                    .iter()
                    .map(|r| entry!(r))
                    .collect::<anyhow::Result<Vec<_>>>()?,
                None => Vec::new(),
            };
            anyhow::Ok(LiveSnapshot {
                head,
                counts: Counts {
                    unread: rows.iter().map(|r| r.1).sum(),
                    unseen: rows.iter().map(|r| r.2).sum(),
                    by_category: rows,
                },
                changed,
            })
        })
    };
    read.await
        .with_context(|| format!("Failed to read the live snapshot of {user}"))
}

/// A page of the inbox (as [`inbox`]) together with the log head it was read at, so a client
/// can subscribe after that head and miss nothing in between.
pub async fn inbox_with_head(
    db: &Db,
    user: &UserId,
    filter: &InboxFilter,
    before: Option<i64>,
    limit: i64,
) -> anyhow::Result<(Vec<InboxEntry>, i64)> {
    let sql = page_sql(filter);
    let read = async {
        in_snapshot!(db, |c| {
            let head: i64 = sqlx::query_scalar(HEAD_SQL).fetch_one(&mut *c).await?;
            let rows = sqlx::query(&sql)
                .bind(user.as_str())
                .bind(before.unwrap_or(i64::MAX))
                .bind(filter.category.as_ref().map(|c| c.as_str()))
                .bind(limit)
                .fetch_all(&mut *c)
                .await?;
            let entries = rows
                .iter()
                .map(|r| entry!(r))
                .collect::<anyhow::Result<Vec<_>>>()?;
            anyhow::Ok((entries, head))
        })
    };
    read.await
        .with_context(|| format!("Failed to list the inbox of {user}"))
}
