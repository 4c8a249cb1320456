//! A typed flagd `Resolve*` response written straight to protobuf bytes.
//!
//! The generated response messages own their fields: answering through them
//! copies the variant key and value into `String`s, the reason into a `String`
//! and the metadata into a `Struct` (a `BTreeMap` of boxed `Value`s), all to be
//! walked once by the encoder and dropped. Every one of those is already in the
//! snapshot, borrowed for the length of the call, so [`write`] encodes the
//! response from the borrowed resolution into one buffer, and [`Encoded`] hands
//! the bytes to tonic as they are.
//!
//! The bytes are exactly prost's for the generated message built the old way
//! (v1: zero values left out, an object value always present; v2: `value` and
//! `variant` present whenever set; `Struct` entries in key order, later
//! duplicates winning), which tests/flagd_wire_decode.rs checks byte for byte
//! for every vector flag.

use prost::bytes::BufMut;
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, DecodeContext, WireType};
use serde_json::Value;

use super::resolve::{Resolved, ValueType};
use crate::engine::resolve::Meta;

/// An already encoded response message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Encoded(pub Vec<u8>);

impl prost::Message for Encoded {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    /// Write-only: clients decode the typed response message instead, so a
    /// decoded `Encoded` skips every field and stays empty.
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl prost::bytes::Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// `Resolver` checked the value's type, so this cannot happen; it is an
/// internal error rather than a panic all the same.
fn wrong_type() -> tonic::Status {
    tonic::Status::internal("resolved value has the wrong type")
}

/// Which flagd protocol's response shape to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// v1: plain `value`/`variant`, zero values left out; an object value is
    /// always sent (empty for the caller's default).
    V1,
    /// v2: `optional` `value` and `variant`, sent whenever set.
    V2,
}

/// Encodes `r` as the `want` response of `shape` (fields 1 value, 2 reason, 3
/// variant, 4 metadata).
pub fn write(r: &Resolved<'_>, want: ValueType, shape: Shape) -> Result<Encoded, tonic::Status> {
    let mut out = Vec::with_capacity(128);
    let v1 = shape == Shape::V1;
    let (value, variant) = match r.value {
        Some((v, name)) => (Some(v), Some(name)),
        None => (None, None),
    };
    match (want, value) {
        (ValueType::Boolean, Some(Value::Bool(b))) => {
            if *b || !v1 {
                encode_key(1, WireType::Varint, &mut out);
                encode_varint(u64::from(*b), &mut out);
            }
        }
        (ValueType::String, Some(Value::String(s))) => {
            if !s.is_empty() || !v1 {
                string(1, s, &mut out);
            }
        }
        (ValueType::Float, Some(Value::Number(n))) => {
            let x = n.as_f64().ok_or_else(wrong_type)?;
            if x != 0.0 || !v1 {
                encode_key(1, WireType::SixtyFourBit, &mut out);
                out.put_f64_le(x);
            }
        }
        (ValueType::Integer, Some(Value::Number(n))) => {
            let i = super::resolve::int_of(n).ok_or_else(wrong_type)?;
            if i != 0 || !v1 {
                encode_key(1, WireType::Varint, &mut out);
                encode_varint(i as u64, &mut out);
            }
        }
        (ValueType::Object, Some(Value::Object(m))) => {
            message(1, object_len(m), &mut out);
            write_object(m, &mut out);
        }
        // The caller's default: v1 sends an empty object, v2 nothing.
        (ValueType::Object, None) if v1 => message(1, 0, &mut out),
        (_, None) => {}
        _ => return Err(wrong_type()),
    }
    if !r.reason.is_empty() {
        string(2, r.reason, &mut out);
    }
    match variant {
        Some(v) if !v.is_empty() || !v1 => string(3, v, &mut out),
        _ => {}
    }
    let meta = metadata(r);
    let len: usize = meta
        .iter()
        .map(|(k, m)| field_len(entry_len(k, &MetaValue(*m))))
        .sum();
    message(4, len, &mut out);
    for (k, m) in &meta {
        write_entry(k, &MetaValue(*m), &mut out);
    }
    Ok(Encoded(out))
}

