//! The doorbell: after each commit the appender rings it once with the new head position.
//! In-process it is a watch channel (readers see the latest head, never a queue of rings);
//! on Postgres a task beside the appender sends `NOTIFY` with the newest head for other nodes.
//! With the ring comes the batch just committed ([`Committed`]), so the live tailer of the
//! same process need not read back from the database what the appender has in hand.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use super::RecordedEvent;

/// The Postgres channel other nodes `LISTEN` on; the payload is the new head position.
pub const PG_CHANNEL: &str = "belfry_head";

/// Rings with the newest head position.
#[derive(Debug, Clone)]
pub struct Doorbell {
    tx: watch::Sender<i64>,
    committed: Committed,
}

/// The events of the batch this process committed last, for readers that follow the log.
#[derive(Debug, Clone, Default)]
pub struct Committed {
    last: Arc<Mutex<Option<Arc<Vec<RecordedEvent>>>>>,
}

impl Committed {
    /// Larger batches (a broadcast) are not held: readers take them from the log in pages.
    pub const MAX_HELD: usize = 4_096;

    /// The last committed batch if it starts right after `position`, so that together with
    /// everything up to `position` it leaves no gap; `None` sends the reader to the log.
    pub fn after(&self, position: i64) -> Option<Arc<Vec<RecordedEvent>>> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.as_ref()
            .filter(|events| events.first().map(|e| e.position) == Some(position + 1))
            .cloned()
    }

    fn hold(&self, events: Arc<Vec<RecordedEvent>>) {
        let held = (events.len() <= Self::MAX_HELD).then_some(events);
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = held;
    }
}

impl Doorbell {
    pub fn new(head: i64) -> Self {
        Self {
            tx: watch::channel(head).0,
            committed: Committed::default(),
        }
    }

    /// Holds `events` (just committed, in position order, ending at `head`) for
    /// [`Committed::after`], then rings with `head`.
    pub fn ring_with(&self, head: i64, events: Arc<Vec<RecordedEvent>>) {
        self.committed.hold(events);
        self.ring(head);
    }

    /// The batches this doorbell is rung with.
    pub fn committed(&self) -> Committed {
        self.committed.clone()
    }

    /// Announces a new head; a lower or equal head (a stale ring) is ignored.
    pub fn ring(&self, head: i64) {
        self.tx.send_if_modified(|current| {
            if head > *current {
                *current = head;
                true
            } else {
                false
            }
        });
    }

    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.tx.subscribe()
    }

    pub fn head(&self) -> i64 {
        *self.tx.borrow()
    }
}

/// Forwards `NOTIFY belfry_head` from other nodes to each of `wakes` (the live tailer, the
/// delivery workers); reconnects when the listening connection drops (their polling covers
/// the gap), and wakes them once after a reconnect in case a notification was missed.
pub async fn listen(
    pool: sqlx::PgPool,
    wakes: Vec<Arc<Notify>>,
    retry: Duration,
    cancel: CancellationToken,
) {
    let wake = || wakes.iter().for_each(|w| w.notify_one());
    loop {
        let listener = async {
            let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
            listener.listen(PG_CHANNEL).await?;
            loop {
                listener.recv().await?;
                wake();
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            result = listener => {
                if let Err(error) = result {
                    tracing::warn!(%error, "lost the Postgres LISTEN connection; polling until it is back");
                }
            }
        }
        wake();
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(retry) => {}
        }
    }
}
