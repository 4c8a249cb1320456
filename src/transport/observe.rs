//! A tower layer that counts every gRPC call by method and final status code and
//! times it, for `/metrics`.
//!
//! gRPC puts the status in the trailers (or, for an immediate error, in the
//! response headers), so the layer reads it there instead of relying on each
//! handler: calls rejected by tonic itself (message too large, unknown method)
//! are counted too. Methods are resolved to their [`RpcStats`] at startup; a path
//! that names no served method is counted under `unknown`, so clients cannot grow
//! the label set.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use http_body::{Body, Frame, SizeHint};
use tower::{Layer, Service};

use crate::metrics::{Metrics, RpcStats};

/// Maps request paths (`/pkg.Service/Method`) to their stats.
#[derive(Debug, Clone)]
pub struct ObserveLayer {
    methods: Arc<HashMap<Box<str>, RpcStats, foldhash::fast::FixedState>>,
    unknown: RpcStats,
}

impl ObserveLayer {
    /// Resolves the stats of every `(service, method)` up front.
    pub fn new(metrics: &Metrics, methods: &[(String, String)]) -> Self {
        let mut map = HashMap::with_hasher(foldhash::fast::FixedState::default());
        for (service, method) in methods {
            map.insert(
                format!("/{service}/{method}").into_boxed_str(),
                metrics.rpc(service, method),
            );
        }
        ObserveLayer {
            methods: Arc::new(map),
            unknown: metrics.rpc("unknown", "unknown"),
        }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service produced by [`ObserveLayer`].
#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
    layer: ObserveLayer,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Observe<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Body + Send + 'static,
{
    type Response = http::Response<ObservedBody<ResBody>>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let stats = self
            .layer
            .methods
            .get(req.uri().path())
            .unwrap_or(&self.layer.unknown)
            .clone();
        let start = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await?;
            let mut pending = Pending {
                stats: Some(stats),
                start,
            };
            // Trailers-only response: the status is already in the headers.
            if let Some(code) = grpc_status(res.headers()) {
                pending.finish(code);
            }
            Ok(res.map(|inner| ObservedBody { inner, pending }))
        })
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<i32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// A call whose status is not yet known. Dropped unfinished (the client went
/// away or the body ended without a status) it counts as CANCELLED.
#[derive(Debug)]
struct Pending {
    stats: Option<RpcStats>,
    start: Instant,
}

impl Pending {
    fn finish(&mut self, code: i32) {
        if let Some(s) = self.stats.take() {
            s.record(code, self.start.elapsed().as_secs_f64());
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.finish(tonic::Code::Cancelled as i32);
    }
}

pin_project_lite::pin_project! {
    /// A response body that records the call when its trailers pass through.
    #[derive(Debug)]
    pub struct ObservedBody<B> {
        #[pin]
        inner: B,
        pending: Pending,
    }
}

impl<B: Body> Body for ObservedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let Some(code) = f.trailers_ref().and_then(grpc_status) {
                    this.pending.finish(code);
                }
            }
            Some(Err(_)) => this.pending.finish(tonic::Code::Internal as i32),
            None => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
