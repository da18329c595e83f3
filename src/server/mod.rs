//! The HTTP server under the API's routes: accepts connections up to a cap that stays below
//! the process's open-file limit, gives each connection a deadline for its request headers
//! (which also closes idle keep-alive connections), and shuts down gracefully: it stops
//! accepting, lets in-flight requests finish and waits for their connections to close.
//! A connection counts against the cap for as long as its socket is open, also after it
//! became a WebSocket; at the cap, a new connection takes the place of the oldest idle one.

mod open;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Request, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::metrics::Metrics;
use open::{Admission, OpenConnections};

/// Limits of the HTTP server.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Time for a request's headers to arrive, from the connection's start or the end of the
    /// previous response.
    pub header_timeout: Duration,
    /// Connections open at once, WebSockets included.
    pub max_connections: usize,
}

/// Open files kept free for everything but client connections: the database pool, the log,
/// the listener, SQLite's files, the runtime's own descriptors.
const RESERVED_FILES: u64 = 64;

/// The connection cap that fits the open-file limit, raising the soft limit to the hard one
/// first (as servers commonly do). `db_connections` descriptors are kept for the pool.
pub fn connection_cap(configured: usize, db_connections: u32) -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if let (Some(current), Some(maximum)) = (limit.current, limit.maximum) {
        if current < maximum {
            let raised = rustix::process::Rlimit {
                current: Some(maximum),
                maximum: Some(maximum),
            };
            if setrlimit(Resource::Nofile, raised).is_ok() {
                limit = getrlimit(Resource::Nofile);
            }
        }
    }
    let Some(files) = limit.current else {
        return configured;
    };
    let reserved = RESERVED_FILES + u64::from(db_connections);
    let fits = usize::try_from(files.saturating_sub(reserved)).unwrap_or(usize::MAX);
    if fits < configured {
        tracing::info!(
            configured,
            open_file_limit = files,
            cap = fits.max(1),
            "http_max_connections lowered to fit the open-file limit"
        );
    }
    configured.min(fits).max(1)
}

/// How long an evicted connection may take to finish the response it is writing.
const EVICTION_GRACE: Duration = Duration::from_millis(500);

/// Serves `router` on `listener` until `shutdown` fires, then finishes gracefully.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    let open = Arc::new(OpenConnections::new(limits.max_connections, metrics));
    let connections = TaskTracker::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    on_accept_error(&error).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            open: Arc::clone(&open),
            http: http.clone(),
            router: router.clone(),
            shutdown: shutdown.clone(),
        };
        match open.admit() {
            Admission::Now(permit) => {
                connections.spawn(connection.serve(stream, permit));
            }
            Admission::AfterEviction => {
                connections.spawn(async move {
                    match connection.open.wait_for_place().await {
                        Some(permit) => connection.serve(stream, permit).await,
                        None => connection.open.refuse(&stream),
                    }
                });
            }
            Admission::Full => open.refuse(&stream),
        }
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// What serving one connection needs.
struct Connection {
    open: Arc<OpenConnections>,
    http: hyper::server::conn::http1::Builder,
    router: Router,
    shutdown: CancellationToken,
}

impl Connection {
    async fn serve(self, stream: TcpStream, permit: OwnedSemaphorePermit) {
        let (io, slot) = self.open.open(stream, permit);
        let router = self.router;
        let tracked = Arc::clone(&slot);
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let busy = tracked.busy();
            let slot = Arc::clone(&tracked);
            let response = router.clone().oneshot(request);
            async move {
                let response = response.await;
                if let Ok(r) = &response {
                    if r.status() == StatusCode::SWITCHING_PROTOCOLS {
                        slot.upgraded();
                    }
                }
                drop(busy);
                response
            }
        });
        let conn = self
            .http
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(conn);
        let result = tokio::select! {
            result = conn.as_mut() => result,
            () = self.shutdown.cancelled() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
            () = slot.evicted() => {
                conn.as_mut().graceful_shutdown();
                // A connection still sending its headers would hold its place until the
                // header timeout: close it instead.
                tokio::time::timeout(EVICTION_GRACE, conn.as_mut()).await.unwrap_or(Ok(()))
            }
        };
        if let Err(error) = result {
            tracing::debug!(%error, "HTTP connection ended with an error");
        }
    }
}

/// Accept errors are about one connection (it went away first) or about the process
/// (out of descriptors): wait a little in the second case rather than spin.
async fn on_accept_error(error: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "failed to accept a connection");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
