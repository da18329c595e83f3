//! Scenario 6: replay. Loads a large log straight into the events table (domain-decided sends,
//! a fifth of them later marked read), then, in the same run, reads the whole log sequentially
//! the way replay pages through it (the raw read rate) and rebuilds every projection with
//! `belfry replay`'s code. With `--rounds N` the read and the rebuild alternate N times on the
//! one log, so each rebuild has a read rate of its own window beside it, and the median round
//! is the figure reported (the host's speed drifts by a tenth or more between runs).

use std::time::Instant;

use serde_json::{json, Value};

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
    /// Sequential reads and rebuilds, alternating, on the one log; the median round is
    /// reported (of an even number of rounds, the upper of the middle two).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
}

/// One sequential read of the whole log and one rebuild after it.
struct Round {
    read: usize,
    read_s: f64,
    read_cpu: Value,
    events: i64,
    replay_s: f64,
    replay_cpu: Value,
}

impl Round {
    fn read_rate(&self) -> f64 {
        self.read as f64 / self.read_s
    }

    fn replay_rate(&self) -> f64 {
        self.events as f64 / self.replay_s
    }

    fn json(&self) -> Value {
        json!({
            "sequential_read": { "events": self.read, "seconds": report::round(self.read_s), "per_second": report::round(self.read_rate()), "cpu": self.read_cpu },
            "replay": { "events": self.events, "seconds": report::round(self.replay_s), "per_second": report::round(self.replay_rate()), "cpu": self.replay_cpu },
            "replay_over_read": report::round(self.replay_rate() / self.read_rate()),
        })
    }
}

/// The raw read rate: the same pages replay reads, decoded into events, nothing applied; then
/// the rebuild of every projection.
async fn round(db: &belfry::eventlog::Db) -> anyhow::Result<Round> {
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
    let rebuilt = replay::rebuild(db, &Projection::ALL, |_| {}).await?;
    Ok(Round {
        read,
        read_s,
        read_cpu,
        events: rebuilt.events,
        replay_s: rebuilt.elapsed.as_secs_f64(),
        replay_cpu: cpu.stop(),
    })
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

        let mut rounds = Vec::new();
        for _ in 0..args.rounds {
            rounds.push(round(&db).await?);
        }
        let mut by_rate: Vec<&Round> = rounds.iter().collect();
        by_rate.sort_by(|a, b| a.replay_rate().total_cmp(&b.replay_rate()));
        let median = by_rate[by_rate.len() / 2];

        let mut rows = vec![vec![
            "load (raw inserts)".into(),
            events.to_string(),
            format!("{load_s:.1}"),
            report::fmt_rate(events as f64 / load_s),
            "-".into(),
        ]];
        for (i, r) in rounds.iter().enumerate() {
            let label = |step: &str| {
                if rounds.len() == 1 {
                    step.to_string()
                } else {
                    format!("{step}, round {}", i + 1)
                }
            };
            // One table row: step, events, seconds, events/s, CPU.
            let step = |name: &str, events: String, seconds: f64, rate: f64, cpu: &Value| {
                vec![
                    label(name),
                    events,
                    format!("{seconds:.1}"),
                    report::fmt_rate(rate),
                    report::cpu_line(cpu),
                ]
            };
            rows.push(step(
                "sequential read",
                r.read.to_string(),
                r.read_s,
                r.read_rate(),
                &r.read_cpu,
            ));
            rows.push(step(
                "replay (all projections)",
                r.events.to_string(),
                r.replay_s,
                r.replay_rate(),
                &r.replay_cpu,
            ));
        }
        report::print_table(
            &format!("replay, {backend}: {events} events ({} MB database)", size / 1_000_000),
            &["step", "events", "seconds", "events/s", "cpu"],
            &rows,
        );
        if rounds.len() > 1 {
            let rates: Vec<String> = rounds.iter().map(|r| report::fmt_rate(r.replay_rate())).collect();
            println!("replay events/s by round: {}; median {}", rates.join(", "), report::fmt_rate(median.replay_rate()));
        }
        println!(
            "replay / sequential read = {:.2}",
            median.replay_rate() / median.read_rate()
        );
        // The median round's figures at the top level, as a one-round run writes them.
        let mut result = json!({
            "scenario": "replay",
            "environment": report::environment(backend),
            "sends": args.sends,
            "users": args.users,
            "events": events,
            "database_bytes": size,
            "load": { "seconds": report::round(load_s), "per_second": report::round(events as f64 / load_s) },
            "rounds": rounds.iter().map(Round::json).collect::<Vec<_>>(),
        });
        if let (Some(result), Value::Object(median)) = (result.as_object_mut(), median.json()) {
            result.extend(median);
        }
        anyhow::Ok(result)
    }
    .await;
    store.drop_db().await?;
    report::write_json(&args.common.out, "replay", backend, &result?)
}
