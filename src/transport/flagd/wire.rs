//! A flagd `Resolve*` request read straight off the wire.
//!
//! Every typed flagd request is `{ string flag_key = 1; google.protobuf.Struct
//! context = 2; }`. Decoded by prost, the context becomes a `Struct` (a
//! `BTreeMap` of boxed `Value`s), which the flagd evaluator then copies into the
//! `serde_json` object JSONLogic reads: two trees built per request, one thrown
//! away. Here the server reads the same bytes with `context` declared as
//! `bytes` (same field number, same wire format: a length-delimited field), and
//! [`decode_context`] builds the JSON object directly from them. Clients see the
//! unchanged `.proto`; only the server's view of the message differs.
//!
//! The JSON built is exactly what `convert::struct_to_json` makes of the
//! prost-decoded `Struct` (keys sorted, integral numbers as integers, later
//! duplicates winning, a repeated `struct_value`/`list_value` merged as prost
//! merges it), and the limits are checked on it exactly as
//! `Limits::check_context` checks a `Struct` (tests/flagd_wire_decode.rs holds the
//! two paths to the same answers). Two things a `Struct` can carry and JSON
//! cannot, a value with no kind and a non-finite number, are refused while
//! decoding with the same limit error `check_context` gives (the resolver
//! answers it as INVALID_CONTEXT, as before). Bytes that are not a `Struct` at
//! all are a [`ContextError::Wire`] naming the field and the offset (the
//! resolver answers INVALID_ARGUMENT).

use serde_json::{Map, Number, Value};

use crate::transport::limits::{truncate, LimitError, Limits};

/// The server's view of `ResolveBooleanRequest`, `ResolveStringRequest`,
/// `ResolveFloatRequest`, `ResolveIntRequest` and `ResolveObjectRequest` (v1 and
/// v2 alike): the context is left as its encoded bytes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResolveRequest {
    /// The flag to resolve.
    #[prost(string, tag = "1")]
    pub flag_key: String,
    /// The encoded `google.protobuf.Struct` (empty when absent).
    #[prost(bytes = "vec", tag = "2")]
    pub context: Vec<u8>,
}

/// Why a context could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    /// The bytes are not an encoded `google.protobuf.Struct`.
    #[error("malformed request: field `context` is not a google.protobuf.Struct: {why} at byte {at} of {len}")]
    Wire {
        /// What is wrong.
        why: &'static str,
        /// Offset into the context's bytes.
        at: usize,
        /// The context's length in bytes.
        len: usize,
    },
    /// A well-formed `Struct` that holds no JSON value, or one over a limit.
    #[error(transparent)]
    Limit(#[from] LimitError),
}

/// prost's nesting limit: a message nested deeper than this fails to decode.
/// The request itself is level 0, so the context starts one level in.
const RECURSION_LIMIT: u32 = 100;

/// Decodes an encoded `google.protobuf.Struct` into the JSON object the flagd
/// evaluator reads, then checks it against `limits` as `check_context` would.
/// The message size was already bounded by tonic, so the walk is too.
pub fn decode_context(bytes: &[u8], limits: &Limits) -> Result<Map<String, Value>, ContextError> {
    let mut r = Reader {
        buf: bytes,
        pos: 0,
        len: bytes.len(),
    };
    let mut out = Map::new();
    r.merge_struct(&mut out, RECURSION_LIMIT - 1, None)?;
    check(&out, limits)?;
    Ok(out)
}

/// A cursor over one message's bytes (`pos` counts from the context's start,
/// for error offsets).
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    len: usize,
}

type Wire<T> = Result<T, ContextError>;

impl<'a> Reader<'a> {
    fn err<T>(&self, why: &'static str) -> Wire<T> {
        Err(ContextError::Wire {
            why,
            at: self.pos,
            len: self.len,
        })
    }

    fn varint(&mut self) -> Wire<u64> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some((&b, rest)) = self.buf.split_first() else {
                return self.err("truncated varint");
            };
            self.buf = rest;
            self.pos += 1;
            // The tenth byte may carry only the top bit (prost's rule).
            if i == 9 && b > 1 {
                return self.err("varint over 64 bits");
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        self.err("varint over 64 bits")
    }

