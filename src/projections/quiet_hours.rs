//! The `quiet_hours` projection: each person's quiet hours, as the last
//! `preference.quiet_hours_set` gave them (as JSON); no row for someone who has none.

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
    let Event::QuietHoursSet(e) = event else {
        return Ok(());
    };
    let position = recorded.position;
    let result = if e.hours.is_empty() {
        let sql = format!("DELETE FROM {table} WHERE user_id = $1");
        on_tx!(tx, |c| sqlx::query(&sql)
            .bind(e.user.as_str())
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))
    } else {
        let windows = serde_json::to_string(&e.hours.windows)
            .with_context(|| format!("Failed to encode the quiet hours at {position}"))?;
        let sql = format!(
            "INSERT INTO {table} (user_id, windows, updated_at, position) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id) DO UPDATE SET windows = excluded.windows, \
             updated_at = excluded.updated_at, position = excluded.position"
        );
        on_tx!(tx, |c| sqlx::query(&sql)
            .bind(e.user.as_str())
            .bind(&windows)
            .bind(e.at)
            .bind(position)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))
    };
    result.with_context(|| format!("Failed to project event {position} into {table}"))?;
    Ok(())
}
