//! The doorbell: after each commit the appender rings it once with the new head position.
//! In-process it is a watch channel (readers see the latest head, never a queue of rings);
//! on Postgres the appender also sends one `NOTIFY` per batch, after commit, for other nodes.

use tokio::sync::watch;

/// The Postgres channel other nodes `LISTEN` on; the payload is the new head position.
pub const PG_CHANNEL: &str = "belfry_head";

/// Rings with the newest head position.
#[derive(Debug, Clone)]
pub struct Doorbell {
    tx: watch::Sender<i64>,
}

impl Doorbell {
    pub fn new(head: i64) -> Self {
        Self {
            tx: watch::channel(head).0,
        }
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
