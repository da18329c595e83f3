//! A fresh database per run: a new Postgres database `belfry_bench_<random>` on the given
//! server, dropped afterwards, or a SQLite file in a temporary directory.

use anyhow::Context;
use sqlx::Connection;

use crate::BackendArg;
use belfry::eventlog::Db;

pub struct Store {
    pub url: String,
    admin: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl Store {
    pub async fn create(backend: BackendArg, pg_admin: &str) -> anyhow::Result<Store> {
        match backend {
            BackendArg::Postgres => {
                let name = format!("belfry_bench_{:08x}", uuid::Uuid::new_v4().as_u128() as u32);
                let mut admin = sqlx::PgConnection::connect(pg_admin)
                    .await
                    .context("Failed to connect to the Postgres admin URL")?;
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .await?;
                admin.close().await?;
                let base = pg_admin
                    .rsplit_once('/')
                    .map(|(b, _)| b)
                    .unwrap_or(pg_admin);
                Ok(Store {
                    url: format!("{base}/{name}"),
                    admin: Some((pg_admin.to_owned(), name)),
                    _dir: None,
                })
            }
            BackendArg::Sqlite => {
                let dir = tempfile::Builder::new()
                    .prefix("belfry-bench-")
                    .tempdir_in(std::env::var("BELFRY_BENCH_TMP").unwrap_or("/tmp".into()))?;
                let url = format!("sqlite://{}/belfry.db", dir.path().display());
                Ok(Store {
                    url,
                    admin: None,
                    _dir: Some(dir),
                })
            }
        }
    }

    /// Connects with the server's defaults (16 connections; SQLite `synchronous=FULL`) and
    /// applies the event-log migrations.
    pub async fn db(&self) -> anyhow::Result<Db> {
        let db = Db::connect(
            &self.url,
            &belfry::app::db_options(&belfry::config::Settings::default()),
        )
        .await?;
        db.migrate().await?;
        Ok(db)
    }

    /// Drops the Postgres database (the SQLite directory goes with `self`).
    pub async fn drop_db(self) -> anyhow::Result<()> {
        if let Some((admin, name)) = &self.admin {
            let mut conn = sqlx::PgConnection::connect(admin).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await?;
            conn.close().await?;
        }
        Ok(())
    }

    /// Size of the database on disk in bytes.
    pub async fn size_bytes(&self, db: &Db) -> i64 {
        match db {
            Db::Postgres(pool) => sqlx::query_scalar("SELECT pg_database_size(current_database())")
                .fetch_one(pool)
                .await
                .unwrap_or(0),
            Db::Sqlite { .. } => {
                let path = self.url.trim_start_matches("sqlite://");
                ["", "-wal"]
                    .iter()
                    .filter_map(|s| std::fs::metadata(format!("{path}{s}")).ok())
                    .map(|m| m.len() as i64)
                    .sum()
            }
        }
    }
}
