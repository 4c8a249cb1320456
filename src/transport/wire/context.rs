//! A `google.protobuf.Struct` context read straight from its wire bytes into a
//! flat list of borrowed attributes: no map, no owned strings, no boxed values.
//! This is the one reader of `Struct`/`Value`/`ListValue` wire bytes: the
//! cohortd.v1 `Assign`/`AssignAll` contexts and the flagd `Resolve*` contexts
//! (`transport/flagd/wire.rs`) both come through it, so every wire rule and
//! limit below exists once.
//!
//! The engine reads a handful of top-level scalars per call, so decoding the
//! Struct into prost's `BTreeMap<String, Value>` (an allocation per name, per
//! string and per node) was most of the cost of a call. Here a top-level
//! attribute is a name and an [`Attr`] pointing into the request buffer; nested
//! structs and lists are [`Attr::Other`] and are only walked, to check them.
//! flagd-format targeting reads nested values through JSONLogic: it asks
//! [`Context::json`] for the object `convert::struct_to_json` makes of the
//! decoded `Struct` (same values, same key order). The checking walk builds it
//! as it goes when asked to ([`WireContext::decode_with_json`]: the flagd
//! resolver knows before reading the context whether the flag has targeting),
//! so the bytes are read once; otherwise [`Context::json`] builds it on demand
//! by walking the checked entries again through the same walk.
//!
//! What the decoded `Struct` gets elsewhere ([`Limits::check_context`]), this
//! gets too: the same limits with the same errors, malformed values (no kind, a
//! number that is not finite) refused, and prost's nesting limit (100 messages
//! deep). Protobuf semantics are kept: unknown fields are skipped, a later
//! duplicate name replaces an earlier one (as prost's map does), the last member
//! of a `Value`'s oneof wins, repeated occurrences of the context concatenate.
//! A message field given twice merges as in prost (a map entry's value, a
//! `struct_value` or `list_value`: [`Context::json`] shows the merge). One
//! difference, stricter and only for input no protobuf library writes: values a
//! later duplicate replaces (a nested duplicate name, an overridden oneof
//! member, a repeated map-entry value) still count towards the node and byte
//! limits and are checked on their own (a later occurrence with no kind is
//! refused even where prost would keep the earlier kind). `tests/wire_context.rs`,
//! `tests/flagd_wire_decode.rs` and the `wire_context` fuzz target check the
//! decoder is never looser.
//!
//! Bytes that are not a valid Struct encoding are a [`ContextError::Wire`]
//! naming what is wrong (INVALID_ARGUMENT for both protocols); a limit is a
//! [`ContextError::Limit`] (INVALID_ARGUMENT in cohortd.v1, flagd's
//! INVALID_CONTEXT in `Resolve*`, each protocol's answer to a limit).
//!
//! Over 500 lines because it is the whole format in one place: the checking
//! walk (which also builds the JSON view) and the wire primitives it uses.

use prost::encoding::{decode_key, decode_varint, skip_field, DecodeContext, WireType};
use serde_json::{Map, Value as J};
use smallvec::SmallVec;
use tonic::Status;

use super::scalar_entry::{scalar_entry, Scalar};
use crate::engine::context::same_name;
use crate::engine::reads::{gather, Reads};
use crate::engine::{Attr, Context};
use crate::transport::convert::number_to_json;
use crate::transport::limits::{truncate, LimitError, Limits};

/// Prost's nesting limit, counted the same way (the request is level 0).
const MAX_LEVEL: u32 = 100;

/// No limits: for walking bytes a walk under the real limits already accepted.
const CHECKED: Limits = Limits {
    max_message_bytes: usize::MAX,
    max_context_attributes: usize::MAX,
    max_key_bytes: usize::MAX,
    max_attribute_name_bytes: usize::MAX,
    max_string_value_bytes: usize::MAX,
    max_assign_all_experiments: usize::MAX,
    max_exposure_records: usize::MAX,
    max_context_nodes: usize::MAX,
    max_context_bytes: usize::MAX,
    max_track_events: usize::MAX,
};

/// Attributes kept inline before the list moves to the heap. Requests carry a
/// handful to a few dozen attributes (the benchmarks' realistic context has 10,
/// which spilled the former 8 and cost an allocation and a free per call); 16
/// entries are 896 bytes of a request's stack, moved a few times per call
/// (callgrind, `decode_and_assign`: cheaper than the allocation at 10).
const INLINE: usize = 16;

