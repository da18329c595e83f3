//! The `belfry` command line: a thin layer over the library.

use std::io::{BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use belfry::app::{open_db, Application};
use belfry::auth::secret::token_verifier;
use belfry::auth::{ApiKeys, Scope};

/// mimalloc instead of the system allocator: requests allocate many small, short-lived
/// objects across threads, where glibc's malloc spent a fifth of the server's CPU
/// (decision 0020).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use belfry::clock;
use belfry::config::{Overrides, Settings};
use belfry::domain::notification::SendNotification;
use belfry::domain::{Command, Priority, SendInput};
use belfry::engine::Engine;
use belfry::eventlog::Metadata;
use belfry::projections::replay::{self, Progress};
use belfry::projections::{self, Projection};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

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
        /// Only this projection (repeatable): inbox, unread_counters, preferences, idempotency_keys.
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
    Send(SendArgs),
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
}

/// The flags of `belfry send`: the fields of a send, as the GraphQL input has them.
#[derive(Args)]
struct SendArgs {
    /// A recipient's user id (repeatable).
    #[arg(long = "to", required = true, value_name = "USER")]
    to: Vec<String>,
    #[arg(long)]
    title: String,
    #[arg(long)]
    body: Option<String>,
    #[arg(long)]
    category: Option<String>,
    /// low, normal, high or urgent
    #[arg(long, value_parser = parse_priority)]
    priority: Option<Priority>,
    /// Deliver even to people who muted the category.
    #[arg(long)]
    critical: bool,
    /// A JSON object of application data.
    #[arg(long)]
    data: Option<String>,
    #[arg(long)]
    action_url: Option<String>,
    #[arg(long)]
    icon: Option<String>,
    /// Retrying with the same key returns the first result and sends nothing new.
    #[arg(long)]
    idempotency_key: Option<String>,
}

impl SendArgs {
    fn into_input(self) -> anyhow::Result<SendInput> {
        let data = self
            .data
            .map(|d| serde_json::from_str(&d).context("--data must be a JSON object"))
            .transpose()?;
        Ok(SendInput {
            recipients: self.to,
            category: self.category,
            priority: self.priority,
            critical: self.critical,
            title: self.title,
            body: self.body,
            data,
            action_url: self.action_url,
            icon: self.icon,
            idempotency_key: self.idempotency_key,
        })
    }
}

fn parse_priority(s: &str) -> Result<Priority, String> {
    Priority::parse(s).map_err(|e| e.message)
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Create a key; prints it once (only its hash is stored).
    Create {
        /// What the key is for, e.g. the service's name.
        #[arg(long)]
        name: String,
        /// send or admin (repeatable) [default: send]
        #[arg(long = "scope", value_name = "SCOPE", value_parser = parse_scope)]
        scopes: Vec<Scope>,
    },
    /// Revoke a key by its id (the part after `bfk_`, before the next `_`).
    Revoke { id: String },
    /// List keys (never the keys themselves).
    List,
}

fn parse_scope(s: &str) -> Result<Scope, String> {
    Scope::parse(s)
}

fn parse_ttl(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let split = s.len().saturating_sub(1);
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30m, 24h or 7d"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3_600,
        "d" => n * 86_400,
        _ => return Err(format!("{s:?} is not a duration like 30m, 24h or 7d")),
    };
    if secs == 0 {
        return Err("a token must be valid for some time".to_owned());
    }
    Ok(std::time::Duration::from_secs(secs))
}

