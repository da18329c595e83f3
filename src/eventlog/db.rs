//! Connections to the two backends, the write transaction that holds the log lock, and the
//! macros that run one piece of SQL on whichever backend is in use.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

use super::postgres_tls::{self, Tls};

/// Which database a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// How to connect; `app::db_options` builds it from the settings, where the defaults are.
#[derive(Debug, Clone)]
pub struct DbOptions {
    pub max_connections: u32,
    /// How long a query waits for a Postgres connection before it fails as unavailable.
    pub acquire_timeout: Duration,
    /// SQLite only: `FULL` makes every acknowledged command survive power loss.
    pub sqlite_synchronous_full: bool,
}

/// A connection pool on either backend. SQLite keeps one writer connection (SQLite allows one
/// writer at a time anyway) and a separate pool of readers, so reads never queue behind writes.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite {
        reader: SqlitePool,
        writer: SqlitePool,
    },
    Postgres(PgPool),
}

/// The key of the Postgres advisory lock that serializes appends across all processes.
const LOG_LOCK_KEY: i64 = 0x6265_6c66_7279; // "belfry"

/// A write transaction holding the log lock: `pg_advisory_xact_lock` on Postgres, the SQLite
/// write lock (`BEGIN IMMEDIATE`) on SQLite. Dropping it without commit rolls back.
pub enum WriteTx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// Runs `$body` with `$c` bound to the concrete transaction of a [`WriteTx`]; use `&mut **$c`
/// as the executor. The body is compiled once per backend, so shared SQL is written once.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, |$c:ident| $body:expr) => {
        match $tx {
            $crate::eventlog::db::WriteTx::Sqlite($c) => $body,
            $crate::eventlog::db::WriteTx::Postgres($c) => $body,
        }
    };
}

/// Runs `$body` with `$p` bound to the concrete read pool of a [`Db`].
#[macro_export]
macro_rules! on_reader {
    ($db:expr, |$p:ident| $body:expr) => {
        match $db {
            $crate::eventlog::db::Db::Sqlite { reader: $p, .. } => $body,
            $crate::eventlog::db::Db::Postgres($p) => $body,
        }
    };
}

impl Db {
    /// Connects to `url` (`sqlite://path` or `postgres://...`), creating a SQLite file and its
    /// directory when missing.
    pub async fn connect(url: &str, opts: &DbOptions) -> anyhow::Result<Db> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let (options, tls) = Tls::connect_options(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(opts.max_connections.max(2))
                .acquire_timeout(opts.acquire_timeout)
                .connect_with(options)
                .await
                .map_err(|e| {
                    let context = tls.explain(&e);
                    anyhow::Error::new(e).context(context)
                })?;
            return Ok(Db::Postgres(pool));
        }
        let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        else {
            anyhow::bail!(
                "database URL must start with sqlite:// or postgres:// (got {:?})",
                redact(url)
            );
        };
        let path = path.split('?').next().unwrap_or(path);
        if let Some(dir) = Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).with_context(|| {
                format!("Failed to create the data directory {}", dir.display())
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if opts.sqlite_synchronous_full {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .busy_timeout(Duration::from_secs(30))
            .pragma("wal_autocheckpoint", "10000");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(options.clone())
            .await
            .with_context(|| format!("Failed to open the SQLite database {path}"))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(opts.max_connections.clamp(1, 8))
            .connect_with(options.read_only(true))
            .await
            .with_context(|| format!("Failed to open the SQLite database {path} for reading"))?;
        Ok(Db::Sqlite { reader, writer })
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite { .. } => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies the event-log migrations in `migrations/<backend>/`.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Db::Sqlite { writer, .. } => sqlx::migrate!("migrations/sqlite").run(writer).await,
            Db::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await,
        }
        .context("Failed to run the event log migrations")
    }

    /// Begins a transaction that holds the log lock until it commits or rolls back.
    pub async fn begin_write(&self) -> anyhow::Result<WriteTx> {
        let mut tx = self.begin_plain().await?;
        if let WriteTx::Postgres(tx) = &mut tx {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(LOG_LOCK_KEY)
                .execute(&mut **tx)
                .await
                .context("Failed to take the log lock")?;
        }
        Ok(tx)
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> anyhow::Result<()> {
        on_reader!(self, |p| sqlx::query("SELECT 1")
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
        .map(|_| ())
        .context("Failed to reach the database")
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite { reader, writer } => {
                reader.close().await;
                writer.close().await;
            }
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

impl WriteTx {
    pub async fn commit(self) -> anyhow::Result<()> {
        match self {
            WriteTx::Sqlite(tx) => tx.commit().await,
            WriteTx::Postgres(tx) => tx.commit().await,
        }
        .context("Failed to commit")
    }

    pub fn backend(&self) -> Backend {
        match self {
            WriteTx::Sqlite(_) => Backend::Sqlite,
            WriteTx::Postgres(_) => Backend::Postgres,
        }
    }
}

/// Whether `error` says the database could not be reached (no connection to be had in time,
/// a dropped connection, a server shutting down or refusing connections), as opposed to a
/// statement that failed: the first is worth retrying shortly, the second is not.
pub fn is_unreachable(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        let Some(error) = cause.downcast_ref::<sqlx::Error>() else {
            return cause.downcast_ref::<std::io::Error>().is_some();
        };
        match error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => true,
            // Class 08: connection exceptions; 57P0x: the server is shutting down or starting;
            // 53300: too many connections.
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                code.starts_with("08") || code.starts_with("57P0") || code == "53300"
            }),
            error => postgres_tls::closed_before_tls_answer(error),
        }
    })
}

/// Hides the password of a database URL for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl Db {
    /// Begins a write transaction without the log lock, for work that does not append
    /// (building scratch tables). On SQLite every write transaction takes the write lock.
    pub async fn begin_plain(&self) -> anyhow::Result<WriteTx> {
        match self {
            Db::Sqlite { writer, .. } => Ok(WriteTx::Sqlite(
                writer
                    .begin_with("BEGIN IMMEDIATE")
                    .await
                    .context("Failed to begin a SQLite write transaction")?,
            )),
            Db::Postgres(pool) => Ok(WriteTx::Postgres(
                pool.begin()
                    .await
                    .context("Failed to begin a Postgres transaction")?,
            )),
        }
    }
}
