//! One configuration tree, layered: defaults, then an optional TOML file, then `BELFRY_*`
//! environment variables, then command-line flags. Secrets never print. Settings that
//! deserialize are checked once more as a whole when loaded (`checks`), so a server that
//! starts has usable ones.

mod checks;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

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
    /// How log lines are written to stderr.
    pub log_format: LogFormat,
    /// Where people's mail clients reach this server, e.g. `https://notify.example.com`: the
    /// base of the one-click unsubscribe links in emails (none without it).
    pub public_url: Option<String>,
    /// Where people manage their notification preferences in the product's own app, e.g.
    /// `https://app.example.com/settings/notifications`: every email links to it ("Manage
    /// your notification preferences") and webhook bodies carry it as `preferencesUrl`. An
    /// absolute http(s) URL; none without it.
    pub preferences_url: Option<String>,
    /// The SMTP server of the email channel (`[smtp]`); email is not delivered without it.
    pub smtp: Option<crate::delivery::email::SmtpSettings>,
    /// Each category's default routes, for sends that name none (`[routing]`, e.g.
    /// `billing = [{ channel = "email" }]`).
    pub routing: std::collections::BTreeMap<String, Vec<RouteSetting>>,
    /// Each category's throttle for sends that name none (`[throttle]`, e.g.
    /// `marketing = { max = 3, per_seconds = 86400 }`): at most `max` of its notifications
    /// reach one person in any `per_seconds`. Categories left out are not throttled.
    pub throttle: std::collections::BTreeMap<String, ThrottleSetting>,
    /// What people's quiet hours hold back (`[quiet_hours]`).
    pub quiet_hours: QuietHoursSetting,
    /// How long notifications stay in the inbox (`[retention]`).
    pub retention: RetentionSetting,
    /// The webhook channel's endpoints (`[[webhooks]]`), each for its categories (or all).
    pub webhooks: Vec<crate::delivery::webhook::WebhookEndpoint>,
    /// Attempts of one delivery in all, the first included, before it fails for good.
    pub delivery_max_attempts: u32,
    /// Seconds a worker's claim on a delivery holds; a worker that dies mid-attempt lets
    /// another try again after this long.
    pub delivery_lease_secs: u64,
    /// Deliveries one node attempts at once.
    pub delivery_concurrency: usize,
    /// HS256 secret for user tokens. Unset on the embedded default: one is generated into
    /// `data_dir`. Required on Postgres unless `jwt_public_key` is set.
    pub jwt_secret: Option<SecretString>,
    /// PEM file with an RSA (RS256) or EC P-256 (ES256) public key that verifies user tokens,
    /// for tokens minted by an identity provider. Takes precedence over `jwt_secret`.
    pub jwt_public_key: Option<PathBuf>,
    /// Clock skew allowed when checking a token's expiry, in seconds.
    pub jwt_leeway_secs: u64,
    /// Seconds a server trusts an API key it has verified before looking it up again; a
    /// revoked key is refused everywhere within this time. `0` looks every request's key up.
    pub api_key_cache_secs: u64,
    /// A WebSocket must send `connection_init` within this many milliseconds.
    pub ws_init_timeout_ms: u64,
    /// Seconds between WebSocket pings the server sends to find dead peers.
    pub ws_keepalive_secs: u64,
    /// A WebSocket that cannot take a message within this many milliseconds is closed.
    pub ws_send_timeout_ms: u64,
    /// A WebSocket signed in as nobody that runs no operation is closed after this many
    /// seconds.
    pub ws_anonymous_idle_secs: u64,
    /// Largest GraphQL request (HTTP body or WebSocket message), in bytes.
    pub max_body_bytes: usize,
    /// Deepest query nesting accepted (at least 15 lets the standard introspection query in).
    pub query_depth: usize,
    /// Highest query complexity accepted (one per field, times `first` on lists).
    pub query_complexity: usize,
    /// Deepest nesting of brackets (`{`, `[`, `(`) in a document, and of its selections with
    /// fragments expanded; checked before the document is parsed. At most 256.
    pub query_nesting: usize,
    /// Most tokens (names, values, punctuation) in a document; checked before it is parsed.
    pub query_tokens: usize,
    /// Most selections in one operation with every fragment expanded where it is spread;
    /// checked before the document is validated.
    pub query_selections: usize,
    /// Most root fields in one mutation (each is a separate write).
    pub mutation_fields: usize,
    /// A connection is closed when a request's headers have not all arrived this many
    /// seconds after it opened or after its previous response (so also the keep-alive idle
    /// timeout).
    pub http_header_timeout_secs: u64,
    /// A request that has not been answered within this many seconds gets 408 (its body
    /// must arrive within this time too). WebSocket connections are not requests once open.
    pub http_request_timeout_secs: u64,
    /// Most HTTP connections (WebSockets included) open at once; more are answered 503 and
    /// closed. Lowered at start-up to fit the process's open-file limit.
    pub http_max_connections: usize,
    /// Milliseconds a request waits for a database connection before it is answered as
    /// unavailable (503, `UNAVAILABLE`).
    pub db_acquire_timeout_ms: u64,
    /// Most operations one WebSocket may run at once.
    pub max_operations_per_socket: usize,
    /// Changes buffered per live subscriber before it counts as too slow and is closed.
    pub subscriber_queue: usize,
    /// Milliseconds between log polls when no doorbell rings (the fallback to NOTIFY).
    pub live_poll_ms: u64,
    /// The demo page at `/` (a user token and a service key for anyone who opens it). Unset:
    /// on for the embedded default without a configured secret, off otherwise. `true` also
    /// works with `jwt_secret` (e.g. on Postgres); never on a server others can reach.
    pub demo: Option<bool>,
    /// Browser origins allowed to call the API (`https://app.example.com`), or `*` for any.
    pub cors_origins: Vec<String>,
}

