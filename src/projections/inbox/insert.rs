//! Inserting the rows of sends: a multi-row `VALUES` insert on SQLite; on Postgres one
//! `UNNEST` statement of column arrays per `ARRAY_ROWS` rows, or `COPY` for more (decisions
//! 0021, 0026).

use anyhow::Context;
use sqlx::types::Json;

use super::INSERTED;
use crate::domain::event::NotificationCreated;
use crate::eventlog::copy::copy_in;
use crate::eventlog::rows_in::ARRAY_ROWS;
use crate::eventlog::WriteTx;
use crate::on_tx;

/// Inserts a row, with no flags set, for each send.
pub(super) async fn insert(
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
    // 15 parameters a row: 1,000 rows stay under both backends' parameter limits.
    for chunk in created.chunks(1_000) {
        on_tx!(tx, |conn| {
            let mut qb =
                sqlx::QueryBuilder::new(format!("INSERT INTO {table} ({}) ", INSERTED.join(", ")));
            qb.push_values(chunk, |mut b, (position, e)| {
                let c = &e.content;
                b.push_bind(e.notification_id.as_uuid())
                    .push_bind(e.recipient.as_str())
                    .push_bind(c.category.as_str())
                    .push_bind(c.priority.as_str())
                    .push_bind(c.critical)
                    .push_bind(e.quiet)
                    .push_bind(c.title.as_str())
                    .push_bind(c.body.as_str())
                    .push_bind(Json(c.data.as_json()))
                    .push_bind(c.action_url.as_ref().map(|l| l.as_str()))
                    .push_bind(c.icon.as_ref().map(|l| l.as_str()))
                    .push_bind(e.at)
                    .push_bind(*position)
                    .push_bind(*position)
                    .push_bind(e.expires_at);
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
    copy_in(conn, table, &INSERTED, created, |row, (position, e)| {
        let c = &e.content;
        row.field(&e.notification_id.as_uuid())?
            .field(&e.recipient.as_str())?
            .field(&c.category.as_str())?
            .field(&c.priority.as_str())?
            .field(&c.critical)?
            .field(&e.quiet)?
            .field(&c.title.as_str())?
            .field(&c.body.as_str())?
            .jsonb(c.data.as_json())?
            .field(&c.action_url.as_ref().map(|l| l.as_str()))?
            .field(&c.icon.as_ref().map(|l| l.as_str()))?
            .field(&e.at)?
            .field(position)?
            .field(position)?
            .field(&e.expires_at)?;
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
/// `ARRAY_ROWS` rows (the caller cuts them; decision 0021). One prepared statement of fourteen
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
    let (mut quiet, mut titles, mut bodies, mut data, mut urls, mut icons) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut at, mut positions, mut expires) = (
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
        quiet.push(e.quiet);
        titles.push(c.title.as_str());
        bodies.push(c.body.as_str());
        data.push(Json(c.data.as_json()));
        urls.push(c.action_url.as_ref().map(|l| l.as_str()));
        icons.push(c.icon.as_ref().map(|l| l.as_str()));
        at.push(e.at);
        positions.push(*position);
        expires.push(e.expires_at);
    }
    let sql = format!(
        "INSERT INTO {table} ({}) \
         SELECT id, recipient, category, priority, critical, quiet, title, body, data, url, icon, \
         at, position, position, expires FROM UNNEST($1::uuid[], $2::text[], $3::text[], \
         $4::text[], $5::bool[], $6::bool[], $7::text[], $8::text[], $9::jsonb[], $10::text[], \
         $11::text[], $12::timestamptz[], $13::int8[], $14::timestamptz[]) \
         AS u(id, recipient, category, priority, critical, quiet, title, body, data, url, icon, at, \
         position, expires)",
        INSERTED.join(", ")
    );
    sqlx::query(&sql)
        .bind(ids)
        .bind(recipients)
        .bind(categories)
        .bind(priorities)
        .bind(critical)
        .bind(quiet)
        .bind(titles)
        .bind(bodies)
        .bind(data)
        .bind(urls)
        .bind(icons)
        .bind(at)
        .bind(positions)
        .bind(expires)
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
