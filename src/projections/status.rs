//! Which version each projection's table was built for, and how far it has come.

use anyhow::Context;
use chrono::Utc;

use super::Projection;
use crate::eventlog::{rows_in, Db, WriteTx};
use crate::{on_reader, on_tx};

/// A projection's stored state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionState {
    pub projection: Projection,
    /// The version its table was built for; `None` when it was never built.
    pub stored_version: Option<i32>,
    /// The last log position folded into it.
    pub position: i64,
}

impl ProjectionState {
    pub fn is_current(&self) -> bool {
        self.stored_version == Some(self.projection.version())
    }
}

/// Why `serve` cannot use a projection's table as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusProblem {
    #[error("projection {} has never been built from the log", .0.name())]
    Missing(Projection),
    #[error("projection {} was built for version {stored}, this build needs version {}", .projection.name(), .projection.version())]
    Stale { projection: Projection, stored: i32 },
}

async fn stored(tx: &mut WriteTx) -> anyhow::Result<Vec<(String, i32, i64)>> {
    on_tx!(tx, |c| sqlx::query_as(
        "SELECT name, version, position FROM projection_status"
    )
    .fetch_all(&mut **c)
    .await)
    .context("Failed to read projection status")
}

/// Every projection's stored state.
pub async fn check(db: &Db) -> anyhow::Result<Vec<ProjectionState>> {
    let rows: Vec<(String, i32, i64)> = on_reader!(db, |p| sqlx::query_as(
        "SELECT name, version, position FROM projection_status"
    )
    .fetch_all(p)
    .await)
    .context("Failed to read projection status")?;
    Ok(Projection::ALL
        .into_iter()
        .map(|projection| {
            let row = rows.iter().find(|(name, _, _)| name == projection.name());
            ProjectionState {
                projection,
                stored_version: row.map(|r| r.1),
                position: row.map_or(0, |r| r.2),
            }
        })
        .collect())
}

/// Creates the tables of projections never built while the log is still empty (nothing to
/// replay), and reports the projections that need `belfry replay` before use.
pub async fn ensure(db: &Db) -> anyhow::Result<Vec<StatusProblem>> {
    let mut tx = db.begin_write().await?;
    let head = rows_in::head_in(&mut tx).await?;
    let rows = stored(&mut tx).await?;
    let mut problems = Vec::new();
    for projection in Projection::ALL {
        match rows.iter().find(|(name, _, _)| name == projection.name()) {
            None if head == 0 => create_live(&mut tx, projection, 0).await?,
            None => problems.push(StatusProblem::Missing(projection)),
            Some((_, stored, _)) if *stored != projection.version() => {
                problems.push(StatusProblem::Stale {
                    projection,
                    stored: *stored,
                })
            }
            Some(_) => {}
        }
    }
    tx.commit().await?;
    Ok(problems)
}

/// (Re)creates a projection's live table, empty, and records it as built up to `position`.
pub(super) async fn create_live(
    tx: &mut WriteTx,
    projection: Projection,
    position: i64,
) -> anyhow::Result<()> {
    let table = projection.name();
    let ddl = format!(
        "DROP TABLE IF EXISTS {table};\n{}",
        projection.create_sql(tx.backend(), table)
    );
    on_tx!(tx, |c| sqlx::raw_sql(&ddl)
        .execute(&mut **c)
        .await
        .map(|r| r.rows_affected()))
    .with_context(|| format!("Failed to create the {table} table"))?;
    set_status(tx, projection, position).await
}

/// Records that `projection` (at this build's version) has folded the log up to `position`.
pub(super) async fn set_status(
    tx: &mut WriteTx,
    projection: Projection,
    position: i64,
) -> anyhow::Result<()> {
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO projection_status (name, version, position, rebuilt_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO UPDATE SET version = excluded.version, position = excluded.position, \
         rebuilt_at = excluded.rebuilt_at"
    )
    .bind(projection.name())
    .bind(projection.version())
    .bind(position)
    .bind(Utc::now())
    .execute(&mut **c).await.map(|r| r.rows_affected()))
    .with_context(|| format!("Failed to record the status of {}", projection.name()))?;
    Ok(())
}

/// Records the new head for every inline projection, inside the append transaction. Fails
/// when any stored table is of another version than this build's, so a node never writes
/// into tables that a newer (or older) build has rebuilt.
pub async fn record_position(tx: &mut WriteTx, head: i64) -> anyhow::Result<()> {
    let matching: Vec<String> = Projection::ALL
        .iter()
        .map(|p| format!("(name = '{}' AND version = {})", p.name(), p.version()))
        .collect();
    let sql = format!(
        "UPDATE projection_status SET position = $1 WHERE {}",
        matching.join(" OR ")
    );
    let updated = on_tx!(tx, |c| sqlx::query(&sql)
        .bind(head)
        .execute(&mut **c)
        .await
        .map(|r| r.rows_affected()))
    .context("Failed to record projection positions")?;
    anyhow::ensure!(
        updated == Projection::ALL.len() as u64,
        "the projection tables are not at this build's versions (was `belfry replay` run by another \
         build?); restart this node"
    );
    Ok(())
}
