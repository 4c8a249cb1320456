//! The real OpenFeature Python flagd provider (openfeature-provider-flagd, pinned
//! in tests/python/requirements.txt) against a `cohortd serve` on a flagd-format
//! flag file (tests/vectors/flagd/providers.flagd.json: fractional, sem_ver,
//! starts_with/ends_with, `$ref`, `$flagd` properties, a disabled flag, a null
//! default variant, a targeting result naming no variant, every value type,
//! flag-set and flag metadata), in both of its modes:
//! - RPC: flagd.evaluation.v2 calls and the EventStream (the change must evict
//!   the provider's cache of STATIC answers);
//! - IN-PROCESS: the flag set synced from cohortd's flagd.sync.v1 service and
//!   evaluated by `openfeature-flagd-core` 2.x, whose `fractional` is v3, so
//!   cohortd runs with `--flagd-fractional v3`.
//!
//! Every answer must equal cohortd's own offline answer (its engine on the same
//! file, tests/support/providers.rs), before and after the file is rewritten.

mod support;

use std::process::Command;
use std::time::Duration;

use support::providers::{drive, tests_dir, FlagdServe};
use support::runners::python;

fn run(mode: &str) {
    let Some(python) = python() else { return };
    let srv = FlagdServe::start("v3");
    let port = if mode == "rpc" { srv.rpc } else { srv.sync }.port();
    let mut cmd = Command::new(python);
    cmd.arg(tests_dir().join("python/test_openfeature_flagd_files.py"))
        .arg(mode)
        .arg(port.to_string());
    drive(
        &srv,
        cmd,
        Duration::from_secs(120),
        &format!("the Python flagd provider ({mode})"),
    );
}

#[test]
fn python_flagd_provider_rpc_on_flagd_files_matches_cohortd() {
    run("rpc");
}

#[test]
fn python_flagd_provider_in_process_on_flagd_files_matches_cohortd() {
    run("in-process");
}
