//! `flagd.evaluation.v2.Service`: the contract current flagd providers call.
//! `value` and `variant` are optional on the wire; cohortd always sets both, since
//! every outcome serves a configured variant (a stopped experiment serves its
//! default variant, which is what makes a kill switch work).

use std::sync::Arc;

use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::pb_v2 as pb;
use super::resolve::{FlagValue, Resolver, ValueType};
use super::v1::wrong_type;
use super::{events, FlagdOptions};

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

#[tonic::async_trait]
impl pb::service_server::Service for EvaluationV2 {
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
            value: Some(value),
            reason: r.reason.into(),
            variant: Some(r.variant),
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
            value: Some(value),
            reason: r.reason.into(),
            variant: Some(r.variant),
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
            value: Some(value),
            reason: r.reason.into(),
            variant: Some(r.variant),
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
            value: Some(value),
            reason: r.reason.into(),
            variant: Some(r.variant),
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
            variant: Some(r.variant),
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
