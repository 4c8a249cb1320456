//! Exposure and outcome log records built straight into an OTLP
//! `ExportLogsServiceRequest` (opentelemetry-proto's generated types) and
//! sent over gRPC, without the OpenTelemetry SDK's logger.
//!
//! Why: with every call a new exposure, a perf profile put about 95% of what
//! export added on the SDK's per-record data model (46 allocations per
//! exposure: our attribute `Vec` of `Arc<str>`s, the SDK record, the batch
//! processor's boxed copy, the proto conversion that copies every string
//! again; docs/benchmarks.md, "Exposure export"). Here one request is kept
//! and refilled: [`LogBatch`] moves the records of a sent batch to a spare
//! list and the next batch refills them in place (keys and string values are
//! cleared and rewritten, keeping their capacity), so a steady stream of
//! exposures allocates almost nothing once warm.
//!
//! The request is encoded by prost (the generated `Message` impl) into a
//! reused buffer and the bytes are sent with tonic's generic gRPC client on the
//! OTLP logs path, because tonic's generated `LogsServiceClient` takes the
//! request by value and drops it after encoding, which would rule out reusing
//! its records. Everything on the wire is what the generated client would
//! send; the receiver decodes it with the generated server.
//!
//! What the SDK's log pipeline provided is kept: the `OTEL_*` settings
//! ([`super::otlp_env`]), the resource and the `cohortd` scope, batching by
//! size and delay, a bounded number of records waiting in built batches, its
//! retry policy (3 retries with exponential backoff from 100 ms to 1.6 s on
//! the OTLP-retryable gRPC codes, within the timeout) and counted successes
//! and failures.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::SpanContext;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use prost::bytes::{BufMut as _, Bytes, BytesMut};
use prost::Message as _;
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::transport::Channel;

use super::queue::ExportFailures;

/// The gRPC method of the OTLP logs service.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

