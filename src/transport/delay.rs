//! A test hook: delays every gRPC call by a fixed time before handling it.
//!
//! It exists so the graceful-shutdown test can hold a call in flight while the
//! process receives SIGTERM. It is installed only when `serve --debug-delay` is
//! given; normal operation never has this layer in the stack.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tower::{Layer, Service};

/// Wraps services in [`Delay`].
#[derive(Debug, Clone, Copy)]
pub struct DelayLayer(Duration);

impl DelayLayer {
    /// Delays each call by `d`.
    pub fn new(d: Duration) -> Self {
        DelayLayer(d)
    }
}

impl<S> Layer<S> for DelayLayer {
    type Service = Delay<S>;

    fn layer(&self, inner: S) -> Delay<S> {
        Delay {
            inner,
            delay: self.0,
        }
    }
}

/// Sleeps, then calls the inner service.
#[derive(Debug, Clone)]
pub struct Delay<S> {
    inner: S,
    delay: Duration,
}

impl<S, Req> Service<Req> for Delay<S>
where
    S: Service<Req>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let fut = self.inner.call(req);
        let delay = self.delay;
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            fut.await
        })
    }
}
