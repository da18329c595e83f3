//! Setting the flags of distinct notifications, each to the state after its change, in one
//! statement per chunk: on Postgres by column arrays (decision 0026), elsewhere by
//! `UPDATE ... FROM (VALUES ...)`. Both keep the first time a flag was set and clear the time
//! when the flag is cleared.

use anyhow::Context;
use chrono::{DateTime, Utc};

use super::FlagSet;
use crate::eventlog::rows_in::ARRAY_ROWS;
use crate::eventlog::WriteTx;
use crate::on_tx;

/// The `SET` list of both forms: `row` names the table's row, `v` the new values' columns
/// (seen, read, archived, at, position).
fn set_list(row: &str, v: [&str; 5]) -> String {
    let [seen, read, archived, at, position] = v;
    format!(
        "seen_at = CASE WHEN {seen} THEN COALESCE({row}.seen_at, {at}) ELSE NULL END, \
         read_at = CASE WHEN {read} THEN COALESCE({row}.read_at, {at}) ELSE NULL END, \
         archived_at = CASE WHEN {archived} THEN COALESCE({row}.archived_at, {at}) ELSE NULL END, \
         last_position = {position}"
    )
}

pub(super) async fn set(tx: &mut WriteTx, table: &str, changed: &[FlagSet]) -> anyhow::Result<()> {
    if let WriteTx::Postgres(conn) = tx {
        for chunk in changed.chunks(ARRAY_ROWS) {
            set_unnest(conn, table, chunk).await?;
        }
        return Ok(());
    }
    // SQLite names the columns of a `VALUES` list `column1`, `column2`, ...
    let set_list = set_list(
        table,
        [
            "v.column2",
            "v.column3",
            "v.column4",
            "v.column5",
            "v.column6",
        ],
    );
    for chunk in changed.chunks(1_000) {
        on_tx!(tx, |conn| {
            let mut qb = sqlx::QueryBuilder::new(format!("UPDATE {table} SET {set_list} FROM ("));
            qb.push_values(chunk, |mut b, set| {
                b.push_bind(set.id)
                    .push_bind(set.after.seen)
                    .push_bind(set.after.read)
                    .push_bind(set.after.archived)
                    .push_bind(set.at)
                    .push_bind(set.position);
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
        .with_context(|| failed(table, chunk))?;
    }
    Ok(())
}

/// Postgres: one array per column, six parameters whatever the number of rows, instead of a
/// `VALUES` list of six per row to parse and plan.
async fn set_unnest(
    conn: &mut sqlx::PgConnection,
    table: &str,
    changed: &[FlagSet],
) -> anyhow::Result<()> {
    let ids: Vec<uuid::Uuid> = changed.iter().map(|s| s.id).collect();
    let seen: Vec<bool> = changed.iter().map(|s| s.after.seen).collect();
    let read: Vec<bool> = changed.iter().map(|s| s.after.read).collect();
    let archived: Vec<bool> = changed.iter().map(|s| s.after.archived).collect();
    let at: Vec<DateTime<Utc>> = changed.iter().map(|s| s.at).collect();
    let positions: Vec<i64> = changed.iter().map(|s| s.position).collect();
    let set_list = set_list(
        "t",
        ["v.seen", "v.read", "v.archived", "v.at", "v.position"],
    );
    let sql = format!(
        "UPDATE {table} AS t SET {set_list} \
         FROM UNNEST($1::uuid[], $2::bool[], $3::bool[], $4::bool[], $5::timestamptz[], \
         $6::int8[]) AS v(id, seen, read, archived, at, position) \
         WHERE t.notification_id = v.id"
    );
    // Planned for each execution, as the `VALUES` form is.
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
        .with_context(|| failed(table, changed))?;
    Ok(())
}

fn failed(table: &str, changed: &[FlagSet]) -> String {
    format!(
        "Failed to update {} notifications in {table} from position {}",
        changed.len(),
        changed.first().map_or(0, |s| s.position)
    )
}
