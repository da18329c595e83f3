//! Test data made by the domain code itself: sends and reads decided by the domain's
//! `Decide`, recorded with gap-free positions. `load_log` writes such events straight into
//! the log under the log lock (the projections are then built by replay); the raw writers
//! measure what the database can do without the engine.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use chrono::{SubsecRound, Utc};
use sqlx::types::Json;

use belfry::domain::event::{Event, NotificationCreated};
use belfry::domain::notification::{
    Change, ChangeNotification, Notification, SendNotification, SendState,
};
use belfry::domain::{Decide, SendInput};
use belfry::eventlog::{rows_in, Db, Metadata, NewEvent, RecordedEvent, WriteTx};
use belfry::on_tx;

/// The recipient of the `i`th notification when `users` people share them evenly.
pub fn user(i: u64, users: u64) -> String {
    format!("user-{}", i % users.max(1))
}

/// One send to `recipient`, decided by the domain: its `sent` event.
pub fn sent(i: u64, recipient: String) -> anyhow::Result<(Event, NotificationCreated)> {
    let cmd = SendInput {
        recipients: vec![recipient],
        title: format!("Bench notification {i}"),
        body: Some("A notification written by the benchmark suite.".to_owned()),
        category: Some(["builds", "billing", "mentions"][(i % 3) as usize].to_owned()),
        ..SendInput::default()
    };
    let cmd = SendNotification::parse(cmd, belfry::clock::now(), belfry::clock::notification_id)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut events = cmd
        .decide(&SendState::default())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let event = events.pop().context("a send decided nothing")?;
    let Event::NotificationSent(created) = &event else {
        anyhow::bail!("a send decided something else than notification.sent");
    };
    let created = created.clone();
    Ok((event, created))
}

/// Marking `created` read, decided by the domain.
pub fn read(created: &NotificationCreated) -> anyhow::Result<Event> {
    let state = Notification {
        id: created.notification_id,
        recipient: created.recipient.clone(),
        category: created.content.category.clone(),
        flags: Default::default(),
    };
    let cmd = ChangeNotification {
        id: created.notification_id,
        actor: created.recipient.clone(),
        change: Change::MarkRead,
        at: Utc::now().trunc_subsecs(6),
    };
    cmd.decide(&Some(state))
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .pop()
        .context("a read decided nothing")
}

fn metadata() -> Metadata {
    Metadata {
        actor: Some("service:bench".to_owned()),
        ..Metadata::default()
    }
}

/// Records domain events at the positions after `head`, each its stream's next version.
pub fn record(head: i64, events: &[Event], versions: &[i64]) -> Vec<RecordedEvent> {
    let at = Utc::now().trunc_subsecs(6);
    events
        .iter()
        .zip(versions)
        .enumerate()
        .map(|(k, (event, &version))| {
            let new = NewEvent::from_domain(event, metadata());
            RecordedEvent {
                position: head + 1 + k as i64,
                stream_id: event.stream_id(),
                stream_version: version,
                event_id: new.event_id,
                event_type: new.event_type,
                event_version: new.event_version,
                data: new.data,
                metadata: new.metadata,
                recorded_at: at,
            }
        })
        .collect()
}

