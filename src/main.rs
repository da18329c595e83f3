//! The `belfry` command line: a thin layer over the library.

use std::io::{BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use belfry::app::{open_db, Application};
use belfry::config::{Overrides, Settings};
use belfry::domain::Command;
use belfry::engine::input::SendInput;
use belfry::engine::{self, Engine};
use belfry::eventlog::Metadata;
use belfry::projections::{self, replay, Projection};
use clap::{Parser, Subcommand};
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
    Send {
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
        #[arg(long)]
        priority: Option<String>,
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
    },
    /// Append sends as fast as possible and print each acknowledged one (for load and crash tests).
    #[command(hide = true)]
    Loadgen {
        #[arg(long, default_value_t = 10_000)]
        count: u64,
        #[arg(long, default_value_t = 64)]
        concurrency: u64,
        #[arg(long, default_value_t = 100)]
        users: u64,
        /// Print `acked <notification id> <position>` for every acknowledged send.
        #[arg(long)]
        print_acks: bool,
    },
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
            let count = match input {
                Some(path) => {
                    let file = std::fs::File::open(&path)
                        .with_context(|| format!("Failed to open {}", path.display()))?;
                    belfry::transfer::import(&db, BufReader::new(file), true).await?
                }
                None => belfry::transfer::import(&db, std::io::stdin().lock(), true).await?,
            };
            println!(
                "imported {count} events into {} and rebuilt every projection",
                settings.database_label()
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Send {
            to,
            title,
            body,
            category,
            priority,
            critical,
            data,
            action_url,
            icon,
            idempotency_key,
        } => {
            let data = data
                .map(|d| serde_json::from_str(&d).context("--data must be a JSON object"))
                .transpose()?;
            let input = SendInput {
                recipients: to,
                category,
                priority,
                critical,
                title,
                body,
                data,
                action_url,
                icon,
                idempotency_key,
            };
            let cmd = input.parse(engine::now())?;
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
        Cmd::Loadgen {
            count,
            concurrency,
            users,
            print_acks,
        } => loadgen(settings, count, concurrency, users, print_acks).await,
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
    let (engine, appender) = Engine::start(db, settings.engine_config(), stop.clone()).await?;
    Ok((engine, stop, appender))
}

async fn serve(settings: Settings) -> anyhow::Result<ExitCode> {
    let app = Application::build(&settings).await?;
    let addr = app.local_addr()?;
    println!(
        "Belfry is listening on http://{addr} (database: {})",
        settings.database_label()
    );
    println!("  health: http://{addr}/healthz");
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        trigger.cancel();
    });
    app.run_until_stopped(shutdown).await?;
    Ok(ExitCode::SUCCESS)
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
    let report = if verify {
        replay::verify(&db, &selected, true).await?
    } else {
        replay::rebuild(&db, &selected, true).await?
    };
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

async fn loadgen(
    settings: Settings,
    count: u64,
    concurrency: u64,
    users: u64,
    print_acks: bool,
) -> anyhow::Result<ExitCode> {
    let (engine, stop, appender) = start_engine(&settings).await?;
    let started = Instant::now();
    let (acks, mut acked) = tokio::sync::mpsc::channel::<String>(1_024);
    let per_task = count.div_ceil(concurrency.max(1));
    let mut tasks = Vec::new();
    for t in 0..concurrency.max(1) {
        let engine = engine.clone();
        let acks = acks.clone();
        let n = per_task.min(count.saturating_sub(t * per_task));
        tasks.push(tokio::spawn(async move {
            for i in 0..n {
                let user = format!("user-{}", (t * per_task + i) % users.max(1));
                let input = SendInput {
                    recipients: vec![user],
                    title: format!("Load {t}-{i}"),
                    ..SendInput::default()
                };
                let cmd = input.parse(engine::now())?;
                let outcome = engine.execute(Command::Send(cmd), cli_metadata()).await?;
                for d in outcome.deliveries {
                    if print_acks {
                        // The receiver only stops when stdout fails; then stop sending too.
                        if acks
                            .send(format!("acked {} {}", d.notification_id, d.position))
                            .await
                            .is_err()
                        {
                            return Ok(());
                        }
                    }
                }
            }
            anyhow::Ok(())
        }));
    }
    drop(acks);
    let printer = tokio::task::spawn_blocking(move || {
        let mut out = std::io::stdout().lock();
        while let Some(line) = acked.blocking_recv() {
            // Flush each line: a crash test reads what was acknowledged before it killed us.
            if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                break;
            }
        }
    });
    for task in tasks {
        task.await.context("load task panicked")??;
    }
    let elapsed = started.elapsed();
    stop.cancel();
    let _ = appender.await;
    let _ = printer.await;
    eprintln!(
        "loadgen: {count} sends with {concurrency} concurrent senders in {:.2} s ({:.0} sends/s)",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}
