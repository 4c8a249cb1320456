//! One write per turn of the scheduler instead of one per answered call.
//!
//! h2 writes and flushes a connection every time its task runs with frames
//! queued, and a call's task wakes the connection task as soon as its answer is
//! queued. tokio runs the woken connection task next (its LIFO slot), so when
//! several requests arrive in one read, each answer went out in its own
//! `writev`: 1.12 per flagd `ResolveString` with 16 callers on 2 connections
//! (`perf stat` on the server), the sender paying the TCP path every time; the
//! server's system time was about a quarter of its CPU per call. Coalesced:
//! 0.42 writes per call (docs/benchmarks.md, "Writes per call").
//!
//! [`Coalesce`] wraps the gRPC connection. Bytes h2 writes are kept in a buffer;
//! the first flush of new bytes is answered at once *without* writing, and the
//! connection task wakes itself, which tokio treats as a yield: the task goes
//! to the back of the worker's queue, behind the calls already running from the
//! same read. When it is polled again (h2 always ends a poll of an open
//! connection with a flush), their answers have joined the buffer and one
//! `writev` sends them all. The delay is bounded by the calls already queued on
//! that worker; a lone call costs one extra poll of the connection task and no
//! extra system call.
//!
//! Nothing is held back for long or without limit: the self-wake guarantees the
//! next poll; from [`MAX_BUFFERED`] bytes on, the buffer is written at once
//! (with the socket's backpressure); shutdown writes what is buffered first (a
//! connection closed by h2 always shuts down; only one aborted by the server
//! after the shutdown grace loses its last bytes, as it loses its calls).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Buffered bytes beyond which writes are not held back (a large answer, or
/// many answers at once, already makes a full write).
pub const MAX_BUFFERED: usize = 64 * 1024;

/// The buffer capacity a connection keeps once drained.
const KEPT_CAPACITY: usize = 16 * 1024;

/// A connection whose writes are coalesced (see the module docs).
#[derive(Debug)]
pub struct Coalesce<T> {
    inner: T,
    /// Accepted bytes not yet written: `buf[start..]`.
    buf: Vec<u8>,
    start: usize,
    /// A flush was answered without writing; the next flush writes.
    deferred: bool,
}

impl<T> Coalesce<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> Self {
        Coalesce {
            inner,
            buf: Vec::new(),
            start: 0,
            deferred: false,
        }
    }

    /// The wrapped connection.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The wrapped connection, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    fn pending(&self) -> usize {
        self.buf.len() - self.start
    }
}

impl<T: AsyncWrite + Unpin> Coalesce<T> {
    /// Writes every buffered byte (or returns `Pending` with the socket full).
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.start < self.buf.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.start..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.start += n;
        }
        self.buf.clear();
        self.start = 0;
        if self.buf.capacity() > KEPT_CAPACITY {
            // A burst grew the buffer: an idle connection keeps a small one.
            self.buf = Vec::new();
        }
        Poll::Ready(Ok(()))
    }

    /// Room for more bytes: writes the buffer out first when it is full.
    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.pending() >= MAX_BUFFERED {
            ready!(self.poll_drain(cx))?;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Coalesce<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Coalesce<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_room(cx))?;
        this.buf.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_room(cx))?;
        let mut n = 0;
        for b in bufs {
            this.buf.extend_from_slice(b);
            n += b.len();
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pending() == 0 {
            this.deferred = false;
            return Pin::new(&mut this.inner).poll_flush(cx);
        }
        if !this.deferred && this.pending() < MAX_BUFFERED {
            // Let the calls already queued on this worker add their answers:
            // waking ourselves puts this task behind them.
            this.deferred = true;
            cx.waker().wake_by_ref();
            return Poll::Ready(Ok(()));
        }
        ready!(this.poll_drain(cx))?;
        this.deferred = false;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        this.deferred = false;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

impl<T: tonic::transport::server::Connected> tonic::transport::server::Connected for Coalesce<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}
