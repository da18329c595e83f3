//! Scenario 3, against a real `belfry serve`: one WebSocket client per user with a live `inbox`
//! subscription ([`sockets`](crate::sockets)); sends through the HTTP API at a fixed rate and at
//! the most the server takes; the latency from starting a send to its change arriving on the
//! recipient's socket. With `--pending-scheduled N`, every step runs again after N
//! notifications are scheduled for a day later (sends of 1,000 recipients each, pending
//! throughout): does the pending set slow the append or the live path?

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::http::send;
use crate::report::{self, CpuWatch, Latencies};
use crate::server::Server;
use crate::sockets::{connect_all, drain, finish, wait_subscribers, Shared};
use crate::Common;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    common: Common,
    /// Subscribed users, one socket each.
    #[arg(long, default_value_t = 1_000)]
    users: usize,
    /// Fixed send rates per second, one step each; `max` runs closed-loop with `--senders`.
    #[arg(long, value_delimiter = ',', default_value = "3000,max")]
    rate: Vec<String>,
    /// Concurrent senders of the `max` step.
    #[arg(long, default_value_t = 64)]
    senders: usize,
    /// Notifications to schedule (pending for a day) before the steps run a second time; 0
    /// runs them once.
    #[arg(long, default_value_t = 0)]
    pending_scheduled: usize,
}

/// Recipients per scheduled send of the pending set.
const SCHEDULED_PER_SEND: usize = 1_000;

/// Schedules `total` notifications a day ahead, in sends of [`SCHEDULED_PER_SEND`] made by 8
/// concurrent clients; the seconds it took.
async fn schedule_pending(server: &Server, total: usize) -> anyhow::Result<f64> {
    let http = reqwest::Client::new();
    let send_at = chrono::Utc::now() + chrono::Duration::days(1);
    let sends = total.div_ceil(SCHEDULED_PER_SEND);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..8 {
        let (http, next, url, key) = (
            http.clone(),
            next.clone(),
            server.url.clone(),
            server.key.clone(),
        );
        handles.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= sends {
                    return anyhow::Ok(());
                }
                let recipients: Vec<String> = (i * SCHEDULED_PER_SEND..((i + 1) * SCHEDULED_PER_SEND).min(total))
                    .map(|k| format!("s{k}"))
                    .collect();
                let body = json!({
                    "query": "mutation($input: SendNotificationInput!) { sendNotification(input: $input) { scheduled { id } } }",
                    "variables": { "input": { "recipients": recipients, "title": format!("later {i}"), "sendAt": send_at } },
                });
                let answer: Value = http
                    .post(format!("{url}/graphql"))
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await?
                    .json()
                    .await?;
                anyhow::ensure!(answer.get("errors").is_none(), "scheduling failed: {answer}");
            }
        }));
    }
    for h in handles {
        h.await??;
    }
    Ok(started.elapsed().as_secs_f64())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let backend = args.common.backend.name();
    let server = Server::start(args.common.backend, &args.common.pg_admin, &[]).await?;
    let result = async {
        let mut steps = live_steps(&args, &server, 0).await?;
        let mut scheduling = None;
        if args.pending_scheduled > 0 {
            println!(
                "  scheduling {} notifications a day ahead",
                args.pending_scheduled
            );
            let secs = schedule_pending(&server, args.pending_scheduled).await?;
            println!("  scheduled in {secs:.1} s");
            scheduling = Some(json!({
                "notifications": args.pending_scheduled,
                "per_send": SCHEDULED_PER_SEND,
                "seconds": report::round(secs),
            }));
            steps.extend(live_steps(&args, &server, args.pending_scheduled).await?);
        }
        anyhow::Ok((steps, scheduling))
    }
    .await;
    server.stop().await?;
    let (steps, scheduling) = result?;
    report::print_table(
        &format!(
            "end-to-end live delivery, {backend}, {} subscribers",
            args.users
        ),
        &[
            "pending",
            "rate",
            "sent/s",
            "delivered",
            "dups",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
            "ack p99",
            "cpu",
        ],
        &steps
            .iter()
            .map(|s| {
                let f = |k: &str| report::fmt_ms(s["delivery"][k].as_f64().unwrap_or(f64::NAN));
                vec![
                    s["pending_scheduled"].to_string(),
                    s["rate"].as_str().unwrap_or("").to_owned(),
                    report::fmt_rate(s["sent_per_second"].as_f64().unwrap_or(0.0)),
                    format!("{}/{}", s["delivered"], s["expected"]),
                    s["duplicates"].to_string(),
                    f("p50_ms"),
                    f("p95_ms"),
                    f("p99_ms"),
                    f("max_ms"),
                    report::fmt_ms(s["ack"]["p99_ms"].as_f64().unwrap_or(f64::NAN)),
                    report::cpu_line(&s["cpu"]),
                ]
            })
            .collect::<Vec<_>>(),
    );
    let name = match args.pending_scheduled {
        0 => format!("live-{}", args.users),
        n => format!("live-{}-pending-{n}", args.users),
    };
    report::write_json(
        &args.common.out,
        &name,
        backend,
        &json!({
            "scenario": "live",
            "environment": report::environment(backend),
            "users": args.users,
            "scheduling": scheduling,
            "steps": steps,
        }),
    )
}

