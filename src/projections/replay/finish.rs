//! The end of a replay, under the log lock: fold what was appended since the build's head,
//! then swap the scratch tables in (rebuild), or compare them with the live ones and drop them
//! (verify).

use anyhow::Context;

use super::scratch::{self, Scratch};
use super::{Difference, Mode, Reporter, PAGE};
use crate::eventlog::{rows_in, Db, WriteTx};
use crate::on_tx;
use crate::projections::{status, Fold, Target};

/// What the end of a replay found.
pub(super) struct Finished {
    /// The log head the scratch tables reflect.
    pub(super) head: i64,
    /// Verify only: rows that differ between the live tables and the scratch ones.
    pub(super) differences: Vec<Difference>,
}

/// Under the log lock, folds the events after `position` and swaps the scratch tables in or
/// compares them with the live ones, in one transaction.
pub(super) async fn under_log_lock(
    db: &Db,
    scratch: &Scratch,
    mode: Mode,
    position: i64,
    fold: &mut Fold<'_>,
    progress: &mut Reporter<'_>,
) -> anyhow::Result<Finished> {
    let mut tx = db.begin_write().await?;
    let head = catch_up(&mut tx, position, fold, progress).await?;
    let mut differences = Vec::new();
    for t in &scratch.targets {
        match mode {
            Mode::Rebuild => swap(&mut tx, t, head).await?,
            Mode::Verify => {
                differences.extend(compare(&mut tx, t).await?);
                let drop = format!("DROP TABLE {}", t.table);
                scratch::execute(&mut tx, &drop)
                    .await
                    .with_context(|| format!("Failed to drop {}", t.table))?;
            }
        }
    }
    tx.commit().await?;
    Ok(Finished { head, differences })
}

/// Folds the events after `position` and writes the counter sums still held. Returns the
/// head, which the caller's lock keeps where it is.
async fn catch_up(
    tx: &mut WriteTx,
    mut position: i64,
    fold: &mut Fold<'_>,
    progress: &mut Reporter<'_>,
) -> anyhow::Result<i64> {
    loop {
        let page = rows_in::read_after_in(tx, position, PAGE).await?;
        let Some(last) = page.last().map(|e| e.position) else {
            break;
        };
        fold.apply(tx, page).await?;
        progress.folded(last);
        position = last;
    }
    fold.flush(tx).await?;
    let head = rows_in::head_in(tx).await?;
    anyhow::ensure!(
        position == head,
        "replay stopped at {position} but the log head is {head}"
    );
    Ok(head)
}

async fn swap(tx: &mut WriteTx, target: &Target, head: i64) -> anyhow::Result<()> {
    let live = target.projection.name();
    let sql = format!(
        "DROP TABLE IF EXISTS {live};\nALTER TABLE {} RENAME TO {live};",
        target.table
    );
    scratch::execute(tx, &sql)
        .await
        .with_context(|| format!("Failed to swap in the rebuilt {live} table"))?;
    status::set_status(tx, target.projection, head).await
}

async fn compare(tx: &mut WriteTx, target: &Target) -> anyhow::Result<Vec<Difference>> {
    let live = target.projection.name();
    let key = target.projection.row_key_sql(tx.backend());
    let mut found = Vec::new();
    for (only_in, a, b) in [
        ("live", live, target.table.as_str()),
        ("rebuild", target.table.as_str(), live),
    ] {
        let sql = format!(
            "SELECT {key} FROM (SELECT * FROM {a} EXCEPT SELECT * FROM {b}) AS d ORDER BY 1"
        );
        let keys: Vec<(String,)> = on_tx!(tx, |c| sqlx::query_as(&sql).fetch_all(&mut **c).await)
            .with_context(|| format!("Failed to compare {a} with {b}"))?;
        found.extend(keys.into_iter().map(|(key,)| Difference {
            projection: target.projection,
            key,
            only_in,
        }));
    }
    Ok(found)
}
