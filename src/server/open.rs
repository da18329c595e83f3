//! The open connections under the cap. Each holds a permit for as long as its socket is open,
//! also after it became a WebSocket. When every permit is taken, a new connection takes the
//! place of the oldest one waiting for a request: idle connections cannot lock out a client
//! that has something to ask.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// How a connection over the cap is let in.
pub(super) enum Admission {
    /// A place was free.
    Now(OwnedSemaphorePermit),
    /// An idle connection was asked to close; its place is free once it has.
    AfterEviction,
    /// Every connection is busy with a request or is a WebSocket.
    Full,
}

/// Every open connection, oldest first.
pub(super) struct OpenConnections {
    permits: Arc<Semaphore>,
    slots: Mutex<VecDeque<Arc<Slot>>>,
    refusals: Mutex<Refusals>,
    cap: usize,
    metrics: Metrics,
}

impl OpenConnections {
    /// How long a connection let in by an eviction waits for the evicted one to close.
    const ADMIT_WAIT: Duration = Duration::from_secs(1);

    pub(super) fn new(cap: usize, metrics: Metrics) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(cap)),
            slots: Mutex::new(VecDeque::new()),
            refusals: Mutex::new(Refusals::new(cap)),
            cap,
            metrics,
        }
    }

    pub(super) fn admit(&self) -> Admission {
        if let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() {
            return Admission::Now(permit);
        }
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        while slots
            .front()
            .is_some_and(|s| s.closed.load(Ordering::Acquire))
        {
            slots.pop_front();
        }
        match slots.iter().find(|s| s.idle()) {
            Some(oldest_idle) => {
                oldest_idle.evict.cancel();
                self.metrics.http_connection_evicted();
                Admission::AfterEviction
            }
            None => Admission::Full,
        }
    }

    /// A place for a connection let in by an eviction, once the evicted one has closed.
    pub(super) async fn wait_for_place(&self) -> Option<OwnedSemaphorePermit> {
        tokio::time::timeout(Self::ADMIT_WAIT, Arc::clone(&self.permits).acquire_owned())
            .await
            .ok()?
            .ok()
    }

    /// Registers an admitted connection; the returned socket holds its place until dropped.
    pub(super) fn open(
        &self,
        stream: TcpStream,
        permit: OwnedSemaphorePermit,
    ) -> (Counted, Arc<Slot>) {
        let slot = Arc::new(Slot::default());
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        // Closed connections leave from the front; the rest are swept now and then.
        if slots.len() > 2 * self.cap + 16 {
            slots.retain(|s| !s.closed.load(Ordering::Acquire));
        }
        slots.push_back(Arc::clone(&slot));
        drop(slots);
        let counted = Counted::new(stream, permit, Arc::clone(&slot), self.metrics.clone());
        (counted, slot)
    }

    /// Answers a connection that found no place with 503 if its buffer takes it at once, and
    /// closes it.
    pub(super) fn refuse(&self, stream: &TcpStream) {
        self.metrics.http_connection_refused();
        self.refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .refused();
        let _ = stream.try_write(
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        );
    }
}

/// What the cap knows of one connection.
#[derive(Default)]
pub(super) struct Slot {
    /// Requests in flight, or `UPGRADED` once the connection became a WebSocket.
    requests: AtomicUsize,
    closed: AtomicBool,
    evict: CancellationToken,
}

impl Slot {
    const UPGRADED: usize = usize::MAX;

    fn idle(&self) -> bool {
        self.requests.load(Ordering::Acquire) == 0
            && !self.closed.load(Ordering::Acquire)
            && !self.evict.is_cancelled()
    }

    /// Fires when the connection should close to make room.
    pub(super) async fn evicted(&self) {
        self.evict.cancelled().await;
    }

    /// Marks a request in flight until the guard is dropped.
    pub(super) fn busy(self: &Arc<Self>) -> Busy {
        let _ = self
            .requests
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n != Self::UPGRADED).then_some(n + 1)
            });
        Busy(Arc::clone(self))
    }

    /// The connection is a WebSocket now: never idle again.
    pub(super) fn upgraded(&self) {
        self.requests.store(Self::UPGRADED, Ordering::Release);
    }
}

/// A request in flight on its connection.
pub(super) struct Busy(Arc<Slot>);

impl Drop for Busy {
    fn drop(&mut self) {
        let _ = self
            .0
            .requests
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n != Slot::UPGRADED && n > 0).then(|| n - 1)
            });
    }
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
            "connection limit reached and no connection idle: refusing new connections (http_max_connections)"
        );
        self.since_last_line = 0;
        self.last_line = Some(Instant::now());
    }
}

/// A client socket holding its place under the cap until it is dropped, whether hyper or a
/// WebSocket owns it by then.
pub(super) struct Counted {
    stream: TcpStream,
    metrics: Metrics,
    slot: Arc<Slot>,
    _permit: OwnedSemaphorePermit,
}

impl Counted {
    fn new(
        stream: TcpStream,
        permit: OwnedSemaphorePermit,
        slot: Arc<Slot>,
        metrics: Metrics,
    ) -> Self {
        metrics.http_connections(1);
        Self {
            stream,
            metrics,
            slot,
            _permit: permit,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.slot.closed.store(true, Ordering::Release);
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
