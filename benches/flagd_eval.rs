//! flagd-format flag evaluation in-process: a fractional flag (the case that
//! hashes), the same guarded by flagd's documented `if`/`in` rule, a rule using
//! sem_ver, and a static flag. Context as the flagd transports hand it over (a
//! JSON map with `targetingKey`).
//!
//! Run: `cargo bench --bench flagd_eval`

use std::path::Path;

use cohortd::config::flagd::parse_flagd_value;
use cohortd::engine::flagd::FractionalForm;
use cohortd::snapshot::flagd::{compile_document, FlagdFlag};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Map, Value};

fn flags() -> Vec<FlagdFlag> {
    let doc = json!({ "flags": {
        "shorthand": {
            "state": "ENABLED",
            "variants": { "red": "#f00", "blue": "#00f", "green": "#0f0", "yellow": "#ff0" },
            "defaultVariant": "red",
            "targeting": { "fractional": [["red", 25], ["blue", 25], ["green", 25], ["yellow", 25]] }
        },
        "guarded": {
            "state": "ENABLED",
            "variants": { "red": "#f00", "blue": "#00f", "green": "#0f0", "yellow": "#ff0" },
            "defaultVariant": "red",
            "targeting": { "if": [
                { "in": ["@faas.com", { "var": ["email"] }] },
                { "fractional": [{ "var": "email" }, ["red", 25], ["blue", 25], ["green", 25], ["yellow", 25]] },
                null
            ] }
        },
        "semver": {
            "state": "ENABLED",
            "variants": { "new": true, "old": false },
            "defaultVariant": "old",
            "targeting": { "if": [{ "sem_ver": [{ "var": "version" }, ">=", "2.1.0"] }, "new", null] }
        },
        "static": { "state": "ENABLED", "variants": { "on": true, "off": false }, "defaultVariant": "on" }
    } });
    let parsed = parse_flagd_value(Path::new("bench.json"), &doc).unwrap();
    compile_document(Path::new("bench.json"), &parsed).unwrap()
}

fn bench(c: &mut Criterion) {
    let flags = flags();
    let ctx: Map<String, Value> = json!({
        "targetingKey": "user-1234567",
        "email": "rachel@faas.com",
        "version": "2.3.1",
        "plan": "pro",
    })
    .as_object()
    .unwrap()
    .clone();
    let mut g = c.benchmark_group("flagd_eval");
    for flag in &flags {
        for form in [FractionalForm::V2, FractionalForm::V3] {
            if !flag.uses_fractional && form == FractionalForm::V2 {
                continue;
            }
            let name = if flag.uses_fractional {
                format!("{}/{form:?}", flag.key())
            } else {
                flag.key().to_owned()
            };
            g.bench_function(name, |b| {
                b.iter(|| {
                    let o = flag
                        .evaluate(std::hint::black_box(&ctx), 1_700_000_000, form)
                        .unwrap();
                    std::hint::black_box(o.variant);
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
