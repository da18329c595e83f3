//! The WebSocket clients of scenarios 3, 4 and 7 ([`live`](crate::live), [`idle`](crate::idle),
//! [`broadcast`](crate::broadcast)): each signed in as its own user against a real
//! `belfry serve`, with a live `inbox` subscription (`graphql-transport-ws`), reading on its own
//! task and noting in [`Shared`] when each send arrived.
//!
//! Sockets connect from several loopback source addresses (127.0.0.x), so more than one
//! address's worth of ephemeral ports can be open at once.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::report::Latencies;
use crate::server::Server;

/// What every subscriber shares: when each send started, and how often each arrived.
pub struct Shared {
    t0: Instant,
    /// Microseconds after `t0` plus one at which send `i` started; 0 while not started.
    starts: Vec<AtomicU64>,
    /// How many times send `i` arrived on a socket.
    pub seen: Vec<AtomicU32>,
    pub errors: AtomicUsize,
}

impl Shared {
    pub fn new(sends: usize) -> Arc<Shared> {
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

    pub fn started(&self, i: usize) {
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
pub async fn wait_subscribers(server: &Server, n: usize) -> anyhow::Result<()> {
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
pub async fn connect_all(
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
pub async fn finish(
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
pub async fn drain(shared: &Shared, expected: usize, timeout: Duration) {
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
