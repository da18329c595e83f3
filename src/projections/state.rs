//! Decision state for commands, read from the projection tables inside the append
//! transaction (so a command sees every earlier command of its batch).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::domain::digest::{DigestId, DigestItem, DigestSchedule, OpenDigest};
use crate::domain::event::Flags;
use crate::domain::inbox::{InboxItem, Mark};
use crate::domain::notification::Notification;
use crate::domain::preferences::Preferences;
use crate::domain::quiet::{self, QuietHours};
use crate::domain::schedule::{KeyedSchedule, ScheduleId};
use crate::domain::{
    delivery, Category, Channel, DeliveryId, NotificationId, SuppressReason, UserId,
};
use crate::eventlog::WriteTx;
use crate::on_tx;

const FLAGS: &str = "seen_at IS NOT NULL AS seen, read_at IS NOT NULL AS is_read, \
                     archived_at IS NOT NULL AS archived";

macro_rules! flags {
    ($row:expr) => {
        Flags {
            seen: $row.try_get("seen")?,
            read: $row.try_get("is_read")?,
            archived: $row.try_get("archived")?,
        }
    };
}

fn parse_stored<T, E: std::fmt::Display>(what: &str, parsed: Result<T, E>) -> anyhow::Result<T> {
    parsed.map_err(|e| anyhow::anyhow!("stored {what} is invalid: {e}"))
}

/// One delivered notification, if it exists.
pub async fn notification(
    tx: &mut WriteTx,
    id: NotificationId,
) -> anyhow::Result<Option<Notification>> {
    let sql = format!(
        "SELECT recipient, category, {FLAGS} FROM inbox WHERE notification_id = $1 \
         AND expired_at IS NULL"
    );
    let row: Option<(String, String, Flags)> = on_tx!(tx, |c| {
        let row = sqlx::query(&sql)
            .bind(id.as_uuid())
            .fetch_optional(&mut **c)
            .await?;
        row.map(|r| anyhow::Ok((r.try_get("recipient")?, r.try_get("category")?, flags!(r))))
            .transpose()
    })
    .with_context(|| format!("Failed to load notification {id}"))?;
    row.map(|(recipient, category, flags)| {
        Ok(Notification {
            id,
            recipient: parse_stored("recipient", UserId::parse(&recipient))?,
            category: parse_stored("category", Category::parse(&category))?,
            flags,
        })
    })
    .transpose()
}

