//! The LiveHub: per-user fan-out of live changes through bounded queues. Publishing never
//! waits: a subscriber whose queue is full is dropped and told so, and resumes from its last
//! cursor without losing anything (the read model has it all).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

use super::UserChange;
use crate::domain::UserId;
use crate::metrics::Metrics;

struct Slot {
    id: u64,
    tx: mpsc::Sender<Arc<UserChange>>,
    overflowed: Arc<AtomicBool>,
}

struct State {
    /// The newest position published; a new feed receives everything after it.
    position: i64,
    next_id: u64,
    users: HashMap<UserId, Vec<Slot>>,
}

struct Shared {
    // A std Mutex: it is held only for map updates and non-blocking `try_send`s, never across
    // an `.await`, so an async mutex would only add overhead.
    state: Mutex<State>,
    queue: usize,
    metrics: Metrics,
    /// Set by the tailer while it follows the log successfully (for `/readyz`).
    running: AtomicBool,
}

/// Fans live changes out to subscribers; cheap to clone.
#[derive(Clone)]
pub struct LiveHub(Arc<Shared>);

impl LiveHub {
    /// A hub whose tailer starts after `position`; `queue` changes buffer per subscriber.
    pub fn new(position: i64, queue: usize, metrics: Metrics) -> Self {
        metrics.tailer_position(position);
        LiveHub(Arc::new(Shared {
            state: Mutex::new(State {
                position,
                next_id: 0,
                users: HashMap::new(),
            }),
            queue: queue.max(1),
            metrics,
            running: AtomicBool::new(false),
        }))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the map half-updated in a way that
        // matters (each step is a single insert or retain), so a poisoned lock is reused.
        self.0.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The newest position published.
    pub fn position(&self) -> i64 {
        self.state().position
    }

    /// Registers a subscriber for `user`. It receives every change published after
    /// [`Feed::registered_at`].
    pub fn subscribe(&self, user: &UserId) -> Feed {
        let (tx, rx) = mpsc::channel(self.0.queue);
        let overflowed = Arc::new(AtomicBool::new(false));
        let mut state = self.state();
        let id = state.next_id;
        state.next_id += 1;
        let registered_at = state.position;
        state.users.entry(user.clone()).or_default().push(Slot {
            id,
            tx,
            overflowed: overflowed.clone(),
        });
        drop(state);
        self.0.metrics.subscribers(1);
        Feed {
            rx,
            overflowed,
            registered_at,
            _guard: Guard {
                hub: self.clone(),
                user: user.clone(),
                id,
            },
        }
    }

    /// Delivers the changes of the events up to `position` (in log order).
    pub fn publish(&self, position: i64, changes: Vec<UserChange>) {
        let mut dropped = 0;
        let mut state = self.state();
        for change in changes {
            let Some(slots) = state.users.get_mut(&change.user) else {
                continue;
            };
            let change = Arc::new(change);
            slots.retain(|slot| match slot.tx.try_send(change.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    slot.overflowed.store(true, Ordering::Release);
                    dropped += 1;
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
            if slots.is_empty() {
                state.users.remove(&change.user);
            }
        }
        state.position = state.position.max(position);
        drop(state);
        for _ in 0..dropped {
            self.0.metrics.dropped_subscriber();
        }
        self.0.metrics.tailer_position(position);
    }

    /// Whether the tailer is following the log (it clears this on read failures and on exit).
    pub fn is_running(&self) -> bool {
        self.0.running.load(Ordering::Acquire)
    }

    pub(crate) fn set_running(&self, running: bool) {
        self.0.running.store(running, Ordering::Release);
    }

    /// Subscribers currently registered.
    pub fn subscriber_count(&self) -> usize {
        self.state().users.values().map(Vec::len).sum()
    }
}

struct Guard {
    hub: LiveHub,
    user: UserId,
    id: u64,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut state = self.hub.state();
        if let Some(slots) = state.users.get_mut(&self.user) {
            slots.retain(|s| s.id != self.id);
            if slots.is_empty() {
                state.users.remove(&self.user);
            }
        }
        drop(state);
        self.hub.0.metrics.subscribers(-1);
    }
}

/// What a feed yields next.
#[derive(Debug)]
pub enum FeedItem {
    Change(Arc<UserChange>),
    /// The subscriber fell more than the queue size behind and was dropped.
    Overflowed,
    /// The hub went away (shutdown).
    Closed,
}

/// One subscriber's queue of live changes. Dropping it unregisters.
pub struct Feed {
    rx: mpsc::Receiver<Arc<UserChange>>,
    overflowed: Arc<AtomicBool>,
    registered_at: i64,
    /// Unregisters the feed when dropped.
    _guard: Guard,
}

impl Feed {
    /// The hub position when this feed registered: it receives every change after it.
    pub fn registered_at(&self) -> i64 {
        self.registered_at
    }

    pub async fn next(&mut self) -> FeedItem {
        match self.rx.recv().await {
            Some(change) => FeedItem::Change(change),
            None if self.overflowed.load(Ordering::Acquire) => FeedItem::Overflowed,
            None => FeedItem::Closed,
        }
    }

    /// How many changes this feed buffers before it counts as too slow.
    pub fn capacity(&self) -> usize {
        self.rx.max_capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::ChangeKind;

    fn change(user: &str, position: i64) -> UserChange {
        UserChange {
            user: UserId::parse(user).unwrap(),
            position,
            kind: ChangeKind::Changed(Vec::new()),
            delta: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_feed_receives_only_its_users_changes_after_it_registered() {
        let hub = LiveHub::new(5, 8, Metrics::new());
        let mut ann = hub.subscribe(&UserId::parse("ann").unwrap());
        assert_eq!(ann.registered_at(), 5);
        hub.publish(7, vec![change("bob", 6), change("ann", 7)]);
        match ann.next().await {
            FeedItem::Change(c) => assert_eq!(c.position, 7),
            other => panic!("expected a change, got {other:?}"),
        }
        assert_eq!(hub.position(), 7);
    }

    #[tokio::test]
    async fn a_full_queue_drops_the_subscriber_and_says_so() {
        let metrics = Metrics::new();
        let hub = LiveHub::new(0, 2, metrics.clone());
        let mut ann = hub.subscribe(&UserId::parse("ann").unwrap());
        hub.publish(3, (1..=3).map(|p| change("ann", p)).collect());
        assert_eq!(hub.subscriber_count(), 0);
        assert!(matches!(ann.next().await, FeedItem::Change(_)));
        assert!(matches!(ann.next().await, FeedItem::Change(_)));
        assert!(matches!(ann.next().await, FeedItem::Overflowed));
        assert!(metrics
            .render()
            .contains("belfry_live_dropped_slow_subscribers_total 1"));
    }

    #[tokio::test]
    async fn dropping_a_feed_unregisters_it() {
        let hub = LiveHub::new(0, 2, Metrics::new());
        let feed = hub.subscribe(&UserId::parse("ann").unwrap());
        assert_eq!(hub.subscriber_count(), 1);
        drop(feed);
        assert_eq!(hub.subscriber_count(), 0);
    }
}
