//! The timekeeper: publishes scheduled sends when their time comes on the injected clock.
//! Every node runs one; the appender serializes their publications, and publishing one that
//! is published (or cancelled) already changes nothing, so two nodes never send one twice.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::domain::schedule::PublishScheduled;
use crate::domain::Command;
use crate::engine::Engine;
use crate::eventlog::Metadata;
use crate::projections::scheduled_sends;

/// Scheduled sends published at once; more wait for the next round.
const ROUND: i64 = 64;

pub struct Timekeeper {
    pub engine: Engine,
    pub clock: Arc<dyn Clock>,
    /// Rung when another node appends (Postgres `NOTIFY`): it may have scheduled a send due
    /// soon, or cancelled one.
    pub remote: Arc<Notify>,
    /// The longest it sleeps when nothing wakes it.
    pub idle_check: Duration,
    /// Names this node in the facts it records.
    pub node: String,
}

impl Timekeeper {
    /// Runs until `stop` fires: publishes what is due, then sleeps until the next send's
    /// time, a new append, or `idle_check`.
    pub async fn run(self, stop: CancellationToken) {
        let mut doorbell = self.engine.doorbell();
        let idle = chrono::Duration::from_std(self.idle_check)
            .unwrap_or_else(|_| chrono::Duration::seconds(5));
        loop {
            if stop.is_cancelled() {
                return;
            }
            let now = self.clock.now();
            let next = match scheduled_sends::due(self.engine.db(), now, ROUND).await {
                Ok((due, next)) if !due.is_empty() => {
                    let full = due.len() as i64 == ROUND;
                    self.publish(due, now).await;
                    if full {
                        continue;
                    }
                    next
                }
                Ok((_, next)) => next,
                Err(e) => {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "could not read the scheduled sends"
                    );
                    None
                }
            };
            let wake = next.map_or(now + idle, |next| next.min(now + idle));
            tokio::select! {
                () = stop.cancelled() => return,
                _ = doorbell.changed() => {}
                () = self.remote.notified() => {}
                () = self.clock.sleep_until(wake) => {}
                // Never longer than `idle_check` in real time, whatever the clock does.
                () = tokio::time::sleep(self.idle_check) => {}
            }
        }
    }

    /// Publishes `due` together, so they share appender batches.
    async fn publish(
        &self,
        due: Vec<crate::domain::schedule::ScheduleId>,
        now: chrono::DateTime<chrono::Utc>,
    ) {
        let metadata = Metadata {
            actor: Some(format!("timekeeper:{}", self.node)),
            ..Metadata::default()
        };
        let publications = due.into_iter().map(|id| {
            let command = Command::PublishScheduled(PublishScheduled { id, at: now });
            let metadata = metadata.clone();
            async move {
                if let Err(e) = self.engine.execute(command, metadata).await {
                    tracing::warn!(schedule = %id, error = ?e, "could not publish a scheduled send; it is tried again");
                }
            }
        });
        futures_util::future::join_all(publications).await;
    }
}
