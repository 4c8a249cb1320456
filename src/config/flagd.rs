//! flagd flag-definition documents, as flagd users write them.
//!
//! A document is a JSON or YAML object with `flags` (and optionally `$schema`,
//! `$evaluators` and `metadata`); see <https://flagd.dev/reference/flag-definitions/>.
//! The format is recognised from the content ([`is_flagd_document`]), never from the
//! file name, so a team can point cohortd at the files it already gives flagd.
//!
//! Parsing checks everything flagd's own loaders check (state, variants, default
//! variant, metadata types) and resolves `{"$ref": "name"}` against `$evaluators`.
//! Targeting stays a JSON value here; the snapshot compiles it once per reload.
//! Every problem is reported, each naming the file, the flag and the field.

use std::path::Path;

use serde_json::{Map, Value};

use super::error::ConfigError;

/// More flags than this in one file is refused (a file is a resource callers grow).
pub const MAX_FLAGS_PER_FILE: usize = 100_000;
/// More variants than this in one flag is refused.
pub const MAX_VARIANTS: usize = 10_000;
/// `$ref` chains deeper than this are refused (and catch cycles).
const MAX_REF_DEPTH: usize = 32;
/// Targeting nested deeper than this is refused (evaluation recurses over it).
pub const MAX_DEPTH: usize = 128;

/// Whether a flag is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagdState {
    /// Evaluated normally.
    Enabled,
    /// Always resolves to the caller's default with reason DISABLED.
    Disabled,
}

/// One flag as written (after `$ref` resolution).
#[derive(Debug, Clone, PartialEq)]
pub struct FlagdFlagConfig {
    /// The flag key.
    pub key: String,
    /// ENABLED or DISABLED.
    pub state: FlagdState,
    /// Variant name -> value, in file order (boolean, string, number or object).
    pub variants: Map<String, Value>,
    /// The default variant; `None` (null, absent or "") means the caller's default.
    pub default_variant: Option<String>,
    /// JSONLogic targeting with every `$ref` replaced; `None` when absent, null or `{}`.
    pub targeting: Option<Value>,
    /// The flag's own metadata (flat: string, number or boolean values).
    pub metadata: Map<String, Value>,
}

/// A whole flagd document.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FlagdDocument {
    /// `$schema`, when given (informational).
    pub schema: Option<String>,
    /// Flag-set metadata, merged under each flag's own metadata.
    pub metadata: Map<String, Value>,
    /// The flags, in file order.
    pub flags: Vec<FlagdFlagConfig>,
}

impl FlagdDocument {
    /// Flag-set metadata overlaid with the flag's own (the flag wins), as flagd merges them.
    pub fn merged_metadata(&self, flag: &FlagdFlagConfig) -> Map<String, Value> {
        let mut out = self.metadata.clone();
        for (k, v) in &flag.metadata {
            out.insert(k.clone(), v.clone());
        }
        out
    }
}

/// True when `value` is a flagd flag-definition document: a top-level object with `flags`.
pub fn is_flagd_document(value: &Value) -> bool {
    matches!(value, Value::Object(m) if m.contains_key("flags"))
}

/// Parses a flagd document from JSON (`yaml == false`) or YAML text.
pub fn parse_flagd_text(
    file: &Path,
    text: &str,
    yaml: bool,
) -> Result<FlagdDocument, Vec<ConfigError>> {
    let value: Value = if yaml {
        serde_norway::from_str(text)
            .map_err(|e| vec![ConfigError::file(file, format!("invalid YAML: {e}"))])?
    } else {
        serde_json::from_str(text)
            .map_err(|e| vec![ConfigError::file(file, format!("invalid JSON: {e}"))])?
    };
    parse_flagd_value(file, &value)
}

