//! A limit on long-lived streams: `cohortd.v1` Watch and flagd's EventStream.
//!
//! Each open stream holds a task, a channel and a reload subscription (about
//! 13 KB); 20,000 of them were all accepted before this limit. The streams of
//! every service and connection share `--max-streams` slots; a stream opened
//! while all are taken gets `RESOURCE_EXHAUSTED` (which providers retry with
//! backoff) before any handler runs. A slot is freed when the response body (the
//! stream) is dropped, that is when the stream ends for any reason. Open streams
//! are the `cohortd_open_streams` gauge.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::Semaphore;
use tower::{Layer, Service};

use super::slot::Slot;

/// Whether a gRPC path is one of the long-lived streams.
fn is_stream(path: &str) -> bool {
    path.ends_with("/Watch") || path.ends_with("/EventStream")
}

/// The layer; clones share the slots.
#[derive(Debug, Clone)]
pub struct StreamLimitLayer {
    slots: Arc<Semaphore>,
    max: usize,
    open: Gauge,
}

impl StreamLimitLayer {
    /// `max` slots shared by every stream; `open` is the gauge.
    pub fn new(max: usize, open: Gauge) -> Self {
        StreamLimitLayer {
            slots: Arc::new(Semaphore::new(max)),
            max,
            open,
        }
    }
}

impl<S> Layer<S> for StreamLimitLayer {
    type Service = StreamLimit<S>;

    fn layer(&self, inner: S) -> StreamLimit<S> {
        StreamLimit {
            inner,
            limit: self.clone(),
        }
    }
}

/// See [`StreamLimitLayer`].
#[derive(Debug, Clone)]
pub struct StreamLimit<S> {
    inner: S,
    limit: StreamLimitLayer,
}

impl<S, ReqB, ResB> Service<http::Request<ReqB>> for StreamLimit<S>
where
    S: Service<http::Request<ReqB>, Response = http::Response<ResB>>,
    ResB: Default,
{
    type Response = http::Response<SlotBody<ResB>>;
    type Error = S::Error;
    type Future = SlotFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqB>) -> Self::Future {
        if !is_stream(req.uri().path()) {
            return SlotFuture::Call {
                inner: self.inner.call(req),
                slot: None,
            };
        }
        match Slot::try_take(&self.limit.slots, &self.limit.open) {
            Some(slot) => SlotFuture::Call {
                inner: self.inner.call(req),
                slot: Some(slot),
            },
            None => SlotFuture::Refused {
                status: Some(tonic::Status::resource_exhausted(format!(
                    "all {} stream slots are in use (--max-streams); retry later",
                    self.limit.max
                ))),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future: the inner call (holding the stream's slot, handed to
    /// the body), or an immediate refusal.
    #[project = SlotProj]
    #[allow(missing_docs)]
    pub enum SlotFuture<F> {
        /// Admitted (or not a stream).
        Call { #[pin] inner: F, slot: Option<Slot> },
        /// Over the limit.
        Refused { status: Option<tonic::Status> },
    }
}

impl<F, B, E> Future for SlotFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    B: Default,
{
    type Output = Result<http::Response<SlotBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            SlotProj::Call { inner, slot } => {
                let r = ready!(inner.poll(cx))?;
                let slot = slot.take();
                Poll::Ready(Ok(r.map(|inner| SlotBody { inner, _slot: slot })))
            }
            SlotProj::Refused { status } => {
                let s = status
                    .take()
                    .unwrap_or_else(|| tonic::Status::internal("polled twice"));
                Poll::Ready(Ok(s
                    .into_http::<B>()
                    .map(|inner| SlotBody { inner, _slot: None })))
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body that holds its stream's slot until it is dropped.
    pub struct SlotBody<B> {
        #[pin]
        inner: B,
        _slot: Option<Slot>,
    }
}

impl<B: http_body::Body> http_body::Body for SlotBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
