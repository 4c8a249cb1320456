//! Fuzzes the whole config pipeline: bytes -> `parse_file` (JSON or YAML, chosen by
//! the first byte) -> `Snapshot::compile` -> evaluation of every experiment with a
//! few contexts, through both context representations. Nothing may panic.
//!
//! Shared by the libFuzzer target (`fuzz/fuzz_targets/config.rs`) and the replay of
//! `fuzz/corpus/config/` and `fuzz/regressions/config/` in `tests/fuzz_regressions.rs`.

use std::path::Path;

use cohortd::config::{parse_file, SourceFile};
use cohortd::engine::EvalOptions;
use cohortd::transport::convert::json_object_to_struct;
use cohortd::Snapshot;

/// Runs one input. Panics (the failure libFuzzer reports) on a broken invariant.
pub fn run(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let name = ["c.json", "c.yaml", "c.yml"][usize::from(selector % 3)];
    let path = Path::new(name);
    let doc = match parse_file(path, body) {
        Ok(doc) => doc,
        Err(errors) => {
            assert!(!errors.is_empty(), "rejected without an error");
            return;
        }
    };
    let snap = match Snapshot::compile(&[SourceFile {
        path: path.into(),
        doc,
    }]) {
        Ok(snap) => snap,
        Err(errors) => {
            assert!(!errors.0.is_empty(), "rejected without an error");
            return;
        }
    };
    let contexts = [
        serde_json::json!({}),
        serde_json::json!({"targetingKey": "u1", "userId": 42, "region": "US", "internal": true}),
        serde_json::json!({"targetingKey": "", "userId": null, "appVersion": "2.3.0"}),
    ];
    for ctx in &contexts {
        let map = ctx.as_object().expect("object");
        let proto = json_object_to_struct(map);
        for e in snap.experiments() {
            let a = e.evaluate(map, EvalOptions::default(), &mut ());
            let b = e.evaluate(&proto, EvalOptions::default(), &mut ());
            assert_eq!(a.variant.key, b.variant.key);
            assert_eq!(a.reason, b.reason);
        }
    }
}