fn main() -> ExitCode {
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
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn run(command: Cmd, settings: Settings) -> anyhow::Result<ExitCode> {
    match command {
        Cmd::Serve { .. } => serve(settings).await,
        Cmd::Migrate => {
            let db = open_db(&settings).await?;
            let problems = projections::ensure(&db).await?;
            println!("event log migrated: {}", settings.database_label());
            for p in &problems {
                println!("needs `belfry replay`: {p}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Replay {
            projections,
            verify,
        } => replay_cmd(settings, projections, verify).await,
        Cmd::Export { output } => {
            let db = open_db(&settings).await?;
            let count = match output {
                Some(path) => {
                    let file = std::fs::File::create(&path)
                        .with_context(|| format!("Failed to create {}", path.display()))?;
                    belfry::transfer::export(&db, &mut std::io::BufWriter::new(file)).await?
                }
                None => belfry::transfer::export(&db, &mut std::io::stdout().lock()).await?,
            };
            eprintln!("exported {count} events");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Import { input } => {
            let db = open_db(&settings).await?;
            let mut bar = ReplayBar::default();
            let count = match input {
                Some(path) => {
                    let file = std::fs::File::open(&path)
                        .with_context(|| format!("Failed to open {}", path.display()))?;
                    belfry::transfer::import(&db, BufReader::new(file), |p| bar.show(p)).await?
                }
                None => {
                    belfry::transfer::import(&db, std::io::stdin().lock(), |p| bar.show(p)).await?
                }
            };
            bar.clear();
            println!(
                "imported {count} events into {} and rebuilt every projection",
                settings.database_label()
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Send(args) => {
            let input = args.into_input()?;
            let cmd = SendNotification::parse(input, clock::now(), clock::notification_id)?;
            let (engine, stop, appender) = start_engine(&settings).await?;
            let outcome = engine.execute(Command::Send(cmd), cli_metadata()).await;
            stop.cancel();
            let _ = appender.await;
            let outcome = outcome?;
            let created: Vec<serde_json::Value> = outcome
                .deliveries
                .iter()
                .map(|d| {
                    serde_json::json!({
                        "id": d.notification_id.to_string(),
                        "recipient": d.recipient.as_str(),
                        "suppressed": d.suppressed,
                        "position": d.position,
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::json!({ "notifications": created, "replayed": outcome.replayed })
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Schema => {
            print!("{}", belfry::api::graphql::sdl());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Token { user, ttl } => {
            let user = belfry::domain::UserId::parse(&user).map_err(|e| anyhow::anyhow!("{e}"))?;
            let (tokens, _) = token_verifier(&settings)?;
            println!("{}", tokens.mint(&user, ttl)?);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Keys { command } => keys_cmd(settings, command).await,
    }
}

fn cli_metadata() -> Metadata {
    Metadata {
        actor: Some("service:cli".to_owned()),
        correlation_id: Some(uuid::Uuid::new_v4()),
        ..Metadata::default()
    }
}

async fn start_engine(
    settings: &Settings,
) -> anyhow::Result<(Engine, CancellationToken, tokio::task::JoinHandle<()>)> {
    let db = open_db(settings).await?;
    let stop = CancellationToken::new();
    let (engine, appender) = Engine::start(
        db,
        belfry::app::engine_config(settings, belfry::metrics::Metrics::new()),
        stop.clone(),
    )
    .await?;
    Ok((engine, stop, appender))
}

async fn serve(settings: Settings) -> anyhow::Result<ExitCode> {
    let app = Application::build(&settings).await?;
    let addr = app.local_addr()?;
    println!(
        "Belfry is listening on http://{addr} (database: {})",
        settings.database_label()
    );
    let shown = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    println!("  GraphiQL: http://{shown}/graphiql");
    println!("  health:   http://{shown}/healthz   metrics: http://{shown}/metrics");
    if let Some(demo) = app.demo() {
        println!("  demo:     http://{shown}/   (the inbox component signed in as {:?}, and a form to send to it)", demo.user.as_str());
        if !addr.ip().is_loopback() {
            println!("  warning: the demo page hands its service key to anyone who can open it; set demo = false on a reachable server");
        }
        println!("Demo credentials (set demo = false, or configure jwt_secret, to turn them off):");
        println!(
            "  user token for {:?}, valid {} days (GraphiQL headers: {{\"Authorization\": \"Bearer <token>\"}}):",
            demo.user.as_str(),
            belfry::api::demo::DEMO_TOKEN_TTL.as_secs() / 86_400
        );
        println!("    {}", demo.token);
        println!("  service key (scopes send, admin):");
        println!("    {}", demo.service_key);
    }
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        trigger.cancel();
    });
    app.run_until_stopped(shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

async fn keys_cmd(settings: Settings, command: KeysCmd) -> anyhow::Result<ExitCode> {
    let db = open_db(&settings).await?;
    let keys = ApiKeys::new(db.clone());
    let code = match command {
        KeysCmd::Create { name, scopes } => {
            let scopes = if scopes.is_empty() {
                vec![Scope::Send]
            } else {
                scopes
            };
            let (key, info) = keys.create(&name, &scopes).await?;
            eprintln!(
                "created key {} ({}) with scopes {}; it is shown only now:",
                info.id,
                info.name,
                scope_list(&info.scopes)
            );
            println!("{key}");
            ExitCode::SUCCESS
        }
        KeysCmd::Revoke { id } => {
            if keys.revoke(&id).await? {
                println!("revoked key {id}");
                eprintln!(
                    "running servers refuse it within their api_key_cache_secs ({} s with this configuration)",
                    settings.api_key_cache_secs
                );
                ExitCode::SUCCESS
            } else {
                eprintln!("error: no active key with id {id:?}");
                ExitCode::from(2)
            }
        }
        KeysCmd::List => {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:<14} {:<12} {:<12} {:<33} revoked",
                "id", "name", "scopes", "created"
            )?;
            for k in keys.list().await? {
                writeln!(
                    out,
                    "{:<14} {:<12} {:<12} {:<33} {}",
                    k.id,
                    k.name,
                    scope_list(&k.scopes),
                    k.created_at.to_rfc3339(),
                    k.revoked_at
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_else(|| "-".to_owned())
                )?;
            }
            ExitCode::SUCCESS
        }
    };
    db.close().await;
    Ok(code)
}

fn scope_list(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn replay_cmd(
    settings: Settings,
    names: Vec<String>,
    verify: bool,
) -> anyhow::Result<ExitCode> {
    let selected: Vec<Projection> = if names.is_empty() {
        Projection::ALL.to_vec()
    } else {
        names
            .iter()
            .map(|n| {
                Projection::parse(n).with_context(|| {
                    let known: Vec<&str> = Projection::ALL.iter().map(|p| p.name()).collect();
                    format!("unknown projection {n:?}; known: {}", known.join(", "))
                })
            })
            .collect::<anyhow::Result<_>>()?
    };
    let db = open_db(&settings).await?;
    let names: Vec<&str> = selected.iter().map(|p| p.name()).collect();
    let mut bar = ReplayBar::default();
    let report = if verify {
        replay::verify(&db, &selected, |p| bar.show(p)).await?
    } else {
        replay::rebuild(&db, &selected, |p| bar.show(p)).await?
    };
    bar.clear();
    let verb = if verify { "verified" } else { "rebuilt" };
    println!(
        "{verb} {} from {} events in {:.2} s ({:.0} events/s)",
        names.join(", "),
        report.events,
        report.elapsed.as_secs_f64(),
        report.events_per_second()
    );
    if !verify {
        return Ok(ExitCode::SUCCESS);
    }
    if report.differences.is_empty() {
        println!("no differences: the live read model equals a rebuild from the log");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} rows differ:", report.differences.len());
    for d in &report.differences {
        println!(
            "  {} {} (only in {})",
            d.projection.name(),
            d.key,
            d.only_in
        );
    }
    Ok(ExitCode::from(1))
}

/// The progress bar of a replay (`belfry replay`, and the rebuild after `belfry import`),
/// drawn from the replay's [`Progress`] reports on stderr, and not at all when stderr is not
/// a terminal.
#[derive(Default)]
struct ReplayBar(Option<ProgressBar>);

impl ReplayBar {
    fn show(&mut self, progress: Progress) {
        match &self.0 {
            Some(bar) => bar.set_position(progress.events),
            // The first report: the build starts, from 0, towards the head it began at.
            None => self.0 = Some(replay_bar(progress.head)),
        }
    }

    /// Clears the bar once the replay is done. A replay that fails leaves it standing above
    /// the error instead.
    fn clear(self) {
        if let Some(bar) = self.0 {
            bar.finish_and_clear();
        }
    }
}

fn replay_bar(head: u64) -> ProgressBar {
    let bar = ProgressBar::new(head);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} replaying [{bar:40}] {pos}/{len} events  {per_sec}  ETA {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
