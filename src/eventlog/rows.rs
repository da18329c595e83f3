//! SQL that reads and writes rows of the `events` table, shared by both backends.

use std::sync::Arc;

use anyhow::Context;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo};
use sqlx::types::Json;
use sqlx::Row;

use super::{Db, EventData, Metadata, RecordedEvent, WriteTx};
use crate::{on_reader, on_tx};

const COLUMNS: &str = "position, stream_id, stream_version, event_id, event_type, event_version, \
                       data, metadata, recorded_at";

/// Decodes an events row on either backend.
macro_rules! recorded {
    ($row:expr) => {{
        let row = $row;
        anyhow::Ok(RecordedEvent {
            position: row.try_get("position")?,
            stream_id: row.try_get("stream_id")?,
            stream_version: row.try_get("stream_version")?,
            event_id: row.try_get("event_id")?,
            event_type: row.try_get("event_type")?,
            event_version: row.try_get("event_version")?,
            data: EventData(
                row.try_get::<Json<Box<serde_json::value::RawValue>>, _>("data")?
                    .0,
            ),
            metadata: row.try_get::<Json<Metadata>, _>("metadata")?.0,
            recorded_at: row.try_get("recorded_at")?,
        })
    }};
}

pub(super) async fn head(db: &Db) -> anyhow::Result<i64> {
    on_reader!(db, |p| sqlx::query_scalar::<_, i64>(
        "SELECT COALESCE(MAX(position), 0) FROM events"
    )
    .fetch_one(p)
    .await)
    .context("Failed to read the log head")
}

pub(super) async fn read_after(
    db: &Db,
    after: i64,
    limit: i64,
) -> anyhow::Result<Vec<RecordedEvent>> {
    read_rows_after(db, after, limit).await?.decode()
}

/// A page of the log as the database returned it, not yet decoded into events, so that a
/// reader can decode it on another thread (replay does).
pub enum RowPage {
    Sqlite(Vec<sqlx::sqlite::SqliteRow>),
    Postgres(Vec<sqlx::postgres::PgRow>),
}

impl RowPage {
    /// The position of the page's last event, if any.
    pub fn last_position(&self) -> anyhow::Result<Option<i64>> {
        let last = match self {
            RowPage::Sqlite(rows) => rows.last().map(|r| r.try_get("position")),
            RowPage::Postgres(rows) => rows.last().map(|r| r.try_get("position")),
        };
        last.transpose()
            .context("Failed to read an event's position")
    }

    pub fn decode(self) -> anyhow::Result<Vec<RecordedEvent>> {
        match self {
            RowPage::Sqlite(rows) => rows.iter().map(|r| recorded!(r)).collect::<Result<_, _>>(),
            RowPage::Postgres(rows) => rows.iter().map(|r| recorded!(r)).collect(),
        }
        .context("Failed to read events")
    }
}

pub(super) async fn read_rows_after(db: &Db, after: i64, limit: i64) -> anyhow::Result<RowPage> {
    let sql =
        format!("SELECT {COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2");
    match db {
        Db::Sqlite { reader, .. } => sqlx::query(&sql)
            .bind(after)
            .bind(limit)
            .fetch_all(reader)
            .await
            .map(RowPage::Sqlite),
        Db::Postgres(pool) => sqlx::query(&sql)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await
            .map(RowPage::Postgres),
    }
    .context("Failed to read events")
}

pub(super) async fn read_stream(db: &Db, stream_id: &str) -> anyhow::Result<Vec<RecordedEvent>> {
    let sql = format!("SELECT {COLUMNS} FROM events WHERE stream_id = $1 ORDER BY stream_version");
    on_reader!(db, |p| {
        let rows = sqlx::query(&sql).bind(stream_id).fetch_all(p).await?;
        rows.iter()
            .map(|r| recorded!(r))
            .collect::<anyhow::Result<Vec<_>>>()
    })
    .with_context(|| format!("Failed to read stream {stream_id}"))
}

/// The first event of one stream (a notification's creation), if the stream exists.
pub(super) async fn read_stream_first(
    db: &Db,
    stream_id: &str,
) -> anyhow::Result<Option<RecordedEvent>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE stream_id = $1 ORDER BY stream_version LIMIT 1"
    );
    on_reader!(db, |p| {
        let row = sqlx::query(&sql).bind(stream_id).fetch_optional(p).await?;
        row.map(|r| recorded!(&r)).transpose()
    })
    .with_context(|| format!("Failed to read the first event of stream {stream_id}"))
}

