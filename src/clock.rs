//! The clock, one for the whole crate: the time commands, events and keys carry, at the
//! precision both backends keep (microseconds), and the ids that are ordered by it. The domain
//! reads no clock; it is handed the time and the ids.

use chrono::{DateTime, SubsecRound, Utc};
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
