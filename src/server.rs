//! The HTTP server under the API's routes: accepts connections up to a cap that stays below
//! the process's open-file limit, gives each connection a deadline for its request headers
//! (which also closes idle keep-alive connections), and shuts down gracefully: it stops
//! accepting, lets in-flight requests finish and waits for their connections to close.
//! A connection counts against the cap for as long as its socket is open, also after it
//! became a WebSocket.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::Metrics;

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

/// Serves `router` on `listener` until `shutdown` fires, then finishes gracefully.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    let mut refusals = Refusals::new(limits.max_connections);
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
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            metrics.http_connection_refused();
            refusals.refused();
            refuse(&stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let io = Counted::new(stream, permit, metrics.clone());
        let service = TowerToHyperService::new(router.clone());
        let conn = http
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            tokio::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                () = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%error, "HTTP connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
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

/// Answers a connection over the cap with 503 if its buffer takes it at once, and closes it.
fn refuse(stream: &TcpStream) {
    let _ = stream.try_write(
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    );
}

/// Logs refused connections: at once for the first, then at most every ten seconds with the
/// number refused since, so a flood cannot flood the log too.
struct Refusals {
    cap: usize,
    since_last_line: u64,
    last_line: Option<Instant>,
}

impl Refusals {
    const EVERY: Duration = Duration::from_secs(10);

    fn new(cap: usize) -> Self {
        Self {
            cap,
            since_last_line: 0,
            last_line: None,
        }
    }

    fn refused(&mut self) {
        self.since_last_line += 1;
        if self.last_line.is_some_and(|at| at.elapsed() < Self::EVERY) {
            return;
        }
        tracing::warn!(
            cap = self.cap,
            refused = self.since_last_line,
            "connection limit reached: refusing new connections (http_max_connections)"
        );
        self.since_last_line = 0;
        self.last_line = Some(Instant::now());
    }
}

/// A client socket holding its place under the cap until it is dropped, whether hyper or a
/// WebSocket owns it by then.
struct Counted {
    stream: TcpStream,
    metrics: Metrics,
    _permit: OwnedSemaphorePermit,
}

impl Counted {
    fn new(stream: TcpStream, permit: OwnedSemaphorePermit, metrics: Metrics) -> Self {
        metrics.http_connections(1);
        Self {
            stream,
            metrics,
            _permit: permit,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.metrics.http_connections(-1);
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
