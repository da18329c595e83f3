//! `belfry send`: one send from the shell, through the engine as the API sends it.

use std::process::ExitCode;

use anyhow::Context;
use belfry::app::open_db;
use belfry::clock;
use belfry::config::Settings;
use belfry::domain::notification::SendNotification;
use belfry::domain::schedule::{ScheduleId, ScheduleSend};
use belfry::domain::send_input::{RouteInput, ThrottleInput};
use belfry::domain::{Channel, Command, Priority, SendInput, Unless};
use belfry::engine::Engine;
use belfry::eventlog::Metadata;
use chrono::{DateTime, Utc};
use clap::Args;
use tokio_util::sync::CancellationToken;

/// The flags of `belfry send`: the fields of a send, as the GraphQL input has them.
#[derive(Args)]
pub struct SendArgs {
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
    /// An external delivery: CHANNEL[:SECONDS[:UNLESS]], e.g. `email` (at once) or
    /// `email:600:read` (after ten minutes unless read). Repeatable.
    #[arg(long = "route", value_name = "ROUTE", value_parser = parse_route)]
    routes: Vec<RouteInput>,
    /// This send's own throttle for each recipient: MAX/SECONDS (e.g. `3/86400`), or `off`
    /// for none, instead of the category's configured one.
    #[arg(long, value_name = "MAX/SECONDS|off", value_parser = parse_throttle)]
    throttle: Option<ThrottleInput>,
    /// Retrying with the same key returns the first result and sends nothing new.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Send it then (RFC 3339, e.g. `2027-01-15T09:00:00+01:00`) rather than now: a running
    /// server publishes it at that time.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    at: Option<DateTime<Utc>>,
    /// When its notifications leave the inbox (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = parse_time, conflicts_with = "ttl")]
    expires_at: Option<DateTime<Utc>>,
    /// Seconds after the send its notifications leave the inbox.
    #[arg(long, value_name = "SECONDS")]
    ttl: Option<i64>,
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("{s:?} is not an RFC 3339 time like 2027-01-15T09:00:00Z"))
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
            // No --route: the category's default routing.
            routes: (!self.routes.is_empty()).then_some(self.routes),
            throttle: self.throttle,
            idempotency_key: self.idempotency_key,
            expires_at: self.expires_at,
            ttl_seconds: self.ttl,
        })
    }
}

fn parse_priority(s: &str) -> Result<Priority, String> {
    Priority::parse(s).map_err(|e| e.message)
}

/// `MAX/SECONDS` or `off`; the send checks the numbers as it checks the API's.
fn parse_throttle(s: &str) -> Result<ThrottleInput, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(ThrottleInput {
            off: true,
            ..Default::default()
        });
    }
    let number = |n: &str| {
        n.trim()
            .parse()
            .map_err(|_| format!("{n:?} is not a number: a throttle is MAX/SECONDS or off"))
    };
    let (max, per_seconds) = s
        .split_once('/')
        .ok_or("a throttle is MAX/SECONDS (e.g. 3/86400) or off")?;
    Ok(ThrottleInput {
        max: Some(number(max)?),
        per_seconds: Some(number(per_seconds)?),
        off: false,
    })
}

/// `CHANNEL[:SECONDS[:UNLESS]]`; the send checks the rest as it checks the API's routes.
fn parse_route(s: &str) -> Result<RouteInput, String> {
    let mut parts = s.split(':');
    let channel = Channel::parse(parts.next().unwrap_or("")).map_err(|e| e.message)?;
    let delay_secs = match parts.next() {
        Some(secs) => secs
            .parse()
            .map_err(|_| format!("{secs:?} is not a number of seconds"))?,
        None => 0,
    };
    let unless = parts
        .next()
        .map(Unless::parse)
        .transpose()
        .map_err(|e| e.message)?;
    if parts.next().is_some() {
        return Err("a route is CHANNEL[:SECONDS[:UNLESS]]".to_owned());
    }
    Ok(RouteInput {
        channel,
        delay_secs,
        unless,
    })
}

pub async fn run(settings: Settings, args: SendArgs) -> anyhow::Result<ExitCode> {
    let at = args.at;
    let input = args.into_input()?;
    let defaults = belfry::app::send_defaults(&settings)?;
    let cmd = SendNotification::parse_with_defaults(
        input,
        &defaults,
        clock::now(),
        clock::notification_id,
    )?;
    let schedule_id = ScheduleId::from_uuid(clock::ordered_id());
    let command = match at.map(|at| ScheduleSend::new(schedule_id, at, cmd.clone())) {
        Some(scheduled) => match scheduled? {
            Some(scheduled) => Command::Schedule(scheduled),
            None => Command::Send(cmd),
        },
        None => Command::Send(cmd),
    };
    let (engine, stop, appender) = start_engine(&settings).await?;
    let outcome = engine.execute(command, cli_metadata()).await;
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
                "throttled": d.throttled,
                "position": d.position,
            })
        })
        .collect();
    let mut answer = serde_json::json!({ "notifications": created, "replayed": outcome.replayed });
    if let Some(id) = outcome.scheduled {
        answer["scheduled"] = serde_json::json!(id.to_string());
    }
    println!("{answer}");
    Ok(ExitCode::SUCCESS)
}

/// Who the command line's commands are recorded as.
pub(crate) fn cli_metadata() -> Metadata {
    Metadata {
        actor: Some("service:cli".to_owned()),
        correlation_id: Some(uuid::Uuid::new_v4()),
        ..Metadata::default()
    }
}

/// An engine on the configured store, its stop token and its appender task.
pub(crate) async fn start_engine(
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
