//! The `unread_counters` projection: unread and unseen counts per person and category.
//! Every change event carries the flags before and after, so counts follow exactly without
//! reading the inbox table (the two rebuild independently).

use std::collections::BTreeMap;

use anyhow::Context;

use crate::domain::event::{Event, Flags};
use crate::domain::inbox::{marked_flags, Mark};
use crate::eventlog::{RecordedEvent, WriteTx};
use crate::on_tx;

fn delta(before: Flags, after: Flags) -> (i64, i64) {
    (
        i64::from(after.counts_unread()) - i64::from(before.counts_unread()),
        i64::from(after.counts_unseen()) - i64::from(before.counts_unseen()),
    )
}

/// The counter changes one event makes, per category of its recipient.
fn changes(event: &Event) -> Vec<(&str, &str, (i64, i64))> {
    match event {
        Event::NotificationSent(e) => {
            vec![(e.recipient.as_str(), e.content.category.as_str(), (1, 1))]
        }
        Event::NotificationSeen(e)
        | Event::NotificationRead(e)
        | Event::NotificationUnread(e)
        | Event::NotificationArchived(e)
        | Event::NotificationUnarchived(e) => vec![(
            e.recipient.as_str(),
            e.category.as_str(),
            delta(e.before, e.after),
        )],
        Event::InboxAllRead(e) | Event::InboxAllSeen(e) => {
            let mark = if matches!(event, Event::InboxAllRead(_)) {
                Mark::Read
            } else {
                Mark::Seen
            };
            e.items
                .iter()
                .map(|item| {
                    (
                        e.recipient.as_str(),
                        item.category.as_str(),
                        delta(item.before, marked_flags(mark, item.before)),
                    )
                })
                .collect()
        }
        Event::NotificationSuppressed(_) | Event::PreferenceChanged(_) => Vec::new(),
    }
}

/// Adds up the changes of all `events` per person and category and upserts each sum once.
/// A row exists once any event changed its counts (also when they add up to zero), so the
/// table is the same however the log is cut into batches or replay pages.
pub(super) async fn apply(
    tx: &mut WriteTx,
    table: &str,
    events: &[(&RecordedEvent, Event)],
) -> anyhow::Result<()> {
    let mut sums: BTreeMap<(&str, &str), (i64, i64)> = BTreeMap::new();
    for (_, event) in events {
        for (recipient, category, (unread, unseen)) in changes(event) {
            if unread == 0 && unseen == 0 {
                continue;
            }
            let sum = sums.entry((recipient, category)).or_default();
            sum.0 += unread;
            sum.1 += unseen;
        }
    }
    let sums: Vec<_> = sums.into_iter().collect();
    // 4 parameters a row; every key appears once, as an upsert must not touch a row twice.
    for chunk in sums.chunks(1_000) {
        on_tx!(tx, |c| {
            let mut qb = sqlx::QueryBuilder::new(format!(
                "INSERT INTO {table} (recipient, category, unread, unseen) "
            ));
            qb.push_values(chunk, |mut b, ((recipient, category), (unread, unseen))| {
                b.push_bind(*recipient)
                    .push_bind(*category)
                    .push_bind(*unread)
                    .push_bind(*unseen);
            });
            qb.push(format!(
                " ON CONFLICT (recipient, category) DO UPDATE SET \
                 unread = {table}.unread + excluded.unread, unseen = {table}.unseen + excluded.unseen"
            ));
            qb.build()
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected())
        })
        .with_context(|| format!("Failed to update {table} for {} people", chunk.len()))?;
    }
    Ok(())
}
