//! Rebuilding projections from the log: `belfry replay` and `belfry replay --verify`.
//! A rebuild is a bulk load (decision 0018): secondary indexes after the rows, counter sums
//! held across pages, each page written while the next one is read.
//!
//! The log is folded from position 0 into scratch tables without holding the log lock, in
//! pages. Then, under the lock, the events appended meanwhile are folded too, and either the
//! scratch tables replace the live ones (rebuild) or are compared with them (verify). Readers
//! see the old tables until the swap commits and the new ones after: never a partial build.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::future::try_join_all;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{status, Fold, Projection, Target};
use crate::domain::event::Event;
use crate::eventlog::{rows_in, Backend, Db, EventLog, RecordedEvent, WriteTx};
use crate::on_tx;
use crate::projections;

/// Events folded per transaction while building.
const PAGE: i64 = 10_000;

/// Counter keys summed across pages before they are written: one upsert per person and
/// category per flush instead of one per page (a few hundred bytes of memory each).
const HELD_COUNTERS: usize = 500_000;

/// Postgres: how full the build's inserts leave each page of the scratch inbox, in percent.
/// The rest is room for new versions of the rows the build's changes update. The build's
/// only inbox index is the primary key, which a change never alters, so with room on the
/// page a change is a heap-only update: no new index entry, no other page touched. About
/// twice as fast as an update that must move its row (decision 0026).
const BUILD_FILLFACTOR: u32 = 80;

/// Pages read or written ahead of the next step, when replay writes on two connections.
const QUEUED_PAGES: usize = 4;

/// What a replay did.
#[derive(Debug, Clone)]
pub struct ReplayReport {
    pub projections: Vec<Projection>,
    /// Events read from the log (the head the tables now reflect).
    pub events: i64,
    pub elapsed: Duration,
    /// Verify only: rows that differ between the live read model and a fresh rebuild.
    pub differences: Vec<Difference>,
}

impl ReplayReport {
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A row that is only in the live table, or only in the rebuild.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub projection: Projection,
    /// The row's key, e.g. a notification id or `user/category`.
    pub key: String,
    /// `"live"` when the live row has no identical twin in the rebuild, else `"rebuild"`.
    pub only_in: &'static str,
}

/// Rebuilds `projections` from position 0 and swaps them in.
pub async fn rebuild(
    db: &Db,
    projections: &[Projection],
    progress: bool,
) -> anyhow::Result<ReplayReport> {
    run(db, projections, Mode::Rebuild, progress).await
}

/// Rebuilds `projections` into scratch tables and reports every row that differs from the
/// live read model. Changes nothing.
pub async fn verify(
    db: &Db,
    projections: &[Projection],
    progress: bool,
) -> anyhow::Result<ReplayReport> {
    run(db, projections, Mode::Verify, progress).await
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Rebuild,
    Verify,
}

/// Scratch tables are named per run, so two replays at once never write into each other's
/// tables; each swaps (or compares) its own complete build under the log lock.
fn scratch_name(projection: Projection, mode: Mode, run: &str) -> String {
    match mode {
        Mode::Rebuild => format!("{}__rebuild_{run}", projection.name()),
        Mode::Verify => format!("{}__verify_{run}", projection.name()),
    }
}

