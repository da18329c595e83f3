//! The timekeeper: publishes scheduled sends when their time comes on the injected clock,
//! closes people's digests at theirs, and takes notifications out of the inbox when they
//! expire (their send's `expiresAt`, or the server's retention). Every node runs one; the
//! appender serializes what they record, and publishing, closing or expiring something a
//! second time changes nothing, so two nodes never do any of it twice.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::domain::digest::{CloseDigest, DigestId};
use crate::domain::event::ExpireReason;
use crate::domain::notification::ExpireNotification;
use crate::domain::schedule::{PublishScheduled, ScheduleId};
use crate::domain::{Command, NotificationId};
use crate::engine::Engine;
use crate::eventlog::Metadata;
use crate::projections::read::{self, Retention};
use crate::projections::scheduled_sends;

/// Scheduled sends published, and notifications of each kind expired, at once; more wait
/// for the next round.
const ROUND: i64 = 64;

/// Digests closed at once: many people share a closing time (daily at 09:00), and each
/// close is two small events.
const DIGEST_ROUND: usize = 256;

/// The least time between two looks that an append (not the clock) asked for: under load
/// the log moves hundreds of times a second, and each look is a few queries. What an append
/// brings is due later (a send scheduled, an expiry), so it only moves the next wake-up.
const APPENDS_GAP: Duration = Duration::from_millis(200);

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
    /// The server's retention policy.
    pub retention: Retention,
}

impl Timekeeper {
    /// Runs until `stop` fires: publishes and expires what is due, then sleeps until the next
    /// send's or expiry's time, a new append, or `idle_check`.
    pub async fn run(self, stop: CancellationToken) {
        let mut doorbell = self.engine.doorbell();
        let idle = chrono::Duration::from_std(self.idle_check)
            .unwrap_or_else(|_| chrono::Duration::seconds(5));
        loop {
            if stop.is_cancelled() {
                return;
            }
            let looked = tokio::time::Instant::now();
            let now = self.clock.now();
            let db = self.engine.db();
            let (mut full, mut wake) = (false, now + idle);
            match scheduled_sends::due(db, now, ROUND).await {
                Ok((due, next)) => {
                    full |= due.len() as i64 == ROUND;
                    self.publish(due, now).await;
                    wake = next.map_or(wake, |next| next.min(wake));
                }
                Err(e) => {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "could not read the scheduled sends"
                    );
                }
            }
            match read::due_digests(db, now, DIGEST_ROUND).await {
                Ok((due, next, more)) => {
                    full |= more;
                    self.close(due, now).await;
                    wake = next.map_or(wake, |next| next.min(wake));
                }
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), "could not read the digests due");
                }
            }
            match read::due_expiries(db, now, self.retention, ROUND).await {
                Ok((due, next)) => {
                    full |= due.len() as i64 >= ROUND;
                    self.expire(due, now).await;
                    wake = next.map_or(wake, |next| next.min(wake));
                }
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), "could not read what expires");
                }
            }
            if full {
                continue;
            }
            let appended = tokio::select! {
                () = stop.cancelled() => return,
                _ = doorbell.changed() => true,
                () = self.remote.notified() => true,
                () = self.clock.sleep_until(wake) => false,
                // Never longer than `idle_check` in real time, whatever the clock does.
                () = tokio::time::sleep(self.idle_check) => false,
            };
            if appended {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep_until(looked + APPENDS_GAP) => {}
                }
            }
        }
    }

    fn metadata(&self) -> Metadata {
        Metadata {
            actor: Some(format!("timekeeper:{}", self.node)),
            ..Metadata::default()
        }
    }

    /// Publishes `due` together, so they share appender batches.
    async fn publish(&self, due: Vec<ScheduleId>, now: DateTime<Utc>) {
        let publications = due.into_iter().map(|id| {
            let command = Command::PublishScheduled(PublishScheduled { id, at: now });
            async move {
                if let Err(e) = self.engine.execute(command, self.metadata()).await {
                    tracing::warn!(schedule = %id, error = ?e, "could not publish a scheduled send; it is tried again");
                }
            }
        });
        futures_util::future::join_all(publications).await;
    }

    /// Closes `due` together, so they share appender batches.
    async fn close(&self, due: Vec<DigestId>, now: DateTime<Utc>) {
        let closes = due.into_iter().map(|digest_id| {
            let command = Command::CloseDigest(CloseDigest { digest_id, at: now });
            async move {
                if let Err(e) = self.engine.execute(command, self.metadata()).await {
                    tracing::warn!(digest = %digest_id, error = ?e, "could not close a digest; it is tried again");
                }
            }
        });
        futures_util::future::join_all(closes).await;
    }

    /// Expires `due` together, so they share appender batches.
    async fn expire(&self, mut due: Vec<(NotificationId, ExpireReason)>, now: DateTime<Utc>) {
        // Found by two scans (its `expiresAt` and a retention): expired once, for the first.
        let mut seen = std::collections::HashSet::new();
        due.retain(|(id, _)| seen.insert(*id));
        let expiries = due.into_iter().map(|(id, reason)| {
            let command = Command::Expire(ExpireNotification {
                id,
                reason,
                at: now,
            });
            async move {
                if let Err(e) = self.engine.execute(command, self.metadata()).await {
                    tracing::warn!(notification = %id, error = ?e, "could not expire a notification; it is tried again");
                }
            }
        });
        futures_util::future::join_all(expiries).await;
    }
}
