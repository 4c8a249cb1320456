//! The OpenFeature Java SDK with the flagd provider (java-sdk-contrib, pinned in
//! tests/java/pom.xml, built by .ci/setup-java.sh) in IN-PROCESS mode against a
//! `cohortd serve` on the flagd-format file of tests/support/providers.rs: the
//! provider syncs the set from cohortd's flagd.sync.v1 service and evaluates it
//! itself. Its `fractional` (`resolver/process/targeting/Fractional`) is the
//! legacy percentage form in 32-bit floats, so cohortd runs `--flagd-fractional
//! v1` (64-bit): every answer must equal cohortd's offline answer, except that a
//! `fractional` match may land in another variant where float rounding puts a
//! unit on the other side of a boundary; those are counted and printed
//! (tests/java/src/main/java/dev/cohortd/clients/InProcess.java), any other
//! difference fails.

mod support;

use std::process::Command;
use std::time::Duration;

use support::providers::{drive, FlagdServe};
use support::runners::installed;

#[test]
fn java_flagd_provider_in_process_on_flagd_files_matches_cohortd() {
    let Some(cp_file) = installed("tests/java/target/classpath.txt", ".ci/setup-java.sh") else {
        return;
    };
    let classes = cp_file.with_file_name("classes");
    let deps = std::fs::read_to_string(&cp_file).unwrap();
    let srv = FlagdServe::start("v1");
    let mut cmd = Command::new(std::env::var_os("COHORTD_JAVA").unwrap_or_else(|| "java".into()));
    cmd.arg("-cp")
        .arg(format!("{}:{}", classes.display(), deps.trim()))
        .arg("dev.cohortd.clients.InProcess")
        .arg(srv.sync.port().to_string());
    drive(
        &srv,
        cmd,
        Duration::from_secs(180),
        "the Java flagd provider (in-process)",
    );
}