async fn run(
    db: &Db,
    projections: &[Projection],
    mode: Mode,
    progress: bool,
) -> anyhow::Result<ReplayReport> {
    let started = Instant::now();
    if mode == Mode::Verify {
        let states = status::check(db).await?;
        if let Some(s) = states
            .iter()
            .find(|s| projections.contains(&s.projection) && !s.is_current())
        {
            anyhow::bail!(
                "projection {} is not built at version {} (stored: {:?}); run `belfry replay` before verifying",
                s.projection.name(),
                s.projection.version(),
                s.stored_version
            );
        }
    }
    let run = format!("{:08x}", uuid::Uuid::new_v4().as_u128() as u32);
    let targets: Vec<Target> = projections
        .iter()
        .map(|&projection| Target {
            projection,
            table: scratch_name(projection, mode, &run),
        })
        .collect();

    // The tables first; their secondary indexes once the bulk of the rows is in.
    let ddl: Vec<(String, String)> = targets
        .iter()
        .map(|t| t.projection.create_sql_split(db.backend(), &t.table))
        .collect();
    let mut tx = db.begin_plain().await?;
    for (t, (tables, _)) in targets.iter().zip(&ddl) {
        execute(&mut tx, tables)
            .await
            .with_context(|| format!("Failed to create the scratch table {}", t.table))?;
    }
    if db.backend() == Backend::Postgres {
        for t in targets.iter().filter(|t| t.projection == Projection::Inbox) {
            let sql = format!(
                "ALTER TABLE {} SET (fillfactor = {BUILD_FILLFACTOR})",
                t.table
            );
            execute(&mut tx, &sql).await?;
        }
    }
    tx.commit().await?;

    let log = EventLog::new(db.clone());
    let target_head = log.head().await?;
    let bar = progress_bar(progress, target_head);
    let mut fold = Fold::into_empty(&targets);
    let built = Built {
        log: &log,
        targets: &targets,
        head: target_head,
        bar: &bar,
    };
    let mut position = match db.backend() {
        Backend::Postgres => {
            let position = built.on_two_connections(db, &mut fold).await?;
            // Rows appended from now on fill their pages, as in a table `ensure` creates.
            let mut tx = db.begin_plain().await?;
            for t in targets.iter().filter(|t| t.projection == Projection::Inbox) {
                execute(
                    &mut tx,
                    &format!("ALTER TABLE {} RESET (fillfactor)", t.table),
                )
                .await?;
            }
            tx.commit().await?;
            // The counter sums still held and each secondary index at once, each on its
            // connection: they write different tables.
            let flush = async {
                let mut tx = scratch_tx(db).await?;
                fold.flush(&mut tx).await?;
                tx.commit().await
            };
            let indexes = try_join_all(targets.iter().zip(&ddl).flat_map(|(t, (_, indexes))| {
                statements(indexes).map(move |sql| async move {
                    let mut tx = db.begin_plain().await?;
                    execute(&mut tx, "SET LOCAL maintenance_work_mem = '256MB'").await?;
                    execute(&mut tx, sql).await.with_context(|| {
                        format!("Failed to index the scratch table {}", t.table)
                    })?;
                    tx.commit().await
                })
            }));
            let (flushed, indexed) = tokio::join!(flush, indexes);
            flushed?;
            indexed?;
            position
        }
        Backend::Sqlite => {
            let position = built.on_one_connection(db, &mut fold).await?;
            let mut tx = db.begin_plain().await?;
            for (t, (_, indexes)) in targets.iter().zip(&ddl) {
                for sql in statements(indexes) {
                    execute(&mut tx, sql).await.with_context(|| {
                        format!("Failed to index the scratch table {}", t.table)
                    })?;
                }
            }
            tx.commit().await?;
            position
        }
    };

    // Under the log lock: fold what was appended meanwhile, then swap or compare.
    let mut tx = db.begin_write().await?;
    loop {
        let page = rows_in::read_after_in(&mut tx, position, PAGE).await?;
        let Some(last) = page.last().map(|e| e.position) else {
            break;
        };
        fold.apply(&mut tx, &page).await?;
        bar.inc(u64::try_from(last - position).unwrap_or(0));
        position = last;
    }
    fold.flush(&mut tx).await?;
    let head = rows_in::head_in(&mut tx).await?;
    anyhow::ensure!(
        position == head,
        "replay stopped at {position} but the log head is {head}"
    );
    let mut differences = Vec::new();
    for t in &targets {
        match mode {
            Mode::Rebuild => swap(&mut tx, t, head).await?,
            Mode::Verify => {
                differences.extend(compare(&mut tx, t).await?);
                let drop = format!("DROP TABLE {}", t.table);
                on_tx!(&mut tx, |c| sqlx::raw_sql(&drop)
                    .execute(&mut **c)
                    .await
                    .map(|r| r.rows_affected()))
                .with_context(|| format!("Failed to drop {}", t.table))?;
            }
        }
    }
    tx.commit().await?;
    bar.finish_and_clear();
    Ok(ReplayReport {
        projections: projections.to_vec(),
        events: head,
        elapsed: started.elapsed(),
        differences,
    })
}

/// The build from position 0 up to `head`, without the log lock.
struct Built<'a> {
    log: &'a EventLog,
    targets: &'a [Target],
    head: i64,
    bar: &'a ProgressBar,
}

