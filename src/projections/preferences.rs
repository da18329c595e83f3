//! The `preferences` projection: each switch a person has set (unset switches are on).

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
    let Event::PreferenceChanged(e) = event else {
        return Ok(());
    };
    let sql = format!(
        "INSERT INTO {table} (user_id, category, channel, enabled, updated_at, position) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (user_id, category, channel) DO UPDATE SET \
         enabled = excluded.enabled, updated_at = excluded.updated_at, position = excluded.position"
    );
    on_tx!(tx, |c| sqlx::query(&sql)
        .bind(e.user.as_str())
        .bind(e.category.as_str())
        .bind(e.channel.as_str())
        .bind(e.enabled)
        .bind(e.at)
        .bind(recorded.position)
        .execute(&mut **c)
        .await
        .map(|r| r.rows_affected()))
    .with_context(|| format!("Failed to project event {} into {table}", recorded.position))?;
    Ok(())
}
