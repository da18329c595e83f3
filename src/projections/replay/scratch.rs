//! The scratch tables a replay builds: named per run, created with their primary keys only,
//! indexed once the bulk of the log is in (decision 0018).

use anyhow::Context;

use super::{postgres, Mode};
use crate::eventlog::{Backend, Db, WriteTx};
use crate::on_tx;
use crate::projections::{Projection, Target};

/// One run's scratch tables and the secondary indexes still to build on them.
pub(super) struct Scratch {
    pub(super) targets: Vec<Target>,
    /// Each target's script of index statements, in the order of `targets`.
    indexes: Vec<String>,
}

impl Scratch {
    /// Creates a scratch table for each of `projections`, without its secondary indexes.
    pub(super) async fn create(
        db: &Db,
        projections: &[Projection],
        mode: Mode,
    ) -> anyhow::Result<Scratch> {
        let run = format!("{:08x}", uuid::Uuid::new_v4().as_u128() as u32);
        let targets: Vec<Target> = projections
            .iter()
            .map(|&projection| Target {
                projection,
                table: scratch_name(projection, mode, &run),
            })
            .collect();
        let (tables, indexes): (Vec<String>, Vec<String>) = targets
            .iter()
            .map(|t| t.projection.create_sql_split(db.backend(), &t.table))
            .unzip();
        let mut tx = db.begin_plain().await?;
        for (t, sql) in targets.iter().zip(&tables) {
            execute(&mut tx, sql)
                .await
                .with_context(|| format!("Failed to create the scratch table {}", t.table))?;
        }
        let scratch = Scratch { targets, indexes };
        if db.backend() == Backend::Postgres {
            postgres::leave_room_for_changes(&mut tx, &scratch).await?;
        }
        tx.commit().await?;
        Ok(scratch)
    }

    /// The scratch tables of the inbox: one, if this run rebuilds the inbox.
    pub(super) fn inboxes(&self) -> impl Iterator<Item = &Target> {
        self.targets
            .iter()
            .filter(|t| t.projection == Projection::Inbox)
    }

    /// Each statement that builds a secondary index, with the table it indexes.
    pub(super) fn index_statements(&self) -> impl Iterator<Item = (&str, &str)> {
        self.targets
            .iter()
            .zip(&self.indexes)
            .flat_map(|(t, script)| statements(script).map(move |sql| (t.table.as_str(), sql)))
    }
}

/// Scratch tables are named per run, so two replays at once never write into each other's
/// tables; each swaps (or compares) its own complete build under the log lock.
fn scratch_name(projection: Projection, mode: Mode, run: &str) -> String {
    match mode {
        Mode::Rebuild => format!("{}__rebuild_{run}", projection.name()),
        Mode::Verify => format!("{}__verify_{run}", projection.name()),
    }
}

/// Runs one index statement of [`Scratch::index_statements`] on `table`.
pub(super) async fn index(tx: &mut WriteTx, table: &str, sql: &str) -> anyhow::Result<()> {
    execute(tx, sql)
        .await
        .with_context(|| format!("Failed to index the scratch table {table}"))?;
    Ok(())
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
pub(super) async fn scratch_tx(db: &Db) -> anyhow::Result<WriteTx> {
    let mut tx = db.begin_plain().await?;
    if let WriteTx::Postgres(c) = &mut tx {
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut **c)
            .await?;
    }
    Ok(tx)
}

/// Runs `sql`, one or more statements without parameters.
pub(super) async fn execute(tx: &mut WriteTx, sql: &str) -> sqlx::Result<u64> {
    on_tx!(tx, |c| sqlx::raw_sql(sql)
        .execute(&mut **c)
        .await
        .map(|r| r.rows_affected()))
}