/// Writes `sends` notifications straight into the log, 5,000 events a transaction, under the
/// log lock; when `read_every` is set, every such notification is also marked read later in
/// the log. The projections are not touched: build them with replay. Returns events written.
pub async fn load_log(
    db: &Db,
    sends: u64,
    recipient: impl Fn(u64) -> String,
    read_every: Option<u64>,
) -> anyhow::Result<i64> {
    const PAGE: usize = 5_000;
    let started = Instant::now();
    let mut pending_reads: Vec<NotificationCreated> = Vec::new();
    let mut written = 0_i64;
    let mut i = 0_u64;
    let mut last_report = Instant::now();
    while i < sends || !pending_reads.is_empty() {
        let mut events = Vec::with_capacity(PAGE);
        let mut versions = Vec::with_capacity(PAGE);
        // Reads of notifications from earlier pages come first, so they follow their send.
        while events.len() < PAGE / 5 {
            let Some(created) = pending_reads.pop() else {
                break;
            };
            events.push(read(&created)?);
            versions.push(2);
        }
        while events.len() < PAGE && i < sends {
            let (event, created) = sent(i, recipient(i))?;
            if read_every.is_some_and(|n| i % n == 0) {
                pending_reads.push(created);
            }
            events.push(event);
            versions.push(1);
            i += 1;
        }
        let mut tx = db.begin_write().await?;
        let head = rows_in::head_in(&mut tx).await?;
        let recorded = record(head, &events, &versions);
        rows_in::insert_in(&mut tx, &recorded).await?;
        tx.commit().await?;
        written += recorded.len() as i64;
        if last_report.elapsed().as_secs() >= 10 {
            last_report = Instant::now();
            eprintln!(
                "  loaded {written} events ({:.0}/s)",
                written as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(written)
}

/// A pool of decided sends that raw writers cycle through, giving every row fresh ids so
/// the unique keys hold (the JSON keeps the pooled notification id: the work is the same).
pub struct Pool {
    items: Vec<(Event, NotificationCreated)>,
    next: usize,
}

impl Pool {
    pub fn new(size: usize, users: u64) -> anyhow::Result<Pool> {
        let items = (0..size as u64)
            .map(|i| sent(i, user(i, users)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Pool { items, next: 0 })
    }

    /// The next `n` rows after `head`, with fresh notification and event ids.
    fn take(&mut self, head: i64, n: usize) -> Vec<(RecordedEvent, uuid::Uuid, usize)> {
        let at = Utc::now().trunc_subsecs(6);
        (0..n)
            .map(|k| {
                let index = self.next % self.items.len();
                self.next += 1;
                let (event, _) = &self.items[index];
                let id = uuid::Uuid::now_v7();
                let row = RecordedEvent {
                    position: head + 1 + k as i64,
                    stream_id: format!("notification-{id}"),
                    stream_version: 1,
                    event_id: uuid::Uuid::now_v7(),
                    event_type: event.type_name().to_owned(),
                    event_version: Event::VERSION,
                    data: event.to_raw_json().into(),
                    metadata: metadata(),
                    recorded_at: at,
                };
                (row, id, index)
            })
            .collect()
    }
}

/// What a raw batch writes, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawWork {
    /// (a) the event rows only, as a multi-row `VALUES` list per 1,000 rows.
    EventsOnly,
    /// (a) the event rows only, as the engine writes them on Postgres: one array per column.
    EventsOnlyArrays,
    /// (b) the event rows, the inbox rows and the counter upserts, set-based, by hand.
    WithProjections,
}

impl RawWork {
    /// The raw limit this work measures: `events_only` (a) or `events_inbox_counters` (b).
    pub fn name(self) -> &'static str {
        match self {
            RawWork::EventsOnly | RawWork::EventsOnlyArrays => "events_only",
            RawWork::WithProjections => "events_inbox_counters",
        }
    }

    /// How the event rows are written.
    pub fn form(self) -> &'static str {
        match self {
            RawWork::EventsOnly => "values",
            RawWork::EventsOnlyArrays | RawWork::WithProjections => "engine",
        }
    }
}

/// One raw batch of `n` sends in one transaction under the log lock (the same lock and head
/// read the appender does). Returns the rows written.
pub async fn raw_batch(db: &Db, pool: &mut Pool, n: usize, work: RawWork) -> anyhow::Result<()> {
    let mut tx = db.begin_write().await?;
    let head = rows_in::head_in(&mut tx).await?;
    let rows = pool.take(head, n);
    let events: Vec<RecordedEvent> = rows.iter().map(|(r, _, _)| r.clone()).collect();
    if work == RawWork::EventsOnly {
        rows_in::insert_values_in(&mut tx, &events).await?;
    } else {
        rows_in::insert_in(&mut tx, &events).await?;
    }
    if work == RawWork::WithProjections {
        let created: Vec<(&NotificationCreated, uuid::Uuid, i64)> = rows
            .iter()
            .map(|(r, id, index)| (&pool.items[*index].1, *id, r.position))
            .collect();
        inbox_rows(&mut tx, &created).await?;
        counters(&mut tx, &created).await?;
        on_tx!(&mut tx, |c| sqlx::query(
            "UPDATE projection_status SET position = $1"
        )
        .bind(head + n as i64)
        .execute(&mut **c)
        .await
        .map(|r| r.rows_affected()))?;
    }
    tx.commit().await
}

async fn inbox_rows(
    tx: &mut WriteTx,
    rows: &[(&NotificationCreated, uuid::Uuid, i64)],
) -> anyhow::Result<()> {
    if let WriteTx::Postgres(c) = tx {
        // Postgres: the statement the engine uses there (decision 0018), one array a column.
        let text = |f: fn(&NotificationCreated) -> &str| -> Vec<&str> {
            rows.iter().map(|(e, _, _)| f(e)).collect()
        };
        let link = |f: fn(&NotificationCreated) -> Option<&str>| -> Vec<Option<&str>> {
            rows.iter().map(|(e, _, _)| f(e)).collect()
        };
        sqlx::query(
            "INSERT INTO inbox (notification_id, recipient, category, priority, critical, quiet, \
             title, body, data, action_url, icon, sent_at, sent_position, last_position, \
             expires_at) \
             SELECT a, b, c, d, e, q, f, g, h, i, j, k, l, l, x FROM UNNEST($1::uuid[], \
             $2::text[], $3::text[], $4::text[], $5::bool[], $6::bool[], $7::text[], $8::text[], \
             $9::jsonb[], $10::text[], $11::text[], $12::timestamptz[], $13::int8[], \
             $14::timestamptz[]) AS u(a, b, c, d, e, q, f, g, h, i, j, k, l, x)",
        )
        .bind(rows.iter().map(|r| r.1).collect::<Vec<_>>())
        .bind(text(|e| e.recipient.as_str()))
        .bind(text(|e| e.content.category.as_str()))
        .bind(text(|e| e.content.priority.as_str()))
        .bind(
            rows.iter()
                .map(|r| r.0.content.critical)
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|r| r.0.quiet).collect::<Vec<_>>())
        .bind(text(|e| e.content.title.as_str()))
        .bind(text(|e| e.content.body.as_str()))
        .bind(
            rows.iter()
                .map(|r| Json(r.0.content.data.as_json()))
                .collect::<Vec<_>>(),
        )
        .bind(link(|e| e.content.action_url.as_ref().map(|l| l.as_str())))
        .bind(link(|e| e.content.icon.as_ref().map(|l| l.as_str())))
        .bind(rows.iter().map(|r| r.0.at).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.2).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.0.expires_at).collect::<Vec<_>>())
        .execute(&mut **c)
        .await
        .context("Failed to insert inbox rows")?;
        return Ok(());
    }
    for chunk in rows.chunks(1_000) {
        on_tx!(tx, |c| {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO inbox (notification_id, recipient, category, priority, critical, \
                 quiet, title, body, data, action_url, icon, sent_at, sent_position, seen_at, \
                 read_at, archived_at, last_position, expires_at) ",
            );
            qb.push_values(chunk, |mut b, (e, id, position)| {
                let content = &e.content;
                b.push_bind(*id)
                    .push_bind(e.recipient.as_str())
                    .push_bind(content.category.as_str())
                    .push_bind(content.priority.as_str())
                    .push_bind(content.critical)
                    .push_bind(e.quiet)
                    .push_bind(content.title.as_str())
                    .push_bind(content.body.as_str())
                    .push_bind(Json(content.data.as_json()))
                    .push_bind(content.action_url.as_ref().map(|l| l.as_str()))
                    .push_bind(content.icon.as_ref().map(|l| l.as_str()))
                    .push_bind(e.at)
                    .push_bind(*position)
                    .push("NULL, NULL, NULL")
                    .push_bind(*position)
                    .push_bind(e.expires_at);
            });
            qb.build()
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected())
        })
        .context("Failed to insert inbox rows")?;
    }
    Ok(())
}

