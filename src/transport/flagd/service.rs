//! What the flagd evaluation v1 and v2 services share, written once: the five
//! typed `Resolve*` methods and the event stream. The two protocols differ only
//! in whether `value` and `variant` are optional on the wire (the response
//! [`super::encode::Shape`]), plus v1's extra method.

/// Implements `$wire::service_server::Service` (the server side of the
/// protocol: requests read by [`super::wire`], typed responses written by
/// [`super::encode`] in the protocol's `$shape`) for `$svc` (a struct with
/// `resolver: Arc<Resolver>` and `opts: FlagdOptions`); `$pb` is the
/// protocol's generated module (event stream messages); `$extra` are the
/// protocol's other methods, verbatim.
macro_rules! evaluation_service {
    ($svc:ty, $pb:ident, $wire:ident, shape: $shape:ident, extra: { $($extra:tt)* }) => {
        evaluation_service!(@impl $svc, $pb, $wire, $shape, { $($extra)* },
            (resolve_boolean, Boolean),
            (resolve_string, String),
            (resolve_float, Float),
            (resolve_int, Integer),
            (resolve_object, Object)
        );
    };
    (@impl $svc:ty, $pb:ident, $wire:ident, $shape:ident, { $($extra:tt)* },
        $(($method:ident, $want:ident)),*) => {
        #[tonic::async_trait]
        impl $wire::service_server::Service for $svc {
            $($extra)*

            $(
                async fn $method(
                    &self,
                    req: tonic::Request<$crate::transport::flagd::wire::ResolveRequest>,
                ) -> Result<tonic::Response<$crate::transport::flagd::encode::Encoded>, tonic::Status> {
                    let m = req.get_ref();
                    let sel = $crate::transport::flagd::resolve::request_selector(req.metadata());
                    let shape = $crate::transport::flagd::encode::Shape::$shape;
                    let want = $crate::transport::flagd::resolve::ValueType::$want;
                    self.resolver
                        .resolve_encoded(
                            &m.flag_key,
                            &m.context,
                            want,
                            shape == $crate::transport::flagd::encode::Shape::V1,
                            sel.as_ref(),
                            |r| $crate::transport::flagd::encode::write(&r, want, shape),
                        )?
                        .map(tonic::Response::new)
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