/// Events after `after` read inside a write transaction (replay's catch-up under the lock).
pub async fn read_after_in(
    tx: &mut WriteTx,
    after: i64,
    limit: i64,
) -> anyhow::Result<Vec<RecordedEvent>> {
    let sql =
        format!("SELECT {COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2");
    on_tx!(tx, |c| {
        let rows = sqlx::query(&sql)
            .bind(after)
            .bind(limit)
            .fetch_all(&mut **c)
            .await?;
        rows.iter()
            .map(|r| recorded!(r))
            .collect::<anyhow::Result<Vec<_>>>()
    })
    .context("Failed to read events")
}

pub async fn head_in(tx: &mut WriteTx) -> anyhow::Result<i64> {
    on_tx!(tx, |c| sqlx::query_scalar::<_, i64>(
        "SELECT COALESCE(MAX(position), 0) FROM events"
    )
    .fetch_one(&mut **c)
    .await)
    .context("Failed to read the log head")
}

pub async fn stream_version_in(tx: &mut WriteTx, stream_id: &str) -> anyhow::Result<i64> {
    on_tx!(tx, |c| sqlx::query_scalar::<_, i64>(
        "SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE stream_id = $1"
    )
    .bind(stream_id)
    .fetch_one(&mut **c)
    .await)
    .with_context(|| format!("Failed to read the version of stream {stream_id}"))
}

/// Every event of one stream read inside a write transaction, in version order.
pub async fn read_stream_in(
    tx: &mut WriteTx,
    stream_id: &str,
) -> anyhow::Result<Vec<RecordedEvent>> {
    let sql = format!("SELECT {COLUMNS} FROM events WHERE stream_id = $1 ORDER BY stream_version");
    on_tx!(tx, |c| {
        let rows = sqlx::query(&sql)
            .bind(stream_id)
            .fetch_all(&mut **c)
            .await?;
        rows.iter()
            .map(|r| recorded!(r))
            .collect::<anyhow::Result<Vec<_>>>()
    })
    .with_context(|| format!("Failed to read stream {stream_id}"))
}

/// Inserts events with their positions: on Postgres by arrays, [`ARRAY_ROWS`] events a
/// statement; elsewhere as multi-row `VALUES` lists.
pub async fn insert_in(tx: &mut WriteTx, events: &[RecordedEvent]) -> anyhow::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    if let WriteTx::Postgres(conn) = tx {
        for chunk in events.chunks(ARRAY_ROWS) {
            insert_unnest(conn, chunk).await?;
        }
        return Ok(());
    }
    insert_values_in(tx, events).await
}

/// Inserts events as multi-row `VALUES` lists: SQLite's form, and on Postgres the form the
/// benchmark's raw limit (a) measures beside the arrays.
pub async fn insert_values_in(tx: &mut WriteTx, events: &[RecordedEvent]) -> anyhow::Result<()> {
    // 9 parameters a row; 1,000 rows stay well under both backends' parameter limits.
    for chunk in events.chunks(1_000) {
        let metadata = metadata_texts(chunk)?;
        on_tx!(tx, |c| {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO events (position, stream_id, stream_version, event_id, event_type, \
                 event_version, data, metadata, recorded_at) ",
            );
            qb.push_values(chunk.iter().zip(&metadata), |mut b, (e, metadata)| {
                b.push_bind(e.position)
                    .push_bind(&e.stream_id)
                    .push_bind(e.stream_version)
                    .push_bind(e.event_id)
                    .push_bind(&e.event_type)
                    .push_bind(e.event_version)
                    .push_bind(JsonText(e.data.as_str()))
                    .push_bind(JsonText(&**metadata))
                    .push_bind(e.recorded_at);
            });
            qb.build()
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected())
        })
        .context("Failed to append events")?;
    }
    Ok(())
}

/// Rows per array statement on Postgres. Every batch size shares one prepared statement; a
/// bound message stays near half a megabyte, so its buffers are reused instead of growing
/// (and faulting in fresh pages) for a 100,000-event broadcast.
pub const ARRAY_ROWS: usize = 1_000;

