//! Replay's build on Postgres (decision 0025): three steps at once, each on its own pooled
//! connection, joined by queues of at most [`QUEUED_PAGES`] pages; then the counter sums still
//! held and every secondary index at once, each on its own connection.

use anyhow::Context;
use futures_util::future::try_join_all;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::scratch::{self, scratch_tx, Scratch};
use super::{Build, Reporter, HELD_COUNTERS, PAGE};
use crate::domain::event::Event;
use crate::eventlog::{Db, RecordedEvent, WriteTx};
use crate::projections::{self, Fold};

/// How full the build's inserts leave each page of the scratch inbox, in percent. The rest is
/// room for new versions of the rows the build's changes update. The build's only inbox index
/// is the primary key, which a change never alters, so with room on the page a change is a
/// heap-only update: no new index entry, no other page touched. About twice as fast as an
/// update that must move its row (decision 0026).
const BUILD_FILLFACTOR: u32 = 80;

/// Pages read or written ahead of the next step.
const QUEUED_PAGES: usize = 4;

/// A page's last position, and its events with the domain event of each (types the engine
/// does not know left out).
type Decoded = (i64, Vec<(RecordedEvent, Event)>);

/// A page being decoded on a blocking thread.
type Decoding = JoinHandle<anyhow::Result<Decoded>>;

/// Folds the log up to the build's head into the scratch tables, then writes the counter sums
/// still held and builds the secondary indexes. Returns the last position folded.
pub(super) async fn build(
    build: &Build<'_>,
    fold: &mut Fold<'_>,
    progress: &mut Reporter<'_>,
) -> anyhow::Result<i64> {
    let position = fold_pages(build, fold, progress).await?;
    fill_pages_again(build.db, build.scratch).await?;
    flush_and_build_indexes(build.db, build.scratch, fold).await?;
    Ok(position)
}

/// Leaves room on the scratch inbox's pages for the changes the build writes (decision 0026).
/// Runs in the transaction that creates the scratch tables.
pub(super) async fn leave_room_for_changes(
    tx: &mut WriteTx,
    scratch: &Scratch,
) -> anyhow::Result<()> {
    for t in scratch.inboxes() {
        let sql = format!(
            "ALTER TABLE {} SET (fillfactor = {BUILD_FILLFACTOR})",
            t.table
        );
        scratch::execute(tx, &sql).await?;
    }
    Ok(())
}

/// The three steps: [`read_pages`], [`insert_rows`] and [`write_changes`]. A change only ever
/// touches a row sent before it, so it finds its row. Returns the last position folded; the
/// counter sums may still be held.
async fn fold_pages(
    build: &Build<'_>,
    fold: &mut Fold<'_>,
    progress: &mut Reporter<'_>,
) -> anyhow::Result<i64> {
    let (decoding_tx, decoding) = mpsc::channel(QUEUED_PAGES);
    let (inserted_tx, inserted) = mpsc::channel(QUEUED_PAGES);
    // A step that fails drops its end of a queue, which stops the others.
    let (read, insert, change) = tokio::join!(
        read_pages(build, decoding_tx),
        insert_rows(build, decoding, inserted_tx),
        write_changes(build.db, fold, inserted, progress),
    );
    let position = change?;
    insert?;
    read?;
    Ok(position)
}

/// Reads page after page up to the build's head and has each decoded on a blocking thread.
async fn read_pages(build: &Build<'_>, decoding: mpsc::Sender<Decoding>) -> anyhow::Result<()> {
    let mut position = 0;
    while position < build.head {
        let rows = build.log.read_rows_after(position, PAGE).await?;
        let Some(last) = rows.last_position()? else {
            break;
        };
        position = last;
        // Rows into events, and events into domain events, off this task's thread, which
        // also drives the two writing steps.
        let decoded = tokio::task::spawn_blocking(move || {
            let page = projections::decode(rows.decode()?)?;
            Ok((last, page))
        });
        if decoding.send(decoded).await.is_err() {
            // The writers stopped; their error is the one to report.
            break;
        }
    }
    Ok(())
}

/// For each decoded page, inserts the inbox rows of its sends and commits, then hands the page
/// on to [`write_changes`].
async fn insert_rows(
    build: &Build<'_>,
    mut decoding: mpsc::Receiver<Decoding>,
    inserted: mpsc::Sender<Decoded>,
) -> anyhow::Result<()> {
    while let Some(decoded) = decoding.recv().await {
        let (last, page) = decoded.await.context("Failed to decode a page")??;
        let mut tx = scratch_tx(build.db).await?;
        projections::insert_sends(&mut tx, &build.scratch.targets, &page).await?;
        tx.commit().await?;
        if inserted.send((last, page)).await.is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// For each page whose rows have committed, writes everything else of it in log order: flag
/// changes, bulk marks, preferences, idempotency keys, and the counter sums once
/// [`HELD_COUNTERS`] keys are held. Pages come in order, so a page's changes run after its own
/// rows and every earlier page's, and after every earlier change. Returns the last position
/// folded.
async fn write_changes(
    db: &Db,
    fold: &mut Fold<'_>,
    mut inserted: mpsc::Receiver<Decoded>,
    progress: &mut Reporter<'_>,
) -> anyhow::Result<i64> {
    let mut position = 0;
    while let Some((last, page)) = inserted.recv().await {
        let mut tx = scratch_tx(db).await?;
        fold.apply_changes(&mut tx, &page).await?;
        if fold.pending() >= HELD_COUNTERS {
            fold.flush(&mut tx).await?;
        }
        tx.commit().await?;
        progress.folded(last);
        position = last;
    }
    Ok(position)
}

/// Resets the scratch inbox's fill factor: rows appended from now on fill their pages, as in
/// a table `ensure` creates.
async fn fill_pages_again(db: &Db, scratch: &Scratch) -> anyhow::Result<()> {
    let mut tx = db.begin_plain().await?;
    for t in scratch.inboxes() {
        let sql = format!("ALTER TABLE {} RESET (fillfactor)", t.table);
        scratch::execute(&mut tx, &sql).await?;
    }
    tx.commit().await
}

/// Writes the counter sums still held and builds each secondary index, all at once, each on
/// its own connection: they write different tables. Each index build has its own
/// `maintenance_work_mem`.
async fn flush_and_build_indexes(
    db: &Db,
    scratch: &Scratch,
    fold: &mut Fold<'_>,
) -> anyhow::Result<()> {
    let flush = async {
        let mut tx = scratch_tx(db).await?;
        fold.flush(&mut tx).await?;
        tx.commit().await
    };
    let indexes = try_join_all(scratch.index_statements().map(|(table, sql)| async move {
        let mut tx = db.begin_plain().await?;
        scratch::execute(&mut tx, "SET LOCAL maintenance_work_mem = '256MB'").await?;
        scratch::index(&mut tx, table, sql).await?;
        tx.commit().await
    }));
    let (flushed, indexed) = tokio::join!(flush, indexes);
    flushed?;
    indexed?;
    Ok(())
}
