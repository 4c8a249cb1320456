//! Replays every fuzz input kept in the repository through the same code the
//! libFuzzer targets run (`fuzz/bodies/*.rs`): the seeds in `fuzz/corpus/<target>/`
//! and the inputs that once failed, in `fuzz/regressions/<target>/`. So a fixed
//! crash stays fixed in the ordinary `cargo test`, without libFuzzer.

use std::path::{Path, PathBuf};

#[path = "../fuzz/bodies/analysis.rs"]
mod analysis;
#[path = "../fuzz/bodies/config.rs"]
mod config;
#[path = "../fuzz/bodies/flagd.rs"]
mod flagd;
#[path = "../fuzz/bodies/request.rs"]
mod request;
#[path = "../fuzz/bodies/wire_context.rs"]
mod wire_context;

/// Files in `fuzz/<kind>/<target>/`, sorted; none when the folder is absent.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable fuzz folder").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `run` on every kept input of `target`; returns how many there were.
fn replay(target: &str, run: fn(&[u8])) -> usize {
    let mut n = 0;
    for kind in ["corpus", "regressions"] {
        for file in inputs(kind, target) {
            let data = std::fs::read(&file).expect("readable fuzz input");
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{} fails again", file.display());
            n += 1;
        }
    }
    n
}

#[test]
fn config_inputs_replay() {
    assert!(replay("config", config::run) > 0, "no config seeds found");
}

#[test]
fn request_inputs_replay() {
    assert!(
        replay("request", request::run) > 0,
        "no request seeds found"
    );
}

#[test]
fn wire_context_inputs_replay() {
    assert!(
        replay("wire_context", wire_context::run) > 0,
        "no wire_context seeds found"
    );
}

#[test]
fn flagd_inputs_replay() {
    assert!(replay("flagd", flagd::run) > 0, "no flagd seeds found");
}

#[test]
fn analysis_inputs_replay() {
    assert!(
        replay("analysis", analysis::run) > 0,
        "no analysis seeds found"
    );
}
