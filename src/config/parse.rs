//! Parsing one config file into a [`ConfigDocument`]: JSON or YAML by
//! extension, a single experiment, a list or a whole document; a fast path for
//! well-formed JSON, and on a problem a lenient second pass that locates every
//! bad field (file, experiment, field) instead of stopping at the first.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ConfigError;
use super::lenient;
use super::model::{ConfigDocument, ExperimentConfig};

/// One parsed config file.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceFile {
    /// Where it came from.
    pub path: PathBuf,
    /// Its contents, normalised to document form.
    pub doc: ConfigDocument,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Json,
    Yaml,
}

pub(super) fn format_of(path: &Path) -> Option<Format> {
    match path.extension()?.to_str()? {
        "json" => Some(Format::Json),
        "yaml" | "yml" => Some(Format::Yaml),
        _ => None,
    }
}

/// Parses one file: a single experiment, a list of experiments, or a document.
/// A leading UTF-8 byte order mark is skipped; errors quote file values only in
/// part (see [`super::redact`]).
pub fn parse_file(path: &Path, bytes: &[u8]) -> Result<ConfigDocument, Vec<ConfigError>> {
    match parse_file_partial(path, bytes) {
        (Some(doc), errors) if errors.is_empty() => Ok(doc),
        (_, errors) => Err(errors),
    }
}

/// [`parse_file`] that goes on after a problem: every problem found, and the
/// document as far as it could be read (bad fields repaired, see
/// [`super::lenient`]) so later checks can find that file's other problems.
/// The document is `None` when the file could not be read as a whole.
pub fn parse_file_partial(path: &Path, bytes: &[u8]) -> (Option<ConfigDocument>, Vec<ConfigError>) {
    match parse_file_inner(path, bytes) {
        Ok(doc) => (Some(doc), Vec::new()),
        Err(Partial(doc, errors)) => (
            doc.map(|d| *d),
            errors.into_iter().map(super::redact::redact).collect(),
        ),
    }
}

/// Problems, with the document as far as it could be read.
struct Partial(Option<Box<ConfigDocument>>, Vec<ConfigError>);

impl From<Vec<ConfigError>> for Partial {
    fn from(errors: Vec<ConfigError>) -> Self {
        Partial(None, errors)
    }
}

