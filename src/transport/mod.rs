//! Transports: how requests reach the engine (gRPC services, the management HTTP
//! port). Everything here converts at the edge and calls the pure engine.

pub mod admin;
pub mod bad_request;
pub mod cohortd_v1;
pub mod conn_limit;
pub mod convert;
pub mod delay;
pub mod explain;
pub mod flagd;
pub mod http_serve;
pub mod limits;
pub mod mem_return;
pub mod observe;
pub mod ofrep;
pub mod probe;
pub mod slot;
pub mod status;
pub mod stream_limit;
pub mod track;
pub mod wire;

/// Generated code for `proto/cohortd/v1`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("cohortd.v1");
}

/// The encoded descriptor set of every proto in `proto/`, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("cohortd_descriptor");
