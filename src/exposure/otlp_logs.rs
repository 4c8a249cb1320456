//! Exposure and outcome log records built straight into an OTLP
//! `ExportLogsServiceRequest` (opentelemetry-proto's generated types) and
//! sent over gRPC, without the OpenTelemetry SDK's logger.
//!
//! Why: with every call a new exposure, a perf profile put about 95% of what
//! export added on the SDK's per-record data model (46 allocations per
//! exposure: our attribute `Vec` of `Arc<str>`s, the SDK record, the batch
//! processor's boxed copy, the proto conversion that copies every string
//! again; docs/benchmarks.md, "Exposure export"). Here one record is kept
//! and refilled (keys and string values are cleared and rewritten, keeping
//! their capacity), and [`LogBatch`] encodes each finished record straight
//! into the request's bytes, so a steady stream of exposures allocates almost
//! nothing once warm and no record is measured or walked twice.
//!
//! The bytes are sent with tonic's generic gRPC client on the OTLP logs path,
//! because tonic's generated `LogsServiceClient` takes a request by value and
//! encodes it whole. Everything on the wire is what the generated client would
//! send (the generated types define every record, resource and scope; prost's
//! own encoding helpers frame them); the receiver decodes it with the
//! generated server.
//!
//! Over 500 lines with its tests: the checks that what is sent is, byte for
//! byte, the generated request live beside the encoder they check.
//!
//! What the SDK's log pipeline provided is kept: the `OTEL_*` settings
//! ([`super::otlp_env`]), the resource and the `cohortd` scope, batching by
//! size and delay, a bounded number of records waiting in built batches, its
//! retry policy (3 retries with exponential backoff from 100 ms to 1.6 s on
//! the OTLP-retryable gRPC codes, within the timeout) and counted successes
//! and failures.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::SpanContext;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use prost::bytes::{BufMut as _, Bytes, BytesMut};
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::transport::Channel;

use super::queue::ExportFailures;
use super::wire::{nanos, Header};

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

/// The request the batch encodes, with no records: the resource and the
/// `cohortd` scope (no version, as the SDK logger the records came from
/// before). Built from the generated types, which define every byte.
fn template(resource: &opentelemetry_sdk::Resource, scope: &str) -> ExportLogsServiceRequest {
    let r = ResourceAttributesWithSchema::from(resource);
    let scope = opentelemetry::InstrumentationScope::builder(scope.to_owned()).build();
    ExportLogsServiceRequest {
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
    }
}

/// One export request, encoded record by record as the batch is built.
///
/// Why not keep an `ExportLogsServiceRequest` and encode it at the end: prost
/// computes a nested message's length once per enclosing level (the request,
/// the resource's logs, the scope's logs, the record, the attribute), so each
/// attribute value was measured six times per batch, 27% of what export cost
/// (docs/benchmarks.md, "Exposure export"). Here each record is encoded once,
/// as it is finished, with prost's `encoding::message::encode` (the field of
/// `ScopeLogs` the generated type would write), into the request's buffer;
/// the request and resource/scope framing around the records is written at
/// [`LogBatch::take_encoded`] from the known length, with the resource and
/// scope fields encoded once by prost up front. The bytes are exactly what
/// prost writes for the same request (a test decodes and compares them).
///
/// Only one [`LogRecord`] exists: it is refilled for every record (keys and
/// string values keep their capacity), so a steady stream of exposures
/// allocates nothing here once warm, and the record stays in cache.
pub struct LogBatch {
    /// The record being written.
    record: LogRecord,
    /// `gap` bytes of room for the framing, then the encoded records.
    buf: BytesMut,
    gap: usize,
    /// Records in `buf`.
    n: usize,
    /// `ResourceLogs.resource` and `ScopeLogs.scope`, encoded.
    resource: Vec<u8>,
    scope: Vec<u8>,
    /// `ScopeLogs.schema_url` and `ResourceLogs.schema_url`, encoded (empty
    /// when the URL is, as prost skips empty strings).
    scope_tail: Vec<u8>,
    resource_tail: Vec<u8>,
    /// Reused for the framing.
    head: Vec<u8>,
    /// Encoded size of the last batch (room reserved for the next).
    last_len: usize,
}