fn parse_file_inner(path: &Path, bytes: &[u8]) -> Result<ConfigDocument, Partial> {
    let fmt = format_of(path).unwrap_or(Format::Json);
    let text = std::str::from_utf8(bytes)
        .map_err(|e| vec![ConfigError::file(path, format!("not valid UTF-8: {e}"))])?;
    let text = text.strip_prefix(super::redact::BOM).unwrap_or(text);
    if fmt == Format::Json {
        if let Some(doc) = parse_json_fast(text) {
            return Ok(doc);
        }
    }
    let value: Value = match fmt {
        Format::Json => serde_json::from_str(text)
            .map_err(|e| vec![ConfigError::file(path, format!("invalid JSON: {e}"))])?,
        Format::Yaml => {
            if text.trim().is_empty() {
                Value::Null
            } else {
                let invalid = |e: serde_norway::Error| {
                    vec![ConfigError::file(path, format!("invalid YAML: {e}"))]
                };
                let yaml: serde_norway::Value = serde_norway::from_str(text).map_err(invalid)?;
                let value: Value = serde_norway::from_str(text).map_err(invalid)?;
                reject_non_finite(path, &yaml, &value)?;
                value
            }
        }
    };
    if super::flagd::is_flagd_document(&value) {
        let flagd = super::flagd::parse_flagd_value(path, &value)?;
        return Ok(ConfigDocument {
            flagd: Some(flagd),
            ..Default::default()
        });
    }
    match &value {
        Value::Null => Ok(ConfigDocument::default()),
        Value::Array(items) => {
            let (experiments, errors) = parse_experiments(path, items, "");
            let doc = ConfigDocument { experiments, ..Default::default() };
            if !errors.is_empty() {
                return Err(Partial(Some(Box::new(doc)), errors));
            }
            typed_recheck::<Vec<ExperimentConfig>>(path, fmt, text, |p| locate_list(items, p))?;
            Ok(doc)
        }
        Value::Object(map) if is_document(map) => {
            // Report each experiment's errors separately, then the rest of the document.
            let mut errors = Vec::new();
            let mut experiments = Vec::new();
            if let Some(Value::Array(items)) = map.get("experiments") {
                let (e, mut errs) = parse_experiments(path, items, "experiments");
                experiments = e;
                errors.append(&mut errs);
            }
            let rest: serde_json::Map<String, Value> =
                map.iter().filter(|(k, _)| k.as_str() != "experiments").map(|(k, v)| (k.clone(), v.clone())).collect();
            let (doc, problems) = lenient::deserialize::<ConfigDocument>(&Value::Object(rest));
            errors.extend(problems.into_iter().map(|p| field_error(path, None, p.path, p.message)));
            if let Some(v) = map.get("experiments") {
                if !v.is_array() {
                    errors.push(ConfigError { file: path.to_owned(), experiment: None, field: Some("experiments".into()), message: "must be a list of experiments".into(), flagd: false });
                }
            }
            // Without the shared part (segments, layers), checking the
            // experiments would report references to it as missing.
            let doc = doc.map(|mut d| {
                d.experiments = experiments;
                d
            });
            if !errors.is_empty() {
                return Err(Partial(doc.map(Box::new), errors));
            }
            typed_recheck::<ConfigDocument>(path, fmt, text, |p| locate_doc(map, p))?;
            Ok(doc.unwrap_or_default())
        }
        Value::Object(_) => {
            let key = experiment_key(&value);
            let (e, problems) = lenient::deserialize::<ExperimentConfig>(&value);
            let doc = e.map(|e| ConfigDocument { experiments: vec![e], ..Default::default() });
            if !problems.is_empty() {
                let errors = problems
                    .into_iter()
                    .map(|p| field_error(path, key.as_deref(), p.path, p.message))
                    .collect();
                return Err(Partial(doc.map(Box::new), errors));
            }
            typed_recheck::<ExperimentConfig>(path, fmt, text, |p| (key.clone(), p.to_string()))?;
            Ok(doc.unwrap_or_default())
        }
        _ => Err(vec![ConfigError::file(
            path,
            "expected an experiment object, a list of experiments, or an object {\"experiments\": [...]}",
        )]
        .into()),
    }
}

/// YAML can spell non-finite floats (`.nan`, `.inf`), which a JSON value cannot
/// hold: they would silently become `null`, i.e. "unset, use the default" (a
/// `trafficAllocation: .nan` would enrol everyone). Reject them, located.
fn reject_non_finite(
    path: &Path,
    yaml: &serde_norway::Value,
    value: &Value,
) -> Result<(), Vec<ConfigError>> {
    let mut found = Vec::new();
    non_finite_paths(yaml, String::new(), &mut found);
    if found.is_empty() {
        return Ok(());
    }
    Err(found
        .into_iter()
        .map(|p| {
            let (key, field) = match value {
                Value::Array(items) => locate_list(items, &p),
                Value::Object(map) if is_document(map) => locate_doc(map, &p),
                _ => (experiment_key(value), p),
            };
            field_error(
                path,
                key.as_deref(),
                field,
                "must be a finite number (`.nan` and `.inf` are not allowed)".into(),
            )
        })
        .collect())
}

fn non_finite_paths(v: &serde_norway::Value, at: String, out: &mut Vec<String>) {
    use serde_norway::Value as Y;
    match v {
        Y::Number(n) if !n.is_finite() => out.push(at),
        Y::Sequence(items) => {
            for (i, x) in items.iter().enumerate() {
                non_finite_paths(x, format!("{at}[{i}]"), out);
            }
        }
        Y::Mapping(m) => {
            for (k, x) in m {
                let key = match k {
                    Y::String(s) => s.clone(),
                    other => format!("{other:?}"),
                };
                let p = if at.is_empty() {
                    key
                } else {
                    format!("{at}.{key}")
                };
                non_finite_paths(x, p, out);
            }
        }
        Y::Tagged(t) => non_finite_paths(&t.value, at, out),
        _ => {}
    }
}

