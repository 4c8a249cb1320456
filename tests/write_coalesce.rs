//! The gRPC connection's write coalescing (`transport::coalesce`): answers
//! queued in one turn of the scheduler leave in one write, nothing is held past
//! the next poll, shutdown writes what is buffered, and the buffer is bounded.
//! Driven by hand against a recording connection, so every system call the
//! real socket would see is visible; the end-to-end behaviour (every answer
//! arrives, over TCP and the Unix socket) is covered by the server tests.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use cohortd::transport::coalesce::{Coalesce, MAX_BUFFERED};
use tokio::io::AsyncWrite;

/// A connection that records every write and flush, and can be full.
#[derive(Default)]
struct Recorder {
    writes: Vec<Vec<u8>>,
    flushes: usize,
    shutdown: bool,
    /// Refuse writes (`Pending`) while set.
    full: bool,
    /// Accept at most this many bytes per write.
    max_write: Option<usize>,
}

impl AsyncWrite for Recorder {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.full {
            return Poll::Pending;
        }
        let n = buf.len().min(self.max_write.unwrap_or(usize::MAX));
        self.get_mut().writes.push(buf[..n].to_vec());
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().flushes += 1;
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().shutdown = true;
        Poll::Ready(Ok(()))
    }
}

/// Counts wake-ups of the task polling the connection.
#[derive(Default)]
struct Wakes(AtomicUsize);

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

struct Harness {
    conn: Coalesce<Recorder>,
    wakes: Arc<Wakes>,
    waker: Waker,
}

impl Harness {
    fn new() -> Self {
        let wakes = Arc::new(Wakes::default());
        Harness {
            conn: Coalesce::new(Recorder::default()),
            waker: Waker::from(wakes.clone()),
            wakes,
        }
    }

    fn write(&mut self, data: &[u8]) -> Poll<io::Result<usize>> {
        let mut cx = Context::from_waker(&self.waker);
        Pin::new(&mut self.conn).poll_write(&mut cx, data)
    }

    fn write_vectored(&mut self, parts: &[&[u8]]) -> Poll<io::Result<usize>> {
        let slices: Vec<io::IoSlice<'_>> = parts.iter().map(|p| io::IoSlice::new(p)).collect();
        let mut cx = Context::from_waker(&self.waker);
        Pin::new(&mut self.conn).poll_write_vectored(&mut cx, &slices)
    }

    fn flush(&mut self) -> Poll<io::Result<()>> {
        let mut cx = Context::from_waker(&self.waker);
        Pin::new(&mut self.conn).poll_flush(&mut cx)
    }

    fn shutdown(&mut self) -> Poll<io::Result<()>> {
        let mut cx = Context::from_waker(&self.waker);
        Pin::new(&mut self.conn).poll_shutdown(&mut cx)
    }

    fn inner(&mut self) -> &mut Recorder {
        self.conn.get_mut()
    }

    fn wakes(&self) -> usize {
        self.wakes.0.load(Ordering::SeqCst)
    }
}

fn ready<T>(p: Poll<io::Result<T>>) -> T {
    match p {
        Poll::Ready(Ok(v)) => v,
        Poll::Ready(Err(e)) => panic!("error: {e}"),
        Poll::Pending => panic!("pending"),
    }
}

#[test]
fn answers_of_one_turn_leave_in_one_write_on_the_next_poll() {
    let mut h = Harness::new();
    // First poll of the connection task: one answer, then h2's flush.
    assert_eq!(ready(h.write(b"answer-1")), 8);
    ready(h.flush());
    assert!(
        h.inner().writes.is_empty(),
        "the first flush writes nothing"
    );
    assert_eq!(h.wakes(), 1, "the task woke itself to be polled again");
    // The other calls of the batch queue their answers; next poll flushes.
    assert_eq!(ready(h.write(b"answer-2")), 8);
    assert_eq!(ready(h.write_vectored(&[b"answer", b"-3"])), 8);
    ready(h.flush());
    assert_eq!(h.inner().writes, vec![b"answer-1answer-2answer-3".to_vec()]);
    assert_eq!(h.inner().flushes, 1);
    assert_eq!(h.wakes(), 1);
    // Drained: the next answer is deferred once again.
    ready(h.write(b"answer-4"));
    ready(h.flush());
    assert_eq!(h.inner().writes.len(), 1);
    assert_eq!(h.wakes(), 2);
    ready(h.flush());
    assert_eq!(h.inner().writes[1], b"answer-4".to_vec());
}

#[test]
fn a_flush_with_nothing_buffered_passes_through_without_waking() {
    let mut h = Harness::new();
    ready(h.flush());
    ready(h.flush());
    assert_eq!(h.inner().flushes, 2);
    assert!(h.inner().writes.is_empty());
    assert_eq!(h.wakes(), 0);
}

#[test]
fn shutdown_writes_what_is_buffered_first() {
    let mut h = Harness::new();
    ready(h.write(b"goaway"));
    ready(h.flush());
    assert!(h.inner().writes.is_empty());
    ready(h.shutdown());
    assert_eq!(h.inner().writes, vec![b"goaway".to_vec()]);
    assert!(h.inner().shutdown);
}

#[test]
fn a_full_buffer_is_written_at_once_and_bounded() {
    let mut h = Harness::new();
    let big = vec![7u8; MAX_BUFFERED];
    ready(h.write(&big));
    // At the bound, a flush writes without waiting for another poll.
    ready(h.flush());
    assert_eq!(h.wakes(), 0);
    assert_eq!(h.inner().writes.concat().len(), MAX_BUFFERED);
    // Over the bound, the next write drains the buffer before taking more.
    let mut h = Harness::new();
    ready(h.write(&big));
    ready(h.write(b"more"));
    assert_eq!(h.inner().writes.concat().len(), MAX_BUFFERED);
    // With the socket full, writes past the bound wait (backpressure).
    let mut h = Harness::new();
    h.inner().full = true;
    ready(h.write(&big));
    assert!(h.write(b"more").is_pending());
    h.inner().full = false;
    assert_eq!(ready(h.write(b"more")), 4);
    assert_eq!(h.inner().writes.concat().len(), MAX_BUFFERED);
    ready(h.flush());
    ready(h.flush());
    assert_eq!(h.inner().writes.concat().len(), MAX_BUFFERED + 4);
}

#[test]
fn a_full_socket_keeps_the_bytes_and_partial_writes_resume() {
    let mut h = Harness::new();
    ready(h.write(b"0123456789"));
    ready(h.flush());
    h.inner().full = true;
    assert!(h.flush().is_pending(), "the socket is full");
    assert!(h.inner().writes.is_empty());
    h.inner().full = false;
    h.inner().max_write = Some(4);
    ready(h.flush());
    assert_eq!(h.inner().writes.concat(), b"0123456789".to_vec());
    assert_eq!(h.inner().writes.len(), 3, "4 + 4 + 2 bytes");
    assert_eq!(h.inner().flushes, 1);
}
