//! cohortd: deterministic experiment assignment as a gRPC sidecar.
//!
//! The crate is laid out as the data flows:
//!
//! * [`config`]: the file format people write, and reading it from disk;
//! * [`snapshot`]: validated, compiled, immutable configs with a content version;
//! * [`engine`]: the pure, allocation-free evaluation of one experiment for one unit;
//! * `cli`: offline tools (`validate`, `assign`) built on the same engine.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod config;
pub mod engine;
pub mod snapshot;

pub use engine::{Assignment, Context, EvalError, EvalOptions, Reason};
pub use snapshot::Snapshot;
