//! flagd's evaluation protocol (`flagd.evaluation.v1.Service` and
//! `flagd.evaluation.v2.Service`), served from the same [`Store`] as cohortd's own
//! API, so every OpenFeature SDK with a flagd provider in RPC mode talks to cohortd
//! unchanged.
//!
//! * [`resolve`]: one flag for one context, mapped onto flagd's values, reasons and
//!   error codes (shared by both versions);
//! * [`events`]: the `EventStream` (`provider_ready`, `configuration_change`,
//!   `keep_alive`);
//! * [`v1`], [`v2`]: the two generated service traits, thin over the above;
//! * [`sync`]: `flagd.sync.v1`, the flag definitions for in-process providers
//!   (on a listener of its own, `--sync-listen`);
//! * [`connect`]: v2 over the Connect protocol on the OFREP HTTP/1.1 listener,
//!   for the Go flagd provider (a connect-go client).
//!
//! The composition point (the `serve` command) adds both services with
//! [`services`]; they depend only on the store and the exposure sink.

pub mod connect;
pub mod events;
pub mod resolve;
mod service;
pub mod sync;
pub mod v1;
pub mod v2;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use crate::exposure::ExposureSink;
use crate::reload::Store;
use crate::transport::limits::Limits;

/// Generated code for `proto/flagd/evaluation/v1` (flagd's v1 wire contract).
#[allow(missing_docs, clippy::all)]
pub mod pb_v1 {
    tonic::include_proto!("flagd.evaluation.v1");
}

/// Generated code for `proto/flagd/evaluation/v2` (flagd's v2 wire contract; what
/// current providers call).
#[allow(missing_docs, clippy::all)]
pub mod pb_v2 {
    tonic::include_proto!("flagd.evaluation.v2");
}

/// The server side of `flagd.evaluation.v1.Service` as cohortd serves it: the
/// generated one's routes and responses, with the typed `Resolve*` requests
/// read as [`wire::ResolveRequest`] (see build.rs and [`wire`]).
#[allow(missing_docs, clippy::all)]
pub mod wire_v1 {
    include!(concat!(
        env!("OUT_DIR"),
        "/flagd_wire/flagd.evaluation.v1.Service.rs"
    ));
}

/// The server side of `flagd.evaluation.v2.Service`, as [`wire_v1`] for v1.
#[allow(missing_docs, clippy::all)]
pub mod wire_v2 {
    include!(concat!(
        env!("OUT_DIR"),
        "/flagd_wire/flagd.evaluation.v2.Service.rs"
    ));
}

/// The port flagd providers connect to by default.
pub const DEFAULT_PORT: u16 = 8013;

/// How the flagd services behave beyond the store and sink.
#[derive(Clone)]
pub struct FlagdOptions {
    /// How often an idle `EventStream` sends `keep_alive` (flagd sends one every
    /// 20 s), so proxies and load balancers do not cut long-lived streams.
    pub keep_alive: Duration,
    /// When set, every `EventStream` ends once the future it makes completes, so
    /// a graceful shutdown is not held open by providers' long-lived streams
    /// (they reconnect elsewhere).
    pub stop: Option<events::StopSignal>,
    /// Request limits, shared with `cohortd.v1` (message size, context shape, key
    /// length).
    pub limits: Limits,
}

impl Default for FlagdOptions {
    fn default() -> Self {
        FlagdOptions {
            keep_alive: Duration::from_secs(20),
            stop: None,
            limits: Limits::default(),
        }
    }
}

impl std::fmt::Debug for FlagdOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlagdOptions")
            .field("keep_alive", &self.keep_alive)
            .field("stop", &self.stop.is_some())
            .field("limits", &self.limits)
            .finish()
    }
}

/// The v1 service, ready to add to a tonic router.
pub type V1Server = wire_v1::service_server::ServiceServer<v1::EvaluationV1>;
/// The v2 service, ready to add to a tonic router.
pub type V2Server = wire_v2::service_server::ServiceServer<v2::EvaluationV2>;

/// Both flagd services with default options, for `Server::builder().add_service(..)`.
pub fn services(store: Arc<Store>, sink: Arc<dyn ExposureSink>) -> (V1Server, V2Server) {
    services_with(store, sink, FlagdOptions::default())
}

/// Both flagd services with explicit options.
pub fn services_with(
    store: Arc<Store>,
    sink: Arc<dyn ExposureSink>,
    opts: FlagdOptions,
) -> (V1Server, V2Server) {
    let resolver = Arc::new(resolve::Resolver::new(store, sink, opts.limits));
    let max = opts.limits.max_message_bytes;
    (
        V1Server::new(v1::EvaluationV1::new(resolver.clone(), opts.clone()))
            .max_decoding_message_size(max),
        V2Server::new(v2::EvaluationV2::new(resolver, opts)).max_decoding_message_size(max),
    )
}
