//! cohortd: deterministic experiment assignment as a gRPC sidecar.
//!
//! The crate is laid out as the data flows:
//!
//! * [`config`]: the file format people write, and reading it from disk;
//! * [`snapshot`]: validated, compiled, immutable configs with a content version;
//! * [`engine`]: the pure, allocation-free evaluation of one experiment for one unit;
//! * [`reload`]: the lock-free store of the serving snapshot, and the watcher;
//! * [`transport`]: gRPC and HTTP at the edge, converting and calling the engine;
//! * [`exposure`]: exposure export beside the request path;
//! * [`safety`]: cohort safety: config diffs, the reload guard, ramp schedules, the schema;
//! * [`server`], [`metrics`], [`shutdown`]: assembling, observing and stopping `serve`;
//! * [`cli`]: the command line (`serve`, `validate`, `assign`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod config;
pub mod engine;
pub mod exposure;
pub mod metrics;
pub mod reload;
pub mod safety;
pub mod server;
pub mod shutdown;
pub mod snapshot;
pub mod state;
pub mod transport;

pub use engine::{Assignment, Context, EvalError, EvalOptions, Reason};
pub use snapshot::Snapshot;
