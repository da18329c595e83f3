//! Scenario 10: many people's daily digests due at the same minute. `--people` people in four
//! time zones each set a daily email digest at the local time of one instant a few minutes
//! ahead, and each gets a notification, which joins their digest. At that instant every
//! node's timekeeper closes them and the workers send them to an SMTP sink in this process.
//! Measured on the server's clock, from the log: how late each digest closed (the
//! scheduler's lateness), how late its delivery's attempt began after it was planned, and how
//! long until the sink accepted every digest; against the raw limit of the same sink in the
//! same run (lettre sending the same digest emails with the same concurrency).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
use futures_util::StreamExt;
use lettre::transport::smtp::client::Tls;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde_json::{json, Value};
use uuid::Uuid;

use belfry::delivery::email::{build_email, Originator};
use belfry::delivery::{Contact, DigestBody, DigestEntry, Message};
use belfry::domain::digest::DigestId;
use belfry::domain::event::{DeliveryEvent, Event};
use belfry::domain::{Category, Channel, UserId};
use belfry::eventlog::EventLog;

use crate::delivery::{smtp_sink, Accepted, FROM};
use crate::report::{self, CpuWatch, Latencies};
use crate::server::Server;
use crate::{data, Common};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    common: Common,
    /// People with a daily digest, each getting one notification into it.
    #[arg(long, default_value_t = 100_000)]
    people: usize,
    /// Deliveries attempted at once: the server's `delivery_concurrency` and the raw loop's.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// SMTP connections kept open: the server's `smtp.pool_size` and the raw transport's.
    #[arg(long, default_value_t = 4)]
    pool_size: u32,
    /// Concurrent API clients for the set-up.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Seconds from the end of the set-up to the digests' minute (rounded up to a minute);
    /// every notification must have joined its digest by then.
    #[arg(long, default_value_t = 420)]
    lead: u64,
    /// Digest emails the raw step sends: its rate is the sink's limit, reached long before
    /// `--people`.
    #[arg(long, default_value_t = 20_000)]
    raw: usize,
}

/// The zones people live in, in turn: whole and half hours off UTC, both hemispheres.
const ZONES: [&str; 4] = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"];

const CATEGORY: &str = "bench";

pub async fn run(args: Args) -> anyhow::Result<()> {
    let backend = args.common.backend.name();
    let sink = Accepted::default();
    let smtp_port = smtp_sink(sink.clone()).await?;
    let config = tempfile::Builder::new()
        .prefix("belfry-bench-config-")
        .tempdir()?;
    let config_file = config.path().join("belfry.toml");
    std::fs::write(
        &config_file,
        format!(
            "delivery_concurrency = {}\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {smtp_port}\n\
             tls = \"none\"\nfrom = \"{FROM}\"\npool_size = {}\n",
            args.concurrency, args.pool_size
        ),
    )?;
    let server = Server::start(
        args.common.backend,
        &args.common.pg_admin,
        &[("BELFRY_CONFIG", config_file.display().to_string())],
    )
    .await?;
    let result = measure(&args, &server, &sink).await;
    server.stop().await?;
    let mut engine = result?;
    let raw = raw_email(&args, smtp_port, &sink).await?;
    let ratio = engine["per_second"].as_f64().unwrap_or(f64::NAN)
        / raw["per_second"].as_f64().unwrap_or(f64::NAN);
    engine["engine_over_raw"] = json!(report::round(ratio));
    report::print_table(
        &format!("{} daily digests due at one minute, {backend}", args.people),
        &[
            "step",
            "digests",
            "until all accepted s",
            "digests/s",
            "closed late p50 ms",
            "closed late p99 ms",
            "attempt late p99 ms",
            "accepted p99 s",
            "cpu",
        ],
        &[&raw, &engine]
            .iter()
            .map(|r| {
                vec![
                    r["step"].as_str().unwrap_or("").to_owned(),
                    r["delivered"].to_string(),
                    format!("{:.1}", r["seconds"].as_f64().unwrap_or(f64::NAN)),
                    report::fmt_rate(r["per_second"].as_f64().unwrap_or(0.0)),
                    report::fmt_ms(r["closing_lateness"]["p50_ms"].as_f64().unwrap_or(f64::NAN)),
                    report::fmt_ms(r["closing_lateness"]["p99_ms"].as_f64().unwrap_or(f64::NAN)),
                    report::fmt_ms(r["attempt_lateness"]["p99_ms"].as_f64().unwrap_or(f64::NAN)),
                    format!(
                        "{:.1}",
                        r["accepted_after_close"]["p99_ms"]
                            .as_f64()
                            .unwrap_or(f64::NAN)
                            / 1e3
                    ),
                    report::cpu_line(&r["cpu"]),
                ]
            })
            .collect::<Vec<_>>(),
    );
    println!("  engine/raw {ratio:.2}");
    report::write_json(
        &args.common.out,
        "digest",
        backend,
        &json!({
            "scenario": "digest",
            "environment": report::environment(backend),
            "people": args.people,
            "concurrency": args.concurrency,
            "pool_size": args.pool_size,
            "steps": [raw, engine],
        }),
    )
}

