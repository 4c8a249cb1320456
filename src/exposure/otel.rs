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
//! doubled the server's CPU per call; log records alone add about 30%.
//!
//! Export is off unless an endpoint is configured (`OTEL_EXPORTER_OTLP_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`),
//! and `OTEL_SDK_DISABLED=true` turns it off. The OpenTelemetry SDK itself reads
//! the rest: `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` (resource),
//! `OTEL_TRACES_SAMPLER`/`_ARG` (sampler, default `parentbased_always_on`),
//! `OTEL_EXPORTER_OTLP_*_TIMEOUT`/`_HEADERS`/`_COMPRESSION` (exporter) and
//! `OTEL_BSP_*`/`OTEL_BLRP_*` (batch processors). `service.name` defaults to
//! `cohortd` instead of the SDK's `unknown_service`, and the batch queues
//! default larger than the SDK's (16384 items, batches of 2048, 1 s delay).
//!
//! The SDK batch processors run on their own threads with bounded queues, so
//! building a span or log record here never waits on the network; what they
//! fail to export is counted by the wrappers below.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanKind, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{KeyValue, Value};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogExporter, SdkLogger, SdkLoggerProvider};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, SpanData, SpanExporter};
use opentelemetry_sdk::Resource;

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
}

/// Counts of items the SDK exporters delivered, and failed to deliver
/// (collector down, slow or refusing), by signal.
#[derive(Debug, Default)]
pub struct ExportFailures {
    /// Spans in failed export calls.
    pub spans: AtomicU64,
    /// Log records in failed export calls.
    pub logs: AtomicU64,
    /// Spans the collector accepted.
    pub spans_ok: AtomicU64,
    /// Log records the collector accepted.
    pub logs_ok: AtomicU64,
}

/// Batch sizes for exposure volumes: the SDK defaults (a 2048-item queue) drop
/// under a few thousand exposures per second. Each applies only when its
/// `OTEL_BSP_*` / `OTEL_BLRP_*` variable is unset, so the environment still wins.
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

