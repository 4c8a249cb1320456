//! Interop with the real OpenFeature Python SDK and flagd provider (RPC mode):
//! tests/python/test_openfeature_flagd.py resolves every value type against an
//! in-process server, checks reasons and error codes, then observes a
//! configuration change. Also checks our protos against the provider's own.

mod support;

use std::process::Command;
use std::time::Duration;

use support::flagd::{expectations, start, stopped_kill_switch, store};
use support::process::Driven;
use support::runners::python;
use support::runners::script;

#[test]
fn python_flagd_provider_resolves_and_sees_configuration_changes() {
    let Some(python) = python() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let srv = rt.block_on(start(store(), Duration::from_secs(20)));
    let mut cmd = Command::new(python);
    cmd.arg(script("test_openfeature_flagd.py"))
        .arg(srv.addr.port().to_string())
        .arg(expectations());
    let mut child = Driven::spawn(cmd, Duration::from_secs(90));
    if let Err(e) = child.expect_line("READY-FOR-CHANGE") {
        panic!("{e}\nstderr:\n{}", child.abort());
    }
    srv.store.install(stopped_kill_switch()).expect("a change");
    child.send_line("CHANGED");
    if let Err(e) = child.expect_line("OK") {
        panic!("{e}\nstderr:\n{}", child.abort());
    }
    let (ok, stderr) = child.finish();
    assert!(ok, "the Python client failed:\n{stderr}");
    // The provider's evaluations of enrolled units were recorded as exposures.
    let seen = srv.sink.take();
    assert!(seen
        .iter()
        .any(|s| s.experiment == "upload-limit-mb" && s.variant == "new"));
    assert!(seen.iter().all(|s| s.source == "flagd"));
}

#[test]
fn our_flagd_protos_match_the_providers_generated_descriptors() {
    let Some(python) = python() else { return };
    let out = Command::new(python)
        .arg(script("check_flagd_contract.py"))
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "proto contract differs from the flagd provider's:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
}
