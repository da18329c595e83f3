//! The clock, one for the whole crate: the time commands, events and keys carry, at the
//! precision both backends keep (microseconds), and the ids that are ordered by it. The domain
//! reads no clock; it is handed the time and the ids.

use chrono::{DateTime, SubsecRound, Utc};
use futures_util::future::BoxFuture;
use uuid::Uuid;

use crate::domain::NotificationId;

/// The time now, truncated to microseconds so a value read back from either backend equals
/// the one written.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A new time-ordered id (UUIDv7: index inserts stay local).
pub fn ordered_id() -> Uuid {
    Uuid::now_v7()
}

/// A new notification id, ordered by the time it was made.
pub fn notification_id() -> NotificationId {
    NotificationId::from_uuid(ordered_id())
}

/// The time, for whatever waits on it: the delivery workers read due times and sleep until
/// the next one through this, so tests can drive time instead of sleeping.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;

    /// Resolves once [`Clock::now`] has reached `at`.
    fn sleep_until(&self, at: DateTime<Utc>) -> BoxFuture<'_, ()>;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        now()
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> BoxFuture<'_, ()> {
        let wait = (at - now()).to_std().unwrap_or_default();
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A clock that moves only when told to, for tests.
#[derive(Debug)]
pub struct ManualClock {
    now: std::sync::Mutex<DateTime<Utc>>,
    moved: tokio::sync::Notify,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: std::sync::Mutex::new(start.trunc_subsecs(6)),
            moved: tokio::sync::Notify::new(),
        }
    }

    /// Moves the clock forward by `by`, waking whatever sleeps on it.
    pub fn advance(&self, by: chrono::Duration) {
        {
            let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
            *now += by;
        }
        self.moved.notify_waiters();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            loop {
                let moved = self.moved.notified();
                if self.now() >= at {
                    return;
                }
                moved.await;
            }
        })
    }
}
