//! Scenario 8: deliveries leaving a real `belfry serve` by email and by webhook, to an SMTP
//! sink and an HTTP receiver that run in this process, against the raw limit of the same
//! sink in the same run: lettre (email) or reqwest (webhook) sending the same messages with
//! the same concurrency and no engine around them.
//!
//! Each delivery is known on the sink by its delivery id (the email's `Message-ID`, the
//! webhook's `webhook-id`). After a step the log says which notification each delivery
//! belongs to (`delivery.planned`) and when its attempt began (`delivery.attempted`), so the
//! latency runs from starting the send's HTTP request to the sink accepting the delivery, and
//! the lateness from the planned due time to the attempt's start, both on the server's clock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use lettre::transport::smtp::client::Tls;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

use belfry::delivery::email::{build_email, Originator};
use belfry::delivery::webhook::{signature_header, WebhookSecret};
use belfry::delivery::{Contact, Message};
use belfry::domain::event::{DeliveryEvent, Event};
use belfry::domain::{NotificationId, UserId};
use belfry::eventlog::EventLog;

use crate::report::{self, CpuWatch, Latencies};
use crate::server::Server;
use crate::{data, Common};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    common: Common,
    /// Sends per step, each to one person and routed to one channel.
    #[arg(long, default_value_t = 2_000)]
    sends: usize,
    /// Concurrent senders, each posting one send after another on a kept-alive connection.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// People the sends go to (each with an email address in the directory).
    #[arg(long, default_value_t = 1_000)]
    users: u64,
    /// Deliveries attempted at once: the server's `delivery_concurrency` and the raw loops'.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// SMTP connections kept open: the server's `smtp.pool_size` and the raw transport's.
    #[arg(long, default_value_t = 4)]
    pool_size: u32,
    /// Sends per second, paced in the open (send i starts at i/R s); unset: as fast as the
    /// senders go. The delivery rate is then bound by the deliveries, and lateness grows with
    /// the backlog; with a rate below it, lateness is the scheduler's own.
    #[arg(long)]
    rate: Option<f64>,
    /// Which channels to measure.
    #[arg(long, value_delimiter = ',', default_value = "email,webhook")]
    channels: Vec<ChannelArg>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ChannelArg {
    Email,
    Webhook,
}

impl ChannelArg {
    fn name(self) -> &'static str {
        match self {
            ChannelArg::Email => "email",
            ChannelArg::Webhook => "webhook",
        }
    }
}

pub(crate) const FROM: &str = "Belfry bench <bench@belfry.test>";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SEND: &str = "mutation($input: SendNotificationInput!) { sendNotification(input: $input) { deliveries { notificationId } } }";

/// When the sink accepted each delivery, by delivery id.
#[derive(Clone, Default)]
pub(crate) struct Accepted(Arc<Mutex<HashMap<Uuid, Instant>>>);

impl Accepted {
    /// A std lock: held only to insert or copy, never across `.await`.
    fn record(&self, id: Uuid, at: Instant) {
        self.0.lock().unwrap().entry(id).or_insert(at);
    }

    pub(crate) fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    pub(crate) fn take(&self) -> HashMap<Uuid, Instant> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    /// Waits until `n` deliveries have arrived, or `limit` has passed.
    pub(crate) async fn wait_for(&self, n: usize, limit: Duration) -> bool {
        let started = Instant::now();
        while self.len() < n {
            if started.elapsed() > limit {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

/// Starts the SMTP sink: enough SMTP for lettre (greeting, EHLO, MAIL, RCPT, DATA, the final
/// dot, RSET, NOOP, QUIT), accepting every message and noting when, by its `Message-ID`.
pub(crate) async fn smtp_sink(accepted: Accepted) -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let accepted = accepted.clone();
            tokio::spawn(async move {
                let _ = smtp_session(stream, accepted).await;
            });
        }
    });
    Ok(port)
}

