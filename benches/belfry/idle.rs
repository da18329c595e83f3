//! Scenario 4, against a real `belfry serve`: server memory per connected, subscribed, idle
//! socket ([`sockets`](crate::sockets)), measured at growing numbers of sockets.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::http::send;
use crate::report;
use crate::server::Server;
use crate::sockets::{connect_all, finish, Shared};
use crate::Common;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    common: Common,
    /// Connected sockets to measure at, cumulatively.
    #[arg(long, value_delimiter = ',', default_value = "10000,50000")]
    connections: Vec<usize>,
    /// Only connect and sign in, without subscribing: what a socket costs by itself.
    #[arg(long)]
    no_subscribe: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let backend = args.common.backend.name();
    let server = Server::start(args.common.backend, &args.common.pg_admin, &[]).await?;
    let result = async {
        let shared = Shared::new(1);
        let cancel = CancellationToken::new();
        // One socket and one send first, so what is allocated once is not counted per socket.
        let mut tasks = connect_all(&server, 0, 1, 1, !args.no_subscribe, &shared, &cancel).await?;
        send(&reqwest::Client::new(), &server.url, &server.key, &["u0".to_owned()], "b0").await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let base = report::rss_kib(server.pid);
        let base_tool = report::rss_kib(std::process::id());
        let mut connected = 1;
        let mut steps = Vec::new();
        // Every socket is a file descriptor in the server (and in this tool).
        let cap = server.nofile.saturating_sub(500) as usize;
        for &asked in &args.connections {
            let n = asked.min(cap);
            if n < asked {
                println!("  {asked} sockets asked, {n} possible: the open-file limit is {}", server.nofile);
            }
            if n <= connected {
                continue;
            }
            let started = Instant::now();
            tasks.extend(connect_all(&server, connected, n - connected, n, !args.no_subscribe, &shared, &cancel).await?);
            connected = n.max(connected);
            let connect_s = started.elapsed().as_secs_f64();
            tokio::time::sleep(Duration::from_secs(2)).await;
            let rss = report::rss_kib(server.pid);
            let per = (rss.saturating_sub(base)) as f64 / (connected - 1) as f64;
            let tool = report::rss_kib(std::process::id());
            println!("  {connected} sockets: server RSS {} MiB, {per:.1} KiB per socket", rss / 1024);
            steps.push(json!({
                "asked": asked,
                "nofile_limit": server.nofile,
                "connections": connected,
                "connect_seconds": report::round(connect_s),
                "server_rss_kib": rss,
                "server_rss_base_kib": base,
                "kib_per_connection": report::round(per),
                "tool_rss_kib": tool,
                "tool_kib_per_connection": report::round(tool.saturating_sub(base_tool) as f64 / (connected - 1) as f64),
                "subscribed": !args.no_subscribe,
                "subscribers": server.gauge("belfry_live_subscribers").await?,
            }));
        }
        let _ = finish(tasks, &cancel).await;
        anyhow::Ok(steps)
    }
    .await;
    server.stop().await?;
    let steps = result?;
    report::print_table(
        &format!(
            "idle {} sockets, {backend}",
            if args.no_subscribe {
                "signed-in"
            } else {
                "subscribed"
            }
        ),
        &["sockets", "server RSS MiB", "KiB/socket", "connect s"],
        &steps
            .iter()
            .map(|s| {
                vec![
                    s["connections"].to_string(),
                    format!(
                        "{:.0}",
                        s["server_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0
                    ),
                    format!("{:.1}", s["kib_per_connection"].as_f64().unwrap_or(0.0)),
                    format!("{:.1}", s["connect_seconds"].as_f64().unwrap_or(0.0)),
                ]
            })
            .collect::<Vec<_>>(),
    );
    report::write_json(
        &args.common.out,
        if args.no_subscribe {
            "idle-unsubscribed"
        } else {
            "idle"
        },
        backend,
        &json!({ "scenario": "idle", "environment": report::environment(backend), "steps": steps }),
    )
}
