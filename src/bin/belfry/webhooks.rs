//! `belfry webhooks list|enable`: the configured webhook endpoints and their state, and an
//! operator turning one back on after it answered 410 Gone, through the engine as the API
//! does it.

use std::process::ExitCode;

use belfry::app::open_db;
use belfry::clock;
use belfry::config::Settings;
use belfry::delivery::endpoints;
use belfry::domain::endpoint::{ChangeEndpoint, EndpointChange};
use belfry::domain::Command;
use belfry::eventlog::EventLog;
use clap::Subcommand;

use crate::send::{cli_metadata, start_engine};

#[derive(Subcommand)]
pub enum WebhooksCmd {
    /// Every configured endpoint with its state, one JSON object a line.
    List,
    /// Turns an endpoint that answered 410 Gone back on; its failed deliveries stay failed
    /// (`belfry deliveries retry` sends each again).
    Enable {
        /// The endpoint's name, as `belfry webhooks list` shows it.
        name: String,
    },
}

pub async fn run(settings: Settings, command: WebhooksCmd) -> anyhow::Result<ExitCode> {
    match command {
        WebhooksCmd::List => list(&settings).await,
        WebhooksCmd::Enable { name } => enable(&settings, &name).await,
    }
}

async fn list(settings: &Settings) -> anyhow::Result<ExitCode> {
    let log = EventLog::new(open_db(settings).await?);
    for endpoint in &settings.webhooks {
        let state = endpoints::state(&log, endpoint.name()).await?;
        let disabled = state.disabled.as_ref();
        println!(
            "{}",
            serde_json::json!({
                "name": endpoint.name(),
                "origin": endpoint.origin(),
                "categories": endpoint.categories(),
                "enabled": disabled.is_none(),
                "disabledAt": disabled.map(|d| d.at),
                "disabledByDelivery": disabled.map(|d| d.delivery_id),
                "disabledError": disabled.map(|d| &d.error),
            })
        );
    }
    eprintln!("{} webhook endpoints configured", settings.webhooks.len());
    Ok(ExitCode::SUCCESS)
}

async fn enable(settings: &Settings, name: &str) -> anyhow::Result<ExitCode> {
    let Some(endpoint) = settings.webhooks.iter().find(|e| e.name().as_str() == name) else {
        anyhow::bail!(
            "no webhook endpoint named {name:?} is configured (see belfry webhooks list)"
        );
    };
    let (engine, stop, appender) = start_engine(settings).await?;
    let command = Command::ChangeEndpoint(ChangeEndpoint {
        endpoint: endpoint.name().clone(),
        change: EndpointChange::Enable,
        at: clock::now(),
    });
    let outcome = engine.execute(command, cli_metadata()).await;
    stop.cancel();
    let _ = appender.await;
    match outcome {
        Err(e) => anyhow::bail!("{e}"),
        Ok(outcome) if outcome.events.is_empty() => {
            println!("webhook endpoint {name} was enabled already");
            Ok(ExitCode::SUCCESS)
        }
        Ok(_) => {
            println!("webhook endpoint {name} is enabled");
            Ok(ExitCode::SUCCESS)
        }
    }
}