async fn smtp_session(stream: TcpStream, accepted: Accepted) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    writer.write_all(b"220 sink.belfry.test ESMTP\r\n").await?;
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).map(<[u8]>::to_ascii_uppercase);
        match verb.as_deref() {
            Some(b"EHLO") => {
                writer
                    .write_all(b"250-sink.belfry.test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 10485760\r\n")
                    .await?
            }
            Some(b"DATA") => {
                writer.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut id = None;
                loop {
                    line.clear();
                    if reader.read_until(b'\n', &mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == b".\r\n" {
                        break;
                    }
                    if id.is_none() && line.len() > 11 && line[..11].eq_ignore_ascii_case(b"message-id:") {
                        id = message_id(&line[11..]);
                    }
                }
                if let Some(id) = id {
                    accepted.record(id, Instant::now());
                }
                writer.write_all(b"250 2.0.0 accepted\r\n").await?;
            }
            Some(b"QUIT") => {
                writer.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            // HELO, MAIL, RCPT, RSET, NOOP.
            _ => writer.write_all(b"250 2.0.0 ok\r\n").await?,
        }
    }
}

/// The delivery id in `<id@domain>`.
fn message_id(value: &[u8]) -> Option<Uuid> {
    let text = std::str::from_utf8(value).ok()?;
    let start = text.find('<')? + 1;
    let end = start + text[start..].find('@')?;
    Uuid::parse_str(&text[start..end]).ok()
}

/// Starts the webhook receiver: answers every POST 200 and notes when it read its body, by
/// its `webhook-id`.
async fn receiver(accepted: Accepted) -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let app = axum::Router::new().fallback(axum::routing::post(
        move |headers: axum::http::HeaderMap, _body: axum::body::Bytes| {
            let accepted = accepted.clone();
            async move {
                if let Some(id) = headers
                    .get("webhook-id")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| Uuid::parse_str(v).ok())
                {
                    accepted.record(id, Instant::now());
                }
                axum::http::StatusCode::OK
            }
        },
    ));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(port)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let backend = args.common.backend.name();
    let email_sink = Accepted::default();
    let hooks = Accepted::default();
    let smtp_port = smtp_sink(email_sink.clone()).await?;
    let hook_port = receiver(hooks.clone()).await?;
    let config = tempfile::Builder::new()
        .prefix("belfry-bench-config-")
        .tempdir()?;
    let config_file = config.path().join("belfry.toml");
    std::fs::write(
        &config_file,
        format!(
            "delivery_concurrency = {}\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {smtp_port}\n\
             tls = \"none\"\nfrom = \"{FROM}\"\npool_size = {}\n\n[[webhooks]]\n\
             url = \"http://127.0.0.1:{hook_port}/hook\"\nsecrets = [\"{SECRET}\"]\n",
            args.concurrency, args.pool_size
        ),
    )?;
    let server = Server::start(
        args.common.backend,
        &args.common.pg_admin,
        &[("BELFRY_CONFIG", config_file.display().to_string())],
    )
    .await?;
    let result = measure(&args, &server, smtp_port, hook_port, &email_sink, &hooks).await;
    server.stop().await?;
    let rows = result?;
    report::print_table(
        &format!(
            "deliveries from belfry serve against the raw limit, {backend}, {} sends",
            args.sends
        ),
        &[
            "channel",
            "step",
            "delivered",
            "deliveries/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "lateness p99 ms",
            "cpu",
        ],
        &rows
            .iter()
            .map(|r| {
                vec![
                    r["channel"].as_str().unwrap_or("").to_owned(),
                    r["step"].as_str().unwrap_or("").to_owned(),
                    r["delivered"].to_string(),
                    report::fmt_rate(r["per_second"].as_f64().unwrap_or(0.0)),
                    report::fmt_ms(r["latency"]["p50_ms"].as_f64().unwrap_or(f64::NAN)),
                    report::fmt_ms(r["latency"]["p99_ms"].as_f64().unwrap_or(f64::NAN)),
                    report::fmt_ms(r["latency"]["max_ms"].as_f64().unwrap_or(f64::NAN)),
                    report::fmt_ms(r["lateness"]["p99_ms"].as_f64().unwrap_or(f64::NAN)),
                    report::cpu_line(&r["cpu"]),
                ]
            })
            .collect::<Vec<_>>(),
    );
    let mut ratios = Vec::new();
    for channel in &args.channels {
        let rate = |step: &str| {
            rows.iter()
                .find(|r| r["channel"] == channel.name() && r["step"] == step)
                .and_then(|r| r["per_second"].as_f64())
                .unwrap_or(f64::NAN)
        };
        let ratio = rate("engine") / rate("raw");
        println!("  {}: engine/raw {:.2} (aim >= 0.8)", channel.name(), ratio);
        ratios.push(json!({ "channel": channel.name(), "engine_over_raw": report::round(ratio) }));
    }
    report::write_json(
        &args.common.out,
        "delivery",
        backend,
        &json!({
            "scenario": "delivery",
            "environment": report::environment(backend),
            "sends": args.sends,
            "clients": args.clients,
            "users": args.users,
            "concurrency": args.concurrency,
            "pool_size": args.pool_size,
            "rate": args.rate,
            "steps": rows,
            "ratios": ratios,
        }),
    )
}

