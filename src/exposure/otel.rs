//! OTLP/gRPC export of exposures, configured by the standard `OTEL_*`
//! environment variables.
//!
//! The semantic conventions define `feature_flag.evaluation` as an event, so
//! each exposure becomes an OTLP log record with that event name and every
//! attribute. When the request carried a W3C trace context, the record carries
//! the caller's trace and span id (see `trace_context`).
//!
//! Spans are opt-in ([`Signals::Spans`], `cohortd serve --exposure-spans`, or
//! implied when only `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is configured): then
//! every request also gets a server span, every exposure a short span named
//! `feature_flag.evaluation` (child of the server span) carrying one span event
//! of the same name, and the log record points at that span. They are opt-in
//! because they are most of export's cost: measured with `bench_exposure`
//! (docs/benchmarks.md) when every call is a new exposure, export with spans
//! doubled the server's CPU per call; log records alone, built without the
//! SDK logger, add about 10-15%.
//!
//! Export is off unless an endpoint is configured (`OTEL_EXPORTER_OTLP_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`),
//! and `OTEL_SDK_DISABLED=true` turns it off. Log records do not go through
//! the SDK's logger: cohortd builds the OTLP request itself
//! ([`super::otlp_logs`], most of export's CPU was the SDK's per-record data
//! model) and reads the logs exporter's `OTEL_*` settings as the SDK did
//! ([`super::otlp_env`]). The resource still comes from the SDK's detectors
//! (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`), with `service.name`
//! defaulting to `cohortd` instead of `unknown_service`. Spans keep the SDK:
//! `OTEL_TRACES_SAMPLER`/`_ARG` (default `parentbased_always_on`),
//! `OTEL_EXPORTER_OTLP_*_TIMEOUT`/`_HEADERS`/`_COMPRESSION` and `OTEL_BSP_*`,
//! with a larger default span queue (16384 items, batches of 2048, 1 s delay).
//!
//! The span batch processor runs on its own thread with a bounded queue, and
//! log batches are sent by their own task, so building a span or log record
//! here never waits on the network; what fails to export is counted.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    Span as _, SpanContext, SpanKind, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::KeyValue;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, SpanData, SpanExporter};
use opentelemetry_sdk::Resource;

use super::otlp_env::{ConfigError, LogsConfig};
use super::otlp_logs::{LogBatch, LogsSender};

/// The instrumentation scope name and the default `service.name`.
pub const SCOPE: &str = "cohortd";
/// The semantic-convention event (and span) name of an exposure.
pub const EVENT_NAME: &str = "feature_flag.evaluation";

/// Which OpenTelemetry signals carry exposures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Signals {
    /// One log record per exposure (the semconv event), in the caller's trace
    /// when the request carried one. No tracer, no spans.
    #[default]
    Logs,
    /// Log records, plus a server span per request and a span (with a span
    /// event) per exposure.
    Spans,
}

impl Signals {
    /// What the environment implies on its own: [`Signals::Spans`] when only a
    /// traces endpoint is configured (the operator asked for traces and nothing
    /// else), otherwise [`Signals::Logs`]. `cohortd serve --exposure-spans`
    /// turns spans on in any case.
    pub fn from_env() -> Signals {
        let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.trim().is_empty());
        let only_traces = set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            && !set("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
            && !set("OTEL_EXPORTER_OTLP_ENDPOINT");
        if only_traces {
            Signals::Spans
        } else {
            Signals::Logs
        }
    }
}

