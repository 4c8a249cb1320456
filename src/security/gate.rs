//! The future of a layer that either answers a request itself (a refusal) or
//! passes it on. Shared by the auth and ingest layers so neither allocates per
//! call.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

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