async fn measure(
    args: &Args,
    server: &Server,
    smtp_port: u16,
    hook_port: u16,
    email_sink: &Accepted,
    hooks: &Accepted,
) -> anyhow::Result<Vec<Value>> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()?;
    upsert_recipients(&http, server, args.users).await?;
    let mut rows = Vec::new();
    for &channel in &args.channels {
        let sink = match channel {
            ChannelArg::Email => email_sink,
            ChannelArg::Webhook => hooks,
        };
        let raw = match channel {
            ChannelArg::Email => raw_email(args, smtp_port, sink).await?,
            ChannelArg::Webhook => raw_webhook(args, hook_port, sink).await?,
        };
        rows.push(raw);
        rows.push(engine(args, server, &http, channel, sink).await?);
    }
    Ok(rows)
}

/// Gives every person an email address, 1,000 per call.
pub(crate) async fn upsert_recipients(
    http: &reqwest::Client,
    server: &Server,
    users: u64,
) -> anyhow::Result<()> {
    let all: Vec<u64> = (0..users).collect();
    for chunk in all.chunks(1_000) {
        let people: Vec<Value> = chunk
            .iter()
            .map(|&i| {
                let id = data::user(i, users);
                json!({ "userId": id, "email": format!("{id}@bench.belfry.test") })
            })
            .collect();
        let response: Value = http
            .post(format!("{}/graphql", server.url))
            .bearer_auth(&server.key)
            .json(&json!({
                "query": "mutation($r: [RecipientInput!]!) { upsertRecipients(recipients: $r) { userId } }",
                "variables": { "r": people },
            }))
            .send()
            .await?
            .json()
            .await?;
        anyhow::ensure!(
            response.get("errors").is_none(),
            "upsertRecipients failed: {response}"
        );
    }
    Ok(())
}

