//! Postgres bulk writes by `COPY ... FROM STDIN (FORMAT binary)` (decision 0026).
//!
//! Each value is encoded by sqlx's own binary encoder, the form a bound parameter takes, so a
//! row copied in holds what the same row inserted by a statement would. Rows are sent in
//! chunks while the next ones are encoded, so Postgres works beside the encoding.

use anyhow::Context;
use sqlx::encode::IsNull;
use sqlx::postgres::{PgArgumentBuffer, PgConnection};
use sqlx::{Encode, Postgres};

/// Bytes encoded before they are sent: Postgres starts on the first rows while the rest are
/// encoded, and the buffer is reused instead of growing with the whole table.
const CHUNK_BYTES: usize = 256 * 1024;

/// The binary format's fixed header: signature, flags (none), header extension length (0).
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Rows in `COPY`'s binary format, one field after another.
pub struct CopyRows {
    buf: PgArgumentBuffer,
    columns: i16,
}

impl CopyRows {
    fn new(columns: i16) -> Self {
        let mut buf = PgArgumentBuffer::default();
        buf.extend_from_slice(HEADER);
        Self { buf, columns }
    }

    /// Starts a row; exactly `columns` fields must follow.
    pub fn row(&mut self) -> &mut Self {
        self.buf.extend_from_slice(&self.columns.to_be_bytes());
        self
    }

    /// One field, encoded as sqlx binds it (`None` is `NULL`).
    pub fn field<'q, T: Encode<'q, Postgres>>(&mut self, value: &T) -> anyhow::Result<&mut Self> {
        let at = self.start();
        let null = value
            .encode_by_ref(&mut self.buf)
            .map_err(|e| anyhow::anyhow!("Failed to encode a value to copy: {e}"))?;
        self.end(at, null)
    }

    /// A `jsonb` field from a JSON value: the binary form is a version byte, then the text.
    pub fn jsonb(&mut self, value: &serde_json::Value) -> anyhow::Result<&mut Self> {
        let at = self.start();
        self.buf.push(1);
        serde_json::to_writer(&mut *self.buf, value).context("Failed to encode JSON to copy")?;
        self.end(at, IsNull::No)
    }

    /// Reserves the field's length, written by [`CopyRows::end`].
    fn start(&mut self) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        at
    }

    fn end(&mut self, at: usize, null: IsNull) -> anyhow::Result<&mut Self> {
        let len = match null {
            IsNull::Yes => {
                // A NULL is its length alone; drop anything the encoder wrote.
                self.buf.truncate(at + 4);
                -1
            }
            IsNull::No => i32::try_from(self.buf.len() - at - 4)
                .context("A value to copy is larger than Postgres takes")?,
        };
        self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        Ok(self)
    }
}

/// Copies `items` into `table`'s `columns` (the rest take their defaults), each written as
/// one row by `write`, and returns the rows copied. On an error the copy is aborted, which
/// fails the caller's transaction: nothing is half-written once it rolls back.
pub async fn copy_in<I>(
    conn: &mut PgConnection,
    table: &str,
    columns: &[&str],
    items: &[I],
    mut write: impl FnMut(&mut CopyRows, &I) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let count = i16::try_from(columns.len()).context("Too many columns to copy")?;
    let statement = format!(
        "COPY {table} ({}) FROM STDIN (FORMAT binary)",
        columns.join(", ")
    );
    let mut copy = conn
        .copy_in_raw(&statement)
        .await
        .with_context(|| format!("Failed to start copying into {table}"))?;
    let mut rows = CopyRows::new(count);
    let sent = async {
        for item in items {
            rows.row();
            write(&mut rows, item)?;
            if rows.buf.len() >= CHUNK_BYTES {
                copy.send(rows.buf.as_slice()).await?;
                rows.buf.clear();
            }
        }
        // The trailer: a field count of -1.
        rows.buf.extend_from_slice(&(-1_i16).to_be_bytes());
        copy.send(rows.buf.as_slice()).await?;
        anyhow::Ok(())
    }
    .await;
    match sent {
        Ok(()) => copy
            .finish()
            .await
            .with_context(|| format!("Failed to copy {} rows into {table}", items.len())),
        Err(e) => {
            // The abort's own outcome adds nothing: the copy has failed either way.
            let _ = copy.abort(format!("{e:#}")).await;
            Err(e.context(format!("Failed to copy rows into {table}")))
        }
    }
}