/// The metadata entries in the order a `BTreeMap` keeps them, later duplicates
/// winning (as `Struct` insertion would).
fn metadata<'a>(r: &Resolved<'a>) -> Vec<(&'a str, Meta<'a>)> {
    let mut m: Vec<(&str, Meta)> = r.metadata().collect();
    // Stable: equal keys keep insertion order, and the last one is kept.
    m.sort_by(|a, b| a.0.cmp(b.0));
    let mut out: Vec<(&str, Meta)> = Vec::with_capacity(m.len());
    for e in m {
        match out.last_mut() {
            Some(last) if last.0 == e.0 => *last = e,
            _ => out.push(e),
        }
    }
    out
}

fn string(tag: u32, s: &str, out: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(s.len() as u64, out);
    out.put_slice(s.as_bytes());
}

fn message(tag: u32, len: usize, out: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(len as u64, out);
}

/// Bytes a length-delimited field with a body of `len` bytes takes (tags here
/// are all below 16: one key byte).
fn field_len(len: usize) -> usize {
    1 + encoded_len_varint(len as u64) + len
}

/// A `google.protobuf.Value` to write: a JSON value or a metadata value.
trait ProtoValue {
    /// The encoded `Value` message's length.
    fn len(&self) -> usize;
    /// Writes the `Value` message's fields.
    fn write(&self, out: &mut Vec<u8>);
}

struct MetaValue<'a>(Meta<'a>);

impl ProtoValue for MetaValue<'_> {
    fn len(&self) -> usize {
        match self.0 {
            Meta::Str(s) => field_len(s.len()),
            Meta::Number(_) => 9,
            Meta::Bool(_) => 2,
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self.0 {
            Meta::Str(s) => string(3, s, out),
            Meta::Number(n) => {
                encode_key(2, WireType::SixtyFourBit, out);
                out.put_f64_le(n);
            }
            Meta::Bool(b) => {
                encode_key(4, WireType::Varint, out);
                encode_varint(u64::from(b), out);
            }
        }
    }
}

/// As `convert::json_to_proto` converts: numbers as doubles, null as
/// `NULL_VALUE`, arrays as lists, objects as structs.
impl ProtoValue for Value {
    fn len(&self) -> usize {
        match self {
            Value::Null => 2,
            Value::Bool(_) => 2,
            Value::Number(_) => 9,
            Value::String(s) => field_len(s.len()),
            Value::Array(items) => field_len(items.iter().map(|v| field_len(v.len())).sum()),
            Value::Object(m) => field_len(object_len(m)),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => {
                encode_key(1, WireType::Varint, out);
                encode_varint(0, out);
            }
            Value::Bool(b) => {
                encode_key(4, WireType::Varint, out);
                encode_varint(u64::from(*b), out);
            }
            Value::Number(n) => {
                encode_key(2, WireType::SixtyFourBit, out);
                out.put_f64_le(n.as_f64().unwrap_or(0.0));
            }
            Value::String(s) => string(3, s, out),
            Value::Array(items) => {
                message(6, items.iter().map(|v| field_len(v.len())).sum(), out);
                for v in items {
                    message(1, v.len(), out);
                    v.write(out);
                }
            }
            Value::Object(m) => {
                message(5, object_len(m), out);
                write_object(m, out);
            }
        }
    }
}

/// A map entry `{1: key, 2: value}`; prost leaves out an empty key.
fn entry_len(key: &str, v: &dyn ProtoValue) -> usize {
    let k = if key.is_empty() {
        0
    } else {
        field_len(key.len())
    };
    k + field_len(v.len())
}

fn write_entry(key: &str, v: &dyn ProtoValue, out: &mut Vec<u8>) {
    message(1, entry_len(key, v), out);
    if !key.is_empty() {
        string(1, key, out);
    }
    message(2, v.len(), out);
    v.write(out);
}

/// A `Struct`'s body for a JSON object (keys are unique in one).
fn object_len(m: &serde_json::Map<String, Value>) -> usize {
    m.iter().map(|(k, v)| field_len(entry_len(k, v))).sum()
}

fn write_object(m: &serde_json::Map<String, Value>, out: &mut Vec<u8>) {
    let mut entries: Vec<(&String, &Value)> = m.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    for (k, v) in entries {
        write_entry(k, v, out);
    }
}
