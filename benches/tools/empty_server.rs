//! The benchmark floor: a tonic server whose one unary method does nothing,
//! built with the same tonic, runtime and TCP settings as `cohortd serve`.
//!
//! ```sh
//! cargo run --release --example empty_server -- 127.0.0.1:8023
//! cargo run --release --example loadgen -- --target http://127.0.0.1:8023 --rpc empty
//! ```

mod bench {
    tonic::include_proto!("cohortd.bench");
}

use bench::empty_server::{Empty, EmptyServer};
use bench::{EmptyRequest, EmptyResponse};
use tonic::{Request, Response, Status};

#[derive(Debug, Default)]
struct Nothing;

#[tonic::async_trait]
impl Empty for Nothing {
    async fn call(&self, _: Request<EmptyRequest>) -> Result<Response<EmptyResponse>, Status> {
        Ok(Response::new(EmptyResponse {}))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8023".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("empty_server listening on {}", listener.local_addr()?);
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_service(EmptyServer::new(Nothing))
        .serve_with_incoming_shutdown(incoming, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
