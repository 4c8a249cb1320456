//! Fuzzes the flagd flag-definition parser: bytes -> `parse_flagd_text` (JSON or
//! YAML, chosen by the first byte). Nothing may panic, and every rejection
//! carries at least one error.
//!
//! Shared by the libFuzzer target (`fuzz/fuzz_targets/flagd.rs`) and the replay of
//! `fuzz/corpus/flagd/` and `fuzz/regressions/flagd/` in `tests/fuzz_regressions.rs`.

use std::path::Path;

use cohortd::config::flagd::parse_flagd_text;

/// Runs one input. Panics (the failure libFuzzer reports) on a broken invariant.
pub fn run(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(body) else {
        return;
    };
    let yaml = selector % 2 == 1;
    let path = Path::new(if yaml {
        "flags.yaml"
    } else {
        "flags.flagd.json"
    });
    if let Err(errors) = parse_flagd_text(path, text, yaml) {
        assert!(!errors.is_empty(), "rejected without an error");
    }
}