    /// A field's number and wire type; `None` at the end of the message.
    fn key(&mut self) -> Wire<Option<(u32, u8)>> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let k = self.varint()?;
        if k > u64::from(u32::MAX) {
            return self.err("invalid field key");
        }
        let (tag, wt) = ((k >> 3) as u32, (k & 7) as u8);
        if tag == 0 {
            return self.err("field number 0");
        }
        Ok(Some((tag, wt)))
    }

    fn take(&mut self, n: usize) -> Wire<Reader<'a>> {
        if n > self.buf.len() {
            return self.err("length past the end");
        }
        let (head, rest) = self.buf.split_at(n);
        let sub = Reader {
            buf: head,
            pos: self.pos,
            len: self.len,
        };
        self.buf = rest;
        self.pos += n;
        Ok(sub)
    }

    fn delimited(&mut self, wt: u8) -> Wire<Reader<'a>> {
        if wt != 2 {
            return self.err("wrong wire type for a length-delimited field");
        }
        let n = self.varint()?;
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        self.take(n)
    }

    fn string(&mut self, wt: u8) -> Wire<&'a str> {
        let sub = self.delimited(wt)?;
        match std::str::from_utf8(sub.buf) {
            Ok(s) => Ok(s),
            Err(_) => Err(ContextError::Wire {
                why: "a string that is not UTF-8",
                at: sub.pos,
                len: self.len,
            }),
        }
    }

    /// Skips an unknown field, as prost does (groups included).
    fn skip(&mut self, tag: u32, wt: u8, depth: u32) -> Wire<()> {
        match wt {
            0 => self.varint().map(drop),
            1 => self.take(8).map(drop),
            2 => self.delimited(2).map(drop),
            5 => self.take(4).map(drop),
            3 => {
                if depth == 0 {
                    return self.err("nested too deeply");
                }
                loop {
                    match self.key()? {
                        None => return self.err("unterminated group"),
                        Some((t, 4)) if t == tag => return Ok(()),
                        Some((_, 4)) => return self.err("mismatched end group"),
                        Some((t, w)) => self.skip(t, w, depth - 1)?,
                    }
                }
            }
            _ => self.err("invalid wire type"),
        }
    }

    /// The next element of the message's repeated field 1 (a `Struct`'s
    /// entries, a `ListValue`'s values), skipping other fields; `None` at the
    /// end of the message.
    fn next_repeated(&mut self, depth: u32) -> Wire<Option<Reader<'a>>> {
        while let Some((tag, wt)) = self.key()? {
            if tag != 1 {
                self.skip(tag, wt, depth)?;
                continue;
            }
            if depth == 0 {
                return self.err("nested too deeply");
            }
            return self.delimited(wt).map(Some);
        }
        Ok(None)
    }

    /// Merges a `Struct`'s entries into `out` (later duplicates win). `attr` is
    /// the top-level attribute being read (`None` at the top level).
    fn merge_struct(
        &mut self,
        out: &mut Map<String, Value>,
        depth: u32,
        attr: Option<&str>,
    ) -> Wire<()> {
        while let Some(mut entry) = self.next_repeated(depth)? {
            let (mut key, mut value) = ("", None);
            while let Some((t, w)) = entry.key()? {
                match t {
                    1 => key = entry.string(w)?,
                    2 => value = Some(entry.delimited(w)?),
                    _ => entry.skip(t, w, depth - 1)?,
                }
            }
            let top = attr.unwrap_or(key);
            let v = match value {
                Some(v) if depth < 2 => return v.err("nested too deeply"),
                Some(mut v) => v.value(depth - 2, top)?,
                None => None,
            };
            let Some(v) = v else {
                return Err(malformed(top, "a value with no kind set"));
            };
            out.insert(key.to_owned(), v);
        }
        // The key order of the BTreeMap a prost-decoded Struct is.
        out.sort_keys();
        Ok(())
    }

    /// A `google.protobuf.Value`; `None` when no kind is set. A repeated kind
    /// replaces the previous one, except two structs or two lists, which merge.
    fn value(&mut self, depth: u32, attr: &str) -> Wire<Option<Value>> {
        let mut kind: Option<Value> = None;
        while let Some((tag, wt)) = self.key()? {
            match tag {
                1 => {
                    if wt != 0 {
                        return self.err("wrong wire type for null_value");
                    }
                    self.varint()?;
                    kind = Some(Value::Null);
                }
                2 => {
                    if wt != 1 {
                        return self.err("wrong wire type for number_value");
                    }
                    let b = self.take(8)?.buf;
                    let n = f64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
                    kind = Some(
                        number(n).ok_or_else(|| malformed(attr, "a number that is not finite"))?,
                    );
                }
                3 => kind = Some(Value::String(self.string(wt)?.to_owned())),
                4 => {
                    if wt != 0 {
                        return self.err("wrong wire type for bool_value");
                    }
                    kind = Some(Value::Bool(self.varint()? != 0));
                }
                5 | 6 if depth == 0 => return self.err("nested too deeply"),
                5 => {
                    let mut sub = self.delimited(wt)?;
                    if !matches!(kind, Some(Value::Object(_))) {
                        kind = Some(Value::Object(Map::new()));
                    }
                    if let Some(Value::Object(m)) = &mut kind {
                        sub.merge_struct(m, depth - 1, Some(attr))?;
                    }
                }
                6 => {
                    let mut sub = self.delimited(wt)?;
                    if !matches!(kind, Some(Value::Array(_))) {
                        kind = Some(Value::Array(Vec::new()));
                    }
                    if let Some(Value::Array(items)) = &mut kind {
                        sub.merge_list(items, depth - 1, attr)?;
                    }
                }
                _ => self.skip(tag, wt, depth)?,
            }
        }
        Ok(kind)
    }

    /// A `ListValue`'s elements, appended to `items`.
    fn merge_list(&mut self, items: &mut Vec<Value>, depth: u32, attr: &str) -> Wire<()> {
        while let Some(mut v) = self.next_repeated(depth)? {
            match v.value(depth - 1, attr)? {
                Some(v) => items.push(v),
                None => return Err(malformed(attr, "a value with no kind set")),
            }
        }
        Ok(())
    }
}