fn log_batch_config() -> opentelemetry_sdk::logs::BatchConfig {
    let mut b = opentelemetry_sdk::logs::BatchConfigBuilder::default();
    if unset("OTEL_BLRP_MAX_QUEUE_SIZE") {
        b = b.with_max_queue_size(QUEUE);
    }
    if unset("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE") {
        b = b.with_max_export_batch_size(BATCH);
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

/// An exposure ready to export: final attributes (unit id already hashed or
/// omitted; string values reference-counted, so the span event and the log
/// record share them), its time and the span context of the request that
/// caused it.
#[derive(Debug, Clone)]
pub struct ExposureEvent {
    /// Attributes in a stable order.
    pub attributes: Vec<KeyValue>,
    /// When the exposure was recorded.
    pub time: SystemTime,
    /// The request's span, to parent the exposure span on.
    pub parent: Option<SpanContext>,
}

/// A string attribute whose clones share one allocation.
pub fn shared(key: &'static str, value: &str) -> KeyValue {
    KeyValue::new(key, Value::String(Arc::<str>::from(value).into()))
}

/// The span and log pipelines of the OpenTelemetry SDK, exporting over OTLP/gRPC.
#[derive(Debug)]
pub struct OtelExport {
    /// `None` unless spans are on ([`Signals::Spans`]).
    tracer_provider: Option<SdkTracerProvider>,
    logger_provider: SdkLoggerProvider,
    tracer: Option<SdkTracer>,
    logger: SdkLogger,
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
        let mut logs = opentelemetry_otlp::LogExporter::builder().with_tonic();
        if let Some(e) = &endpoint {
            logs = logs.with_endpoint(e.clone());
        }
        if let Some(t) = timeout {
            logs = logs.with_timeout(t);
        }
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
        let log_processor = opentelemetry_sdk::logs::BatchLogProcessor::builder(CountedLogs {
            inner: logs.build()?,
            failures: failures.clone(),
        })
        .with_batch_config(log_batch_config())
        .build();
        let logger_provider = SdkLoggerProvider::builder()
            .with_log_processor(log_processor)
            .with_resource(resource)
            .build();
        let tracer = tracer_provider.as_ref().map(|p| p.tracer(SCOPE));
        let logger = logger_provider.logger(SCOPE);
        Ok(OtelExport {
            tracer_provider,
            logger_provider,
            tracer,
            logger,
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

    /// Hands one exposure to the SDK as a log record, and as a span (with an
    /// event) when spans are on. Never waits on the network: the batch
    /// processors queue (or drop) it.
    pub fn emit(&self, ev: ExposureEvent) {
        let sc = match &self.tracer {
            Some(tracer) => Some(exposure_span(tracer, &ev)),
            None => ev.parent.filter(SpanContext::is_valid),
        };
        let attrs = ev.attributes;
        let mut rec = self.logger.create_log_record();
        rec.set_event_name(EVENT_NAME);
        rec.set_timestamp(ev.time);
        rec.set_observed_timestamp(SystemTime::now());
        rec.set_severity_number(Severity::Info);
        rec.set_severity_text("INFO");
        rec.add_attributes(attrs.into_iter().filter_map(|kv| {
            let v = match kv.value {
                Value::String(s) => AnyValue::String(s),
                Value::Bool(b) => AnyValue::Boolean(b),
                Value::I64(i) => AnyValue::Int(i),
                Value::F64(f) => AnyValue::Double(f),
                _ => return None,
            };
            Some((kv.key, v))
        }));
        if let Some(sc) = sc.filter(SpanContext::is_valid) {
            rec.set_trace_context(sc.trace_id(), sc.span_id(), Some(sc.trace_flags()));
        }
        self.logger.emit(rec);
    }
    /// Hands one outcome to the SDK as a log record (event name
    /// `cohortd.outcome`), in the request's trace when there was one. Never
    /// waits on the network.
    pub fn emit_outcome(&self, r: super::outcome::OutcomeRecord) {
        let mut rec = self.logger.create_log_record();
        rec.set_event_name(super::outcome::OUTCOME_EVENT);
        rec.set_timestamp(r.time);
        rec.set_observed_timestamp(SystemTime::now());
        rec.set_severity_number(Severity::Info);
        rec.set_severity_text("INFO");
        rec.add_attributes(r.attributes);
        if let Some(sc) = r.parent.filter(SpanContext::is_valid) {
            rec.set_trace_context(sc.trace_id(), sc.span_id(), Some(sc.trace_flags()));
        }
        self.logger.emit(rec);
    }

    /// Flushes and shuts both pipelines down, each bounded by `timeout`.
    /// Blocking: call it from a blocking thread.
    pub fn shutdown_blocking(&self, timeout: Duration) {
        let t = &self.tracer_provider;
        let l = &self.logger_provider;
        std::thread::scope(|s| {
            let spans = s.spawn(|| {
                t.as_ref()
                    .map_or(Ok(()), |t| t.shutdown_with_timeout(timeout))
            });
            let logs = s.spawn(|| l.shutdown_with_timeout(timeout));
            if let Ok(Err(e)) = spans.join() {
                tracing::warn!(error = %e, "exposure span export did not flush cleanly");
            }
            if let Ok(Err(e)) = logs.join() {
                tracing::warn!(error = %e, "exposure log export did not flush cleanly");
            }
        });
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

/// The exposure's span (with one span event carrying every attribute), child
/// of the request's span; its context, for the log record to point at.
fn exposure_span(tracer: &SdkTracer, ev: &ExposureEvent) -> SpanContext {
    let parent = match &ev.parent {
        Some(sc) if sc.is_valid() => {
            opentelemetry::Context::new().with_remote_span_context(sc.clone())
        }
        _ => opentelemetry::Context::new(),
    };
    let span_attrs: Vec<KeyValue> = ev
        .attributes
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
        .with_start_time(ev.time)
        .with_attributes(span_attrs)
        .start_with_context(tracer, &parent);
    span.add_event_with_timestamp(EVENT_NAME, ev.time, ev.attributes.clone());
    let sc = span.span_context().clone();
    span.end_with_timestamp(ev.time);
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

/// A log exporter that counts the records of failed export calls.
#[derive(Debug)]
struct CountedLogs<E> {
    inner: E,
    failures: Arc<ExportFailures>,
}

impl<E: LogExporter> LogExporter for CountedLogs<E> {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let n = batch.iter().count() as u64;
        let r = self.inner.export(batch).await;
        match r {
            Ok(()) => self.failures.logs_ok.fetch_add(n, Ordering::Relaxed),
            Err(_) => self.failures.logs.fetch_add(n, Ordering::Relaxed),
        };
        r
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
