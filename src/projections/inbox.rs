//! The `inbox` projection: one row per delivered notification with its flags and the
//! position of its last change. Suppressed notifications never get a row.

use std::collections::HashSet;

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::types::Json;

use crate::domain::event::{Event, InboxMarked, NotificationChanged, NotificationCreated};
use crate::domain::inbox::Mark;
use crate::eventlog::copy::copy_in;
use crate::eventlog::rows_in::ARRAY_ROWS;
use crate::eventlog::{RecordedEvent, WriteTx};
use crate::on_tx;

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

/// Folds events into the inbox table in order: consecutive sends become one multi-row insert,
/// and consecutive changes to distinct notifications one multi-row update (per 1,000 rows).
/// Pending inserts are written before any change (it may touch one of them), and pending
/// changes before a second change to the same notification or a bulk mark.
///
/// A change only ever touches a row sent before it, so `Part::Sends` of a slice followed by
/// `Part::Changes` of the same slice writes what `Part::All` does; replay runs the two on
/// different connections (decision 0025).
pub(super) async fn apply(
    tx: &mut WriteTx,
    table: &str,
    events: &[(&RecordedEvent, &Event)],
    part: Part,
) -> anyhow::Result<()> {
    let mut created: Vec<(i64, &NotificationCreated)> = Vec::new();
    let mut changed: Vec<(i64, &NotificationChanged)> = Vec::new();
    let mut changed_ids: HashSet<uuid::Uuid> = HashSet::new();
    for (recorded, event) in events {
        let position = recorded.position;
        match event {
            Event::NotificationSent(e) => {
                if part != Part::Changes {
                    created.push((position, e));
                }
            }
            _ if part == Part::Sends => {}
            Event::NotificationSeen(e)
            | Event::NotificationRead(e)
            | Event::NotificationUnread(e)
            | Event::NotificationArchived(e)
            | Event::NotificationUnarchived(e) => {
                insert(tx, table, &created).await?;
                created.clear();
                if !changed_ids.insert(e.notification_id.as_uuid()) {
                    set_flags(tx, table, &changed).await?;
                    changed.clear();
                    changed_ids.clear();
                    changed_ids.insert(e.notification_id.as_uuid());
                }
                changed.push((position, e));
            }
            Event::InboxMarked(m, e) => {
                insert(tx, table, &created).await?;
                created.clear();
                set_flags(tx, table, &changed).await?;
                changed.clear();
                changed_ids.clear();
                mark(tx, table, position, *m, e)
                    .await
                    .with_context(|| format!("Failed to project event {position} into {table}"))?;
            }
            Event::NotificationSuppressed(_) | Event::PreferenceChanged(_) => {}
        }
    }
    insert(tx, table, &created).await?;
    set_flags(tx, table, &changed).await
}

async fn insert(
    tx: &mut WriteTx,
    table: &str,
    created: &[(i64, &NotificationCreated)],
) -> anyhow::Result<()> {
    if created.is_empty() {
        return Ok(());
    }
    if let WriteTx::Postgres(conn) = tx {
        if created.len() > ARRAY_ROWS {
            return insert_copy(conn, table, created).await;
        }
        for chunk in created.chunks(ARRAY_ROWS) {
            insert_unnest(conn, table, chunk).await?;
        }
        return Ok(());
    }
    // 13 parameters a row: 1,000 rows stay under both backends' parameter limits.
    for chunk in created.chunks(1_000) {
        on_tx!(tx, |conn| {
            let mut qb = sqlx::QueryBuilder::new(format!(
                "INSERT INTO {table} (notification_id, recipient, category, priority, critical, \
                 title, body, data, action_url, icon, sent_at, sent_position, seen_at, read_at, \
                 archived_at, last_position) "
            ));
            qb.push_values(chunk, |mut b, (position, e)| {
                let c = &e.content;
                b.push_bind(e.notification_id.as_uuid())
                    .push_bind(e.recipient.as_str())
                    .push_bind(c.category.as_str())
                    .push_bind(c.priority.as_str())
                    .push_bind(c.critical)
                    .push_bind(c.title.as_str())
                    .push_bind(c.body.as_str())
                    .push_bind(Json(c.data.as_json()))
                    .push_bind(c.action_url.as_ref().map(|l| l.as_str()))
                    .push_bind(c.icon.as_ref().map(|l| l.as_str()))
                    .push_bind(e.at)
                    .push_bind(*position)
                    .push("NULL, NULL, NULL")
                    .push_bind(*position);
            });
            qb.build()
                .execute(&mut **conn)
                .await
                .map(|r| r.rows_affected())
        })
        .with_context(|| {
            format!(
                "Failed to insert {} notifications into {table} from position {}",
                chunk.len(),
                chunk.first().map_or(0, |c| c.0)
            )
        })?;
    }
    Ok(())
}

