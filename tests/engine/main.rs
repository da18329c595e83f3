//! Integration tests of the engine core, each run against SQLite and Postgres.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod cli;
mod crash;
mod idempotency;
mod log;
mod read_model;
mod server;
mod transfer;
