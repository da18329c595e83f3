//! The `idempotency_keys` projection: which notifications a keyed send created, and the
//! fingerprint of the request, so a retry returns the first result and a changed request
//! under the same key is refused.

use anyhow::Context;

use crate::domain::event::Event;
use crate::eventlog::{RecordedEvent, WriteTx};
use crate::on_tx;

pub(super) async fn apply(
    tx: &mut WriteTx,
    table: &str,
    recorded: &RecordedEvent,
    event: &Event,
) -> anyhow::Result<()> {
    let (created, suppressed) = match event {
        Event::NotificationSent(e) => (e, None),
        Event::NotificationSuppressed(e) => (e, Some(e.suppressed_because())),
        _ => return Ok(()),
    };
    let (Some(key), Some(hash)) = (
        &recorded.metadata.idempotency_key,
        &recorded.metadata.request_hash,
    ) else {
        return Ok(());
    };
    let sql = format!(
        "INSERT INTO {table} (idempotency_key, request_hash, notification_id, recipient, suppressed, reason, position) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)"
    );
    on_tx!(tx, |c| sqlx::query(&sql)
        .bind(key)
        .bind(hash)
        .bind(created.notification_id.as_uuid())
        .bind(created.recipient.as_str())
        .bind(suppressed.is_some())
        .bind(suppressed.map(|r| r.as_str()))
        .bind(recorded.position)
        .execute(&mut **c)
        .await
        .map(|r| r.rows_affected()))
    .with_context(|| format!("Failed to project event {} into {table}", recorded.position))?;
    Ok(())
}
