//! Rebuilding projections from the log: `belfry replay` and `belfry replay --verify`.
//! A rebuild is a bulk load (decision 0018): secondary indexes after the rows, counter sums
//! held across pages, each page written while the next one is read.
//!
//! The log is folded from position 0 into scratch tables without holding the log lock, in
//! pages. Then, under the lock, the events appended meanwhile are folded too, and either the
//! scratch tables replace the live ones (rebuild) or are compared with them (verify). Readers
//! see the old tables until the swap commits and the new ones after: never a partial build.
//!
//! # Layout
//! - this module: the flow every backend shares, and what a replay reports.
//! - `scratch`: the scratch tables: their names, creating and indexing them, and the
//!   transactions that write them.
//! - `sqlite`, `postgres`: each backend's build of the log up to the head it started at.
//! - `finish`: under the log lock, the catch-up and the swap or the comparison.

use std::time::{Duration, Instant};

use super::{status, Fold, Projection};
use crate::eventlog::{Backend, Db, EventLog};

mod finish;
mod postgres;
mod scratch;
mod sqlite;

use scratch::Scratch;

/// Events folded per transaction while building.
const PAGE: i64 = 10_000;

/// Counter keys summed across pages before they are written: one upsert per person and
/// category per flush instead of one per page (a few hundred bytes of memory each).
const HELD_COUNTERS: usize = 500_000;

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

/// How far a replay has got: reported once when the build starts (with `events` at 0), then
/// after each page it folds. A caller draws it, e.g. as a progress bar; the library does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Events folded so far (positions are gap-free, so also the last position folded).
    pub events: u64,
    /// The log head when the build started. The catch-up under the log lock also folds what
    /// was appended since, so `events` may end above it.
    pub head: u64,
}

/// Rebuilds `projections` from position 0 and swaps them in, reporting its progress to
/// `on_progress` (`|_| {}` to ignore it).
pub async fn rebuild(
    db: &Db,
    projections: &[Projection],
    mut on_progress: impl FnMut(Progress) + Send,
) -> anyhow::Result<ReplayReport> {
    run(db, projections, Mode::Rebuild, &mut on_progress).await
}

/// Rebuilds `projections` into scratch tables and reports every row that differs from the
/// live read model, and its progress to `on_progress`. Changes nothing.
pub async fn verify(
    db: &Db,
    projections: &[Projection],
    mut on_progress: impl FnMut(Progress) + Send,
) -> anyhow::Result<ReplayReport> {
    run(db, projections, Mode::Verify, &mut on_progress).await
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Rebuild,
    Verify,
}

/// The flow of a replay on either backend: scratch tables, the build without the log lock,
/// then the catch-up and the swap or comparison under it.
async fn run(
    db: &Db,
    projections: &[Projection],
    mode: Mode,
    on_progress: &mut (dyn FnMut(Progress) + Send),
) -> anyhow::Result<ReplayReport> {
    let started = Instant::now();
    if mode == Mode::Verify {
        ensure_built(db, projections).await?;
    }
    let scratch = Scratch::create(db, projections, mode).await?;
    let log = EventLog::new(db.clone());
    let head = log.head().await?;
    let mut progress = Reporter::start(head, on_progress);
    let mut fold = Fold::into_empty(&scratch.targets);
    let build = Build {
        db,
        log: &log,
        scratch: &scratch,
        head,
    };
    let position = match db.backend() {
        Backend::Postgres => postgres::build(&build, &mut fold, &mut progress).await?,
        Backend::Sqlite => sqlite::build(&build, &mut fold, &mut progress).await?,
    };
    let finished =
        finish::under_log_lock(db, &scratch, mode, position, &mut fold, &mut progress).await?;
    Ok(ReplayReport {
        projections: projections.to_vec(),
        events: finished.head,
        elapsed: started.elapsed(),
        differences: finished.differences,
    })
}

/// Verify compares against the live tables, so they must be built at the current version.
async fn ensure_built(db: &Db, projections: &[Projection]) -> anyhow::Result<()> {
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
    Ok(())
}

/// The build from position 0 up to `head`, without the log lock.
struct Build<'a> {
    db: &'a Db,
    log: &'a EventLog,
    scratch: &'a Scratch,
    head: i64,
}

/// Turns the positions folded into [`Progress`] reports for the caller.
struct Reporter<'a> {
    head: u64,
    report: &'a mut (dyn FnMut(Progress) + Send),
}

impl<'a> Reporter<'a> {
    /// Reports the start of a build up to `head`.
    fn start(head: i64, report: &'a mut (dyn FnMut(Progress) + Send)) -> Self {
        let head = u64::try_from(head).unwrap_or(0);
        report(Progress { events: 0, head });
        Reporter { head, report }
    }

    /// Reports that the log is folded up to `position`.
    fn folded(&mut self, position: i64) {
        (self.report)(Progress {
            events: u64::try_from(position).unwrap_or(0),
            head: self.head,
        });
    }
}
