//! The Tailer: follows the log from the position the hub starts at and publishes each event's
//! inbox change. It wakes on this process's doorbell, on `NOTIFY belfry_head` from other nodes
//! (Postgres, through `remote`: see [`crate::eventlog::doorbell::listen`]), and on a polling timer in case a notification was lost. A batch this process
//! committed right after the tailer's position is taken as the appender handed it over;
//! anything else (other nodes' events, a batch it fell behind on) is read from the log.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use super::{change, LiveHub};
use crate::eventlog::doorbell::Committed;
use crate::eventlog::{Db, EventLog};

/// Events read per round; a larger backlog is taken in several rounds.
const PAGE: i64 = 1_000;

/// Runs until `cancel` fires.
pub async fn run(
    db: Db,
    hub: LiveHub,
    mut doorbell: watch::Receiver<i64>,
    committed: Committed,
    remote: Arc<Notify>,
    poll: Duration,
    cancel: CancellationToken,
) {
    let log = EventLog::new(db);
    let mut position = hub.position();
    let mut doorbell_open = true;
    hub.set_running(true);
    // Caught up: wait for a ring, a remote NOTIFY or the poll timer before looking again.
    let mut caught_up = false;
    loop {
        if caught_up {
            tokio::select! {
                () = cancel.cancelled() => break,
                changed = doorbell.changed(), if doorbell_open => {
                    // The engine stopped ringing (shutdown): keep polling until cancelled.
                    doorbell_open = changed.is_ok();
                }
                () = remote.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
        let (events, handed_over) = match committed.after(position) {
            Some(batch) => (Ok(batch), true),
            None => tokio::select! {
                () = cancel.cancelled() => break,
                read = log.read_after(position, PAGE) => (read.map(Arc::new), false),
            },
        };
        let events = match events {
            Ok(events) => {
                hub.set_running(true);
                events
            }
            Err(error) => {
                hub.set_running(false);
                tracing::warn!(
                    error = format!("{error:#}"),
                    "live tailer could not read the log; retrying"
                );
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(poll) => { caught_up = false; continue },
                }
            }
        };
        let Some(last) = events.last().map(|e| e.position) else {
            caught_up = true;
            continue;
        };
        // The batch this process just committed is the newest it knows of; anything after it
        // rings or notifies, so there is no need to look in the log before waiting.
        caught_up = handed_over;
        let mut changes = Vec::with_capacity(events.len());
        for event in events.iter() {
            match change::derive(event) {
                Ok(Some(c)) => changes.push(c),
                Ok(None) => {}
                // The projections refuse such an event too; live delivery skips it rather
                // than stall every subscriber behind it.
                Err(error) => tracing::error!(
                    position = event.position,
                    error = format!("{error:#}"),
                    "live tailer skipped an event it cannot decode"
                ),
            }
        }
        hub.publish(last, changes);
        position = last;
    }
    hub.set_running(false);
    tracing::debug!("live tailer stopped");
}
