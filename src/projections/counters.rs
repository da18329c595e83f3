//! The `unread_counters` projection: unread and unseen counts per person and category.
//! Every change event carries the flags before and after, so counts follow exactly without
//! reading the inbox table (the two rebuild independently).

use std::collections::HashMap;

use anyhow::Context;

use crate::domain::event::{Event, Flags};
use crate::eventlog::copy::copy_in;
use crate::eventlog::{RecordedEvent, WriteTx};
use crate::on_tx;

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
            Flags::delta(e.before, e.after),
        )],
        Event::InboxMarked(mark, e) => e
            .items
            .iter()
            .map(|item| {
                (
                    e.recipient.as_str(),
                    item.category.as_str(),
                    Flags::delta(item.before, mark.apply(item.before)),
                )
            })
            .collect(),
        Event::NotificationExpired(e) => vec![(
            e.recipient.as_str(),
            e.category.as_str(),
            Flags::delta(e.before, Flags::GONE),
        )],
        Event::NotificationSuppressed(_)
        | Event::PreferenceChanged(_)
        | Event::QuietHoursSet(_)
        | Event::DigestSet(_)
        | Event::DigestClosed(_)
        | Event::Schedule(_)
        | Event::Recipient(_)
        | Event::Delivery(_)
        | Event::Endpoint(_) => Vec::new(),
    }
}

/// The summed counter changes of a run of events, per person and category, not yet written.
/// A key is present once any event changed its counts (also when they add up to zero), so
/// the table is the same however the log is cut into batches or replay pages.
/// `((person, category), (unread, unseen))`.
type KeyedSum<'a> = ((&'a str, &'a str), (i64, i64));

#[derive(Default)]
pub(super) struct Sums {
    /// Per person, per category: (unread, unseen). Two levels so a lookup by `&str` needs no
    /// allocation; a key is allocated only the first time it is seen.
    by_person: HashMap<String, HashMap<String, (i64, i64)>>,
    keys: usize,
    /// The table has no rows yet (a replay's scratch table before its first write): every
    /// key is new, so on Postgres the sums are copied in rather than upserted.
    empty_table: bool,
}

impl Sums {
    /// Sums for a table that has no rows yet.
    pub(super) fn for_empty_table() -> Self {
        Sums {
            empty_table: true,
            ..Sums::default()
        }
    }

    pub(super) fn add(&mut self, events: &[(RecordedEvent, Event)]) {
        for (_, event) in events {
            for (recipient, category, (unread, unseen)) in changes(event) {
                if unread == 0 && unseen == 0 {
                    continue;
                }
                let person = match self.by_person.get_mut(recipient) {
                    Some(person) => person,
                    None => self.by_person.entry(recipient.to_owned()).or_default(),
                };
                let sum = match person.get_mut(category) {
                    Some(sum) => sum,
                    None => {
                        self.keys += 1;
                        person.entry(category.to_owned()).or_default()
                    }
                };
                sum.0 += unread;
                sum.1 += unseen;
            }
        }
    }

    /// Keys held.
    pub(super) fn len(&self) -> usize {
        self.keys
    }

    /// Upserts every sum once (in key order) and empties the set.
    pub(super) async fn write(&mut self, tx: &mut WriteTx, table: &str) -> anyhow::Result<()> {
        let by_person = std::mem::take(&mut self.by_person);
        self.keys = 0;
        let mut sums: Vec<KeyedSum> = by_person
            .iter()
            .flat_map(|(person, categories)| {
                categories
                    .iter()
                    .map(move |(category, sum)| ((person.as_str(), category.as_str()), *sum))
            })
            .collect();
        sums.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let empty_table = std::mem::replace(&mut self.empty_table, false);
        if let (WriteTx::Postgres(conn), true) = (&mut *tx, empty_table) {
            if sums.is_empty() {
                return Ok(());
            }
            let columns = ["recipient", "category", "unread", "unseen"];
            copy_in(
                conn,
                table,
                &columns,
                &sums,
                |row, ((r, c), (unread, unseen))| {
                    row.field(r)?.field(c)?.field(unread)?.field(unseen)?;
                    Ok(())
                },
            )
            .await?;
            return Ok(());
        }
        let upsert = format!(
            " ON CONFLICT (recipient, category) DO UPDATE SET \
             unread = {table}.unread + excluded.unread, unseen = {table}.unseen + excluded.unseen"
        );
        if let WriteTx::Postgres(conn) = tx {
            // One statement of four arrays per 10,000 keys.
            for chunk in sums.chunks(10_000) {
                let recipients: Vec<&str> = chunk.iter().map(|((r, _), _)| *r).collect();
                let categories: Vec<&str> = chunk.iter().map(|((_, c), _)| *c).collect();
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
                    b.push_bind(*recipient)
                        .push_bind(*category)
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
