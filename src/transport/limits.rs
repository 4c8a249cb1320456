//! Request limits: what a caller may send before the server says no.
//!
//! A sidecar shares its pod's memory budget, so every input dimension is bounded
//! before any work is done. The message size is enforced by tonic while decoding
//! (it checks the length prefix before reserving a buffer, so a claimed size is
//! never allocated); the rest is checked here on the decoded request, and every
//! breach is an `INVALID_ARGUMENT` that names the limit and its flag.

use prost_types::value::Kind;
use prost_types::Struct;

/// The configured limits. Defaults suit a sidecar answering one application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest decoded request message in bytes (`--max-message-bytes`).
    pub max_message_bytes: usize,
    /// Most top-level attributes in one context (`--max-context-attributes`).
    pub max_context_attributes: usize,
    /// Longest experiment or variant key in bytes (`--max-key-bytes`).
    pub max_key_bytes: usize,
    /// Longest attribute name in bytes (`--max-attribute-name-bytes`).
    pub max_attribute_name_bytes: usize,
    /// Longest string value in a context, at any depth, in bytes (`--max-string-value-bytes`).
    pub max_string_value_bytes: usize,
    /// Most experiments listed in one `AssignAll` (`--max-assign-all-experiments`).
    pub max_assign_all_experiments: usize,
    /// Most records in one `LogExposures` (`--max-exposure-records`).
    pub max_exposure_records: usize,
    /// Most values in one context, counted at every depth: each attribute, list
    /// element and nested field is one (`--max-context-nodes`).
    pub max_context_nodes: usize,
    /// Most bytes in one context, counted at every depth: names, strings, and 8
    /// per number or bool (`--max-context-bytes`).
    pub max_context_bytes: usize,
    /// Most events in one `Track` (`--max-track-events`).
    pub max_track_events: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 1 << 20,
            max_context_attributes: 128,
            max_key_bytes: 256,
            max_attribute_name_bytes: 256,
            max_string_value_bytes: 4096,
            max_assign_all_experiments: 1024,
            max_exposure_records: 1000,
            max_context_nodes: 4096,
            max_context_bytes: 256 * 1024,
            max_track_events: 1000,
        }
    }
}

/// A request over one of the [`Limits`], or a context that is not valid JSON-like
/// data. Converts to `INVALID_ARGUMENT`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// The context holds something no JSON value can be.
    #[error("malformed context: attribute `{attribute}` holds {why}")]
    Malformed {
        /// The top-level attribute holding it.
        attribute: String,
        /// What is wrong.
        why: &'static str,
    },
    /// Too many context attributes.
    #[error("context has {got} attributes; the limit is {limit} (--max-context-attributes)")]
    ContextAttributes {
        /// Attributes sent.
        got: usize,
        /// The limit.
        limit: usize,
    },
    /// An attribute name is too long.
    #[error("context attribute name of {got} bytes exceeds the limit of {limit} bytes (--max-attribute-name-bytes)")]
    AttributeName {
        /// Bytes sent.
        got: usize,
        /// The limit.
        limit: usize,
    },
    /// A string value is too long.
    #[error("context attribute `{attribute}` has a string of {got} bytes; the limit is {limit} bytes (--max-string-value-bytes)")]
    StringValue {
        /// The top-level attribute holding it.
        attribute: String,
        /// Bytes sent.
        got: usize,
        /// The limit.
        limit: usize,
    },
    /// A key (experiment or variant) is too long.
    #[error("{what} of {got} bytes exceeds the limit of {limit} bytes (--max-key-bytes)")]
    Key {
        /// Which key.
        what: &'static str,
        /// Bytes sent.
        got: usize,
        /// The limit.
        limit: usize,
    },
    /// Too many experiments listed in `AssignAll`.
    #[error("{got} experiments listed; the limit is {limit} per AssignAll (--max-assign-all-experiments)")]
    AssignAllExperiments {
        /// Listed.
        got: usize,
        /// The limit.
        limit: usize,
    },
    /// The context as a whole, nested values included, is too large.
    #[error("context is over the limit of {limit} {what}, nested values included ({flag})")]
    ContextTotal {
        /// `values` or `bytes`.
        what: &'static str,
        /// The limit.
        limit: usize,
        /// The flag that sets it.
        flag: &'static str,
    },
    /// Too many records in `LogExposures`.
    #[error(
        "{got} exposure records; the limit is {limit} per LogExposures (--max-exposure-records)"
    )]
    ExposureRecords {
        /// Sent.
        got: usize,
        /// The limit.
        limit: usize,
    },
    /// Too many events in `Track`.
    #[error("{got} outcome events; the limit is {limit} per Track (--max-track-events)")]
    TrackEvents {
        /// Sent.
        got: usize,
        /// The limit.
        limit: usize,
    },
}

