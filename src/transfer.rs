//! Moving a log between stores: `belfry export` writes every event as one NDJSON line
//! (positions and ids kept), then every entry of the recipient directory as a line of its own
//! (`{"recipient": {...}}`), which lives beside the log, not in it; `belfry import` loads
//! such a file (or an older one of events alone) into an empty store in one transaction and
//! rebuilds the projections.

use std::io::{BufRead, Write};

use anyhow::Context;

use crate::eventlog::{rows_in, Db, EventLog, RecordedEvent};
use crate::projections::replay::{self, Progress};
use crate::projections::Projection;
use crate::recipients::{self, Recipient};

/// An export line that carries one entry of the recipient directory.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RecipientLine {
    recipient: Recipient,
}

/// Directory entries read per page while exporting.
const RECIPIENT_PAGE: i64 = 1_000;

/// Writes the whole log to `out`, one event per line, then the recipient directory, one entry
/// per line. Returns the number of events.
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
    let mut after = None;
    loop {
        let page = recipients::page_after(db, after.as_ref(), RECIPIENT_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.user_id.clone());
        for recipient in page {
            serde_json::to_writer(&mut *out, &RecipientLine { recipient })
                .context("Failed to write a recipient")?;
            out.write_all(b"\n")
                .context("Failed to write a recipient")?;
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
    let mut directory: Vec<Recipient> = Vec::new();
    let mut named = std::collections::HashSet::new();
    for (n, line) in input.lines().enumerate() {
        let line = line.context("Failed to read the import")?;
        if line.trim().is_empty() {
            continue;
        }
        let event: RecordedEvent = match serde_json::from_str(&line) {
            Ok(event) => event,
            // Not an event: a directory entry, or neither (reported as a bad event, as before).
            Err(not_event) => {
                let recipient = recipient_line(&line, n + 1).map_err(|e| {
                    e.unwrap_or_else(|| {
                        anyhow::Error::new(not_event)
                            .context(format!("line {} is not an exported event", n + 1))
                    })
                })?;
                anyhow::ensure!(
                    named.insert(recipient.user_id.clone()),
                    "line {} repeats the recipient {}",
                    n + 1,
                    recipient.user_id
                );
                directory.push(recipient);
                continue;
            }
        };
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
    recipients::import_in(&mut tx, &directory).await?;
    tx.commit().await?;
    replay::rebuild(db, &Projection::ALL, on_progress).await?;
    Ok(events.len() as i64)
}

/// The directory entry on line `n`; `Err(None)` when the line is not a directory entry at all,
/// `Err(Some(_))` when it is one with an invalid value.
fn recipient_line(line: &str, n: usize) -> Result<Recipient, Option<anyhow::Error>> {
    let value: serde_json::Value = serde_json::from_str(line).map_err(|_| None)?;
    if value.get("recipient").is_none() {
        return Err(None);
    }
    serde_json::from_value::<RecipientLine>(value)
        .map(|l| l.recipient)
        .map_err(|e| {
            Some(anyhow::Error::new(e).context(format!("line {n} holds an invalid recipient")))
        })
}