/// Posts `query` with `variables` as the service key; fails on any GraphQL error.
async fn post(
    http: &reqwest::Client,
    server: &Server,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    let answer: Value = http
        .post(format!("{}/graphql", server.url))
        .bearer_auth(&server.key)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await?
        .json()
        .await?;
    anyhow::ensure!(answer.get("errors").is_none(), "the API refused: {answer}");
    Ok(answer)
}

/// Runs `jobs` calls of `job`, `clients` at once.
async fn in_parallel<F, Fut>(clients: usize, jobs: usize, job: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut results = std::pin::pin!(futures_util::stream::iter(0..jobs)
        .map(job)
        .buffer_unordered(clients.max(1)));
    while let Some(result) = results.next().await {
        result?;
    }
    Ok(())
}

fn zone(i: usize) -> &'static str {
    ZONES[i % ZONES.len()]
}

/// The engine step: set-up through the API, then the digests' minute.
async fn measure(args: &Args, server: &Server, sink: &Accepted) -> anyhow::Result<Value> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()?;
    let people = args.people;
    let users = people as u64;
    let setup = Instant::now();
    // The directory: an address and a zone each.
    in_parallel(args.clients, people.div_ceil(1_000), |chunk| {
        let http = &http;
        async move {
            let batch: Vec<Value> = (chunk * 1_000..((chunk + 1) * 1_000).min(people))
                .map(|i| {
                    let id = data::user(i as u64, users);
                    json!({ "userId": id, "email": format!("{id}@bench.belfry.test"), "timeZone": zone(i) })
                })
                .collect();
            post(
                http,
                server,
                "mutation($r: [RecipientInput!]!) { upsertRecipients(recipients: $r) { userId } }",
                json!({ "r": batch }),
            )
            .await
            .map(drop)
        }
    })
    .await?;
    // The minute every digest closes, and each zone's wall-clock time of it.
    let estimate = Duration::from_secs(args.lead) + setup.elapsed() * 2;
    let close = Utc::now() + chrono::Duration::from_std(estimate)?;
    let close = close
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(close)
        + chrono::Duration::minutes(1);
    let local = |i: usize| -> anyhow::Result<String> {
        let tz: chrono_tz::Tz = zone(i).parse().map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(close.with_timezone(&tz).format("%H:%M").to_string())
    };
    // Their settings, 10 to a request (the most mutation fields a request may carry).
    in_parallel(args.clients, people.div_ceil(10), |chunk| {
        let (http, local) = (&http, &local);
        async move {
            let mut fields = Vec::new();
            for i in chunk * 10..((chunk + 1) * 10).min(people) {
                fields.push(format!(
                    "d{i}: setDigest(userId: \"{}\", category: \"{CATEGORY}\", channel: EMAIL, \
                     schedule: {{ frequency: DAILY, at: \"{}\" }}) {{ timeZone }}",
                    data::user(i as u64, users),
                    local(i)?
                ));
            }
            post(
                http,
                server,
                &format!("mutation {{ {} }}", fields.join(" ")),
                json!({}),
            )
            .await
            .map(drop)
        }
    })
    .await?;
    // One notification each, by email: 10 sends of 10,000.
    let db = server.db().await?;
    let log = EventLog::new(db.clone());
    let head = log.head().await?;
    let sent = Instant::now();
    in_parallel(2, people.div_ceil(10_000), |chunk| {
        let http = &http;
        async move {
            let recipients: Vec<String> = (chunk * 10_000..((chunk + 1) * 10_000).min(people))
                .map(|i| data::user(i as u64, users))
                .collect();
            post(
                http,
                server,
                "mutation($input: SendNotificationInput!) { sendNotification(input: $input) { replayed } }",
                json!({ "input": { "recipients": recipients, "category": CATEGORY,
                    "title": "Your order shipped", "body": "A notification written by the benchmark suite.",
                    "routes": [{ "channel": "EMAIL" }] } }),
            )
            .await
            .map(drop)
        }
    })
    .await?;
    // Every delivery joins its digest before the minute.
    let digested = loop {
        let n: i64 = belfry::on_reader!(&db, |p| sqlx::query_scalar(
            "SELECT count(*) FROM deliveries WHERE status = 'digested'"
        )
        .fetch_one(p)
        .await)?;
        if n as usize >= people {
            break sent.elapsed();
        }
        anyhow::ensure!(
            Utc::now() < close,
            "only {n} of {people} deliveries joined their digest before it closed: raise --lead"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!(
        "  set-up {:.0} s; {people} deliveries joined their digests in {:.1} s ({:.0}/s); \
         the digests close at {close}",
        setup.elapsed().as_secs_f64(),
        digested.as_secs_f64(),
        people as f64 / digested.as_secs_f64().max(1e-9)
    );
    sink.take();
    let wait = (close - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait).await;
    // Instants on this process's clock, as wall-clock times: the sink notes `Instant`s.
    let anchor = (Instant::now(), Utc::now());
    let wall = |at: Instant| -> DateTime<Utc> {
        let since = at.saturating_duration_since(anchor.0);
        let before = anchor.0.saturating_duration_since(at);
        anchor.1 + chrono::Duration::from_std(since).unwrap_or_default()
            - chrono::Duration::from_std(before).unwrap_or_default()
    };
    let cpu = CpuWatch::start(Some(server.pid));
    let complete = sink.wait_for(people, Duration::from_secs(900)).await;
    let cpu = cpu.stop();
    let accepted = sink.take();

    // From the log: when each digest closed, and its delivery's due time and first attempt.
    let (mut closing, mut planned, mut attempted) =
        (Latencies::default(), HashMap::new(), HashMap::new());
    let mut position = head;
    loop {
        let page = log.read_after(position, 5_000).await?;
        let Some(last) = page.last() else { break };
        position = last.position;
        for event in &page {
            match event.decode()? {
                Some(Event::DigestClosed(e)) => {
                    closing.push((e.at - e.closes_at).to_std().unwrap_or_default());
                }
                Some(Event::Delivery(DeliveryEvent::Planned(e))) if e.digest_id.is_some() => {
                    planned.insert(e.delivery_id.as_uuid(), e.due_at);
                }
                Some(Event::Delivery(DeliveryEvent::Attempted(e))) if e.attempt == 1 => {
                    attempted.insert(e.delivery.delivery_id.as_uuid(), e.at);
                }
                _ => {}
            }
        }
    }
    let (mut attempt_late, mut after_close) = (Latencies::default(), Latencies::default());
    for (delivery, at) in &accepted {
        let Some(due) = planned.get(delivery) else {
            continue;
        };
        if let Some(attempt) = attempted.get(delivery) {
            attempt_late.push((*attempt - *due).to_std().unwrap_or_default());
        }
        after_close.push((wall(*at) - close).to_std().unwrap_or_default());
    }
    let last = accepted.values().max().map_or(close, |at| wall(*at));
    let seconds = (last - close).num_milliseconds() as f64 / 1e3;
    Ok(json!({
        "step": "engine",
        "people": people,
        "closes_at": close,
        "joined_seconds": report::round(digested.as_secs_f64()),
        "closed": closing.len(),
        "delivered": accepted.len(),
        "complete": complete,
        "seconds": report::round(seconds),
        "per_second": report::round(accepted.len() as f64 / seconds.max(1e-9)),
        "closing_lateness": closing.sorted().summary(),
        "attempt_lateness": attempt_late.sorted().summary(),
        "accepted_after_close": after_close.sorted().summary(),
        "cpu": cpu,
    }))
}

/// The raw limit: a bare lettre transport with the server's pool size sending the same
/// digest emails (one notification each), `concurrency` at once.
async fn raw_email(args: &Args, port: u16, sink: &Accepted) -> anyhow::Result<Value> {
    let originator = Originator {
        from: FROM.parse()?,
        reply_to: None,
        app_url: None,
    };
    let category = Category::parse(CATEGORY).map_err(|e| anyhow::anyhow!("{e}"))?;
    let letters: Vec<(Uuid, UserId, Contact, DigestBody)> = (0..args.raw.min(args.people))
        .map(|i| {
            let id = data::user(i as u64, args.people as u64);
            let (_, created) = data::sent(i as u64, id.clone())?;
            let closes_at = Utc::now();
            let digest_id = DigestId::of(&created.recipient, &category, Channel::Email, closes_at);
            let contact = Contact {
                email: Some(format!("{id}@bench.belfry.test")),
                time_zone: Some(zone(i).to_owned()),
                ..Contact::default()
            };
            let body = DigestBody {
                digest_id,
                category: category.clone(),
                closes_at,
                items: vec![DigestEntry {
                    notification_id: created.notification_id,
                    content: created.content.clone(),
                    sent_at: created.at,
                }],
            };
            Ok((Uuid::now_v7(), created.recipient, contact, body))
        })
        .collect::<anyhow::Result<_>>()?;
    let heading = {
        let (_, created) = data::sent(0, data::user(0, 1))?;
        let mut content = (*created.content).clone();
        content.title = belfry::domain::Title::parse("1 new notification: bench")
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        content
    };
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .tls(Tls::None)
        .timeout(Some(Duration::from_secs(30)))
        .pool_config(PoolConfig::new().max_size(args.pool_size))
        .build();
    sink.take();
    let errors = AtomicUsize::new(0);
    let cpu = CpuWatch::start(None);
    let started = Instant::now();
    let (transport, originator, heading, errors_ref) = (&transport, &originator, &heading, &errors);
    futures_util::stream::iter(&letters)
        .for_each_concurrent(
            args.concurrency,
            |(delivery_id, recipient, contact, body)| async move {
                let message = Message {
                    delivery_id: *delivery_id,
                    notification_id: body.digest_id.as_notification(),
                    recipient,
                    content: heading,
                    contact,
                    sent_at: body.closes_at,
                    attempt_at: Utc::now(),
                    preferences_url: None,
                    unsubscribe_url: None,
                    digest: Some(body),
                };
                let sent = match build_email(originator, &message) {
                    Ok(email) => transport.send(email).await.is_ok(),
                    Err(_) => false,
                };
                if !sent {
                    errors_ref.fetch_add(1, Ordering::Relaxed);
                }
            },
        )
        .await;
    let errors = errors.into_inner();
    sink.wait_for(letters.len() - errors, Duration::from_secs(10))
        .await;
    let cpu = cpu.stop();
    let accepted = sink.take();
    let last = accepted.values().max().copied().unwrap_or(started);
    let seconds = last.saturating_duration_since(started).as_secs_f64();
    Ok(json!({
        "step": "raw",
        "delivered": accepted.len(),
        "errors": errors,
        "seconds": report::round(seconds),
        "per_second": report::round(accepted.len() as f64 / seconds.max(1e-9)),
        "cpu": cpu,
    }))
}