/// Postgres: one `INSERT ... SELECT FROM UNNEST` of an array per column (decision 0021).
async fn insert_unnest(
    conn: &mut sqlx::PgConnection,
    events: &[RecordedEvent],
) -> anyhow::Result<()> {
    let n = events.len();
    let (mut positions, mut streams, mut versions, mut ids) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut types, mut type_versions, mut data, mut metadata, mut at) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let metadata_texts = metadata_texts(events)?;
    for (e, metadata_text) in events.iter().zip(&metadata_texts) {
        positions.push(e.position);
        streams.push(e.stream_id.as_str());
        versions.push(e.stream_version);
        ids.push(e.event_id);
        types.push(e.event_type.as_str());
        type_versions.push(e.event_version);
        data.push(JsonText(e.data.as_str()));
        metadata.push(JsonText(&**metadata_text));
        at.push(e.recorded_at);
    }
    sqlx::query(
        "INSERT INTO events (position, stream_id, stream_version, event_id, event_type, \
         event_version, data, metadata, recorded_at) \
         SELECT * FROM UNNEST($1::int8[], $2::text[], $3::int8[], $4::uuid[], $5::text[], \
         $6::int4[], $7::json[], $8::json[], $9::timestamptz[])",
    )
    .bind(positions)
    .bind(streams)
    .bind(versions)
    .bind(ids)
    .bind(types)
    .bind(type_versions)
    .bind(data)
    .bind(metadata)
    .bind(at)
    .execute(conn)
    .await
    .with_context(|| {
        format!(
            "Failed to append {n} events from position {}",
            events[0].position
        )
    })?;
    Ok(())
}

fn metadata_json(metadata: &Metadata) -> anyhow::Result<String> {
    serde_json::to_string(metadata).context("Failed to serialize an event's metadata")
}

/// Each event's metadata as JSON text. The events of one command share theirs, so each run
/// of equal metadata is serialized once and shared: a broadcast's 100,000 events, once.
fn metadata_texts(events: &[RecordedEvent]) -> anyhow::Result<Vec<Arc<str>>> {
    let mut texts: Vec<Arc<str>> = Vec::with_capacity(events.len());
    let mut last: Option<(&Metadata, Arc<str>)> = None;
    for e in events {
        let text = match &last {
            Some((metadata, text)) if **metadata == e.metadata => Arc::clone(text),
            _ => Arc::from(metadata_json(&e.metadata)?),
        };
        last = Some((&e.metadata, Arc::clone(&text)));
        texts.push(text);
    }
    Ok(texts)
}

/// JSON text bound as it is: `json` on Postgres, `TEXT` on SQLite. Postgres checks that the
/// text is JSON and stores it unchanged, where `jsonb` would parse it into its binary form on
/// the way in and print it again on the way out (decision 0023).
struct JsonText<S>(S);

/// The built-in `json` and `json[]` types; their OIDs are fixed in every Postgres.
const JSON_OID: Oid = Oid(114);
const JSON_ARRAY_OID: Oid = Oid(199);

impl<S> sqlx::Type<sqlx::Postgres> for JsonText<S> {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(JSON_OID)
    }
}

impl<S> PgHasArrayType for JsonText<S> {
    fn array_type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(JSON_ARRAY_OID)
    }
}

impl<S: AsRef<str>> sqlx::Encode<'_, sqlx::Postgres> for JsonText<S> {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        // The binary form of `json` is its text.
        buf.extend_from_slice(self.0.as_ref().as_bytes());
        Ok(IsNull::No)
    }
}

impl<S> sqlx::Type<sqlx::Sqlite> for JsonText<S> {
    fn type_info() -> <sqlx::Sqlite as sqlx::Database>::TypeInfo {
        <str as sqlx::Type<sqlx::Sqlite>>::type_info()
    }
}

impl<'q, S: sqlx::Encode<'q, sqlx::Sqlite>> sqlx::Encode<'q, sqlx::Sqlite> for JsonText<S> {
    fn encode_by_ref(
        &self,
        args: &mut Vec<sqlx::sqlite::SqliteArgumentValue<'q>>,
    ) -> Result<IsNull, BoxDynError> {
        self.0.encode_by_ref(args)
    }
}