/// Where a record's attributes are written: a reused OTLP record
/// ([`RecordAttrs`]) or, for the span event when spans are on, the SDK's
/// `KeyValue`s. One attribute list for both keeps them identical.
pub trait Attrs {
    /// A string attribute.
    fn str(&mut self, key: &'static str, value: &str);
    /// A boolean attribute.
    fn bool(&mut self, key: &'static str, value: bool);
    /// An integer attribute.
    fn int(&mut self, key: &'static str, value: i64);
}

impl Attrs for Vec<opentelemetry::KeyValue> {
    fn str(&mut self, key: &'static str, value: &str) {
        let v: Arc<str> = Arc::from(value);
        self.push(opentelemetry::KeyValue::new(
            key,
            opentelemetry::Value::String(v.into()),
        ));
    }
    fn bool(&mut self, key: &'static str, value: bool) {
        self.push(opentelemetry::KeyValue::new(key, value));
    }
    fn int(&mut self, key: &'static str, value: i64) {
        self.push(opentelemetry::KeyValue::new(key, value));
    }
}

/// Writes attributes over a reused record's list, slot by slot: a key or
/// string value already there is overwritten in place (no allocation when
/// its capacity suffices), extra old slots are dropped at [`RecordAttrs::finish`].
pub struct RecordAttrs<'a> {
    list: &'a mut Vec<KeyValue>,
    n: usize,
}

impl<'a> RecordAttrs<'a> {
    /// Starts rewriting `list` from its first slot.
    pub fn new(list: &'a mut Vec<KeyValue>) -> Self {
        RecordAttrs { list, n: 0 }
    }

    fn slot(&mut self, key: &str) -> &mut Option<AnyValue> {
        if self.n == self.list.len() {
            self.list.push(KeyValue::default());
        }
        let kv = &mut self.list[self.n];
        self.n += 1;
        if kv.key != key {
            kv.key.clear();
            kv.key.push_str(key);
        }
        &mut kv.value
    }

    /// Writes an already built value (outcomes' nested lists).
    pub fn any(&mut self, key: &str, value: AnyValue) {
        *self.slot(key) = Some(value);
    }

    /// Drops the slots this record did not use.
    pub fn finish(self) {
        self.list.truncate(self.n);
    }
}

impl Attrs for RecordAttrs<'_> {
    fn str(&mut self, key: &'static str, value: &str) {
        match self.slot(key) {
            Some(AnyValue {
                value: Some(Value::StringValue(s)),
            }) => {
                s.clear();
                s.push_str(value);
            }
            other => {
                *other = Some(AnyValue {
                    value: Some(Value::StringValue(value.to_owned())),
                })
            }
        }
    }
    fn bool(&mut self, key: &'static str, value: bool) {
        *self.slot(key) = Some(AnyValue {
            value: Some(Value::BoolValue(value)),
        });
    }
    fn int(&mut self, key: &'static str, value: i64) {
        *self.slot(key) = Some(AnyValue {
            value: Some(Value::IntValue(value)),
        });
    }
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn set(s: &mut String, v: &str) {
    if s != v {
        s.clear();
        s.push_str(v);
    }
}

/// Fills everything of a record but its attributes, as the SDK's log record
/// conversion did: event name, severity `INFO` (9), the event's time, the
/// time it was observed (now), and the trace context when there is a valid one.
pub fn set_header(r: &mut LogRecord, event_name: &str, time: SystemTime, sc: Option<&SpanContext>) {
    r.time_unix_nano = nanos(time);
    r.observed_time_unix_nano = nanos(SystemTime::now());
    r.severity_number = SeverityNumber::Info as i32;
    set(&mut r.severity_text, "INFO");
    set(&mut r.event_name, event_name);
    r.body = None;
    r.dropped_attributes_count = 0;
    r.trace_id.clear();
    r.span_id.clear();
    match sc.filter(|sc| sc.is_valid()) {
        Some(sc) => {
            r.flags = u32::from(sc.trace_flags().to_u8());
            r.trace_id.extend_from_slice(&sc.trace_id().to_bytes());
            r.span_id.extend_from_slice(&sc.span_id().to_bytes());
        }
        None => r.flags = 0,
    }
}

/// One reusable export request: the resource and the `cohortd` scope once,
/// and the records of the batch being built.
pub struct LogBatch {
    request: ExportLogsServiceRequest,
    /// Records of sent batches, refilled by the next ones (at most one
    /// batch's worth, so bounded by the batch size).
    spare: Vec<LogRecord>,
    buf: BytesMut,
    /// Encoded size of the last batch.
    last_len: usize,
}

impl LogBatch {
    /// An empty batch for `resource`, in the instrumentation scope `scope`
    /// (no version, as the SDK logger the records came from before).
    pub fn new(resource: &opentelemetry_sdk::Resource, scope: &str) -> LogBatch {
        let r = ResourceAttributesWithSchema::from(resource);
        let scope = opentelemetry::InstrumentationScope::builder(scope.to_owned()).build();
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: r.attributes.0,
                    dropped_attributes_count: 0,
                    entity_refs: vec![],
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some((&scope, None).into()),
                    log_records: Vec::new(),
                    schema_url: scope.schema_url().unwrap_or_default().to_owned(),
                }],
                schema_url: r.schema_url.unwrap_or_default(),
            }],
        };
        LogBatch {
            request,
            spare: Vec::new(),
            buf: BytesMut::new(),
            last_len: 0,
        }
    }

    fn records(&mut self) -> &mut Vec<LogRecord> {
        &mut self.request.resource_logs[0].scope_logs[0].log_records
    }

    /// Records in the batch.
    pub fn len(&self) -> usize {
        self.request.resource_logs[0].scope_logs[0]
            .log_records
            .len()
    }

    /// Whether the batch has no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A new record at the end of the batch: a spare one from an earlier batch
    /// (to overwrite completely) or a fresh one.
    pub fn push(&mut self) -> &mut LogRecord {
        let r = self.spare.pop().unwrap_or_else(|| LogRecord {
            // Room for an exposure's attributes (at most 15) from the start.
            attributes: Vec::with_capacity(16),
            ..LogRecord::default()
        });
        let records = self.records();
        records.push(r);
        let last = records.len() - 1;
        &mut records[last]
    }

    /// The request encoded, and the batch emptied (its records kept as spares).
    pub fn take_encoded(&mut self) -> Bytes {
        // Room for a batch like the last one, without walking the records for
        // their length once more (prost's `encode` already walks them once
        // at the top and again at every nesting level).
        self.buf.reserve(self.last_len);
        // Cannot fail: a `BytesMut` grows as needed.
        let _ = self.request.encode(&mut self.buf);
        self.last_len = self.buf.len();
        let bytes = self.buf.split().freeze();
        let request = &mut self.request.resource_logs[0].scope_logs[0].log_records;
        self.spare.append(request);
        bytes
    }
}

/// Sends pre-encoded `ExportLogsServiceRequest` bytes and decodes the
/// generated response type.
#[derive(Debug, Clone, Copy, Default)]
struct PreEncoded;

impl Codec for PreEncoded {
    type Encode = Bytes;
    type Decode = ExportLogsServiceResponse;
    type Encoder = PreEncoded;
    type Decoder = tonic_prost::ProstDecoder<ExportLogsServiceResponse>;
    fn encoder(&mut self) -> Self::Encoder {
        PreEncoded
    }
    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstDecoder::default()
    }
}

