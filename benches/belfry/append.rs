//! Scenario 1: append throughput in process through the appender with 1, 8, 64 and 256
//! concurrent senders, then, on the same database, the raw limits on one connection:
//! (a) multi-row inserts of the event rows only, (b) the SQL work a batch of sends needs
//! (events, inbox rows, counter upserts) written by hand, set-based.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use belfry::domain::notification::SendNotification;
use belfry::domain::Command;
use belfry::domain::SendInput;
use belfry::engine::Engine;
use belfry::eventlog::{Db, Metadata};
use belfry::metrics::Metrics;

use crate::data::{self, Pool, RawWork};
use crate::report::{self, CpuWatch, Latencies};
use crate::store::Store;
use crate::Common;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    common: Common,
    /// Concurrent senders, one step each.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64,256")]
    concurrency: Vec<usize>,
    /// Rows per transaction of the raw limits, one step each.
    #[arg(long, value_delimiter = ',', default_value = "100,256")]
    raw_batch: Vec<usize>,
    /// Distinct recipients the sends go to.
    #[arg(long, default_value_t = 10_000)]
    users: u64,
}

/// Cores used by this tool and by Postgres, and by other work on the machine.
fn cpu_short(cpu: &Value) -> String {
    let f = |k: &str| cpu[k].as_f64().unwrap_or(0.0);
    format!(
        "{:.2}+{:.2} (other {:.2})",
        f("tool_cores"),
        f("postgres_cores"),
        f("other_cores")
    )
}

