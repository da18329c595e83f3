//! The `unread_counters` projection: unread and unseen counts per person and category.
//! Every change event carries the flags before and after, so counts follow exactly without
//! reading the inbox table (the two rebuild independently).

use std::collections::HashMap;

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

/// The summed counter changes of a run of events, per person and category, not yet written.
/// A key is present once any event changed its counts (also when they add up to zero), so
/// the table is the same however the log is cut into batches or replay pages.
#[derive(Default)]
pub(super) struct Sums(HashMap<(Box<str>, Box<str>), (i64, i64)>);

impl Sums {
    pub(super) fn add(&mut self, events: &[(&RecordedEvent, Event)]) {
        for (_, event) in events {
            for (recipient, category, (unread, unseen)) in changes(event) {
                if unread == 0 && unseen == 0 {
                    continue;
                }
                let sum = match self.0.get_mut(&(recipient, category) as &dyn Key) {
                    Some(sum) => sum,
                    None => self
                        .0
                        .entry((recipient.into(), category.into()))
                        .or_default(),
                };
                sum.0 += unread;
                sum.1 += unseen;
            }
        }
    }

    /// Keys held.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// Upserts every sum once (in key order) and empties the set.
    pub(super) async fn write(&mut self, tx: &mut WriteTx, table: &str) -> anyhow::Result<()> {
        let mut sums: Vec<_> = self.0.drain().collect();
        sums.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let upsert = format!(
            " ON CONFLICT (recipient, category) DO UPDATE SET \
             unread = {table}.unread + excluded.unread, unseen = {table}.unseen + excluded.unseen"
        );
        if let WriteTx::Postgres(conn) = tx {
            // One statement of four arrays per 10,000 keys.
            for chunk in sums.chunks(10_000) {
                let recipients: Vec<&str> = chunk.iter().map(|((r, _), _)| &**r).collect();
                let categories: Vec<&str> = chunk.iter().map(|((_, c), _)| &**c).collect();
                let unread: Vec<i64> = chunk.iter().map(|(_, s)| s.0).collect();
                let unseen: Vec<i64> = chunk.iter().map(|(_, s)| s.1).collect();
                sqlx::query(&format!(
                    "INSERT INTO {table} (recipient, category, unread, unseen) \
                     SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[]){upsert}"
                ))
                .bind(recipients)
                .bind(categories)
                .bind(unread)
                .bind(unseen)
                .execute(&mut **conn)
                .await
                .with_context(|| format!("Failed to update {table} for {} people", chunk.len()))?;
            }
            return Ok(());
        }
        // 4 parameters a row; every key appears once, as an upsert must not touch a row twice.
        for chunk in sums.chunks(1_000) {
            on_tx!(tx, |c| {
                let mut qb = sqlx::QueryBuilder::new(format!(
                    "INSERT INTO {table} (recipient, category, unread, unseen) "
                ));
                qb.push_values(chunk, |mut b, ((recipient, category), (unread, unseen))| {
                    b.push_bind(&**recipient)
                        .push_bind(&**category)
                        .push_bind(*unread)
                        .push_bind(*unseen);
                });
                qb.push(&upsert);
                qb.build()
                    .execute(&mut **c)
                    .await
                    .map(|r| r.rows_affected())
            })
            .with_context(|| format!("Failed to update {table} for {} people", chunk.len()))?;
        }
        Ok(())
    }
}

/// Looks a `(Box<str>, Box<str>)` key up by a pair of borrowed strings, without allocating.
trait Key {
    fn pair(&self) -> (&str, &str);
}

impl Key for (Box<str>, Box<str>) {
    fn pair(&self) -> (&str, &str) {
        (&self.0, &self.1)
    }
}

impl Key for (&str, &str) {
    fn pair(&self) -> (&str, &str) {
        (self.0, self.1)
    }
}

impl<'a> std::borrow::Borrow<dyn Key + 'a> for (Box<str>, Box<str>) {
    fn borrow(&self) -> &(dyn Key + 'a) {
        self
    }
}

impl PartialEq for dyn Key + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.pair() == other.pair()
    }
}

impl Eq for dyn Key + '_ {}

impl std::hash::Hash for dyn Key + '_ {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.pair().hash(state);
    }
}