impl Encoder for PreEncoded {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

/// Sends encoded batches to the collector and counts what it accepted.
#[derive(Debug, Clone)]
pub struct LogsSender {
    grpc: tonic::client::Grpc<Channel>,
    headers: tonic::metadata::MetadataMap,
    timeout: Duration,
    failures: Arc<ExportFailures>,
}

/// The OTLP-retryable gRPC codes (the SDK's classification; `RESOURCE_EXHAUSTED`
/// with a server retry hint is not retried here).
fn retryable(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(
        code,
        Unavailable | Cancelled | DeadlineExceeded | Aborted | OutOfRange | DataLoss
    )
}

impl LogsSender {
    /// A sender over `channel` (already bounded by `timeout` per call).
    pub fn new(
        channel: Channel,
        headers: tonic::metadata::MetadataMap,
        timeout: Duration,
        failures: Arc<ExportFailures>,
    ) -> LogsSender {
        LogsSender {
            grpc: tonic::client::Grpc::new(channel),
            headers,
            timeout,
            failures,
        }
    }

    /// Exports one batch of `records` records, retrying as the SDK did, and
    /// counts them as exported or failed.
    pub async fn send(&mut self, body: Bytes, records: u64) {
        let start = tokio::time::Instant::now();
        let mut backoff = Duration::from_millis(100);
        let mut retries = 0;
        let ok = loop {
            match self.once(body.clone()).await {
                Ok(()) => break true,
                Err(s) if retryable(s.code()) && retries < 3 => {
                    if start.elapsed() + backoff >= self.timeout {
                        tracing::debug!(code = ?s.code(), "OTLP logs export failed; no time left to retry");
                        break false;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(1600));
                    retries += 1;
                }
                Err(s) => {
                    tracing::debug!(code = ?s.code(), "OTLP logs export failed");
                    break false;
                }
            }
        };
        let counter = if ok {
            &self.failures.logs_ok
        } else {
            &self.failures.logs
        };
        counter.fetch_add(records, Ordering::Relaxed);
    }

    async fn once(&mut self, body: Bytes) -> Result<(), tonic::Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| tonic::Status::unavailable(format!("collector not ready: {e}")))?;
        let mut req = tonic::Request::new(body);
        *req.metadata_mut() = self.headers.clone();
        let path = http::uri::PathAndQuery::from_static(EXPORT_PATH);
        let resp = self.grpc.unary(req, path, PreEncoded).await?;
        if let Some(p) = resp.into_inner().partial_success {
            if p.rejected_log_records > 0 || !p.error_message.is_empty() {
                tracing::warn!(
                    rejected = p.rejected_log_records,
                    message = %p.error_message,
                    "the collector rejected some exposure log records"
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refilled_record_keeps_only_the_new_attributes() {
        let mut list = Vec::new();
        let mut a = RecordAttrs::new(&mut list);
        a.str("k1", "long value one");
        a.int("k2", 7);
        a.str("k3", "x");
        a.finish();
        let mut a = RecordAttrs::new(&mut list);
        a.str("k1", "v");
        a.bool("other", true);
        a.finish();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].key, "k1");
        assert_eq!(
            list[0].value.as_ref().unwrap().value,
            Some(Value::StringValue("v".into()))
        );
        assert_eq!(list[1].key, "other");
        assert_eq!(
            list[1].value.as_ref().unwrap().value,
            Some(Value::BoolValue(true))
        );
    }

    #[test]
    fn batches_encode_only_their_own_records() {
        let resource = opentelemetry_sdk::Resource::builder_empty().build();
        let mut b = LogBatch::new(&resource, "cohortd");
        for i in 0..3 {
            let r = b.push();
            set_header(r, "e", UNIX_EPOCH + Duration::from_secs(i), None);
        }
        let first = ExportLogsServiceRequest::decode(b.take_encoded()).unwrap();
        assert!(b.is_empty());
        let r = b.push();
        set_header(r, "f", UNIX_EPOCH, None);
        let second = ExportLogsServiceRequest::decode(b.take_encoded()).unwrap();
        let records =
            |r: &ExportLogsServiceRequest| r.resource_logs[0].scope_logs[0].log_records.clone();
        assert_eq!(records(&first).len(), 3);
        assert_eq!(records(&first)[2].time_unix_nano, 2_000_000_000);
        assert_eq!(records(&second).len(), 1);
        assert_eq!(records(&second)[0].event_name, "f");
        assert_eq!(
            second.resource_logs[0].scope_logs[0]
                .scope
                .as_ref()
                .unwrap()
                .name,
            "cohortd"
        );
    }
}
