//! Scenarios 3, 4 and 7, against a real `belfry serve`: many WebSocket clients, each signed in
//! as its own user with a live `inbox` subscription (`graphql-transport-ws`).
//!
//! - `live`: sends through the HTTP API at a fixed rate and at the most the server takes; the
//!   latency from starting a send to its change arriving on the recipient's socket.
//! - `idle`: server memory per connected, subscribed, idle socket.
//! - `broadcast`: one send to many recipients: until every inbox row exists (the send's
//!   acknowledgement, checked with a count), and until every connected recipient has it live.
//!
//! Sockets connect from several loopback source addresses (127.0.0.x), so more than one
//! address's worth of ephemeral ports can be open at once.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::http::{send, send_with};
use crate::report::{self, CpuWatch, Latencies};
use crate::server::Server;
use crate::Common;

#[derive(clap::Args, Debug)]
pub struct LiveArgs {
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
}

#[derive(clap::Args, Debug)]
pub struct IdleArgs {
    #[command(flatten)]
    common: Common,
    /// Connected sockets to measure at, cumulatively.
    #[arg(long, value_delimiter = ',', default_value = "10000,50000")]
    connections: Vec<usize>,
    /// Only connect and sign in, without subscribing: what a socket costs by itself.
    #[arg(long)]
    no_subscribe: bool,
}

#[derive(clap::Args, Debug)]
pub struct BroadcastArgs {
    #[command(flatten)]
    common: Common,
    /// Recipients of the one send.
    #[arg(long, default_value_t = 100_000)]
    recipients: usize,
    /// How many of them are connected with a live subscription.
    #[arg(long, default_value_t = 10_000)]
    connected: usize,
}

/// What every subscriber shares: when each send started, and how often each arrived.
struct Shared {
    t0: Instant,
    /// Microseconds after `t0` plus one at which send `i` started; 0 while not started.
    starts: Vec<AtomicU64>,
    /// How many times send `i` arrived on a socket.
    seen: Vec<AtomicU32>,
    errors: AtomicUsize,
}

impl Shared {
    fn new(sends: usize) -> Arc<Shared> {
        Arc::new(Shared {
            t0: Instant::now(),
            starts: (0..sends).map(|_| AtomicU64::new(0)).collect(),
            seen: (0..sends).map(|_| AtomicU32::new(0)).collect(),
            errors: AtomicUsize::new(0),
        })
    }

    fn now_us(&self) -> u64 {
        self.t0.elapsed().as_micros() as u64 + 1
    }

    fn started(&self, i: usize) {
        self.starts[i].store(self.now_us(), Ordering::Relaxed);
    }
}

/// Sockets opened by this run so far, to spread them over source addresses.
static OPENED: AtomicUsize = AtomicUsize::new(0);

/// The loopback source address of the next socket: 10,000 sockets per address, moving on to
/// the next address (127.0.0.1 to 127.0.0.250, starting at one picked by the process id), so
/// ports still in TIME_WAIT from an earlier step or run never run out.
fn source() -> SocketAddr {
    let k = OPENED.fetch_add(1, Ordering::Relaxed) / 10_000 + std::process::id() as usize;
    SocketAddr::from((Ipv4Addr::new(127, 0, 0, 1 + (k % 250) as u8), 0))
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Connects, signs in as `user`, and (when `inbox`) subscribes to its inbox.
async fn subscribe(server_ws: &str, token: &str, inbox: bool) -> anyhow::Result<Ws> {
    let target: SocketAddr = server_ws
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .context("no host")?
        .parse()?;
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(source())?;
    let stream = socket.connect(target).await?;
    let mut request = server_ws.into_client_request()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse()?);
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
    let text = |v: Value| Message::text(v.to_string());
    ws.send(text(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })))
        .await?;
    loop {
        let message = ws.next().await.context("closed before connection_ack")??;
        if let Message::Text(t) = message {
            let v: Value = serde_json::from_str(t.as_str())?;
            anyhow::ensure!(v["type"] == "connection_ack", "not acknowledged: {v}");
            break;
        }
    }
    if !inbox {
        return Ok(ws);
    }
    ws.send(text(json!({ "id": "1", "type": "subscribe", "payload": {
        "query": "subscription { inbox { cursor added { title } } }" } })))
        .await?;
    Ok(ws)
}

