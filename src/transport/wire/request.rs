//! `AssignRequest` and `AssignAllRequest` as the server decodes them: the same
//! field numbers and wire types as `proto/cohortd/v1/assignment.proto`, but the
//! `google.protobuf.Struct` context stays the bytes it arrived in (a slice of
//! tonic's receive buffer, not a copy) and the experiment key is checked UTF-8
//! in place. [`super::context::WireContext`] reads those bytes.
//!
//! A message field that occurs more than once is merged by protobuf decoders;
//! for a `Struct` that is the concatenation of its occurrences, so every
//! occurrence is kept, in order, and read as one.

use std::collections::HashMap;

use prost::bytes::{Buf, BufMut, Bytes};
use prost::encoding::{self, DecodeContext, WireType};
use prost::DecodeError;
use smallvec::SmallVec;

use crate::transport::pb;

/// The occurrences of a context field on the wire, in order (nearly always one).
pub type ContextBytes = SmallVec<[Bytes; 1]>;

/// `cohortd.v1.AssignRequest`, context undecoded.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct AssignRequest {
    /// Field 1.
    pub experiment: Utf8Bytes,
    /// Field 2: `google.protobuf.Struct`, as encoded.
    pub context: ContextBytes,
    /// Field 3.
    pub exposure: bool,
    /// Field 4.
    pub sticky: HashMap<String, pb::StickyAssignment>,
}

/// `cohortd.v1.AssignAllRequest`, context undecoded.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct AssignAllRequest {
    /// Field 1: `google.protobuf.Struct`, as encoded.
    pub context: ContextBytes,
    /// Field 2.
    pub experiments: Vec<String>,
    /// Field 3.
    pub exposure: bool,
    /// Field 4.
    pub sticky: HashMap<String, pb::StickyAssignment>,
}

/// A protobuf `string` kept as the received bytes, checked UTF-8 when decoded.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// The string.
    pub fn as_str(&self) -> &str {
        // Checked when decoded (`merge_utf8`) and never changed after; the
        // fallback cannot happen but keeps this free of panics and `unsafe`.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl std::ops::Deref for Utf8Bytes {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

/// Reads one length-delimited field as a slice of the receive buffer.
fn merge_bytes(
    wire_type: WireType,
    buf: &mut impl Buf,
    ctx: DecodeContext,
) -> Result<Bytes, DecodeError> {
    let mut out = Bytes::new();
    encoding::bytes::merge(wire_type, &mut out, buf, ctx)?;
    Ok(out)
}

/// Like prost's `string::merge`: invalid UTF-8 is a decode error (prost's own,
/// produced by handing it the bytes again: the error path only).
fn merge_utf8(
    wire_type: WireType,
    buf: &mut impl Buf,
    ctx: DecodeContext,
) -> Result<Utf8Bytes, DecodeError> {
    let b = merge_bytes(wire_type, buf, ctx.clone())?;
    if std::str::from_utf8(&b).is_err() {
        let mut framed = Vec::with_capacity(b.len() + 10);
        encoding::encode_varint(b.len() as u64, &mut framed);
        framed.extend_from_slice(&b);
        let mut s = String::new();
        encoding::string::merge(WireType::LengthDelimited, &mut s, &mut &framed[..], ctx)?;
    }
    Ok(Utf8Bytes(b))
}

fn merge_sticky(
    sticky: &mut HashMap<String, pb::StickyAssignment>,
    wire_type: WireType,
    buf: &mut impl Buf,
    ctx: DecodeContext,
) -> Result<(), DecodeError> {
    encoding::check_wire_type(WireType::LengthDelimited, wire_type)?;
    encoding::hash_map::merge(
        encoding::string::merge,
        encoding::message::merge,
        sticky,
        buf,
        ctx,
    )
}

fn encode_context(tag: u32, context: &ContextBytes, buf: &mut impl BufMut) {
    // Occurrences merge on decode; one field with their concatenation is equal.
    let len: usize = context.iter().map(Bytes::len).sum();
    if context.is_empty() {
        return;
    }
    encoding::encode_key(tag, WireType::LengthDelimited, buf);
    encoding::encode_varint(len as u64, buf);
    context.iter().for_each(|b| buf.put_slice(b));
}

fn context_len(tag: u32, context: &ContextBytes) -> usize {
    if context.is_empty() {
        return 0;
    }
    let len: usize = context.iter().map(Bytes::len).sum();
    encoding::key_len(tag) + encoding::encoded_len_varint(len as u64) + len
}

fn sticky_len(tag: u32, sticky: &HashMap<String, pb::StickyAssignment>) -> usize {
    encoding::hash_map::encoded_len(
        encoding::string::encoded_len,
        encoding::message::encoded_len,
        tag,
        sticky,
    )
}

fn encode_sticky(tag: u32, sticky: &HashMap<String, pb::StickyAssignment>, buf: &mut impl BufMut) {
    encoding::hash_map::encode(
        encoding::string::encode,
        encoding::string::encoded_len,
        encoding::message::encode,
        encoding::message::encoded_len,
        tag,
        sticky,
        buf,
    )
}

impl prost::Message for AssignRequest {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        if !self.experiment.is_empty() {
            encoding::bytes::encode(1, &self.experiment.0, buf);
        }
        encode_context(2, &self.context, buf);
        if self.exposure {
            encoding::bool::encode(3, &self.exposure, buf);
        }
        encode_sticky(4, &self.sticky, buf);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        match tag {
            1 => self.experiment = merge_utf8(wire_type, buf, ctx)?,
            2 => self.context.push(merge_bytes(wire_type, buf, ctx)?),
            3 => encoding::bool::merge(wire_type, &mut self.exposure, buf, ctx)?,
            4 => merge_sticky(&mut self.sticky, wire_type, buf, ctx)?,
            _ => encoding::skip_field(wire_type, tag, buf, ctx)?,
        }
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        let key = if self.experiment.is_empty() {
            0
        } else {
            encoding::bytes::encoded_len(1, &self.experiment.0)
        };
        key + context_len(2, &self.context)
            + if self.exposure { 2 } else { 0 }
            + sticky_len(4, &self.sticky)
    }

    fn clear(&mut self) {
        *self = AssignRequest::default();
    }
}

impl prost::Message for AssignAllRequest {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        encode_context(1, &self.context, buf);
        encoding::string::encode_repeated(2, &self.experiments, buf);
        if self.exposure {
            encoding::bool::encode(3, &self.exposure, buf);
        }
        encode_sticky(4, &self.sticky, buf);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        match tag {
            1 => self.context.push(merge_bytes(wire_type, buf, ctx)?),
            2 => encoding::string::merge_repeated(wire_type, &mut self.experiments, buf, ctx)?,
            3 => encoding::bool::merge(wire_type, &mut self.exposure, buf, ctx)?,
            4 => merge_sticky(&mut self.sticky, wire_type, buf, ctx)?,
            _ => encoding::skip_field(wire_type, tag, buf, ctx)?,
        }
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        context_len(1, &self.context)
            + encoding::string::encoded_len_repeated(2, &self.experiments)
            + if self.exposure { 2 } else { 0 }
            + sticky_len(4, &self.sticky)
    }

    fn clear(&mut self) {
        *self = AssignAllRequest::default();
    }
}