/// Why the exporter could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OtelError {
    /// The OTLP exporter rejected its configuration (endpoint, headers, ...).
    #[error("OTLP exporter configuration: {0}")]
    Build(#[from] opentelemetry_otlp::ExporterBuildError),
    /// The logs exporter's settings are unusable.
    #[error("OTLP logs exporter configuration: {0}")]
    Logs(#[from] ConfigError),
}

pub use super::queue::ExportFailures;

/// Span batch sizes for exposure volumes: the SDK defaults (a 2048-item queue)
/// drop under a few thousand exposures per second. Each applies only when its
/// `OTEL_BSP_*` variable is unset, so the environment still wins (the log
/// side's equivalents are in [`super::otlp_env`]).
const QUEUE: usize = 16_384;
const BATCH: usize = 2_048;

fn unset(var: &str) -> bool {
    std::env::var_os(var).is_none()
}

fn span_batch_config() -> opentelemetry_sdk::trace::BatchConfig {
    let mut b = opentelemetry_sdk::trace::BatchConfigBuilder::default();
    if unset("OTEL_BSP_MAX_QUEUE_SIZE") {
        b = b.with_max_queue_size(QUEUE);
    }
    if unset("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") {
        b = b.with_max_export_batch_size(BATCH);
    }
    if unset("OTEL_BSP_SCHEDULE_DELAY") {
        b = b.with_scheduled_delay(Duration::from_secs(1));
    }
    b.build()
}

/// The OTLP endpoint configured in the environment, if any (export is off
/// without one). `OTEL_SDK_DISABLED=true` wins over any endpoint.
pub fn endpoint_from_env() -> Option<String> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    if get("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return None;
    }
    get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .or_else(|| get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"))
        .or_else(|| get("OTEL_EXPORTER_OTLP_ENDPOINT"))
}

/// The resource: the SDK's environment detectors, with `service.name`
/// defaulting to `cohortd`.
fn resource() -> Resource {
    let detected = Resource::builder().build();
    let unknown = detected
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_none_or(|v| v.as_str().starts_with("unknown_service"));
    if unknown {
        Resource::builder().with_service_name(SCOPE).build()
    } else {
        detected
    }
}

/// OTLP/gRPC export: the logs exporter's settings, resource and channel, and
/// the SDK's span pipeline when spans are on.
#[derive(Debug)]
pub struct OtelExport {
    /// `None` unless spans are on ([`Signals::Spans`]).
    tracer_provider: Option<SdkTracerProvider>,
    tracer: Option<SdkTracer>,
    logs: LogsConfig,
    resource: Resource,
    /// Connects on first use; cloned by each sender.
    channel: tonic::transport::Channel,
    failures: Arc<ExportFailures>,
}

impl OtelExport {
    /// Export as the environment says: `Ok(None)` when no endpoint is configured.
    /// Must be called inside a Tokio runtime (the gRPC channel lives on it).
    pub fn from_env(signals: Signals) -> Result<Option<OtelExport>, OtelError> {
        if endpoint_from_env().is_none() {
            return Ok(None);
        }
        OtelExport::build(None, None, signals).map(Some)
    }

    /// Export log records only to `endpoint` (e.g. `http://127.0.0.1:4317`),
    /// overriding the environment's endpoint; `timeout` bounds each export call.
    /// Other settings still come from the environment.
    pub fn to_endpoint(endpoint: &str, timeout: Option<Duration>) -> Result<OtelExport, OtelError> {
        OtelExport::build(Some(endpoint.to_owned()), timeout, Signals::Logs)
    }

    /// As [`OtelExport::to_endpoint`], choosing the signals.
    pub fn to_endpoint_with(
        endpoint: &str,
        timeout: Option<Duration>,
        signals: Signals,
    ) -> Result<OtelExport, OtelError> {
        OtelExport::build(Some(endpoint.to_owned()), timeout, signals)
    }

    fn build(
        endpoint: Option<String>,
        timeout: Option<Duration>,
        signals: Signals,
    ) -> Result<OtelExport, OtelError> {
        let failures = Arc::new(ExportFailures::default());
        let logs = LogsConfig::from_env(endpoint.as_deref(), timeout)?;
        let channel = tonic::transport::Endpoint::from_shared(logs.endpoint.clone())
            .and_then(|e| e.user_agent(concat!("cohortd/", env!("CARGO_PKG_VERSION"))))
            .map_err(|e| ConfigError {
                var: "endpoint",
                reason: format!("invalid endpoint `{}`: {e}", logs.endpoint),
            })?
            .timeout(logs.timeout)
            .connect_lazy();
        let resource = resource();
        let tracer_provider = match signals {
            Signals::Logs => None,
            Signals::Spans => Some(tracer_provider(
                endpoint.as_deref(),
                timeout,
                &failures,
                &resource,
            )?),
        };
        let tracer = tracer_provider.as_ref().map(|p| p.tracer(SCOPE));
        Ok(OtelExport {
            tracer_provider,
            tracer,
            logs,
            resource,
            channel,
            failures,
        })
    }

    /// The tracer, for the request server spans (see `trace_context`); `None`
    /// unless spans are on.
    pub fn tracer(&self) -> Option<&SdkTracer> {
        self.tracer.as_ref()
    }

    /// Which signals carry exposures.
    pub fn signals(&self) -> Signals {
        if self.tracer.is_some() {
            Signals::Spans
        } else {
            Signals::Logs
        }
    }

    /// What the exporters failed to deliver so far.
    pub fn failures(&self) -> &Arc<ExportFailures> {
        &self.failures
    }

    /// The logs exporter's settings (batch size, delay, queue, timeout).
    pub fn logs_config(&self) -> &LogsConfig {
        &self.logs
    }

    /// An empty, reusable export request for this resource and scope.
    pub fn log_batch(&self) -> LogBatch {
        LogBatch::new(&self.resource, SCOPE)
    }

    /// A sender of encoded log batches to the collector, counting into
    /// [`OtelExport::failures`].
    pub fn logs_sender(&self) -> LogsSender {
        LogsSender::new(
            self.channel.clone(),
            self.logs.headers.clone(),
            self.logs.timeout,
            self.failures.clone(),
        )
    }

    /// Flushes and shuts the span pipeline down (when spans are on), bounded
    /// by `timeout`; log batches are flushed by the export task. Blocking:
    /// call it from a blocking thread.
    pub fn shutdown_blocking(&self, timeout: Duration) {
        if let Some(t) = &self.tracer_provider {
            if let Err(e) = t.shutdown_with_timeout(timeout) {
                tracing::warn!(error = %e, "exposure span export did not flush cleanly");
            }
        }
    }
}

/// The span pipeline (only when spans are on).
fn tracer_provider(
    endpoint: Option<&str>,
    timeout: Option<Duration>,
    failures: &Arc<ExportFailures>,
    resource: &Resource,
) -> Result<SdkTracerProvider, OtelError> {
    let mut spans = opentelemetry_otlp::SpanExporter::builder().with_tonic();
    if let Some(e) = endpoint {
        spans = spans.with_endpoint(e.to_owned());
    }
    if let Some(t) = timeout {
        spans = spans.with_timeout(t);
    }
    let processor = opentelemetry_sdk::trace::BatchSpanProcessor::builder(CountedSpans {
        inner: spans.build()?,
        failures: failures.clone(),
    })
    .with_batch_config(span_batch_config())
    .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource.clone())
        .build())
}