/// One default route of a category, as the config file writes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSetting {
    /// `email` or `webhook`.
    pub channel: String,
    /// Seconds after the send; 0 (the default) is at once.
    #[serde(default)]
    pub after_seconds: u32,
    /// `read` or `seen`: what calls a delayed delivery off.
    #[serde(default)]
    pub unless: Option<String>,
}

/// One category's throttle, as the config file writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleSetting {
    /// The most notifications of the category one person gets per window (at least 1).
    pub max: i64,
    /// The window, in seconds (1 to 30 days).
    pub per_seconds: i64,
}

/// `[quiet_hours]`: which sends go through people's quiet hours (both by default). What
/// goes through is delivered at once on every channel and shows its toast in-app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuietHoursSetting {
    /// `urgent` priority sends go through quiet hours.
    pub urgent_goes_through: bool,
    /// `critical` sends go through quiet hours.
    pub critical_goes_through: bool,
}

impl Default for QuietHoursSetting {
    fn default() -> Self {
        let policy = crate::domain::quiet::QuietPolicy::default();
        Self {
            urgent_goes_through: policy.urgent_goes_through,
            critical_goes_through: policy.critical_goes_through,
        }
    }
}

impl QuietHoursSetting {
    pub fn policy(self) -> crate::domain::quiet::QuietPolicy {
        crate::domain::quiet::QuietPolicy {
            urgent_goes_through: self.urgent_goes_through,
            critical_goes_through: self.critical_goes_through,
        }
    }
}

/// `[retention]`: read notifications leave the inbox `read_days` after they were read, unread
/// ones `unread_days` after they were sent (`notification.expired`; the log keeps them). `0`
/// turns either off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSetting {
    pub read_days: u32,
    pub unread_days: u32,
}

impl Default for RetentionSetting {
    fn default() -> Self {
        Self {
            read_days: 30,
            unread_days: 365,
        }
    }
}

impl RetentionSetting {
    /// The longest retention the settings take: 100 years.
    pub const MAX_DAYS: u32 = 36_500;

    /// Each retention as a duration; `None` when off.
    pub fn policy(self) -> crate::projections::read::Retention {
        let days = |d: u32| (d > 0).then(|| chrono::Duration::days(i64::from(d)));
        crate::projections::read::Retention {
            read: days(self.read_days),
            unread: days(self.unread_days),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people: one line per event, fields as `name=value`.
    Text,
    /// For log shippers: one JSON object per line, with `timestamp`, `level`, `target`,
    /// `message`, the event's fields, and the enclosing span's (`request_id` on a request).
    Json,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("belfry-data"),
            database_url: None,
            max_connections: 16,
            sqlite_synchronous: "full".to_owned(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            batch_max: 512,
            queue_capacity: 4_096,
            log: "info,sqlx=warn".to_owned(),
            log_format: LogFormat::Text,
            public_url: None,
            preferences_url: None,
            routing: Default::default(),
            throttle: Default::default(),
            quiet_hours: Default::default(),
            retention: Default::default(),
            smtp: None,
            webhooks: Vec::new(),
            delivery_max_attempts: 8,
            delivery_lease_secs: 60,
            delivery_concurrency: 16,
            jwt_secret: None,
            jwt_public_key: None,
            jwt_leeway_secs: 30,
            api_key_cache_secs: 5,
            ws_init_timeout_ms: 10_000,
            ws_keepalive_secs: 30,
            ws_send_timeout_ms: 10_000,
            ws_anonymous_idle_secs: 30,
            max_body_bytes: 1 << 20,
            // The standard introspection query (graphql-js's, as GraphiQL, Apollo and code
            // generators send it) nests 15 deep.
            query_depth: 15,
            query_complexity: 2_000,
            query_nesting: 64,
            query_tokens: 10_000,
            query_selections: 5_000,
            mutation_fields: 10,
            http_header_timeout_secs: 10,
            http_request_timeout_secs: 30,
            http_max_connections: 10_000,
            db_acquire_timeout_ms: 2_000,
            max_operations_per_socket: 64,
            subscriber_queue: 1_024,
            live_poll_ms: 1_000,
            demo: None,
            cors_origins: vec!["*".to_owned()],
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
        settings.validate()?;
        Ok(settings)
    }

    /// Whether the database in effect is the embedded SQLite file (the zero-setup default).
    pub fn is_embedded(&self) -> bool {
        !self.database_url().starts_with("postgres")
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
}
