//! The hot cohortd.v1 calls (`Assign`, `AssignAll`) at the cost of the wire.
//!
//! Clients see the same `cohortd.v1` proto (reflection serves it unchanged);
//! only the server's view of two messages differs:
//!
//! * [`request`]: `AssignRequest` / `AssignAllRequest` decoded with the
//!   `google.protobuf.Struct` context kept as the bytes it arrived in (a message
//!   field is length-delimited on the wire, so this is wire-compatible);
//! * [`context`]: those bytes read into a flat, borrowed context (no map, no
//!   owned strings), with the same limits and malformed-input checks as the
//!   decoded `Struct` gets elsewhere (its common attribute shape recognised
//!   by `scalar_entry` without the general walk);
//! * [`reply`]: responses written from bytes encoded once per snapshot (the
//!   fields every call of an experiment shares) plus the two per-call fields.
//!
//! Protobuf decoders accept fields in any order and merge repeated occurrences
//! of a message field, which is what makes both halves byte-level compatible.

pub mod context;
pub mod reply;
pub mod request;
mod scalar_entry;

/// The generated server of `cohortd.v1.Assignment` (see `build.rs`): the
/// generated `pb` server with [`request`] and [`reply`] types for `Assign` and
/// `AssignAll`.
#[allow(missing_docs, clippy::all)]
pub mod server {
    include!(concat!(env!("OUT_DIR"), "/cohortd.v1.Assignment.rs"));
}
