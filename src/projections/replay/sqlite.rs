//! Replay's build on SQLite: one writing connection, since SQLite has one writer and two
//! would only take turns (decision 0025). Each page is written while the next one is read.

use super::scratch::{self, scratch_tx, Scratch};
use super::{Build, Reporter, HELD_COUNTERS, PAGE};
use crate::eventlog::{Db, RecordedEvent};
use crate::projections::Fold;

/// Folds the log up to the build's head into the scratch tables, counter sums included, then
/// builds the secondary indexes. Returns the last position folded.
pub(super) async fn build(
    build: &Build<'_>,
    fold: &mut Fold<'_>,
    progress: &mut Reporter<'_>,
) -> anyhow::Result<i64> {
    let position = fold_pages(build, fold, progress).await?;
    build_indexes(build.db, build.scratch).await?;
    Ok(position)
}

/// Each page is applied in one transaction while the next one is read, on another
/// connection. The counter sums are written once enough are held, and with the last page.
/// Returns the last position folded.
async fn fold_pages(
    build: &Build<'_>,
    fold: &mut Fold<'_>,
    progress: &mut Reporter<'_>,
) -> anyhow::Result<i64> {
    let mut position = 0;
    let mut page = read_after(build, 0).await?;
    while let Some(last) = page.last().map(|e| e.position) {
        let fold = &mut *fold;
        let write = async {
            let mut tx = scratch_tx(build.db).await?;
            fold.apply(&mut tx, page).await?;
            if fold.pending() >= HELD_COUNTERS || last >= build.head {
                fold.flush(&mut tx).await?;
            }
            tx.commit().await
        };
        let (next, written) = tokio::join!(read_after(build, last), write);
        written?;
        progress.folded(last);
        position = last;
        page = next?;
    }
    Ok(position)
}

/// The page after `position`, or none once the build's head is reached.
async fn read_after(build: &Build<'_>, position: i64) -> anyhow::Result<Vec<RecordedEvent>> {
    if position < build.head {
        build.log.read_after(position, PAGE).await
    } else {
        Ok(Vec::new())
    }
}

/// Every secondary index, one after another, in one transaction.
async fn build_indexes(db: &Db, scratch: &Scratch) -> anyhow::Result<()> {
    let mut tx = db.begin_plain().await?;
    for (table, sql) in scratch.index_statements() {
        scratch::index(&mut tx, table, sql).await?;
    }
    tx.commit().await
}