/// Postgres, more rows than one array statement takes (a replay page, a broadcast): `COPY`
/// in binary, sent in chunks while the next rows are encoded (decision 0026).
async fn insert_copy(
    conn: &mut sqlx::PgConnection,
    table: &str,
    created: &[(i64, &NotificationCreated)],
) -> anyhow::Result<()> {
    const COLUMNS: [&str; 13] = [
        "notification_id",
        "recipient",
        "category",
        "priority",
        "critical",
        "title",
        "body",
        "data",
        "action_url",
        "icon",
        "sent_at",
        "sent_position",
        "last_position",
    ];
    copy_in(conn, table, &COLUMNS, created, |row, (position, e)| {
        let c = &e.content;
        row.field(&e.notification_id.as_uuid())?
            .field(&e.recipient.as_str())?
            .field(&c.category.as_str())?
            .field(&c.priority.as_str())?
            .field(&c.critical)?
            .field(&c.title.as_str())?
            .field(&c.body.as_str())?
            .jsonb(c.data.as_json())?
            .field(&c.action_url.as_ref().map(|l| l.as_str()))?
            .field(&c.icon.as_ref().map(|l| l.as_str()))?
            .field(&e.at)?
            .field(position)?
            .field(position)?;
        Ok(())
    })
    .await
    .with_context(|| {
        format!(
            "Failed to insert {} notifications into {table} from position {}",
            created.len(),
            created.first().map_or(0, |c| c.0)
        )
    })?;
    Ok(())
}

/// Postgres: one `INSERT ... SELECT FROM UNNEST` of a column array each, for up to
/// `ARRAY_ROWS` rows (the caller cuts them; decision 0021). One prepared statement of twelve
/// parameters serves every size, instead of a multi-row `VALUES` list to parse and plan.
async fn insert_unnest(
    conn: &mut sqlx::PgConnection,
    table: &str,
    created: &[(i64, &NotificationCreated)],
) -> anyhow::Result<()> {
    let n = created.len();
    let (mut ids, mut recipients, mut categories, mut priorities, mut critical) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut titles, mut bodies, mut data, mut urls, mut icons, mut at, mut positions) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (position, e) in created {
        let c = &e.content;
        ids.push(e.notification_id.as_uuid());
        recipients.push(e.recipient.as_str());
        categories.push(c.category.as_str());
        priorities.push(c.priority.as_str());
        critical.push(c.critical);
        titles.push(c.title.as_str());
        bodies.push(c.body.as_str());
        data.push(Json(c.data.as_json()));
        urls.push(c.action_url.as_ref().map(|l| l.as_str()));
        icons.push(c.icon.as_ref().map(|l| l.as_str()));
        at.push(e.at);
        positions.push(*position);
    }
    let sql = format!(
        "INSERT INTO {table} (notification_id, recipient, category, priority, critical, title, \
         body, data, action_url, icon, sent_at, sent_position, last_position) \
         SELECT id, recipient, category, priority, critical, title, body, data, url, icon, at, \
         position, position FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], \
         $5::bool[], $6::text[], $7::text[], $8::jsonb[], $9::text[], $10::text[], \
         $11::timestamptz[], $12::int8[]) \
         AS u(id, recipient, category, priority, critical, title, body, data, url, icon, at, position)"
    );
    sqlx::query(&sql)
        .bind(ids)
        .bind(recipients)
        .bind(categories)
        .bind(priorities)
        .bind(critical)
        .bind(titles)
        .bind(bodies)
        .bind(data)
        .bind(urls)
        .bind(icons)
        .bind(at)
        .bind(positions)
        .execute(conn)
        .await
        .with_context(|| {
            format!(
                "Failed to insert {n} notifications into {table} from position {}",
                created[0].0
            )
        })?;
    Ok(())
}