/// The engine step: `sends` sends through the API, each routed to `channel`, until the sink
/// has every delivery; then the log's timestamps of each delivery.
async fn engine(
    args: &Args,
    server: &Server,
    http: &reqwest::Client,
    channel: ChannelArg,
    sink: &Accepted,
) -> anyhow::Result<Value> {
    sink.take();
    let db = server.db().await?;
    let log = EventLog::new(db);
    let head = log.head().await?;
    let next = Arc::new(AtomicUsize::new(0));
    let cpu = CpuWatch::start(Some(server.pid));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.clients {
        let (http, url, key, next) = (
            http.clone(),
            server.url.clone(),
            server.key.clone(),
            next.clone(),
        );
        let (sends, users, rate) = (args.sends, args.users, args.rate);
        tasks.push(tokio::spawn(async move {
            let mut sent: Vec<(Uuid, Instant)> = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= sends {
                    return anyhow::Ok(sent);
                }
                if let Some(rate) = rate {
                    let due = started + Duration::from_secs_f64(i as f64 / rate.max(1e-3));
                    tokio::time::sleep_until(due.into()).await;
                }
                let at = Instant::now();
                let response: Value = http
                    .post(format!("{url}/graphql"))
                    .bearer_auth(&key)
                    .json(&json!({ "query": SEND, "variables": { "input": {
                        "recipients": [data::user(i as u64, users)],
                        "title": format!("Bench delivery {i}"),
                        "body": "A notification written by the benchmark suite.",
                        "category": "bench",
                        "routes": [{ "channel": channel.name().to_uppercase() }],
                    } } }))
                    .send()
                    .await?
                    .json()
                    .await?;
                let id = response["data"]["sendNotification"]["deliveries"][0]["notificationId"]
                    .as_str()
                    .with_context(|| format!("a send failed: {response}"))?;
                sent.push((Uuid::parse_str(id)?, at));
            }
        }));
    }
    let mut sent_at = HashMap::new();
    for task in tasks {
        sent_at.extend(task.await??);
    }
    let complete = sink.wait_for(args.sends, Duration::from_secs(300)).await;
    let cpu = cpu.stop();
    let accepted = sink.take();

    // From the log: each delivery's notification, due time and first attempt's start.
    let mut planned: HashMap<Uuid, (Uuid, chrono::DateTime<chrono::Utc>)> = HashMap::new();
    let mut attempted: HashMap<Uuid, chrono::DateTime<chrono::Utc>> = HashMap::new();
    let mut position = head;
    loop {
        let page = log.read_after(position, 5_000).await?;
        let Some(last) = page.last() else { break };
        position = last.position;
        for event in &page {
            match event.decode()? {
                Some(Event::Delivery(DeliveryEvent::Planned(e))) => {
                    planned.insert(
                        e.delivery_id.as_uuid(),
                        (e.notification_id.as_uuid(), e.due_at),
                    );
                }
                Some(Event::Delivery(DeliveryEvent::Attempted(e))) if e.attempt == 1 => {
                    attempted.insert(e.delivery.delivery_id.as_uuid(), e.at);
                }
                _ => {}
            }
        }
    }
    let (mut latency, mut lateness) = (Latencies::default(), Latencies::default());
    for (delivery, at) in &accepted {
        let Some((notification, due)) = planned.get(delivery) else {
            continue;
        };
        if let Some(sent) = sent_at.get(notification) {
            latency.push(at.saturating_duration_since(*sent));
        }
        if let Some(attempt) = attempted.get(delivery) {
            lateness.push((*attempt - *due).to_std().unwrap_or_default());
        }
    }
    let last = accepted.values().max().copied().unwrap_or(started);
    let seconds = last.saturating_duration_since(started).as_secs_f64();
    Ok(json!({
        "channel": channel.name(),
        "step": "engine",
        "sends": sent_at.len(),
        "planned": planned.len(),
        "delivered": accepted.len(),
        "complete": complete,
        "seconds": report::round(seconds),
        "per_second": report::round(accepted.len() as f64 / seconds.max(1e-9)),
        "latency": latency.sorted().summary(),
        "lateness": lateness.sorted().summary(),
        "cpu": cpu,
    }))
}

/// One message per raw send: the same content, contact and ids an engine delivery has.
struct RawMessage {
    delivery_id: Uuid,
    notification_id: NotificationId,
    recipient: UserId,
    content: Arc<belfry::domain::event::Content>,
    contact: Contact,
    sent_at: chrono::DateTime<chrono::Utc>,
}

fn raw_messages(args: &Args) -> anyhow::Result<Vec<RawMessage>> {
    (0..args.sends)
        .map(|i| {
            let user = data::user(i as u64, args.users);
            let (_, created) = data::sent(i as u64, user.clone())?;
            Ok(RawMessage {
                delivery_id: Uuid::now_v7(),
                notification_id: created.notification_id,
                recipient: created.recipient,
                content: created.content,
                contact: Contact {
                    email: Some(format!("{user}@bench.belfry.test")),
                    ..Contact::default()
                },
                sent_at: created.at,
            })
        })
        .collect()
}

impl RawMessage {
    fn message(&self) -> Message<'_> {
        Message {
            delivery_id: self.delivery_id,
            notification_id: self.notification_id,
            recipient: &self.recipient,
            content: &self.content,
            contact: &self.contact,
            sent_at: self.sent_at,
            attempt_at: chrono::Utc::now(),
            preferences_url: None,
            unsubscribe_url: None,
            digest: None,
        }
    }
}

