//! The benchmark floor: a tonic server whose one unary method does nothing,
//! built with the same tonic, runtime and TCP settings as `cohortd serve`.
//!
//! ```sh
//! cargo run --release --example empty_server -- 127.0.0.1:8023
//! cargo run --release --example loadgen -- --target http://127.0.0.1:8023 --rpc empty
//! ```

mod proto {
    pub mod bench {
        tonic::include_proto!("cohortd.bench");
    }
    /// The bench proto imports cohortd's messages; its generated code names them
    /// `super::v1::...`.
    pub mod v1 {
        pub use ::cohortd::transport::pb::*;
    }
}

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use proto::bench::empty_server::{Empty, EmptyServer};
use proto::bench::{EmptyRequest, EmptyResponse};
use proto::v1::{AssignRequest, AssignResponse};
use tonic::{Request, Response, Status};

/// The service: counts the calls it answered (h2load sees only HTTP statuses, so
/// the count printed at shutdown is the number of gRPC OKs).
#[derive(Debug, Default)]
struct Nothing {
    answered: Arc<AtomicU64>,
}

/// What cohortd answers for `exp-checkout-flow-v3` (an enrolled unit), so both
/// servers send responses of the same shape and size.
fn constant_response() -> AssignResponse {
    AssignResponse {
        experiment: "exp-checkout-flow-v3".into(),
        variant: "treatment-b".into(),
        value: Some(prost_types::Value {
            kind: Some(prost_types::value::Kind::StringValue("one-page".into())),
        }),
        enrolled: true,
        reason: 1,
        config_version: "sha256:0123456789ab".into(),
        epoch: 3,
        salt_fingerprint: "a1b2c3d4".into(),
        status: "running".into(),
        layer: String::new(),
    }
}

#[tonic::async_trait]
impl Empty for Nothing {
    async fn call(&self, _: Request<EmptyRequest>) -> Result<Response<EmptyResponse>, Status> {
        self.answered.fetch_add(1, Ordering::Relaxed);
        Ok(Response::new(EmptyResponse {}))
    }

    async fn assign(&self, _: Request<AssignRequest>) -> Result<Response<AssignResponse>, Status> {
        self.answered.fetch_add(1, Ordering::Relaxed);
        Ok(Response::new(constant_response()))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8023".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("empty_server listening on {}", listener.local_addr()?);
    let answered = Arc::new(AtomicU64::new(0));
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_service(EmptyServer::new(Nothing {
            answered: answered.clone(),
        }))
        .serve_with_incoming_shutdown(incoming, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    eprintln!(
        "empty_server: answered {} calls OK",
        answered.load(Ordering::Relaxed)
    );
    Ok(())
}