/// The common case, a valid JSON file, in one typed pass. The general path below
/// builds a `Value` tree first so that it can name the experiment and field of an
/// error; that costs three passes and most of a 10,000-experiment reload. Any
/// failure here (or an empty document, whose shape only the general path can
/// tell) falls through to it, so errors are reported exactly as before, and a
/// success gives the same document the general path would (its final check is
/// this very typed parse).
fn parse_json_fast(text: &str) -> Option<ConfigDocument> {
    match text.trim_start().as_bytes().first()? {
        b'[' => serde_json::from_str::<Vec<ExperimentConfig>>(text)
            .ok()
            .map(|experiments| ConfigDocument {
                experiments,
                ..Default::default()
            }),
        b'{' => match serde_json::from_str::<ConfigDocument>(text) {
            Ok(doc) if doc != ConfigDocument::default() => Some(doc),
            Ok(_) => None,
            Err(_) => serde_json::from_str::<ExperimentConfig>(text)
                .ok()
                .map(|e| ConfigDocument {
                    experiments: vec![e],
                    ..Default::default()
                }),
        },
        _ => None,
    }
}

fn is_document(map: &serde_json::Map<String, Value>) -> bool {
    !map.contains_key("experimentId")
        && !map.contains_key("key")
        && ["experiments", "segments", "layers", "holdouts"]
            .iter()
            .any(|k| map.contains_key(*k))
}

fn experiment_key(v: &Value) -> Option<String> {
    v.get("experimentId")
        .or_else(|| v.get("key"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn field_error(path: &Path, key: Option<&str>, field: String, message: String) -> ConfigError {
    let field = if field == "." || field.is_empty() {
        None
    } else {
        Some(field)
    };
    ConfigError {
        file: path.to_owned(),
        experiment: key.map(str::to_owned),
        field,
        message,
        flagd: false,
    }
}

fn parse_experiments(
    path: &Path,
    items: &[Value],
    prefix: &str,
) -> (Vec<ExperimentConfig>, Vec<ConfigError>) {
    let mut out = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let key = experiment_key(item);
        let (e, problems) = lenient::deserialize::<ExperimentConfig>(item);
        out.extend(e);
        for p in problems {
            let mut err = field_error(path, key.as_deref(), p.path, p.message);
            if key.is_none() {
                let at = if prefix.is_empty() {
                    format!("[{i}]")
                } else {
                    format!("{prefix}[{i}]")
                };
                err.field = Some(match err.field {
                    Some(f) => format!("{at}.{f}"),
                    None => at,
                });
            }
            errors.push(err)
        }
    }
    (out, errors)
}

/// Deserializes the typed form straight from the text, which catches what a
/// `Value` cannot show: a field written twice in one object.
fn typed_recheck<T: DeserializeOwned>(
    path: &Path,
    fmt: Format,
    text: &str,
    locate: impl Fn(&str) -> (Option<String>, String),
) -> Result<(), Vec<ConfigError>> {
    let result: Result<T, (String, String)> = match fmt {
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(&mut de)
                .map_err(|e| (e.path().to_string(), e.inner().to_string()))
        }
        Format::Yaml => {
            let de = serde_norway::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de)
                .map_err(|e| (e.path().to_string(), e.inner().to_string()))
        }
    };
    match result {
        Ok(_) => Ok(()),
        Err((p, msg)) => {
            let (key, field) = locate(&p);
            Err(vec![field_error(path, key.as_deref(), field, msg)])
        }
    }
}

/// Splits a path like `[3].variants[0].weight` into the experiment at index 3 and
/// the rest.
fn locate_list(items: &[Value], p: &str) -> (Option<String>, String) {
    if let Some(rest) = p.strip_prefix('[') {
        if let Some((idx, tail)) = rest.split_once(']') {
            if let Ok(i) = idx.parse::<usize>() {
                let tail = tail.strip_prefix('.').unwrap_or(tail).to_string();
                return (items.get(i).and_then(experiment_key), tail);
            }
        }
    }
    (None, p.to_string())
}

