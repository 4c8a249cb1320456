//! The JSON Schema of a flagd flag-definition document, as [`super::flagd`]
//! accepts it. Written out rather than derived: the flagd format is parsed from
//! a JSON value by hand (its rules are flagd's, not serde's), so there is no
//! type to derive from. `config::schema` adds it to the config-file schema as
//! one more alternative, so one schema covers every file in the directory.
//!
//! It follows flagd-schemas `json/flags.json` where cohortd agrees with it, and
//! is as strict as the loader where cohortd is stricter (unknown flag fields,
//! metadata value types). Targeting is any JSON object: operators are checked
//! by `cohortd validate`, which names the unknown one.

use serde_json::{json, Value};

/// `$defs` entries: the document, one flag, and metadata.
pub fn defs() -> [(&'static str, Value); 3] {
    [
        (
            "FlagdDocument",
            json!({
                "description": "A flagd flag-definition document (https://flagd.dev/reference/flag-definitions/): flags keyed by flag key, shared `$evaluators` and flag-set `metadata`.",
                "type": "object",
                "required": ["flags"],
                "properties": {
                    "$schema": {"type": "string", "description": "e.g. https://flagd.dev/schema/v0/flags.json"},
                    "flags": {
                        "type": "object",
                        "description": "Flag key -> flag definition.",
                        "propertyNames": {"minLength": 1},
                        "additionalProperties": {"$ref": "#/$defs/FlagdFlag"}
                    },
                    "$evaluators": {
                        "type": "object",
                        "description": "Named JSONLogic rules, used in targeting as {\"$ref\": \"name\"}.",
                        "additionalProperties": {"type": "object", "minProperties": 1}
                    },
                    "metadata": {"$ref": "#/$defs/FlagdMetadata"}
                }
            }),
        ),
        (
            "FlagdFlag",
            json!({
                "description": "One flagd flag.",
                "type": "object",
                "required": ["state", "variants"],
                "additionalProperties": false,
                "properties": {
                    "state": {"enum": ["ENABLED", "DISABLED"]},
                    "variants": {
                        "type": "object",
                        "description": "Variant name -> value (boolean, string, number or object).",
                        "minProperties": 1,
                        "additionalProperties": {"type": ["boolean", "string", "number", "object", "array"]}
                    },
                    "defaultVariant": {
                        "type": ["string", "boolean", "null"],
                        "description": "A variant name; null or absent: the caller's default (reason DEFAULT)."
                    },
                    "targeting": {
                        "type": ["object", "null"],
                        "description": "JSONLogic whose result names a variant, with flagd's fractional, sem_ver, starts_with and ends_with."
                    },
                    "metadata": {"$ref": "#/$defs/FlagdMetadata"},
                    "source": {"type": "string"},
                    "selector": {"type": "string"}
                }
            }),
        ),
        (
            "FlagdMetadata",
            json!({
                "type": "object",
                "description": "String, number or boolean values (flag metadata overrides flag-set metadata).",
                "propertyNames": {"minLength": 1},
                "additionalProperties": {"type": ["string", "number", "boolean"]}
            }),
        ),
    ]
}
