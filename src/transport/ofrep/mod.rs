//! OFREP, the OpenFeature Remote Evaluation Protocol (open-feature/protocol
//! `service/openapi.yaml`), on its own HTTP listener: OFREP providers (server
//! and web) evaluate cohortd experiments and flags without gRPC.
//!
//! * [`handlers`]: `POST /ofrep/v1/evaluate/flags/{key}` and the bulk
//!   `POST /ofrep/v1/evaluate/flags` (also with a trailing slash, as flagd);
//! * [`errors`]: the spec's status codes and error bodies;
//! * [`etag`]: bulk `ETag` / `If-None-Match`;
//! * [`evaluate`]: the one boundary to flag evaluation;
//! * [`stats`]: per-route metrics in `/metrics`.
//!
//! The router depends only on the store, the exposure sink, the limits and the
//! metrics registry; the composition point (`server::start`) binds it.

pub mod errors;
pub mod etag;
pub mod evaluate;
pub mod handlers;
pub mod stats;

use std::sync::Arc;

use axum::routing::post;
use axum::Router;

use crate::exposure::ExposureSink;
use crate::metrics::Metrics;
use crate::reload::Store;
use crate::transport::flagd::resolve::Resolver;
use crate::transport::limits::Limits;

/// The port flagd serves OFREP on, and cohortd's default.
pub const DEFAULT_PORT: u16 = 8016;

/// What every handler shares. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Shared {
    eval: evaluate::Evaluator,
    max_body: usize,
    stats: stats::Stats,
}

/// The OFREP routes over `store`. Requests obey `limits` as on gRPC (the body is
/// bounded by `max_message_bytes`); single-flag evaluations of enrolled units go
/// to `sink` as exposures with source `ofrep`.
pub fn router(
    store: Arc<Store>,
    sink: Arc<dyn ExposureSink>,
    limits: Limits,
    metrics: &Metrics,
) -> Router {
    let resolver = Arc::new(Resolver::new(store, sink, limits));
    let shared = Shared {
        eval: evaluate::Evaluator::new(resolver),
        max_body: limits.max_message_bytes,
        stats: stats::Stats::register(metrics),
    };
    Router::new()
        .route(stats::SINGLE, post(handlers::single))
        .route(stats::BULK, post(handlers::bulk))
        .route("/ofrep/v1/evaluate/flags/", post(handlers::bulk))
        .with_state(shared)
}
