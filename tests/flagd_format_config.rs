//! flagd flag-definition documents: detection, parsing, validation errors that
//! name file, flag and field, `$ref` resolution, metadata merge, and the reasons
//! evaluation returns.

mod support;

use std::path::Path;

use cohortd::config::flagd::{is_flagd_document, parse_flagd_text, parse_flagd_value, FlagdState};
use cohortd::config::ConfigError;
use cohortd::engine::flagd::{FlagdReason, FractionalForm};
use cohortd::snapshot::flagd::{compile_document, FlagdFlag};
use serde_json::{json, Map, Value};
use support::context::json_ctx;

const FILE: &str = "flags/app.flagd.json";

fn load(doc: Value) -> Result<Vec<FlagdFlag>, Vec<ConfigError>> {
    let parsed = parse_flagd_value(Path::new(FILE), &doc)?;
    compile_document(Path::new(FILE), &parsed)
}

fn one(def: Value) -> FlagdFlag {
    load(json!({ "flags": { "f": def } })).unwrap().remove(0)
}

fn errors(doc: Value) -> Vec<String> {
    load(doc)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn detection_is_by_content() {
    assert!(is_flagd_document(&json!({ "flags": {} })));
    assert!(is_flagd_document(
        &json!({ "$schema": "https://flagd.dev/schema/v0/flags.json", "flags": {} })
    ));
    assert!(!is_flagd_document(&json!({ "experiments": [] })));
    assert!(!is_flagd_document(&json!([{ "flags": {} }])));
    assert!(!is_flagd_document(&json!("flags")));
}

#[test]
fn errors_name_file_flag_and_field() {
    let errs = errors(json!({ "flags": {
        "bad-state": { "state": "ON", "variants": { "a": 1 }, "defaultVariant": "a" },
        "bad-default": { "state": "ENABLED", "variants": { "a": 1, "b": 2 }, "defaultVariant": "c" },
        "no-variants": { "state": "ENABLED", "variants": {} },
        "bad-meta": { "state": "ENABLED", "variants": { "a": 1 }, "metadata": { "nested": { "x": 1 } } },
        "typo": { "state": "ENABLED", "variants": { "a": 1 }, "targetting": {} },
    }}));
    let want = [
        "flags/app.flagd.json: flag `bad-state`: field `state`: must be \"ENABLED\" or \"DISABLED\", found \"ON\"",
        "flags/app.flagd.json: flag `bad-default`: field `defaultVariant`: `c` is not one of the variants (a, b)",
        "flags/app.flagd.json: flag `no-variants`: field `variants`: needs at least one variant",
        "flags/app.flagd.json: flag `bad-meta`: field `metadata.nested`: metadata values are strings, numbers or booleans, found an object",
        "flags/app.flagd.json: flag `typo`: field `targetting`: unknown field",
    ];
    for w in want {
        assert!(
            errs.iter().any(|e| e.starts_with(w)),
            "missing error {w:?} in {errs:#?}"
        );
    }
    assert_eq!(errs.len(), 5, "{errs:#?}");
}

#[test]
fn ref_resolves_against_evaluators_and_a_missing_one_is_a_load_error() {
    // Whitespace after `"$ref":` is tolerated, as flagd's substitution allows.
    let text = r#"{
      "$evaluators": { "staff": { "ends_with": [{ "var": "email" }, "@example.com"] } },
      "flags": { "f": {
        "state": "ENABLED", "variants": { "on": true, "off": false }, "defaultVariant": "off",
        "targeting": { "if": [ { "$ref":     "staff" }, "on", null ] }
      } }
    }"#;
    let doc = parse_flagd_text(Path::new(FILE), text, false).unwrap();
    assert_eq!(
        doc.flags[0].targeting,
        Some(json!({ "if": [{ "ends_with": [{ "var": "email" }, "@example.com"] }, "on", null] }))
    );
    let f = compile_document(Path::new(FILE), &doc).unwrap().remove(0);
    let o = f
        .evaluate(
            &json_ctx(json!({ "email": "a@example.com" })),
            0,
            FractionalForm::V3,
        )
        .unwrap();
    assert_eq!(
        (o.variant, o.reason),
        (Some("on"), FlagdReason::TargetingMatch)
    );

    let errs = errors(json!({
        "$evaluators": { "staff": { "==": [1, 1] } },
        "flags": { "f": { "state": "ENABLED", "variants": { "a": 1 }, "targeting": { "$ref": "stafff" } } }
    }));
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].contains("flag `f`: field `targeting`: `$ref` names evaluator `stafff`"),
        "{}",
        errs[0]
    );
    // A cycle between evaluators is refused, not followed forever.
    let errs = errors(json!({
        "$evaluators": { "a": { "!": { "$ref": "b" } }, "b": { "!": { "$ref": "a" } } },
        "flags": { "f": { "state": "ENABLED", "variants": { "a": 1 }, "targeting": { "$ref": "a" } } }
    }));
    assert!(errs[0].contains("a cycle"), "{}", errs[0]);
}

#[test]
fn unknown_operators_are_load_errors_with_their_path() {
    let errs = errors(json!({ "flags": { "f": {
        "state": "ENABLED", "variants": { "a": 1 },
        "targeting": { "if": [{ "starts_wth": [{ "var": "email" }, "x"] }, "a", null] }
    } } }));
    assert_eq!(errs, vec![
        "flags/app.flagd.json: flag `f`: field `targeting.if[0].starts_wth`: unknown operator `starts_wth`".to_string()
    ]);
}

