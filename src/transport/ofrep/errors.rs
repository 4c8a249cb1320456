//! OFREP errors: the spec's status codes and JSON bodies.
//!
//! | error                                   | status | body `errorCode`        |
//! |-----------------------------------------|--------|-------------------------|
//! | body is not JSON                        | 400    | `PARSE_ERROR`           |
//! | `context` not an object, or over limits | 400    | `INVALID_CONTEXT`       |
//! | the unit attribute is missing           | 400    | `TARGETING_KEY_MISSING` |
//! | no such flag (or a draft)               | 404    | `FLAG_NOT_FOUND`        |
//! | body over `--max-message-bytes`         | 413    | (`errorDetails` only)   |
//! | no configuration loaded yet             | 503    | `PROVIDER_NOT_READY`    |
//!
//! Single-flag bodies carry the flag `key`; bulk bodies do not (the spec's
//! `evaluationFailure` and `bulkEvaluationFailure`).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::transport::flagd::resolve::ResolveError;

/// Why an OFREP request failed as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfrepError {
    /// The request body is not JSON.
    #[error("the request body is not valid JSON: {0}")]
    Parse(String),
    /// The body is JSON but not an evaluation request.
    #[error("{0}")]
    InvalidContext(String),
    /// The body is larger than the limit.
    #[error("the request body exceeds {limit} bytes (--max-message-bytes)")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body could not be read (the connection failed mid-request).
    #[error("cannot read the request body: {0}")]
    Body(String),
    /// The path's flag key is not valid UTF-8 after percent-decoding.
    #[error("the flag key in the path is not valid: {0}")]
    BadKey(String),
    /// Evaluation failed.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
}

impl OfrepError {
    /// The HTTP status and OpenFeature error code (`None`: the body has only
    /// `errorDetails`, as the spec's 413/500 bodies).
    pub fn code(&self) -> (StatusCode, Option<&'static str>) {
        match self {
            OfrepError::Parse(_) => (StatusCode::BAD_REQUEST, Some("PARSE_ERROR")),
            OfrepError::InvalidContext(_) => (StatusCode::BAD_REQUEST, Some("INVALID_CONTEXT")),
            OfrepError::BadKey(_) => (StatusCode::BAD_REQUEST, Some("GENERAL")),
            OfrepError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, None),
            OfrepError::Body(_) => (StatusCode::BAD_REQUEST, Some("GENERAL")),
            OfrepError::Resolve(e) => resolve_code(e),
        }
    }

    /// The human-readable detail, without the error-code prefix the resolver's
    /// messages start with (the code travels in its own field).
    pub fn details(&self) -> String {
        let text = self.to_string();
        match self.code().1 {
            Some(code) => text
                .strip_prefix(code)
                .and_then(|t| t.strip_prefix(": "))
                .map_or_else(|| text.clone(), str::to_owned),
            None => text,
        }
    }

    /// The response for a single-flag request (`key` echoed in the body) or,
    /// with `key` `None`, for a bulk request.
    pub fn into_response_for(self, key: Option<&str>) -> Response {
        let (status, code) = self.code();
        let body = Body {
            key,
            error_code: code,
            error_details: self.details(),
        };
        json(status, &body)
    }
}

/// Maps a resolver error onto OFREP (also used for per-flag errors in bulk).
pub fn resolve_code(e: &ResolveError) -> (StatusCode, Option<&'static str>) {
    match e {
        ResolveError::NotFound(..) | ResolveError::Draft(_) => {
            (StatusCode::NOT_FOUND, Some("FLAG_NOT_FOUND"))
        }
        ResolveError::TargetingKeyMissing { .. } => {
            (StatusCode::BAD_REQUEST, Some("TARGETING_KEY_MISSING"))
        }
        ResolveError::Rejected(_) => (StatusCode::BAD_REQUEST, Some("INVALID_CONTEXT")),
        // A flagd flag's targeting named no variant (flagd: GENERAL).
        ResolveError::Targeting { .. } => (StatusCode::BAD_REQUEST, Some("GENERAL")),
        // OFREP requests no type, so the resolver never reports a mismatch.
        ResolveError::TypeMismatch { .. } => (StatusCode::BAD_REQUEST, Some("TYPE_MISMATCH")),
        ResolveError::NotReady => (StatusCode::SERVICE_UNAVAILABLE, Some("PROVIDER_NOT_READY")),
    }
}

/// An error body (`evaluationFailure`, `flagNotFound`, `bulkEvaluationFailure`
/// or `generalErrorResponse`, depending on which fields are set).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'static str>,
    error_details: String,
}

impl<'a> Body<'a> {
    /// A per-flag failure inside a bulk response.
    pub fn flag(key: &'a str, e: &ResolveError) -> Body<'a> {
        let err = OfrepError::Resolve(e.clone());
        Body {
            key: Some(key),
            error_code: Some(resolve_code(e).1.unwrap_or("GENERAL")),
            error_details: err.details(),
        }
    }
}

/// A JSON response.
pub fn json(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        // Our bodies are plain data; this cannot happen, but must not panic.
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

impl IntoResponse for OfrepError {
    fn into_response(self) -> Response {
        self.into_response_for(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::limits::LimitError;

    #[test]
    fn details_drop_the_code_prefix() {
        let e = OfrepError::Resolve(ResolveError::NotFound("x".into(), String::new()));
        assert_eq!(e.code(), (StatusCode::NOT_FOUND, Some("FLAG_NOT_FOUND")));
        assert_eq!(e.details(), "flag `x` is not in the configuration");
        let e = OfrepError::Resolve(ResolveError::Rejected(LimitError::ContextAttributes {
            got: 3,
            limit: 2,
        }));
        assert_eq!(e.code().1, Some("INVALID_CONTEXT"));
        assert!(
            e.details().starts_with("context has 3 attributes"),
            "{}",
            e.details()
        );
        let e = OfrepError::TooLarge { limit: 10 };
        assert_eq!(e.code(), (StatusCode::PAYLOAD_TOO_LARGE, None));
        assert!(e.details().contains("--max-message-bytes"));
    }
}
