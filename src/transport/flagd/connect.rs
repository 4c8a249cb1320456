//! `flagd.evaluation.v2.Service` over the Connect protocol (connectrpc.com
//! "Connect Protocol Reference"), on the OFREP HTTP/1.1 listener.
//!
//! Why: the Go flagd provider (go-sdk-contrib `providers/flagd` 0.5+) is a
//! connect-go client. It speaks Connect over a plain HTTP/1.1 transport, which
//! flagd's connect server accepts and a gRPC-only (HTTP/2) listener cannot. This
//! module serves exactly what that provider calls: the five unary `Resolve*`
//! methods and the server-streaming `EventStream`, binary protobuf only (the
//! provider's codec), each handled by the same v2 service implementation the gRPC
//! listener uses, so answers, reasons, metadata, limits and exposures are
//! identical.
//!
//! Wire format, as the reference specifies it:
//! - unary: `POST /flagd.evaluation.v2.Service/<Method>`, `Content-Type:
//!   application/proto`, the bare message as body; success is `200` with the bare
//!   response; an error is the HTTP status of its code with a JSON body
//!   `{"code": "not_found", "message": "..."}`;
//! - server streaming: `Content-Type: application/connect+proto`; request and
//!   response messages are enveloped (1 flag byte, 4-byte big-endian length);
//!   the stream ends with an envelope flagged `0x02` whose JSON body is `{}` or
//!   `{"error": {...}}`.
//!
//! Not served: JSON codecs (`415`), compressed requests (`unimplemented`), unary
//! GET, and the v1 service (current providers call v2).

use std::future::Future;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use prost::Message;
use tokio_stream::StreamExt;

use super::pb_v2 as pb;
use super::resolve::Resolver;
use super::sync::SELECTOR_HEADER;
use super::v2::EvaluationV2;
use super::wire_v2::service_server::Service as _;
use super::FlagdOptions;
use crate::exposure::ExposureSink;
use crate::reload::Store;

/// The service path prefix.
const SERVICE: &str = "/flagd.evaluation.v2.Service";
/// Unary requests and responses (binary protobuf).
const UNARY_PROTO: &str = "application/proto";
/// Streaming requests and responses (enveloped binary protobuf).
const STREAM_PROTO: &str = "application/connect+proto";
/// Envelope flag of the end-of-stream message.
const END_STREAM: u8 = 0x02;
/// Messages buffered per stream before the pump waits for the client.
const STREAM_BUFFER: usize = 4;

/// The Connect routes of `flagd.evaluation.v2.Service` over `store`; merge them
/// into an HTTP/1.1 router. Bodies are bounded by the same message limit as gRPC.
pub fn router<S: Clone + Send + Sync + 'static>(
    store: Arc<Store>,
    sink: Arc<dyn ExposureSink>,
    opts: FlagdOptions,
) -> Router<S> {
    let max = opts.limits.max_message_bytes;
    let svc = EvaluationV2::new(Arc::new(Resolver::new(store, sink, opts.limits)), opts);
    macro_rules! unary_route {
        ($router:expr, $name:literal, $method:ident) => {
            $router.route(
                concat!("/flagd.evaluation.v2.Service/", $name),
                post(
                    |State(s): State<EvaluationV2>, h: HeaderMap, b: Bytes| async move {
                        let sel = selector_metadata(&h);
                        unary(&h, &b, |req| async move {
                            let mut req = tonic::Request::new(req);
                            if let Some(v) = sel {
                                req.metadata_mut().insert(SELECTOR_HEADER, v);
                            }
                            s.$method(req).await
                        })
                        .await
                    },
                ),
            )
        };
    }
    let r = Router::new();
    let r = unary_route!(r, "ResolveBoolean", resolve_boolean);
    let r = unary_route!(r, "ResolveString", resolve_string);
    let r = unary_route!(r, "ResolveFloat", resolve_float);
    let r = unary_route!(r, "ResolveInt", resolve_int);
    let r = unary_route!(r, "ResolveObject", resolve_object);
    r.route(&format!("{SERVICE}/EventStream"), post(event_stream))
        .layer(DefaultBodyLimit::max(max))
        .with_state(svc)
}

/// The request's `Flagd-Selector` as gRPC metadata, so the shared service
/// code honours it over Connect as over gRPC (the Go provider sends it as a
/// header).
fn selector_metadata(
    h: &HeaderMap,
) -> Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>> {
    h.get(SELECTOR_HEADER)?.to_str().ok()?.parse().ok()
}

/// The Connect code and HTTP status of a gRPC status code (the reference's table).
fn connect_code(code: tonic::Code) -> (&'static str, StatusCode) {
    use tonic::Code as C;
    match code {
        C::Ok => ("ok", StatusCode::OK),
        C::Cancelled => (
            "canceled",
            StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        ),
        C::Unknown => ("unknown", StatusCode::INTERNAL_SERVER_ERROR),
        C::InvalidArgument => ("invalid_argument", StatusCode::BAD_REQUEST),
        C::DeadlineExceeded => ("deadline_exceeded", StatusCode::GATEWAY_TIMEOUT),
        C::NotFound => ("not_found", StatusCode::NOT_FOUND),
        C::AlreadyExists => ("already_exists", StatusCode::CONFLICT),
        C::PermissionDenied => ("permission_denied", StatusCode::FORBIDDEN),
        C::ResourceExhausted => ("resource_exhausted", StatusCode::TOO_MANY_REQUESTS),
        C::FailedPrecondition => ("failed_precondition", StatusCode::BAD_REQUEST),
        C::Aborted => ("aborted", StatusCode::CONFLICT),
        C::OutOfRange => ("out_of_range", StatusCode::BAD_REQUEST),
        C::Unimplemented => ("unimplemented", StatusCode::NOT_IMPLEMENTED),
        C::Internal => ("internal", StatusCode::INTERNAL_SERVER_ERROR),
        C::Unavailable => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
        C::DataLoss => ("data_loss", StatusCode::INTERNAL_SERVER_ERROR),
        C::Unauthenticated => ("unauthenticated", StatusCode::UNAUTHORIZED),
    }
}