/// Sum and count of a Prometheus histogram in a rendered registry.
fn histogram(rendered: &str, name: &str) -> (f64, f64) {
    let value = |suffix: &str| {
        rendered
            .lines()
            .find(|l| l.starts_with(&format!("belfry_{name}_{suffix} ")))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (value("sum"), value("count"))
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let backend = args.common.backend.name();
    let (engine_rows, raw_rows) = measure(&args).await?;

    let best = |rows: &[Value], key: &str| {
        rows.iter()
            .filter(|r| key.is_empty() || r["work"] == key)
            .filter_map(|r| r["per_second"].as_f64())
            .fold(0.0, f64::max)
    };
    let engine_best = best(&engine_rows, "");
    let raw_a = best(&raw_rows, "events_only");
    let raw_b = best(&raw_rows, "events_inbox_counters");
    let ratios = json!({
        "engine_best_per_second": report::round(engine_best),
        "raw_a_best_per_second": report::round(raw_a),
        "raw_b_best_per_second": report::round(raw_b),
        "engine_over_a": report::round(engine_best / raw_a),
        "engine_over_b": report::round(engine_best / raw_b),
    });

    report::print_table(
        &format!("append through the appender, {backend} (one-recipient sends)"),
        &[
            "senders",
            "sends/s",
            "batches",
            "cmds/batch",
            "p50 ms",
            "p99 ms",
            "max ms",
            "cpu tool+pg",
        ],
        &engine_rows
            .iter()
            .map(|r| {
                vec![
                    r["concurrency"].to_string(),
                    report::fmt_rate(r["per_second"].as_f64().unwrap_or(0.0)),
                    format!("{:.0}", r["batches"].as_f64().unwrap_or(0.0)),
                    format!("{:.1}", r["mean_batch_commands"].as_f64().unwrap_or(0.0)),
                    report::fmt_ms(r["latency"]["p50_ms"].as_f64().unwrap_or(f64::NAN)),
                    report::fmt_ms(r["latency"]["p99_ms"].as_f64().unwrap_or(f64::NAN)),
                    report::fmt_ms(r["latency"]["max_ms"].as_f64().unwrap_or(f64::NAN)),
                    cpu_short(&r["cpu"]),
                ]
            })
            .collect::<Vec<_>>(),
    );
    report::print_table(
        &format!("raw limits on one connection, {backend}"),
        &["work", "form", "rows/txn", "rows/s", "cpu tool+pg"],
        &raw_rows
            .iter()
            .map(|r| {
                vec![
                    r["work"].as_str().unwrap_or("").to_owned(),
                    r["form"].as_str().unwrap_or("").to_owned(),
                    r["batch"].to_string(),
                    report::fmt_rate(r["per_second"].as_f64().unwrap_or(0.0)),
                    cpu_short(&r["cpu"]),
                ]
            })
            .collect::<Vec<_>>(),
    );
    println!(
        "\nengine best {engine_best:.0}/s; raw (a) events only {raw_a:.0}/s, raw (b) events+inbox+counters {raw_b:.0}/s"
    );
    println!(
        "ratios: engine/(a) = {:.2}, engine/(b) = {:.2}",
        engine_best / raw_a,
        engine_best / raw_b
    );
    report::write_json(
        &args.common.out,
        "append",
        backend,
        &json!({
            "scenario": "append",
            "environment": report::environment(backend),
            "users": args.users,
            "seconds_per_step": args.common.seconds,
            "engine": engine_rows,
            "raw": raw_rows,
            "ratios": ratios,
        }),
    )
}

/// Every step runs on a fresh database, so none works on tables grown by the steps before it.
async fn measure(args: &Args) -> anyhow::Result<(Vec<Value>, Vec<Value>)> {
    let seconds = Duration::from_secs_f64(args.common.seconds);
    let mut engine_rows = Vec::new();
    let mut sequence = 0_u64;
    for &concurrency in &args.concurrency {
        let store = Store::create(args.common.backend, &args.common.pg_admin).await?;
        let row = engine_step(&store.db().await?, args, concurrency, seconds, sequence).await;
        store.drop_db().await?;
        engine_rows.push(row?);
        sequence += concurrency as u64 * 1_000_000;
    }
    let mut raw_rows = Vec::new();
    let mut pool = Pool::new(4_096, args.users)?;
    let mut works = vec![RawWork::EventsOnly, RawWork::WithProjections];
    if args.common.backend.name() == "postgres" {
        // The engine writes events by arrays there; (a) is the faster of the two forms.
        works.insert(1, RawWork::EventsOnlyArrays);
    }
    for work in works {
        for &batch in &args.raw_batch {
            let store = Store::create(args.common.backend, &args.common.pg_admin).await?;
            let row = raw_step(&store.db().await?, &mut pool, work, batch, seconds).await;
            store.drop_db().await?;
            raw_rows.push(row?);
        }
    }
    Ok((engine_rows, raw_rows))
}

async fn engine_step(
    db: &Db,
    args: &Args,
    concurrency: usize,
    seconds: Duration,
    sequence: u64,
) -> anyhow::Result<Value> {
    let metrics = Metrics::new();
    let stop = CancellationToken::new();
    let (engine, appender) = Engine::start(
        db.clone(),
        belfry::app::engine_config(&belfry::config::Settings::default(), metrics.clone()),
        stop.clone(),
    )
    .await?;
    let cpu = CpuWatch::start(None);
    let started = Instant::now();
    let deadline = started + seconds;
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let engine = engine.clone();
        let users = args.users;
        let base = sequence + t as u64 * 1_000_000;
        tasks.push(tokio::spawn(async move {
            send_until(&engine, deadline, base, concurrency as u64, users).await
        }));
    }
    let mut latency = Latencies::default();
    for task in tasks {
        latency.extend(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu.stop();
    stop.cancel();
    appender.await?;
    db.close().await;
    let rendered = metrics.render();
    let (commands, batches) = histogram(&rendered, "append_batch_commands");
    let (batch_seconds, _) = histogram(&rendered, "append_batch_seconds");
    let latency = latency.sorted();
    let sends = latency.len();
    println!(
        "  {concurrency} senders: {:.0} sends/s, p99 {:.2} ms",
        sends as f64 / elapsed,
        latency.ms(0.99)
    );
    Ok(json!({
        "concurrency": concurrency,
        "sends": sends,
        "seconds": report::round(elapsed),
        "per_second": report::round(sends as f64 / elapsed),
        "batches": batches,
        "mean_batch_commands": report::round(commands / batches.max(1.0)),
        "mean_batch_ms": report::round(batch_seconds / batches.max(1.0) * 1000.0),
        "latency": latency.summary(),
        "cpu": cpu,
    }))
}

async fn raw_step(
    db: &Db,
    pool: &mut Pool,
    work: RawWork,
    batch: usize,
    seconds: Duration,
) -> anyhow::Result<Value> {
    belfry::projections::ensure(db).await?;
    let cpu = CpuWatch::start(None);
    let started = Instant::now();
    let mut rows = 0_usize;
    while started.elapsed() < seconds {
        data::raw_batch(db, pool, batch, work).await?;
        rows += batch;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu.stop();
    db.close().await;
    let (name, form) = (work.name(), work.form());
    println!(
        "  raw {name} ({form}) x{batch}: {:.0} rows/s",
        rows as f64 / elapsed
    );
    Ok(json!({
        "work": name,
        "form": form,
        "batch": batch,
        "rows": rows,
        "seconds": report::round(elapsed),
        "per_second": report::round(rows as f64 / elapsed),
        "cpu": cpu,
    }))
}

/// One sender: one-recipient sends one after another until `deadline`; the latency of each.
async fn send_until(
    engine: &Engine,
    deadline: Instant,
    base: u64,
    stride: u64,
    users: u64,
) -> anyhow::Result<Latencies> {
    let mut latency = Latencies::default();
    let mut i = 0_u64;
    while Instant::now() < deadline {
        let n = base + i;
        let input = SendInput {
            recipients: vec![data::user(n.wrapping_mul(stride).wrapping_add(i), users)],
            title: format!("Bench notification {n}"),
            body: Some("A notification written by the benchmark suite.".to_owned()),
            category: Some(["builds", "billing", "mentions"][(n % 3) as usize].to_owned()),
            ..SendInput::default()
        };
        let started = Instant::now();
        let cmd =
            SendNotification::parse(input, belfry::clock::now(), belfry::clock::notification_id)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        engine
            .execute(Command::Send(cmd), Metadata::default())
            .await
            .map_err(|e| anyhow::anyhow!("send failed: {e}"))?;
        latency.push(started.elapsed());
        i += 1;
    }
    Ok(latency)
}
