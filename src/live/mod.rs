//! Live delivery. The [`tailer`] follows the log (woken by the doorbell, by Postgres NOTIFY
//! from other nodes, or by polling) and turns events into per-user [`change::UserChange`]s;
//! the [`hub::LiveHub`] fans them out to each user's subscribers through bounded queues.
//!
//! A subscriber registers with the hub first and then reads a snapshot of the read model
//! (head position, counts, and with a cursor everything changed after it). Live changes at or
//! below the snapshot head are already in the snapshot and are skipped, so the hand-over has
//! no gap and no duplicate.

pub mod change;
pub mod hub;
pub mod tailer;

pub use change::{ChangeKind, LiveCounts, NotificationState, UserChange};
pub use hub::{Feed, LiveHub};
