//! Moving a log between stores: `belfry export` writes every event as one NDJSON line
//! (positions and ids kept); `belfry import` loads such a file into an empty store in one
//! transaction and rebuilds the projections.

use std::io::{BufRead, Write};

use anyhow::Context;

use crate::eventlog::{rows_in, Db, EventLog, RecordedEvent};
use crate::projections::replay::{self, Progress};
use crate::projections::Projection;

/// Writes the whole log to `out`, one event per line. Returns the number of events.
pub async fn export(db: &Db, out: &mut impl Write) -> anyhow::Result<i64> {
    let log = EventLog::new(db.clone());
    let head = log.head().await?;
    let mut position = 0;
    while position < head {
        let page = log.read_after(position, 5_000).await?;
        let Some(last) = page.last() else { break };
        position = last.position;
        for event in page.iter().filter(|e| e.position <= head) {
            serde_json::to_writer(&mut *out, event).context("Failed to write an event")?;
            out.write_all(b"\n").context("Failed to write an event")?;
        }
    }
    out.flush().context("Failed to flush the export")?;
    Ok(head.min(position))
}

/// Loads an export into an empty store and rebuilds every projection, reporting the
/// rebuild's progress to `on_progress`. All or nothing: the events are written in one
/// transaction, after every line has been checked.
pub async fn import(
    db: &Db,
    input: impl BufRead,
    on_progress: impl FnMut(Progress) + Send,
) -> anyhow::Result<i64> {
    let mut events: Vec<RecordedEvent> = Vec::new();
    for (n, line) in input.lines().enumerate() {
        let line = line.context("Failed to read the import")?;
        if line.trim().is_empty() {
            continue;
        }
        let event: RecordedEvent = serde_json::from_str(&line)
            .with_context(|| format!("line {} is not an exported event", n + 1))?;
        // Every value is parsed as the API parses it, so nothing invalid reaches the store.
        event
            .decode()
            .with_context(|| format!("line {} holds an invalid event", n + 1))?;
        let expected = events.len() as i64 + 1;
        anyhow::ensure!(
            event.position == expected,
            "line {} has position {} where {expected} was expected: an export is gap-free and in order",
            n + 1,
            event.position
        );
        events.push(event);
    }
    let mut tx = db.begin_write().await?;
    let head = rows_in::head_in(&mut tx).await?;
    anyhow::ensure!(
        head == 0,
        "the target store already holds {head} events; import needs an empty one"
    );
    rows_in::insert_in(&mut tx, &events).await?;
    tx.commit().await?;
    replay::rebuild(db, &Projection::ALL, on_progress).await?;
    Ok(events.len() as i64)
}
