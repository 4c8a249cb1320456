//! The per-record parts of an exposure log record written as protobuf by
//! hand: the record's header fields (times, severity, trace context, event
//! name) and string attributes, byte for byte what prost writes for the
//! generated `LogRecord` and `KeyValue` (tests below compare them).
//!
//! Why: with every call a new exposure, going through the generated types
//! (refill a reused `LogRecord` or `KeyValue`, let prost measure it, then
//! encode it) was about 1,400 of the 6,300 instructions the batch builder
//! spent per exposure under callgrind (docs/benchmarks.md, "Exposure
//! export"). These fields have a fixed shape, so their lengths are known
//! arithmetic and their bytes a handful of writes. Everything that is not
//! per record (the fixed attribute runs, the request framing) is still
//! encoded by prost from the generated types.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::SpanContext;
use prost::bytes::BufMut;
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};

/// `LogRecord.attributes`' field number in the OTLP logs proto.
pub const ATTRIBUTES: u32 = 6;

/// `SeverityNumber::Info`, and its text, as the SDK's records had them.
const SEVERITY_INFO: u64 = 9;
const SEVERITY_TEXT: &str = "INFO";

/// Nanoseconds since the Unix epoch (0 before it, saturating far after it).
pub fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Bytes of a length-delimited field's key and length prefix plus `len`.
fn delimited(len: usize) -> usize {
    1 + encoded_len_varint(len as u64) + len
}

/// `KeyValue { key, value: AnyValue { string_value } }`'s length: prost skips
/// an empty key but always writes the `value` message and a oneof member.
fn kv_len(key: &str, value: &[u8]) -> usize {
    let key_len = if key.is_empty() {
        0
    } else {
        delimited(key.len())
    };
    key_len + delimited(delimited(value.len()))
}

/// Writes one `LogRecord.attributes` field: the string attribute `key` =
/// `value` (UTF-8 bytes; a protobuf string is its bytes).
pub fn put_str_attr(out: &mut impl BufMut, key: &str, value: &[u8]) {
    encode_key(ATTRIBUTES, WireType::LengthDelimited, out);
    encode_varint(kv_len(key, value) as u64, out);
    if !key.is_empty() {
        encode_key(1, WireType::LengthDelimited, out);
        encode_varint(key.len() as u64, out);
        out.put_slice(key.as_bytes());
    }
    encode_key(2, WireType::LengthDelimited, out);
    encode_varint(delimited(value.len()) as u64, out);
    encode_key(1, WireType::LengthDelimited, out);
    encode_varint(value.len() as u64, out);
    out.put_slice(value);
}

/// Every field of an exposure or outcome record but its attributes, as
/// `otlp_logs::set_header` fills them: event name, severity `INFO`, the
/// event's time, when it was observed, and the trace context when valid.
#[derive(Debug, Clone, Copy)]
pub struct Header<'a> {
    /// `time_unix_nano`.
    pub time: u64,
    /// `observed_time_unix_nano`.
    pub observed: u64,
    /// `event_name`.
    pub event_name: &'a str,
    /// Trace id, span id and trace flags of a valid span context.
    pub trace: Option<([u8; 16], [u8; 8], u32)>,
}

impl<'a> Header<'a> {
    /// A header for an event at `time`, observed at `observed` (nanoseconds),
    /// in the trace of `sc` when it is valid.
    pub fn new(
        event_name: &'a str,
        time: SystemTime,
        observed: u64,
        sc: Option<&SpanContext>,
    ) -> Self {
        Header {
            time: nanos(time),
            observed,
            event_name,
            trace: sc.filter(|sc| sc.is_valid()).map(|sc| {
                (
                    sc.trace_id().to_bytes(),
                    sc.span_id().to_bytes(),
                    u32::from(sc.trace_flags().to_u8()),
                )
            }),
        }
    }

    /// Encoded length, as prost's `encoded_len` of the record without
    /// attributes (zero numbers and empty strings are not written).
    pub fn encoded_len(&self) -> usize {
        let fixed64 = |v: u64| if v == 0 { 0 } else { 1 + 8 };
        let mut n = fixed64(self.time) + fixed64(self.observed);
        n += 1 + encoded_len_varint(SEVERITY_INFO) + delimited(SEVERITY_TEXT.len());
        if let Some((_, _, flags)) = self.trace {
            n += if flags == 0 { 0 } else { 1 + 4 };
            n += delimited(16) + delimited(8);
        }
        if !self.event_name.is_empty() {
            n += delimited(self.event_name.len());
        }
        n
    }

    /// Writes the fields in tag order, as prost does: time (1), severity
    /// number (2) and text (3), flags (8), trace id (9), span id (10),
    /// observed time (11), event name (12).
    pub fn encode(&self, out: &mut impl BufMut) {
        if self.time != 0 {
            encode_key(1, WireType::SixtyFourBit, out);
            out.put_u64_le(self.time);
        }
        encode_key(2, WireType::Varint, out);
        encode_varint(SEVERITY_INFO, out);
        put_bytes(out, 3, SEVERITY_TEXT.as_bytes());
        if let Some((trace_id, span_id, flags)) = &self.trace {
            if *flags != 0 {
                encode_key(8, WireType::ThirtyTwoBit, out);
                out.put_u32_le(*flags);
            }
            put_bytes(out, 9, trace_id);
            put_bytes(out, 10, span_id);
        }
        if self.observed != 0 {
            encode_key(11, WireType::SixtyFourBit, out);
            out.put_u64_le(self.observed);
        }
        if !self.event_name.is_empty() {
            put_bytes(out, 12, self.event_name.as_bytes());
        }
    }
}

fn put_bytes(out: &mut impl BufMut, tag: u32, v: &[u8]) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(v.len() as u64, out);
    out.put_slice(v);
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};

    #[test]
    fn string_attributes_are_the_generated_key_value_byte_for_byte() {
        let long = "v".repeat(200);
        for (key, value) in [
            ("cohortd.exposure.id", "0123456789abcdef0123456789abcdef"),
            ("feature_flag.context.id", ""),
            ("", "no key"),
            ("k", long.as_str()),
        ] {
            let kv = KeyValue {
                key: key.into(),
                value: Some(AnyValue {
                    value: Some(Value::StringValue(value.into())),
                }),
                ..KeyValue::default()
            };
            let mut want = Vec::new();
            prost::encoding::message::encode(ATTRIBUTES, &kv, &mut want);
            let mut got = Vec::new();
            put_str_attr(&mut got, key, value.as_bytes());
            assert_eq!(got, want, "{key:?}");
        }
    }
}