/// A protobuf double as JSON, as `convert::struct_to_json` writes it: integral
/// numbers as integers; `None` for NaN and infinities.
fn number(n: f64) -> Option<Value> {
    if !n.is_finite() {
        return None;
    }
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        return Some(Value::from(n as i64));
    }
    Number::from_f64(n).map(Value::Number)
}

fn malformed(attr: &str, why: &'static str) -> ContextError {
    ContextError::Limit(LimitError::Malformed {
        attribute: truncate(attr, 64),
        why,
    })
}

/// `Limits::check_context` on the decoded JSON: the same limits, the same
/// order (attributes in key order, as the `Struct`'s `BTreeMap` walks them),
/// the same errors. Keys are sorted here, which also gives the JSON the key
/// order `struct_to_json` gives.
fn check(ctx: &Map<String, Value>, limits: &Limits) -> Result<(), LimitError> {
    if ctx.len() > limits.max_context_attributes {
        return Err(LimitError::ContextAttributes {
            got: ctx.len(),
            limit: limits.max_context_attributes,
        });
    }
    let (mut nodes, mut bytes) = (0usize, 0usize);
    for (name, value) in ctx {
        nodes += 1;
        bytes += name.len();
        if name.len() > limits.max_attribute_name_bytes {
            return Err(LimitError::AttributeName {
                got: name.len(),
                limit: limits.max_attribute_name_bytes,
            });
        }
        let longest = scan(value, &mut nodes, &mut bytes, limits);
        if nodes > limits.max_context_nodes {
            return Err(LimitError::ContextTotal {
                what: "values",
                limit: limits.max_context_nodes,
                flag: "--max-context-nodes",
            });
        }
        if bytes > limits.max_context_bytes {
            return Err(LimitError::ContextTotal {
                what: "bytes",
                limit: limits.max_context_bytes,
                flag: "--max-context-bytes",
            });
        }
        if longest > limits.max_string_value_bytes {
            return Err(LimitError::StringValue {
                attribute: truncate(name, 64),
                got: longest,
                limit: limits.max_string_value_bytes,
            });
        }
    }
    Ok(())
}

fn scalar_bytes(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        _ => 8,
    }
}

/// The longest string (values and nested keys) in `v`, counting its values and
/// bytes into the totals as limits.rs does; iterative, stops once over a total.
fn scan(v: &Value, nodes: &mut usize, bytes: &mut usize, limits: &Limits) -> usize {
    *bytes += scalar_bytes(v);
    match v {
        Value::String(s) => return s.len(),
        Value::Array(_) | Value::Object(_) => {}
        _ => return 0,
    }
    let mut longest = 0;
    let mut stack = vec![v];
    while let Some(next) = stack.pop() {
        if *nodes > limits.max_context_nodes || *bytes > limits.max_context_bytes {
            break;
        }
        match next {
            Value::String(s) => longest = longest.max(s.len()),
            Value::Array(items) => {
                for item in items {
                    *nodes += 1;
                    *bytes += scalar_bytes(item);
                    stack.push(item);
                }
            }
            Value::Object(m) => {
                for (k, item) in m {
                    longest = longest.max(k.len());
                    *nodes += 1;
                    *bytes += k.len() + scalar_bytes(item);
                    stack.push(item);
                }
            }
            _ => {}
        }
    }
    longest
}
