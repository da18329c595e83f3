//! The `belfry` command line: a thin layer over the library, one module per group of
//! commands.

mod credentials;
mod deliveries;
mod recipients;
mod send;
mod serve;
mod store;
mod webhooks;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use belfry::config::{LogFormat, Overrides, Settings};
use clap::{Parser, Subcommand};

use credentials::{parse_ttl, KeysCmd};
use deliveries::DeliveriesCmd;
use recipients::RecipientsCmd;
use send::SendArgs;
use webhooks::WebhooksCmd;

/// mimalloc instead of the system allocator: requests allocate many small, short-lived
/// objects across threads, where glibc's malloc spent a fifth of the server's CPU
/// (decision 0020).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "belfry",
    version,
    about = "Event-sourced in-app notification engine"
)]
struct Cli {
    /// A TOML configuration file (settings: see the README).
    #[arg(long, global = true, env = "BELFRY_CONFIG")]
    config: Option<PathBuf>,
    /// `postgres://...` or `sqlite://path` [default: sqlite://<data-dir>/belfry.db]
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Directory of the embedded database [default: ./belfry-data]
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server.
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080]
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Create or upgrade the event log and create the projection tables of a new store.
    Migrate,
    /// Rebuild projections from the log and swap them in, or verify them.
    Replay {
        /// Only this projection (repeatable): inbox, unread_counters, preferences, idempotency_keys,
        /// deliveries.
        #[arg(long = "projection", value_name = "NAME")]
        projections: Vec<String>,
        /// Rebuild into scratch tables and report rows that differ from the live read model;
        /// exits 1 when any differ. Changes nothing.
        #[arg(long)]
        verify: bool,
    },
    /// Write the whole log as NDJSON, one event per line.
    Export {
        /// File to write [default: standard output]
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Load an NDJSON export into an empty store and rebuild the projections.
    Import {
        /// File to read [default: standard input]
        #[arg(long, short)]
        input: Option<PathBuf>,
    },
    /// Send a notification from the shell; prints the created notifications as JSON.
    // Boxed: a send's flags are by far the largest variant.
    Send(Box<SendArgs>),
    /// Print the GraphQL schema (SDL) the server serves.
    Schema,
    /// Mint a user token with the configured (or, embedded, the generated) secret.
    Token {
        /// The user id the token signs in as (its `sub`).
        #[arg(long)]
        user: String,
        /// How long it is valid: a number with s, m, h or d [default: 24h]
        #[arg(long, default_value = "24h", value_parser = parse_ttl)]
        ttl: std::time::Duration,
    },
    /// Manage service API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCmd,
    },
    /// The recipient directory: people's contact points (email, phone, locale, time zone).
    Recipients {
        #[command(subcommand)]
        command: RecipientsCmd,
    },
    /// The delivery log: list deliveries by status, retry one that failed for good.
    Deliveries {
        #[command(subcommand)]
        command: DeliveriesCmd,
    },
    /// The webhook endpoints: list them with their state, enable one that answered 410 Gone.
    Webhooks {
        #[command(subcommand)]
        command: WebhooksCmd,
    },
}

fn main() -> ExitCode {
    // One crypto provider for every TLS client of the process (decision 0032).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let overrides = Overrides {
        data_dir: cli.data_dir.clone(),
        database_url: cli.database_url.clone(),
        listen: match &cli.command {
            Cmd::Serve { listen } => *listen,
            _ => None,
        },
    };
    let settings = match Settings::load(cli.config.as_deref(), &overrides) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&settings);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, settings)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            // 1 is reserved for `replay --verify` finding differences.
            ExitCode::from(2)
        }
    }
}

fn init_tracing(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&settings.log));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match settings.log_format {
        LogFormat::Text => fmt.init(),
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

async fn run(command: Cmd, settings: Settings) -> anyhow::Result<ExitCode> {
    match command {
        Cmd::Serve { .. } => serve::run(settings).await,
        Cmd::Migrate => store::migrate(&settings).await,
        Cmd::Replay {
            projections,
            verify,
        } => store::replay(&settings, projections, verify).await,
        Cmd::Export { output } => store::export(&settings, output).await,
        Cmd::Import { input } => store::import(&settings, input).await,
        Cmd::Send(args) => send::run(settings, *args).await,
        Cmd::Schema => {
            print!("{}", belfry::api::graphql::sdl());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Token { user, ttl } => credentials::token(&settings, &user, ttl),
        Cmd::Keys { command } => credentials::keys(settings, command).await,
        Cmd::Recipients { command } => recipients::run(settings, command).await,
        Cmd::Deliveries { command } => deliveries::run(settings, command).await,
        Cmd::Webhooks { command } => webhooks::run(settings, command).await,
    }
}