/// The flat, borrowed context of one request.
#[derive(Debug, Default, Clone)]
pub struct WireContext<'a> {
    attrs: SmallVec<[Entry<'a>; INLINE]>,
    /// The JSON view, when the walk built it ([`WireContext::decode_with_json`]).
    json: Option<Map<String, J>>,
}

/// One top-level attribute: its name, its value as the engine sees it, and the
/// encoded map entry (read again only for [`Context::json`]).
#[derive(Debug, Clone, Copy)]
struct Entry<'a> {
    name: &'a str,
    attr: Attr<'a>,
    entry: &'a [u8],
}

/// Why a context was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextError {
    /// The bytes are not a valid `google.protobuf.Struct` encoding.
    Wire(&'static str),
    /// Valid, but over a limit or holding something no JSON value can be.
    Limit(LimitError),
}

impl std::fmt::Display for ContextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContextError::Wire(why) => write!(
                f,
                "malformed request: field `context` is not a google.protobuf.Struct: {why}"
            ),
            ContextError::Limit(e) => e.fmt(f),
        }
    }
}

impl From<ContextError> for Status {
    fn from(e: ContextError) -> Status {
        Status::invalid_argument(e.to_string())
    }
}

impl From<LimitError> for ContextError {
    fn from(e: LimitError) -> Self {
        ContextError::Limit(e)
    }
}

type Result<T> = std::result::Result<T, ContextError>;

impl<'a> WireContext<'a> {
    /// Reads the occurrences of a context field (see
    /// [`super::request::ContextBytes`]; flagd's request has one, a `&[u8]`)
    /// under `limits`.
    pub fn decode<B: AsRef<[u8]>>(chunks: &'a [B], limits: &Limits) -> Result<WireContext<'a>> {
        Self::read(chunks, limits, None)
    }

    /// [`WireContext::decode`], building the [`Context::json`] view in the
    /// same walk: for a caller that will need it (a flagd flag with
    /// targeting), the bytes are read once instead of twice.
    pub fn decode_with_json<B: AsRef<[u8]>>(
        chunks: &'a [B],
        limits: &Limits,
    ) -> Result<WireContext<'a>> {
        Self::read(chunks, limits, Some(Map::new()))
    }

