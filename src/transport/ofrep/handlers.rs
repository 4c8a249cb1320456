//! The two OFREP evaluation endpoints.
//!
//! Both read a JSON body `{"context": {...}}` (an empty body or a missing
//! `context` is an empty context, as flagd accepts), bounded by
//! `--max-message-bytes` while it is read, convert the context at this edge,
//! and answer with the spec's JSON shapes. Bulk answers carry an `ETag` and
//! honour `If-None-Match` with 304; single answers are not cached by providers
//! and the spec defines no 304 for them.

use std::time::Instant;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use prost_types::Struct;
use serde::Serialize;
use serde_json::{Map, Value};

use super::errors::{self, OfrepError};
use super::stats::{BULK, SINGLE};
use super::{etag, Shared};
use crate::config::flagd::kind as json_kind;
use crate::snapshot::selector::Selector;
use crate::transport::convert::{json_object_to_struct, struct_to_json};
use crate::transport::flagd::resolve::ValueResolution;
use crate::transport::flagd::sync::SELECTOR_HEADER;

/// `POST /ofrep/v1/evaluate/flags/{key}`.
pub async fn single(
    State(s): State<Shared>,
    key: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let sel = selector(&headers);
    let resp = match key {
        Ok(Path(key)) => match evaluate_one(&s, &key, body, sel.as_ref()).await {
            Ok(r) => errors::json(StatusCode::OK, &Success::new(&key, &r)),
            Err(e) => e.into_response_for(Some(&key)),
        },
        Err(e) => OfrepError::BadKey(e.body_text()).into_response_for(None),
    };
    s.stats.record(SINGLE, resp.status().as_u16(), started);
    resp
}

async fn evaluate_one(
    s: &Shared,
    key: &str,
    body: Body,
    sel: Option<&Selector>,
) -> Result<ValueResolution, OfrepError> {
    let ctx = read_context(body, s.max_body).await?;
    Ok(s.eval.one(key, &ctx, sel)?)
}

/// The request's `Flagd-Selector` (flagd honours it on both OFREP endpoints).
fn selector(headers: &HeaderMap) -> Option<Selector> {
    Selector::parse(headers.get(SELECTOR_HEADER)?.to_str().ok()?)
}

/// `POST /ofrep/v1/evaluate/flags`.
pub async fn bulk(State(s): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let resp = match evaluate_all(&s, body, selector(&headers).as_ref()).await {
        Ok(bytes) => conditional(&headers, bytes),
        Err(e) => e.into_response_for(None),
    };
    s.stats.record(BULK, resp.status().as_u16(), started);
    resp
}

/// Evaluates every flag and encodes the bulk body.
async fn evaluate_all(
    s: &Shared,
    body: Body,
    sel: Option<&Selector>,
) -> Result<Vec<u8>, OfrepError> {
    let ctx = read_context(body, s.max_body).await?;
    let (flags, set) = s.eval.all(&ctx, sel)?;
    let flags = flags
        .iter()
        .map(|(key, r)| match r {
            Ok(r) => Item::Ok(Success::new(key, r)),
            Err(e) => Item::Err(errors::Body::flag(key, e)),
        })
        .collect();
    let body = BulkBody {
        flags,
        metadata: struct_to_json(&set),
    };
    serde_json::to_vec(&body).map_err(|e| OfrepError::Body(e.to_string()))
}

/// 304 when the caller holds this body already, else 200; the `ETag` either way.
fn conditional(headers: &HeaderMap, bytes: Vec<u8>) -> Response {
    let tag = etag::of_body(&bytes);
    let not_modified = etag::none_match(headers, &tag);
    // The tag is hex digits and quotes: always a valid header value.
    let tag = HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"\""));
    if not_modified {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response();
    }
    (
        StatusCode::OK,
        [
            (header::ETAG, tag),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// Reads the body (at most `limit` bytes) and returns its evaluation context.
async fn read_context(body: Body, limit: usize) -> Result<Struct, OfrepError> {
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(OfrepError::TooLarge { limit })
        }
        Err(e) => return Err(OfrepError::Body(e.to_string())),
    };
    parse_context(&bytes)
}

/// Parses `{"context": {...}}`. An empty body, or no (or a null) `context`, is
/// an empty context.
pub fn parse_context(bytes: &[u8]) -> Result<Struct, OfrepError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Struct::default());
    }
    // serde_json refuses nesting deeper than 128, so no input exhausts the stack.
    let req: Value = serde_json::from_slice(bytes).map_err(|e| OfrepError::Parse(e.to_string()))?;
    let Value::Object(req) = req else {
        return Err(OfrepError::InvalidContext(format!(
            "the request body must be a JSON object such as {{\"context\": {{\"targetingKey\": \"user-1\"}}}}, not {}",
            json_kind(&req)
        )));
    };
    match req.get("context") {
        None | Some(Value::Null) => Ok(Struct::default()),
        Some(Value::Object(m)) => Ok(json_object_to_struct(m)),
        Some(other) => Err(OfrepError::InvalidContext(format!(
            "`context` must be a JSON object, not {}",
            json_kind(other)
        ))),
    }
}

/// `evaluationSuccess`: the value keeps its configured JSON type.
#[derive(Serialize)]
struct Success<'a> {
    key: &'a str,
    value: &'a Value,
    reason: &'static str,
    variant: &'a str,
    metadata: Map<String, Value>,
}

impl<'a> Success<'a> {
    fn new(key: &'a str, r: &'a ValueResolution) -> Success<'a> {
        Success {
            key,
            value: &r.value,
            reason: r.reason,
            variant: &r.variant,
            metadata: struct_to_json(&r.metadata),
        }
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum Item<'a> {
    Ok(Success<'a>),
    Err(errors::Body<'a>),
}

/// `bulkEvaluationSuccess`, with flag-set metadata as flagd sends.
#[derive(Serialize)]
struct BulkBody<'a> {
    flags: Vec<Item<'a>>,
    metadata: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_parse_or_say_why_not() {
        assert!(parse_context(b"").unwrap().fields.is_empty());
        assert!(parse_context(b" {} ").unwrap().fields.is_empty());
        assert!(parse_context(br#"{"context": null}"#)
            .unwrap()
            .fields
            .is_empty());
        let c = parse_context(br#"{"context": {"targetingKey": "u1", "n": 2}}"#).unwrap();
        assert_eq!(c.fields.len(), 2);
        assert!(matches!(parse_context(b"{"), Err(OfrepError::Parse(_))));
        let e = parse_context(br#"{"context": [1]}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`context` must be a JSON object, not an array"
        );
        assert!(matches!(
            parse_context(b"[]"),
            Err(OfrepError::InvalidContext(_))
        ));
        let deep = format!(
            "{{\"context\":{{\"a\":{}1{}}}}}",
            "[".repeat(500),
            "]".repeat(500)
        );
        assert!(matches!(
            parse_context(deep.as_bytes()),
            Err(OfrepError::Parse(_))
        ));
    }
}
