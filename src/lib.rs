//! Belfry: an event-sourced in-app notification engine.
//!
//! Every change is an event in an append-only log (Postgres, or an embedded SQLite file);
//! projections fold the log into the read model (inbox, unread counters, preferences), and
//! replay rebuilds them from the log at any time.
//!
//! # Layout
//! - [`domain`]: pure commands, events and decisions; no I/O.
//! - [`eventlog`]: the log on both backends: gap-free positions, batches, reads, doorbell.
//! - [`projections`]: the inline read model, its decision-state queries, replay and verify.
//! - [`recipients`]: the recipient directory: contact points, kept outside the log, erasable.
//! - [`engine`]: the appender (group commit) that runs commands against the log.
//! - [`delivery`]: the external channels (email, webhooks) and what they share.
//! - [`timekeeper`]: publishes scheduled sends at their time.
//! - [`live`]: the tailer and the hub that deliver per-user changes to live subscribers.
//! - [`api`]: the GraphQL schema and its HTTP and WebSocket transports.
//! - [`auth`]: user tokens (JWT) and service API keys.
//! - [`metrics`]: Prometheus metrics of this process.
//! - [`transfer`]: NDJSON export and import, to move a log between backends.
//! - [`clock`]: the one clock: timestamps at the backends' precision, time-ordered ids.
//! - [`config`]: the layered settings.
//! - [`server`]: the HTTP server: connection cap, header and idle timeouts, graceful stop.
//! - [`app`]: builds and runs the server with one shutdown path.
//! - [`web`]: the embedded `<belfry-inbox>` script and the demo page.

pub mod api;
pub mod app;
pub mod auth;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod engine;
pub mod eventlog;
pub mod live;
pub mod metrics;
pub mod projections;
pub mod recipients;
pub mod server;
pub mod timekeeper;
pub mod transfer;
pub mod web;
