//! The digest projections. `digest_settings`: each person's digest per category and channel,
//! as the last `preference.digest_set` gave it (the schedule as JSON); no row when off.
//! `digests`: the notifications that joined each digest (`delivery.digested`), marked
//! closed by its `digest.closed`; the open ones are what the timekeeper closes when due.

use anyhow::Context;

use crate::domain::event::{DeliveryEvent, Event};
use crate::eventlog::{RecordedEvent, WriteTx};
use crate::on_tx;

pub(super) async fn apply_settings(
    tx: &mut WriteTx,
    table: &str,
    recorded: &RecordedEvent,
    event: &Event,
) -> anyhow::Result<()> {
    let Event::DigestSet(e) = event else {
        return Ok(());
    };
    let position = recorded.position;
    let result = match &e.schedule {
        None => {
            let sql = format!(
                "DELETE FROM {table} WHERE user_id = $1 AND category = $2 AND channel = $3"
            );
            on_tx!(tx, |c| sqlx::query(&sql)
                .bind(e.user.as_str())
                .bind(e.category.as_str())
                .bind(e.channel.as_str())
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected()))
        }
        Some(schedule) => {
            let schedule = serde_json::to_string(schedule)
                .with_context(|| format!("Failed to encode the digest at {position}"))?;
            let sql = format!(
                "INSERT INTO {table} (user_id, category, channel, schedule, updated_at, position) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id, category, channel) DO UPDATE \
                 SET schedule = excluded.schedule, updated_at = excluded.updated_at, \
                 position = excluded.position"
            );
            on_tx!(tx, |c| sqlx::query(&sql)
                .bind(e.user.as_str())
                .bind(e.category.as_str())
                .bind(e.channel.as_str())
                .bind(&schedule)
                .bind(e.at)
                .bind(position)
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected()))
        }
    };
    result.with_context(|| format!("Failed to project event {position} into {table}"))?;
    Ok(())
}

pub(super) async fn apply_items(
    tx: &mut WriteTx,
    table: &str,
    recorded: &RecordedEvent,
    event: &Event,
) -> anyhow::Result<()> {
    let position = recorded.position;
    let result = match event {
        Event::Delivery(DeliveryEvent::Digested(e)) => {
            let sql = format!(
                "INSERT INTO {table} (digest_id, notification_id, recipient, category, channel, \
                 closes_at, sent_at, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (digest_id, notification_id) DO NOTHING"
            );
            on_tx!(tx, |c| sqlx::query(&sql)
                .bind(e.digest_id.as_uuid())
                .bind(e.delivery.notification_id.as_uuid())
                .bind(e.delivery.recipient.as_str())
                .bind(e.category.as_str())
                .bind(e.delivery.channel.as_str())
                .bind(e.closes_at)
                .bind(e.sent_at)
                .bind(position)
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected()))
        }
        Event::DigestClosed(e) => {
            let sql = format!("UPDATE {table} SET closed_at = $1 WHERE digest_id = $2");
            on_tx!(tx, |c| sqlx::query(&sql)
                .bind(e.at)
                .bind(e.digest_id.as_uuid())
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected()))
        }
        _ => return Ok(()),
    };
    result.with_context(|| format!("Failed to project event {position} into {table}"))?;
    Ok(())
}
