//! Scenario 6: replay. Loads a large log straight into the events table (domain-decided sends,
//! a fifth of them later marked read), then, in the same run, reads the whole log sequentially
//! the way replay pages through it (the raw read rate) and rebuilds every projection with
//! `belfry replay`'s code.

use std::time::Instant;

use serde_json::json;

use belfry::eventlog::EventLog;
use belfry::projections::{self, replay, Projection};

use crate::data;
use crate::report::{self, CpuWatch};
use crate::store::Store;
use crate::Common;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    common: Common,
    /// Notifications sent (a fifth of them are also marked read, so the log holds 1.2x events).
    #[arg(long, default_value_t = 1_000_000)]
    sends: u64,
    #[arg(long, default_value_t = 100_000)]
    users: u64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let backend = args.common.backend.name();
    let store = Store::create(args.common.backend, &args.common.pg_admin).await?;
    let result = async {
        let db = store.db().await?;
        projections::ensure(&db).await?;
        println!("loading {} sends into the log ...", args.sends);
        let started = Instant::now();
        let users = args.users;
        let events = data::load_log(&db, args.sends, |i| data::user(i, users), Some(5)).await?;
        let load_s = started.elapsed().as_secs_f64();
        let size = store.size_bytes(&db).await;

        // The raw read rate: the same pages replay reads, decoded into events, nothing applied.
        let log = EventLog::new(db.clone());
        let cpu = CpuWatch::start(None);
        let started = Instant::now();
        let (mut position, mut read) = (0, 0_usize);
        loop {
            let page = log.read_after(position, 5_000).await?;
            let Some(last) = page.last() else { break };
            position = last.position;
            read += page.len();
        }
        let read_s = started.elapsed().as_secs_f64();
        let read_cpu = cpu.stop();

        let cpu = CpuWatch::start(None);
        let rebuilt = replay::rebuild(&db, &Projection::ALL, false).await?;
        let replay_cpu = cpu.stop();
        let replay_rate = rebuilt.events_per_second();
        let read_rate = read as f64 / read_s;

        report::print_table(
            &format!("replay, {backend}: {events} events ({} MB database)", size / 1_000_000),
            &["step", "events", "seconds", "events/s", "cpu"],
            &[
                vec![
                    "load (raw inserts)".into(),
                    events.to_string(),
                    format!("{load_s:.1}"),
                    report::fmt_rate(events as f64 / load_s),
                    "-".into(),
                ],
                vec![
                    "sequential read".into(),
                    read.to_string(),
                    format!("{read_s:.1}"),
                    report::fmt_rate(read_rate),
                    report::cpu_line(&read_cpu),
                ],
                vec![
                    "replay (all projections)".into(),
                    rebuilt.events.to_string(),
                    format!("{:.1}", rebuilt.elapsed.as_secs_f64()),
                    report::fmt_rate(replay_rate),
                    report::cpu_line(&replay_cpu),
                ],
            ],
        );
        println!("replay / sequential read = {:.2}", replay_rate / read_rate);
        anyhow::Ok(json!({
            "scenario": "replay",
            "environment": report::environment(backend),
            "sends": args.sends,
            "users": args.users,
            "events": events,
            "database_bytes": size,
            "load": { "seconds": report::round(load_s), "per_second": report::round(events as f64 / load_s) },
            "sequential_read": { "events": read, "seconds": report::round(read_s), "per_second": report::round(read_rate), "cpu": read_cpu },
            "replay": { "events": rebuilt.events, "seconds": report::round(rebuilt.elapsed.as_secs_f64()), "per_second": report::round(replay_rate), "cpu": replay_cpu },
            "replay_over_read": report::round(replay_rate / read_rate),
        }))
    }
    .await;
    store.drop_db().await?;
    report::write_json(&args.common.out, "replay", backend, &result?)
}