/// Parses and validates a flagd document already read as a JSON value.
pub fn parse_flagd_value(file: &Path, value: &Value) -> Result<FlagdDocument, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let doc_field = |field: &str, msg: String| ConfigError {
        file: file.to_owned(),
        experiment: None,
        field: Some(field.to_owned()),
        message: msg,
        flagd: false,
    };
    let Some(root) = value.as_object() else {
        return Err(vec![ConfigError::file(
            file,
            "a flagd document must be an object with `flags`",
        )]);
    };
    let schema = match root.get("$schema") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            errors.push(doc_field(
                "$schema",
                format!("must be a string, found {}", kind(other)),
            ));
            None
        }
    };
    let metadata = match root.get("metadata") {
        None | Some(Value::Null) => Map::new(),
        Some(v) => check_metadata(v, "metadata")
            .map_err(|(f, m)| errors.push(doc_field(&f, m)))
            .unwrap_or_default(),
    };
    let evaluators = match root.get("$evaluators") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => {
            errors.push(doc_field(
                "$evaluators",
                format!(
                    "must be an object of named JSONLogic rules, found {}",
                    kind(other)
                ),
            ));
            Map::new()
        }
    };
    for (name, rule) in &evaluators {
        if !matches!(rule, Value::Object(m) if !m.is_empty()) {
            errors.push(doc_field(
                &format!("$evaluators.{name}"),
                "an evaluator must be a non-empty JSONLogic object".into(),
            ));
        }
    }
    let flags = match root.get("flags") {
        Some(Value::Object(m)) => m,
        Some(other) => {
            errors.push(doc_field(
                "flags",
                format!("must be an object keyed by flag key, found {}", kind(other)),
            ));
            return Err(errors);
        }
        None => {
            errors.push(ConfigError::file(file, "a flagd document needs `flags`"));
            return Err(errors);
        }
    };
    if flags.len() > MAX_FLAGS_PER_FILE {
        errors.push(doc_field(
            "flags",
            format!(
                "{} flags in one file; the limit is {MAX_FLAGS_PER_FILE}",
                flags.len()
            ),
        ));
        return Err(errors);
    }
    let mut out = Vec::with_capacity(flags.len());
    for (key, def) in flags {
        match parse_flag(key, def, &evaluators) {
            Ok(f) => out.push(f),
            Err(errs) => errors.extend(errs.into_iter().map(|(field, message)| ConfigError {
                file: file.to_owned(),
                experiment: Some(key.clone()),
                field: Some(field),
                message,
                flagd: true,
            })),
        }
    }
    if errors.is_empty() {
        Ok(FlagdDocument {
            schema,
            metadata,
            flags: out,
        })
    } else {
        Err(errors)
    }
}

type FieldErrors = Vec<(String, String)>;

fn parse_flag(
    key: &str,
    def: &Value,
    evaluators: &Map<String, Value>,
) -> Result<FlagdFlagConfig, FieldErrors> {
    let mut errs: FieldErrors = Vec::new();
    let Some(def) = def.as_object() else {
        return Err(vec![(
            "".into(),
            format!("a flag must be an object, found {}", kind(def)),
        )]);
    };
    if key.is_empty() {
        errs.push(("".into(), "flag keys must not be empty".into()));
    }
    let state = match def.get("state") {
        Some(Value::String(s)) if s == "ENABLED" => FlagdState::Enabled,
        Some(Value::String(s)) if s == "DISABLED" => FlagdState::Disabled,
        Some(other) => {
            errs.push((
                "state".into(),
                format!("must be \"ENABLED\" or \"DISABLED\", found {other}"),
            ));
            FlagdState::Disabled
        }
        None => {
            errs.push((
                "state".into(),
                "missing: must be \"ENABLED\" or \"DISABLED\"".into(),
            ));
            FlagdState::Disabled
        }
    };
    let variants = match def.get("variants") {
        Some(Value::Object(m)) if !m.is_empty() => {
            if m.len() > MAX_VARIANTS {
                errs.push((
                    "variants".into(),
                    format!("{} variants; the limit is {MAX_VARIANTS}", m.len()),
                ));
            }
            for (name, v) in m {
                if v.is_null() {
                    errs.push((
                        format!("variants.{name}"),
                        "a variant value must not be null".into(),
                    ));
                }
            }
            m.clone()
        }
        Some(Value::Object(_)) => {
            errs.push(("variants".into(), "needs at least one variant".into()));
            Map::new()
        }
        Some(other) => {
            errs.push((
                "variants".into(),
                format!(
                    "must be an object of variant name -> value, found {}",
                    kind(other)
                ),
            ));
            Map::new()
        }
        None => {
            errs.push((
                "variants".into(),
                "missing: a flag needs at least one variant".into(),
            ));
            Map::new()
        }
    };
    // flagd accepts a string, null or absent; "" means "no default" in the providers, and
    // a boolean names the variant "true"/"false" as the Python provider reads it.
    let default_variant = match def.get("defaultVariant") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        Some(other) => {
            errs.push((
                "defaultVariant".into(),
                format!("must be a variant name or null, found {}", kind(other)),
            ));
            None
        }
    };
    if let Some(d) = &default_variant {
        if !variants.is_empty() && !variants.contains_key(d) {
            let names: Vec<&str> = variants.keys().map(String::as_str).collect();
            errs.push((
                "defaultVariant".into(),
                format!("`{d}` is not one of the variants ({})", names.join(", ")),
            ));
        }
    }
    let targeting = match def.get("targeting") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) if m.is_empty() => None,
        Some(t @ Value::Object(_)) => match resolve_refs(t, evaluators, 0, 0) {
            Ok(v) => Some(v),
            Err(m) => {
                errs.push(("targeting".into(), m));
                None
            }
        },
        Some(other) => {
            errs.push((
                "targeting".into(),
                format!("must be a JSONLogic object, found {}", kind(other)),
            ));
            None
        }
    };
    let metadata = match def.get("metadata") {
        None | Some(Value::Null) => Map::new(),
        Some(v) => check_metadata(v, "metadata")
            .map_err(|e| errs.push(e))
            .unwrap_or_default(),
    };
    for field in def.keys() {
        if !matches!(
            field.as_str(),
            "state"
                | "variants"
                | "defaultVariant"
                | "targeting"
                | "metadata"
                | "source"
                | "selector"
        ) {
            errs.push((field.clone(), "unknown field (flagd flags have state, variants, defaultVariant, targeting and metadata)".into()));
        }
    }
    if errs.is_empty() {
        Ok(FlagdFlagConfig {
            key: key.to_owned(),
            state,
            variants,
            default_variant,
            targeting,
            metadata,
        })
    } else {
        Err(errs)
    }
}