    fn read<B: AsRef<[u8]>>(
        chunks: &'a [B],
        limits: &Limits,
        json: Option<Map<String, J>>,
    ) -> Result<WireContext<'a>> {
        let mut out = WireContext {
            attrs: SmallVec::new(),
            json,
        };
        let mut walk = Walk::new(limits);
        for chunk in chunks {
            out.read_struct(chunk.as_ref(), &mut walk)?;
        }
        if let Some(m) = &mut out.json {
            m.sort_keys();
        }
        Ok(out)
    }

    /// The number of distinct top-level attributes.
    pub fn len(&self) -> usize {
        self.attrs.len()
    }

    /// Whether the context has no attributes.
    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty()
    }

    fn read_struct(&mut self, mut buf: &'a [u8], walk: &mut Walk<'_, 'a>) -> Result<()> {
        let limits = walk.limits;
        // One UTF-8 check of the whole Struct instead of one per name and
        // string value: tags and one-byte lengths are ASCII, so a Struct of
        // strings, booleans and nulls is valid UTF-8 when its strings are
        // ([`Walk::utf8`]). A number's bytes usually are not: then each entry
        // is checked whole, and a string in an entry that fails on its own.
        let whole = std::str::from_utf8(buf).ok();
        while !buf.is_empty() {
            let (tag, wt) = key(&mut buf)?;
            if tag != 1 {
                skip(wt, tag, &mut buf)?;
                continue;
            }
            let entry = delimited(wt, &mut buf)?;
            walk.text = whole.unwrap_or_else(|| std::str::from_utf8(entry).unwrap_or(""));
            let check_name = |name: &str| {
                if name.len() > limits.max_attribute_name_bytes {
                    return Err(LimitError::AttributeName {
                        got: name.len(),
                        limit: limits.max_attribute_name_bytes,
                    }
                    .into());
                }
                Ok(())
            };
            // The common shape is read without the general walk (which builds
            // the JSON view when asked for it); the same checks follow in the
            // same order: the name, its length, the value, the totals.
            let simple = match self.json {
                None => scalar_entry(entry),
                Some(_) => None,
            };
            let (name, kind) = match (simple, &mut self.json) {
                (Some((name, scalar)), _) => {
                    let name = walk.utf8(name)?;
                    check_name(name)?;
                    let kind = match scalar {
                        Scalar::Str(b) => Kind::Str(walk.utf8(b)?),
                        Scalar::Bool(b) => Kind::Bool(b),
                        Scalar::Null => Kind::Null,
                        Scalar::Num(n) => Kind::Num(n),
                    };
                    walk.check(kind);
                    walk.count(name.len() + kind.scalar_bytes())?;
                    walk.finish_attribute(name)?;
                    (name, kind)
                }
                (None, None) => {
                    let (name, kind, _) = walk.entry(entry, 2, check_name, None)?;
                    walk.count(name.len() + kind.scalar_bytes())?;
                    walk.finish_attribute(name)?;
                    (name, kind)
                }
                (None, Some(m)) => {
                    let mut json = J::Null;
                    let (name, kind, _) = walk.entry(entry, 2, check_name, Some(&mut json))?;
                    walk.count(name.len() + kind.scalar_bytes())?;
                    walk.finish_attribute(name)?;
                    // A later duplicate replaces the value, as in prost's map.
                    m.insert(name.to_owned(), json);
                    (name, kind)
                }
            };
            let attr = kind.attr();
            // A name whose length (modulo 64) no earlier name had is new:
            // the search for a duplicate runs only when one may exist.
            let len_bit = 1u64 << (name.len() % 64);
            let earlier = walk.name_lens & len_bit != 0;
            walk.name_lens |= len_bit;
            let dup = match earlier {
                true => self.attrs.iter_mut().find(|e| same_name(e.name, name)),
                false => None,
            };
            match dup {
                Some(e) => *e = Entry { name, attr, entry },
                None => {
                    if self.attrs.len() == limits.max_context_attributes {
                        return Err(LimitError::ContextAttributes {
                            got: self.attrs.len() + 1 + count_entries(buf),
                            limit: limits.max_context_attributes,
                        }
                        .into());
                    }
                    self.attrs.push(Entry { name, attr, entry });
                }
            }
        }
        Ok(())
    }
}

impl Context for WireContext<'_> {
    #[inline]
    fn get(&self, name: &str) -> Option<Attr<'_>> {
        self.attrs
            .iter()
            .find(|e| same_name(e.name, name))
            .map(|e| e.attr)
    }

    /// One walk for every name (names are distinct here: a later duplicate
    /// replaced the earlier entry when decoded).
    #[inline]
    fn get_reads<'s>(&'s self, reads: &Reads, out: &mut [Option<Attr<'s>>]) {
        gather(
            reads,
            // The entry by reference: its value is copied only when read.
            self.attrs.iter().map(|e| (e.name, e)),
            |e, slot| *slot = Some(e.attr),
            out,
        )
    }

    /// Only flagd-format targeting asks for this (once per flag with
    /// targeting); cohortd.v1 never does on its hot path. Borrowed when the
    /// decoding walk built it; otherwise built here by walking each checked
    /// entry again through the same walk (its values were checked when
    /// decoded, so nothing fails). Keys are sorted at every level: the order
    /// of the `BTreeMap` a prost-decoded `Struct` is, which
    /// `convert::struct_to_json` keeps.
    fn json(&self) -> std::borrow::Cow<'_, Map<String, J>> {
        if let Some(m) = &self.json {
            return std::borrow::Cow::Borrowed(m);
        }
        let mut m = Map::with_capacity(self.attrs.len());
        let mut walk = Walk::new(&CHECKED);
        for e in &self.attrs {
            let mut value = J::Null;
            // Cannot fail: the same walk accepted these bytes under limits.
            let _ = walk.entry(e.entry, 2, |_| Ok(()), Some(&mut value));
            m.insert(e.name.to_owned(), value);
        }
        m.sort_keys();
        std::borrow::Cow::Owned(m)
    }
}

/// A `Value`'s kind, borrowed from the buffer.
#[derive(Debug, Clone, Copy)]
enum Kind<'a> {
    None,
    Null,
    Num(f64),
    Str(&'a str),
    Bool(bool),
    Struct,
    List,
}

