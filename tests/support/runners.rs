//! Finding the other toolchains the interop tests drive (Python venv, Node
//! modules, Go and Java builds) and the repository's files. Outside CI a
//! missing toolchain skips the test with a message naming the setup script; in
//! CI (`CI=true`) it fails the test, so a broken setup is never a silent pass.

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether this run is CI, where a missing toolchain is a failure.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The Python interpreter with the project's packages: `$COHORTD_PYTHON` (set
/// by .ci/test.sh), else the project's `.venv`. `None` (skip) only outside CI.
pub fn python() -> Option<PathBuf> {
    let venv = repo().join(".venv/bin/python");
    match std::env::var_os("COHORTD_PYTHON") {
        Some(p) => Some(p.into()),
        None if venv.exists() => Some(venv),
        None if in_ci() => {
            panic!("COHORTD_PYTHON is unset in CI: run the suite with `bash .ci/test.sh`, which creates .venv")
        }
        None => {
            eprintln!("skipping: no COHORTD_PYTHON and no .venv (run `bash .ci/setup-python.sh`)");
            None
        }
    }
}

/// The Python interpreter, for tests that never skip (the reference
/// implementations they compare against are part of the spec).
pub fn require_python() -> PathBuf {
    let p = std::env::var_os("COHORTD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"));
    assert!(
        p.exists(),
        "no Python at {}: run `bash .ci/setup-python.sh` and set COHORTD_PYTHON (bash .ci/test.sh does both)",
        p.display()
    );
    p
}

/// A script under tests/python.
pub fn script(name: &str) -> PathBuf {
    repo().join("tests/python").join(name)
}

/// tests/node when `package` (e.g. `@openfeature/flagd-provider`) is installed
/// under its node_modules (`bash .ci/setup-node.sh`).
pub fn node_dir(package: &str) -> Option<PathBuf> {
    let dir = repo().join("tests/node");
    if dir.join("node_modules").join(package).exists() {
        return Some(dir);
    }
    if in_ci() {
        panic!("tests/node/node_modules is missing in CI: run `bash .ci/setup-node.sh` (bash .ci/test.sh does)");
    }
    eprintln!("skipping: tests/node/node_modules missing (run `bash .ci/setup-node.sh`)");
    None
}

/// A built artifact (a Go binary, a Java jar) relative to the repository, or
/// `None` (skip) when `setup` has not built it.
pub fn installed(artifact: &str, setup: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(artifact);
    if path.exists() {
        return Some(path);
    }
    if in_ci() {
        panic!("{artifact} is missing in CI: run `bash {setup}` (bash .ci/test.sh does)");
    }
    eprintln!("skipping: {artifact} missing (run `bash {setup}`)");
    None
}
