//! Scenario 5: read queries on a large read model. The log is loaded straight into the events
//! table and the projections are built by replay (the same code `belfry replay` runs); then the
//! queries the API runs are timed in process, one after another: the first inbox page (21 rows,
//! as `notifications(first: 20)` asks for), a deep page of a heavy user (keyset: sent before a
//! cursor 90% down their inbox), and the counts.

use std::time::Instant;

use serde_json::json;

use belfry::domain::UserId;
use belfry::eventlog::Db;
use belfry::projections::{self, read, replay, Projection};

use crate::data;
use crate::report::{self, CpuWatch, Latencies};
use crate::store::Store;
use crate::Common;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 10_000_000)]
    notifications: u64,
    #[arg(long, default_value_t = 1_000_000)]
    users: u64,
    /// Users who get a tenth of all notifications between them (for deep pages).
    #[arg(long, default_value_t = 100)]
    heavy: u64,
    /// Timed queries of each kind.
    #[arg(long, default_value_t = 2_000)]
    samples: u64,
}

/// A well-mixed 64-bit hash (splitmix64), to spread recipients and samples.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn recipient(i: u64, users: u64, heavy: u64) -> String {
    if i % 10 == 0 {
        format!("heavy-{}", (i / 10) % heavy.max(1))
    } else {
        data::user(mix(i), users)
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let backend = args.common.backend.name();
    let store = Store::create(args.common.backend, &args.common.pg_admin).await?;
    let result = async {
        let db = store.db().await?;
        projections::ensure(&db).await?;
        println!("loading {} notifications for {} users ...", args.notifications, args.users);
        let started = Instant::now();
        let (users, heavy) = (args.users, args.heavy);
        let events = data::load_log(&db, args.notifications, |i| recipient(i, users, heavy), None).await?;
        let load_s = started.elapsed().as_secs_f64();
        println!("  loaded {events} events in {load_s:.0} s; replaying ...");
        let rebuilt = replay::rebuild(&db, &Projection::ALL, |_| {}).await?;
        println!("  replayed at {:.0} events/s", rebuilt.events_per_second());
        // The queries run on a settled store: the write-back of the build (and on Postgres
        // of its `VACUUM`) is finished before the first one, not running beside them.
        match &db {
            Db::Postgres(pool) => {
                sqlx::query("VACUUM ANALYZE").execute(pool).await?;
                sqlx::query("CHECKPOINT").execute(pool).await?;
            }
            Db::Sqlite { writer, .. } => {
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(writer).await?;
            }
        }
        let size = store.size_bytes(&db).await;
        let rows = measure(&db, &args).await?;
        anyhow::Ok(json!({
            "scenario": "queries",
            "environment": report::environment(backend),
            "notifications": args.notifications,
            "users": args.users,
            "heavy_users": args.heavy,
            "database_bytes": size,
            "load_seconds": report::round(load_s),
            "replay": { "events": rebuilt.events, "seconds": report::round(rebuilt.elapsed.as_secs_f64()), "per_second": report::round(rebuilt.events_per_second()) },
            "queries": rows,
        }))
    }
    .await;
    store.drop_db().await?;
    let r = result?;
    report::print_table(
        &format!(
            "queries, {backend}: {} notifications, {} users ({} MB)",
            r["notifications"],
            r["users"],
            r["database_bytes"].as_i64().unwrap_or(0) / 1_000_000
        ),
        &["query", "n", "p50 ms", "p99 ms", "max ms", "cpu"],
        &r["queries"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|q| {
                let f = |k: &str| report::fmt_ms(q["latency"][k].as_f64().unwrap_or(f64::NAN));
                vec![
                    q["query"].as_str().unwrap_or("").to_owned(),
                    q["latency"]["n"].to_string(),
                    f("p50_ms"),
                    f("p99_ms"),
                    f("max_ms"),
                    report::cpu_line(&q["cpu"]),
                ]
            })
            .collect::<Vec<_>>(),
    );
    report::write_json(&args.common.out, "queries", backend, &r)
}

async fn measure(db: &Db, args: &Args) -> anyhow::Result<Vec<serde_json::Value>> {
    let parse = |u: String| UserId::parse(&u).map_err(|e| anyhow::anyhow!("{e}"));
    let regular: Vec<UserId> = (0..args.samples)
        .map(|k| parse(data::user(mix(k + 7_777_777), args.users)))
        .collect::<anyhow::Result<_>>()?;
    // Deep-page cursors: 90% of the way down each heavy user's inbox (found untimed).
    let mut deep = Vec::new();
    for h in 0..args.heavy {
        let user = parse(format!("heavy-{h}"))?;
        let total = args.notifications / 10 / args.heavy.max(1);
        let offset = (total * 9 / 10) as i64;
        let cursor: Option<i64> = belfry::on_reader!(db, |p| {
            sqlx::query_scalar(
            "SELECT sent_position FROM inbox WHERE recipient = $1 ORDER BY sent_position DESC LIMIT 1 OFFSET $2"
        )
        .bind(user.as_str())
        .bind(offset)
        .fetch_optional(p)
        .await
        })?;
        if let Some(cursor) = cursor {
            deep.push((user, cursor));
        }
    }
    let filter = read::InboxFilter::default();
    let mut rows = Vec::new();
    for kind in [
        "first page",
        "first page (heavy user)",
        "deep page (heavy user)",
        "counts",
    ] {
        let mut latency = Latencies::default();
        let cpu = CpuWatch::start(None);
        for k in 0..args.samples as usize {
            let t = Instant::now();
            match kind {
                "first page" => {
                    read::inbox(db, &regular[k], &filter, None, 21).await?;
                }
                "first page (heavy user)" => {
                    read::inbox(db, &deep[k % deep.len()].0, &filter, None, 21).await?;
                }
                "deep page (heavy user)" => {
                    let (user, cursor) = &deep[k % deep.len()];
                    read::inbox(db, user, &filter, Some(*cursor), 21).await?;
                }
                _ => {
                    read::counts(db, &regular[k]).await?;
                }
            }
            latency.push(t.elapsed());
        }
        let latency = latency.sorted();
        rows.push(json!({ "query": kind, "latency": latency.summary(), "cpu": cpu.stop() }));
    }
    Ok(rows)
}
