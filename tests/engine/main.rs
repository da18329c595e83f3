//! Integration tests of the engine core, each run against SQLite and Postgres.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod app;
mod auth;
mod connections;
mod helpers;
mod peers;

mod channels;
mod cli;
mod crash;
mod deliver;
mod deliver_faults;
mod email;
mod endpoints;
mod graphiql;
mod hostile;
mod idempotency;
mod live;
mod loadgen;
mod log;
mod logs;
mod outage;
mod over_http;
mod protocol;
mod quiet_hours;
mod read_model;
mod recipients;
mod routes;
mod scheduled;
mod server;
mod throttle;
mod tls;
mod transfer;
mod web;
mod webhook;