/// Every step of `args`, labelled with the scheduled notifications pending meanwhile.
async fn live_steps(args: &Args, server: &Server, pending: usize) -> anyhow::Result<Vec<Value>> {
    let seconds = args.common.seconds;
    let mut steps = Vec::new();
    for rate in &args.rate {
        let fixed: Option<f64> = if rate == "max" {
            None
        } else {
            Some(rate.parse()?)
        };
        // Room for every send the step could make (the max step: a generous bound).
        let capacity = (fixed.unwrap_or(50_000.0) * seconds * 1.2) as usize + 1_000;
        let shared = Shared::new(capacity);
        let cancel = CancellationToken::new();
        // The sockets of the previous step are closed first.
        wait_subscribers(server, 0).await?;
        let tasks = connect_all(server, 0, args.users, args.users, true, &shared, &cancel).await?;
        println!(
            "  {} subscribers connected; sending at {rate}/s for {seconds} s",
            args.users
        );
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1_024)
            .build()?;
        let acks = Arc::new(Mutex::new(Latencies::default()));
        let failed = Arc::new(AtomicUsize::new(0));
        let next = Arc::new(AtomicUsize::new(0));
        let cpu = CpuWatch::start(Some(server.pid));
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(seconds);
        let (url, key, users) = (server.url.clone(), server.key.clone(), args.users);
        let one = {
            let (http, shared, acks, failed) =
                (http.clone(), shared.clone(), acks.clone(), failed.clone());
            move |i: usize| {
                let (http, url, key, shared, acks, failed) = (
                    http.clone(),
                    url.clone(),
                    key.clone(),
                    shared.clone(),
                    acks.clone(),
                    failed.clone(),
                );
                async move {
                    let recipient = format!("u{}", i % users);
                    let t = Instant::now();
                    shared.started(i);
                    let ok = send(&http, &url, &key, &[recipient], &format!("b{i}")).await;
                    let elapsed = t.elapsed();
                    if matches!(ok, Ok(true)) {
                        acks.lock().unwrap_or_else(|p| p.into_inner()).push(elapsed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        };
        match fixed {
            Some(r) => {
                // Open loop: send i starts at t0 + i/r whatever earlier sends are doing.
                let in_flight = Arc::new(tokio::sync::Semaphore::new(2_048));
                let mut handles = Vec::new();
                let total = (r * seconds) as usize;
                for i in 0..total {
                    tokio::time::sleep_until(
                        (started + Duration::from_secs_f64(i as f64 / r)).into(),
                    )
                    .await;
                    let permit = in_flight.clone().acquire_owned().await?;
                    let f = one(i);
                    handles.push(tokio::spawn(async move {
                        f.await;
                        drop(permit);
                    }));
                }
                next.store(total, Ordering::Relaxed);
                for h in handles {
                    h.await?;
                }
            }
            None => {
                let mut handles = Vec::new();
                for _ in 0..args.senders {
                    let (next, one) = (next.clone(), one.clone());
                    handles.push(tokio::spawn(async move {
                        while Instant::now() < deadline {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= capacity {
                                break;
                            }
                            one(i).await;
                        }
                    }));
                }
                for h in handles {
                    h.await?;
                }
            }
        }
        let sent_s = started.elapsed().as_secs_f64();
        let sent = next.load(Ordering::Relaxed).min(capacity);
        let failed = failed.load(Ordering::Relaxed);
        let expected = sent - failed;
        drain(&shared, expected, Duration::from_secs(15)).await;
        let cpu = cpu.stop();
        let delivery = finish(tasks, &cancel).await;
        let delivered = shared
            .seen
            .iter()
            .filter(|s| s.load(Ordering::Relaxed) > 0)
            .count();
        let duplicates: u64 = shared
            .seen
            .iter()
            .map(|s| u64::from(s.load(Ordering::Relaxed).saturating_sub(1)))
            .sum();
        let acks = std::mem::take(&mut *acks.lock().unwrap_or_else(|p| p.into_inner())).sorted();
        println!(
            "  {rate}: {:.0} sends/s, delivered {delivered}/{expected}, p99 {:.2} ms",
            sent as f64 / sent_s,
            delivery.ms(0.99)
        );
        steps.push(json!({
            "pending_scheduled": pending,
            "rate": rate,
            "sent": sent,
            "failed_sends": failed,
            "seconds": report::round(sent_s),
            "sent_per_second": report::round(sent as f64 / sent_s),
            "expected": expected,
            "delivered": delivered,
            "duplicates": duplicates,
            "socket_errors": shared.errors.load(Ordering::Relaxed),
            "delivery": delivery.summary(),
            "ack": acks.summary(),
            "cpu": cpu,
        }));
    }
    Ok(steps)
}