#[test]
fn yaml_documents_parse_like_json() {
    let yaml = "flags:\n  f:\n    state: ENABLED\n    variants: { on: true, off: false }\n    defaultVariant: on\n    metadata: { owner: web }\n";
    let doc = parse_flagd_text(Path::new("x.yaml"), yaml, true).unwrap();
    assert_eq!(doc.flags[0].state, FlagdState::Enabled);
    assert_eq!(doc.flags[0].default_variant.as_deref(), Some("on"));
    assert_eq!(doc.flags[0].metadata["owner"], json!("web"));
}

#[test]
fn metadata_merges_flag_over_flag_set() {
    let flags = load(json!({
        "metadata": { "team": "growth", "version": "1" },
        "flags": {
            "f": { "state": "ENABLED", "variants": { "a": 1 }, "defaultVariant": "a", "metadata": { "version": "2", "owner": "me" } },
            "g": { "state": "ENABLED", "variants": { "a": 1 }, "defaultVariant": "a" }
        }
    }))
    .unwrap();
    let o = flags[0]
        .evaluate(&Map::new(), 0, FractionalForm::V3)
        .unwrap();
    assert_eq!(
        Value::Object(o.metadata.clone()),
        json!({ "team": "growth", "version": "2", "owner": "me" })
    );
    let o = flags[1]
        .evaluate(&Map::new(), 0, FractionalForm::V3)
        .unwrap();
    assert_eq!(
        Value::Object(o.metadata.clone()),
        json!({ "team": "growth", "version": "1" })
    );
}

#[test]
fn reasons_follow_flagd() {
    let variants = json!({ "on": "ON", "off": "OFF" });
    // No targeting, or `{}`: STATIC with the default variant.
    for t in [None, Some(json!({}))] {
        let mut def = json!({ "state": "ENABLED", "variants": variants, "defaultVariant": "off" });
        if let Some(t) = t {
            def["targeting"] = t;
        }
        let f = one(def);
        let o = f.evaluate(&Map::new(), 0, FractionalForm::V3).unwrap();
        assert_eq!(
            (o.value, o.variant, o.reason),
            (Some(&json!("OFF")), Some("off"), FlagdReason::Static)
        );
    }
    let f = one(json!({
        "state": "ENABLED", "variants": variants, "defaultVariant": "off",
        "targeting": { "if": [{ "==": [{ "var": "plan" }, "pro"] }, "on", null] }
    }));
    let o = f
        .evaluate(&json_ctx(json!({ "plan": "pro" })), 0, FractionalForm::V3)
        .unwrap();
    assert_eq!(
        (o.value, o.variant, o.reason, o.bucketed),
        (
            Some(&json!("ON")),
            Some("on"),
            FlagdReason::TargetingMatch,
            false
        )
    );
    let o = f
        .evaluate(&json_ctx(json!({ "plan": "free" })), 0, FractionalForm::V3)
        .unwrap();
    assert_eq!((o.variant, o.reason), (Some("off"), FlagdReason::Default));
    // No default variant: the caller's default (no value, no variant), DEFAULT.
    for dv in [json!(null), json!("")] {
        let f = one(json!({ "state": "ENABLED", "variants": variants, "defaultVariant": dv }));
        let o = f.evaluate(&Map::new(), 0, FractionalForm::V3).unwrap();
        assert_eq!(
            (o.value, o.variant, o.reason),
            (None, None, FlagdReason::Default)
        );
    }
    // Disabled: the caller's default, DISABLED.
    let f = one(json!({ "state": "DISABLED", "variants": variants, "defaultVariant": "on" }));
    let o = f.evaluate(&Map::new(), 0, FractionalForm::V3).unwrap();
    assert_eq!(
        (o.value, o.variant, o.reason),
        (None, None, FlagdReason::Disabled)
    );
    // Booleans name the variants "true"/"false".
    let f = one(
        json!({ "state": "ENABLED", "variants": { "true": 1, "false": 0 }, "defaultVariant": "false",
        "targeting": { ">": [{ "var": "age" }, 18] } }),
    );
    let o = f
        .evaluate(&json_ctx(json!({ "age": 30 })), 0, FractionalForm::V3)
        .unwrap();
    assert_eq!(o.variant, Some("true"));
}

#[test]
fn a_result_that_is_not_a_variant_is_an_error() {
    let f = one(
        json!({ "state": "ENABLED", "variants": { "a": 1 }, "defaultVariant": "a",
        "targeting": { "var": "pick" } }),
    );
    let e = f
        .evaluate(&json_ctx(json!({ "pick": "zzz" })), 0, FractionalForm::V3)
        .unwrap_err();
    assert_eq!(e.code(), "PARSE_ERROR");
    assert_eq!(
        e.to_string(),
        "flag `f`: targeting resolved to `zzz`, which is not one of its variants"
    );
    let e = f
        .evaluate(
            &json_ctx(json!({ "pick": { "x": 1 } })),
            0,
            FractionalForm::V3,
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "flag `f`: targeting returned {\"x\":1}, not a variant name"
    );
}

#[test]
fn injected_flagd_properties_and_targeting_key() {
    let f = one(
        json!({ "state": "ENABLED", "variants": { "f|u-1|1700000123": 1, "other": 0 }, "defaultVariant": "other",
        "targeting": { "cat": [{ "var": "$flagd.flagKey" }, "|", { "var": "targetingKey" }, "|", { "var": "$flagd.timestamp" }] } }),
    );
    // A caller cannot override `$flagd` through the context.
    let c = json_ctx(json!({ "targetingKey": "u-1", "$flagd": { "flagKey": "spoofed" } }));
    let o = f.evaluate(&c, 1_700_000_123, FractionalForm::V3).unwrap();
    assert_eq!(o.variant, Some("f|u-1|1700000123"));
}
