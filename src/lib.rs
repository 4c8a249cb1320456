//! cohortd: deterministic experiment assignment as a gRPC sidecar.
//!
//! The crate is laid out as the data flows, each layer importing only the ones
//! above it in this list (`.ci/check-cycles.py` keeps it so):
//!
//! * [`config`]: the file format people write, reading it from disk, its schema;
//! * [`snapshot`]: validated, compiled, immutable configs with a content version
//!   (experiments, targeting, ramp schedules);
//! * [`engine`]: pure, allocation-free evaluation; [`engine::resolve`] is the one
//!   interface every transport calls, and where a new flag format joins;
//! * [`reload`]: the lock-free store of the serving snapshot, and the watcher;
//! * [`exposure`]: exposure export beside the request path ([`exposure::expose`]);
//! * [`state`]: what every request handler shares;
//! * [`transport`]: gRPC and HTTP at the edge, converting and calling the engine;
//! * [`server`], [`metrics`], [`shutdown`], [`signals`]: assembling, observing and stopping `serve`;
//! * [`safety`]: offline cohort-safety tooling (diff, exact fractions, guard);
//! * [`security`]: TLS, token auth and the ingest gate for every listener;
//! * [`analysis`]: `cohortd analyze`, turning exposures and outcomes into a decision;
//! * [`cli`]: the command line (`serve`, `validate`, `assign`, `diff`, `schema`, `analyze`).
//!
//! docs/architecture.md walks an `Assign` and a reload step by step.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod allocator;
pub mod analysis;
pub mod cli;
pub mod config;
pub mod engine;
pub mod exposure;
pub mod halves;
pub mod metrics;
pub mod priority;
pub mod reload;
pub mod safety;
pub mod security;
pub mod server;
pub mod shutdown;
pub mod signals;
pub mod snapshot;
pub mod state;
pub mod transport;

pub use engine::{Assignment, Context, EvalError, EvalOptions, Reason};
pub use snapshot::Snapshot;
