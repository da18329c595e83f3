//! Scenario 7, against a real `belfry serve`: one send to many recipients, some of them
//! connected with a live `inbox` subscription ([`sockets`](crate::sockets)): until every inbox
//! row exists (the send's acknowledgement, checked with a count), and until every connected
//! recipient has it live.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::http::send_with;
use crate::report::{self, CpuWatch};
use crate::server::Server;
use crate::sockets::{connect_all, drain, finish, Shared};
use crate::Common;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    common: Common,
    /// Recipients of the one send.
    #[arg(long, default_value_t = 100_000)]
    recipients: usize,
    /// How many of them are connected with a live subscription.
    #[arg(long, default_value_t = 10_000)]
    connected: usize,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let backend = args.common.backend.name();
    let server = Server::start(
        args.common.backend,
        &args.common.pg_admin,
        &[("BELFRY_MAX_BODY_BYTES", (64 << 20).to_string())],
    )
    .await?;
    let result = async {
        let shared = Shared::new(1);
        let cancel = CancellationToken::new();
        let connected = args.connected.min(args.recipients);
        let tasks = connect_all(&server, 0, connected, connected, true, &shared, &cancel).await?;
        println!(
            "  {connected} of {} recipients connected; sending",
            args.recipients
        );
        let recipients: Vec<String> = (0..args.recipients).map(|k| format!("u{k}")).collect();
        let db = server.db().await?;
        let count = |db: belfry::eventlog::Db| async move {
            belfry::on_reader!(&db, |p| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM inbox")
                .fetch_one(p)
                .await)
        };
        let cpu = CpuWatch::start(Some(server.pid));
        let started = Instant::now();
        shared.started(0);
        // Watch the inbox from a connection of our own: the rows appear when the send commits.
        // Until the last recipient's row shows, ask only for that one (an index lookup), so
        // the watching does not load the database it measures; then count every row.
        let poll = {
            let (db, target) = (db.clone(), args.recipients as i64);
            let last = format!("u{}", args.recipients.saturating_sub(1));
            tokio::spawn(async move {
                loop {
                    let seen = belfry::on_reader!(&db, |p| sqlx::query_scalar::<_, bool>(
                        "SELECT EXISTS (SELECT 1 FROM inbox WHERE recipient = $1)"
                    )
                    .bind(&last)
                    .fetch_one(p)
                    .await)?;
                    if seen && count(db.clone()).await? >= target {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                anyhow::Ok(started.elapsed().as_secs_f64())
            })
        };
        // The sender asks for no per-recipient result, so the ack is not a 100,000-item reply.
        let http = reqwest::Client::new();
        let query = "mutation($input: SendNotificationInput!) { sendNotification(input: $input) { replayed } }";
        let ok = send_with(&http, &server.url, &server.key, query, &recipients, "b0").await?;
        anyhow::ensure!(ok, "the broadcast send failed");
        let ack_s = started.elapsed().as_secs_f64();
        let rows_s = poll.await??;
        let rows = count(db.clone()).await?;
        drain(&shared, 1, Duration::from_secs(0)).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while (shared.seen[0].load(Ordering::Relaxed) as usize) < connected
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let live_s = started.elapsed().as_secs_f64();
        let cpu = cpu.stop();
        let received = shared.seen[0].load(Ordering::Relaxed);
        let latency = finish(tasks, &cancel).await;
        db.close().await;
        anyhow::Ok(json!({
            "recipients": args.recipients,
            "connected": connected,
            "ack_seconds": report::round(ack_s),
            "rows_visible_seconds": report::round(rows_s),
            "inbox_rows": rows,
            "all_live_seconds": report::round(live_s),
            "received_live": received,
            "live": latency.summary(),
            "cpu": cpu,
        }))
    }
    .await;
    server.stop().await?;
    let r = result?;
    report::print_table(
        &format!("broadcast, {backend}"),
        &[
            "recipients",
            "inbox rows",
            "rows visible s",
            "ack s",
            "connected",
            "received",
            "all live s",
            "live p50 ms",
            "cpu",
        ],
        &[vec![
            r["recipients"].to_string(),
            r["inbox_rows"].to_string(),
            format!("{:.2}", r["rows_visible_seconds"].as_f64().unwrap_or(0.0)),
            format!("{:.2}", r["ack_seconds"].as_f64().unwrap_or(0.0)),
            r["connected"].to_string(),
            r["received_live"].to_string(),
            format!("{:.2}", r["all_live_seconds"].as_f64().unwrap_or(0.0)),
            report::fmt_ms(r["live"]["p50_ms"].as_f64().unwrap_or(f64::NAN)),
            report::cpu_line(&r["cpu"]),
        ]],
    );
    report::write_json(
        &args.common.out,
        "broadcast",
        backend,
        &json!({ "scenario": "broadcast", "environment": report::environment(backend), "result": r }),
    )
}
