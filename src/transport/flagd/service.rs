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

/// Implements `$wire::service_server::Service` (the server side of the
/// protocol, requests read by [`super::wire`]) for `$svc` (a struct with
/// `resolver: Arc<Resolver>` and `opts: FlagdOptions`), answering with `$pb`'s
/// messages. `$opt` wraps `value` and `variant`; `$extra` are the protocol's
/// other methods, verbatim.
/// v1: no value means the zero value (flagd's v1 sends zero values).
pub(super) fn v1_value<T: Default>(v: Option<T>) -> T {
    v.unwrap_or_default()
}

/// v1 objects: an empty object for the caller's default.
pub(super) fn v1_object<T: Default>(v: Option<T>) -> Option<T> {
    Some(v.unwrap_or_default())
}

macro_rules! evaluation_service {
    ($svc:ty, $pb:ident, $wire:ident, v1: $v1:expr, opt: $opt:path, obj: $obj:path, extra: { $($extra:tt)* }) => {
        evaluation_service!(@impl $svc, $pb, $wire, $v1, $opt, { $($extra)* },
            (resolve_boolean, ResolveBooleanRequest, ResolveBooleanResponse, Boolean, Bool, $opt),
            (resolve_string, ResolveStringRequest, ResolveStringResponse, String, String, $opt),
            (resolve_float, ResolveFloatRequest, ResolveFloatResponse, Float, Float, $opt),
            (resolve_int, ResolveIntRequest, ResolveIntResponse, Integer, Int, $opt),
            (resolve_object, ResolveObjectRequest, ResolveObjectResponse, Object, Object, $obj)
        );
    };
    (@impl $svc:ty, $pb:ident, $wire:ident, $v1:expr, $opt:path, { $($extra:tt)* },
        $(($method:ident, $req:ident, $resp:ident, $want:ident, $got:ident, $wrap:path)),*) => {
        #[tonic::async_trait]
        impl $wire::service_server::Service for $svc {
            $($extra)*

            $(
                async fn $method(
                    &self,
                    req: tonic::Request<$crate::transport::flagd::wire::ResolveRequest>,
                ) -> Result<tonic::Response<$pb::$resp>, tonic::Status> {
                    let m = req.get_ref();
                    let sel = $crate::transport::flagd::resolve::request_selector(req.metadata());
                    let r = self.resolver.resolve_encoded(
                        &m.flag_key,
                        &m.context,
                        $crate::transport::flagd::resolve::ValueType::$want,
                        $v1,
                        sel.as_ref(),
                    )?;
                    let value = match r.value {
                        Some($crate::transport::flagd::resolve::FlagValue::$got(v)) => Some(v),
                        None => None,
                        Some(_) => return Err($crate::transport::flagd::service::wrong_type()),
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