impl<'a> Kind<'a> {
    /// Bytes a value counts for in the context total: a string its length,
    /// anything else 8 (as [`Limits::check_context`] counts).
    fn scalar_bytes(&self) -> usize {
        match self {
            Kind::Str(s) => s.len(),
            _ => 8,
        }
    }

    fn attr(self) -> Attr<'a> {
        match self {
            Kind::Str(s) => Attr::Str(s),
            Kind::Num(n) => Attr::Num(n),
            Kind::Bool(b) => Attr::Bool(b),
            Kind::Null | Kind::None => Attr::Null,
            Kind::Struct | Kind::List => Attr::Other,
        }
    }
}

/// The running totals and the current attribute's findings while walking.
struct Walk<'l, 'a> {
    limits: &'l Limits,
    /// Valid UTF-8 around the bytes being walked (the whole Struct or the
    /// current entry), or empty: strings inside it are checked by
    /// [`Walk::utf8`] without reading them again.
    text: &'a str,
    /// Bit `len % 64` set for each top-level name length seen so far.
    name_lens: u64,
    nodes: usize,
    bytes: usize,
    /// Longest string (values, nested names) in the current attribute.
    longest: usize,
    /// Why the current attribute is malformed, if it is.
    malformed: Option<&'static str>,
}

impl<'l, 'a> Walk<'l, 'a> {
    fn new(limits: &'l Limits) -> Self {
        Walk {
            limits,
            text: "",
            name_lens: 0,
            nodes: 0,
            bytes: 0,
            longest: 0,
            malformed: None,
        }
    }

    /// Counts one value of `bytes` towards the context totals.
    fn count(&mut self, bytes: usize) -> Result<()> {
        self.nodes += 1;
        self.bytes += bytes;
        if self.nodes > self.limits.max_context_nodes {
            return Err(LimitError::ContextTotal {
                what: "values",
                limit: self.limits.max_context_nodes,
                flag: "--max-context-nodes",
            }
            .into());
        }
        if self.bytes > self.limits.max_context_bytes {
            return Err(LimitError::ContextTotal {
                what: "bytes",
                limit: self.limits.max_context_bytes,
                flag: "--max-context-bytes",
            }
            .into());
        }
        Ok(())
    }

    /// Reports what the walk of the top-level attribute `name` found.
    fn finish_attribute(&mut self, name: &str) -> Result<()> {
        let (longest, malformed) = (self.longest, self.malformed.take());
        self.longest = 0;
        if let Some(why) = malformed {
            return Err(LimitError::Malformed {
                attribute: truncate(name, 64),
                why,
            }
            .into());
        }
        if longest > self.limits.max_string_value_bytes {
            return Err(LimitError::StringValue {
                attribute: truncate(name, 64),
                got: longest,
                limit: self.limits.max_string_value_bytes,
            }
            .into());
        }
        Ok(())
    }

    /// A map entry (`string key = 1; Value value = 2;`) at `level`: its key,
    /// its value's kind and the encoded value. `check_name` runs before the
    /// value is walked (the top level checks the name's length first). With
    /// `json`, the value's JSON (every occurrence merged) is written there.
    fn entry(
        &mut self,
        mut buf: &'a [u8],
        level: u32,
        check_name: impl FnOnce(&str) -> Result<()>,
        mut json: Option<&mut J>,
    ) -> Result<(&'a str, Kind<'a>, &'a [u8])> {
        deeper(level)?;
        let (mut name, mut value) = ("", None);
        while !buf.is_empty() {
            match key(&mut buf)? {
                (1, wt) => name = self.utf8(delimited(wt, &mut buf)?)?,
                (2, wt) => {
                    // prost merges every occurrence, so every one must be valid;
                    // an earlier one is checked and counted here, the last below.
                    if let Some(earlier) = value.replace(delimited(wt, &mut buf)?) {
                        self.value(earlier, level + 1, json.as_deref_mut())?;
                    }
                }
                (tag, wt) => skip(wt, tag, &mut buf)?,
            }
        }
        check_name(name)?;
        let Some(value) = value else {
            self.check(Kind::None);
            return Ok((name, Kind::None, &[]));
        };
        Ok((name, self.value(value, level + 1, json)?, value))
    }

