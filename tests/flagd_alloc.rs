//! flagd-format evaluation allocates nothing once warm: a fractional flag (the
//! shorthand and one with a bucketing value behind an `in` rule), under every
//! form, counted by an instrumented global allocator (`stats_alloc`). This
//! binary holds one test, so nothing else allocates while it counts.

use std::path::Path;

use cohortd::config::flagd::parse_flagd_value;
use cohortd::engine::flagd::FractionalForm;
use cohortd::snapshot::flagd::compile_document;
use serde_json::json;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

#[test]
fn fractional_evaluation_is_allocation_free_once_warm() {
    let doc = json!({ "flags": {
        "shorthand": {
            "state": "ENABLED",
            "variants": { "red": "#f00", "blue": "#00f", "green": "#0f0", "yellow": "#ff0" },
            "defaultVariant": "red",
            "targeting": { "fractional": [["red", 25], ["blue", 25], ["green", 25], ["yellow", 25]] }
        },
        "guarded": {
            "state": "ENABLED",
            "variants": { "red": "#f00", "blue": "#00f" },
            "defaultVariant": "red",
            "targeting": { "if": [
                { "in": ["@faas.com", { "var": ["email"] }] },
                { "fractional": [{ "var": "email" }, ["red", 50], ["blue", 50]] },
                null
            ] }
        },
        "static": { "state": "ENABLED", "variants": { "on": true }, "defaultVariant": "on" }
    } });
    let parsed = parse_flagd_value(Path::new("t.json"), &doc).unwrap();
    let flags = compile_document(Path::new("t.json"), &parsed).unwrap();
    let ctx = json!({"targetingKey": "user-1234567", "email": "rachel@faas.com"});
    let ctx = ctx.as_object().unwrap();
    for form in [FractionalForm::V1, FractionalForm::V2, FractionalForm::V3] {
        for f in &flags {
            // Warm: the per-thread scratch buffer grows once.
            let warm = f.evaluate(ctx, 1_700_000_000, form).unwrap();
            let region = Region::new(GLOBAL);
            let mut same = true;
            for _ in 0..100 {
                let o = f.evaluate(ctx, 1_700_000_000, form).unwrap();
                same &= o.variant == warm.variant;
            }
            let stats = region.change();
            let n = stats.allocations + stats.reallocations;
            assert!(same);
            assert_eq!(n, 0, "{} under {form:?}: {n} allocations", f.key());
            if f.uses_fractional {
                assert!(warm.bucketed, "{}", f.key());
            }
        }
    }
}
