//! `belfry deliveries list|retry`: the delivery log from the shell, and an operator's retry of
//! a delivery that failed for good, through the engine as the API does it.

use std::process::ExitCode;

use anyhow::Context;
use belfry::app::open_db;
use belfry::clock;
use belfry::config::Settings;
use belfry::domain::delivery::{RecordDelivery, Step};
use belfry::domain::{Command, DeliveryId};
use belfry::projections::deliveries::{self, status, DeliveryRow};
use clap::Subcommand;

use crate::credentials::parse_ttl;
use crate::send::{cli_metadata, start_engine};

#[derive(Subcommand)]
pub enum DeliveriesCmd {
    /// Deliveries in one status changed within a time, most recent first, one JSON object a
    /// line: e.g. `belfry deliveries list --status failed --since 1h`.
    List {
        /// planned, sending, retrying, succeeded, failed or skipped
        #[arg(long, default_value = "failed")]
        status: String,
        /// How far back, e.g. 30m, 1h, 7d.
        #[arg(long, default_value = "1h", value_parser = parse_ttl)]
        since: std::time::Duration,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One more attempt of a delivery that failed for good, due at once (a running server's
    /// workers take it).
    Retry {
        /// The delivery's id (its webhook-id, or the local part of its Message-ID).
        id: String,
    },
}

pub async fn run(settings: Settings, command: DeliveriesCmd) -> anyhow::Result<ExitCode> {
    match command {
        DeliveriesCmd::List {
            status,
            since,
            limit,
        } => list(&settings, &status, since, limit).await,
        DeliveriesCmd::Retry { id } => retry(&settings, &id).await,
    }
}

async fn list(
    settings: &Settings,
    wanted: &str,
    since: std::time::Duration,
    limit: usize,
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        status::ALL.contains(&wanted),
        "--status {wanted:?} is not a status: use one of {}",
        status::ALL.join(", ")
    );
    let since = clock::now() - chrono::Duration::from_std(since).context("--since is too long")?;
    let db = open_db(settings).await?;
    let rows = deliveries::in_status(&db, wanted, since, limit.max(1)).await?;
    for row in &rows {
        println!("{}", line(row));
    }
    eprintln!("{} {wanted} deliveries since {since}", rows.len());
    Ok(ExitCode::SUCCESS)
}

fn line(row: &DeliveryRow) -> serde_json::Value {
    serde_json::json!({
        "id": row.delivery_id,
        "notificationId": row.notification_id,
        "recipient": row.recipient,
        "category": row.category,
        "channel": row.channel,
        "status": row.status,
        "attempts": row.attempts,
        "dueAt": row.due_at,
        "reason": row.reason,
        "lastError": row.last_error,
        "providerId": row.provider_id,
        "updatedAt": row.updated_at,
    })
}

async fn retry(settings: &Settings, id: &str) -> anyhow::Result<ExitCode> {
    let id = DeliveryId::parse(id).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (engine, stop, appender) = start_engine(settings).await?;
    let row = deliveries::by_id(engine.db(), id).await?;
    let outcome = match row {
        Some(row) => {
            let command = Command::RecordDelivery(RecordDelivery {
                delivery: row.reference()?,
                step: Step::Retry,
                at: clock::now(),
            });
            Some(engine.execute(command, cli_metadata()).await)
        }
        None => None,
    };
    stop.cancel();
    let _ = appender.await;
    match outcome {
        None => anyhow::bail!("delivery {id} not found"),
        Some(Err(e)) => anyhow::bail!("{e}"),
        Some(Ok(_)) => {
            println!("delivery {id} is due again");
            Ok(ExitCode::SUCCESS)
        }
    }
}