    /// A `Value` at `level`: its kind (the last oneof member on the wire); a
    /// nested struct or list is walked and counted. With `json`, the value is
    /// merged into it as prost merges a message that occurs again: the last
    /// oneof member wins, but a struct merges into a struct (a name given
    /// again replaces its value) and a list extends a list.
    fn value(
        &mut self,
        mut buf: &'a [u8],
        level: u32,
        mut json: Option<&mut J>,
    ) -> Result<Kind<'a>> {
        deeper(level)?;
        let mut kind = Kind::None;
        while !buf.is_empty() {
            kind = match key(&mut buf)? {
                (1, wt) => {
                    varint(wt, &mut buf)?;
                    Kind::Null
                }
                (2, wt) => Kind::Num(fixed64(wt, &mut buf)?),
                (3, wt) => Kind::Str(self.utf8(delimited(wt, &mut buf)?)?),
                (4, wt) => Kind::Bool(varint(wt, &mut buf)? != 0),
                (5, wt) => {
                    let s = delimited(wt, &mut buf)?;
                    match json.as_deref_mut() {
                        Some(out) => {
                            let mut m = match std::mem::take(out) {
                                J::Object(m) => m,
                                _ => Map::new(),
                            };
                            self.nested_struct(s, level + 1, Some(&mut m))?;
                            *out = J::Object(m);
                        }
                        None => self.nested_struct(s, level + 1, None)?,
                    }
                    Kind::Struct
                }
                (6, wt) => {
                    let l = delimited(wt, &mut buf)?;
                    match json.as_deref_mut() {
                        Some(out) => {
                            let mut items = match std::mem::take(out) {
                                J::Array(items) => items,
                                _ => Vec::new(),
                            };
                            self.list(l, level + 1, Some(&mut items))?;
                            *out = J::Array(items);
                        }
                        None => self.list(l, level + 1, None)?,
                    }
                    Kind::List
                }
                (tag, wt) => {
                    skip(wt, tag, &mut buf)?;
                    continue;
                }
            };
            if let Some(out) = json.as_deref_mut() {
                match kind {
                    Kind::Null => *out = J::Null,
                    Kind::Num(n) => *out = number_to_json(n),
                    Kind::Str(s) => *out = J::String(s.to_owned()),
                    Kind::Bool(b) => *out = J::Bool(b),
                    Kind::None | Kind::Struct | Kind::List => {}
                }
            }
        }
        self.check(kind);
        Ok(kind)
    }

    /// `b` as a string, if it is valid UTF-8. Inside [`Walk::text`] (valid
    /// UTF-8) a range is valid exactly when both its ends are character
    /// boundaries, which `str::get` checks; anywhere else, or when that fails,
    /// `b` is checked on its own (so the answer is always `from_utf8`'s).
    #[inline]
    fn utf8(&self, b: &'a [u8]) -> Result<&'a str> {
        let start = (b.as_ptr() as usize).wrapping_sub(self.text.as_ptr() as usize);
        let within = start
            .checked_add(b.len())
            .and_then(|end| self.text.get(start..end));
        match within {
            Some(s) => Ok(s),
            None => utf8(b),
        }
    }

    /// Records what a value makes of the current attribute: its string length,
    /// or why it is malformed.
    fn check(&mut self, kind: Kind<'_>) {
        match kind {
            Kind::None => self.malformed = Some("a value with no kind set"),
            Kind::Num(n) if !n.is_finite() => self.malformed = Some("a number that is not finite"),
            Kind::Str(s) => self.longest = self.longest.max(s.len()),
            _ => {}
        }
    }

    /// A nested `Struct`; with `json`, its entries are inserted there (keys
    /// sorted, as `convert::struct_to_json` gives them).
    fn nested_struct(
        &mut self,
        mut buf: &'a [u8],
        level: u32,
        mut json: Option<&mut Map<String, J>>,
    ) -> Result<()> {
        deeper(level)?;
        while !buf.is_empty() {
            match key(&mut buf)? {
                (1, wt) => {
                    let mut value = J::Null;
                    let out = json.is_some().then_some(&mut value);
                    let entry = delimited(wt, &mut buf)?;
                    let (name, kind, _) = self.entry(entry, level + 1, |_| Ok(()), out)?;
                    self.longest = self.longest.max(name.len());
                    self.count(name.len() + kind.scalar_bytes())?;
                    if let Some(m) = json.as_deref_mut() {
                        m.insert(name.to_owned(), value);
                    }
                }
                (tag, wt) => skip(wt, tag, &mut buf)?,
            }
        }
        if let Some(m) = json {
            m.sort_keys();
        }
        Ok(())
    }

    /// A `ListValue`; with `json`, its values are appended there.
    fn list(&mut self, mut buf: &'a [u8], level: u32, mut json: Option<&mut Vec<J>>) -> Result<()> {
        deeper(level)?;
        while !buf.is_empty() {
            match key(&mut buf)? {
                (1, wt) => {
                    let mut value = J::Null;
                    let out = json.is_some().then_some(&mut value);
                    let kind = self.value(delimited(wt, &mut buf)?, level + 1, out)?;
                    self.count(kind.scalar_bytes())?;
                    if let Some(items) = json.as_deref_mut() {
                        items.push(value);
                    }
                }
                (tag, wt) => skip(wt, tag, &mut buf)?,
            }
        }
        Ok(())
    }
}