/// Metadata is flat: string, number or boolean values (flagd-schemas `flags.json`).
fn check_metadata(v: &Value, at: &str) -> Result<Map<String, Value>, (String, String)> {
    let Value::Object(m) = v else {
        return Err((at.into(), format!("must be an object, found {}", kind(v))));
    };
    for (k, val) in m {
        if k.is_empty() {
            return Err((at.into(), "metadata keys must not be empty".into()));
        }
        if !matches!(val, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
            return Err((
                format!("{at}.{k}"),
                format!(
                    "metadata values are strings, numbers or booleans, found {}",
                    kind(val)
                ),
            ));
        }
    }
    Ok(m.clone())
}

/// Replaces every `{"$ref": "name", ...}` object with the named evaluator's entries
/// (plus any sibling keys), as flagd's textual substitution does. flagd's pattern allows
/// whitespace between `"$ref":` and the name, which JSON parsing already absorbs; the
/// name itself must match exactly.
fn resolve_refs(
    v: &Value,
    evaluators: &Map<String, Value>,
    depth: usize,
    refs: usize,
) -> Result<Value, String> {
    if refs > MAX_REF_DEPTH {
        return Err(format!(
            "`$ref` nesting deeper than {MAX_REF_DEPTH} (a cycle between evaluators?)"
        ));
    }
    if depth > MAX_DEPTH {
        return Err(format!("targeting nested deeper than {MAX_DEPTH} levels"));
    }
    match v {
        Value::Object(m) => {
            if let Some(r) = m.get("$ref") {
                let Value::String(name) = r else {
                    return Err(format!("`$ref` must name an evaluator, found {}", kind(r)));
                };
                let Some(Value::Object(body)) = evaluators.get(name) else {
                    let known: Vec<&str> = evaluators.keys().map(String::as_str).collect();
                    return Err(format!(
                        "`$ref` names evaluator `{name}`, which `$evaluators` does not define (defined: {})",
                        if known.is_empty() { "none".to_string() } else { known.join(", ") }
                    ));
                };
                let mut out = Map::new();
                for (k, val) in body {
                    out.insert(
                        k.clone(),
                        resolve_refs(val, evaluators, depth + 1, refs + 1)?,
                    );
                }
                for (k, val) in m {
                    if k != "$ref" {
                        out.insert(k.clone(), resolve_refs(val, evaluators, depth + 1, refs)?);
                    }
                }
                return Ok(Value::Object(out));
            }
            let mut out = Map::with_capacity(m.len());
            for (k, val) in m {
                out.insert(k.clone(), resolve_refs(val, evaluators, depth + 1, refs)?);
            }
            Ok(Value::Object(out))
        }
        Value::Array(a) => a
            .iter()
            .map(|x| resolve_refs(x, evaluators, depth + 1, refs))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

/// A short name of a JSON value's type, for error messages.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