impl From<LimitError> for tonic::Status {
    fn from(e: LimitError) -> Self {
        tonic::Status::invalid_argument(e.to_string())
    }
}

impl Limits {
    /// Checks a context: attribute count, name lengths, and every string value at
    /// any depth. Walks the already-decoded message; allocates only for the error.
    pub fn check_context(&self, ctx: &Struct) -> Result<(), LimitError> {
        if ctx.fields.len() > self.max_context_attributes {
            return Err(LimitError::ContextAttributes {
                got: ctx.fields.len(),
                limit: self.max_context_attributes,
            });
        }
        let mut total = Total::default();
        for (name, value) in &ctx.fields {
            total.nodes += 1;
            total.bytes += name.len();
            if name.len() > self.max_attribute_name_bytes {
                return Err(LimitError::AttributeName {
                    got: name.len(),
                    limit: self.max_attribute_name_bytes,
                });
            }
            let scan = scan(value.kind.as_ref(), &mut total, self);
            self.check_total(&total)?;
            if let Some(why) = scan.malformed {
                return Err(LimitError::Malformed {
                    attribute: truncate(name, 64),
                    why,
                });
            }
            if scan.longest > self.max_string_value_bytes {
                return Err(LimitError::StringValue {
                    attribute: truncate(name, 64),
                    got: scan.longest,
                    limit: self.max_string_value_bytes,
                });
            }
        }
        Ok(())
    }

    fn check_total(&self, t: &Total) -> Result<(), LimitError> {
        if t.nodes > self.max_context_nodes {
            return Err(LimitError::ContextTotal {
                what: "values",
                limit: self.max_context_nodes,
                flag: "--max-context-nodes",
            });
        }
        if t.bytes > self.max_context_bytes {
            return Err(LimitError::ContextTotal {
                what: "bytes",
                limit: self.max_context_bytes,
                flag: "--max-context-bytes",
            });
        }
        Ok(())
    }

    /// Checks one experiment or variant key.
    pub fn check_key(&self, what: &'static str, key: &str) -> Result<(), LimitError> {
        if key.len() > self.max_key_bytes {
            return Err(LimitError::Key {
                what,
                got: key.len(),
                limit: self.max_key_bytes,
            });
        }
        Ok(())
    }

    /// Checks the experiment list of an `AssignAll`.
    pub fn check_assign_all(&self, keys: &[String]) -> Result<(), LimitError> {
        if keys.len() > self.max_assign_all_experiments {
            return Err(LimitError::AssignAllExperiments {
                got: keys.len(),
                limit: self.max_assign_all_experiments,
            });
        }
        keys.iter()
            .try_for_each(|k| self.check_key("experiment key", k))
    }

    /// Checks the record count of a `LogExposures`.
    pub fn check_exposure_records(&self, n: usize) -> Result<(), LimitError> {
        if n > self.max_exposure_records {
            return Err(LimitError::ExposureRecords {
                got: n,
                limit: self.max_exposure_records,
            });
        }
        Ok(())
    }
}

