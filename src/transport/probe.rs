//! The probe listener (`--probe-listen`): health and nothing else, so the
//! kubelet can reach it on the pod IP while the API stays on loopback or a Unix
//! socket.
//!
//! One port answers both kinds of kubelet probe: gRPC (`grpc.health.v1`, over
//! HTTP/2 without TLS, which is what the kubelet's gRPC probe speaks) and HTTP/1
//! `GET /healthz` and `/readyz`. Any other gRPC call gets UNIMPLEMENTED, any
//! other HTTP path 404. It never needs a token and never uses TLS: the kubelet's
//! gRPC probe cannot do either, and health reveals only "serving or not" and the
//! config version.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;

use crate::state::AppState;

/// The gRPC health service, as the API listener serves it (server.rs builds
/// one and hands a clone here, so both listeners report the same statuses).
pub type HealthGrpc =
    tonic_health::pb::health_server::HealthServer<tonic_health::server::HealthService>;

/// The probe routes: `health` (the same gRPC health service the API listener
/// serves, so both report the same status) plus the admin port's health pages.
pub fn router(state: AppState, health: HealthGrpc) -> Router {
    let grpc = tonic::service::Routes::new(health).into_axum_router();
    grpc.merge(super::admin::health_router(state))
        .fallback(not_here)
}

/// UNIMPLEMENTED for gRPC calls, 404 for anything else.
async fn not_here(req: axum::extract::Request) -> Response {
    let grpc = req
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    if grpc {
        tonic::Status::unimplemented(format!(
            "{} is not served on the probe listener (health only); call the API listener (--listen)",
            req.uri().path()
        ))
        .into_http::<axum::body::Body>()
    } else {
        (
            StatusCode::NOT_FOUND,
            "the probe listener serves /healthz, /readyz and grpc.health.v1 only\n",
        )
            .into_response()
    }
}

/// Serves the probe listener (bound by the server, which owns binding errors)
/// until shutdown: one port, gRPC health over h2c and `/healthz` `/readyz` over
/// HTTP/1.
pub fn start(
    l: TcpListener,
    state: &AppState,
    health: HealthGrpc,
) -> JoinHandle<Result<(), tonic::transport::Error>> {
    let routes = tonic::service::Routes::from(router(state.clone(), health));
    let mut stop = state.shutdown.clone();
    tokio::spawn(
        tonic::transport::Server::builder()
            .accept_http1(true)
            .add_routes(routes)
            .serve_with_incoming_shutdown(
                TcpIncoming::from(l).with_nodelay(Some(true)),
                async move { stop.wait().await },
            ),
    )
}
