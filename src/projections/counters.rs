//! The `unread_counters` projection: unread and unseen counts per person and category.
//! Every change event carries the flags before and after, so counts follow exactly without
//! reading the inbox table (the two rebuild independently).

use std::collections::BTreeMap;

use anyhow::Context;

use crate::domain::event::{Event, Flags};
use crate::domain::inbox::{marked_flags, Mark};
use crate::eventlog::WriteTx;
use crate::on_tx;

fn delta(before: Flags, after: Flags) -> (i64, i64) {
    (
        i64::from(after.counts_unread()) - i64::from(before.counts_unread()),
        i64::from(after.counts_unseen()) - i64::from(before.counts_unseen()),
    )
}

pub(super) async fn apply(tx: &mut WriteTx, table: &str, event: &Event) -> anyhow::Result<()> {
    match event {
        Event::NotificationSent(e) => {
            bump(
                tx,
                table,
                e.recipient.as_str(),
                e.content.category.as_str(),
                (1, 1),
            )
            .await
        }
        Event::NotificationSeen(e)
        | Event::NotificationRead(e)
        | Event::NotificationUnread(e)
        | Event::NotificationArchived(e)
        | Event::NotificationUnarchived(e) => {
            bump(
                tx,
                table,
                e.recipient.as_str(),
                e.category.as_str(),
                delta(e.before, e.after),
            )
            .await
        }
        Event::InboxAllRead(e) | Event::InboxAllSeen(e) => {
            let mark = if matches!(event, Event::InboxAllRead(_)) {
                Mark::Read
            } else {
                Mark::Seen
            };
            let mut per_category: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
            for item in &e.items {
                let (du, ds) = delta(item.before, marked_flags(mark, item.before));
                let entry = per_category.entry(item.category.as_str()).or_default();
                entry.0 += du;
                entry.1 += ds;
            }
            for (category, d) in per_category {
                bump(tx, table, e.recipient.as_str(), category, d).await?;
            }
            Ok(())
        }
        Event::NotificationSuppressed(_) | Event::PreferenceChanged(_) => Ok(()),
    }
}

async fn bump(
    tx: &mut WriteTx,
    table: &str,
    recipient: &str,
    category: &str,
    (unread, unseen): (i64, i64),
) -> anyhow::Result<()> {
    if unread == 0 && unseen == 0 {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO {table} (recipient, category, unread, unseen) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (recipient, category) DO UPDATE SET \
         unread = {table}.unread + excluded.unread, unseen = {table}.unseen + excluded.unseen"
    );
    on_tx!(tx, |c| sqlx::query(&sql)
        .bind(recipient)
        .bind(category)
        .bind(unread)
        .bind(unseen)
        .execute(&mut **c)
        .await
        .map(|r| r.rows_affected()))
    .with_context(|| format!("Failed to update {table} for {recipient}"))?;
    Ok(())
}
