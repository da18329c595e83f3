//! Test helpers: a fresh store per test on either backend, and an engine running on it.

use std::time::Duration;

use belfry::config::Settings;
use belfry::domain::notification::SendNotification;
use belfry::domain::Command;
use belfry::domain::SendInput;
use belfry::engine::{self, Engine, Outcome};
use belfry::eventlog::{Db, DbOptions, Metadata, RecordedEvent};
use belfry::metrics::Metrics;
use belfry::on_reader;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How tests connect: the settings' defaults.
pub fn db_options() -> DbOptions {
    belfry::app::db_options(&Settings::default())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one `#[tokio::test]` per backend for each listed `async fn name(Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}

/// The Postgres server tests create their databases on. Without one a Postgres test fails,
/// so a test that did not run is never counted as passed, unless the person running the
/// suite asked to leave Postgres out with `BELFRY_TEST_SKIP_POSTGRES=1` (never under CI).
fn postgres_admin_url() -> Option<String> {
    let url = std::env::var("BELFRY_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_some() {
        return url;
    }
    assert!(
        postgres_left_out(),
        "BELFRY_TEST_POSTGRES_URL is not set: run `bash scripts/test` (it starts a throwaway \
         Postgres), point BELFRY_TEST_POSTGRES_URL at an admin URL, or set \
         BELFRY_TEST_SKIP_POSTGRES=1 to leave the Postgres tests out"
    );
    eprintln!("SKIPPED: this Postgres test did not run (BELFRY_TEST_SKIP_POSTGRES=1)");
    None
}

/// Whether the person running the suite asked to leave the Postgres tests out with
/// `BELFRY_TEST_SKIP_POSTGRES=1`; never under CI.
pub fn postgres_left_out() -> bool {
    std::env::var("BELFRY_TEST_SKIP_POSTGRES").is_ok_and(|v| v == "1")
        && !std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Creates a fresh database on the server behind `admin_url` and returns its name.
async fn create_database(admin_url: &str) -> String {
    let name = format!("belfry_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(admin_url)
        .await
        .expect("connect to the test Postgres server");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    name
}

fn with_database(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin_url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let root = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    format!("{root}/{name}{query}")
}

/// A fresh, empty, migrated store, deleted when dropped.
pub struct TestStore {
    pub backend: Backend,
    pub url: String,
    pub db: Db,
    dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

impl TestStore {
    /// `None` when the backend is Postgres and none is configured (outside CI only).
    pub async fn new(backend: Backend) -> Option<TestStore> {
        let store = Self::unmigrated(backend).await?;
        store.db.migrate().await.expect("migrate");
        Some(store)
    }

    /// A fresh, empty store with no tables at all.
    pub async fn unmigrated(backend: Backend) -> Option<TestStore> {
        let dir = tempfile::tempdir().expect("temp dir");
        let (url, postgres) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("belfry.db").display()),
                None,
            ),
            Backend::Postgres => {
                let admin = postgres_admin_url()?;
                let name = create_database(&admin).await;
                (with_database(&admin, &name), Some((admin, name)))
            }
        };
        let db = Db::connect(&url, &db_options()).await.expect("connect");
        Some(TestStore {
            backend,
            url,
            db,
            dir,
            postgres,
        })
    }

    /// A fresh, empty, migrated store in a new database on the Postgres server behind
    /// `admin_url`, opened with the URL query `query` (e.g. TLS parameters) in place of the
    /// admin URL's own; the engine connects the same way.
    pub async fn on_postgres_server(admin_url: &str, query: &str) -> TestStore {
        let name = create_database(admin_url).await;
        let base = admin_url
            .split_once('?')
            .map_or(admin_url, |(base, _)| base);
        let url = format!("{}?{query}", with_database(base, &name));
        let store = TestStore {
            backend: Backend::Postgres,
            db: Db::connect(&url, &db_options())
                .await
                .unwrap_or_else(|e| panic!("open the store with ?{query}: {e:#}")),
            url,
            dir: tempfile::tempdir().expect("temp dir"),
            postgres: Some((admin_url.to_owned(), name)),
        };
        store.db.migrate().await.expect("migrate");
        store
    }

    /// Applies the event-log migrations numbered below `version` only: the schema an older
    /// release left behind.
    pub async fn migrate_before(&self, version: i64) {
        use sqlx::Connection;
        let mut migrator = match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("migrations/postgres"),
        };
        migrator.migrations = migrator
            .migrations
            .iter()
            .filter(|m| m.version < version)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url)
                    .await
                    .expect("connect");
                migrator.run(&mut c).await.expect("old migrations");
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url)
                    .await
                    .expect("connect");
                migrator.run(&mut c).await.expect("old migrations");
            }
        }
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Starts an engine on this store (a separate appender and pool each call).
    pub async fn engine(&self) -> TestEngine {
        let db = Db::connect(&self.url, &db_options())
            .await
            .expect("connect");
        let stop = CancellationToken::new();
        let (engine, task) = Engine::start(
            db,
            belfry::app::engine_config(&Settings::default(), Metrics::new()),
            stop.clone(),
        )
        .await
        .expect("start engine");
        TestEngine {
            engine,
            stop,
            task: Some(task),
        }
    }

    /// Every event in the log, in position order.
    pub async fn all_events(&self) -> Vec<RecordedEvent> {
        let log = belfry::eventlog::EventLog::new(self.db.clone());
        let mut all = Vec::new();
        loop {
            let after = all.last().map_or(0, |e: &RecordedEvent| e.position);
            let page = log.read_after(after, 1_000).await.expect("read");
            if page.is_empty() {
                return all;
            }
            all.extend(page);
        }
    }

    /// The versions of `stream`'s events in the log, in position order.
    pub async fn stream_versions(&self, stream: &str) -> Vec<i64> {
        self.all_events()
            .await
            .iter()
            .filter(|e| e.stream_id == stream)
            .map(|e| e.stream_version)
            .collect()
    }

    /// Runs one SQL statement on a writable connection of its own, behind the engine's back
    /// (the store's SQLite reader pool is read-only). Returns the rows it affected.
    pub async fn execute_raw(&self, sql: &str) -> Result<u64, sqlx::Error> {
        use sqlx::Connection;
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await?;
                Ok(sqlx::query(sql).execute(&mut c).await?.rows_affected())
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await?;
                Ok(sqlx::query(sql).execute(&mut c).await?.rows_affected())
            }
        }
    }

    /// Counter rows that differ from a recount of the inbox rows: (user, category, unread, unseen).
    pub async fn counter_drift(&self) -> Vec<String> {
        let sql = "SELECT COALESCE(c.recipient, r.recipient), COALESCE(c.category, r.category), \
                   COALESCE(c.unread, 0), COALESCE(r.unread, 0), COALESCE(c.unseen, 0), COALESCE(r.unseen, 0) \
                   FROM unread_counters c FULL OUTER JOIN ( \
                     SELECT recipient, category, \
                       SUM(CASE WHEN read_at IS NULL AND archived_at IS NULL THEN 1 ELSE 0 END) AS unread, \
                       SUM(CASE WHEN seen_at IS NULL AND archived_at IS NULL THEN 1 ELSE 0 END) AS unseen \
                     FROM inbox GROUP BY recipient, category) r \
                   ON c.recipient = r.recipient AND c.category = r.category \
                   WHERE COALESCE(c.unread, 0) <> COALESCE(r.unread, 0) OR COALESCE(c.unseen, 0) <> COALESCE(r.unseen, 0)";
        let rows: Vec<(String, String, i64, i64, i64, i64)> =
            on_reader!(&self.db, |p| sqlx::query_as(sql).fetch_all(p).await).expect("recount");
        rows.iter()
            .map(|r| {
                format!(
                    "{}/{}: counter unread {} vs {} recounted, unseen {} vs {}",
                    r.0, r.1, r.2, r.3, r.4, r.5
                )
            })
            .collect()
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        let Some((admin, name)) = self.postgres.take() else {
            return;
        };
        // Drop is synchronous; drop the database from a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut conn) =
                    <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await
                {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// An engine running on a test store; stopped when dropped or with [`TestEngine::stop`].
pub struct TestEngine {
    pub engine: Engine,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl std::ops::Deref for TestEngine {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        &self.engine
    }
}

impl TestEngine {
    /// Stops the appender after it has finished everything queued.
    pub async fn stop(mut self) {
        self.stop.cancel();
        let task = self.task.take().expect("running");
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("appender stops")
            .expect("appender did not panic");
    }

    pub async fn run(&self, command: Command) -> Result<Outcome, engine::CommandError> {
        self.engine.execute(command, meta()).await
    }

    /// Sends `title` to `recipients` in `category`, expecting success.
    pub async fn send(&self, recipients: &[&str], category: &str, title: &str) -> Outcome {
        self.run(Command::Send(send_cmd(recipients, category, title, None)))
            .await
            .expect("send accepted")
    }
}

impl Drop for TestEngine {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Rebuilds every projection from the log into scratch tables and checks that they equal the
/// live read model.
pub async fn assert_replay_finds_no_differences(db: &Db) {
    let report =
        belfry::projections::replay::verify(db, &belfry::projections::Projection::ALL, |_| {})
            .await
            .expect("verify");
    assert!(
        report.differences.is_empty(),
        "the read model differs from a replay of the log: {:?}",
        report.differences
    );
}

pub fn meta() -> Metadata {
    Metadata {
        actor: Some("service:test".to_owned()),
        ..Metadata::default()
    }
}

/// Parses a send as the API does: stamped now, with fresh notification ids.
pub fn parse_send(input: SendInput) -> SendNotification {
    SendNotification::parse(input, belfry::clock::now(), belfry::clock::notification_id)
        .expect("valid send")
}

pub fn send_cmd(
    recipients: &[&str],
    category: &str,
    title: &str,
    key: Option<&str>,
) -> SendNotification {
    parse_send(SendInput {
        recipients: recipients.iter().map(|r| r.to_string()).collect(),
        category: Some(category.to_owned()),
        title: title.to_owned(),
        idempotency_key: key.map(str::to_owned),
        ..SendInput::default()
    })
}

pub fn user(id: &str) -> belfry::domain::UserId {
    belfry::domain::UserId::parse(id).expect("valid user id")
}
