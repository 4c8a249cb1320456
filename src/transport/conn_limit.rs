//! Connection limits per listener, and a handshake deadline.
//!
//! Without a limit every accepted socket is held until the peer goes away: 2,000
//! idle connections cost the sidecar memory and file descriptors for as long as
//! the peer likes. Each listener gets a fixed number of slots
//! (`--max-connections`, `--admin-max-connections`); a connection accepted while
//! all slots are taken is closed at once (the peer sees a reset, and retries or
//! uses another pod). A connection must also send its first
//! [`HANDSHAKE_BYTES`] bytes (the HTTP/2 preface, or an HTTP/1 request line)
//! within `--handshake-timeout`, so a peer that connects and stays silent does
//! not hold a slot forever. Open connections are the `cohortd_open_connections`
//! gauge, per listener.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Semaphore;
use tokio::time::Sleep;
use tokio_stream::{Stream, StreamExt};

use super::slot::Slot;

/// Bytes a connection must send before the handshake deadline: the length of
/// the HTTP/2 client preface.
pub const HANDSHAKE_BYTES: usize = 24;

/// The slots of one listener.
#[derive(Debug, Clone)]
pub struct ConnLimit {
    slots: Arc<Semaphore>,
    open: Gauge,
    handshake: Duration,
    listener: &'static str,
}

impl ConnLimit {
    /// `max` slots; `open` is the listener's gauge.
    pub fn new(listener: &'static str, max: usize, handshake: Duration, open: Gauge) -> ConnLimit {
        ConnLimit {
            slots: Arc::new(Semaphore::new(max.max(1))),
            open,
            handshake,
            listener,
        }
    }

    /// Takes a slot for `io`, or closes it (by dropping it) when none is free.
    pub fn admit<T>(&self, io: T) -> Option<Limited<T>> {
        match Slot::try_take(&self.slots, &self.open) {
            Some(slot) => Some(Limited {
                io,
                _slot: slot,
                _counted: Counted::new(),
                deadline: (!self.handshake.is_zero())
                    .then(|| Box::pin(tokio::time::sleep(self.handshake))),
                read: 0,
            }),
            None => {
                tracing::debug!(
                    listener = self.listener,
                    "connection refused: all slots taken"
                );
                None
            }
        }
    }

    /// Applies the limit to a stream of accepted connections (tonic's `incoming`).
    pub fn incoming<T, S>(self, incoming: S) -> impl Stream<Item = io::Result<Limited<T>>>
    where
        S: Stream<Item = io::Result<T>>,
    {
        incoming.filter_map(move |r| match r {
            Ok(io) => self.admit(io).map(Ok),
            Err(e) => Some(Err(e)),
        })
    }
}

/// Tells [`super::mem_return`] that a connection opened and, when dropped with
/// the connection, that it closed: the end of a burst of connections returns
/// its memory.
#[derive(Debug)]
struct Counted;

impl Counted {
    fn new() -> Self {
        super::mem_return::opened();
        Counted
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        super::mem_return::closed();
    }
}

/// An admitted connection.
#[derive(Debug)]
pub struct Limited<T> {
    io: T,
    _slot: Slot,
    _counted: Counted,
    deadline: Option<Pin<Box<Sleep>>>,
    read: usize,
}

impl<T: AsyncRead + Unpin> AsyncRead for Limited<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let out = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Some(deadline) = &mut this.deadline {
            this.read += buf.filled().len() - before;
            if this.read >= HANDSHAKE_BYTES {
                this.deadline = None;
            } else if out.is_pending() && deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no handshake within --handshake-timeout",
                )));
            }
        }
        out
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Limited<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl<T: tonic::transport::server::Connected> tonic::transport::server::Connected for Limited<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

/// A listener with a [`ConnLimit`] (for `axum::serve`), wrapping any other
/// listener (plain TCP, or the TLS-aware one from `security`).
#[derive(Debug)]
pub struct LimitedListener<L> {
    /// The accepting listener.
    pub inner: L,
    /// Its slots.
    pub limit: ConnLimit,
}

impl<L: axum::serve::Listener> axum::serve::Listener for LimitedListener<L>
where
    L::Io: Unpin,
{
    type Io = Limited<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (io, addr) = self.inner.accept().await;
            if let Some(io) = self.limit.admit(io) {
                return (io, addr);
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Connection and stream settings of `serve`, with their flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnOptions {
    /// Open connections on the gRPC listener (`--max-connections`).
    pub max_connections: usize,
    /// Open connections on the admin listener (`--admin-max-connections`).
    pub admin_max_connections: usize,
    /// Open Watch and EventStream streams, all connections together (`--max-streams`).
    pub max_streams: usize,
    /// HTTP/2 streams one connection may have open at once (`--max-concurrent-streams-per-connection`).
    pub max_concurrent_streams_per_connection: u32,
    /// Time a new connection has to send its first bytes (`--handshake-timeout`); zero disables.
    pub handshake_timeout: Duration,
    /// Server HTTP/2 keep-alive ping interval (`--http2-keepalive-interval`); zero disables.
    pub http2_keepalive_interval: Duration,
    /// Time an HTTP/1 request on the admin and OFREP ports has to send all its
    /// headers (`--admin-header-timeout`); zero disables.
    pub admin_header_timeout: Duration,
}

impl Default for ConnOptions {
    fn default() -> Self {
        ConnOptions {
            max_connections: 1024,
            admin_max_connections: 64,
            max_streams: 1024,
            max_concurrent_streams_per_connection: 256,
            handshake_timeout: Duration::from_secs(10),
            http2_keepalive_interval: Duration::from_secs(60),
            admin_header_timeout: Duration::from_secs(10),
        }
    }
}
