//! The `inbox` projection: one row per delivered notification with its flags and the
//! position of its last change. Suppressed notifications never get a row.
//!
//! Writes are set-based: consecutive sends become one insert ([`insert`]), and consecutive
//! flag changes to distinct notifications, one by one or by a bulk mark, one update
//! ([`flags`]).

mod flags;
mod insert;

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use crate::domain::event::{Event, Flags, NotificationCreated};
use crate::eventlog::{RecordedEvent, WriteTx};

/// The columns a send writes, in the order every insert path binds them.
pub(crate) const INSERTED: [&str; 15] = [
    "notification_id",
    "recipient",
    "category",
    "priority",
    "critical",
    "quiet",
    "title",
    "body",
    "data",
    "action_url",
    "icon",
    "sent_at",
    "sent_position",
    "last_position",
    "expires_at",
];

/// Every column of a row, as the read side selects them.
pub(crate) const SELECTED: &str = "notification_id, recipient, category, priority, critical, \
     quiet, title, body, data, action_url, icon, sent_at, sent_position, seen_at, read_at, \
     archived_at, last_position, expires_at, expired_at";

/// Which of a slice's inbox writes to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    /// Every write, in log order.
    All,
    /// Only the rows of its sends. Every row starts with no flags set, whatever comes after.
    Sends,
    /// Everything but the rows of its sends, which must be written already.
    Changes,
}

/// One notification's flags as an event leaves them.
#[derive(Debug, Clone, Copy)]
struct FlagSet {
    position: i64,
    id: uuid::Uuid,
    after: Flags,
    at: DateTime<Utc>,
}

/// Folds events into the inbox table in order. Pending inserts are written before any change
/// (it may touch one of them), and pending flag changes before a second change to the same
/// notification.
///
/// A change only ever touches a row sent before it, so `Part::Sends` of a slice followed by
/// `Part::Changes` of the same slice writes what `Part::All` does; replay runs the two on
/// different connections (decision 0025).
pub(super) async fn apply(
    tx: &mut WriteTx,
    table: &str,
    events: &[(RecordedEvent, Event)],
    part: Part,
) -> anyhow::Result<()> {
    let mut pending = Pending::default();
    for (recorded, event) in events {
        let position = recorded.position;
        match event {
            Event::NotificationSent(e) => {
                if part != Part::Changes {
                    pending.created.push((position, e));
                }
            }
            _ if part == Part::Sends => {}
            Event::NotificationSeen(e)
            | Event::NotificationRead(e)
            | Event::NotificationUnread(e)
            | Event::NotificationArchived(e)
            | Event::NotificationUnarchived(e) => {
                let set = FlagSet {
                    position,
                    id: e.notification_id.as_uuid(),
                    after: e.after,
                    at: e.at,
                };
                pending.change(tx, table, set).await?;
            }
            Event::InboxMarked(mark, e) => {
                for item in &e.items {
                    let set = FlagSet {
                        position,
                        id: item.notification_id.as_uuid(),
                        after: mark.apply(item.before),
                        at: e.at,
                    };
                    pending.change(tx, table, set).await?;
                }
            }
            Event::NotificationExpired(e) => {
                pending.flush(tx, table).await?;
                expire(tx, table, position, e).await?;
            }
            Event::NotificationSuppressed(_)
            | Event::PreferenceChanged(_)
            | Event::QuietHoursSet(_)
            | Event::DigestSet(_)
            | Event::DigestClosed(_)
            | Event::Schedule(_)
            | Event::Recipient(_)
            | Event::Delivery(_)
            | Event::Endpoint(_) => {}
        }
    }
    pending.flush(tx, table).await
}

/// An expired notification's row stays, marked, so a resumed subscription learns it left;
/// every read of the inbox leaves such rows out.
async fn expire(
    tx: &mut WriteTx,
    table: &str,
    position: i64,
    e: &crate::domain::event::NotificationExpired,
) -> anyhow::Result<()> {
    let sql = format!(
        "UPDATE {table} SET expired_at = $1, last_position = $2 WHERE notification_id = $3"
    );
    crate::on_tx!(tx, |c| sqlx::query(&sql)
        .bind(e.at)
        .bind(position)
        .bind(e.notification_id.as_uuid())
        .execute(&mut **c)
        .await
        .map(|r| r.rows_affected()))
    .map_err(|e| anyhow::anyhow!("Failed to project event {position} into {table}: {e}"))?;
    Ok(())
}

/// Writes not yet made: rows to insert, then flag changes to distinct notifications.
#[derive(Default)]
struct Pending<'e> {
    created: Vec<(i64, &'e NotificationCreated)>,
    changed: Vec<FlagSet>,
    changed_ids: HashSet<uuid::Uuid>,
}

impl Pending<'_> {
    async fn change(&mut self, tx: &mut WriteTx, table: &str, set: FlagSet) -> anyhow::Result<()> {
        insert::insert(tx, table, &self.created).await?;
        self.created.clear();
        if !self.changed_ids.insert(set.id) {
            self.write_changes(tx, table).await?;
            self.changed_ids.insert(set.id);
        }
        self.changed.push(set);
        Ok(())
    }

    async fn write_changes(&mut self, tx: &mut WriteTx, table: &str) -> anyhow::Result<()> {
        flags::set(tx, table, &self.changed).await?;
        self.changed.clear();
        self.changed_ids.clear();
        Ok(())
    }

    async fn flush(&mut self, tx: &mut WriteTx, table: &str) -> anyhow::Result<()> {
        insert::insert(tx, table, &self.created).await?;
        self.created.clear();
        self.write_changes(tx, table).await
    }
}