/// A person's inbox items that a bulk mark could change (unarchived, not yet marked).
pub async fn inbox_items(
    tx: &mut WriteTx,
    user: &UserId,
    mark: Mark,
    category: Option<&Category>,
    up_to: Option<i64>,
) -> anyhow::Result<Vec<InboxItem>> {
    let unmarked = match mark {
        Mark::Read => "read_at IS NULL",
        Mark::Seen => "seen_at IS NULL",
    };
    let sql = format!(
        "SELECT notification_id, category, sent_position, {FLAGS} FROM inbox \
         WHERE recipient = $1 AND archived_at IS NULL AND expired_at IS NULL AND {unmarked} \
         AND ($2 IS NULL OR category = $2) AND sent_position <= $3 ORDER BY sent_position"
    );
    let rows: Vec<(uuid::Uuid, String, i64, Flags)> = on_tx!(tx, |c| {
        let rows = sqlx::query(&sql)
            .bind(user.as_str())
            .bind(category.map(|c| c.as_str()))
            .bind(up_to.unwrap_or(i64::MAX))
            .fetch_all(&mut **c)
            .await?;
        rows.iter()
            .map(|r| {
                anyhow::Ok((
                    r.try_get("notification_id")?,
                    r.try_get("category")?,
                    r.try_get("sent_position")?,
                    flags!(r),
                ))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })
    .with_context(|| format!("Failed to load the inbox of {user}"))?;
    rows.into_iter()
        .map(|(id, category, sent_position, flags)| {
            Ok(InboxItem {
                notification_id: NotificationId::from_uuid(id),
                category: parse_stored("category", Category::parse(&category))?,
                sent_position,
                flags,
            })
        })
        .collect()
}

/// A person's switches.
pub async fn preferences(tx: &mut WriteTx, user: &UserId) -> anyhow::Result<Preferences> {
    let rows: Vec<(String, String, bool)> = on_tx!(tx, |c| sqlx::query_as(
        "SELECT category, channel, enabled FROM preferences WHERE user_id = $1"
    )
    .bind(user.as_str())
    .fetch_all(&mut **c)
    .await)
    .with_context(|| format!("Failed to load the preferences of {user}"))?;
    let switches = rows
        .into_iter()
        .map(|(category, channel, on)| {
            Ok((
                parse_stored("category", Category::parse(&category))?,
                parse_stored("channel", Channel::parse(&channel))?,
                on,
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Preferences::from_switches(switches))
}

/// The scheduled send made under an idempotency key, if any.
pub async fn scheduled_by_key(
    tx: &mut WriteTx,
    key: &str,
) -> anyhow::Result<Option<KeyedSchedule>> {
    let row: Option<(uuid::Uuid, Option<String>)> = on_tx!(tx, |c| sqlx::query_as(
        "SELECT schedule_id, request_hash FROM scheduled_sends WHERE idempotency_key = $1"
    )
    .bind(key)
    .fetch_optional(&mut **c)
    .await)
    .with_context(|| format!("Failed to look up the scheduled send of key {key:?}"))?;
    Ok(row.map(|(id, hash)| KeyedSchedule {
        id: ScheduleId::from_uuid(id),
        request_hash: hash.unwrap_or_default(),
    }))
}

/// A person's quiet hours (none when they set none).
pub async fn quiet_hours(tx: &mut WriteTx, user: &UserId) -> anyhow::Result<QuietHours> {
    let row: Option<(String,)> = on_tx!(tx, |c| sqlx::query_as(
        "SELECT windows FROM quiet_hours WHERE user_id = $1"
    )
    .bind(user.as_str())
    .fetch_optional(&mut **c)
    .await)
    .with_context(|| format!("Failed to load the quiet hours of {user}"))?;
    match row {
        Some((windows,)) => parse_stored("quiet hours", QuietHours::from_stored(&windows)),
        None => Ok(QuietHours::default()),
    }
}

/// Whether anyone has quiet hours: a send need not look up its recipients' otherwise.
pub async fn anyone_has_quiet_hours(tx: &mut WriteTx) -> anyhow::Result<bool> {
    let row: Option<(i32,)> = on_tx!(tx, |c| sqlx::query_as("SELECT 1 FROM quiet_hours LIMIT 1")
        .fetch_optional(&mut **c)
        .await)
    .context("Failed to look for quiet hours")?;
    Ok(row.is_some())
}

/// Those of `recipients` inside their quiet hours at `at`, each in the time zone of their
/// profile (UTC without one). One query per thousand recipients.
pub async fn in_quiet_hours(
    tx: &mut WriteTx,
    recipients: &[UserId],
    at: DateTime<Utc>,
) -> anyhow::Result<BTreeSet<UserId>> {
    let mut quiet = BTreeSet::new();
    for chunk in recipients.chunks(1_000) {
        let rows: Vec<(String, String, Option<String>)> = on_tx!(tx, |c| {
            let mut qb = sqlx::QueryBuilder::new(
                "SELECT q.user_id, q.windows, r.time_zone FROM quiet_hours q \
                 LEFT JOIN recipients r ON r.user_id = q.user_id WHERE q.user_id IN (",
            );
            let mut list = qb.separated(", ");
            for recipient in chunk {
                list.push_bind(recipient.as_str());
            }
            qb.push(")");
            qb.build_query_as().fetch_all(&mut **c).await
        })
        .context("Failed to load the recipients' quiet hours")?;
        for (user, windows, zone) in rows {
            let hours = parse_stored("quiet hours", QuietHours::from_stored(&windows))?;
            if hours
                .quiet_until(quiet::zone_of(zone.as_deref()), at)
                .is_some()
            {
                quiet.insert(parse_stored("recipient", UserId::parse(&user))?);
            }
        }
    }
    Ok(quiet)
}

/// Who switched off a channel for `category`, by channel.
pub type Muters = BTreeMap<Channel, BTreeSet<String>>;

/// Everyone who switched a channel off for `category`, by channel.
pub async fn muters(tx: &mut WriteTx, category: &Category) -> anyhow::Result<Muters> {
    // Few people mute any one category, so fetch them all and intersect with a send's
    // recipients in memory: one query however many recipients a send has.
    let rows: Vec<(String, String)> = on_tx!(tx, |c| sqlx::query_as(
        "SELECT user_id, channel FROM preferences WHERE category = $1 AND NOT enabled"
    )
    .bind(category.as_str())
    .fetch_all(&mut **c)
    .await)
    .with_context(|| format!("Failed to load who muted {category}"))?;
    let mut muters = Muters::new();
    for (user, channel) in rows {
        let channel = parse_stored("channel", Channel::parse(&channel))?;
        muters.entry(channel).or_default().insert(user);
    }
    Ok(muters)
}

/// Those of `recipients` among `muters` of `channel`.
pub fn muted_among(muters: &Muters, recipients: &[UserId], channel: Channel) -> BTreeSet<UserId> {
    let Some(muters) = muters.get(&channel) else {
        return BTreeSet::new();
    };
    recipients
        .iter()
        .filter(|r| muters.contains(r.as_str()))
        .cloned()
        .collect()
}

/// How many notifications of `category` entered the inbox of each of `recipients` in the
/// window `(since, until]` (by their send times); someone who got none is absent. One query
/// per thousand recipients, over the inbox's index by recipient.
pub async fn recent_counts(
    tx: &mut WriteTx,
    category: &Category,
    recipients: &[UserId],
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> anyhow::Result<BTreeMap<UserId, u32>> {
    let mut counts = BTreeMap::new();
    for chunk in recipients.chunks(1_000) {
        let rows: Vec<(String, i64)> = on_tx!(tx, |c| {
            let mut qb =
                sqlx::QueryBuilder::new("SELECT recipient, COUNT(*) FROM inbox WHERE category = ");
            qb.push_bind(category.as_str())
                .push(" AND sent_at > ")
                .push_bind(since)
                .push(" AND sent_at <= ")
                .push_bind(until)
                .push(" AND recipient IN (");
            let mut list = qb.separated(", ");
            for recipient in chunk {
                list.push_bind(recipient.as_str());
            }
            qb.push(") GROUP BY recipient");
            qb.build_query_as().fetch_all(&mut **c).await
        })
        .with_context(|| format!("Failed to count the recent notifications of {category}"))?;
        for (recipient, n) in rows {
            let recipient = parse_stored("recipient", UserId::parse(&recipient))?;
            counts.insert(recipient, u32::try_from(n).unwrap_or(u32::MAX));
        }
    }
    Ok(counts)
}

/// What an earlier send under an idempotency key created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedSend {
    pub request_hash: String,
    pub deliveries: Vec<Delivery>,
}

/// One notification a send created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub notification_id: NotificationId,
    pub recipient: UserId,
    /// Recorded, never shown: muted by the recipient's preferences, or throttled.
    pub suppressed: bool,
    /// Suppressed because it was over its category's throttle for the recipient.
    pub throttled: bool,
    pub position: i64,
}

pub async fn keyed_send(tx: &mut WriteTx, key: &str) -> anyhow::Result<Option<KeyedSend>> {
    type Row = (String, uuid::Uuid, String, bool, Option<String>, i64);
    let rows: Vec<Row> = on_tx!(tx, |c| sqlx::query_as(
        "SELECT request_hash, notification_id, recipient, suppressed, reason, position \
         FROM idempotency_keys WHERE idempotency_key = $1 ORDER BY position"
    )
    .bind(key)
    .fetch_all(&mut **c)
    .await)
    .context("Failed to look up an idempotency key")?;
    let Some(request_hash) = rows.first().map(|r| r.0.clone()) else {
        return Ok(None);
    };
    let deliveries = rows
        .into_iter()
        .map(|(_, id, recipient, suppressed, reason, position)| {
            Ok(Delivery {
                notification_id: NotificationId::from_uuid(id),
                recipient: parse_stored("recipient", UserId::parse(&recipient))?,
                suppressed,
                throttled: reason.as_deref() == Some(SuppressReason::Throttled.as_str()),
                position,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Some(KeyedSend {
        request_hash,
        deliveries,
    }))
}

/// A delivery's status, for recording its next step; `None` when it was never planned.
pub async fn delivery_status(
    tx: &mut WriteTx,
    delivery: DeliveryId,
) -> anyhow::Result<Option<delivery::Status>> {
    let row: Option<(String,)> = on_tx!(tx, |c| sqlx::query_as(
        "SELECT status FROM deliveries WHERE delivery_id = $1"
    )
    .bind(delivery.as_uuid())
    .fetch_optional(&mut **c)
    .await)
    .with_context(|| format!("Failed to read the status of delivery {delivery}"))?;
    use super::deliveries::status;
    Ok(row.map(|(stored,)| match stored.as_str() {
        status::FAILED => delivery::Status::Failed,
        status::SUCCEEDED | status::SKIPPED | status::DIGESTED => delivery::Status::Done,
        _ => delivery::Status::Open,
    }))
}

/// The deliveries of a notification still waiting to fall due (planned, retrying or deferred:
/// not settled, and not being attempted now).
pub async fn waiting_deliveries(
    tx: &mut WriteTx,
    notification: NotificationId,
) -> anyhow::Result<Vec<(DeliveryId, Channel)>> {
    use super::deliveries::status;
    let rows: Vec<(uuid::Uuid, String)> = on_tx!(tx, |c| sqlx::query_as(
        "SELECT delivery_id, channel FROM deliveries WHERE notification_id = $1 \
         AND status IN ($2, $3, $4) ORDER BY planned_position"
    )
    .bind(notification.as_uuid())
    .bind(status::PLANNED)
    .bind(status::RETRYING)
    .bind(status::DEFERRED)
    .fetch_all(&mut **c)
    .await)
    .with_context(|| format!("Failed to read the waiting deliveries of {notification}"))?;
    rows.into_iter()
        .map(|(id, channel)| {
            Ok((
                DeliveryId::from_uuid(id),
                parse_stored("channel", Channel::parse(&channel))?,
            ))
        })
        .collect()
}

/// Ends any worker's claim on a delivery, in the transaction that records its outcome: the
/// outcome settles it or sets its retry time, so the claim has served (a retry is claimed
/// again at its own time). The lease table sits beside the deliveries projection, outside
/// the log, and a replay never touches it.
pub async fn release_lease(tx: &mut WriteTx, delivery: DeliveryId) -> anyhow::Result<()> {
    on_tx!(tx, |c| sqlx::query(
        "DELETE FROM delivery_leases WHERE delivery_id = $1"
    )
    .bind(delivery.as_uuid())
    .execute(&mut **c)
    .await
    .map(|r| r.rows_affected()))
    .with_context(|| format!("Failed to release the lease of delivery {delivery}"))?;
    Ok(())
}

/// A person's digest for one category on one channel (none when off).
pub async fn digest_setting(
    tx: &mut WriteTx,
    user: &UserId,
    category: &Category,
    channel: Channel,
) -> anyhow::Result<Option<DigestSchedule>> {
    let row: Option<(String,)> = on_tx!(tx, |c| {
        sqlx::query_as(
        "SELECT schedule FROM digest_settings WHERE user_id = $1 AND category = $2 AND channel = $3"
    )
    .bind(user.as_str())
    .bind(category.as_str())
    .bind(channel.as_str())
    .fetch_optional(&mut **c)
    .await
    })
    .with_context(|| format!("Failed to load the digest of {user} for {category} on {channel}"))?;
    row.map(|(raw,)| parse_stored("digest", DigestSchedule::from_stored(&raw)))
        .transpose()
}

/// An open digest and its items, each with whether it was read or expired since it joined;
/// none when it is closed already (or nothing joined it).
pub async fn open_digest(tx: &mut WriteTx, digest: DigestId) -> anyhow::Result<Option<OpenDigest>> {
    type Row = (
        uuid::Uuid,
        String,
        String,
        String,
        DateTime<Utc>,
        DateTime<Utc>,
        i64,
        bool,
        bool,
    );
    // A suppressed notification is in no inbox: nobody read it there.
    let rows: Vec<Row> = on_tx!(tx, |c| {
        sqlx::query_as(
        "SELECT d.notification_id, d.recipient, d.category, d.channel, d.closes_at, d.sent_at, \
         d.position, i.read_at IS NOT NULL, i.expired_at IS NOT NULL \
         FROM digests d LEFT JOIN inbox i ON i.notification_id = d.notification_id \
         WHERE d.digest_id = $1 AND d.closed_at IS NULL"
    )
    .bind(digest.as_uuid())
    .fetch_all(&mut **c)
    .await
    })
    .with_context(|| format!("Failed to load digest {digest}"))?;
    let Some((_, recipient, category, channel, closes_at, ..)) = rows.first() else {
        return Ok(None);
    };
    let stored = |what: &str, e: crate::domain::InputError| {
        anyhow::anyhow!("stored digest {digest} has an invalid {what}: {e}")
    };
    Ok(Some(OpenDigest {
        recipient: UserId::parse(recipient).map_err(|e| stored("recipient", e))?,
        category: Category::parse(category).map_err(|e| stored("category", e))?,
        channel: Channel::parse(channel).map_err(|e| stored("channel", e))?,
        closes_at: *closes_at,
        items: rows
            .iter()
            .map(|(id, .., sent_at, position, read, expired)| DigestItem {
                notification_id: NotificationId::from_uuid(*id),
                sent_at: *sent_at,
                position: *position,
                read: *read,
                expired: *expired,
            })
            .collect(),
    }))
}

/// Whether a digest has closed.
pub async fn digest_closed(tx: &mut WriteTx, digest: DigestId) -> anyhow::Result<bool> {
    let row: Option<(i32,)> = on_tx!(tx, |c| sqlx::query_as(
        "SELECT 1 FROM digests WHERE digest_id = $1 AND closed_at IS NOT NULL LIMIT 1"
    )
    .bind(digest.as_uuid())
    .fetch_optional(&mut **c)
    .await)
    .with_context(|| format!("Failed to read whether digest {digest} closed"))?;
    Ok(row.is_some())
}
