//! `flagd.evaluation.v1.Service`: the older contract (plain `value`/`variant`
//! fields, plus `ResolveAll`), still used by older providers and web tooling.

use std::sync::Arc;

use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::pb_v1 as pb;
use super::resolve::{FlagValue, Resolver, ValueType};
use super::{events, FlagdOptions};

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

/// `Resolver::resolve` converts to the requested type, so this cannot happen; it
/// is an internal error rather than a panic all the same.
pub(super) fn wrong_type() -> Status {
    Status::internal("resolved value has the wrong type")
}

#[tonic::async_trait]
impl pb::service_server::Service for EvaluationV1 {
    async fn resolve_all(
        &self,
        req: Request<pb::ResolveAllRequest>,
    ) -> Result<Response<pb::ResolveAllResponse>, Status> {
        let (flags, metadata) = self.resolver.resolve_all(req.get_ref().context.as_ref())?;
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

    async fn resolve_boolean(
        &self,
        req: Request<pb::ResolveBooleanRequest>,
    ) -> Result<Response<pb::ResolveBooleanResponse>, Status> {
        let m = req.get_ref();
        let r = self
            .resolver
            .resolve(&m.flag_key, m.context.as_ref(), ValueType::Boolean)?;
        let FlagValue::Bool(value) = r.value else {
            return Err(wrong_type());
        };
        Ok(Response::new(pb::ResolveBooleanResponse {
            value,
            reason: r.reason.into(),
            variant: r.variant,
            metadata: Some(r.metadata),
        }))
    }

    async fn resolve_string(
        &self,
        req: Request<pb::ResolveStringRequest>,
    ) -> Result<Response<pb::ResolveStringResponse>, Status> {
        let m = req.get_ref();
        let r = self
            .resolver
            .resolve(&m.flag_key, m.context.as_ref(), ValueType::String)?;
        let FlagValue::String(value) = r.value else {
            return Err(wrong_type());
        };
        Ok(Response::new(pb::ResolveStringResponse {
            value,
            reason: r.reason.into(),
            variant: r.variant,
            metadata: Some(r.metadata),
        }))
    }

    async fn resolve_float(
        &self,
        req: Request<pb::ResolveFloatRequest>,
    ) -> Result<Response<pb::ResolveFloatResponse>, Status> {
        let m = req.get_ref();
        let r = self
            .resolver
            .resolve(&m.flag_key, m.context.as_ref(), ValueType::Float)?;
        let FlagValue::Float(value) = r.value else {
            return Err(wrong_type());
        };
        Ok(Response::new(pb::ResolveFloatResponse {
            value,
            reason: r.reason.into(),
            variant: r.variant,
            metadata: Some(r.metadata),
        }))
    }

    async fn resolve_int(
        &self,
        req: Request<pb::ResolveIntRequest>,
    ) -> Result<Response<pb::ResolveIntResponse>, Status> {
        let m = req.get_ref();
        let r = self
            .resolver
            .resolve(&m.flag_key, m.context.as_ref(), ValueType::Integer)?;
        let FlagValue::Int(value) = r.value else {
            return Err(wrong_type());
        };
        Ok(Response::new(pb::ResolveIntResponse {
            value,
            reason: r.reason.into(),
            variant: r.variant,
            metadata: Some(r.metadata),
        }))
    }

    async fn resolve_object(
        &self,
        req: Request<pb::ResolveObjectRequest>,
    ) -> Result<Response<pb::ResolveObjectResponse>, Status> {
        let m = req.get_ref();
        let r = self
            .resolver
            .resolve(&m.flag_key, m.context.as_ref(), ValueType::Object)?;
        let FlagValue::Object(value) = r.value else {
            return Err(wrong_type());
        };
        Ok(Response::new(pb::ResolveObjectResponse {
            value: Some(value),
            reason: r.reason.into(),
            variant: r.variant,
            metadata: Some(r.metadata),
        }))
    }

    type EventStreamStream = ReceiverStream<Result<pb::EventStreamResponse, Status>>;

    async fn event_stream(
        &self,
        _: Request<pb::EventStreamRequest>,
    ) -> Result<Response<Self::EventStreamStream>, Status> {
        Ok(Response::new(events::stream(
            self.resolver.store().clone(),
            self.opts.keep_alive,
            self.opts.stop.as_ref(),
            |ty, data| pb::EventStreamResponse {
                r#type: ty.into(),
                data,
            },
        )))
    }
}