impl LogBatch {
    /// An empty batch for `resource`, in the instrumentation scope `scope`.
    pub fn new(resource: &opentelemetry_sdk::Resource, scope: &str) -> LogBatch {
        use prost::encoding::{message, string};
        let t = template(resource, scope);
        let rl = &t.resource_logs[0];
        let sl = &rl.scope_logs[0];
        let mut b = LogBatch {
            record: LogRecord {
                // Room for an exposure's attributes (at most 15) from the start.
                attributes: Vec::with_capacity(16),
                ..LogRecord::default()
            },
            buf: BytesMut::new(),
            gap: 0,
            n: 0,
            resource: Vec::new(),
            scope: Vec::new(),
            scope_tail: Vec::new(),
            resource_tail: Vec::new(),
            head: Vec::new(),
            last_len: 0,
        };
        if let Some(r) = &rl.resource {
            message::encode(1, r, &mut b.resource);
        }
        if let Some(s) = &sl.scope {
            message::encode(1, s, &mut b.scope);
        }
        if !sl.schema_url.is_empty() {
            string::encode(3, &sl.schema_url, &mut b.scope_tail);
        }
        if !rl.schema_url.is_empty() {
            string::encode(3, &rl.schema_url, &mut b.resource_tail);
        }
        // Two one-byte keys, two varint lengths (at most 10 bytes each), the
        // resource and the scope.
        b.gap = 2 * (1 + 10) + b.resource.len() + b.scope.len();
        b
    }

    /// Records in the batch.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the batch has no records.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Adds a record: `fill` overwrites every field of the reused record
    /// (what it leaves alone keeps the previous record's value), which is
    /// then encoded at the end of the batch.
    pub fn add(&mut self, fill: impl FnOnce(&mut LogRecord)) {
        self.open();
        fill(&mut self.record);
        prost::encoding::message::encode(2, &self.record, &mut self.buf);
        self.n += 1;
    }

    /// Adds a record whose fields come encoded: `header`, every field but
    /// the attributes ([`super::wire`]), then `attributes`, a run of encoded
    /// `LogRecord.attributes` fields ([`super::attr_cache`]), written after
    /// the other fields (a field's place on the wire does not change what a
    /// decoder reads; repeated fields keep their order).
    pub fn add_encoded(&mut self, header: &Header<'_>, attributes: &[u8]) {
        use prost::encoding::{encode_key, encode_varint, WireType};
        self.open();
        let len = header.encoded_len() + attributes.len();
        encode_key(2, WireType::LengthDelimited, &mut self.buf);
        encode_varint(len as u64, &mut self.buf);
        header.encode(&mut self.buf);
        self.buf.put_slice(attributes);
        self.n += 1;
    }