/// Sends `messages`, `concurrency` at once, with `send` (true when the sink took it), and
/// measures each from its start to the sink accepting it.
async fn raw_loop<'m, F, Fut>(
    args: &Args,
    channel: ChannelArg,
    sink: &Accepted,
    messages: &'m [RawMessage],
    send: F,
) -> Value
where
    F: Fn(&'m RawMessage) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    sink.take();
    let begun = Mutex::new(HashMap::new());
    let errors = AtomicUsize::new(0);
    let cpu = CpuWatch::start(None);
    let started = Instant::now();
    futures_util::stream::iter(messages)
        .for_each_concurrent(args.concurrency, |m| {
            let (begun, errors, send) = (&begun, &errors, &send);
            async move {
                begun.lock().unwrap().insert(m.delivery_id, Instant::now());
                if !send(m).await {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .await;
    let errors = errors.into_inner();
    sink.wait_for(messages.len() - errors, Duration::from_secs(10))
        .await;
    let cpu = cpu.stop();
    let (begun, accepted) = (begun.into_inner().unwrap(), sink.take());
    let mut latency = Latencies::default();
    for (id, at) in &accepted {
        if let Some(begun) = begun.get(id) {
            latency.push(at.saturating_duration_since(*begun));
        }
    }
    let last = accepted.values().max().copied().unwrap_or(started);
    let seconds = last.saturating_duration_since(started).as_secs_f64();
    json!({
        "channel": channel.name(),
        "step": "raw",
        "delivered": accepted.len(),
        "errors": errors,
        "seconds": report::round(seconds),
        "per_second": report::round(accepted.len() as f64 / seconds.max(1e-9)),
        "latency": latency.sorted().summary(),
        "cpu": cpu,
    })
}

/// The raw email limit: a bare lettre transport with the server's pool size, `concurrency`
/// sends at once, each message built as the email channel builds it.
async fn raw_email(args: &Args, port: u16, sink: &Accepted) -> anyhow::Result<Value> {
    let messages = raw_messages(args)?;
    let originator = Originator {
        from: FROM.parse()?,
        reply_to: None,
        app_url: None,
    };
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .tls(Tls::None)
        .timeout(Some(Duration::from_secs(30)))
        .pool_config(PoolConfig::new().max_size(args.pool_size))
        .build();
    let (transport, originator) = (&transport, &originator);
    Ok(
        raw_loop(args, ChannelArg::Email, sink, &messages, |m| async move {
            match build_email(originator, &m.message()) {
                Ok(email) => transport.send(email).await.is_ok(),
                Err(_) => false,
            }
        })
        .await,
    )
}

/// The raw webhook limit: a bare reqwest POST loop, `concurrency` at once, of bodies shaped
/// and signed as the webhook channel's.
async fn raw_webhook(args: &Args, port: u16, sink: &Accepted) -> anyhow::Result<Value> {
    let messages = raw_messages(args)?;
    let secrets = vec![WebhookSecret::parse(SECRET).map_err(|e| anyhow::anyhow!("{e}"))?];
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()?;
    let url = format!("http://127.0.0.1:{port}/hook");
    let (client, url, secrets) = (&client, &url, &secrets);
    Ok(
        raw_loop(args, ChannelArg::Webhook, sink, &messages, |m| async move {
            let message = m.message();
            let body = serde_json::to_vec(&json!({
                "type": "notification.delivery",
                "timestamp": message.attempt_at.to_rfc3339(),
                "data": {
                    "deliveryId": m.delivery_id,
                    "notificationId": m.notification_id,
                    "recipient": { "id": m.recipient },
                    "notification": &*m.content,
                },
            }))
            .unwrap_or_default();
            let id = m.delivery_id.to_string();
            let timestamp = message.attempt_at.timestamp();
            client
                .post(url.as_str())
                .header("content-type", "application/json")
                .header("webhook-id", &id)
                .header("webhook-timestamp", timestamp.to_string())
                .header(
                    "webhook-signature",
                    signature_header(secrets, &id, timestamp, &body),
                )
                .body(body)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await,
    )
}
