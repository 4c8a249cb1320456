//! Bad requests get INVALID_ARGUMENT, whoever catches them.
//!
//! Our own checks (limits, malformed contexts) answer INVALID_ARGUMENT. Two checks
//! happen inside tonic before a handler runs, and tonic answers them differently:
//! a request larger than `--max-message-bytes` gets OUT_OF_RANGE (from the length
//! prefix, before anything is buffered), and bytes that are not a valid protobuf
//! message get INTERNAL, which tells the caller the *server* failed. Both are the
//! caller's bad input, so this step rewrites those two statuses, and only those, to
//! INVALID_ARGUMENT, keeping tonic's message. Both arrive as a "trailers-only"
//! response (the status in the response headers), which is all this looks at.
//!
//! Only `cohortd.v1` calls are rewritten: flagd providers read INVALID_ARGUMENT
//! as TYPE_MISMATCH, so the flagd services keep tonic's codes (reported as
//! GENERAL by providers).

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::header::HeaderValue;
use tower::{Layer, Service};

/// Applies [`remap`] to the responses of `cohortd.v1` calls.
#[derive(Debug, Clone, Copy, Default)]
pub struct BadRequestLayer;

impl<S> Layer<S> for BadRequestLayer {
    type Service = BadRequest<S>;

    fn layer(&self, inner: S) -> BadRequest<S> {
        BadRequest { inner }
    }
}

/// The service produced by [`BadRequestLayer`].
#[derive(Debug, Clone)]
pub struct BadRequest<S> {
    inner: S,
}

impl<S, ReqB, ResB> Service<http::Request<ReqB>> for BadRequest<S>
where
    S: Service<http::Request<ReqB>, Response = http::Response<ResB>>,
{
    type Response = http::Response<ResB>;
    type Error = S::Error;
    type Future = RemapFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqB>) -> Self::Future {
        let ours = req.uri().path().starts_with("/cohortd.v1.");
        RemapFuture {
            inner: self.inner.call(req),
            ours,
        }
    }
}

pin_project_lite::pin_project! {
    /// Resolves to the inner response, remapped for `cohortd.v1` calls.
    pub struct RemapFuture<F> {
        #[pin]
        inner: F,
        ours: bool,
    }
}

impl<F, B, E> Future for RemapFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
{
    type Output = Result<http::Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = ready!(this.inner.poll(cx));
        let ours = *this.ours;
        Poll::Ready(out.map(|r| if ours { remap(r) } else { r }))
    }
}

/// tonic's message for a request over the decoding size limit.
const TOO_LARGE: &[u8] = b"Error, decoded message length too large";
/// prost's `DecodeError` display, which tonic-prost sends as INTERNAL.
const UNDECODABLE: &[u8] = b"failed to decode Protobuf message";

/// Rewrites tonic's size-limit and decode-failure statuses to INVALID_ARGUMENT.
pub fn remap<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers();
    let Some(code) = headers.get("grpc-status").map(HeaderValue::as_bytes) else {
        return response;
    };
    let message = headers
        .get("grpc-message")
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    // grpc-message is percent-encoded; tonic leaves these ASCII prefixes intact
    // apart from spaces, so compare with spaces decoded.
    let starts = |prefix: &[u8]| decoded_starts_with(message, prefix);
    let bad_input = (code == b"11" && starts(TOO_LARGE)) || (code == b"13" && starts(UNDECODABLE));
    if bad_input {
        let invalid = HeaderValue::from_static("3");
        response.headers_mut().insert("grpc-status", invalid);
    }
    response
}

/// Whether percent-encoded `raw` starts with `prefix` once `%20` is read as a space.
fn decoded_starts_with(raw: &[u8], prefix: &[u8]) -> bool {
    let mut i = 0;
    for &want in prefix {
        let got = match raw.get(i..i + 3) {
            Some(b"%20") => {
                i += 3;
                b' '
            }
            _ => match raw.get(i) {
                Some(&b) => {
                    i += 1;
                    b
                }
                None => return false,
            },
        };
        if got != want {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(code: &'static str, message: &'static str) -> http::Response<()> {
        let mut r = http::Response::new(());
        r.headers_mut()
            .insert("grpc-status", HeaderValue::from_static(code));
        r.headers_mut()
            .insert("grpc-message", HeaderValue::from_static(message));
        r
    }

    fn code(r: &http::Response<()>) -> &[u8] {
        r.headers()["grpc-status"].as_bytes()
    }

    #[test]
    fn tonic_input_errors_become_invalid_argument() {
        let r = remap(response(
            "11",
            "Error, decoded message length too large: found 9 bytes",
        ));
        assert_eq!(code(&r), b"3");
        let r = remap(response(
            "11",
            "Error,%20decoded%20message%20length%20too%20large",
        ));
        assert_eq!(code(&r), b"3");
        let r = remap(response(
            "13",
            "failed to decode Protobuf message: invalid wire type",
        ));
        assert_eq!(code(&r), b"3");
    }

    #[test]
    fn other_statuses_are_left_alone() {
        assert_eq!(code(&remap(response("13", "boom"))), b"13");
        assert_eq!(code(&remap(response("11", "page out of range"))), b"11");
        assert_eq!(
            code(&remap(response(
                "3",
                "Error, decoded message length too large"
            ))),
            b"3"
        );
        let plain = remap(http::Response::new(()));
        assert!(plain.headers().get("grpc-status").is_none());
    }
}