impl Built<'_> {
    /// Each page is applied in one transaction while the next one is read, on another
    /// connection. Returns the last position folded.
    async fn on_one_connection(&self, db: &Db, fold: &mut Fold<'_>) -> anyhow::Result<i64> {
        let mut position = 0;
        let mut page = self.read_after(0).await?;
        while let Some(last) = page.last().map(|e| e.position) {
            let fold = &mut *fold;
            let write = async {
                let mut tx = scratch_tx(db).await?;
                fold.apply(&mut tx, &page).await?;
                if fold.pending() >= HELD_COUNTERS || last >= self.head {
                    fold.flush(&mut tx).await?;
                }
                tx.commit().await
            };
            let (next, written) = tokio::join!(self.read_after(last), write);
            written?;
            self.bar.inc(u64::try_from(last - position).unwrap_or(0));
            position = last;
            page = next?;
        }
        Ok(position)
    }

    /// Postgres (decision 0025): three loops, each on its connection, joined by short queues.
    /// One reads pages and has them decoded on a blocking thread; one writes the inbox rows of
    /// each page's sends; one writes the rest of each page (its changes, preferences, keys and
    /// counter sums) once its rows have committed. A change only ever touches a row sent
    /// before it, so it finds its row. Returns the last position folded; the caller writes
    /// the counter sums still held.
    async fn on_two_connections(&self, db: &Db, fold: &mut Fold<'_>) -> anyhow::Result<i64> {
        type Decoded = (Vec<RecordedEvent>, Vec<Option<Event>>);
        let (pages_tx, mut pages) =
            mpsc::channel::<JoinHandle<anyhow::Result<Decoded>>>(QUEUED_PAGES);
        let (rows_tx, mut rows_written) = mpsc::channel::<Decoded>(QUEUED_PAGES);
        let read = async move {
            let mut position = 0;
            while position < self.head {
                let rows = self.log.read_rows_after(position, PAGE).await?;
                let Some(last) = rows.last_position()? else {
                    break;
                };
                position = last;
                // Rows into events, and events into domain events, off this task's thread,
                // which also drives the two writing loops.
                let decoded = tokio::task::spawn_blocking(move || {
                    let page = rows.decode()?;
                    let domain = projections::decode(&page)?;
                    Ok((page, domain))
                });
                if pages_tx.send(decoded).await.is_err() {
                    // The writers stopped; their error is the one to report.
                    break;
                }
            }
            anyhow::Ok(())
        };
        let insert = async move {
            while let Some(decoded) = pages.recv().await {
                let (page, domain) = decoded.await.context("Failed to decode a page")??;
                let mut tx = scratch_tx(db).await?;
                projections::insert_sends(&mut tx, self.targets, &page, &domain).await?;
                tx.commit().await?;
                if rows_tx.send((page, domain)).await.is_err() {
                    return Ok(());
                }
            }
            anyhow::Ok(())
        };
        let change = async {
            let mut position = 0;
            while let Some((page, domain)) = rows_written.recv().await {
                let mut tx = scratch_tx(db).await?;
                fold.apply_changes(&mut tx, &page, &domain).await?;
                if fold.pending() >= HELD_COUNTERS {
                    fold.flush(&mut tx).await?;
                }
                tx.commit().await?;
                if let Some(last) = page.last().map(|e| e.position) {
                    self.bar.inc(u64::try_from(last - position).unwrap_or(0));
                    position = last;
                }
            }
            anyhow::Ok(position)
        };
        // A loop that fails drops its end of a queue, which stops the others.
        let (read, insert, change) = tokio::join!(read, insert, change);
        let position = change?;
        insert?;
        read?;
        Ok(position)
    }

    /// The page after `position`, or none once `head` is reached.
    async fn read_after(&self, position: i64) -> anyhow::Result<Vec<RecordedEvent>> {
        if position < self.head {
            self.log.read_after(position, PAGE).await
        } else {
            Ok(Vec::new())
        }
    }
}

/// The statements of a script of `;`-terminated statements.
fn statements(script: &str) -> impl Iterator<Item = &str> {
    script
        .split_inclusive(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A transaction writing scratch tables. On Postgres it commits without waiting for the
/// flush: the scratch tables are invisible until the swap, whose commit is synchronous and
/// flushes everything before it; a crash before then loses only the scratch.
async fn scratch_tx(db: &Db) -> anyhow::Result<WriteTx> {
    let mut tx = db.begin_plain().await?;
    if let WriteTx::Postgres(c) = &mut tx {
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut **c)
            .await?;
    }
    Ok(tx)
}

async fn execute(tx: &mut WriteTx, sql: &str) -> sqlx::Result<u64> {
    on_tx!(tx, |c| sqlx::raw_sql(sql)
        .execute(&mut **c)
        .await
        .map(|r| r.rows_affected()))
}

async fn swap(tx: &mut WriteTx, target: &Target, head: i64) -> anyhow::Result<()> {
    let live = target.projection.name();
    let sql = format!(
        "DROP TABLE IF EXISTS {live};\nALTER TABLE {} RENAME TO {live};",
        target.table
    );
    on_tx!(tx, |c| sqlx::raw_sql(&sql)
        .execute(&mut **c)
        .await
        .map(|r| r.rows_affected()))
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

fn progress_bar(enabled: bool, total: i64) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(u64::try_from(total).unwrap_or(0));
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} replaying [{bar:40}] {pos}/{len} events  {per_sec}  ETA {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