/// The JSON error object of the reference: `{"code", "message"}`.
fn error_json(status: &tonic::Status) -> serde_json::Value {
    serde_json::json!({
        "code": connect_code(status.code()).0,
        "message": status.message(),
    })
}

/// A unary error response.
fn unary_error(status: &tonic::Status) -> Response {
    (
        connect_code(status.code()).1,
        [(header::CONTENT_TYPE, "application/json")],
        error_json(status).to_string(),
    )
        .into_response()
}

/// The media type of a request, without parameters, lower-cased.
fn media_type(h: &HeaderMap) -> String {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// A request body this module cannot read: compressed (no codec is served).
fn compressed(h: &HeaderMap, name: &str) -> bool {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().eq_ignore_ascii_case("identity"))
}

/// `415` naming the one codec served, as the reference asks for an unknown codec.
fn unsupported_media(accepted: &'static str) -> Response {
    (
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        [(header::HeaderName::from_static("accept-post"), accepted)],
    )
        .into_response()
}

/// One unary call: decode, run `call`, encode.
async fn unary<Req, Resp, F, Fut>(h: &HeaderMap, body: &Bytes, call: F) -> Response
where
    Req: Message + Default,
    Resp: Message,
    F: FnOnce(Req) -> Fut,
    Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
{
    if media_type(h) != UNARY_PROTO {
        return unsupported_media(UNARY_PROTO);
    }
    if compressed(h, "content-encoding") {
        return unary_error(&tonic::Status::unimplemented(
            "compressed requests are not supported",
        ));
    }
    let req = match Req::decode(body.as_ref()) {
        Ok(r) => r,
        Err(e) => {
            return unary_error(&tonic::Status::invalid_argument(format!(
                "request is not a valid message: {e}"
            )))
        }
    };
    match call(req).await {
        Ok(resp) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, UNARY_PROTO)],
            resp.into_inner().encode_to_vec(),
        )
            .into_response(),
        Err(status) => unary_error(&status),
    }
}

/// One enveloped message: flags, big-endian length, payload.
fn envelope(flags: u8, payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(5 + payload.len());
    out.push(flags);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    Bytes::from(out)
}

/// The end-of-stream envelope, with the error that ended the stream, if any.
fn end_stream(err: Option<&tonic::Status>) -> Bytes {
    let body = match err {
        None => serde_json::json!({}),
        Some(s) => serde_json::json!({ "error": error_json(s) }),
    };
    envelope(END_STREAM, body.to_string().as_bytes())
}

/// The single enveloped request message of a server-streaming call.
fn enveloped_request<T: Message + Default>(body: &[u8]) -> Result<T, tonic::Status> {
    let bad = |why: &str| tonic::Status::invalid_argument(format!("stream request: {why}"));
    if body.len() < 5 {
        return Err(bad("no envelope"));
    }
    if body[0] != 0 {
        return Err(bad("compressed or end-of-stream flag set"));
    }
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    if body.len() != 5 + len {
        return Err(bad("envelope length does not match the body"));
    }
    T::decode(&body[5..]).map_err(|e| bad(&e.to_string()))
}

/// `EventStream`: the v2 service's event stream, enveloped; errors (including a
/// malformed request) travel in the end-of-stream message with status 200, as
/// the reference specifies for streams.
async fn event_stream(State(s): State<EvaluationV2>, h: HeaderMap, body: Bytes) -> Response {
    if media_type(&h) != STREAM_PROTO {
        return unsupported_media(STREAM_PROTO);
    }
    let (tx, rx) =
        tokio::sync::mpsc::channel::<Result<Bytes, std::convert::Infallible>>(STREAM_BUFFER);
    let started = if compressed(&h, "connect-content-encoding") {
        Err(tonic::Status::unimplemented(
            "compressed requests are not supported",
        ))
    } else {
        match enveloped_request::<pb::EventStreamRequest>(&body) {
            Ok(req) => s.event_stream(tonic::Request::new(req)).await,
            Err(e) => Err(e),
        }
    };
    match started {
        Err(status) => {
            let _ = tx.send(Ok(end_stream(Some(&status)))).await;
        }
        Ok(resp) => {
            let mut events = resp.into_inner();
            tokio::spawn(async move {
                while let Some(item) = events.next().await {
                    let frame = match item {
                        Ok(m) => envelope(0, &m.encode_to_vec()),
                        Err(status) => {
                            let _ = tx.send(Ok(end_stream(Some(&status)))).await;
                            return;
                        }
                    };
                    if tx.send(Ok(frame)).await.is_err() {
                        return; // the client went away
                    }
                }
                let _ = tx.send(Ok(end_stream(None))).await;
            });
        }
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, STREAM_PROTO)],
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)),
    )
        .into_response()
}
