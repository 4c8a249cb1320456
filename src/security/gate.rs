//! A tower layer that either answers a request itself (a refusal) or passes it
//! on, parameterised by the [`Check`] it applies. The auth and ingest layers are
//! this gate with their own check, so the service plumbing exists once and
//! neither allocates per call.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// What a gate decides for each request, before the inner service sees it.
pub trait Check: Clone {
    /// `None` passes the request on; `Some` is the refusal to answer with.
    fn refuse<B, RB: Default>(&self, req: &http::Request<B>) -> Option<http::Response<RB>>;
}

/// A tower layer applying the check `C` to every request.
#[derive(Debug, Clone)]
pub struct GateLayer<C>(pub C);

impl<S, C: Clone> tower::Layer<S> for GateLayer<C> {
    type Service = Gate<S, C>;

    fn layer(&self, inner: S) -> Gate<S, C> {
        Gate {
            inner,
            check: self.0.clone(),
        }
    }
}

/// See [`GateLayer`].
#[derive(Debug, Clone)]
pub struct Gate<S, C> {
    inner: S,
    check: C,
}

impl<S, C, B, RB> tower::Service<http::Request<B>> for Gate<S, C>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    C: Check,
    RB: Default,
{
    type Response = http::Response<RB>;
    type Error = S::Error;
    type Future = GateFuture<S::Future, http::Response<RB>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        match self.check.refuse(&req) {
            Some(response) => GateFuture::Refused {
                response: Some(response),
            },
            None => GateFuture::Inner {
                fut: self.inner.call(req),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// Either a ready refusal (`None` once taken) or the inner service's future.
    #[allow(missing_docs)]
    #[project = GateProj]
    pub enum GateFuture<F, R> {
        /// Answered here.
        Refused {
            response: Option<R>,
        },
        /// Passed on.
        Inner {
            #[pin]
            fut: F,
        },
    }
}

impl<F, R, E> Future for GateFuture<F, R>
where
    F: Future<Output = Result<R, E>>,
{
    type Output = Result<R, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            GateProj::Refused { response } => match response.take() {
                Some(r) => Poll::Ready(Ok(r)),
                // Polled again after completion: never resolve twice.
                None => Poll::Pending,
            },
            GateProj::Inner { fut } => fut.poll(cx),
        }
    }
}