/// Reads a subscriber's socket until cancelled; the latency of every send that arrives.
async fn receive(mut ws: Ws, shared: Arc<Shared>, cancel: CancellationToken) -> Latencies {
    let mut latency = Latencies::default();
    loop {
        let message = tokio::select! {
            () = cancel.cancelled() => break,
            m = ws.next() => m,
        };
        let Some(Ok(message)) = message else {
            shared.errors.fetch_add(1, Ordering::Relaxed);
            break;
        };
        let Message::Text(text) = message else {
            continue;
        };
        let now = shared.now_us();
        let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        match v["type"].as_str() {
            Some("next") => {
                for added in v["payload"]["data"]["inbox"]["added"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let index = added["title"]
                        .as_str()
                        .and_then(|t| t.strip_prefix('b'))
                        .and_then(|n| n.parse::<usize>().ok());
                    if let Some(i) = index.filter(|i| *i < shared.seen.len()) {
                        shared.seen[i].fetch_add(1, Ordering::Relaxed);
                        let start = shared.starts[i].load(Ordering::Relaxed);
                        if start > 0 {
                            latency.0.push(now.saturating_sub(start));
                        }
                    }
                }
            }
            Some("ping") => {
                let _ = ws
                    .send(Message::text(json!({ "type": "pong" }).to_string()))
                    .await;
            }
            _ => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    let _ = ws.close(None).await;
    latency
}

/// Waits until the server counts `n` live subscribers.
async fn wait_subscribers(server: &Server, n: usize) -> anyhow::Result<()> {
    wait_gauge(server, "belfry_live_subscribers", n).await
}

/// Waits until a gauge of the server reads `n`.
async fn wait_gauge(server: &Server, gauge: &str, n: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    while server.gauge(gauge).await? != n as f64 {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "the server's {gauge} does not reach {n}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Subscribers for users `u{first}`..`u{first+n-1}`, connected 256 at a time, each reading on
/// its own task; returns when the server counts `total` subscribers (these and earlier ones).
async fn connect_all(
    server: &Server,
    first: usize,
    n: usize,
    total: usize,
    inbox: bool,
    shared: &Arc<Shared>,
    cancel: &CancellationToken,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<Latencies>>> {
    let ws_url = server.ws_url();
    let tokens: Vec<String> = (first..first + n)
        .map(|k| server.token(&format!("u{k}")))
        .collect::<anyhow::Result<_>>()?;
    let sockets: Vec<anyhow::Result<Ws>> = futures_util::stream::iter(tokens.iter())
        .map(|token| {
            let ws_url = ws_url.clone();
            async move { subscribe(&ws_url, token, inbox).await }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    let mut tasks = Vec::with_capacity(n);
    for ws in sockets {
        tasks.push(tokio::spawn(receive(ws?, shared.clone(), cancel.clone())));
    }
    if inbox {
        wait_subscribers(server, total).await?;
    } else {
        wait_gauge(server, "belfry_websocket_connections", total).await?;
    }
    Ok(tasks)
}

/// Stops the subscribers and gathers their latencies.
async fn finish(
    tasks: Vec<tokio::task::JoinHandle<Latencies>>,
    cancel: &CancellationToken,
) -> Latencies {
    cancel.cancel();
    let mut all = Latencies::default();
    for t in tasks {
        if let Ok(l) = t.await {
            all.extend(l);
        }
    }
    all.sorted()
}

/// Waits until `expected` sends have arrived (or `timeout` passes).
async fn drain(shared: &Shared, expected: usize, timeout: Duration) {
    let started = Instant::now();
    while started.elapsed() < timeout {
        let arrived = shared
            .seen
            .iter()
            .filter(|s| s.load(Ordering::Relaxed) > 0)
            .count();
        if arrived >= expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn run_live(args: LiveArgs) -> anyhow::Result<()> {
    let backend = args.common.backend.name();
    let server = Server::start(args.common.backend, &args.common.pg_admin, &[]).await?;
    let result = live_steps(&args, &server).await;
    server.stop().await?;
    let steps = result?;
    report::print_table(
        &format!(
            "end-to-end live delivery, {backend}, {} subscribers",
            args.users
        ),
        &[
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
    report::write_json(
        &args.common.out,
        &format!("live-{}", args.users),
        backend,
        &json!({
            "scenario": "live",
            "environment": report::environment(backend),
            "users": args.users,
            "steps": steps,
        }),
    )
}

async fn live_steps(args: &LiveArgs, server: &Server) -> anyhow::Result<Vec<Value>> {
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

pub async fn run_idle(args: IdleArgs) -> anyhow::Result<()> {
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

pub async fn run_broadcast(args: BroadcastArgs) -> anyhow::Result<()> {
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
