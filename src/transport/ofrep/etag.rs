//! Entity tags for bulk evaluations, and the `If-None-Match` comparison.
//!
//! The tag is a hash of the response body itself (as flagd does), not of the
//! config version alone: a bulk answer depends on the context, and a ramp
//! schedule can change it with neither context nor config changing. The body
//! carries the config version in its metadata, so a reload always gives a new
//! tag, and a different context gives a new tag whenever its answers differ.
//! seahash is stable across releases and platforms, so tags survive restarts.
//!
//! The header parser is a few lines of RFC 9110 §13.1.2 (a list of entity tags,
//! `W/` weak comparison, or `*`), small enough not to pull in a crate.

use http::header::{HeaderMap, IF_NONE_MATCH};

/// The strong entity tag of a response body: a quoted 64-bit hash and the length.
pub fn of_body(body: &[u8]) -> String {
    format!("\"{:016x}-{:x}\"", seahash::hash(body), body.len())
}

/// Whether any `If-None-Match` value names `etag` (or is `*`), comparing weakly:
/// the `W/` prefix is ignored, and so are missing quotes, which lenient clients
/// drop.
pub fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    let bare = etag.trim_matches('"');
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(split_list)
        .any(|tag| {
            tag == "*" || {
                let t = tag.strip_prefix("W/").unwrap_or(tag);
                t.trim_matches('"') == bare
            }
        })
}

/// Splits a comma-separated list of entity tags; a comma inside quotes belongs
/// to the tag.
fn split_list(list: &str) -> impl Iterator<Item = &str> {
    let mut quoted = false;
    list.split(move |c| {
        if c == '"' {
            quoted = !quoted;
        }
        c == ',' && !quoted
    })
    .map(str::trim)
    .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(IF_NONE_MATCH, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn tags_depend_on_every_byte() {
        let a = of_body(br#"{"flags":[]}"#);
        assert!(a.starts_with('"') && a.ends_with('"'));
        assert_eq!(a, of_body(br#"{"flags":[]}"#));
        assert_ne!(a, of_body(br#"{"flags":[ ]}"#));
    }

    #[test]
    fn if_none_match_forms() {
        let tag = "\"abc-1\"";
        assert!(none_match(&headers(&["\"abc-1\""]), tag));
        assert!(none_match(&headers(&["abc-1"]), tag));
        assert!(none_match(&headers(&["W/\"abc-1\""]), tag));
        assert!(none_match(&headers(&["\"x\", \"abc-1\""]), tag));
        assert!(none_match(&headers(&["\"x\"", "\"abc-1\""]), tag));
        assert!(none_match(&headers(&["*"]), tag));
        assert!(!none_match(&headers(&[]), tag));
        assert!(!none_match(&headers(&["\"abc-2\""]), tag));
        // A comma inside quotes does not split the tag.
        assert!(!none_match(&headers(&["\"abc-1,x\""]), tag));
    }
}
