//! The content-derived version of a snapshot.
//!
//! The version is SeaHash of the merged document serialised as compact JSON
//! (experiments sorted by key, then segments, layers and holdouts), followed,
//! when there are flagd flags, by a zero byte and the flag set's document. Pods
//! on old and new releases must agree on it, so those bytes never change.
//!
//! What changed is how they are produced: compact JSON has no state between
//! fields, so the document's bytes are `{"experiments":[` + each experiment's
//! own serialisation joined by `,` + `]` + the rest of the document's fields.
//! Each experiment keeps its serialisation (`Experiment::canonical`, made when
//! it is compiled and shared with the snapshots that reuse it), so a reload
//! serialises only the experiments it compiled, plus the small shared
//! declarations, then hashes one buffer. The tests below compare the result
//! with serialising the whole document.

use crate::config::ConfigDocument;

use super::flagd::FlagdSet;
use super::Experiment;

/// The version of a snapshot of `experiments` (sorted by key, each with its
/// serialised config) and `rest` (the document without its experiments).
pub(super) fn content_version(
    experiments: &[Experiment],
    rest: &ConfigDocument,
    flagd: &FlagdSet,
) -> String {
    debug_assert!(rest.experiments.is_empty());
    let tail = serde_json::to_vec(rest).unwrap_or_default();
    let mut content = document_bytes(experiments.iter().map(|e| &*e.canonical), &tail);
    // The version covers both formats: the cohortd document, then the flagd
    // flag set as in-process providers receive it (absent when empty, so a
    // cohortd-only config keeps the version it always had).
    if !flagd.is_empty() {
        content.push(0);
        if let Some(d) = flagd.document(None) {
            content.extend(serde_json::to_vec(&d).unwrap_or_default());
        }
    }
    hex64(&content)
}

/// SeaHash of `bytes` as 16 hex digits: the form of versions and salt
/// fingerprints.
pub(super) fn hex64(bytes: &[u8]) -> String {
    hex_u64(seahash::hash(bytes))
}

/// A 64-bit hash as 16 hex digits (see [`hex64`]).
pub(super) fn hex_u64(h: u64) -> String {
    format!("{h:016x}")
}

/// The compact JSON of a document whose experiments serialise to `experiments`
/// and whose other fields serialise (alone) to `tail`, an object: `{}` or
/// `{"segments":…}`.
fn document_bytes<'a>(
    experiments: impl ExactSizeIterator<Item = &'a [u8]> + Clone,
    tail: &[u8],
) -> Vec<u8> {
    if experiments.len() == 0 {
        return tail.to_vec();
    }
    let len: usize = experiments.clone().map(|e| e.len() + 1).sum();
    let mut out = Vec::with_capacity(len + tail.len() + 18);
    out.extend_from_slice(b"{\"experiments\":[");
    for (i, e) in experiments.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(e);
    }
    out.push(b']');
    match tail {
        // `{}`: no other field.
        [b'{', b'}'] | [] => out.push(b'}'),
        [b'{', rest @ ..] => {
            out.push(b',');
            out.extend_from_slice(rest);
        }
        // Not an object: never produced by serde for a struct.
        other => out.extend_from_slice(other),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_file, ExperimentConfig};

    /// The bytes must equal those of serialising the whole document.
    fn check(text: &str) {
        let doc = parse_file(std::path::Path::new("a.json"), text.as_bytes()).unwrap();
        let mut sorted: Vec<&ExperimentConfig> = doc.experiments.iter().collect();
        sorted.sort_by(|a, b| a.experiment_id.cmp(&b.experiment_id));
        let whole = ConfigDocument {
            experiments: sorted.iter().map(|e| (*e).clone()).collect(),
            ..doc.clone()
        };
        let parts: Vec<Vec<u8>> = sorted
            .iter()
            .map(|e| serde_json::to_vec(e).unwrap())
            .collect();
        let rest = ConfigDocument {
            experiments: Vec::new(),
            ..doc
        };
        let tail = serde_json::to_vec(&rest).unwrap();
        assert_eq!(
            String::from_utf8(document_bytes(parts.iter().map(|p| &p[..]), &tail)).unwrap(),
            String::from_utf8(serde_json::to_vec(&whole).unwrap()).unwrap(),
            "{text}"
        );
    }

    #[test]
    fn pieces_join_to_the_whole_document() {
        check("[]");
        check(r#"{"segments":{"s":{"include":["a:b"]}}}"#);
        check(r#"{"holdouts":[{"key":"h","fraction":0.1}]}"#);
        check(
            r#"[{"key":"b","status":"draft","variants":["x"]},{"key":"a","variants":["x","y"],"status":"running"}]"#,
        );
        check(
            r#"{"experiments":[{"key":"a","status":"running","variants":["x"],"layer":{"key":"l","range":[0,0.5]},"holdout":"h"}],
                "segments":{"s":{"include":["a:b"]}},
                "layers":[{"key":"l","salt":"q"}],
                "holdouts":[{"key":"h","fraction":0.1}]}"#,
        );
        check(
            r#"{"experiments":[{"key":"a","status":"paused","variants":["x"]}],"layers":[{"key":"l"}]}"#,
        );
    }
}