fn deeper(level: u32) -> Result<()> {
    if level > MAX_LEVEL {
        return Err(ContextError::Wire("nested more than 100 messages deep"));
    }
    Ok(())
}

/// A field key. One-byte keys with a valid wire type (fields 1 to 15: every
/// field of `Struct`, `Value` and `ListValue`) are read here, inline; any
/// other goes to prost, which accepts and refuses exactly as before.
#[inline(always)]
fn key(buf: &mut &[u8]) -> Result<(u32, WireType)> {
    if let Some((&b, rest)) = buf.split_first() {
        if (8..0x80).contains(&b) {
            if let Ok(wt) = WireType::try_from(u64::from(b & 7)) {
                *buf = rest;
                return Ok((u32::from(b >> 3), wt));
            }
        }
    }
    decode_key(buf).map_err(|_| ContextError::Wire("invalid field key"))
}

/// A varint, the one-byte ones (lengths below 128, booleans) read inline.
#[inline(always)]
fn varint_fast(buf: &mut &[u8]) -> std::result::Result<u64, prost::DecodeError> {
    if let Some((&b, rest)) = buf.split_first() {
        if b < 0x80 {
            *buf = rest;
            return Ok(u64::from(b));
        }
    }
    decode_varint(buf)
}

fn skip(wt: WireType, tag: u32, buf: &mut &[u8]) -> Result<()> {
    skip_field(wt, tag, buf, DecodeContext::default())
        .map_err(|_| ContextError::Wire("truncated or invalid unknown field"))
}

fn varint(wt: WireType, buf: &mut &[u8]) -> Result<u64> {
    if wt != WireType::Varint {
        return Err(ContextError::Wire("wrong wire type for a varint field"));
    }
    varint_fast(buf).map_err(|_| ContextError::Wire("invalid varint"))
}

fn fixed64(wt: WireType, buf: &mut &[u8]) -> Result<f64> {
    if wt != WireType::SixtyFourBit {
        return Err(ContextError::Wire("wrong wire type for number_value"));
    }
    let Some((bytes, rest)) = buf.split_first_chunk::<8>() else {
        return Err(ContextError::Wire("truncated number_value"));
    };
    *buf = rest;
    Ok(f64::from_le_bytes(*bytes))
}

#[inline(always)]
fn delimited<'a>(wt: WireType, buf: &mut &'a [u8]) -> Result<&'a [u8]> {
    if wt != WireType::LengthDelimited {
        return Err(ContextError::Wire(
            "wrong wire type for a string or message field",
        ));
    }
    let len = varint_fast(buf).map_err(|_| ContextError::Wire("invalid length"))?;
    if len > buf.len() as u64 {
        return Err(ContextError::Wire("a length runs past the end"));
    }
    let (out, rest) = buf.split_at(len as usize);
    *buf = rest;
    Ok(out)
}

fn utf8(b: &[u8]) -> Result<&str> {
    std::str::from_utf8(b).map_err(|_| ContextError::Wire("a string is not valid UTF-8"))
}

/// Counts the map entries left in a Struct's bytes, for the error that names
/// how many attributes were sent (duplicates beyond the limit included).
fn count_entries(mut buf: &[u8]) -> usize {
    let mut n = 0;
    while !buf.is_empty() {
        let Ok((tag, wt)) = key(&mut buf) else {
            break;
        };
        n += usize::from(tag == 1);
        if skip(wt, tag, &mut buf).is_err() {
            break;
        }
    }
    n
}
