//! A cohortd.v1 client over a Unix socket, the way a sidecar's application
//! talks to `cohortd serve --listen unix:PATH`.

use std::path::PathBuf;

use cohortd::transport::pb::assignment_client::AssignmentClient;
use tonic::transport::{Channel, Endpoint};

/// A gRPC channel to the Unix socket at `sock` (the URI is a placeholder: the
/// connector ignores it and dials the socket).
pub async fn unix_channel(sock: PathBuf) -> Channel {
    Endpoint::try_from("http://localhost")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: http::Uri| {
            let p = sock.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(p).await?,
                ))
            }
        }))
        .await
        .unwrap()
}

/// The cohortd.v1 `Assignment` client over [`unix_channel`].
pub async fn unix_client(sock: PathBuf) -> AssignmentClient<Channel> {
    AssignmentClient::new(unix_channel(sock).await)
}
