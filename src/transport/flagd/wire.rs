//! A flagd `Resolve*` request read straight off the wire.
//!
//! Every typed flagd request is `{ string flag_key = 1; google.protobuf.Struct
//! context = 2; }`. Decoded by prost, the context becomes a `Struct` (a
//! `BTreeMap` of boxed `Value`s), which the flagd evaluator then copies into the
//! `serde_json` object JSONLogic reads: two trees built per request, one thrown
//! away. Here the server reads the same bytes with `context` declared as
//! `bytes` (same field number, same wire format: a length-delimited field), and
//! the resolver reads them with [`WireContext`], the one reader of `Struct`
//! wire bytes (shared with cohortd.v1's `Assign`): a flat borrowed context whose
//! JSON view, exactly what `convert::struct_to_json` makes of the prost-decoded
//! `Struct`, is built only for a flag with targeting. Clients see the unchanged
//! `.proto`; only the server's view of the message differs.
//!
//! The limits are those `Limits::check_context` applies to a `Struct`, with its
//! errors (the resolver answers them INVALID_CONTEXT, as before); bytes that
//! are not a `Struct` at all are a [`ContextError::Wire`] (INVALID_ARGUMENT).
//! tests/flagd_wire_decode.rs holds the two paths to the same answers.

pub use crate::transport::wire::context::{ContextError, WireContext};

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
