//! Deserializing a config value so that every problem in it is reported, not
//! only the first one serde stops at.
//!
//! serde stops at the first error in a struct. To report the others in the same
//! run, the failing field is repaired in a copy of the value (an unknown field is
//! removed, a bad value is removed so its default applies, and a bad `status` is
//! read as `draft`) and the value is deserialized again, up to
//! [`MAX_PROBLEMS`] times. A repaired value still parses into a typed config,
//! so the checks that follow (unknown variant references, weights, layers) run
//! on it too; the caller refuses the file anyway, since it had errors.
//!
//! Messages are rewritten for the person reading them: serde's "unknown variant"
//! collides with experiment variants, so a bad enum value says which setting it
//! is ("unknown status `runing`") and both unknown names and values suggest the
//! closest valid one.

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_path_to_error::Segment;

use super::suggest::did_you_mean;

/// The most problems reported for one value (an experiment, or a document's
/// shared part); a file of garbage stops here instead of looping.
pub const MAX_PROBLEMS: usize = 50;

/// A problem found at `path` (e.g. `variants[0].weight`; empty for the value itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where, relative to the value deserialized.
    pub path: String,
    /// What is wrong, for a person.
    pub message: String,
}

/// Placeholder for a required field whose value was bad, so the rest of the
/// value can still be checked: a draft is checked like any other experiment but
/// adds no running-only checks of its own.
fn placeholder(field: &str) -> Option<Value> {
    match field {
        "status" => Some(Value::String("draft".into())),
        _ => None,
    }
}

/// Deserializes `value` as `T`, collecting every problem found. Returns the
/// typed value when it (or its repaired copy) parses; `None` when a problem
/// cannot be repaired (a missing required field, a bad list item).
pub fn deserialize<T: DeserializeOwned>(value: &Value) -> (Option<T>, Vec<Problem>) {
    let mut v = value.clone();
    let mut problems = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    while problems.len() < MAX_PROBLEMS {
        let err = match serde_path_to_error::deserialize::<_, T>(&v) {
            Ok(t) => return (Some(t), problems),
            Err(e) => e,
        };
        let segments: Vec<Segment> = err.path().iter().cloned().collect();
        let path = err.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let raw = err.inner().to_string();
        if let Some(field) = quoted_after(&raw, "missing field `") {
            // A field we removed ourselves was reported already.
            let full = join(&path, field);
            if !removed.contains(&full) {
                problems.push(Problem { path, message: raw });
            }
            return (None, problems);
        }
        let last = match segments.last() {
            Some(Segment::Map { key }) => key.clone(),
            _ => {
                problems.push(Problem {
                    path,
                    message: friendly(&raw, ""),
                });
                return (None, problems);
            }
        };
        problems.push(Problem {
            path: path.clone(),
            message: friendly(&raw, &last),
        });
        let Some(Value::Object(parent)) = navigate(&mut v, &segments[..segments.len() - 1]) else {
            return (None, problems);
        };
        match placeholder(&last) {
            Some(p) if parent.get(&last) != Some(&p) => {
                parent.insert(last, p);
            }
            _ => {
                parent.remove(&last);
                removed.push(path);
            }
        }
    }
    (None, problems)
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

fn navigate<'v>(v: &'v mut Value, segments: &[Segment]) -> Option<&'v mut Value> {
    let mut at = v;
    for s in segments {
        at = match s {
            Segment::Seq { index } => at.get_mut(*index)?,
            Segment::Map { key } => at.get_mut(key.as_str())?,
            Segment::Enum { .. } | Segment::Unknown => return None,
        };
    }
    Some(at)
}

/// The text between `prefix` and the next backtick.
fn quoted_after<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = s.strip_prefix(prefix)?;
    rest.split_once('`').map(|(q, _)| q)
}

/// The names in serde's "expected one of `a`, `b`" (or "expected `a`").
fn expected_names(s: &str) -> Vec<&str> {
    let Some((_, list)) = s.split_once("expected ") else {
        return Vec::new();
    };
    let list = list.strip_prefix("one of ").unwrap_or(list);
    list.split(", ")
        .filter_map(|n| n.trim().strip_prefix('`')?.strip_suffix('`'))
        .collect()
}

/// Rewrites serde's unknown-field and unknown-variant messages; `field` is the
/// setting the value belongs to (`status`, `op`, ...).
pub fn friendly(raw: &str, field: &str) -> String {
    let (word, what) = if let Some(w) = quoted_after(raw, "unknown field `") {
        (w, "field".to_owned())
    } else if let Some(w) = quoted_after(raw, "unknown variant `") {
        let what = if field.is_empty() { "value" } else { field };
        (w, what.to_owned())
    } else {
        return raw.to_owned();
    };
    let names = expected_names(raw);
    let hint = did_you_mean(word, names.iter().copied());
    // A long field list adds nothing to a good suggestion; values are few.
    let valid = if names.is_empty() || (what == "field" && !hint.is_empty()) {
        String::new()
    } else {
        format!(" (valid: {})", names.join(", "))
    };
    format!("unknown {what} `{word}`{hint}{valid}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ExperimentConfig;

    #[test]
    fn every_problem_of_one_experiment_is_found() {
        let v: Value = serde_json::from_str(
            r#"{"key":"a","status":"runing","trafficAlocation":0.5,"winer":"x",
                "variants":["x",{"key":"y","wieght":2}],"assignment":{"strategy":"md5"}}"#,
        )
        .unwrap();
        let (typed, problems) = deserialize::<ExperimentConfig>(&v);
        let mut paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
        paths.sort_unstable();
        assert_eq!(
            paths,
            [
                "assignment.strategy",
                "status",
                "trafficAlocation",
                "variants[1].wieght",
                "winer"
            ]
        );
        let status = problems.iter().find(|p| p.path == "status").unwrap();
        assert_eq!(
            status.message,
            "unknown status `runing`; did you mean `running`? (valid: draft, running, paused, stopped, completed)"
        );
        assert!(problems[1]
            .message
            .contains("did you mean `trafficAllocation`"));
        assert!(typed.is_some(), "the repaired experiment is still checked");
    }

    #[test]
    fn a_missing_required_field_stops_without_repeating_itself() {
        let v: Value =
            serde_json::from_str(r#"{"key":"a","status":"running","variants":3}"#).unwrap();
        let (typed, problems) = deserialize::<ExperimentConfig>(&v);
        assert!(typed.is_none());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "variants");
    }
}