impl Limits {
    /// Checks the event count of a `Track`.
    pub fn check_track_events(&self, n: usize) -> Result<(), LimitError> {
        if n > self.max_track_events {
            return Err(LimitError::TrackEvents {
                got: n,
                limit: self.max_track_events,
            });
        }
        Ok(())
    }
}

/// What a walk over one context value found.
#[derive(Default)]
struct Scan {
    /// Longest string (values and nested struct keys) in bytes.
    longest: usize,
    /// Why the value is malformed, if it is.
    malformed: Option<&'static str>,
}

/// Values and bytes seen so far in one context, across all its attributes.
#[derive(Default)]
struct Total {
    nodes: usize,
    bytes: usize,
}

/// Bytes a scalar counts for in [`Total`]: its length for a string, 8 otherwise.
fn scalar_bytes(kind: Option<&Kind>) -> usize {
    match kind {
        Some(Kind::StringValue(s)) => s.len(),
        _ => 8,
    }
}

/// Walks a value (lists and structs included) iteratively, so that nesting cannot
/// exhaust the stack (prost already caps nesting at 100 while decoding). Nested
/// values are added to `total` as they are walked, and the walk stops as soon as
/// the context is over its limits, so a huge value costs no more than the limit.
fn scan(kind: Option<&Kind>, total: &mut Total, limits: &Limits) -> Scan {
    let mut out = Scan::default();
    total.bytes += scalar_bytes(kind);
    // Scalars (nearly every attribute) need no stack, so no allocation.
    match kind {
        Some(Kind::StringValue(s)) => {
            out.longest = s.len();
            return out;
        }
        Some(Kind::NumberValue(n)) if n.is_finite() => return out,
        Some(Kind::BoolValue(_)) | Some(Kind::NullValue(_)) => return out,
        _ => {}
    }
    let mut stack: Vec<Option<&Kind>> = vec![kind];
    while let Some(next) = stack.pop() {
        if total.nodes > limits.max_context_nodes || total.bytes > limits.max_context_bytes {
            break;
        }
        match next {
            None => out.malformed = Some("a value with no kind set"),
            Some(Kind::NumberValue(n)) if !n.is_finite() => {
                out.malformed = Some("a number that is not finite")
            }
            Some(Kind::StringValue(s)) => out.longest = out.longest.max(s.len()),
            Some(Kind::ListValue(l)) => {
                for v in &l.values {
                    total.nodes += 1;
                    total.bytes += scalar_bytes(v.kind.as_ref());
                    stack.push(v.kind.as_ref());
                }
            }
            Some(Kind::StructValue(s)) => {
                for (k, v) in &s.fields {
                    out.longest = out.longest.max(k.len());
                    total.nodes += 1;
                    total.bytes += k.len() + scalar_bytes(v.kind.as_ref());
                    stack.push(v.kind.as_ref());
                }
            }
            Some(_) => {}
        }
        if out.malformed.is_some() {
            break;
        }
    }
    out
}

