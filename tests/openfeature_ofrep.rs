//! Interop with the real OFREP providers: the Python SDK with
//! `openfeature-provider-ofrep` (tests/python/test_openfeature_ofrep.py) and the
//! Node server SDK with `@openfeature/ofrep-provider` (tests/node/ofrep_smoke.mjs)
//! against cohortd's OFREP listener: values of every type, variants, reasons,
//! metadata, error codes, and a configuration change served. Expected variants
//! come from cohortd's engine.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cohortd::transport::limits::Limits;
use support::flagd::{expectations, stopped_kill_switch, store};
use support::process::Driven;
use support::runners::node_dir;
use support::runners::python;
use support::server::{start_ofrep, OfrepServer};

/// Runs a driven client through the exchange: static checks, a config change,
/// the new value served.
fn drive(srv: &OfrepServer, mut cmd: Command, who: &str) {
    let port = srv.running.ofrep_addr.unwrap().port();
    let version = srv.store.load().unwrap().version().to_owned();
    cmd.arg(port.to_string()).arg(version).arg(expectations());
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
    assert!(ok, "the {who} client failed:\n{stderr}");
    let seen = srv.sink.take();
    assert!(seen
        .iter()
        .any(|s| s.experiment == "upload-limit-mb" && s.variant == "new"));
    assert!(seen.iter().all(|s| s.source == "ofrep"), "{seen:?}");
}

#[test]
fn python_ofrep_provider_resolves_and_sees_configuration_changes() {
    let Some(python) = python() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let srv = rt.block_on(start_ofrep(store(), Limits::default()));
    let mut cmd = Command::new(python);
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/test_openfeature_ofrep.py"));
    drive(&srv, cmd, "Python");
    rt.block_on(srv.running.shutdown());
}

#[test]
fn node_ofrep_provider_resolves_and_sees_configuration_changes() {
    let Some(dir) = node_dir("@openfeature/ofrep-provider") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let srv = rt.block_on(start_ofrep(store(), Limits::default()));
    let mut cmd = Command::new(std::env::var_os("COHORTD_NODE").unwrap_or_else(|| "node".into()));
    cmd.current_dir(&dir).arg("ofrep_smoke.mjs");
    drive(&srv, cmd, "Node");
    rt.block_on(srv.running.shutdown());
}
