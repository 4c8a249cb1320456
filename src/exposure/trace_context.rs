//! W3C trace context for gRPC requests: a tower layer that makes the caller's
//! `traceparent` (gRPC metadata is HTTP/2 headers) the current OpenTelemetry
//! context while the handler runs, so exposures recorded by the handler join
//! the caller's trace. With exposure spans on it also gives each request a
//! server span continuing that trace, which the exposure spans are children of.
//!
//! Add it at the server composition point in one line:
//! `Server::builder().layer(pipeline.trace_layer())`. With export off the layer
//! passes requests straight through; with log records only it costs one header
//! lookup for a request without `traceparent`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracer;
use tonic::codegen::http::{HeaderMap, Request, Response};
use tonic::codegen::Service;

/// Reads propagation fields from HTTP/2 headers (gRPC metadata).
pub struct HeaderExtractor<'a>(pub &'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The caller's trace context from request headers (an empty context when there
/// is no valid `traceparent`).
pub fn extract(headers: &HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// What the layer does per request.
#[derive(Debug, Clone, Default)]
enum Mode {
    /// Nothing (export off).
    #[default]
    Off,
    /// Makes a valid caller `traceparent` the current context (log records only).
    Propagate,
    /// Also starts a server span from this tracer (exposure spans on).
    Spans(SdkTracer),
}

/// The layer: wraps a service in [`TraceContextService`].
#[derive(Debug, Clone, Default)]
pub struct TraceContextLayer {
    mode: Mode,
}

impl TraceContextLayer {
    /// Server spans from `tracer`; `None` makes the layer a pass-through.
    pub fn new(tracer: Option<SdkTracer>) -> TraceContextLayer {
        let mode = tracer.map_or(Mode::Off, Mode::Spans);
        TraceContextLayer { mode }
    }

    /// No server spans: only the caller's trace context, when the request
    /// carries a valid one, becomes current while the handler runs.
    pub fn propagate() -> TraceContextLayer {
        TraceContextLayer {
            mode: Mode::Propagate,
        }
    }
}

impl<S> tower::Layer<S> for TraceContextLayer {
    type Service = TraceContextService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        TraceContextService {
            inner,
            mode: self.mode.clone(),
        }
    }
}

/// A service that runs each request inside a server span continuing the
/// caller's trace.
#[derive(Debug, Clone)]
pub struct TraceContextService<S> {
    inner: S,
    mode: Mode,
}

/// `/pkg.Service/Method` -> (`pkg.Service`, `Method`).
fn rpc_parts(path: &str) -> (&str, &str) {
    let p = path.trim_start_matches('/');
    p.split_once('/').unwrap_or((p, ""))
}

impl<S, B, RB> Service<Request<B>> for TraceContextService<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let tracer = match &self.mode {
            Mode::Off => return self.pass(req),
            Mode::Propagate => {
                if !req.headers().contains_key("traceparent") {
                    return self.pass(req);
                }
                let cx = extract(req.headers());
                if !cx.span().span_context().is_valid() {
                    return self.pass(req);
                }
                return self.within(cx, false, req);
            }
            Mode::Spans(tracer) => tracer,
        };
        let parent = extract(req.headers());
        let (service, method) = rpc_parts(req.uri().path());
        let span = tracer
            .span_builder(format!("{service}/{method}"))
            .with_kind(SpanKind::Server)
            .with_attributes([
                KeyValue::new("rpc.system", "grpc"),
                KeyValue::new("rpc.service", service.to_owned()),
                KeyValue::new("rpc.method", method.to_owned()),
            ])
            .start_with_context(tracer, &parent);
        self.within(parent.with_span(span), true, req)
    }
}

impl<S> TraceContextService<S> {
    fn pass<B, RB>(&mut self, req: Request<B>) -> ResponseFuture<S::Future>
    where
        S: Service<Request<B>, Response = Response<RB>>,
    {
        ResponseFuture {
            inner: self.inner.call(req),
            cx: None,
            server_span: false,
        }
    }

    /// Calls the handler inside `cx`; `server_span`: `cx`'s span is ours to end.
    fn within<B, RB>(
        &mut self,
        cx: Context,
        server_span: bool,
        req: Request<B>,
    ) -> ResponseFuture<S::Future>
    where
        S: Service<Request<B>, Response = Response<RB>>,
    {
        let inner = {
            let _guard = cx.clone().attach();
            self.inner.call(req)
        };
        ResponseFuture {
            inner,
            cx: Some(cx),
            server_span,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future: polls the inner one inside the request's context and
    /// ends the server span when it completes.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        cx: Option<Context>,
        server_span: bool,
    }
}

impl<F, RB, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(cx) = this.cx.as_ref() else {
            return this.inner.poll(task);
        };
        let out = {
            let _guard = cx.clone().attach();
            this.inner.poll(task)
        };
        if !*this.server_span {
            if out.is_ready() {
                *this.cx = None;
            }
            return out;
        }
        if let Poll::Ready(res) = &out {
            let span = cx.span();
            match res {
                Ok(resp) => {
                    // A trailers-only (error) response carries grpc-status in headers.
                    let code = resp
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<i64>().ok())
                        .unwrap_or(0);
                    span.set_attribute(KeyValue::new("rpc.grpc.status_code", code));
                    if code != 0 {
                        span.set_status(Status::error(format!("grpc-status {code}")));
                    }
                }
                Err(_) => span.set_status(Status::error("transport error")),
            }
            span.end();
            *this.cx = None;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_a_valid_traceparent() {
        let mut h = HeaderMap::new();
        h.insert(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
                .parse()
                .unwrap(),
        );
        let cx = extract(&h);
        let sc = cx.span().span_context().clone();
        assert!(sc.is_valid() && sc.is_remote() && sc.is_sampled());
        assert_eq!(
            sc.trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(sc.span_id().to_string(), "b7ad6b7169203331");
    }

    #[test]
    fn garbage_traceparent_gives_an_empty_context() {
        let mut h = HeaderMap::new();
        h.insert("traceparent", "zz-nonsense".parse().unwrap());
        assert!(!extract(&h).span().span_context().is_valid());
        assert!(!extract(&HeaderMap::new()).span().span_context().is_valid());
    }

    #[test]
    fn rpc_path_parts() {
        assert_eq!(
            rpc_parts("/cohortd.v1.Assignment/Assign"),
            ("cohortd.v1.Assignment", "Assign")
        );
        assert_eq!(rpc_parts("/odd"), ("odd", ""));
    }
}
