//! The JSON Schema of the config format, generated from the serde types so it
//! cannot drift from what the loader accepts. Editors and CI validate ConfigMaps
//! against the committed copy, `deploy/schema/cohortd-config.schema.json`.

use schemars::JsonSchema;

use crate::config::{ConfigDocument, ExperimentConfig};

/// What one config file may hold (the loader's three shapes, or nothing).
#[derive(JsonSchema)]
#[serde(untagged)]
#[schemars(
    title = "cohortd config file",
    description = "One experiment, a list of experiments, or a document with experiments, segments, layers and holdouts. Regenerate with `cohortd schema`."
)]
#[allow(dead_code, clippy::large_enum_variant)]
enum ConfigFile {
    /// A document: experiments plus shared segments, layers and holdouts.
    Document(ConfigDocument),
    /// A single experiment.
    Experiment(ExperimentConfig),
    /// A list of experiments.
    List(Vec<ExperimentConfig>),
    /// An empty file.
    Empty(()),
}

/// The schema as a JSON value.
pub fn schema() -> serde_json::Value {
    let mut v = schemars::schema_for!(ConfigFile).to_value();
    allow_key_alias(&mut v);
    add_flagd(&mut v);
    v
}

/// A flagd flag-definition document is one more thing a file may hold.
fn add_flagd(root: &mut serde_json::Value) {
    if let Some(any) = root.get_mut("anyOf").and_then(|a| a.as_array_mut()) {
        any.push(serde_json::json!({
            "$ref": "#/$defs/FlagdDocument",
            "description": "A flagd flag-definition document (`flags`, `$evaluators`, `metadata`)."
        }));
    }
    if let Some(defs) = root.get_mut("$defs").and_then(|d| d.as_object_mut()) {
        for (name, def) in super::flagd_schema::defs() {
            defs.insert(name.into(), def);
        }
    }
    if let Some(d) = root.get_mut("description") {
        *d = "One experiment, a list of experiments, a document with experiments, segments, layers and holdouts, or a flagd flag-definition document. Regenerate with `cohortd schema`.".into();
    }
}

/// The schema as pretty-printed JSON with a trailing newline (the committed file).
pub fn schema_text() -> String {
    let mut s = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    s.push('\n');
    s
}

/// `experimentId` may be written `key` (a serde alias, which schemars does not
/// express): accept either property, requiring exactly one of them.
fn allow_key_alias(root: &mut serde_json::Value) {
    let Some(exp) = root
        .pointer_mut("/$defs/ExperimentConfig")
        .and_then(|e| e.as_object_mut())
    else {
        return;
    };
    if let Some(props) = exp.get_mut("properties").and_then(|p| p.as_object_mut()) {
        if let Some(id) = props.get("experimentId").cloned() {
            let mut alias = id;
            if let Some(o) = alias.as_object_mut() {
                o.insert(
                    "description".into(),
                    "Alias of `experimentId`.".to_string().into(),
                );
            }
            props.insert("key".into(), alias);
        }
    }
    if let Some(req) = exp.get_mut("required").and_then(|r| r.as_array_mut()) {
        req.retain(|r| r != "experimentId");
    }
    exp.insert(
        "oneOf".into(),
        serde_json::json!([{"required": ["experimentId"]}, {"required": ["key"]}]),
    );
}
