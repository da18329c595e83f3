//! Scenario 2: one-recipient sends through the GraphQL HTTP API of a real `belfry serve` with
//! many concurrent clients (each sends one after another on a kept-alive connection).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::report::{self, CpuWatch, Latencies};
use crate::server::Server;
use crate::{data, Common};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    common: Common,
    #[arg(long, value_delimiter = ',', default_value = "64")]
    clients: Vec<usize>,
    #[arg(long, default_value_t = 10_000)]
    users: u64,
}

pub const SEND: &str = "mutation($input: SendNotificationInput!) { sendNotification(input: $input) { deliveries { notificationId } } }";

/// Sends one notification through the API; `Ok(false)` when the response carries errors.
pub async fn send(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    recipients: &[String],
    title: &str,
) -> anyhow::Result<bool> {
    send_with(http, url, key, SEND, recipients, title).await
}

/// Like [`send`] with another selection (`query`) on the mutation's result.
pub async fn send_with(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    query: &str,
    recipients: &[String],
    title: &str,
) -> anyhow::Result<bool> {
    let response: Value = http
        .post(format!("{url}/graphql"))
        .bearer_auth(key)
        .json(&json!({ "query": query, "variables": { "input": { "recipients": recipients, "title": title } } }))
        .send()
        .await?
        .json()
        .await?;
    Ok(response.get("errors").is_none())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let backend = args.common.backend.name();
    let server = Server::start(args.common.backend, &args.common.pg_admin, &[]).await?;
    let result = measure(&args, &server).await;
    server.stop().await?;
    let rows = result?;
    report::print_table(
        &format!("sends through GraphQL over HTTP, {backend}"),
        &[
            "clients", "sends/s", "errors", "p50 ms", "p99 ms", "max ms", "cpu",
        ],
        &rows
            .iter()
            .map(|r| {
                vec![
                    r["clients"].to_string(),
                    report::fmt_rate(r["per_second"].as_f64().unwrap_or(0.0)),
                    r["errors"].to_string(),
                    report::fmt_ms(r["latency"]["p50_ms"].as_f64().unwrap_or(f64::NAN)),
                    report::fmt_ms(r["latency"]["p99_ms"].as_f64().unwrap_or(f64::NAN)),
                    report::fmt_ms(r["latency"]["max_ms"].as_f64().unwrap_or(f64::NAN)),
                    report::cpu_line(&r["cpu"]),
                ]
            })
            .collect::<Vec<_>>(),
    );
    report::write_json(
        &args.common.out,
        "http",
        backend,
        &json!({
            "scenario": "http",
            "environment": report::environment(backend),
            "users": args.users,
            "steps": rows,
        }),
    )
}

async fn measure(args: &Args, server: &Server) -> anyhow::Result<Vec<Value>> {
    let mut rows = Vec::new();
    for &clients in &args.clients {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(clients)
            .build()?;
        let cpu = CpuWatch::start(Some(server.pid));
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(args.common.seconds);
        let mut tasks = Vec::new();
        for c in 0..clients {
            let (http, url, key, users) = (
                http.clone(),
                server.url.clone(),
                server.key.clone(),
                args.users,
            );
            tasks.push(tokio::spawn(async move {
                let (mut latency, mut errors, mut i) = (Latencies::default(), 0_u64, 0_u64);
                while Instant::now() < deadline {
                    let n = i * clients as u64 + c as u64;
                    let t = Instant::now();
                    if !send(
                        &http,
                        &url,
                        &key,
                        &[data::user(n, users)],
                        &format!("http {n}"),
                    )
                    .await?
                    {
                        errors += 1;
                    }
                    latency.push(t.elapsed());
                    i += 1;
                }
                anyhow::Ok((latency, errors))
            }));
        }
        let (mut latency, mut errors) = (Latencies::default(), 0);
        for task in tasks {
            let (l, e) = task.await??;
            latency.extend(l);
            errors += e;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let cpu = cpu.stop();
        let latency = latency.sorted();
        rows.push(json!({
            "clients": clients,
            "sends": latency.len(),
            "errors": errors,
            "seconds": report::round(elapsed),
            "per_second": report::round(latency.len() as f64 / elapsed),
            "latency": latency.summary(),
            "cpu": cpu,
        }));
    }
    Ok(rows)
}