    /// As [`LogBatch::add_encoded`], but `write` puts the attributes straight
    /// into the batch's buffer after the header, with no scratch buffer to
    /// fill and copy (an exposure's attributes, a few hundred bytes, were
    /// written once into scratch and then copied here).
    ///
    /// The record's length prefix comes before the record but is only known
    /// once it is written, so two bytes are set aside for it (records of 128
    /// to 16,383 bytes: every exposure with ids and keys of ordinary length)
    /// and the record is moved only when its length needs another size, so
    /// the bytes are exactly `add_encoded`'s.
    pub fn add_written(&mut self, header: &Header<'_>, write: impl FnOnce(&mut BytesMut)) {
        use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};
        const GUESS: usize = 2;
        self.open();
        encode_key(2, WireType::LengthDelimited, &mut self.buf);
        let at = self.buf.len();
        self.buf.put_bytes(0, GUESS);
        let body = self.buf.len();
        header.encode(&mut self.buf);
        write(&mut self.buf);
        let len = self.buf.len() - body;
        let need = encoded_len_varint(len as u64);
        if need > GUESS {
            self.buf.put_bytes(0, need - GUESS);
            self.buf.copy_within(body..body + len, at + need);
        } else if need < GUESS {
            self.buf.copy_within(body..body + len, at + need);
            self.buf.truncate(at + need + len);
        }
        encode_varint(len as u64, &mut &mut self.buf[at..at + need]);
        self.n += 1;
    }

    /// Makes room for the framing before the first record of a batch.
    fn open(&mut self) {
        if self.n == 0 {
            self.buf.reserve(self.gap + self.last_len);
            self.buf.put_bytes(0, self.gap);
        }
    }

    /// The request encoded, and the batch emptied.
    pub fn take_encoded(&mut self) -> Bytes {
        use prost::bytes::Buf as _;
        use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};
        if self.n == 0 {
            // An empty request (no `resource_logs`), as prost encodes one.
            return Bytes::new();
        }
        let records = self.buf.len() - self.gap;
        let scope_logs = self.scope.len() + records + self.scope_tail.len();
        let resource_logs = self.resource.len()
            + key_len(2)
            + encoded_len_varint(scope_logs as u64)
            + scope_logs
            + self.resource_tail.len();
        let h = &mut self.head;
        h.clear();
        encode_key(1, WireType::LengthDelimited, h);
        encode_varint(resource_logs as u64, h);
        h.extend_from_slice(&self.resource);
        encode_key(2, WireType::LengthDelimited, h);
        encode_varint(scope_logs as u64, h);
        h.extend_from_slice(&self.scope);
        let start = self.gap - h.len();
        self.buf[start..self.gap].copy_from_slice(h);
        self.buf.put_slice(&self.scope_tail);
        self.buf.put_slice(&self.resource_tail);
        self.buf.advance(start);
        self.last_len = self.buf.len();
        self.n = 0;
        self.buf.split().freeze()
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
    use prost::Message as _;
    use std::time::UNIX_EPOCH;

    /// Attributes written in place give the same bytes as attributes copied
    /// in, whatever size the record's length prefix takes (one, two or three
    /// bytes, around the two set aside).
    #[test]
    fn attributes_written_in_place_are_the_copied_bytes() {
        let resource = opentelemetry_sdk::Resource::builder_empty().build();
        let (mut copied, mut written) = (
            LogBatch::new(&resource, "cohortd"),
            LogBatch::new(&resource, "cohortd"),
        );
        for size in [0, 1, 60, 100, 127, 200, 16_300, 16_400, 20_000, 3] {
            let mut attrs = Vec::new();
            super::super::wire::put_str_attr(&mut attrs, "k", "v".repeat(size).as_bytes());
            let time = UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
            let header = Header::new("feature_flag.evaluation", time, 5, None);
            copied.add_encoded(&header, &attrs);
            written.add_written(&header, |out| out.put_slice(&attrs));
        }
        assert_eq!(written.len(), copied.len());
        let (w, c) = (written.take_encoded(), copied.take_encoded());
        assert_eq!(w, c);
        let r = ExportLogsServiceRequest::decode(w).unwrap();
        assert_eq!(r.resource_logs[0].scope_logs[0].log_records.len(), 10);
    }

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
            b.add(|r| set_header(r, "e", UNIX_EPOCH + Duration::from_secs(i), None));
        }
        let first = ExportLogsServiceRequest::decode(b.take_encoded()).unwrap();
        assert!(b.is_empty());
        b.add(|r| set_header(r, "f", UNIX_EPOCH, None));
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

    /// Records unlike each other: trace context or none, string, bool, int
    /// and nested list attributes, a refilled record with fewer attributes.
    fn sample_records() -> Vec<LogRecord> {
        let sc = SpanContext::new(
            opentelemetry::trace::TraceId::from_bytes([7; 16]),
            opentelemetry::trace::SpanId::from_bytes([9; 8]),
            opentelemetry::trace::TraceFlags::SAMPLED,
            false,
            Default::default(),
        );
        let mut out = Vec::new();
        let mut r = LogRecord::default();
        for i in 0..40u64 {
            set_header(
                &mut r,
                if i % 3 == 0 {
                    "o"
                } else {
                    "feature_flag.evaluation"
                },
                UNIX_EPOCH + Duration::from_millis(i * 1_234_567),
                (i % 2 == 0).then_some(&sc),
            );
            let mut a = RecordAttrs::new(&mut r.attributes);
            a.str("feature_flag.key", &"k".repeat(1 + i as usize * 7));
            a.str("feature_flag.result.variant", "treatment");
            if i % 4 != 1 {
                a.bool("cohortd.sticky", i % 2 == 1);
                a.int("cohortd.epoch", i as i64 * 1000 - 7);
            }
            if i % 5 == 0 {
                let inner = AnyValue {
                    value: Some(Value::StringValue("nested".into())),
                };
                let list = opentelemetry_proto::tonic::common::v1::ArrayValue {
                    values: vec![inner.clone(), inner],
                };
                a.any(
                    "cohortd.outcome.values",
                    AnyValue {
                        value: Some(Value::ArrayValue(list)),
                    },
                );
            }
            a.finish();
            out.push(r.clone());
        }
        out
    }

    /// What is sent is, byte for byte, what prost encodes for the request the
    /// builder before this one kept (a generated `ExportLogsServiceRequest`
    /// holding every record), and decodes with the generated type to the same
    /// request; with a resource and scope that carry schema URLs too.
    #[test]
    fn encoded_batches_are_the_generated_request_byte_for_byte() {
        let plain = opentelemetry_sdk::Resource::builder_empty().build();
        let rich = opentelemetry_sdk::Resource::builder_empty()
            .with_schema_url(
                [
                    opentelemetry::KeyValue::new("service.name", "svc"),
                    opentelemetry::KeyValue::new("n", 3),
                ],
                "https://opentelemetry.io/schemas/1.30.0",
            )
            .build();
        let records = sample_records();
        for resource in [&plain, &rich] {
            let mut b = LogBatch::new(resource, "cohortd");
            // Two batches of different sizes through the same buffers.
            for batch in [&records[..], &records[..7], &records[39..]] {
                let mut old = template(resource, "cohortd");
                old.resource_logs[0].scope_logs[0].log_records = batch.to_vec();
                for r in batch {
                    b.add(|into| {
                        // The reused record keeps the capacity of its strings.
                        into.clone_from(r);
                    });
                }
                let sent = b.take_encoded();
                assert_eq!(&sent[..], &old.encode_to_vec()[..]);
                assert_eq!(ExportLogsServiceRequest::decode(sent).unwrap(), old);
            }
        }
    }

    /// The hand-written header ([`super::wire::Header`]) is what prost writes
    /// for the generated record [`set_header`] fills (kept here, beside
    /// `set_header`, so `wire` does not import this module).
    #[test]
    fn headers_are_the_generated_record_byte_for_byte() {
        use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};
        use std::time::Duration;
        let sampled = SpanContext::new(
            TraceId::from_bytes([7; 16]),
            SpanId::from_bytes([9; 8]),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let unsampled = SpanContext::new(
            TraceId::from_bytes([1; 16]),
            SpanId::from_bytes([2; 8]),
            TraceFlags::default(),
            false,
            TraceState::default(),
        );
        let times = [
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            UNIX_EPOCH - Duration::from_secs(5),
        ];
        for sc in [
            None,
            Some(&sampled),
            Some(&unsampled),
            Some(&SpanContext::NONE),
        ] {
            for time in times {
                for event in ["feature_flag.evaluation", ""] {
                    let mut r = LogRecord::default();
                    set_header(&mut r, event, time, sc);
                    let h = Header::new(event, time, r.observed_time_unix_nano, sc);
                    let mut got = Vec::new();
                    h.encode(&mut got);
                    assert_eq!(got, r.encode_to_vec(), "{sc:?} {time:?} {event:?}");
                    assert_eq!(h.encoded_len(), got.len());
                }
            }
        }
    }
}
