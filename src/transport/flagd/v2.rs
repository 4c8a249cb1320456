//! `flagd.evaluation.v2.Service`: the contract current flagd providers call.
//! `value` and `variant` are optional on the wire; cohortd always sets both, since
//! every outcome serves a configured variant (a stopped experiment serves its
//! default variant, which is what makes a kill switch work).

use std::sync::Arc;

use super::pb_v2 as pb;
use super::resolve::Resolver;
use super::service::evaluation_service;
use super::wire_v2 as wire;
use super::FlagdOptions;

/// The v2 service implementation.
#[derive(Debug, Clone)]
pub struct EvaluationV2 {
    resolver: Arc<Resolver>,
    opts: FlagdOptions,
}

impl EvaluationV2 {
    /// A v2 service over a shared resolver.
    pub fn new(resolver: Arc<Resolver>, opts: FlagdOptions) -> Self {
        EvaluationV2 { resolver, opts }
    }
}

evaluation_service!(EvaluationV2, pb, wire, shape: V2, extra: {});
