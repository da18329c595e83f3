//! The appender: one task per process that takes queued commands in batches and runs each
//! batch in one transaction (one lock, one multi-row insert, one commit), then rings the
//! doorbell once with the new head. A rejected command fails alone; an infrastructure
//! failure fails its whole batch, and nothing of that batch is written.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::handle::{handle, project, BatchCache};
use super::{CommandError, Job};
use crate::eventlog::batch::Batch;
use crate::eventlog::doorbell::{Doorbell, PG_CHANNEL};
use crate::eventlog::Db;
use crate::metrics::Metrics;
use crate::projections;

pub(super) async fn run(
    db: Db,
    mut rx: mpsc::Receiver<Job>,
    doorbell: Doorbell,
    batch_max: usize,
    metrics: Metrics,
    cancel: CancellationToken,
) {
    let drained = CancellationToken::new();
    let notifier = match &db {
        Db::Postgres(pool) => Some(tokio::spawn(notify_other_nodes(
            pool.clone(),
            doorbell.subscribe(),
            drained.clone(),
        ))),
        Db::Sqlite { .. } => None,
    };
    loop {
        let first = tokio::select! {
            // Work already queued goes first, so commands in flight finish before shutdown.
            biased;
            job = rx.recv() => job,
            () = cancel.cancelled() => None,
        };
        let Some(first) = first else { break };
        let jobs = take_batch(first, &mut rx, batch_max);
        process(&db, jobs, &doorbell, &metrics).await;
    }
    rx.close();
    while let Some(first) = rx.recv().await {
        let jobs = take_batch(first, &mut rx, batch_max);
        process(&db, jobs, &doorbell, &metrics).await;
    }
    drained.cancel();
    if let Some(notifier) = notifier {
        // It sends the last head, then ends.
        drop(notifier.await);
    }
    tracing::debug!("appender stopped");
}

fn take_batch(first: Job, rx: &mut mpsc::Receiver<Job>, batch_max: usize) -> Vec<Job> {
    let mut jobs = vec![first];
    while jobs.len() < batch_max {
        match rx.try_recv() {
            Ok(job) => jobs.push(job),
            Err(_) => break,
        }
    }
    jobs
}

async fn process(db: &Db, jobs: Vec<Job>, doorbell: &Doorbell, metrics: &Metrics) {
    let started = std::time::Instant::now();
    let (commands, replies): (Vec<_>, Vec<_>) = jobs
        .into_iter()
        .map(|j| ((j.command, j.metadata), j.reply))
        .unzip();
    let committed = async {
        let mut batch = Batch::open(db.begin_write().await?).await?;
        let mut cache = BatchCache::default();
        let mut results = Vec::with_capacity(commands.len());
        for (command, metadata) in commands {
            results.push(handle(&mut batch, &mut cache, *command, metadata).await?);
        }
        project(&mut batch).await?;
        let appended = batch.len();
        if appended > 0 {
            let head = batch.head();
            projections::record_position(batch.tx(), head).await?;
        }
        let (head, events) = batch.commit().await?;
        anyhow::Ok((results, head, events))
    }
    .await;

    match committed {
        Ok((results, head, events)) => {
            let appended = events.len();
            let events = Arc::new(events);
            if appended > 0 {
                doorbell.ring_with(head, Arc::clone(&events));
                metrics.head(head);
            }
            metrics.batch(results.len(), appended, started.elapsed().as_secs_f64());
            tracing::trace!(
                commands = results.len(),
                events = appended,
                head,
                "batch committed"
            );
            // One result per command, in order. A caller that stopped waiting is fine: its
            // command is committed regardless.
            for (reply, result) in replies.into_iter().zip(results) {
                drop(reply.send(result.map(|decided| decided.outcome(&events))));
            }
        }
        Err(error) => {
            tracing::error!(
                error = format!("{error:#}"),
                commands = replies.len(),
                "append batch failed; nothing of it was written"
            );
            let failed = || {
                if crate::eventlog::db::is_unreachable(&error) {
                    CommandError::Unavailable
                } else {
                    CommandError::Internal
                }
            };
            for reply in replies {
                drop(reply.send(Err(failed())));
            }
        }
    }
}

/// Tells other nodes of each new head with a `NOTIFY`, after commit and outside the append
/// transaction, beside the appender rather than in its way: the next batch does not wait for
/// it, and heads that arrive while one is being sent are coalesced into the newest. Ends once
/// `drained` fires (the appender has committed its last batch), after sending the last head.
async fn notify_other_nodes(
    pool: sqlx::PgPool,
    mut head: watch::Receiver<i64>,
    drained: CancellationToken,
) {
    loop {
        let stopping = tokio::select! {
            changed = head.changed() => changed.is_err(),
            () = drained.cancelled() => true,
        };
        if stopping && !head.has_changed().unwrap_or(false) {
            return;
        }
        let newest = *head.borrow_and_update();
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(PG_CHANNEL)
            .bind(newest.to_string())
            .execute(&pool)
            .await;
        if let Err(error) = sent {
            // Other nodes fall back to polling; the append itself is committed.
            tracing::warn!(%error, "failed to notify other nodes of the new head");
        }
        if stopping {
            return;
        }
    }
}
