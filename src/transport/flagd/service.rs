//! What the flagd evaluation v1 and v2 services share, written once: the five
//! typed `Resolve*` methods and the event stream. The two protocols differ only
//! in whether `value` and `variant` are optional on the wire, so a service is
//! generated from its protobuf module and the wrapper of its optional fields
//! (`Some` for v2, `std::convert::identity` for v1), plus its own extra methods.

/// `Resolver::resolve` converts to the requested type, so this cannot happen; it
/// is an internal error rather than a panic all the same.
pub(super) fn wrong_type() -> tonic::Status {
    tonic::Status::internal("resolved value has the wrong type")
}

/// Implements `$pb::service_server::Service` for `$svc` (a struct with
/// `resolver: Arc<Resolver>` and `opts: FlagdOptions`). `$opt` wraps `value` and
/// `variant`; `$extra` are the protocol's other methods, verbatim.
macro_rules! evaluation_service {
    ($svc:ty, $pb:ident, opt: $opt:path, extra: { $($extra:tt)* }) => {
        evaluation_service!(@impl $svc, $pb, $opt, { $($extra)* },
            (resolve_boolean, ResolveBooleanRequest, ResolveBooleanResponse, Boolean, Bool, $opt),
            (resolve_string, ResolveStringRequest, ResolveStringResponse, String, String, $opt),
            (resolve_float, ResolveFloatRequest, ResolveFloatResponse, Float, Float, $opt),
            (resolve_int, ResolveIntRequest, ResolveIntResponse, Integer, Int, $opt),
            (resolve_object, ResolveObjectRequest, ResolveObjectResponse, Object, Object, Some)
        );
    };
    (@impl $svc:ty, $pb:ident, $opt:path, { $($extra:tt)* },
        $(($method:ident, $req:ident, $resp:ident, $want:ident, $got:ident, $wrap:path)),*) => {
        #[tonic::async_trait]
        impl $pb::service_server::Service for $svc {
            $($extra)*

            $(
                async fn $method(
                    &self,
                    req: tonic::Request<$pb::$req>,
                ) -> Result<tonic::Response<$pb::$resp>, tonic::Status> {
                    let m = req.get_ref();
                    let r = self.resolver.resolve(
                        &m.flag_key,
                        m.context.as_ref(),
                        $crate::transport::flagd::resolve::ValueType::$want,
                    )?;
                    let $crate::transport::flagd::resolve::FlagValue::$got(value) = r.value else {
                        return Err($crate::transport::flagd::service::wrong_type());
                    };
                    Ok(tonic::Response::new($pb::$resp {
                        value: $wrap(value),
                        reason: r.reason.into(),
                        variant: $opt(r.variant),
                        metadata: Some(r.metadata),
                    }))
                }
            )*

            type EventStreamStream = tokio_stream::wrappers::ReceiverStream<
                Result<$pb::EventStreamResponse, tonic::Status>,
            >;

            async fn event_stream(
                &self,
                _: tonic::Request<$pb::EventStreamRequest>,
            ) -> Result<tonic::Response<Self::EventStreamStream>, tonic::Status> {
                Ok(tonic::Response::new($crate::transport::flagd::events::stream(
                    self.resolver.store().clone(),
                    self.opts.keep_alive,
                    self.opts.stop.as_ref(),
                    |ty, data| $pb::EventStreamResponse {
                        r#type: ty.into(),
                        data,
                    },
                )))
            }
        }
    };
}
pub(super) use evaluation_service;