/// Sets the flags of distinct notifications, each to the state after its change, in one
/// statement per 1,000 rows: on Postgres by arrays, elsewhere `UPDATE ... FROM (VALUES ...)`,
/// whose columns SQLite names `column1`, `column2`, ...
async fn set_flags(
    tx: &mut WriteTx,
    table: &str,
    changed: &[(i64, &NotificationChanged)],
) -> anyhow::Result<()> {
    if let WriteTx::Postgres(conn) = tx {
        for chunk in changed.chunks(ARRAY_ROWS) {
            set_flags_unnest(conn, table, chunk).await?;
        }
        return Ok(());
    }
    for chunk in changed.chunks(1_000) {
        on_tx!(tx, |conn| {
            // Keep the first time a flag was set; clear the time when the flag is cleared.
            let mut qb = sqlx::QueryBuilder::new(format!(
                "UPDATE {table} SET \
                 seen_at = CASE WHEN v.column2 THEN COALESCE({table}.seen_at, v.column5) ELSE NULL END, \
                 read_at = CASE WHEN v.column3 THEN COALESCE({table}.read_at, v.column5) ELSE NULL END, \
                 archived_at = CASE WHEN v.column4 THEN COALESCE({table}.archived_at, v.column5) ELSE NULL END, \
                 last_position = v.column6 FROM ("
            ));
            qb.push_values(chunk, |mut b, (position, e)| {
                b.push_bind(e.notification_id.as_uuid())
                    .push_bind(e.after.seen)
                    .push_bind(e.after.read)
                    .push_bind(e.after.archived)
                    .push_bind(e.at)
                    .push_bind(*position);
            });
            qb.push(format!(") AS v WHERE {table}.notification_id = v.column1"));
            // Planned for each execution: a cached generic plan made while the table was
            // small (a fresh replay table, a new install) joins by scanning the whole table,
            // and keeps doing so as the table grows.
            qb.build()
                .persistent(false)
                .execute(&mut **conn)
                .await
                .map(|r| r.rows_affected())
        })
        .with_context(|| {
            format!(
                "Failed to update {} notifications in {table} from position {}",
                chunk.len(),
                chunk.first().map_or(0, |c| c.0)
            )
        })?;
    }
    Ok(())
}

/// Postgres: [`set_flags`] with one array per column, six parameters whatever the number of
/// rows, instead of a `VALUES` list of six per row to parse and plan (decision 0026).
async fn set_flags_unnest(
    conn: &mut sqlx::PgConnection,
    table: &str,
    changed: &[(i64, &NotificationChanged)],
) -> anyhow::Result<()> {
    let n = changed.len();
    let column = |f: fn(&NotificationChanged) -> bool| -> Vec<bool> {
        changed.iter().map(|(_, e)| f(e)).collect()
    };
    let (seen, read, archived) = (
        column(|e| e.after.seen),
        column(|e| e.after.read),
        column(|e| e.after.archived),
    );
    let ids: Vec<uuid::Uuid> = changed
        .iter()
        .map(|(_, e)| e.notification_id.as_uuid())
        .collect();
    let at: Vec<DateTime<Utc>> = changed.iter().map(|(_, e)| e.at).collect();
    let positions: Vec<i64> = changed.iter().map(|(position, _)| *position).collect();
    // Keep the first time a flag was set; clear the time when the flag is cleared.
    let sql = format!(
        "UPDATE {table} AS t SET \
         seen_at = CASE WHEN v.seen THEN COALESCE(t.seen_at, v.at) ELSE NULL END, \
         read_at = CASE WHEN v.read THEN COALESCE(t.read_at, v.at) ELSE NULL END, \
         archived_at = CASE WHEN v.archived THEN COALESCE(t.archived_at, v.at) ELSE NULL END, \
         last_position = v.position \
         FROM UNNEST($1::uuid[], $2::bool[], $3::bool[], $4::bool[], $5::timestamptz[], \
         $6::int8[]) AS v(id, seen, read, archived, at, position) \
         WHERE t.notification_id = v.id"
    );
    // Planned for each execution, as the `VALUES` form is: a cached generic plan made while
    // the table was small (a fresh replay table, a new install) joins by scanning the whole
    // table, and keeps doing so as the table grows.
    sqlx::query(&sql)
        .bind(ids)
        .bind(seen)
        .bind(read)
        .bind(archived)
        .bind(at)
        .bind(positions)
        .persistent(false)
        .execute(conn)
        .await
        .with_context(|| {
            format!(
                "Failed to update {n} notifications in {table} from position {}",
                changed.first().map_or(0, |c| c.0)
            )
        })?;
    Ok(())
}

async fn mark(
    tx: &mut WriteTx,
    table: &str,
    position: i64,
    mark: Mark,
    e: &InboxMarked,
) -> anyhow::Result<()> {
    for item in &e.items {
        let after = mark.apply(item.before);
        set_one(
            tx,
            table,
            position,
            item.notification_id.as_uuid(),
            after.seen,
            after.read,
            e.at,
        )
        .await?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn set_one(
    tx: &mut WriteTx,
    table: &str,
    position: i64,
    id: uuid::Uuid,
    seen: bool,
    read: bool,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let sql = format!(
        "UPDATE {table} SET \
         seen_at = CASE WHEN $2 THEN COALESCE(seen_at, $4) ELSE seen_at END, \
         read_at = CASE WHEN $3 THEN COALESCE(read_at, $4) ELSE read_at END, \
         last_position = $5 \
         WHERE notification_id = $1"
    );
    on_tx!(tx, |conn| sqlx::query(&sql)
        .bind(id)
        .bind(seen)
        .bind(read)
        .bind(at)
        .bind(position)
        .execute(&mut **conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}