/// `s` cut to at most `max` bytes on a character boundary, for naming an
/// attribute in an error.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::{ListValue, Value};

    fn s(v: &str) -> Value {
        Value {
            kind: Some(Kind::StringValue(v.into())),
        }
    }

    #[test]
    fn context_limits_name_the_limit() {
        let l = Limits {
            max_context_attributes: 2,
            max_attribute_name_bytes: 4,
            max_string_value_bytes: 3,
            ..Limits::default()
        };
        let mut ctx = Struct::default();
        ctx.fields.insert("a".into(), s("abc"));
        assert_eq!(l.check_context(&ctx), Ok(()));
        ctx.fields.insert("b".into(), s("abcd"));
        let e = l.check_context(&ctx).unwrap_err();
        assert!(e.to_string().contains("--max-string-value-bytes"), "{e}");
        ctx.fields.insert("c".into(), s("x"));
        let e = l.check_context(&ctx).unwrap_err();
        assert_eq!(e, LimitError::ContextAttributes { got: 3, limit: 2 });
        let mut ctx = Struct::default();
        ctx.fields.insert("toolong".into(), s("x"));
        assert!(matches!(
            l.check_context(&ctx),
            Err(LimitError::AttributeName { got: 7, limit: 4 })
        ));
    }

    #[test]
    fn nested_strings_are_checked() {
        let l = Limits {
            max_string_value_bytes: 3,
            ..Limits::default()
        };
        let deep = Value {
            kind: Some(Kind::ListValue(ListValue {
                values: vec![s("ok"), s("too long")],
            })),
        };
        let mut ctx = Struct::default();
        ctx.fields.insert("list".into(), deep);
        assert!(matches!(
            l.check_context(&ctx),
            Err(LimitError::StringValue { got: 8, .. })
        ));
    }

    #[test]
    fn malformed_values_are_named() {
        let l = Limits::default();
        let mut ctx = Struct::default();
        ctx.fields.insert("x".into(), Value { kind: None });
        let e = l.check_context(&ctx).unwrap_err();
        assert!(
            e.to_string().contains("malformed context: attribute `x`"),
            "{e}"
        );
        let mut ctx = Struct::default();
        let nan = Value {
            kind: Some(Kind::NumberValue(f64::NAN)),
        };
        let list = Value {
            kind: Some(Kind::ListValue(ListValue { values: vec![nan] })),
        };
        ctx.fields.insert("n".into(), list);
        assert!(matches!(
            l.check_context(&ctx),
            Err(LimitError::Malformed {
                why: "a number that is not finite",
                ..
            })
        ));
    }

    #[test]
    fn nested_values_count_towards_the_context_total() {
        let l = Limits {
            max_context_nodes: 100,
            max_context_bytes: 1000,
            ..Limits::default()
        };
        let list = |n: usize, v: &str| Value {
            kind: Some(Kind::ListValue(ListValue {
                values: (0..n).map(|_| s(v)).collect(),
            })),
        };
        let mut ctx = Struct::default();
        ctx.fields.insert("a".into(), list(98, "x"));
        assert_eq!(l.check_context(&ctx), Ok(()));
        // One attribute, but 101 values: over the node limit.
        ctx.fields.insert("a".into(), list(100, "x"));
        let e = l.check_context(&ctx).unwrap_err();
        assert!(e.to_string().contains("--max-context-nodes"), "{e}");
        // Few values, many bytes, spread over two attributes.
        let mut ctx = Struct::default();
        ctx.fields.insert("a".into(), list(2, &"y".repeat(300)));
        assert_eq!(l.check_context(&ctx), Ok(()));
        ctx.fields.insert("b".into(), list(2, &"y".repeat(300)));
        let st: tonic::Status = l.check_context(&ctx).unwrap_err().into();
        assert_eq!(st.code(), tonic::Code::InvalidArgument);
        assert!(
            st.message().contains("--max-context-bytes"),
            "{}",
            st.message()
        );
    }

    #[test]
    fn counts_and_keys() {
        let l = Limits {
            max_assign_all_experiments: 1,
            max_exposure_records: 2,
            max_key_bytes: 3,
            ..Limits::default()
        };
        assert!(l.check_assign_all(&["a".into()]).is_ok());
        assert!(l.check_assign_all(&["a".into(), "b".into()]).is_err());
        assert!(l.check_assign_all(&["abcd".into()]).is_err());
        assert!(l.check_exposure_records(2).is_ok());
        assert!(l.check_exposure_records(3).is_err());
        let l = Limits {
            max_track_events: 2,
            ..l
        };
        assert!(l.check_track_events(2).is_ok());
        let e = l.check_track_events(3).unwrap_err();
        assert!(e.to_string().contains("--max-track-events"), "{e}");
        let st: tonic::Status = l.check_key("variant", "abcd").unwrap_err().into();
        assert_eq!(st.code(), tonic::Code::InvalidArgument);
        assert!(st.message().contains("--max-key-bytes"));
    }
}
