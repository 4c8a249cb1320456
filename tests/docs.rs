//! Every fenced block of README.md and docs/*.md runs against the binary this
//! `cargo test` built, and every output the docs show is compared with what it
//! prints, so the docs cannot drift from the code.
//!
//! The work is done by tests/python/doctest_runner.py (its header defines the
//! convention: `# ` lines under a command are its output, `...` matches any
//! text, `<!-- doctest: skip REASON -->` and friends before other blocks). It
//! maps `cargo run --release --` and `target/release/cohortd` to the debug
//! binary cargo test just built, so CI never does a second, release build.
//! The interpreter is $COHORTD_PYTHON (the venv .ci/setup-python.sh builds;
//! the Python blocks need its grpcio and openfeature packages), falling back to
//! .venv/bin/python, then python3 (the Python blocks are then skipped, unless
//! CI=true). grpcurl blocks need .tools/bin/grpcurl (.ci/setup-go.sh) and are
//! required when CI=true.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn docs_commands_and_outputs_match_the_binary() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var_os("COHORTD_PYTHON")
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .or_else(|| Some(repo.join(".venv/bin/python")).filter(|p| p.exists()))
        .unwrap_or_else(|| PathBuf::from("python3"));
    let out = Command::new(&python)
        .arg(repo.join("tests/python/doctest_runner.py"))
        .arg("--repo")
        .arg(&repo)
        .arg("--bin")
        .arg(env!("CARGO_BIN_EXE_cohortd"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{report}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "the docs do not match the binary (see FAIL lines above)"
    );
    // The harness must have found the docs and run something in each guide
    // that has commands: a runner that silently skipped everything would pass.
    assert!(
        report.contains("README.md: ") && !report.contains("README.md: 0 run"),
        "README.md was not run:\n{report}"
    );
}