async fn counters(
    tx: &mut WriteTx,
    rows: &[(&NotificationCreated, uuid::Uuid, i64)],
) -> anyhow::Result<()> {
    let mut per_key: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for (e, _, _) in rows {
        *per_key
            .entry((e.recipient.as_str(), e.content.category.as_str()))
            .or_default() += 1;
    }
    let keys: Vec<_> = per_key.into_iter().collect();
    if let WriteTx::Postgres(c) = tx {
        sqlx::query(
            "INSERT INTO unread_counters (recipient, category, unread, unseen) \
             SELECT r, c, n, n FROM UNNEST($1::text[], $2::text[], $3::int8[]) AS u(r, c, n) \
             ON CONFLICT (recipient, category) DO UPDATE SET \
             unread = unread_counters.unread + excluded.unread, \
             unseen = unread_counters.unseen + excluded.unseen",
        )
        .bind(keys.iter().map(|k| k.0 .0).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| k.0 .1).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| k.1).collect::<Vec<_>>())
        .execute(&mut **c)
        .await
        .context("Failed to upsert counters")?;
        return Ok(());
    }
    for chunk in keys.chunks(1_000) {
        on_tx!(tx, |c| {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO unread_counters (recipient, category, unread, unseen) ",
            );
            qb.push_values(chunk, |mut b, ((recipient, category), n)| {
                b.push_bind(*recipient)
                    .push_bind(*category)
                    .push_bind(*n)
                    .push_bind(*n);
            });
            qb.push(
                " ON CONFLICT (recipient, category) DO UPDATE SET \
                 unread = unread_counters.unread + excluded.unread, \
                 unseen = unread_counters.unseen + excluded.unseen",
            );
            qb.build()
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected())
        })
        .context("Failed to upsert counters")?;
    }
    Ok(())
}