/// The exposure's span (with one span event carrying `attributes`), child of
/// the request's span `parent`; its context, for the log record to point at.
pub(super) fn exposure_span(
    tracer: &SdkTracer,
    attributes: Vec<KeyValue>,
    time: SystemTime,
    parent: Option<&SpanContext>,
) -> SpanContext {
    let parent = match parent {
        Some(sc) if sc.is_valid() => {
            opentelemetry::Context::new().with_remote_span_context(sc.clone())
        }
        _ => opentelemetry::Context::new(),
    };
    let span_attrs: Vec<KeyValue> = attributes
        .iter()
        .filter(|kv| {
            matches!(
                kv.key.as_str(),
                "feature_flag.key" | "feature_flag.result.variant" | "cohortd.exposure.id"
            )
        })
        .cloned()
        .collect();
    let mut span = tracer
        .span_builder(EVENT_NAME)
        .with_kind(SpanKind::Internal)
        .with_start_time(time)
        .with_attributes(span_attrs)
        .start_with_context(tracer, &parent);
    span.add_event_with_timestamp(EVENT_NAME, time, attributes);
    let sc = span.span_context().clone();
    span.end_with_timestamp(time);
    sc
}

/// A span exporter that counts the spans of failed export calls.
#[derive(Debug)]
struct CountedSpans<E> {
    inner: E,
    failures: Arc<ExportFailures>,
}

impl<E: SpanExporter> SpanExporter for CountedSpans<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len() as u64;
        let r = self.inner.export(batch).await;
        match r {
            Ok(()) => self.failures.spans_ok.fetch_add(n, Ordering::Relaxed),
            Err(_) => self.failures.spans.fetch_add(n, Ordering::Relaxed),
        };
        r
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }
    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