fn locate_doc(map: &serde_json::Map<String, Value>, p: &str) -> (Option<String>, String) {
    if let (Some(rest), Some(Value::Array(items))) =
        (p.strip_prefix("experiments"), map.get("experiments"))
    {
        return locate_list(items, rest);
    }
    (None, p.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str, text: &str) -> Result<ConfigDocument, Vec<ConfigError>> {
        parse_file(Path::new(name), text.as_bytes())
    }

    #[test]
    fn three_shapes_parse_to_the_same_experiments() {
        let one = r#"{"key":"a","status":"running","variants":["x","y"]}"#;
        let list = format!("[{one}]");
        let doc = format!("{{\"experiments\":[{one}]}}");
        let a = parse("a.json", one).unwrap();
        assert_eq!(a.experiments.len(), 1);
        assert_eq!(a, parse("b.json", &list).unwrap());
        assert_eq!(a, parse("c.json", &doc).unwrap());
        let yaml = "key: a\nstatus: running\nvariants: [x, y]\n";
        assert_eq!(a, parse("d.yaml", yaml).unwrap());
    }

    #[test]
    fn unknown_field_names_file_experiment_and_field() {
        let text = r#"[{"key":"ok","status":"running","variants":["x"]},
                       {"key":"bad","status":"running","variants":[{"key":"x","wieght":2}]}]"#;
        let errs = parse("f.json", text).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].experiment.as_deref(), Some("bad"));
        assert_eq!(errs[0].field.as_deref(), Some("variants[0].wieght"));
        assert!(errs[0].message.contains("wieght"), "{}", errs[0].message);
        assert!(errs[0].to_string().starts_with("f.json: experiment `bad`"));
    }

    #[test]
    fn every_bad_experiment_is_reported() {
        let text = r#"{"experiments":[{"key":"a","status":"runing","variants":["x"]},
                                       {"key":"b","status":"running","variants":["x"],"trafficAllocation":"half"}]}"#;
        let errs = parse("f.json", text).unwrap_err();
        let keys: Vec<_> = errs.iter().map(|e| e.experiment.clone().unwrap()).collect();
        assert_eq!(keys, vec!["a", "b"]);
        assert_eq!(errs[1].field.as_deref(), Some("trafficAllocation"));
    }

    #[test]
    fn duplicate_field_in_json_is_an_error() {
        let text = r#"{"key":"a","status":"running","status":"draft","variants":["x"]}"#;
        let errs = parse("f.json", text).unwrap_err();
        assert!(
            errs[0].message.contains("duplicate field"),
            "{}",
            errs[0].message
        );
        assert_eq!(errs[0].experiment.as_deref(), Some("a"));
    }

    #[test]
    fn the_json_fast_path_agrees_with_the_general_path() {
        let checkout = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/configs/checkout.json"),
        )
        .unwrap();
        let texts = [
            checkout.clone(),
            format!(
                "[{checkout}, {}]",
                checkout.replace("exp-checkout-flow-v3", "b")
            ),
            r#"{"segments":{"us":{"include":["region:US"]}},
                "layers":[{"key":"l","salt":"s"}],
                "experiments":[{"key":"a","status":"running","variants":["x"],
                                "layer":{"key":"l","range":[0,0.5]}}]}"#
                .to_string(),
        ];
        for text in &texts {
            let fast = parse_json_fast(text).expect("valid JSON takes the fast path");
            // YAML reads JSON too, and always takes the general path.
            assert_eq!(fast, parse("same.yaml", text).unwrap());
        }
        // Shapes only the general path can tell, and invalid files, fall through.
        for text in [
            "{}",
            "[",
            r#"{"key":"a","status":"running","variants":["x"],"wieght":1}"#,
        ] {
            assert_eq!(parse_json_fast(text), None);
        }
        assert!(parse("f.json", "{}").is_err());
    }

    #[test]
    fn unparseable_files_are_errors_not_panics() {
        assert!(parse("f.json", "{").is_err());
        assert!(parse("f.yaml", "a: [").is_err());
        assert!(parse("f.json", "42").is_err());
        assert!(parse_file(Path::new("f.json"), &[0xff, 0xfe]).is_err());
        assert_eq!(parse("f.yaml", "").unwrap(), ConfigDocument::default());
    }

    #[test]
    fn yaml_non_finite_numbers_are_errors_not_defaults() {
        let errs = parse(
            "f.yaml",
            "experiments:\n  - key: a\n    status: running\n    trafficAllocation: .nan\n    variants: [{key: x, weight: .inf}]\n",
        )
        .unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.clone().unwrap()).collect();
        assert_eq!(fields, ["trafficAllocation", "variants[0].weight"]);
        assert!(errs.iter().all(|e| e.experiment.as_deref() == Some("a")));
        let errs = parse(
            "g.yaml",
            "key: b\nstatus: running\nvariants: [x]\ntrafficAllocation: -.inf\n",
        )
        .unwrap_err();
        assert_eq!(errs[0].field.as_deref(), Some("trafficAllocation"));
        assert_eq!(errs[0].experiment.as_deref(), Some("b"));
    }
}
