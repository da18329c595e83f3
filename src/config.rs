//! One configuration tree, layered: defaults, then an optional TOML file, then `BELFRY_*`
//! environment variables, then command-line flags. Secrets never print.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::engine::EngineConfig;
use crate::eventlog::DbOptions;

/// Every setting, with its default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Where the embedded SQLite database (and later, generated secrets) live.
    pub data_dir: PathBuf,
    /// `postgres://...` or `sqlite://path`; unset means `sqlite://<data_dir>/belfry.db`.
    pub database_url: Option<SecretString>,
    /// Connections per process (Postgres), readers (SQLite, at most 8).
    pub max_connections: u32,
    /// SQLite `synchronous`: `full` (default: acknowledged commands survive power loss) or `normal`.
    pub sqlite_synchronous: String,
    /// Address `serve` listens on.
    pub listen: SocketAddr,
    /// The most commands the appender puts into one transaction.
    pub batch_max: usize,
    /// Commands waiting for the appender before senders have to wait.
    pub queue_capacity: usize,
    /// Log filter, e.g. `info` or `belfry=debug` (`RUST_LOG` wins when set).
    pub log: String,
}

impl Default for Settings {
    fn default() -> Self {
        let engine = EngineConfig::default();
        Self {
            data_dir: PathBuf::from("belfry-data"),
            database_url: None,
            max_connections: 16,
            sqlite_synchronous: "full".to_owned(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            batch_max: engine.batch_max,
            queue_capacity: engine.queue_capacity,
            log: "info,sqlx=warn".to_owned(),
        }
    }
}

/// Settings given as command-line flags; they win over everything else.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
}

impl Settings {
    /// Loads the layered settings. `file`, when given, must exist.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Settings> {
        let mut figment = Figment::new();
        if let Some(file) = file {
            anyhow::ensure!(
                file.is_file(),
                "configuration file {} not found",
                file.display()
            );
            figment = figment.merge(Toml::file(file));
        }
        let settings: Settings = figment
            .merge(Env::prefixed("BELFRY_"))
            .merge(Serialized::defaults(overrides))
            .extract()
            .context("Failed to read the configuration")?;
        anyhow::ensure!(
            matches!(settings.sqlite_synchronous.as_str(), "full" | "normal"),
            "sqlite_synchronous must be \"full\" or \"normal\""
        );
        Ok(settings)
    }

    /// The database URL in effect (may hold a password: do not print it, see [`Self::database_label`]).
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose_secret().to_owned(),
            None => format!("sqlite://{}", self.data_dir.join("belfry.db").display()),
        }
    }

    /// The database URL with any password hidden, for messages.
    pub fn database_label(&self) -> String {
        crate::eventlog::db::redact(&self.database_url())
    }

    pub fn db_options(&self) -> DbOptions {
        DbOptions {
            max_connections: self.max_connections,
            sqlite_synchronous_full: self.sqlite_synchronous == "full",
        }
    }

    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            batch_max: self.batch_max,
            queue_capacity: self.queue_capacity,
        }
    }
}
