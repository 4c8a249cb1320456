//! `flagd.evaluation.v1.Service`: the older contract (plain `value`/`variant`
//! fields, plus `ResolveAll`), still used by older providers and web tooling.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::pb_v1 as pb;
use super::resolve::{FlagValue, Resolver};
use super::service::evaluation_service;
use super::wire_v1 as wire;
use super::FlagdOptions;

/// The v1 service implementation.
#[derive(Debug, Clone)]
pub struct EvaluationV1 {
    resolver: Arc<Resolver>,
    opts: FlagdOptions,
}

impl EvaluationV1 {
    /// A v1 service over a shared resolver.
    pub fn new(resolver: Arc<Resolver>, opts: FlagdOptions) -> Self {
        EvaluationV1 { resolver, opts }
    }
}

evaluation_service!(EvaluationV1, pb, wire, shape: V1, extra: {
    async fn resolve_all(
        &self,
        req: Request<pb::ResolveAllRequest>,
    ) -> Result<Response<pb::ResolveAllResponse>, Status> {
        let sel = super::resolve::request_selector(req.metadata());
        let (flags, metadata) = self
            .resolver
            .resolve_all(req.get_ref().context.as_ref(), sel.as_ref())?;
        let flags = flags
            .into_iter()
            .map(|(key, f)| {
                let value = match f.value {
                    FlagValue::Bool(b) => pb::any_flag::Value::BoolValue(b),
                    FlagValue::String(s) => pb::any_flag::Value::StringValue(s),
                    FlagValue::Int(i) => pb::any_flag::Value::DoubleValue(i as f64),
                    FlagValue::Float(x) => pb::any_flag::Value::DoubleValue(x),
                    FlagValue::Object(o) => pb::any_flag::Value::ObjectValue(o),
                };
                let flag = pb::AnyFlag {
                    reason: f.reason.into(),
                    variant: f.variant,
                    value: Some(value),
                    metadata: Some(f.metadata),
                };
                (key, flag)
            })
            .collect();
        Ok(Response::new(pb::ResolveAllResponse {
            flags,
            metadata: Some(metadata),
        }))
    }
});
