//! The benchmark suite: a load tool that runs one scenario against the engine in process or
//! against a real `belfry serve`, on SQLite or Postgres, and prints a table plus a JSON file
//! (`target/bench/<scenario>-<backend>.json`). `plot` draws the committed SVGs from those files.
//!
//! ```sh
//! cargo bench --bench belfry -- append --backend postgres
//! cargo bench --bench belfry -- plot
//! ```
//!
//! See `docs/benchmarks.md` for every scenario, its command and the measured figures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The allocator the `belfry` binary uses, so the in-process scenarios measure the engine as it ships.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod append;
mod broadcast;
mod data;
mod delivery;
mod digest;
mod http;
mod idle;
mod live;
mod plot;
mod queries;
mod replay;
mod report;
mod server;
mod sockets;
mod store;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    Sqlite,
    Postgres,
}

impl BackendArg {
    pub fn name(self) -> &'static str {
        match self {
            BackendArg::Sqlite => "sqlite",
            BackendArg::Postgres => "postgres",
        }
    }
}

#[derive(Parser, Debug)]
#[command(name = "belfry-bench", about = "Belfry's benchmark suite")]
struct Cli {
    /// Without one (as `cargo test --all-targets` runs this target), nothing is measured.
    #[command(subcommand)]
    scenario: Option<Scenario>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, global = true, hide = true)]
    bench: bool,
}

/// Options every scenario shares.
#[derive(clap::Args, Debug, Clone)]
pub struct Common {
    #[arg(long, value_enum, default_value = "sqlite")]
    pub backend: BackendArg,
    /// An admin URL of a Postgres server; each run creates a fresh database there and drops it.
    #[arg(
        long,
        env = "BELFRY_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub pg_admin: String,
    /// Where the JSON results go.
    #[arg(long, default_value = "target/bench")]
    pub out: PathBuf,
    /// Seconds each measured step runs.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// 1. Append throughput in process through the appender, and the raw limits of the database.
    Append(append::Args),
    /// 2. Sends through the GraphQL HTTP API of a real `belfry serve`.
    Http(http::Args),
    /// 3. End-to-end delivery to live `inbox` subscriptions over WebSocket.
    Live(live::Args),
    /// 4. Server memory with many idle, subscribed sockets.
    Idle(idle::Args),
    /// 5. Read queries on a large read model built by the replay path.
    Queries(queries::Args),
    /// 6. Replay: rebuild every projection from a large log, and the raw read rate of the log.
    Replay(replay::Args),
    /// 7. One send to many recipients: until every inbox row exists, and until it is live.
    Broadcast(broadcast::Args),
    /// 8. Deliveries by email and webhook to sinks in this process, against the raw limits.
    Delivery(delivery::Args),
    /// 10. Daily digests of many people due at one minute, sent to an SMTP sink in this process.
    Digest(digest::Args),
    /// Draw the SVG plots from the JSON results.
    Plot(plot::Args),
}

fn main() -> anyhow::Result<()> {
    // reqwest is built with rustls but no crypto provider of its own: ring, as the server's.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let Some(scenario) = cli.scenario else {
        println!("belfry-bench: no scenario given, nothing measured (see --help)");
        return Ok(());
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match scenario {
            Scenario::Append(a) => append::run(a).await,
            Scenario::Http(a) => http::run(a).await,
            Scenario::Live(a) => live::run(a).await,
            Scenario::Idle(a) => idle::run(a).await,
            Scenario::Queries(a) => queries::run(a).await,
            Scenario::Replay(a) => replay::run(a).await,
            Scenario::Broadcast(a) => broadcast::run(a).await,
            Scenario::Delivery(a) => delivery::run(a).await,
            Scenario::Digest(a) => digest::run(a).await,
            Scenario::Plot(a) => plot::run(a),
        }
    })
}
